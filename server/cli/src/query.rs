//! `gantry query`: one GraphQL document, answered by a running engine (when
//! one answers on the socket) or by an engine started in this process.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::UnixStream;

use crate::engine::{self, EngineArgs};
use crate::progress::{Progress, ProgressArgs};

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
    let progress = Progress::start(args.progress.progress);
    let response: serde_json::Value = match (args.in_process, UnixStream::connect(&socket).await) {
        (false, Ok(stream)) => {
            // The running engine's event stream carries every client's steps.
            let follower = progress.follow_socket(&socket).await;
            let answer = post_over_socket(stream, &body).await;
            if let Some(follower) = follower {
                follower.stop().await;
            }
            answer?
        }
        _ => {
            let engine = engine::start(&args.engine).await?;
            let follower = progress.follow_engine(&engine);
            let schema = gantry_api::schema(engine);
            let workdir = std::env::current_dir()?;
            let answer =
                gantry_api::execute_json(&schema, body, gantry_api::ClientInfo { workdir }).await;
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

/// A minimal HTTP/1.1 POST over the engine socket (the server always sends
/// Content-Length and we ask it to close the connection).
async fn post_over_socket(
    mut stream: UnixStream,
    body: &serde_json::Value,
) -> Result<serde_json::Value> {
    let payload = serde_json::to_vec(body)?;
    let workdir = std::env::current_dir()?;
    let head = format!(
        "POST /query HTTP/1.1\r\nHost: gantry\r\nContent-Type: application/json\r\nX-Gantry-Workdir: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        workdir.display(),
        payload.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&payload).await?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .context("while reading the engine's answer")?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the engine sent a malformed HTTP response")?;
    let status_line = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    if !status_line.starts_with("HTTP/1.1 200") {
        bail!(
            "the engine answered {}: {}",
            status_line.lines().next().unwrap_or_default(),
            String::from_utf8_lossy(body)
        );
    }
    parse_deep(body).context("while parsing the engine's JSON answer")
}

/// Parses JSON without serde_json's nesting limit of 128: answers nest one
/// level per chained call, and pipelines can be longer than that. The worker
/// stack (see main.rs) is sized for `MAX_QUERY_DEPTH`.
fn parse_deep(bytes: &[u8]) -> serde_json::Result<serde_json::Value> {
    use serde::Deserialize as _;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    deserializer.disable_recursion_limit();
    serde_json::Value::deserialize(&mut deserializer)
}
