//! `escalate:` against real endpoints on loopback: an OpenAI-compatible
//! server (llama-cpp-python's, serving the shipped GGUF, started here), one
//! that accepts and never answers, one that answers garbage, and a closed
//! port. The local digest always goes out unchanged and on time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_core::arrow_array::cast::AsArray;
use sluice_core::arrow_array::types::UInt64Type;
use sluice_core::arrow_array::{Array, RecordBatch};
use sluice_plugin_summarize::names::{
    SUMMARIZE_ESCALATION_FAILURES_TOTAL, SUMMARIZE_ESCALATION_SENT_BYTES_TOTAL,
    SUMMARIZE_ESCALATIONS_TOTAL,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where `scripts/setup.sh` installs llama-cpp-python's server.
const VENV: &str = ".cache/sluice/llama-server-venv";
/// Longest wait for the server to load the model and listen.
const SERVER_START: Duration = Duration::from_secs(180);

/// One digest row's columns that matter here.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    summary: String,
    escalated: Option<String>,
    escalation_bytes: Option<u64>,
    window_bytes: Option<u64>,
}

fn rows(batches: &[RecordBatch]) -> Vec<Row> {
    let mut out = Vec::new();
    for b in batches {
        let text = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
        let num = |n: &str| {
            b.column_by_name(n)
                .unwrap()
                .as_primitive::<UInt64Type>()
                .clone()
        };
        let (summary, escalated) = (text("summary"), text("escalated_summary"));
        let (sent, window) = (num("escalation_bytes"), num("window_bytes"));
        for i in 0..b.num_rows() {
            out.push(Row {
                summary: summary.value(i).to_owned(),
                escalated: (!escalated.is_null(i)).then(|| escalated.value(i).to_owned()),
                escalation_bytes: (!sent.is_null(i)).then(|| sent.value(i)),
                window_bytes: (!window.is_null(i)).then(|| window.value(i)),
            });
        }
    }
    out
}

fn batch(id: &str) -> common::EvalBatch {
    common::load(&common::default_batches())
        .into_iter()
        .find(|b| b.id == id)
        .unwrap()
}

/// Settings for `b` with `escalate` (or without, when null) and windows of
/// `max_events`; the local time budget is generous (a test box may be busy).
fn config(
    b: &common::EvalBatch,
    max_events: usize,
    escalate: Value,
) -> sluice_plugin_summarize::SummarizeConfig {
    let mut extra = json!({"timeout": "300s", "max_events": max_events});
    if !escalate.is_null() {
        extra["escalate"] = escalate;
    }
    b.config(&common::default_model(), extra.as_object().unwrap())
}

fn failures(run: &common::Run, reason: &str) -> u64 {
    run.capture.counter(
        SUMMARIZE_ESCALATION_FAILURES_TOTAL,
        &[("component_id", "digest"), ("reason", reason)],
    )
}

