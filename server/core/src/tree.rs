//! Filesystem snapshots: `Tree` maps relative paths to entries whose file
//! contents live in the blob store. Directories and files in the API are
//! values of this type; containers hand them to the runtime as tar layers.
//!
//! Paths inside a tree are relative, `/`-separated, never start with `/` or
//! contain `.`/`..` components; `normalize` is the one place that enforces it.

use std::collections::BTreeMap;
use std::io::Read as _;

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Domain, Encoder};
use crate::error::{Error, Result};
use crate::store::Store;

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Entry {
    File {
        blob: Digest,
        size: u64,
        mode: u32,
        #[serde(default)]
        mtime: u64,
    },
    Dir {
        mode: u32,
    },
    Symlink {
        target: String,
    },
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        matches!(self, Entry::Dir { .. })
    }
}

/// A directory snapshot. Parent directories of every entry are present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub entries: BTreeMap<String, Entry>,
}

/// The default directory mode, as Docker and Dagger use it.
pub(crate) const DIR_MODE: u32 = 0o755;

/// A numeric owner, as `owner:` arguments give it (`uid` or `uid:gid`;
/// user and group names are not resolved, apart from `root`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl Owner {
    /// Parses an `owner:` argument; empty means "unchanged".
    pub(crate) fn parse(owner: &str) -> Result<Option<Owner>> {
        if owner.is_empty() {
            return Ok(None);
        }
        if owner == "root" || owner == "root:root" {
            return Ok(Some(Owner { uid: 0, gid: 0 }));
        }
        let mut parts = owner.splitn(2, ':');
        let uid = parts.next().unwrap_or_default().parse::<u32>();
        let gid = parts.next().map(str::parse::<u32>);
        match (uid, gid) {
            (Ok(uid), None) => Ok(Some(Owner { uid, gid: uid })),
            (Ok(uid), Some(Ok(gid))) => Ok(Some(Owner { uid, gid })),
            _ => Err(Error::Unsupported {
                message: format!(
                    "owner {owner:?}: only numeric owners (uid or uid:gid) are supported"
                ),
            }),
        }
    }
}

/// Normalises a relative path: strips leading `/` and `./`, collapses `.` and
/// empty components, and refuses `..` that would climb out of the root.
pub fn normalize(path: &str) -> Result<String, Error> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(Error::PathEscapes {
                        path: path.to_owned(),
                    });
                }
            }
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

/// Joins a possibly-relative path onto an absolute base, returning an
/// absolute, normalised path (`/` for the root).
pub(crate) fn absolute(base: &str, path: &str) -> Result<String, Error> {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{}/{}", if base.is_empty() { "/" } else { base }, path)
    };
    Ok(format!("/{}", normalize(&joined)?))
}

/// Splits an absolute path into its parent directory and last component
/// (`/a/b` → `/a`, `b`; `/a` → `/`, `a`).
pub(crate) fn split_parent(path: &str) -> (String, String) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(0) | None => ("/".into(), trimmed.trim_start_matches('/').to_owned()),
        Some(index) => (trimmed[..index].to_owned(), trimmed[index + 1..].to_owned()),
    }
}

fn parent_of(path: &str) -> Option<&str> {
    path.rfind('/').map(|index| &path[..index])
}

fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl Tree {
    /// The content digest: names, modes, symlink targets and content digests.
    /// Timestamps are left out, so an unchanged checkout hashes the same.
    pub fn digest(&self) -> Digest {
        let mut encoder = Encoder::new(Domain::Tree);
        encoder.u64(self.entries.len() as u64);
        for (path, entry) in &self.entries {
            encoder.str(path);
            match entry {
                Entry::File { blob, mode, .. } => {
                    encoder.str("f").digest(blob).u64(u64::from(*mode))
                }
                Entry::Dir { mode } => encoder.str("d").u64(u64::from(*mode)),
                Entry::Symlink { target } => encoder.str("l").str(target),
            };
        }
        encoder.finish()
    }

    /// The cache key of the tree: its `digest`, plus the timestamps of files
    /// that have one. Timestamps reach containers (a tar layer carries them),
    /// so `withTimestamps` must change the key of every step downstream;
    /// host trees have none (the reader zeroes them) and keep `digest` as key,
    /// so an unchanged checkout stays a cache hit whatever its mtimes.
    pub fn key(&self) -> Digest {
        let digest = self.digest();
        let mut stamped = self
            .entries
            .iter()
            .filter_map(|(path, entry)| match entry {
                Entry::File { mtime, .. } if *mtime != 0 => Some((path, *mtime)),
                _ => None,
            })
            .peekable();
        if stamped.peek().is_none() {
            return digest;
        }
        let mut encoder = Encoder::new(Domain::TreeWithTimestamps);
        encoder.digest(&digest);
        for (path, mtime) in stamped {
            encoder.str(path).u64(mtime);
        }
        encoder.finish()
    }

    /// Sets the mode of every file and directory (symlinks keep theirs).
    pub(crate) fn set_modes(&mut self, mode: u32) {
        for entry in self.entries.values_mut() {
            match entry {
                Entry::File { mode: current, .. } | Entry::Dir { mode: current } => *current = mode,
                Entry::Symlink { .. } => {}
            }
        }
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Ensures every ancestor of `path` exists as a directory.
    fn ensure_parents(&mut self, path: &str) -> Result<(), Error> {
        let mut current = path;
        let mut missing = Vec::new();
        while let Some(parent) = parent_of(current) {
            match self.entries.get(parent) {
                Some(Entry::Dir { .. }) => break,
                Some(_) => {
                    return Err(Error::NotADirectory {
                        path: parent.to_owned(),
                    })
                }
                None => missing.push(parent.to_owned()),
            }
            current = parent;
        }
        for dir in missing {
            self.entries.insert(dir, Entry::Dir { mode: DIR_MODE });
        }
        Ok(())
    }

    /// Removes `path` and everything under it. Returns whether anything went.
    pub fn remove(&mut self, path: &str) -> bool {
        if path.is_empty() {
            let had = !self.entries.is_empty();
            self.entries.clear();
            return had;
        }
        // Children sort right after `path/`: a range, not a scan of the tree
        // (inserting n entries must not cost n²).
        let mut removed = self.entries.remove(path).is_some();
        let prefix = format!("{path}/");
        let children: Vec<String> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .map(|(key, _)| key.clone())
            .collect();
        for child in children {
            self.entries.remove(&child);
            removed = true;
        }
        removed
    }

    /// Inserts one entry, creating parent directories and replacing whatever
    /// was at `path` (a directory replaced by a file loses its children).
    pub fn insert(&mut self, path: &str, entry: Entry) -> Result<(), Error> {
        let path = normalize(path)?;
        if path.is_empty() {
            return Err(Error::InvalidArgument {
                message: "a file cannot replace the root directory".into(),
            });
        }
        self.ensure_parents(&path)?;
        if !(entry.is_dir() && self.entries.get(&path).is_some_and(Entry::is_dir)) {
            self.remove(&path);
        }
        self.entries.insert(path, entry);
        Ok(())
    }

    /// Copies `other` into this tree at `dest` (merging directories), keeping
    /// only the entries that `filter` accepts.
    pub(crate) fn merge_at(
        &mut self,
        dest: &str,
        other: &Tree,
        filter: &PathFilter,
    ) -> Result<(), Error> {
        let dest = normalize(dest)?;
        if !dest.is_empty() {
            self.ensure_parents(&dest)?;
            if !self.entries.get(&dest).is_some_and(Entry::is_dir) {
                self.remove(&dest);
                self.entries
                    .insert(dest.clone(), Entry::Dir { mode: DIR_MODE });
            }
        }
        for (path, entry) in &other.entries {
            if !filter.accepts(path, entry.is_dir()) {
                continue;
            }
            let target = if dest.is_empty() {
                path.clone()
            } else {
                format!("{dest}/{path}")
            };
            self.insert(&target, entry.clone())?;
        }
        Ok(())
    }

    /// The subtree under `path`, re-rooted. Errors when it is not a directory.
    pub(crate) fn subtree(&self, path: &str) -> Result<Tree, Error> {
        let path = normalize(path)?;
        if path.is_empty() {
            return Ok(self.clone());
        }
        match self.entries.get(&path) {
            Some(Entry::Dir { .. }) => {}
            Some(_) => return Err(Error::NotADirectory { path }),
            None => return Err(Error::NotFound { path }),
        }
        let prefix = format!("{path}/");
        let entries = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .map(|(key, entry)| (key[prefix.len()..].to_owned(), entry.clone()))
            .collect();
        Ok(Tree { entries })
    }

    /// Names directly under `path`, sorted, directories marked with a `/`.
    pub fn list(&self, path: &str) -> Result<Vec<String>, Error> {
        let sub = self.subtree(path)?;
        Ok(sub
            .entries
            .iter()
            .filter(|(key, _)| !key.contains('/'))
            .map(|(key, entry)| {
                if entry.is_dir() {
                    format!("{key}/")
                } else {
                    key.clone()
                }
            })
            .collect())
    }

    /// Paths matching a glob pattern, directories marked with a `/`.
    pub fn glob(&self, pattern: &str) -> Result<Vec<String>, Error> {
        let matcher = build_glob(pattern)?;
        Ok(self
            .entries
            .iter()
            .filter(|(key, _)| matcher.is_match(key.as_str()))
            .map(|(key, entry)| {
                if entry.is_dir() {
                    format!("{key}/")
                } else {
                    key.clone()
                }
            })
            .collect())
    }

    /// Entries of `other` that are new or differ from this tree (deletions
    /// are not represented), with their parent directories.
    pub fn diff(&self, other: &Tree) -> Result<Tree, Error> {
        let mut out = Tree::default();
        for (path, entry) in &other.entries {
            if self.entries.get(path) != Some(entry) {
                out.insert(path, entry.clone())?;
            }
        }
        Ok(out)
    }

    /// Writes the tree as a tar archive (paths relative, parents first).
    pub(crate) fn to_tar(&self, store: &dyn Store, owner: Option<Owner>) -> Result<Vec<u8>, Error> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, entry) in &self.entries {
            let mut header = tar::Header::new_gnu();
            header.set_mtime(0);
            if let Some(owner) = owner {
                header.set_uid(u64::from(owner.uid));
                header.set_gid(u64::from(owner.gid));
            }
            match entry {
                Entry::Dir { mode } => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(*mode);
                    header.set_size(0);
                    builder
                        .append_data(&mut header, format!("{path}/"), std::io::empty())
                        .map_err(Error::tar)?;
                }
                Entry::File {
                    blob, mode, mtime, ..
                } => {
                    let data = store.get_blob(blob)?;
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_mtime(*mtime);
                    header.set_size(data.len() as u64);
                    builder
                        .append_data(&mut header, path, data.as_slice())
                        .map_err(Error::tar)?;
                }
                Entry::Symlink { target } => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    builder
                        .append_link(&mut header, path, target)
                        .map_err(Error::tar)?;
                }
            }
        }
        builder.into_inner().map_err(Error::tar)
    }

    /// Reads a tar archive into a tree, storing file contents as blobs.
    /// Hard links become copies; device files and FIFOs are skipped.
    pub(crate) fn from_tar(bytes: &[u8], store: &dyn Store) -> Result<Tree, Error> {
        let mut tree = Tree::default();
        let mut archive = tar::Archive::new(bytes);
        let mut hard_links = Vec::new();
        for entry in archive.entries().map_err(Error::tar)? {
            let mut entry = entry.map_err(Error::tar)?;
            let raw_path = entry
                .path()
                .map_err(Error::tar)?
                .to_string_lossy()
                .into_owned();
            let path = normalize(&raw_path)?;
            if path.is_empty() {
                continue;
            }
            let mode = entry.header().mode().map_err(Error::tar)? & 0o7777;
            match entry.header().entry_type() {
                tar::EntryType::Directory => tree.insert(&path, Entry::Dir { mode })?,
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let mut data = Vec::new();
                    entry.read_to_end(&mut data).map_err(Error::tar)?;
                    let blob = store.put_blob(&data)?;
                    let mtime = entry.header().mtime().unwrap_or(0);
                    tree.insert(
                        &path,
                        Entry::File {
                            blob,
                            size: data.len() as u64,
                            mode,
                            mtime,
                        },
                    )?;
                }
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name()
                        .map_err(Error::tar)?
                        .map(|name| name.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    tree.insert(&path, Entry::Symlink { target })?;
                }
                tar::EntryType::Link => {
                    if let Some(target) = entry.link_name().map_err(Error::tar)? {
                        hard_links.push((path, normalize(&target.to_string_lossy())?));
                    }
                }
                _ => {}
            }
        }
        for (path, target) in hard_links {
            if let Some(entry) = tree.entries.get(&target).cloned() {
                tree.insert(&path, entry)?;
            }
        }
        Ok(tree)
    }

    /// A tree holding one file at `path`.
    pub fn single(path: &str, entry: Entry) -> Result<Tree, Error> {
        let mut tree = Tree::default();
        tree.insert(path, entry)?;
        Ok(tree)
    }

    pub(crate) fn name_of(path: &str) -> &str {
        name_of(path)
    }
}

