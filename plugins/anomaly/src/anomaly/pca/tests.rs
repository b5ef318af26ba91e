use super::rig::Rng;
use super::*;

/// `n` rows of 3 features driven by one latent variable `s ~ N(0, 1)`:
/// `(s, 2 s, -s)` plus independent noise of standard deviation `noise`.
fn one_latent(n: usize, noise: f64, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..n)
        .flat_map(|_| {
            let s = rng.normal();
            [
                s + noise * rng.normal(),
                2.0 * s + noise * rng.normal(),
                -s + noise * rng.normal(),
            ]
        })
        .collect()
}

fn options() -> FitOptions {
    FitOptions {
        smooth: 1,
        ..FitOptions::default()
    }
}

#[test]
fn recovers_one_component_from_three_correlated_features() {
    let model = PcaModel::fit(&one_latent(500, 0.05, 1), 3, &options()).unwrap();
    assert_eq!(model.components(), 1);
    assert!(model.explained_variance() > 0.99);
    // All standardised features load equally (up to sign) on the latent one.
    let p = model.component_matrix();
    let expected = 1.0 / 3f64.sqrt();
    assert!((p[0].abs() - expected).abs() < 0.01, "{p:?}");
    assert!((p[1].abs() - expected).abs() < 0.01, "{p:?}");
    assert!((p[2].abs() - expected).abs() < 0.01, "{p:?}");
    assert_eq!(p[0].signum(), p[1].signum());
    assert_eq!(p[0].signum(), -p[2].signum());
    let eig = model.eigenvalues();
    assert!((eig.iter().sum::<f64>() - 3.0).abs() < 1e-9);
    assert!(eig[0] > 2.9 && eig[1] < 0.01 && eig[2] < 0.01, "{eig:?}");
}

#[test]
fn breaking_the_correlation_raises_q_but_moving_along_it_does_not() {
    let model = PcaModel::fit(&one_latent(500, 0.05, 2), 3, &options()).unwrap();
    let along = model.score(&[1.5, 3.0, -1.5]);
    assert!(along.ratio < 1.0, "{along:?}");
    let broken = model.score(&[1.5, -3.0, -1.5]);
    assert!(broken.q / model.q_limit() > 100.0, "{broken:?}");
    assert!(broken.ratio > 100.0);
}

#[test]
fn a_row_far_along_the_component_raises_t2_not_q() {
    let model = PcaModel::fit(&one_latent(500, 0.05, 3), 3, &options()).unwrap();
    let far = model.score(&[8.0, 16.0, -8.0]);
    assert!(far.t2 / model.t2_limit() > 5.0, "{far:?}");
    assert!(far.q / model.q_limit() < 1.0, "{far:?}");
    assert_eq!(far.ratio, far.t2 / model.t2_limit());
}

#[test]
fn empirical_limits_are_the_quantiles_of_the_fit_rows() {
    let rows = one_latent(400, 0.2, 4);
    for (quantile, margin) in [(0.99, 1.0), (0.9, 1.0), (0.95, 1.5)] {
        let opts = FitOptions {
            quantile,
            margin,
            limits: LimitMethod::Empirical,
            ..options()
        };
        let model = PcaModel::fit(&rows, 3, &opts).unwrap();
        let mut scores = vec![Score::default(); 400];
        model.score_batch(&rows, &mut scores);
        let mut t2: Vec<f64> = scores.iter().map(|s| s.t2).collect();
        let mut q: Vec<f64> = scores.iter().map(|s| s.q).collect();
        t2.sort_by(f64::total_cmp);
        q.sort_by(f64::total_cmp);
        // Type-7 quantile: position (n - 1) q between order statistics.
        let h = 399.0 * quantile;
        let at = |v: &[f64]| {
            let lo = h as usize;
            v[lo] + (h - lo as f64) * (v[lo + 1] - v[lo])
        };
        assert!((model.t2_limit() - margin * at(&t2)).abs() < 1e-9 * model.t2_limit());
        assert!((model.q_limit() - margin * at(&q)).abs() < 1e-9 * model.q_limit());
        // With margin 1, 1 - quantile of the fit rows lie above each limit.
        if margin == 1.0 {
            let above = t2.iter().filter(|&&v| v > model.t2_limit()).count();
            assert_eq!(above, 399 - h.floor() as usize);
        }
    }
}

#[test]
fn parametric_limits_follow_the_f_and_jackson_mudholkar_formulas() {
    let opts = FitOptions {
        limits: LimitMethod::Parametric,
        quantile: 0.99,
        margin: 1.0,
        ..options()
    };
    let model = PcaModel::fit(&one_latent(400, 0.2, 5), 3, &opts).unwrap();
    assert_eq!(model.components(), 1);
    // k = 1, n = 400: 399 * 401 / (400 * 399) * F(0.99; 1, 399) = 1.0025 * 6.6966.
    assert!(
        (model.t2_limit() - 1.0025 * 6.6966).abs() < 0.02,
        "{}",
        model.t2_limit()
    );
    let resid = &model.eigenvalues()[1..];
    let (t1, t2) = (resid[0] + resid[1], resid[0].powi(2) + resid[1].powi(2));
    // Q over the two discarded components is close to (t2 / t1) chi2(t1² / t2).
    assert!(
        model.q_limit() > t1 && model.q_limit() < 6.0 * t1,
        "{}",
        model.q_limit()
    );
    assert!(t2 > 0.0);
}

