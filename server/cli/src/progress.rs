//! Live progress on stderr for `gantry run`, `gantry query`, `gantry call`
//! and (opt-in) `gantry session`: every step the engine reports (exec, pull,
//! read) as it is cached, starts, runs, finishes or fails, and the lines a
//! running exec prints.
//!
//! The engine emits each event once (`Engine::events`, also served as
//! `GET /events` and read by `client.rs`); this module only renders them,
//! fed by a follower per source of events, either as plain lines (CI logs,
//! `--progress=plain`: timestamped step lines, and `[step] line` for each
//! line of output) or as a list redrawn in place on a terminal (the last
//! lines of output under each running step, gone once it finishes).
//!
//! One thread owns the terminal: step lines, exec output and the output of
//! the command `gantry run` or `gantry call` runs (routed as `Message::Output`,
//! a whole line at a time) are written only by it, so none lands inside
//! another's line. Events never carry environment variables, and exec output
//! in them was scrubbed of secret values by the engine.

use std::collections::{HashMap, VecDeque};
use std::io::{IsTerminal as _, Write as _};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use futures::stream::BoxStream;
use futures::{FutureExt as _, StreamExt as _};
use gantry_core::events::{Event, OutputEvent, StepEvent, StepState};
use gantry_core::Engine;
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
    /// Say why each step that runs missed the cache (what changed since
    /// the nearest earlier run of its command)
    #[arg(long)]
    pub(crate) explain_cache: bool,
}

/// What the renderer shows.
pub(crate) enum Message {
    Step(StepEvent),
    /// Lines a running exec printed.
    Lines(OutputEvent),
    /// Output of the command `gantry run` runs, when it is routed through
    /// the renderer so it does not tear the in-place list.
    Output(Stream, Vec<u8>),
    /// Stop drawing (the in-place list erased) until `Resume`, holding what
    /// arrives meanwhile; acknowledged once the screen is the user's.
    Pause(mpsc::Sender<()>),
    Resume,
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
    /// Whether cache misses are explained (`--explain-cache`).
    explain: bool,
    sender: mpsc::Sender<Message>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    pub(crate) fn start(args: &ProgressArgs) -> Self {
        let style = match args.progress {
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
            explain: args.explain_cache,
            sender,
            thread,
        }
    }

    /// Whether the engine is asked to explain cache misses.
    pub(crate) fn explains(&self) -> bool {
        self.explain && self.style.is_some()
    }

    /// Whether steps are drawn in place.
    pub(crate) fn is_tty(&self) -> bool {
        self.style == Some(Style::Tty)
    }

    /// Where a command's output goes so that it never interleaves with
    /// progress mid-line; `None` when nothing is shown.
    pub(crate) fn sender(&self) -> Option<mpsc::Sender<Message>> {
        self.style.map(|_| self.sender.clone())
    }

    /// Whether nothing is shown (`--progress=quiet`): no events are needed.
    pub(crate) fn is_quiet(&self) -> bool {
        self.style.is_none()
    }

