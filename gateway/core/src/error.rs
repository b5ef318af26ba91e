//! Errors of components: start-up (`BuildError`) and run time (`ComponentError`).

use std::fmt;

/// Boxed error source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Who is at fault, for the `error_kind` metric label and the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad configuration or bad data.
    User,
    /// Something outside the gateway: broker, disk, camera.
    External,
    /// A bug in the gateway.
    Internal,
}

impl ErrorKind {
    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::User => "user",
            ErrorKind::External => "external",
            ErrorKind::Internal => "internal",
        }
    }
}

/// What the supervisor should do about a failed component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Retrying cannot help: fail the pipeline.
    Never,
    /// Retry with jittered exponential backoff.
    Backoff,
}

/// A run-time failure of a component.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ComponentError {
    /// Who is at fault.
    pub kind: ErrorKind,
    /// What the supervisor should do.
    pub retry: Retry,
    /// Short, bounded code used as the `error_code` metric label.
    pub code: &'static str,
    /// Human readable message.
    pub message: String,
    /// The underlying error.
    #[source]
    pub source: Option<BoxError>,
}

impl ComponentError {
    /// A new error.
    pub fn new(
        kind: ErrorKind,
        retry: Retry,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            retry,
            code,
            message: message.into(),
            source: None,
        }
    }

    /// An external failure (broker, disk) that is worth retrying.
    pub fn external(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::External, Retry::Backoff, code, message)
    }

    /// A user error (config or data) that retrying cannot fix.
    pub fn user(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::User, Retry::Never, code, message)
    }

    /// A broken internal invariant.
    pub fn internal(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, Retry::Never, code, message)
    }

    /// Downstream is gone: the pipeline is shutting down or failed.
    pub fn downstream_closed() -> Self {
        Self::new(
            ErrorKind::Internal,
            Retry::Never,
            "downstream_closed",
            "downstream closed",
        )
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }
}

/// A start-up failure: the component could not be built.
#[derive(Debug, thiserror::Error)]
pub struct BuildError {
    /// What was being done, e.g. `compiling query`.
    pub context: String,
    /// Why it failed.
    #[source]
    pub source: Option<BoxError>,
    /// Message when there is no source error.
    pub message: String,
}

impl BuildError {
    /// A build error with a plain message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self {
            context: String::new(),
            source: None,
            message: message.into(),
        }
    }

    /// A build error wrapping `source` with `context`.
    pub fn context(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self {
            context: context.into(),
            source: Some(source.into()),
            message: String::new(),
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.source, self.context.is_empty()) {
            (Some(s), false) => write!(f, "{}: {s}", self.context),
            (Some(s), true) => write!(f, "{s}"),
            (None, _) => f.write_str(&self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_error_renders_context_and_source() {
        let e = BuildError::context(
            "loading model m.onnx",
            std::io::Error::other("no such file"),
        );
        assert_eq!(e.to_string(), "loading model m.onnx: no such file");
    }
}
