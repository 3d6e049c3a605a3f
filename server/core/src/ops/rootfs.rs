//! Ops that change a container's root filesystem without running anything:
//! `withRootfs` replaces it, `withContent` (behind `withNewFile`,
//! `withFile` and `withDirectory`), `withFiles` and `withSymlink` add a
//! layer the next exec applies.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::directory::files_tree;
use crate::context::Context;
use crate::digest::Digest;
use crate::error::Result;
use crate::eval::{Call, OpEncoder, Operation};
use crate::tree::{self, Entry, Owner, PathFilter, Tree};
use crate::value::{Kind, Layer, Rootfs, Value};

/// `Container.withRootfs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithRootfs {
    pub parent: Digest,
    pub directory: Digest,
}

impl Operation for WithRootfs {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.directory]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent);
        e.input(&self.directory);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let tree = call.inputs.tree(&self.directory)?;
        call.derive(&self.parent, |state| {
            state.rootfs = Rootfs {
                image_id: None,
                layers: vec![Layer {
                    dest: "/".into(),
                    tree,
                    owner: None,
                }],
            };
            Ok(())
        })
    }
}

/// `Container.withNewFile`, `withFile`, `withDirectory`: put content into
/// the root filesystem at `path` (a file's or a directory's destination).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithContent {
    pub parent: Digest,
    pub path: String,
    /// A file or a directory.
    pub source: Digest,
    pub permissions: Option<u32>,
    pub owner: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl Operation for WithContent {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.source]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
        e.input(&self.source)
            .opt_u64(self.permissions.map(u64::from))
            .str(&self.owner)
            .strs(&self.include)
            .strs(&self.exclude);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let owner = Owner::parse(&self.owner)?;
        let target = tree::absolute(&parent.workdir(), &self.path)?;
        let source = call.inputs.value(&self.source);
        let layer = if let Ok(file) = source.file() {
            let (dir, name) = tree::split_parent(&target);
            let entry = file.entry(self.permissions);
            Layer {
                dest: dir,
                tree: Arc::new(Tree::single(&name, entry)?),
                owner,
            }
        } else {
            let (source, _) = source.directory()?;
            let filter = PathFilter::new(&self.include, &self.exclude)?;
            let mut filtered = Tree::default();
            filtered.merge_at("", &source, &filter)?;
            if let Some(mode) = self.permissions {
                filtered.set_modes(mode);
            }
            Layer {
                dest: target,
                tree: Arc::new(filtered),
                owner,
            }
        };
        parent.derive(call.key, |state| {
            state.rootfs.layers.push(layer);
            state.image_ref = None;
            Ok(())
        })
    }
}

/// `Container.withSymlink`: a layer holding one symlink at `link_name`
/// (relative to the workdir) to `target`, kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerWithSymlink {
    pub parent: Digest,
    pub target: String,
    pub link_name: String,
    /// Expand `$VAR` in both paths from the container's environment.
    pub expand: bool,
}

impl Operation for ContainerWithSymlink {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent)
            .str(&self.target)
            .str(&self.link_name)
            .bool(self.expand);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let link = parent.path_arg(&self.link_name, self.expand);
        let link = tree::absolute(&parent.workdir(), &link)?;
        let (dir, name) = tree::split_parent(&link);
        let entry = Entry::Symlink {
            target: parent.path_arg(&self.target, self.expand),
        };
        let layer = Layer {
            dest: dir,
            tree: Arc::new(Tree::single(&name, entry)?),
            owner: None,
        };
        parent.derive(call.key, |state| {
            state.rootfs.layers.push(layer);
            state.image_ref = None;
            Ok(())
        })
    }
}

/// `Container.withFiles`: each file under the directory `path`, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithFiles {
    pub parent: Digest,
    pub path: String,
    pub sources: Vec<Digest>,
    pub permissions: Option<u32>,
    pub owner: String,
    pub expand: bool,
}

impl Operation for WithFiles {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        let mut inputs = vec![self.parent];
        inputs.extend(&self.sources);
        inputs
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
        e.u64(self.sources.len() as u64);
        for source in &self.sources {
            e.input(source);
        }
        e.opt_u64(self.permissions.map(u64::from))
            .str(&self.owner)
            .bool(self.expand);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let owner = Owner::parse(&self.owner)?;
        let path = parent.path_arg(&self.path, self.expand);
        let dest = tree::absolute(&parent.workdir(), &path)?;
        let files = files_tree(call, &self.sources, self.permissions)?;
        let layer = Layer {
            dest,
            tree: Arc::new(files),
            owner,
        };
        parent.derive(call.key, |state| {
            state.rootfs.layers.push(layer);
            state.image_ref = None;
            Ok(())
        })
    }
}
