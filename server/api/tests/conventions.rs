//! The conventions every field follows (docs/compatibility.md): optional
//! arguments are nullable and `null` means their default; object arguments
//! are IDs typed with `@expectedType`, and the engine refuses an ID of
//! another type; an option gantry does not implement is refused by name,
//! never accepted and ignored.

use std::sync::Arc;

use async_graphql::parser::types::{BaseType, TypeKind, TypeSystemDefinition};
use async_graphql::Request;
use gantry_api::ClientInfo;
use gantry_core::fake::FakeRuntime;
use gantry_core::store::MemoryStore;
use gantry_core::{Engine, EngineOptions};
use serde_json::Value;

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

fn error_of(out: &Value) -> String {
    out["errors"][0]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error: {out}"))
        .to_owned()
}

/// Every argument with a default is nullable (`Boolean = false`, never
/// `Boolean! = false`), and every ID argument names its object type.
#[test]
fn the_schema_follows_the_argument_conventions() {
    let document = async_graphql::parser::parse_schema(gantry_api::sdl()).unwrap();
    let mut checked = 0;
    let mut broken = Vec::new();
    for definition in &document.definitions {
        let TypeSystemDefinition::Type(ty) = definition else {
            continue;
        };
        let TypeKind::Object(object) = &ty.node.kind else {
            continue;
        };
        for field in &object.fields {
            for arg in &field.node.arguments {
                let arg = &arg.node;
                let place = format!(
                    "{}.{}({})",
                    ty.node.name.node, field.node.name.node, arg.name.node
                );
                checked += 1;
                if arg.default_value.is_some() && !arg.ty.node.nullable {
                    broken.push(format!("{place}: non-null with a default"));
                }
                let mut base = &arg.ty.node.base;
                while let BaseType::List(inner) = base {
                    base = &inner.base;
                }
                let is_id = matches!(base, BaseType::Named(name) if name.as_str() == "ID");
                let typed = arg
                    .directives
                    .iter()
                    .any(|d| d.node.name.node == "expectedType");
                // Only `node(id:)` takes any object. Arguments gantry refuses
                // when given (`sshAuthSocket`, `ssh`) are
                // typed too: the SDKs generated from the schema type their
                // parameters as Dagger's do.
                let open = field.node.name.node == "node";
                if is_id && !typed && !open {
                    broken.push(format!("{place}: an ID without @expectedType"));
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} arguments found");
    assert!(broken.is_empty(), "{broken:#?}");
}

#[tokio::test]
async fn an_explicit_null_means_the_default() {
    let (schema, runtime) = schema();
    let out = run(
        &schema,
        r#"{ container { from(address: "x/busybox") {
              withExec(args: ["echo", "hi"], useEntrypoint: null, stdin: null, expect: null, expand: null, redirectStdout: null) {
                stdout
              } } }
            scratch: container {
              withNewFile(path: "/f", contents: "x", permissions: null, owner: null, inheritOwner: null) {
                file(path: "/f") { digest(excludeMetadata: null) }
              }
              plain: withNewFile(path: "/f", contents: "x") { file(path: "/f") { digest } }
            } }"#,
    )
    .await;
    assert!(out.get("errors").is_none(), "{out}");
    assert_eq!(
        out["data"]["container"]["from"]["withExec"]["stdout"],
        "hi\n"
    );
    // `permissions: null` gave the default mode, so the file is the same.
    let scratch = &out["data"]["scratch"];
    assert_eq!(
        scratch["withNewFile"]["file"]["digest"],
        scratch["plain"]["file"]["digest"]
    );
    assert_eq!(runtime.execs(), 1);
}

