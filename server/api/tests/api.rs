//! API tests through `schema.execute`, against `FakeRuntime`.

use std::sync::Arc;

use async_graphql::Request;
use gantry_api::ClientInfo;
use gantry_core::fake::FakeRuntime;
use gantry_core::store::MemoryStore;
use gantry_core::{Engine, EngineOptions};
use serde_json::{json, Value};

fn schema() -> (gantry_api::GantrySchema, Arc<FakeRuntime>) {
    let runtime = Arc::new(FakeRuntime::default());
    let engine = Engine::new(
        runtime.clone(),
        Arc::new(MemoryStore::default()),
        EngineOptions {
            max_parallel: 8,
            secret_key: [1; 32],
        },
    );
    (gantry_api::schema(Arc::new(engine)), runtime)
}

async fn run(schema: &gantry_api::GantrySchema, query: &str) -> Value {
    let request = Request::new(query).data(ClientInfo::new(Some(std::env::temp_dir())));
    serde_json::to_value(schema.execute(request).await).unwrap()
}

#[test]
fn schema_graphql_is_fresh() {
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema.graphql"))
            .unwrap_or_default();
    assert!(
        checked_in == gantry_api::sdl(),
        "schema.graphql is out of date with server/api: run `cargo xtask schema` and commit the result"
    );
}

#[tokio::test]
async fn exec_chain_returns_stdout() {
    let (schema, runtime) = schema();
    let out = run(
        &schema,
        r#"{ container { from(address: "127.0.0.1:5000/busybox") { withExec(args: ["echo", "hello"]) { stdout exitCode } } } }"#,
    )
    .await;
    assert_eq!(
        out["data"]["container"]["from"]["withExec"]["stdout"],
        "hello\n"
    );
    assert_eq!(out["data"]["container"]["from"]["withExec"]["exitCode"], 0);
    assert_eq!(runtime.execs(), 1, "two leaves of one node run it once");
}

