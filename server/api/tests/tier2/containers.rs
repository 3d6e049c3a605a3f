//! Container: combinedOutput, exists/stat on layers, withFiles, withSymlink,
//! withoutFile(s)/withoutDirectory, undo helpers, labels, annotations,
//! volatile variables, withError, env files.

use serde_json::json;

use super::{data, error, schema};

/// A scratch container whose filesystem is its layers (no image, so
/// `exists`, `stat` and reads need no runtime).
const LAYERED: &str = r##"container { withNewFile(path: "/app/run.sh", contents: "#!/bin/sh\n", permissions: 493) {
    withWorkdir(path: "/app") { withSymlink(target: "run.sh", linkName: "start") { FIELDS } } } }"##;

fn layered(fields: &str) -> String {
    format!("{{ {} }}", LAYERED.replace("FIELDS", fields))
}

#[tokio::test]
async fn layers_answer_exists_stat_and_removals() {
    let (schema, runtime) = schema();
    let out = data(
        &schema,
        &layered(
            r#"script: exists(path: "run.sh", expectedType: REGULAR_TYPE)
               link: exists(path: "/app/start", expectedType: SYMLINK_TYPE, doNotFollowSymlinks: true)
               through: exists(path: "start", expectedType: REGULAR_TYPE)
               dir: exists(path: "/app", expectedType: DIRECTORY_TYPE)
               missing: exists(path: "nope")
               stat(path: "start") { name size permissions fileType }
               withoutFile(path: "run.sh") { exists(path: "run.sh") kept: exists(path: "start", doNotFollowSymlinks: true) }
               withoutDirectory(path: "/app") { exists(path: "/app") }
               withoutFiles(paths: ["run.sh", "start"]) { directory(path: "/app") { entries } }"#,
        ),
    )
    .await;
    let c = &out["container"]["withNewFile"]["withWorkdir"]["withSymlink"];
    assert_eq!(
        [
            &c["script"],
            &c["link"],
            &c["through"],
            &c["dir"],
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
        json!({"name": "start", "size": 10, "permissions": 493, "fileType": "REGULAR"})
    );
    assert_eq!(c["withoutFile"], json!({"exists": false, "kept": true}));
    assert_eq!(c["withoutDirectory"]["exists"], false);
    assert_eq!(c["withoutFiles"]["directory"]["entries"], json!([]));
    assert_eq!(
        runtime.execs(),
        0,
        "a container without an image needs no runtime for any of it"
    );
    let (message, code) = error(&schema, &layered(r#"stat(path: "nope") { name }"#)).await;
    assert_eq!(
        (message.as_str(), code.as_str()),
        ("nope: no such file or directory", "NOT_FOUND")
    );
}

#[tokio::test]
async fn removing_from_an_image_runs_rm_once() {
    let (schema, runtime) = schema();
    let query = r#"{ container { from(address: "x/busybox") { withoutFile(path: "/etc/motd") { sync } } } }"#;
    data(&schema, query).await;
    assert_eq!(runtime.execs(), 1, "the image's copy is removed by one rm");
    data(&schema, query).await;
    data(
        &schema,
        r#"{ container { from(address: "x/busybox") { withoutFiles(paths: ["/etc/motd"]) { sync } } } }"#,
    )
    .await;
    assert_eq!(
        runtime.execs(),
        1,
        "the same removal from the same image is cached"
    );
    let (message, _) = error(
        &schema,
        r#"{ container { from(address: "x/busybox") { withoutDirectory(path: "/") { sync } } } }"#,
    )
    .await;
    assert!(
        message.contains("cannot remove the root directory"),
        "{message}"
    );
}

#[tokio::test]
async fn with_files_expand_and_symlinks() {
    let (schema, _) = schema();
    let ids = data(&schema, r#"{ a: file(name: "a.txt", contents: "A") { id } b: file(name: "b.txt", contents: "B") { id } }"#).await;
    let (a, b) = (
        ids["a"]["id"].as_str().unwrap(),
        ids["b"]["id"].as_str().unwrap(),
    );
    let out = data(
        &schema,
        &format!(
            r#"{{ container {{ withEnvVariable(name: "DEST", value: "/srv") {{
                 withFiles(path: "$DEST/data", sources: ["{a}", "{b}"], permissions: 384, expand: true) {{
                   directory(path: "/srv/data") {{ entries }}
                   stat(path: "/srv/data/a.txt") {{ permissions }}
                   withSymlink(target: "$DEST/data/b.txt", linkName: "/b", expand: true) {{
                     exists(path: "/b", expectedType: REGULAR_TYPE) stat(path: "/b", doNotFollowSymlinks: true) {{ size fileType }}
                   }}
                   literal: exists(path: "$DEST", expand: false)
                   expanded: exists(path: "$DEST", expand: true)
                 }} }} }} }}"#
        ),
    )
    .await;
    let c = &out["container"]["withEnvVariable"]["withFiles"];
    assert_eq!(c["directory"]["entries"], json!(["a.txt", "b.txt"]));
    assert_eq!(c["stat"]["permissions"], 384);
    assert_eq!(c["literal"], false);
    assert_eq!(c["expanded"], true);
    let link = &c["withSymlink"];
    assert_eq!(link["exists"], true, "the link resolves to the copied file");
    assert_eq!(
        link["stat"],
        json!({"size": 15, "fileType": "SYMLINK"}),
        "the target was expanded to /srv/data/b.txt"
    );
}

