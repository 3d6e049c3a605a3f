//! Layout 1 to layout 2, once, when a state directory is opened.
//!
//! Layout 1 (gantry before `StateDir`) kept every kind of result in one key
//! space, `store/results/ab/<hex>`, the host indexes in
//! `host-index/<hex>.json` and exec scratch space in `tmp/`. Blobs, recipes,
//! cache volumes and the secret key are where layout 2 keeps them.
//!
//! A result's kind is recovered exactly from its bytes, not guessed: an
//! exec record parses as an `ExecRecord`; every other result is a tree, and
//! a tree stored under `host::tree_key` of its own digest was read from the
//! host, any other from a container path. Keys do not change, so cached
//! results still hit and IDs still load. Files are renamed, not copied; an
//! interrupted migration runs again at the next open (the layout file is
//! written last), and two engines migrating at once skip what the other
//! has moved.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use gantry_core::store::RecordKind;
use gantry_core::tree::Tree;
use gantry_core::value::ExecRecord;
use gantry_core::Digest;

use crate::error::{Error, Result};
use crate::layout::{Bucket, StateDir, LAYOUT};

pub(crate) fn from_layout_1(dir: &StateDir) -> Result<()> {
    let root = dir.root();
    let mut moved: BTreeMap<RecordKind, usize> = BTreeMap::new();
    let mut dropped = 0usize;
    let results = root.join("store").join("results");
    for shard in entries(&results)? {
        for path in entries(&shard)? {
            let bytes = match fs::read(&path) {
                // Another engine, migrating too, moved it.
                Err(error) if error.kind() == ErrorKind::NotFound => continue,
                bytes => bytes.ok(),
            };
            let kind = file_key(&path, "")
                .zip(bytes)
                .and_then(|(key, bytes)| Some((key, kind_of(&key, &bytes)?)));
            match kind {
                Some((key, kind)) => {
                    move_into(dir, &path, Bucket::Records(kind), &key)?;
                    *moved.entry(kind).or_default() += 1;
                }
                // A temp file of a write that never finished, or something
                // layout 1 never wrote: nothing can read it.
                None => {
                    remove_file(&path)?;
                    dropped += 1;
                }
            }
        }
    }
    remove_dir_all(&results)?;
    let indexes = root.join("host-index");
    for path in entries(&indexes)? {
        match file_key(&path, ".json") {
            Some(key) => {
                let bucket = Bucket::Records(RecordKind::HostIndex);
                move_into(dir, &path, bucket, &key)?;
                *moved.entry(RecordKind::HostIndex).or_default() += 1;
            }
            None => {
                remove_file(&path)?;
                dropped += 1;
            }
        }
    }
    remove_dir_all(&indexes)?;
    // Layout 1's exec scratch space: what is left there was left by engines
    // that died mid-exec.
    remove_dir_all(&root.join("tmp"))?;
    if !moved.is_empty() || dropped > 0 {
        let count = |kind| moved.get(&kind).copied().unwrap_or(0);
        tracing::info!(
            state_dir = %root.display(),
            exec_results = count(RecordKind::Exec),
            path_reads = count(RecordKind::PathRead),
            host_trees = count(RecordKind::HostTree),
            host_indexes = count(RecordKind::HostIndex),
            dropped,
            layout = LAYOUT,
            "migrated the state directory to a new layout"
        );
    }
    Ok(())
}

/// Layout 2 to layout 3: each recipe file (`store/recipes/ab/<hex>`) is
/// appended to the recipe log, then the directory goes. Appending twice (an
/// interrupted migration run again, two engines at once) leaves duplicate
/// lines, which readers and prune ignore.
pub(crate) fn from_layout_2(dir: &StateDir) -> Result<()> {
    let old = dir.root().join("store").join("recipes");
    let mut moved = 0usize;
    for shard in entries(&old)? {
        for path in entries(&shard)? {
            let Some(key) = file_key(&path, "") else {
                continue;
            };
            match fs::read(&path) {
                Ok(json) => {
                    dir.recipes().append(&key, &json)?;
                    moved += 1;
                }
                Err(error) if error.kind() == ErrorKind::NotFound => {}
                Err(error) => return Err(Error::io("reading", &path)(error)),
            }
        }
    }
    remove_dir_all(&old)?;
    if moved > 0 {
        tracing::info!(
            state_dir = %dir.root().display(),
            recipes = moved,
            layout = LAYOUT,
            "moved recipes into the recipe log"
        );
    }
    Ok(())
}

/// The kind of a layout 1 result stored under `key`, from its bytes.
fn kind_of(key: &Digest, bytes: &[u8]) -> Option<RecordKind> {
    if serde_json::from_slice::<ExecRecord>(bytes).is_ok() {
        return Some(RecordKind::Exec);
    }
    // Only host trees are stored in this form (layout 1 never held one, but a
    // directory put back to layout 1 by hand, as tests do, may).
    if gantry_core::host::is_tree_record(bytes) {
        return Some(RecordKind::HostTree);
    }
    let tree: Tree = serde_json::from_slice(bytes).ok()?;
    if gantry_core::host::tree_key(&tree.digest()) == *key {
        Some(RecordKind::HostTree)
    } else {
        Some(RecordKind::PathRead)
    }
}

