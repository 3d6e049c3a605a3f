//! `gantry cache ls|du|prune` and `--cache-max-size` on a real engine:
//! the figures match what runs stored, prunes remove exactly the entries
//! they select (the next run executes exactly those steps again), and
//! whatever a live engine used survives a prune.

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, SystemTime};

use gantry_core::store::{RecordKind, Store as _};
use gantry_store::{Bucket, DiskStore, RecordInfo};
use serde_json::Value;

use crate::support::{self, busybox, Server, ServerOptions};

fn cache(dir: &Path, args: &[&str]) -> Output {
    support::gantry(dir)
        .arg("cache")
        .args(args)
        .output()
        .unwrap()
}

/// `gantry cache ARGS --json`, which must succeed.
pub(crate) fn cache_json(dir: &Path, args: &[&str]) -> Value {
    let out = cache(dir, &[args, &["--json"]].concat());
    assert!(
        out.status.success(),
        "gantry cache {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A step that prints `marker` (and `pad` more bytes, for size limits).
fn step(marker: &str, pad: usize) -> String {
    support::exec_query(
        &busybox(),
        &[
            "sh",
            "-c",
            &format!("echo {marker}; head -c {pad} /dev/zero | tr '\\0' x"),
        ],
    )
}

/// Runs `query` on `server` and returns how many containers it created.
fn containers_for(server: &Server, query: &str) -> usize {
    let since = support::now();
    let out = server.query(query);
    assert!(out["errors"].is_null(), "{out}");
    support::containers_created_since(&since, server.pid())
}

fn all_records(state: &Path) -> Vec<RecordInfo> {
    let store = DiskStore::open(state).unwrap();
    RecordKind::ALL
        .into_iter()
        .flat_map(|kind| store.state_dir().records(kind).unwrap())
        .collect()
}

/// The exec result whose output holds `needle`, if one is stored.
fn exec_record(state: &Path, needle: &str) -> Option<RecordInfo> {
    let store = DiskStore::open(state).unwrap();
    let records = store.state_dir().records(RecordKind::Exec).unwrap();
    records.into_iter().find(|record| {
        let bytes = store.get(RecordKind::Exec, &record.key).unwrap().unwrap();
        String::from_utf8_lossy(&bytes).contains(needle)
    })
}

/// Records and blobs: what `--max-size` bounds.
fn held(state: &Path) -> u64 {
    let usage = DiskStore::open(state).unwrap().state_dir().usage().unwrap();
    usage.of(Bucket::Blobs).bytes
        + RecordKind::ALL
            .into_iter()
            .map(|kind| usage.of(Bucket::Records(kind)).bytes)
            .sum::<u64>()
}

/// Makes a record look unused for `ago`.
fn backdate(state: &Path, record: &RecordInfo, ago: Duration) {
    let hex = record.key.hex();
    let dir = match record.kind {
        RecordKind::Exec => "exec",
        other => panic!("backdating {other:?} is not needed here"),
    };
    let path = state.join("store").join(dir).join(&hex[..2]).join(&hex);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - ago)
        .unwrap();
}

#[test]
fn ls_and_du_report_what_a_run_stored() {
    require_runtime!();
    let mut server = Server::start();
    let marker = support::unique("cache-ls");
    assert_eq!(containers_for(&server, &step(&marker, 0)), 1);
    server.stop();
    let state = server.state_dir();

    let entries = cache_json(server.dir(), &["ls"]);
    let entries = entries.as_array().unwrap();
    let records = all_records(&state);
    assert_eq!(entries.len(), records.len(), "{entries:?}");
    let exec = exec_record(&state, &marker).unwrap();
    let listed = entries
        .iter()
        .find(|entry| entry["key"] == exec.key.hex())
        .unwrap_or_else(|| panic!("the exec result is not listed: {entries:?}"));
    assert_eq!(listed["kind"], "exec");
    assert_eq!(listed["bytes"], exec.bytes);
    assert!(
        listed["command"].as_str().unwrap().contains(&marker),
        "{listed}"
    );
    // Most recently used first.
    let times: Vec<u64> = entries
        .iter()
        .map(|entry| entry["last_used"].as_u64().unwrap())
        .collect();
    assert!(times.windows(2).all(|pair| pair[0] >= pair[1]), "{times:?}");

    let du = cache_json(server.dir(), &["du"]);
    let record_bytes: u64 = records.iter().map(|record| record.bytes).sum();
    assert_eq!(du["records"]["bytes"], record_bytes, "{du}");
    assert_eq!(du["records"]["entries"], records.len(), "{du}");
    let usage = DiskStore::open(&state)
        .unwrap()
        .state_dir()
        .usage()
        .unwrap();
    assert_eq!(du["blobs"]["bytes"], usage.of(Bucket::Blobs).bytes, "{du}");
    assert!(
        du["images"]["entries"].as_u64().unwrap() >= 1,
        "the step's image is counted: {du}"
    );
    // The human table names the same kinds.
    let table = cache(server.dir(), &["du"]);
    let table = String::from_utf8_lossy(&table.stdout);
    for kind in ["records", "blobs", "images", "cache volumes", "total"] {
        assert!(table.contains(kind), "{table}");
    }
}

#[test]
fn prune_older_than_removes_only_unused_entries_and_they_run_again() {
    require_runtime!();
    let mut server = Server::start();
    let (old, new) = (support::unique("cache-old"), support::unique("cache-new"));
    assert_eq!(containers_for(&server, &step(&old, 0)), 1);
    assert_eq!(containers_for(&server, &step(&new, 0)), 1);
    server.stop();
    let state = server.state_dir();
    let old_record = exec_record(&state, &old).unwrap();
    backdate(&state, &old_record, Duration::from_secs(10 * 86_400));

    // A dry run lists exactly the old result and removes nothing.
    let dry = cache_json(server.dir(), &["prune", "--older-than", "7d", "--dry-run"]);
    let keys: Vec<&str> = dry["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, [old_record.key.hex().as_str()], "{dry}");
    assert!(exec_record(&state, &old).is_some(), "a dry run removed it");

    let done = cache_json(server.dir(), &["prune", "--older-than", "7d"]);
    assert_eq!(done["records"], 1, "{done}");
    assert_eq!(done["images"].as_array().unwrap().len(), 1, "{done}");
    assert!(exec_record(&state, &old).is_none());
    assert!(exec_record(&state, &new).is_some());

    server.restart();
    assert_eq!(containers_for(&server, &step(&old, 0)), 1);
    assert_eq!(containers_for(&server, &step(&new, 0)), 0);
}

#[test]
fn prune_max_size_removes_the_least_recently_used() {
    require_runtime!();
    let mut server = Server::start();
    let (a, b) = (support::unique("lru-a"), support::unique("lru-b"));
    assert_eq!(containers_for(&server, &step(&a, 0)), 1);
    assert_eq!(containers_for(&server, &step(&b, 0)), 1);
    // A new engine uses A again: A is now more recently used than B.
    server.restart();
    assert_eq!(containers_for(&server, &step(&a, 0)), 0);
    server.stop();
    let state = server.state_dir();
    let (a_record, b_record) = (
        exec_record(&state, &a).unwrap(),
        exec_record(&state, &b).unwrap(),
    );
    assert!(a_record.modified > b_record.modified);
    // Keep all but the bytes of what was last used no later than B.
    let older: u64 = all_records(&state)
        .iter()
        .filter(|record| record.modified <= b_record.modified)
        .map(|record| record.bytes)
        .sum();
    let budget = (held(&state) - older).to_string();
    let done = cache_json(server.dir(), &["prune", "--max-size", &budget]);
    assert_eq!(done["bytes"], older, "{done}");
    assert!(done["left_bytes"].as_u64().unwrap() <= budget.parse().unwrap());
    assert!(
        exec_record(&state, &b).is_none(),
        "B was least recently used"
    );
    assert!(exec_record(&state, &a).is_some(), "A was used last");

    server.restart();
    assert_eq!(containers_for(&server, &step(&a, 0)), 0);
    assert_eq!(containers_for(&server, &step(&b, 0)), 1);
}

#[test]
fn prune_keeps_what_a_live_engine_used() {
    require_runtime!();
    let mut server = Server::start();
    let (kept, used, gone) = (
        support::unique("live-kept"),
        support::unique("live-used"),
        support::unique("live-gone"),
    );
    assert_eq!(containers_for(&server, &step(&used, 0)), 1);
    assert_eq!(containers_for(&server, &step(&gone, 0)), 1);
    // The live engine uses one old entry and makes a new one.
    server.restart();
    assert_eq!(containers_for(&server, &step(&used, 0)), 0);
    assert_eq!(containers_for(&server, &step(&kept, 0)), 1);

    // Removing everything is refused while it serves, naming it.
    let all = cache(server.dir(), &["prune", "--all"]);
    let message = String::from_utf8_lossy(&all.stderr);
    assert!(!all.status.success(), "{message}");
    assert!(
        message.contains(&format!("pid {}", server.pid())),
        "{message}"
    );

    let done = cache_json(server.dir(), &["prune", "--max-size", "0"]);
    let state = server.state_dir();
    assert!(exec_record(&state, &gone).is_none(), "{done}");
    assert!(exec_record(&state, &used).is_some(), "{done}");
    assert!(exec_record(&state, &kept).is_some(), "{done}");
    // The live engine still has its entries; the unused one runs again.
    assert_eq!(containers_for(&server, &step(&used, 0)), 0);
    assert_eq!(containers_for(&server, &step(&kept, 0)), 0);
    assert_eq!(containers_for(&server, &step(&gone, 0)), 1);
}

#[test]
fn cache_max_size_keeps_the_store_under_its_bound() {
    require_runtime!();
    // Each step's result holds its 100 KB output twice (stdout and combined).
    let limit: u64 = 300_000;
    let mut server = Server::start_with(ServerOptions {
        env: vec![("GANTRY_CACHE_MAX_SIZE".into(), limit.to_string())],
        ..ServerOptions::default()
    });
    let markers: Vec<String> = (0..4)
        .map(|n| support::unique(&format!("bound-{n}")))
        .collect();
    for marker in &markers {
        assert_eq!(containers_for(&server, &step(marker, 100_000)), 1);
    }
    let state = server.state_dir();
    assert!(held(&state) > limit, "the steps fill more than the limit");
    // Evicted when the engine stops.
    server.stop();
    let left = held(&state);
    assert!(left <= limit, "{left} bytes left, limit {limit}");
    let last = markers.last().unwrap();
    assert!(exec_record(&state, last).is_some(), "the last step stays");
    assert!(exec_record(&state, &markers[0]).is_none(), "the first goes");

    server.restart();
    assert_eq!(containers_for(&server, &step(last, 100_000)), 0);
    assert_eq!(containers_for(&server, &step(&markers[0], 100_000)), 1);
}

/// An engine that shares the remote cache `repository` (and stops flushed).
fn remote_server(repository: &str) -> Server {
    Server::start_with(ServerOptions {
        env: vec![("GANTRY_CACHE".into(), repository.into())],
        ..ServerOptions::default()
    })
}

/// The keys (tags) `gantry cache ls --remote` lists.
fn remote_keys(dir: &Path, repository: &str) -> Vec<String> {
    let listed = cache_json(dir, &["ls", "--remote", repository]);
    let mut keys: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["key"].as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    keys
}

#[test]
fn remote_ls_lists_the_entries_and_prune_older_than_deletes_the_old_ones() {
    require_runtime!();
    let repository = format!("{}/{}/cache", support::registry(), support::unique("admin"));
    let (old, new) = (support::unique("remote-old"), support::unique("remote-new"));
    // Steps that write a file: each entry has a filesystem of its own.
    let writes = |marker: &str| {
        support::exec_query(
            &busybox(),
            &["sh", "-c", &format!("echo {marker} | tee /m")],
        )
    };
    let mut machine_a = remote_server(&repository);
    assert_eq!(containers_for(&machine_a, &writes(&old)), 1);
    machine_a.stop();
    let old_key = exec_record(&machine_a.state_dir(), &old).unwrap().key.hex();
    let listed = cache_json(machine_a.dir(), &["ls", "--remote", &repository]);
    let entries = listed.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{listed}");
    assert_eq!(entries[0]["key"], old_key.as_str());
    assert!(
        entries[0]["command"].as_str().unwrap().contains(&old),
        "{listed}"
    );

    let old_created = entries[0]["created"].as_u64().unwrap();

    // Entries pushed at least 10 s apart. Each prune's --older-than is the old
    // entry's age less one second, taken just before the prune starts: it
    // selects the old entry and not the new one unless the prune starts over
    // 8 s later (a fixed age would depend on how fast a loaded machine gets
    // from the second push to the prune).
    std::thread::sleep(Duration::from_secs(10));
    machine_a.restart();
    assert_eq!(containers_for(&machine_a, &writes(&new)), 1);
    machine_a.stop();
    let older_than = || {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        format!("{}s", now - old_created - 1)
    };
    let dry = cache_json(
        machine_a.dir(),
        &[
            "prune",
            "--remote",
            &repository,
            "--older-than",
            &older_than(),
            "--dry-run",
        ],
    );
    let done = cache_json(
        machine_a.dir(),
        &[
            "prune",
            "--remote",
            &repository,
            "--older-than",
            &older_than(),
        ],
    );
    assert_eq!(dry["entries"].as_array().unwrap().len(), 1, "{dry}");
    assert_eq!(dry["kept"], 1, "{dry}");
    let entries = done["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{done}");
    assert_eq!(entries[0]["key"], old_key.as_str(), "{done}");
    assert_eq!(done["filesystems"].as_array().unwrap().len(), 1, "{done}");
    let new_key = exec_record(&machine_a.state_dir(), &new).unwrap().key.hex();
    assert_eq!(remote_keys(machine_a.dir(), &repository), [new_key]);

    // A fresh machine runs the deleted step and takes the kept one from the cache.
    let machine_b = remote_server(&repository);
    assert_eq!(containers_for(&machine_b, &writes(&old)), 1);
    assert_eq!(containers_for(&machine_b, &writes(&new)), 0);
}

#[test]
fn a_registry_that_refuses_deletes_is_named_with_the_setting() {
    require_runtime!();
    // Debian's docker-registry with deletes left disabled (its default).
    let mut registry = support::PrivateRegistry::start(false);
    let repository = format!("{}/nodelete/cache", registry.host());
    let marker = support::unique("nodelete");
    let mut machine = remote_server(&repository);
    assert_eq!(containers_for(&machine, &step(&marker, 0)), 1);
    machine.stop();
    assert_eq!(remote_keys(machine.dir(), &repository).len(), 1);
    let out = cache(
        machine.dir(),
        &["prune", "--remote", &repository, "--older-than", "0s"],
    );
    registry.stop();
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{message}");
    assert!(
        message.contains("refuses to delete") && message.contains("storage: delete: enabled: true"),
        "{message}"
    );
}

/// `gantry session` (Dagger's SDKs start it) takes `--cache-max-size` as
/// `serve` and `run` do: when the session ends, the cache is evicted down to it.
#[test]
fn a_session_keeps_the_cache_under_its_size_limit() {
    require_runtime!();
    let dir = tempfile::tempdir().unwrap();
    let marker = support::unique("session-bound");
    let (mut child, params) = support::start_session(dir.path(), &["--cache-max-size", "0"]);
    let out = std::process::Command::new("curl")
        .args(["-sf", "-H", "Content-Type: application/json", "-u"])
        .arg(format!("{}:", params["session_token"].as_str().unwrap()))
        .arg("--data-binary")
        .arg(serde_json::json!({ "query": step(&marker, 0) }).to_string())
        .arg(format!("http://127.0.0.1:{}/query", params["port"]))
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(body.contains(&marker), "{body}");
    let state = dir.path().join("state");
    assert!(exec_record(&state, &marker).is_some());
    drop(child.stdin.take());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the session did not end"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(exec_record(&state, &marker).is_none(), "not evicted");
}

/// Makes every recipe in `state`'s log look written `ago`.
fn backdate_recipes(state: &Path, ago: Duration) {
    let path = state.join("store").join("recipes.log");
    let then = (SystemTime::now() - ago)
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let text = fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let (key, rest) = line.split_once(' ').unwrap();
        let (_, json) = rest.split_once(' ').unwrap();
        out.push_str(&format!("{key} {then} {json}\n"));
    }
    fs::write(&path, out).unwrap();
}

/// Recipes (the ops behind IDs) are kept by last use, as results are: one an
/// engine read again survives `--older-than`, an unused one of the same age
/// goes.
#[test]
fn a_recipe_an_engine_reads_is_kept_by_use_not_by_age() {
    require_runtime!();
    let mut server = Server::start();
    let id_of = |server: &Server, contents: &str| {
        let out = server.query(&format!(
            r#"{{ directory {{ withNewFile(path: "a", contents: "{contents}") {{ id }} }} }}"#
        ));
        support::text(&out, "data.directory.withNewFile.id")
    };
    let used = id_of(&server, &support::unique("recipe-used"));
    let unused = id_of(&server, &support::unique("recipe-unused"));
    server.stop();
    let state = server.state_dir();
    backdate_recipes(&state, Duration::from_secs(7200));
    server.restart();
    let out = server.query(&format!(
        r#"{{ loadDirectoryFromID(id: "{used}") {{ entries }} }}"#
    ));
    assert!(out["errors"].is_null(), "{out}");
    server.stop();
    let out = cache(server.dir(), &["prune", "--older-than", "1h"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recipes: Vec<String> = all_records(&state)
        .into_iter()
        .filter(|record| record.kind == RecordKind::Recipe)
        .map(|record| record.key.hex())
        .collect();
    let key = |id: &str| id.split_once(':').unwrap().1.to_owned();
    assert!(recipes.contains(&key(&used)), "{recipes:?}");
    assert!(!recipes.contains(&key(&unused)), "{recipes:?}");
}
