//! Sensor simulator behind `sluice demo` and `sluice simulate`: a fleet of
//! vibration/temperature/current sensors publishing JSON telemetry over MQTT.
//!
//! Values come from a pure function of (seed, device, step), so a seed always
//! gives the same readings, and scheduled faults land at known times.

#[cfg(test)]
mod fit_tests;
mod generator;
pub mod pos;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use sluice_core::HumanDuration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use generator::{Generator, Reading, hash, unit};

/// How long to wait for the broker's first CONNACK.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for outstanding PUBACKs once publishing stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between reconnect attempts while the broker is unreachable.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// Options of the sensor simulator.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateOpts {
    /// MQTT broker to publish to, as mqtt://host[:port].
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    pub url: String,
    /// Number of simulated devices, named dev-00, dev-01, ...
    #[arg(long, default_value_t = 20, value_parser = parse_devices)]
    pub devices: usize,
    /// Messages per second from each device.
    #[arg(long = "rate", default_value_t = 10.0, value_parser = parse_rate)]
    pub rate_per_device: f64,
    /// Topic prefix; each device publishes to <PREFIX>/<device>/telemetry.
    #[arg(long, default_value = "factory/line1")]
    pub topic_prefix: String,
    /// Stop after this long, e.g. 30s or 5m (default: until Ctrl-C or --count).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many messages in total, over all devices.
    #[arg(long)]
    pub count: Option<u64>,
    /// Seed of the value generator; the same seed gives the same readings.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Inject faults every 2 minutes of simulated time, each on one device
    /// chosen by the seed: a vibration burst at 0:20 (15 s), a level shift
    /// of the current (+30 %) at 0:36 (8 s), a current and vibration spike at
    /// 0:45 (1 s), a temperature drift at 0:55 (40 s, +0.5 °C/s) and a stuck
    /// sensor at 1:40 (18 s).
    #[arg(long)]
    pub faults: bool,
    /// Inject faults only on these devices (indices from 0, comma-separated;
    /// implies --faults).
    #[arg(long, value_delimiter = ',', value_name = "N,...")]
    pub fault_devices: Vec<usize>,
    /// Simulated time runs this many times faster than the wall clock:
    /// readings are published `speed` times as often and timestamped on the
    /// simulated clock, so a 2-minute fault cycle plays in 30 s at 4.
    #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
    pub speed: f64,
    /// Fraction (0..1) of messages sent with a timestamp 30-120 s in the past.
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    pub late_fraction: f64,
    /// Fraction (0..1) of messages sent malformed: truncated JSON, plain text,
    /// or a string where a number belongs.
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    pub malformed_fraction: f64,
}

/// What a simulator run published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Messages handed to the MQTT client, including late and malformed ones.
    pub sent: u64,
    /// Messages the broker acknowledged (PUBACK) before the run ended.
    pub acked: u64,
    /// Messages sent with a timestamp in the past.
    pub late: u64,
    /// Messages sent with a malformed payload.
    pub malformed: u64,
}

impl fmt::Display for SimStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {} messages ({} acknowledged, {} late, {} malformed)",
            self.sent, self.acked, self.late, self.malformed
        )
    }
}

/// Publishes simulated telemetry until `count` messages, `duration` or
/// `shutdown`, whichever comes first, then waits briefly for outstanding
/// acknowledgements and disconnects.
pub async fn run(opts: SimulateOpts, shutdown: CancellationToken) -> anyhow::Result<SimStats> {
    if let Some(d) = opts.fault_devices.iter().find(|d| **d >= opts.devices) {
        bail!(
            "--fault-devices names device {d}, but only devices 0 to {} exist",
            opts.devices.saturating_sub(1)
        );
    }
    let (host, port) = parse_mqtt_url(&opts.url)?;
    let client_id = format!("sluice-simulate-{}-{}", std::process::id(), opts.seed);
    let mut mqtt = MqttOptions::new(client_id, host, port);
    mqtt.set_keep_alive(Duration::from_secs(15));
    let (client, eventloop) = AsyncClient::new(mqtt, 256);
    let link = Link::spawn(eventloop);

    let outcome = publish_all(&opts, &client, &link, &shutdown).await;
    let acked = link
        .finish(&client, outcome.as_ref().map_or(0, |s| s.sent))
        .await;
    let stats = SimStats { acked, ..outcome? };
    tracing::info!(%stats, "simulator stopped");
    Ok(stats)
}

