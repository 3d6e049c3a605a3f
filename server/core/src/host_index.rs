//! What a read of a host directory remembers for the next one: a
//! `Snapshot` of the tree it produced, the root digest, and the stat of
//! every directory walked, every entry kept and every rules file read.
//!
//! A running engine keeps recent snapshots in memory (`Indexes`, bounded by
//! total entries); each is also written to the store in a compact, versioned
//! binary form (`RecordKind::HostIndex`) so a restarted engine starts warm.
//! A record that is corrupt, truncated or of another version is ignored: the
//! directory is then read in full, as on a first load, and the record
//! rewritten. This module owns the format and the memory bound; `host`
//! decides what a snapshot's checks mean.
//!
//! The stored form also carries each file's `File.digest` when the engine
//! knew it (`checksum::Memo`), so that a restarted engine asked for the
//! `digest` of an unchanged directory reads no file's contents back.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::sync::Arc;

use crate::checksum::Memo;
use crate::digest::Digest;
use crate::host_watch::Watched;
use crate::tree::{Entry, Owner, Tree};

/// What a reload compares. A directory whose stat is unchanged holds the
/// same names (adding, removing or renaming an entry updates its mtime and
/// ctime); a file whose stat is unchanged holds the same bytes, unless it
/// changed in the same clock tick as the read (see `host`'s racy rule).
/// `ctime` cannot be set by a user, so restoring an mtime does not hide a
/// change; `mode` holds the file type bits too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub(crate) size: u64,
    pub(crate) mtime_ns: i64,
    pub(crate) ctime_ns: i64,
    pub(crate) inode: u64,
    pub(crate) mode: u32,
}

const TYPE_MASK: u32 = 0o170_000;
const REGULAR: u32 = 0o100_000;

impl Stat {
    pub(crate) fn of(meta: &fs::Metadata) -> Self {
        Self {
            size: meta.size(),
            mtime_ns: meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
            ctime_ns: meta.ctime().saturating_mul(1_000_000_000) + meta.ctime_nsec(),
            inode: meta.ino(),
            mode: meta.mode(),
        }
    }

    pub(crate) fn of_raw(stat: &rustix::fs::Stat) -> Self {
        #[expect(
            clippy::unnecessary_cast,
            reason = "the field types of `struct stat` differ between targets"
        )]
        Self {
            size: stat.st_size as u64,
            mtime_ns: (stat.st_mtime as i64).saturating_mul(1_000_000_000)
                + stat.st_mtime_nsec as i64,
            ctime_ns: (stat.st_ctime as i64).saturating_mul(1_000_000_000)
                + stat.st_ctime_nsec as i64,
            inode: stat.st_ino as u64,
            mode: stat.st_mode as u32,
        }
    }

    pub(crate) fn is_file(&self) -> bool {
        self.mode & TYPE_MASK == REGULAR
    }

    /// The later of the last content change and the last inode change.
    pub(crate) fn changed_ns(&self) -> i64 {
        self.mtime_ns.max(self.ctime_ns)
    }
}

/// What a recorded path is to the walk that recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A directory whose names were read.
    Dir = 0,
    /// A file or symlink in the tree.
    Entry = 1,
    /// A `.gitignore` whose rules were applied (stat followed; absent: `None`).
    Rules = 2,
    /// A `.git` whose presence decided the enclosing repository.
    Marker = 3,
}

/// One recorded path: relative to the directory read (`""` for itself), or
/// absolute for what lies above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Check {
    pub(crate) path: String,
    pub(crate) role: Role,
    pub(crate) stat: Option<Stat>,
}

/// The outcome of one read of a host directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// When the read that produced it started (ns since the epoch).
    pub(crate) started_ns: i64,
    pub(crate) digest: Digest,
    /// Shared with the values of the `Host.directory` nodes that hold
    /// `digest` (`host::load_tree`).
    pub(crate) tree: Arc<Tree>,
    pub(crate) checks: Vec<Check>,
    /// In a running engine: the watcher that reports changes since the
    /// read (`host_watch`); never stored.
    pub(crate) watch: Option<Watched>,
}

