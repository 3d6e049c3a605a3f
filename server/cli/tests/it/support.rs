//! Helpers for the end-to-end tests: a `gantry serve` per test, queries
//! over its socket, and container counts read from the runtime under test:
//! Docker's events, or the native runtime's own counter (`created`, a line per
//! container in the engine's run directory) and its running steps.
//!
//! The runtime is the engine's own choice: `GANTRY_RUNTIME` (which the engines
//! inherit), else `auto`, which is the native runtime wherever it can run.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Whether the engines under test run on the native runtime.
pub(crate) fn native() -> bool {
    match std::env::var("GANTRY_RUNTIME").unwrap_or_default().as_str() {
        "native" => true,
        "docker" => false,
        _ => gantry_native::unavailable_reason().is_none(),
    }
}

/// Whether the runtime under test can run here (skip, or fail under
/// `GANTRY_TEST_REQUIRE_DOCKER=1`, when not).
pub(crate) fn runtime_available() -> bool {
    if native() {
        return native_available();
    }
    docker_available()
}

/// Whether the native runtime can run here, for tests that pin it (skip, or
/// fail under `GANTRY_TEST_REQUIRE_DOCKER=1`, when not).
pub(crate) fn native_available() -> bool {
    match gantry_native::unavailable_reason() {
        None => true,
        Some(reason) => {
            if std::env::var("GANTRY_TEST_REQUIRE_DOCKER").as_deref() == Ok("1") {
                panic!("the native runtime cannot run here ({reason}) but GANTRY_TEST_REQUIRE_DOCKER=1");
            }
            eprintln!("skipping: the native runtime cannot run here: {reason}");
            false
        }
    }
}

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

/// The native run directories of the engine process `pid`.
fn native_run_dirs(pid: u32) -> Vec<PathBuf> {
    let engines = Path::new(gantry_native::DEFAULT_RUN_ROOT).join("engines");
    let prefix = format!("{pid}-");
    std::fs::read_dir(engines)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .map(|entry| entry.path())
        .collect()
}

/// Containers the engine with `pid` created since `since`, counted from
/// Docker's events (tests run in parallel, each with its own engine; the
/// pid is matched here because dockerd 20.10 ignores label filters on
/// events), or from the native runtime's `created` counter.
pub(crate) fn containers_created_since(since: &str, pid: u32) -> usize {
    containers_created_on(None, since, pid)
}

/// `containers_created_since` on the dockerd at `docker_host` (`None`: the
/// host's daemon, or the native runtime when that is under test).
pub(crate) fn containers_created_on(docker_host: Option<&str>, since: &str, pid: u32) -> usize {
    if native() && docker_host.is_none() {
        let since: f64 = since.parse().unwrap();
        let since_nanos = (since * 1e9) as u128;
        return native_run_dirs(pid)
            .iter()
            .filter_map(|dir| std::fs::read_to_string(dir.join("created")).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|line| line.split_whitespace().next()?.parse::<u128>().ok())
                    .collect::<Vec<_>>()
            })
            .filter(|nanos| *nanos >= since_nanos)
            .count();
    }
    let mut command = Command::new("docker");
    if let Some(host) = docker_host {
        command.args(["--host", host]);
    }
    let out = command
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

/// The image tag of the cached exec result in `dir`'s state whose stdout
/// contains `needle`, as the state directory reports it.
pub(crate) fn exec_image_tag_with_output(dir: &Path, needle: &str) -> String {
    use gantry_core::store::{RecordKind, Store as _};
    let store = gantry_store::DiskStore::open(dir.join("state")).unwrap();
    for record in store.state_dir().records(RecordKind::Exec).unwrap() {
        let bytes = store.get(RecordKind::Exec, &record.key).unwrap().unwrap();
        if String::from_utf8_lossy(&bytes).contains(needle) {
            let names = store.state_dir().image_names();
            return record
                .image(&names)
                .expect("exec results refer to an image");
        }
    }
    panic!("no exec result mentions {needle}");
}

