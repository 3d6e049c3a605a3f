//! Progress events: the engine emits each step's state once, and every
//! front end (CLI progress, SDK sessions) subscribes to the same stream.

use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::digest::Digest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepState {
    Cached,
    Running,
    Done,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepEvent {
    pub digest: String,
    pub name: String,
    pub state: StepState,
    /// Seconds since the Unix epoch.
    pub time: f64,
    /// For failures: the tail of the step's output (already scrubbed).
    pub detail: Option<String>,
}

pub struct EventSink {
    sender: broadcast::Sender<StepEvent>,
}

impl Default for EventSink {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(1024).0,
        }
    }
}

impl EventSink {
    pub fn subscribe(&self) -> broadcast::Receiver<StepEvent> {
        self.sender.subscribe()
    }

    pub(crate) fn step(
        &self,
        digest: &Digest,
        cmd: &[String],
        state: StepState,
        detail: Option<String>,
    ) {
        if self.sender.receiver_count() == 0 {
            return;
        }
        let time = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs_f64())
            .unwrap_or_default();
        // A send only fails when nobody listens, which is fine.
        let _ = self.sender.send(StepEvent {
            digest: digest.short(),
            name: format!("exec {}", cmd.join(" ")),
            state,
            time,
            detail,
        });
    }
}