fn outcomes(run: &common::Run, outcome: &str) -> u64 {
    run.capture.counter(
        SUMMARIZE_ESCALATIONS_TOTAL,
        &[("component_id", "digest"), ("outcome", outcome)],
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// llama-cpp-python's OpenAI-compatible server on a free loopback port,
/// killed on drop.
struct LlamaServer {
    child: Child,
    port: u16,
    log: tempfile::NamedTempFile,
}

impl LlamaServer {
    /// The venv's Python when it has the server installed.
    fn python() -> Result<PathBuf, String> {
        let python = match std::env::var_os("SLUICE_LLAMA_SERVER_PYTHON") {
            Some(p) => PathBuf::from(p),
            None => {
                let home = std::env::var_os("HOME").ok_or("HOME is not set")?;
                Path::new(&home).join(VENV).join("bin/python")
            }
        };
        let ok = Command::new(&python)
            .args(["-c", "import llama_cpp.server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Ok(python)
        } else {
            Err(format!(
                "{} cannot import llama_cpp.server (scripts/setup.sh installs \
                 llama-cpp-python[server] there; SLUICE_LLAMA_SERVER_PYTHON overrides the path)",
                python.display()
            ))
        }
    }

    fn start(python: &Path) -> Self {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(python)
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(common::default_model())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--n_ctx", "2048", "--n_threads", "1", "--verbose", "false"])
            .stdin(Stdio::null())
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        let mut server = Self { child, port, log };
        let started = Instant::now();
        // The server loads the model before it listens: a connection means
        // it is ready.
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("llama_cpp.server exited with {status}:\n{}", server.log());
            }
            assert!(
                started.elapsed() < SERVER_START,
                "llama_cpp.server did not listen within {SERVER_START:?}:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn log(&self) -> String {
        let mut s = String::new();
        self.log.reopen().unwrap().read_to_string(&mut s).unwrap();
        s
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        // `kill` fails when the server already exited; `wait` reaps it either way.
        let _killed = self.child.kill();
        let _status = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_openai_compatible_server_answers_in_its_own_column() {
    let python = match LlamaServer::python() {
        Ok(p) => p,
        Err(why) if sluice_testkit::is_ci() => panic!("CI=true but {why}"),
        Err(why) => {
            eprintln!("SKIPPED a_real_openai_compatible_server_answers_in_its_own_column: {why}");
            return;
        }
    };
    let server = LlamaServer::start(&python);
    let b = batch("f19");
    let local = common::run(&config(&b, 1000, Value::Null), &b).await;
    let cfg = config(
        &b,
        1000,
        json!({"url": format!("http://127.0.0.1:{}", server.port), "timeout": "120s",
               "max_tokens": 48, "model": "smollm2"}),
    );
    let run = common::run(&cfg, &b).await;
    let (local, escalated) = (rows(&local.rows), rows(&run.rows));
    assert_eq!(escalated.len(), 1);
    let r = &escalated[0];
    let answer = r.escalated.as_deref().unwrap_or_else(|| {
        panic!(
            "no answer; failures {:?}; server log:\n{}",
            [
                "connect",
                "timeout",
                "http_status",
                "bad_answer",
                "transport"
            ]
            .map(|x| (x, failures(&run, x))),
            server.log()
        )
    });
    assert!(!answer.trim().is_empty());
    assert_eq!(r.summary, local[0].summary, "the local digest is unchanged");
    let unset = (
        &local[0].escalated,
        local[0].escalation_bytes,
        local[0].window_bytes,
    );
    assert_eq!(unset, (&None, None, None), "null without `escalate:`");
    let (sent, window) = (r.escalation_bytes.unwrap(), r.window_bytes.unwrap());
    assert!(
        sent > 0 && window > 4 * sent,
        "sent {sent} B, window {window} B"
    );
    assert_eq!(outcomes(&run, "answered"), 1);
    assert_eq!(
        run.capture.counter(
            SUMMARIZE_ESCALATION_SENT_BYTES_TOTAL,
            &[("component_id", "digest")]
        ),
        sent
    );
    eprintln!(
        "{} events: sent {sent} B instead of {window} B of events\nlocal: {}\nescalated: {answer}",
        b.events(),
        r.summary
    );
}

/// Accepts connections and holds them open without a word; records how
/// long each stayed open before the client gave up and closed it.
async fn hanging_endpoint() -> (u16, Arc<Mutex<Vec<Duration>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let record = held.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let opened = Instant::now();
                let mut buf = [0u8; 4096];
                while s.read(&mut buf).await.is_ok_and(|n| n > 0) {}
                record.lock().unwrap().push(opened.elapsed());
            });
        }
    });
    (port, held)
}

/// Reads each request whole, then answers `response` and closes.
async fn answering_endpoint(response: &'static [u8]) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = s.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            // The client may have given up already; nothing to do then.
            let _written = s.write_all(response).await;
            let _closed = s.shutdown().await;
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_endpoint_costs_one_timeout_then_escalation_pauses() {
    let b = batch("f06"); // 20 events: two windows of 10
    let (port, held) = hanging_endpoint().await;
    let local = rows(&common::run(&config(&b, 10, Value::Null), &b).await.rows);
    let cfg = config(
        &b,
        10,
        json!({"url": format!("http://127.0.0.1:{port}"), "timeout": "1s", "pause": "60s"}),
    );
    let run = common::run(&cfg, &b).await;
    let got = rows(&run.rows);
    assert_eq!(got.len(), 2);
    for (g, l) in got.iter().zip(&local) {
        assert_eq!(g.summary, l.summary, "the local digest is unchanged");
        assert_eq!(g.escalated, None);
    }
    assert!(
        got[0].escalation_bytes.is_some(),
        "the first digest was sent"
    );
    assert_eq!(got[1].escalation_bytes, None, "the second was not: paused");
    assert_eq!(failures(&run, "timeout"), 1);
    assert_eq!(outcomes(&run, "failed"), 1);
    assert_eq!(outcomes(&run, "paused"), 1);
    // The client closes the connection when its timeout passes; the
    // second digest never connects.
    for _ in 0..100 {
        if !held.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let held = held.lock().unwrap().clone();
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(
        // Far below the 60 s pause and the model's own time, with room for
        // a loaded 2-core machine.
        held[0] >= Duration::from_millis(900) && held[0] < Duration::from_secs(5),
        "the escalation waited {:?} for a 1 s timeout",
        held[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_answers_and_closed_ports_are_counted_and_the_digest_goes_out() {
    let b = batch("f00");
    let local = rows(&common::run(&config(&b, 10, Value::Null), &b).await.rows);
    let garbage =
        answering_endpoint(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n<html>oops!").await;
    let refusing = free_port();
    let error =
        answering_endpoint(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nboom")
            .await;
    for (port, reason) in [
        (garbage, "bad_answer"),
        (refusing, "connect"),
        (error, "http_status"),
    ] {
        let cfg = config(
            &b,
            10,
            json!({"url": format!("http://127.0.0.1:{port}"), "timeout": "5s"}),
        );
        let run = common::run(&cfg, &b).await;
        let got = rows(&run.rows);
        assert_eq!(got.len(), 1, "{reason}");
        assert_eq!(got[0].summary, local[0].summary, "{reason}");
        assert_eq!(got[0].escalated, None, "{reason}");
        assert_eq!(failures(&run, reason), 1, "{reason}");
        assert_eq!(outcomes(&run, "failed"), 1, "{reason}");
    }
}
