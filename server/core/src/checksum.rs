//! `Directory.digest` and `File.digest` as Dagger defines them, so a digest a
//! Dagger pipeline compares against (or stores) is the same here.
//!
//! Dagger computes them with BuildKit's content hash (`contenthash` in its
//! engine), which this module computes from a [`Tree`] instead of a mounted
//! snapshot:
//! - an entry's header is the "v1 tarsum" selection of its tar header: the
//!   fields `name` (always empty), `mode` (permission, setuid, setgid and
//!   sticky bits, in decimal), `uid`, `gid`, `size` (regular files only),
//!   `typeflag`, `linkname`, `uname`, `gname` (empty), `devmajor`,
//!   `devminor` (0), each written as its name followed by its value, with no
//!   separators. The modification time is not part of it.
//! - a file or symlink hashes as sha256 over its header followed by its
//!   contents (symlinks have none; their mode is 0777).
//! - a directory hashes as sha256 over `\0`, the digest of its own header,
//!   then for each entry in byte order of names `\0`, the name and the
//!   entry's digest; digests are written as `sha256:<hex>` text.
//! - `File.digest(excludeMetadata: true)` is sha256 over the 32 raw bytes of
//!   the sha256 of the contents.
//!
//! Not covered, because gantry's trees do not hold them: extended attributes
//! (hashed by Dagger when set), device numbers and hardlinks (Dagger hashes a
//! hardlink as its source). A tree has no entry for its own root, so the root
//! hashes as a `0755` directory owned by root, as Dagger's scratch directory
//! and the directories it creates are.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::Read;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::tree::{Entry, Owner, Tree, DIR_MODE};
use crate::value::FileValue;

/// Opens a blob of the store by its digest.
pub trait OpenBlob: Fn(&Digest) -> Result<Box<dyn Read + Send>> {}
impl<F: Fn(&Digest) -> Result<Box<dyn Read + Send>>> OpenBlob for F {}

/// Digests already computed, by what they are a function of, so that asking
/// again reads only contents not hashed before: an unchanged host directory
/// reloaded costs no blob read, one changed file costs that file's (BuildKit
/// keeps a checksum cache per snapshot for the same reason). Kept by the
/// engine for its life; each map is emptied when it passes `MEMO_LIMIT`
/// entries (a digest asked for again is then computed again).
#[derive(Debug, Default)]
pub struct Memo {
    /// A regular file's digest by contents (blob) and header fields.
    files: DashMap<(Digest, u32, Owner, u64), Digest>,
    /// `Directory.digest` by the tree's content key (`Tree::key`).
    trees: DashMap<Digest, Digest>,
    /// The digest of every directory of the trees hashed last, by tree
    /// key, so that a tree differing from one of them in a few files (a
    /// host directory reloaded after an edit) hashes only the directories
    /// above those files (`carry`) instead of looking up every file again.
    recent: Mutex<VecDeque<(Digest, Arc<Directories>)>>,
}

/// The digest of each directory of a tree, by path (`""` for its root).
type Directories = HashMap<String, Digest>;

/// How many trees `Memo::recent` keeps the directory digests of.
const RECENT_TREES: usize = 4;

/// Entries each map of `Memo` holds at most (about 100 bytes each).
const MEMO_LIMIT: usize = 200_000;

impl Memo {
    /// `tree` below, for a tree whose `Tree::key` is `key`.
    pub fn tree(&self, open: &impl OpenBlob, tree: &Tree, key: &Digest) -> Result<Digest> {
        if let Some(digest) = self.trees.get(key) {
            return Ok(*digest);
        }
        let mut directories = Directories::new();
        let digest = hash_tree(open, Some(self), tree, &mut directories)?;
        self.keep(*key, digest, directories);
        Ok(digest)
    }

    /// Whether the `Directory.digest` of the tree of key `key` is known.
    #[cfg(test)]
    pub(crate) fn knows_tree(&self, key: &Digest) -> bool {
        self.trees.contains_key(key)
    }

