//! `gantry query`: one GraphQL document, answered by a running engine (when
//! one answers on the socket) or by an engine started in this process.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};

use crate::client::Connection;
use crate::engine::{self, EngineArgs};
use crate::progress::{Follower, Progress, ProgressArgs};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  echo '{ container { from(address: \"alpine\") { withExec(args: [\"echo\", \"hi\"]) { stdout } } } }' | gantry query\n  gantry query pipeline.graphql --var image=127.0.0.1:5000/busybox"
)]
pub(crate) struct QueryArgs {
    /// File holding the GraphQL document [default: read stdin]
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// A string variable, NAME=VALUE (repeatable)
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// Variables as a JSON object
    #[arg(long, value_name = "JSON")]
    vars_json: Option<String>,
    /// Name of the operation to run, when the document has several
    #[arg(long)]
    operation: Option<String>,
    /// Engine socket to use when one answers [env: GANTRY_SOCKET]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Never use a running engine; start one in this process
    #[arg(long)]
    in_process: bool,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    progress: ProgressArgs,
}

fn variables(args: &QueryArgs) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut vars = match &args.vars_json {
        Some(text) => match serde_json::from_str(text).context("while parsing --vars-json")? {
            serde_json::Value::Object(map) => map,
            _ => bail!("--vars-json must be a JSON object, e.g. '{{\"name\": \"value\"}}'"),
        },
        None => serde_json::Map::new(),
    };
    for pair in &args.vars {
        let Some((name, value)) = pair.split_once('=') else {
            bail!("--var {pair:?}: expected NAME=VALUE");
        };
        vars.insert(name.to_owned(), serde_json::Value::String(value.to_owned()));
    }
    Ok(vars)
}

pub(crate) async fn run(args: QueryArgs) -> Result<ExitCode> {
    let document = match &args.file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("while reading {}", path.display()))?,
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("while reading the query from stdin")?;
            text
        }
    };
    if document.trim().is_empty() {
        bail!("no GraphQL document given: pass a file or pipe one on stdin");
    }
    let mut body = serde_json::json!({ "query": document, "variables": variables(&args)? });
    if let Some(name) = &args.operation {
        body["operationName"] = serde_json::Value::String(name.clone());
    }
    let socket = crate::serve::socket_path(args.socket.as_deref());
    let workdir = std::env::current_dir().context("while reading the current directory")?;
    let progress = Progress::start(&args.progress);
    // A running engine answers when one listens on the socket.
    let running = if args.in_process {
        None
    } else {
        match Connection::open(&socket).await {
            Ok(connection) => Some((connection, socket.clone())),
            Err(_) => serving_engine(&args.engine).await,
        }
    };
    if running.is_some() && args.engine.cache.cache.is_some() {
        tracing::warn!(socket = %socket.display(), "--cache applies to an engine this command starts; the engine already serving this socket keeps its own cache settings (add --in-process, or start that engine with gantry serve --cache)");
    }
    let response: serde_json::Value = match running {
        Some((connection, socket)) => {
            let follower = follow_running(&progress, &socket).await;
            let answer = connection.query(&body, &workdir).await;
            if let Some(follower) = follower {
                follower.stop().await;
            }
            answer?
        }
        None => {
            let engine = engine::start(&args.engine).await?;
            let trace = crate::telemetry::SessionTrace::start(&engine, "gantry query");
            crate::terminal::UserTerminal::lend(&engine, progress.sender(), false)?;
            let follower = progress.follow_engine(&engine);
            let schema = gantry_api::schema(engine.clone());
            let answer =
                gantry_api::execute_json(&schema, body, gantry_api::ClientInfo::new(Some(workdir)))
                    .await;
            engine::finish(&engine).await;
            if let Some(trace) = trace {
                trace.finish().await;
            }
            if let Some(follower) = follower {
                follower.stop().await;
            }
            answer.context("while reading the GraphQL request")?
        }
    };
    // The progress list is gone from the terminal before the answer prints.
    progress.finish();
    let errors = response
        .get("errors")
        .and_then(|e| e.as_array())
        .filter(|e| !e.is_empty());
    match errors {
        None => {
            println!("{}", serde_json::to_string_pretty(&response["data"])?);
            Ok(ExitCode::SUCCESS)
        }
        Some(errors) => {
            if !response["data"].is_null() {
                println!("{}", serde_json::to_string_pretty(&response["data"])?);
            }
            for error in errors {
                let message = error["message"].as_str().unwrap_or("unknown error");
                eprintln!("error: {message}");
                if error["extensions"]["_type"] == "EXEC_ERROR" {
                    for stream in ["stdout", "stderr"] {
                        if let Some(text) = error["extensions"][stream]
                            .as_str()
                            .filter(|t| !t.is_empty())
                        {
                            eprintln!("--- {stream} ---\n{}", text.trim_end());
                        }
                    }
                }
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The `gantry serve` that serves the state directory (on a socket other
/// than ours), when one runs: queries go to it rather than to a second
/// engine on the same directory.
async fn serving_engine(args: &EngineArgs) -> Option<(Connection, PathBuf)> {
    let root = args.state_dir();
    if !root.join("layout").exists() {
        return None;
    }
    let socket = gantry_store::StateDir::open(&root).ok()?.serving_socket()?;
    let connection = Connection::open(&socket).await.ok()?;
    tracing::debug!(socket = %socket.display(), "using the engine that serves the state directory");
    Some((connection, socket))
}

/// Follows the event stream of the engine on `socket` (its steps for every
/// client), subscribed before the query is sent so that none of its steps is
/// missed. Without an event stream the query still runs, without progress.
async fn follow_running(progress: &Progress, socket: &Path) -> Option<Follower> {
    if progress.is_quiet() {
        return None;
    }
    let explain = progress.explains();
    let events = async { Connection::open(socket).await?.events(explain).await };
    match events.await {
        Ok(events) => progress.follow_remote(events),
        Err(error) => {
            tracing::debug!(error = %format!("{error:#}"), "no progress: the engine's event stream is unavailable");
            None
        }
    }
}
