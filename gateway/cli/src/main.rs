//! `sluice`: run, check and inspect edge stream-processing pipelines.

mod demo;
mod eval_anomaly;
mod fit;
mod logging;
mod malloc;
mod outbox;
mod run;
mod simulate;
mod validate;

/// The component types this binary runs: the runtime (config loading,
/// topology) is handed this table and names no plugin itself.
type Catalog = sluice_plugins::Catalog;
/// A loaded pipeline of this binary's components.
type Pipeline = sluice_config::Pipeline<Catalog>;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Sluice: an edge gateway that runs stream-processing pipelines declared in YAML.
///
/// A pipeline ingests MQTT telemetry, aggregates it in event-time windows with
/// SQL, and forwards condensed results to MQTT, files or the console.
#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one or more pipelines until SIGTERM/SIGINT, then drain and exit.
    Run(RunArgs),
    /// Check pipeline files and report every problem with file:line:column.
    Validate {
        /// Pipeline files to check.
        #[arg(required = true, value_name = "PIPELINE.yaml")]
        files: Vec<PathBuf>,
    },
    /// Print a pipeline's graph as a Mermaid flowchart.
    Graph {
        /// Pipeline file.
        #[arg(value_name = "PIPELINE.yaml")]
        file: PathBuf,
    },
    /// Run the demo: an embedded MQTT broker, a sensor simulator, sample
    /// store camera frames, a till simulator and the factory and retail
    /// pipelines with the real models, printing insights as they come.
    Demo(demo::DemoArgs),
    /// Publish simulated factory telemetry to an MQTT broker.
    Simulate(simulate::SimulateOpts),
    /// Publish the till scans of a checkout scenario to an MQTT broker.
    SimulatePos(simulate::pos::PosOpts),
    /// Replay labelled CSV files through an `anomaly` transform and report
    /// precision, recall, F1 and detection delay.
    EvalAnomaly(eval_anomaly::EvalArgs),
    /// Fit the `anomaly` transform's PCA T²+Q model on the first rows of a CSV file.
    Fit(fit::FitArgs),
    /// Inspect a store-and-forward outbox file (read-only).
    #[command(subcommand)]
    Outbox(outbox::OutboxCmd),
}

/// Options of `sluice run`.
#[derive(Debug, Args)]
struct RunArgs {
    /// Pipeline files; each runs as an independent pipeline named after its file.
    #[arg(required = true, value_name = "PIPELINE.yaml")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

/// Runtime knobs shared by `run` and `demo`.
#[derive(Debug, Clone, Args)]
struct RuntimeArgs {
    /// Address of the admin HTTP server (/healthz, /readyz, /metrics, /status).
    #[arg(
        long,
        env = "SLUICE_ADMIN",
        default_value = "127.0.0.1:9464",
        value_name = "ADDR"
    )]
    admin: SocketAddr,
    /// Do not start the admin HTTP server.
    #[arg(long)]
    no_admin: bool,
    /// How long a shutdown may take to drain in-flight data before components
    /// are aborted (kept below Kubernetes' default 30 s grace period).
    #[arg(long, env = "SLUICE_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = parse_duration, value_name = "DURATION")]
    shutdown_timeout: Duration,
    /// On exit, write the final metrics (Prometheus text) to this file: what
    /// every component received, sent and dropped up to the last drained batch.
    #[arg(long, value_name = "PATH")]
    metrics_dump: Option<PathBuf>,
    /// Log format on stderr. Level comes from RUST_LOG (default `info`).
    #[arg(long, env = "SLUICE_LOG_FORMAT", default_value = "text", value_enum)]
    log_format: logging::LogFormat,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    s.parse::<sluice_core::HumanDuration>().map(|d| d.get())
}

fn main() -> ExitCode {
    malloc::tune();
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { files } => validate::validate(&files),
        Command::Graph { file } => validate::graph(&file),
        Command::Outbox(cmd) => match outbox::run(cmd) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Run(args) => {
            logging::init(args.runtime.log_format);
            run::block_on(run::run(args.files, args.runtime))
        }
        Command::Demo(args) => {
            logging::init(args.runtime.log_format);
            run::block_on(demo::demo(args))
        }
        Command::EvalAnomaly(args) => run::block_on(eval_anomaly::run(args)),
        Command::Fit(args) => fit::main(args),
        Command::Simulate(opts) => until_signal(|shutdown| async move {
            let stats = simulate::run(opts, shutdown).await?;
            tracing::info!(%stats, "Simulation finished.");
            Ok(ExitCode::SUCCESS)
        }),
        Command::SimulatePos(opts) => until_signal(|shutdown| async move {
            let sent = simulate::pos::run(opts, shutdown).await?;
            tracing::info!(sent, "Till simulation finished.");
            Ok(ExitCode::SUCCESS)
        }),
    }
}

/// Runs a simulator with text logs until it ends or SIGTERM/SIGINT cancels
/// the token it is given.
fn until_signal<F, Fut>(f: F) -> ExitCode
where
    F: FnOnce(tokio_util::sync::CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<ExitCode>>,
{
    logging::init(logging::LogFormat::Text);
    run::block_on(async move {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            run::shutdown_signal().await;
            stop.cancel();
        });
        f(shutdown).await
    })
}
