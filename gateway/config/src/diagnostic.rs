//! Problems found in a pipeline file, rendered gcc-style so that editors and CI
//! link straight to the offending line.

use std::fmt;
use std::path::{Path, PathBuf};

pub use sluice_core::validate::Severity;

use crate::parse::tree::Pos;

/// One problem at one place in a pipeline file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// The pipeline file.
    pub file: PathBuf,
    /// 1-based line; 0 when the problem concerns the whole file (e.g. it cannot
    /// be read).
    pub line: u64,
    /// 1-based column (characters); 0 when unknown.
    pub column: u64,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// How to fix it, if known.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error at `line:column` of `file`.
    pub fn error(file: &Path, line: u64, column: u64, message: impl Into<String>) -> Self {
        Self::new(file, line, column, Severity::Error, message)
    }

    /// A warning at `line:column` of `file`.
    pub fn warning(file: &Path, line: u64, column: u64, message: impl Into<String>) -> Self {
        Self::new(file, line, column, Severity::Warning, message)
    }

    fn new(
        file: &Path,
        line: u64,
        column: u64,
        severity: Severity,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_owned(),
            line,
            column,
            severity,
            message: message.into(),
            help: None,
        }
    }

    /// Adds a hint on how to fix the problem.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Whether this is an error (as opposed to a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        write!(f, ": {severity}: {}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found in a pipeline file: errors first, then warnings, each
/// group in file order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Sorts errors before warnings and each group by position; problems at
    /// the same position keep the order in which they were found.
    pub fn sorted(mut list: Vec<Diagnostic>) -> Self {
        list.sort_by_key(|d| (d.severity, d.line, d.column));
        Self(list)
    }

    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }

    /// The warnings only.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| !d.is_error())
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Collects the diagnostics of one file while it is loaded.
#[derive(Debug)]
pub(crate) struct Collector {
    file: PathBuf,
    list: Vec<Diagnostic>,
}

impl Collector {
    pub(crate) fn new(file: &Path) -> Self {
        Self {
            file: file.to_owned(),
            list: Vec::new(),
        }
    }

    pub(crate) fn error(&mut self, pos: Pos, message: impl Into<String>) -> &mut Diagnostic {
        self.push(Diagnostic::error(&self.file, pos.line, pos.column, message))
    }

    pub(crate) fn warn(&mut self, pos: Pos, message: impl Into<String>) -> &mut Diagnostic {
        self.push(Diagnostic::warning(
            &self.file, pos.line, pos.column, message,
        ))
    }

    pub(crate) fn issue(
        &mut self,
        pos: Pos,
        severity: Severity,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        let d = self.push(Diagnostic::new(
            &self.file, pos.line, pos.column, severity, message,
        ));
        d.help = help;
    }

    fn push(&mut self, d: Diagnostic) -> &mut Diagnostic {
        self.list.push(d);
        let last = self.list.len() - 1;
        &mut self.list[last]
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.list.iter().any(Diagnostic::is_error)
    }

    pub(crate) fn finish(self) -> Diagnostics {
        Diagnostics::sorted(self.list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_gcc_style_with_help_on_its_own_line() {
        let d = Diagnostic::error(
            Path::new("p/line3.yaml"),
            9,
            25,
            "input `telemtry` does not match",
        )
        .with_help("did you mean `telemetry`?");
        assert_eq!(
            d.to_string(),
            "p/line3.yaml:9:25: error: input `telemtry` does not match\n  help: did you mean `telemetry`?"
        );
    }

    #[test]
    fn renders_file_level_problems_without_line_and_column() {
        let d = Diagnostic::error(Path::new("gone.yaml"), 0, 0, "cannot read file");
        assert_eq!(d.to_string(), "gone.yaml: error: cannot read file");
    }

    #[test]
    fn sorts_errors_before_warnings_then_by_position() {
        let f = Path::new("f.yaml");
        let all = Diagnostics::sorted(vec![
            Diagnostic::warning(f, 1, 1, "w"),
            Diagnostic::error(f, 7, 3, "late"),
            Diagnostic::error(f, 2, 5, "early"),
        ]);
        let order: Vec<&str> = all.0.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(order, ["early", "late", "w"]);
        assert_eq!(
            all.to_string(),
            "f.yaml:2:5: error: early\nf.yaml:7:3: error: late\nf.yaml:1:1: warning: w"
        );
    }
}
