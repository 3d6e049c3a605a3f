//! Directory: name, exists, stat, findUp, symlinks, filter, withFiles,
//! withoutFiles, search, withError.

use serde_json::json;

use super::{data, error, schema};

const TREE: &str = r#"directory {
    withNewFile(path: "quotes/descartes", contents: "Cogito, ergo sum\n", permissions: 292) {
    withSymlink(target: "quotes/descartes", linkName: "i-am") {
    withSymlink(target: "quotes/none", linkName: "nothing") {
    withSymlink(target: "/quotes", linkName: "abs") {
    withNewDirectory(path: "a/b/c", permissions: 488) {
      FIELDS
    } } } } } }"#;

fn tree(fields: &str) -> String {
    format!("{{ {} }}", TREE.replace("FIELDS", fields))
}

fn at<'a>(value: &'a serde_json::Value, path: &[&str]) -> &'a serde_json::Value {
    path.iter().fold(value, |v, key| &v[*key])
}

const CHAIN: &[&str] = &[
    "directory",
    "withNewFile",
    "withSymlink",
    "withSymlink",
    "withSymlink",
    "withNewDirectory",
];

#[tokio::test]
async fn exists_and_stat_follow_symlinks_inside_the_directory() {
    let (schema, runtime) = schema();
    let out = data(
        &schema,
        &tree(
            r#"dir: exists(path: "quotes", expectedType: DIRECTORY_TYPE)
               notFile: exists(path: "quotes", expectedType: REGULAR_TYPE)
               link: exists(path: "i-am", expectedType: REGULAR_TYPE)
               linkItself: exists(path: "i-am", expectedType: SYMLINK_TYPE, doNotFollowSymlinks: true)
               linkFollowed: exists(path: "i-am", expectedType: SYMLINK_TYPE)
               fileNotLink: exists(path: "quotes/descartes", expectedType: SYMLINK_TYPE)
               dangling: exists(path: "nothing")
               danglingLink: exists(path: "nothing", doNotFollowSymlinks: true)
               absolute: exists(path: "abs/descartes", expectedType: REGULAR_TYPE)
               stat(path: "i-am") { name size permissions fileType }
               linkStat: stat(path: "i-am", doNotFollowSymlinks: true) { fileType size }
               dirStat: stat(path: "a/b") { name size permissions fileType }"#,
        ),
    )
    .await;
    let d = at(&out, CHAIN);
    assert_eq!(
        [
            &d["dir"],
            &d["notFile"],
            &d["link"],
            &d["linkItself"],
            &d["linkFollowed"],
            &d["fileNotLink"],
            &d["dangling"],
            &d["danglingLink"],
            &d["absolute"]
        ],
        [
            &json!(true),
            &json!(false),
            &json!(true),
            &json!(true),
            &json!(true),
            &json!(false),
            &json!(false),
            &json!(true),
            &json!(true)
        ]
    );
    assert_eq!(
        d["stat"],
        json!({"name": "i-am", "size": 17, "permissions": 292, "fileType": "REGULAR"})
    );
    assert_eq!(d["linkStat"], json!({"fileType": "SYMLINK", "size": 16}));
    assert_eq!(
        d["dirStat"],
        json!({"name": "b", "size": 4096, "permissions": 493, "fileType": "DIRECTORY"})
    );
    assert_eq!(runtime.execs(), 0);
    let (message, code) = error(&schema, &tree(r#"stat(path: "missing") { name }"#)).await;
    assert_eq!(
        (message.as_str(), code.as_str()),
        ("missing: no such file or directory", "NOT_FOUND")
    );
    let (message, _) = error(
        &schema,
        &tree(r#"withSymlink(target: "x", linkName: "i-am") { entries }"#),
    )
    .await;
    assert!(message.contains("i-am already exists"), "{message}");
}

#[tokio::test]
async fn names_come_from_the_path_a_directory_was_taken_from() {
    let (schema, _) = schema();
    let out = data(
        &schema,
        &tree(
            r#"name
               nested: directory(path: "a/b") { name withNewFile(path: "x", contents: "") { name } }
               up: findUp(name: "quotes", start: "a/b/c")
               none: findUp(name: "absent", start: "a/b")"#,
        ),
    )
    .await;
    let d = at(&out, CHAIN);
    assert_eq!(d["name"], "/");
    assert_eq!(d["nested"]["name"], "b/");
    assert_eq!(
        d["nested"]["withNewFile"]["name"], "b/",
        "edits keep the name"
    );
    assert_eq!(d["up"], "quotes");
    assert_eq!(d["none"], serde_json::Value::Null);
    let (message, _) = error(
        &schema,
        r#"{ directory { directory(path: "foo") { name } } }"#,
    )
    .await;
    assert!(
        message.contains("foo: no such file or directory"),
        "{message}"
    );
}

#[tokio::test]
async fn filter_files_and_removals() {
    let (schema, _) = schema();
    let out = data(
        &schema,
        r#"{ directory {
             withNewFile(path: ".gitignore", contents: "*.log\nbuild/\n") {
             withNewFile(path: "app.log", contents: "x") {
             withNewFile(path: "build/out", contents: "x") {
             withNewFile(path: "src/main.go", contents: "package main") {
               ignored: filter(gitignore: true) { glob(pattern: "**") }
               included: filter(include: ["src/**"]) { glob(pattern: "**") }
               excluded: filter(exclude: ["*.log", "build"]) { entries }
               withoutFiles(paths: ["app.log", "src/main.go", "not-there"]) { glob(pattern: "**") }
             } } } } } }"#,
    )
    .await;
    let d = at(
        &out,
        &[
            "directory",
            "withNewFile",
            "withNewFile",
            "withNewFile",
            "withNewFile",
        ],
    );
    assert_eq!(
        d["ignored"]["glob"],
        json!([".gitignore", "src/", "src/main.go"])
    );
    assert_eq!(d["included"]["glob"], json!(["src/", "src/main.go"]));
    assert_eq!(d["excluded"]["entries"], json!([".gitignore", "src/"]));
    assert_eq!(
        d["withoutFiles"]["glob"],
        json!([".gitignore", "build/", "build/out", "src/"])
    );
}

#[tokio::test]
async fn with_files_places_each_file_by_name() {
    let (schema, _) = schema();
    let ids = data(
        &schema,
        r#"{ a: file(name: "a.txt", contents: "A") { id } b: file(name: "b.sh", contents: "B", permissions: 493) { id } }"#,
    )
    .await;
    let (a, b) = (
        ids["a"]["id"].as_str().unwrap(),
        ids["b"]["id"].as_str().unwrap(),
    );
    let out = data(
        &schema,
        &format!(
            r#"{{ directory {{ withFiles(path: "bin", sources: ["{a}", "{b}"]) {{
                   glob(pattern: "**") sh: file(path: "bin/b.sh") {{ contents stat {{ permissions }} }} }}
                 fixed: withFiles(path: ".", sources: ["{a}"], permissions: 384) {{ stat(path: "a.txt") {{ permissions }} }} }} }}"#
        ),
    )
    .await;
    let d = &out["directory"];
    assert_eq!(
        d["withFiles"]["glob"],
        json!(["bin/", "bin/a.txt", "bin/b.sh"])
    );
    assert_eq!(
        d["withFiles"]["sh"],
        json!({"contents": "B", "stat": {"permissions": 493}})
    );
    assert_eq!(d["fixed"]["stat"]["permissions"], 384);
    let (message, code) = error(
        &schema,
        &format!(
            r#"{{ directory {{ withFiles(path: ".", sources: ["{}"]) {{ entries }} }} }}"#,
            "Directory:00"
        ),
    )
    .await;
    assert_eq!(code, "INVALID_ID", "{message}");
}