/// Whether the step image `reference` exists in the runtime's image store (the
/// native one is the snapshot bucket of the state directory under `dir`).
pub(crate) fn image_exists(dir: &Path, reference: &str) -> bool {
    if native() {
        return gantry_native::image_exists_in(&snapshots(&dir.join("state")), reference);
    }
    docker_image_exists(reference)
}

/// The names (`repo:tag`) in the runtime's image store that contain `needle`
/// (the native one is the snapshot bucket of the state directory under `dir`).
pub(crate) fn image_names(dir: &Path, needle: &str) -> Vec<String> {
    let mut names = if native() {
        gantry_native::names_in(&snapshots(&dir.join("state")))
    } else {
        let out = Command::new("docker")
            .args(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
            .output()
            .unwrap();
        assert!(out.status.success(), "docker image ls: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    };
    names.retain(|name| name.contains(needle));
    names
}

/// Whether Docker has the image `reference` (an ID or a name).
pub(crate) fn docker_image_exists(reference: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", reference])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Containers that exist now and belong to the engine with `pid` (for the
/// native runtime: its steps' run directories).
pub(crate) fn gantry_containers_of(pid: u32) -> usize {
    if native() {
        return native_run_dirs(pid)
            .iter()
            .map(|dir| {
                std::fs::read_dir(dir.join("steps"))
                    .map(|d| d.count())
                    .unwrap_or(0)
            })
            .sum();
    }
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

/// How to start a test engine beyond the defaults.
#[derive(Default, Clone)]
pub(crate) struct ServerOptions {
    /// Extra environment variables of the engine process.
    pub(crate) env: Vec<(String, String)>,
    /// `GANTRY_LOG` for the engine (its stderr goes to `Server::log`).
    pub(crate) log: Option<String>,
}

pub(crate) struct Server {
    dir: tempfile::TempDir,
    child: Child,
    listen: Option<(u16, String)>,
    options: ServerOptions,
}

impl Server {
    pub(crate) fn start() -> Self {
        Self::spawn(false, ServerOptions::default())
    }

    pub(crate) fn start_with_listen() -> Self {
        Self::spawn(true, ServerOptions::default())
    }

    pub(crate) fn start_with(options: ServerOptions) -> Self {
        Self::spawn(false, options)
    }

    fn spawn(listen: bool, options: ServerOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (child, listen) = Self::launch(dir.path(), listen, &options);
        Self {
            dir,
            child,
            listen,
            options,
        }
    }

    fn launch(dir: &Path, listen: bool, options: &ServerOptions) -> (Child, Option<(u16, String)>) {
        let socket = dir.join("engine.sock");
        let mut command = gantry(dir);
        command
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command.envs(options.env.iter().map(|(k, v)| (k, v)));
        if let Some(log) = &options.log {
            command.env("GANTRY_LOG", log);
        }
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
        // The TCP listener may come up just after the socket.
        if let Some((port, _)) = &listen_spec {
            while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "gantry serve did not listen on {port}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // Drain stderr in the background so the engine never blocks on it,
        // into a log file that survives restarts (appended to).
        let mut stderr = child.stderr.take().unwrap();
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("engine.log"))
            .unwrap();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut stderr, &mut log);
        });
        (child, listen_spec)
    }

    pub(crate) fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Everything the engine wrote to stderr so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("engine.log")).unwrap_or_default()
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

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Waits up to `within` for the engine to exit by itself; its exit status,
    /// or `None` when it still runs.
    pub(crate) fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the engine (SIGTERM) and waits for it to exit.
    pub(crate) fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    /// Stops the engine (SIGTERM) and starts a new one on the same state.
    pub(crate) fn restart(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let (child, listen) = Self::launch(self.dir.path(), self.listen.is_some(), &self.options);
        self.child = child;
        self.listen = listen;
    }

    pub(crate) fn query(&self, query: &str) -> Value {
        self.request(query, &Value::Null, None)
    }

    /// A query with variables.
    pub(crate) fn query_vars(&self, query: &str, variables: &Value) -> Value {
        self.request(query, variables, None)
    }

    /// A query sent as a client whose working directory is `workdir`
    /// (`X-Gantry-Workdir`, as the SDKs and `gantry query` send it).
    pub(crate) fn query_in(&self, workdir: &Path, query: &str, variables: &Value) -> Value {
        self.request(query, variables, Some(workdir))
    }

    fn request(&self, query: &str, variables: &Value, workdir: Option<&Path>) -> Value {
        let headers: Vec<(&str, String)> = workdir
            .map(|dir| ("X-Gantry-Workdir", dir.display().to_string()))
            .into_iter()
            .collect();
        self.query_with_headers(query, variables, &headers)
    }

    /// A query sent with extra request headers (`traceparent`, say), on a
    /// connection of its own.
    pub(crate) fn query_with_headers(
        &self,
        query: &str,
        variables: &Value,
        headers: &[(&str, String)],
    ) -> Value {
        let body = serde_json::json!({ "query": query, "variables": variables }).to_string();
        let (status, text) = post_query(Endpoint::Unix(self.socket()), &body, headers);
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    pub(crate) fn query_command(&self, query: &str) -> Output {
        run_query(gantry(self.dir.path()), &[], query)
    }

    /// Sends a query, waits `after`, and returns the open stream; dropping
    /// it hangs up mid-request. Written by hand: the test needs the bare
    /// connection, with no client that would read the answer.
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
        use base64::Engine as _;
        let (port, _) = self.listen.as_ref().expect("started with --listen");
        let headers: Vec<(&str, String)> = token
            .map(|token| {
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{token}:"));
                ("Authorization", format!("Basic {encoded}"))
            })
            .into_iter()
            .collect();
        post_query(Endpoint::Tcp(*port), body, &headers)
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

/// A registry of the test's own on a free loopback port (Debian's
/// `docker-registry`, which scripts/setup.sh installs), for tests that stop
/// it or configure it; killed when dropped.
pub(crate) struct PrivateRegistry {
    child: Child,
    host: String,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl PrivateRegistry {
    /// Started and answering; `deletes`: manifest deletes enabled.
    pub(crate) fn start(deletes: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("config.yml");
        let delete = if deletes {
            "  delete:\n    enabled: true\n"
        } else {
            ""
        };
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n{delete}http:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let host = format!("127.0.0.1:{port}");
        Self {
            child: Self::serve(&config, &host),
            host,
            config,
            _dir: dir,
        }
    }

    /// `docker-registry serve CONFIG`, once it answers on `host`.
    fn serve(config: &Path, host: &str) -> Child {
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (scripts/setup.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(host).is_err() {
            assert!(Instant::now() < deadline, "the registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    /// Starts it again after `stop`, on the same port and storage.
    pub(crate) fn restart(&mut self) {
        self.stop();
        self.child = Self::serve(&self.config, &self.host);
    }

    /// `127.0.0.1:PORT`.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// Stops it (nothing listens on its port afterwards).
    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `gantry session ARGS` in `dir` as Dagger's SDKs start it (stdin and
/// stdout piped), and the JSON line it prints (`port`, `session_token`).
pub(crate) fn start_session(dir: &Path, args: &[&str]) -> (Child, Value) {
    use std::io::BufRead as _;
    let mut child = gantry(dir)
        .arg("session")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let params = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    (child, params)
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `POST /query` of `query` on `socket`, from any thread; the answer's body
/// whatever its status.
pub(crate) fn raw_query(socket: &Path, query: &str) -> String {
    let body = serde_json::json!({ "query": query }).to_string();
    post_query(Endpoint::Unix(socket.to_path_buf()), &body, &[]).1
}

enum Endpoint {
    Unix(PathBuf),
    Tcp(u16),
}

/// `POST /query` with `body` and `headers` through hyper's HTTP/1.1 client,
/// as `gantry query` sends it; the tests are synchronous, so the exchange
/// has a runtime of its own.
fn post_query(to: Endpoint, body: &str, headers: &[(&str, String)]) -> (u16, String) {
    let mut request = hyper::Request::post("/query")
        .header("Host", "gantry")
        .header("Content-Type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_owned(),
        )))
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        match to {
            Endpoint::Unix(path) => {
                send(tokio::net::UnixStream::connect(path).await, request).await
            }
            Endpoint::Tcp(port) => {
                send(
                    tokio::net::TcpStream::connect(("127.0.0.1", port)).await,
                    request,
                )
                .await
            }
        }
    })
}

async fn send(
    stream: std::io::Result<
        impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    >,
    request: hyper::Request<http_body_util::Full<bytes::Bytes>>,
) -> (u16, String) {
    use http_body_util::BodyExt as _;
    let io = hyper_util::rt::TokioIo::new(stream.unwrap());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A test registry setting: `GANTRY_TEST_*` as the Makefile exports them,
/// else the defaults of scripts/test-registry.env.
pub(crate) fn test_env(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

pub(crate) fn registry() -> String {
    test_env("GANTRY_TEST_REGISTRY", "127.0.0.1:5000")
}

pub(crate) fn auth_registry() -> (String, String, String) {
    (
        test_env("GANTRY_TEST_AUTH_REGISTRY", "127.0.0.1:5001"),
        test_env("GANTRY_TEST_AUTH_REGISTRY_USER", "gantry"),
        test_env("GANTRY_TEST_AUTH_REGISTRY_PASSWORD", "gantry-test-password"),
    )
}

pub(crate) fn fixture(name: &str) -> String {
    let fixtures = test_env("GANTRY_TEST_FIXTURES", "127.0.0.1:5000/gantry-fixtures");
    format!("{fixtures}/{name}")
}

/// Runs `docker ARGS…` and returns its output (whatever the exit status).
pub(crate) fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().unwrap()
}

/// Whether `haystack` contains `needle`.
pub(crate) fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Whether an image tarball holds `needle`: in its raw bytes (manifests,
/// configs, uncompressed layers) or inside a gzip-compressed layer.
pub(crate) fn tarball_contains(tarball: &[u8], needle: &[u8]) -> bool {
    if contains_bytes(tarball, needle) {
        return true;
    }
    let mut archive = tar::Archive::new(tarball);
    let Ok(entries) = archive.entries() else {
        return false;
    };
    entries.filter_map(Result::ok).any(|mut entry| {
        let mut data = Vec::new();
        if entry.read_to_end(&mut data).is_err() || !data.starts_with(&[0x1f, 0x8b]) {
            return false;
        }
        let mut layer = Vec::new();
        flate2::read::GzDecoder::new(&data[..])
            .read_to_end(&mut layer)
            .is_ok()
            && contains_bytes(&layer, needle)
    })
}

/// Whether a step image (an image ID from a result record) contains `needle`:
/// `docker save` of it, or for the native runtime the files of its layers in
/// the snapshot store under `state`.
pub(crate) fn step_image_contains(state: &Path, image: &str, needle: &[u8]) -> bool {
    if !native() {
        return docker_save_contains(image, needle);
    }
    let layers = gantry_native::image_layer_dirs_in(&snapshots(state), image)
        .unwrap_or_else(|| panic!("no image {image} in the snapshot store"));
    layers
        .iter()
        .any(|layer| !files_containing(layer, needle).is_empty())
}

/// The native runtime's snapshot store in the state directory `state`.
fn snapshots(state: &Path) -> PathBuf {
    gantry_store::StateDir::open(state)
        .unwrap()
        .bucket(gantry_store::Bucket::Snapshots)
}

/// Removes the local Docker tag a publish left (the Docker runtime pushes from its
/// daemon, which keeps the tag; the native runtime pushes from its own store).
pub(crate) fn forget_published(reference: &str) {
    if native() {
        return;
    }
    let untagged = docker(&["rmi", reference]);
    assert!(
        untagged.status.success(),
        "{}",
        String::from_utf8_lossy(&untagged.stderr)
    );
}

/// Makes a published image available to the local Docker daemon: with the Docker
/// runtime it is there already; with the native runtime it is pulled (with the
/// test credentials for the registry that needs them, through a throw-away
/// client configuration).
pub(crate) fn ensure_in_docker(reference: &str) {
    if !native() || docker(&["image", "inspect", reference]).status.success() {
        return;
    }
    let config = tempfile::tempdir().unwrap();
    let config_dir = config.path().to_str().unwrap();
    let (auth_registry, user, password) = auth_registry();
    if reference.starts_with(&format!("{auth_registry}/")) {
        let mut login = Command::new("docker")
            .args([
                "--config",
                config_dir,
                "login",
                "-u",
                &user,
                "--password-stdin",
                &auth_registry,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        login
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        assert!(
            login.wait().unwrap().success(),
            "docker login {auth_registry}"
        );
    }
    let pulled = docker(&["--config", config_dir, "pull", "-q", reference]);
    assert!(
        pulled.status.success(),
        "docker pull {reference}: {}",
        String::from_utf8_lossy(&pulled.stderr)
    );
}

/// Whether `docker save IMAGE` contains `needle`, streamed so that large
/// images need not fit in memory.
pub(crate) fn docker_save_contains(image: &str, needle: &[u8]) -> bool {
    ensure_in_docker(image);
    let mut child = Command::new("docker")
        .args(["save", image])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut found = false;
    let mut carry: Vec<u8> = Vec::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0usize;
    loop {
        let n = stdout.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        total += n;
        carry.extend_from_slice(&buffer[..n]);
        if contains_bytes(&carry, needle) {
            found = true;
        }
        let keep = needle.len().saturating_sub(1).min(carry.len());
        carry.drain(..carry.len() - keep);
    }
    let status = child.wait().unwrap();
    assert!(status.success() && total > 0, "docker save {image} failed");
    found
}

/// Files under `dir` (recursively, symlinks not followed) whose bytes
/// contain `needle`.
pub(crate) fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                if let Ok(bytes) = std::fs::read(&path) {
                    if contains_bytes(&bytes, needle) {
                        hits.push(path);
                    }
                }
            } else if meta.file_type().is_symlink() {
                if let Ok(target) = std::fs::read_link(&path) {
                    if contains_bytes(target.as_os_str().as_encoded_bytes(), needle) {
                        hits.push(path);
                    }
                }
            }
        }
    }
    hits
}

/// Runs `gantry query ARGS` with `query` on stdin (the `command` carries
/// the engine's environment and working directory).
pub(crate) fn run_query(mut command: Command, args: &[&str], query: &str) -> Output {
    let mut child = command
        .arg("query")
        .args(args)
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

// Answers and workspaces, for the API tests.

/// The `data` of an answer that must have no errors.
pub(crate) fn data(out: Value) -> Value {
    assert!(out["errors"].is_null(), "unexpected errors: {out}");
    out["data"].clone()
}

/// The first error's message of an answer that must have failed.
pub(crate) fn error_message(out: &Value) -> String {
    out["errors"][0]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error: {out}"))
        .to_owned()
}

/// `value.a.b.c` for the path `"a.b.c"`.
pub(crate) fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(value, |value, key| &value[key])
}

pub(crate) fn text(value: &Value, path: &str) -> String {
    at(value, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not a string in {value}"))
        .to_owned()
}

/// A temp directory holding `files` (relative path, contents).
pub(crate) fn workspace(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, contents) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    dir
}

pub(crate) fn still_serving(server: &Server) {
    assert!(server.query("{ version }")["data"]["version"].is_string());
}

/// Runs `query` with `vars` and returns `data`, asserting no errors.
pub(crate) fn run(server: &Server, query: &str, vars: Value) -> Value {
    data(server.query_vars(query, &vars))
}

/// The ID of the object at `path` in the answer to `query`.
pub(crate) fn id_of(server: &Server, query: &str, vars: Value, path: &str) -> String {
    text(&run(server, query, vars), &format!("{path}.id"))
}

pub(crate) fn stdout_of(server: &Server, query: &str, vars: Value, path: &str) -> String {
    text(&run(server, query, vars), &format!("{path}.stdout"))
}

pub(crate) const EXEC_WITH_DIRECTORY: &str = r#"
query($image: String!, $dir: ID!, $args: [String!]!) {
  container { from(address: $image) { withDirectory(path: "/w", source: $dir) {
    withExec(args: $args) { stdout } } } }
}"#;

pub(crate) fn exec_query(image: &str, args: &[&str]) -> String {
    format!(
        r#"{{ container {{ from(address: "{image}") {{ withExec(args: {}) {{ stdout }} }} }} }}"#,
        json!(args)
    )
}

/// `text` without terminal colours (engine logs).
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
