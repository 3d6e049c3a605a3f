//! Mounts: directories, files, cache volumes, tmpfs and secrets mounted
//! into a container for its later execs (`mounts.rs` puts them in place).

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::eval::{Call, OpEncoder, Operation};
use crate::tree;
use crate::tree::Owner;
use crate::value::{ContainerState, Kind, MountSource, Sharing, Value};

/// `Container.withMountedDirectory`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithMountedDirectory {
    pub parent: Digest,
    pub path: String,
    pub source: Digest,
    pub read_only: bool,
}

impl Operation for WithMountedDirectory {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.source]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
        e.input(&self.source).bool(self.read_only);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let source = MountSource::Directory {
            tree: call.inputs.tree(&self.source)?,
            read_only: self.read_only,
        };
        parent.with_mount(call.key, &self.path, source)
    }
}

/// `Container.withMountedFile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithMountedFile {
    pub parent: Digest,
    pub path: String,
    pub source: Digest,
}

impl Operation for WithMountedFile {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.source]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
        e.input(&self.source);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let source = MountSource::File(call.inputs.file(&self.source)?);
        parent.with_mount(call.key, &self.path, source)
    }
}

/// `Container.withMountedCache`. The volume's contents are in no key (only
/// its name and mount path are), so a step is not re-run because the
/// volume changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithMountedCache {
    pub parent: Digest,
    pub path: String,
    pub cache: Digest,
    /// Seeds the volume when it is first created.
    pub source: Option<Digest>,
    pub sharing: Option<Sharing>,
    pub owner: String,
}

impl Operation for WithMountedCache {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        let mut inputs = vec![self.parent, self.cache];
        inputs.extend(self.source);
        inputs
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
        e.input(&self.cache);
        match &self.source {
            Some(source) => {
                e.str("+");
                e.input(source);
            }
            None => {
                e.str("-");
            }
        }
        e.opt_str(self.sharing.map(Sharing::tag)).str(&self.owner);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let volume = call.inputs.cache_volume(&self.cache)?;
        let source = match &self.source {
            Some(source) => Some(call.inputs.tree(source)?),
            None => None,
        };
        let sharing = self.sharing.unwrap_or_default();
        let target = tree::absolute(&parent.workdir(), &self.path)?;
        check_exclusive(&parent, &target, &volume, sharing)?;
        let source = MountSource::Cache {
            volume,
            sharing,
            source,
            owner: Owner::parse(&self.owner)?,
        };
        parent.with_mount(call.key, &self.path, source)
    }
}

/// An exec holds a LOCKED (or PRIVATE) volume's lock for its whole run, so
/// the same volume at a second path of one container could only deadlock
/// or break the promise of exclusive use.
fn check_exclusive(
    parent: &ContainerState,
    target: &str,
    volume: &str,
    sharing: Sharing,
) -> Result<()> {
    let clash = parent.mounts.iter().find(|mount| {
        mount.path != target
            && matches!(&mount.source, MountSource::Cache { volume: v, sharing: s, .. }
                if v == volume && (*s != Sharing::Shared || sharing != Sharing::Shared))
    });
    match clash {
        None => Ok(()),
        Some(other) => Err(Error::InvalidArgument {
            message: format!(
                "cache volume {volume:?} is already mounted at {} in this container; a volume with LOCKED or PRIVATE sharing can be mounted only once per container (mount it once, or use SHARED)",
                other.path
            ),
        }),
    }
}

/// `Container.withMountedTemp`: a tmpfs. `size` is part of the key but not
/// passed to the runtime yet (the tmpfs has the runtime's default size).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithMountedTemp {
    pub parent: Digest,
    pub path: String,
    pub size: Option<u64>,
}

impl Operation for WithMountedTemp {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path).opt_u64(self.size);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let source = MountSource::Temp;
        parent.with_mount(call.key, &self.path, source)
    }
}

/// `Container.withMountedSecret`: the value is written to tmpfs at exec time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithMountedSecret {
    pub parent: Digest,
    pub path: String,
    pub secret: Digest,
    pub mode: u32,
}

impl Operation for WithMountedSecret {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.secret]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
        e.input(&self.secret).u64(u64::from(self.mode));
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let source = MountSource::Secret {
            secret: self.secret,
            mode: self.mode,
        };
        parent.with_mount(call.key, &self.path, source)
    }
}

/// `Container.withoutMount`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithoutMount {
    pub parent: Digest,
    pub path: String,
}

impl Operation for WithoutMount {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let target = tree::absolute(&parent.workdir(), &self.path)?;
        parent.derive(call.key, |state| {
            state.mounts.retain(|mount| mount.path != target);
            Ok(())
        })
    }
}