fn build_glob(pattern: &str) -> Result<globset::GlobMatcher, Error> {
    globset::GlobBuilder::new(pattern.trim_start_matches("./"))
        .literal_separator(true)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|source| Error::InvalidArgument {
            message: format!("invalid glob pattern {pattern:?}: {source}"),
        })
}

/// `include`/`exclude` patterns as Dagger applies them to directory copies:
/// a path is kept when it matches an include pattern (or there are none), or
/// lies under or above a kept path, and matches no exclude pattern.
#[derive(Debug, Default)]
pub(crate) struct PathFilter {
    include: Option<globset::GlobSet>,
    include_prefixes: Vec<String>,
    exclude: Option<globset::GlobSet>,
}

impl PathFilter {
    pub(crate) fn new(include: &[String], exclude: &[String]) -> Result<Self, Error> {
        let set = |patterns: &[String]| -> Result<Option<globset::GlobSet>, Error> {
            if patterns.is_empty() {
                return Ok(None);
            }
            let mut builder = globset::GlobSetBuilder::new();
            for pattern in patterns {
                let trimmed = pattern.trim_start_matches("./").trim_end_matches('/');
                builder.add(build_glob(trimmed)?.glob().clone());
                // A pattern naming a directory keeps everything under it.
                builder.add(build_glob(&format!("{trimmed}/**"))?.glob().clone());
            }
            builder
                .build()
                .map(Some)
                .map_err(|source| Error::InvalidArgument {
                    message: format!("invalid glob patterns: {source}"),
                })
        };
        let include_prefixes = include
            .iter()
            .map(|pattern| {
                let literal: String = pattern
                    .trim_start_matches("./")
                    .split('/')
                    .take_while(|part| !part.contains(['*', '?', '[', '{']))
                    .collect::<Vec<_>>()
                    .join("/");
                literal
            })
            .collect();
        Ok(Self {
            include: set(include)?,
            include_prefixes,
            exclude: set(exclude)?,
        })
    }

