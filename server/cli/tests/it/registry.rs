//! Registries and image tarballs: publish and pull with and without auth,
//! export, `asTarball` and import.

use serde_json::{json, Value};

use crate::support::{self, busybox, Server, ServerOptions};
use crate::support::{at, data, error_message, id_of, run, still_serving, text};

pub(crate) fn assert_reference(reference: &str, prefix: &str) {
    let digest = reference
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix("@sha256:"))
        .unwrap_or_else(|| panic!("{reference} is not {prefix}@sha256:…"));
    assert!(
        digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "{reference}"
    );
}

#[test]
fn publish_and_pull_with_and_without_registry_auth() {
    require_runtime!();
    let (auth_registry, user, password) = support::auth_registry();
    let wrong = support::unique("wrong-password");
    let server = Server::start_with(ServerOptions {
        env: vec![
            ("GANTRY_T1_PASSWORD".into(), password.clone()),
            ("GANTRY_T1_WRONG".into(), wrong.clone()),
        ],
        ..ServerOptions::default()
    });
    let tag = support::unique("reg");
    let secrets = run(
        &server,
        r#"{ right: secret(uri: "env://GANTRY_T1_PASSWORD") { id }
             wrong: secret(uri: "env://GANTRY_T1_WRONG") { id } }"#,
        json!({}),
    );
    let (right_id, wrong_id) = (text(&secrets, "right.id"), text(&secrets, "wrong.id"));
    let image = |content: &str| {
        id_of(
            &server,
            r#"query($image: String!, $content: String!) { container { from(address: $image) {
                withNewFile(path: "/msg", contents: $content) { withEntrypoint(args: ["cat"]) {
                  withDefaultArgs(args: ["/msg"]) { id } } } } } }"#,
            json!({ "image": busybox(), "content": content }),
            "container.from.withNewFile.withEntrypoint.withDefaultArgs",
        )
    };

    // A plain registry: ref@sha256:…, and the image runs from the registry.
    let plain = format!("{}/gantry-test/tier1:{tag}", support::registry());
    let published = text(
        &run(
            &server,
            r#"query($id: ID!, $address: String!) { loadContainerFromID(id: $id) { publish(address: $address) } }"#,
            json!({ "id": image(&format!("plain {tag}")), "address": plain }),
        ),
        "loadContainerFromID.publish",
    );
    assert_reference(&published, &plain);
    support::forget_published(&plain);
    let pulled = support::docker(&["pull", &published]);
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let ran = support::docker(&["run", "--rm", &published]);
    assert_eq!(String::from_utf8_lossy(&ran.stdout), format!("plain {tag}"));

    // The registry with basic auth: right, missing and wrong credentials.
    let authed = format!("{auth_registry}/gantry-test/tier1:{tag}");
    let publish = r#"query($id: ID!, $address: String!, $auth: String!, $user: String!, $secret: ID!) {
        loadContainerFromID(id: $id) { withRegistryAuth(address: $auth, username: $user, secret: $secret) {
          publish(address: $address) } } }"#;
    let content = format!("authed {tag}");
    let vars = |address: &str, secret: &str| {
        json!({ "id": image(&content), "address": address, "auth": auth_registry,
                "user": user, "secret": secret })
    };
    let published = text(
        &run(&server, publish, vars(&authed, &right_id)),
        "loadContainerFromID.withRegistryAuth.publish",
    );
    assert_reference(&published, &authed);
    let missing = server.query_vars(
        r#"query($id: ID!, $address: String!) { loadContainerFromID(id: $id) { publish(address: $address) } }"#,
        &json!({ "id": image(&content), "address": format!("{authed}-noauth") }),
    );
    assert!(
        error_message(&missing).contains("refused credentials"),
        "{missing}"
    );
    let refused = server.query_vars(publish, &vars(&format!("{authed}-wrong"), &wrong_id));
    let message = error_message(&refused);
    assert!(
        message.contains("refused credentials") && message.contains(&auth_registry),
        "{refused}"
    );
    assert!(!refused.to_string().contains(&wrong), "{refused}");

    // Pulls: only the registry has the image now.
    support::forget_published(&authed);
    let pull = r#"query($address: String!, $auth: String!, $user: String!, $secret: ID!) { container {
        withRegistryAuth(address: $auth, username: $user, secret: $secret) { from(address: $address) {
          withExec(args: ["cat", "/msg"]) { stdout } } } } }"#;
    let pull_vars = |secret: &str| json!({ "address": authed, "auth": auth_registry, "user": user, "secret": secret });
    let anonymous = server.query_vars(
        r#"query($address: String!) { container { from(address: $address) { withExec(args: ["true"]) { stdout } } } }"#,
        &json!({ "address": authed }),
    );
    assert!(error_message(&anonymous).contains(&authed), "{anonymous}");
    let refused = server.query_vars(pull, &pull_vars(&wrong_id));
    assert!(
        error_message(&refused).contains("refused credentials"),
        "{refused}"
    );
    assert!(!refused.to_string().contains(&wrong));
    let out = run(&server, pull, pull_vars(&right_id));
    assert_eq!(
        text(&out, "container.withRegistryAuth.from.withExec.stdout"),
        content
    );
    // A pull that succeeded with one password vouches for no other.
    let refused = server.query_vars(pull, &pull_vars(&wrong_id));
    assert!(
        error_message(&refused).contains("refused credentials"),
        "{refused}"
    );

    // An unreachable registry: a clear error naming it.
    let nowhere = "127.0.0.1:5999/gantry-test/nowhere:1";
    let out = server.query_vars(
        r#"query($id: ID!, $address: String!) { loadContainerFromID(id: $id) { publish(address: $address) } }"#,
        &json!({ "id": image(&content), "address": nowhere }),
    );
    assert!(error_message(&out).contains("127.0.0.1:5999"), "{out}");
    let out = server.query_vars(
        r#"query($address: String!) { container { from(address: $address) { withExec(args: ["true"]) { stdout } } } }"#,
        &json!({ "address": nowhere }),
    );
    assert!(error_message(&out).contains("127.0.0.1:5999"), "{out}");
    still_serving(&server);
}

