//! The state directory end to end: `gantry prune` (through the store's
//! kinds, sizes and images, on real Docker) and a state directory written
//! by an older gantry, migrated at open and still served from cache.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use gantry_core::store::{RecordKind, Store as _};
use gantry_store::{Bucket, DiskStore, RecordInfo};
use serde_json::{json, Value};

use crate::support::{self, busybox, Server};

/// A pipeline that leaves a record of every kind: a host directory read
/// (host tree and index), an exec that writes a file (exec result and its
/// image), a path read out of the exec's container, and an ID (recipes).
fn every_kind(host: &Path, marker: &str) -> String {
    format!(
        r#"{{ host {{ directory(path: "{}") {{ entries }} }}
             container {{ from(address: "{}") {{
               withExec(args: ["sh", "-c", "echo {marker} > /f; cat /f"]) {{
                 stdout file(path: "/f") {{ contents }} id }} }} }} }}"#,
        host.display(),
        busybox()
    )
}

fn exec_stdout(out: &Value) -> &Value {
    &out["data"]["container"]["from"]["withExec"]["stdout"]
}

fn records(state: &Path, kind: RecordKind) -> Vec<RecordInfo> {
    DiskStore::open(state)
        .unwrap()
        .state_dir()
        .records(kind)
        .unwrap()
}

/// The exec result whose output holds `needle`.
fn exec_record(state: &Path, needle: &str) -> RecordInfo {
    let store = DiskStore::open(state).unwrap();
    let records = store.state_dir().records(RecordKind::Exec).unwrap();
    records
        .into_iter()
        .find(|record| {
            let bytes = store.get(RecordKind::Exec, &record.key).unwrap().unwrap();
            String::from_utf8_lossy(&bytes).contains(needle)
        })
        .unwrap_or_else(|| panic!("no exec result mentions {needle}"))
}

fn prune(server: &Server, args: &[&str]) -> String {
    let out = support::gantry(server.dir())
        .arg("prune")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

#[test]
fn prune_removes_this_state_dirs_results_and_images() {
    require_runtime!();
    let mut server = Server::start();
    let marker = support::unique("prune");
    let query = support::exec_query(
        &busybox(),
        &["sh", "-c", &format!("echo {marker} > /f; cat /f")],
    );
    assert!(server.query(&query)["errors"].is_null());
    server.stop();
    let tag = support::exec_image_tag_with_output(server.dir(), &marker);
    assert!(
        support::image_exists(server.dir(), &tag),
        "the step's image {tag} exists before prune"
    );
    prune(&server, &[]);
    assert!(!server.dir().join("state").join("store").exists());
    assert!(
        !support::image_exists(server.dir(), &tag),
        "prune must remove the step's image {tag}"
    );
    // After a prune the same pipeline runs again (nothing stale is left).
    server.restart();
    let since = support::now();
    let again = server.query(&query);
    assert_eq!(exec_stdout(&again), &json!(format!("{marker}\n")));
    assert_eq!(support::containers_created_since(&since, server.pid()), 1);
}

#[test]
fn keep_storage_removes_the_oldest_results_and_only_their_images() {
    require_runtime!();
    let mut server = Server::start();
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("a.txt"), "a").unwrap();
    let old = support::unique("keep-old");
    let new = support::unique("keep-new");
    let old_query = support::exec_query(
        &busybox(),
        &["sh", "-c", &format!("echo {old} > /f; cat /f")],
    );
    assert!(server.query(&old_query)["errors"].is_null());
    let out = server.query(&every_kind(host.path(), &new));
    assert_eq!(exec_stdout(&out), &json!(format!("{new}\n")), "{out}");
    server.stop();

    let state = server.state_dir();
    let counts = || RecordKind::ALL.map(|kind| records(&state, kind).len());
    let [exec, path_reads, host_trees, host_indexes, recipes, fetches, step_runs] = counts();
    assert_eq!(exec, 2);
    assert!(path_reads >= 1 && host_trees >= 1 && host_indexes >= 1 && recipes >= 1);
    let (old_record, new_record) = (exec_record(&state, &old), exec_record(&state, &new));
    let names = DiskStore::open(&state).unwrap().state_dir().image_names();
    let (old_image, new_image) = (
        old_record.image(&names).unwrap(),
        new_record.image(&names).unwrap(),
    );
    assert!(
        support::image_exists(server.dir(), &old_image)
            && support::image_exists(server.dir(), &new_image)
    );

    // Keep all but the bytes of the old query's records (its result and
    // anything written before it, such as its recipes): exactly those go,
    // with the old result's image and no other.
    let usage = DiskStore::open(&state)
        .unwrap()
        .state_dir()
        .usage()
        .unwrap();
    let mut held = usage.of(Bucket::Blobs).bytes;
    for kind in RecordKind::ALL {
        held += usage.of(Bucket::Records(kind)).bytes;
    }
    let oldest: Vec<RecordInfo> = RecordKind::ALL
        .into_iter()
        .flat_map(|kind| records(&state, kind))
        .filter(|record| record.modified <= old_record.modified)
        .collect();
    let old_bytes: u64 = oldest.iter().map(|record| record.bytes).sum();
    let budget = (held - old_bytes).to_string();
    let report = prune(&server, &["--keep-storage", &budget]);
    assert!(
        report.contains(&format!(
            "removed {} cached records and 1 images, freeing {old_bytes} bytes",
            oldest.len()
        )),
        "{report} {oldest:?}"
    );
    assert!(
        !support::image_exists(server.dir(), &old_image),
        "{old_image} is left"
    );
    assert!(
        support::image_exists(server.dir(), &new_image),
        "{new_image} was removed"
    );
    let gone = |kind: RecordKind| oldest.iter().filter(|r| r.kind == kind).count();
    assert_eq!(
        counts(),
        [
            1,
            path_reads - gone(RecordKind::PathRead),
            host_trees - gone(RecordKind::HostTree),
            host_indexes - gone(RecordKind::HostIndex),
            recipes - gone(RecordKind::Recipe),
            fetches - gone(RecordKind::Fetch),
            step_runs - gone(RecordKind::StepRuns),
        ],
        "only the old query's records go"
    );
    assert_eq!(records(&state, RecordKind::Exec)[0].key, new_record.key);

    // The removed step runs again; the kept one is still cached.
    server.restart();
    let since = support::now();
    assert!(server.query(&old_query)["errors"].is_null());
    assert_eq!(support::containers_created_since(&since, server.pid()), 1);
    let since = support::now();
    let again = server.query(&every_kind(host.path(), &new));
    assert_eq!(again["data"], out["data"]);
    assert_eq!(support::containers_created_since(&since, server.pid()), 0);
    server.stop();

    // A full prune takes every image this state directory refers to.
    prune(&server, &[]);
    assert!(!support::image_exists(server.dir(), &new_image));
    // The old step ran again under the same cache key, so the same tag.
    assert!(!support::image_exists(server.dir(), &old_image));
    let usage = DiskStore::open(&state)
        .unwrap()
        .state_dir()
        .usage()
        .unwrap();
    assert_eq!(usage.total().bytes, 0, "{usage:?}");
}

