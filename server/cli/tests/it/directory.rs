//! `Directory` and `File` operations, timestamps, and a container's rootfs
//! as a directory.

use std::fs;

use serde_json::json;

use crate::support::{self, busybox, Server};
use crate::support::{at, data, error_message, run, stdout_of, still_serving, text};

#[test]
fn directory_and_file_operations() {
    require_runtime!();
    let server = Server::start();
    let out = run(
        &server,
        r#"{ directory {
          withNewFile(path: "a/b.txt", contents: "B") { withNewFile(path: "a/c.go", contents: "C") {
            withNewFile(path: "top.md", contents: "T") { withNewDirectory(path: "empty") {
              id digest entries
              withoutFile(path: "a/b.txt") { entries(path: "a") }
              withoutDirectory(path: "a") { entries }
              goFiles: glob(pattern: "**/*.go") topMd: glob(pattern: "*.md")
        } } } } } }"#,
        json!({}),
    );
    let dir = at(
        &out,
        "directory.withNewFile.withNewFile.withNewFile.withNewDirectory",
    );
    assert_eq!(dir["entries"], json!(["a/", "empty/", "top.md"]));
    assert_eq!(dir["withoutFile"]["entries"], json!(["c.go"]));
    assert_eq!(
        dir["withoutDirectory"]["entries"],
        json!(["empty/", "top.md"])
    );
    assert_eq!(dir["goFiles"], json!(["a/c.go"]));
    assert_eq!(dir["topMd"], json!(["top.md"]));
    let dir_id = text(dir, "id");
    let digest = text(dir, "digest");
    assert!(digest.starts_with("sha256:"), "{digest}");

    // Equal content built in another order has the same digest; a change differs.
    let out = run(
        &server,
        r#"{ directory { withNewDirectory(path: "empty") { withNewFile(path: "top.md", contents: "T") {
             withNewFile(path: "a/c.go", contents: "C") { withNewFile(path: "a/b.txt", contents: "B") {
               digest withNewFile(path: "top.md", contents: "T2") { digest } } } } } } }"#,
        json!({}),
    );
    let same = at(
        &out,
        "directory.withNewDirectory.withNewFile.withNewFile.withNewFile",
    );
    assert_eq!(same["digest"], digest);
    assert_ne!(same["withNewFile"]["digest"], digest);

    // diff: what the other directory adds or changes.
    let out = run(
        &server,
        r#"query($dir: ID!) { loadDirectoryFromID(id: $dir) {
            withNewFile(path: "new.txt", contents: "N") { withNewFile(path: "top.md", contents: "changed") { id } } } }"#,
        json!({ "dir": dir_id }),
    );
    let other = text(&out, "loadDirectoryFromID.withNewFile.withNewFile.id");
    let out = run(
        &server,
        r#"query($dir: ID!, $other: ID!) { loadDirectoryFromID(id: $dir) { diff(other: $other) {
            glob(pattern: "**") } } }"#,
        json!({ "dir": dir_id, "other": other }),
    );
    assert_eq!(
        at(&out, "loadDirectoryFromID.diff.glob"),
        &json!(["new.txt", "top.md"])
    );

    // include/exclude on Directory.withDirectory and Container.withDirectory.
    let out = run(
        &server,
        r#"query($dir: ID!) { directory { withDirectory(path: "x", source: $dir,
              include: ["a"], exclude: ["**/*.go"]) { glob(pattern: "**") } } }"#,
        json!({ "dir": dir_id }),
    );
    assert_eq!(
        at(&out, "directory.withDirectory.glob"),
        &json!(["x/", "x/a/", "x/a/b.txt"])
    );
    let out = run(
        &server,
        r#"query($image: String!, $dir: ID!) { container { from(address: $image) {
            withDirectory(path: "/d", source: $dir, include: ["**/*.go", "top.md"], exclude: ["a/b*"]) {
              withExec(args: ["sh", "-c", "cd /d && find . -type f | sort"]) { stdout } } } } }"#,
        json!({ "image": busybox(), "dir": dir_id }),
    );
    assert_eq!(
        text(&out, "container.from.withDirectory.withExec.stdout"),
        "./a/c.go\n./top.md\n"
    );

    // Directory.export merges, or wipes first; the answer is the absolute path.
    let host = tempfile::tempdir().unwrap();
    fs::create_dir_all(host.path().join("out")).unwrap();
    fs::write(host.path().join("out/stale.txt"), "old").unwrap();
    let export = r#"query($dir: ID!, $wipe: Boolean!) { loadDirectoryFromID(id: $dir) {
        export(path: "out", wipe: $wipe) } }"#;
    let out = data(server.query_in(
        host.path(),
        export,
        &json!({ "dir": dir_id, "wipe": false }),
    ));
    let out_dir = host.path().join("out");
    assert_eq!(
        at(&out, "loadDirectoryFromID.export"),
        &json!(out_dir.display().to_string())
    );
    assert!(out_dir.join("stale.txt").exists());
    assert_eq!(fs::read_to_string(out_dir.join("a/c.go")).unwrap(), "C");
    assert!(out_dir.join("empty").is_dir());
    data(server.query_in(host.path(), export, &json!({ "dir": dir_id, "wipe": true })));
    assert!(!out_dir.join("stale.txt").exists());
    assert_eq!(fs::read_to_string(out_dir.join("top.md")).unwrap(), "T");

    // File.export, withName and allowParentDirPath.
    let file_export = r#"query($dir: ID!, $path: String!, $allow: Boolean!) {
        loadDirectoryFromID(id: $dir) { file(path: "top.md") {
          name export(path: $path, allowParentDirPath: $allow)
          withName(name: "renamed.md") { name export(path: $path, allowParentDirPath: $allow) } } } }"#;
    let out = data(server.query_in(
        host.path(),
        file_export,
        &json!({ "dir": dir_id, "path": "files/copy.md", "allow": false }),
    ));
    let file = at(&out, "loadDirectoryFromID.file");
    assert_eq!(file["name"], "top.md");
    assert_eq!(file["withName"]["name"], "renamed.md");
    assert_eq!(
        file["export"],
        json!(host.path().join("files/copy.md").display().to_string())
    );
    assert_eq!(
        fs::read_to_string(host.path().join("files/copy.md")).unwrap(),
        "T"
    );
    let refused = server.query_in(
        host.path(),
        file_export,
        &json!({ "dir": dir_id, "path": "files", "allow": false }),
    );
    assert!(
        error_message(&refused).contains("is a directory"),
        "{refused}"
    );
    let out = data(server.query_in(
        host.path(),
        file_export,
        &json!({ "dir": dir_id, "path": "files", "allow": true }),
    ));
    assert_eq!(
        at(&out, "loadDirectoryFromID.file.withName.export"),
        &json!(host.path().join("files/renamed.md").display().to_string())
    );
    assert_eq!(
        fs::read_to_string(host.path().join("files/top.md")).unwrap(),
        "T"
    );
    assert_eq!(
        fs::read_to_string(host.path().join("files/renamed.md")).unwrap(),
        "T"
    );

    // Paths that climb out of a directory are refused.
    for query in [
        r#"query($dir: ID!) { loadDirectoryFromID(id: $dir) { file(path: "../../etc/passwd") { contents } } }"#,
        r#"query($dir: ID!) { loadDirectoryFromID(id: $dir) { withNewFile(path: "../x", contents: "x") { entries } } }"#,
    ] {
        let out = server.query_vars(query, &json!({ "dir": dir_id }));
        assert!(error_message(&out).contains("climbs out"), "{out}");
    }
    still_serving(&server);
}

