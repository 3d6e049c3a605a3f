//! The client's files: `Host.directory` and `Host.file`. The API reads them
//! when the call is made (`crate::host`); the node holds the content
//! digest, so a changed checkout is a different node.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::digest::Digest;
use crate::error::Result;
use crate::eval::{Call, OpEncoder, Operation};
use crate::host::load_tree;
use crate::tree::Tree;
use crate::value::{FileValue, Kind, Value};

/// A host directory as it was when first loaded: `content` is the tree
/// digest of what was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostDirectory {
    pub path: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub content: Digest,
}

impl Operation for HostDirectory {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        Vec::new()
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.str(&self.path)
            .strs(&self.include)
            .strs(&self.exclude)
            .digest(&self.content);
    }

    async fn evaluate(&self, cx: &Context, _call: &Call) -> Result<Value> {
        // `content` is the tree's digest: `read_directory` returned it.
        let tree = load_tree(cx.store.as_ref(), &self.content)?;
        Ok(Value::from_shared_tree(tree, self.content))
    }
}

/// A host file as it was when first loaded (`content`: a one-entry tree).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostFile {
    pub path: String,
    pub content: Digest,
}

impl Operation for HostFile {
    const KIND: Kind = Kind::File;

    fn inputs(&self) -> Vec<Digest> {
        Vec::new()
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.str(&self.path).digest(&self.content);
    }

    async fn evaluate(&self, cx: &Context, _call: &Call) -> Result<Value> {
        let tree = load_tree(cx.store.as_ref(), &self.content)?;
        let name = Tree::name_of(&self.path);
        let file = FileValue::in_tree(&tree, name, &self.path)?;
        Ok(Value::File(Arc::new(file)))
    }
}