#[test]
fn save_and_load_give_the_same_scores() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.json");
    let rows = one_latent(300, 0.1, 6);
    let model = PcaModel::fit(&rows, 3, &FitOptions::default())
        .unwrap()
        .with_features(vec!["a".into(), "b".into(), "c".into()])
        .unwrap();
    model.save(&path).unwrap();
    let loaded = PcaModel::load(&path).unwrap();
    assert_eq!(loaded.features(), ["a", "b", "c"]);
    assert_eq!(loaded.options(), model.options());
    assert_eq!(loaded.components(), model.components());
    for row in rows.chunks_exact(3).chain([[5.0, -1.0, 2.0].as_slice()]) {
        let (a, b) = (model.score(row), loaded.score(row));
        for (x, y) in [(a.t2, b.t2), (a.q, b.q), (a.ratio, b.ratio)] {
            assert!(
                (x - y).abs() <= 1e-12 * x.abs().max(1e-12),
                "{a:?} vs {b:?}"
            );
        }
    }
    // Only the model file is left: the temporary file was renamed over it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["model.json"]);
    assert!(matches!(ModelFile::load(&path).unwrap(), ModelFile::Single(m) if m == loaded));
}

#[test]
fn keyed_models_round_trip_and_are_told_apart_from_one_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("models.json");
    let mut models = std::collections::BTreeMap::new();
    for (i, key) in ["pump-1", "pump-2"].into_iter().enumerate() {
        let m = PcaModel::fit(&one_latent(200, 0.1, 10 + i as u64), 3, &options()).unwrap();
        models.insert(key.to_owned(), m);
    }
    let keyed = KeyedModels {
        key: "pump".into(),
        models,
    };
    keyed.save(&path).unwrap();
    let loaded = KeyedModels::load(&path).unwrap();
    assert_eq!(loaded.key, "pump");
    assert_eq!(
        loaded.models.keys().collect::<Vec<_>>(),
        ["pump-1", "pump-2"]
    );
    for (key, m) in &keyed.models {
        let row = [0.3, 0.7, -0.2];
        let (a, b) = (m.score(&row).ratio, loaded.models[key].score(&row).ratio);
        assert!((a - b).abs() <= 1e-12 * a, "{key}: {a} vs {b}");
    }
    assert!(matches!(ModelFile::load(&path).unwrap(), ModelFile::Keyed(k) if k == loaded));
    let err = PcaModel::load(&path).unwrap_err().to_string();
    assert!(err.contains("one model per key"), "{err}");
}

#[test]
fn loading_rejects_foreign_newer_and_inconsistent_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.json");
    let model = PcaModel::fit(&one_latent(200, 0.1, 7), 3, &options()).unwrap();
    model.save(&path).unwrap();
    let good: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let load_with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = good.clone();
        edit(&mut v);
        std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        PcaModel::load(&path).unwrap_err().to_string()
    };
    let e = load_with(&|v| v["format"] = "onnx".into());
    assert!(e.contains("`format` is `onnx`"), "{e}");
    let e = load_with(&|v| v["version"] = 2.into());
    assert!(e.contains("version 2 is not supported"), "{e}");
    let e = load_with(&|v| v["mean"] = serde_json::json!([0.0, 1.0]));
    assert!(e.contains("`mean` has 2 values, expected 3"), "{e}");
    let e = load_with(&|v| v["scale"][1] = (-1.0).into());
    assert!(e.contains("`scale`[1]"), "{e}");
    let e = load_with(&|v| v["components"][0][0] = 3.0.into());
    assert!(e.contains("`components`[0] has length"), "{e}");
    let e = load_with(&|v| v["q_limit"] = 0.0.into());
    assert!(e.contains("`q_limit` is 0"), "{e}");
    let e = load_with(&|v| v["extra"] = 1.into());
    assert!(e.contains("unknown field `extra`"), "{e}");
    std::fs::write(&path, "{ not json").unwrap();
    let e = PcaModel::load(&path).unwrap_err().to_string();
    assert!(e.contains("line 1 column"), "{e}");
    let e = PcaModel::load(&dir.path().join("missing.json"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("reading "), "{e}");
}

