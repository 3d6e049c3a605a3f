//! The engine's contract: laziness, caching across restarts, deduplicated
//! and parallel work, failed execs, and clients that go away.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{self, busybox, exec_query, Server};

#[test]
fn laziness_a_thousand_calls_create_no_container() {
    require_runtime!();
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
    require_runtime!();
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
    require_runtime!();
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
    require_runtime!();
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

/// Eight branches of one query run at the same time: each marks itself in a
/// shared cache volume and waits (at most 60 s) until all eight have, which
/// only branches running together can see. Proven inside the containers, not
/// by elapsed time, which a loaded machine stretches.
#[test]
fn parallel_branches_overlap() {
    require_runtime!();
    let server = Server::start();
    let marker = support::unique("par");
    let cache = support::text(
        &support::run(
            &server,
            r#"query($key: String!) { cacheVolume(key: $key) { id } }"#,
            json!({ "key": marker }),
        ),
        "cacheVolume.id",
    );
    let script = "touch /sync/$0; i=0; while [ $(ls /sync | wc -l) -lt 8 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; echo $(ls /sync | wc -l)";
    let branches: String = (0..8)
        .map(|n| format!(r#"b{n}: withExec(args: ["sh", "-c", "{script}", "{n}"]) {{ stdout }} "#))
        .collect();
    let query = format!(
        r#"query($image: String!, $cache: ID!) {{ container {{ from(address: $image) {{
            withMountedCache(path: "/sync", cache: $cache) {{ {branches} }} }} }} }}"#
    );
    let out = server.query_vars(&query, &json!({ "image": busybox(), "cache": cache }));
    assert!(out["errors"].is_null(), "{out}");
    for n in 0..8 {
        assert_eq!(
            out["data"]["container"]["from"]["withMountedCache"][format!("b{n}")]["stdout"],
            "8\n",
            "branch {n} did not see all eight running: {out}"
        );
    }
}

#[test]
fn failed_exec_has_the_error_shape_and_leaves_no_container() {
    require_runtime!();
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
    require_runtime!();
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
fn a_step_container_removed_outside_gantry_is_named_and_the_engine_keeps_serving() {
    require_runtime!();
    if support::native() {
        // `docker rm -f` is the fault under test; make test's Docker pass runs it.
        eprintln!("skipping: removes a Docker container; runs on the Docker runtime");
        return;
    }
    let server = Server::start();
    let marker = support::unique("removed");
    let query = exec_query(
        &busybox(),
        &["sh", "-c", &format!("echo {marker}; sleep 60")],
    );
    let out = std::thread::scope(|scope| {
        let running = scope.spawn(|| server.query(&query));
        // Remove the step's container from outside as soon as it exists.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ids = support::docker(&[
                "ps",
                "-q",
                "--filter",
                &format!("label=dev.gantry.engine-pid={}", server.pid()),
            ]);
            let ids = String::from_utf8_lossy(&ids.stdout).trim().to_owned();
            if !ids.is_empty() {
                for id in ids.lines() {
                    support::docker(&["rm", "-f", id]);
                }
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the step's container never started"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        running.join().unwrap()
    });
    let message = support::error_message(&out);
    assert!(
        message.contains("removed outside gantry"),
        "the error should say the container was removed from outside: {out}"
    );
    support::still_serving(&server);
}

/// The native runtime's preamble (`gantry __oci-start`), run by hand: it writes
/// the process into each `cgroup.procs` file given (plain files stand in for
/// them here) and, with `--hide-unified`, covers the cgroup v2 half with an
/// empty tmpfs in a mount namespace of its own, then execs the command; the
/// host's mounts stay as they were. A failure exits 125 with the cause.
#[test]
fn the_native_preamble_joins_cgroups_and_hides_the_v2_half_in_its_own_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let procs = [dir.path().join("a.procs"), dir.path().join("b.procs")];
    for path in &procs {
        std::fs::write(path, "").unwrap();
    }
    let preamble = |hide: bool, procs: &[std::path::PathBuf], script: &str| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gantry"));
        command.arg("__oci-start");
        if hide {
            command.arg("--hide-unified");
        }
        for path in procs {
            command.arg("--procs").arg(path);
        }
        command
            .args(["--", "/bin/sh", "-c", script])
            .output()
            .unwrap()
    };
    let out = preamble(false, &procs, "echo ran");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    for path in &procs {
        assert_eq!(std::fs::read_to_string(path).unwrap(), "0");
    }
    let missing = [dir.path().join("gone/cgroup.procs")];
    let out = preamble(false, &missing, "echo ran");
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("gantry: cannot start the OCI runtime: joining the step's cgroup")
            && stderr.contains("gone/cgroup.procs"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    let covered = |mounts: &str| {
        mounts
            .lines()
            .any(|line| line.starts_with("gantry /sys/fs/cgroup/unified tmpfs "))
    };
    let out = preamble(true, &[], "cat /proc/self/mounts");
    let hybrid = std::path::Path::new("/sys/fs/cgroup/unified").is_dir();
    if hybrid && rustix::process::geteuid().is_root() {
        assert!(out.status.success(), "{out:?}");
        assert!(covered(&String::from_utf8_lossy(&out.stdout)));
        let host = std::fs::read_to_string("/proc/self/mounts").unwrap();
        assert!(!covered(&host), "the host's mounts changed");
    } else {
        // No hybrid layout or no root: refused, naming what failed.
        assert_eq!(out.status.code(), Some(125), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("hiding the cgroup v2 half"));
    }
}
