//! `Directory.dockerBuild` on real Docker: a multi-stage Go build, secret,
//! cache and SSH agent mounts, a rebuild that runs nothing, a change that re-runs
//! only its stage, and clear errors for what is not supported. Base images
//! come from the local fixture registry only.

use serde_json::json;

use crate::support::{
    containers_created_since, data, error_message, fixture, now, run, text, workspace, Server,
};

const GO_DOCKERFILE: &str = r#"# syntax=docker/dockerfile:1
ARG FIXTURES
ARG GO_IMAGE=${FIXTURES}/golang:latest

FROM ${GO_IMAGE} AS builder
ARG VERSION=dev
WORKDIR /src
COPY go.mod main.go ./
RUN test ! -e ignored.txt && test ! -e notes.md
RUN --mount=type=cache,target=/root/.cache/go-build \
    go build -ldflags "-X main.version=${VERSION}" -o /out/hello .

FROM ${FIXTURES}/busybox:latest
ARG VERSION
ENV GREETING="hello from" APP_VERSION=$VERSION
LABEL org.opencontainers.image.title="hello" version=${VERSION}
COPY --from=builder --chmod=755 /out/hello /usr/local/bin/hello
WORKDIR /app
USER 65532
EXPOSE 8080 9090/udp
HEALTHCHECK --interval=30s --start-period=1m30s --retries=3 CMD hello --check || exit 1
ENTRYPOINT ["/usr/local/bin/hello"]
CMD ["--name", "gantry"]
"#;

const MAIN_GO: &str = r#"package main

import (
	"fmt"
	"os"
)

var version = "none"

func main() {
	wd, _ := os.Getwd()
	fmt.Println(os.Getenv("GREETING"), os.Args[1:], version, wd, os.Getuid())
}
"#;

fn go_context() -> tempfile::TempDir {
    workspace(&[
        ("Dockerfile", GO_DOCKERFILE),
        ("go.mod", "module example.com/hello\n\ngo 1.21\n"),
        ("main.go", MAIN_GO),
        ("ignored.txt", "must not reach the context\n"),
        ("notes.md", "neither must this\n"),
        (".dockerignore", "# not for the build\nignored.txt\n*.md\n"),
    ])
}

const BUILD: &str = r#"
query($dir: String!, $args: [BuildArg!]) {
  host { directory(path: $dir) { dockerBuild(buildArgs: $args) {
    run: withExec(args: [], useEntrypoint: true) { stdout }
    user workdir entrypoint defaultArgs
    title: label(name: "org.opencontainers.image.title")
    version: label(name: "version")
    ports: label(name: "dev.gantry.exposed-port")
    envVariable(name: "APP_VERSION")
    vars: envVariables { name }
    dockerHealthcheck { args shell interval startPeriod timeout retries }
  } } }
}"#;

fn fixtures_prefix() -> String {
    fixture("x").trim_end_matches("/x").to_owned()
}

#[test]
fn a_multi_stage_go_build_runs_as_gantry_steps_and_a_rebuild_runs_nothing() {
    require_runtime!();
    let context = go_context();
    let args = json!([
        { "name": "FIXTURES", "value": fixtures_prefix() },
        { "name": "VERSION", "value": "1.2.3" },
    ]);
    let vars = json!({ "dir": context.path().display().to_string(), "args": args });
    let mut server = Server::start();
    let answer = run(&server, BUILD, vars.clone());
    let built = &answer["host"]["directory"]["dockerBuild"];
    assert_eq!(
        text(built, "run.stdout"),
        "hello from [--name gantry] 1.2.3 /app 65532\n"
    );
    assert_eq!(text(built, "user"), "65532");
    assert_eq!(text(built, "workdir"), "/app");
    assert_eq!(built["entrypoint"], json!(["/usr/local/bin/hello"]));
    assert_eq!(built["defaultArgs"], json!(["--name", "gantry"]));
    assert_eq!(text(built, "title"), "hello");
    assert_eq!(text(built, "version"), "1.2.3");
    assert_eq!(text(built, "ports"), "8080/tcp 9090/udp");
    assert_eq!(text(built, "envVariable"), "1.2.3");
    assert_eq!(
        built["dockerHealthcheck"],
        json!({
            "args": ["hello --check || exit 1"],
            "shell": true,
            "interval": "30s",
            "startPeriod": "1m30s",
            "timeout": "",
            "retries": 3,
        })
    );
    // ARG values are visible to RUN only, never kept in the image's env.
    let names: Vec<&str> = built["vars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|var| var["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"VERSION"), "{names:?}");

    // A new engine on the same state: every step is a cache hit, so not
    // one container is created (the final exec above included).
    server.restart();
    let since = now();
    let again = run(&server, BUILD, vars);
    assert_eq!(again, answer);
    assert_eq!(containers_created_since(&since, server.pid()), 0);
}