#[tokio::test]
async fn ids_do_not_evaluate_and_round_trip() {
    let (schema, runtime) = schema();
    let out = run(
        &schema,
        r#"{ container { from(address: "x/busybox") { withExec(args: ["echo", "id"]) { id } } } }"#,
    )
    .await;
    let id = out["data"]["container"]["from"]["withExec"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(id.starts_with("Container:") && id.len() < 100, "{id}");
    assert_eq!(runtime.execs(), 0, "id must not evaluate");
    let loaded = run(
        &schema,
        &format!(r#"{{ loadContainerFromID(id: "{id}") {{ stdout }} }}"#),
    )
    .await;
    assert_eq!(loaded["data"]["loadContainerFromID"]["stdout"], "id\n");
    let node = run(
        &schema,
        &format!(r#"{{ node(id: "{id}") {{ ... on Container {{ stdout }} }} }}"#),
    )
    .await;
    assert_eq!(node["data"]["node"]["stdout"], "id\n");
}

#[tokio::test]
async fn exec_errors_carry_what_dagger_sdks_read() {
    let (schema, _) = schema();
    let out = run(
        &schema,
        r#"{ container { from(address: "x/busybox") { withExec(args: ["fail", "5"]) { stdout } } } }"#,
    )
    .await;
    let error = &out["errors"][0];
    assert!(error["message"].as_str().unwrap().ends_with("exit code: 5"));
    let ext = &error["extensions"];
    assert_eq!(ext["_type"], "EXEC_ERROR");
    assert_eq!(ext["exitCode"], 5);
    assert_eq!(ext["cmd"], json!(["fail", "5"]));
    assert_eq!(ext["stdout"], "");
    assert_eq!(ext["stderr"], "fake stderr\n");
}

#[tokio::test]
async fn bad_input_gets_named_errors() {
    let (schema, _) = schema();
    let unknown = run(
        &schema,
        r#"{ loadContainerFromID(id: "Container:00") { stdout } }"#,
    )
    .await;
    assert_eq!(unknown["errors"][0]["extensions"]["code"], "INVALID_ID");
    let wrong_kind = run(&schema, r#"{ directory { id } }"#).await;
    let dir_id = wrong_kind["data"]["directory"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mismatch = run(
        &schema,
        &format!(r#"{{ loadContainerFromID(id: "{dir_id}") {{ stdout }} }}"#),
    )
    .await;
    assert!(mismatch["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("Directory ID passed where a Container ID"));
    let missing_image = run(
        &schema,
        r#"{ container { from(address: "missing/image") { withExec(args: ["echo"]) { stdout } } } }"#,
    )
    .await;
    assert_eq!(
        missing_image["errors"][0]["extensions"]["code"],
        "IMAGE_NOT_FOUND"
    );
    let malformed = run(&schema, "{ container { ").await;
    assert!(malformed["errors"][0]["message"].as_str().is_some());
    let no_cmd = run(&schema, "{ container { stdout } }").await;
    assert_eq!(no_cmd["errors"][0]["message"], "no command has been set");
    // Still serving after all of that.
    let ok = run(&schema, "{ version }").await;
    assert_eq!(ok["data"]["version"], gantry_api::VERSION);
}

#[tokio::test]
async fn introspection_has_interfaces_legacy_ids_and_defaults() {
    let (schema, _) = schema();
    let out = run(
        &schema,
        r#"{
          node: __type(name: "Node") { kind possibleTypes { name } }
          cid: __type(name: "ContainerID") { kind }
          query: __type(name: "Query") { fields { name args { name type { name kind ofType { name } } } } }
          container: __type(name: "Container") { fields { name args { name defaultValue } } }
        }"#,
    )
    .await;
    assert_eq!(out["data"]["node"]["kind"], "INTERFACE");
    let possible: Vec<&str> = out["data"]["node"]["possibleTypes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for name in ["Container", "Directory", "File", "Secret", "CacheVolume"] {
        assert!(possible.contains(&name), "{name} must implement Node");
    }
    assert_eq!(out["data"]["cid"]["kind"], "SCALAR");
    let fields = out["data"]["query"]["fields"].as_array().unwrap();
    let load = fields
        .iter()
        .find(|f| f["name"] == "loadContainerFromID")
        .unwrap();
    assert_eq!(load["args"][0]["type"]["ofType"]["name"], "ContainerID");
    let container_fields = out["data"]["container"]["fields"].as_array().unwrap();
    let with_exec = container_fields
        .iter()
        .find(|f| f["name"] == "withExec")
        .unwrap();
    let expect = with_exec["args"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "expect")
        .unwrap();
    assert_eq!(expect["defaultValue"], "SUCCESS");
}

#[tokio::test]
async fn directories_and_files_work_without_containers() {
    let (schema, runtime) = schema();
    let out = run(
        &schema,
        r#"{ directory { withNewFile(path: "a/b.txt", contents: "one\ntwo\n") {
              entries glob(pattern: "**/*.txt") file(path: "a/b.txt") { contents size name }
              lines: file(path: "a/b.txt") { contents(offsetLines: 1) }
              withNewDirectory(path: "c") { entries }
            } } }"#,
    )
    .await;
    let dir = &out["data"]["directory"]["withNewFile"];
    assert_eq!(dir["entries"], json!(["a/"]));
    assert_eq!(dir["glob"], json!(["a/b.txt"]));
    assert_eq!(dir["file"]["contents"], "one\ntwo\n");
    assert_eq!(dir["file"]["size"], 8);
    assert_eq!(dir["file"]["name"], "b.txt");
    assert_eq!(dir["lines"]["contents"], "two\n");
    assert_eq!(dir["withNewDirectory"]["entries"], json!(["a/", "c/"]));
    assert_eq!(runtime.execs(), 0);
}

#[tokio::test]
async fn container_config_fields() {
    let (schema, _) = schema();
    let out = run(
        &schema,
        r#"{ container { from(address: "x/busybox") {
              withEnvVariable(name: "A", value: "1") { withWorkdir(path: "/src") { withUser(name: "nobody") {
                withEntrypoint(args: ["/bin/sh"]) { withLabel(name: "l", value: "v") {
                  envVariable(name: "A") workdir user entrypoint defaultArgs label(name: "l")
                  envVariables { name value }
                  withoutEnvVariable(name: "A") { envVariable(name: "A") }
                } } } } } } } }"#,
    )
    .await;
    let c = &out["data"]["container"]["from"]["withEnvVariable"]["withWorkdir"]["withUser"]
        ["withEntrypoint"]["withLabel"];
    assert_eq!(c["envVariable"], "1");
    assert_eq!(c["workdir"], "/src");
    assert_eq!(c["user"], "nobody");
    assert_eq!(c["entrypoint"], json!(["/bin/sh"]));
    assert_eq!(
        c["defaultArgs"],
        json!([]),
        "withEntrypoint clears default args"
    );
    assert_eq!(c["label"], "v");
    assert_eq!(
        c["envVariables"],
        json!([{"name": "PATH", "value": "/bin"}, {"name": "A", "value": "1"}])
    );
    assert_eq!(c["withoutEnvVariable"]["envVariable"], Value::Null);
}
