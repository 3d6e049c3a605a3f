//! `gantry engine status|stop|logs`: the running engine seen from outside,
//! through its socket's control endpoint (status.rs) and the `engine.log`
//! an SDK writes beside the socket when it starts one.
//!
//! The socket is found as `gantry serve` and the SDKs find it: `--socket`,
//! else `GANTRY_SOCKET`, else the default path.

use std::io::{ErrorKind, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use hyper::{Method, StatusCode};

use crate::client::Connection;
use crate::status::EngineStatus;

/// Exit code when no engine answers on the socket (errors exit with 2).
const NOT_RUNNING: u8 = 1;
/// Exit code of a command that failed.
const FAILED: u8 = 2;

#[derive(Debug, clap::Args)]
#[command(after_help = "Exit codes: 0 done; 1 no engine answers on the socket \
(status, logs: no log there); 2 an error.")]
pub(crate) struct ControlArgs {
    #[command(subcommand)]
    command: EngineCommand,
    /// The engine's Unix socket [env: GANTRY_SOCKET] [default: $XDG_RUNTIME_DIR/gantry/engine.sock or /tmp/gantry-$UID/engine.sock]
    #[arg(long, value_name = "PATH", global = true)]
    socket: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum EngineCommand {
    /// Whether an engine answers on the socket: pid, version, state dir, runtime, uptime, cache size
    Status {
        /// Print the status as JSON (the engine's GET /engine answer)
        #[arg(long)]
        json: bool,
    },
    /// Stop the engine gracefully: it finishes the requests in flight, releases the state directory and removes its socket
    Stop {
        /// How long to wait for it to exit, e.g. 90s, 5m
        #[arg(long, value_name = "DURATION", default_value = "90s", value_parser = parse_wait)]
        timeout: Duration,
    },
    /// Print the log of the engine an SDK started (engine.log beside the socket)
    Logs {
        /// Keep printing what the engine writes, like tail -f (Ctrl-C ends it)
        #[arg(long, short)]
        follow: bool,
        /// Print only the last N lines
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
    },
}

fn parse_wait(text: &str) -> Result<Duration, String> {
    crate::activity::parse_idle_timeout(text)?
        .ok_or_else(|| format!("{text:?}: the timeout must be longer than 0"))
}

pub(crate) async fn run(args: ControlArgs) -> ExitCode {
    let socket = crate::serve::socket_path(args.socket.as_deref());
    let outcome = match args.command {
        EngineCommand::Status { json } => status(&socket, json).await,
        EngineCommand::Stop { timeout } => stop(&socket, timeout).await,
        EngineCommand::Logs { follow, tail } => logs(&socket, follow, tail).await,
    };
    outcome.unwrap_or_else(|error| {
        eprintln!("gantry: error: {error:#}");
        ExitCode::from(FAILED)
    })
}

/// The engine's status, `None` when nothing answers on the socket.
async fn fetch_status(socket: &Path) -> Result<Option<EngineStatus>> {
    let connection = match tokio::net::UnixStream::connect(socket).await {
        Ok(stream) => Connection::over(stream).await?,
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::NotFound | ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(error) => {
            return Err(error).with_context(|| format!("while connecting to {}", socket.display()))
        }
    };
    let (status, body) = connection.send(Method::GET, "/engine").await?;
    match status {
        StatusCode::OK => serde_json::from_slice(&body)
            .map(Some)
            .context("while reading the engine's status"),
        StatusCode::NOT_FOUND => bail!(
            "the engine on {} does not report its status: it is older than this gantry ({}); \
             stop it (SIGTERM) and let the next script start a new one",
            socket.display(),
            gantry_api::VERSION
        ),
        status => bail!(
            "the engine on {} answered {status}: {}",
            socket.display(),
            String::from_utf8_lossy(&body)
        ),
    }
}

fn not_running(socket: &Path) -> String {
    format!(
        "no engine answers on {}: start one with `gantry serve`, or run an SDK script, which starts one",
        socket.display()
    )
}

/// Where an SDK logs the engine it starts.
fn log_path(socket: &Path) -> PathBuf {
    socket
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("engine.log")
}

async fn status(socket: &Path, json: bool) -> Result<ExitCode> {
    let Some(status) = fetch_status(socket).await? else {
        if json {
            println!(
                "{}",
                serde_json::json!({ "running": false, "socket": socket })
            );
        }
        eprintln!("gantry: {}", not_running(socket));
        return Ok(ExitCode::from(NOT_RUNNING));
    };
    if json {
        let mut value = serde_json::to_value(&status)?;
        value["running"] = serde_json::Value::Bool(true);
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let log = log_path(socket);
    let idle = status.idle_timeout_seconds.map_or_else(
        || "never".to_owned(),
        |seconds| crate::units::format_duration(Duration::from_secs_f64(seconds)),
    );
    println!(
        "engine:       running (pid {}, gantry {})",
        status.pid, status.version
    );
    println!("socket:       {}", status.socket.display());
    println!("state dir:    {}", status.state_dir.display());
    println!("runtime:      {}", status.runtime);
    println!(
        "uptime:       {}",
        crate::units::format_duration(Duration::from_secs(status.uptime_seconds))
    );
    println!("idle timeout: {idle}");
    println!(
        "cache:        {} in {} entries",
        crate::units::format_size(status.cache.bytes),
        status.cache.entries
    );
    // This status request is one of them.
    println!(
        "activity:     {} open connections, {} requests in flight (this one included)",
        status.connections, status.in_flight
    );
    if log.exists() {
        println!("log:          {}", log.display());
    }
    if status.version != gantry_api::VERSION {
        eprintln!(
            "gantry: warning: the engine is gantry {}, this CLI is {}",
            status.version,
            gantry_api::VERSION
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn stop(socket: &Path, timeout: Duration) -> Result<ExitCode> {
    let Some(status) = fetch_status(socket).await? else {
        eprintln!(
            "gantry: no engine answers on {}: nothing to stop",
            socket.display()
        );
        return Ok(ExitCode::SUCCESS);
    };
    let connection = Connection::open(socket).await?;
    let (answer, body) = connection.send(Method::POST, "/engine/stop").await?;
    if answer != StatusCode::ACCEPTED {
        bail!(
            "the engine (pid {}) refused to stop: {answer}: {}",
            status.pid,
            String::from_utf8_lossy(&body)
        );
    }
    eprintln!(
        "gantry: stopping the engine (pid {}) on {} ...",
        status.pid,
        socket.display()
    );
    let deadline = Instant::now() + timeout;
    while process_alive(status.pid) {
        if Instant::now() >= deadline {
            bail!(
                "the engine (pid {}) asked to stop is still running after {}: it waits up to 60 s \
                 for its requests in flight and 30 s for its services; wait longer \
                 (`gantry engine stop --timeout 5m`) or end it at once with `kill -9 {}`",
                status.pid,
                crate::units::format_duration(timeout),
                status.pid
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "gantry: stopped the engine (pid {}); {} removed, {} released",
        status.pid,
        socket.display(),
        status.state_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Whether process `pid` still runs (a zombie, exited but not yet reaped by
/// its parent, no longer does).
fn process_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    if rustix::process::test_kill_process(pid).is_err() {
        return false;
    }
    // Linux: the state is the field after the parenthesised command name.
    match std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_none_or(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

async fn logs(socket: &Path, follow: bool, tail: Option<usize>) -> Result<ExitCode> {
    let path = log_path(socket);
    let mut file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::NotFound => {
            let running = match fetch_status(socket).await {
                Ok(Some(status)) => format!(
                    "the engine on {} (pid {}) was not started by an SDK",
                    socket.display(),
                    status.pid
                ),
                Ok(None) => not_running(socket),
                Err(error) => format!("{error:#}"),
            };
            eprintln!(
                "gantry: no log at {}: {running}; a `gantry serve` started by hand writes its log \
                 to its own stderr (the terminal or service manager that started it, e.g. \
                 `journalctl --user -u gantry`)",
                path.display()
            );
            return Ok(ExitCode::from(NOT_RUNNING));
        }
        Err(error) => {
            return Err(error).with_context(|| format!("while opening {}", path.display()))
        }
    };
    let mut text = Vec::new();
    file.read_to_end(&mut text)
        .with_context(|| format!("while reading {}", path.display()))?;
    let mut out = std::io::stdout().lock();
    out.write_all(last_lines(&text, tail))?;
    out.flush()?;
    drop(out);
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut position = text.len() as u64;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let length = match std::fs::metadata(&path) {
            Ok(meta) => meta.len(),
            // Removed (the directory was cleaned): wait for a new one.
            Err(_) => continue,
        };
        if length < position {
            // Truncated or replaced: start again from its beginning.
            file = std::fs::File::open(&path)
                .with_context(|| format!("while reopening {}", path.display()))?;
            position = 0;
        }
        if length == position {
            continue;
        }
        file.seek(SeekFrom::Start(position))?;
        let mut chunk = Vec::new();
        file.read_to_end(&mut chunk)?;
        position += chunk.len() as u64;
        let mut out = std::io::stdout().lock();
        out.write_all(&chunk)?;
        out.flush()?;
    }
}

/// The last `count` lines of `text` (all of it without a count).
fn last_lines(text: &[u8], count: Option<usize>) -> &[u8] {
    let Some(count) = count else {
        return text;
    };
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let start = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, byte)| **byte == b'\n')
        .nth(count.saturating_sub(1))
        .map_or(0, |(at, _)| at + 1);
    if count == 0 {
        return &[];
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_counts_from_the_end() {
        let text = b"one\ntwo\nthree\n";
        assert_eq!(last_lines(text, None), text);
        assert_eq!(last_lines(text, Some(2)), b"two\nthree\n");
        assert_eq!(last_lines(text, Some(1)), b"three\n");
        assert_eq!(last_lines(text, Some(9)), text);
        assert_eq!(last_lines(text, Some(0)), b"");
        assert_eq!(last_lines(b"a\nb", Some(1)), b"b");
    }
}