async fn publish_all(
    opts: &SimulateOpts,
    client: &AsyncClient,
    link: &Link,
    shutdown: &CancellationToken,
) -> anyhow::Result<SimStats> {
    let mut stats = SimStats::default();
    tokio::select! {
        _ = shutdown.cancelled() => return Ok(stats),
        up = link.connected(CONNECT_TIMEOUT) => {
            up.with_context(|| format!("cannot reach the MQTT broker at {}", opts.url))?;
        }
    }
    tracing::info!(
        url = %opts.url,
        devices = opts.devices,
        rate_per_device = opts.rate_per_device,
        faults = opts.faults || !opts.fault_devices.is_empty(),
        speed = opts.speed,
        "simulating sensors"
    );

    let generator = Generator::new(
        opts.seed,
        opts.devices,
        opts.rate_per_device,
        opts.faults || !opts.fault_devices.is_empty(),
    )
    .with_fault_devices(opts.fault_devices.clone());
    let width = opts.devices.saturating_sub(1).to_string().len().max(2);
    let names: Vec<String> = (0..opts.devices)
        .map(|d| format!("dev-{d:0width$}"))
        .collect();
    let topics: Vec<String> = names
        .iter()
        .map(|n| format!("{}/{n}/telemetry", opts.topic_prefix))
        .collect();
    let noise = Disturbance {
        late: opts.late_fraction,
        malformed: opts.malformed_fraction,
    };

    let mut ticker = tokio::time::interval(Duration::from_secs_f64(
        1.0 / (opts.rate_per_device * opts.speed),
    ));
    // Falling behind (slow broker) lowers the rate rather than bursting to catch up.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let deadline = async {
        match opts.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);

    // Timestamps follow the simulated clock, so faults land at the same
    // event times at any speed.
    let start_ms = epoch_ms();
    let mut step = 0u64;
    'ticks: loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = &mut deadline => break,
            _ = ticker.tick() => {}
        }
        let now_ms = start_ms + (step as f64 * 1000.0 / opts.rate_per_device) as i64;
        for device in 0..opts.devices {
            if opts.count.is_some_and(|c| stats.sent >= c) {
                break 'ticks;
            }
            let (payload, kind) = message(&generator, &noise, &names[device], device, step, now_ms);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break 'ticks,
                queued = client.publish(topics[device].as_str(), QoS::AtLeastOnce, false, payload) => {
                    queued.context("the MQTT client stopped")?;
                }
            }
            stats.sent += 1;
            match kind {
                Kind::Normal => {}
                Kind::Late => stats.late += 1,
                Kind::Malformed => stats.malformed += 1,
            }
        }
        step += 1;
    }
    Ok(stats)
}

fn epoch_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// The MQTT event loop, polled on its own task.
struct Link {
    up: watch::Receiver<Conn>,
    acked: watch::Receiver<u64>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

#[derive(Debug, Clone, PartialEq)]
enum Conn {
    Connecting,
    Up,
    Down(String),
}

impl Link {
    fn spawn(mut eventloop: EventLoop) -> Self {
        let (up_tx, up) = watch::channel(Conn::Connecting);
        let (acked_tx, acked) = watch::channel(0u64);
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    _ = token.cancelled() => return,
                    event = eventloop.poll() => event,
                };
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        if matches!(*up_tx.borrow(), Conn::Down(_)) {
                            tracing::info!("simulator reconnected to the broker");
                        }
                        up_tx.send_replace(Conn::Up);
                    }
                    Ok(Event::Incoming(Packet::PubAck(_))) => acked_tx.send_modify(|n| *n += 1),
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
                    Ok(_) => {}
                    Err(e) => {
                        match *up_tx.borrow() {
                            Conn::Up => {
                                tracing::warn!(error = %e, "simulator lost the broker; reconnecting");
                            }
                            Conn::Connecting => {
                                tracing::warn!(error = %e, "cannot reach the broker yet; retrying");
                            }
                            Conn::Down(_) => {}
                        }
                        up_tx.send_replace(Conn::Down(e.to_string()));
                        // rumqttc reconnects on the next poll; pause so a dead
                        // broker is not hammered.
                        tokio::select! {
                            _ = token.cancelled() => return,
                            _ = tokio::time::sleep(RECONNECT_PAUSE) => {}
                        }
                    }
                }
            }
        });
        Self {
            up,
            acked,
            stop,
            task,
        }
    }

    /// Waits for the first CONNACK; on timeout reports the last error.
    async fn connected(&self, timeout: Duration) -> anyhow::Result<()> {
        let mut up = self.up.clone();
        match tokio::time::timeout(timeout, up.wait_for(|c| *c == Conn::Up)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => bail!("the MQTT event loop stopped"),
            Err(_) => match &*self.up.borrow() {
                Conn::Down(e) => Err(anyhow!("{e}")),
                _ => Err(anyhow!("no answer within {timeout:?}")),
            },
        }
    }

    /// Waits (bounded) for `sent` acknowledgements, disconnects, stops the
    /// event loop and returns how many messages were acknowledged.
    async fn finish(mut self, client: &AsyncClient, sent: u64) -> u64 {
        let up = *self.up.borrow() == Conn::Up;
        if sent > 0 && up {
            let mut acked = self.acked.clone();
            let all_acked = acked.wait_for(|n| *n >= sent);
            if tokio::time::timeout(DRAIN_TIMEOUT, all_acked)
                .await
                .is_err()
            {
                let acked = *self.acked.borrow();
                tracing::warn!(sent, acked, "not every message was acknowledged");
            }
        }
        // The loop returns once DISCONNECT is written; the wait is bounded in
        // case the connection is already gone.
        let disconnected = up
            && client.try_disconnect().is_ok()
            && tokio::time::timeout(Duration::from_secs(1), &mut self.task)
                .await
                .is_ok();
        if !disconnected {
            self.stop.cancel();
            if let Err(e) = (&mut self.task).await {
                tracing::warn!(error = %e, "simulator event loop ended abnormally");
            }
        }
        *self.acked.borrow()
    }
}

