//! Changesets as nodes: `Directory.changes`, `Query.changeset`, merges, and
//! the directories and patch file a changeset gives (in memory; the logic
//! is in `changes.rs`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::changes::{self, OnConflict, Sides};
use crate::context::Context;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::eval::{Call, OpEncoder, Operation};
use crate::tree::{Owner, Tree};
use crate::value::{ChangesetValue, FileValue, Kind, Value};

/// `Directory.changes(from:)`: from `from` to `parent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryChanges {
    pub parent: Digest,
    pub from: Digest,
}

impl Operation for DirectoryChanges {
    const KIND: Kind = Kind::Changeset;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.from]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent);
        e.input(&self.from);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let before = call.inputs.tree(&self.from)?;
        let after = call.inputs.tree(&self.parent)?;
        Ok(Value::Changeset(Arc::new(ChangesetValue::new(
            before, after,
        ))))
    }
}

/// `Query.changeset`: no change (two empty directories).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyChangeset {}

impl Operation for EmptyChangeset {
    const KIND: Kind = Kind::Changeset;

    fn inputs(&self) -> Vec<Digest> {
        Vec::new()
    }

    fn encode(&self, _e: &mut OpEncoder<'_>) {}

    async fn evaluate(&self, _cx: &Context, _call: &Call) -> Result<Value> {
        let empty = Arc::new(Tree::default());
        Ok(Value::Changeset(Arc::new(ChangesetValue::new(
            empty.clone(),
            empty,
        ))))
    }
}

/// How merges resolve conflicts, as recorded (`ChangesetMergeConflict`
/// names; `withChangesets` maps its own two onto them).
fn on_conflict(tag: &str) -> Result<OnConflict> {
    Ok(match tag {
        "FAIL" => OnConflict::Fail,
        "FAIL_EARLY" => OnConflict::FailEarly,
        "LEAVE_CONFLICT_MARKERS" => OnConflict::LeaveConflictMarkers,
        "PREFER_OURS" => OnConflict::PreferOurs,
        "PREFER_THEIRS" => OnConflict::PreferTheirs,
        other => {
            return Err(Error::InvalidArgument {
                message: format!("unknown conflict strategy {other:?}"),
            })
        }
    })
}

/// `Changeset.withChangeset` / `withChangesets`: `others` merged into
/// `parent` one after another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangesetMerge {
    pub parent: Digest,
    pub others: Vec<Digest>,
    pub on_conflict: String,
}

impl Operation for ChangesetMerge {
    const KIND: Kind = Kind::Changeset;

    fn inputs(&self) -> Vec<Digest> {
        let mut inputs = vec![self.parent];
        inputs.extend(&self.others);
        inputs
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent);
        e.u64(self.others.len() as u64);
        for other in &self.others {
            e.input(other);
        }
        e.str(&self.on_conflict);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let strategy = on_conflict(&self.on_conflict)?;
        let mut current = call.inputs.changeset(&self.parent)?;
        for other in &self.others {
            let theirs = call.inputs.changeset(other)?;
            let ours = Sides {
                before: &current.before,
                after: &current.after,
            };
            let theirs = Sides {
                before: &theirs.before,
                after: &theirs.after,
            };
            let (before, after) = changes::merge(cx.store.as_ref(), ours, theirs, strategy)?;
            current = Arc::new(ChangesetValue::new(Arc::new(before), Arc::new(after)));
        }
        Ok(Value::Changeset(current))
    }
}

/// A directory a changeset gives: `before`, `after`, or `layer` (only
/// what is new or changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangesetDirectory {
    pub changeset: Digest,
    pub side: String,
}

impl Operation for ChangesetDirectory {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.changeset]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.changeset).str(&self.side);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let changeset = call.inputs.changeset(&self.changeset)?;
        let tree = match self.side.as_str() {
            "before" => (*changeset.before).clone(),
            "after" => (*changeset.after).clone(),
            "layer" => changes::layer(&changeset.before, &changeset.after)?,
            other => {
                return Err(Error::InvalidArgument {
                    message: format!("unknown changeset side {other:?}"),
                })
            }
        };
        Ok(Value::from_tree(tree))
    }
}

/// `Changeset.asPatch`: the changes as a git-style patch, `diff.patch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangesetAsPatch {
    pub changeset: Digest,
}

impl Operation for ChangesetAsPatch {
    const KIND: Kind = Kind::File;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.changeset]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.changeset);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let changeset = call.inputs.changeset(&self.changeset)?;
        let patch = changes::as_patch(cx.store.as_ref(), &changeset.before, &changeset.after)?;
        let blob = cx.store.put_blob(patch.as_bytes())?;
        Ok(Value::File(Arc::new(FileValue {
            name: "diff.patch".into(),
            blob,
            size: patch.len() as u64,
            mode: 0o644,
            mtime: 0,
            owner: Owner::ROOT,
        })))
    }
}
