//! `fit:` of the `anomaly` transform on the simulator's multi-sensor line:
//! each device learns from its first 10 minutes of healthy readings, then
//! runs an hour healthy and an hour with the scheduled faults.

use std::sync::Arc;

use sluice_core::arrow_array::cast::AsArray;
use sluice_core::arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
use sluice_core::arrow_array::{TimestampMillisecondArray, types::Float64Type};
use sluice_core::arrow_schema::{DataType, Field, Schema, SchemaRef};
use sluice_core::metrics::{ComponentKind, ComponentLabels};
use sluice_core::schema::{TIMESTAMP_MS, with_event_time};
use sluice_core::{
    BuildCx, ComponentMetrics, Delivery, EdgeMetrics, Emitter, Msg, Output, Transform,
    TransformConfig, WhenFull,
};
use sluice_plugin_anomaly::AnomalyConfig;
use tokio::sync::mpsc;

use super::generator::Generator;

const DEVICES: usize = 4;
const RATE: f64 = 2.0;
const FIT_ROWS: u64 = 1200; // 10 minutes at 2 rows/s
const HOUR: u64 = 7200;

fn schema() -> SchemaRef {
    Arc::new(with_event_time(
        Schema::new(vec![
            Field::new("device", DataType::Utf8, false),
            Field::new("ts", TIMESTAMP_MS, false),
            Field::new("vibration_rms", DataType::Float64, false),
            Field::new("temperature", DataType::Float64, false),
            Field::new("current", DataType::Float64, false),
        ]),
        "ts",
    ))
}

/// Per output row: (device, step, incident_start).
type Out = Vec<(usize, u64, bool)>;

/// Feeds `steps` of every device (one batch per step range of 100) and
/// returns each row's incident opening. `gen_at(step)` picks the generator.
async fn replay(
    t: &mut impl Transform,
    emitter: &mut Emitter,
    rx: &mut mpsc::Receiver<Delivery>,
    gens: &dyn Fn(u64) -> Generator,
    steps: std::ops::Range<u64>,
) -> Out {
    let schema = schema();
    let mut out = Out::new();
    let mut start = steps.start;
    while start < steps.end {
        let end = (start + 100).min(steps.end);
        let mut dev = Vec::new();
        let mut ts = Vec::new();
        let (mut vib, mut temp, mut cur) = (Vec::new(), Vec::new(), Vec::new());
        for step in start..end {
            let g = gens(step);
            for d in 0..DEVICES {
                let r = g.reading(d, step);
                dev.push(format!("dev-{d}"));
                ts.push((step as f64 / RATE * 1000.0) as i64);
                vib.push(r.vibration_rms);
                temp.push(r.temperature);
                cur.push(r.current);
            }
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(dev)),
            Arc::new(TimestampMillisecondArray::from(ts)),
            Arc::new(Float64Array::from(vib)),
            Arc::new(Float64Array::from(temp)),
            Arc::new(Float64Array::from(cur)),
        ];
        let b = RecordBatch::try_new(schema.clone(), cols).unwrap();
        t.process(Msg::Rows(b), emitter).await.unwrap();
        while let Ok(Delivery {
            msg: Msg::Rows(o), ..
        }) = rx.try_recv()
        {
            let d = o.column_by_name("device").unwrap().as_string::<i32>();
            let ts = o.column_by_name("ts").unwrap();
            let ts = sluice_core::arrow_array::cast::as_primitive_array::<
                sluice_core::arrow_array::types::TimestampMillisecondType,
            >(ts);
            let s = o.column_by_name("incident_start").unwrap().as_boolean();
            let score = o
                .column_by_name("anomaly_score")
                .unwrap()
                .as_primitive::<Float64Type>();
            for i in 0..o.num_rows() {
                let device: usize = d.value(i)["dev-".len()..].parse().unwrap();
                let step = (ts.value(i) as f64 / 1000.0 * RATE).round() as u64;
                assert_eq!(score.is_valid(i), step >= FIT_ROWS, "step {step}");
                out.push((device, step, s.is_valid(i) && s.value(i)));
            }
        }
        start = end;
    }
    out
}

