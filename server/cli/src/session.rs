//! Sessions: an engine served on a fresh loopback port with a random token.
//! `gantry run -- CMD` runs a command inside one (exporting the variables
//! gantry's and Dagger's SDKs read); `gantry session` implements the
//! protocol Dagger's SDKs use when they start an engine CLI themselves.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use gantry_api::Access;
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpListener;

use crate::engine::{self, EngineArgs};
use crate::env;
use crate::serve::random_token;

struct Session {
    port: u16,
    token: String,
}

async fn start_session(args: &EngineArgs, workdir: PathBuf) -> Result<Session> {
    let engine = engine::start(args).await?;
    let schema = gantry_api::schema(engine);
    let token = random_token();
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("while binding a loopback port for the session")?;
    let port = listener.local_addr()?.port();
    let app = gantry_api::router(schema, Access::Token(Arc::from(token.as_str())), workdir);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "session server failed");
        }
    });
    Ok(Session { port, token })
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  gantry run -- python ci.py\n  gantry run -- go run ./ci\n\n\
The command sees GANTRY_SESSION_PORT/GANTRY_SESSION_TOKEN and DAGGER_SESSION_PORT/\n\
DAGGER_SESSION_TOKEN, so gantry's SDKs and Dagger's official SDKs both connect to this session."
)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    engine: EngineArgs,
    /// The command to run, after `--`
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    command: Vec<String>,
}

pub(crate) async fn run(args: RunArgs) -> Result<ExitCode> {
    let workdir = std::env::current_dir().context("while reading the current directory")?;
    let session = start_session(&args.engine, workdir).await?;
    let port = session.port.to_string();
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let mut child = tokio::process::Command::new(program)
        .args(rest)
        .env(env::SESSION_PORT, &port)
        .env(env::SESSION_TOKEN, &session.token)
        .env(env::DAGGER_SESSION_PORT, &port)
        .env(env::DAGGER_SESSION_TOKEN, &session.token)
        .spawn()
        .with_context(|| format!("while starting {program:?}: is it installed and on PATH?"))?;
    let status = tokio::select! {
        status = child.wait() => status.with_context(|| format!("while waiting for {program:?}"))?,
        _ = crate::serve::shutdown_signal() => {
            let _ = child.kill().await;
            return Ok(ExitCode::from(130));
        }
    };
    Ok(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        // Killed by a signal: report it the way shells do.
        None => ExitCode::from(128u8.saturating_add(signal_of(&status))),
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
    let mut workdir = std::env::current_dir().context("while reading the current directory")?;
    let mut engine_args = EngineArgs {
        state_dir: None,
        max_parallel: 16,
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
            "--label" | "--project" => {
                let _ = value();
            }
            _ => tracing::debug!(arg = %arg, "ignoring session argument"),
        }
    }
    let session = start_session(&engine_args, workdir).await?;
    let line = serde_json::json!({ "port": session.port, "session_token": session.token });
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}").context("while writing the session line")?;
        stdout.flush()?;
    }
    // The session lives until the client closes our stdin.
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 1024];
    tokio::select! {
        _ = async { while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {} } => {}
        _ = crate::serve::shutdown_signal() => {}
    }
    Ok(())
}
