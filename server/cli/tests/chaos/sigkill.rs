//! SIGKILL at random points of a pipeline that reads the host, mounts and
//! exports secrets, writes a cache volume and commits steps; after each kill
//! a new engine starts on the same state directory and must answer the same
//! pipeline correctly, with nothing corrupt, orphaned, left over or leaked.

use std::path::Path;
use std::time::Duration;

use gantry_core::store::{RecordKind, Store as _};
use serde_json::{json, Value};

use crate::engine::{self, Engine, Spec};
use crate::Outcome;

const KILLS: usize = 10;

const PREPARE: &str = r#"query($secret: String!, $src: String!, $volume: String!) {
  setSecret(name: "tok", plaintext: $secret) { id }
  cacheVolume(key: $volume) { id }
  host { directory(path: $src) { id } }
}"#;

const PIPELINE: &str = r#"query($image: String!, $secret: ID!, $cache: ID!, $dir: ID!, $marker: String!) {
  container { from(address: $image) {
    withDirectory(path: "/src", source: $dir) {
      withMountedSecret(path: "/run/tok", source: $secret) {
        withSecretVariable(name: "TOK", secret: $secret) {
          withMountedCache(path: "/cache", cache: $cache) {
            withEnvVariable(name: "M", value: $marker) {
              a: withExec(args: ["sh", "-c", "for i in 1 2 3 4 5 6; do echo $i > /out$i; echo $M-$i >> /cache/log; sleep 0.1; done; test \"$TOK\" = \"$(cat /run/tok)\" && echo $M ok"]) {
                withExec(args: ["sh", "-c", "cat /out6; echo $M a2"]) { stdout } }
              b: withExec(args: ["sh", "-c", "sleep 0.4; ls /src | wc -l; echo $M b > /b"]) {
                withExec(args: ["sh", "-c", "cat /b"]) { stdout } }
            } } } } } } }
}"#;

pub(crate) fn run() -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::under(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for n in 0..50 {
        std::fs::write(
            src.join(format!("f{n}.txt")),
            format!("file {n}\n").repeat(100),
        )
        .unwrap();
    }
    let secret = format!("chaos-secret-{:016x}", engine::random_u64());
    let run_id = format!("{:x}", engine::random_u64());
    let (mut survived, mut corrupt, mut orphans, mut temp_files, mut secret_bytes) =
        (0, 0, 0, 0, 0);
    let mut points = Vec::new();
    let mut failures = Vec::new();
    let mut killed_pids = Vec::new();
    let mut current = Some(Engine::start(&spec));
    for kill in 0..KILLS {
        let marker = format!("kill-{run_id}-{kill}");
        let Some(running) = current.take() else { break };
        let vars = prepare(&running, &secret, &src, &marker);
        // The pipeline runs on its own thread; the kill lands somewhere in it.
        let point = Duration::from_millis(engine::random_u64() % 2500);
        points.push(point.as_millis());
        let socket = spec.socket.clone();
        let background = vars.clone();
        let client = std::thread::spawn(move || {
            engine::query_socket(&socket, PIPELINE, &background, Duration::from_secs(60))
        });
        std::thread::sleep(point);
        let killed = running.kill();
        let _ = client.join();
        let restarted = match Engine::try_start(&spec) {
            Ok(engine) => engine,
            Err(error) => {
                failures.push(format!("kill {kill}: restart failed: {error}"));
                break;
            }
        };
        let vars = prepare(&restarted, &secret, &src, &marker);
        let answer = engine::query_socket(&spec.socket, PIPELINE, &vars, Duration::from_secs(120))
            .unwrap_or_else(|error| json!({ "errors": [{ "message": error }] }));
        match check_answer(&answer, &marker) {
            Ok(()) => survived += 1,
            Err(why) => failures.push(format!("kill {kill} at {} ms: {why}", point.as_millis())),
        }
        killed_pids.push(killed);
        current = Some(restarted);
    }
    // What the kills left, once the last engine is up: orphaned containers,
    // temp files, scratch and secret directories of the killed engines,
    // corrupt entries, and the secret's bytes anywhere on the host.
    for pid in &killed_pids {
        orphans += engine::containers_of(*pid);
    }
    temp_files += leftovers(&spec.state, &killed_pids);
    corrupt += corrupt_entries(&spec.state);
    // The state directory, the engines' temp directory and log, and /dev/shm.
    secret_bytes += secret_bytes_on_host(&[dir.path()], &secret);
    drop(current);
    let figure = format!(
        "{survived}/{KILLS} survived, {corrupt} corrupt, {orphans} orphans, {temp_files} temp files, \
         {secret_bytes} secret bytes (kill points ms: {points:?}){}",
        if failures.is_empty() {
            String::new()
        } else {
            format!("; {}", failures.join("; "))
        }
    );
    let passed = survived == KILLS && corrupt + orphans + temp_files + secret_bytes == 0;
    Outcome::new(figure, passed)
}

