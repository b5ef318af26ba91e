//! `sluice validate` and `sluice graph`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Checks every file and prints all diagnostics; non-zero exit on any error.
pub fn validate(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for f in files {
        match crate::run::load_reporting(f) {
            Some(p) => eprintln!(
                "{}: ok ({} sources, {} transforms, {} sinks)",
                f.display(),
                p.sources.len(),
                p.transforms.len(),
                p.sinks.len()
            ),
            None => failed = true,
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints the Mermaid graph of a pipeline on stdout.
pub fn graph(file: &Path) -> ExitCode {
    match sluice_config::load_file::<crate::Catalog>(file) {
        Ok(p) => match writeln!(std::io::stdout().lock(), "{}", sluice_config::mermaid(&p)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: writing to stdout: {e}");
                ExitCode::FAILURE
            }
        },
        Err(diags) => {
            eprintln!("{diags}");
            ExitCode::FAILURE
        }
    }
}
