//! Reading JPEG frames from an MJPEG stream (`multipart/x-mixed-replace`),
//! as IP cameras serve it: parts separated by `--boundary` lines, each with
//! its own headers and, usually, a `Content-Length`.

use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};
use tokio::time::timeout;

use super::http::{HttpError, read_exact, read_headers, read_line};

/// The boundary named in a multipart `Content-Type`, without leading dashes.
pub fn boundary(content_type: &str) -> Option<String> {
    let lower = content_type.to_ascii_lowercase();
    if !lower.starts_with("multipart/") {
        return None;
    }
    content_type.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim().trim_matches('"');
        Some(v.trim_start_matches("--").to_owned()).filter(|b| !b.is_empty())
    })
}

/// Reads the parts of one multipart body.
#[derive(Debug)]
pub struct PartReader<R> {
    reader: R,
    /// `--boundary`.
    marker: Vec<u8>,
    /// Whether the marker line of the next part was already consumed.
    at_part: bool,
    max: usize,
    wait: Duration,
}

impl<R: AsyncBufRead + Unpin> PartReader<R> {
    /// Parts of `reader` separated by `boundary`; a part larger than `max`
    /// bytes, or `wait` without data, is an error.
    pub fn new(reader: R, boundary: &str, max: usize, wait: Duration) -> Self {
        Self {
            reader,
            marker: format!("--{boundary}").into_bytes(),
            at_part: false,
            max,
            wait,
        }
    }

    /// The body of the next part; `None` at the closing boundary or the end
    /// of the stream.
    pub async fn next_part(&mut self) -> Result<Option<Vec<u8>>, HttpError> {
        if !self.at_part {
            // Skip the preamble (or the line end after the previous part).
            loop {
                let Some(line) = read_line(&mut self.reader, self.wait).await? else {
                    return Ok(None);
                };
                if line.as_bytes().starts_with(&self.marker) {
                    if line.as_bytes()[self.marker.len()..].starts_with(b"--") {
                        return Ok(None);
                    }
                    break;
                }
                if !line.is_empty() && line.len() > 256 {
                    return Err(HttpError::Malformed("data outside a multipart part".into()));
                }
            }
        }
        self.at_part = false;
        let headers = read_headers(&mut self.reader, self.wait).await?;
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| v.clone());
        if let Some(len) = length {
            let len: usize = len
                .parse()
                .map_err(|_| HttpError::Malformed(format!("bad content-length `{len}`")))?;
            if len > self.max {
                return Err(HttpError::TooLarge(self.max));
            }
            return read_exact(&mut self.reader, len, self.wait).await.map(Some);
        }
        self.read_to_marker().await.map(Some)
    }

    /// A part without a length: everything up to the line holding the next
    /// marker, whose line end before it belongs to the delimiter.
    async fn read_to_marker(&mut self) -> Result<Vec<u8>, HttpError> {
        let mut body: Vec<u8> = Vec::new();
        loop {
            let start = body.len();
            // A read stops at the line end or once the body passed the limit
            // (with room for a closing marker line), so a stream without line
            // ends cannot grow the body without bound.
            let room = self
                .max
                .saturating_sub(start)
                .saturating_add(self.marker.len() + 5);
            let mut line = (&mut self.reader).take(room as u64);
            let n = timeout(self.wait, line.read_until(b'\n', &mut body))
                .await
                .map_err(|_| HttpError::Stalled(self.wait))??;
            if n == 0 {
                return Err(HttpError::Malformed("stream ended inside a part".into()));
            }
            if body[start..].starts_with(&self.marker) {
                let closing = body[start + self.marker.len()..].starts_with(b"--");
                body.truncate(start);
                for end in [b'\n', b'\r'] {
                    if body.last() == Some(&end) {
                        body.pop();
                    }
                }
                self.at_part = !closing;
                return Ok(body);
            }
            if body.len() > self.max {
                return Err(HttpError::TooLarge(self.max));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_boundary_with_or_without_quotes_and_dashes() {
        let b = |ct| boundary(ct);
        assert_eq!(
            b("multipart/x-mixed-replace; boundary=frame").as_deref(),
            Some("frame")
        );
        assert_eq!(
            b("multipart/x-mixed-replace;boundary=\"--myb\"").as_deref(),
            Some("myb")
        );
        assert_eq!(b("image/jpeg"), None);
    }

    fn reader(data: &'static [u8]) -> PartReader<&'static [u8]> {
        PartReader::new(data, "b", 1 << 20, Duration::from_secs(1))
    }

    #[tokio::test]
    async fn reads_parts_with_and_without_length() {
        let data = b"--b\r\nContent-Type: image/jpeg\r\nContent-Length: 3\r\n\r\nabc\r\n\
                     --b\r\nContent-Type: image/jpeg\r\n\r\nxy\nz\r\n--b--\r\n";
        let mut r = reader(data);
        assert_eq!(r.next_part().await.unwrap().as_deref(), Some(&b"abc"[..]));
        assert_eq!(r.next_part().await.unwrap().as_deref(), Some(&b"xy\nz"[..]));
        assert_eq!(r.next_part().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_part_without_length_or_line_ends_is_refused_after_about_the_limit() {
        let mut data = b"--b\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
        data.resize(4 << 20, b'x');
        let mut rest: &[u8] = &data;
        let mut r = PartReader::new(&mut rest, "b", 1024, Duration::from_secs(1));
        let err = r.next_part().await.unwrap_err();
        assert!(matches!(err, HttpError::TooLarge(1024)), "{err}");
        drop(r);
        let read = data.len() - rest.len();
        assert!(read < 2048, "read {read} bytes");
    }

    #[tokio::test]
    async fn refuses_a_part_over_the_limit() {
        let data = b"--b\r\nContent-Length: 99999999\r\n\r\n";
        let err = reader(data).next_part().await.unwrap_err();
        assert!(matches!(err, HttpError::TooLarge(_)), "{err}");
    }
}
