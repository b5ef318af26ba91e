//! Connection settings shared by the source and the sink: broker URL, QoS,
//! TLS, credentials, keep-alive and reconnect backoff.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use sluice_core::{Backoff, BuildError, ByteSize, EnvString, HumanDuration, Validator};
use url::{Host, Url};

/// MQTT delivery guarantee.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Qos {
    /// QoS 0: fire and forget.
    AtMostOnce,
    /// QoS 1: acknowledged, possibly duplicated.
    #[default]
    AtLeastOnce,
    /// QoS 2: acknowledged in two steps, never duplicated by the protocol.
    ExactlyOnce,
}

impl Qos {
    pub(crate) fn to_rumqttc(self) -> rumqttc::QoS {
        match self {
            Qos::AtMostOnce => rumqttc::QoS::AtMostOnce,
            Qos::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
            Qos::ExactlyOnce => rumqttc::QoS::ExactlyOnce,
        }
    }
}

/// TLS settings for `mqtts://` URLs. Without `ca`, the system's root
/// certificates are trusted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct TlsConfig {
    /// PEM file with the CA certificate(s) that signed the broker's certificate.
    #[serde(default)]
    pub ca: Option<EnvString>,
    /// PEM file with the client certificate chain (mutual TLS); requires `key`.
    #[serde(default)]
    pub cert: Option<EnvString>,
    /// PEM file with the client's private key (PKCS#8, PKCS#1 or SEC1); requires `cert`.
    #[serde(default)]
    pub key: Option<EnvString>,
}

/// Bounds of the jittered exponential backoff between connection attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ReconnectConfig {
    /// Delay after the first failure.
    #[serde(default = "default_min_backoff")]
    pub min_backoff: HumanDuration,
    /// Upper bound of the delay; reached by doubling.
    #[serde(default = "default_max_backoff")]
    pub max_backoff: HumanDuration,
}

fn default_min_backoff() -> HumanDuration {
    HumanDuration(Duration::from_millis(100))
}

fn default_max_backoff() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        Self {
            min_backoff: default_min_backoff(),
            max_backoff: default_max_backoff(),
        }
    }
}

pub(crate) fn default_keep_alive() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

pub(crate) fn default_max_packet_size() -> ByteSize {
    ByteSize(1 << 20)
}

/// A parsed `mqtt://host:port` or `mqtts://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokerUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl BrokerUrl {
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        const EXPECTED: &str = "expected `mqtt://host:port` or `mqtts://host:port`";
        let parsed = Url::parse(url).map_err(|e| match e {
            url::ParseError::InvalidPort => format!("broker URL `{url}`: invalid port"),
            e => format!("invalid broker URL `{url}`: {e}; {EXPECTED}"),
        })?;
        let tls = match parsed.scheme() {
            "mqtt" => false,
            "mqtts" => true,
            _ => return Err(format!("unsupported broker URL `{url}`: {EXPECTED}")),
        };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(format!(
                "broker URL `{url}` must not carry credentials: use `username` and `password`"
            ));
        }
        if !matches!(parsed.path(), "" | "/")
            || parsed.query().is_some()
            || parsed.fragment().is_some()
        {
            return Err(format!("broker URL `{url}` must not have a path or query"));
        }
        let host = match parsed.host() {
            Some(Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => String::new(),
        };
        if host.is_empty() {
            return Err(format!("broker URL `{url}` has no host"));
        }
        let port = match parsed.port() {
            Some(0) => return Err(format!("broker URL `{url}`: invalid port `0`")),
            Some(p) => p,
            None if tls => 8883,
            None => 1883,
        };
        Ok(Self { tls, host, port })
    }
}

/// The connection keys of a source or sink config, borrowed for checks and
/// for building the client options.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionSpec<'a> {
    pub url: &'a str,
    pub client_id: Option<&'a str>,
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
    pub tls: Option<&'a TlsConfig>,
    pub keep_alive: Duration,
    pub clean_session: bool,
    pub max_packet_size: u64,
    pub reconnect: ReconnectConfig,
}

/// The largest MQTT packet: a remaining length of 268,435,455 bytes.
const MQTT_MAX_PACKET: u64 = 268_435_455;

