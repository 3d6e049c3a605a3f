//! Sessions: an engine served on a fresh loopback port with a random token.
//! `gantry run -- CMD` runs a command inside one (exporting the variables
//! gantry's and Dagger's SDKs read); `gantry session` implements the
//! protocol Dagger's SDKs use when they start an engine CLI themselves.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::{Context as _, Result};
use gantry_api::Access;
use gantry_core::Engine;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::net::TcpListener;

use crate::engine::{self, EngineArgs};
use crate::env;
use crate::progress::{Message, Progress, ProgressArgs, ProgressMode, Stream};
use crate::serve::random_token;

pub(crate) struct Session {
    pub(crate) port: u16,
    pub(crate) token: String,
    pub(crate) engine: Arc<Engine>,
    /// The session's schema: its host snapshots are shared by every client
    /// of the session, in process ones included (`gantry call`).
    pub(crate) schema: gantry_api::GantrySchema,
    pub(crate) socket: SessionSocket,
    /// The session's trace, when OpenTelemetry export is configured.
    trace: Option<crate::telemetry::SessionTrace>,
}

impl Session {
    /// The `TRACEPARENT` the session's commands get (the session span), when
    /// the session is traced: their own spans (an SDK's) join its trace.
    pub(crate) fn traceparent(&self) -> Option<String> {
        self.trace
            .as_ref()
            .map(crate::telemetry::SessionTrace::traceparent)
    }

    /// Ends the session's trace and sends what is left of it (bounded); call
    /// it once the session's steps are over.
    pub(crate) async fn finish_trace(&mut self) {
        if let Some(trace) = self.trace.take() {
            trace.finish().await;
        }
    }
}

/// The session's Unix socket, in a private directory of its own (mode
/// 0700), removed with the session.
pub(crate) struct SessionSocket {
    dir: PathBuf,
}

impl SessionSocket {
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join("engine.sock")
    }
}

impl Drop for SessionSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Serves `app` on a fresh socket under the temp directory.
fn bind_session_socket(app: axum::Router) -> Result<SessionSocket> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!(
        "gantry-session-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir(&dir).with_context(|| format!("while creating {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    let socket = SessionSocket { dir };
    let listener = tokio::net::UnixListener::bind(socket.path())
        .with_context(|| format!("while binding {}", socket.path().display()))?;
    std::fs::set_permissions(socket.path(), std::fs::Permissions::from_mode(0o600))?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "session socket failed");
        }
    });
    Ok(socket)
}

/// Starts an engine served on a fresh loopback port and socket; `name` names
/// its trace's session span (`gantry run`).
pub(crate) async fn start_session(
    args: &EngineArgs,
    workdir: PathBuf,
    name: &'static str,
) -> Result<Session> {
    let engine = engine::start(args).await?;
    // Before anything is served: no step goes untraced.
    let trace = crate::telemetry::SessionTrace::start(&engine, name);
    let schema = gantry_api::session_schema(engine.clone());
    let token = random_token();
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("while binding a loopback port for the session")?;
    let port = listener.local_addr()?.port();
    // The session's clients run in the command's directory.
    let socket = bind_session_socket(gantry_api::router(
        schema.clone(),
        Access::Open,
        Some(workdir.clone()),
    ))?;
    let app = gantry_api::router(
        schema.clone(),
        Access::Token(Arc::from(token.as_str())),
        Some(workdir),
    );
    tokio::spawn(async move {
        if let Err(error) = gantry_api::serve_tcp(listener, app).await {
            tracing::error!(%error, "session server failed");
        }
    });
    Ok(Session {
        port,
        token,
        engine,
        schema,
        socket,
        trace,
    })
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  gantry run -- python ci.py\n  gantry run -- go run ./ci\n\n\
The command sees GANTRY_SESSION_PORT/GANTRY_SESSION_TOKEN, DAGGER_SESSION_PORT/\n\
DAGGER_SESSION_TOKEN and GANTRY_SOCKET (the session's own Unix socket), so gantry's SDKs\n\
and Dagger's official SDKs both connect to this session."
)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    progress: ProgressArgs,
    /// When a step fails, open a shell in its container (as the failed
    /// command left it) on this terminal; the run fails as before once the
    /// shell exits
    #[arg(short = 'i', long)]
    interactive: bool,
    /// The command to run, after `--`
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    command: Vec<String>,
}

