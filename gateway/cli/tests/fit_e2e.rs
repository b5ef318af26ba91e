//! End-to-end checks of `sluice fit`: the real binary fits a CSV and the
//! model file it writes loads back and scores.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Output};

use sluice_plugin_anomaly::anomaly::pca::{ModelFile, PcaModel};

/// A deterministic uniform in `[-1, 1)` (an LCG is plenty for test data).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// `rows` rows per pump of `flow`, `pressure`, `current` driven by one load
/// variable plus 2 % noise, pumps interleaved, with a `note` text column.
fn write_csv(path: &Path, pumps: &[&str], rows: usize) {
    let mut rng = Lcg(42);
    let mut text = String::from("time,pump,flow,pressure,current,note\n");
    for i in 0..rows {
        for (p, pump) in pumps.iter().enumerate() {
            let load = 1.0 + 0.2 * rng.next() + 0.1 * p as f64;
            let noise = |rng: &mut Lcg| 1.0 + 0.02 * rng.next();
            writeln!(
                text,
                "{i},{pump},{:.4},{:.4},{:.4},ok",
                32.0 * load * noise(&mut rng),
                0.4 * load * noise(&mut rng),
                0.8 * load * noise(&mut rng),
            )
            .unwrap();
        }
    }
    std::fs::write(path, text).unwrap();
}

fn sluice_fit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("fit")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn fits_one_model_per_key_that_loads_back_and_scores() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("rig.csv");
    let model = dir.path().join("models.json");
    write_csv(&data, &["p1", "p2"], 300);
    let out = sluice_fit(&[
        "--features",
        "flow,pressure,current",
        "--key",
        "pump",
        "--rows",
        "200",
        "-o",
        model.to_str().unwrap(),
        data.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("pump `p1`: 200 rows (lines 2-400), 1 of 3 components"),
        "{stdout}"
    );
    assert!(
        stdout.contains("pump `p2`: 200 rows (lines 3-401), 1 of 3 components"),
        "{stdout}"
    );
    assert!(stdout.contains("(sluice-pca-keyed, 2 keys)"), "{stdout}");

    let ModelFile::Keyed(keyed) = ModelFile::load(&model).unwrap() else {
        panic!("expected one model per key");
    };
    assert_eq!(keyed.key, "pump");
    assert_eq!(keyed.models.keys().collect::<Vec<_>>(), ["p1", "p2"]);
    let p1 = &keyed.models["p1"];
    assert_eq!(p1.features(), ["flow", "pressure", "current"]);
    assert_eq!(p1.n_rows(), 200);
    assert_eq!(p1.components(), 1);
    // Along the load: normal. Flow down while pressure and current go up:
    // the relation is broken.
    assert!(p1.score(&[33.0, 0.4125, 0.825]).ratio < 1.0);
    assert!(p1.score(&[29.0, 0.44, 0.86]).ratio > 10.0);
}

#[test]
fn fits_one_model_on_the_first_rows_of_a_semicolon_file() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rig.csv");
    let data = dir.path().join("rig-semicolon.csv");
    write_csv(&csv, &["p1"], 100);
    std::fs::write(
        &data,
        std::fs::read_to_string(&csv).unwrap().replace(',', ";"),
    )
    .unwrap();
    let model = dir.path().join("model.json");
    let out = sluice_fit(&[
        "--features=flow,pressure,current",
        "--rows=50",
        "--limits=empirical",
        "--margin=1.2",
        "-o",
        model.to_str().unwrap(),
        data.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("50 rows (lines 2-51)"), "{stdout}");
    assert!(
        stdout.contains("empirical limits at quantile 0.99 x margin 1.2"),
        "{stdout}"
    );
    let m = PcaModel::load(&model).unwrap();
    assert_eq!(m.n_rows(), 50);
    assert_eq!(m.options().margin, 1.2);
}

#[test]
fn reports_missing_columns_bad_values_and_too_few_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("rig.csv");
    let model = dir.path().join("m.json");
    let m = model.to_str().unwrap();
    write_csv(&data, &["p1"], 30);
    let d = data.to_str().unwrap();
    let err = |out: Output| {
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    let e = err(sluice_fit(&["--features", "flow,presure", "-o", m, d]));
    assert!(
        e.contains("no column `presure` (columns: time, pump, flow,"),
        "{e}"
    );

    let e = err(sluice_fit(&["--features", "flow,note", "-o", m, d]));
    assert!(
        e.contains("line 2, column `note`: `ok` is not a number"),
        "{e}"
    );

    let e = err(sluice_fit(&[
        "--features",
        "flow,pressure",
        "--rows",
        "40",
        "-o",
        m,
        d,
    ]));
    assert!(e.contains("the file has 30 rows, 40 were asked for"), "{e}");

    let e = err(sluice_fit(&[
        "--features",
        "flow,pressure",
        "--rows",
        "10",
        "-o",
        m,
        d,
    ]));
    assert!(
        e.contains("10 rows are too few to fit 2 features: need at least 20"),
        "{e}"
    );

    let e = err(sluice_fit(&[
        "--features",
        "flow",
        "--variance",
        "2",
        "-o",
        m,
        d,
    ]));
    assert!(e.contains("option `variance`: 2 is not in (0, 1]"), "{e}");
    assert!(!model.exists());
}
