//! Local servers for the Git and HTTP source tests, on loopback only: a
//! small HTTP/1.1 server (one thread per connection, `Connection: close`)
//! with a pluggable handler, `git http-backend` behind it (smart HTTP with
//! basic auth), and `git daemon`.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as the handler sees it.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// Path and query, as sent.
    pub(crate) target: String,
    /// Header names in lower case.
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: Vec<u8>,
}

pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// An HTTP server on 127.0.0.1 that records every request it answered.
pub(crate) struct HttpServer {
    pub(crate) port: u16,
    pub(crate) requests: Arc<Mutex<Vec<(Request, u16)>>>,
}

impl HttpServer {
    pub(crate) fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (handler, log) = (handler.clone(), log.clone());
                std::thread::spawn(move || serve(stream, &*handler, &log));
            }
        });
        Self { port, requests }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The status codes answered so far, in order.
    pub(crate) fn statuses(&self) -> Vec<u16> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(_, status)| *status)
            .collect()
    }

    pub(crate) fn clear(&self) {
        self.requests.lock().unwrap().clear();
    }
}

fn serve(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<(Request, u16)>>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    );
    let mut headers = BTreeMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let body = read_body(&mut reader, &headers);
    let request = Request {
        method,
        target,
        headers,
        body,
    };
    let response = handler(&request);
    log.lock().unwrap().push((request, response.status));
    let mut out = stream;
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        response.status,
        response.body.len()
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(&response.body);
}

fn read_body(reader: &mut impl std::io::BufRead, headers: &BTreeMap<String, String>) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some(length) = headers.get("content-length") {
        let length: usize = length.parse().unwrap();
        body.resize(length, 0);
        reader.read_exact(&mut body).unwrap();
    } else if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    body
}

/// `git http-backend` as a CGI program behind `HttpServer`, serving the
/// repositories under `root`; with `credentials`, only to requests with
/// that basic authentication.
pub(crate) fn git_http_server(root: &Path, credentials: Option<(&str, &str)>) -> HttpServer {
    use base64::Engine as _;
    let root = root.to_path_buf();
    let expected = credentials.map(|(user, password)| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    });
    HttpServer::start(move |request| {
        if let Some(expected) = &expected {
            if request.headers.get("authorization") != Some(expected) {
                return Response::new(401, "authentication required")
                    .header("WWW-Authenticate", "Basic realm=\"git\"");
            }
        }
        http_backend(&root, request)
    })
}

fn http_backend(root: &Path, request: &Request) -> Response {
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((request.target.as_str(), ""));
    let mut child = Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &request.method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env(
            "CONTENT_TYPE",
            request
                .headers
                .get("content-type")
                .cloned()
                .unwrap_or_default(),
        )
        .env("CONTENT_LENGTH", request.body.len().to_string())
        .env(
            "GIT_PROTOCOL",
            request
                .headers
                .get("git-protocol")
                .cloned()
                .unwrap_or_default(),
        )
        .env("REMOTE_USER", "gantry")
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&request.body)
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let split = output
        .stdout
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|at| (at, 4))
        .or_else(|| {
            output
                .stdout
                .windows(2)
                .position(|window| window == b"\n\n")
                .map(|at| (at, 2))
        })
        .expect("CGI output has headers");
    let head = String::from_utf8_lossy(&output.stdout[..split.0]).into_owned();
    let mut response = Response::new(200, output.stdout[split.0 + split.1..].to_vec());
    for line in head.lines() {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("status") {
                response.status = value.trim()[..3].parse().unwrap();
            } else {
                response = response.header(name.trim(), value.trim());
            }
        }
    }
    response
}

/// `git daemon` serving `root` on a free loopback port, its log (`--verbose`)
/// in a file; killed when dropped.
pub(crate) struct GitDaemon {
    child: Child,
    pub(crate) port: u16,
    log: PathBuf,
}

impl GitDaemon {
    pub(crate) fn start(root: &Path, log: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log_file = std::fs::File::create(log).unwrap();
        let child = Command::new("git")
            .args([
                "daemon",
                "--reuseaddr",
                "--verbose",
                "--export-all",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &format!("--base-path={}", root.display()),
            ])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "git daemon did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            log: log.to_path_buf(),
        }
    }

    pub(crate) fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }

    /// How many upload-pack requests (ls-remote or fetch) the daemon served.
    pub(crate) fn upload_packs(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("Request upload-pack"))
            .count()
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs git in `dir` with a fixed identity, panicking on failure; stdout.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=gantry",
            "-c",
            "user.email=gantry@example.com",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A repository at `root/name` (non-bare, served as is): `main` with two
