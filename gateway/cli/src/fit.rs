//! `sluice fit`: fits the `anomaly` transform's PCA T²+Q model on the first
//! rows of a CSV file, offline, and writes the model file the transform
//! loads.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use sluice_plugin_anomaly::anomaly::pca::{
    FORMAT, FORMAT_KEYED, FitOptions, FitRows, KeyedModels, LimitMethod, PcaModel, read_fit_csv,
};

/// Options of `sluice fit`.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// The CSV file (delimiter `,`, `;` or tab, with a header line).
    #[arg(value_name = "DATA.csv")]
    data: PathBuf,
    /// Feature columns, comma-separated, in the order rows are scored.
    #[arg(long, required = true, value_delimiter = ',', value_name = "A,B,...")]
    features: Vec<String>,
    /// Column naming the series (e.g. the machine): one model is fitted per
    /// value, and all are written to one `sluice-pca-keyed` file.
    #[arg(long, value_name = "COLUMN")]
    key: Option<String>,
    /// Fit on the first ROWS rows of the file (of each key with --key);
    /// every series must have that many. Default: all rows.
    #[arg(long, value_name = "ROWS")]
    rows: Option<usize>,
    /// Fraction of the standardised variance the kept components explain.
    #[arg(long, default_value_t = FitOptions::default().variance, value_name = "FRACTION")]
    variance: f64,
    /// Quantile (confidence) of the T² and Q control limits.
    #[arg(long, default_value_t = FitOptions::default().quantile, value_name = "Q")]
    quantile: f64,
    /// Factor applied to both control limits.
    #[arg(long, default_value_t = FitOptions::default().margin, value_name = "M")]
    margin: f64,
    /// How the limits are set: `parametric` (F distribution for T²,
    /// Jackson-Mudholkar for Q) or `empirical` (quantiles of the fit rows).
    #[arg(long, value_enum, default_value_t = Limits::Parametric)]
    limits: Limits,
    /// Rows whose ratios the transform averages before deciding.
    #[arg(long, default_value_t = FitOptions::default().smooth, value_name = "ROWS")]
    smooth: usize,
    /// The model file to write (replaced atomically).
    #[arg(short, long, value_name = "MODEL.json")]
    output: PathBuf,
}

/// How the control limits are set.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Limits {
    Parametric,
    Empirical,
}

/// Runs `sluice fit`, printing a summary on stdout and any error on stderr.
pub fn main(args: FitArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: FitArgs) -> anyhow::Result<()> {
    let options = FitOptions {
        variance: args.variance,
        quantile: args.quantile,
        margin: args.margin,
        limits: match args.limits {
            Limits::Parametric => LimitMethod::Parametric,
            Limits::Empirical => LimitMethod::Empirical,
        },
        smooth: args.smooth,
    };
    options.validate()?;
    anyhow::ensure!(args.rows != Some(0), "--rows must be at least 1");
    let series = read_fit_csv(&args.data, &args.features, args.key.as_deref(), args.rows)?;
    let mut out = std::io::stdout().lock();
    let data = args.data.display();
    match &args.key {
        None => {
            let [one] = <[FitRows; 1]>::try_from(series)
                .map_err(|_| anyhow::anyhow!("expected one series without --key"))?;
            let model = PcaModel::fit_named(&one.rows, &args.features, &options)
                .with_context(|| format!("fitting on {data}"))?;
            writeln!(out, "{data}: {}", summary(&model, one.lines))?;
            model.save(&args.output)?;
            writeln!(
                out,
                "wrote {} ({FORMAT}): {}",
                args.output.display(),
                options_line(&options)
            )?;
        }
        Some(key) => {
            let mut models = BTreeMap::new();
            for s in series {
                let value = s.key.unwrap_or_default();
                let model = PcaModel::fit_named(&s.rows, &args.features, &options)
                    .with_context(|| format!("fitting key `{value}` of {data}"))?;
                writeln!(out, "{key} `{value}`: {}", summary(&model, s.lines))?;
                models.insert(value, model);
            }
            let n = models.len();
            KeyedModels {
                key: key.clone(),
                models,
            }
            .save(&args.output)?;
            writeln!(
                out,
                "wrote {} ({FORMAT_KEYED}, {n} keys): {}",
                args.output.display(),
                options_line(&options)
            )?;
        }
    }
    Ok(())
}

fn summary(model: &PcaModel, lines: (u64, u64)) -> String {
    let d = model.features().len();
    let mut s = format!(
        "{} rows (lines {}-{}), {} of {d} components ({:.1} % of the variance), \
         T² limit {:.4}, Q limit {:.4}",
        model.n_rows(),
        lines.0,
        lines.1,
        model.components(),
        100.0 * model.explained_variance(),
        model.t2_limit(),
        model.q_limit(),
    );
    let constant = model.constant_features();
    if !constant.is_empty() {
        s.push_str(&format!(
            "; constant over the fit rows (any move will count): {}",
            constant.join(", ")
        ));
    }
    s
}

fn options_line(o: &FitOptions) -> String {
    let limits = match o.limits {
        LimitMethod::Parametric => "parametric",
        LimitMethod::Empirical => "empirical",
    };
    format!(
        "variance {}, {limits} limits at quantile {} x margin {}, mean of the last {} ratios",
        o.variance, o.quantile, o.margin, o.smooth
    )
}
