//! `sluice demo`: everything in one process, nothing to install.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use sluice_broker::BrokerConfig;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::run::{Gateway, shutdown_signal, start_broker};
use crate::simulate::{self, SimulateOpts};
use crate::{RuntimeArgs, parse_duration};

/// The demo pipeline, embedded so the demo needs no files.
const DEMO_PIPELINE: &str = include_str!("../../../pipelines/demo.yaml");

/// Options of `sluice demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Stop after this long (default: run until Ctrl-C).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    duration: Option<Duration>,
    /// Simulated devices.
    #[arg(long, default_value_t = 20)]
    devices: usize,
    /// Messages per second per device.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Directory for the demo's local files.
    #[arg(long, default_value = "sluice-demo", value_name = "DIR")]
    out_dir: PathBuf,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Runs the embedded broker, the simulator and the demo pipeline.
pub async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let port = free_port().context("finding a free port for the embedded broker")?;
    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let broker = start_broker(BrokerConfig {
        listen,
        ..BrokerConfig::default()
    })
    .await
    .context("starting the embedded broker")?;
    let url = format!("mqtt://{listen}");
    let out_dir = args.out_dir.to_string_lossy().into_owned();
    let pipeline = sluice_core::env::with_vars(
        &[("SLUICE_MQTT_URL", &url), ("SLUICE_DATA_DIR", &out_dir)],
        || sluice_config::load_str(Path::new("demo.yaml"), DEMO_PIPELINE),
    )
    .map_err(|d| anyhow::anyhow!("the embedded demo pipeline is invalid:\n{d}"))?;
    info!(broker = %url, out_dir = %out_dir, "Starting the demo: 10 s windows per device, alerts on vibration > 3 or temperature > 62.");

    let gateway = Gateway::start(vec![pipeline], &args.runtime).await?;
    let sim_stop = CancellationToken::new();
    let opts = SimulateOpts {
        url: url.clone(),
        devices: args.devices,
        rate_per_device: args.rate,
        topic_prefix: "factory/line1".into(),
        duration: None,
        count: None,
        seed: 42,
        faults: true,
        late_fraction: 0.001,
        malformed_fraction: 0.001,
    };
    let sim = tokio::spawn(simulate::run(opts, sim_stop.clone()));

    let stop = async {
        match args.duration {
            Some(d) => tokio::select! {
                _ = tokio::time::sleep(d) => info!("Demo duration elapsed."),
                _ = shutdown_signal() => {}
            },
            None => shutdown_signal().await,
        }
        sim_stop.cancel();
    };
    let code = gateway.run_until(stop, &args.runtime).await?;
    match sim.await {
        Ok(Ok(stats)) => info!(%stats, "Simulator stopped."),
        Ok(Err(e)) => warn!(error = %e, "Simulator failed."),
        Err(e) => warn!(error = %e, "Simulator task failed."),
    }
    drop(broker);
    Ok(code)
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}
