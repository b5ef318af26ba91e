//! A minimal HTTP/1.1 client for cameras on the local network: `GET` over
//! plain TCP, reading the status, headers and a body of known length,
//! chunked or delimited by the connection closing. Every read is bounded in
//! time and size, so a stalled or misbehaving camera is an error, never a hang.

use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;
use url::{Host, Url};

/// Longest status or header line accepted.
const MAX_LINE: usize = 8 * 1024;

/// Why an HTTP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Not an `http://host[:port]/path` URL.
    #[error("invalid camera URL `{0}`: expected http://host[:port]/path")]
    Url(String),
    /// Connecting, reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Nothing arrived within the timeout.
    #[error("no data from the camera for {0:?}")]
    Stalled(Duration),
    /// The camera answered with an error status.
    #[error("the camera answered HTTP {0}")]
    Status(u16),
    /// The response is not valid HTTP or multipart.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// A body or frame larger than the limit.
    #[error("frame larger than {0} bytes")]
    TooLarge(usize),
}

/// Parts of an `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host name or address.
    pub host: String,
    /// TCP port (80 by default).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses `http://host[:port][/path][?query]`. Credentials in the URL
    /// are refused: the client does not send them.
    pub fn parse(url: &str) -> Result<Self, HttpError> {
        let bad = || HttpError::Url(url.to_owned());
        let parsed = Url::parse(url).map_err(|_| bad())?;
        if parsed.scheme() != "http" || !parsed.username().is_empty() || parsed.password().is_some()
        {
            return Err(bad());
        }
        let host = match parsed.host() {
            Some(Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => return Err(bad()),
        };
        let path = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_owned(),
        };
        Ok(Self {
            host,
            port: parsed.port_or_known_default().unwrap_or(80),
            path,
        })
    }
}

/// A response whose head has been read; the body follows in `body`.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The connection, positioned at the start of the body.
    pub body: BufReader<TcpStream>,
}

impl Response {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one line (without the line end), failing after `wait` without data.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    wait: Duration,
) -> Result<Option<String>, HttpError> {
    let mut buf = Vec::new();
    let n = timeout(
        wait,
        (&mut *r).take(MAX_LINE as u64).read_until(b'\n', &mut buf),
    )
    .await
    .map_err(|_| HttpError::Stalled(wait))??;
    if n == 0 {
        return Ok(None);
    }
    if !buf.ends_with(b"\n") {
        return Err(HttpError::Malformed("line too long or cut off".into()));
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| HttpError::Malformed("non-UTF-8 header".into()))
}

/// Reads header lines up to the blank line.
pub async fn read_headers<R: AsyncBufRead + Unpin>(
    r: &mut R,
    wait: Duration,
) -> Result<Vec<(String, String)>, HttpError> {
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, wait)
            .await?
            .ok_or_else(|| HttpError::Malformed("connection closed in the headers".into()))?;
        if line.is_empty() {
            return Ok(headers);
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| HttpError::Malformed(format!("bad header line `{line}`")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        if headers.len() > 100 {
            return Err(HttpError::Malformed("more than 100 headers".into()));
        }
    }
}

/// Sends `GET` and reads the response head. Non-2xx statuses are errors.
pub async fn get(url: &HttpUrl, wait: Duration) -> Result<Response, HttpError> {
    let stream = timeout(wait, TcpStream::connect((url.host.as_str(), url.port)))
        .await
        .map_err(|_| HttpError::Stalled(wait))??;
    let mut body = BufReader::new(stream);
    let host = if url.host.contains(':') {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}:{}\r\nUser-Agent: sluice\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.path, url.port
    );
    timeout(wait, body.get_mut().write_all(request.as_bytes()))
        .await
        .map_err(|_| HttpError::Stalled(wait))??;
    let status_line = read_line(&mut body, wait)
        .await?
        .ok_or_else(|| HttpError::Malformed("connection closed before the status line".into()))?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| HttpError::Malformed(format!("bad status line `{status_line}`")))?;
    let headers = read_headers(&mut body, wait).await?;
    if !(200..300).contains(&status) {
        return Err(HttpError::Status(status));
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Reads exactly `n` bytes, each read bounded by `wait`.
pub async fn read_exact<R: AsyncBufRead + Unpin>(
    r: &mut R,
    n: usize,
    wait: Duration,
) -> Result<Vec<u8>, HttpError> {
    let mut buf = vec![0; n];
    let mut filled = 0;
    while filled < n {
        let got = timeout(wait, r.read(&mut buf[filled..]))
            .await
            .map_err(|_| HttpError::Stalled(wait))??;
        if got == 0 {
            return Err(HttpError::Malformed(format!(
                "body cut off after {filled} of {n} bytes"
            )));
        }
        filled += got;
    }
    Ok(buf)
}

/// Reads the whole body of a single-image response, at most `max` bytes.
pub async fn read_body(
    resp: &mut Response,
    max: usize,
    wait: Duration,
) -> Result<Vec<u8>, HttpError> {
    if let Some(len) = resp.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| HttpError::Malformed(format!("bad content-length `{len}`")))?;
        if len > max {
            return Err(HttpError::TooLarge(max));
        }
        return read_exact(&mut resp.body, len, wait).await;
    }
    if resp
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        let mut body = Vec::new();
        loop {
            let line = read_line(&mut resp.body, wait)
                .await?
                .ok_or_else(|| HttpError::Malformed("chunked body cut off".into()))?;
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| HttpError::Malformed(format!("bad chunk size `{line}`")))?;
            if size == 0 {
                return Ok(body);
            }
            if body.len() + size > max {
                return Err(HttpError::TooLarge(max));
            }
            body.extend(read_exact(&mut resp.body, size, wait).await?);
            read_line(&mut resp.body, wait).await?;
        }
    }
    let mut body = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let got = timeout(wait, resp.body.read(&mut chunk))
            .await
            .map_err(|_| HttpError::Stalled(wait))??;
        if got == 0 {
            return Ok(body);
        }
        if body.len() + got > max {
            return Err(HttpError::TooLarge(max));
        }
        body.extend_from_slice(&chunk[..got]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_camera_urls() {
        let u = HttpUrl::parse("http://10.0.0.7:8080/snap.jpg?res=hd").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("10.0.0.7", 8080, "/snap.jpg?res=hd")
        );
        assert_eq!(HttpUrl::parse("http://cam").unwrap().path, "/");
        assert!(HttpUrl::parse("rtsp://cam/1").is_err());
        assert!(HttpUrl::parse("http://user:pw@cam/").is_err());
        assert!(HttpUrl::parse("http://cam:99999/").is_err());
        let u = HttpUrl::parse("http://[::1]:8081/mjpeg").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 8081));
    }
}