    fn keep(&self, key: Digest, digest: Digest, directories: Directories) {
        remember(&self.trees, key, digest);
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if recent.len() >= RECENT_TREES {
            recent.pop_front();
        }
        recent.push_back((key, Arc::new(directories)));
    }

    /// Computes ahead the `Directory.digest` of `tree` (key `key`), which
    /// differs from the tree of key `from` only in the entries at `changed`
    /// (files whose contents or modes changed, directories whose modes
    /// did), when `from`'s directories were hashed
    /// lately and the changed files' digests are known (`seed_file`): only
    /// the directories above those files are hashed again. Does nothing
    /// otherwise (`tree` then hashes in full when asked for).
    pub fn carry<'a>(
        &self,
        from: &Digest,
        tree: &Tree,
        key: &Digest,
        changed: impl IntoIterator<Item = &'a str>,
    ) {
        let old = {
            let recent = self
                .recent
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            match recent.iter().find(|(tree_key, _)| tree_key == from) {
                Some((_, directories)) => directories.clone(),
                None => return,
            }
        };
        // Every directory above a changed file, deepest first (a directory's
        // path is longer than its parent's).
        let mut dirty = BTreeSet::new();
        for path in changed {
            if let Some(Entry::Dir { .. }) = tree.entries.get(path) {
                dirty.insert(path);
            }
            let mut current = path;
            while let Some(index) = current.rfind('/') {
                current = &current[..index];
                dirty.insert(current);
            }
            dirty.insert("");
        }
        let mut dirty: Vec<&str> = dirty.into_iter().collect();
        dirty.sort_by_key(|path| std::cmp::Reverse(path.len()));
        let mut directories = Directories::clone(&old);
        for path in dirty {
            let Some(digest) = self.rehash_directory(tree, path, &directories) else {
                return;
            };
            directories.insert(path.to_owned(), digest);
        }
        let Some(&digest) = directories.get("") else {
            return;
        };
        self.keep(*key, digest, directories);
    }

    /// The digest of the directory at `path` in `tree` from the digests of
    /// its subdirectories in `directories` and its files' known digests;
    /// `None` when one is missing.
    fn rehash_directory(
        &self,
        tree: &Tree,
        path: &str,
        directories: &Directories,
    ) -> Option<Digest> {
        let (mode, owner) = match path {
            "" => (DIR_MODE, Owner::ROOT),
            _ => match tree.entries.get(path)? {
                Entry::Dir { mode, owner, .. } => (*mode, *owner),
                _ => return None,
            },
        };
        let prefix = match path {
            "" => String::new(),
            _ => format!("{path}/"),
        };
        // In a tree's order, a directory's descendants follow one another,
        // its children by the byte order of their names; the entries below
        // a child `c` lie between `c/` and `c0` (`0` follows `/`), and are
        // skipped with one seek.
        let mut children = Vec::new();
        let mut from = prefix.clone();
        'seek: loop {
            let entries = tree
                .entries
                .range::<str, _>((Bound::Included(from.as_str()), Bound::Unbounded));
            for (child, entry) in entries {
                let Some(name) = child.strip_prefix(prefix.as_str()) else {
                    break 'seek;
                };
                if let Some(slash) = name.find('/') {
                    from = format!("{prefix}{}0", &name[..slash]);
                    continue 'seek;
                }
                let digest = match entry {
                    Entry::File {
                        blob,
                        size,
                        mode,
                        owner,
                        ..
                    } => self.known_file(*blob, *size, *mode, *owner)?,
                    Entry::Symlink { target, owner } => symlink(target, *owner),
                    Entry::Dir { .. } => *directories.get(child.as_str())?,
                };
                children.push((name, digest));
            }
            break;
        }
        Some(directory_digest(mode, owner, children))
    }

    /// Records `digest` as the `File.digest` of a regular file holding
    /// `blob` (`size` bytes) with `mode` and `owner`: what reads a file's
    /// bytes anyway (a host directory's first load) computes it then
    /// (`of_contents`), so a `digest` asked for next reads no blob back.
    pub fn seed_file(&self, blob: Digest, size: u64, mode: u32, owner: Owner, digest: Digest) {
        remember(&self.files, (blob, mode & MODE_BITS, owner, size), digest);
    }

    /// The `File.digest` remembered for a regular file holding `blob`
    /// (`size` bytes) with `mode` and `owner`, if any.
    pub(crate) fn known_file(
        &self,
        blob: Digest,
        size: u64,
        mode: u32,
        owner: Owner,
    ) -> Option<Digest> {
        self.files
            .get(&(blob, mode & MODE_BITS, owner, size))
            .map(|digest| *digest)
    }

    /// `file` below.
    pub fn file(&self, open: &impl OpenBlob, file: &FileValue) -> Result<Digest> {
        regular(
            open,
            Some(self),
            &file.blob,
            file.size,
            file.mode,
            file.owner,
        )
    }
}

