//! Typed outbox errors, so a sink can map disk full to back-pressure and a
//! permission problem to a clear start-up failure.

use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;
use sluice_core::{ComponentError, ErrorKind, Retry};

/// A failed outbox operation. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The disk (or the file system quota) is full: nothing of the failed
    /// call was stored. Free space by acknowledging or evicting, or back off.
    #[error("outbox {path}: disk full while {op}: {source}")]
    DiskFull {
        /// The outbox file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A read or write of the file failed at the operating-system level.
    #[error("outbox {path}: I/O error while {op}: {source}")]
    Io {
        /// The outbox file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file or its directory cannot be opened or written (permissions,
    /// read-only file system, a directory in the way).
    #[error(
        "outbox {path}: cannot access the file while {op} (check permissions and that the path is a writable file): {source}"
    )]
    Access {
        /// The outbox file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// Another connection held the write lock longer than the busy timeout.
    #[error("outbox {path}: locked by another writer while {op}: {source}")]
    Busy {
        /// The outbox file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file is damaged or is not an outbox. `Outbox::open` moves such a
    /// file aside instead; this is returned when that is not possible or when
    /// damage shows up while running (reopen to recover).
    #[error("outbox {path}: file is corrupt or not an outbox: {detail}")]
    Corrupt {
        /// The outbox file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The file was written by a newer Sluice; it is left untouched so that
    /// version can still deliver its entries.
    #[error(
        "outbox {path}: schema version {found} is newer than the supported {supported}; upgrade Sluice or move the file away"
    )]
    NewerSchema {
        /// The outbox file.
        path: PathBuf,
        /// `user_version` found in the file.
        found: i64,
        /// Newest version this build understands.
        supported: i64,
    },
    /// A file-system operation around the database failed (creating the
    /// directory, moving a corrupt file aside).
    #[error("outbox {path}: {op}: {source}")]
    Fs {
        /// The path operated on.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// An entry passed to `append` is invalid (a caller bug).
    #[error("outbox: invalid entry #{index}: {reason}")]
    InvalidEntry {
        /// Position in the appended slice.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// Any other SQLite failure.
    #[error("outbox {path}: {op}: {source}")]
    Sqlite {
        /// The outbox file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
}

impl OutboxError {
    /// Classifies a SQLite error by its primary result code.
    pub(crate) fn from_sqlite(path: &Path, op: &'static str, source: rusqlite::Error) -> Self {
        let path = path.to_path_buf();
        match source.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => OutboxError::DiskFull { path, op, source },
            Some(ErrorCode::SystemIoFailure) => OutboxError::Io { path, op, source },
            Some(
                ErrorCode::CannotOpen
                | ErrorCode::PermissionDenied
                | ErrorCode::ReadOnly
                | ErrorCode::AuthorizationForStatementDenied,
            ) => OutboxError::Access { path, op, source },
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                OutboxError::Busy { path, op, source }
            }
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => OutboxError::Corrupt {
                path,
                detail: format!("{op}: {source}"),
            },
            _ => OutboxError::Sqlite { path, op, source },
        }
    }

    /// Short, bounded code for the `error_code` metric label.
    pub fn code(&self) -> &'static str {
        match self {
            OutboxError::DiskFull { .. } => "outbox_disk_full",
            OutboxError::Io { .. } => "outbox_io",
            OutboxError::Access { .. } => "outbox_access",
            OutboxError::Busy { .. } => "outbox_busy",
            OutboxError::Corrupt { .. } => "outbox_corrupt",
            OutboxError::NewerSchema { .. } => "outbox_schema",
            OutboxError::Fs { .. } => "outbox_fs",
            OutboxError::InvalidEntry { .. } => "outbox_invalid_entry",
            OutboxError::Sqlite { .. } => "outbox_sqlite",
        }
    }

    /// Whether the same call may succeed later without operator action
    /// (disk full, transient I/O, a busy writer). Corruption is also retryable
    /// through a reopen, which moves the damaged file aside.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            OutboxError::DiskFull { .. }
                | OutboxError::Io { .. }
                | OutboxError::Busy { .. }
                | OutboxError::Corrupt { .. }
        )
    }

    /// Whether the failure is a full disk.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, OutboxError::DiskFull { .. })
    }
}

/// Maps a SQLite error of `op` on `path`, for `map_err`.
pub(crate) fn sql<'a>(
    path: &'a Path,
    op: &'static str,
) -> impl FnOnce(rusqlite::Error) -> OutboxError + 'a {
    move |e| OutboxError::from_sqlite(path, op, e)
}

impl From<OutboxError> for ComponentError {
    fn from(e: OutboxError) -> Self {
        let (kind, retry) = match &e {
            OutboxError::InvalidEntry { .. } => (ErrorKind::Internal, Retry::Never),
            OutboxError::NewerSchema { .. } | OutboxError::Access { .. } => {
                (ErrorKind::User, Retry::Never)
            }
            _ if e.is_retryable() => (ErrorKind::External, Retry::Backoff),
            _ => (ErrorKind::External, Retry::Never),
        };
        ComponentError::new(kind, retry, e.code(), e.to_string()).with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_error(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn classifies_disk_full_as_retryable_back_pressure() {
        let e = OutboxError::from_sqlite(Path::new("o.db"), "appending", sqlite_error(13));
        assert!(e.is_disk_full() && e.is_retryable());
        let c = ComponentError::from(e);
        assert_eq!((c.code, c.retry), ("outbox_disk_full", Retry::Backoff));
        assert!(c.message.contains("o.db"), "{}", c.message);
    }

    #[test]
    fn classifies_permission_problems_as_user_errors_that_retrying_cannot_fix() {
        let e = OutboxError::from_sqlite(Path::new("o.db"), "opening", sqlite_error(14));
        assert_eq!(e.code(), "outbox_access");
        let c = ComponentError::from(e);
        assert_eq!((c.kind, c.retry), (ErrorKind::User, Retry::Never));
    }

    #[test]
    fn classifies_not_a_database_as_corrupt() {
        let e = OutboxError::from_sqlite(Path::new("o.db"), "opening", sqlite_error(26));
        assert_eq!(e.code(), "outbox_corrupt");
    }
}
