//! Errors of this crate: `Error` for connecting to dockerd, and the single place where
//! bollard's errors become the core's data-only `RuntimeError`.

use bollard::errors::Error as BollardError;
use gantry_core::runtime::RuntimeError;

/// How to bring a daemon up on a development machine; appended to connect failures.
const START_HINT: &str = "start it with `make setup` (runs scripts/setup.sh)";

/// Failures of [`DockerRuntime::connect`](crate::DockerRuntime::connect).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot build a Docker client for {host}")]
    Client {
        host: String,
        #[source]
        source: BollardError,
    },
    #[error("dockerd is not answering at {host}; {START_HINT}")]
    NotAnswering {
        host: String,
        #[source]
        source: BollardError,
    },
    #[error("dockerd did not answer at {host} within {seconds}s; {START_HINT}")]
    Timeout { host: String, seconds: u64 },
    #[error("dockerd at {host} reports an API version gantry cannot parse: {version:?}")]
    ApiVersion { host: String, version: String },
}

/// What a failed Docker request was doing; picks the `RuntimeError` variant.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Operation<'a> {
    Pull { reference: &'a str },
    Push { reference: &'a str },
    ReadPath { path: &'a str },
    Other { action: &'a str },
}

/// The image a "no such image" answer names. dockerd words it
/// `No such image: X`, or `no such image: X: No such image: X` on inspect.
fn missing_image(reason: &str) -> Option<String> {
    const PREFIX: &str = "no such image: ";
    let start = reason.to_ascii_lowercase().find(PREFIX)? + PREFIX.len();
    let rest = &reason[start..];
    let end = match rest.strip_prefix("sha256:") {
        Some(hex) => {
            "sha256:".len()
                + hex
                    .find(|c: char| !c.is_ascii_hexdigit())
                    .unwrap_or(hex.len())
        }
        None => rest.find(": ").unwrap_or(rest.len()),
    };
    Some(rest[..end].trim().to_owned()).filter(|image| !image.is_empty())
}

fn operation_action(operation: Operation<'_>) -> String {
    match operation {
        Operation::Pull { reference } => format!("pulling {reference}"),
        Operation::Push { reference } => format!("pushing {reference}"),
        Operation::ReadPath { path } => format!("reading {path}"),
        Operation::Other { action } => action.to_owned(),
    }
}

/// Whether dockerd says the container is gone: 404 "No such container", or
/// 409 "… which is Dead" / "removal … is already in progress" when a
/// `docker rm -f` from outside races with the step's commit.
fn removed_outside(error: &BollardError, reason: &str) -> bool {
    let reason = reason.to_ascii_lowercase();
    match status(error) {
        Some(404) => reason.contains("no such container"),
        Some(409) => reason.contains("which is dead") || reason.contains("removal of container"),
        _ => false,
    }
}

/// Maps a bollard error into the core's `RuntimeError`, which holds strings only so the
/// solver can hand one failure to every waiter of a deduplicated operation.
///
/// Messages come from dockerd and registries, which never echo credentials; callers
/// holding a password still pass the result through [`redact`] as a second line of defence.
pub(crate) fn runtime_error(operation: Operation<'_>, error: &BollardError) -> RuntimeError {
    if is_unavailable(error) {
        return RuntimeError::Unavailable {
            reason: error_chain(error),
        };
    }
    let reason = message(error);
    if status(error) == Some(404) {
        if let Some(image) = missing_image(&reason) {
            return RuntimeError::ImageMissing { image };
        }
    }
    if removed_outside(error, &reason) {
        return RuntimeError::Failed {
            action: operation_action(operation),
            reason: "the step's container was removed outside gantry (docker rm?) while it ran"
                .to_owned(),
        };
    }
    match operation {
        Operation::Pull { reference } if is_unauthorized(error) => RuntimeError::Unauthorized {
            reference: reference.to_owned(),
            reason,
        },
        // Anything else a pull reports (unknown manifest, unreachable registry, bad
        // reference) means the image cannot be had.
        Operation::Pull { reference } => RuntimeError::ImageNotFound {
            reference: reference.to_owned(),
            reason,
        },
        Operation::Push { reference } if is_unauthorized(error) => RuntimeError::Unauthorized {
            reference: reference.to_owned(),
            reason,
        },
        Operation::Push { reference } => RuntimeError::Failed {
            action: format!("pushing {reference}"),
            reason,
        },
        Operation::ReadPath { path } if status(error) == Some(404) => RuntimeError::PathNotFound {
            path: path.to_owned(),
        },
        Operation::ReadPath { path } => RuntimeError::Failed {
            action: format!("reading {path}"),
            reason,
        },
        Operation::Other { action } => RuntimeError::Failed {
            action: action.to_owned(),
            reason,
        },
    }
}

/// Replaces every occurrence of `secret` in the error's text fields with `***`.
pub(crate) fn redact(error: RuntimeError, secret: Option<&str>) -> RuntimeError {
    let Some(secret) = secret.filter(|s| !s.is_empty()) else {
        return error;
    };
    let clean = |s: String| s.replace(secret, "***");
    match error {
        RuntimeError::ImageNotFound { reference, reason } => RuntimeError::ImageNotFound {
            reference: clean(reference),
            reason: clean(reason),
        },
        RuntimeError::Unauthorized { reference, reason } => RuntimeError::Unauthorized {
            reference: clean(reference),
            reason: clean(reason),
        },
        RuntimeError::PathNotFound { path } => RuntimeError::PathNotFound { path: clean(path) },
        RuntimeError::ImageMissing { image } => RuntimeError::ImageMissing {
            image: clean(image),
        },
        RuntimeError::Unavailable { reason } => RuntimeError::Unavailable {
            reason: clean(reason),
        },
        RuntimeError::Failed { action, reason } => RuntimeError::Failed {
            action: clean(action),
            reason: clean(reason),
        },
    }
}

/// The HTTP status dockerd answered with, when the request got that far.
pub(crate) fn status(error: &BollardError) -> Option<u16> {
    match error {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// dockerd's own message for daemon-side failures, the error chain otherwise.
pub(crate) fn message(error: &BollardError) -> String {
    match error {
        BollardError::DockerResponseServerError { message, .. } => message.clone(),
        BollardError::DockerStreamError { error } => error.clone(),
        BollardError::DockerContainerWaitError { error, code } if error.is_empty() => {
            format!("container exited with code {code}")
        }
        BollardError::DockerContainerWaitError { error, .. } => error.clone(),
        other => error_chain(other),
    }
}

/// The daemon itself could not be reached (as opposed to refusing a request).
fn is_unavailable(error: &BollardError) -> bool {
    matches!(
        error,
        BollardError::HyperLegacyError { .. }
            | BollardError::HyperResponseError { .. }
            | BollardError::IOError { .. }
            | BollardError::SocketNotFoundError(_)
            | BollardError::RequestTimeoutError
            | BollardError::UnsupportedURISchemeError { .. }
    )
}

fn is_unauthorized(error: &BollardError) -> bool {
    if status(error) == Some(401) {
        return true;
    }
    let text = message(error).to_ascii_lowercase();
    [
        "unauthorized",
        "authentication required",
        "no basic auth credentials",
        "incorrect username or password",
        "requested access to the resource is denied",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// `error: cause: cause…`, for errors whose text is all we can carry across the boundary.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_images_are_named_as_dockerd_words_them() {
        let id = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            missing_image(&format!("No such image: {id}")),
            Some(id.clone())
        );
        assert_eq!(
            missing_image(&format!("no such image: {id}: No such image: {id}")),
            Some(id)
        );
        assert_eq!(
            missing_image("No such image: gantry.local/x/cache:1"),
            Some("gantry.local/x/cache:1".to_owned())
        );
        assert_eq!(missing_image("No such container: abc"), None);
    }

    fn server(status_code: u16, message: &str) -> BollardError {
        BollardError::DockerResponseServerError {
            status_code,
            message: message.to_owned(),
        }
    }

    #[test]
    fn pull_errors_split_into_not_found_and_unauthorized() {
        let op = Operation::Pull { reference: "r:1" };
        let not_found = runtime_error(op, &server(404, "manifest unknown"));
        assert_eq!(
            not_found,
            RuntimeError::ImageNotFound {
                reference: "r:1".into(),
                reason: "manifest unknown".into()
            }
        );
        let stream = BollardError::DockerStreamError {
            error: "Head \"http://x/v2/a/manifests/b\": no basic auth credentials".into(),
        };
        assert!(matches!(
            runtime_error(op, &stream),
            RuntimeError::Unauthorized { .. }
        ));
        assert!(matches!(
            runtime_error(op, &server(401, "x")),
            RuntimeError::Unauthorized { .. }
        ));
    }

    #[test]
    fn read_path_404_is_path_not_found() {
        let op = Operation::ReadPath { path: "/nope" };
        assert_eq!(
            runtime_error(
                op,
                &server(404, "Could not find the file /nope in container x")
            ),
            RuntimeError::PathNotFound {
                path: "/nope".into()
            }
        );
    }

    #[test]
    fn transport_errors_are_unavailable() {
        let op = Operation::Other { action: "x" };
        assert!(matches!(
            runtime_error(op, &BollardError::RequestTimeoutError),
            RuntimeError::Unavailable { .. }
        ));
    }

    #[test]
    fn redact_hides_the_secret_everywhere() {
        let error = RuntimeError::Unauthorized {
            reference: "r".into(),
            reason: "bad password hunter2".into(),
        };
        assert_eq!(
            redact(error, Some("hunter2")),
            RuntimeError::Unauthorized {
                reference: "r".into(),
                reason: "bad password ***".into()
            }
        );
    }
}
