//! Errors of the state directory: I/O with the path and what was being
//! done, and a layout this gantry does not know.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action} {} failed", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] gantry_core::files::WriteError),
    #[error(
        "the state directory {} has layout {found}, newer than this gantry knows ({known}): \
         run a newer gantry or use another --state-dir",
        path.display()
    )]
    NewerLayout {
        path: PathBuf,
        found: String,
        known: u32,
    },
    #[error(
        "the state directory {} is already served by another engine (pid {pid}) on unix://{}: \
         point clients at it (GANTRY_SOCKET={}), stop it, or pass another --state-dir",
        path.display(), socket.display(), socket.display()
    )]
    Served {
        path: PathBuf,
        socket: PathBuf,
        pid: u32,
    },
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}

/// The solver sees store failures as its own `Error::Store`, with the path
/// in the action and the OS error as the source.
impl From<Error> for gantry_core::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Io {
                action,
                path,
                source,
            } => gantry_core::Error::store(format!("{action} {}", path.display()), source),
            Error::Write(error) => {
                gantry_core::Error::store(format!("writing {}", error.path.display()), error.source)
            }
            other @ (Error::NewerLayout { .. } | Error::Served { .. }) => {
                gantry_core::Error::Unsupported {
                    message: other.to_string(),
                }
            }
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
