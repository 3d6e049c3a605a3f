//! The seed pipeline end to end: test, build, publish, and the image runs.

use std::path::Path;

use serde_json::Value;

use crate::registry::assert_reference;
use crate::support::text;
use crate::support::{self, Server, ServerOptions};

/// `gantry query examples/seed-pipeline.graphql --operation NAME --var …`
/// against `server`, from the repository root; returns `data`.
fn seed_operation(server: &Server, operation: &str, vars: &[(&str, &str)]) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut command = support::gantry(server.dir());
    command.current_dir(&root).args([
        "query",
        "examples/seed-pipeline.graphql",
        "--operation",
        operation,
    ]);
    for (name, value) in vars {
        command.args(["--var", &format!("{name}={value}")]);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{operation} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn seed_pipeline_tests_builds_publishes_and_the_image_runs() {
    require_runtime!();
    let (auth_registry, user, password) = support::auth_registry();
    let server = Server::start_with(ServerOptions {
        env: vec![("REGISTRY_TOKEN".into(), password.clone())],
        ..ServerOptions::default()
    });
    let golang = support::fixture("golang:latest");
    let runtime = support::fixture("static:nonroot");
    let address = format!(
        "{auth_registry}/gantry-test/seed-app:{}",
        support::unique("seed")
    );
    let pipeline = |server: &Server| {
        let inputs = seed_operation(
            server,
            "Inputs",
            &[
                ("src", "examples/seed-app"),
                ("token", "env://REGISTRY_TOKEN"),
            ],
        );
        let ids = [
            ("golang", golang.clone()),
            ("src", text(&inputs, "src.directory.id")),
            ("goMod", text(&inputs, "goMod.id")),
            ("goBuild", text(&inputs, "goBuild.id")),
        ];
        let ids: Vec<(&str, &str)> = ids.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let test = seed_operation(server, "Test", &ids);
        let build = seed_operation(server, "Build", &ids);
        let binary = text(
            &build,
            "container.from.withDirectory.withWorkdir.withEnvVariable.withMountedCache.withMountedCache.withExec.withEnvVariable.withEnvVariable.withExec.binary.id",
        );
        let published = seed_operation(
            server,
            "Publish",
            &[
                ("runtime", &runtime),
                ("binary", &binary),
                ("address", &address),
                ("user", &user),
                ("token", &text(&inputs, "token.id")),
            ],
        );
        (
            text(
                &test,
                "container.from.withDirectory.withWorkdir.withEnvVariable.withMountedCache.withMountedCache.withExec.stdout",
            ),
            text(
                &published,
                "container.from.withFile.withEntrypoint.withRegistryAuth.publish",
            ),
        )
    };
    let (tested, published) = pipeline(&server);
    assert!(
        tested.contains("ok  \texample.com/seed-app/cmd/server"),
        "{tested}"
    );
    assert_reference(&published, &address);
    support::ensure_in_docker(&published);
    let ran = support::docker(&["run", "--rm", &published]);
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        "hello from seed-app (uid 65532)\n",
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(!support::docker_save_contains(
        &published,
        password.as_bytes()
    ));
    // Nothing changed: the second run does no container work at all.
    let since = support::now();
    let (again, republished) = pipeline(&server);
    assert_eq!((again, republished), (tested, published));
    assert_eq!(support::containers_created_since(&since, server.pid()), 0);
}
