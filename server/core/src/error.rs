//! The solver's error type. Errors are `Clone` because one failure of a
//! deduplicated operation is handed to every caller waiting on it; foreign
//! sources are therefore held in `Arc`s or, for the runtime, as data.

use std::sync::Arc;

use crate::remote::RemoteError;
use crate::runtime::RuntimeError;

/// A command that exited with a code its `expect` did not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecFailure {
    pub cmd: Vec<String>,
    pub exit_code: i64,
    /// Captured output with secret values already replaced by `***`.
    pub stdout: String,
    pub stderr: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("process {cmd:?} did not complete successfully: exit code: {exit_code}", cmd = .0.cmd.join(" "), exit_code = .0.exit_code)]
    Exec(Box<ExecFailure>),
    #[error("no command has been set")]
    NoCommand,
    #[error("no service command has been set: give asService args, or set default args or an entrypoint on the container")]
    NoServiceCommand,
    /// `terminal` (or `--interactive`) where no client lent the engine a
    /// terminal: a script run directly, CI, stdin not a terminal.
    #[error("{what} needs an interactive terminal, and none is attached to this engine: run the pipeline under `gantry run -- CMD` (or `gantry call`) in a terminal, with stdin and stdout on it")]
    NoTerminal { what: String },
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("checksum mismatch for {url}: expected {expected}, got {actual}")]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{path}: no such file or directory")]
    NotFound { path: String },
    #[error("{path}: not a directory")]
    NotADirectory { path: String },
    #[error("{path}: is a directory, not a file")]
    IsADirectory { path: String },
    #[error("path {path:?} climbs out of its root")]
    PathEscapes { path: String },
    #[error("invalid argument: {message}")]
    InvalidArgument { message: String },
    #[error("unknown {kind} ID {id:?}: it was not made by this engine or its state was pruned")]
    UnknownId { kind: String, id: String },
    #[error("{found} ID passed where a {expected} ID is expected")]
    WrongIdKind { expected: String, found: String },
    #[error("secret {name:?} is not known to this engine: secret values live in memory only, so set it again in this session")]
    SecretUnavailable { name: String },
    #[error("{message}")]
    Unsupported { message: String },
    #[error(
        "the contents of {blob}, a file read from the remote cache, cannot be fetched: {reason}"
    )]
    BlobUnavailable { blob: String, reason: String },
    /// A read or write of the state directory failed: the OS's reason, what
    /// was being done, to which path (the action names it), and on a full
    /// disk what frees space. (The cause is part of the message, not a
    /// source: API clients see only messages.)
    #[error("{} while {action}{}", os_reason(cause), full_disk_hint(cause))]
    Store {
        action: String,
        cause: Arc<std::io::Error>,
    },
    #[error("reading an archive failed")]
    Archive(#[source] Arc<std::io::Error>),
    #[error("host path {path}: {reason}")]
    Host { path: String, reason: String },
    /// A service failed a step that needed it; `context` names the service
    /// (`start HOST (aliased as ALIAS)`). A service's own exec failure keeps
    /// its output, so the error reads like Dagger's: `CONTEXT: exit code: N`.
    #[error("{context}: {}", service_cause(source))]
    Service { context: String, source: Box<Error> },
    /// An error the pipeline asked for (`withError`).
    #[error("{message}")]
    Raised { message: String },
}

fn service_cause(source: &Error) -> String {
    match source {
        Error::Exec(failure) => format!("exit code: {}", failure.exit_code),
        other => other.to_string(),
    }
}

impl Error {
    pub(crate) fn tar(source: std::io::Error) -> Self {
        Self::Archive(Arc::new(source))
    }

    pub fn store(action: impl Into<String>, source: std::io::Error) -> Self {
        Self::Store {
            action: action.into(),
            cause: Arc::new(source),
        }
    }

    /// The image an operation found missing, when that is why it failed.
    pub(crate) fn missing_image(&self) -> Option<&str> {
        match self {
            Error::Runtime(RuntimeError::ImageMissing { image }) => Some(image),
            _ => None,
        }
    }

    /// The command failure behind this error, if any (a service's early
    /// exit carries its service's).
    pub fn exec_failure(&self) -> Option<&ExecFailure> {
        match self {
            Error::Exec(failure) => Some(failure),
            Error::Service { source, .. } => source.exec_failure(),
            _ => None,
        }
    }

    /// A stable, machine-readable code for API errors.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Exec(_) => "EXEC_ERROR",
            Error::NoCommand | Error::NoServiceCommand => "NO_COMMAND",
            Error::Runtime(RuntimeError::ImageNotFound { .. }) => "IMAGE_NOT_FOUND",
            Error::Runtime(RuntimeError::Unauthorized { .. }) => "UNAUTHORIZED",
            Error::Runtime(RuntimeError::PathNotFound { .. }) | Error::NotFound { .. } => {
                "NOT_FOUND"
            }
            Error::Runtime(RuntimeError::Unsupported { .. }) => "UNSUPPORTED",
            Error::Runtime(_) => "RUNTIME_ERROR",
            Error::Remote(RemoteError::GitAuth { .. }) => "UNAUTHORIZED",
            Error::Remote(RemoteError::Unsupported { .. }) => "UNSUPPORTED",
            Error::Remote(_) | Error::BlobUnavailable { .. } => "REMOTE_ERROR",
            Error::Checksum { .. } => "CHECKSUM_MISMATCH",
            Error::NotADirectory { .. } | Error::IsADirectory { .. } => "WRONG_FILE_TYPE",
            Error::PathEscapes { .. } | Error::InvalidArgument { .. } => "INVALID_ARGUMENT",
            Error::UnknownId { .. } | Error::WrongIdKind { .. } => "INVALID_ID",
            Error::SecretUnavailable { .. } => "SECRET_UNAVAILABLE",
            Error::Unsupported { .. } => "UNSUPPORTED",
            Error::NoTerminal { .. } => "NO_TERMINAL",
            Error::Store { .. } | Error::Archive(_) => "INTERNAL",
            Error::Host { .. } => "HOST_ERROR",
            Error::Service { source, .. } => source.code(),
            Error::Raised { .. } => "RAISED",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An OS error as people read it: "no space left on device (os error 28)".
fn os_reason(error: &std::io::Error) -> String {
    let text = error.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

fn full_disk_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            ": free space on that filesystem (`gantry prune` removes cached results); \
             gantry carries on by itself once there is room"
        }
        _ => "",
    }
}
