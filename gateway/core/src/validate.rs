//! Collecting every problem in a pipeline file, not just the first.
//!
//! Components report problems against a *path* relative to their own config
//! (`["query"]`, `["window", "every"]`); the config crate resolves paths to
//! file, line and column. Plugins therefore never depend on the YAML parser.

/// Severity of a diagnostic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Prevents the pipeline from running.
    Error,
    /// Worth fixing; the pipeline still runs.
    Warning,
}

/// One problem reported by a component.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// Error or warning.
    pub severity: Severity,
    /// Path below the component's config, e.g. `["window", "tumbling"]`. Empty
    /// means the component itself.
    pub path: Vec<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it, if known.
    pub help: Option<String>,
}

/// Sink for the problems of one component.
#[derive(Debug, Default)]
pub struct Validator {
    issues: Vec<Issue>,
}

impl Validator {
    /// An empty validator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reports an error at `path`.
    pub fn error(&mut self, path: &[&str], message: impl Into<String>) -> &mut Issue {
        self.push(Severity::Error, path, message)
    }

    /// Reports a warning at `path`.
    pub fn warn(&mut self, path: &[&str], message: impl Into<String>) -> &mut Issue {
        self.push(Severity::Warning, path, message)
    }

    fn push(
        &mut self,
        severity: Severity,
        path: &[&str],
        message: impl Into<String>,
    ) -> &mut Issue {
        self.issues.push(Issue {
            severity,
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            message: message.into(),
            help: None,
        });
        let last = self.issues.len() - 1;
        &mut self.issues[last]
    }

    /// Whether any error was reported.
    pub fn has_errors(&self) -> bool {
        self.issues.iter().any(|i| i.severity == Severity::Error)
    }

    /// All reported issues, in order.
    pub fn into_issues(self) -> Vec<Issue> {
        self.issues
    }

    /// The errors (not warnings), each as `path: message` (or the message
    /// alone at the root), joined by `; `.
    pub fn error_messages(self) -> String {
        let msgs: Vec<String> = self
            .issues
            .into_iter()
            .filter(|i| i.severity == Severity::Error)
            .map(|i| {
                if i.path.is_empty() {
                    i.message
                } else {
                    format!("{}: {}", i.path.join("."), i.message)
                }
            })
            .collect();
        msgs.join("; ")
    }

    /// The errors as the build error of component `id`, for a `build` that
    /// re-runs its checks.
    pub fn into_build_error(self, id: &str) -> crate::error::BuildError {
        crate::error::BuildError::msg(format!("component `{id}`: {}", self.error_messages()))
    }
}

impl Issue {
    /// Adds a hint on how to fix the problem.
    pub fn help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help = Some(help.into());
        self
    }
}
