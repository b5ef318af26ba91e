//! A TCP proxy on loopback that can turn into a black hole: the connections
//! it holds stay open but no byte passes any more, the way a link behaves
//! when a firewall or a dead radio silently drops packets.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

/// A running proxy; its threads end with the test process.
pub struct Proxy {
    pub addr: SocketAddr,
    /// Connections accepted while this generation was current go silent
    /// when it changes.
    generation: Arc<AtomicU64>,
    stopped: Arc<AtomicBool>,
}

impl Proxy {
    /// Forwards connections on a free loopback port to `upstream`.
    pub fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let generation = Arc::new(AtomicU64::new(0));
        let stopped = Arc::new(AtomicBool::new(false));
        let (g, s) = (generation.clone(), stopped.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::Acquire) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect((Ipv4Addr::LOCALHOST, upstream)) else {
                    continue;
                };
                let mine = g.load(Ordering::Acquire);
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    g.clone(),
                    mine,
                    s.clone(),
                );
                pump(server, client, g.clone(), mine, s.clone());
            }
        });
        Self {
            addr,
            generation,
            stopped,
        }
    }

    /// `mqtt://` URL of the proxy.
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    /// Every open connection goes silent (nothing forwarded, nothing
    /// closed); new connections are forwarded normally.
    pub fn black_hole_current(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
        // Wake the accept loop so it sees `stopped`.
        TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).ok();
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    generation: Arc<AtomicU64>,
    mine: u64,
    stopped: Arc<AtomicBool>,
) {
    thread::spawn(move || {
        from.set_read_timeout(Some(Duration::from_millis(100))).ok();
        let mut buf = [0u8; 16 * 1024];
        while generation.load(Ordering::Acquire) == mine {
            let n = match from.read(&mut buf) {
                Ok(0) => {
                    to.shutdown(std::net::Shutdown::Both).ok();
                    return;
                }
                Ok(n) => n,
                Err(e) if is_timeout(&e) => continue,
                Err(_) => {
                    to.shutdown(std::net::Shutdown::Both).ok();
                    return;
                }
            };
            if generation.load(Ordering::Acquire) != mine {
                break;
            }
            if to.write_all(&buf[..n]).is_err() {
                return;
            }
        }
        // Black hole: swallow whatever arrives and never close `to`, not even
        // when `from` closes, until the proxy is dropped.
        while !stopped.load(Ordering::Acquire) {
            match from.read(&mut buf) {
                Ok(n) if n > 0 => {}
                Err(e) if is_timeout(&e) => {}
                _ => thread::sleep(Duration::from_millis(100)),
            }
        }
        drop(to);
    });
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}
