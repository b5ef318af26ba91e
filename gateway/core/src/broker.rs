//! The `broker:` section of a pipeline file: the settings of the embedded
//! MQTT broker (`sluice-broker`), here so that loading a pipeline file does
//! not depend on the broker itself.

use std::net::{Ipv4Addr, SocketAddr};
use std::num::{NonZeroU16, NonZeroUsize};
use std::time::Duration;

use crate::{ByteSize, HumanDuration, Validator};
use serde::Deserialize;

/// MQTT's largest packet (the remaining-length field tops out just below it).
const MQTT_MAX_PACKET: u64 = 256 << 20;
/// rumqttd refuses segments below this size.
const MIN_SEGMENT: u64 = 1 << 10;
/// rumqttd keeps the CONNECT timeout in a `u16` of milliseconds.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_millis(u16::MAX as u64);

/// Settings of the embedded MQTT broker that sensors publish to. It has no
/// authentication or TLS, so keep it on loopback or a closed plant network.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "snake_case")]
pub struct BrokerConfig {
    /// Address of the MQTT 3.1.1 listener, e.g. `0.0.0.0:1883` to accept
    /// sensors on the plant network. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Address of an additional MQTT 5 listener; none when unset.
    pub listen_v5: Option<SocketAddr>,
    /// Most clients connected at once; further connections are refused.
    pub max_connections: NonZeroUsize,
    /// Largest MQTT packet (and so payload) a client may send.
    pub max_payload_size: ByteSize,
    /// Most packets read from one client in a row before the broker routes
    /// them; bounds the buffering per connection.
    pub max_inflight: NonZeroU16,
    /// How long a new TCP connection may take to send its MQTT CONNECT.
    pub connect_timeout: HumanDuration,
    /// Size of one in-memory log segment of a topic.
    pub segment_size: ByteSize,
    /// Segments kept per topic. Memory per topic is bounded by
    /// `segment_size × segment_count`; a subscriber that falls further behind
    /// loses the oldest messages.
    pub segment_count: NonZeroUsize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 1883)),
            listen_v5: None,
            max_connections: NonZeroUsize::new(1000).unwrap_or(NonZeroUsize::MIN),
            max_payload_size: ByteSize(256 << 10),
            max_inflight: NonZeroU16::new(100).unwrap_or(NonZeroU16::MIN),
            connect_timeout: HumanDuration(Duration::from_secs(10)),
            segment_size: ByteSize(256 << 10),
            segment_count: NonZeroUsize::new(4).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

impl BrokerConfig {
    /// Reports every problem, with paths relative to the `broker` section.
    pub fn check(&self, v: &mut Validator) {
        let payload = self.max_payload_size.bytes();
        if payload == 0 || payload > MQTT_MAX_PACKET {
            v.error(
                &["max_payload_size"],
                format!("max_payload_size must be between 1B and 256MiB, got {payload}B"),
            );
        }
        let segment = self.segment_size.bytes();
        if !(MIN_SEGMENT..=1 << 30).contains(&segment) {
            v.error(
                &["segment_size"],
                format!("segment_size must be between 1KiB and 1GiB, got {segment}B"),
            );
        }
        let timeout = self.connect_timeout.get();
        if timeout.is_zero() || timeout > MAX_CONNECT_TIMEOUT {
            v.error(
                &["connect_timeout"],
                format!(
                    "connect_timeout must be between 1ms and 65s, got {}",
                    self.connect_timeout
                ),
            );
        }
        if let Some(v5) = self.listen_v5
            && v5 == self.listen
            && v5.port() != 0
        {
            v.error(
                &["listen_v5"],
                format!("listen_v5 {v5} is the same address as listen"),
            );
        }
        for (key, addr) in [("listen", Some(self.listen)), ("listen_v5", self.listen_v5)] {
            if let Some(addr) = addr.filter(|a| !a.ip().is_loopback()) {
                v.warn(
                    &[key],
                    format!("the broker on {addr} has no authentication or TLS"),
                )
                .help("use it only on a closed network, or bind it to 127.0.0.1");
            }
        }
    }

    /// The first error [`BrokerConfig::check`] reports, if any.
    pub fn first_error(&self) -> Option<String> {
        let mut v = Validator::new();
        self.check(&mut v);
        v.into_issues()
            .into_iter()
            .find(|i| i.severity == crate::validate::Severity::Error)
            .map(|i| i.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<BrokerConfig, String> {
        serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
    }

    fn errors(cfg: &BrokerConfig) -> Vec<Vec<String>> {
        let mut v = Validator::new();
        cfg.check(&mut v);
        v.into_issues()
            .into_iter()
            .filter(|i| i.severity == crate::validate::Severity::Error)
            .map(|i| i.path)
            .collect()
    }

    #[test]
    fn defaults_to_loopback_1883() {
        let cfg = parse("{}").unwrap();
        assert_eq!(cfg.listen, "127.0.0.1:1883".parse().unwrap());
        assert_eq!(cfg.max_connections.get(), 1000);
        assert_eq!(cfg.max_payload_size.bytes(), 256 * 1024);
        assert!(errors(&cfg).is_empty());
    }

    #[test]
    fn parses_every_field() {
        let cfg = parse(
            "listen: 0.0.0.0:1884\nlisten_v5: 0.0.0.0:1885\nmax_connections: 50\n\
             max_payload_size: 1MiB\nmax_inflight: 20\nconnect_timeout: 5s\n\
             segment_size: 64KiB\nsegment_count: 2\n",
        )
        .unwrap();
        assert_eq!(cfg.listen_v5, Some("0.0.0.0:1885".parse().unwrap()));
        assert_eq!(cfg.max_payload_size.bytes(), 1 << 20);
        assert_eq!(cfg.connect_timeout.get(), Duration::from_secs(5));
        assert_eq!(cfg.segment_count.get(), 2);
    }

    #[test]
    fn rejects_unknown_fields() {
        let err = parse("listen: 127.0.0.1:1883\nport: 1883\n").unwrap_err();
        assert!(err.contains("unknown field `port`"), "{err}");
    }

    #[test]
    fn rejects_zero_connections() {
        assert!(parse("max_connections: 0").is_err());
    }

    #[test]
    fn reports_out_of_range_sizes_and_timeouts() {
        let cfg = BrokerConfig {
            max_payload_size: ByteSize(0),
            segment_size: ByteSize(512),
            connect_timeout: HumanDuration(Duration::from_secs(120)),
            ..BrokerConfig::default()
        };
        assert_eq!(
            errors(&cfg),
            vec![
                vec!["max_payload_size".to_owned()],
                vec!["segment_size".to_owned()],
                vec!["connect_timeout".to_owned()]
            ]
        );
    }

    #[test]
    fn warns_when_listening_beyond_loopback() {
        let cfg = parse("listen: 0.0.0.0:1883").unwrap();
        let mut v = Validator::new();
        cfg.check(&mut v);
        let issues = v.into_issues();
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].severity, crate::validate::Severity::Warning);
        assert!(issues[0].message.contains("no authentication"));
    }
}
