//! Helpers for the end-to-end tests: a `gantry serve` per test, queries
//! over its socket, and container counts read from Docker.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub(crate) fn docker_available() -> bool {
    let ok = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("GANTRY_TEST_REQUIRE_DOCKER").as_deref() == Ok("1") {
            panic!("Docker is not available but GANTRY_TEST_REQUIRE_DOCKER=1: run `make setup`");
        }
        eprintln!("skipping: no Docker daemon answers (run `make setup`)");
    }
    ok
}

pub(crate) fn busybox() -> String {
    let fixtures = std::env::var("GANTRY_TEST_FIXTURES")
        .unwrap_or_else(|_| "127.0.0.1:5000/gantry-fixtures".into());
    format!("{fixtures}/busybox:latest")
}

pub(crate) fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{:x}", std::process::id(), rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    hasher.finish()
}

/// A timestamp for `docker events --since`.
pub(crate) fn now() -> String {
    let out = Command::new("date").arg("+%s.%N").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Containers the engine with `pid` created since `since`, counted from
/// Docker's events (tests run in parallel, each with its own engine; the
/// pid is matched here because dockerd 20.10 ignores label filters on
/// events).
pub(crate) fn containers_created_since(since: &str, pid: u32) -> usize {
    let out = Command::new("docker")
        .args([
            "events",
            "--since",
            since,
            "--until",
            &now(),
            "--filter",
            "type=container",
            "--filter",
            "event=create",
            "--format",
            r#"{{index .Actor.Attributes "dev.gantry.engine-pid"}}"#,
        ])
        .output()
        .unwrap();
    let pid = pid.to_string();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| line.trim() == pid)
        .count()
}

/// Containers that exist now and belong to the engine with `pid`.
pub(crate) fn gantry_containers_of(pid: u32) -> usize {
    let out = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=dev.gantry.engine-pid={pid}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .count()
}

pub(crate) fn gantry(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gantry"));
    command
        .current_dir(dir)
        .env("GANTRY_STATE_DIR", dir.join("state"))
        .env("GANTRY_SOCKET", dir.join("engine.sock"))
        .env_remove("GANTRY_SESSION_PORT");
    command
}

pub(crate) struct Server {
    dir: tempfile::TempDir,
    child: Child,
    listen: Option<(u16, String)>,
}

impl Server {
    pub(crate) fn start() -> Self {
        Self::spawn(false)
    }

    pub(crate) fn start_with_listen() -> Self {
        Self::spawn(true)
    }

    fn spawn(listen: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (child, listen) = Self::launch(dir.path(), listen);
        Self { dir, child, listen }
    }

    fn launch(dir: &Path, listen: bool) -> (Child, Option<(u16, String)>) {
        let socket = dir.join("engine.sock");
        let mut command = gantry(dir);
        command
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let listen_spec = listen.then(|| {
            let port = free_port();
            let token = unique("token");
            command.args(["--listen", &format!("127.0.0.1:{port}"), "--token", &token]);
            (port, token)
        });
        let mut child = command.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while UnixStream::connect(&socket).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                child.stderr.take().unwrap().read_to_string(&mut err).ok();
                panic!("gantry serve exited with {status}: {err}");
            }
            assert!(Instant::now() < deadline, "gantry serve did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Drain stderr in the background so the engine never blocks on it.
        let mut stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = stderr.read_to_end(&mut sink);
        });
        (child, listen_spec)
    }

    pub(crate) fn socket(&self) -> PathBuf {
        self.dir.path().join("engine.sock")
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn token(&self) -> &str {
        &self.listen.as_ref().expect("started with --listen").1
    }

    /// Stops the engine (SIGTERM) and starts a new one on the same state.
    pub(crate) fn restart(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let (child, listen) = Self::launch(self.dir.path(), self.listen.is_some());
        self.child = child;
        self.listen = listen;
    }

    pub(crate) fn query(&self, query: &str) -> Value {
        let body = serde_json::json!({ "query": query }).to_string();
        let mut stream = UnixStream::connect(self.socket()).unwrap();
        let (status, text) = http_exchange(&mut stream, &body, None);
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    pub(crate) fn query_command(&self, query: &str) -> Output {
        let mut child = gantry(self.dir.path())
            .arg("query")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(query.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Sends a query, waits `after`, and returns the open stream; dropping
    /// it hangs up mid-request.
    pub(crate) fn send_and_hang_up(&self, query: &str, after: Duration) -> UnixStream {
        let body = serde_json::json!({ "query": query }).to_string();
        let mut stream = UnixStream::connect(self.socket()).unwrap();
        write!(
            stream,
            "POST /query HTTP/1.1\r\nHost: gantry\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        std::thread::sleep(after);
        stream
    }

    pub(crate) fn tcp_post(&self, query: &str, token: Option<&str>) -> (u16, String) {
        self.tcp_raw(&serde_json::json!({ "query": query }).to_string(), token)
    }

    pub(crate) fn tcp_raw(&self, body: &str, token: Option<&str>) -> (u16, String) {
        let (port, _) = self.listen.as_ref().expect("started with --listen");
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", *port)).unwrap();
        http_exchange(&mut stream, body, token)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn base64(text: &str) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn http_exchange(
    stream: &mut (impl std::io::Read + std::io::Write),
    body: &str,
    token: Option<&str>,
) -> (u16, String) {
    let auth = token
        .map(|token| format!("Authorization: Basic {}\r\n", base64(&format!("{token}:"))))
        .unwrap_or_default();
    write!(
        stream,
        "POST /query HTTP/1.1\r\nHost: gantry\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, rest.to_owned())
}