#[tokio::test]
async fn an_id_of_another_type_is_refused_naming_the_argument() {
    let (schema, _) = schema();
    let ids = run(
        &schema,
        r#"{ cacheVolume(key: "c") { id } container { id } }"#,
    )
    .await;
    let cache = ids["data"]["cacheVolume"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let container = ids["data"]["container"]["id"].as_str().unwrap().to_owned();
    let out = run(
        &schema,
        &format!(
            r#"{{ container {{ withMountedSecret(path: "/s", source: "{cache}") {{ id }} }} }}"#
        ),
    )
    .await;
    let message = error_of(&out);
    assert!(
        message.contains("argument source: CacheVolume ID passed where a Secret ID is expected"),
        "{message}"
    );
    assert_eq!(out["errors"][0]["extensions"]["code"], "INVALID_ID");
    let out = run(
        &schema,
        &format!(
            r#"{{ directory {{ withDirectory(path: "d", source: "{container}") {{ id }} }} }}"#
        ),
    )
    .await;
    assert!(error_of(&out).contains("argument source: Container ID passed where a Directory ID"));
}

/// Each option gantry does not implement: the field, its arguments and the
/// words the refusal must contain (the option's name).
const REFUSED: &[(&str, &str)] = &[
    (
        r#"{ container { from(address: "x/busybox", protocol: HTTP) { id } } }"#,
        "from(protocol:) is not supported by gantry",
    ),
    (
        r#"{ container { from(address: "x/busybox", insecureSkipTLSVerify: true) { id } } }"#,
        "from(insecureSkipTLSVerify: true) is not supported",
    ),
    (
        r#"{ container { asService(experimentalPrivilegedNesting: true) { id } } }"#,
        "Container.asService(experimentalPrivilegedNesting: true) is not supported",
    ),
    (
        r#"{ container { asTarball(forcedCompression: Zstd) { id } } }"#,
        "asTarball(forcedCompression: Zstd) is not supported by gantry: use Gzip or Uncompressed",
    ),
    (
        r#"{ container { asTarball(forcedCompression: ESTARGZ) { id } } }"#,
        "asTarball(forcedCompression: ESTARGZ) is not supported",
    ),
    (
        r#"{ container { asTarball(platformVariants: ["Container:00"]) { id } } }"#,
        "asTarball(platformVariants:) is not supported",
    ),
    (
        r#"{ container { export(path: "x.tar", forcedCompression: Zstd) } }"#,
        "export(forcedCompression: Zstd) is not supported",
    ),
    (
        r#"{ container { publish(address: "127.0.0.1:5000/x", forcedCompression: Uncompressed) } }"#,
        "publish(forcedCompression: Uncompressed) is not supported",
    ),
    (
        r#"{ container { publish(address: "127.0.0.1:5000/x", mediaTypes: OCIMediaTypes) } }"#,
        "publish(mediaTypes: OCIMediaTypes) is not supported",
    ),
    (
        r#"{ container { publish(address: "127.0.0.1:5000/x", protocol: HTTPS) } }"#,
        "publish(protocol:) is not supported",
    ),
    (
        r#"{ container { exportImage(name: "x", forcedCompression: Gzip) } }"#,
        "exportImage(forcedCompression: Gzip) is not supported",
    ),
    (
        r#"{ container { exportImage(name: "x", mediaTypes: DockerMediaTypes) } }"#,
        "exportImage(mediaTypes: DockerMediaTypes) is not supported",
    ),
    (
        r#"{ file(name: "f", contents: "x") { search(pattern: "x", globs: ["*.txt"]) { filePath } } }"#,
        "File.search(paths:, globs:) is not supported",
    ),
    (
        r#"{ address(value: "file:///tmp") { file(gitignore: true) { id } } }"#,
        "Address.file(exclude:, include:, gitignore:) is not supported",
    ),
    (
        r#"{ container(platform: "linux/riscv64") { id } }"#,
        "container(platform: \"linux/riscv64\") is not supported by gantry: gantry runs containers of this machine's platform",
    ),
    (
        r#"{ container(platform: "windows98") { id } }"#,
        "unknown operating system or architecture in platform \"windows98\"",
    ),
    (
        r#"{ container { withNewFile(path: "/f", contents: "", owner: "1", inheritOwner: true) { id } } }"#,
        "cannot set both owner and inheritOwner",
    ),
    (
        r#"{ container { withWorkdir(path: "/$X", expand: true) { id } } }"#,
        "expand: true is not supported",
    ),
];

#[tokio::test]
async fn options_gantry_does_not_implement_are_refused_by_name() {
    let (schema, runtime) = schema();
    for (query, expected) in REFUSED {
        let out = run(&schema, query).await;
        let message = error_of(&out);
        assert!(message.contains(expected), "{query}\n  got: {message}");
    }
    assert_eq!(runtime.execs(), 0);
}

#[tokio::test]
async fn the_machine_platform_is_accepted_and_reported() {
    let (schema, _) = schema();
    let platform = gantry_core::runtime::host_platform();
    let out = run(
        &schema,
        &format!(r#"{{ container(platform: "{platform}") {{ platform }} }}"#),
    )
    .await;
    assert_eq!(
        out["data"]["container"]["platform"],
        platform.as_str(),
        "{out}"
    );
}