/// Share of messages to disturb.
struct Disturbance {
    late: f64,
    malformed: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Normal,
    Late,
    Malformed,
}

/// Salts that keep the independent random choices of one message apart.
const SALT_MALFORMED: u64 = 1;
const SALT_LATE: u64 = 2;
const SALT_LATENESS: u64 = 3;
const SALT_VARIANT: u64 = 4;

/// The payload of `device` at `step`, disturbed per `noise`. Deterministic
/// for a given seed except for the wall-clock timestamp.
fn message(
    g: &Generator,
    noise: &Disturbance,
    name: &str,
    device: usize,
    step: u64,
    now_ms: i64,
) -> (Vec<u8>, Kind) {
    let r = g.reading(device, step);
    let key = |salt| hash(&[g.seed, device as u64, step, salt]);
    if unit(key(SALT_MALFORMED)) < noise.malformed {
        return (
            malformed(name, now_ms, &r, key(SALT_VARIANT)),
            Kind::Malformed,
        );
    }
    let (ts, kind) = if unit(key(SALT_LATE)) < noise.late {
        let lateness_ms = 30_000 + (unit(key(SALT_LATENESS)) * 90_000.0) as i64;
        (now_ms - lateness_ms, Kind::Late)
    } else {
        (now_ms, Kind::Normal)
    };
    let body = serde_json::json!({
        "device": name,
        "ts": ts,
        "vibration_rms": r.vibration_rms,
        "temperature": r.temperature,
        "current": r.current,
    });
    (body.to_string().into_bytes(), kind)
}

fn malformed(name: &str, now_ms: i64, r: &Reading, variant: u64) -> Vec<u8> {
    let text = match variant % 3 {
        0 => {
            let full = format!(
                r#"{{"device":"{name}","ts":{now_ms},"vibration_rms":{},"temperature":{},"current":{}}}"#,
                r.vibration_rms, r.temperature, r.current
            );
            full[..full.len() / 2].to_owned()
        }
        1 => format!(
            "{name} vib={} temp={} amps={}",
            r.vibration_rms, r.temperature, r.current
        ),
        _ => format!(
            r#"{{"device":"{name}","ts":{now_ms},"vibration_rms":"high","temperature":{},"current":{}}}"#,
            r.temperature, r.current
        ),
    };
    text.into_bytes()
}

/// Host and port of an `mqtt://host[:port]` (or `tcp://`) URL.
fn parse_mqtt_url(url: &str) -> anyhow::Result<(String, u16)> {
    let bad = || anyhow!("unsupported broker URL `{url}`: expected mqtt://host[:port]");
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .ok_or_else(bad)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '?', '@']) {
        return Err(bad());
    }
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            (host, after.strip_prefix(':'))
        }
        None => match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        },
    };
    let port = match port {
        Some(p) => p
            .parse()
            .map_err(|_| anyhow!("invalid port `{p}` in broker URL `{url}`"))?,
        None => 1883,
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    s.parse::<HumanDuration>().map(HumanDuration::get)
}

fn parse_devices(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n @ 1..=10_000) => Ok(n),
        _ => Err(format!(
            "expected a number of devices from 1 to 10000, got `{s}`"
        )),
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 10_000.0 => Ok(r),
        _ => Err(format!(
            "expected messages per second above 0 and at most 10000, got `{s}`"
        )),
    }
}

