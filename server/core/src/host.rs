//! Reading the client's host filesystem into content-addressed trees.
//!
//! A host directory becomes a `Tree` whose digest covers names, modes,
//! symlink targets and contents. Re-reading an unchanged tree must not
//! re-read every byte, so an index (like git's) remembers each file's
//! blob digest keyed by path, size, mtime and inode; a file whose stat
//! matches is not opened again. The index is per root path and filter and
//! kept in the store (`RecordKind::HostIndex`), so it survives restarts.
//!
//! As in git, a file modified in the same clock tick as the read that
//! indexed it could keep its recorded stat ("racily clean"), so entries
//! whose mtime is not safely older than that read are re-read.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Domain, Encoder};
use crate::error::{Error, Result};
use crate::filter::{Gitignores, PathFilter, Verdict};
use crate::store::{RecordKind, Store};
use crate::tree::{Entry, Owner, Tree};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stat {
    size: u64,
    mtime_ns: i128,
    inode: u64,
    mode: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    files: HashMap<String, (Stat, Digest)>,
    /// When the walk that wrote this index started (ns since the epoch).
    #[serde(default)]
    started_ns: i128,
}

/// How far file timestamps may trail the wall clock: kernels stamp files
/// from a clock that ticks every few milliseconds, and some filesystems
/// round further. An indexed file whose mtime is within this margin of the
/// indexing walk's start is re-read (see the module docs).
const RACY_MARGIN_NS: i128 = 1_000_000_000;

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

impl Index {
    /// The recorded blob of `rel`, when its stat is unchanged and was
    /// recorded safely after its last modification.
    fn known(&self, rel: &str, stat: &Stat) -> Option<Digest> {
        match self.files.get(rel) {
            Some((known, blob))
                if known == stat && stat.mtime_ns < self.started_ns - RACY_MARGIN_NS =>
            {
                Some(*blob)
            }
            _ => None,
        }
    }
}

/// The key a host tree is stored under (`RecordKind::HostTree`), by content
/// digest.
pub fn tree_key(content: &Digest) -> Digest {
    let mut encoder = Encoder::new(Domain::HostTree);
    encoder.digest(content);
    encoder.finish()
}

/// A tree read earlier by `read_directory`/`read_file`.
pub(crate) fn load_tree(store: &dyn Store, content: &Digest) -> Result<Tree> {
    let bytes = store
        .get(RecordKind::HostTree, &tree_key(content))?
        .ok_or_else(|| Error::UnknownId {
            kind: "host directory".into(),
            id: content.to_string(),
        })?;
    serde_json::from_slice(&bytes)
        .map_err(|source| Error::store("reading a host tree", source.into()))
}

fn host_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Host {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// The key a directory's index is stored under (`RecordKind::HostIndex`).
fn index_key(root: &Path, options: &ReadOptions<'_>) -> Digest {
    let mut encoder = Encoder::new(Domain::HostIndex);
    encoder
        .str(&root.to_string_lossy())
        .strs(options.include)
        .strs(options.exclude);
    // Written only when set, so indexes stored before it still serve.
    if options.gitignore {
        encoder.str("gitignore");
    }
    encoder.finish()
}

/// How `read_directory` filters what it reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions<'a> {
    pub include: &'a [String],
    pub exclude: &'a [String],
    /// Apply the `.gitignore` files of the enclosing git repository (none
    /// when the directory is in no repository, as in Dagger).
    pub gitignore: bool,
}

