//! Errors of a Dockerfile build: located by the line of their instruction.

use crate::error::Error;

/// An error of the instruction at byte `at` of `text`, located by line.
/// Errors of steps (a failed `RUN`, a registry error) pass unchanged.
pub(super) fn at_line(error: Error, text: &str, at: usize) -> Error {
    let line = text[..at.min(text.len())].matches('\n').count() + 1;
    match error {
        Error::InvalidArgument { message } => Error::InvalidArgument {
            message: format!("Dockerfile:{line}: {message}"),
        },
        Error::Unsupported { message } => Error::Unsupported {
            message: format!("Dockerfile:{line}: {message}"),
        },
        Error::NotFound { path } => Error::InvalidArgument {
            message: format!("Dockerfile:{line}: {path}: no such file or directory"),
        },
        other => other,
    }
}

pub(super) fn unsupported(message: impl Into<String>) -> Error {
    Error::Unsupported {
        message: message.into(),
    }
}

pub(super) fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidArgument {
        message: message.into(),
    }
}