#[test]
fn export_and_as_tarball_load_into_docker_and_import_back() {
    require_runtime!();
    let server = Server::start();
    let marker = support::unique("tarball");
    let host = tempfile::tempdir().unwrap();
    let out = data(server.query_in(
        host.path(),
        r#"query($image: String!, $marker: String!) { container { from(address: $image) {
            withNewFile(path: "/tar-marker", contents: $marker) { withEntrypoint(args: ["cat"]) {
              withDefaultArgs(args: ["/tar-marker"]) {
                export(path: "img.tar")
                asTarball { id size export(path: "as-tarball.tar") } } } } } } }"#,
        &json!({ "image": busybox(), "marker": marker }),
    ));
    let built = at(
        &out,
        "container.from.withNewFile.withEntrypoint.withDefaultArgs",
    );
    assert_eq!(
        built["export"],
        json!(host.path().join("img.tar").display().to_string())
    );
    assert!(built["asTarball"]["size"].as_i64().unwrap() > 0);
    for tarball in ["img.tar", "as-tarball.tar"] {
        let loaded = support::docker(&[
            "load",
            "-i",
            &host.path().join(tarball).display().to_string(),
        ]);
        let stdout = String::from_utf8_lossy(&loaded.stdout);
        assert!(
            loaded.status.success(),
            "{}",
            String::from_utf8_lossy(&loaded.stderr)
        );
        let name = stdout
            .lines()
            .find_map(|line| line.strip_prefix("Loaded image: "))
            .unwrap_or_else(|| panic!("{stdout}"))
            .trim()
            .to_owned();
        let ran = support::docker(&["run", "--rm", &name]);
        assert_eq!(String::from_utf8_lossy(&ran.stdout), marker);
    }
    // `import` reads a tarball back: from asTarball, and from the host file.
    let file = data(server.query_in(
        host.path(),
        r#"{ host { file(path: "img.tar") { id } } }"#,
        &Value::Null,
    ));
    for source in [text(built, "asTarball.id"), text(&file, "host.file.id")] {
        let out = run(
            &server,
            r#"query($source: ID!) { container { import(source: $source) {
                entrypoint withExec(args: ["cat", "/tar-marker"]) { stdout } } } }"#,
            json!({ "source": source }),
        );
        assert_eq!(at(&out, "container.import.entrypoint"), &json!(["cat"]));
        assert_eq!(text(&out, "container.import.withExec.stdout"), marker);
    }
}