pub(crate) fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1000.0 => Ok(r),
        _ => Err(format!(
            "expected a speed-up above 0 and at most 1000, got `{s}`"
        )),
    }
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("expected a fraction from 0 to 1, got `{s}`")),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        opts: SimulateOpts,
    }

    fn parse(args: &[&str]) -> Result<SimulateOpts, clap::Error> {
        Cli::try_parse_from(std::iter::once("simulate").chain(args.iter().copied())).map(|c| c.opts)
    }

    #[test]
    fn defaults_are_twenty_devices_at_ten_messages_per_second() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.devices, 20);
        assert_eq!(o.rate_per_device, 10.0);
        assert_eq!(o.url, "mqtt://127.0.0.1:1883");
        assert_eq!(o.topic_prefix, "factory/line1");
        assert!(!o.faults && o.duration.is_none() && o.count.is_none());
    }

    #[test]
    fn parses_durations_and_rejects_out_of_range_options() {
        let o = parse(&["--duration", "1m30s", "--late-fraction", "0.1", "--faults"]).unwrap();
        assert_eq!(o.duration, Some(Duration::from_secs(90)));
        assert_eq!(o.late_fraction, 0.1);
        assert!(o.faults);
        assert!(parse(&["--rate", "0"]).is_err());
        assert!(parse(&["--devices", "0"]).is_err());
        assert!(parse(&["--malformed-fraction", "1.5"]).is_err());
        assert!(parse(&["--duration", "10"]).is_err());
        assert!(parse(&["--speed", "0"]).is_err());
    }

    #[test]
    fn parses_fault_devices_and_speed() {
        let o = parse(&["--fault-devices", "3,7", "--speed", "4"]).unwrap();
        assert_eq!(o.fault_devices, vec![3, 7]);
        assert_eq!(o.speed, 4.0);
        assert!(parse(&["--fault-devices", "a"]).is_err());
    }

    #[test]
    fn payload_is_the_documented_json() {
        let g = Generator::new(1, 2, 10.0, false);
        let none = Disturbance {
            late: 0.0,
            malformed: 0.0,
        };
        let (bytes, kind) = message(&g, &none, "dev-01", 1, 3, 1_700_000_000_000);
        assert_eq!(kind, Kind::Normal);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let r = g.reading(1, 3);
        assert_eq!(
            v,
            serde_json::json!({"device": "dev-01", "ts": 1_700_000_000_000i64,
                "vibration_rms": r.vibration_rms, "temperature": r.temperature, "current": r.current})
        );
    }

    #[test]
    fn late_and_malformed_fractions_are_honoured() {
        let g = Generator::new(5, 10, 10.0, false);
        let noise = Disturbance {
            late: 0.1,
            malformed: 0.05,
        };
        let now = 1_700_000_000_000;
        let mut late = 0;
        let mut malformed = 0;
        for step in 0..1000 {
            for d in 0..10 {
                let (bytes, kind) = message(&g, &noise, "dev-00", d, step, now);
                let parsed = serde_json::from_slice::<serde_json::Value>(&bytes);
                match kind {
                    Kind::Malformed => {
                        malformed += 1;
                        let numeric = parsed.ok().and_then(|v| v["vibration_rms"].as_f64());
                        assert!(numeric.is_none(), "{}", String::from_utf8_lossy(&bytes));
                    }
                    Kind::Late => {
                        late += 1;
                        let ts = parsed.unwrap()["ts"].as_i64().unwrap();
                        assert!((now - 120_000..=now - 30_000).contains(&ts));
                    }
                    Kind::Normal => assert_eq!(parsed.unwrap()["ts"], now),
                }
            }
        }
        // 10 000 messages: 5% malformed and 10% of the rest late, within a
        // few standard deviations.
        assert!((400..600).contains(&malformed), "malformed {malformed}");
        assert!((800..1100).contains(&late), "late {late}");
    }

    #[test]
    fn parses_broker_urls() {
        assert_eq!(
            parse_mqtt_url("mqtt://127.0.0.1:1884").unwrap(),
            ("127.0.0.1".into(), 1884)
        );
        assert_eq!(
            parse_mqtt_url("tcp://broker/").unwrap(),
            ("broker".into(), 1883)
        );
        assert_eq!(
            parse_mqtt_url("mqtt://[::1]:1999").unwrap(),
            ("::1".into(), 1999)
        );
        assert!(parse_mqtt_url("mqtts://cloud:8883").is_err());
        assert!(parse_mqtt_url("mqtt://host:port").is_err());
        assert!(parse_mqtt_url("mqtt://").is_err());
    }
}