const STAGES: &str = r#"
ARG FIXTURES
FROM ${FIXTURES}/busybox:latest AS a
COPY a.txt /a.txt
RUN wc -c < /a.txt > /a.len

FROM ${FIXTURES}/busybox:latest AS b
COPY b.txt /b.txt
RUN wc -c < /b.txt > /b.len

FROM ${FIXTURES}/busybox:latest AS unused
RUN exit 1

FROM scratch
COPY --from=a /a.len /
COPY --from=b /b.len /
"#;

#[test]
fn a_changed_file_re_runs_only_its_stage() {
    require_runtime!();
    let context = workspace(&[("Dockerfile", STAGES), ("a.txt", "aaa"), ("b.txt", "bbbb")]);
    let query = r#"
      query($dir: String!, $args: [BuildArg!]) {
        host { directory(path: $dir) { dockerBuild(buildArgs: $args) {
          rootfs { a: file(path: "a.len") { contents } b: file(path: "b.len") { contents } }
        } } } }"#;
    let vars = json!({
        "dir": context.path().display().to_string(),
        "args": [{ "name": "FIXTURES", "value": fixtures_prefix() }],
    });
    let mut server = Server::start();
    let since = now();
    let answer = run(&server, query, vars.clone());
    let rootfs = &answer["host"]["directory"]["dockerBuild"]["rootfs"];
    assert_eq!(text(rootfs, "a.contents").trim(), "3");
    assert_eq!(text(rootfs, "b.contents").trim(), "4");
    // Each stage's RUN and, on Docker, the read of its output (`COPY
    // --from`; the native runtime reads snapshots without a container). The
    // unused stage (which would fail) is never built.
    let per_stage = if crate::support::native() { 1 } else { 2 };
    assert_eq!(
        containers_created_since(&since, server.pid()),
        2 * per_stage
    );

    std::fs::write(context.path().join("b.txt"), "bbbbbbb").unwrap();
    server.restart();
    let since = now();
    let answer = run(&server, query, vars);
    let rootfs = &answer["host"]["directory"]["dockerBuild"]["rootfs"];
    assert_eq!(text(rootfs, "a.contents").trim(), "3");
    assert_eq!(text(rootfs, "b.contents").trim(), "7");
    // Only stage b runs again (its RUN, and the read of its new output).
    assert_eq!(containers_created_since(&since, server.pid()), per_stage);
}

const MOUNTS: &str = r#"
ARG FIXTURES
FROM ${FIXTURES}/busybox:latest
ARG MARKER
RUN --mount=type=secret,id=token,required --mount=type=secret,id=token,env=TOKEN \
    test "$(cat /run/secrets/token)" = "$TOKEN" && echo "secret length $(printf %s "$TOKEN" | wc -c)" > /secret.txt && echo "token is $TOKEN"
RUN --mount=type=cache,target=/cache,sharing=locked \
    echo "$MARKER" >> /cache/runs && cp /cache/runs /runs.txt
RUN test ! -s /run/secrets/token && test -z "$TOKEN" && test ! -e /cache/runs
RUN <<EOF
echo "from a heredoc" > /heredoc.txt
EOF
COPY <<EOF /copied.txt
copied $MARKER
EOF
"#;