#[test]
fn with_timestamps_reaches_containers_and_changes_the_cache_key() {
    require_runtime!();
    let server = Server::start();
    let query = r#"{
      directory { withNewFile(path: "f.txt", contents: "stamped") {
        plain: id digest
        withTimestamps(timestamp: 1234567890) { id digest file(path: "f.txt") { id
          withTimestamps(timestamp: 1000000000) { id } } } } } }"#;
    let out = run(&server, query, json!({}));
    let dir = at(&out, "directory.withNewFile");
    // The content digest ignores timestamps...
    assert_eq!(dir["digest"], dir["withTimestamps"]["digest"]);
    // ...but what a container sees differs, so steps must not share a result:
    // each of a directory's and a file's timestamps on its own.
    let stat_dir = r#"query($image: String!, $dir: ID!) { container { from(address: $image) {
        withDirectory(path: "/d", source: $dir) {
          withExec(args: ["stat", "-c", "%Y", "/d/f.txt"]) { stdout } } } } }"#;
    let stat_file = r#"query($image: String!, $file: ID!) { container { from(address: $image) {
        withFile(path: "/f", source: $file) {
          withExec(args: ["stat", "-c", "%Y", "/f"]) { stdout } } } } }"#;
    let exec_of = |query: &str, name: &str, id: String, path: &str| {
        stdout_of(
            &server,
            query,
            json!({ "image": busybox(), name: id }),
            &format!("container.from.{path}.withExec"),
        )
    };
    assert_eq!(
        exec_of(stat_dir, "dir", text(dir, "plain"), "withDirectory"),
        "0\n"
    );
    assert_eq!(
        exec_of(
            stat_dir,
            "dir",
            text(dir, "withTimestamps.id"),
            "withDirectory"
        ),
        "1234567890\n"
    );
    assert_eq!(
        exec_of(
            stat_file,
            "file",
            text(dir, "withTimestamps.file.id"),
            "withFile"
        ),
        "1234567890\n"
    );
    assert_eq!(
        exec_of(
            stat_file,
            "file",
            text(dir, "withTimestamps.file.withTimestamps.id"),
            "withFile"
        ),
        "1000000000\n"
    );
}

