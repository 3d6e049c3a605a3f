//! gantry-store: the state directory on disk.
//!
//! ```text
//! STATE/blobs/ab/abcdef…      file contents, named by their sha256
//! STATE/results/ab/abcdef…    cached outcomes (JSON), named by cache key
//! STATE/recipes/ab/abcdef…    the op behind an ID (JSON), named by node digest
//! ```
//!
//! Every write goes to a temp file in the same directory and is renamed into
//! place, so a crash mid-write never leaves an entry that reads as valid.
//! Records are small and read on every cache lookup, so they are also kept
//! in memory once read; blobs are not. Everything here is write-once per key.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use dashmap::DashMap;
use gantry_core::store::{Space, Store};
use gantry_core::{Digest, Error, Result};

pub struct DiskStore {
    root: PathBuf,
    records: DashMap<(Space, Digest), Vec<u8>>,
}

impl DiskStore {
    /// Opens (creating when missing) a store under `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for dir in [
            "blobs",
            Space::Result.dir_name(),
            Space::Recipe.dir_name(),
            "tmp",
        ] {
            fs::create_dir_all(root.join(dir)).map_err(|source| {
                Error::store(format!("creating {}", root.join(dir).display()), source)
            })?;
        }
        Ok(Self {
            root,
            records: DashMap::new(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, dir: &str, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root.join(dir).join(&hex[..2]).join(hex)
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let parent = path.parent().expect("store paths always have a parent");
        fs::create_dir_all(parent)
            .map_err(|source| Error::store("creating a store directory", source))?;
        let tmp = parent.join(format!(
            ".tmp-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        fs::write(&tmp, bytes).map_err(|source| Error::store("writing a store entry", source))?;
        fs::rename(&tmp, path).map_err(|source| {
            let _ = fs::remove_file(&tmp);
            Error::store("renaming a store entry into place", source)
        })
    }

    /// Every key in a space (for prune).
    pub fn keys(&self, space: Space) -> Vec<Digest> {
        let mut out = Vec::new();
        let Ok(shards) = fs::read_dir(self.root.join(space.dir_name())) else {
            return out;
        };
        for shard in shards.flatten() {
            let Ok(entries) = fs::read_dir(shard.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                if let Some(digest) = entry.file_name().to_str().and_then(Digest::from_hex) {
                    out.push(digest);
                }
            }
        }
        out
    }
}

impl Store for DiskStore {
    fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of_bytes(bytes);
        let path = self.path("blobs", &digest);
        if !path.exists() {
            self.write(&path, bytes)?;
        }
        Ok(digest)
    }

    fn get_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        fs::read(self.path("blobs", digest))
            .map_err(|source| Error::store(format!("reading blob {digest}"), source))
    }

    fn put(&self, space: Space, key: &Digest, value: &[u8]) -> Result<()> {
        self.write(&self.path(space.dir_name(), key), value)?;
        self.records.insert((space, *key), value.to_vec());
        Ok(())
    }

    fn get(&self, space: Space, key: &Digest) -> Result<Option<Vec<u8>>> {
        if let Some(value) = self.records.get(&(space, *key)) {
            return Ok(Some(value.clone()));
        }
        match fs::read(self.path(space.dir_name(), key)) {
            Ok(bytes) => {
                self.records.insert((space, *key), bytes.clone());
                Ok(Some(bytes))
            }
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::store("reading a store entry", source)),
        }
    }

    fn remove(&self, space: Space, key: &Digest) -> Result<()> {
        self.records.remove(&(space, *key));
        match fs::remove_file(self.path(space.dir_name(), key)) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::store("removing a store entry", source)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let key = Digest::of_bytes(b"key");
        {
            let store = DiskStore::open(dir.path()).unwrap();
            store.put(Space::Result, &key, b"value").unwrap();
            let blob = store.put_blob(b"content").unwrap();
            assert_eq!(store.get_blob(&blob).unwrap(), b"content");
        }
        let store = DiskStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get(Space::Result, &key).unwrap().as_deref(),
            Some(&b"value"[..])
        );
        assert_eq!(store.get(Space::Recipe, &key).unwrap(), None);
        assert_eq!(store.keys(Space::Result), vec![key]);
    }

    #[test]
    fn no_temp_files_are_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path()).unwrap();
        for n in 0..20u8 {
            store
                .put(Space::Result, &Digest::of_bytes(&[n]), &[n; 100])
                .unwrap();
        }
        let leftovers = walk(dir.path())
            .into_iter()
            .filter(|path| {
                path.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".tmp-")
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn a_torn_temp_file_is_not_a_valid_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path()).unwrap();
        let key = Digest::of_bytes(b"k");
        // Simulate a crash after writing the temp file but before the rename.
        let path = store.path(Space::Result.dir_name(), &key);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path.parent().unwrap().join(".tmp-1-0"), b"partial").unwrap();
        assert_eq!(store.get(Space::Result, &key).unwrap(), None);
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
        out
    }
}