#[tokio::test]
async fn search_reports_lines_and_offsets() {
    let (schema, _) = schema();
    let out = data(
        &schema,
        r#"{ directory {
             withNewFile(path: "a.txt", contents: "alpha\nbeta alpha\n") {
             withNewFile(path: ".hidden/b.txt", contents: "alpha\n") {
             withNewFile(path: "c.md", contents: "ALPHA\n") {
               all: search(pattern: "alpha") { filePath lineNumber absoluteOffset matchedLines submatches { text start end } }
               visible: search(pattern: "alpha", skipHidden: true, insensitive: true) { filePath }
               files: search(pattern: "a.p", filesOnly: true, globs: ["*.txt"]) { filePath }
               limited: search(pattern: "alpha", limit: 1, paths: ["a.txt"]) { lineNumber }
               file(path: "a.txt") { search(pattern: "be+ta") { lineNumber matchedLines } }
             } } } } }"#,
    )
    .await;
    let d = at(
        &out,
        &["directory", "withNewFile", "withNewFile", "withNewFile"],
    );
    let all = d["all"].as_array().unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0]["filePath"], ".hidden/b.txt");
    assert_eq!(
        all[2],
        json!({"filePath": "a.txt", "lineNumber": 2, "absoluteOffset": 6, "matchedLines": "beta alpha\n",
               "submatches": [{"text": "alpha", "start": 5, "end": 10}]})
    );
    assert_eq!(
        d["visible"],
        json!([{"filePath": "a.txt"}, {"filePath": "a.txt"}, {"filePath": "c.md"}])
    );
    assert_eq!(
        d["files"],
        json!([{"filePath": ".hidden/b.txt"}, {"filePath": "a.txt"}])
    );
    assert_eq!(d["limited"], json!([{"lineNumber": 1}]));
    assert_eq!(
        d["file"]["search"],
        json!([{"lineNumber": 2, "matchedLines": "beta alpha\n"}])
    );
    let (message, code) = error(
        &schema,
        r#"{ directory { search(pattern: "(") { filePath } } }"#,
    )
    .await;
    assert_eq!(code, "INVALID_ARGUMENT");
    assert!(message.contains("invalid pattern"), "{message}");
}

