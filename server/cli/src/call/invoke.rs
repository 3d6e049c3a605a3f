//! Running a parsed call inside an engine session: object flags become IDs,
//! the module runtime calls the function, chained fields run as one query
//! from the returned object's ID, and the result is printed or exported.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value as Json};
use tokio::io::AsyncWriteExt as _;

use super::api::{Ty, FLAG_OBJECTS};
use super::chain::{Chain, ObjectSource, SecretSource, Segment, Value};
use super::exit;
use crate::engine::EngineArgs;
use crate::module::runtime::{Loaded, LOAD_FAILED};
use crate::progress::{Follower, Progress, ProgressArgs, Stream};
use crate::session;

pub(crate) struct Call<'a> {
    pub(crate) loaded: Option<&'a Loaded>,
    pub(crate) chain: Chain,
    pub(crate) output: Option<PathBuf>,
    pub(crate) json: bool,
    pub(crate) cwd: PathBuf,
    pub(crate) engine: &'a EngineArgs,
    pub(crate) progress: ProgressArgs,
    /// `--interactive`: a shell in a failed step's container.
    pub(crate) interactive: bool,
}

/// What the function (or the chain) produced.
enum Outcome {
    Value(Json),
    Object { ty: String, id: String },
}

/// An error already explained on stderr, with its exit status.
struct Reported(u8);

pub(crate) async fn call(call: Call<'_>) -> Result<ExitCode> {
    // Secrets are read before the engine starts, so a missing variable is a
    // usage error that costs nothing. Values stay in memory.
    let secrets = match read_secrets(&call.chain, &call.cwd).await {
        Ok(secrets) => secrets,
        Err(message) => {
            eprintln!("gantry: error: {message}");
            return Ok(ExitCode::from(exit::USAGE));
        }
    };
    let dir = tempfile::Builder::new().prefix("gantry-call").tempdir()?;
    let result_path = dir.path().join("result.json");
    // The Go dispatcher is built here, once per source digest.
    let command = match call.loaded {
        Some(loaded) => match loaded.command("invoke", &result_path).await {
            Ok(command) => Some(command),
            Err(load) => {
                eprintln!("gantry: error: {:#}", load.error);
                return Ok(ExitCode::from(exit::MODULE));
            }
        },
        None => None,
    };
    let progress = Progress::start(&call.progress);
    let mut session = session::start_session(call.engine, call.cwd.clone(), "gantry call").await?;
    crate::terminal::UserTerminal::lend(&session.engine, progress.sender(), call.interactive)?;
    let follower = progress.follow_engine(&session.engine);
    let engine = Engine {
        schema: session.schema.clone(),
        workdir: call.cwd.clone(),
    };
    let outcome = run(
        &call,
        &engine,
        &session,
        command,
        &result_path,
        &secrets,
        &progress,
    )
    .await;
    crate::engine::finish(&session.engine).await;
    session.finish_trace().await;
    stop(follower).await;
    progress.finish();
    match outcome {
        Ok(outcome) => {
            print(&outcome, call.json)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(Reported(code)) => Ok(ExitCode::from(code)),
    }
}

async fn stop(follower: Option<Follower>) {
    if let Some(follower) = follower {
        follower.stop().await;
    }
}

struct Engine {
    schema: gantry_api::GantrySchema,
    workdir: PathBuf,
}

impl Engine {
    /// Runs one document; GraphQL errors are printed and reported.
    async fn query(&self, query: &str, variables: Json) -> Result<Json, Reported> {
        let body = json!({ "query": query, "variables": variables });
        let client = gantry_api::ClientInfo::new(Some(self.workdir.clone()));
        let response = match gantry_api::execute_json(&self.schema, body, client).await {
            Ok(response) => response,
            Err(error) => {
                eprintln!("gantry: error: while reading the engine's answer: {error}");
                return Err(Reported(exit::FAILED));
            }
        };
        if let Some(errors) = response
            .get("errors")
            .and_then(Json::as_array)
            .filter(|e| !e.is_empty())
        {
            for error in errors {
                print_graphql_error(error);
            }
            return Err(Reported(exit::FAILED));
        }
        Ok(response["data"].clone())
    }
}

/// Prints one GraphQL error; a failed exec with its command, exit code and
/// the tails of its output (the engine scrubbed secrets from them).
pub(crate) fn print_graphql_error(error: &Json) {
    let message = error["message"].as_str().unwrap_or("unknown error");
    eprintln!("gantry: error: {message}");
    let extensions = &error["extensions"];
    if extensions["_type"] == "EXEC_ERROR" {
        if let Some(cmd) = extensions["cmd"].as_array() {
            let words: Vec<&str> = cmd.iter().filter_map(Json::as_str).collect();
            eprintln!("  command: {}", words.join(" "));
        }
        if let Some(code) = extensions["exitCode"].as_i64() {
            eprintln!("  exit code: {code}");
        }
        for stream in ["stdout", "stderr"] {
            if let Some(text) = extensions[stream].as_str().filter(|t| !t.trim().is_empty()) {
                eprintln!("  --- {stream} (last lines) ---");
                for line in tail(text, 20) {
                    eprintln!("  {line}");
                }
            }
        }
    }
}

fn tail(text: &str, lines: usize) -> Vec<&str> {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].to_vec()
}

