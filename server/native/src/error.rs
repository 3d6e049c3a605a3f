//! Errors of the native runtime, and how they become the solver's `RuntimeError`.

use std::path::{Path, PathBuf};

use gantry_core::runtime::RuntimeError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action} failed at {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{id} is not an image ID of the native runtime (sha256:<64 hex digits>)")]
    BadId { id: String },
    #[error("the native runtime cannot run here: {reason}")]
    Unsupported { reason: String },
    #[error("{program} failed while {action}: {detail}")]
    Command {
        program: String,
        action: &'static str,
        detail: String,
    },
    /// An image the solver holds is gone from the snapshot store (pruned by another
    /// process, removed by hand): the solver runs the steps that made it again.
    #[error("{reason}")]
    ImageMissing { image: String, reason: String },
    #[error("invalid archive: {reason}")]
    Archive { reason: String },
    #[error("{action}: {reason}")]
    Other {
        action: &'static str,
        reason: String,
    },
}

impl From<gantry_core::pack::Error> for Error {
    fn from(error: gantry_core::pack::Error) -> Self {
        Self::Io {
            action: error.action,
            path: error.path,
            source: error.source,
        }
    }
}

impl Error {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn archive(reason: impl std::fmt::Display) -> Self {
        Self::Archive {
            reason: reason.to_string(),
        }
    }

    pub(crate) fn other(action: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Other {
            action,
            reason: reason.to_string(),
        }
    }

    /// As a `RuntimeError` the solver can share between waiters: the message of
    /// this error and of each of its sources.
    pub(crate) fn into_runtime(self, action: &str) -> RuntimeError {
        match self {
            Self::Unsupported { reason } => return RuntimeError::Unavailable { reason },
            Self::ImageMissing { image, .. } => return RuntimeError::ImageMissing { image },
            _ => {}
        }
        RuntimeError::Failed {
            action: action.to_owned(),
            reason: chain(&self),
        }
    }
}

/// `error: source: source…`
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(next) = source {
        let more = next.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = next.source();
    }
    text
}

/// `map_err` helper: a store/IO error turned into a `RuntimeError` for `action`.
pub(crate) fn failed(action: &'static str) -> impl FnOnce(Error) -> RuntimeError {
    move |error| error.into_runtime(action)
}
