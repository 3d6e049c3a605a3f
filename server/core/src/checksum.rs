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

use std::collections::BTreeMap;
use std::io::Read;

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
}

/// Entries each map of `Memo` holds at most (about 100 bytes each).
const MEMO_LIMIT: usize = 200_000;

impl Memo {
    /// `tree` below, for a tree whose `Tree::key` is `key`.
    pub fn tree(&self, open: &impl OpenBlob, tree: &Tree, key: &Digest) -> Result<Digest> {
        if let Some(digest) = self.trees.get(key) {
            return Ok(*digest);
        }
        let digest = hash_tree(open, Some(self), tree)?;
        remember(&self.trees, *key, digest);
        Ok(digest)
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
    hash_tree(open, None, tree)
}

fn hash_tree(open: &impl OpenBlob, memo: Option<&Memo>, tree: &Tree) -> Result<Digest> {
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
    directory(open, memo, &children, "", DIR_MODE, Owner::ROOT)
}

fn directory(
    open: &impl OpenBlob,
    memo: Option<&Memo>,
    children: &BTreeMap<&str, Vec<(&str, &Entry)>>,
    path: &str,
    mode: u32,
    owner: Owner,
) -> Result<Digest> {
    let mut own = Sha256::new();
    header(&mut own, mode, owner, 0, DIRECTORY, "");
    let mut hash = Sha256::new();
    hash.update(b"\0");
    hash.update(as_text(&finish(own)));
    for (name, entry) in children.get(path).map(Vec::as_slice).unwrap_or_default() {
        let digest = match entry {
            Entry::File {
                blob,
                size,
                mode,
                owner,
                ..
            } => regular(open, memo, blob, *size, *mode, *owner)?,
            Entry::Symlink { target, owner } => {
                let mut link = Sha256::new();
                header(&mut link, 0o777, *owner, 0, SYMLINK, target);
                finish(link)
            }
            Entry::Dir { mode, owner, .. } => {
                let child = if path.is_empty() {
                    (*name).to_owned()
                } else {
                    format!("{path}/{name}")
                };
                directory(open, memo, children, &child, *mode, *owner)?
            }
        };
        hash.update(b"\0");
        hash.update(name.as_bytes());
        hash.update(as_text(&digest));
    }
    Ok(finish(hash))
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