type Secrets = BTreeMap<(usize, String), String>;

async fn read_secrets(chain: &Chain, cwd: &Path) -> Result<Secrets, String> {
    let mut secrets = BTreeMap::new();
    for (index, segment) in chain.segments.iter().enumerate() {
        for (name, value) in &segment.args {
            let Value::Object(ObjectSource::Secret(source)) = value else {
                continue;
            };
            let flag = format!("--{}", super::api::kebab_case(name));
            let plaintext = match source {
                SecretSource::Env(var) => std::env::var(var).map_err(|_| {
                    format!("{flag}: environment variable {var} is not set (from env:{var})")
                })?,
                SecretSource::File(path) => std::fs::read_to_string(path).map_err(|error| {
                    format!(
                        "{flag}: cannot read secret file {}: {error}",
                        path.display()
                    )
                })?,
                SecretSource::Command(command) => {
                    let output = tokio::process::Command::new("sh")
                        .arg("-c")
                        .arg(command)
                        .current_dir(cwd)
                        .stdin(Stdio::null())
                        .stderr(Stdio::inherit())
                        .output()
                        .await
                        .map_err(|error| {
                            format!("{flag}: cannot run the secret command: {error}")
                        })?;
                    if !output.status.success() {
                        return Err(format!(
                            "{flag}: the secret command exited with {}",
                            output.status
                        ));
                    }
                    String::from_utf8(output.stdout).map_err(|_| {
                        format!("{flag}: the secret command printed bytes that are not UTF-8")
                    })?
                }
            };
            // Like Dagger: one trailing newline (from a file or `echo`) is not part of it.
            let plaintext = plaintext
                .strip_suffix('\n')
                .unwrap_or(&plaintext)
                .to_owned();
            secrets.insert((index, name.clone()), plaintext);
        }
    }
    Ok(secrets)
}

/// The ID of an object named by a flag.
async fn object_id(
    engine: &Engine,
    source: &ObjectSource,
    secret: Option<&str>,
    name: &str,
) -> Result<String, Reported> {
    let path_text = |path: &Path| Json::String(path.to_string_lossy().into_owned());
    let (query, variables, pointer) = match source {
        ObjectSource::Directory(path) => (
            "query($v: String!) { host { directory(path: $v) { id } } }",
            json!({ "v": path_text(path) }),
            "/host/directory/id",
        ),
        ObjectSource::File(path) => (
            "query($v: String!) { host { file(path: $v) { id } } }",
            json!({ "v": path_text(path) }),
            "/host/file/id",
        ),
        ObjectSource::GitDirectory(address) => (
            "query($v: String!) { address(value: $v) { directory { id } } }",
            json!({ "v": address }),
            "/address/directory/id",
        ),
        ObjectSource::GitFile(address) => (
            "query($v: String!) { address(value: $v) { file { id } } }",
            json!({ "v": address }),
            "/address/file/id",
        ),
        ObjectSource::Container(address) => (
            "query($v: String!) { container { from(address: $v) { id } } }",
            json!({ "v": address }),
            "/container/from/id",
        ),
        ObjectSource::CacheVolume(key) => (
            "query($v: String!) { cacheVolume(key: $v) { id } }",
            json!({ "v": key }),
            "/cacheVolume/id",
        ),
        ObjectSource::Secret(_) => (
            "query($n: String!, $v: String!) { setSecret(name: $n, plaintext: $v) { id } }",
            json!({ "n": name, "v": secret.expect("secrets were read for every secret flag") }),
            "/setSecret/id",
        ),
    };
    let data = engine.query(query, variables).await?;
    match data.pointer(pointer).and_then(Json::as_str) {
        Some(id) => Ok(id.to_owned()),
        None => {
            eprintln!(
                "gantry: error: the engine returned no ID for --{}",
                super::api::kebab_case(name)
            );
            Err(Reported(exit::FAILED))
        }
    }
}