#[test]
fn secret_and_cache_mounts_exist_for_their_run_only() {
    require_runtime!();
    let secret_value = "dockerfile-secret-8c1e";
    let context = workspace(&[("Dockerfile", MOUNTS)]);
    let server = Server::start();
    let secret = text(
        &run(
            &server,
            r#"query($v: String!) { setSecret(name: "token", plaintext: $v) { id } }"#,
            json!({ "v": secret_value }),
        ),
        "setSecret.id",
    );
    let query = r#"
      query($dir: String!, $args: [BuildArg!], $secret: ID!) {
        host { directory(path: $dir) { dockerBuild(buildArgs: $args, secrets: [$secret]) {
          secret: file(path: "/secret.txt") { contents }
          runs: file(path: "/runs.txt") { contents }
          heredoc: file(path: "/heredoc.txt") { contents }
          copied: file(path: "/copied.txt") { contents }
        } } } }"#;
    let build = |marker: &str| {
        run(
            &server,
            query,
            json!({
                "dir": context.path().display().to_string(),
                "secret": secret,
                "args": [
                    { "name": "FIXTURES", "value": fixtures_prefix() },
                    { "name": "MARKER", "value": marker },
                ],
            }),
        )
    };
    let first = build("first");
    let built = &first["host"]["directory"]["dockerBuild"];
    assert_eq!(
        text(built, "secret.contents"),
        format!("secret length {}\n", secret_value.len())
    );
    assert_eq!(text(built, "runs.contents"), "first\n");
    assert_eq!(text(built, "heredoc.contents"), "from a heredoc\n");
    assert_eq!(text(built, "copied.contents"), "copied first\n");
    // The cache volume outlives the build; the step that used it re-ran
    // because its ARG changed.
    let second = build("second");
    let built = &second["host"]["directory"]["dockerBuild"];
    assert_eq!(text(built, "runs.contents"), "first\nsecond\n");
    // The secret's value was printed by a RUN: scrubbed from the log.
    assert!(!server.log().contains(secret_value));
    assert!(
        crate::support::files_containing(&server.state_dir(), secret_value.as_bytes()).is_empty()
    );

    let missing = server.query_vars(
        query,
        &json!({
            "dir": context.path().display().to_string(),
            "secret": text(&run(&server, r#"{ setSecret(name: "other", plaintext: "x") { id } }"#, json!({})), "setSecret.id"),
            "args": [{ "name": "FIXTURES", "value": fixtures_prefix() }],
        }),
    );
    assert!(
        error_message(&missing).contains("secret \"token\" is required but was not passed"),
        "{missing}"
    );
}

const SSH_MOUNTS: &str = r#"
ARG FIXTURES
FROM ${FIXTURES}/busybox:latest
RUN --mount=type=ssh --mount=type=ssh,id=deploy \
    test -S "$SSH_AUTH_SOCK" && test -S /run/buildkit/ssh_agent.1 && echo "$SSH_AUTH_SOCK" > /agent.txt
RUN --mount=type=ssh,target=/tmp/agent.sock,required \
    test -S /tmp/agent.sock && echo "$SSH_AUTH_SOCK" > /target.txt
RUN test ! -S /run/buildkit/ssh_agent.0 && test ! -S /tmp/agent.sock && test -z "$SSH_AUTH_SOCK" && echo gone > /after.txt
"#;

#[test]
fn ssh_mounts_hold_the_agent_socket_for_their_run_only() {
    require_runtime!();
    let context = workspace(&[("Dockerfile", SSH_MOUNTS)]);
    let agent = tempfile::tempdir().unwrap();
    let path = agent.path().join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let server = Server::start();
    let socket = text(
        &run(
            &server,
            r#"query($path: String!) { host { unixSocket(path: $path) { id } } }"#,
            json!({ "path": path.display().to_string() }),
        ),
        "host.unixSocket.id",
    );
    let query = r#"
      query($dir: String!, $args: [BuildArg!], $ssh: ID!) {
        host { directory(path: $dir) { dockerBuild(buildArgs: $args, ssh: $ssh) {
          agent: file(path: "/agent.txt") { contents }
          target: file(path: "/target.txt") { contents }
          after: file(path: "/after.txt") { contents }
        } } }
      }"#;
    let vars = json!({
        "dir": context.path().display().to_string(),
        "args": [{ "name": "FIXTURES", "value": fixtures_prefix() }],
        "ssh": socket,
    });
    let out = run(&server, query, vars);
    let built = &out["host"]["directory"]["dockerBuild"];
    assert_eq!(text(built, "agent.contents"), "/run/buildkit/ssh_agent.0\n");
    assert_eq!(text(built, "target.contents"), "/tmp/agent.sock\n");
    assert_eq!(text(built, "after.contents"), "gone\n");
    // Without an agent an optional mount is left out (a required one
    // fails: what_is_not_supported_fails_clearly_with_its_line).
    let optional = workspace(&[(
        "Dockerfile",
        "ARG FIXTURES\nFROM ${FIXTURES}/busybox:latest\nRUN --mount=type=ssh test -z \"$SSH_AUTH_SOCK\" && test ! -e /run/buildkit/ssh_agent.0 && echo none > /agent.txt\n",
    )]);
    let out = run(
        &server,
        r#"query($dir: String!, $args: [BuildArg!]) { host { directory(path: $dir) {
            dockerBuild(buildArgs: $args) { file(path: "/agent.txt") { contents } } } } }"#,
        json!({
            "dir": optional.path().display().to_string(),
            "args": [{ "name": "FIXTURES", "value": fixtures_prefix() }],
        }),
    );
    assert_eq!(
        text(&out, "host.directory.dockerBuild.file.contents"),
        "none\n"
    );
}