/// The key a file is named by (`<hex><suffix>`), if it is named by one.
fn file_key(path: &Path, suffix: &str) -> Option<Digest> {
    let name = path.file_name()?.to_str()?;
    Digest::from_hex(name.strip_suffix(suffix)?)
}

fn move_into(dir: &StateDir, from: &Path, bucket: Bucket, key: &Digest) -> Result<()> {
    let to = dir.entry(bucket, key);
    let parent = to.parent().expect("entries have a shard directory");
    fs::create_dir_all(parent).map_err(Error::io("creating", parent))?;
    match fs::rename(from, &to) {
        Err(error) if error.kind() != ErrorKind::NotFound => Err(Error::io("moving", from)(error)),
        _ => Ok(()),
    }
}

/// The entries of `dir`; none when it does not exist.
fn entries(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.flatten().map(|entry| entry.path()).collect()),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(Error::io("reading", dir)(error)),
    }
}

fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != ErrorKind::NotFound => {
            Err(Error::io("removing", path)(error))
        }
        _ => Ok(()),
    }
}

fn remove_dir_all(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Err(error) if error.kind() != ErrorKind::NotFound => {
            Err(Error::io("removing", path)(error))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use gantry_core::store::Store as _;
    use gantry_core::tree::Entry;

    use super::*;
    use crate::DiskStore;

    /// Writes `bytes` where layout 1 kept a result under `key`.
    fn put_result(root: &Path, key: &Digest, bytes: &[u8]) {
        let hex = key.hex();
        let shard = root.join("store/results").join(&hex[..2]);
        fs::create_dir_all(&shard).unwrap();
        fs::write(shard.join(hex), bytes).unwrap();
    }

    #[test]
    fn layout_1_results_move_into_their_kinds_buckets() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let exec = ExecRecord {
            image_id: "sha256:abc".into(),
            cmd: vec!["echo".into(), "hi".into()],
            stdout: "hi\n".into(),
            stderr: String::new(),
            combined: None,
            exit_code: 0,
            mounts: Vec::new(),
        };
        let exec_key = Digest::of_bytes(b"an exec's cache key");
        put_result(root, &exec_key, &serde_json::to_vec(&exec).unwrap());
        let blob = Digest::of_bytes(b"contents");
        let tree = Tree::single(
            "a.txt",
            Entry::File {
                blob,
                size: 8,
                mode: 0o644,
                mtime: 0,
                owner: gantry_core::tree::Owner::ROOT,
            },
        )
        .unwrap();
        let tree_json = serde_json::to_vec(&tree).unwrap();
        let host_key = gantry_core::host::tree_key(&tree.digest());
        put_result(root, &host_key, &tree_json);
        let read_key = Digest::of_bytes(b"a path read's key");
        put_result(root, &read_key, &tree_json);
        // Leftovers: a torn temp file and something unreadable.
        fs::write(
            root.join("store/results")
                .join(&exec_key.hex()[..2])
                .join(".tmp-1-2"),
            "x",
        )
        .unwrap();
        put_result(root, &Digest::of_bytes(b"junk"), b"not json");
        let recipe_key = Digest::of_bytes(b"a node");
        let hex = recipe_key.hex();
        fs::create_dir_all(root.join("store/recipes").join(&hex[..2])).unwrap();
        fs::write(root.join("store/recipes").join(&hex[..2]).join(&hex), b"{}").unwrap();
        let index_key = Digest::of_bytes(b"an index");
        fs::create_dir_all(root.join("host-index")).unwrap();
        fs::write(
            root.join("host-index")
                .join(format!("{}.json", index_key.hex())),
            b"{\"files\":{}}",
        )
        .unwrap();
        fs::create_dir_all(root.join("tmp/123-abc")).unwrap();

        let store = DiskStore::open(root).unwrap();
        let get = |kind, key| store.get(kind, key).unwrap();
        assert_eq!(
            get(RecordKind::Exec, &exec_key).unwrap(),
            serde_json::to_vec(&exec).unwrap()
        );
        assert_eq!(get(RecordKind::HostTree, &host_key).unwrap(), tree_json);
        assert_eq!(get(RecordKind::PathRead, &read_key).unwrap(), tree_json);
        assert_eq!(get(RecordKind::PathRead, &host_key), None);
        assert_eq!(get(RecordKind::HostTree, &read_key), None);
        assert_eq!(get(RecordKind::Recipe, &recipe_key).unwrap(), b"{}");
        assert_eq!(
            get(RecordKind::HostIndex, &index_key).unwrap(),
            b"{\"files\":{}}"
        );
        for gone in ["store/results", "host-index", "tmp"] {
            assert!(!root.join(gone).exists(), "{gone} is left");
        }
        let state = store.state_dir();
        let count = |kind| state.records(kind).unwrap().len();
        assert_eq!(
            RecordKind::ALL.map(count),
            [1, 1, 1, 1, 1, 0, 0],
            "exec, path read, host tree, host index, recipe, fetch (none), step runs (none)"
        );
        // Opening again finds layout 3 and changes nothing.
        drop(store);
        let again = DiskStore::open(root).unwrap();
        assert_eq!(
            again.state_dir().records(RecordKind::Exec).unwrap().len(),
            1
        );
    }
}
