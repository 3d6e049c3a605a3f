//! The remote cache tier (`--cache REF`, docs/cache.md) on the runtime under test
//! and the test registries: two "machines" are two engines with their own state
//! directories (so their own state IDs and paths), sharing one registry
//! repository. In the cross-machine tests, machine B also has a Docker daemon of
//! its own with the Docker runtime (the second dockerd of `daemon`: no image or
//! layer of machine A's is there); with the native runtime, each state
//! directory has its own snapshot store already.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use gantry_core::store::RecordKind;
use serde_json::{json, Value};

use crate::cache_admin::cache_json;
use crate::daemon::Daemon;
use crate::support::{
    at, busybox, containers_created_on, containers_created_since, error_message, free_port, gantry,
    native, now, registry, run, strip_ansi, text, unique, PrivateRegistry, Server, ServerOptions,
};

/// Three steps, the last reading what the first wrote; `$marker` keeps the keys
/// this test's own.
const PIPELINE: &str = r#"
query($image: String!, $marker: String!) {
  container { from(address: $image) {
    withExec(args: ["sh", "-c", "echo $0 > /one; head -c 4096 /dev/urandom > /noise", $marker]) {
    withExec(args: ["sh", "-c", "cat /one; echo two > /two"]) {
    withExec(args: ["sh", "-c", "cat /one /two"]) { stdout } } } } }
}"#;

/// One more step on top of `PIPELINE`: it needs the cached filesystem.
const DOWNSTREAM: &str = r#"
query($image: String!, $marker: String!) {
  container { from(address: $image) {
    withExec(args: ["sh", "-c", "echo $0 > /one; head -c 4096 /dev/urandom > /noise", $marker]) {
    withExec(args: ["sh", "-c", "cat /one; echo two > /two"]) {
    withExec(args: ["sh", "-c", "cat /one /two"]) {
    withExec(args: ["sh", "-c", "wc -c < /noise; cat /two"]) { stdout } } } } } }
}"#;

fn vars(marker: &str) -> Value {
    json!({ "image": busybox(), "marker": marker })
}

fn pipeline_stdout(server: &Server, marker: &str) -> String {
    let data = run(server, PIPELINE, vars(marker));
    text(&data, "container.from.withExec.withExec.withExec.stdout")
}

/// A fresh repository on the test registry.
fn repository(name: &str) -> String {
    format!("{}/{}/cache", registry(), unique(name))
}

/// An engine (on the runtime under test) with the remote cache `repository` (plus `env`).
fn cache_server(repository: &str, env: &[(&str, &str)]) -> Server {
    cache_server_on(None, repository, env)
}

/// The Docker daemon of the other machine (B) in the cross-machine tests: the
/// second dockerd with the Docker runtime; `None` with the native runtime,
/// whose state directories have their own snapshot stores.
fn other_daemon() -> Option<&'static Daemon> {
    (!native()).then(Daemon::shared)
}

/// `cache_server` on `daemon` (`None`: the host's daemon, or the native runtime).
fn cache_server_on(daemon: Option<&Daemon>, repository: &str, env: &[(&str, &str)]) -> Server {
    let mut all = vec![("GANTRY_CACHE".to_owned(), repository.to_owned())];
    all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    Server::start_with(ServerOptions {
        env: with_daemon(daemon, all),
        log: Some("info".into()),
    })
}

/// `env` plus the `DOCKER_HOST` of `daemon`, if any.
fn with_daemon(daemon: Option<&Daemon>, mut env: Vec<(String, String)>) -> Vec<(String, String)> {
    if let Some(daemon) = daemon {
        env.push(("DOCKER_HOST".into(), daemon.host().to_owned()));
    }
    env
}

/// Containers the engine `server` created on `daemon` since `since`.
fn created_on(daemon: Option<&Daemon>, since: &str, server: &Server) -> usize {
    containers_created_on(daemon.map(Daemon::host), since, server.pid())
}

