//! Live progress on stderr for `gantry run`, `gantry query` and (opt-in)
//! `gantry session`: every step the engine reports (exec, pull, read) as it
//! is cached, starts, runs, finishes or fails.
//!
//! The engine emits each event once (`Engine::events`, also served as
//! `GET /events`); this module only renders them, either as plain
//! timestamped lines (CI logs, `--progress=plain`) or as a list redrawn in
//! place on a terminal. Events never carry environment variables, and exec
//! output in them was scrubbed of secret values by the engine.

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context as _, Result};
use gantry_core::events::{StepEvent, StepState};
use gantry_core::Engine;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::UnixStream;
use tokio::sync::{broadcast, oneshot};

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ProgressMode {
    /// `tty` when stderr is a terminal, else `plain`
    Auto,
    /// Timestamped lines, one per step event (what CI logs want)
    Plain,
    /// Running steps redrawn in place, finished steps listed above them
    Tty,
    /// No progress
    Quiet,
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ProgressArgs {
    /// How to show step progress on stderr
    #[arg(
        long,
        value_enum,
        value_name = "MODE",
        default_value_t = ProgressMode::Auto,
        env = crate::env::PROGRESS
    )]
    pub(crate) progress: ProgressMode,
}

/// What the renderer shows.
pub(crate) enum Message {
    Step(StepEvent),
    /// Output of the command `gantry run` runs, when it is routed through
    /// the renderer so it does not tear the in-place list.
    Output(Stream, Vec<u8>),
    Finish,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Tty,
}

/// The renderer: a thread that owns stderr's progress output.
pub(crate) struct Progress {
    style: Option<Style>,
    sender: mpsc::Sender<Message>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    pub(crate) fn start(mode: ProgressMode) -> Self {
        let style = match mode {
            ProgressMode::Quiet => None,
            ProgressMode::Plain => Some(Style::Plain),
            ProgressMode::Tty => Some(Style::Tty),
            ProgressMode::Auto => {
                let dumb = std::env::var("TERM").is_ok_and(|term| term == "dumb");
                Some(if std::io::stderr().is_terminal() && !dumb {
                    Style::Tty
                } else {
                    Style::Plain
                })
            }
        };
        let (sender, receiver) = mpsc::channel();
        // A thread, not a task: writes to a slow or blocked stderr must not
        // hold up the engine's workers (the engine's broadcast never waits).
        let thread = style.map(|style| {
            std::thread::Builder::new()
                .name("gantry-progress".into())
                .spawn(move || render(style, &receiver))
                .expect("spawning the progress thread")
        });
        Self {
            style,
            sender,
            thread,
        }
    }

    /// Whether steps are drawn in place (and a command's terminal output
    /// should go through `sender`).
    pub(crate) fn is_tty(&self) -> bool {
        self.style == Some(Style::Tty)
    }

    pub(crate) fn sender(&self) -> Option<mpsc::Sender<Message>> {
        self.style.map(|_| self.sender.clone())
    }

