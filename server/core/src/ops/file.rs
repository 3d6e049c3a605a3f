//! Ops that make and change files (in memory; contents in the blob store).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::eval::{Call, OpEncoder, Operation};
use crate::owner::{Accounts, OwnerSpec};
use crate::search;
use crate::tree::{self, Entry, Tree};
use crate::value::{FileValue, Kind, Value};

/// A new file from text (`Container.withNewFile` and `Directory.withNewFile`
/// build on it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewFile {
    pub contents: String,
    pub permissions: u32,
}

impl Operation for NewFile {
    const KIND: Kind = Kind::File;

    fn inputs(&self) -> Vec<Digest> {
        Vec::new()
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.str(&self.contents).u64(u64::from(self.permissions));
    }

    async fn evaluate(&self, cx: &Context, _call: &Call) -> Result<Value> {
        let blob = cx.store.put_blob(self.contents.as_bytes())?;
        Ok(Value::File(Arc::new(FileValue::new(
            String::new(),
            blob,
            self.contents.len() as u64,
            self.permissions,
        ))))
    }
}

/// `Directory.file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryFile {
    pub parent: Digest,
    pub path: String,
}

impl Operation for DirectoryFile {
    const KIND: Kind = Kind::File;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let tree = call.inputs.tree(&self.parent)?;
        let inner = tree::normalize(&self.path)?;
        // A symlink is followed inside the directory (as in Dagger); the
        // file keeps the name it was asked by.
        let through_link = match tree.get(&inner) {
            Some(Entry::Symlink { .. }) | None => crate::lookup::resolve(&tree, &inner, true)?,
            Some(_) => None,
        };
        let file = match through_link {
            Some(found) => {
                let mut file = FileValue::in_tree(&tree, &found.path, &self.path)?;
                file.name = Tree::name_of(&inner).to_owned();
                file
            }
            None => FileValue::in_tree(&tree, &inner, &self.path)?,
        };
        Ok(Value::File(Arc::new(file)))
    }
}

/// `File.withName`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileWithName {
    pub parent: Digest,
    pub name: String,
}

impl Operation for FileWithName {
    const KIND: Kind = Kind::File;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.name);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        if self.name.contains('/') {
            return Err(Error::InvalidArgument {
                message: format!(
                    "file name {} must not contain a directory: give the name alone, or create the file in a directory (Directory.withNewFile)",
                    crate::text::quoted(&self.name)
                ),
            });
        }
        let mut file = (*call.inputs.file(&self.parent)?).clone();
        file.name = self.name.clone();
        Ok(Value::File(Arc::new(file)))
    }
}

/// `File.chown`: the file owned by `owner` (numeric ids: a file has no
/// `/etc/passwd` to look names up in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileChown {
    pub parent: Digest,
    pub owner: String,
}

impl Operation for FileChown {
    const KIND: Kind = Kind::File;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.owner);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let Some(spec) = OwnerSpec::parse(&self.owner)? else {
            return Err(Error::InvalidArgument {
                message: "chown needs an owner: a user or user:group, as numeric ids".into(),
            });
        };
        let accounts = Accounts {
            of: "a file",
            passwd: None,
            group: None,
        };
        let mut file = (*call.inputs.file(&self.parent)?).clone();
        file.owner = spec.resolve(&accounts)?;
        Ok(Value::File(Arc::new(file)))
    }
}

/// `File.withTimestamps` (negative means 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileWithTimestamps {
    pub parent: Digest,
    pub timestamp: i64,
}

impl Operation for FileWithTimestamps {
    const KIND: Kind = Kind::File;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).i64(self.timestamp);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let mut file = (*call.inputs.file(&self.parent)?).clone();
        file.mtime = u64::try_from(self.timestamp).unwrap_or(0);
        Ok(Value::File(Arc::new(file)))
    }
}

/// `File.withReplaced`: `search` replaced by `replacement` (see
/// `search::replace` for which occurrences).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileWithReplaced {
    pub parent: Digest,
    pub search: String,
    pub replacement: String,
    pub all: bool,
    pub first_from: Option<u64>,
}

impl Operation for FileWithReplaced {
    const KIND: Kind = Kind::File;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent)
            .str(&self.search)
            .str(&self.replacement)
            .bool(self.all)
            .opt_u64(self.first_from);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let mut file = (*call.inputs.file(&self.parent)?).clone();
        let content = cx.store.get_blob(&file.blob)?;
        let replaced = search::replace(
            &content,
            &self.search,
            &self.replacement,
            self.all,
            self.first_from,
        )?;
        file.blob = cx.store.put_blob(&replaced)?;
        file.size = replaced.len() as u64;
        Ok(Value::File(Arc::new(file)))
    }
}