/// Rewrites a state directory as gantry wrote it before its layout had a
/// number (layout 1), which is what `StateDir::open` must migrate: every
/// result in `store/results/ab/<hex>`, host indexes as
/// `host-index/<hex>.json`, exec scratch space in `tmp/`, no `layout` file.
/// Blobs, recipes, cache volumes and the secret key were where they are, and
/// no file's format changed.
fn downgrade_to_layout_1(state: &Path) {
    let move_entries = |bucket: &str, to: &dyn Fn(&str, &str) -> std::path::PathBuf| {
        let dir = state.join("store").join(bucket);
        for shard in fs::read_dir(&dir).unwrap().flatten() {
            for entry in fs::read_dir(shard.path()).unwrap().flatten() {
                let shard = shard.file_name().to_string_lossy().into_owned();
                let name = entry.file_name().to_string_lossy().into_owned();
                let target = to(&shard, &name);
                fs::create_dir_all(target.parent().unwrap()).unwrap();
                fs::rename(entry.path(), target).unwrap();
            }
        }
        fs::remove_dir_all(dir).unwrap();
    };
    for bucket in ["exec", "path-reads", "host-trees"] {
        move_entries(bucket, &|shard, name| {
            state.join("store/results").join(shard).join(name)
        });
    }
    move_entries("host-indexes", &|_, name| {
        state.join("host-index").join(format!("{name}.json"))
    });
    fs::remove_dir_all(state.join("scratch")).unwrap();
    fs::create_dir_all(state.join("tmp").join("4242-leftover")).unwrap();
    fs::remove_file(state.join("layout")).unwrap();
}

/// The engine's log line holding `needle` (colours stripped), once the
/// engine's stderr has reached the log.
fn wait_for_log_line(server: &Server, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = support::strip_ansi(&server.log());
        if let Some(line) = log.lines().find(|line| line.contains(needle)) {
            return line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no log line says {needle:?}: {log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_layout_1_state_dir_is_migrated_at_open_and_still_served() {
    require_runtime!();
    let mut server = Server::start();
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("a.txt"), "a").unwrap();
    let marker = support::unique("layout-1");
    let query = every_kind(host.path(), &marker);
    let first = server.query(&query);
    assert_eq!(
        exec_stdout(&first),
        &json!(format!("{marker}\n")),
        "{first}"
    );
    let id = first["data"]["container"]["from"]["withExec"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.stop();
    let state = server.state_dir();
    downgrade_to_layout_1(&state);
    assert!(state.join("store/results").is_dir());

    server.restart();
    let migrated = wait_for_log_line(&server, "migrated the state directory to a new layout");
    for field in [
        "exec_results=1",
        "path_reads=1",
        "host_trees=1",
        "host_indexes=1",
    ] {
        assert!(migrated.contains(field), "{migrated}");
    }
    let since = support::now();
    // An ID handed out before the upgrade loads, and its result is cached.
    let loaded = server.query_vars(
        r#"query($id: ContainerID!) { loadContainerFromID(id: $id) { stdout } }"#,
        &json!({ "id": id }),
    );
    assert_eq!(
        loaded["data"]["loadContainerFromID"]["stdout"],
        json!(format!("{marker}\n")),
        "{loaded}"
    );
    // Every answer is served from the migrated records.
    let again = server.query(&query);
    assert_eq!(again["data"], first["data"]);
    assert_eq!(support::containers_created_since(&since, server.pid()), 0);
    for gone in ["store/results", "host-index", "tmp"] {
        assert!(!state.join(gone).exists(), "{gone} is left after migration");
    }
    assert_eq!(
        fs::read_to_string(state.join("layout")).unwrap(),
        format!("{}\n", gantry_store::LAYOUT)
    );
    server.stop();
    prune(&server, &[]);
}
