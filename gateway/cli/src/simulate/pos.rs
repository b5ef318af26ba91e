//! Point-of-sale simulator behind `sluice simulate-pos` and the retail part
//! of `sluice demo`: publishes the scans of a checkout scenario
//! (`examples/retail/scenario.json`) over MQTT, in step with the scenario's
//! camera frames played from the same start.
//!
//! Each scanned item of the scenario becomes one JSON message
//! `{"lane":1,"ts":<ms>,"item_id":1,"item":"coffee cup","receipt":<n>}` on
//! `<prefix>/lane-<lane>/scans`, `scan_offset_s` after the start of each
//! playback loop. Items the scenario marks as not scanned publish nothing:
//! they are the ones a non-scan rule must catch.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::{CONNECT_TIMEOUT, Link, epoch_ms, parse_duration, parse_mqtt_url};

/// Options of the point-of-sale simulator.
#[derive(Debug, Clone, clap::Args)]
pub struct PosOpts {
    /// MQTT broker to publish to, as mqtt://host[:port].
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    pub url: String,
    /// The checkout scenario: which items are put down when, and which of
    /// them the till scans.
    #[arg(
        long,
        default_value = "examples/retail/scenario.json",
        value_name = "FILE"
    )]
    pub scenario: PathBuf,
    /// Topic prefix; scans go to <PREFIX>/lane-<lane>/scans.
    #[arg(long, default_value = "store/pos")]
    pub topic_prefix: String,
    /// Play the scenario this many times (default: until Ctrl-C or
    /// --duration), one loop every `frames / fps` seconds, as the frames
    /// source plays the checkout camera with `loop: true`.
    #[arg(long)]
    pub loops: Option<u64>,
    /// Stop after this long, e.g. 30s.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

/// The parts of `scenario.json` the simulator reads.
#[derive(Debug, Deserialize)]
struct Scenario {
    fps: f64,
    checkout: Checkout,
}

#[derive(Debug, Deserialize)]
struct Checkout {
    lane: i64,
    frames: u64,
    items: Vec<Item>,
}

#[derive(Debug, Deserialize)]
struct Item {
    item_id: i64,
    item: String,
    scanned: bool,
    scan_offset_s: Option<f64>,
}

/// One scan to publish, `offset` after the start of a loop.
#[derive(Debug, Clone, PartialEq)]
struct Scan {
    offset: Duration,
    item_id: i64,
    item: String,
}

/// The scans of one loop in time order, and the loop's length.
fn plan(s: &Scenario) -> anyhow::Result<(Vec<Scan>, Duration)> {
    if !(s.fps.is_finite() && s.fps > 0.0) {
        bail!("`fps` must be a positive number, not {}", s.fps);
    }
    let period = Duration::from_secs_f64(s.checkout.frames as f64 / s.fps);
    let mut scans = Vec::new();
    for item in s.checkout.items.iter().filter(|i| i.scanned) {
        let offset = match item.scan_offset_s {
            Some(o) if o.is_finite() && o >= 0.0 => Duration::from_secs_f64(o),
            other => bail!(
                "item {} is scanned but its `scan_offset_s` is {other:?}, not a time from 0",
                item.item_id
            ),
        };
        if offset >= period {
            bail!(
                "item {} is scanned {offset:?} into a loop that lasts {period:?}",
                item.item_id
            );
        }
        scans.push(Scan {
            offset,
            item_id: item.item_id,
            item: item.item.clone(),
        });
    }
    scans.sort_by_key(|s| s.offset);
    Ok((scans, period))
}

fn load(path: &Path) -> anyhow::Result<Scenario> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Publishes the scenario's scans until `loops`, `duration` or `shutdown`;
/// returns how many scans were published.
pub async fn run(opts: PosOpts, shutdown: CancellationToken) -> anyhow::Result<u64> {
    let scenario = load(&opts.scenario)?;
    let (scans, period) =
        plan(&scenario).with_context(|| format!("in {}", opts.scenario.display()))?;
    let lane = scenario.checkout.lane;
    let topic = format!("{}/lane-{lane}/scans", opts.topic_prefix);

    let (host, port) = parse_mqtt_url(&opts.url)?;
    let mut mqtt = MqttOptions::new(format!("sluice-pos-{}", std::process::id()), host, port);
    mqtt.set_keep_alive(Duration::from_secs(15));
    let (client, eventloop) = AsyncClient::new(mqtt, 64);
    let link = Link::spawn(eventloop);
    let sent = publish(
        &opts, &client, &link, &shutdown, &scans, period, lane, &topic,
    )
    .await;
    let acked = link.finish(&client, *sent.as_ref().unwrap_or(&0)).await;
    let sent = sent?;
    tracing::info!(sent, acked, "point-of-sale simulator stopped");
    Ok(sent)
}

