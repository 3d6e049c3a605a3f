//! Mounts: directories, files, cache volumes, tmpfs and secrets mounted
//! into a container for its later execs (`mounts.rs` puts them in place).

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::read::container_owner;
use crate::context::Context;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::eval::{is_false, Call, OpEncoder, Operation};
use crate::tree;
use crate::value::{ContainerState, Kind, MountSource, Sharing, Value};

/// `Container.withMountedDirectory`. With `owner` (or `inheritOwner`) the
/// mounted copy is given to that owner, as Dagger's `chown` does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithMountedDirectory {
    pub parent: Digest,
    pub path: String,
    pub source: Digest,
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub inherit_owner: bool,
}

impl Operation for WithMountedDirectory {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.source]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
        e.input(&self.source).bool(self.read_only);
        e.added_str("owner", &self.owner)
            .added_flag("inheritOwner", self.inherit_owner);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let mut tree = call.inputs.tree(&self.source)?;
        if let Some(owner) = container_owner(cx, &parent, &self.owner, self.inherit_owner).await? {
            let mut owned = (*tree).clone();
            owned.set_owners(owner);
            tree = Arc::new(owned);
        }
        let source = MountSource::Directory {
            tree,
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
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub inherit_owner: bool,
}

impl Operation for WithMountedFile {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.source]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
        e.input(&self.source);
        e.added_str("owner", &self.owner)
            .added_flag("inheritOwner", self.inherit_owner);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let mut file = call.inputs.file(&self.source)?;
        if let Some(owner) = container_owner(cx, &parent, &self.owner, self.inherit_owner).await? {
            let mut owned = (*file).clone();
            owned.owner = owner;
            file = Arc::new(owned);
        }
        parent.with_mount(call.key, &self.path, MountSource::File(file))
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
    #[serde(default, skip_serializing_if = "is_false")]
    pub inherit_owner: bool,
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
        e.added_flag("inheritOwner", self.inherit_owner);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let volume = call.inputs.cache_volume(&self.cache)?;
        let source = match &self.source {
            Some(source) => Some(call.inputs.tree(source)?),
            None => None,
        };
        let sharing = self.sharing.unwrap_or_default();
        let target = tree::absolute(&parent.workdir(), &self.path)?;
        check_exclusive(&parent, &target, &volume, sharing)?;
        let owner = container_owner(cx, &parent, &self.owner, self.inherit_owner).await?;
        let source = MountSource::Cache {
            volume,
            sharing,
            source,
            owner,
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

/// `Container.withMountedTemp`: a tmpfs of `size` bytes (the runtime's
/// default without one).
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
        let source = MountSource::Temp { size: self.size };
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
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub inherit_owner: bool,
}

impl Operation for WithMountedSecret {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.secret]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
        e.input(&self.secret).u64(u64::from(self.mode));
        e.added_str("owner", &self.owner)
            .added_flag("inheritOwner", self.inherit_owner);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let owner = container_owner(cx, &parent, &self.owner, self.inherit_owner).await?;
        let source = MountSource::Secret {
            secret: self.secret,
            mode: self.mode,
            owner: owner.unwrap_or_default(),
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
