//! The admin server on a real loopback socket, queried with a minimal HTTP/1.1
//! client so no HTTP client dependency is needed.

use std::net::SocketAddr;
use std::time::Duration;

use sluice_core::{ComponentKind, ComponentLabels, ComponentMetrics, ReadyFlag};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::*;

const TIMEOUT: Duration = Duration::from_secs(10);

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    tokio::time::timeout(TIMEOUT, async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.trim().to_owned(), v.trim().to_owned())
            })
            .collect::<Vec<_>>();
        assert!(
            !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding")),
            "this client reads only bodies with a known length"
        );
        Reply {
            status,
            headers,
            body: body.to_owned(),
        }
    })
    .await
    .expect("admin request timed out")
}

struct Server {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), AdminError>>,
}

async fn start(state: AdminState) -> Server {
    let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve(listener, state, shutdown.clone()));
    Server {
        addr,
        shutdown,
        task,
    }
}

fn local_state() -> (AdminState, metrics_exporter_prometheus::PrometheusRecorder) {
    let recorder = prometheus_builder().unwrap().build_recorder();
    (AdminState::new(recorder.handle()), recorder)
}

#[tokio::test]
async fn healthz_answers_ok() {
    let (state, _recorder) = local_state();
    let server = start(state).await;
    let reply = get(server.addr, "/healthz").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "ok");
}

#[tokio::test]
async fn readyz_lists_unready_components_until_their_flags_are_set() {
    let (state, _recorder) = local_state();
    let flag = ReadyFlag::new();
    state.register_ready("line1", "telemetry", flag.clone());
    state.set_pipeline_state("line1", PipelineState::Running);
    let server = start(state).await;

    let reply = get(server.addr, "/readyz").await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    assert_eq!(body["ready"], false);
    assert_eq!(body["not_ready"][0]["pipeline"], "line1");
    assert_eq!(body["not_ready"][0]["component_id"], "telemetry");

    flag.set(true);
    let reply = get(server.addr, "/readyz").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["ready"], true);
}

#[tokio::test]
async fn readyz_is_unavailable_while_a_pipeline_has_failed() {
    let (state, _recorder) = local_state();
    state.set_pipeline_state(
        "line1",
        PipelineState::Failed("sink rejected config".into()),
    );
    let server = start(state).await;
    let reply = get(server.addr, "/readyz").await;
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.json()["not_ready"][0]["reason"],
        "failed: sink rejected config"
    );
}

#[tokio::test]
async fn metrics_renders_component_counters_and_second_buckets() {
    let (state, recorder) = local_state();
    let labels = ComponentLabels::new("line1", "telemetry", ComponentKind::Source, "mqtt");
    let m = metrics::with_local_recorder(&recorder, || {
        sluice_core::metrics::describe_all();
        ComponentMetrics::new(labels)
    });
    m.received(42, 4200);
    m.processing(Duration::from_millis(3));
    let server = start(state).await;

    let reply = get(server.addr, "/metrics").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(PROMETHEUS_CONTENT_TYPE));
    let line = reply
        .body
        .lines()
        .find(|l| l.starts_with("sluice_component_received_rows_total{"))
        .expect("received rows counter rendered");
    assert!(line.contains(r#"component_id="telemetry""#), "{line}");
    assert!(line.ends_with(" 42"), "{line}");
    assert!(
        reply
            .body
            .contains("# HELP sluice_component_received_rows_total Rows received"),
        "help text registered"
    );
    // 3 ms falls in the 0.005 bucket but not the 0.0025 one.
    let bucket = |le: &str| {
        reply
            .body
            .lines()
            .find(|l| {
                l.starts_with("sluice_component_processing_seconds_bucket{")
                    && l.contains(&format!(r#"le="{le}""#))
            })
            .map(|l| l.rsplit(' ').next().unwrap().to_owned())
    };
    assert_eq!(bucket("0.0025").as_deref(), Some("0"));
    assert_eq!(bucket("0.005").as_deref(), Some("1"));
}

#[tokio::test]
async fn status_lists_pipelines_states_and_component_readiness() {
    let (state, _recorder) = local_state();
    let ready = ReadyFlag::new();
    ready.set(true);
    state.register_ready("line1", "telemetry", ready);
    state.register_ready("line1", "scans", ReadyFlag::new());
    state.set_pipeline_state("line1", PipelineState::Running);
    state.set_pipeline_state("line2", PipelineState::Stopped);
    let server = start(state).await;

    let reply = get(server.addr, "/status").await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["ready"], false);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let pipelines = body["pipelines"].as_array().unwrap();
    assert_eq!(pipelines.len(), 2);
    assert_eq!(pipelines[0]["name"], "line1");
    assert_eq!(pipelines[0]["state"], "running");
    assert_eq!(
        pipelines[0]["components"],
        serde_json::json!([{"id": "telemetry", "ready": true}, {"id": "scans", "ready": false}])
    );
    assert_eq!(pipelines[1]["state"], "stopped");
}

#[tokio::test]
async fn unknown_path_is_not_found() {
    let (state, _recorder) = local_state();
    let server = start(state).await;
    assert_eq!(get(server.addr, "/nope").await.status, 404);
}

#[tokio::test]
async fn serve_returns_when_shutdown_fires() {
    let (state, _recorder) = local_state();
    let server = start(state).await;
    assert_eq!(get(server.addr, "/healthz").await.status, 200);
    server.shutdown.cancel();
    let result = tokio::time::timeout(TIMEOUT, server.task)
        .await
        .expect("server stopped");
    assert!(result.unwrap().is_ok());
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn binding_a_taken_address_names_it_and_the_flag() {
    let taken = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = taken.local_addr().unwrap();
    let err = bind(addr).await.unwrap_err();
    assert!(matches!(err, AdminError::AddrInUse { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("admin address {addr} is in use; pass --admin <ip:port> to choose another")
    );
}
