//! Every pipeline file in the repository is checked here:
//! - `tests/config/invalid/*.yaml` state the errors they must produce with
//!   leading `# expect: <line>:<col> <text>` comments; every error must be
//!   expected and every expectation met (`<text>` is a substring of the
//!   rendered diagnostic, message or help);
//! - `tests/config/valid/*.yaml` must load; warnings must be stated with
//!   `# expect-warning: <line>:<col> <text>`;
//! - `pipelines/**/*.yaml` and `examples/**/*.yaml` (except `*.test.yaml`)
//!   must load without errors, so shipped YAML never rots.

#![allow(clippy::unwrap_used)] // helpers abort the test on a malformed fixture header

use std::path::{Path, PathBuf};

use sluice_config::{Diagnostic, load_file};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `*.yaml` files under `dir` (recursively), sorted; none if `dir` is absent.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[derive(Debug)]
struct Expect {
    line: u64,
    column: u64,
    text: String,
}

/// Reads the `# <tag> <line>:<col> <text>` comments of the file's header.
fn expectations(path: &Path, tag: &str) -> Vec<Expect> {
    let text = std::fs::read_to_string(path).unwrap();
    let prefix = format!("# {tag}: ");
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|rest| {
            let (pos, text) = rest.split_once(' ').unwrap_or((rest, ""));
            let (line, column) = pos.split_once(':').unwrap();
            Expect {
                line: line.parse().unwrap(),
                column: column.parse().unwrap(),
                text: text.to_owned(),
            }
        })
        .collect()
}

/// Matches diagnostics against expectations both ways; returns the problems.
fn compare(path: &Path, got: &[&Diagnostic], expected: &[Expect]) -> Vec<String> {
    let mut problems = Vec::new();
    for e in expected {
        let met = got
            .iter()
            .any(|d| d.line == e.line && d.column == e.column && d.to_string().contains(&e.text));
        if !met {
            problems.push(format!(
                "{}: expected {}:{} {:?}, got:\n{}",
                path.display(),
                e.line,
                e.column,
                e.text,
                render(got)
            ));
        }
    }
    for d in got {
        if !expected
            .iter()
            .any(|e| e.line == d.line && e.column == d.column)
        {
            problems.push(format!("{}: unexpected diagnostic:\n{d}", path.display()));
        }
    }
    problems
}

fn render(list: &[&Diagnostic]) -> String {
    list.iter()
        .map(|d| format!("  {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn invalid_fixtures_report_exactly_the_expected_errors() {
    let files = yaml_files(&repo_root().join("tests/config/invalid"));
    assert!(
        files.len() >= 14,
        "expected the invalid fixtures, found {}",
        files.len()
    );
    let mut problems = Vec::new();
    for path in &files {
        let expected = expectations(path, "expect");
        if expected.is_empty() {
            problems.push(format!("{}: has no `# expect:` line", path.display()));
            continue;
        }
        match load_file::<sluice_plugins::Catalog>(path) {
            Ok(_) => problems.push(format!("{}: loaded without errors", path.display())),
            Err(diags) => {
                let errors: Vec<&Diagnostic> = diags.errors().collect();
                problems.extend(compare(path, &errors, &expected));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn valid_fixtures_load_with_only_the_expected_warnings() {
    let files = yaml_files(&repo_root().join("tests/config/valid"));
    assert!(
        files.len() >= 4,
        "expected the valid fixtures, found {}",
        files.len()
    );
    let mut problems = Vec::new();
    for path in &files {
        match load_file::<sluice_plugins::Catalog>(path) {
            Ok(p) => {
                let warnings: Vec<&Diagnostic> = p.warnings.iter().collect();
                problems.extend(compare(
                    path,
                    &warnings,
                    &expectations(path, "expect-warning"),
                ));
            }
            Err(diags) => problems.push(format!("{}: failed to load:\n{diags}", path.display())),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn shipped_pipelines_and_examples_load() {
    let root = repo_root();
    let files: Vec<PathBuf> = ["pipelines", "examples"]
        .iter()
        .flat_map(|d| yaml_files(&root.join(d)))
        .filter(|p| !p.to_string_lossy().ends_with(".test.yaml"))
        .collect();
    // Pipelines name their models relative to `SLUICE_MODELS_DIR`, which
    // defaults to `models` under the working directory, and the demo's
    // sample frames relative to `SLUICE_RETAIL_FRAMES`.
    let models = root.join("models").to_string_lossy().into_owned();
    let frames = root.join("examples/retail").to_string_lossy().into_owned();
    let vars = [
        ("SLUICE_MODELS_DIR", models.as_str()),
        ("SLUICE_RETAIL_FRAMES", frames.as_str()),
    ];
    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| {
            sluice_core::env::with_vars(&vars, || load_file::<sluice_plugins::Catalog>(path))
                .err()
                .map(|d| format!("{d}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