/// Reads a host directory (filtered) and stores its tree; returns the tree
/// digest, which identifies the content.
pub fn read_directory(store: &dyn Store, root: &Path, options: ReadOptions<'_>) -> Result<Digest> {
    let meta = fs::metadata(root).map_err(|error| host_error(root, error.to_string()))?;
    if !meta.is_dir() {
        return Err(host_error(root, "not a directory"));
    }
    let filter = PathFilter::new(options.include, options.exclude)?;
    let index_key = index_key(root, &options);
    let old: Index = store
        .get(RecordKind::HostIndex, &index_key)?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let mut walk = Walk {
        store,
        filter: &filter,
        git: None,
        owners: false,
        old: &old,
        new: Index {
            files: HashMap::new(),
            started_ns: now_ns(),
        },
        tree: Tree::default(),
    };
    if options.gitignore {
        walk.git = enclosing_repository(root)?;
    }
    walk.dir(root, "", &mut Vec::new())?;
    let digest = store_tree(store, &walk.tree)?;
    // Rewritten only when something changed; an index left as it was keeps
    // its older start time, which only makes it more cautious.
    if walk.new.files != old.files {
        let bytes = serde_json::to_vec(&walk.new).expect("indexes always serialise");
        store.put(RecordKind::HostIndex, &index_key, &bytes)?;
    }
    Ok(digest)
}

/// The git repository around `root` and the `.gitignore` rules that reach
/// `root` from above; `None` outside any repository. A `root` that those
/// rules ignore reads as missing, as git would not check it out.
fn enclosing_repository(root: &Path) -> Result<Option<Repository>> {
    let Some(top) = root.ancestors().find(|dir| dir.join(".git").exists()) else {
        return Ok(None);
    };
    let relative = root
        .strip_prefix(top)
        .expect("an ancestor is a prefix")
        .to_string_lossy()
        .into_owned();
    let mut repository = Repository {
        rules: Gitignores::default(),
        prefix: relative.clone(),
    };
    let mut dir = String::new();
    for part in relative.split('/').filter(|part| !part.is_empty()) {
        repository.add_rules(&top.join(&dir), &dir)?;
        dir = join(&dir, part);
        if repository.rules.ignores(&dir, true) {
            return Err(host_error(root, "no such file or directory"));
        }
    }
    Ok(Some(repository))
}

/// `.gitignore` rules of a repository, with paths relative to its top.
struct Repository {
    rules: Gitignores,
    /// Where the directory being read sits in the repository.
    prefix: String,
}