#[test]
fn bad_input_gets_clear_errors() {
    let opts = options();
    assert_eq!(PcaModel::fit(&[], 0, &opts), Err(FitError::NoFeatures));
    assert_eq!(
        PcaModel::fit(&[1.0; 7], 3, &opts),
        Err(FitError::Shape { len: 7, d: 3 })
    );
    let e = PcaModel::fit(&one_latent(19, 0.1, 1), 3, &opts).unwrap_err();
    assert_eq!(
        e,
        FitError::TooFewRows {
            n: 19,
            d: 3,
            need: 20
        }
    );
    assert!(e.to_string().contains("need at least 20"), "{e}");
    let wide = vec![0.5; 30 * 20];
    assert_eq!(
        PcaModel::fit(&wide, 20, &opts),
        Err(FitError::TooFewRows {
            n: 30,
            d: 20,
            need: 40
        })
    );
    let mut rows = one_latent(50, 0.1, 1);
    rows[3 * 7 + 2] = f64::NAN;
    let e = PcaModel::fit_named(&rows, &["a".into(), "b".into(), "c".into()], &opts).unwrap_err();
    assert!(
        matches!(&e, FitError::NonFinite { row: 7, feature, .. } if feature == "c"),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "fit row 7, feature `c`: NaN is not a finite number"
    );
    assert_eq!(
        PcaModel::fit(&[4.0; 60], 3, &opts),
        Err(FitError::AllConstant { n: 20 })
    );
    let e = PcaModel::fit(
        &one_latent(50, 0.1, 1),
        3,
        &FitOptions {
            variance: 1.5,
            ..opts
        },
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("option `variance`"), "{e}");
    let e = PcaModel::fit_named(
        &one_latent(50, 0.1, 1),
        &["a".into(), "b".into(), "a".into()],
        &opts,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "feature names: `a` appears twice");
}

#[test]
fn a_constant_feature_is_reported_and_flags_when_it_moves() {
    let rows: Vec<f64> = one_latent(200, 0.1, 8)
        .chunks_exact(3)
        .flat_map(|r| [r[0], r[1], 230.0])
        .collect();
    let model = PcaModel::fit(&rows, 3, &options()).unwrap();
    assert_eq!(model.constant_features(), ["x2"]);
    assert!((model.scale()[2] - 0.023).abs() < 1e-12);
    assert!(model.score(&[0.5, 1.0, 230.0]).ratio < 1.0);
    assert!(model.score(&[0.5, 1.0, 231.0]).ratio > 1.0);
}

#[test]
fn keeps_at_most_d_minus_one_components_and_at_least_one() {
    let mut rng = Rng::new(9);
    let noise: Vec<f64> = (0..4 * 300).map(|_| rng.normal()).collect();
    let all = FitOptions {
        variance: 1.0,
        ..options()
    };
    assert_eq!(PcaModel::fit(&noise, 4, &all).unwrap().components(), 3);
    let few = FitOptions {
        variance: 0.01,
        ..options()
    };
    assert_eq!(PcaModel::fit(&noise, 4, &few).unwrap().components(), 1);
    let single: Vec<f64> = (0..50).map(|i| i as f64).collect();
    let model = PcaModel::fit(&single, 1, &options()).unwrap();
    assert_eq!(model.components(), 1);
    assert_eq!(model.score(&[25.0]).q, 0.0);
    assert!(model.score(&[500.0]).ratio > 1.0);
}

#[test]
fn the_smoother_averages_the_last_ratios() {
    let mut s = RatioSmoother::new(4);
    assert_eq!(s.push(4.0), 4.0);
    assert_eq!(s.push(2.0), 3.0);
    assert_eq!(s.push(0.0), 2.0);
    assert_eq!(s.push(2.0), 2.0);
    // The window is full: 4.0 leaves.
    assert_eq!(s.push(0.0), 1.0);
    assert!(s.push(f64::NAN).is_nan());
    assert_eq!(s.push(6.0), 2.0);
    s.reset();
    assert_eq!(s.push(7.0), 7.0);
    let mut one = RatioSmoother::new(1);
    assert_eq!(one.push(4.0), 4.0);
    assert_eq!(one.push(0.5), 0.5);
    assert_eq!(RatioSmoother::new(1000), RatioSmoother::new(MAX_SMOOTH));
}

#[test]
fn scores_match_a_direct_computation_with_few_and_many_components() {
    let mut rng = Rng::new(11);
    for d in [6, 20] {
        let rows: Vec<f64> = (0..d * 120).map(|_| rng.normal()).collect();
        let all = FitOptions {
            variance: 1.0,
            ..options()
        };
        let model = PcaModel::fit(&rows, d, &all).unwrap();
        assert_eq!(model.components(), d - 1);
        let row: Vec<f64> = (0..d).map(|j| j as f64 * 0.3 - 1.0).collect();
        let z: Vec<f64> = (0..d)
            .map(|j| (row[j] - model.mean()[j]) / model.scale()[j])
            .collect();
        let p = model.component_matrix();
        let t: Vec<f64> = p
            .chunks_exact(d)
            .map(|c| c.iter().zip(&z).map(|(a, b)| a * b).sum())
            .collect();
        let t2: f64 = t
            .iter()
            .zip(model.eigenvalues())
            .map(|(t, l)| t * t / l)
            .sum();
        let q: f64 = (0..d)
            .map(|j| z[j] - (0..d - 1).map(|c| t[c] * p[c * d + j]).sum::<f64>())
            .map(|r| r * r)
            .sum();
        let s = model.score(&row);
        assert!((s.t2 - t2).abs() < 1e-9 * t2, "d {d}: {s:?} vs {t2}");
        assert!((s.q - q).abs() < 1e-9 * q.max(1e-9), "d {d}: {s:?} vs {q}");
    }
}