/// The first bytes of a stored snapshot; the JSON indexes of earlier
/// versions start with `{` and are ignored.
const MAGIC: &[u8; 4] = b"GHIX";
/// Bump when the layout below changes: older records are then ignored.
/// 2: file entries carry their `File.digest` when known.
const VERSION: u16 = 2;

/// The first bytes of a tree record (`RecordKind::HostTree`) in binary
/// form; earlier gantry versions stored JSON (starting with `{`), still read.
pub(crate) const TREE_MAGIC: &[u8; 4] = b"GHTR";
const TREE_VERSION: u16 = 1;

/// A tree record: magic, version, the entries as a snapshot holds them, and
/// a sha256 of all that before it last. About a third the size of the JSON
/// form, and written and read without a parser (a 10,000-file tree is
/// stored again on every reload that finds a file changed).
pub(crate) fn encode_tree(tree: &Tree) -> Vec<u8> {
    let mut out = new_record(TREE_MAGIC, TREE_VERSION, 16 + tree.entries.len() * 100);
    put_entries(&mut out, tree, None);
    seal(out)
}

/// The tree in `bytes` (`encode_tree`), or `None` when they are not a
/// sound record of this version.
pub(crate) fn decode_tree(bytes: &[u8]) -> Option<Tree> {
    let mut reader = open_record(bytes, TREE_MAGIC, TREE_VERSION)?;
    let entries = read_entries(&mut reader, None)?;
    reader.0.is_empty().then_some(Tree { entries })
}

/// The stored form: magic, version, then the fields, integers little
/// endian, strings as a u32 length and bytes, and a sha256 of all that
/// before it last (a torn or corrupted record is refused, not trusted).
/// A file's `File.digest` is written when `checksums` knows it.
pub(crate) fn encode(snapshot: &Snapshot, checksums: Option<&Memo>) -> Vec<u8> {
    let mut out = new_record(MAGIC, VERSION, 64 + snapshot.checks.len() * 120);
    out.extend_from_slice(&snapshot.started_ns.to_le_bytes());
    out.extend_from_slice(snapshot.digest.bytes());
    put_u32(&mut out, snapshot.checks.len());
    for check in &snapshot.checks {
        put_str(&mut out, &check.path);
        out.push(check.role as u8);
        match &check.stat {
            None => out.push(0),
            Some(stat) => {
                out.push(1);
                out.extend_from_slice(&stat.size.to_le_bytes());
                out.extend_from_slice(&stat.mtime_ns.to_le_bytes());
                out.extend_from_slice(&stat.ctime_ns.to_le_bytes());
                out.extend_from_slice(&stat.inode.to_le_bytes());
                out.extend_from_slice(&stat.mode.to_le_bytes());
            }
        }
    }
    put_entries(&mut out, &snapshot.tree, checksums);
    seal(out)
}

/// A record's first bytes: `magic` and `version` (`open_record` checks them).
fn new_record(magic: &[u8; 4], version: u16, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out
}

/// A record's last bytes: the sha256 of all before them (`open_record`
/// checks it).
fn seal(mut out: Vec<u8>) -> Vec<u8> {
    let sum = Digest::of_bytes(&out);
    out.extend_from_slice(sum.bytes());
    out
}

