//! The default decisions (per-key likelihood, incidents) with the shipped
//! univariate model: one incident per episode, none on noisy normal data.

use sluice_core::arrow_array::Array;
use sluice_core::arrow_array::cast::AsArray;

use super::*;

const N: usize = 6000;
const AT: usize = 4000;

/// Per output row: (incident_start, incident_end, incident_id).
type Marks = Vec<(Option<bool>, Option<bool>, Option<String>)>;

fn marks(batches: &[RecordBatch]) -> Marks {
    let mut out = Vec::new();
    for b in batches {
        let start = b
            .column_by_name(INCIDENT_START_COLUMN)
            .unwrap()
            .as_boolean();
        let end = b.column_by_name(INCIDENT_END_COLUMN).unwrap().as_boolean();
        let id = b
            .column_by_name(INCIDENT_ID_COLUMN)
            .unwrap()
            .as_string::<i32>();
        for i in 0..b.num_rows() {
            out.push((
                start.is_valid(i).then(|| start.value(i)),
                end.is_valid(i).then(|| end.value(i)),
                id.is_valid(i).then(|| id.value(i).to_owned()),
            ));
        }
    }
    out
}

fn openings(m: &Marks) -> Vec<usize> {
    m.iter()
        .enumerate()
        .filter(|(_, (s, _, _))| *s == Some(true))
        .map(|(i, _)| i)
        .collect()
}

async fn run_default(device: &str, values: Vec<f64>) -> Marks {
    let cfg = config(&univariate_yaml(""));
    let mut h = harness(&cfg, schema(&["value"]), None);
    marks(&h.run_batches(device, &[values], 200).await)
}

/// Noise with heavy tails: mostly sd 1, now and then sd 4.
fn heavy_tailed(n: usize, seed: u64) -> Vec<f64> {
    let mut noise = Noise(seed);
    (0..n)
        .map(|i| {
            let wide = noise.uniform() < 0.05;
            let day = 6.0 * (i as f64 * std::f64::consts::TAU / 288.0).sin();
            100.0 + day + noise.normal() * if wide { 4.0 } else { 1.0 }
        })
        .collect()
}

/// Heavy-tailed noise plus short spikes that are part of normal operation
/// (a valve that kicks now and then).
fn noisy_with_normal_spikes(n: usize, seed: u64) -> Vec<f64> {
    let mut v = heavy_tailed(n, seed);
    let mut noise = Noise(seed ^ 0xABCD);
    let mut next = 40;
    while next < n {
        v[next] += 15.0 + 5.0 * noise.uniform();
        next += 60 + (noise.uniform() * 120.0) as usize;
    }
    v
}

/// The spikes recur every 60-180 rows: after the first few the key counts
/// as spiky, so a lone high row is ordinary for it.
#[tokio::test]
async fn noisy_series_with_normal_spikes_opens_no_incident() {
    for seed in [21, 22, 23] {
        let m = run_default("pump-1", noisy_with_normal_spikes(N, seed)).await;
        assert_eq!(m.len(), N);
        assert!(openings(&m).is_empty(), "seed {seed}: {:?}", openings(&m));
    }
}

/// Over six noise seeds, every shift opens exactly one incident within 30
/// rows: the incident's close moves the key's baseline to the new level.
#[tokio::test]
async fn a_level_shift_opens_exactly_one_incident_early() {
    for seed in 31..37 {
        let mut v = sine(N, seed);
        for x in &mut v[AT..] {
            *x += 25.0;
        }
        let m = run_default("pump-1", v).await;
        let o = openings(&m);
        assert_eq!(o.len(), 1, "seed {seed}: {o:?}");
        assert!((AT..AT + 30).contains(&o[0]), "seed {seed}: {o:?}");
    }
}