    /// Shows the events of an engine in this process.
    pub(crate) fn follow_engine(&self, engine: &Engine) -> Option<Follower> {
        let subscription = engine.events().subscribe().explaining(self.explains());
        let events = futures::stream::unfold(subscription, |mut receiver| async {
            loop {
                match receiver.recv().await {
                    Ok(event) => return Some((event, receiver)),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        // Everything the engine emitted before its work ended is already
        // queued when the follower is stopped.
        self.follow(events.boxed(), Duration::ZERO)
    }

    /// Shows the events of an engine in another process (its `GET /events`
    /// stream, see `client.rs`). Those travel on a connection of their own,
    /// so they can trail the answer they belong to: once stopped, the
    /// follower still waits for events that arrive close together.
    pub(crate) fn follow_remote(&self, events: BoxStream<'static, Event>) -> Option<Follower> {
        self.follow(events, TRAILING_EVENTS_QUIET)
    }

    fn follow(&self, events: BoxStream<'static, Event>, trailing: Duration) -> Option<Follower> {
        let sender = self.sender()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(forward(events, sender, stopped, trailing));
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

/// How long a stopped follower of a remote engine waits for one more
/// event, and for all of them at most.
const TRAILING_EVENTS_QUIET: Duration = Duration::from_millis(150);
const TRAILING_EVENTS_MAX: Duration = Duration::from_secs(1);

/// Sends `events` to the renderer until stopped, then what is already in
/// hand, then events that arrive within `trailing` of each other (for at
/// most `TRAILING_EVENTS_MAX`). A source that showed no event at all has
/// nothing trailing: the work ran no step (all answered from memory).
async fn forward(
    mut events: BoxStream<'static, Event>,
    sender: mpsc::Sender<Message>,
    mut stopped: oneshot::Receiver<()>,
    trailing: Duration,
) {
    let mut seen_any = false;
    loop {
        // `next` is cancel-safe, so racing it against the stop signal loses nothing.
        tokio::select! {
            biased;
            event = events.next() => match event {
                Some(event) => {
                    seen_any = true;
                    if sender.send(message(event)).is_err() {
                        return;
                    }
                }
                None => return,
            },
            _ = &mut stopped => break,
        }
    }
    let quiet = if seen_any { trailing } else { Duration::ZERO };
    let deadline = Instant::now() + TRAILING_EVENTS_MAX;
    loop {
        let event = if quiet.is_zero() {
            events.next().now_or_never().flatten()
        } else {
            let wait = quiet.min(deadline.saturating_duration_since(Instant::now()));
            tokio::time::timeout(wait, events.next())
                .await
                .ok()
                .flatten()
        };
        let Some(event) = event else { return };
        if sender.send(message(event)).is_err() || Instant::now() >= deadline {
            return;
        }
    }
}

fn message(event: Event) -> Message {
    match event {
        Event::Step(step) => Message::Step(step),
        Event::Output(output) => Message::Lines(output),
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
            let mut held = std::collections::VecDeque::new();
            let mut finishing = false;
            loop {
                let message = match held.pop_front() {
                    Some(message) => message,
                    None if finishing => break,
                    None => match receiver.recv() {
                        Ok(message) => message,
                        Err(_) => break,
                    },
                };
                match message {
                    Message::Step(event) => view.step(&event),
                    Message::Lines(output) => view.lines(&output),
                    Message::Output(stream, bytes) => write_stream(stream, &bytes),
                    Message::Pause(ack) => {
                        let _ = ack.send(());
                        let (messages, resumed) = hold(receiver);
                        held.extend(messages);
                        finishing |= !resumed;
                    }
                    Message::Resume => {}
                    Message::Finish => break,
                }
            }
        }
        Style::Tty => {
            let mut view = TtyView::new();
            let mut held = std::collections::VecDeque::new();
            let mut finishing = false;
            loop {
                let next = match held.pop_front() {
                    Some(message) => Ok(message),
                    None if finishing => break,
                    None => receiver.recv_timeout(TICK),
                };
                match next {
                    Ok(Message::Step(event)) => view.step(&event),
                    Ok(Message::Lines(output)) => view.lines(&output),
                    Ok(Message::Output(stream, bytes)) => view.output(stream, &bytes),
                    Ok(Message::Pause(ack)) => {
                        let clear = view.clear();
                        write_stderr(&clear);
                        let _ = ack.send(());
                        let (messages, resumed) = hold(receiver);
                        // The screen is the one the shell left: whatever
                        // was drawn before is not below the cursor any more.
                        view.handed_back();
                        held.extend(messages);
                        finishing |= !resumed;
                    }
                    Ok(Message::Resume) => {}
                    Ok(Message::Finish) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    Err(mpsc::RecvTimeoutError::Timeout) => view.redraw(""),
                }
            }
            view.finish();
        }
    }
}

/// While paused (an interactive terminal owns the screen): what arrives
/// until `Resume`, to show then, and whether it resumed (`false`: the
/// renderer is to finish, after showing what it held: a command's output
/// that arrived while paused is never dropped).
fn hold(receiver: &mpsc::Receiver<Message>) -> (Vec<Message>, bool) {
    let mut held = Vec::new();
    loop {
        match receiver.recv() {
            Ok(Message::Resume) => return (held, true),
            Ok(Message::Finish) | Err(_) => return (held, false),
            Ok(Message::Pause(ack)) => {
                let _ = ack.send(());
            }
            Ok(message) => held.push(message),
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

/// The longest step label an output line starts with (`[label] line`).
const LABEL_MAX: usize = 40;
/// The longest line of a step's output a plain line shows.
const OUTPUT_LINE_MAX: usize = 4000;

/// How output lines name their step: its name without the `exec ` of
/// commands, on one short line.
fn step_label(name: &str) -> String {
    one_line(name.strip_prefix("exec ").unwrap_or(name), LABEL_MAX)
}

/// A line of a command's output as text that cannot move the cursor:
/// colour codes (`ESC [ … m`) dropped, tabs kept, other control characters
/// escaped; cut to `max` characters.
fn output_text(line: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '\x1b' && chars.peek() == Some(&'[') {
            let params = chars
                .clone()
                .skip(1)
                .take_while(|c| c.is_ascii_digit() || *c == ';')
                .count();
            if chars.clone().nth(1 + params) == Some('m') {
                // Consumes `[`, the parameters and `m`.
                chars.nth(params + 1);
                continue;
            }
        }
        let piece = match ch {
            '\t' => "\t".to_owned(),
            ch if ch.is_control() => ch.escape_default().to_string(),
            ch => ch.to_string(),
        };
        let width = piece.chars().count();
        if count + width > max {
            out.push('…');
            break;
        }
        count += width;
        out.push_str(&piece);
    }
    out
}

/// The lines of a cache miss's explanation, if the event has one.
fn miss_lines(event: &StepEvent) -> &[String] {
    event.cache_miss.as_deref().unwrap_or_default()
}

/// When each running step started, and its label, by digest.
#[derive(Debug, Default)]
struct PlainView {
    started: HashMap<String, f64>,
    labels: HashMap<String, String>,
}

impl PlainView {
    /// `[label] line` for each line of a running step's output.
    fn lines(&mut self, output: &OutputEvent) {
        let label = self
            .labels
            .get(&output.digest)
            .cloned()
            .unwrap_or_else(|| output.digest.clone());
        let mut text = String::new();
        for line in &output.lines {
            text.push_str(&format!(
                "[{label}] {}\n",
                output_text(line, OUTPUT_LINE_MAX)
            ));
        }
        write_stderr(&text);
    }

    fn step(&mut self, event: &StepEvent) {
        let elapsed = |started: Option<f64>| started.map(|t| duration(event.time - t));
        let label = match event.state {
            StepState::Cached => "cached".to_owned(),
            StepState::Running => {
                self.started.insert(event.digest.clone(), event.time);
                self.labels
                    .insert(event.digest.clone(), step_label(&event.name));
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
        for reason in miss_lines(event) {
            text.push_str(&format!("    miss: {}\n", one_line(reason, PLAIN_NAME_MAX)));
        }
        if event.state == StepState::Failed {
            for line in detail_lines(event) {
                text.push_str(&format!("    | {}\n", output_text(line, PLAIN_NAME_MAX)));
            }
        }
        if matches!(event.state, StepState::Done | StepState::Failed) {
            self.labels.remove(&event.digest);
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
    /// Its last lines of output (at most `LIVE_LINES`).
    lines: VecDeque<String>,
}

/// How many lines of output the list shows under a running step (fewer
/// when many steps run and the screen is short).
const LIVE_LINES: usize = 5;
/// The least time between redraws caused by output (a chatty command must
/// not turn into a flood of escape sequences).
const OUTPUT_REDRAW: Duration = Duration::from_millis(50);

/// Finished steps are printed once, above a block of running steps that is
/// redrawn in place (cursor up, clear to the end of the screen). Lines are
/// cut to the terminal's width so the block's height is known.
struct TtyView {
    running: Vec<RunningStep>,
    drawn: usize,
    last_draw: Instant,
    color: bool,
    frame: usize,
    began: Instant,
    done: usize,
    cached: usize,
    failed: usize,
}

/// How many lines of output fit under each of `running` steps in `room`
/// rows.
fn live_lines(room: usize, running: usize) -> usize {
    if running == 0 {
        return 0;
    }
    (room / running).saturating_sub(1).min(LIVE_LINES)
}

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

impl TtyView {
    fn new() -> Self {
        Self {
            running: Vec::new(),
            drawn: 0,
            last_draw: Instant::now(),
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
                    lines: VecDeque::new(),
                });
                let mut above = String::new();
                if !miss_lines(event).is_empty() {
                    above = format!(
                        "{} {name} {}\n",
                        self.paint("33", "↻"),
                        self.paint("33", "CACHE MISS")
                    );
                    for reason in miss_lines(event) {
                        let reason = one_line(reason, cols.saturating_sub(5).max(10));
                        above.push_str(&format!("  {} {reason}\n", self.paint("2", "│")));
                    }
                }
                self.redraw(&above);
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
                    let line = output_text(line, cols.saturating_sub(5).max(10));
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
        let live = live_lines(room, self.running.len());
        let now = now();
        let mut drawn = 0;
        for (index, step) in self.running.iter().enumerate() {
            if drawn + 2 > room && self.running.len() > index + 1 {
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
            for line in step
                .lines
                .iter()
                .skip(step.lines.len().saturating_sub(live))
            {
                let line = output_text(line, cols.saturating_sub(5).max(10));
                out.push_str(&format!(
                    "  {} {}\n",
                    self.paint("2", "│"),
                    self.paint("2", &line)
                ));
                drawn += 1;
            }
        }
        self.drawn = drawn;
        self.last_draw = Instant::now();
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

    /// The terminal is back from an interactive shell: the cursor is where
    /// the shell left it (at the start of a line), so nothing drawn before
    /// is below it and the next redraw clears nothing above it.
    fn handed_back(&mut self) {
        self.drawn = 0;
    }

    /// Keeps a running step's last lines; redraws unless it just did.
    fn lines(&mut self, output: &OutputEvent) {
        let Some(step) = self
            .running
            .iter_mut()
            .find(|step| step.digest == output.digest)
        else {
            return;
        };
        for line in &output.lines {
            if step.lines.len() == LIVE_LINES {
                step.lines.pop_front();
            }
            step.lines.push_back(line.clone());
        }
        if self.last_draw.elapsed() >= OUTPUT_REDRAW {
            self.redraw("");
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
        let digest = gantry_core::Digest::of_bytes(b"abc");
        let mut event = StepEvent::new(&digest, "exec echo hi".into(), state);
        event.digest = "abc".into();
        event.time = 1.5;
        event
    }

    /// Runs `forward` over a channel: `before` is sent before the stop,
    /// `after` 50 ms after it. Returns the names the renderer got.
    async fn forwarded(before: &[&str], after: &[&str], trailing: Duration) -> Vec<String> {
        let (events_tx, events_rx) = futures::channel::mpsc::unbounded();
        let (sender, receiver) = mpsc::channel();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(forward(events_rx.boxed(), sender, stopped, trailing));
        for name in before {
            let mut step = event(StepState::Running);
            step.name = (*name).into();
            events_tx.unbounded_send(Event::Step(step)).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        stop.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        for name in after {
            let mut step = event(StepState::Done);
            step.name = (*name).into();
            let _ = events_tx.unbounded_send(Event::Step(step));
        }
        task.await.unwrap();
        receiver
            .try_iter()
            .map(|message| match message {
                Message::Step(step) => step.name,
                _ => unreachable!("only steps are forwarded"),
            })
            .collect()
    }

    #[tokio::test]
    async fn a_remote_follower_waits_for_trailing_events() {
        let names = forwarded(&["one"], &["two"], TRAILING_EVENTS_QUIET).await;
        assert_eq!(names, ["one", "two"]);
    }

    #[tokio::test]
    async fn a_follower_that_saw_nothing_stops_at_once() {
        let names = forwarded(&[], &["late"], TRAILING_EVENTS_QUIET).await;
        assert!(names.is_empty(), "{names:?}");
    }

    #[tokio::test]
    async fn an_in_process_follower_forwards_only_what_is_queued() {
        let names = forwarded(&["one"], &["late"], Duration::ZERO).await;
        assert_eq!(names, ["one"]);
    }

    #[test]
    fn names_stay_on_one_line() {
        assert_eq!(one_line("sh -c a\nb\x1b[2J", 100), "sh -c a\\nb\\u{1b}[2J");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }

    #[test]
    fn output_lines_keep_tabs_and_lose_colours_and_control_characters() {
        assert_eq!(
            output_text("\x1b[1;31mred\x1b[0m\tok\x07\x1b[2J", 100),
            "red\tok\\u{7}\\u{1b}[2J"
        );
        assert_eq!(output_text("abcdef", 3), "abc…");
        assert_eq!(step_label("exec go test ./..."), "go test ./...");
    }

    #[test]
    fn live_lines_shrink_when_many_steps_run() {
        assert_eq!(live_lines(28, 1), LIVE_LINES);
        assert_eq!(live_lines(28, 7), 3);
        assert_eq!(live_lines(28, 30), 0);
        assert_eq!(live_lines(28, 0), 0);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(0.04), "0.0s");
        assert_eq!(duration(1.25), "1.2s");
        assert_eq!(duration(125.0), "2m05s");
        assert_eq!(duration(3720.0), "1h02m");
    }

    #[test]
    fn what_arrives_while_paused_is_kept_also_when_the_run_finishes_first() {
        // What the renderer receives after a Pause: a line of the script
        // while the shell is open, the hand back, then (the run ending
        // before the next hand back) a line and Finish while paused again.
        let (sender, receiver) = mpsc::channel();
        sender
            .send(Message::Output(Stream::Stdout, b"script line\n".to_vec()))
            .unwrap();
        sender.send(Message::Resume).unwrap();
        sender
            .send(Message::Output(Stream::Stdout, b"after\n".to_vec()))
            .unwrap();
        sender.send(Message::Finish).unwrap();
        let (held, resumed) = hold(&receiver);
        assert!(resumed);
        assert!(
            matches!(held.as_slice(), [Message::Output(Stream::Stdout, line)] if line == b"script line\n")
        );
        // The run ended before the terminal was handed back: what was held
        // is still shown (the renderer finishes after it).
        let (held, resumed) = hold(&receiver);
        assert!(!resumed);
        assert!(
            matches!(held.as_slice(), [Message::Output(Stream::Stdout, line)] if line == b"after\n")
        );
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
