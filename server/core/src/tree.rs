//! Filesystem snapshots: `Tree` maps relative paths to entries whose file
//! contents live in the blob store. Directories and files in the API are
//! values of this type; containers hand them to the runtime as tar layers.
//!
//! Paths inside a tree are relative, `/`-separated, never start with `/` or
//! contain `.`/`..` components; `normalize` is the one place that enforces it.

use std::collections::{BTreeMap, HashSet};
use std::io::Read as _;

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Domain, Encoder};
use crate::error::{Error, Result};
pub(crate) use crate::filter::PathFilter;
use crate::filter::{Gitignores, Verdict};
pub use crate::owner::Owner;
use crate::store::Store;

/// One entry of a tree. `owner` is left out of JSON when it is root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Entry {
    File {
        blob: Digest,
        size: u64,
        mode: u32,
        #[serde(default)]
        mtime: u64,
        #[serde(default, skip_serializing_if = "Owner::is_root")]
        owner: Owner,
    },
    Dir {
        mode: u32,
        #[serde(default, skip_serializing_if = "Owner::is_root")]
        owner: Owner,
        /// 0: unset (the time the directory is written).
        #[serde(default, skip_serializing_if = "is_zero")]
        mtime: u64,
    },
    Symlink {
        target: String,
        #[serde(default, skip_serializing_if = "Owner::is_root")]
        owner: Owner,
    },
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        matches!(self, Entry::Dir { .. })
    }

    /// A directory owned by root.
    pub fn dir(mode: u32) -> Entry {
        Entry::Dir {
            mode,
            owner: Owner::ROOT,
            mtime: 0,
        }
    }

    /// The modification time of a file or directory (0: unset).
    pub fn mtime(&self) -> u64 {
        match self {
            Entry::File { mtime, .. } | Entry::Dir { mtime, .. } => *mtime,
            Entry::Symlink { .. } => 0,
        }
    }

    pub fn owner(&self) -> Owner {
        match self {
            Entry::File { owner, .. } | Entry::Dir { owner, .. } | Entry::Symlink { owner, .. } => {
                *owner
            }
        }
    }

    pub(crate) fn set_owner(&mut self, new: Owner) {
        match self {
            Entry::File { owner, .. } | Entry::Dir { owner, .. } | Entry::Symlink { owner, .. } => {
                *owner = new;
            }
        }
    }
}

/// A directory snapshot. Parent directories of every entry are present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub entries: BTreeMap<String, Entry>,
}

/// The default directory mode, as Docker and Dagger use it.
pub(crate) const DIR_MODE: u32 = 0o755;

/// The longest file name (one path component, in bytes) Linux file systems
/// hold: a longer one fails here rather than when a runtime writes it.
pub const MAX_NAME_LEN: usize = 255;

