//! How the engine is reached: the socket and the loopback listener, `gantry
//! run`, `gantry session` and `gantry query`.

use std::time::{Duration, Instant};

use crate::support::{self, busybox, exec_query, Server};

#[test]
fn loopback_listener_requires_the_token() {
    require_runtime!();
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

/// Dagger's Go SDK sends `"operationName": ""` with every anonymous query;
/// it means "no name", as in Dagger's server. A name that matches no
/// operation is still an error.
#[test]
fn an_empty_operation_name_means_none() {
    require_runtime!();
    let server = Server::start_with_listen();
    let token = server.token().to_owned();
    let body = serde_json::json!({ "query": "{ version }", "operationName": "" });
    let (status, response) = server.tcp_raw(&body.to_string(), Some(&token));
    assert_eq!(status, 200, "{response}");
    let response: serde_json::Value = serde_json::from_str(&response).unwrap();
    assert!(response.get("errors").is_none(), "{response}");
    assert!(response["data"]["version"].is_string(), "{response}");
    let body = serde_json::json!({ "query": "query A { version }", "operationName": "B" });
    let (_, response) = server.tcp_raw(&body.to_string(), Some(&token));
    assert!(response.contains("Unknown operation named"), "{response}");
}

#[test]
fn socket_is_private_to_its_owner() {
    require_runtime!();
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
    require_runtime!();
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
    require_runtime!();
    let dir = tempfile::tempdir().unwrap();
    for ending in ["stdin", "sigterm"] {
        let (mut child, params) = support::start_session(
            dir.path(),
            &[
                "--label",
                "dagger.io/sdk.name:nodejs",
                "--workdir",
                ".",
                "--project",
                "x",
                "--load-workspace-modules",
            ],
        );
        assert!(params["port"].as_u64().is_some(), "{params}");
        assert!(params["session_token"].as_str().is_some(), "{params}");
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
    require_runtime!();
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

/// `withExec(experimentalPrivilegedNesting: true)`: the command gets a
/// session of its own (DAGGER_SESSION_PORT/TOKEN, GANTRY_SESSION_PORT/TOKEN)
/// on the host's loopback and calls the API there, here with busybox's
/// `wget`: its query runs a step of its own. The nested client has no host,
/// and the token is scrubbed from the output like a secret.
#[test]
fn a_nested_command_calls_the_api_through_its_own_session() {
    require_runtime!();
    let server = Server::start();
    let image = busybox();
    let nested = format!(
        r#"{{"query":"{{ container {{ from(address: \"{image}\") {{ withExec(args: [\"echo\", \"from the nested step\"]) {{ stdout }} }} }} }}"}}"#
    );
    let host = r#"{"query":"{ host { directory(path: \"/etc\") { entries } } }"}"#;
    let script = format!(
        r#"post() {{ wget -qO- --header "Authorization: Bearer $DAGGER_SESSION_TOKEN" --header 'Content-Type: application/json' --post-data "$1" "http://127.0.0.1:$DAGGER_SESSION_PORT/query"; echo; }}
post '{nested}'
post '{host}'
echo "token=$GANTRY_SESSION_TOKEN port=$GANTRY_SESSION_PORT""#
    );
    let query = r#"query($image: String!, $script: String!) { container { from(address: $image) {
        withExec(args: ["sh", "-c", $script], experimentalPrivilegedNesting: true) { stdout } } } }"#;
    let answer = support::run(
        &server,
        query,
        serde_json::json!({ "image": image, "script": script }),
    );
    let stdout = support::text(&answer, "container.from.withExec.stdout");
    assert!(
        stdout.contains(r#""stdout":"from the nested step\n""#),
        "{stdout}"
    );
    assert!(stdout.contains("has no host"), "{stdout}");
    assert!(stdout.contains("token=*** port="), "{stdout}");

    // Without the flag the command has neither the session nor its variables.
    let plain = r#"query($image: String!) { container { from(address: $image) {
        withExec(args: ["sh", "-c", "echo port=${DAGGER_SESSION_PORT:-none}"]) { stdout } } } }"#;
    let answer = support::run(&server, plain, serde_json::json!({ "image": image }));
    assert_eq!(
        support::text(&answer, "container.from.withExec.stdout"),
        "port=none\n"
    );
}

/// Dagger's official Python SDK (the venv `make dagger-python-sdk` installs),
/// run inside a nested step on the fixture image with the host's Python,
/// connects to the step's own session as it would to Dagger's and runs a
/// step of its own.
#[test]
fn daggers_python_sdk_runs_a_pipeline_from_inside_a_nested_step() {
    require_runtime!();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let site = root.join("conformance-tests/dagger/python/.venv/lib/python3.11/site-packages");
    if !site.join("dagger").is_dir() {
        assert!(
            std::env::var("GANTRY_TEST_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "Dagger's Python SDK is not installed: run `make dagger-python-sdk`"
        );
        return;
    }
    let server = Server::start();
    let script = format!(
        r#"
import anyio, dagger
from dagger import dag

async def main():
    async with dagger.connection():
        out = await dag.container().from_("{busybox}").with_exec(["echo", "dagger-io, nested"]).stdout()
    print("inner:", out.strip())

anyio.run(main)
"#,
        busybox = busybox()
    );
    let query = r#"query($image: String!, $site: String!, $script: String!) {
        container { from(address: $image) {
          withMountedDirectory(path: "/sdk", source: $site) { withEnvVariable(name: "PYTHONPATH", value: "/sdk") {
            withExec(args: ["python3", "-c", $script], experimentalPrivilegedNesting: true) { stdout } } } } } }"#;
    let site_id = support::run(
        &server,
        r#"query($path: String!) { host { directory(path: $path) { id } } }"#,
        serde_json::json!({ "path": site.display().to_string() }),
    );
    let answer = support::run(
        &server,
        query,
        serde_json::json!({
            "image": support::fixture("python:latest"),
            "site": support::text(&site_id, "host.directory.id"),
            "script": script,
        }),
    );
    let stdout = support::text(
        &answer,
        "container.from.withMountedDirectory.withEnvVariable.withExec.stdout",
    );
    assert_eq!(stdout, "inner: dagger-io, nested\n");
}