/// commits, a `feature` branch, an annotated tag `v1.0.0` on the first
/// commit and a lightweight `v1.2.0` on the second.
pub(crate) fn sample_repo(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    git(&dir, &["init", "-q"]);
    std::fs::write(dir.join("README.md"), "first\n").unwrap();
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-q", "-m", "first"]);
    git(&dir, &["tag", "-a", "v1.0.0", "-m", "one"]);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/main.txt"), "second\n").unwrap();
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-q", "-m", "second"]);
    git(&dir, &["tag", "v1.2.0"]);
    git(&dir, &["branch", "feature", "HEAD~1"]);
    dir
}

/// `sshd` on 127.0.0.1 that lets one key in, and an `ssh-agent` of its own
/// holding that key: Git over SSH as a hosted remote serves it. Needs root
/// (sshd switches to the user it logs in: the one running the tests) and
/// Debian's openssh-server, which scripts/setup.sh installs.
pub(crate) struct SshServer {
    sshd: Child,
    agent: Child,
    port: u16,
    user: String,
    /// The agent's socket: what `sshAuthSocket` mounts.
    pub(crate) agent_socket: PathBuf,
    /// This server's `known_hosts` line.
    pub(crate) known_hosts: String,
    /// A `known_hosts` line naming this server with a key that is not its own.
    pub(crate) wrong_known_hosts: String,
}

impl SshServer {
    pub(crate) fn start(dir: &Path) -> Self {
        const SSHD: &str = "/usr/sbin/sshd";
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install openssh-server (scripts/setup.sh does)"
        );
        std::fs::create_dir_all(dir).unwrap();
        let keygen = |name: &str| {
            let path = dir.join(name);
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "gantry-test", "-f"])
                .arg(&path)
                .output()
                .unwrap();
            assert!(out.status.success(), "ssh-keygen: {out:?}");
            let public = std::fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap();
            let key: Vec<&str> = public.split_whitespace().take(2).collect();
            (path, key.join(" "))
        };
        let (host_key, host_public) = keygen("host_key");
        let (user_key, user_public) = keygen("user_key");
        let authorized = dir.join("authorized_keys");
        std::fs::write(&authorized, format!("{user_public}\n")).unwrap();
        // sshd's privilege separation directory, which Debian's service
        // would make.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let port = crate::support::free_port();
        let options = [
            "ListenAddress=127.0.0.1".to_owned(),
            format!("AuthorizedKeysFile={}", authorized.display()),
            "StrictModes=no".into(),
            "PidFile=none".into(),
            "UsePAM=no".into(),
            "PasswordAuthentication=no".into(),
            "KbdInteractiveAuthentication=no".into(),
            "PermitRootLogin=prohibit-password".into(),
        ];
        let mut sshd = Command::new(SSHD);
        sshd.args(["-D", "-e", "-f", "/dev/null", "-p", &port.to_string(), "-h"])
            .arg(&host_key);
        for option in &options {
            sshd.args(["-o", option]);
        }
        let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
        let sshd = sshd.stdout(Stdio::null()).stderr(log).spawn().unwrap();
        let agent_socket = dir.join("agent.sock");
        let agent = Command::new("ssh-agent")
            .args(["-D", "-a"])
            .arg(&agent_socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() || !agent_socket.exists() {
            assert!(
                Instant::now() < deadline,
                "sshd or ssh-agent did not start: {}",
                std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let added = Command::new("ssh-add")
            .arg("-q")
            .arg(&user_key)
            .env("SSH_AUTH_SOCK", &agent_socket)
            .output()
            .unwrap();
        assert!(added.status.success(), "ssh-add: {added:?}");
        let user = Command::new("id").arg("-un").output().unwrap().stdout;
        Self {
            sshd,
            agent,
            port,
            user: String::from_utf8_lossy(&user).trim().to_owned(),
            agent_socket,
            known_hosts: format!("[127.0.0.1]:{port} {host_public}\n"),
            wrong_known_hosts: format!("[127.0.0.1]:{port} {user_public}\n"),
        }
    }

    /// The SSH URL of the repository at `path` on this machine.
    pub(crate) fn url(&self, path: &Path) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            path.display()
        )
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        for child in [&mut self.sshd, &mut self.agent] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