#[test]
fn chown_owns_what_containers_see() {
    require_runtime!();
    let server = Server::start();
    let query = r#"{
      directory { withNewFile(path: "etc/passwd", contents: "root:x:0:0::/root:/bin/sh\napp:x:1234:1234::/app:/bin/sh\n") {
        withNewFile(path: "etc/group", contents: "root:x:0:\nstaff:x:4321:\n") {
        withNewFile(path: "dir/sub/f", contents: "x") { withNewFile(path: "other", contents: "y") {
          numeric: chown(path: "dir", owner: "555:556") { id }
          named: chown(path: "dir/sub", owner: "app:staff") { id }
          whole: chown(path: ".", owner: "7") { id }
          file(path: "other") { chown(owner: "42:43") { id } }
        } } } } } }"#;
    let out = run(&server, query, json!({}));
    let dir = at(
        &out,
        "directory.withNewFile.withNewFile.withNewFile.withNewFile",
    );
    let stat = |id: String, script: &str| {
        stdout_of(
            &server,
            r#"query($image: String!, $dir: ID!, $script: String!) { container { from(address: $image) {
                withDirectory(path: "/d", source: $dir) {
                  withExec(args: ["sh", "-c", $script]) { stdout } } } } }"#,
            json!({ "image": busybox(), "dir": id, "script": script }),
            "container.from.withDirectory.withExec",
        )
    };
    let owners = "cd /d && stat -c '%n %u:%g' dir dir/sub/f other";
    assert_eq!(
        stat(text(dir, "numeric.id"), owners),
        "dir 555:556\ndir/sub/f 555:556\nother 0:0\n"
    );
    assert_eq!(
        stat(text(dir, "named.id"), owners),
        "dir 0:0\ndir/sub/f 1234:4321\nother 0:0\n"
    );
    assert_eq!(
        stat(text(dir, "whole.id"), owners),
        "dir 7:7\ndir/sub/f 7:7\nother 7:7\n"
    );
    let file = stdout_of(
        &server,
        r#"query($image: String!, $file: ID!) { container { from(address: $image) {
            withFile(path: "/f", source: $file) {
              withExec(args: ["stat", "-c", "%u:%g", "/f"]) { stdout } } } } }"#,
        json!({ "image": busybox(), "file": text(dir, "file.chown.id") }),
        "container.from.withFile.withExec",
    );
    assert_eq!(file, "42:43\n");
    // Names a directory cannot resolve, a missing path, names on a file: refused by name.
    for (query, expected) in [
        (
            r#"{ directory { withNewDirectory(path: "d") { chown(path: "d", owner: "nobody") { entries } } } }"#,
            "has no /etc/passwd",
        ),
        (
            r#"{ directory { chown(path: "missing", owner: "1") { entries } } }"#,
            "no such file or directory",
        ),
        (
            r#"{ file(name: "f", contents: "x") { chown(owner: "app") { contents } } }"#,
            "a file has no /etc/passwd",
        ),
    ] {
        let message = error_message(&server.query_vars(query, &json!({})));
        assert!(message.contains(expected), "{query}: {message}");
    }
}