    pub(crate) fn accepts(&self, path: &str, is_dir: bool) -> bool {
        if let Some(exclude) = &self.exclude {
            if exclude.is_match(path) {
                return false;
            }
        }
        match &self.include {
            None => true,
            Some(include) => {
                include.is_match(path)
                    || (is_dir
                        && self.include_prefixes.iter().any(|prefix| {
                            prefix.is_empty()
                                || prefix == path
                                || prefix.starts_with(&format!("{path}/"))
                        }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(n: u8, mtime: u64) -> Entry {
        Entry::File {
            blob: Digest::of_bytes(&[n]),
            size: 1,
            mode: 0o644,
            mtime,
        }
    }

    #[test]
    fn remove_takes_a_path_and_its_children_only() {
        let mut tree = Tree::default();
        for path in ["a/x", "a/y/z", "ab", "a.txt", "b"] {
            tree.insert(path, file(1, 0)).unwrap();
        }
        assert!(tree.remove("a"));
        let left: Vec<&str> = tree.entries.keys().map(String::as_str).collect();
        assert_eq!(left, ["a.txt", "ab", "b"]);
        assert!(!tree.remove("a"));
    }

    #[test]
    fn owners_parse() {
        assert_eq!(Owner::parse("").unwrap(), None);
        let owner = |uid, gid| Some(Owner { uid, gid });
        assert_eq!(Owner::parse("1000").unwrap(), owner(1000, 1000));
        assert_eq!(Owner::parse("1:2").unwrap(), owner(1, 2));
        assert_eq!(Owner::parse("root").unwrap(), owner(0, 0));
        assert_eq!(Owner::parse("root:root").unwrap(), owner(0, 0));
        for bad in ["nobody", "1000:staff", "-1", "1:2:3"] {
            let error = Owner::parse(bad).unwrap_err();
            assert!(
                error.to_string().contains("only numeric owners"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn split_parent_handles_root() {
        assert_eq!(split_parent("/a"), ("/".into(), "a".into()));
        assert_eq!(split_parent("/a/b/c"), ("/a/b".into(), "c".into()));
    }

    #[test]
    fn timestamps_are_in_the_key_not_the_digest() {
        let plain = Tree::single("f", file(1, 0)).unwrap();
        let stamped = Tree::single("f", file(1, 5)).unwrap();
        let restamped = Tree::single("f", file(1, 6)).unwrap();
        assert_eq!(plain.digest(), stamped.digest());
        assert_eq!(plain.key(), plain.digest());
        assert_ne!(stamped.key(), plain.key());
        assert_ne!(stamped.key(), restamped.key());
    }
}
