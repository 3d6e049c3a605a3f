//! The Tier 2 container fields on real Docker: paths read and removed
//! through the runtime, symlink and file layers, interleaved output,
//! volatile variables, env files, images in the daemon's own store, and
//! commands run with every root capability.

use serde_json::json;

use crate::support::{self, at, busybox, data, error_message, fixture, run, text, unique, Server};

/// A busybox container with a file, a symlink to it and a directory, made by
/// a command (so they are in the committed image, not in pending layers).
const PREPARED: &str = r#"query($image: String!) { container { from(address: $image) {
    withExec(args: ["sh", "-c", "mkdir -p /d/sub && printf hi > /d/f && ln -s /d/f /d/l && chmod 600 /d/f"]) { FIELDS } } } }"#;

fn prepared(fields: &str) -> String {
    PREPARED.replace("FIELDS", fields)
}

#[test]
fn exists_and_stat_read_the_image_through_the_runtime() {
    require_runtime!();
    let server = Server::start();
    let out = run(
        &server,
        &prepared(
            r#"file: exists(path: "/d/f", expectedType: REGULAR_TYPE)
               dir: exists(path: "/d/sub", expectedType: DIRECTORY_TYPE)
               link: exists(path: "/d/l", expectedType: REGULAR_TYPE)
               linkItself: exists(path: "/d/l", expectedType: SYMLINK_TYPE, doNotFollowSymlinks: true)
               missing: exists(path: "/d/none")
               stat(path: "/d/l") { name size permissions fileType }
               linkStat: stat(path: "/d/l", doNotFollowSymlinks: true) { fileType }"#,
        ),
        json!({ "image": busybox() }),
    );
    let c = at(&out, "container.from.withExec");
    assert_eq!(
        [
            &c["file"],
            &c["dir"],
            &c["link"],
            &c["linkItself"],
            &c["missing"]
        ],
        [
            &json!(true),
            &json!(true),
            &json!(true),
            &json!(true),
            &json!(false)
        ]
    );
    assert_eq!(
        c["stat"],
        json!({"name": "l", "size": 2, "permissions": 384, "fileType": "REGULAR"})
    );
    assert_eq!(c["linkStat"]["fileType"], "SYMLINK");
}

#[test]
fn paths_are_removed_from_the_image_and_from_layers() {
    require_runtime!();
    let server = Server::start();
    let out = run(
        &server,
        &prepared(
            r#"withNewFile(path: "/d/layer.txt", contents: "x") {
                 withoutFile(path: "/d/f") { withoutFiles(paths: ["/d/layer.txt", "/d/absent"]) {
                   withExec(args: ["ls", "/d"]) { stdout }
                   withoutDirectory(path: "/d") { exists(path: "/d") withExec(args: ["ls", "/"]) { stdout } }
                 } } }"#,
        ),
        json!({ "image": busybox() }),
    );
    let c = at(
        &out,
        "container.from.withExec.withNewFile.withoutFile.withoutFiles",
    );
    assert_eq!(text(c, "withExec.stdout"), "l\nsub\n");
    assert_eq!(c["withoutDirectory"]["exists"], false);
    assert!(!text(c, "withoutDirectory.withExec.stdout")
        .lines()
        .any(|line| line == "d"));
    let refused = server.query_vars(
        r#"query($image: String!) { container { from(address: $image) { withoutFile(path: "/etc/passwd") { sync } } } }"#,
        &json!({ "image": fixture("static:nonroot") }),
    );
    let message = error_message(&refused);
    assert!(message.contains("rm"), "{message}");
    support::still_serving(&server);
}

#[test]
fn symlinks_files_and_env_files_reach_commands() {
    require_runtime!();
    let server = Server::start();
    let files = run(
        &server,
        r#"{ a: file(name: "a.txt", contents: "A") { id } b: file(name: "b.txt", contents: "B") { id }
             env: file(name: ".env", contents: "GREETING=hello\nMESSAGE=\"$GREETING, world\"\n") { asEnvFile { id } } }"#,
        json!({}),
    );
    let out = run(
        &server,
        r#"query($image: String!, $a: ID!, $b: ID!, $env: ID!) { container { from(address: $image) {
             withFiles(path: "/srv", sources: [$a, $b], permissions: 416) { withSymlink(target: "/srv/b.txt", linkName: "/link") {
             withEnvFileVariables(source: $env) {
               withExec(args: ["sh", "-c", "cat /link; stat -c %a /srv/a.txt; readlink /link; echo \"$MESSAGE\""]) { stdout }
             } } } } } }"#,
        json!({
            "image": busybox(),
            "a": text(&files, "a.id"),
            "b": text(&files, "b.id"),
            "env": text(&files, "env.asEnvFile.id"),
        }),
    );
    assert_eq!(
        text(
            &out,
            "container.from.withFiles.withSymlink.withEnvFileVariables.withExec.stdout"
        ),
        "B640\n/srv/b.txt\nhello, world\n"
    );
}

