//! Secrets: reach only their exec, are scrubbed from output, and never reach
//! disk, images, logs or answers.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::support::{self, busybox, Server, ServerOptions};
use crate::support::{
    at, data, error_message, id_of, run, stdout_of, still_serving, text, workspace,
};

#[test]
fn secrets_reach_only_their_exec_and_are_scrubbed() {
    require_runtime!();
    let env_value = support::unique("env-secret");
    let server = Server::start_with(ServerOptions {
        env: vec![("GANTRY_T1_SECRET".into(), env_value.clone())],
        ..ServerOptions::default()
    });
    let file_value = support::unique("file-secret");
    let work = workspace(&[("token.txt", &file_value)]);
    let set_value = support::unique("set-secret");
    let out = data(server.query_in(
        work.path(),
        r#"query($value: String!) {
            set: setSecret(name: "tok", plaintext: $value) { id name plaintext }
            env: secret(uri: "env://GANTRY_T1_SECRET") { id name plaintext }
            file: secret(uri: "file://token.txt") { id name plaintext } }"#,
        &json!({ "value": set_value }),
    ));
    assert_eq!(out["set"]["name"], "tok");
    assert_eq!(out["set"]["plaintext"], set_value);
    assert_eq!(out["env"]["plaintext"], env_value);
    assert_eq!(out["env"]["name"], "env://GANTRY_T1_SECRET");
    assert_eq!(out["file"]["plaintext"], file_value);
    for (kind, value) in [
        ("set", &set_value),
        ("env", &env_value),
        ("file", &file_value),
    ] {
        assert!(!text(&out, &format!("{kind}.id")).contains(value.as_str()));
    }
    let ids = json!({
        "image": busybox(),
        "set": text(&out, "set.id"),
        "env": text(&out, "env.id"),
        "file": text(&out, "file.id"),
    });
    let with_secrets = |tail: &str| {
        format!(
            r#"query($image: String!, $set: ID!, $env: ID!, $file: ID!) {{ container {{ from(address: $image) {{
                withSecretVariable(name: "TOKEN", secret: $set) {{ withSecretVariable(name: "FROM_ENV", secret: $env) {{
                  withMountedSecret(path: "/run/secrets/t", source: $file) {{ {tail} }} }} }} }} }} }}"#
        )
    };
    let out = run(
        &server,
        &with_secrets(
            r#"envVariables { name }
               withExec(args: ["sh", "-c", "echo env=$TOKEN; echo fromenv=$FROM_ENV; echo file=$(cat /run/secrets/t); echo err=$TOKEN >&2; echo len=${#TOKEN} mode=$(stat -c %a /run/secrets/t)"]) { stdout stderr }"#,
        ),
        ids.clone(),
    );
    let inner = at(
        &out,
        "container.from.withSecretVariable.withSecretVariable.withMountedSecret",
    );
    assert_eq!(
        inner["withExec"]["stdout"],
        format!(
            "env=***\nfromenv=***\nfile=***\nlen={} mode=400\n",
            set_value.len()
        )
    );
    assert_eq!(inner["withExec"]["stderr"], "err=***\n");
    let names: Vec<&str> = inner["envVariables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(
        !names.contains(&"TOKEN") && names.contains(&"PATH"),
        "{names:?}"
    );

    // A failure's message and output are scrubbed too.
    let failed = server.query_vars(
        &with_secrets(
            r#"withExec(args: ["sh", "-c", "echo out=$TOKEN; echo err=$FROM_ENV >&2; exit 3"]) { stdout }"#,
        ),
        &ids,
    );
    assert!(error_message(&failed).ends_with("exit code: 3"), "{failed}");
    assert_eq!(failed["errors"][0]["extensions"]["stdout"], "out=***\n");
    assert_eq!(failed["errors"][0]["extensions"]["stderr"], "err=***\n");
    let all = failed.to_string();
    for value in [&set_value, &env_value, &file_value] {
        assert!(!all.contains(value.as_str()), "{all}");
    }

    // A changed value re-runs the step; the old value again is a cache hit.
    let length_of = |value: &str| {
        let secret = id_of(
            &server,
            r#"query($value: String!) { setSecret(name: "length", plaintext: $value) { id } }"#,
            json!({ "value": value }),
            "setSecret",
        );
        stdout_of(
            &server,
            r#"query($image: String!, $secret: ID!) { container { from(address: $image) {
                withSecretVariable(name: "S", secret: $secret) {
                  withExec(args: ["sh", "-c", "echo ${#S}"]) { stdout } } } } }"#,
            json!({ "image": busybox(), "secret": secret }),
            "container.from.withSecretVariable.withExec",
        )
    };
    assert_eq!(length_of("four"), "4\n");
    assert_eq!(length_of("seven!!"), "7\n");
    let since = support::now();
    assert_eq!(length_of("four"), "4\n");
    assert_eq!(support::containers_created_since(&since, server.pid()), 0);

    // Unknown, foreign and forgotten secret IDs, and bad URIs: clear errors.
    let use_secret = r#"query($image: String!, $secret: ID!) { container { from(address: $image) {
        withSecretVariable(name: "S", secret: $secret) { withExec(args: ["true"]) { stdout } } } } }"#;
    let unknown = format!("Secret:{}", "0".repeat(64));
    let out = server.query_vars(
        use_secret,
        &json!({ "image": busybox(), "secret": unknown }),
    );
    assert!(error_message(&out).contains("unknown Secret ID"), "{out}");
    let foreign_value = support::unique("foreign");
    let other = Server::start();
    let foreign = id_of(
        &other,
        r#"query($value: String!) { setSecret(name: "foreign", plaintext: $value) { id } }"#,
        json!({ "value": foreign_value }),
        "setSecret",
    );
    drop(other);
    let out = server.query_vars(
        use_secret,
        &json!({ "image": busybox(), "secret": foreign }),
    );
    let message = error_message(&out);
    assert!(
        message.contains("unknown Secret ID") && !message.contains(&foreign_value),
        "{out}"
    );
    for (uri, needle) in [
        (
            "env://GANTRY_T1_NO_SUCH_VARIABLE",
            "GANTRY_T1_NO_SUCH_VARIABLE is not set",
        ),
        (
            "vault://kv/token",
            "gantry supports env://NAME and file://PATH",
        ),
        ("file://no-such-token.txt", "no-such-token.txt"),
    ] {
        let out = server.query_in(
            work.path(),
            r#"query($uri: String!) { secret(uri: $uri) { id } }"#,
            &json!({ "uri": uri }),
        );
        assert!(error_message(&out).contains(needle), "{out}");
    }
    let mut server = server;
    server.restart();
    let out = server.query_vars(
        use_secret,
        &json!({ "image": busybox(), "secret": ids["set"] }),
    );
    let message = error_message(&out);
    assert!(
        message.contains("\"tok\" is not known to this engine") && message.contains("set it again"),
        "{out}"
    );
    let out = server.query_vars(
        r#"query($id: SecretID!) { loadSecretFromID(id: $id) { name plaintext } }"#,
        &json!({ "id": ids["set"] }),
    );
    assert!(
        error_message(&out).contains("not known to this engine"),
        "{out}"
    );
    still_serving(&server);
}

