//! Progress events: the engine emits each step's state once, and every
//! front end (CLI progress, SDK sessions) subscribes to the
//! same stream.
//!
//! Steps are execs (`exec ARGS…`), image pulls (`pull ADDRESS`) and copies
//! out of a container (`read PATH`). A running exec's output comes as
//! `Output` events, a line at a time. Names, details and lines never carry
//! secret values: exec output is scrubbed before it gets here, cache
//! explanations name secrets and variables but never hold values, and
//! environment variables are never part of an event.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::digest::Digest;
use crate::runtime::OutputStream;

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
    /// For failures: the tail of the step's output, stdout and stderr in
    /// the order they came (already scrubbed).
    pub detail: Option<String>,
    /// For finished execs: the command's exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// For execs: the image the container started from (its `from` address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// On an exec's `running` event, when a subscriber asked for it
    /// (`Subscription::explaining`): why the cache missed, one reason a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_miss: Option<Vec<String>>,
    /// The request whose evaluation emitted the event ([`with_origin`]),
    /// for a server that traces each client apart. Never sent to clients.
    #[serde(skip)]
    pub origin: Option<u64>,
}

tokio::task_local! {
    static ORIGIN: u64;
}

/// Runs `work` with every step event it emits tagged `origin` (see
/// `StepEvent::origin`). A step that two requests wait on is evaluated,
/// and so tagged, by the first.
pub async fn with_origin<F: std::future::Future>(origin: u64, work: F) -> F::Output {
    ORIGIN.scope(origin, work).await
}

impl StepEvent {
    /// An event of step `digest`, stamped when it is emitted.
    pub fn new(digest: &Digest, name: String, state: StepState) -> Self {
        Self {
            digest: digest.short(),
            name,
            state,
            time: 0.0,
            detail: None,
            exit_code: None,
            image: None,
            cache_miss: None,
            origin: ORIGIN.try_with(|origin| *origin).ok(),
        }
    }
}

/// Lines a running exec printed (scrubbed, without their newlines).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputEvent {
    /// The step's digest, as in its `StepEvent`s.
    pub digest: String,
    pub stream: OutputStream,
    pub lines: Vec<String>,
}

/// Everything the engine reports, in the order it happened.
#[derive(Debug, Clone)]
pub enum Event {
    Step(StepEvent),
    Output(OutputEvent),
}

/// How many events a subscriber may fall behind before it misses some
/// (exec output is batched per piece the runtime reads, so this is lines
/// of many steps at once).
const CAPACITY: usize = 4096;

#[derive(Clone)]
pub struct EventSink {
    sender: broadcast::Sender<Event>,
    /// How many subscribers want cache explanations.
    explaining: Arc<AtomicUsize>,
}

impl Default for EventSink {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(CAPACITY).0,
            explaining: Arc::default(),
        }
    }
}

/// One subscriber's view of the events from the moment it subscribed.
pub struct Subscription {
    receiver: broadcast::Receiver<Event>,
    /// The sink's count of subscribers that want explanations.
    counter: Arc<AtomicUsize>,
    explaining: bool,
}

impl Subscription {
    /// Asks the engine to explain every cache miss while this subscription
    /// lives (it costs reading earlier runs' records on each miss).
    pub fn explaining(mut self, explain: bool) -> Self {
        if explain && !self.explaining {
            self.counter.fetch_add(1, Ordering::SeqCst);
            self.explaining = true;
        }
        self
    }

    /// The next event; `Lagged` says how many were missed.
    pub async fn recv(&mut self) -> Result<Event, broadcast::error::RecvError> {
        self.receiver.recv().await
    }

