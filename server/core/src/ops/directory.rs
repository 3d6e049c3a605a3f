//! Ops that build directories from other directories and files, in
//! memory: file contents go to the blob store, nothing runs.

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::digest::Digest;
use crate::error::Result;
use crate::eval::{is_false, Call, OpEncoder, Operation};
use crate::owner::{Accounts, Owner, OwnerSpec};
use crate::tree::{self, Entry, PathFilter, Tree};
use crate::value::{Kind, Value};

/// The owner an `owner:` argument names for content put into `tree`:
/// names are looked up in the tree's own `etc/passwd` and `etc/group`, as
/// Dagger does for directories. `None`: leave owners as they are.
fn directory_owner(cx: &Context, tree: &Tree, owner: &str) -> Result<Option<Owner>> {
    let Some(spec) = OwnerSpec::parse(owner)? else {
        return Ok(None);
    };
    if let Some(numeric) = spec.numeric() {
        return Ok(Some(numeric));
    }
    let text = |path: &str| -> Result<Option<String>> {
        match tree.get(path) {
            Some(Entry::File { blob, .. }) => Ok(Some(
                String::from_utf8_lossy(&cx.store.get_blob(blob)?).into_owned(),
            )),
            _ => Ok(None),
        }
    };
    let accounts = Accounts {
        of: "the directory",
        passwd: text("etc/passwd")?,
        group: text("etc/group")?,
    };
    spec.resolve(&accounts).map(Some)
}

/// `Query.directory`: an empty directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyDirectory {}

impl Operation for EmptyDirectory {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        Vec::new()
    }

    fn encode(&self, _e: &mut OpEncoder<'_>) {}

    async fn evaluate(&self, _cx: &Context, _call: &Call) -> Result<Value> {
        Ok(Value::from_tree(Tree::default()))
    }
}

/// `Directory.withNewFile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithNewFile {
    pub parent: Digest,
    pub path: String,
    pub contents: String,
    pub permissions: u32,
}

impl Operation for DirectoryWithNewFile {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent)
            .str(&self.path)
            .str(&self.contents)
            .u64(u64::from(self.permissions));
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let mut tree = (*call.inputs.tree(&self.parent)?).clone();
        let blob = cx.store.put_blob(self.contents.as_bytes())?;
        let entry = Entry::File {
            blob,
            size: self.contents.len() as u64,
            mode: self.permissions,
            mtime: 0,
            owner: Owner::ROOT,
        };
        tree.insert(&self.path, entry)?;
        Ok(Value::from_tree(tree))
    }
}

/// `Directory.withNewDirectory`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithNewDirectory {
    pub parent: Digest,
    pub path: String,
    pub permissions: u32,
}

impl Operation for DirectoryWithNewDirectory {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent)
            .str(&self.path)
            .u64(u64::from(self.permissions));
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let mut tree = (*call.inputs.tree(&self.parent)?).clone();
        let entry = Entry::dir(self.permissions);
        tree.insert(&self.path, entry)?;
        Ok(Value::from_tree(tree))
    }
}

/// `Directory.withFile`. A destination that is a directory (the root,
/// `dir/`, or an existing directory) receives the file under its own name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithFile {
    pub parent: Digest,
    pub path: String,
    pub source: Digest,
    pub permissions: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
}

impl Operation for DirectoryWithFile {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.source]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
        e.input(&self.source)
            .opt_u64(self.permissions.map(u64::from));
        e.added_str("owner", &self.owner);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let mut tree = (*call.inputs.tree(&self.parent)?).clone();
        let file = call.inputs.file(&self.source)?;
        let mut entry = file.entry(self.permissions);
        if let Some(owner) = directory_owner(cx, &tree, &self.owner)? {
            entry.set_owner(owner);
        }
        let path = file_destination(&tree, &self.path, &file.name)?;
        tree.insert(&path, entry)?;
        Ok(Value::from_tree(tree))
    }
}

