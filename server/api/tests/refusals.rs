//! Bad input gets a clear refusal, never a surprise: modes outside
//! 0..=0o7777, NUL bytes, huge arguments echoed back, bodies without a
//! query, relative host paths from a client that sent no working directory.
//! Through `schema.execute` and the router, against `FakeRuntime`.

use std::sync::Arc;

use async_graphql::Request;
use axum::body::Body;
use gantry_api::{Access, ClientInfo};
use gantry_core::fake::FakeRuntime;
use gantry_core::store::MemoryStore;
use gantry_core::{Engine, EngineOptions};
use serde_json::Value;
use tower::ServiceExt as _;

fn schema() -> gantry_api::GantrySchema {
    let engine = Engine::new(
        Arc::new(FakeRuntime::default()),
        Arc::new(MemoryStore::default()),
        EngineOptions {
            max_parallel: 8,
            secret_key: [1; 32],
        },
    );
    gantry_api::schema(Arc::new(engine))
}

async fn run_in(workdir: Option<std::path::PathBuf>, query: &str) -> Value {
    let request = Request::new(query).data(ClientInfo::new(workdir));
    serde_json::to_value(schema().execute(request).await).unwrap()
}

fn first_error(out: &Value) -> String {
    out["errors"][0]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error: {out}"))
        .to_owned()
}