/// Stops `server` and returns its log once the last lines are in (its stderr
/// is copied to the log by a thread of its own, which may lag the exit).
fn stop(server: &mut Server) -> String {
    // The log outlives restarts: wait for this engine's line.
    let before = plain_log(server).matches("remote cache flushed").count();
    server.stop();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let log = plain_log(server);
        if log.matches("remote cache flushed").count() > before
            || std::time::Instant::now() > deadline
        {
            return log;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The engine's log without terminal colours.
fn plain_log(server: &Server) -> String {
    strip_ansi(&server.log())
}

/// A counter of the last "remote cache flushed" line (written when the engine stops).
fn counter(log: &str, name: &str) -> usize {
    let line = log
        .lines()
        .rev()
        .find(|line| line.contains("remote cache flushed"))
        .unwrap_or_else(|| panic!("the engine never flushed its remote cache:\n{log}"));
    let field = format!("{name}=");
    let start = line.find(&field).unwrap_or_else(|| panic!("{line}")) + field.len();
    line[start..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The cache keys of every exec result stored in `state`.
fn exec_keys(state: &Path) -> BTreeSet<String> {
    let store = gantry_store::DiskStore::open(state).unwrap();
    store
        .state_dir()
        .records(RecordKind::Exec)
        .unwrap()
        .iter()
        .map(|record| record.key.hex())
        .collect()
}

/// The image IDs of the exec results stored in `state`.
fn step_images(state: &Path) -> Vec<String> {
    let store = gantry_store::DiskStore::open(state).unwrap();
    let names = store.state_dir().image_names();
    let records = store.state_dir().records(RecordKind::Exec).unwrap();
    records
        .iter()
        .filter_map(|record| record.image(&names))
        .collect()
}

fn state_id(state: &Path) -> String {
    std::fs::read_to_string(state.join("id")).unwrap()
}

#[test]
fn cache_keys_are_the_same_on_two_machines_and_secret_steps_only_with_a_shared_key() {
    require_runtime!();
    let marker = unique("keys");
    let secret_step = r#"
    query($image: String!, $marker: String!, $secret: ID!) {
      container { from(address: $image) { withSecretVariable(name: "TOKEN", secret: $secret) {
        withExec(args: ["sh", "-c", "echo $0; test -n \"$TOKEN\"", $marker]) { stdout } } } }
    }"#;
    let secret_keys = |server: &Server| {
        let secret = run(
            server,
            r#"{ setSecret(name: "token", plaintext: "not-a-real-token-42") { id } }"#,
            json!({}),
        );
        let secret = text(&secret, "setSecret.id");
        let mut vars = vars(&marker);
        vars["secret"] = json!(secret);
        let before = exec_keys(&server.state_dir());
        run(server, secret_step, vars);
        &exec_keys(&server.state_dir()) - &before
    };
    let shared_key = [(
        "GANTRY_CACHE_KEY",
        "0123456789abcdef0123456789abcdef-test-key",
    )];
    // Machine B: another state directory and, with Docker, another daemon.
    let engine = |daemon: Option<&Daemon>, env: &[(&str, &str)]| {
        let all = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Server::start_with(ServerOptions {
            env: with_daemon(daemon, all),
            log: None,
        })
    };
    let other = other_daemon();
    let a = engine(None, &[]);
    let b = engine(other, &[]);
    assert_ne!(state_id(&a.state_dir()), state_id(&b.state_dir()));
    assert_ne!(a.state_dir(), b.state_dir());
    let since = now();
    assert_eq!(pipeline_stdout(&a, &marker), pipeline_stdout(&b, &marker));
    // Both ran every step, each on its own daemon.
    assert_eq!(created_on(other, &since, &b), 3);
    let keys_a = exec_keys(&a.state_dir());
    assert_eq!(keys_a.len(), 3, "three steps, three results: {keys_a:?}");
    assert_eq!(keys_a, exec_keys(&b.state_dir()));
    // Each state directory keys secrets with its own MAC key...
    assert_ne!(secret_keys(&a), secret_keys(&b));
    // ...unless the machines share one.
    let c = engine(None, &shared_key);
    let d = engine(other, &shared_key);
    let (keys_c, keys_d) = (secret_keys(&c), secret_keys(&d));
    assert_eq!(keys_c.len(), 1);
    assert_eq!(keys_c, keys_d);
}

#[test]
fn machine_b_runs_machine_a_pipeline_from_the_remote_cache_without_containers() {
    require_runtime!();
    let repo = repository("ab");
    three_machines(&repo, &unique("ab"));
    base_layers_in(&Remote::Registry(repo));
}

/// Machine A runs the pipeline cold and pushes to the remote cache
/// `reference`; machine B (a fresh state directory at another path and, with
/// Docker, another daemon) runs it without a container and without fetching
/// a filesystem, and stores the same cache keys; machine C (B's daemon)
/// runs one step on top, fetching the filesystem it needs once. Returns A,
/// stopped.
fn three_machines(reference: &str, marker: &str) -> Server {
    let mut a = cache_server(reference, &[]);
    let cold = pipeline_stdout(&a, marker);
    assert_eq!(cold, format!("{marker}\ntwo\n"));
    let log = stop(&mut a);
    assert_eq!(counter(&log, "pushed"), 3, "{log}");

    // Machine B: a fresh state directory (another path and state ID: none of
    // A's gantry images is visible to it) on another daemon, the same remote
    // cache.
    let other = other_daemon();
    if let Some(daemon) = other {
        for image in step_images(&a.state_dir()) {
            let found = daemon.docker(&["image", "inspect", &image]);
            assert!(!found.status.success(), "A's {image} is on B's daemon");
        }
    }
    let mut b = cache_server_on(other, reference, &[]);
    assert_ne!(state_id(&a.state_dir()), state_id(&b.state_dir()));
    assert_ne!(a.state_dir(), b.state_dir());
    let since = now();
    assert_eq!(pipeline_stdout(&b, marker), cold);
    assert_eq!(created_on(other, &since, &b), 0, "machine B ran a step");
    let log = stop(&mut b);
    assert_eq!(counter(&log, "hits"), 3, "{log}");
    // A leaf (stdout) costs manifests and small blobs: no filesystem pulled.
    assert_eq!(counter(&log, "filesystems_fetched"), 0, "{log}");
    assert_eq!(counter(&log, "pushed"), 0, "{log}");
    assert!(!log.contains("WARN"), "{log}");
    // The keys are machine-independent: B recorded A's keys as its own.
    assert_eq!(exec_keys(&b.state_dir()), exec_keys(&a.state_dir()));

    // Machine C: a step on top of the cached ones needs their filesystem,
    // fetched once; only that step runs.
    let mut c = cache_server_on(other, reference, &[]);
    let since = now();
    let data = run(&c, DOWNSTREAM, vars(marker));
    assert_eq!(
        text(
            &data,
            "container.from.withExec.withExec.withExec.withExec.stdout"
        ),
        "4096\ntwo\n"
    );
    assert_eq!(created_on(other, &since, &c), 1);
    let log = stop(&mut c);
    assert_eq!(counter(&log, "filesystems_fetched"), 1, "{log}");
    assert_eq!(counter(&log, "pushed"), 1, "{log}");
    a
}

/// The layer digests of the manifest `reference` (`REPO:TAG` or
/// `REPO@DIGEST` on the test registry).
fn manifest_layers(path: &str, reference: &str) -> Vec<String> {
    let accept = "application/vnd.oci.image.manifest.v1+json, \
                  application/vnd.docker.distribution.manifest.v2+json";
    let manifest: Value = serde_json::from_slice(&registry_get(
        &format!("/v2/{path}/manifests/{reference}"),
        accept,
    ))
    .unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["digest"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_pushed_filesystem_shares_the_base_image_blobs_of_its_registry() {
    require_runtime!();
    let repo = repository("base-blobs");
    let marker = unique("base-blobs");
    let mut a = cache_server(&repo, &[]);
    pipeline_stdout(&a, &marker);
    stop(&mut a);
    // The first step's filesystem: the base image's layers, by the digests
    // the base image has on this registry (mounted from its repository, not
    // exported and uploaded again), then the step's own layer.
    let key = key_of_step(&repo, &a.state_dir(), "head -c 4096");
    let filesystem = entry_record(&repo, &key)["image"]
        .as_str()
        .unwrap()
        .to_owned();
    let layers = manifest_layers(repo_path(&repo), &filesystem);
    let image = busybox();
    let (base_repo, tag) = image.rsplit_once(':').unwrap();
    let base = manifest_layers(repo_path(base_repo), tag);
    assert!(!base.is_empty());
    assert_eq!(layers.len(), base.len() + 1, "{layers:?} on {base:?}");
    assert_eq!(layers[..base.len()], base[..]);
}

#[test]
fn read_mode_pushes_nothing() {
    require_runtime!();
    let repo = repository("read");
    let marker = unique("read");
    let mut a = cache_server(&repo, &[("GANTRY_CACHE_MODE", "read")]);
    pipeline_stdout(&a, &marker);
    let log = stop(&mut a);
    assert_eq!(counter(&log, "pushed"), 0, "{log}");
    assert_eq!(counter(&log, "lookups"), 3, "{log}");
    // Nothing reached the registry: a second machine finds nothing.
    let mut b = cache_server(&repo, &[("GANTRY_CACHE_MODE", "read")]);
    let since = now();
    pipeline_stdout(&b, &marker);
    assert_eq!(containers_created_since(&since, b.pid()), 3);
    let log = stop(&mut b);
    assert_eq!(counter(&log, "hits"), 0);
}

#[test]
fn an_unreachable_registry_is_one_warning_and_the_pipeline_runs_locally() {
    require_runtime!();
    // Nothing listens on this port.
    let repo = format!("127.0.0.1:{}/nowhere/cache", free_port());
    let marker = unique("down");
    let mut a = cache_server(&repo, &[]);
    assert_eq!(pipeline_stdout(&a, &marker), format!("{marker}\ntwo\n"));
    let log = stop(&mut a);
    assert_eq!(
        log.matches("the remote cache is unavailable").count(),
        1,
        "{log}"
    );
    assert_eq!(log.matches("WARN").count(), 1, "{log}");
}

/// `GET` on the test registry's HTTP API.
fn registry_get(path: &str, accept: &str) -> Vec<u8> {
    registry_try_get(path, accept).unwrap_or_else(|| panic!("GET {path} failed"))
}

/// `GET` on the test registry's HTTP API; `None` when it fails (a 404, say).
fn registry_try_get(path: &str, accept: &str) -> Option<Vec<u8>> {
    http_get(&registry(), None, path, accept)
}

/// `GET` on the HTTP API of the registry `host`, with `user:password` as
/// Basic credentials if given; `None` when it fails.
fn http_get(host: &str, credentials: Option<&str>, path: &str, accept: &str) -> Option<Vec<u8>> {
    let mut curl = Command::new("curl");
    curl.args(["-sf", "-H", &format!("Accept: {accept}")]);
    if let Some(credentials) = credentials {
        curl.args(["-u", credentials]);
    }
    let out = curl.arg(format!("http://{host}{path}")).output().unwrap();
    out.status.success().then_some(out.stdout)
}

/// The repository path (without the registry) of `repo`.
fn repo_path(repo: &str) -> &str {
    repo.split_once('/').unwrap().1
}

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// The raw manifest of the entry for `key` in `repo`.
fn entry_manifest_bytes(repo: &str, key: &str) -> Vec<u8> {
    registry_get(
        &format!("/v2/{}/manifests/{key}", repo_path(repo)),
        MANIFEST_TYPE,
    )
}

/// The digest of the record blob of the entry for `key` in `repo`.
fn entry_config(repo: &str, key: &str) -> String {
    let manifest: Value = serde_json::from_slice(&entry_manifest_bytes(repo, key)).unwrap();
    manifest["config"]["digest"].as_str().unwrap().to_owned()
}

/// The record blob (`{key, image, record, ...}`) of the entry for `key` in `repo`.
fn entry_record(repo: &str, key: &str) -> Value {
    let config = entry_config(repo, key);
    let blob = registry_get(&format!("/v2/{}/blobs/{config}", repo_path(repo)), "*/*");
    serde_json::from_slice(&blob).unwrap()
}

/// The cache key (hex) of the entry in `state`'s results whose command contains `needle`.
fn key_of_step(repo: &str, state: &Path, needle: &str) -> String {
    exec_keys(state)
        .into_iter()
        .find(|key| {
            entry_record(repo, key)["record"]["cmd"]
                .to_string()
                .contains(needle)
        })
        .unwrap_or_else(|| panic!("no entry runs {needle:?}"))
}

/// Changes one byte of the blob `digest` (hex) on the test registry's disk
/// (the same length, other bytes): its digest no longer matches.
fn corrupt_registry_blob(digest: &str) {
    let storage =
        std::env::var("GANTRY_TEST_STATE_DIR").unwrap_or_else(|_| "/var/lib/gantry-test".into());
    let blob = Path::new(&storage).join(format!(
        "registry/storage/docker/registry/v2/blobs/sha256/{}/{digest}/data",
        &digest[..2]
    ));
    let mut corrupted = std::fs::read(&blob).unwrap_or_else(|e| panic!("{}: {e}", blob.display()));
    let at = corrupted.len() / 2;
    corrupted[at] ^= 0x20;
    std::fs::write(&blob, &corrupted).unwrap();
}

/// A fresh machine runs the pipeline after the second step's record blob in
/// `reference` was corrupted: one warning, and only that step runs (on the
/// first step's filesystem, fetched); the step after it keys on its lineage,
/// not on its image, and is a hit. Returns the engine's log.
fn runs_past_a_corrupt_entry(reference: &str, marker: &str) -> String {
    let mut b = cache_server(reference, &[]);
    let since = now();
    assert_eq!(pipeline_stdout(&b, marker), format!("{marker}\ntwo\n"));
    assert_eq!(containers_created_since(&since, b.pid()), 1);
    let log = stop(&mut b);
    assert_eq!(
        log.matches("ignoring a corrupt remote cache entry").count(),
        1,
        "{log}"
    );
    assert!(log.contains("does not match its digest"), "{log}");
    log
}

#[test]
fn a_corrupt_or_foreign_entry_is_ignored_with_a_warning_and_replaced() {
    require_runtime!();
    let repo = repository("corrupt");
    let marker = unique("corrupt");
    let mut a = cache_server(&repo, &[]);
    pipeline_stdout(&a, &marker);
    a.stop();
    let keys: Vec<String> = exec_keys(&a.state_dir()).into_iter().collect();
    // Corrupt the record blob of the second step's entry on the registry's disk
    // (the same length, other bytes): its digest no longer matches.
    let first = key_of_step(&repo, &a.state_dir(), "cat /one; echo two");
    let config = entry_config(&repo, &first)
        .trim_start_matches("sha256:")
        .to_owned();
    corrupt_registry_blob(&config);

    runs_past_a_corrupt_entry(&repo, &marker);
    // The entry was replaced by B's own.
    assert_ne!(entry_config(&repo, &first), format!("sha256:{config}"));

    // A foreign entry: the first step's entry copied under the second step's
    // tag. The key inside the record does not match, so it is never used.
    let foreign_manifest = keys.iter().find(|key| **key != first).unwrap();
    let bytes = entry_manifest_bytes(&repo, foreign_manifest);
    let put = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {MANIFEST_TYPE}"),
        ])
        .arg("--data-binary")
        .arg("@-")
        .arg(format!(
            "http://{}/v2/{}/manifests/{first}",
            registry(),
            repo_path(&repo)
        ))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(&bytes)?;
            child.wait()
        })
        .unwrap();
    assert!(put.success());
    let mut c = cache_server(&repo, &[]);
    assert_eq!(pipeline_stdout(&c, &marker), format!("{marker}\ntwo\n"));
    let log = stop(&mut c);
    assert!(log.contains("pushed for another cache key"), "{log}");
}

/// Runs the pipeline on `a` and `b` at once; returns its output (both the same).
fn run_at_once(a: &Server, b: &Server, marker: &str) -> String {
    let expected = format!("{marker}\ntwo\n");
    std::thread::scope(|scope| {
        let runs = [a, b].map(|server| scope.spawn(|| pipeline_stdout(server, marker)));
        for run in runs {
            assert_eq!(run.join().unwrap(), expected);
        }
    });
    expected
}

#[test]
fn concurrent_pushers_of_one_key_both_succeed() {
    require_runtime!();
    let repo = repository("race");
    let marker = unique("race");
    let (mut a, mut b) = (cache_server(&repo, &[]), cache_server(&repo, &[]));
    let expected = run_at_once(&a, &b, &marker);
    for server in [&mut a, &mut b] {
        let log = stop(server);
        assert_eq!(counter(&log, "lookups"), 3, "{log}");
        assert!(!log.contains("pushing to the remote cache failed"), "{log}");
    }
    let mut c = cache_server(&repo, &[]);
    let since = now();
    assert_eq!(pipeline_stdout(&c, &marker), expected);
    assert_eq!(containers_created_since(&since, c.pid()), 0);
    c.stop();
}

#[test]
fn the_auth_registry_is_used_with_docker_config_credentials() {
    require_runtime!();
    let (host, user, password) = crate::support::auth_registry();
    let repo = format!("{host}/{}/cache", unique("auth"));
    let marker = unique("auth");
    let config = tempfile::tempdir().unwrap();
    let auth = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    };
    std::fs::write(
        config.path().join("config.json"),
        json!({ "auths": { host.clone(): { "auth": auth } } }).to_string(),
    )
    .unwrap();
    let docker_config = config.path().to_str().unwrap();
    let mut a = cache_server(&repo, &[("DOCKER_CONFIG", docker_config)]);
    pipeline_stdout(&a, &marker);
    let log = stop(&mut a);
    assert_eq!(counter(&log, "pushed"), 3, "{log}");
    assert!(!log.contains(&password), "the password reached the log");
    base_layers_copied(&host, &format!("{user}:{password}"), &repo, &a.state_dir());

    let mut b = cache_server(&repo, &[("DOCKER_CONFIG", docker_config)]);
    let since = now();
    pipeline_stdout(&b, &marker);
    assert_eq!(containers_created_since(&since, b.pid()), 0);
    b.stop();

    // Credentials from --cache-auth (here GANTRY_CACHE_AUTH), the password in a
    // variable of the engine's environment, no Docker configuration.
    let empty = tempfile::tempdir().unwrap();
    let mut d = cache_server(
        &repo,
        &[
            ("DOCKER_CONFIG", empty.path().to_str().unwrap()),
            ("GANTRY_CACHE_AUTH", &format!("{user}:env:CACHE_PASSWORD")),
            ("CACHE_PASSWORD", &password),
        ],
    );
    let since = now();
    pipeline_stdout(&d, &marker);
    assert_eq!(containers_created_since(&since, d.pid()), 0);
    let log = stop(&mut d);
    assert_eq!(counter(&log, "hits"), 3, "{log}");

    // Without credentials: one warning, the pipeline runs.
    let empty = tempfile::tempdir().unwrap();
    let mut c = cache_server(&repo, &[("DOCKER_CONFIG", empty.path().to_str().unwrap())]);
    pipeline_stdout(&c, &marker);
    let log = stop(&mut c);
    assert_eq!(log.matches("WARN").count(), 1, "{log}");
}

/// The base image lives on the test registry and the cache `repo` on the
/// registry `host` (with `credentials`): no mount reaches across, so each
/// filesystem's base layers were copied into the cache's repository by their
/// digests (not exported again, nor pushed by dockerd, which compresses
/// them again). On Docker the filesystem was pushed from dockerd's store by
/// the engine, which names dockerd's image ID; a `docker push` would not.
fn base_layers_copied(host: &str, credentials: &str, repo: &str, state: &Path) {
    let path = repo_path(repo);
    let get = |what: &str, accept: &str| {
        http_get(
            host,
            Some(credentials),
            &format!("/v2/{path}/{what}"),
            accept,
        )
        .unwrap_or_else(|| panic!("GET {what} from {host}/{path} failed"))
    };
    let image = busybox();
    let (base_repo, tag) = image.rsplit_once(':').unwrap();
    let base = manifest_layers(repo_path(base_repo), tag);
    assert!(!base.is_empty());
    let keys = exec_keys(state);
    assert!(!keys.is_empty());
    for key in keys {
        let entry: Value =
            serde_json::from_slice(&get(&format!("manifests/{key}"), MANIFEST_TYPE)).unwrap();
        let config = entry["config"]["digest"].as_str().unwrap();
        let record: Value =
            serde_json::from_slice(&get(&format!("blobs/{config}"), "*/*")).unwrap();
        let filesystem = record["image"].as_str().unwrap();
        let accept = "application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.docker.distribution.manifest.v2+json";
        let manifest: Value =
            serde_json::from_slice(&get(&format!("manifests/{filesystem}"), accept)).unwrap();
        let layers: Vec<&str> = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|layer| layer["digest"].as_str().unwrap())
            .collect();
        assert!(layers.len() > base.len(), "{manifest}");
        assert_eq!(layers[..base.len()], base[..], "{manifest}");
        for digest in &layers {
            get(&format!("blobs/{digest}"), "*/*");
        }
        if !native() {
            assert!(
                manifest["annotations"]["dev.gantry.cache.runtime-id"].is_string(),
                "pushed by dockerd, not from its store: {manifest}"
            );
        }
    }
}

