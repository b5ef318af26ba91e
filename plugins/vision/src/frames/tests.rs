//! The `frames` source against real files and a real HTTP server on loopback.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sluice_core::{Frame, Msg, SourceConfig};
use sluice_testkit::SourceHarness;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use super::*;

const WAIT: Duration = Duration::from_secs(10);

fn photo(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    std::fs::read(path).unwrap()
}

fn start(yaml: &str, capacity: usize) -> SourceHarness {
    let cfg: FramesConfig = serde_saphyr::from_str(yaml).unwrap();
    SourceHarness::start(&cfg, "t", capacity, None).unwrap()
}

/// The next frame; `None` when the source ended.
async fn next(run: &mut SourceHarness) -> Option<Arc<Frame>> {
    let d = timeout(WAIT, run.rx.recv())
        .await
        .expect("no frame within 10 s")?;
    match d.msg {
        Msg::Frame(f) => Some(f),
        Msg::Rows(_) => panic!("a frame source sent rows"),
    }
}

async fn stop(run: SourceHarness) {
    let (result, _) = run.stop(WAIT).await;
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn files_become_frames_in_name_order_and_corrupt_files_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cam-1700000000100.jpg"),
        photo("person.jpg"),
    )
    .unwrap();
    std::fs::write(dir.path().join("cam-1700000000200.jpg"), b"not a jpeg").unwrap();
    std::fs::write(dir.path().join("cam-1700000000300.jpg"), photo("kite.jpg")).unwrap();
    let yaml = format!(
        "camera: till1\npath: {}\nfps: 50\ntimestamps: name\n",
        dir.path().display()
    );
    let mut run = start(&yaml, 8);
    let a = next(&mut run).await.unwrap();
    let b = next(&mut run).await.unwrap();
    assert_eq!(
        (a.camera.as_str(), a.event_time_ms, a.seq, a.width, a.height),
        ("till1", 1_700_000_000_100, 0, 640, 424)
    );
    assert_eq!(
        (b.event_time_ms, b.seq, b.width, b.height),
        (1_700_000_000_300, 1, 676, 450)
    );
    // Without `loop`, the source ends after the last file.
    assert!(next(&mut run).await.is_none());
    stop(run).await;
}

#[tokio::test]
async fn a_directory_of_files_meets_the_source_contract() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.jpg"), photo("person.jpg")).unwrap();
    std::fs::write(dir.path().join("b.jpg"), photo("kite.jpg")).unwrap();
    let cfg: FramesConfig =
        serde_saphyr::from_str(&format!("path: {}\nfps: 50\n", dir.path().display())).unwrap();
    // Without `loop` the source ends after the last file, closing its output.
    let msgs = sluice_testkit::run_source(&cfg, async {}, |_| false, WAIT).await;
    let frames: Vec<u64> = msgs
        .iter()
        .map(|m| match m {
            Msg::Frame(f) => f.seq,
            Msg::Rows(_) => panic!("a frame source sent rows"),
        })
        .collect();
    assert_eq!(frames, [0, 1]);
}

#[tokio::test]
async fn a_slow_consumer_gets_the_newest_frames_not_a_backlog() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.jpg"), photo("person.jpg")).unwrap();
    let yaml = format!(
        "path: {}\nfps: 200\nloop: true\nqueue: 2\n",
        dir.path().display()
    );
    let mut run = start(&yaml, 1);
    let first = next(&mut run).await.unwrap();
    // Nobody reads for a while; capture goes on at 200 frames/s.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut seqs = vec![first.seq];
    for _ in 0..3 {
        seqs.push(next(&mut run).await.unwrap().seq);
    }
    // At most the edge (1) and the queue (2) were waiting; the rest were dropped.
    assert!(
        seqs[3] > seqs[0] + 10,
        "sequence numbers {seqs:?} show a backlog"
    );
    stop(run).await;
}

/// Serves each connection with the next response of `script`, repeating the last.
async fn serve(script: Vec<Vec<u8>>, stall_after: bool) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let body = script[n.min(script.len() - 1)].clone();
            tokio::spawn(async move {
                read_request(&mut sock).await;
                if sock.write_all(&body).await.is_ok() && stall_after {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
            });
        }
    });
    (format!("http://{addr}"), count)
}

async fn read_request(sock: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn snapshot_response(body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

#[tokio::test]
async fn snapshot_url_recovers_from_a_server_error() {
    let error = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".to_vec();
    let (base, hits) = serve(vec![error, snapshot_response(&photo("person.jpg"))], false).await;
    let yaml = format!("snapshot_url: {base}/snap.jpg\nfps: 20\nmin_backoff: 50ms\n");
    let mut run = start(&yaml, 8);
    let f = next(&mut run).await.unwrap();
    assert_eq!((f.width, f.height, f.seq), (640, 424, 0));
    assert!(hits.load(Ordering::SeqCst) >= 2);
    stop(run).await;
}

fn mjpeg_response(parts: &[&[u8]]) -> Vec<u8> {
    let mut r =
        b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n"
            .to_vec();
    for p in parts {
        r.extend_from_slice(
            format!(
                "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                p.len()
            )
            .as_bytes(),
        );
        r.extend_from_slice(p);
        r.extend_from_slice(b"\r\n");
    }
    r
}

#[tokio::test]
async fn mjpeg_stream_skips_corrupt_parts_and_reconnects_after_a_stall() {
    let (person, kite) = (photo("person.jpg"), photo("kite.jpg"));
    let stream = mjpeg_response(&[&person, b"garbage", &kite]);
    let (base, hits) = serve(vec![stream], true).await;
    let yaml = format!("mjpeg_url: {base}/video\ntimeout: 300ms\nmin_backoff: 50ms\n");
    let mut run = start(&yaml, 8);
    let mut sizes = Vec::new();
    for _ in 0..4 {
        let f = next(&mut run).await.unwrap();
        sizes.push((f.width, f.seq));
    }
    // Two good frames per connection; the stalled connection was replaced.
    assert_eq!(sizes, [(640, 0), (676, 1), (640, 2), (676, 3)]);
    assert!(hits.load(Ordering::SeqCst) >= 2);
    stop(run).await;
}

#[test]
fn check_wants_exactly_one_input() {
    let cfg: FramesConfig = serde_saphyr::from_str("fps: 5\n").unwrap();
    let mut v = sluice_core::Validator::new();
    assert!(cfg.check(&mut v).is_none());
    assert!(v.into_issues()[0].message.contains("exactly one of"));
    let cfg: FramesConfig = serde_saphyr::from_str("mjpeg_url: rtsp://cam/1\n").unwrap();
    let mut v = sluice_core::Validator::new();
    assert!(cfg.check(&mut v).is_none());
    assert_eq!(v.into_issues()[0].path, ["mjpeg_url"]);
}