#[tokio::test]
async fn modes_outside_0_to_0o7777_are_refused_and_special_bits_allowed() {
    for bad in [-1, 4096, 0o100_755] {
        let out = run_in(
            None,
            &format!(r#"{{ directory {{ withNewFile(path: "f", contents: "x", permissions: {bad}) {{ id }} }} }}"#),
        )
        .await;
        let message = first_error(&out);
        assert!(message.contains("permissions"), "{bad}: {message}");
    }
    // setuid, setgid and sticky bits are allowed (as in Dagger).
    let out = run_in(
        None,
        r#"{ directory { withNewFile(path: "f", contents: "x", permissions: 4095) { entries } } }"#,
    )
    .await;
    assert!(out["errors"].is_null(), "{out}");
}

#[tokio::test]
async fn nul_bytes_are_refused_and_long_arguments_are_not_echoed_whole() {
    let out = run_in(
        None,
        r#"{ directory { withNewFile(path: "a\u0000b", contents: "x") { entries } } }"#,
    )
    .await;
    assert!(first_error(&out).contains("NUL"), "{out}");
    let huge = "p".repeat(1 << 20);
    let out = run_in(
        None,
        &format!(r#"{{ directory {{ withNewFile(path: "{huge}\u0000", contents: "x") {{ entries }} }} }}"#),
    )
    .await;
    let message = first_error(&out);
    assert!(message.len() < 4096, "an error of {} bytes", message.len());
    assert!(
        message.contains(&format!("{} bytes", huge.len() + 1)),
        "{message}"
    );
    let out = run_in(
        None,
        r#"{ container { withEnvVariable(name: "A\u0000B", value: "v") { envVariables { name } } } }"#,
    )
    .await;
    assert!(first_error(&out).contains("NUL"), "{out}");
}

#[tokio::test]
async fn relative_host_paths_need_the_clients_working_directory() {
    let out = run_in(None, r#"{ host { directory(path: ".") { entries } } }"#).await;
    let message = first_error(&out);
    assert!(message.contains("X-Gantry-Workdir"), "{message}");
    // An absolute path needs none.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "a").unwrap();
    let out = run_in(
        None,
        &format!(
            r#"{{ host {{ directory(path: "{}") {{ entries }} }} }}"#,
            dir.path().display()
        ),
    )
    .await;
    assert_eq!(
        out["data"]["host"]["directory"]["entries"][0], "a.txt",
        "{out}"
    );
}

#[tokio::test]
async fn a_symlink_out_of_a_host_directory_is_kept_as_a_link() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dir.path().join("out")).unwrap();
    std::os::unix::fs::symlink("../../elsewhere", dir.path().join("up")).unwrap();
    let out = run_in(
        None,
        &format!(
            r#"{{ host {{ directory(path: "{}") {{ entries }} }} }}"#,
            dir.path().display()
        ),
    )
    .await;
    assert!(out["errors"].is_null(), "{out}");
    assert_eq!(
        out["data"]["host"]["directory"]["entries"],
        serde_json::json!(["out", "up"])
    );
}

async fn post(router: axum::Router, body: &str, workdir: Option<&str>) -> (u16, Value) {
    let mut request =
        axum::http::Request::post("/query").header("content-type", "application/json");
    if let Some(workdir) = workdir {
        request = request.header(gantry_api::env::WORKDIR_HEADER, workdir);
    }
    let response = router
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_router_refuses_bodies_without_a_query_and_bad_workdirs() {
    let router = || gantry_api::router(schema(), Access::Open, None);
    let (status, body) = post(router(), r#"{"variables": {}}"#, None).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("query"), "{body}");
    let (status, _) = post(
        router(),
        r#"{"query": "{ version }"}"#,
        Some("relative/dir"),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post(router(), r#"{"query": "{ version }"}"#, Some("/bad%zz")).await;
    assert_eq!(status, 400);
    // A percent-encoded directory (not ASCII) is where relative paths resolve.
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("caf\u{e9}");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("mine.txt"), "mine").unwrap();
    let encoded = gantry_api::env::encode_workdir(&dir);
    assert!(encoded.ends_with("/caf%C3%A9"), "{encoded}");
    let (status, body) = post(
        router(),
        r#"{"query": "{ host { directory(path: \".\") { entries } } }"}"#,
        Some(&encoded),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["host"]["directory"]["entries"][0], "mine.txt",
        "{body}"
    );
}

#[test]
fn a_leading_tilde_is_the_home_directory() {
    let client = ClientInfo::new(Some("/tmp".into()));
    let home = std::env::var("HOME").expect("tests run with HOME set");
    let home = std::path::Path::new(&home);
    assert_eq!(client.resolve("~/a/../b").unwrap(), home.join("b"));
    assert_eq!(client.resolve("~").unwrap(), home);
    // Only `~` alone or `~/`: `~user` and `a/~` are ordinary names.
    assert_eq!(
        client.resolve("~other").unwrap(),
        std::path::Path::new("/tmp/~other")
    );
    assert_eq!(
        client.resolve("a/~").unwrap(),
        std::path::Path::new("/tmp/a/~")
    );
}

#[tokio::test]
async fn every_response_names_the_engine_version_refusals_too() {
    let version = |response: &axum::response::Response| {
        response
            .headers()
            .get(gantry_api::env::VERSION_HEADER)
            .map(|value| value.to_str().unwrap().to_owned())
    };
    let request = |body: &str| {
        axum::http::Request::post("/query")
            .header("content-type", "application/json")
            .header(gantry_api::env::CLIENT_HEADER, "test/0.0.0")
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let open = gantry_api::router(schema(), Access::Open, None);
    let answered = open
        .clone()
        .oneshot(request(r#"{"query": "{ version }"}"#))
        .await
        .unwrap();
    assert_eq!(answered.status(), 200);
    assert_eq!(version(&answered).as_deref(), Some(gantry_api::VERSION));
    let refused = open.oneshot(request("{}")).await.unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(version(&refused).as_deref(), Some(gantry_api::VERSION));
    // Without the token: 401, and still the version (an SDK can say which
    // engine refused it).
    let guarded = gantry_api::router(schema(), Access::Token("secret".into()), None);
    let unauthorised = guarded
        .oneshot(request(r#"{"query": "{ version }"}"#))
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), 401);
    assert_eq!(version(&unauthorised).as_deref(), Some(gantry_api::VERSION));
}