/// A GraphQL document file in `dir`.
fn document(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("version.graphql");
    std::fs::write(&path, "{ version }").unwrap();
    path
}

#[test]
fn a_bad_cache_reference_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for (reference, says) in [
        ("team/cache", "is not a registry host"),
        ("127.0.0.1:5000/cache:v1", "without a tag or digest"),
        ("https://ghcr.io/org/cache", "leave out the scheme"),
    ] {
        let out = gantry(dir.path())
            .args(["query", "--in-process", "--cache", reference])
            .arg(document(dir.path()))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains(says), "{reference}: {stderr}");
    }
}

#[test]
fn a_docker_machine_and_a_native_machine_share_one_cache() {
    require_runtime!();
    if gantry_native::unavailable_reason().is_some() || !crate::support::docker_available() {
        eprintln!("skipping: needs both the Docker and the native runtime");
        return;
    }
    let layout = tempfile::tempdir().unwrap();
    let marker = unique("mixed");
    // A registry, and a layout directory (where the native runtime's entries
    // name the base image's layers, which the Docker machine fetches).
    let remotes = [
        repository("mixed"),
        layout_reference(&layout.path().join("cache")),
    ];
    let runs = remotes
        .iter()
        .flat_map(|repo| [(repo, "docker", "native"), (repo, "native", "docker")]);
    for (n, (repo, first, second)) in runs.enumerate() {
        let marker = format!("{marker}-{n}-{first}");
        let mut a = cache_server(repo, &[("GANTRY_RUNTIME", first)]);
        let cold = pipeline_stdout(&a, &marker);
        let log = stop(&mut a);
        assert_eq!(counter(&log, "pushed"), 3, "{log}");
        let mut b = cache_server(repo, &[("GANTRY_RUNTIME", second)]);
        let data = run(&b, DOWNSTREAM, vars(&marker));
        let log = stop(&mut b);
        assert_eq!(
            text(
                &data,
                "container.from.withExec.withExec.withExec.withExec.stdout"
            ),
            "4096\ntwo\n"
        );
        assert!(cold.starts_with(&marker));
        // The three cached steps were hits (and are recorded locally);
        // only the new step ran, on the filesystem the other runtime pushed.
        assert_eq!(counter(&log, "hits"), 3, "{first} → {second}: {log}");
        assert_eq!(counter(&log, "filesystems_fetched"), 1, "{log}");
        assert_eq!(exec_keys(&b.state_dir()).len(), 4, "{log}");
    }
}