    /// Forwards the events of an engine in this process.
    pub(crate) fn follow_engine(&self, engine: &Engine) -> Option<Follower> {
        let sender = self.sender()?;
        let mut events = engine.events().subscribe();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    biased;
                    event = events.recv() => match event {
                        Ok(event) => {
                            if sender.send(Message::Step(event)).is_err() {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    _ = &mut stopped => break,
                }
            }
            // Whatever the engine emitted before the work ended.
            loop {
                match events.try_recv() {
                    Ok(event) => {
                        let _ = sender.send(Message::Step(event));
                    }
                    Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
        });
        Some(Follower {
            stop: Some(stop),
            task,
        })
    }

    /// Follows the event stream (`GET /events`) of the engine serving on
    /// `socket`. Returns once subscribed, so no event of a request sent
    /// afterwards is missed; `None` (and a debug log) if the engine has no
    /// event stream.
    pub(crate) async fn follow_socket(&self, socket: &Path) -> Option<Follower> {
        let sender = self.sender()?;
        let (stream, rest, chunked) = match subscribe(socket).await {
            Ok(subscribed) => subscribed,
            Err(error) => {
                tracing::debug!(error = %format!("{error:#}"), "no progress: the engine's event stream is unavailable");
                return None;
            }
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(read_events(stream, rest, chunked, sender, stopped));
        Some(Follower {
            stop: Some(stop),
            task,
        })
    }

    /// Waits until everything sent so far is shown, then clears the
    /// in-place list and prints a summary (on a terminal).
    pub(crate) fn finish(mut self) {
        self.close();
    }

    fn close(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.sender.send(Message::Finish);
            let _ = thread.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.close();
    }
}

/// A task feeding one source of events to the renderer.
pub(crate) struct Follower {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Follower {
    /// Stops after forwarding what the engine has already emitted.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------
// The event stream over the engine socket

/// How long a stopped socket follower waits for more events (they travel on
/// their own connection, so they can trail the answer they belong to).
const TRAILING_EVENTS_QUIET: Duration = Duration::from_millis(150);
const TRAILING_EVENTS_MAX: Duration = Duration::from_secs(1);

async fn subscribe(socket: &Path) -> Result<(UnixStream, Vec<u8>, bool)> {
    let mut stream = UnixStream::connect(socket)
        .await
        .with_context(|| format!("while connecting to {}", socket.display()))?;
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: gantry\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .context("while asking for the event stream")?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if raw.len() > 64 * 1024 {
            bail!("the engine sent an oversized response head");
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .context("while waiting for the event stream")??;
        if n == 0 {
            bail!("the engine closed the event stream");
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        bail!(
            "the engine answered {}",
            head.lines().next().unwrap_or_default()
        );
    }
    let chunked = head
        .lines()
        .any(|line| line.starts_with("transfer-encoding:") && line.contains("chunked"));
    Ok((stream, raw[head_end + 4..].to_vec(), chunked))
}

async fn read_events(
    mut stream: UnixStream,
    rest: Vec<u8>,
    chunked: bool,
    sender: mpsc::Sender<Message>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut body = Dechunk::new(chunked);
    let mut events = SseParser::default();
    let mut seen_any = false;
    let mut forward = |input: &[u8]| {
        let mut data = Vec::new();
        body.feed(input, &mut data);
        for event in events.feed(&data) {
            seen_any = true;
            let _ = sender.send(Message::Step(event));
        }
        seen_any
    };
    forward(&rest);
    let mut buf = vec![0u8; 16 * 1024];
    let mut stopping_since: Option<Instant> = None;
    loop {
        // `read` is cancel-safe, so racing it against the stop signal loses nothing.
        let read = match stopping_since {
            None => tokio::select! {
                read = stream.read(&mut buf) => read,
                _ = &mut stopped => {
                    // A query that ran no step (all answered from the
                    // engine's memory) has nothing trailing: stop now.
                    if !forward(&[]) {
                        return;
                    }
                    stopping_since = Some(Instant::now());
                    continue;
                }
            },
            Some(since) => {
                if since.elapsed() > TRAILING_EVENTS_MAX {
                    return;
                }
                match tokio::time::timeout(TRAILING_EVENTS_QUIET, stream.read(&mut buf)).await {
                    Ok(read) => read,
                    Err(_) => return,
                }
            }
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                forward(&buf[..n]);
            }
        }
    }
}

/// Undoes HTTP/1.1 chunked transfer coding, incrementally.
#[derive(Debug)]
enum Dechunk {
    Identity,
    Size(Vec<u8>),
    Data(usize),
    DataEnd(usize),
    Done,
}

impl Dechunk {
    fn new(chunked: bool) -> Self {
        if chunked {
            Dechunk::Size(Vec::new())
        } else {
            Dechunk::Identity
        }
    }

    fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            match self {
                Dechunk::Identity => {
                    out.extend_from_slice(input);
                    return;
                }
                Dechunk::Done => return,
                Dechunk::Size(line) => {
                    let Some(newline) = input.iter().position(|&b| b == b'\n') else {
                        line.extend_from_slice(input);
                        return;
                    };
                    line.extend_from_slice(&input[..newline]);
                    input = &input[newline + 1..];
                    let text = String::from_utf8_lossy(line);
                    let size = text.split(';').next().unwrap_or_default().trim();
                    *self = match usize::from_str_radix(size, 16) {
                        Ok(0) | Err(_) => Dechunk::Done,
                        Ok(size) => Dechunk::Data(size),
                    };
                }
                Dechunk::Data(left) => {
                    let take = (*left).min(input.len());
                    out.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    *left -= take;
                    if *left == 0 {
                        *self = Dechunk::DataEnd(2);
                    }
                }
                Dechunk::DataEnd(left) => {
                    let take = (*left).min(input.len());
                    input = &input[take..];
                    *left -= take;
                    if *left == 0 {
                        *self = Dechunk::Size(Vec::new());
                    }
                }
            }
        }
    }
}

/// Server-sent events: `data:` lines up to a blank line make one event;
/// comments (`:`) and other fields are skipped.
#[derive(Debug, Default)]
struct SseParser {
    line: Vec<u8>,
    data: String,
}

impl SseParser {
    fn feed(&mut self, input: &[u8]) -> Vec<StepEvent> {
        let mut events = Vec::new();
        for &byte in input {
            if byte != b'\n' {
                self.line.push(byte);
                continue;
            }
            let line = String::from_utf8_lossy(&self.line).into_owned();
            self.line.clear();
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if line.is_empty() {
                if !self.data.is_empty() {
                    match serde_json::from_str::<StepEvent>(&self.data) {
                        Ok(event) => events.push(event),
                        Err(error) => tracing::debug!(%error, "skipping an unreadable event"),
                    }
                    self.data.clear();
                }
            } else if let Some(data) = line.strip_prefix("data:") {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(data.strip_prefix(' ').unwrap_or(data));
            }
        }
        events
    }
}

// ---------------------------------------------------------------------------
// Rendering

/// The longest step name a plain line shows.
const PLAIN_NAME_MAX: usize = 300;
/// How often the in-place list redraws (spinner, elapsed times).
const TICK: Duration = Duration::from_millis(100);

fn render(style: Style, receiver: &mpsc::Receiver<Message>) {
    match style {
        Style::Plain => {
            let mut view = PlainView::default();
            while let Ok(message) = receiver.recv() {
                match message {
                    Message::Step(event) => view.step(&event),
                    Message::Output(stream, bytes) => write_stream(stream, &bytes),
                    Message::Finish => break,
                }
            }
        }
        Style::Tty => {
            let mut view = TtyView::new();
            loop {
                match receiver.recv_timeout(TICK) {
                    Ok(Message::Step(event)) => view.step(&event),
                    Ok(Message::Output(stream, bytes)) => view.output(stream, &bytes),
                    Ok(Message::Finish) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    Err(mpsc::RecvTimeoutError::Timeout) => view.redraw(""),
                }
            }
            view.finish();
        }
    }
}

fn write_stream(stream: Stream, bytes: &[u8]) {
    let _ = match stream {
        Stream::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes).and_then(|()| out.flush())
        }
        Stream::Stderr => {
            let mut err = std::io::stderr().lock();
            err.write_all(bytes).and_then(|()| err.flush())
        }
    };
}