#[tokio::test]
async fn a_stuck_sensor_opens_exactly_one_incident() {
    let mut v = sine(N, 32);
    let stuck = v[AT - 1];
    for x in &mut v[AT..AT + 600] {
        *x = stuck;
    }
    let m = run_default("pump-1", v).await;
    let o = openings(&m);
    assert_eq!(o.len(), 1, "{o:?}");
    assert!((AT..AT + 60).contains(&o[0]), "{o:?}");
}

/// Up a tenth of the noise a row for 300 rows, then holding: one incident,
/// opened within 150 rows of the start.
#[tokio::test]
async fn a_drift_opens_exactly_one_incident_early() {
    let mut v = sine(N, 33);
    for (k, x) in v[AT..].iter_mut().enumerate() {
        *x += 0.1 * k.min(300) as f64;
    }
    let m = run_default("pump-1", v).await;
    let o = openings(&m);
    assert_eq!(o.len(), 1, "{o:?}");
    assert!((AT..AT + 150).contains(&o[0]), "{o:?}");
}

#[tokio::test]
async fn an_incident_closes_with_its_peak_and_duration() {
    let mut v = sine(N, 34);
    for x in &mut v[AT..AT + 50] {
        *x += 30.0;
    }
    let cfg = config(&univariate_yaml(""));
    let mut h = harness(&cfg, schema(&["value"]), None);
    let batches = h.run_batches("pump-7", &[v], 200).await;
    let m = marks(&batches);
    let o = openings(&m);
    assert_eq!(o.len(), 1, "{o:?}");
    let id = m[o[0]].2.clone().unwrap();
    assert_eq!(id, format!("pump-7@{}", o[0] * 1000));
    let close = (o[0]..N).find(|&i| m[i].1 == Some(true)).unwrap();
    assert!(close > AT + 50 && close < AT + 400, "closed at {close}");
    assert!(m[o[0]..=close].iter().all(|r| r.2.as_deref() == Some(&id)));
    assert!(m[close + 1..].iter().all(|r| r.2.is_none()));
    let row = |col: &str| -> (Option<f64>, Option<i64>) {
        let mut seen = 0;
        for b in &batches {
            if close < seen + b.num_rows() {
                let i = close - seen;
                let peak = b.column_by_name(col).unwrap();
                let dur = b
                    .column_by_name(INCIDENT_DURATION_COLUMN)
                    .unwrap()
                    .as_primitive::<sluice_core::arrow_array::types::Int64Type>();
                let peak = peak.as_primitive::<Float64Type>();
                return (
                    peak.is_valid(i).then(|| peak.value(i)),
                    dur.is_valid(i).then(|| dur.value(i)),
                );
            }
            seen += b.num_rows();
        }
        (None, None)
    };
    let (peak, duration) = row(INCIDENT_PEAK_COLUMN);
    assert!(peak.is_some_and(|p| p > 0.9), "{peak:?}");
    assert_eq!(duration, Some((close - o[0]) as i64 * 1000));
}

#[tokio::test]
async fn incidents_of_different_keys_do_not_interfere() {
    let mut faulty = sine(N, 35);
    for x in &mut faulty[AT..] {
        *x += 25.0;
    }
    let alone = run_default("pump-a", faulty.clone()).await;
    // Interleave the faulty key with a clean one, 100 rows each per batch.
    let cfg = config(&univariate_yaml(""));
    let mut h = harness(&cfg, schema(&["value"]), None);
    let clean = sine(N, 36);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for start in (0..N).step_by(100) {
        let part = |v: &[f64]| vec![v[start..start + 100].to_vec()];
        let ba = batch(&h.schema, "pump-a", start, &part(&faulty));
        let bb = batch(&h.schema, "pump-b", start, &part(&clean));
        for (bt, sink) in [(ba, &mut a), (bb, &mut b)] {
            h.t.push_rows(bt).await.unwrap();
            sink.extend(h.t.drain_rows());
        }
    }
    assert_eq!(marks(&a), alone);
    assert!(!openings(&alone).is_empty());
    assert!(openings(&marks(&b)).is_empty());
}