/// Normalises a relative path: strips leading `/` and `./`, collapses `.` and
/// empty components, and refuses `..` that would climb out of the root and
/// names longer than [`MAX_NAME_LEN`].
pub fn normalize(path: &str) -> Result<String, Error> {
    if path.contains('\0') {
        return Err(Error::InvalidArgument {
            message: format!(
                "path {} contains a NUL byte, which no file name can hold",
                crate::text::quoted(path)
            ),
        });
    }
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
            other if other.len() > MAX_NAME_LEN => {
                return Err(Error::InvalidArgument {
                    message: format!(
                        "File name length exceeds the maximum supported {MAX_NAME_LEN} characters: a name of {} bytes, starting {}",
                        other.len(),
                        crate::text::quoted(&format!("{}…", other.chars().take(32).collect::<String>()))
                    ),
                })
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

/// The directories above `path`, outermost first (`a/b/c` → `a`, `a/b`).
fn ancestors_top_down(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/')
        .map(move |(index, _)| &path[..index])
}

fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl Tree {
    /// The content digest: names, modes, symlink targets, content digests
    /// and owners other than root (written after the entry, so trees owned
    /// by root keep the digests they had before entries had owners).
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
                Entry::Dir { mode, .. } => encoder.str("d").u64(u64::from(*mode)),
                Entry::Symlink { target, .. } => encoder.str("l").str(target),
            };
            let owner = entry.owner();
            if !owner.is_root() {
                encoder
                    .str("o")
                    .u64(u64::from(owner.uid))
                    .u64(u64::from(owner.gid));
            }
        }
        encoder.finish()
    }

    /// The cache key of the tree: its `digest`, plus the timestamps of files
    /// and directories that have one. Timestamps reach containers (a tar layer carries them),
    /// so `withTimestamps` must change the key of every step downstream;
    /// host trees have none (the reader zeroes them) and keep `digest` as key,
    /// so an unchanged checkout stays a cache hit whatever its mtimes.
    pub fn key(&self) -> Digest {
        self.key_with_digest(self.digest())
    }

    /// `key`, given the tree's `digest` (known already for host trees and
    /// stored ones, and costly to recompute for a large tree).
    pub(crate) fn key_with_digest(&self, digest: Digest) -> Digest {
        let mut stamped = self
            .entries
            .iter()
            .filter_map(|(path, entry)| match entry.mtime() {
                0 => None,
                mtime => Some((path, mtime)),
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
                Entry::File { mode: current, .. } | Entry::Dir { mode: current, .. } => {
                    *current = mode
                }
                Entry::Symlink { .. } => {}
            }
        }
    }

    /// Gives every entry to `owner`.
    pub(crate) fn set_owners(&mut self, owner: Owner) {
        for entry in self.entries.values_mut() {
            entry.set_owner(owner);
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
            self.entries.insert(dir, Entry::dir(DIR_MODE));
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

    /// Copies `other` into this tree at `dest` (merging directories).
    pub(crate) fn merge_at(&mut self, dest: &str, other: &Tree) -> Result<(), Error> {
        let dest = normalize(dest)?;
        if !dest.is_empty() {
            self.ensure_parents(&dest)?;
            if !self.entries.get(&dest).is_some_and(Entry::is_dir) {
                self.remove(&dest);
                self.entries.insert(dest.clone(), Entry::dir(DIR_MODE));
            }
        }
        for (path, entry) in &other.entries {
            let target = if dest.is_empty() {
                path.clone()
            } else {
                format!("{dest}/{path}")
            };
            self.insert(&target, entry.clone())?;
        }
        Ok(())
    }

    /// The entries `filter` keeps and, with `gitignores`, that no
    /// `.gitignore` rule ignores, with the directories above them.
    pub(crate) fn filtered(&self, filter: &PathFilter, gitignores: Option<&Gitignores>) -> Tree {
        let gitignores = gitignores.filter(|rules| !rules.is_empty());
        if filter.is_empty() && gitignores.is_none() {
            return self.clone();
        }
        let mut out = Tree::default();
        let mut skipped: HashSet<&str> = HashSet::new();
        for (path, entry) in &self.entries {
            let mut ancestors = std::iter::successors(parent_of(path), |dir| parent_of(dir));
            if ancestors.any(|dir| skipped.contains(dir)) {
                continue;
            }
            let is_dir = entry.is_dir();
            let verdict = if gitignores.is_some_and(|rules| rules.ignores(path, is_dir)) {
                Verdict::Skip
            } else {
                filter.verdict(path, is_dir)
            };
            match verdict {
                Verdict::Keep => {
                    for dir in ancestors_top_down(path) {
                        if !out.entries.contains_key(dir) {
                            let parent = self.entries.get(dir).cloned();
                            out.entries
                                .insert(dir.to_owned(), parent.unwrap_or(Entry::dir(DIR_MODE)));
                        }
                    }
                    out.entries.insert(path.clone(), entry.clone());
                }
                Verdict::Traverse => {}
                Verdict::Skip => {
                    if is_dir {
                        skipped.insert(path);
                    }
                }
            }
        }
        out
    }

    /// The rules of every `.gitignore` file in the tree.
    pub(crate) fn gitignores(&self, store: &dyn Store) -> Result<Gitignores> {
        let mut rules = Gitignores::default();
        for (path, entry) in &self.entries {
            if name_of(path) != ".gitignore" {
                continue;
            }
            if let Entry::File { blob, .. } = entry {
                let text = String::from_utf8_lossy(&store.get_blob(blob)?).into_owned();
                rules.add(parent_of(path).unwrap_or(""), &text)?;
            }
        }
        Ok(rules)
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

    /// The entries whose paths match a glob pattern (`*` within one level).
    pub(crate) fn matching(
        &self,
        pattern: &str,
    ) -> Result<impl Iterator<Item = (&String, &Entry)>, Error> {
        let matcher = crate::filter::glob(pattern)?.compile_matcher();
        Ok(self
            .entries
            .iter()
            .filter(move |(key, _)| matcher.is_match(key.as_str())))
    }

    /// Paths matching a glob pattern, directories marked with a `/`.
    pub fn glob(&self, pattern: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .matching(pattern)?
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
    /// Each entry keeps its own mode and owner.
    pub(crate) fn to_tar(&self, store: &dyn Store) -> Result<Vec<u8>, Error> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, entry) in &self.entries {
            let mut header = tar::Header::new_gnu();
            header.set_mtime(0);
            let owner = entry.owner();
            header.set_uid(u64::from(owner.uid));
            header.set_gid(u64::from(owner.gid));
            match entry {
                Entry::Dir { mode, mtime, .. } => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(*mode);
                    header.set_mtime(*mtime);
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
                Entry::Symlink { target, .. } => {
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
    /// Owners are kept; hard links become copies; device files and FIFOs
    /// are skipped.
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
            let owner = tar_owner(entry.header());
            match entry.header().entry_type() {
                tar::EntryType::Directory => {
                    let mtime = entry.header().mtime().unwrap_or(0);
                    tree.insert(&path, Entry::Dir { mode, owner, mtime })?
                }
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
                            owner,
                        },
                    )?;
                }
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name()
                        .map_err(Error::tar)?
                        .map(|name| name.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    tree.insert(&path, Entry::Symlink { target, owner })?;
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

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// The owner a tar header records (ids too large for a `u32` read as root).
fn tar_owner(header: &tar::Header) -> Owner {
    let id = |value: std::io::Result<u64>| value.ok().and_then(|id| u32::try_from(id).ok());
    Owner {
        uid: id(header.uid()).unwrap_or(0),
        gid: id(header.gid()).unwrap_or(0),
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
            owner: Owner::ROOT,
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
    fn owners_other_than_root_are_in_the_digest_root_is_not() {
        let plain = Tree::single("f", file(1, 0)).unwrap();
        let mut owned = plain.clone();
        owned.set_owners(Owner::ROOT);
        assert_eq!(owned.digest(), plain.digest());
        owned.set_owners(Owner {
            uid: 1000,
            gid: 1000,
        });
        assert_ne!(owned.digest(), plain.digest());
        // Root is left out of the JSON too, so stored trees keep their bytes.
        let json = serde_json::to_string(&plain).unwrap();
        assert!(!json.contains("owner"), "{json}");
        assert!(serde_json::to_string(&owned)
            .unwrap()
            .contains(r#""owner":{"uid":1000,"gid":1000}"#));
    }

    #[test]
    fn filtering_keeps_only_the_directories_above_what_it_keeps() {
        let mut tree = Tree::default();
        for path in ["a.rar", "sub/b.txt", "sub/deep/c.rar", "empty/x.txt"] {
            tree.insert(path, file(1, 0)).unwrap();
        }
        tree.insert("sub", Entry::dir(0o700)).unwrap();
        let include = PathFilter::new(&["**/*.rar".into()], &[]).unwrap();
        let kept = tree.filtered(&include, None);
        let paths: Vec<&str> = kept.entries.keys().map(String::as_str).collect();
        assert_eq!(paths, ["a.rar", "sub", "sub/deep", "sub/deep/c.rar"]);
        // A parent keeps its own mode.
        assert_eq!(kept.get("sub"), Some(&Entry::dir(0o700)));
        let mut ignored = Gitignores::default();
        ignored.add("", "sub/\n").unwrap();
        let kept = tree.filtered(&PathFilter::default(), Some(&ignored));
        let paths: Vec<&str> = kept.entries.keys().map(String::as_str).collect();
        assert_eq!(paths, ["a.rar", "empty", "empty/x.txt"]);
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