#[test]
fn a_registry_that_never_answers_is_one_warning_after_the_lookup_timeout() {
    require_runtime!();
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(64) {
            held.push(stream);
        }
    });
    let repo = format!("127.0.0.1:{port}/silent/cache");
    let marker = unique("slow");
    let mut a = cache_server(&repo, &[]);
    assert_eq!(pipeline_stdout(&a, &marker), format!("{marker}\ntwo\n"));
    let log = stop(&mut a);
    assert_eq!(
        log.matches("the remote cache is unavailable").count(),
        1,
        "{log}"
    );
    assert!(log.contains("no answer within 15 s"), "{log}");
    // One lookup waited; the others did not ask again.
    assert_eq!(counter(&log, "lookups"), 1, "{log}");
}

#[test]
fn a_missing_filesystem_makes_its_step_run_here() {
    require_runtime!();
    let repo = repository("nofs");
    let marker = unique("nofs");
    let mut a = cache_server(&repo, &[]);
    pipeline_stdout(&a, &marker);
    stop(&mut a);
    // Delete the third step's filesystem image from the registry; its entry stays.
    let third = entry_record(&repo, &key_of_step(&repo, &a.state_dir(), "cat /one /two"));
    let image = third["image"].as_str().unwrap();
    let deleted = Command::new("curl")
        .args(["-sf", "-X", "DELETE"])
        .arg(format!(
            "http://{}/v2/{}/manifests/{image}",
            registry(),
            repo_path(&repo)
        ))
        .status()
        .unwrap();
    assert!(deleted.success());

    let mut b = cache_server(&repo, &[]);
    let since = now();
    let data = run(&b, DOWNSTREAM, vars(&marker));
    assert_eq!(
        text(
            &data,
            "container.from.withExec.withExec.withExec.withExec.stdout"
        ),
        "4096\ntwo\n"
    );
    // The third step changed no file, so its filesystem is the second's: both
    // entries lost it. Both steps ran again here, on the first's filesystem
    // (pulled), and then the fourth; the first step was not run.
    let created = containers_created_since(&since, b.pid());
    let log = stop(&mut b);
    assert_eq!(created, 3, "{log}");
    assert_eq!(
        log.matches("filesystem cannot be fetched").count(),
        2,
        "{log}"
    );
    assert_eq!(
        counter(&log, "filesystems_fetched"),
        fetched_from_a_machine_on_this_daemon(),
        "{log}"
    );
}

/// How many filesystems a machine fetches for one it needs from an entry
/// that a machine on the same Docker daemon pushed: none, since the daemon
/// holds the image under the ID the filesystem manifest names (pushed from
/// dockerd's layer store); one with the native runtime (a snapshot store
/// per state directory).
fn fetched_from_a_machine_on_this_daemon() -> usize {
    usize::from(native())
}

