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

/// The anomaly models the demo pipeline uses, embedded for the same reason,
/// as (path under the models directory, bytes). The pipeline pins each file's
/// SHA-256, so a stale copy on disk is refused rather than used.
const DEMO_MODELS: &[(&str, &[u8])] = &[(
    "anomaly/factory-h16.onnx",
    include_bytes!("../../../models/anomaly/factory-h16.onnx"),
)];

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
    /// Simulated time runs this many times faster than the wall clock (4
    /// plays the simulator's 2-minute fault cycle in 30 s).
    #[arg(long, default_value_t = 1.0, value_parser = simulate::parse_speed, value_name = "FACTOR")]
    speed: f64,
    /// Inject faults only on these devices (indices from 0, comma-separated);
    /// by default each fault picks a device.
    #[arg(long, value_delimiter = ',', value_name = "N,...")]
    fault_devices: Vec<usize>,
    /// Directory for the demo's local files (window summaries, flagged rows,
    /// a copy of the embedded models).
    #[arg(long, default_value = "sluice-demo", value_name = "DIR")]
    out_dir: PathBuf,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Runs the embedded broker, the simulator and the demo pipeline.
pub async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if let Some(d) = args.fault_devices.iter().find(|d| **d >= args.devices) {
        anyhow::bail!(
            "--fault-devices names device {d}, but the demo simulates devices 0 to {}",
            args.devices.saturating_sub(1)
        );
    }
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
    let models_dir = write_models(&args.out_dir.join("models"))?;
    let pipeline = sluice_core::env::with_vars(
        &[
            ("SLUICE_MQTT_URL", &url),
            ("SLUICE_DATA_DIR", &out_dir),
            ("SLUICE_MODELS_DIR", &models_dir),
        ],
        || sluice_config::load_str(Path::new("demo.yaml"), DEMO_PIPELINE),
    )
    .map_err(|d| anyhow::anyhow!("the embedded demo pipeline is invalid:\n{d}"))?;
    info!(broker = %url, out_dir = %out_dir, "Starting the demo: 10 s windows per device, alerts on vibration > 3 or temperature > 62, and per device the readings the anomaly model flags.");

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
        fault_devices: args.fault_devices.clone(),
        speed: args.speed,
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

/// Writes the embedded models under `dir`; returns `dir` as text for
/// `SLUICE_MODELS_DIR`.
fn write_models(dir: &Path) -> anyhow::Result<String> {
    for (name, bytes) in DEMO_MODELS {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir.to_string_lossy().into_owned())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}
