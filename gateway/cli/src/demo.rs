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
use crate::simulate::pos::PosOpts;
use crate::simulate::{self, SimulateOpts};
use crate::{RuntimeArgs, parse_duration};

/// The demo pipelines, embedded so the demo needs no pipeline files.
const DEMO_PIPELINE: &str = include_str!("../../../pipelines/demo.yaml");
const RETAIL_PIPELINE: &str = include_str!("../../../pipelines/demo-retail.yaml");

/// Model files the demo pipelines read, under the models directory, with
/// what to do when one is missing.
const DEMO_MODELS: &[(&str, &str)] = &[
    (
        "anomaly/factory-h16.onnx",
        "it ships in the repository's models/ directory",
    ),
    (
        "detect/nanodet-g-416.onnx",
        "it ships in the repository's models/ directory",
    ),
    (
        "slm/SmolLM2-135M-Instruct.Q4_1.gguf",
        "fetch it with models/slm/fetch.sh (scripts/setup.sh runs it)",
    ),
];

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
    /// the outbox).
    #[arg(long, default_value = "sluice-demo", value_name = "DIR")]
    out_dir: PathBuf,
    /// Directory holding the models (the repository's `models/`).
    #[arg(
        long,
        env = "SLUICE_MODELS_DIR",
        default_value = "models",
        value_name = "DIR"
    )]
    models_dir: PathBuf,
    /// Directory holding the retail scenario: sample camera frames and the
    /// till's scenario.json (the repository's `examples/retail/`).
    #[arg(long, default_value = "examples/retail", value_name = "DIR")]
    retail_dir: PathBuf,
    /// Run the factory pipeline only (no cameras, no till).
    #[arg(long)]
    no_retail: bool,
    /// Broker that alerts and digests are forwarded to, as
    /// mqtt://host[:port] (default: the embedded broker, under `cloud/`).
    #[arg(long, value_name = "URL")]
    uplink: Option<String>,
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
    let models_dir = check_models(&args.models_dir)?;
    let retail_dir = args.retail_dir.to_string_lossy().into_owned();
    let scenario = args.retail_dir.join("scenario.json");
    if !args.no_retail && !scenario.is_file() {
        anyhow::bail!(
            "the retail demo needs {}: run the demo from the repository root, point --retail-dir \
             at examples/retail, or pass --no-retail",
            scenario.display()
        );
    }
    let vars = [
        ("SLUICE_MQTT_URL", url.as_str()),
        ("SLUICE_UPLINK_URL", args.uplink.as_deref().unwrap_or(&url)),
        ("SLUICE_DATA_DIR", out_dir.as_str()),
        ("SLUICE_MODELS_DIR", models_dir.as_str()),
        ("SLUICE_RETAIL_FRAMES", retail_dir.as_str()),
    ];
    let mut embedded = vec![("demo.yaml", DEMO_PIPELINE)];
    if !args.no_retail {
        embedded.push(("demo-retail.yaml", RETAIL_PIPELINE));
    }
    let pipelines = embedded
        .into_iter()
        .map(|(name, text)| {
            sluice_core::env::with_vars(&vars, || {
                sluice_config::load_str::<crate::Catalog>(Path::new(name), text)
            })
            .map_err(|d| anyhow::anyhow!("the embedded pipeline {name} is invalid:\n{d}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    info!(broker = %url, out_dir = %out_dir, "Starting the demo. Factory: 10 s windows per device, alerts on vibration > 3 or temperature > 62, the readings the anomaly model flags and a digest every 30 s.");
    if !args.no_retail {
        info!(
            "Retail: three store cameras and a till; alerts for the stockroom after hours, loitering at the exit and items bagged without a scan, and a digest every 30 s."
        );
    }

    let gateway = Gateway::start(pipelines, &args.runtime).await?;
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
    let till = (!args.no_retail).then(|| {
        let opts = PosOpts {
            url: url.clone(),
            scenario,
            topic_prefix: "store/pos".into(),
            loops: None,
            duration: None,
        };
        tokio::spawn(simulate::pos::run(opts, sim_stop.clone()))
    });

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
    if let Some(till) = till {
        match till.await {
            Ok(Ok(sent)) => info!(sent, "Till simulator stopped."),
            Ok(Err(e)) => warn!(error = %e, "Till simulator failed."),
            Err(e) => warn!(error = %e, "Till simulator task failed."),
        }
    }
    drop(broker);
    Ok(code)
}

/// Checks that every model the demo reads is under `dir`; returns `dir` as
/// text for `SLUICE_MODELS_DIR`.
fn check_models(dir: &Path) -> anyhow::Result<String> {
    let missing: Vec<String> = DEMO_MODELS
        .iter()
        .filter(|(name, _)| !dir.join(name).is_file())
        .map(|(name, how)| format!("  {}: {how}", dir.join(name).display()))
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "the demo needs these model files, which are missing:\n{}\n\
             Run the demo from the repository root or point --models-dir (or SLUICE_MODELS_DIR) \
             at the models directory.",
            missing.join("\n")
        );
    }
    Ok(dir.to_string_lossy().into_owned())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}
