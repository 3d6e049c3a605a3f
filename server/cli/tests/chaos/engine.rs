//! Engines as the scenarios run them: `gantry serve` processes on a given
//! state directory (optionally wrapped, e.g. in `prlimit`), killed hard or
//! stopped, and queries over their socket that give up after a timeout.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How to start one `gantry serve`.
#[derive(Clone, Default)]
pub(crate) struct Spec {
    pub(crate) state: PathBuf,
    pub(crate) socket: PathBuf,
    /// Working directory, log file and default temp directory live here.
    pub(crate) dir: PathBuf,
    /// Put before the binary, e.g. `["prlimit", "--nofile=1024"]`.
    pub(crate) wrapper: Vec<String>,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
}

impl Spec {
    /// A spec with its state, socket and temp directory under `dir`.
    pub(crate) fn under(dir: &Path) -> Self {
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        Self {
            state: dir.join("state"),
            socket: dir.join("engine.sock"),
            dir: dir.to_path_buf(),
            env: vec![("TMPDIR".into(), tmp.display().to_string())],
            ..Self::default()
        }
    }

    pub(crate) fn command(&self, subcommand: &[&str]) -> Command {
        let binary = env!("CARGO_BIN_EXE_gantry");
        let mut command = match self.wrapper.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command
            .args(subcommand)
            .current_dir(&self.dir)
            .env("GANTRY_STATE_DIR", &self.state)
            .env("GANTRY_SOCKET", &self.socket)
            .env_remove("GANTRY_SESSION_PORT")
            .env_remove("GANTRY_SESSION_TOKEN")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }
}

pub(crate) struct Engine {
    pub(crate) spec: Spec,
    child: Child,
}

impl Engine {
    /// Starts `gantry serve` and waits until its socket answers.
    pub(crate) fn start(spec: &Spec) -> Self {
        Self::try_start(spec).unwrap_or_else(|error| panic!("{error}"))
    }

    pub(crate) fn try_start(spec: &Spec) -> Result<Self, String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(spec.dir.join("engine.log"))
            .unwrap();
        let mut child = spec
            .command(&["serve"])
            .args(&spec.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while UnixStream::connect(&spec.socket).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "gantry serve exited with {status}: {}",
                    tail(&std::fs::read_to_string(spec.dir.join("engine.log")).unwrap_or_default())
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err("gantry serve did not start within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Ok(Self {
            spec: spec.clone(),
            child,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as the OOM killer or a cancelled CI job does it.
    pub(crate) fn kill(mut self) -> u32 {
        let pid = self.pid();
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::forget(self);
        pid
    }

    pub(crate) fn query(&self, query: &str, variables: &Value) -> Value {
        query_socket(
            &self.spec.socket,
            query,
            variables,
            Duration::from_secs(120),
        )
        .unwrap_or_else(|error| panic!("query failed: {error}"))
    }

    /// Peak resident memory of the engine process (VmHWM), in bytes. With
    /// a wrapper that execs (prlimit), the pid is the engine's.
    pub(crate) fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status
            .lines()
            .find(|line| line.starts_with("VmHWM:"))
            .expect("VmHWM in /proc/PID/status");
        let kb: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap();
        kb * 1024
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// `POST /query` on a Unix socket, given up after `timeout`.
pub(crate) fn query_socket(
    socket: &Path,
    query: &str,
    variables: &Value,
    timeout: Duration,
) -> Result<Value, String> {
    let body = serde_json::json!({ "query": query, "variables": variables }).to_string();
    let socket = socket.to_path_buf();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let exchange = async {
            use http_body_util::BodyExt as _;
            let stream = tokio::net::UnixStream::connect(&socket)
                .await
                .map_err(|e| format!("connecting: {e}"))?;
            let io = hyper_util::rt::TokioIo::new(stream);
            let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(connection);
            let request = hyper::Request::post("/query")
                .header("Host", "gantry")
                .header("Content-Type", "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                .unwrap();
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| format!("sending: {e}"))?;
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("reading: {e}"))?
                .to_bytes();
            serde_json::from_slice::<Value>(&bytes).map_err(|e| format!("answer: {e}"))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("no answer within {} s", timeout.as_secs_f64())),
        }
    })
}

/// The first error message of an answer, if any.
pub(crate) fn error_of(answer: &Value) -> Option<String> {
    answer["errors"][0]["message"].as_str().map(str::to_owned)
}

/// Docker's container events, watched live: dockerd keeps only its last
/// 256 events for `docker events --since`, far fewer than a busy shared
/// daemon produces while a scenario runs.
pub(crate) struct Events {
    child: Child,
    reader: std::thread::JoinHandle<Vec<Value>>,
}

impl Events {
    pub(crate) fn watch() -> Self {
        let mut child = Command::new("docker")
            .args([
                "events",
                "--since",
                &crate::support::now(),
                "--filter",
                "type=container",
                "--format",
                "{{json .}}",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead as _;
            std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| serde_json::from_str(&line).ok())
                .collect()
        });
        Self { child, reader }
    }

    /// Stops watching (after a moment for late events) and returns what came.
    pub(crate) fn stop(mut self) -> Seen {
        std::thread::sleep(Duration::from_millis(500));
        let _ = self.child.kill();
        let _ = self.child.wait();
        Seen(self.reader.join().unwrap_or_default())
    }
}

/// The container events an `Events` watch saw.
pub(crate) struct Seen(Vec<Value>);

impl Seen {
    fn of<'a>(&'a self, action: &'a str, pids: &'a [u32]) -> impl Iterator<Item = &'a Value> + 'a {
        self.0
            .iter()
            .filter(move |event| event["Action"] == action)
            .map(|event| &event["Actor"]["Attributes"])
            .filter(move |attributes| engine_pid(attributes).is_some_and(|pid| pids.contains(&pid)))
    }

    /// Containers the engines with these pids created.
    pub(crate) fn created(&self, pids: &[u32]) -> usize {
        self.of("create", pids).count()
    }

    /// Images the engines with these pids committed.
    pub(crate) fn committed(&self, pids: &[u32]) -> Vec<String> {
        self.of("commit", pids)
            .filter_map(|attributes| attributes["imageID"].as_str().map(str::to_owned))
            .collect()
    }
}

fn engine_pid(attributes: &Value) -> Option<u32> {
    attributes["dev.gantry.engine-pid"].as_str()?.parse().ok()
}

/// Containers that exist now and belong to the engine with `pid`.
pub(crate) fn containers_of(pid: u32) -> usize {
    crate::support::gantry_containers_of(pid)
}

/// A random number for markers and kill points (no rand dependency).
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    hasher.finish()
}

/// Files under `dir` (recursively), for leftover counts.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => stack.push(path),
                Ok(_) => out.push(path),
                Err(_) => {}
            }
        }
    }
    out
}