    /// The next event if one is queued.
    pub fn try_recv(&mut self) -> Result<Event, broadcast::error::TryRecvError> {
        self.receiver.try_recv()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.explaining {
            self.counter.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl EventSink {
    pub fn subscribe(&self) -> Subscription {
        Subscription {
            receiver: self.sender.subscribe(),
            counter: self.explaining.clone(),
            explaining: false,
        }
    }

    /// Whether anyone listens (events need not be built otherwise).
    pub(crate) fn listening(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    /// Whether a subscriber wants cache misses explained.
    pub(crate) fn explaining(&self) -> bool {
        self.explaining.load(Ordering::SeqCst) > 0
    }

    /// Any step's event; `name` says what the step does (`pull …`, `read …`).
    pub(crate) fn emit(
        &self,
        digest: &Digest,
        name: String,
        state: StepState,
        detail: Option<String>,
    ) {
        if !self.listening() {
            return;
        }
        let mut event = StepEvent::new(digest, name, state);
        event.detail = detail;
        self.send(event);
    }

    /// A step event built by the caller; its time is now.
    pub(crate) fn send(&self, mut event: StepEvent) {
        if !self.listening() {
            return;
        }
        event.time = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs_f64())
            .unwrap_or_default();
        // A send only fails when nobody listens, which is fine.
        let _ = self.sender.send(Event::Step(event));
    }

    /// Lines of a running step's output.
    /// Lines of a running step's output. Returns false when they were
    /// dropped because a subscriber is half the channel behind: output must
    /// not push step events out of a slow reader's queue.
    pub(crate) fn output(&self, digest: &Digest, stream: OutputStream, lines: Vec<String>) -> bool {
        if lines.is_empty() || !self.listening() {
            return true;
        }
        if self.sender.len() >= CAPACITY / 2 {
            return false;
        }
        let _ = self.sender.send(Event::Output(OutputEvent {
            digest: digest.short(),
            stream,
            lines,
        }));
        true
    }
}

/// How an exec step is named in events: `exec ARGS…`.
pub(crate) fn exec_name(cmd: &[String]) -> String {
    format!("exec {}", cmd.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(event: Event) -> StepEvent {
        match event {
            Event::Step(step) => step,
            Event::Output(output) => panic!("expected a step event, got {output:?}"),
        }
    }

    #[test]
    fn subscribers_get_each_event_and_it_round_trips_as_json() {
        let sink = EventSink::default();
        let digest = Digest::of_bytes(b"step");
        // Nobody listens: nothing is built or sent.
        sink.emit(&digest, "pull busybox".into(), StepState::Running, None);
        let mut subscription = sink.subscribe();
        let mut failed = StepEvent::new(
            &digest,
            exec_name(&["echo".into(), "hi".into()]),
            StepState::Failed,
        );
        failed.detail = Some("boom".into());
        sink.send(failed);
        let event = step(subscription.try_recv().unwrap());
        assert!(subscription.try_recv().is_err());
        assert_eq!(event.name, "exec echo hi");
        assert_eq!(event.digest, digest.short());
        let json = serde_json::to_string(&event).unwrap();
        assert!(json.contains(r#""state":"failed""#), "{json}");
        assert!(!json.contains("exit_code"), "unset fields stay out: {json}");
        let back: StepEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back.state, StepState::Failed);
        assert_eq!(back.detail.as_deref(), Some("boom"));
    }

    #[test]
    fn output_gives_way_to_a_slow_subscriber() {
        let sink = EventSink::default();
        let digest = Digest::of_bytes(b"step");
        let _slow = sink.subscribe();
        let mut sent = 0;
        while sink.output(&digest, OutputStream::Stdout, vec!["line".into()]) {
            sent += 1;
        }
        assert_eq!(sent, CAPACITY / 2);
        // Step events still fit.
        sink.emit(&digest, "pull x".into(), StepState::Done, None);
        assert_eq!(sink.sender.len(), CAPACITY / 2 + 1);
    }

    #[test]
    fn explaining_lasts_as_long_as_the_subscription() {
        let sink = EventSink::default();
        assert!(!sink.explaining());
        let plain = sink.subscribe();
        assert!(!sink.explaining());
        let explaining = sink.subscribe().explaining(true);
        assert!(sink.explaining());
        drop(plain);
        assert!(sink.explaining());
        drop(explaining);
        assert!(!sink.explaining());
    }
}