fn remember<K: std::hash::Hash + Eq>(map: &DashMap<K, Digest>, key: K, digest: Digest) {
    if map.len() >= MEMO_LIMIT {
        map.clear();
    }
    map.insert(key, digest);
}

/// The tar type flags the header carries.
const REGULAR: char = '0';
const SYMLINK: char = '2';
const DIRECTORY: char = '5';

/// The permission, setuid, setgid and sticky bits, as a tar header keeps them.
const MODE_BITS: u32 = 0o7777;

fn header(hash: &mut Sha256, mode: u32, owner: Owner, size: u64, kind: char, link: &str) {
    let fields = format!(
        "namemode{}uid{}gid{}size{size}typeflag{kind}linkname{link}unamegnamedevmajor0devminor0",
        mode & MODE_BITS,
        owner.uid,
        owner.gid,
    );
    hash.update(fields.as_bytes());
}

/// `digest.to_string()` (`sha256:<hex>`) without allocating: a directory
/// hashes one per entry.
fn as_text(digest: &Digest) -> [u8; 71] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 71];
    text[..7].copy_from_slice(b"sha256:");
    for (at, byte) in digest.bytes().iter().enumerate() {
        text[7 + 2 * at] = HEX[usize::from(byte >> 4)];
        text[8 + 2 * at] = HEX[usize::from(byte & 0xf)];
    }
    text
}

fn finish(hash: Sha256) -> Digest {
    Digest::from_bytes(hash.finalize().into())
}

fn regular(
    open: &impl OpenBlob,
    memo: Option<&Memo>,
    blob: &Digest,
    size: u64,
    mode: u32,
    owner: Owner,
) -> Result<Digest> {
    let key = (*blob, mode & MODE_BITS, owner, size);
    if let Some(digest) = memo.and_then(|memo| memo.files.get(&key)) {
        return Ok(*digest);
    }
    let mut hash = Sha256::new();
    header(&mut hash, mode, owner, size, REGULAR, "");
    if size > 0 {
        let mut reader = open(blob)?;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = reader
                .read(&mut buffer)
                .map_err(|error| Error::store("reading a blob to compute its digest", error))?;
            if read == 0 {
                break;
            }
            hash.update(&buffer[..read]);
        }
    }
    let digest = finish(hash);
    if let Some(memo) = memo {
        remember(&memo.files, key, digest);
    }
    Ok(digest)
}

/// `File.digest`: the file's header (mode, owner, size) and its contents.
pub fn file(open: &impl OpenBlob, file: &FileValue) -> Result<Digest> {
    regular(open, None, &file.blob, file.size, file.mode, file.owner)
}

/// `File.digest` of a regular file whose contents are `bytes`, with
/// `mode` and `owner` (`file` without a store: the bytes are at hand).
pub fn of_contents(bytes: &[u8], mode: u32, owner: Owner) -> Digest {
    let mut hash = Sha256::new();
    header(&mut hash, mode, owner, bytes.len() as u64, REGULAR, "");
    hash.update(bytes);
    finish(hash)
}

/// `File.digest(excludeMetadata: true)`: the contents only, from the digest
/// of the blob that holds them.
pub fn file_contents(blob: &Digest) -> Digest {
    finish(Sha256::new_with_prefix(blob.bytes()))
}

/// `Directory.digest`: every entry's name, header and contents.
pub fn tree(open: &impl OpenBlob, tree: &Tree) -> Result<Digest> {
    hash_tree(open, None, tree, &mut Directories::new())
}