impl Repository {
    /// Adds the rules of `host_dir/.gitignore` (`dir` in the repository).
    fn add_rules(&mut self, host_dir: &Path, dir: &str) -> Result<()> {
        let path = host_dir.join(".gitignore");
        match fs::read_to_string(&path) {
            Ok(text) => self.rules.add(dir, &text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(host_error(&path, error.to_string())),
        }
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

/// Reads a directory the engine itself manages (no filter, no index; owners
/// kept) and stores its tree; returns the tree digest for `load_tree`.
pub(crate) fn read_plain(store: &dyn Store, root: &Path) -> Result<Digest> {
    store_tree(store, &walk_plain(store, root, true)?)
}

/// Reads a directory the engine wrote for a source (a Git checkout: no
/// filter, no index, every entry root's, as Dagger gives them) into a tree;
/// file contents go to the blob store, the tree is not stored.
pub(crate) fn read_tree(store: &dyn Store, root: &Path) -> Result<Tree> {
    walk_plain(store, root, false)
}

/// Reads `root` without filter or index; `owners`: keep files' owners.
fn walk_plain(store: &dyn Store, root: &Path, owners: bool) -> Result<Tree> {
    let filter = PathFilter::default();
    let old = Index::default();
    let mut walk = Walk {
        store,
        filter: &filter,
        git: None,
        owners,
        old: &old,
        new: Index::default(),
        tree: Tree::default(),
    };
    walk.dir(root, "", &mut Vec::new())?;
    Ok(walk.tree)
}

/// Stores a tree (once) under its content digest, which it returns.
fn store_tree(store: &dyn Store, tree: &Tree) -> Result<Digest> {
    let digest = tree.digest();
    if store
        .get(RecordKind::HostTree, &tree_key(&digest))?
        .is_none()
    {
        let json = serde_json::to_vec(tree).expect("trees always serialise");
        store.put(RecordKind::HostTree, &tree_key(&digest), &json)?;
    }
    Ok(digest)
}

/// Reads one host file as a one-entry tree named after the file, streamed
/// into the store (a 1 GiB file costs no more memory than a small one).
pub fn read_file(store: &dyn Store, path: &Path) -> Result<Digest> {
    let meta = fs::metadata(path).map_err(|error| host_error(path, error.to_string()))?;
    if !meta.is_file() {
        return Err(host_error(path, "not a regular file"));
    }
    let (blob, size) = store.put_blob_file(path)?;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tree = Tree::single(
        &name,
        Entry::File {
            blob,
            size,
            mode: meta.permissions().mode() & 0o7777,
            mtime: 0,
            owner: Owner::ROOT,
        },
    )?;
    store_tree(store, &tree)
}

/// One walk of a host directory into a tree.
struct Walk<'a> {
    store: &'a dyn Store,
    filter: &'a PathFilter,
    git: Option<Repository>,
    /// Keep files' owners (the engine's own directories); the client's
    /// files are read as root's.
    owners: bool,
    old: &'a Index,
    new: Index,
    tree: Tree,
}

impl Walk<'_> {
    /// Reads `dir` (`prefix` in the tree). `pending` holds the directories
    /// above it that are kept only if something under them is.
    fn dir(&mut self, dir: &Path, prefix: &str, pending: &mut Vec<(String, Entry)>) -> Result<()> {
        if let Some(git) = &mut self.git {
            let in_repository = join(&git.prefix, prefix);
            git.add_rules(dir, &in_repository)?;
        }
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(|error| host_error(dir, error.to_string()))?
            .filter_map(|entry| entry.ok())
            .collect();
        names.sort_by_key(|entry| entry.file_name());
        for entry in names {
            let rel = join(prefix, &entry.file_name().to_string_lossy());
            let path = entry.path();
            let meta = fs::symlink_metadata(&path)
                .map_err(|error| host_error(&path, error.to_string()))?;
            let is_dir = meta.file_type().is_dir();
            let ignored = self
                .git
                .as_ref()
                .is_some_and(|git| git.rules.ignores(&join(&git.prefix, &rel), is_dir));
            let verdict = if ignored {
                Verdict::Skip
            } else {
                self.filter.verdict(&rel, is_dir)
            };
            let owner = match self.owners {
                true => Owner {
                    uid: meta.uid(),
                    gid: meta.gid(),
                },
                false => Owner::ROOT,
            };
            let mode = meta.permissions().mode() & 0o7777;
            match verdict {
                Verdict::Skip => {}
                Verdict::Traverse if is_dir => {
                    pending.push((
                        rel.clone(),
                        Entry::Dir {
                            mode,
                            owner,
                            mtime: 0,
                        },
                    ));
                    self.dir(&path, &rel, pending)?;
                    if pending.last().is_some_and(|(dir, _)| *dir == rel) {
                        pending.pop();
                    }
                }
                Verdict::Traverse | Verdict::Keep => {
                    let Some(found) = self.entry(&path, &rel, &meta, owner)? else {
                        continue;
                    };
                    for (dir, entry) in pending.drain(..) {
                        self.tree.insert(&dir, entry)?;
                    }
                    self.tree.insert(&rel, found)?;
                    if is_dir {
                        self.dir(&path, &rel, pending)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The entry for `path`, reading a file's contents unless the index
    /// vouches for them. `None` for what trees do not hold (sockets, FIFOs).
    fn entry(
        &mut self,
        path: &Path,
        rel: &str,
        meta: &fs::Metadata,
        owner: Owner,
    ) -> Result<Option<Entry>> {
        let file_type = meta.file_type();
        let mode = meta.permissions().mode() & 0o7777;
        if file_type.is_dir() {
            return Ok(Some(Entry::Dir {
                mode,
                owner,
                mtime: 0,
            }));
        }
        if file_type.is_symlink() {
            let target =
                fs::read_link(path).map_err(|error| host_error(path, error.to_string()))?;
            return Ok(Some(Entry::Symlink {
                target: target.to_string_lossy().into_owned(),
                owner,
            }));
        }
        if !file_type.is_file() {
            return Ok(None);
        }
        let stat = Stat {
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            inode: meta.ino(),
            mode,
        };
        let blob = match self.old.known(rel, &stat) {
            Some(blob) => blob,
            // Streamed into the store: memory stays bounded whatever the
            // file's size.
            None => self.store.put_blob_file(path)?.0,
        };
        self.new.files.insert(rel.to_owned(), (stat.clone(), blob));
        Ok(Some(Entry::File {
            blob,
            size: stat.size,
            mode,
            mtime: 0,
            owner,
        }))
    }
}

/// `Host.findUp`: the nearest `name` in `start` or one of its parents, as
/// a path relative to `start` (`name`, `../name`, …); `None` when there is
/// none up to the root.
pub fn find_up(start: &Path, name: &str) -> Result<Option<String>> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Error::InvalidArgument {
            message: format!("findUp: {name:?} is not the name of a file or directory"),
        });
    }
    let mut dir = Some(start);
    let mut up = String::new();
    while let Some(current) = dir {
        if fs::symlink_metadata(current.join(name)).is_ok() {
            return Ok(Some(format!("{up}{name}")));
        }
        up.push_str("../");
        dir = current.parent();
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::store::MemoryStore;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "gantry-host-test-{name}-{}-{:x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Rewrites `path` in place with `contents` (same length), then puts
    /// its mtime back: only the contents differ from what was indexed.
    fn rewrite_keeping_stat(path: &Path, contents: &str) {
        let mtime = fs::metadata(path).unwrap().modified().unwrap();
        fs::write(path, contents).unwrap();
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }

    #[test]
    fn the_index_spares_unchanged_files_but_not_racily_clean_ones() {
        let root = temp_dir("root");
        let store = MemoryStore::default();
        let old = root.join("old.txt");
        let fresh = root.join("fresh.txt");
        fs::write(&old, "old-1").unwrap();
        fs::write(&fresh, "new-1").unwrap();
        fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        let read = |store: &MemoryStore| {
            let digest = read_directory(store, &root, ReadOptions::default()).unwrap();
            let tree = load_tree(store, &digest).unwrap();
            let contents = |name: &str| match tree.get(name) {
                Some(Entry::File { blob, .. }) => {
                    String::from_utf8(store.get_blob(blob).unwrap()).unwrap()
                }
                other => panic!("{name}: {other:?}"),
            };
            (contents("old.txt"), contents("fresh.txt"))
        };
        assert_eq!(read(&store), ("old-1".into(), "new-1".into()));
        // Same size, inode and mtime: an old file is trusted (not re-read)...
        rewrite_keeping_stat(&old, "old-2");
        // ...but one modified around the time it was indexed is re-read.
        rewrite_keeping_stat(&fresh, "new-2");
        assert_eq!(read(&store), ("old-1".into(), "new-2".into()));
        // A real change (new mtime) is always seen.
        fs::write(&old, "old-3").unwrap();
        assert_eq!(read(&store).0, "old-3");
        assert_eq!(store.record_count(RecordKind::HostIndex), 1);
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn filters_keep_separate_indexes() {
        let root = temp_dir("root");
        let go = ["*.go".to_owned()];
        let options = |include, exclude, gitignore| ReadOptions {
            include,
            exclude,
            gitignore,
        };
        let a = index_key(&root, &options(&[], &[], false));
        let b = index_key(&root, &options(&go, &[], false));
        let c = index_key(&root, &options(&[], &go, false));
        let d = index_key(&root, &options(&[], &[], true));
        assert!(a != b && b != c && a != c && d != a);
        let _ = fs::remove_dir_all(&root);
    }
}
