//! The MJPEG multipart part parser of the `frames` source.
//!
//! Input layout: byte 0 picks how the stream is cut into reads (0: one read;
//! otherwise reads of 1 to 64 bytes from a generator seeded with it), the
//! first line is the `Content-Type` of the response (its `boundary=`, or the
//! line itself when it names none), the rest is the body. Invariants: every
//! part is at most the limit, and each call consumes input, so the stream
//! ends in a bounded number of parts.
#![no_main]

use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sluice_plugin_vision::frames::mjpeg::{PartReader, boundary};
use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};
use tokio::runtime::Runtime;

/// Largest part accepted.
const MAX: usize = 16 << 10;

/// A stream that hands out `data` in reads of the given sizes.
struct Chunked<'a> {
    data: &'a [u8],
    pos: usize,
    /// End of the current read.
    cut: usize,
    state: u32,
}

impl<'a> Chunked<'a> {
    fn new(data: &'a [u8], seed: u8) -> Self {
        let mut s = Chunked {
            data,
            pos: 0,
            cut: 0,
            state: u32::from(seed),
        };
        s.next_cut();
        s
    }

    fn next_cut(&mut self) {
        let len = if self.state == 0 {
            self.data.len()
        } else {
            // xorshift32: reproducible cuts for a given seed.
            self.state ^= self.state << 13;
            self.state ^= self.state >> 17;
            self.state ^= self.state << 5;
            1 + (self.state % 64) as usize
        };
        self.cut = (self.pos + len).min(self.data.len());
    }
}

impl AsyncRead for Chunked<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let chunk = match self.as_mut().poll_fill_buf(cx) {
            Poll::Ready(Ok(c)) => c,
            other => return other.map_ok(|_| ()),
        };
        let n = chunk.len().min(buf.remaining());
        buf.put_slice(&chunk[..n]);
        self.as_mut().consume(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncBufRead for Chunked<'_> {
    fn poll_fill_buf(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        Poll::Ready(Ok(&this.data[this.pos..this.cut]))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        this.pos = (this.pos + amt).min(this.cut);
        if this.pos == this.cut {
            this.next_cut();
        }
    }
}

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    let (head, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let content_type = String::from_utf8_lossy(head);
    let marker = boundary(&content_type).unwrap_or_else(|| content_type.trim().to_owned());
    runtime().block_on(async {
        let mut parts = PartReader::new(
            Chunked::new(body, seed),
            &marker,
            MAX,
            Duration::from_secs(5),
        );
        // Every part takes at least one byte of the body, the closing
        // marker or the end: more calls than bytes means it stopped reading.
        for _ in 0..=body.len() + 1 {
            match parts.next_part().await {
                Ok(Some(part)) => assert!(part.len() <= MAX, "a part of {}", part.len()),
                Ok(None) | Err(_) => return,
            }
        }
        panic!("more parts than bytes in the stream");
    });
});
