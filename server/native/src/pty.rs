//! Interactive steps (`Runtime::terminal`): the OCI runtime runs in the foreground with
//! the secondary side of a pseudo-terminal as its stdio. It then makes the container's
//! own terminal, copies between the two, and resizes the container's on SIGWINCH;
//! gantry copies between the primary side and the user's terminal.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use gantry_core::runtime::TerminalSize;

use crate::error::Error;

pub(crate) struct Pty {
    pub(crate) primary: OwnedFd,
    pub(crate) secondary: OwnedFd,
}

impl Pty {
    pub(crate) fn open(size: TerminalSize) -> Result<Self, Error> {
        use rustix::fs::{Mode, OFlags};
        use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
        let fail = |errno: rustix::io::Errno| Error::other("opening a pseudo-terminal", errno);
        let primary =
            openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).map_err(fail)?;
        grantpt(&primary).map_err(fail)?;
        unlockpt(&primary).map_err(fail)?;
        let name = ptsname(&primary, Vec::new()).map_err(fail)?;
        let secondary = rustix::fs::open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| Error::io("opening", Path::new("the pseudo-terminal"), errno.into()))?;
        resize(&primary, size);
        rustix::io::ioctl_fionbio(&primary, true).map_err(fail)?;
        Ok(Self { primary, secondary })
    }
}

/// Sets the terminal's size (the runtime reads it from its stdio on SIGWINCH).
pub(crate) fn resize(primary: &impl AsFd, size: TerminalSize) {
    let winsize = rustix::termios::Winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    if let Err(error) = rustix::termios::tcsetwinsize(primary, winsize) {
        tracing::debug!(%error, "cannot resize a step's terminal");
    }
}

/// Copies what the terminal's primary side produces to `output` on a thread of its
/// own, until the side closes (every holder of the secondary side is gone) or, once
/// `done` is set, nothing more arrives for a moment.
pub(crate) fn copy_out(
    primary: OwnedFd,
    output: tokio::sync::mpsc::Sender<Bytes>,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let mut fds = [rustix::event::PollFd::new(
                &primary,
                rustix::event::PollFlags::IN,
            )];
            let timeout = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 100_000_000,
            };
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(0) if done.load(Ordering::Relaxed) => return,
                Ok(0) => continue,
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return,
            }
            match rustix::io::read(&primary, &mut buffer) {
                Ok(0) => return,
                Ok(read) => {
                    if output
                        .blocking_send(Bytes::copy_from_slice(&buffer[..read]))
                        .is_err()
                    {
                        return; // the user's side detached
                    }
                }
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                // EIO: the secondary side closed.
                Err(_) => return,
            }
        }
    })
}

/// Writes keystrokes to the terminal (a few bytes at a time; waits briefly when
/// the terminal's buffer is full).
pub(crate) fn write_in(primary: &OwnedFd, mut data: &[u8]) {
    while !data.is_empty() {
        match rustix::io::write(primary, data) {
            Ok(written) => data = &data[written..],
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(error) => {
                tracing::debug!(%error, "cannot write to a step's terminal");
                return;
            }
        }
    }
}
