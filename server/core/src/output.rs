//! A running exec's output on its way to the events: the runtime hands
//! pieces to an `OutputSink`, which scrubs them of secret values (even a
//! value split across pieces), cuts them into lines, sends the lines as
//! `Output` events and keeps the last ones, both streams in the order they
//! came, for the detail of a failure.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::digest::Digest;
use crate::events::EventSink;
use crate::runtime::{OutputSink, OutputStream};
use crate::text::LineScrubber;

/// How many lines of output a failure's detail shows.
pub(crate) const TAIL_LINES: usize = 20;
/// The longest line the tail keeps (in characters).
const TAIL_LINE_MAX: usize = 1000;

/// One exec's live output.
#[derive(Clone)]
pub(crate) struct LiveOutput {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    step: Digest,
    events: EventSink,
    stdout: LineScrubber,
    stderr: LineScrubber,
    tail: VecDeque<String>,
    /// Lines not sent because a subscriber fell behind, not yet reported.
    skipped: usize,
}

impl Inner {
    fn take(&mut self, stream: OutputStream, mut lines: Vec<String>) {
        if lines.is_empty() {
            return;
        }
        for line in &lines {
            if self.tail.len() == TAIL_LINES {
                self.tail.pop_front();
            }
            self.tail
                .push_back(line.chars().take(TAIL_LINE_MAX).collect());
        }
        let count = lines.len();
        if self.skipped > 0 {
            let note = format!(
                "[gantry: {} lines not shown: progress fell behind]",
                self.skipped
            );
            lines.insert(0, note);
        }
        if self.events.output(&self.step, stream, lines) {
            self.skipped = 0;
        } else {
            self.skipped += count;
        }
    }
}

impl LiveOutput {
    /// The output of step `step` (its node digest), scrubbed of `secrets`.
    pub(crate) fn new(events: &EventSink, step: Digest, secrets: &[&str]) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                step,
                events: events.clone(),
                stdout: LineScrubber::new(secrets),
                stderr: LineScrubber::new(secrets),
                tail: VecDeque::new(),
                skipped: 0,
            })),
        }
    }

    /// The sink the runtime writes to.
    pub(crate) fn sink(&self) -> OutputSink {
        let live = self.clone();
        OutputSink::new(move |stream, bytes| live.write(stream, bytes))
    }

    fn write(&self, stream: OutputStream, bytes: &[u8]) {
        let mut inner = self.inner.lock().expect("output lock is never poisoned");
        let lines = match stream {
            OutputStream::Stdout => inner.stdout.push(bytes),
            OutputStream::Stderr => inner.stderr.push(bytes),
        };
        inner.take(stream, lines);
    }

    /// Passes on what is left of unfinished lines; returns the tail (the
    /// last lines of both streams, in order), empty when nothing came.
    pub(crate) fn finish(&self) -> String {
        let mut inner = self.inner.lock().expect("output lock is never poisoned");
        let stdout = inner.stdout.finish();
        inner.take(OutputStream::Stdout, stdout);
        let stderr = inner.stderr.finish();
        inner.take(OutputStream::Stderr, stderr);
        inner.tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Event;

    #[tokio::test]
    async fn lines_go_out_scrubbed_and_the_tail_keeps_both_streams_in_order() {
        let events = EventSink::default();
        let mut subscription = events.subscribe();
        let step = Digest::of_bytes(b"step");
        let live = LiveOutput::new(&events, step, &["t0ken"]);
        let sink = live.sink();
        sink.write(OutputStream::Stdout, b"one\nt0");
        sink.write(OutputStream::Stderr, b"oops\n");
        sink.write(OutputStream::Stdout, b"ken\nlast");
        let tail = live.finish();
        assert_eq!(tail, "one\noops\n***\nlast");
        let mut seen = Vec::new();
        while let Ok(Event::Output(output)) = subscription.try_recv() {
            assert_eq!(output.digest, step.short());
            for line in output.lines {
                seen.push(format!("{:?}:{line}", output.stream));
            }
        }
        assert_eq!(
            seen,
            ["Stdout:one", "Stderr:oops", "Stdout:***", "Stdout:last"]
        );
    }

    #[test]
    fn the_tail_keeps_the_last_lines() {
        let live = LiveOutput::new(&EventSink::default(), Digest::of_bytes(b"s"), &[]);
        let text: String = (0..30).map(|n| format!("line {n}\n")).collect();
        live.sink().write(OutputStream::Stderr, text.as_bytes());
        let tail = live.finish();
        let lines: Vec<&str> = tail.lines().collect();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines.last(), Some(&"line 29"));
    }
}
