//! The user's terminal, lent to a session's engine (`gantry run`, `gantry
//! call`, `gantry query` in process): `Container.terminal` and
//! `--interactive` open their shell here.
//!
//! The engine runs in this process, so the transport is in memory: the
//! engine asks `UserTerminal::attach` for the terminal, and for as long as
//! the shell runs this module owns the tty (`/dev/tty`, opened on its own
//! so that non-blocking reads do not change what the session's command
//! sees): raw mode, keystrokes to the container, its output to the screen,
//! window size changes (SIGWINCH) to the container's TTY. Progress output
//! is paused meanwhile, and the terminal's mode is restored when the shell
//! exits, whatever happened.

use std::io::IsTerminal as _;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use gantry_core::runtime::{RuntimeError, TerminalHost, TerminalInput, TerminalIo, TerminalSize};
use rustix::fs::{Mode, OFlags};
use rustix::termios::{self, OptionalActions, Termios};
use tokio::sync::Mutex;

use crate::progress::Message;

/// This process's terminal, when stdin and stdout are on one.
pub(crate) struct UserTerminal {
    /// The progress renderer, paused while a shell runs.
    progress: Option<mpsc::Sender<Message>>,
    /// One shell at a time: a second waits for the first to exit.
    busy: Arc<Mutex<()>>,
}

impl UserTerminal {
    /// The terminal to lend the engine: `Some` only when stdin and stdout
    /// are both terminals (not in CI, not with either redirected).
    pub(crate) fn detect(progress: Option<mpsc::Sender<Message>>) -> Option<Arc<Self>> {
        (std::io::stdin().is_terminal() && std::io::stdout().is_terminal()).then(|| {
            Arc::new(Self {
                progress,
                busy: Arc::new(Mutex::new(())),
            })
        })
    }

    /// Lends the terminal to `engine` when there is one; `--interactive`
    /// (`debug_failures`) without one is refused with the fix.
    pub(crate) fn lend(
        engine: &gantry_core::Engine,
        progress: Option<mpsc::Sender<Message>>,
        debug_failures: bool,
    ) -> anyhow::Result<()> {
        match Self::detect(progress) {
            Some(terminal) => engine.attach_terminal(terminal, debug_failures),
            None if debug_failures => anyhow::bail!(
                "--interactive opens a shell on your terminal when a step fails, but stdin or \
                 stdout is not a terminal: run it from an interactive terminal, or leave out \
                 --interactive"
            ),
            None => {}
        }
        Ok(())
    }

    fn pause_progress(&self) {
        if let Some(progress) = &self.progress {
            let (ack, acked) = mpsc::channel();
            if progress.send(Message::Pause(ack)).is_ok() {
                // The renderer erases its list first; it never takes long.
                let _ = acked.recv_timeout(std::time::Duration::from_secs(2));
            }
        }
    }

    fn resume_progress(&self) {
        if let Some(progress) = &self.progress {
            let _ = progress.send(Message::Resume);
        }
    }
}