#[allow(clippy::too_many_arguments)]
async fn publish(
    opts: &PosOpts,
    client: &AsyncClient,
    link: &Link,
    shutdown: &CancellationToken,
    scans: &[Scan],
    period: Duration,
    lane: i64,
    topic: &str,
) -> anyhow::Result<u64> {
    tokio::select! {
        _ = shutdown.cancelled() => return Ok(0),
        up = link.connected(CONNECT_TIMEOUT) => {
            up.with_context(|| format!("cannot reach the MQTT broker at {}", opts.url))?;
        }
    }
    tracing::info!(url = %opts.url, %topic, scans_per_loop = scans.len(), ?period, "simulating a till");
    let start = tokio::time::Instant::now();
    let start_ms = epoch_ms();
    let end = opts.duration.map(|d| start + d);
    if scans.is_empty() {
        // Nothing to publish: wait out the run.
        match end {
            Some(end) => tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep_until(end) => {}
            },
            None => shutdown.cancelled().await,
        }
        return Ok(0);
    }
    let mut sent = 0u64;
    for n in 0.. {
        if opts.loops.is_some_and(|l| n >= l) {
            break;
        }
        let loop_start = period * u32::try_from(n).unwrap_or(u32::MAX);
        for scan in scans {
            let at = start + loop_start + scan.offset;
            if end.is_some_and(|e| at > e) {
                return Ok(sent);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(sent),
                _ = tokio::time::sleep_until(at) => {}
            }
            let ts = start_ms + i64::try_from((loop_start + scan.offset).as_millis()).unwrap_or(0);
            let payload = serde_json::json!({
                "lane": lane,
                "ts": ts,
                "item_id": scan.item_id,
                "item": scan.item,
                "receipt": sent + 1,
            })
            .to_string();
            client
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await
                .context("the MQTT client stopped")?;
            sent += 1;
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn scenario(json: &str) -> Scenario {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn plans_the_scanned_items_in_time_order() {
        let s = scenario(
            r#"{"fps": 5, "checkout": {"lane": 1, "frames": 45, "items": [
                {"item_id": 2, "item": "vase", "scanned": true, "scan_offset_s": 2.6},
                {"item_id": 3, "item": "vase", "scanned": false, "scan_offset_s": null},
                {"item_id": 1, "item": "cup", "scanned": true, "scan_offset_s": 0.0}]}}"#,
        );
        let (scans, period) = plan(&s).unwrap();
        assert_eq!(period, Duration::from_secs(9));
        let ids: Vec<i64> = scans.iter().map(|s| s.item_id).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(scans[1].offset, Duration::from_millis(2600));
    }

    #[test]
    fn rejects_a_scan_without_a_time_or_after_the_loop() {
        let no_time = scenario(
            r#"{"fps": 5, "checkout": {"lane": 1, "frames": 10, "items": [
                {"item_id": 7, "item": "cup", "scanned": true, "scan_offset_s": null}]}}"#,
        );
        let err = plan(&no_time).unwrap_err().to_string();
        assert!(err.contains("item 7"), "{err}");
        let late = scenario(
            r#"{"fps": 5, "checkout": {"lane": 1, "frames": 10, "items": [
                {"item_id": 8, "item": "cup", "scanned": true, "scan_offset_s": 2.5}]}}"#,
        );
        let err = plan(&late).unwrap_err().to_string();
        assert!(err.contains("item 8") && err.contains("lasts"), "{err}");
        let bad_fps = scenario(r#"{"fps": 0, "checkout": {"lane": 1, "frames": 10, "items": []}}"#);
        assert!(plan(&bad_fps).is_err());
    }

    #[test]
    fn the_shipped_scenario_scans_some_items_and_not_others() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/retail/scenario.json");
        let s = load(&path).unwrap();
        let (scans, _) = plan(&s).unwrap();
        assert!(!scans.is_empty());
        assert!(
            scans.len() < s.checkout.items.len(),
            "every item is scanned"
        );
    }
}
