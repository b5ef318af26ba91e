//! Running rumqttd inside the gateway process.

use std::any::Any;
use std::net::{SocketAddr, TcpListener};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rumqttd::protocol::v4::V4;
use rumqttd::protocol::v5::V5;
use rumqttd::{ConnectionSettings, LinkType, Router, RouterConfig, ServerSettings};
use tokio::sync::oneshot;

use crate::BrokerError;
use crate::probe::{self, Version};
use sluice_core::broker::BrokerConfig;

/// How long start-up may take before [`EmbeddedBroker::start`] gives up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(5);
const PROBE_PAUSE: Duration = Duration::from_millis(20);
/// Packets the router sends one connection per iteration (rumqttd's default).
const MAX_OUTGOING_PACKETS: u64 = 200;

/// A running embedded broker. Dropping it closes the listeners and every
/// client connection.
///
/// rumqttd's router thread has no way to stop; after the broker is dropped it
/// stays parked on an empty channel for the rest of the process.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    addr_v5: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts the broker and waits until it accepts MQTT connections. Blocks
    /// the calling thread (typically for milliseconds, at most 5 s): call it
    /// before starting pipelines or through `spawn_blocking`.
    pub fn start(cfg: &BrokerConfig) -> Result<EmbeddedBroker, BrokerError> {
        if let Some(message) = cfg.first_error() {
            return Err(BrokerError::Invalid(message));
        }
        // rumqttd binds inside its own thread and only logs a failure there, so
        // bind here first to get a proper error and to resolve port 0.
        let addr = resolve(cfg.listen)?;
        let addr_v5 = cfg.listen_v5.map(resolve).transpose()?;

        let (stop_tx, stop_rx) = oneshot::channel();
        let (failed_tx, failed_rx) = mpsc::channel();
        let router = router_config(cfg);
        let v4 = server_settings("sluice-v4", addr, cfg);
        let v5 = addr_v5.map(|a| server_settings("sluice-v5", a, cfg));
        let thread = thread::Builder::new()
            .name("sluice-broker".to_owned())
            .spawn(move || {
                let outcome = catch_unwind(AssertUnwindSafe(|| run(router, v4, v5, stop_rx)));
                let failure = match outcome {
                    Ok(Ok(())) => return,
                    Ok(Err(message)) => message,
                    Err(panic) => format!("broker thread panicked: {}", panic_message(&*panic)),
                };
                tracing::error!(error = %failure, "embedded MQTT broker stopped");
                if failed_tx.send(failure).is_err() {
                    tracing::debug!("broker failed after start-up; nobody was waiting");
                }
            })
            .map_err(BrokerError::Thread)?;

        let mut broker = EmbeddedBroker {
            addr,
            addr_v5,
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        broker.wait_until_up(&failed_rx)?;
        tracing::info!(%addr, v5 = ?addr_v5, "embedded MQTT broker listening");
        Ok(broker)
    }

    /// Address of the MQTT 3.1.1 listener (with the real port when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Address of the MQTT 5 listener, when configured.
    pub fn addr_v5(&self) -> Option<SocketAddr> {
        self.addr_v5
    }

    /// Stops the listeners and closes every connection; same as dropping.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn wait_until_up(&mut self, failed: &mpsc::Receiver<String>) -> Result<(), BrokerError> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let listeners = [(Some(self.addr), Version::V4), (self.addr_v5, Version::V5)];
        for (addr, version) in listeners {
            let Some(addr) = addr else { continue };
            loop {
                if let Ok(message) = failed.try_recv() {
                    return Err(BrokerError::Start(message));
                }
                match probe::mqtt_connect(addr, version) {
                    Ok(()) => break,
                    Err(e) if Instant::now() >= deadline => {
                        self.stop_and_join();
                        return Err(BrokerError::Start(format!(
                            "no MQTT answer on {addr} within {STARTUP_TIMEOUT:?}: {e}"
                        )));
                    }
                    Err(_) => thread::sleep(PROBE_PAUSE),
                }
            }
        }
        Ok(())
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take()
            && stop.send(()).is_err()
        {
            tracing::debug!("embedded MQTT broker thread had already ended");
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("embedded MQTT broker thread ended with a panic");
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn resolve(addr: SocketAddr) -> Result<SocketAddr, BrokerError> {
    let listener = TcpListener::bind(addr).map_err(|source| match source.kind() {
        std::io::ErrorKind::AddrInUse => BrokerError::AddrInUse { addr },
        _ => BrokerError::Bind { addr, source },
    })?;
    listener
        .local_addr()
        .map_err(|source| BrokerError::Bind { addr, source })
}

fn router_config(cfg: &BrokerConfig) -> RouterConfig {
    RouterConfig {
        max_connections: cfg.max_connections.get(),
        max_outgoing_packet_count: MAX_OUTGOING_PACKETS,
        max_segment_size: usize::try_from(cfg.segment_size.bytes()).unwrap_or(usize::MAX),
        max_segment_count: cfg.segment_count.get(),
        custom_segment: None,
        initialized_filters: None,
        shared_subscriptions_strategy: Default::default(),
    }
}

fn server_settings(name: &str, listen: SocketAddr, cfg: &BrokerConfig) -> ServerSettings {
    let timeout_ms = cfg.connect_timeout.get().as_millis();
    ServerSettings {
        name: name.to_owned(),
        listen,
        tls: None,
        next_connection_delay_ms: 0,
        connections: ConnectionSettings {
            connection_timeout_ms: u16::try_from(timeout_ms).unwrap_or(u16::MAX),
            max_payload_size: usize::try_from(cfg.max_payload_size.bytes()).unwrap_or(usize::MAX),
            max_inflight_count: usize::from(cfg.max_inflight.get()),
            auth: None,
            external_auth: None,
            // Sensors may publish before anything subscribes; without dynamic
            // filters rumqttd would disconnect them.
            dynamic_filters: true,
        },
    }
}

/// Body of the broker thread: returns `Ok` when asked to stop, `Err` when a
/// listener ends on its own (rumqttd's accept loops only end on bind errors).
fn run(
    router: RouterConfig,
    v4: ServerSettings,
    v5: Option<ServerSettings>,
    stop: oneshot::Receiver<()>,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("creating the broker runtime: {e}"))?;
    let router_tx = Router::new(0, router).spawn();
    let mut v4_server = rumqttd::Server::new(v4, router_tx.clone(), V4);
    let mut v5_server = v5.map(|s| rumqttd::Server::new(s, router_tx, V5));
    runtime.block_on(async move {
        let v5_listener = async {
            match v5_server.as_mut() {
                Some(server) => server.start(LinkType::Remote).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop => Ok(()),
            r = v4_server.start(LinkType::Remote) => Err(format!("MQTT v4 listener ended: {}", describe(r))),
            r = v5_listener => Err(format!("MQTT v5 listener ended: {}", describe(r))),
        }
    })
    // Dropping the runtime here drops every connection task.
}

fn describe<E: std::fmt::Display>(result: Result<(), E>) -> String {
    match result {
        Ok(()) => "without error".to_owned(),
        Err(e) => e.to_string(),
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream;

    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    use sluice_core::ByteSize;
    use tokio::sync::mpsc;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    fn loopback_any_port() -> BrokerConfig {
        BrokerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..BrokerConfig::default()
        }
    }

    /// A client whose event loop runs on its own task and forwards incoming
    /// packets.
    fn client(addr: SocketAddr, id: &str) -> (AsyncClient, mpsc::UnboundedReceiver<Packet>) {
        let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        opts.set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = AsyncClient::new(opts, 16);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(event) = eventloop.poll().await {
                if let Event::Incoming(packet) = event
                    && tx.send(packet).is_err()
                {
                    return;
                }
            }
        });
        (client, rx)
    }

    async fn next_matching<T>(
        rx: &mut mpsc::UnboundedReceiver<Packet>,
        pick: impl Fn(Packet) -> Option<T>,
    ) -> T {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                let packet = rx.recv().await.expect("event loop ended");
                if let Some(found) = pick(packet) {
                    return found;
                }
            }
        })
        .await
        .expect("timed out waiting for a packet")
    }

    #[tokio::test]
    async fn relays_a_qos1_message_between_clients() {
        let broker = EmbeddedBroker::start(&loopback_any_port()).unwrap();
        assert_ne!(broker.addr().port(), 0);

        let (sub, mut sub_rx) = client(broker.addr(), "test-sub");
        sub.subscribe("plant/+/telemetry", QoS::AtLeastOnce)
            .await
            .unwrap();
        next_matching(&mut sub_rx, |p| {
            matches!(p, Packet::SubAck(_)).then_some(())
        })
        .await;

        let (publisher, mut pub_rx) = client(broker.addr(), "test-pub");
        publisher
            .publish(
                "plant/dev-01/telemetry",
                QoS::AtLeastOnce,
                false,
                br#"{"t":21.5}"#.to_vec(),
            )
            .await
            .unwrap();
        next_matching(&mut pub_rx, |p| {
            matches!(p, Packet::PubAck(_)).then_some(())
        })
        .await;

        let publish = next_matching(&mut sub_rx, |p| match p {
            Packet::Publish(p) => Some(p),
            _ => None,
        })
        .await;
        assert_eq!(publish.topic, "plant/dev-01/telemetry");
        assert_eq!(publish.qos, QoS::AtLeastOnce);
        assert_eq!(&publish.payload[..], br#"{"t":21.5}"#);
    }

    #[tokio::test]
    async fn accepts_publishes_before_anyone_subscribes() {
        let broker = EmbeddedBroker::start(&loopback_any_port()).unwrap();
        let (publisher, mut rx) = client(broker.addr(), "early-pub");
        for i in 0..3u8 {
            publisher
                .publish("plant/early", QoS::AtLeastOnce, false, vec![i])
                .await
                .unwrap();
        }
        for _ in 0..3 {
            next_matching(&mut rx, |p| matches!(p, Packet::PubAck(_)).then_some(())).await;
        }
    }

    #[test]
    fn serves_mqtt5_on_a_second_listener() {
        let cfg = BrokerConfig {
            listen_v5: Some("127.0.0.1:0".parse().unwrap()),
            ..loopback_any_port()
        };
        let broker = EmbeddedBroker::start(&cfg).unwrap();
        let v5 = broker.addr_v5().unwrap();
        assert_ne!(v5.port(), 0);
        assert_ne!(v5, broker.addr());
        probe::mqtt_connect(v5, Version::V5).unwrap();
    }

    #[test]
    fn a_taken_address_is_an_error_naming_the_setting() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let cfg = BrokerConfig {
            listen: taken.local_addr().unwrap(),
            ..BrokerConfig::default()
        };
        let err = EmbeddedBroker::start(&cfg).unwrap_err();
        assert!(matches!(err, BrokerError::AddrInUse { .. }), "{err:?}");
        assert!(err.to_string().contains("set `broker.listen`"), "{err}");
    }

    #[test]
    fn out_of_range_settings_are_rejected_before_starting() {
        // rumqttd panics in its router thread on segments below 1 KiB.
        let cfg = BrokerConfig {
            segment_size: ByteSize(100),
            ..loopback_any_port()
        };
        let err = EmbeddedBroker::start(&cfg).unwrap_err();
        assert!(
            matches!(err, BrokerError::Invalid(ref m) if m.contains("segment_size")),
            "{err}"
        );
    }

    #[test]
    fn shutting_down_closes_the_listener() {
        let broker = EmbeddedBroker::start(&loopback_any_port()).unwrap();
        let addr = broker.addr();
        assert!(TcpStream::connect(addr).is_ok());
        broker.shutdown();
        assert!(TcpStream::connect(addr).is_err());
        // The port is free again for a new broker.
        let again = BrokerConfig {
            listen: addr,
            ..BrokerConfig::default()
        };
        let restarted = EmbeddedBroker::start(&again).unwrap();
        assert_eq!(restarted.addr(), addr);
    }
}