/// A tree's entries in the stored form (shared by snapshots and tree
/// records), each file's `File.digest` with it when `checksums` knows it.
fn put_entries(out: &mut Vec<u8>, tree: &Tree, checksums: Option<&Memo>) {
    put_u32(out, tree.entries.len());
    for (path, entry) in &tree.entries {
        put_str(out, path);
        let owner = entry.owner();
        match entry {
            Entry::File {
                blob,
                size,
                mode,
                mtime,
                ..
            } => {
                out.push(0);
                out.extend_from_slice(blob.bytes());
                out.extend_from_slice(&size.to_le_bytes());
                out.extend_from_slice(&mode.to_le_bytes());
                out.extend_from_slice(&mtime.to_le_bytes());
                match checksums.and_then(|memo| memo.known_file(*blob, *size, *mode, owner)) {
                    None => out.push(0),
                    Some(checksum) => {
                        out.push(1);
                        out.extend_from_slice(checksum.bytes());
                    }
                }
            }
            Entry::Dir { mode, mtime, .. } => {
                out.push(1);
                out.extend_from_slice(&mode.to_le_bytes());
                out.extend_from_slice(&mtime.to_le_bytes());
            }
            Entry::Symlink { target, .. } => {
                out.push(2);
                put_str(out, target);
            }
        }
        out.extend_from_slice(&owner.uid.to_le_bytes());
        out.extend_from_slice(&owner.gid.to_le_bytes());
    }
}

/// The snapshot in `bytes`, or `None` when they are not a sound record of
/// this version. The files' `File.digest`s it carries go to `checksums`.
pub(crate) fn decode(bytes: &[u8], checksums: Option<&Memo>) -> Option<Snapshot> {
    let mut reader = open_record(bytes, MAGIC, VERSION)?;
    let started_ns = reader.i64()?;
    let digest = reader.digest()?;
    let count = reader.u32()? as usize;
    let mut checks = Vec::with_capacity(count.min(reader.0.len()));
    for _ in 0..count {
        let path = reader.string()?;
        let role = match reader.u8()? {
            0 => Role::Dir,
            1 => Role::Entry,
            2 => Role::Rules,
            3 => Role::Marker,
            _ => return None,
        };
        let stat = match reader.u8()? {
            0 => None,
            1 => Some(Stat {
                size: reader.u64()?,
                mtime_ns: reader.i64()?,
                ctime_ns: reader.i64()?,
                inode: reader.u64()?,
                mode: reader.u32()?,
            }),
            _ => return None,
        };
        checks.push(Check { path, role, stat });
    }
    let entries = read_entries(&mut reader, checksums)?;
    if !reader.0.is_empty() {
        return None;
    }
    Some(Snapshot {
        started_ns,
        digest,
        tree: Arc::new(Tree { entries }),
        checks,
        watch: None,
    })
}

/// The fields of a record that starts with `magic` and `version` and ends
/// with a sha256 of all before it, or `None` when it is not one, or torn, or
/// damaged.
fn open_record<'a>(bytes: &'a [u8], magic: &[u8; 4], version: u16) -> Option<Reader<'a>> {
    let body = bytes.len().checked_sub(32).map(|end| &bytes[..end])?;
    if Digest::of_bytes(body).bytes()[..] != bytes[body.len()..] {
        return None;
    }
    let mut reader = Reader(body);
    (reader.take(4)? == magic && reader.u16()? == version).then_some(reader)
}

/// The entries `put_entries` wrote; the `File.digest`s they carry go to
/// `checksums`.
fn read_entries(
    reader: &mut Reader<'_>,
    checksums: Option<&Memo>,
) -> Option<BTreeMap<String, Entry>> {
    let count = reader.u32()? as usize;
    let mut entries = BTreeMap::new();
    for _ in 0..count {
        let path = reader.string()?;
        let entry = match reader.u8()? {
            0 => {
                let blob = reader.digest()?;
                let size = reader.u64()?;
                let mode = reader.u32()?;
                let mtime = reader.u64()?;
                let checksum = match reader.u8()? {
                    0 => None,
                    1 => Some(reader.digest()?),
                    _ => return None,
                };
                let owner = reader.owner()?;
                if let (Some(memo), Some(checksum)) = (checksums, checksum) {
                    // Sound: the record's own sha256 was checked above.
                    memo.seed_file(blob, size, mode, owner, checksum);
                }
                Entry::File {
                    blob,
                    size,
                    mode,
                    mtime,
                    owner,
                }
            }
            1 => {
                let mode = reader.u32()?;
                let mtime = reader.u64()?;
                let owner = reader.owner()?;
                Entry::Dir { mode, owner, mtime }
            }
            2 => {
                let target = reader.string()?;
                let owner = reader.owner()?;
                Entry::Symlink { target, owner }
            }
            _ => return None,
        };
        entries.insert(path, entry);
    }
    Some(entries)
}