#[async_trait]
impl TerminalHost for UserTerminal {
    async fn attach(&self, title: &str) -> Result<TerminalIo, RuntimeError> {
        let busy = self.busy.clone().lock_owned().await;
        let failed = |reason: String| RuntimeError::Failed {
            action: "attaching the terminal".to_owned(),
            reason,
        };
        let tty = rustix::fs::open(
            "/dev/tty",
            OFlags::RDWR | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|error| failed(format!("cannot open /dev/tty: {error}")))?;
        let saved = termios::tcgetattr(&tty)
            .map_err(|error| failed(format!("cannot read the terminal's mode: {error}")))?;
        let size = window_size(&tty);
        self.pause_progress();
        let raw = Raw::enter(tty, saved).map_err(|error| {
            self.resume_progress();
            failed(format!("cannot put the terminal in raw mode: {error}"))
        })?;
        let tty = Arc::new(raw);
        let (input_tx, input) = tokio::sync::mpsc::channel(64);
        let (output, mut output_rx) = tokio::sync::mpsc::channel::<Bytes>(64);
        let stop = Arc::new(AtomicBool::new(false));
        let reader_done = spawn_reader(tty.clone(), input_tx.clone(), stop.clone());
        let banner = format!("\x1b[33m●\x1b[0m {title}\r\n");
        let progress = self.progress.clone();
        tokio::spawn(async move {
            let _busy = busy;
            let _ = write_all(&tty, banner.as_bytes()).await;
            let mut resized =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
            loop {
                tokio::select! {
                    chunk = output_rx.recv() => match chunk {
                        Some(bytes) => {
                            if write_all(&tty, &bytes).await.is_err() {
                                break;
                            }
                        }
                        // The shell exited.
                        None => break,
                    },
                    Some(()) = async {
                        match resized.as_mut() {
                            Some(signal) => signal.recv().await,
                            None => std::future::pending().await,
                        }
                    } => {
                        let size = window_size(&tty.fd);
                        let _ = input_tx.send(TerminalInput::Resize(size)).await;
                    },
                }
            }
            // Raw mode ends with the last `Raw`, and progress resumes only
            // after that: the reader lets go of its `Raw` within a poll, and
            // this one is dropped last, off the async workers (restoring the
            // mode waits until the terminal has read all output, which a
            // slow terminal makes long). Resuming earlier let the renderer
            // draw on a terminal still in raw mode (lines that do not return
            // to the first column) and the restore's newline land below its
            // block, unknown to it.
            stop.store(true, Ordering::Relaxed);
            if tokio::time::timeout(READER_STOP, reader_done)
                .await
                .is_err()
            {
                tracing::debug!("the terminal's reader did not stop in time");
            }
            let _ = tokio::task::spawn_blocking(move || drop(tty)).await;
            if let Some(progress) = progress {
                let _ = progress.send(Message::Resume);
            }
        });
        Ok(TerminalIo {
            input,
            output,
            size,
        })
    }
}

/// The tty in raw mode; dropping it restores the mode it had.
struct Raw {
    fd: OwnedFd,
    saved: Termios,
}

impl Raw {
    fn enter(fd: OwnedFd, saved: Termios) -> rustix::io::Result<Self> {
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(&fd, OptionalActions::Flush, &raw)?;
        Ok(Self { fd, saved })
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(&self.fd, OptionalActions::Drain, &self.saved);
        // The shell's last line may have no newline: start a fresh one.
        let _ = rustix::io::write(&self.fd, b"\r\n");
    }
}

/// The terminal's size, 80x24 when it does not say.
fn window_size(fd: &OwnedFd) -> TerminalSize {
    match termios::tcgetwinsize(fd) {
        Ok(size) if size.ws_col > 0 && size.ws_row > 0 => TerminalSize {
            cols: size.ws_col,
            rows: size.ws_row,
        },
        _ => TerminalSize::default(),
    }
}

/// How often the reader looks for keystrokes (the tty is non-blocking, so
/// the thread can stop as soon as the shell exits).
const READ_POLL: Duration = Duration::from_millis(10);

/// How long the shell's end waits for the reader to let go of the tty.
const READER_STOP: Duration = Duration::from_secs(1);

/// Reads keystrokes on a thread of its own until `stop` or the shell's
/// side closes. The receiver hears once the thread has let go of `tty`
/// (also when it could not start).
fn spawn_reader(
    tty: Arc<Raw>,
    input: tokio::sync::mpsc::Sender<TerminalInput>,
    stop: Arc<AtomicBool>,
) -> tokio::sync::oneshot::Receiver<()> {
    let (done, reader_done) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("gantry-terminal".into())
        .spawn(move || {
            read_keys(&tty, &input, &stop);
            drop(tty);
            let _ = done.send(());
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot read the terminal");
    }
    reader_done
}

fn read_keys(tty: &Raw, input: &tokio::sync::mpsc::Sender<TerminalInput>, stop: &AtomicBool) {
    let mut buffer = vec![0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match rustix::io::read(&tty.fd, &mut buffer[..]) {
            Ok(0) => return,
            Ok(n) => {
                let data = Bytes::copy_from_slice(&buffer[..n]);
                if input.blocking_send(TerminalInput::Data(data)).is_err() {
                    return;
                }
            }
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {
                std::thread::sleep(READ_POLL);
            }
            Err(_) => return,
        }
    }
}

/// Writes all of `bytes` to the non-blocking tty.
async fn write_all(tty: &Raw, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(&tty.fd, bytes) {
            Ok(written) => bytes = &bytes[written..],
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}
