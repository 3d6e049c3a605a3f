//! Ops that change a container's root filesystem without running anything:
//! `withRootfs` replaces it, `withContent` (behind `withNewFile`,
//! `withFile` and `withDirectory`), `withFiles` and `withSymlink` add a
//! layer the next exec applies.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::directory::files_tree;
use super::read::container_owner;
use crate::context::Context;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::eval::{is_false, Call, OpEncoder, Operation};
use crate::owner::Owner;
use crate::tree::{self, Entry, PathFilter, Tree};
use crate::value::{ContainerState, Kind, Layer, Mount, MountSource, Rootfs, Value};

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
                }],
            };
            Ok(())
        })
    }
}

/// Where a file copied to `path` (`target` absolute) goes: into the
/// directory when the path names one by its form (the root, `.`, a
/// trailing `/` or `/.`), under the file's own name, as Dagger's copy does.
/// An existing directory of the image named without a trailing `/` is not
/// looked up (that would cost a read of the image for every copy).
fn file_target(path: &str, target: String, name: &str) -> Result<String> {
    let names_dir = target == "/" || path == "." || path.ends_with('/') || path.ends_with("/.");
    if !names_dir {
        return Ok(target);
    }
    if name.is_empty() {
        return Err(Error::InvalidArgument {
            message: format!(
                "{path:?} is a directory and the file has no name to take in it; give a file path"
            ),
        });
    }
    tree::absolute(&target, name)
}

/// Content to put into a container: `tree` goes into the directory `dest`
/// (absolute).
struct Content {
    dest: String,
    tree: Tree,
}

impl Content {
    /// A directory copied to `target`. With a mode or an owner for the copy,
    /// the destination directory takes them too, so the content holds it
    /// (rooted at its parent) rather than only what goes in it.
    fn directory(
        target: String,
        tree: Tree,
        permissions: Option<u32>,
        owner: Option<Owner>,
    ) -> Result<Self> {
        if target == "/" || (permissions.is_none() && owner.is_none()) {
            return Ok(Content { dest: target, tree });
        }
        let (parent, name) = tree::split_parent(&target);
        let mut rooted = Tree::single(&name, Entry::dir(permissions.unwrap_or(0o755)))?;
        rooted.merge_at(&name, &tree)?;
        Ok(Content {
            dest: parent,
            tree: rooted,
        })
    }
}

/// `Container.withNewFile`, `withFile`, `withDirectory`: put content into
/// the root filesystem at `path` (a file's or a directory's destination).
/// The content keeps its owners unless `owner` (or `inheritOwner`: the
/// container's user) gives it all to one.
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
    #[serde(default, skip_serializing_if = "is_false")]
    pub inherit_owner: bool,
    /// Leave out what the source's `.gitignore` files ignore.
    #[serde(default, skip_serializing_if = "is_false")]
    pub gitignore: bool,
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
        e.added_flag("inheritOwner", self.inherit_owner)
            .added_flag("gitignore", self.gitignore);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let owner = container_owner(cx, &parent, &self.owner, self.inherit_owner).await?;
        let target = tree::absolute(&parent.workdir(), &self.path)?;
        let mut content = self.content(cx, call, target, owner)?;
        if let Some(owner) = owner {
            content.tree.set_owners(owner);
        }
        put_content(&parent, call.key, content)
    }
}

impl WithContent {
    /// The file or the (filtered) directory to put at `target`.
    fn content(
        &self,
        cx: &Context,
        call: &Call,
        target: String,
        owner: Option<Owner>,
    ) -> Result<Content> {
        let source = call.inputs.value(&self.source);
        if let Ok(file) = source.file() {
            let target = file_target(&self.path, target, &file.name)?;
            let (dest, name) = tree::split_parent(&target);
            let tree = Tree::single(&name, file.entry(self.permissions))?;
            return Ok(Content { dest, tree });
        }
        let (source, _) = source.directory()?;
        let filter = PathFilter::new(&self.include, &self.exclude)?;
        let gitignores = match self.gitignore {
            true => Some(source.gitignores(cx.store.as_ref())?),
            false => None,
        };
        let mut filtered = source.filtered(&filter, gitignores.as_ref());
        if let Some(mode) = self.permissions {
            filtered.set_modes(mode);
        }
        Content::directory(target, filtered, self.permissions, owner)
    }
}

/// `parent` with `content` put in place: into the mounted directory when
/// the destination is under a directory mount (as Dagger writes into the
/// mount's source), replacing a file mount at exactly that path, else into
/// the root filesystem. Cache, temporary and secret mounts cannot be
/// written to this way, in Dagger either.
fn put_content(parent: &ContainerState, key: Digest, content: Content) -> Result<Value> {
    // A file mounted where the content goes is unmounted first.
    let replaced = |mount: &Mount| {
        matches!(mount.source, MountSource::File(_))
            && content
                .tree
                .entries
                .keys()
                .filter(|path| !path.contains('/'))
                .any(|name| {
                    tree::absolute(&content.dest, name).is_ok_and(|path| path == mount.path)
                })
    };
    let unmounted;
    let parent = if parent.mounts.iter().any(replaced) {
        let mut state = parent.clone();
        state.mounts.retain(|mount| !replaced(mount));
        unmounted = state;
        &unmounted
    } else {
        parent
    };
    let Some((index, inner)) = parent.mount_at(&content.dest) else {
        return parent.derive(key, |state| {
            state.rootfs.layers.push(Layer {
                dest: content.dest,
                tree: Arc::new(content.tree),
            });
            state.image_ref = None;
            Ok(())
        });
    };
    let mount = &parent.mounts[index];
    match &mount.source {
        MountSource::Directory { tree, read_only } => {
            let mut changed = (**tree).clone();
            changed.merge_at(&inner, &content.tree)?;
            let source = MountSource::Directory {
                tree: Arc::new(changed),
                read_only: *read_only,
            };
            parent.derive(key, |state| {
                state.mounts[index].source = source;
                state.image_ref = None;
                Ok(())
            })
        }
        other => Err(Error::InvalidArgument {
            message: format!(
                "cannot write to {}: it is under the {} mounted at {}; write the content before mounting, or outside the mount",
                content.dest,
                other.describe(),
                mount.path
            ),
        }),
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
            owner: Owner::ROOT,
        };
        let layer = Layer {
            dest: dir,
            tree: Arc::new(Tree::single(&name, entry)?),
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

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let owner = container_owner(cx, &parent, &self.owner, false).await?;
        let path = parent.path_arg(&self.path, self.expand);
        let dest = tree::absolute(&parent.workdir(), &path)?;
        let mut files = files_tree(call, &self.sources, self.permissions)?;
        if let Some(owner) = owner {
            files.set_owners(owner);
        }
        put_content(&parent, call.key, Content { dest, tree: files })
    }
}