impl ConnectionSpec<'_> {
    /// Reports every problem with the connection keys.
    pub(crate) fn check(&self, v: &mut Validator) {
        let url = match BrokerUrl::parse(self.url) {
            Ok(u) => Some(u),
            Err(e) => {
                v.error(&["url"], e);
                None
            }
        };
        if let Some(id) = self.client_id {
            if id.is_empty() {
                v.error(&["client_id"], "client id must not be empty");
            } else if id.len() > 65_535 {
                v.error(&["client_id"], "client id is longer than 65535 bytes");
            }
        }
        if self.password.is_some() && self.username.is_none() {
            v.error(&["password"], "`password` requires `username`");
        }
        if let Some(tls) = self.tls {
            if url.as_ref().is_some_and(|u| !u.tls) {
                v.error(&["tls"], "TLS settings need an `mqtts://` URL")
                    .help("change the URL scheme to `mqtts://` or remove `tls`");
            }
            match (&tls.cert, &tls.key) {
                (Some(_), None) => {
                    v.error(&["tls", "cert"], "`cert` requires `key`");
                }
                (None, Some(_)) => {
                    v.error(&["tls", "key"], "`key` requires `cert`");
                }
                _ => {}
            }
        }
        let ka = self.keep_alive;
        if !ka.is_zero() && (ka < Duration::from_secs(1) || ka.as_secs() > u64::from(u16::MAX)) {
            v.error(
                &["keep_alive"],
                "keep-alive must be `0s` (off) or between 1s and 65535s",
            );
        }
        if self.max_packet_size < 1024 || self.max_packet_size > MQTT_MAX_PACKET {
            v.error(
                &["max_packet_size"],
                "max packet size must be between 1KiB and 256MiB",
            );
        }
        let r = self.reconnect;
        if r.min_backoff.0.is_zero() {
            v.error(
                &["reconnect", "min_backoff"],
                "backoff must be greater than zero",
            );
        }
        if r.max_backoff < r.min_backoff {
            v.error(
                &["reconnect", "max_backoff"],
                "`max_backoff` is smaller than `min_backoff`",
            );
        }
    }

    /// Client options for rumqttc. Reads TLS files, so all file problems are
    /// reported at build time rather than on the first connection attempt.
    pub(crate) fn mqtt_options(
        &self,
        default_client_id: &str,
    ) -> Result<(MqttOptions, BrokerUrl), BuildError> {
        let mut v = Validator::new();
        self.check(&mut v);
        if v.has_errors() {
            return Err(BuildError::msg(v.error_messages()));
        }
        let url = BrokerUrl::parse(self.url).map_err(BuildError::msg)?;
        let client_id = self.client_id.unwrap_or(default_client_id);
        let mut o = MqttOptions::new(client_id, url.host.clone(), url.port);
        // Checked above: zero or at least one second (rumqttc panics otherwise).
        o.set_keep_alive(self.keep_alive);
        // Never empty here, which rumqttc requires for persistent sessions.
        o.set_clean_session(self.clean_session);
        let max = usize::try_from(self.max_packet_size).unwrap_or(usize::MAX);
        o.set_max_packet_size(max, max);
        if let Some(user) = self.username {
            o.set_credentials(user, self.password.unwrap_or_default());
        }
        if url.tls {
            let cfg = tls_client_config(self.tls.cloned().unwrap_or_default())?;
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                Arc::new(cfg),
            )));
        }
        Ok((o, url))
    }
}

/// Network settings: loopback and LAN brokers benefit from `TCP_NODELAY`.
pub(crate) fn network_options() -> rumqttc::NetworkOptions {
    let mut n = rumqttc::NetworkOptions::new();
    n.set_tcp_nodelay(true);
    n.set_connection_timeout(10);
    n
}

fn tls_client_config(tls: TlsConfig) -> Result<rustls::ClientConfig, BuildError> {
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca {
        Some(path) => {
            let certs = read_certs(path)?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(BuildError::msg(format!(
                    "no usable CA certificate in `{path}`"
                )));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
            if roots.is_empty() {
                return Err(BuildError::msg(
                    "no system root certificates found: set `tls.ca` to the broker's CA file",
                ));
            }
        }
    }
    // An explicit provider keeps TLS independent of any process-wide default.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BuildError::context("configuring TLS", e))?
        .with_root_certificates(roots);
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key.as_str())
                .map_err(|e| BuildError::context(format!("reading private key `{key}`"), e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| BuildError::context("loading TLS client certificate", e))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

fn read_certs(path: &EnvString) -> Result<Vec<CertificateDer<'static>>, BuildError> {
    let certs = CertificateDer::pem_file_iter(path.as_str())
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| BuildError::context(format!("reading certificates `{path}`"), e))?;
    if certs.is_empty() {
        return Err(BuildError::msg(format!("no PEM certificate in `{path}`")));
    }
    Ok(certs)
}