#[tokio::test]
async fn with_error_fails_where_the_directory_is_used() {
    let (schema, _) = schema();
    let (message, code) = error(
        &schema,
        r#"{ directory { withError(err: "boom") { entries } } }"#,
    )
    .await;
    assert_eq!((message.as_str(), code.as_str()), ("boom", "RAISED"));
    let out = data(
        &schema,
        r#"{ directory { withError(err: "") { entries } } }"#,
    )
    .await;
    assert_eq!(out["directory"]["withError"]["entries"], json!([]));
}

#[tokio::test]
async fn removals_take_glob_patterns_within_one_level() {
    let (schema, _) = schema();
    let out = data(
        &schema,
        r#"{ directory {
             withNewFile(path: "b/foo.txt", contents: "x") {
             withNewFile(path: "b/data.json", contents: "x") {
             withNewFile(path: "b/deep/bar.txt", contents: "x") {
             withNewFile(path: "a1/f", contents: "x") {
             withNewFile(path: "b1/f", contents: "x") {
               file: withoutFile(path: "b/*.txt") { glob(pattern: "b/**") }
               dirs: withoutDirectory(path: "a*") { entries }
               files: withoutFiles(paths: ["b/*.json", "b/d?ep"]) { glob(pattern: "b/**") }
               literal: withoutFile(path: "b/data.json") { glob(pattern: "b/*") }
             } } } } } } }"#,
    )
    .await;
    let d = at(
        &out,
        &[
            "directory",
            "withNewFile",
            "withNewFile",
            "withNewFile",
            "withNewFile",
            "withNewFile",
        ],
    );
    // `*` stays within one level: b/deep/bar.txt is kept.
    assert_eq!(
        d["file"]["glob"],
        json!(["b/data.json", "b/deep/", "b/deep/bar.txt"])
    );
    assert_eq!(d["dirs"]["entries"], json!(["b/", "b1/"]));
    assert_eq!(d["files"]["glob"], json!(["b/foo.txt"]));
    assert_eq!(d["literal"]["glob"], json!(["b/deep/", "b/foo.txt"]));
}

