//! One JSON POST over HTTP/1.1, plain or TLS, on a fresh connection: a
//! digest every few minutes does not need a pool, and a fresh connection
//! never inherits a half-dead one from an uplink that dropped meanwhile.
//! The caller bounds the whole exchange with a timeout.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::endpoint::Endpoint;

/// Largest response body read; a chat answer is a few KiB.
const MAX_RESPONSE: usize = 1 << 20;

/// Why a request brought no response body.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The TCP connection could not be opened.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The TLS handshake failed.
    #[error("TLS with {host}: {reason}")]
    Tls {
        /// Host name.
        host: String,
        /// What failed.
        reason: String,
    },
    /// The HTTP exchange failed (connection closed, malformed response,
    /// body too large).
    #[error("HTTP exchange: {0}")]
    Transport(String),
    /// A status other than 2xx.
    #[error("HTTP status {status}: {body}")]
    Status {
        /// Status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
}

impl HttpError {
    /// Bounded label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            HttpError::Connect { .. } => "connect",
            HttpError::Tls { .. } => "tls",
            HttpError::Transport(_) => "transport",
            HttpError::Status { .. } => "http_status",
        }
    }
}

/// Posts JSON to one endpoint.
#[derive(Clone)]
pub struct Client {
    endpoint: Endpoint,
    tls: Option<TlsConnector>,
    bearer: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("tls", &self.tls.is_some())
            .field("bearer", &self.bearer.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// TLS settings: the system's root certificates, ring as the provider (the
/// one the workspace already builds).
fn tls_connector() -> Result<TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if roots.is_empty() {
        return Err("no system root certificates found".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(cfg)))
}

impl Client {
    /// A client for `endpoint`, sending `Authorization: Bearer <bearer>`
    /// when given. Fails only when TLS is needed and cannot be set up.
    pub fn new(endpoint: Endpoint, bearer: Option<String>) -> Result<Self, String> {
        let tls = if endpoint.tls {
            Some(tls_connector()?)
        } else {
            None
        };
        Ok(Self {
            endpoint,
            tls,
            bearer,
        })
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// POSTs `body` as JSON and returns the body of a 2xx response.
    pub async fn post_json(&self, body: Vec<u8>) -> Result<Bytes, HttpError> {
        let e = &self.endpoint;
        let addr = format!("{}:{}", e.host, e.port);
        let tcp = TcpStream::connect((e.host.as_str(), e.port))
            .await
            .map_err(|source| HttpError::Connect {
                addr: addr.clone(),
                source,
            })?;
        // Requests are single small writes; do not wait for more to batch.
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "TCP_NODELAY not set on the escalation connection.");
        }
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(e.path.as_str())
            .header(HOST, e.authority.as_str())
            .header(CONTENT_TYPE, "application/json");
        if let Some(token) = &self.bearer {
            req = req.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|err| HttpError::Transport(format!("building the request: {err}")))?;
        match &self.tls {
            None => exchange(tcp, req).await,
            Some(tls) => {
                let name = ServerName::try_from(e.host.clone()).map_err(|err| HttpError::Tls {
                    host: e.host.clone(),
                    reason: err.to_string(),
                })?;
                let stream = tls.connect(name, tcp).await.map_err(|err| HttpError::Tls {
                    host: e.host.clone(),
                    reason: err.to_string(),
                })?;
                exchange(stream, req).await
            }
        }
    }
}

/// Sends `req` on `io` and reads the whole response, driving the connection
/// in the same task so nothing outlives the caller's timeout.
async fn exchange<IO>(io: IO, req: Request<Full<Bytes>>) -> Result<Bytes, HttpError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let transport = |e: hyper::Error| HttpError::Transport(e.to_string());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(transport)?;
    let response = async move {
        let resp = sender.send_request(req).await.map_err(transport)?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| HttpError::Transport(format!("reading the response: {e}")))?
            .to_bytes();
        if !status.is_success() {
            let end = body.len().min(200);
            return Err(HttpError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body[..end]).into_owned(),
            });
        }
        Ok(body)
    };
    tokio::pin!(conn, response);
    tokio::select! {
        r = &mut response => r,
        c = &mut conn => {
            // The connection ended first; the response has whatever it
            // delivered, or fails.
            c.map_err(transport)?;
            response.await
        }
    }
}