#[test]
fn what_is_not_supported_fails_clearly_with_its_line() {
    require_runtime!();
    let server = Server::start();
    let cases = [
        (
            "FROM scratch\nONBUILD RUN echo\n",
            "Dockerfile:2: ONBUILD is not supported",
        ),
        (
            "FROM scratch\nRUN --mount=type=ssh,required echo\n",
            "Dockerfile:2: RUN --mount=type=ssh,required: no SSH agent was given to the build",
        ),
        (
            "FROM scratch\nRUN --mount=type=ssh,uid=1000 echo\n",
            "Dockerfile:2: RUN --mount=type=ssh,uid=… is not supported",
        ),
        (
            "FROM scratch\nCOPY missing.txt /\n",
            "Dockerfile:2: missing.txt: not found in the build context",
        ),
        ("RUN echo\n", "expected FROM at line 1"),
    ];
    for (dockerfile, expected) in cases {
        let dir = workspace(&[("Dockerfile", dockerfile)]);
        let out = server.query_vars(
            r#"query($dir: String!) { host { directory(path: $dir) { dockerBuild { sync } } } }"#,
            &json!({ "dir": dir.path().display().to_string() }),
        );
        let message = error_message(&out);
        assert!(message.contains(expected), "{dockerfile:?}: {message}");
    }
    let dir = workspace(&[("Dockerfile", "FROM scratch\n")]);
    let out = server.query_vars(
        r#"query($dir: String!) { host { directory(path: $dir) {
            other: dockerBuild(dockerfile: "nope.Dockerfile") { sync } } } }"#,
        &json!({ "dir": dir.path().display().to_string() }),
    );
    assert!(
        error_message(&out).contains("no Dockerfile at \"nope.Dockerfile\""),
        "{out}"
    );
    let out = server.query_vars(
        r#"query($dir: String!) { host { directory(path: $dir) {
            dockerBuild(target: "nope") { sync } } } }"#,
        &json!({ "dir": dir.path().display().to_string() }),
    );
    assert!(
        error_message(&out).contains("target stage \"nope\""),
        "{out}"
    );
    let _ = data(server.query("{ version }"));
}