/// Each argument of `segment` as JSON, objects as IDs.
async fn arguments(
    engine: &Engine,
    index: usize,
    segment: &Segment,
    secrets: &Secrets,
) -> Result<BTreeMap<String, (Ty, Json)>, Reported> {
    let mut out = BTreeMap::new();
    for (name, value) in &segment.args {
        let param = segment
            .field
            .params
            .iter()
            .find(|p| &p.name == name)
            .expect("arguments were matched to parameters");
        let json = match value {
            Value::Json(json) => json.clone(),
            Value::Object(source) => {
                let secret = secrets.get(&(index, name.clone())).map(String::as_str);
                let secret_name = format!("{}.{}", segment.field.name, name);
                let name_for_engine = if secret.is_some() {
                    secret_name.as_str()
                } else {
                    name
                };
                Json::String(object_id(engine, source, secret, name_for_engine).await?)
            }
        };
        out.insert(name.clone(), (param.ty.clone(), json));
    }
    Ok(out)
}

async fn run(
    call: &Call<'_>,
    engine: &Engine,
    session: &session::Session,
    command: Option<tokio::process::Command>,
    result_path: &Path,
    secrets: &Secrets,
    progress: &Progress,
) -> Result<Outcome, Reported> {
    let segments = &call.chain.segments;
    let (mut current, rest, offset) = match (call.loaded, command) {
        (Some(loaded), Some(command)) => {
            let function = &segments[0];
            let args = arguments(engine, 0, function, secrets).await?;
            let args: serde_json::Map<String, Json> = args
                .into_iter()
                .map(|(name, (_, json))| (name, json))
                .collect();
            let request = json!({ "function": function.field.name, "args": args });
            let outcome = invoke(loaded, command, session, &request, result_path, progress).await?;
            (Some(outcome), &segments[1..], 1)
        }
        _ => (None, &segments[..], 0),
    };
    if rest.is_empty() {
        match (&current, &call.output) {
            (Some(Outcome::Value(value)), Some(path)) => {
                let text = match value {
                    Json::String(text) => text.clone(),
                    other => other.to_string(),
                };
                let path = call.cwd.join(path);
                if let Err(error) = std::fs::write(&path, text) {
                    eprintln!("gantry: error: cannot write {}: {error}", path.display());
                    return Err(Reported(exit::FAILED));
                }
                return Ok(Outcome::Value(Json::String(path.display().to_string())));
            }
            (Some(Outcome::Value(_)), None) => return Ok(current.take().expect("matched")),
            _ => {}
        }
    }
    // One document from the returned object (or the root) through the chain.
    let mut calls = Vec::new();
    let mut keys = Vec::new();
    let mut returns = match &current {
        Some(Outcome::Object { ty, id }) => {
            let field = format!("load{ty}FromID");
            calls.push(format!(
                "{field}(id: {})",
                literal(&Json::String(id.clone()))
            ));
            keys.push(field);
            Ty::Object(ty.clone())
        }
        Some(Outcome::Value(_)) => {
            unreachable!("scalars have no fields; the parser refuses to chain them")
        }
        None => Ty::Object("Query".into()),
    };
    for (i, segment) in rest.iter().enumerate() {
        let args = arguments(engine, i + offset, segment, secrets).await?;
        let rendered: Vec<String> = args
            .iter()
            .map(|(name, (ty, json))| format!("{name}: {}", graphql_literal(ty, json)))
            .collect();
        calls.push(if rendered.is_empty() {
            segment.field.name.clone()
        } else {
            format!("{}({})", segment.field.name, rendered.join(", "))
        });
        keys.push(segment.field.name.clone());
        returns = segment.field.returns.clone();
    }
    let mut evaluated_object = None;
    match &returns {
        Ty::Object(ty) if ty == "Query" => {
            eprintln!("gantry: error: name a field of the core API (`gantry functions -m core` lists them)");
            return Err(Reported(exit::USAGE));
        }
        Ty::Object(ty) => {
            match &call.output {
                Some(output) => {
                    if !["Container", "Directory", "File"].contains(&ty.as_str()) {
                        eprintln!("gantry: error: -o saves a Container, Directory or File; this returns {ty}");
                        return Err(Reported(exit::USAGE));
                    }
                    let absolute = call.cwd.join(output);
                    calls.push(format!(
                        "export(path: {})",
                        literal(&Json::String(absolute.display().to_string()))
                    ));
                    keys.push("export".into());
                }
                None => {
                    // Evaluated (where the type can be) and shown by its ID.
                    let leaf = if ["Container", "Directory", "File"].contains(&ty.as_str()) {
                        "sync"
                    } else {
                        "id"
                    };
                    calls.push(leaf.into());
                    keys.push(leaf.into());
                    evaluated_object = Some(ty.clone());
                }
            }
        }
        // A list of objects: each element's ID.
        Ty::List(inner) if matches!(**inner, Ty::Object(_)) => calls.push("id".into()),
        _ => {}
    }
    let document = format!("{{ {} }}", nest(&calls));
    tracing::debug!(%document, "chained query");
    let data = engine.query(&document, json!({})).await?;
    let value = keys
        .iter()
        .fold(&data, |value, key| &value[key.as_str()])
        .clone();
    Ok(match evaluated_object {
        Some(ty) => Outcome::Object {
            ty,
            id: value.as_str().unwrap_or_default().to_owned(),
        },
        None => Outcome::Value(value),
    })
}

