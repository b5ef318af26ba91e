//! A real Mosquitto broker on a free loopback port, one per test.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a broker may take to accept TCP connections after spawning.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a broker may take to exit (and write its persistence file) on SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Whether the `mosquitto` binary can be run.
pub fn mosquitto_available() -> bool {
    Command::new("mosquitto")
        .arg("-h")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Whether the tests run in CI (`CI=true`), where missing tools fail tests
/// instead of skipping them.
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Returns `true` when the test may use Mosquitto. When the binary is missing
/// it prints a skip message and returns `false` on a developer machine.
///
/// # Panics
///
/// When the binary is missing and `CI=true`: a CI run must not silently skip
/// broker tests.
#[allow(clippy::panic)]
pub fn gate_mosquitto(test: &str) -> bool {
    if mosquitto_available() {
        return true;
    }
    if is_ci() {
        panic!("`mosquitto` is not installed but CI=true: cannot run {test}");
    }
    eprintln!("skipping {test}: `mosquitto` is not installed (apt-get install -y mosquitto)");
    false
}

/// Returns from the calling test (after printing a skip message) when the
/// `mosquitto` binary is missing; panics instead when `CI=true`.
///
/// ```no_run
/// #[tokio::test]
/// async fn receives_messages() {
///     sluice_testkit::require_mosquitto!();
///     let broker = sluice_testkit::Mosquitto::start().unwrap();
///     // ...
/// }
/// ```
#[macro_export]
macro_rules! require_mosquitto {
    () => {
        if !$crate::gate_mosquitto(module_path!()) {
            return;
        }
    };
}

/// A Mosquitto process listening on `127.0.0.1:<port>`, killed on drop.
///
/// The broker persists its state (retained messages, persistent sessions,
/// queued QoS 1 messages) in a temporary directory, so [`Mosquitto::stop`]
/// followed by [`Mosquitto::restart`] behaves like a broker restart in the field.
#[derive(Debug)]
pub struct Mosquitto {
    port: u16,
    dir: TempDir,
    conf: PathBuf,
    child: Option<Child>,
}

impl Mosquitto {
    /// Starts a broker with the default test configuration.
    pub fn start() -> io::Result<Self> {
        Self::start_with(&[])
    }

    /// Starts a broker with `extra_conf_lines` appended to the default
    /// configuration (e.g. `"max_packet_size 1024"`).
    pub fn start_with(extra_conf_lines: &[&str]) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("sluice-mosquitto-")
            .tempdir()?;
        let port = free_port()?;
        let conf = dir.path().join("mosquitto.conf");
        let text = config_text(
            port,
            dir.path(),
            owned_by_root(dir.path()),
            extra_conf_lines,
        );
        std::fs::write(&conf, text)?;
        let mut broker = Self {
            port,
            dir,
            conf,
            child: None,
        };
        broker.spawn()?;
        Ok(broker)
    }

    /// The TCP port the broker listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mqtt://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The broker's log file, useful when a test fails.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("mosquitto.log")
    }

    /// The broker's log so far (empty if unreadable). Start the broker with
    /// `start_with(&["log_type debug"])` to see every packet, e.g. to wait until
    /// a client acknowledged a message: `Received PUBACK from <client id>`.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Whether the broker process is running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops the broker gracefully (SIGTERM, so it writes its persistence
    /// file), keeping its directory for [`Mosquitto::restart`]. Connected
    /// clients see the connection drop.
    pub fn stop(&mut self) -> io::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let term = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        if term.is_ok_and(|s| s.success()) {
            while Instant::now() < deadline {
                if child.try_wait()?.is_some() {
                    return Ok(());
                }
                thread::sleep(POLL_INTERVAL);
            }
        }
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// Starts the broker again on the same port with the same persistence
    /// directory. Stops it first if it is running.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop()?;
        self.spawn()
    }

    fn spawn(&mut self) -> io::Result<()> {
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                return Err(io::Error::other(format!(
                    "mosquitto exited with {status} before listening on port {}: {log}",
                    self.port
                )));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                reap(&mut child);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "mosquitto did not listen on port {} within {START_TIMEOUT:?}",
                        self.port
                    ),
                ));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            reap(&mut child);
        }
    }
}

fn reap(child: &mut Child) {
    // `kill` fails when the child already exited; `wait` reaps it either way.
    let _killed = child.kill();
    let _status = child.wait();
}

/// A port that was free a moment ago. Another process may grab it before the
/// broker binds; the broker then fails to start and the error says so.
fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

fn config_text(port: u16, dir: &Path, as_root: bool, extra: &[&str]) -> String {
    let dir = dir.display();
    let mut lines = vec![
        format!("listener {port} 127.0.0.1"),
        "allow_anonymous true".to_owned(),
        "persistence true".to_owned(),
        format!("persistence_location {dir}/"),
        // Saved on SIGTERM only: `stop()` sends SIGTERM so `restart()` keeps state.
        "autosave_interval 0".to_owned(),
        format!("log_dest file {dir}/mosquitto.log"),
        "log_type error".to_owned(),
        "log_type warning".to_owned(),
        "log_type notice".to_owned(),
        // Throughput tests queue far more than Mosquitto's defaults (1000 queued,
        // 20 in flight per client) while a consumer is slow or offline.
        "max_queued_messages 1000000".to_owned(),
        "max_queued_bytes 0".to_owned(),
        "max_inflight_messages 1000".to_owned(),
        "set_tcp_nodelay true".to_owned(),
    ];
    if as_root {
        // Started as root, Mosquitto would switch to the `mosquitto` user, which
        // cannot write to this private temporary directory.
        lines.push("user root".to_owned());
    }
    lines.extend(extra.iter().map(|l| (*l).to_owned()));
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// Whether this process runs as root: the temporary directory it just created
/// is owned by its effective user.
fn owned_by_root(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    dir.metadata().is_ok_and(|m| m.uid() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_listens_on_loopback_only_and_persists_in_its_directory() {
        let text = config_text(4242, Path::new("/tmp/x"), false, &["max_packet_size 1024"]);
        assert!(text.contains("listener 4242 127.0.0.1\n"));
        assert!(text.contains("persistence_location /tmp/x/\n"));
        assert!(text.ends_with("max_packet_size 1024\n"));
    }

    #[test]
    fn broker_accepts_connections_and_restarts_on_the_same_port() {
        if !gate_mosquitto("broker_accepts_connections_and_restarts_on_the_same_port") {
            return;
        }
        let mut broker = Mosquitto::start().unwrap();
        let port = broker.port();
        assert_eq!(broker.url(), format!("mqtt://127.0.0.1:{port}"));
        TcpStream::connect(("127.0.0.1", port)).unwrap();
        broker.stop().unwrap();
        assert!(!broker.is_running());
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        broker.restart().unwrap();
        assert!(broker.is_running());
        TcpStream::connect(("127.0.0.1", port)).unwrap();
    }
}
