//! Plain-data objects and root fields: Query.error/address/defaultPlatform,
//! Host.findUp, Syncer/Exportable, and IDs of the wrong kind.

use serde_json::json;

use super::{data, error, run_in, schema};

#[tokio::test]
async fn errors_carry_values_and_load_from_their_ids() {
    let (schema, _) = schema();
    let out = data(
        &schema,
        r#"{ error(message: "deploy failed") { withValue(name: "code", value: "42") { withValue(name: "where", value: "\"eu\"") {
             message values { name value id } id } } } }"#,
    )
    .await;
    let e = &out["error"]["withValue"]["withValue"];
    assert_eq!(e["message"], "deploy failed");
    assert_eq!(e["values"][1]["name"], "where");
    assert_eq!(e["values"][1]["value"], "\"eu\"");
    let id = e["id"].as_str().unwrap();
    let value_id = e["values"][0]["id"].as_str().unwrap();
    let loaded = data(
        &schema,
        &format!(r#"{{ loadErrorFromID(id: "{id}") {{ message }} loadErrorValueFromID(id: "{value_id}") {{ value }} }}"#),
    )
    .await;
    assert_eq!(
        loaded,
        json!({"loadErrorFromID": {"message": "deploy failed"}, "loadErrorValueFromID": {"value": "42"}})
    );
    let (message, _) = error(
        &schema,
        r#"{ error(message: "x") { withValue(name: "v", value: "{") { message } } }"#,
    )
    .await;
    assert!(message.contains("invalid JSON"), "{message}");
    let (message, code) = error(&schema, r#"{ loadLabelFromID(id: "Label:%%%") { name } }"#).await;
    assert_eq!(code, "INVALID_ID", "{message}");
    let (message, code) = error(
        &schema,
        &format!(r#"{{ loadStatFromID(id: "{id}") {{ name }} }}"#),
    )
    .await;
    assert_eq!(code, "INVALID_ID");
    assert!(
        message.contains("Error ID passed where a Stat ID is expected"),
        "{message}"
    );
}

#[tokio::test]
async fn addresses_load_host_paths_images_and_secrets() {
    let (schema, _) = schema();
    let host = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(host.path().join("src")).unwrap();
    std::fs::write(host.path().join("src/main.go"), "package main\n").unwrap();
    std::fs::write(host.path().join("token"), "t0ken").unwrap();
    let out = run_in(
        &schema,
        host.path().to_owned(),
        r#"{ dir: address(value: "src") { value directory { entries } }
             file: address(value: "file://src/main.go") { file { contents } }
             secret: address(value: "file://token") { secret { plaintext } }
             image: address(value: "127.0.0.1:5000/busybox") { container { imageRef } }
             defaultPlatform }"#,
    )
    .await;
    assert!(out["errors"].is_null(), "{out}");
    let d = &out["data"];
    assert_eq!(
        d["dir"],
        json!({"value": "src", "directory": {"entries": ["main.go"]}})
    );
    assert_eq!(d["file"]["file"]["contents"], "package main\n");
    assert_eq!(d["secret"]["secret"]["plaintext"], "t0ken");
    assert!(d["image"]["container"]["imageRef"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:5000/busybox@sha256:"));
    assert!(d["defaultPlatform"].as_str().unwrap().starts_with("linux/"));
    let (message, _) = error(&schema, r#"{ address(value: "") { value } }"#).await;
    assert!(message.contains("empty address"), "{message}");
    // A Git address loads through Query.git (tests/it/git.rs); a file needs
    // its path in the repository.
    let (message, code) = error(
        &schema,
        r#"{ address(value: "https://example.com/repo.git#main") { file { contents } } }"#,
    )
    .await;
    assert_eq!(code, "INVALID_ARGUMENT", "{message}");
    assert!(message.contains("URL#REF:PATH"), "{message}");
}

#[tokio::test]
async fn host_find_up_answers_relative_to_the_workdir() {
    let (schema, _) = schema();
    let host = tempfile::tempdir().unwrap();
    let start = host.path().join("a/b");
    std::fs::create_dir_all(&start).unwrap();
    std::fs::write(host.path().join("a/target.txt"), "t").unwrap();
    std::fs::write(start.join("here.txt"), "h").unwrap();
    let out = run_in(
        &schema,
        start,
        r#"{ host { here: findUp(name: "here.txt") up: findUp(name: "target.txt") none: findUp(name: "no-such-file-anywhere.gantry") } }"#,
    )
    .await;
    assert_eq!(
        out["data"]["host"],
        json!({"here": "here.txt", "up": "../target.txt", "none": null})
    );
}

#[tokio::test]
async fn syncer_and_exportable_load_any_implementer() {
    let (schema, _) = schema();
    let dir = data(
        &schema,
        r#"{ directory { withNewFile(path: "a", contents: "x") { id } } }"#,
    )
    .await;
    let dir = dir["directory"]["withNewFile"]["id"].as_str().unwrap();
    let host = tempfile::tempdir().unwrap();
    let out = run_in(
        &schema,
        host.path().to_owned(),
        &format!(
            r#"{{ loadSyncerFromID(id: "{dir}") {{ id sync ... on Directory {{ entries }} }}
               loadExportableFromID(id: "{dir}") {{ export(path: "out") }} }}"#
        ),
    )
    .await;
    assert!(out["errors"].is_null(), "{out}");
    assert_eq!(out["data"]["loadSyncerFromID"]["entries"], json!(["a"]));
    assert_eq!(out["data"]["loadSyncerFromID"]["sync"], dir);
    assert_eq!(
        std::fs::read_to_string(host.path().join("out/a")).unwrap(),
        "x"
    );
    let secret = data(
        &schema,
        r#"{ setSecret(name: "s", plaintext: "v") { id } }"#,
    )
    .await;
    let secret = secret["setSecret"]["id"].as_str().unwrap();
    let (message, code) = error(
        &schema,
        &format!(r#"{{ loadSyncerFromID(id: "{secret}") {{ id }} }}"#),
    )
    .await;
    assert_eq!(code, "INVALID_ID");
    assert!(
        message.contains("Secret ID passed where a Syncer ID is expected"),
        "{message}"
    );
}