#[test]
fn a_fleet_of_ten_runners_runs_each_step_once() {
    require_runtime!();
    let repo = repository("fleet");
    let marker = unique("fleet");
    let expected = format!("{marker}\ntwo\n");
    let mut created = Vec::new();
    // Ten state directories; with Docker, every other runner on the second daemon.
    let other = other_daemon();
    for i in 0..10 {
        let daemon = other.filter(|_| i % 2 == 1);
        let mut runner = cache_server_on(daemon, &repo, &[]);
        let since = now();
        assert_eq!(pipeline_stdout(&runner, &marker), expected);
        created.push(created_on(daemon, &since, &runner));
        stop(&mut runner);
    }
    assert_eq!(created, [3, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
}

/// Machine B's remote hits are recorded in its state directory: its next
/// engine runs the pipeline fully cached with the registry stopped, without
/// a lookup.
#[test]
fn remote_hits_are_recorded_locally_and_need_no_registry_next_time() {
    require_runtime!();
    let mut registry = PrivateRegistry::start(false);
    let repo = format!("{}/{}/cache", registry.host(), unique("writeback"));
    let marker = unique("writeback");
    let mut a = cache_server(&repo, &[]);
    let cold = pipeline_stdout(&a, &marker);
    let log = stop(&mut a);
    assert_eq!(counter(&log, "pushed"), 3, "{log}");

    let mut b = cache_server(&repo, &[]);
    assert_eq!(pipeline_stdout(&b, &marker), cold);
    let log = stop(&mut b);
    assert_eq!(counter(&log, "hits"), 3, "{log}");
    assert_eq!(exec_keys(&b.state_dir()), exec_keys(&a.state_dir()));

    registry.stop();
    b.restart();
    let since = now();
    assert_eq!(pipeline_stdout(&b, &marker), cold);
    assert_eq!(containers_created_since(&since, b.pid()), 0);
    let log = stop(&mut b);
    assert_eq!(counter(&log, "lookups"), 0, "{log}");
    assert!(!log.contains("WARN"), "{log}");
}

/// `oci-layout:DIR` for the layout directory `dir`.
fn layout_reference(dir: &Path) -> String {
    format!("oci-layout:{}", dir.display())
}

/// The keys a layout's index.json names (its ref names), checked to be an
/// OCI layout with no temporary file left behind.
fn layout_keys(dir: &Path) -> BTreeSet<String> {
    assert!(dir.join("oci-layout").is_file());
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// The annotation of a layout's layer that names where the layer came from.
const SOURCE_ANNOTATION: &str = "dev.gantry.cache.source";

/// Every filesystem of `remote` starts with the base image's layers, and
/// only the steps' own layers were written. In a layout directory both
/// runtimes name the base layers by the repository they were pulled from
/// and do not copy them (a machine that needs them fetches them from there,
/// as machine C did); in a registry they are mounted from it. The Docker
/// runtime reads its layers from dockerd's store and so keeps dockerd's image
/// ID in `dev.gantry.cache.runtime-id`.
fn base_layers_in(remote: &Remote) {
    let image = busybox();
    let (base_repo, tag) = image.rsplit_once(':').unwrap();
    let base = manifest_layers(repo_path(base_repo), tag);
    assert!(!base.is_empty());
    let mut runtime_ids = 0;
    for key in remote.keys() {
        let filesystem = remote.filesystem(&key);
        let manifest: Value =
            serde_json::from_slice(&remote.read(&filesystem, true).unwrap()).unwrap();
        let layers = manifest["layers"].as_array().unwrap();
        assert!(layers.len() > base.len(), "{manifest}");
        for layer in &layers[base.len()..] {
            assert!(
                remote
                    .read(layer["digest"].as_str().unwrap(), false)
                    .is_some(),
                "{manifest}"
            );
        }
        for (layer, base) in layers.iter().zip(&base) {
            assert_eq!(layer["digest"], *base, "{manifest}");
            if let Remote::Layout(_) = remote {
                assert_eq!(
                    layer["annotations"][SOURCE_ANNOTATION], base_repo,
                    "{manifest}"
                );
                assert!(
                    remote.read(base, false).is_none(),
                    "{base} copied: {manifest}"
                );
            }
        }
        // dockerd's image ID, where the packed tars' diff IDs do not give it,
        // is kept for a reader on the same daemon; the native runtime's is
        // the config's digest.
        let runtime_id = &manifest["annotations"]["dev.gantry.cache.runtime-id"];
        if let Some(id) = runtime_id.as_str() {
            assert_ne!(id, manifest["config"]["digest"], "{manifest}");
            runtime_ids += 1;
        }
    }
    // A's step layers were committed by dockerd, whose tars are not the
    // packed ones (a layer loaded from the cache packs as it came).
    if native() {
        assert_eq!(runtime_ids, 0);
    } else {
        assert!(runtime_ids > 0);
    }
}

#[test]
fn an_oci_layout_directory_carries_the_cache_between_two_machines() {
    require_runtime!();
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("gantry-cache");
    let reference = layout_reference(&dir);
    let a = three_machines(&reference, &unique("layout"));
    let keys = layout_keys(&dir);
    assert_eq!(keys.len(), 4);
    assert!(exec_keys(&a.state_dir()).is_subset(&keys));
    base_layers_in(&Remote::Layout(dir.clone()));

    // Listed and pruned like a registry's entries; a prune leaves no blob
    // that no entry reaches.
    let listed = cache_json(a.dir(), &["ls", "--remote", &reference]);
    let listed: BTreeSet<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, keys);
    let pruned = cache_json(
        a.dir(),
        &["prune", "--remote", &reference, "--older-than", "0s"],
    );
    assert_eq!(pruned["entries"].as_array().unwrap().len(), 4, "{pruned}");
    assert!(layout_keys(&dir).is_empty());
    assert_eq!(
        std::fs::read_dir(dir.join("blobs/sha256")).unwrap().count(),
        0
    );
}

#[test]
fn a_corrupt_blob_in_an_oci_layout_is_a_warning_and_is_replaced() {
    require_runtime!();
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("gantry-cache");
    let reference = layout_reference(&dir);
    let marker = unique("layout-corrupt");
    // Two engines push at once: the first writer of each key wins, both succeed.
    let (mut a, mut other) = (cache_server(&reference, &[]), cache_server(&reference, &[]));
    let expected = run_at_once(&a, &other, &marker);
    for server in [&mut a, &mut other] {
        let log = stop(server);
        assert!(!log.contains("WARN"), "{log}");
    }
    assert_eq!(layout_keys(&dir), exec_keys(&a.state_dir()));

    // The second step's record blob, one byte changed.
    let record_blob = |key: &str| -> std::path::PathBuf {
        let index: Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        let manifest = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == key)
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_owned();
        let manifest: Value = serde_json::from_slice(
            &std::fs::read(dir.join("blobs/sha256").join(manifest)).unwrap(),
        )
        .unwrap();
        dir.join("blobs/sha256").join(
            manifest["config"]["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        )
    };
    let store = gantry_store::DiskStore::open(a.state_dir()).unwrap();
    let second = exec_keys(&a.state_dir())
        .into_iter()
        .find(|key| {
            let key = gantry_core::Digest::from_hex(key).unwrap();
            let record = gantry_core::store::Store::get(&store, RecordKind::Exec, &key)
                .unwrap()
                .unwrap();
            String::from_utf8_lossy(&record).contains("cat /one; echo two")
        })
        .unwrap();
    let blob = record_blob(&second);
    let mut corrupted = std::fs::read(&blob).unwrap();
    let at = corrupted.len() / 2;
    corrupted[at] ^= 0x20;
    std::fs::write(&blob, &corrupted).unwrap();

    let log = runs_past_a_corrupt_entry(&reference, &marker);
    assert_eq!(counter(&log, "pushed"), 1, "{log}");
    // Replaced: the index names a new, sound record.
    use sha2::Digest as _;
    let replaced = record_blob(&second);
    assert_ne!(replaced, blob);
    let data = std::fs::read(&replaced).unwrap();
    assert_eq!(
        format!("{:x}", sha2::Sha256::digest(&data)),
        replaced.file_name().unwrap().to_string_lossy()
    );
    let mut c = cache_server(&reference, &[]);
    let since = now();
    assert_eq!(pipeline_stdout(&c, &marker), expected);
    assert_eq!(containers_created_since(&since, c.pid()), 0);
    let log = stop(&mut c);
    assert!(!log.contains("WARN"), "{log}");
}

/// `gantry cache prune --remote` on the basic-auth registry: without
/// credentials it is refused with the registry's answer; with `--cache-auth`
/// the deletes go through, authenticated, and the password shows nowhere.
#[test]
fn a_remote_prune_on_the_auth_registry_deletes_with_the_credentials() {
    require_runtime!();
    let (host, user, password) = crate::support::auth_registry();
    let repo = format!("{host}/{}/cache", unique("auth-prune"));
    let marker = unique("auth-prune");
    let empty = tempfile::tempdir().unwrap();
    let no_docker_config = empty.path().to_str().unwrap();
    let auth = format!("{user}:env:CACHE_PASSWORD");
    let mut a = cache_server(
        &repo,
        &[
            ("DOCKER_CONFIG", no_docker_config),
            ("GANTRY_CACHE_AUTH", &auth),
            ("CACHE_PASSWORD", &password),
        ],
    );
    pipeline_stdout(&a, &marker);
    let log = stop(&mut a);
    assert_eq!(counter(&log, "pushed"), 3, "{log}");

    let admin = |args: &[&str], with_auth: bool| {
        let mut command = gantry(a.dir());
        command
            .arg("cache")
            .args(args)
            .args(["--remote", &repo, "--json"])
            .env("DOCKER_CONFIG", no_docker_config)
            .env("CACHE_PASSWORD", &password)
            .env_remove("GANTRY_CACHE_AUTH");
        if with_auth {
            command.args(["--cache-auth", &auth]);
        }
        let out = command.output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(&password), "the password was shown: {all}");
        (out.status.success(), all)
    };
    let (ok, said) = admin(&["prune", "--older-than", "0s"], false);
    assert!(!ok, "{said}");
    assert!(said.contains(&repo), "{said}");
    let (ok, said) = admin(&["ls"], true);
    assert!(ok, "{said}");
    assert_eq!(
        serde_json::from_str::<Value>(&said)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // Measuring for --max-size reads the filesystem images with the credentials too.
    let (ok, said) = admin(&["prune", "--max-size", "0", "--dry-run"], true);
    assert!(ok, "{said}");
    let dry: Value = serde_json::from_str(&said).unwrap();
    assert_eq!(dry["entries"].as_array().unwrap().len(), 3, "{said}");
    assert!(dry["bytes"].as_u64().unwrap() > 4096, "{said}");
    let (ok, said) = admin(&["prune", "--older-than", "0s"], true);
    assert!(ok, "{said}");
    let pruned: Value = serde_json::from_str(&said).unwrap();
    assert_eq!(pruned["entries"].as_array().unwrap().len(), 3, "{said}");
    let (ok, said) = admin(&["ls"], true);
    assert!(ok, "{said}");
    assert_eq!(serde_json::from_str::<Value>(&said).unwrap(), json!([]));
}

/// The scripts of `PIPELINE`'s three steps, in order.
const STEPS: [&str; 3] = [
    "echo $0 > /one; head -c 4096 /dev/urandom > /noise",
    "cat /one; echo two > /two",
    "cat /one /two",
];

/// `PIPELINE` up to its `steps`th step (the same cache keys), printing that
/// step's output.
fn first_steps(steps: usize) -> String {
    let mut query = String::from(
        "query($image: String!, $marker: String!) { container { from(address: $image) { ",
    );
    for (at, script) in STEPS[..steps].iter().enumerate() {
        let marker = if at == 0 { ", $marker" } else { "" };
        query.push_str(&format!(
            r#"withExec(args: ["sh", "-c", "{script}"{marker}]) {{ "#
        ));
    }
    query.push_str("stdout ");
    query.push_str(&"} ".repeat(steps + 3));
    query
}

/// Pushes `PIPELINE`'s steps to `reference` one engine run each, over a
/// second apart (an entry's push time is in whole seconds), so that the
/// entries' push order is the steps' order. Returns the stopped engine and
/// the keys, oldest first.
fn push_one_step_at_a_time(reference: &str, marker: &str) -> (Server, Vec<String>) {
    let mut a = cache_server(reference, &[]);
    let mut keys = Vec::new();
    for steps in 1..=STEPS.len() {
        if steps > 1 {
            std::thread::sleep(std::time::Duration::from_millis(1100));
            a.restart();
        }
        let before = exec_keys(&a.state_dir());
        run(&a, &first_steps(steps), vars(marker));
        let log = stop(&mut a);
        assert_eq!(counter(&log, "pushed"), 1, "{log}");
        let new: Vec<String> = (&exec_keys(&a.state_dir()) - &before).into_iter().collect();
        assert_eq!(new.len(), 1, "{new:?}");
        keys.extend(new);
    }
    (a, keys)
}

/// A remote cache read behind gantry's back, to check what a prune left.
enum Remote {
    /// A repository on the test registry.
    Registry(String),
    /// An OCI layout directory.
    Layout(std::path::PathBuf),
}

impl Remote {
    fn reference(&self) -> String {
        match self {
            Self::Registry(repo) => repo.clone(),
            Self::Layout(dir) => layout_reference(dir),
        }
    }

    /// The entries' keys (the registry's 64-hex tags; the layout's ref names).
    fn keys(&self) -> BTreeSet<String> {
        match self {
            Self::Registry(repo) => {
                let tags = registry_get(
                    &format!("/v2/{}/tags/list", repo_path(repo)),
                    "application/json",
                );
                let tags: Value = serde_json::from_slice(&tags).unwrap();
                tags["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|tag| tag.as_str())
                    .filter(|tag| tag.len() == 64 && tag.bytes().all(|b| b.is_ascii_hexdigit()))
                    .map(str::to_owned)
                    .collect()
            }
            Self::Layout(dir) => layout_keys(dir),
        }
    }

    /// The manifest or blob `digest`; `None` when it is gone.
    fn read(&self, digest: &str, manifest: bool) -> Option<Vec<u8>> {
        match self {
            Self::Registry(repo) => {
                let kind = if manifest { "manifests" } else { "blobs" };
                registry_try_get(
                    &format!("/v2/{}/{kind}/{digest}", repo_path(repo)),
                    &[
                        MANIFEST_TYPE,
                        "application/vnd.oci.image.index.v1+json",
                        "application/vnd.docker.distribution.manifest.v2+json",
                    ]
                    .join(", "),
                )
            }
            Self::Layout(dir) => std::fs::read(
                dir.join("blobs/sha256")
                    .join(digest.trim_start_matches("sha256:")),
            )
            .ok(),
        }
    }

    /// The manifest digest of the entry for `key`.
    fn entry_manifest(&self, key: &str) -> String {
        use sha2::Digest as _;
        let bytes = match self {
            Self::Registry(repo) => entry_manifest_bytes(repo, key),
            Self::Layout(dir) => {
                let index: Value =
                    serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap())
                        .unwrap();
                let digest = index["manifests"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == key)
                    .unwrap()["digest"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                return digest;
            }
        };
        format!("sha256:{:x}", sha2::Sha256::digest(&bytes))
    }

    /// The filesystem image (manifest digest) the entry for `key` names.
    fn filesystem(&self, key: &str) -> String {
        let manifest = self.entry_manifest(key);
        let manifest: Value = serde_json::from_slice(&self.read(&manifest, true).unwrap()).unwrap();
        let record = self
            .read(manifest["config"]["digest"].as_str().unwrap(), false)
            .unwrap();
        let record: Value = serde_json::from_slice(&record).unwrap();
        record["image"].as_str().unwrap().to_owned()
    }

    /// What the entry for `key` occupies, by digest: its manifest, its
    /// record, and its filesystem image's manifest, config and layers.
    fn footprint(&self, key: &str) -> std::collections::BTreeMap<String, u64> {
        let mut footprint = std::collections::BTreeMap::new();
        let described = |manifest: &str, footprint: &mut std::collections::BTreeMap<_, _>| {
            let bytes = self.read(manifest, true).unwrap();
            footprint.insert(manifest.to_owned(), bytes.len() as u64);
            let manifest: Value = serde_json::from_slice(&bytes).unwrap();
            let layers = manifest["layers"].as_array().unwrap().iter();
            for blob in std::iter::once(&manifest["config"]).chain(layers) {
                // A layer named by the repository it came from (the native
                // runtime's layout entries) is not held here.
                if blob["annotations"][SOURCE_ANNOTATION].is_string() {
                    continue;
                }
                footprint.insert(
                    blob["digest"].as_str().unwrap().to_owned(),
                    blob["size"].as_u64().unwrap(),
                );
            }
        };
        described(&self.entry_manifest(key), &mut footprint);
        described(&self.filesystem(key), &mut footprint);
        footprint
    }

    /// The bytes the entries for `keys` occupy together (shared blobs once).
    fn bytes(&self, keys: &[String]) -> u64 {
        let mut all = std::collections::BTreeMap::new();
        for key in keys {
            all.extend(self.footprint(key));
        }
        all.values().sum()
    }
}

/// `gantry cache prune --remote REF --max-size SIZE` on `remote`: the two
/// oldest of three entries go, the newest stays with the filesystem it
/// shares with the second; a dry run removes nothing; a fresh machine
/// takes the kept entry (and its filesystem) from the cache and runs the
/// removed step again.
fn prune_by_size_keeps_the_newest(remote: &Remote, marker: &str) {
    let reference = remote.reference();
    let (a, keys) = push_one_step_at_a_time(&reference, marker);
    let all: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(remote.keys(), all);
    let (first_fs, shared_fs) = (remote.filesystem(&keys[0]), remote.filesystem(&keys[1]));
    // The third step changes no file: its filesystem is the second's.
    assert_eq!(remote.filesystem(&keys[2]), shared_fs);
    assert_ne!(first_fs, shared_fs);
    let newest = remote.bytes(&keys[2..]);
    let total = remote.bytes(&keys);
    assert!(remote.bytes(&keys[1..]) > newest);

    let prune = |size: u64, dry_run: bool| {
        let size = size.to_string();
        let mut args = vec!["prune", "--remote", &reference, "--max-size", &size];
        if dry_run {
            args.push("--dry-run");
        }
        cache_json(a.dir(), &args)
    };
    let removed = |pruned: &Value| -> Vec<String> {
        pruned["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["key"].as_str().unwrap().to_owned())
            .collect()
    };
    // One byte less than the newest entry occupies: everything would go.
    let dry = prune(newest - 1, true);
    assert_eq!(removed(&dry), keys, "{dry}");
    assert_eq!(dry["left_bytes"], 0, "{dry}");
    let dry = prune(newest, true);
    assert_eq!(dry["dry_run"], true, "{dry}");
    assert_eq!(removed(&dry), keys[..2], "{dry}");
    assert_eq!(remote.keys(), all, "a dry run removed entries");
    assert!(remote.read(&first_fs, true).is_some());

    let done = prune(newest, false);
    assert_eq!(removed(&done), keys[..2], "{done}");
    assert_eq!(done["filesystems"], json!([first_fs]), "{done}");
    assert_eq!(done["kept"], 1, "{done}");
    assert_eq!(done["left_bytes"], newest, "{done}");
    assert_eq!(done["bytes"], total - newest, "{done}");
    assert_eq!(remote.keys(), BTreeSet::from([keys[2].clone()]));
    assert!(remote.read(&first_fs, true).is_none(), "{first_fs} stayed");
    assert!(remote.read(&shared_fs, true).is_some(), "{shared_fs} went");
    if let Remote::Layout(dir) = remote {
        // The directory holds what the kept entry reaches, no other blob.
        let held: BTreeSet<String> = std::fs::read_dir(dir.join("blobs/sha256"))
            .unwrap()
            .map(|entry| format!("sha256:{}", entry.unwrap().file_name().to_string_lossy()))
            .collect();
        let reached: BTreeSet<String> = remote.footprint(&keys[2]).into_keys().collect();
        assert_eq!(held, reached);
    }

    // A fresh machine (with Docker, on another daemon, which holds none of
    // A's images): the two removed steps run again (the engine evaluates
    // a pipeline from its first step); the kept third is a hit, and the step
    // on top of it runs on its filesystem, the shared one, fetched from the
    // cache (were it gone, the third would run too).
    let other = other_daemon();
    let mut b = cache_server_on(other, &reference, &[]);
    let since = now();
    let data = run(&b, DOWNSTREAM, vars(marker));
    assert_eq!(
        text(
            &data,
            "container.from.withExec.withExec.withExec.withExec.stdout"
        ),
        "4096\ntwo\n"
    );
    let created = created_on(other, &since, &b);
    let log = stop(&mut b);
    assert_eq!(created, 3, "{log}");
    assert_eq!(counter(&log, "hits"), 1, "{log}");
    assert_eq!(counter(&log, "filesystems_fetched"), 1, "{log}");
    assert!(!log.contains("WARN"), "{log}");
}

#[test]
fn a_remote_prune_by_size_removes_the_oldest_entries_and_keeps_a_shared_filesystem() {
    require_runtime!();
    prune_by_size_keeps_the_newest(
        &Remote::Registry(repository("prune-size")),
        &unique("prune-size"),
    );
}

#[test]
fn a_prune_by_size_of_an_oci_layout_removes_the_oldest_entries_and_their_blobs() {
    require_runtime!();
    let cache = tempfile::tempdir().unwrap();
    prune_by_size_keeps_the_newest(
        &Remote::Layout(cache.path().join("gantry-cache")),
        &unique("layout-size"),
    );
}

/// `PIPELINE`'s first two steps, then a path read on the second's filesystem:
/// the contents and size of the file the first step wrote.
const READ_PIPELINE: &str = r#"
query($image: String!, $marker: String!) {
  container { from(address: $image) {
    withExec(args: ["sh", "-c", "echo $0 > /one; head -c 4096 /dev/urandom > /noise", $marker]) {
    withExec(args: ["sh", "-c", "cat /one; echo two > /two"]) {
      file(path: "/one") { contents size } } } } }
}"#;

/// `READ_PIPELINE`'s answer: the file's contents and size.
fn read_one(server: &Server, marker: &str) -> (String, u64) {
    let data = run(server, READ_PIPELINE, vars(marker));
    let file = at(&data, "container.from.withExec.withExec.file");
    (
        file["contents"].as_str().unwrap().to_owned(),
        file["size"].as_u64().unwrap(),
    )
}

/// What `read_one` answers for `marker`.
fn read_answer(marker: &str) -> (String, u64) {
    (format!("{marker}\n"), marker.len() as u64 + 1)
}

/// The keys (hex) of the path reads stored in `state`.
fn read_keys(state: &Path) -> BTreeSet<String> {
    let store = gantry_store::DiskStore::open(state).unwrap();
    store
        .state_dir()
        .records(RecordKind::PathRead)
        .unwrap()
        .iter()
        .map(|record| record.key.hex())
        .collect()
}

/// Machine A runs `READ_PIPELINE` with the remote cache `reference` and
/// pushes its two steps and its one path read; returns A (stopped) and the
/// read's key.
fn machine_a_reads(reference: &str, marker: &str) -> (Server, String) {
    let mut a = cache_server(reference, &[]);
    assert_eq!(read_one(&a, marker), read_answer(marker));
    let log = stop(&mut a);
    assert_eq!(counter(&log, "pushed"), 2, "{log}");
    assert_eq!(counter(&log, "reads_shared"), 1, "{log}");
    let keys = read_keys(&a.state_dir());
    assert_eq!(keys.len(), 1, "{keys:?}");
    let key = keys.into_iter().next().unwrap();
    (a, key)
}

/// Machine B (a fresh state directory and, with Docker, its own daemon)
/// answers `contents` and `size` of a cached step's file from the remote
/// cache: no container, no filesystem fetched.
fn machine_b_reads_without_the_filesystem(reference: &str, marker: &str, key: &str) {
    let other = other_daemon();
    let mut b = cache_server_on(other, reference, &[]);
    let since = now();
    assert_eq!(read_one(&b, marker), read_answer(marker));
    assert_eq!(
        created_on(other, &since, &b),
        0,
        "machine B created a container"
    );
    let log = stop(&mut b);
    assert_eq!(counter(&log, "hits"), 2, "{log}");
    assert_eq!(counter(&log, "reads_found"), 1, "{log}");
    assert_eq!(counter(&log, "read_files_fetched"), 1, "{log}");
    assert_eq!(counter(&log, "filesystems_fetched"), 0, "{log}");
    assert_eq!(counter(&log, "reads_shared"), 0, "{log}");
    assert!(!log.contains("WARN"), "{log}");
    // Recorded locally under the same key: B's next engine needs no lookup.
    assert_eq!(read_keys(&b.state_dir()), BTreeSet::from([key.to_owned()]));
    if native() {
        // The base image was resolved, not downloaded: no layer in B's
        // snapshot store.
        let layers = b.state_dir().join("snapshots/layers");
        let count = std::fs::read_dir(&layers).map_or(0, |dir| dir.count());
        assert_eq!(count, 0, "{} holds layers", layers.display());
    }
    if let Some(daemon) = other {
        // Nothing was pulled from the cache onto B's daemon.
        let images = daemon.docker(&["image", "ls", "--digests", "--format", "{{.Repository}}"]);
        let images = String::from_utf8_lossy(&images.stdout);
        assert!(!images.contains(reference), "{images}");
    }
}

#[test]
fn machine_b_answers_a_path_read_from_the_remote_cache_without_the_filesystem() {
    require_runtime!();
    let repo = repository("pathread");
    let marker = unique("pathread");
    let (a, key) = machine_a_reads(&repo, &marker);
    // An entry of its own kind, the file's contents its one layer.
    let manifest: Value = serde_json::from_slice(&entry_manifest_bytes(&repo, &key)).unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.gantry.cache.read.v1+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(layers[0]["size"], marker.len() + 1);
    machine_b_reads_without_the_filesystem(&repo, &marker, &key);
    // Listed as a path read, beside the two steps.
    let listed = cache_json(a.dir(), &["ls", "--remote", &repo]);
    let kinds: BTreeSet<(String, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| (entry["kind"].to_string(), entry["command"].to_string()))
        .filter(|(kind, _)| kind.contains("path-read"))
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([(r#""path-read""#.into(), r#""read /one""#.into())]),
        "{listed}"
    );
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
}

/// A fresh machine runs `READ_PIPELINE` from `repo`, where a blob of the
/// read's entry was corrupted: one warning, the path is read here (the
/// step's filesystem fetched, or found on a shared daemon) and the read shared again; `reads_found`: 1
/// when the corrupt blob is a file (the tree was sound), 0 for the record.
/// Returns the machine (stopped) and its log.
fn reads_past_a_corrupt_blob(repo: &str, marker: &str, reads_found: usize) -> (Server, String) {
    let mut b = cache_server(repo, &[]);
    assert_eq!(read_one(&b, marker), read_answer(marker));
    let log = stop(&mut b);
    assert_eq!(
        log.matches("ignoring a corrupt remote cache entry").count(),
        1,
        "{log}"
    );
    assert!(log.contains("does not match its digest"), "{log}");
    assert_eq!(counter(&log, "reads_found"), reads_found, "{log}");
    assert_eq!(
        counter(&log, "filesystems_fetched"),
        fetched_from_a_machine_on_this_daemon(),
        "{log}"
    );
    assert_eq!(counter(&log, "reads_shared"), 1, "{log}");
    (b, log)
}

#[test]
fn a_corrupt_path_read_entry_is_ignored_with_a_warning_and_the_path_is_read_here() {
    require_runtime!();
    let repo = repository("pathread-corrupt");
    let marker = unique("pathread-corrupt");
    let (_a, key) = machine_a_reads(&repo, &marker);
    let config = entry_config(&repo, &key)
        .trim_start_matches("sha256:")
        .to_owned();
    corrupt_registry_blob(&config);

    // One warning; the read falls back to the filesystem, fetched, and the
    // entry is replaced.
    reads_past_a_corrupt_blob(&repo, &marker, 0);
    assert_ne!(entry_config(&repo, &key), format!("sha256:{config}"));

    // The replaced entry serves the next machine.
    machine_b_reads_without_the_filesystem(&repo, &marker, &key);
}

/// `READ_PIPELINE` asking only for the file's size.
const SIZE_PIPELINE: &str = r#"
query($image: String!, $marker: String!) {
  container { from(address: $image) {
    withExec(args: ["sh", "-c", "echo $0 > /one; head -c 4096 /dev/urandom > /noise", $marker]) {
    withExec(args: ["sh", "-c", "cat /one; echo two > /two"]) {
      file(path: "/one") { size } } } } }
}"#;

#[test]
fn a_path_read_from_the_remote_cache_fetches_a_file_only_when_its_contents_are_read() {
    require_runtime!();
    let repo = repository("pathread-lazy");
    let marker = unique("pathread-lazy");
    let (_a, key) = machine_a_reads(&repo, &marker);

    // The size is in the tree: the file itself is not fetched, and the read
    // is not recorded on B (its contents are not there).
    let mut b = cache_server(&repo, &[]);
    let data = run(&b, SIZE_PIPELINE, vars(&marker));
    let size = at(&data, "container.from.withExec.withExec.file")["size"].as_u64();
    assert_eq!(size, Some(read_answer(&marker).1));
    let log = stop(&mut b);
    assert_eq!(counter(&log, "reads_found"), 1, "{log}");
    assert_eq!(counter(&log, "read_files_fetched"), 0, "{log}");
    assert_eq!(counter(&log, "filesystems_fetched"), 0, "{log}");
    assert!(read_keys(&b.state_dir()).is_empty());

    // The contents, on the same state directory: the file is fetched once,
    // and the read recorded for the next engine.
    b.restart();
    assert_eq!(read_one(&b, &marker), read_answer(&marker));
    let log = stop(&mut b);
    assert_eq!(counter(&log, "read_files_fetched"), 1, "{log}");
    assert_eq!(counter(&log, "filesystems_fetched"), 0, "{log}");
    assert!(!log.contains("WARN"), "{log}");
    assert_eq!(read_keys(&b.state_dir()), BTreeSet::from([key]));
}

#[test]
fn a_registry_gone_before_a_read_file_is_fetched_is_a_clear_error_until_it_is_back() {
    require_runtime!();
    let mut registry = PrivateRegistry::start(false);
    let repo = format!("{}/{}/cache", registry.host(), unique("pathread-gone"));
    let marker = unique("pathread-gone");
    let (_a, _key) = machine_a_reads(&repo, &marker);

    // The read is found and answers the size; then the registry goes away:
    // neither the file nor the step's filesystem (to read it here) can be
    // had, and reading the contents says so.
    let b = cache_server(&repo, &[]);
    let data = run(&b, SIZE_PIPELINE, vars(&marker));
    let size = at(&data, "container.from.withExec.withExec.file")["size"].as_u64();
    assert_eq!(size, Some(read_answer(&marker).1));
    registry.stop();
    let failed = b.query_vars(READ_PIPELINE, &vars(&marker));
    let message = error_message(&failed);
    assert!(
        message.contains("a file read from the remote cache, cannot be fetched")
            && message.contains("reading /one here failed"),
        "{message}"
    );

    // The registry is back: the next read gets the file (through the
    // step's filesystem: the engine gave up on the cache's lookups).
    registry.restart();
    assert_eq!(read_one(&b, &marker), read_answer(&marker));
}

#[test]
fn a_corrupt_file_of_a_path_read_is_a_warning_and_the_path_is_read_here() {
    require_runtime!();
    let repo = repository("pathread-corrupt-file");
    let marker = unique("pathread-corrupt-file");
    let (_a, key) = machine_a_reads(&repo, &marker);
    let manifest: Value = serde_json::from_slice(&entry_manifest_bytes(&repo, &key)).unwrap();
    let file = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    corrupt_registry_blob(file.trim_start_matches("sha256:"));

    // The tree is sound, so the read is found; its file is not, so when
    // the contents are read the path is read here (from the step's
    // filesystem, fetched) and shared again. (The registry keeps the
    // corrupt file: a push does not upload a blob it has.)
    let (b, log) = reads_past_a_corrupt_blob(&repo, &marker, 1);
    assert_eq!(counter(&log, "read_files_fetched"), 0, "{log}");
    assert_eq!(read_keys(&b.state_dir()), BTreeSet::from([key]));
}

#[test]
fn read_mode_pushes_no_path_read() {
    require_runtime!();
    let repo = repository("pathread-ro");
    let marker = unique("pathread-ro");
    let mut a = cache_server(&repo, &[("GANTRY_CACHE_MODE", "read")]);
    assert_eq!(read_one(&a, &marker), read_answer(&marker));
    let log = stop(&mut a);
    assert_eq!(counter(&log, "reads_asked"), 1, "{log}");
    assert_eq!(counter(&log, "reads_shared"), 0, "{log}");
    let keys = read_keys(&a.state_dir());
    assert_eq!(keys.len(), 1, "{keys:?}");
    // The registry has no entry under the read's key.
    let key = keys.into_iter().next().unwrap();
    let status = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["-H", &format!("Accept: {MANIFEST_TYPE}")])
        .arg(format!(
            "http://{}/v2/{}/manifests/{key}",
            registry(),
            repo_path(&repo)
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout), "404");
}

#[test]
fn an_oci_layout_directory_carries_path_reads_and_prunes_them() {
    require_runtime!();
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("gantry-cache");
    let reference = layout_reference(&dir);
    let marker = unique("layout-read");
    let (a, key) = machine_a_reads(&reference, &marker);
    assert!(layout_keys(&dir).contains(&key));
    machine_b_reads_without_the_filesystem(&reference, &marker, &key);

    let listed = cache_json(a.dir(), &["ls", "--remote", &reference]);
    let read = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["key"] == key.as_str())
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(read["kind"], "path-read");
    assert_eq!(read["command"], "read /one");
    let pruned = cache_json(
        a.dir(),
        &["prune", "--remote", &reference, "--older-than", "0s"],
    );
    assert_eq!(pruned["entries"].as_array().unwrap().len(), 3, "{pruned}");
    assert!(layout_keys(&dir).is_empty());
    assert_eq!(
        std::fs::read_dir(dir.join("blobs/sha256")).unwrap().count(),
        0
    );
}

#[test]
fn a_path_read_of_a_container_with_secrets_is_shared_only_with_a_shared_key() {
    require_runtime!();
    let repo = repository("pathread-secret");
    let marker = unique("pathread-secret");
    let query = r#"
    query($image: String!, $marker: String!, $secret: ID!) {
      container { from(address: $image) { withSecretVariable(name: "TOKEN", secret: $secret) {
        withExec(args: ["sh", "-c", "echo $0 > /one; echo \"$TOKEN\" > /token", $marker]) {
          file(path: "/one") { size } } } } }
    }"#;
    // One step and one read, the secret attached: (reads shared, steps pushed).
    let shared = |env: &[(&str, &str)]| {
        let mut server = cache_server(&repo, env);
        let secret = run(
            &server,
            r#"{ setSecret(name: "token", plaintext: "not-a-real-token-43") { id } }"#,
            json!({}),
        );
        let mut vars = vars(&marker);
        vars["secret"] = json!(text(&secret, "setSecret.id"));
        let data = run(&server, query, vars);
        let size = at(
            &data,
            "container.from.withSecretVariable.withExec.file.size",
        );
        assert_eq!(size.as_u64(), Some(marker.len() as u64 + 1));
        let log = stop(&mut server);
        assert_eq!(counter(&log, "reads_asked"), 1, "{log}");
        (counter(&log, "reads_shared"), counter(&log, "pushed"))
    };
    // Each state directory's own MAC key: the read stays local, as the step does.
    assert_eq!(shared(&[]), (0, 0));
    let key = [(
        "GANTRY_CACHE_KEY",
        "0123456789abcdef0123456789abcdef-test-key",
    )];
    assert_eq!(shared(&key), (1, 1));
}

/// An engine with a remote cache runs everything an engine without one does:
/// a service bound to a step (the cache wraps the runtime, and services,
/// terminals and shutdown must reach the runtime through it).
#[test]
fn services_run_on_an_engine_with_a_remote_cache() {
    require_runtime!();
    let repo = repository("svc");
    let mut a = cache_server(&repo, &[]);
    let page = unique("page");
    let service = text(
        &run(
            &a,
            r#"query($image: String!, $page: String!) { container { from(address: $image) {
                withNewFile(path: "/www/index.html", contents: $page) { withExposedPort(port: 8080) {
                  asService(args: ["httpd", "-f", "-p", "8080", "-h", "/www"]) { id } } } } } }"#,
            json!({ "image": busybox(), "page": page }),
        ),
        "container.from.withNewFile.withExposedPort.asService.id",
    );
    let answer = run(
        &a,
        r#"query($image: String!, $svc: ID!) { container { from(address: $image) {
            withServiceBinding(alias: "www", service: $svc) {
              withExec(args: ["wget", "-qO-", "http://www:8080/"]) { stdout } } } } }"#,
        json!({ "image": busybox(), "svc": service }),
    );
    assert_eq!(
        text(&answer, "container.from.withServiceBinding.withExec.stdout"),
        page
    );
    let log = stop(&mut a);
    assert!(!log.contains("WARN"), "{log}");
}