fn write_stderr(text: &str) {
    write_stream(Stream::Stderr, text.as_bytes());
}

/// `12:00:01.123`, local time.
fn clock(time: f64) -> String {
    let whole = time.floor();
    let nanos = ((time - whole) * 1e9) as u32;
    chrono::DateTime::from_timestamp(whole as i64, nanos.min(999_999_999))
        .map(|utc| {
            utc.with_timezone(&chrono::Local)
                .format("%H:%M:%S%.3f")
                .to_string()
        })
        .unwrap_or_else(|| "--:--:--.---".into())
}

/// `0.4s`, `12.0s`, `2m05s`, `1h02m`.
fn duration(seconds: f64) -> String {
    let seconds = seconds.max(0.0);
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else if seconds < 3600.0 {
        let whole = seconds as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else {
        let whole = seconds as u64;
        format!("{}h{:02}m", whole / 3600, (whole % 3600) / 60)
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or_default()
}

/// One line of text that cannot move the cursor: control characters (a
/// script's newlines, escape sequences) become visible escapes, and the
/// result is cut to `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let mut out = String::new();
    for ch in text.chars() {
        let piece = match ch {
            '\n' => "\\n".to_owned(),
            '\t' => " ".to_owned(),
            ch if ch.is_control() => ch.escape_default().to_string(),
            ch => ch.to_string(),
        };
        if out.chars().count() + piece.chars().count() > max {
            out.push('…');
            break;
        }
        out.push_str(&piece);
    }
    out
}

/// When each running step started, by digest.
#[derive(Debug, Default)]
struct PlainView {
    started: HashMap<String, f64>,
}

impl PlainView {
    fn step(&mut self, event: &StepEvent) {
        let elapsed = |started: Option<f64>| started.map(|t| duration(event.time - t));
        let label = match event.state {
            StepState::Cached => "cached".to_owned(),
            StepState::Running => {
                self.started.insert(event.digest.clone(), event.time);
                "running".to_owned()
            }
            StepState::Done => match elapsed(self.started.remove(&event.digest)) {
                Some(took) => format!("done {took}"),
                None => "done".to_owned(),
            },
            StepState::Failed => match elapsed(self.started.remove(&event.digest)) {
                Some(took) => format!("failed {took}"),
                None => "failed".to_owned(),
            },
        };
        let mut text = format!(
            "{} [{label}] {}\n",
            clock(event.time),
            one_line(&event.name, PLAIN_NAME_MAX)
        );
        if event.state == StepState::Failed {
            for line in detail_lines(event) {
                text.push_str(&format!("    | {}\n", one_line(line, PLAIN_NAME_MAX)));
            }
        }
        write_stderr(&text);
    }
}

/// The tail of a failed step's output, at most this many lines.
const DETAIL_LINES: usize = 20;

fn detail_lines(event: &StepEvent) -> Vec<&str> {
    let lines: Vec<&str> = event
        .detail
        .as_deref()
        .unwrap_or_default()
        .trim_end()
        .lines()
        .collect();
    lines[lines.len().saturating_sub(DETAIL_LINES)..].to_vec()
}

struct RunningStep {
    digest: String,
    name: String,
    since: f64,
}

/// Finished steps are printed once, above a block of running steps that is
/// redrawn in place (cursor up, clear to the end of the screen). Lines are
/// cut to the terminal's width so the block's height is known.
struct TtyView {
    running: Vec<RunningStep>,
    drawn: usize,
    color: bool,
    frame: usize,
    began: Instant,
    done: usize,
    cached: usize,
    failed: usize,
}

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

impl TtyView {
    fn new() -> Self {
        Self {
            running: Vec::new(),
            drawn: 0,
            color: std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty()),
            frame: 0,
            began: Instant::now(),
            done: 0,
            cached: 0,
            failed: 0,
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn size() -> (usize, usize) {
        console::Term::stderr()
            .size_checked()
            .map(|(rows, cols)| (usize::from(rows), usize::from(cols)))
            .filter(|&(rows, cols)| rows > 0 && cols > 0)
            .unwrap_or((24, 80))
    }

    fn step(&mut self, event: &StepEvent) {
        let (_, cols) = Self::size();
        let name_width = cols.saturating_sub(16).max(10);
        let started = self
            .running
            .iter()
            .position(|step| step.digest == event.digest)
            .map(|index| self.running.remove(index).since);
        let name = one_line(&event.name, name_width);
        let took = started
            .map(|t| duration(event.time - t))
            .unwrap_or_default();
        let line = match event.state {
            StepState::Running => {
                self.running.push(RunningStep {
                    digest: event.digest.clone(),
                    name: event.name.clone(),
                    since: event.time,
                });
                self.redraw("");
                return;
            }
            StepState::Cached => {
                self.cached += 1;
                format!(
                    "{} {name} {}\n",
                    self.paint("36", "✔"),
                    self.paint("36", "CACHED")
                )
            }
            StepState::Done => {
                self.done += 1;
                format!(
                    "{} {name} {}\n",
                    self.paint("32", "✔"),
                    self.paint("2", &took)
                )
            }
            StepState::Failed => {
                self.failed += 1;
                let mut text = format!(
                    "{} {name} {} {}\n",
                    self.paint("31", "✘"),
                    self.paint("2", &took),
                    self.paint("31", "FAILED")
                );
                for line in detail_lines(event) {
                    let line = one_line(line, cols.saturating_sub(5).max(10));
                    text.push_str(&format!("  {} {line}\n", self.paint("2", "│")));
                }
                text
            }
        };
        self.redraw(&line);
    }

    /// Clears the block, prints `above` (finished lines), draws the block.
    fn redraw(&mut self, above: &str) {
        let (rows, cols) = Self::size();
        let mut out = self.clear();
        out.push_str(above);
        self.frame = (self.frame + 1) % SPINNER.len();
        let room = rows.saturating_sub(2).max(1);
        let now = now();
        let mut drawn = 0;
        for (index, step) in self.running.iter().enumerate() {
            if index + 1 == room && self.running.len() > room {
                let more = self.running.len() - index;
                out.push_str(&format!("  … and {more} more running\n"));
                drawn += 1;
                break;
            }
            let elapsed = duration(now - step.since);
            let name = one_line(&step.name, cols.saturating_sub(elapsed.len() + 4).max(10));
            out.push_str(&format!(
                "{} {name} {}\n",
                self.paint("33", SPINNER[self.frame]),
                self.paint("2", &elapsed)
            ));
            drawn += 1;
        }
        self.drawn = drawn;
        if !out.is_empty() {
            write_stderr(&out);
        }
    }

    /// The escape sequence that removes the block (cursor to its first
    /// line, clear to the end of the screen).
    fn clear(&mut self) -> String {
        let drawn = std::mem::take(&mut self.drawn);
        if drawn == 0 {
            String::new()
        } else {
            format!("\r\x1b[{drawn}A\x1b[J")
        }
    }

    fn output(&mut self, stream: Stream, bytes: &[u8]) {
        let clear = self.clear();
        write_stderr(&clear);
        write_stream(stream, bytes);
        self.redraw("");
    }

    fn finish(&mut self) {
        let clear = self.clear();
        write_stderr(&clear);
        let steps = self.done + self.cached + self.failed;
        if steps > 0 {
            let mut parts = vec![
                format!("{} done", self.done),
                format!("{} cached", self.cached),
            ];
            if self.failed > 0 {
                parts.push(format!("{} failed", self.failed));
            }
            write_stderr(&format!(
                "{}\n",
                self.paint(
                    "2",
                    &format!(
                        "gantry: {steps} steps ({}) in {}",
                        parts.join(", "),
                        duration(self.began.elapsed().as_secs_f64())
                    )
                )
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(state: StepState) -> StepEvent {
        StepEvent {
            digest: "abc".into(),
            name: "exec echo hi".into(),
            state,
            time: 1.5,
            detail: None,
        }
    }

    #[test]
    fn chunked_sse_is_decoded_across_reads() {
        let body = serde_json::to_string(&event(StepState::Running)).unwrap();
        let payload = format!(": gantry events\n\ndata: {body}\n\n");
        let chunk = format!("{:x}\r\n{payload}\r\n", payload.len());
        let mut dechunk = Dechunk::new(true);
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        // One byte at a time: chunk sizes, data and CRLFs split anywhere.
        for byte in chunk.as_bytes() {
            let mut data = Vec::new();
            dechunk.feed(std::slice::from_ref(byte), &mut data);
            events.extend(parser.feed(&data));
        }
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].state, StepState::Running);
        assert_eq!(events[0].name, "exec echo hi");
    }

    #[test]
    fn names_stay_on_one_line() {
        assert_eq!(one_line("sh -c a\nb\x1b[2J", 100), "sh -c a\\nb\\u{1b}[2J");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(0.04), "0.0s");
        assert_eq!(duration(1.25), "1.2s");
        assert_eq!(duration(125.0), "2m05s");
        assert_eq!(duration(3720.0), "1h02m");
    }

    #[test]
    fn failure_details_keep_the_tail() {
        let mut failed = event(StepState::Failed);
        let text: Vec<String> = (0..30).map(|n| format!("line {n}")).collect();
        failed.detail = Some(text.join("\n"));
        let lines = detail_lines(&failed);
        assert_eq!(lines.len(), DETAIL_LINES);
        assert_eq!(lines.last(), Some(&"line 29"));
    }
}