// ---------------------------------------------------------------- rootfs

#[test]
fn rootfs_and_with_rootfs_round_trip() {
    require_runtime!();
    let server = Server::start();
    let marker = support::unique("rootfs");
    let out = run(
        &server,
        r#"query($image: String!, $marker: String!) { container { from(address: $image) {
            withNewFile(path: "/hello.txt", contents: "hi") {
              withExec(args: ["sh", "-c", "echo $0 > /made.txt", $marker]) {
                rootfs { id entries glob(pattern: "*.txt") file(path: "made.txt") { contents } } } } } } }"#,
        json!({ "image": busybox(), "marker": marker }),
    );
    let rootfs = at(&out, "container.from.withNewFile.withExec.rootfs");
    assert!(
        rootfs["entries"]
            .as_array()
            .unwrap()
            .contains(&json!("bin/")),
        "{rootfs}"
    );
    assert_eq!(rootfs["glob"], json!(["hello.txt", "made.txt"]));
    assert_eq!(rootfs["file"]["contents"], format!("{marker}\n"));
    let out = run(
        &server,
        r#"query($rootfs: ID!) { directory { withDirectory(path: "/", source: $rootfs) {
            withNewFile(path: "extra.txt", contents: "extra ") { id } } } }"#,
        json!({ "rootfs": text(rootfs, "id") }),
    );
    let changed = text(&out, "directory.withDirectory.withNewFile.id");
    let stdout = stdout_of(
        &server,
        r#"query($dir: ID!) { container { withRootfs(directory: $dir) {
            withExec(args: ["cat", "/extra.txt", "/made.txt"]) { stdout } } } }"#,
        json!({ "dir": changed }),
        "container.withRootfs.withExec",
    );
    assert_eq!(stdout, format!("extra {marker}\n"));
}

/// A file put under a dangling symlink: the symlink becomes a directory, its target
/// is never created. Docker's archive upload does this; the native runtime matches.
#[test]
fn content_under_a_dangling_symlink_replaces_it_with_a_directory() {
    require_runtime!();
    let server = Server::start();
    let marker = support::unique("dangling");
    let stdout = stdout_of(
        &server,
        r#"query($image: String!, $marker: String!) { container { from(address: $image) {
            withExec(args: ["ln", "-s", "/nowhere/data", "/data"]) {
              withNewFile(path: "/data/f.txt", contents: $marker) {
                withExec(args: ["sh", "-c", "test -d /data && ! test -L /data && ! test -e /nowhere && cat /data/f.txt"]) {
                  stdout } } } } } }"#,
        json!({ "image": busybox(), "marker": marker }),
        "container.from.withExec.withNewFile.withExec",
    );
    assert_eq!(stdout, marker);
}