/// `[a, b, c]` → `a { b { c } }`.
fn nest(calls: &[String]) -> String {
    match calls {
        [] => String::new(),
        [last] => last.clone(),
        [first, rest @ ..] => format!("{first} {{ {} }}", nest(rest)),
    }
}

/// Runs the module runtime's `invoke` with the session's variables.
async fn invoke(
    loaded: &Loaded,
    mut command: tokio::process::Command,
    session: &session::Session,
    request: &Json,
    result_path: &Path,
    progress: &Progress,
) -> Result<Outcome, Reported> {
    let port = session.port.to_string();
    command
        .env(crate::env::SESSION_PORT, &port)
        .env(crate::env::SESSION_TOKEN, &session.token)
        .env(crate::env::DAGGER_SESSION_PORT, &port)
        .env(crate::env::DAGGER_SESSION_TOKEN, &session.token)
        .env(crate::env::SOCKET, session.socket.path())
        .stdin(Stdio::piped());
    if let Some(traceparent) = session.traceparent() {
        command.env(crate::env::TRACEPARENT, traceparent);
    }
    // The module's own output is progress, not the result: it goes to stderr
    // through the renderer, a line at a time, so that progress never lands
    // inside one of its lines (nor tears the list on a terminal).
    let routed = progress.sender();
    if routed.is_some() {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
    } else {
        match stderr_as_stdio() {
            Some(stdio) => command.stdout(stdio),
            None => command.stdout(Stdio::null()),
        };
    }
    let program = command
        .as_std()
        .get_program()
        .to_string_lossy()
        .into_owned();
    let shutdown = crate::serve::Shutdown::listen();
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            eprintln!(
                "gantry: error: could not start {program:?} for module {}: {error}",
                loaded.module.name
            );
            return Err(Reported(exit::MODULE));
        }
    };
    let mut pipes = Vec::new();
    if let Some(sender) = &routed {
        if let Some(stdout) = child.stdout.take() {
            pipes.push(session::forward_lines(
                stdout,
                Stream::Stderr,
                sender.clone(),
            ));
        }
        if let Some(stderr) = child.stderr.take() {
            pipes.push(session::forward_lines(
                stderr,
                Stream::Stderr,
                sender.clone(),
            ));
        }
    }
    if let Some(mut stdin) = child.stdin.take() {
        let bytes = serde_json::to_vec(request).expect("a JSON value serializes");
        // A runtime that exits early closes its stdin; its exit status explains.
        let _ = stdin.write_all(&bytes).await;
    }
    let status = tokio::select! {
        status = child.wait() => status,
        () = shutdown.wait() => {
            let _ = child.kill().await;
            return Err(Reported(130));
        }
    };
    for pipe in pipes {
        let _ = tokio::time::timeout(Duration::from_secs(2), pipe).await;
    }
    let status = match status {
        Ok(status) => status,
        Err(error) => {
            eprintln!("gantry: error: while waiting for the module runtime: {error}");
            return Err(Reported(exit::FAILED));
        }
    };
    let function = request["function"].as_str().unwrap_or_default();
    match status.code() {
        Some(0) => {}
        Some(LOAD_FAILED) => {
            eprintln!(
                "gantry: error: module {} could not be loaded (see above)",
                loaded.module.name
            );
            return Err(Reported(exit::MODULE));
        }
        _ => {
            eprintln!("gantry: error: function {function} failed (see above)");
            return Err(Reported(exit::FAILED));
        }
    }
    let result = match read_result(result_path) {
        Ok(result) => result,
        Err(error) => {
            eprintln!("gantry: error: function {function}: {error:#}");
            return Err(Reported(exit::FAILED));
        }
    };
    Ok(result)
}

