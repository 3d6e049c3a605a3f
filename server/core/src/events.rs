//! Progress events: the engine emits each step's state once, and every
//! front end (CLI progress, SDK sessions) subscribes to the same stream.
//!
//! Steps are execs (`exec ARGS…`), image pulls (`pull ADDRESS`) and copies
//! out of a container (`read PATH`). Names and details never carry secret
//! values: exec output is scrubbed before it gets here, and environment
//! variables are never part of an event.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::digest::Digest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepState {
    Cached,
    Running,
    Done,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepEvent {
    /// Identifies the step across its events (a short digest).
    pub digest: String,
    /// What the step does, e.g. `exec go test ./...`.
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

    /// An exec step's event.
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
        self.emit(digest, format!("exec {}", cmd.join(" ")), state, detail);
    }

    /// Any step's event; `name` says what the step does (`pull …`, `read …`).
    pub(crate) fn emit(
        &self,
        digest: &Digest,
        name: String,
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
            name,
            state,
            time,
            detail,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_get_each_event_and_it_round_trips_as_json() {
        let sink = EventSink::default();
        let digest = Digest::of_bytes(b"step");
        // Nobody listens: nothing is built or sent.
        sink.emit(&digest, "pull busybox".into(), StepState::Running, None);
        let mut receiver = sink.subscribe();
        sink.step(
            &digest,
            &["echo".into(), "hi".into()],
            StepState::Failed,
            Some("boom".into()),
        );
        let event = receiver.try_recv().unwrap();
        assert!(receiver.try_recv().is_err());
        assert_eq!(event.name, "exec echo hi");
        assert_eq!(event.digest, digest.short());
        let json = serde_json::to_string(&event).unwrap();
        assert!(json.contains(r#""state":"failed""#), "{json}");
        let back: StepEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back.state, StepState::Failed);
        assert_eq!(back.detail.as_deref(), Some("boom"));
    }
}