#[tokio::test]
async fn undo_helpers_labels_and_annotations() {
    let (schema, _) = schema();
    let out = data(
        &schema,
        r#"{ container { from(address: "x/busybox") {
             withUser(name: "nobody") { withWorkdir(path: "/src") { withEntrypoint(args: ["sh"]) {
             withDefaultArgs(args: ["-c", "true"]) { withLabel(name: "b", value: "2") { withLabel(name: "a", value: "1") {
               labels { name value }
               withoutLabel(name: "a") { labels { name } label(name: "a") }
               withoutUser { user } withoutWorkdir { workdir }
               withoutEntrypoint { entrypoint defaultArgs }
               kept: withoutEntrypoint(keepDefaultArgs: true) { entrypoint defaultArgs }
               withoutDefaultArgs { defaultArgs entrypoint }
             } } } } } } } } }"#,
    )
    .await;
    let c = &out["container"]["from"]["withUser"]["withWorkdir"]["withEntrypoint"]
        ["withDefaultArgs"]["withLabel"]["withLabel"];
    assert_eq!(
        c["labels"],
        json!([{"name": "a", "value": "1"}, {"name": "b", "value": "2"}])
    );
    assert_eq!(
        c["withoutLabel"],
        json!({"labels": [{"name": "b"}], "label": null})
    );
    assert_eq!(c["withoutUser"]["user"], "");
    assert_eq!(c["withoutWorkdir"]["workdir"], "");
    assert_eq!(
        c["withoutEntrypoint"],
        json!({"entrypoint": [], "defaultArgs": []})
    );
    assert_eq!(
        c["kept"],
        json!({"entrypoint": [], "defaultArgs": ["-c", "true"]})
    );
    assert_eq!(
        c["withoutDefaultArgs"],
        json!({"defaultArgs": [], "entrypoint": ["sh"]})
    );
    let label_ids = data(
        &schema,
        r#"{ container { withLabel(name: "k", value: "v") { labels { id } } } }"#,
    )
    .await;
    let id = label_ids["container"]["withLabel"]["labels"][0]["id"]
        .as_str()
        .unwrap();
    let loaded = data(&schema, &format!(r#"{{ loadLabelFromID(id: "{id}") {{ name value }} node(id: "{id}") {{ ... on Label {{ value }} }} }}"#)).await;
    assert_eq!(
        loaded["loadLabelFromID"],
        json!({"name": "k", "value": "v"})
    );
    assert_eq!(loaded["node"]["value"], "v");
    let (message, code) = error(
        &schema,
        r#"{ container { from(address: "x/busybox") { withAnnotation(name: "org.example", value: "x") { publish(address: "127.0.0.1:5000/app") } } } }"#,
    )
    .await;
    assert_eq!(code, "UNSUPPORTED");
    assert!(message.contains("withoutAnnotation"), "{message}");
    // Once removed, annotations no longer refuse the image. (The fake
    // runtime saves no real image, so asTarball's OCI layout cannot be
    // written here: only the refusal is checked.)
    let out = crate::run(
        &schema,
        r#"{ container { from(address: "x/busybox") { withAnnotation(name: "a", value: "x") { withoutAnnotation(name: "a") { asTarball { size } } } } } }"#,
    )
    .await;
    let message = out["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(!message.contains("annotations"), "{message}");
}

#[tokio::test]
async fn volatile_variables_reach_execs_but_not_cache_keys() {
    let (schema, runtime) = schema();
    let run_with = |value: &str| {
        format!(
            r#"{{ container {{ from(address: "x/busybox") {{ withVolatileVariable(name: "RUN_ID", value: "{value}") {{
                 withExec(args: ["printenv"]) {{ stdout envVariables {{ name }} }} }} }} }} }}"#
        )
    };
    let first = data(&schema, &run_with("one")).await;
    let exec = &first["container"]["from"]["withVolatileVariable"]["withExec"];
    assert!(
        exec["stdout"].as_str().unwrap().contains("RUN_ID=one"),
        "{exec}"
    );
    assert_eq!(
        exec["envVariables"],
        json!([{"name": "PATH"}]),
        "not part of the image configuration"
    );
    let second = data(&schema, &run_with("two")).await;
    assert_eq!(
        runtime.execs(),
        1,
        "another value alone does not re-run a cached exec"
    );
    assert!(
        second["container"]["from"]["withVolatileVariable"]["withExec"]["stdout"]
            .as_str()
            .unwrap()
            .contains("RUN_ID=one")
    );
    let fresh = data(
        &schema,
        r#"{ container { from(address: "x/busybox") { withVolatileVariable(name: "RUN_ID", value: "three") {
             withExec(args: ["printenv", "again"]) { stdout } withoutVolatileVariable(name: "RUN_ID") { withExec(args: ["printenv", "x"]) { stdout } } } } } }"#,
    )
    .await;
    let v = &fresh["container"]["from"]["withVolatileVariable"];
    assert!(v["withExec"]["stdout"]
        .as_str()
        .unwrap()
        .contains("RUN_ID=three"));
    assert!(!v["withoutVolatileVariable"]["withExec"]["stdout"]
        .as_str()
        .unwrap()
        .contains("RUN_ID"));
}