/// Image IDs of every exec result recorded in a state directory.
fn committed_images(state_dir: &Path) -> Vec<String> {
    let mut images = Vec::new();
    let mut stack = vec![state_dir.join("store")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(record) = serde_json::from_slice::<Value>(&fs::read(&path).unwrap()) {
                if let Some(image) = record["image_id"].as_str() {
                    images.push(image.to_owned());
                }
            }
        }
    }
    images.sort();
    images.dedup();
    images
}

#[test]
fn secret_values_never_reach_disk_images_logs_or_outputs() {
    require_runtime!();
    let secret = support::unique("leak-s3cr3t");
    let env_secret = support::unique("leak-env-s3cr3t");
    let server = Server::start_with(ServerOptions {
        env: vec![("GANTRY_T1_LEAK".into(), env_secret.clone())],
        log: Some("debug".into()),
    });
    let marker = support::unique("leak-marker");
    let host = tempfile::tempdir().unwrap();
    let mut outputs: Vec<String> = Vec::new();
    let mut ask = |query: &str, vars: Value| {
        let out = server.query_in(host.path(), query, &vars);
        outputs.push(out.to_string());
        out
    };
    // Inline, as the SDKs send every argument.
    let ids = data(ask(
        &format!(
            r#"{{ setSecret(name: "leak", plaintext: "{secret}") {{ id }}
                  secret(uri: "env://GANTRY_T1_LEAK") {{ id }} }}"#
        ),
        Value::Null,
    ));
    let (auth_registry, user, _) = support::auth_registry();
    let vars = json!({
        "image": busybox(),
        "set": text(&ids, "setSecret.id"),
        "env": text(&ids, "secret.id"),
        "marker": marker,
        "address": format!("{}/gantry-test/leak:{}", support::registry(), marker),
        "authAddress": format!("{auth_registry}/gantry-test/leak:{marker}"),
        "authPull": support::fixture("busybox:latest").replace(&support::registry(), &auth_registry),
        "user": user,
    });
    // Secrets in env and files; printed, redirected, failing, and sent as a
    // (wrong) registry password to a push and a pull.
    let out = data(ask(
        r#"query($image: String!, $set: ID!, $env: ID!, $marker: String!, $address: String!) {
          container { from(address: $image) { withSecretVariable(name: "TOKEN", secret: $set) {
            withMountedSecret(path: "/run/secrets/leak", source: $env) {
              withExec(args: ["sh", "-c", "echo $TOKEN; echo $TOKEN >&2; cat /run/secrets/leak; echo $0 > /marker", $marker],
                       redirectStdout: "/out.txt") {
                stdout stderr file(path: "/out.txt") { contents }
                export(path: "image.tar")
                asTarball { export(path: "as-tarball.tar") }
                publish(address: $address)
              } } } } } }"#,
        vars.clone(),
    ));
    let exec = at(
        &out,
        "container.from.withSecretVariable.withMountedSecret.withExec",
    );
    assert_eq!(exec["stdout"], "***\n***");
    assert_eq!(exec["file"]["contents"], "***\n***");
    assert_eq!(exec["stderr"], "***\n");
    let published = text(exec, "publish");
    let failed = ask(
        r#"query($image: String!, $set: ID!) { container { from(address: $image) {
            withSecretVariable(name: "TOKEN", secret: $set) {
              withExec(args: ["sh", "-c", "echo token is $TOKEN >&2; exit 1"]) { stdout } } } } }"#,
        vars.clone(),
    );
    assert_eq!(
        failed["errors"][0]["extensions"]["stderr"],
        "token is ***\n"
    );
    let push = ask(
        r#"query($image: String!, $set: ID!, $authAddress: String!, $user: String!) {
            container { from(address: $image) {
              withRegistryAuth(address: $authAddress, username: $user, secret: $set) {
                publish(address: $authAddress) } } } }"#,
        vars.clone(),
    );
    assert!(error_message(&push).contains("credentials"), "{push}");
    let pull = ask(
        r#"query($set: ID!, $authPull: String!, $user: String!) { container {
            withRegistryAuth(address: $authPull, username: $user, secret: $set) {
              from(address: $authPull) { withExec(args: ["true"]) { stdout } } } } }"#,
        vars.clone(),
    );
    assert!(error_message(&pull).contains("credentials"), "{pull}");

    let needles = [secret.as_bytes(), env_secret.as_bytes()];
    // 1. Everything the engine answered.
    for output in &outputs {
        assert!(
            !needles
                .iter()
                .any(|n| support::contains_bytes(output.as_bytes(), n)),
            "an answer holds a secret: {output}"
        );
    }
    // 2. The state directory (with a positive control: the scan finds the marker).
    let state = server.state_dir();
    assert!(!support::files_containing(&state, marker.as_bytes()).is_empty());
    for needle in needles {
        assert_eq!(
            support::files_containing(&state, needle),
            Vec::<PathBuf>::new()
        );
    }
    // 3. Every image this engine committed, the published one and the tarballs.
    let images = committed_images(&state);
    assert!(!images.is_empty());
    let mut marked = 0;
    for image in images.iter().chain([&published]) {
        for needle in needles {
            assert!(
                !if image == &published {
                    support::docker_save_contains(image, needle)
                } else {
                    support::step_image_contains(&state, image, needle)
                },
                "image {image} holds a secret"
            );
        }
        marked += usize::from(if image == &published {
            support::docker_save_contains(image, marker.as_bytes())
        } else {
            support::step_image_contains(&state, image, marker.as_bytes())
        });
    }
    assert!(
        marked >= 2,
        "the scan must see the marker in the step and published images"
    );
    for tarball in ["image.tar", "as-tarball.tar"] {
        let bytes = fs::read(host.path().join(tarball)).unwrap();
        assert!(support::tarball_contains(&bytes, marker.as_bytes()));
        for needle in needles {
            assert!(
                !support::tarball_contains(&bytes, needle),
                "{tarball} holds a secret"
            );
        }
    }
    // 4. The engine's debug log.
    let log = server.log();
    assert!(
        log.contains("DEBUG") && log.contains("creating container"),
        "{log}"
    );
    for needle in needles {
        assert!(
            !support::contains_bytes(log.as_bytes(), needle),
            "the log holds a secret"
        );
    }
    // 5. Nothing is left on the tmpfs either.
    let shm = Path::new("/dev/shm/gantry-secrets");
    for needle in needles {
        assert_eq!(
            support::files_containing(shm, needle),
            Vec::<PathBuf>::new()
        );
    }
}