/// `tree`, recording each directory's digest in `directories`.
fn hash_tree(
    open: &impl OpenBlob,
    memo: Option<&Memo>,
    tree: &Tree,
    directories: &mut Directories,
) -> Result<Digest> {
    // Entries by parent directory, in byte order of names (a tree's own
    // order puts `a.txt` before `a/b`, BuildKit's puts `a/` first).
    let mut children: BTreeMap<&str, Vec<(&str, &Entry)>> = BTreeMap::new();
    for (path, entry) in &tree.entries {
        let (parent, name) = match path.rfind('/') {
            Some(index) => (&path[..index], &path[index + 1..]),
            None => ("", path.as_str()),
        };
        children.entry(parent).or_default().push((name, entry));
    }
    for list in children.values_mut() {
        list.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    }
    let walk = Walk {
        open,
        memo,
        children: &children,
    };
    walk.directory("", DIR_MODE, Owner::ROOT, directories)
}

/// A tree's entries by parent directory, hashed from the bottom up.
struct Walk<'a, O> {
    open: &'a O,
    memo: Option<&'a Memo>,
    children: &'a BTreeMap<&'a str, Vec<(&'a str, &'a Entry)>>,
}

impl<O: OpenBlob> Walk<'_, O> {
    fn directory(
        &self,
        path: &str,
        mode: u32,
        owner: Owner,
        directories: &mut Directories,
    ) -> Result<Digest> {
        let listed = self
            .children
            .get(path)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut children = Vec::with_capacity(listed.len());
        for (name, entry) in listed {
            let digest = match entry {
                Entry::File {
                    blob,
                    size,
                    mode,
                    owner,
                    ..
                } => regular(self.open, self.memo, blob, *size, *mode, *owner)?,
                Entry::Symlink { target, owner } => symlink(target, *owner),
                Entry::Dir { mode, owner, .. } => {
                    let child = if path.is_empty() {
                        (*name).to_owned()
                    } else {
                        format!("{path}/{name}")
                    };
                    self.directory(&child, *mode, *owner, directories)?
                }
            };
            children.push((*name, digest));
        }
        let digest = directory_digest(mode, owner, children);
        directories.insert(path.to_owned(), digest);
        Ok(digest)
    }
}

fn symlink(target: &str, owner: Owner) -> Digest {
    let mut link = Sha256::new();
    header(&mut link, 0o777, owner, 0, SYMLINK, target);
    finish(link)
}