/// Item 7 of issue 21: the same pipeline published from two engines (fresh
/// state directories, so the step runs twice, at different times) gives the
/// same digest, and its tarball holds the same manifest; `SOURCE_DATE_EPOCH`
/// dates the image and clamps the file times in it. On the runtime under test
/// (`make rust-test` runs the suite on each).
#[test]
fn the_same_pipeline_publishes_the_same_digest_from_two_engines() {
    require_runtime!();
    let tag = support::unique("repro");
    let target = format!("{}/gantry-test/repro:{tag}", support::registry());
    let host = tempfile::tempdir().unwrap();
    let build = r#"query($image: String!, $address: String!, $tarball: String!) { container {
        from(address: $image) { withNewFile(path: "/etc/greeting", contents: "hello") {
        withExec(args: ["sh", "-c", "mkdir -p /out && echo built > /out/file"]) {
        withLabel(name: "org.example.kind", value: "repro") {
          publish(address: $address) asTarball { export(path: $tarball) } } } } } } }"#;
    let publish = |epoch: Option<&str>| {
        let server = Server::start_with(ServerOptions {
            env: epoch
                .map(|seconds| ("SOURCE_DATE_EPOCH".to_owned(), seconds.to_owned()))
                .into_iter()
                .collect(),
            ..ServerOptions::default()
        });
        let tarball = host
            .path()
            .join(support::unique("image"))
            .with_extension("tar");
        let out = run(
            &server,
            build,
            json!({ "image": busybox(), "address": target, "tarball": tarball }),
        );
        let published = text(
            &out,
            "container.from.withNewFile.withExec.withLabel.publish",
        );
        assert_reference(&published, &target);
        (published, tarball_manifest(&tarball))
    };
    let first = publish(None);
    // File times are in seconds: the second engine's step runs in a later one.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = publish(None);
    assert_eq!(
        first.0, second.0,
        "the same pipeline, the same image digest"
    );
    assert_eq!(first.1, second.1, "the same manifest in the tarball");

    let dated = publish(Some("1700000000"));
    assert_ne!(dated.0, first.0, "another date, another image");
    support::forget_published(&target);
    let pulled = support::docker(&["pull", &dated.0]);
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let inspect = |format: &str| {
        let out = support::docker(&["image", "inspect", "--format", format, &dated.0]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(inspect("{{.Created}}"), "2023-11-14T22:13:20Z");
    let labels: Value = serde_json::from_str(&inspect("{{json .Config.Labels}}")).unwrap();
    assert_eq!(labels["org.example.kind"], "repro", "{labels}");
    for own in [
        "dev.gantry.managed",
        "dev.gantry.step",
        "dev.gantry.engine-pid",
    ] {
        assert!(
            labels.get(own).is_none(),
            "no label of gantry's own: {labels}"
        );
    }
    let times = support::docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "stat",
        &dated.0,
        "-c",
        "%Y",
        "/out/file",
        "/out",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&times.stdout),
        "1700000000\n1700000000\n",
        "file times the step wrote clamped: {}",
        String::from_utf8_lossy(&times.stderr)
    );
    support::docker(&["rmi", &dated.0]);
}

/// The digest of the manifest an image tarball's `index.json` names.
fn tarball_manifest(path: &std::path::Path) -> String {
    let file = std::fs::File::open(path).unwrap();
    let mut archive = tar::Archive::new(file);
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some("index.json") {
            let index: Value = serde_json::from_reader(entry).unwrap();
            return index["manifests"][0]["digest"].as_str().unwrap().to_owned();
        }
    }
    panic!("{} has no index.json", path.display());
}