#[tokio::test]
async fn devices_fitted_on_ten_healthy_minutes_alert_on_faults_not_on_health() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "inputs: [telemetry]\nkey: device\nfeatures: [vibration_rms, temperature, current]\nfit: {{ rows: {FIT_ROWS}, dir: {} }}\n",
        dir.path().display()
    );
    let cfg: AnomalyConfig = serde_saphyr::from_str(&yaml).unwrap();
    let labels = ComponentLabels::new("line", "scored", ComponentKind::Transform, "anomaly");
    let metrics = ComponentMetrics::new(labels);
    let cx = BuildCx {
        pipeline: "line".into(),
        id: "scored".into(),
        inputs: sluice_core::InputSchema::only(schema()),
        metrics: metrics.clone(),
    };
    let mut t = cfg.build(&cx).unwrap();
    let (tx, mut rx) = mpsc::channel(1024);
    let mut emitter = Emitter::new(
        vec![Output {
            tx,
            when_full: WhenFull::Block,
            edge: EdgeMetrics::new("line", "scored", "out"),
        }],
        metrics,
    );
    let seed = 42;
    let healthy = Generator::new(seed, DEVICES, RATE, false);
    let faulty = Generator::new(seed, DEVICES, RATE, true);
    // Ten minutes of fitting and an hour of health.
    let calm = replay(
        &mut t,
        &mut emitter,
        &mut rx,
        &|_| healthy.clone(),
        0..FIT_ROWS + HOUR,
    )
    .await;
    let false_alerts = calm.iter().filter(|r| r.2).count();
    let scored = calm.iter().filter(|r| r.1 >= FIT_ROWS).count();
    let per_10k = false_alerts as f64 * 1e4 / scored as f64;
    // Every device saved its model.
    for d in 0..DEVICES {
        assert!(
            dir.path()
                .join(format!("line/scored/dev-{d}.json"))
                .is_file()
        );
    }
    // Then an hour with the fault schedule (faults are placed by simulated
    // time, so they start where the healthy hour ended).
    let end = FIT_ROWS + 2 * HOUR;
    let busy = replay(
        &mut t,
        &mut emitter,
        &mut rx,
        &|_| faulty.clone(),
        FIT_ROWS + HOUR..end,
    )
    .await;
    // Fault episodes per device and whether an incident opened during one
    // (or within 10 s after its end, while its effect fades).
    let mut episodes = 0;
    let mut detected = 0;
    let mut outside = 0;
    let in_fault = |d: usize, step: u64, grace: f64| {
        let t = step as f64 / RATE;
        (0..=(grace * RATE) as u64)
            .any(|back| step >= back && faulty.fault_at(d, t - back as f64 / RATE).is_some())
    };
    for d in 0..DEVICES {
        let mut prev = false;
        let mut hit = false;
        for step in FIT_ROWS + HOUR..end {
            let now = faulty.fault_at(d, step as f64 / RATE).is_some();
            if now && !prev {
                episodes += 1;
                hit = false;
            }
            if now
                && !hit
                && busy
                    .iter()
                    .any(|r| r.0 == d && r.2 && r.1 >= step && r.1 <= step + 20)
            {
                hit = true;
                detected += 1;
            }
            prev = now;
        }
        outside += busy
            .iter()
            .filter(|r| r.0 == d && r.2 && !in_fault(d, r.1, 10.0))
            .count();
    }
    eprintln!(
        "healthy hour: {false_alerts} incidents in {scored} rows ({per_10k:.2} per 10,000 rows); \
         faulty hour: {detected} of {episodes} fault episodes opened an incident, \
         {outside} incidents outside a fault"
    );
    assert!(
        per_10k <= 1.0,
        "{false_alerts} false alerts in {scored} rows"
    );
    // Measured: 73 of 150. Faults come every 96 s per device on average
    // and the 150-row (75 s) cool-down holds back openings on the next one;
    // a 1 s spike is also shorter than the 5-row smoothing.
    assert!(
        detected * 10 >= episodes * 4,
        "{detected} of {episodes} episodes"
    );
    assert!(
        outside <= episodes / 10,
        "{outside} incidents outside a fault"
    );
}