fn put_u32(out: &mut Vec<u8>, value: usize) {
    let value = u32::try_from(value).expect("fewer than 4 billion entries or bytes");
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_u32(out, text.len());
    out.extend_from_slice(text.as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    fn i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_le_bytes)
    }

    fn digest(&mut self) -> Option<Digest> {
        self.array().map(Digest::from_bytes)
    }

    fn owner(&mut self) -> Option<Owner> {
        Some(Owner {
            uid: self.u32()?,
            gid: self.u32()?,
        })
    }

    fn string(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(files: usize) -> Snapshot {
        let mut tree = Tree::default();
        let mut checks = Vec::new();
        for n in 0..files {
            let path = format!("dir/f{n}");
            tree.insert(
                &path,
                Entry::File {
                    blob: Digest::of_bytes(path.as_bytes()),
                    size: n as u64,
                    mode: 0o644,
                    mtime: 0,
                    owner: Owner::ROOT,
                },
            )
            .unwrap();
            checks.push(Check {
                path,
                role: Role::Entry,
                stat: Some(Stat {
                    size: n as u64,
                    mtime_ns: 1,
                    ctime_ns: 2,
                    inode: 3,
                    mode: 0o100_644,
                }),
            });
        }
        tree.insert(
            "link",
            Entry::Symlink {
                target: "dir".into(),
                owner: Owner { uid: 1, gid: 2 },
            },
        )
        .unwrap();
        checks.push(Check {
            path: "/above/.git".into(),
            role: Role::Marker,
            stat: None,
        });
        Snapshot {
            started_ns: 42,
            digest: tree.digest(),
            tree: Arc::new(tree),
            checks,
            watch: None,
        }
    }

    #[test]
    fn a_snapshot_survives_its_stored_form_and_damage_is_refused() {
        let original = snapshot(3);
        let bytes = encode(&original, None);
        assert_eq!(decode(&bytes, None), Some(original));
        // Any flipped byte, a truncation or trailing junk: refused.
        for at in [0, 5, 20, bytes.len() / 2, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            assert_eq!(decode(&damaged, None), None, "flipped byte {at}");
        }
        assert_eq!(decode(&bytes[..bytes.len() - 1], None), None);
        assert_eq!(decode(b"{\"files\":{}}", None), None);
        assert_eq!(decode(b"", None), None);
    }

    #[test]
    fn a_tree_record_survives_its_stored_form_and_damage_is_refused() {
        let tree = Tree::clone(&snapshot(3).tree);
        let bytes = encode_tree(&tree);
        assert!(bytes.starts_with(TREE_MAGIC));
        assert_eq!(decode_tree(&bytes), Some(tree));
        for at in [0, 5, bytes.len() / 2, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            assert_eq!(decode_tree(&damaged), None, "flipped byte {at}");
        }
        assert_eq!(decode_tree(&bytes[..bytes.len() - 1]), None);
        assert_eq!(
            decode_tree(&encode(&snapshot(1), None)),
            None,
            "a snapshot is no tree"
        );
    }

    #[test]
    fn the_file_digests_known_when_stored_are_known_again_when_read() {
        let original = snapshot(3);
        let (blob, size) = (Digest::of_bytes(b"dir/f1"), 1);
        let checksum = Digest::of_bytes(b"its File.digest");
        let before = Memo::default();
        before.seed_file(blob, size, 0o644, Owner::ROOT, checksum);
        let bytes = encode(&original, Some(&before));
        let after = Memo::default();
        assert_eq!(decode(&bytes, Some(&after)), Some(original));
        assert_eq!(
            after.known_file(blob, size, 0o644, Owner::ROOT),
            Some(checksum)
        );
        let other = Digest::of_bytes(b"dir/f2");
        assert_eq!(after.known_file(other, 2, 0o644, Owner::ROOT), None);
    }
}
