//! The engine's control endpoint, served on its Unix socket only (mode 0600:
//! its owner's), never on the token-protected TCP listener:
//!
//! - `GET /engine`: the engine's status as JSON (`EngineStatus`);
//! - `POST /engine/stop`: a graceful shutdown (202; the engine drains its
//!   requests, releases its claim on the state directory, removes its socket
//!   and exits).
//!
//! `gantry engine status|stop` (lifecycle.rs) are their clients.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gantry_store::StateDir;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::activity::Activity;

/// Why a serving engine stops (logged as `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// SIGTERM or SIGINT.
    Signal,
    /// `gantry engine stop` (`POST /engine/stop`).
    Requested,
    /// Nothing was open or in flight for the idle timeout.
    Idle,
}

impl StopReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Signal => "signal",
            Self::Requested => "stop requested",
            Self::Idle => "idle",
        }
    }
}

/// Asks the serving engine to stop; the first reason given is the one logged.
pub(crate) fn request_stop(stop: &watch::Sender<Option<StopReason>>, reason: StopReason) {
    stop.send_if_modified(|current| {
        let first = current.is_none();
        if first {
            *current = Some(reason);
        }
        first
    });
}

/// What `GET /engine` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EngineStatus {
    pub(crate) version: String,
    pub(crate) pid: u32,
    pub(crate) socket: PathBuf,
    pub(crate) state_dir: PathBuf,
    /// `native` or `docker`.
    pub(crate) runtime: String,
    /// Seconds since the Unix epoch.
    pub(crate) started_at: u64,
    pub(crate) uptime_seconds: u64,
    /// `null`: never stops on its own.
    pub(crate) idle_timeout_seconds: Option<f64>,
    /// Open connections on the socket (this status request's included).
    pub(crate) connections: usize,
    /// Requests waiting for their answer (this one included).
    pub(crate) in_flight: usize,
    pub(crate) cache: CacheSize,
}

/// The state directory's size (every bucket: blobs, records, volumes, ...).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct CacheSize {
    pub(crate) bytes: u64,
    pub(crate) entries: u64,
}

/// What the endpoint needs from the serving engine.
pub(crate) struct Control {
    pub(crate) socket: PathBuf,
    pub(crate) state: StateDir,
    pub(crate) runtime: &'static str,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) activity: Arc<Activity>,
    pub(crate) stop: watch::Sender<Option<StopReason>>,
    pub(crate) started: Instant,
    pub(crate) started_at: SystemTime,
}

/// The routes above, to merge into the Unix socket's router.
pub(crate) fn router(control: Control) -> Router {
    Router::new()
        .route("/engine", get(status))
        .route("/engine/stop", post(stop))
        // Like the API's routes, these name the engine's version.
        .layer(axum::middleware::from_fn(gantry_api::version_headers))
        .with_state(Arc::new(control))
}

async fn status(State(control): State<Arc<Control>>) -> Response {
    let state = control.state.clone();
    // Walks the whole state directory: off the async workers.
    let usage = tokio::task::spawn_blocking(move || state.usage()).await;
    let cache = match usage {
        Ok(Ok(usage)) => {
            let total = usage.total();
            CacheSize {
                bytes: total.bytes,
                entries: total.entries,
            }
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot size the state directory");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot size the state directory: {error}"),
            )
                .into_response();
        }
        Err(error) => {
            tracing::warn!(%error, "sizing the state directory failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    Json(EngineStatus {
        version: gantry_api::VERSION.to_owned(),
        pid: std::process::id(),
        socket: control.socket.clone(),
        state_dir: control.state.root().to_path_buf(),
        runtime: control.runtime.to_owned(),
        started_at: control
            .started_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
        uptime_seconds: control.started.elapsed().as_secs(),
        idle_timeout_seconds: control.idle_timeout.map(|d| d.as_secs_f64()),
        connections: control.activity.connections(),
        in_flight: control.activity.in_flight(),
        cache,
    })
    .into_response()
}

async fn stop(State(control): State<Arc<Control>>) -> Response {
    tracing::info!("stop requested over the socket");
    request_stop(&control.stop, StopReason::Requested);
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "stopping": true, "pid": std::process::id() })),
    )
        .into_response()
}
