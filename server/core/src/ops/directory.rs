//! Ops that build directories from other directories and files, in
//! memory: file contents go to the blob store, nothing runs.

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::digest::Digest;
use crate::error::Result;
use crate::eval::{Call, OpEncoder, Operation};
use crate::tree::{self, Entry, PathFilter, Tree};
use crate::value::{Kind, Value};

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
        let entry = Entry::Dir {
            mode: self.permissions,
        };
        tree.insert(&self.path, entry)?;
        Ok(Value::from_tree(tree))
    }
}

/// `Directory.withFile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithFile {
    pub parent: Digest,
    pub path: String,
    pub source: Digest,
    pub permissions: Option<u32>,
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
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let mut tree = (*call.inputs.tree(&self.parent)?).clone();
        let file = call.inputs.file(&self.source)?;
        tree.insert(&self.path, file.entry(self.permissions))?;
        Ok(Value::from_tree(tree))
    }
}

/// `Directory.withDirectory`: merges `source` (filtered) in at `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithDirectory {
    pub parent: Digest,
    pub path: String,
    pub source: Digest,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
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
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let mut tree = (*call.inputs.tree(&self.parent)?).clone();
        let source = call.inputs.tree(&self.source)?;
        let filter = PathFilter::new(&self.include, &self.exclude)?;
        tree.merge_at(&self.path, &source, &filter)?;
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

/// `Directory.withTimestamps`: every file's mtime (negative means 0).
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
            if let Entry::File { mtime, .. } = entry {
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
