//! The engine as a visible service: `gantry engine status|stop|logs`, the idle
//! timeout, and a log without terminal escapes.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::support::{self, busybox, exec_query, gantry, Server, ServerOptions};

/// Generous bounds: the machine is shared, and nothing here measures speed.
const EXIT_BOUND: Duration = Duration::from_secs(60);

fn engine_command(server_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    gantry(server_dir)
        .arg("engine")
        .args(args)
        .output()
        .unwrap()
}

/// The engine's log once it holds `needle` (the harness copies the engine's
/// stderr into it from a thread of its own, which may lag behind).
fn log_with(server: &Server, needle: &str) -> String {
    let deadline = std::time::Instant::now() + EXIT_BOUND;
    loop {
        let log = server.log();
        if log.contains(needle) {
            return log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the log never said {needle:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the engine counts a request in flight besides the status
/// request asking.
fn wait_until_in_flight(server: &Server) {
    let deadline = std::time::Instant::now() + EXIT_BOUND;
    while status_json(server.dir())["in_flight"].as_u64().unwrap() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the query never arrived"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status_json(dir: &std::path::Path) -> Value {
    let out = engine_command(dir, &["status", "--json"]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn status_and_stop_without_an_engine_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = engine_command(dir.path(), &["status"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no engine answers on"), "{stderr}");
    assert!(stderr.contains("gantry serve"), "{stderr}");
    let out = engine_command(dir.path(), &["status", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["running"], false);
    let out = engine_command(dir.path(), &["stop"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to stop"),
        "{out:?}"
    );
    let out = engine_command(dir.path(), &["logs"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no log at"),
        "{out:?}"
    );
    // An error (a socket path under a file) is not "not running".
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = gantry(dir.path())
        .args(["engine", "status", "--socket"])
        .arg(file.join("engine.sock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn status_reports_the_running_engine() {
    require_runtime!();
    let server = Server::start();
    // Something in the cache, so its size is not zero.
    let out = server.query(&exec_query(&busybox(), &["echo", "sized"]));
    assert!(out["errors"].is_null(), "{out}");
    let status = status_json(server.dir());
    assert_eq!(status["running"], true);
    assert_eq!(status["pid"], server.pid());
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["socket"], server.socket().display().to_string());
    assert_eq!(
        status["state_dir"],
        server.state_dir().display().to_string()
    );
    let runtime = if support::native() {
        "native"
    } else {
        "docker"
    };
    assert_eq!(status["runtime"], runtime);
    assert!(status["uptime_seconds"].is_u64(), "{status}");
    assert!(status["started_at"].as_u64().unwrap() > 1_700_000_000);
    assert!(status["cache"]["bytes"].as_u64().unwrap() > 0, "{status}");
    assert!(status["cache"]["entries"].as_u64().unwrap() > 0, "{status}");
    assert!(status["idle_timeout_seconds"].is_null(), "{status}");
    // Its own connection and request.
    assert!(status["connections"].as_u64().unwrap() >= 1, "{status}");
    let out = engine_command(server.dir(), &["status"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("running (pid {}", server.pid())),
        "{text}"
    );
    assert!(text.contains(&format!("runtime:      {runtime}")), "{text}");
    assert!(text.contains("idle timeout: never"), "{text}");
}

#[test]
fn stop_drains_the_request_in_flight_then_releases_everything() {
    require_runtime!();
    let mut server = Server::start();
    let socket = server.socket();
    let marker = support::unique("drained");
    // A request that is still running when the stop arrives.
    let query = exec_query(
        &busybox(),
        &["sh", "-c", &format!("sleep 3; echo {marker}")],
    );
    let in_flight = {
        let socket = socket.clone();
        std::thread::spawn(move || support::raw_query(&socket, &query))
    };
    wait_until_in_flight(&server);
    let out = engine_command(server.dir(), &["stop"]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("stopped the engine (pid {})", server.pid())),
        "{stderr}"
    );
    // The request in flight got its answer.
    let answer = in_flight.join().unwrap();
    assert!(answer.contains(&marker), "{answer}");
    let status = server.wait_exit(EXIT_BOUND).expect("the engine exited");
    assert!(status.success(), "{status}");
    assert!(!socket.exists(), "the socket was removed");
    let log = log_with(&server, "engine stopped");
    assert!(log.contains(r#"reason="stop requested""#), "{log}");
    // The claim is released: a new engine may serve the state directory.
    let mut next = gantry(server.dir())
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + EXIT_BOUND;
    while UnixStream::connect(&socket).is_err() {
        assert!(
            next.try_wait().unwrap().is_none(),
            "the next engine could not claim the state directory"
        );
        assert!(std::time::Instant::now() < deadline, "no next engine");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = engine_command(server.dir(), &["stop"]);
    assert!(out.status.success(), "{out:?}");
    assert!(next.wait().unwrap().success());
    let out = engine_command(server.dir(), &["stop"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to stop"),
        "{out:?}"
    );
}

#[test]
fn logs_prints_the_tail_and_follows() {
    require_runtime!();
    let server = Server::start();
    // The test harness writes the engine's stderr to engine.log beside the
    // socket, as an SDK does.
    let log = server.dir().join("engine.log");
    log_with(&server, "engine serving");
    let out = engine_command(server.dir(), &["logs"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("engine serving"));
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(b"first marker\nlast marker\n")
        .unwrap();
    let out = engine_command(server.dir(), &["logs", "--tail", "1"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "last marker\n");
    let mut follow = gantry(server.dir())
        .args(["engine", "logs", "-f", "--tail", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "last marker");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(b"followed marker\n")
        .unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "followed marker");
    follow.kill().unwrap();
    follow.wait().unwrap();
}

#[test]
fn idle_timeout_stops_an_idle_engine_but_not_a_busy_one() {
    require_runtime!();
    let mut server = Server::start_with(ServerOptions {
        env: vec![("GANTRY_IDLE_TIMEOUT".into(), "3s".into())],
        ..ServerOptions::default()
    });
    // Busy: an open connection (from the start, so that a slow machine cannot
    // make the engine idle before the test begins)...
    let connection = UnixStream::connect(server.socket()).unwrap();
    assert_eq!(status_json(server.dir())["idle_timeout_seconds"], 3.0);
    // ... then only a request in flight, longer than the timeout.
    let marker = support::unique("busy");
    let query = exec_query(
        &busybox(),
        &["sh", "-c", &format!("sleep 8; echo {marker}")],
    );
    let socket = server.socket();
    let in_flight = std::thread::spawn(move || support::raw_query(&socket, &query));
    wait_until_in_flight(&server);
    drop(connection);
    let answer = in_flight.join().unwrap();
    assert!(answer.contains(&marker), "{answer}");
    assert!(
        server.wait_exit(Duration::ZERO).is_none(),
        "the engine stopped while busy:\n{}",
        server.log()
    );
    // Idle now: it stops by itself.
    let status = server
        .wait_exit(EXIT_BOUND)
        .expect("the idle engine exited by itself");
    assert!(status.success(), "{status}");
    assert!(!server.socket().exists());
    let log = log_with(&server, "engine stopped");
    assert!(log.contains(r#"reason="idle""#), "{log}");
}

#[test]
fn the_log_has_no_terminal_escapes_when_not_a_terminal() {
    require_runtime!();
    let server = Server::start_with(ServerOptions {
        log: Some("debug".into()),
        ..ServerOptions::default()
    });
    let out = server.query("{ version }");
    assert!(out["errors"].is_null(), "{out}");
    let log = log_with(&server, "engine serving");
    assert!(!log.contains('\u{1b}'), "{log:?}");
}