#[tokio::test]
async fn combined_output_secret_variables_and_errors() {
    let (schema, _) = schema();
    let out = data(&schema, r#"{ container { from(address: "x/busybox") { withExec(args: ["echo", "hi"]) { combinedOutput } } } }"#).await;
    assert_eq!(
        out["container"]["from"]["withExec"]["combinedOutput"],
        "hi\nfake stderr\n"
    );
    let secret = data(
        &schema,
        r#"{ setSecret(name: "t", plaintext: "s3cret") { id } }"#,
    )
    .await;
    let secret = secret["setSecret"]["id"].as_str().unwrap();
    let out = data(
        &schema,
        &format!(
            r#"{{ container {{ from(address: "x/busybox") {{ withEnvVariable(name: "T", value: "plain") {{
                 withSecretVariable(name: "T", secret: "{secret}") {{ withoutSecretVariable(name: "T") {{
                   envVariable(name: "T") withExec(args: ["printenv"]) {{ stdout }} }} }} }} }} }} }}"#
        ),
    )
    .await;
    let c =
        &out["container"]["from"]["withEnvVariable"]["withSecretVariable"]["withoutSecretVariable"];
    assert_eq!(c["envVariable"], "plain", "the plain variable stays");
    assert!(c["withExec"]["stdout"]
        .as_str()
        .unwrap()
        .contains("T=plain"));
    let (message, code) = error(
        &schema,
        r#"{ container { withError(err: "it broke") { sync } } }"#,
    )
    .await;
    assert_eq!((message.as_str(), code.as_str()), ("it broke", "RAISED"));
    let out = data(
        &schema,
        r#"{ container { withError(err: "") { workdir } } }"#,
    )
    .await;
    assert_eq!(out["container"]["withError"]["workdir"], "");
    let (message, _) = error(&schema, r#"{ container { stdout } }"#).await;
    assert_eq!(message, "no command has been set");
}

#[tokio::test]
async fn host_container_images_need_a_runtime_with_an_image_store() {
    let (schema, _) = schema();
    let (message, code) = error(
        &schema,
        r#"{ host { containerImage(name: "app:latest") { sync } } }"#,
    )
    .await;
    assert_eq!(code, "IMAGE_NOT_FOUND");
    assert!(message.contains("no host image store"), "{message}");
    let (message, _) = error(
        &schema,
        r#"{ host { containerImage(name: " ") { sync } } }"#,
    )
    .await;
    assert!(message.contains("name must not be empty"), "{message}");
}
