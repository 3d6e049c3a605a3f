//! End-to-end tests of the `gantry` binary against a real Docker daemon and
//! the local fixture registry (`make setup` provides both).
//!
//! Each test starts its own `gantry serve` with a private socket and state
//! directory. Without Docker the tests print why and pass, unless
//! `GANTRY_TEST_REQUIRE_DOCKER=1` (as `make test` sets), which fails them.

#![allow(clippy::print_stderr, reason = "tests explain why they skip")]

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{busybox, docker_available, Server};

macro_rules! require_docker {
    () => {
        if !docker_available() {
            return;
        }
    };
}

// After the macro, which the test modules use.
mod progress;

mod state_dir;
mod tier1;

fn exec_query(image: &str, args: &[&str]) -> String {
    format!(
        r#"{{ container {{ from(address: "{image}") {{ withExec(args: {}) {{ stdout }} }} }} }}"#,
        json!(args)
    )
}

#[test]
fn laziness_a_thousand_calls_create_no_container() {
    require_docker!();
    let server = Server::start();
    let since = support::now();
    // 1,000 chained calls in 50 documents of 20, each continuing from the
    // previous one's ID, as SDKs do: only `id` is asked, so nothing runs.
    let first = server.query(&format!(
        r#"{{ container {{ from(address: "{}") {{ id }} }} }}"#,
        busybox()
    ));
    let mut id = first["data"]["container"]["from"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for batch in 0..50 {
        let mut chain = format!(r#"loadContainerFromID(id: "{id}")"#);
        let mut path = vec!["loadContainerFromID".to_owned()];
        for n in 0..20 {
            chain.push_str(&format!(
                r#" {{ withExec(args: ["sh", "-c", "echo {batch}-{n}"])"#
            ));
            path.push("withExec".to_owned());
        }
        let query = format!("{{ {chain} {{ id }} {} }}", "}".repeat(20));
        let out = server.query(&query);
        assert!(out["errors"].is_null(), "{out}");
        let mut node = &out["data"];
        for key in &path {
            node = &node[key];
        }
        id = node["id"].as_str().unwrap().to_owned();
    }
    assert_eq!(support::containers_created_since(&since, server.pid()), 0);
}

#[test]
fn deep_documents_get_a_clear_error_and_the_engine_keeps_serving() {
    require_docker!();
    let server = Server::start();
    let mut chain = format!(r#"container {{ from(address: "{}")"#, busybox());
    for n in 0..100 {
        chain.push_str(&format!(r#" {{ withExec(args: ["echo", "{n}"])"#));
    }
    let out = server.query(&format!("{{ {chain} {{ id }} {} }}", "}".repeat(101)));
    assert!(
        out["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("recursion"),
        "{out}"
    );
    assert!(server.query("{ version }")["data"]["version"].is_string());
}

#[test]
fn cached_rerun_after_restart_creates_no_container() {
    require_docker!();
    let mut server = Server::start();
    let marker = support::unique("restart");
    let query = exec_query(
        &busybox(),
        &["sh", "-c", &format!("echo {marker}; echo two")],
    );
    let first = server.query(&query);
    assert_eq!(
        first["data"]["container"]["from"]["withExec"]["stdout"],
        format!("{marker}\ntwo\n")
    );
    server.restart();
    let since = support::now();
    let second = server.query(&query);
    assert_eq!(second, first);
    assert_eq!(
        support::containers_created_since(&since, server.pid()),
        0,
        "a cached re-run must not touch containers"
    );
}

#[test]
fn concurrent_identical_queries_run_once() {
    require_docker!();
    let server = Server::start();
    let marker = support::unique("flight");
    let query = exec_query(
        &busybox(),
        &["sh", "-c", &format!("sleep 1; echo {marker}")],
    );
    let since = support::now();
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| server.query(&query)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &results {
        assert_eq!(
            out["data"]["container"]["from"]["withExec"]["stdout"],
            format!("{marker}\n")
        );
    }
    assert_eq!(support::containers_created_since(&since, server.pid()), 1);
}

#[test]
fn parallel_branches_overlap() {
    require_docker!();
    let server = Server::start();
    let marker = support::unique("par");
    let branches: String = (0..8)
        .map(|n| {
            format!(
                r#"b{n}: withExec(args: ["sh", "-c", "sleep 1; echo {marker}-{n}"]) {{ stdout }} "#
            )
        })
        .collect();
    let query = format!(
        r#"{{ container {{ from(address: "{}") {{ {branches} }} }} }}"#,
        busybox()
    );
    // Warm the image pull so only the execs are measured.
    server.query(&exec_query(&busybox(), &["true"]));
    let started = Instant::now();
    let out = server.query(&query);
    let elapsed = started.elapsed();
    assert!(out["errors"].is_null(), "{out}");
    assert_eq!(
        out["data"]["container"]["from"]["b7"]["stdout"],
        format!("{marker}-7\n")
    );
    assert!(
        elapsed < Duration::from_secs(6),
        "8 parallel 1 s branches took {elapsed:?}"
    );
}

#[test]
fn failed_exec_has_the_error_shape_and_leaves_no_container() {
    require_docker!();
    let server = Server::start();
    let out = server.query(&exec_query(
        &busybox(),
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    ));
    let error = &out["errors"][0];
    assert!(
        error["message"].as_str().unwrap().ends_with("exit code: 3"),
        "{out}"
    );
    let ext = &error["extensions"];
    assert_eq!(ext["_type"], "EXEC_ERROR");
    assert_eq!(ext["exitCode"], 3);
    assert_eq!(ext["stdout"], "out\n");
    assert_eq!(ext["stderr"], "err\n");
    assert_eq!(
        ext["cmd"],
        json!(["sh", "-c", "echo out; echo err >&2; exit 3"])
    );
    assert_eq!(support::gantry_containers_of(server.pid()), 0);
    // Unknown image and missing command: named errors, engine still serving.
    let missing = server.query(&exec_query(
        "127.0.0.1:5000/gantry-fixtures/no-such-image:1",
        &["true"],
    ));
    assert!(
        missing["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-image"),
        "{missing}"
    );
    let no_cmd = server.query(&exec_query(&busybox(), &["no-such-command"]));
    assert_eq!(
        no_cmd["errors"][0]["extensions"]["exitCode"], 127,
        "{no_cmd}"
    );
    let ok = server.query("{ version }");
    assert!(ok["data"]["version"].is_string());
}

#[test]
fn a_client_that_goes_away_mid_exec_leaves_no_container() {
    require_docker!();
    let server = Server::start();
    let marker = support::unique("gone");
    let query = exec_query(
        &busybox(),
        &["sh", "-c", &format!("sleep 60; echo {marker}")],
    );
    let client = server.send_and_hang_up(&query, Duration::from_secs(3));
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(15);
    while support::gantry_containers_of(server.pid()) > 0 {
        assert!(
            Instant::now() < deadline,
            "the container outlived its client"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn files_and_directories_move_between_host_and_containers() {
    require_docker!();
    let server = Server::start();
    let query = format!(
        r#"{{ container {{ from(address: "{}") {{
            withNewFile(path: "/work/in.txt", contents: "hello file") {{
              withWorkdir(path: "/work") {{
                withExec(args: ["sh", "-c", "mkdir out && cp in.txt out/copy.txt && echo made > out/new.txt"]) {{
                  directory(path: "out") {{ entries file(path: "copy.txt") {{ contents }} }}
                  file(path: "/work/out/new.txt") {{ contents size }}
                }} }} }} }} }} }}"#,
        busybox()
    );
    let out = server.query(&query);
    assert!(out["errors"].is_null(), "{out}");
    let exec = &out["data"]["container"]["from"]["withNewFile"]["withWorkdir"]["withExec"];
    assert_eq!(exec["directory"]["entries"], json!(["copy.txt", "new.txt"]));
    assert_eq!(exec["directory"]["file"]["contents"], "hello file");
    assert_eq!(exec["file"]["contents"], "made\n");
    let bad = server.query(&format!(
        r#"{{ container {{ from(address: "{}") {{ file(path: "/nope") {{ contents }} }} }} }}"#,
        busybox()
    ));
    assert!(
        bad["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("/nope"),
        "{bad}"
    );
}

#[test]
fn loopback_listener_requires_the_token() {
    require_docker!();
    let server = Server::start_with_listen();
    let (status, _) = server.tcp_post("{ version }", None);
    assert_eq!(status, 401);
    let (status, _) = server.tcp_post("{ version }", Some("wrong"));
    assert_eq!(status, 401);
    let token = server.token().to_owned();
    let (status, body) = server.tcp_post("{ version }", Some(&token));
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.tcp_raw("not json", Some(&token));
    assert_eq!(status, 400);
}

#[test]
fn socket_is_private_to_its_owner() {
    require_docker!();
    use std::os::unix::fs::PermissionsExt as _;
    let server = Server::start();
    let mode = std::fs::metadata(server.socket())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn run_exports_session_variables_and_exit_status() {
    require_docker!();
    let dir = tempfile::tempdir().unwrap();
    let out = support::gantry(dir.path())
        .args(["run", "--", "sh", "-c", "test -n \"$DAGGER_SESSION_PORT\" && test \"$GANTRY_SESSION_TOKEN\" = \"$DAGGER_SESSION_TOKEN\" && test -S \"$GANTRY_SOCKET\" && exit 7"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `gantry session` as Dagger's SDKs drive it: one JSON line on stdout, then
/// serve until stdin closes (Python, Go) or SIGTERM arrives while stdin is
/// still open (TypeScript's `Close`).
#[test]
fn session_prints_its_line_and_ends_on_stdin_close_or_sigterm() {
    use std::io::BufRead as _;
    use std::process::Stdio;
    require_docker!();
    let dir = tempfile::tempdir().unwrap();
    for ending in ["stdin", "sigterm"] {
        let mut child = support::gantry(dir.path())
            .args(["session", "--label", "dagger.io/sdk.name:nodejs"])
            .args(["--workdir", ".", "--project", "x"])
            .arg("--load-workspace-modules")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let params: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(params["port"].as_u64().is_some(), "{line}");
        assert!(params["session_token"].as_str().is_some(), "{line}");
        let stdin = child.stdin.take().unwrap();
        if ending == "stdin" {
            drop(stdin);
        } else {
            let status = std::process::Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("gantry session did not exit after {ending}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "{ending}: {status}");
    }
}

#[test]
fn query_command_reports_errors_with_a_non_zero_exit() {
    require_docker!();
    let server = Server::start();
    let out = server.query_command(&exec_query(
        &busybox(),
        &["sh", "-c", "echo bad >&2; exit 4"],
    ));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("exit code: 4") && stderr.contains("bad"),
        "{stderr}"
    );
    let good = server.query_command(&exec_query(&busybox(), &["echo", "fine"]));
    assert!(good.status.success());
    assert!(String::from_utf8_lossy(&good.stdout).contains("fine"));
}