fn read_result(path: &Path) -> Result<Outcome> {
    let bytes = std::fs::read(path).context("the module runtime wrote no result")?;
    let result: Json =
        serde_json::from_slice(&bytes).context("the module runtime's result is not JSON")?;
    let ty = result["type"].as_str().unwrap_or("String");
    if FLAG_OBJECTS.contains(&ty) {
        let Some(id) = result["id"].as_str() else {
            bail!("the module runtime returned a {ty} without an ID");
        };
        return Ok(Outcome::Object {
            ty: ty.to_owned(),
            id: id.to_owned(),
        });
    }
    Ok(Outcome::Value(
        result.get("value").cloned().unwrap_or(Json::Null),
    ))
}

/// Our stderr as a child's stdout.
fn stderr_as_stdio() -> Option<Stdio> {
    use std::os::fd::AsFd as _;
    std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(Stdio::from)
}

/// A JSON string or number as a GraphQL literal (their syntax agrees).
fn literal(value: &Json) -> String {
    value.to_string()
}

/// A value of type `ty` as a GraphQL literal: enums bare, the rest as JSON.
fn graphql_literal(ty: &Ty, value: &Json) -> String {
    match (ty, value) {
        (Ty::Enum { .. }, Json::String(name)) => name.clone(),
        (Ty::List(inner), Json::Array(items)) => format!(
            "[{}]",
            items
                .iter()
                .map(|item| graphql_literal(inner, item))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => literal(value),
    }
}

fn print(outcome: &Outcome, json: bool) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match outcome {
        Outcome::Object { ty, id } => {
            if json {
                writeln!(stdout, "{}", json!({ "type": ty, "id": id }))?;
            } else {
                writeln!(stdout, "{id}")?;
            }
        }
        Outcome::Value(value) if json => {
            writeln!(stdout, "{}", serde_json::to_string_pretty(value)?)?
        }
        Outcome::Value(Json::Null) => {}
        Outcome::Value(Json::String(text)) => {
            stdout.write_all(text.as_bytes())?;
            if !text.ends_with('\n') && !text.is_empty() {
                writeln!(stdout)?;
            }
        }
        Outcome::Value(Json::Array(items)) => {
            for item in items {
                match item {
                    Json::String(text) => writeln!(stdout, "{text}")?,
                    Json::Object(map) if map.len() == 1 => {
                        let inner = map.values().next().expect("one entry");
                        writeln!(
                            stdout,
                            "{}",
                            inner
                                .as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| inner.to_string())
                        )?;
                    }
                    other => writeln!(stdout, "{other}")?,
                }
            }
        }
        Outcome::Value(other) => writeln!(stdout, "{other}")?,
    }
    stdout.flush()?;
    Ok(())
}