#[test]
fn combined_output_interleaves_the_streams_and_volatile_variables_reach_commands() {
    require_runtime!();
    let server = Server::start();
    let out = run(
        &server,
        r#"query($image: String!) { container { from(address: $image) { withVolatileVariable(name: "RUN_ID", value: "r1") {
             withExec(args: ["sh", "-c", "echo one; sleep 0.2; echo two >&2; sleep 0.2; echo \"three $RUN_ID\""]) {
               combinedOutput stdout stderr envVariables { name } } } } } }"#,
        json!({ "image": busybox() }),
    );
    let exec = at(&out, "container.from.withVolatileVariable.withExec");
    // The native runtime reads two pipes, so it cannot tell their order
    // apart: stdout then stderr (docs/native-runtime.md).
    let combined = if support::native() {
        "one\nthree r1\ntwo\n"
    } else {
        "one\ntwo\nthree r1\n"
    };
    assert_eq!(text(exec, "combinedOutput"), combined);
    assert_eq!(text(exec, "stdout"), "one\nthree r1\n");
    assert_eq!(text(exec, "stderr"), "two\n");
    assert!(
        !exec["envVariables"].to_string().contains("RUN_ID"),
        "a volatile variable is not part of the container's configuration"
    );
}

#[test]
fn images_go_to_and_come_from_the_runtimes_store() {
    require_runtime!();
    let server = Server::start();
    let marker = unique("exported");
    let name = format!("gantry-test/{marker}:latest");
    let out = server.query_vars(
        r#"query($image: String!, $name: String!, $marker: String!) { container { from(address: $image) {
             withNewFile(path: "/marker", contents: $marker) { withEnvVariable(name: "MARK", value: $marker) {
               exportImage(name: $name) } } } } }"#,
        &json!({ "image": busybox(), "name": name, "marker": marker }),
    );
    data(out);
    // The runtime's store: the daemon's, or the native snapshot store (under
    // the name in full, as `exportImage` writes it).
    assert!(
        support::image_exists(server.dir(), &format!("docker.io/{name}")),
        "{name} is in the runtime's store"
    );
    let out = run(
        &server,
        r#"query($name: String!) { host { containerImage(name: $name) {
             file(path: "/marker") { contents } envVariable(name: "MARK") } } }"#,
        json!({ "name": name }),
    );
    assert_eq!(text(&out, "host.containerImage.file.contents"), marker);
    assert_eq!(text(&out, "host.containerImage.envVariable"), marker);
    let missing = server
        .query(r#"{ host { containerImage(name: "gantry-test/never-built:none") { sync } } }"#);
    assert_eq!(
        missing["errors"][0]["extensions"]["code"], "IMAGE_NOT_FOUND",
        "{missing}"
    );
    assert!(
        missing["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("gantry-test/never-built:none"),
        "{missing}"
    );
    if !support::native() {
        support::docker(&["rmi", "-f", &name]);
    }
}

#[test]
fn insecure_root_capabilities_run_the_command_privileged() {
    require_runtime!();
    let server = Server::start();
    let probe = r#"grep CapEff /proc/self/status; mkdir -p /m && mount -t tmpfs tmpfs /m 2>/dev/null && echo mounted || echo refused"#;
    let query = r#"query($image: String!, $probe: String!) { container { from(address: $image) {
        plain: withExec(args: ["sh", "-c", $probe]) { stdout }
        privileged: withExec(args: ["sh", "-c", $probe], insecureRootCapabilities: true) { stdout } } } }"#;
    let out = run(
        &server,
        query,
        json!({ "image": busybox(), "probe": probe }),
    );
    // The effective set, from `CapEff:\t<hex>` on the first line.
    let effective = |stdout: &str| {
        let hex = stdout.lines().next().unwrap().trim_start_matches("CapEff:");
        u64::from_str_radix(hex.trim(), 16).unwrap()
    };
    // The engine runs as root beside the tests: its bounding set is theirs.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = effective(
        status
            .lines()
            .find(|line| line.starts_with("CapBnd:"))
            .unwrap()
            .trim_start_matches("CapBnd:"),
    );
    const SYS_ADMIN: u64 = 1 << 21;
    const NET_ADMIN: u64 = 1 << 12;
    let privileged = text(&out, "container.from.privileged.stdout");
    assert!(privileged.ends_with("\nmounted\n"), "{privileged}");
    let caps = effective(&privileged);
    assert_eq!(
        caps & (SYS_ADMIN | NET_ADMIN),
        SYS_ADMIN | NET_ADMIN,
        "{privileged}"
    );
    assert_eq!(
        caps & !bounding,
        0,
        "no capability the engine lacks: {privileged}"
    );
    let plain = text(&out, "container.from.plain.stdout");
    assert!(plain.ends_with("\nrefused\n"), "{plain}");
    assert_eq!(effective(&plain) & SYS_ADMIN, 0, "{plain}");
}