fn prepare(engine: &Engine, secret: &str, src: &Path, marker: &str) -> Value {
    let answer = engine.query(
        PREPARE,
        &json!({ "secret": secret, "src": src, "volume": "chaos-sigkill" }),
    );
    let data = &answer["data"];
    assert!(answer["errors"].is_null(), "prepare: {answer}");
    json!({
        "image": crate::support::busybox(),
        "secret": data["setSecret"]["id"],
        "cache": data["cacheVolume"]["id"],
        "dir": data["host"]["directory"]["id"],
        "marker": marker,
    })
}

fn check_answer(answer: &Value, marker: &str) -> Result<(), String> {
    if let Some(error) = engine::error_of(answer) {
        return Err(error);
    }
    let base = &answer["data"]["container"]["from"]["withDirectory"]["withMountedSecret"]
        ["withSecretVariable"]["withMountedCache"]["withEnvVariable"];
    let a = base["a"]["withExec"]["stdout"].as_str().unwrap_or_default();
    let b = base["b"]["withExec"]["stdout"].as_str().unwrap_or_default();
    if a == format!("6\n{marker} a2\n") && b == format!("{marker} b\n") {
        Ok(())
    } else {
        Err(format!("wrong answer: {answer}"))
    }
}

/// Temp files and scratch directories in the state directory, and secret
/// directories on tmpfs, that the killed engines (`pids`) left: their names
/// carry the writer's pid.
fn leftovers(state: &Path, pids: &[u32]) -> usize {
    let ours = |path: &Path| {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        name.split('-')
            .filter_map(|part| part.parse::<u32>().ok())
            .any(|pid| pids.contains(&pid))
    };
    let entries = |dir: &Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
            .unwrap_or_default()
    };
    engine::files_under(&state.join("store/tmp"))
        .into_iter()
        .chain(entries(&state.join("scratch")))
        .chain(entries(Path::new("/dev/shm/gantry-secrets")))
        .filter(|path| ours(path))
        .inspect(|path| {
            // When it last changed and what it holds tell who made it when (a
            // leftover that changed after its engine was killed was made by another).
            let age = std::fs::symlink_metadata(path)
                .ok()
                .map(|meta| {
                    use std::os::unix::fs::MetadataExt as _;
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_secs_f64();
                    format!("{:.1} s", now - meta.ctime() as f64)
                })
                .unwrap_or_else(|| "?".into());
            let holds: Vec<String> = entries(path)
                .iter()
                .map(|entry| entry.file_name().unwrap_or_default().to_string_lossy().into_owned())
                .collect();
            eprintln!(
                "chaos: sigkill: left by a killed engine: {} (changed {age} before the count, holds {holds:?})",
                path.display()
            )
        })
        .count()
}

/// Blobs whose bytes do not hash to their digest (packed or a file each), and
/// records that do not parse, read through the state directory's own listing.
fn corrupt_entries(state: &Path) -> usize {
    let mut corrupt = 0;
    let store = gantry_store::DiskStore::open(state).unwrap();
    for blob in store.state_dir().blob_digests().unwrap() {
        let bytes = store.get_blob(&blob).unwrap_or_default();
        if gantry_core::Digest::of_bytes(&bytes) != blob {
            corrupt += 1;
        }
    }
    for kind in RecordKind::ALL {
        for record in store.state_dir().records(kind).unwrap() {
            let sound = store
                .get(kind, &record.key)
                .ok()
                .flatten()
                .is_some_and(|bytes| record_is_sound(kind, &bytes));
            if !sound {
                corrupt += 1;
            }
        }
    }
    corrupt
}

/// Whether a record's bytes are whole: JSON for every kind but host indexes and host
/// trees, which are binary and end with a sha256 of the bytes before it
/// (server/core/src/host_index.rs).
fn record_is_sound(kind: RecordKind, bytes: &[u8]) -> bool {
    match kind {
        RecordKind::HostIndex | RecordKind::HostTree => {
            bytes.len().checked_sub(32).is_some_and(|end| {
                let trailer: String = bytes[end..].iter().map(|b| format!("{b:02x}")).collect();
                gantry_core::Digest::of_bytes(&bytes[..end]).hex() == trailer
            })
        }
        _ => serde_json::from_slice::<Value>(bytes).is_ok(),
    }
}

/// Bytes of `secret` found in files under /dev/shm and `dirs`.
pub(crate) fn secret_bytes_on_host(dirs: &[&Path], secret: &str) -> usize {
    let mut hits = crate::support::files_containing(Path::new("/dev/shm"), secret.as_bytes());
    for dir in dirs {
        hits.extend(crate::support::files_containing(dir, secret.as_bytes()));
    }
    hits.len() * secret.len()
}