pub(crate) async fn run(args: RunArgs) -> Result<ExitCode> {
    let workdir = std::env::current_dir().context("while reading the current directory")?;
    let progress = Progress::start(&args.progress);
    let mut session = start_session(&args.engine, workdir, "gantry run").await?;
    crate::terminal::UserTerminal::lend(&session.engine, progress.sender(), args.interactive)?;
    let follower = progress.follow_engine(&session.engine);
    let port = session.port.to_string();
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let mut command = tokio::process::Command::new(program);
    command
        .args(rest)
        .env(env::SESSION_PORT, &port)
        .env(env::SESSION_TOKEN, &session.token)
        .env(env::DAGGER_SESSION_PORT, &port)
        .env(env::DAGGER_SESSION_TOKEN, &session.token)
        .env(env::SOCKET, session.socket.path());
    if let Some(traceparent) = session.traceparent() {
        command.env(env::TRACEPARENT, traceparent);
    }
    // The command's stderr (and its stdout on a terminal) goes through the
    // progress renderer a line at a time, so that progress never lands
    // inside one of its lines (on a terminal, above the steps redrawn in
    // place). Its stdout elsewhere (a file, a pipe) stays as it is.
    let routed = progress.sender();
    if let Some(sender) = &routed {
        if progress.is_tty() {
            let url = format!(
                "gantry: GraphiQL for this run: http://127.0.0.1:{port}/?token={}\n",
                session.token
            );
            let _ = sender.send(Message::Output(Stream::Stderr, url.into_bytes()));
        }
        if std::io::stdout().is_terminal() {
            command.stdout(Stdio::piped());
        }
        command.stderr(Stdio::piped());
    }
    let shutdown = crate::serve::Shutdown::listen();
    let mut child = command
        .spawn()
        .with_context(|| format!("while starting {program:?}: is it installed and on PATH?"))?;
    let mut pipes = Vec::new();
    if let Some(sender) = &routed {
        if let Some(stdout) = child.stdout.take() {
            pipes.push(forward_lines(stdout, Stream::Stdout, sender.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            pipes.push(forward_lines(stderr, Stream::Stderr, sender.clone()));
        }
    }
    let status = tokio::select! {
        status = child.wait() => status.with_context(|| format!("while waiting for {program:?}"))?,
        _ = shutdown.wait() => {
            let _ = child.kill().await;
            engine::stop(&session.engine).await;
            session.finish_trace().await;
            return Ok(ExitCode::from(130));
        }
    };
    engine::stop(&session.engine).await;
    for pipe in pipes {
        // A process the command left behind may hold its output open.
        if tokio::time::timeout(Duration::from_secs(2), pipe)
            .await
            .is_err()
        {
            tracing::debug!("stopped forwarding output still open after the command exited");
        }
    }
    engine::finish(&session.engine).await;
    session.finish_trace().await;
    if let Some(follower) = follower {
        follower.stop().await;
    }
    progress.finish();
    Ok(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        // Killed by a signal: report it the way shells do.
        None => ExitCode::from(128u8.saturating_add(signal_of(&status))),
    })
}

/// Sends `reader`'s output to the renderer a line at a time (a partial
/// line at the end as it is).
pub(crate) fn forward_lines(
    reader: impl AsyncRead + Unpin + Send + 'static,
    stream: Stream,
    sender: mpsc::Sender<Message>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if sender.send(Message::Output(stream, line)).is_err() {
                        return;
                    }
                }
            }
        }
    })
}

fn signal_of(status: &std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .signal()
        .and_then(|s| u8::try_from(s).ok())
        .unwrap_or(1)
}

/// `gantry session`: prints `{"port":N,"session_token":"…"}` on stdout and
/// serves until stdin closes. Flags Dagger's SDKs pass are accepted; only
/// `--workdir` is used.
pub(crate) async fn session(raw: Vec<String>) -> Result<()> {
    // Before the session line is printed: a client may signal right after.
    let shutdown = crate::serve::Shutdown::listen();
    let mut workdir = std::env::current_dir().context("while reading the current directory")?;
    let mut engine_args = EngineArgs {
        state_dir: None,
        max_parallel: 16,
        runtime: None,
        cache: crate::cache::CacheArgs::default(),
        cache_max_size: None,
    };
    let mut iter = raw.into_iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| iter.next());
        match flag.as_str() {
            "--workdir" => {
                if let Some(dir) = value() {
                    workdir = workdir.join(dir);
                }
            }
            "--state-dir" => engine_args.state_dir = value().map(PathBuf::from),
            // The local and remote cache settings `serve` and `run` take
            // (also read from GANTRY_CACHE_MAX_SIZE, GANTRY_CACHE, ...).
            "--cache-max-size" => engine_args.cache_max_size = value(),
            "--cache" => engine_args.cache.cache = value(),
            "--cache-mode" => {
                let mode = value().unwrap_or_default();
                engine_args.cache.cache_mode = Some(
                    <crate::cache::CacheMode as clap::ValueEnum>::from_str(&mode, true).map_err(
                        |_| anyhow::anyhow!("--cache-mode {mode:?}: use readwrite or read"),
                    )?,
                );
            }
            "--label" | "--project" => {
                let _ = value();
            }
            _ => tracing::debug!(arg = %arg, "ignoring session argument"),
        }
    }
    // The SDK that started us owns our stderr: progress only when asked for.
    let mode = std::env::var(env::PROGRESS)
        .ok()
        .and_then(|value| <ProgressMode as clap::ValueEnum>::from_str(&value, true).ok())
        .unwrap_or(ProgressMode::Quiet);
    let progress = Progress::start(&ProgressArgs {
        progress: mode,
        explain_cache: false,
    });
    let mut session = start_session(&engine_args, workdir, "gantry session").await?;
    let follower = progress.follow_engine(&session.engine);
    let line = serde_json::json!({ "port": session.port, "session_token": session.token });
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}").context("while writing the session line")?;
        stdout.flush()?;
    }
    // The session lives until the client closes our stdin (Python, Go) or
    // sends SIGTERM (TypeScript). stdin is read on a detached thread: tokio's
    // own stdin reader blocks runtime shutdown until the read returns, which
    // kept the process alive after SIGTERM while the client held stdin open.
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("session-stdin".into())
        .spawn(move || {
            use std::io::Read as _;
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 1024];
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            let _ = closed_tx.send(());
        })
        .context("while starting the stdin watcher")?;
    tokio::select! {
        _ = closed_rx => {}
        _ = shutdown.wait() => {}
    }
    // As `run` does: pushes to the remote cache, then the size limit.
    engine::finish(&session.engine).await;
    engine::stop(&session.engine).await;
    session.finish_trace().await;
    if let Some(follower) = follower {
        follower.stop().await;
    }
    progress.finish();
    Ok(())
}