/// Where a file copied to `path` in `tree` goes: `path` itself, or
/// `path/<name>` when `path` names a directory (the root, a trailing `/` or
/// `/.`, or a directory that exists), as Dagger's copy does.
pub(super) fn file_destination(tree: &Tree, path: &str, name: &str) -> Result<String> {
    let normalized = tree::normalize(path)?;
    let names_dir = normalized.is_empty()
        || path.ends_with('/')
        || path.ends_with("/.")
        || path == "."
        || tree.get(&normalized).is_some_and(Entry::is_dir);
    if !names_dir {
        return Ok(normalized);
    }
    if name.is_empty() {
        return Err(crate::error::Error::InvalidArgument {
            message: format!(
                "{path:?} is a directory and the file has no name to take in it; give a file path"
            ),
        });
    }
    Ok(if normalized.is_empty() {
        name.to_owned()
    } else {
        format!("{normalized}/{name}")
    })
}

/// `Directory.withDirectory`: merges `source` (filtered) in at `path`,
/// optionally with one owner and one mode for everything copied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithDirectory {
    pub parent: Digest,
    pub path: String,
    pub source: Digest,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<u32>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub gitignore: bool,
}

impl Operation for DirectoryWithDirectory {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.source]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
        e.input(&self.source)
            .strs(&self.include)
            .strs(&self.exclude);
        e.added_str("owner", &self.owner)
            .added_u64("permissions", self.permissions.map(u64::from))
            .added_flag("gitignore", self.gitignore);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let mut tree = (*call.inputs.tree(&self.parent)?).clone();
        let source = call.inputs.tree(&self.source)?;
        let filter = PathFilter::new(&self.include, &self.exclude)?;
        let gitignores = match self.gitignore {
            true => Some(source.gitignores(cx.store.as_ref())?),
            false => None,
        };
        let mut copied = source.filtered(&filter, gitignores.as_ref());
        let owner = directory_owner(cx, &tree, &self.owner)?;
        if let Some(owner) = owner {
            copied.set_owners(owner);
        }
        if let Some(mode) = self.permissions {
            copied.set_modes(mode);
        }
        tree.merge_at(&self.path, &copied)?;
        // The destination directory takes the owner and mode too.
        if let Some(Entry::Dir {
            mode,
            owner: current,
            ..
        }) = tree.entries.get_mut(&tree::normalize(&self.path)?)
        {
            *mode = self.permissions.unwrap_or(*mode);
            *current = owner.unwrap_or(*current);
        }
        Ok(Value::from_tree(tree))
    }
}

/// `Directory.withoutFile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithoutFile {
    pub parent: Digest,
    pub path: String,
}

impl Operation for DirectoryWithoutFile {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        without(call, &self.parent, &self.path)
    }
}

/// `Directory.withoutDirectory`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithoutDirectory {
    pub parent: Digest,
    pub path: String,
}

impl Operation for DirectoryWithoutDirectory {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        without(call, &self.parent, &self.path)
    }
}

/// The directory `parent` without `path` and what is under it (a missing
/// path is not an error).
fn without(call: &Call, parent: &Digest, path: &str) -> Result<Value> {
    let mut tree = (*call.inputs.tree(parent)?).clone();
    tree.remove(&tree::normalize(path)?);
    Ok(Value::from_tree(tree))
}

/// `Directory.diff`: what `other` adds or changes relative to `parent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryDiff {
    pub parent: Digest,
    pub other: Digest,
}

impl Operation for DirectoryDiff {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.other]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent);
        e.input(&self.other);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let tree = call.inputs.tree(&self.parent)?;
        let other = call.inputs.tree(&self.other)?;
        Ok(Value::from_tree(tree.diff(&other)?))
    }
}

/// `Directory.withTimestamps`: every file's and directory's mtime
/// (negative means 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithTimestamps {
    pub parent: Digest,
    pub timestamp: i64,
}

impl Operation for DirectoryWithTimestamps {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).i64(self.timestamp);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let mut tree = (*call.inputs.tree(&self.parent)?).clone();
        let stamp = u64::try_from(self.timestamp).unwrap_or(0);
        for entry in tree.entries.values_mut() {
            if let Entry::File { mtime, .. } | Entry::Dir { mtime, .. } = entry {
                *mtime = stamp;
            }
        }
        Ok(Value::from_tree(tree))
    }
}

/// `Directory.directory`: the subtree at `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subdirectory {
    pub parent: Digest,
    pub path: String,
}

impl Operation for Subdirectory {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let tree = call.inputs.tree(&self.parent)?;
        Ok(Value::from_tree(tree.subtree(&self.path)?))
    }
}