#[tokio::test]
async fn names_are_checked_where_they_are_made() {
    let (schema, _) = schema();
    let long = "n".repeat(256);
    let (message, _) = error(
        &schema,
        &format!(r#"{{ directory {{ withNewFile(path: "dir/{long}.txt", contents: "x") {{ entries }} }} }}"#),
    )
    .await;
    assert!(
        message.contains("File name length exceeds the maximum supported 255 characters"),
        "{message}"
    );
    assert!(
        !message.contains(&long),
        "the whole name is not echoed: {message}"
    );
    let ok = "n".repeat(255);
    data(
        &schema,
        &format!(r#"{{ directory {{ withNewFile(path: "{ok}", contents: "x") {{ entries }} }} }}"#),
    )
    .await;
    let (message, _) = error(
        &schema,
        r#"{ file(name: "dir/some-file", contents: "x") { contents } }"#,
    )
    .await;
    assert!(
        message.contains("must not contain a directory"),
        "{message}"
    );
    let (message, _) = error(
        &schema,
        r#"{ directory { withNewDirectory(path: "b") { directory(path: "b") { withNewDirectory(path: "../c") { entries } } } } }"#,
    )
    .await;
    assert!(
        message.contains("cannot create directory outside parent"),
        "{message}"
    );
}

/// Dagger's values for the same directories and file (Dagger v0.21.8 returns
/// them): a pipeline comparing digests gets the same answer here.
#[tokio::test]
async fn digests_are_the_ones_dagger_computes() {
    let (schema, _) = schema();
    let out = data(
        &schema,
        r#"{ scratch: directory { digest }
             one: directory { withNewFile(path: "/foo.txt", contents: "Hello, World!") {
               digest
               file(path: "foo.txt") { digest contents: digest(excludeMetadata: true) } } }
             open: directory { withNewFile(path: "foo.txt", contents: "Hello, World!", permissions: 511) {
               file(path: "foo.txt") { digest contents: digest(excludeMetadata: true) } } } }"#,
    )
    .await;
    assert_eq!(
        out["scratch"]["digest"],
        "sha256:0e5db88383bce812f795689f5318a2b2f4fde740ef31c2a2365a46368aafddd2"
    );
    let one = &out["one"]["withNewFile"];
    assert_eq!(
        one["digest"],
        "sha256:48ac4b4b73af8a75a3c77e9dc6211d89321c6ed4f13c6987c6837ac58645bd89"
    );
    assert_eq!(
        one["file"]["digest"],
        "sha256:8a887cdd3e476c79e1a14a65a6c401673b56071a24561dadb5e152605e72a613"
    );
    let contents = "sha256:042a7d64a581ef2ee983f21058801cc35663b705e6c55f62fa8e0f18ecc70989";
    assert_eq!(one["file"]["contents"], contents);
    let open = &out["open"]["withNewFile"]["file"];
    assert_ne!(open["digest"], one["file"]["digest"]);
    assert_eq!(open["contents"], contents);
}

/// `Directory.file` follows a symlink inside the directory (as Dagger does),
/// in the last component and in the middle; the file keeps the link's name.
#[tokio::test]
async fn file_follows_symlinks_inside_the_directory() {
    let (schema, _) = schema();
    let out = data(
        &schema,
        &tree(
            r#"link: file(path: "i-am") { name contents }
               through: file(path: "abs/descartes") { name contents }"#,
        ),
    )
    .await;
    let d = at(&out, CHAIN);
    assert_eq!(
        d["link"],
        json!({"name": "i-am", "contents": "Cogito, ergo sum\n"})
    );
    assert_eq!(
        d["through"],
        json!({"name": "descartes", "contents": "Cogito, ergo sum\n"})
    );
    let (message, code) = error(&schema, &tree(r#"file(path: "nothing") { contents }"#)).await;
    assert!(message.contains("nothing"), "{message} ({code})");
}