/// A client id made of the characters every broker accepts.
pub(crate) fn default_client_id(pipeline: &str, id: &str) -> String {
    format!("sluice-{pipeline}-{id}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

impl ReconnectConfig {
    /// The backoff these settings describe.
    pub(crate) fn backoff(self) -> Backoff {
        Backoff::new(self.min_backoff.0, self.max_backoff.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str) -> ConnectionSpec<'_> {
        ConnectionSpec {
            url,
            client_id: None,
            username: None,
            password: None,
            tls: None,
            keep_alive: Duration::from_secs(30),
            clean_session: true,
            max_packet_size: 1 << 20,
            reconnect: ReconnectConfig::default(),
        }
    }

    fn errors(spec: ConnectionSpec<'_>) -> Vec<(Vec<String>, String)> {
        let mut v = Validator::new();
        spec.check(&mut v);
        v.into_issues()
            .into_iter()
            .map(|i| (i.path, i.message))
            .collect()
    }

    #[test]
    fn parses_urls_with_default_and_explicit_ports() {
        let u = BrokerUrl::parse("mqtt://broker.local").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port),
            (false, "broker.local", 1883)
        );
        let u = BrokerUrl::parse("mqtts://cloud.example.com:9999/").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port),
            (true, "cloud.example.com", 9999)
        );
        assert_eq!(BrokerUrl::parse("mqtts://h").unwrap().port, 8883);
        let u = BrokerUrl::parse("mqtt://[::1]:1884").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 1884));
    }

    #[test]
    fn rejects_bad_urls_with_reasons() {
        assert!(
            BrokerUrl::parse("tcp://h:1")
                .unwrap_err()
                .contains("expected `mqtt://")
        );
        assert!(
            BrokerUrl::parse("mqtt://h:0")
                .unwrap_err()
                .contains("invalid port")
        );
        assert!(
            BrokerUrl::parse("mqtt://h:x")
                .unwrap_err()
                .contains("invalid port")
        );
        assert!(BrokerUrl::parse("mqtt://").unwrap_err().contains("no host"));
        assert!(
            BrokerUrl::parse("mqtt://u:p@h")
                .unwrap_err()
                .contains("credentials")
        );
        assert!(
            BrokerUrl::parse("mqtt://h/a/b")
                .unwrap_err()
                .contains("path")
        );
    }

    #[test]
    fn reports_each_connection_problem_at_its_key() {
        let tls = TlsConfig {
            ca: None,
            cert: Some("c.pem".into()),
            key: None,
        };
        let mut s = spec("ftp://x");
        s.password = Some("p");
        s.tls = Some(&tls);
        s.keep_alive = Duration::from_millis(500);
        s.reconnect.max_backoff = HumanDuration(Duration::from_millis(10));
        let paths: Vec<Vec<String>> = errors(s).into_iter().map(|(p, _)| p).collect();
        let expect: Vec<Vec<String>> = [
            &["url"][..],
            &["password"],
            &["tls", "cert"],
            &["keep_alive"],
            &["reconnect", "max_backoff"],
        ]
        .iter()
        .map(|p| p.iter().map(|s| (*s).to_owned()).collect())
        .collect();
        assert_eq!(paths, expect);
    }

    #[test]
    fn tls_settings_with_plain_url_are_an_error() {
        let tls = TlsConfig::default();
        let mut s = spec("mqtt://h");
        s.tls = Some(&tls);
        assert_eq!(errors(s)[0].0, vec!["tls".to_owned()]);
    }

    #[test]
    fn missing_ca_file_fails_the_build_with_its_path() {
        let tls = TlsConfig {
            ca: Some("/nonexistent/ca.pem".into()),
            cert: None,
            key: None,
        };
        let mut s = spec("mqtts://h");
        s.tls = Some(&tls);
        let e = s.mqtt_options("id").unwrap_err().to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn default_client_id_keeps_only_safe_characters() {
        assert_eq!(
            default_client_id("line 3", "telemetry.in"),
            "sluice-line-3-telemetry-in"
        );
    }

    #[test]
    fn reconnect_settings_give_a_backoff_between_their_bounds() {
        let mut b = ReconnectConfig {
            min_backoff: HumanDuration(Duration::from_millis(100)),
            max_backoff: HumanDuration(Duration::from_millis(350)),
        }
        .backoff();
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        assert!((0..5).all(|_| b.next_delay() <= Duration::from_millis(350)));
    }
}
