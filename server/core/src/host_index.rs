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

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt as _;

use crate::digest::Digest;
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
    pub(crate) tree: Tree,
    pub(crate) checks: Vec<Check>,
}

/// The first bytes of a stored snapshot; the JSON indexes of earlier
/// versions start with `{` and are ignored.
const MAGIC: &[u8; 4] = b"GHIX";
/// Bump when the layout below changes: older records are then ignored.
const VERSION: u16 = 1;

/// The stored form: magic, version, then the fields, integers little
/// endian, strings as a u32 length and bytes, and a sha256 of all that
/// before it last (a torn or corrupted record is refused, not trusted).
pub(crate) fn encode(snapshot: &Snapshot) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + snapshot.checks.len() * 120);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
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
    put_u32(&mut out, snapshot.tree.entries.len());
    for (path, entry) in &snapshot.tree.entries {
        put_str(&mut out, path);
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
            }
            Entry::Dir { mode, mtime, .. } => {
                out.push(1);
                out.extend_from_slice(&mode.to_le_bytes());
                out.extend_from_slice(&mtime.to_le_bytes());
            }
            Entry::Symlink { target, .. } => {
                out.push(2);
                put_str(&mut out, target);
            }
        }
        out.extend_from_slice(&owner.uid.to_le_bytes());
        out.extend_from_slice(&owner.gid.to_le_bytes());
    }
    let sum = Digest::of_bytes(&out);
    out.extend_from_slice(sum.bytes());
    out
}

/// The snapshot in `bytes`, or `None` when they are not a sound record of
/// this version.
pub(crate) fn decode(bytes: &[u8]) -> Option<Snapshot> {
    let body = bytes.len().checked_sub(32).map(|end| &bytes[..end])?;
    if Digest::of_bytes(body).bytes()[..] != bytes[body.len()..] {
        return None;
    }
    let mut reader = Reader(body);
    if reader.take(4)? != MAGIC || reader.u16()? != VERSION {
        return None;
    }
    let started_ns = reader.i64()?;
    let digest = reader.digest()?;
    let count = reader.u32()? as usize;
    let mut checks = Vec::with_capacity(count.min(body.len()));
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
                let owner = reader.owner()?;
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
    if !reader.0.is_empty() {
        return None;
    }
    Some(Snapshot {
        started_ns,
        digest,
        tree: Tree { entries },
        checks,
    })
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
            tree,
            checks,
        }
    }

    #[test]
    fn a_snapshot_survives_its_stored_form_and_damage_is_refused() {
        let original = snapshot(3);
        let bytes = encode(&original);
        assert_eq!(decode(&bytes), Some(original));
        // Any flipped byte, a truncation or trailing junk: refused.
        for at in [0, 5, 20, bytes.len() / 2, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            assert_eq!(decode(&damaged), None, "flipped byte {at}");
        }
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(decode(b"{\"files\":{}}"), None);
        assert_eq!(decode(b""), None);
    }
}
