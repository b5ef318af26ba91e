//! Where escalations go: the `url` of an OpenAI-compatible server, checked
//! once at validation, and the chat-completions path under it.

use hyper::Uri;

/// Path of the chat-completions call under the server's root.
pub const CHAT_PATH: &str = "/v1/chat/completions";

/// What is wrong with an `escalate.url`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not a URL at all.
    #[error("`{url}` is not a URL: {reason}")]
    Parse {
        /// As given.
        url: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A scheme other than `http` or `https`, or none.
    #[error("`{url}` must start with http:// or https://")]
    Scheme {
        /// As given.
        url: String,
    },
    /// No host name.
    #[error("`{url}` has no host")]
    Host {
        /// As given.
        url: String,
    },
    /// `user:password@` in the URL.
    #[error("`{url}` carries credentials; name an environment variable in `api_key_env` instead")]
    Credentials {
        /// As given, credentials removed.
        url: String,
    },
    /// `?query` in the URL.
    #[error("`{url}` has a query string; give the server's base URL")]
    Query {
        /// As given.
        url: String,
    },
}

/// A parsed escalation endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://` rather than `http://`.
    pub tls: bool,
    /// Host name or address, without brackets for IPv6.
    pub host: String,
    /// Port, the scheme's default when the URL has none.
    pub port: u16,
    /// `Host` header value.
    pub authority: String,
    /// Request path: the URL's path followed by [`CHAT_PATH`], unless the
    /// URL already ends with `/chat/completions`.
    pub path: String,
}

impl Endpoint {
    /// Parses the `url` setting: the server's base URL such as
    /// `http://127.0.0.1:8080` or `https://api.example.com`.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let url = url.trim();
        let uri: Uri =
            url.parse()
                .map_err(|e: <Uri as std::str::FromStr>::Err| UrlError::Parse {
                    url: url.to_owned(),
                    reason: e.to_string(),
                })?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(UrlError::Scheme {
                    url: url.to_owned(),
                });
            }
        };
        let Some(auth) = uri.authority() else {
            return Err(UrlError::Host {
                url: url.to_owned(),
            });
        };
        if auth.as_str().contains('@') {
            let shown = url.replacen(auth.as_str(), auth.host(), 1);
            return Err(UrlError::Credentials { url: shown });
        }
        if uri.query().is_some() {
            return Err(UrlError::Query {
                url: url.to_owned(),
            });
        }
        let host = auth.host().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(UrlError::Host {
                url: url.to_owned(),
            });
        }
        let base = uri.path().trim_end_matches('/');
        let path = if base.ends_with("/chat/completions") {
            base.to_owned()
        } else if base.ends_with("/v1") {
            format!("{base}/chat/completions")
        } else {
            format!("{base}{CHAT_PATH}")
        };
        Ok(Self {
            tls,
            host: host.to_owned(),
            port: auth.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            authority: auth.as_str().to_owned(),
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_gets_the_chat_completions_path() {
        let e = Endpoint::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            e,
            Endpoint {
                tls: false,
                host: "127.0.0.1".into(),
                port: 8080,
                authority: "127.0.0.1:8080".into(),
                path: "/v1/chat/completions".into(),
            }
        );
        let e = Endpoint::parse("https://llm.example.com/api/").unwrap();
        assert!(e.tls);
        assert_eq!((e.port, e.path.as_str()), (443, "/api/v1/chat/completions"));
        let e = Endpoint::parse("https://llm.example.com/v1").unwrap();
        assert_eq!(e.path, "/v1/chat/completions");
        let e = Endpoint::parse("http://[::1]:9000/v1/chat/completions").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 9000));
        assert_eq!(e.path, "/v1/chat/completions");
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        assert!(matches!(
            Endpoint::parse("ftp://host"),
            Err(UrlError::Scheme { .. })
        ));
        assert!(matches!(
            Endpoint::parse("localhost:8080"),
            Err(UrlError::Scheme { .. })
        ));
        assert!(matches!(
            Endpoint::parse("http://exa mple.com"),
            Err(UrlError::Parse { .. })
        ));
        assert!(matches!(
            Endpoint::parse("http://host/v1?key=1"),
            Err(UrlError::Query { .. })
        ));
        let e = Endpoint::parse("https://me:secret@host").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(matches!(e, UrlError::Credentials { .. }));
        assert!(Endpoint::parse("").is_err());
    }
}
