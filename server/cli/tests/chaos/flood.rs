//! A connection flood: 1,100 idle TCP connections with no token against an
//! engine limited to 1,024 file descriptors (`prlimit --nofile=1024`); the
//! Unix socket must still answer, in under a second.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::engine::{self, Engine, Spec};
use crate::Outcome;

const CONNECTIONS: usize = 1100;

pub(crate) fn run() -> Outcome {
    raise_own_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spec = Spec {
        wrapper: vec!["prlimit".into(), "--nofile=1024".into()],
        args: vec!["--listen".into(), format!("127.0.0.1:{port}")],
        ..Spec::under(dir.path())
    };
    let engine = Engine::start(&spec);
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut idle = Vec::new();
    let mut refused = 0;
    for _ in 0..CONNECTIONS {
        match TcpStream::connect_timeout(&address, Duration::from_millis(100)) {
            Ok(stream) => idle.push(stream),
            Err(_) => refused += 1,
        }
    }
    // Let the engine accept what it will.
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let answer = engine::query_socket(
        &spec.socket,
        "{ version }",
        &json!(null),
        Duration::from_secs(10),
    );
    let latency = started.elapsed();
    let answered = answer
        .as_ref()
        .is_ok_and(|a| a["data"]["version"].is_string());
    let latency_text = if answered {
        format!("{} ms", latency.as_millis())
    } else {
        format!(
            "no answer ({})",
            answer.err().unwrap_or_else(|| "wrong answer".into())
        )
    };
    drop(idle);
    let alive = engine::query_socket(
        &spec.socket,
        "{ version }",
        &json!(null),
        Duration::from_secs(30),
    )
    .is_ok();
    let figure = format!(
        "{} idle connections open ({refused} not accepted), socket latency: {latency_text}; serving after: {}",
        CONNECTIONS - refused,
        if alive { "y" } else { "n" }
    );
    drop(engine);
    Outcome::new(
        figure,
        answered && latency < Duration::from_secs(1) && alive,
    )
}

/// The harness itself needs more than 1,100 descriptors: raise its soft
/// limit to the hard one with prlimit (no unsafe code here).
fn raise_own_fd_limit() {
    let pid = std::process::id().to_string();
    let hard = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &pid,
            "--nofile",
            "--raw",
            "--noheadings",
            "--output",
            "HARD",
        ])
        .output()
        .unwrap();
    let hard = String::from_utf8_lossy(&hard.stdout).trim().to_owned();
    let _ = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={hard}:{hard}")])
        .status();
}