/// A directory's digest from its header and its children's names and
/// digests, in byte order of names.
fn directory_digest<'a>(
    mode: u32,
    owner: Owner,
    children: impl IntoIterator<Item = (&'a str, Digest)>,
) -> Digest {
    let mut own = Sha256::new();
    header(&mut own, mode, owner, 0, DIRECTORY, "");
    let mut hash = Sha256::new();
    hash.update(b"\0");
    hash.update(as_text(&finish(own)));
    for (name, digest) in children {
        hash.update(b"\0");
        hash.update(name.as_bytes());
        hash.update(as_text(&digest));
    }
    finish(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(contents: &'static [u8]) -> impl OpenBlob {
        move |_: &Digest| Ok(Box::new(contents) as Box<dyn Read + Send>)
    }

    fn file_entry(contents: &[u8], mode: u32) -> Entry {
        Entry::File {
            blob: Digest::of_bytes(contents),
            size: contents.len() as u64,
            mode,
            mtime: 0,
            owner: Owner::ROOT,
        }
    }

    // The expected values are the ones Dagger v0.21.8 returns for the same
    // files (its core/integration TestDigest tests hold them).
    #[test]
    fn files_hash_as_dagger_does() {
        let contents = b"Hello, World!";
        let value = FileValue::new("foo.txt".into(), Digest::of_bytes(contents), 13, 0o644);
        assert_eq!(
            file(&open(contents), &value).unwrap().to_string(),
            "sha256:8a887cdd3e476c79e1a14a65a6c401673b56071a24561dadb5e152605e72a613"
        );
        assert_eq!(
            of_contents(contents, 0o644, Owner::ROOT).to_string(),
            "sha256:8a887cdd3e476c79e1a14a65a6c401673b56071a24561dadb5e152605e72a613",
            "computed from the bytes at hand, as from the store"
        );
        assert_eq!(
            file_contents(&value.blob).to_string(),
            "sha256:042a7d64a581ef2ee983f21058801cc35663b705e6c55f62fa8e0f18ecc70989"
        );
        let executable = FileValue::new("foo.txt".into(), value.blob, 13, 0o777);
        assert_ne!(
            file(&open(contents), &executable).unwrap(),
            file(&open(contents), &value).unwrap()
        );
    }

    #[test]
    fn a_digest_as_text_is_its_display_form() {
        let digest = Digest::of_bytes(b"any");
        assert_eq!(as_text(&digest)[..], digest.to_string().into_bytes()[..]);
    }

    #[test]
    fn directories_hash_as_dagger_does() {
        let nothing = |_: &Digest| -> Result<Box<dyn Read + Send>> { panic!("no blob to read") };
        assert_eq!(
            tree(&nothing, &Tree::default()).unwrap().to_string(),
            "sha256:0e5db88383bce812f795689f5318a2b2f4fde740ef31c2a2365a46368aafddd2"
        );
        let mut one = Tree::default();
        one.insert("foo.txt", file_entry(b"Hello, World!", 0o644))
            .unwrap();
        assert_eq!(
            tree(&open(b"Hello, World!"), &one).unwrap().to_string(),
            "sha256:48ac4b4b73af8a75a3c77e9dc6211d89321c6ed4f13c6987c6837ac58645bd89"
        );
    }

    #[test]
    fn the_memo_gives_the_same_digests_and_reads_only_new_contents() {
        let reads = std::sync::atomic::AtomicUsize::new(0);
        let counting = |blob: &Digest| -> Result<Box<dyn Read + Send>> {
            reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let contents: &'static [u8] = if *blob == Digest::of_bytes(b"one") {
                b"one"
            } else {
                b"two"
            };
            Ok(Box::new(contents))
        };
        let mut first = Tree::default();
        first
            .insert("a/one.txt", file_entry(b"one", 0o644))
            .unwrap();
        first.insert("b.txt", file_entry(b"two", 0o755)).unwrap();
        let memo = Memo::default();
        let expected = tree(&counting, &first).unwrap();
        reads.store(0, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            memo.tree(&counting, &first, &first.key()).unwrap(),
            expected
        );
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 2);
        // Asked again: nothing is read.
        assert_eq!(
            memo.tree(&counting, &first, &first.key()).unwrap(),
            expected
        );
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 2);
        // One file's mode changed: its digest changes, no contents are read.
        let mut second = first.clone();
        second.insert("b.txt", file_entry(b"two", 0o644)).unwrap();
        let changed = memo.tree(&counting, &second, &second.key()).unwrap();
        assert_ne!(changed, expected);
        assert_eq!(changed, tree(&counting, &second).unwrap());
        reads.store(0, std::sync::atomic::Ordering::SeqCst);
        // New contents are read once.
        let mut third = first.clone();
        third.insert("c.txt", file_entry(b"one", 0o600)).unwrap();
        memo.tree(&counting, &third, &third.key()).unwrap();
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1);
        let file = FileValue::new("x".into(), Digest::of_bytes(b"one"), 3, 0o644);
        assert_eq!(
            memo.file(&counting, &file).unwrap(),
            super::file(&counting, &file).unwrap()
        );
    }

    #[test]
    fn a_carried_digest_is_the_full_one_and_reads_nothing() {
        let contents: std::collections::HashMap<Digest, &'static [u8]> =
            [&b"one"[..], b"two", b"three", b"new"]
                .into_iter()
                .map(|bytes| (Digest::of_bytes(bytes), bytes))
                .collect();
        let open = |blob: &Digest| -> Result<Box<dyn Read + Send>> { Ok(Box::new(contents[blob])) };
        let nothing = |_: &Digest| -> Result<Box<dyn Read + Send>> { panic!("no blob to read") };
        let mut first = Tree::default();
        first
            .insert("a/b/c.txt", file_entry(b"one", 0o644))
            .unwrap();
        first.insert("a/d.txt", file_entry(b"two", 0o644)).unwrap();
        first.insert("a.txt", file_entry(b"three", 0o644)).unwrap();
        first.insert("a0/e.txt", file_entry(b"one", 0o600)).unwrap();
        first
            .insert(
                "a/l",
                Entry::Symlink {
                    target: "d.txt".into(),
                    owner: Owner::ROOT,
                },
            )
            .unwrap();
        let memo = Memo::default();
        memo.tree(&open, &first, &first.key()).unwrap();

        // A file deep down changed, its new digest known.
        let mut second = first.clone();
        second
            .insert("a/b/c.txt", file_entry(b"new", 0o755))
            .unwrap();
        memo.seed_file(
            Digest::of_bytes(b"new"),
            3,
            0o755,
            Owner::ROOT,
            of_contents(b"new", 0o755, Owner::ROOT),
        );
        memo.carry(&first.key(), &second, &second.key(), ["a/b/c.txt"]);
        let carried = memo.tree(&nothing, &second, &second.key()).unwrap();
        assert_eq!(carried, tree(&open, &second).unwrap());
        assert_ne!(carried, tree(&open, &first).unwrap());

        // From the carried tree on: a directory's mode changed.
        let mut third = second.clone();
        third.insert("a/b", Entry::dir(0o700)).unwrap();
        memo.carry(&second.key(), &third, &third.key(), ["a/b"]);
        let carried = memo.tree(&nothing, &third, &third.key()).unwrap();
        assert_eq!(carried, tree(&open, &third).unwrap());

        // Nothing is carried from a tree never hashed, nor with a changed
        // file whose digest is unknown: the full digest is computed later.
        let fresh = Memo::default();
        fresh.carry(&first.key(), &second, &second.key(), ["a/b/c.txt"]);
        assert!(fresh.trees.get(&second.key()).is_none());
        let mut fourth = third.clone();
        fourth
            .insert("a0/e.txt", file_entry(b"two", 0o600))
            .unwrap();
        memo.carry(&third.key(), &fourth, &fourth.key(), ["a0/e.txt"]);
        assert!(memo.trees.get(&fourth.key()).is_none());
        assert_eq!(
            memo.tree(&open, &fourth, &fourth.key()).unwrap(),
            tree(&open, &fourth).unwrap()
        );
    }

    #[test]
    fn directory_digests_cover_names_links_modes_and_owners() {
        let contents = b"x";
        let base = || {
            let mut tree = Tree::default();
            tree.insert("a/b.txt", file_entry(contents, 0o644)).unwrap();
            tree.insert("a.txt", file_entry(contents, 0o644)).unwrap();
            tree
        };
        let digest = |tree: &Tree| tree_digest(contents, tree);
        let original = digest(&base());
        assert_eq!(original, digest(&base()));

        let mut renamed = base();
        renamed.remove("a.txt");
        renamed
            .insert("c.txt", file_entry(contents, 0o644))
            .unwrap();
        assert_ne!(original, digest(&renamed));

        let mut linked = base();
        linked
            .insert(
                "l",
                Entry::Symlink {
                    target: "a.txt".into(),
                    owner: Owner::ROOT,
                },
            )
            .unwrap();
        let mut relinked = base();
        relinked
            .insert(
                "l",
                Entry::Symlink {
                    target: "a/b.txt".into(),
                    owner: Owner::ROOT,
                },
            )
            .unwrap();
        assert_ne!(digest(&linked), digest(&relinked));

        let mut owned = base();
        owned.set_owners(Owner {
            uid: 1000,
            gid: 1000,
        });
        assert_ne!(original, digest(&owned));

        let mut private = base();
        private.insert("a", Entry::dir(0o700)).unwrap();
        assert_ne!(original, digest(&private));
    }

    fn tree_digest(contents: &'static [u8], value: &Tree) -> Digest {
        tree(&open(contents), value).unwrap()
    }
}
