//! What nodes evaluate to. Every value carries a content `key`: the digest
//! that cache keys downstream are computed from (see `op.rs`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::op::Sharing;
use crate::runtime::ImageConfig;
use crate::tree::Tree;

/// A root filesystem: an image plus layers of content not yet committed.
#[derive(Debug, Clone, Default)]
pub struct Rootfs {
    pub image_id: Option<String>,
    pub layers: Vec<Layer>,
}

#[derive(Debug, Clone)]
pub struct Layer {
    /// Absolute directory the tree is unpacked into.
    pub dest: String,
    pub tree: Arc<Tree>,
    pub owner: Option<Owner>,
}

/// A numeric owner, as `owner:` arguments give it (`uid`, `uid:gid` or
/// `root`); user and group names are not resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    /// Parses an `owner:` argument; empty means "leave the owner as it is".
    pub fn parse(owner: &str) -> Result<Option<Owner>> {
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

#[derive(Debug, Clone)]
pub enum MountSource {
    Directory {
        tree: Arc<Tree>,
        read_only: bool,
    },
    File(Arc<FileValue>),
    Cache {
        volume: String,
        sharing: Sharing,
        source: Option<Arc<Tree>>,
        owner: Option<Owner>,
    },
    Temp {
        size: Option<u64>,
    },
    /// The secret's node digest; its value is looked up only at exec time.
    Secret {
        secret: Digest,
        mode: u32,
    },
}

#[derive(Debug, Clone)]
pub struct Mount {
    /// Absolute path in the container.
    pub path: String,
    pub source: MountSource,
}

/// The recorded outcome of a `withExec`, as cached (output already scrubbed
/// of secret values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRecord {
    pub image_id: String,
    pub cmd: Vec<String>,
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i64,
    /// The contents each writable directory mount (by path) had after the
    /// command, as stored trees (`host::load_tree`).
    #[serde(default)]
    pub mounts: Vec<(String, Digest)>,
}

#[derive(Debug, Clone, Default)]
pub struct ContainerState {
    pub key: Option<Digest>,
    pub config: ImageConfig,
    pub rootfs: Rootfs,
    pub exec: Option<Arc<ExecRecord>>,
    /// Set only directly after `from`.
    pub image_ref: Option<String>,
    pub mounts: Vec<Mount>,
    /// Environment variables whose values come from secrets (node digests).
    pub secret_env: Vec<(String, Digest)>,
    /// Registry address → (username, secret node digest).
    pub registry_auth: Vec<(String, String, Digest)>,
    pub platform: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileValue {
    pub name: String,
    pub blob: Digest,
    pub size: u64,
    pub mode: u32,
    pub mtime: u64,
}

impl FileValue {
    pub fn key(&self) -> Digest {
        let mut encoder = crate::digest::Encoder::new("file");
        encoder
            .str(&self.name)
            .digest(&self.blob)
            .u64(u64::from(self.mode))
            .u64(self.mtime);
        encoder.finish()
    }
}

#[derive(Clone)]
pub struct SecretValue {
    pub name: String,
    pub plaintext: Arc<str>,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("name", &self.name)
            .field("plaintext", &"***")
            .finish()
    }
}

/// The value of any node.
#[derive(Debug, Clone)]
pub enum Value {
    Container(Arc<ContainerState>),
    Directory { tree: Arc<Tree>, key: Digest },
    File(Arc<FileValue>),
    Secret { name: String, mac: Digest },
    CacheVolume { key: String },
}

impl Value {
    pub fn directory(tree: Tree) -> Self {
        let key = tree.key();
        Value::Directory {
            tree: Arc::new(tree),
            key,
        }
    }

    /// The content key downstream cache keys are built from.
    pub fn key(&self) -> Digest {
        match self {
            Value::Container(state) => state.key.expect("every evaluated container has a key"),
            Value::Directory { key, .. } => *key,
            Value::File(file) => file.key(),
            Value::Secret { mac, .. } => *mac,
            Value::CacheVolume { key } => {
                let mut encoder = crate::digest::Encoder::new("cacheVolume");
                encoder.str(key);
                encoder.finish()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
