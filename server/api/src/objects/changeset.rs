//! `Changeset`: the difference between two directories, and `DiffStat`.

use std::sync::Arc;

use async_graphql::{Context, Enum, Object, Result, ID};
use gantry_core::changes::{self, DiffKind};
use gantry_core::{ops, Kind, Node};
use serde::{Deserialize, Serialize};

use super::{add, client, engine, expected_type, Directory, File};
use crate::error::gql;
use crate::ids::{format_id, value_id};

#[derive(Clone)]
pub(crate) struct Changeset(pub(crate) Arc<Node>);

impl Changeset {
    async fn value(&self, ctx: &Context<'_>) -> Result<Arc<gantry_core::value::ChangesetValue>> {
        engine(ctx).changeset(self.0.digest).await.map_err(gql)
    }

    async fn paths(&self, ctx: &Context<'_>) -> Result<changes::ChangesetPaths> {
        let value = self.value(ctx).await?;
        Ok(changes::compare(&value.before, &value.after))
    }

    fn side(&self, ctx: &Context<'_>, side: &str) -> Directory {
        Directory(add(
            ctx,
            ops::ChangesetDirectory {
                changeset: self.0.digest,
                side: side.into(),
            },
        ))
    }

    fn merge(
        &self,
        ctx: &Context<'_>,
        argument: &str,
        others: &[ID],
        on_conflict: &str,
    ) -> Result<Changeset> {
        let others = super::directory::load_all(ctx, argument, others, Kind::Changeset)?;
        Ok(Changeset(add(
            ctx,
            ops::ChangesetMerge {
                parent: self.0.digest,
                others,
                on_conflict: on_conflict.into(),
            },
        )))
    }
}

/// Strategy to use when merging changesets with conflicting changes.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ChangesetMergeConflict")]
pub(crate) enum ChangesetMergeConflict {
    /// Attempt the merge and fail if a three-way merge of a file fails
    #[graphql(name = "FAIL")]
    Fail,
    /// Fail before attempting merge if file-level conflicts are detected
    #[graphql(name = "FAIL_EARLY")]
    FailEarly,
    /// Keep conflict markers in text files; for modify/delete conflicts, keep the modified version
    #[graphql(name = "LEAVE_CONFLICT_MARKERS")]
    LeaveConflictMarkers,
    /// The conflict is resolved by applying the version of the calling changeset
    #[graphql(name = "PREFER_OURS")]
    PreferOurs,
    /// The conflict is resolved by applying the version of the other changeset
    #[graphql(name = "PREFER_THEIRS")]
    PreferTheirs,
}

impl ChangesetMergeConflict {
    fn tag(self) -> &'static str {
        match self {
            ChangesetMergeConflict::Fail => "FAIL",
            ChangesetMergeConflict::FailEarly => "FAIL_EARLY",
            ChangesetMergeConflict::LeaveConflictMarkers => "LEAVE_CONFLICT_MARKERS",
            ChangesetMergeConflict::PreferOurs => "PREFER_OURS",
            ChangesetMergeConflict::PreferTheirs => "PREFER_THEIRS",
        }
    }
}

/// Strategy to use when merging multiple changesets.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ChangesetsMergeConflict")]
pub(crate) enum ChangesetsMergeConflict {
    /// Attempt the merge and fail if a three-way merge of a file fails
    #[graphql(name = "FAIL")]
    Fail,
    /// Fail before attempting merge if file-level conflicts are detected between any changesets
    #[graphql(name = "FAIL_EARLY")]
    FailEarly,
}

/// A comparison between two directories representing changes that can be applied.
#[Object]
impl Changeset {
    /// A unique identifier for this Changeset.
    pub(crate) async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        format_id(engine(ctx), &self.0)
    }

    /// Force evaluation in the engine.
    async fn sync(&self, ctx: &Context<'_>) -> Result<ID> {
        self.value(ctx).await?;
        format_id(engine(ctx), &self.0)
    }

    /// The older/lower snapshot to compare against.
    async fn before(&self, ctx: &Context<'_>) -> Directory {
        self.side(ctx, "before")
    }

    /// The newer/upper snapshot.
    async fn after(&self, ctx: &Context<'_>) -> Directory {
        self.side(ctx, "after")
    }

    /// Return a snapshot containing only the created and modified files.
    async fn layer(&self, ctx: &Context<'_>) -> Directory {
        self.side(ctx, "layer")
    }

    /// Files and directories that were added in the newer directory (directories end with a slash).
    async fn added_paths(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(self.paths(ctx).await?.added)
    }

    /// Files and directories that existed before and were updated in the newer directory.
    async fn modified_paths(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(self.paths(ctx).await?.modified)
    }

    /// Files and directories that were removed (a removed directory, ending with a slash, stands for its contents).
    async fn removed_paths(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(self.paths(ctx).await?.removed)
    }

    /// Returns true if the changeset is empty (i.e. there are no changes).
    async fn is_empty(&self, ctx: &Context<'_>) -> Result<bool> {
        let paths = self.paths(ctx).await?;
        Ok(paths.added.is_empty() && paths.modified.is_empty() && paths.removed.is_empty())
    }

    /// Return a Git-compatible patch of the changes.
    async fn as_patch(&self, ctx: &Context<'_>) -> File {
        File(add(
            ctx,
            ops::ChangesetAsPatch {
                changeset: self.0.digest,
            },
        ))
    }

    /// Return statistics about the changes, one per path, sorted by path.
    async fn diff_stats(&self, ctx: &Context<'_>) -> Result<Vec<DiffStat>> {
        let value = self.value(ctx).await?;
        let store = engine(ctx).store().clone();
        let stats =
            changes::diff_stats(store.as_ref(), &value.before, &value.after).map_err(gql)?;
        Ok(stats.into_iter().map(DiffStat::from).collect())
    }

    /// Applies the diff represented by this changeset to a path on the host. Returns the absolute path written.
    async fn export(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Location of the copied directory (e.g., \"logs/\").")] path: String,
    ) -> Result<String> {
        let value = self.value(ctx).await?;
        let paths = changes::compare(&value.before, &value.after);
        let layer = changes::layer(&value.before, &value.after).map_err(gql)?;
        let client = client(ctx);
        let written = client
            .export_tree(engine(ctx), &layer, &path, false)
            .map_err(gql)?;
        client
            .remove_host_paths(&path, &paths.removed)
            .map_err(gql)?;
        Ok(written)
    }

    /// Add changes to an existing changeset. By default the operation will fail in case of conflicts, for instance a file modified in both changesets. The behavior can be adjusted using the 'onConflict' argument.
    async fn with_changeset(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Changes to merge into the actual changeset",
            directive = expected_type::apply("Changeset".into())
        )]
        changes: ID,
        #[graphql(
            default_with = "Some(ChangesetMergeConflict::Fail)",
            desc = "What to do on a merge conflict"
        )]
        on_conflict: Option<ChangesetMergeConflict>,
    ) -> Result<Changeset> {
        let strategy = on_conflict.unwrap_or(ChangesetMergeConflict::Fail);
        self.merge(
            ctx,
            "changes",
            std::slice::from_ref(&changes),
            strategy.tag(),
        )
    }

    /// Add changes from multiple changesets, one after the other. Only FAIL and FAIL_EARLY are supported.
    async fn with_changesets(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "List of changesets to merge into the actual changeset",
            directive = expected_type::apply("Changeset".into())
        )]
        changes: Vec<ID>,
        #[graphql(
            default_with = "Some(ChangesetsMergeConflict::Fail)",
            desc = "What to do on a merge conflict"
        )]
        on_conflict: Option<ChangesetsMergeConflict>,
    ) -> Result<Changeset> {
        let strategy = match on_conflict.unwrap_or(ChangesetsMergeConflict::Fail) {
            ChangesetsMergeConflict::Fail => ChangesetMergeConflict::Fail,
            ChangesetsMergeConflict::FailEarly => ChangesetMergeConflict::FailEarly,
        };
        self.merge(ctx, "changes", &changes, strategy.tag())
    }
}

/// The type of change for a diff stat entry.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Serialize, Deserialize)]
#[graphql(name = "DiffStatKind")]
pub(crate) enum DiffStatKind {
    /// A file or directory was added.
    #[graphql(name = "ADDED")]
    Added,
    /// A file was modified.
    #[graphql(name = "MODIFIED")]
    Modified,
    /// A file or directory was removed.
    #[graphql(name = "REMOVED")]
    Removed,
    /// A file was renamed.
    #[graphql(name = "RENAMED")]
    Renamed,
}

/// Statistics of one path's change.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct DiffStat {
    path: String,
    old_path: Option<String>,
    kind: DiffStatKind,
    added_lines: i64,
    removed_lines: i64,
}

impl From<changes::DiffStat> for DiffStat {
    fn from(stat: changes::DiffStat) -> Self {
        DiffStat {
            path: stat.path,
            old_path: stat.old_path,
            kind: match stat.kind {
                DiffKind::Added => DiffStatKind::Added,
                DiffKind::Modified => DiffStatKind::Modified,
                DiffKind::Removed => DiffStatKind::Removed,
                DiffKind::Renamed => DiffStatKind::Renamed,
            },
            added_lines: stat.added_lines as i64,
            removed_lines: stat.removed_lines as i64,
        }
    }
}

#[Object]
impl DiffStat {
    /// A unique identifier for this DiffStat.
    pub(crate) async fn id(&self) -> ID {
        value_id("DiffStat", self)
    }

    /// Path of the changed file or directory.
    async fn path(&self) -> &str {
        &self.path
    }

    /// Previous path of the file, set only for renames.
    async fn old_path(&self) -> Option<&str> {
        self.old_path.as_deref()
    }

    /// Type of change.
    async fn kind(&self) -> DiffStatKind {
        self.kind
    }

    /// Number of added lines for this path.
    async fn added_lines(&self) -> i64 {
        self.added_lines
    }

    /// Number of removed lines for this path.
    async fn removed_lines(&self) -> i64 {
        self.removed_lines
    }
}

/// `Syncer.sync` and `Exportable.export` when selected through the
/// interfaces.
impl Changeset {
    pub(crate) async fn sync_as_syncer(&self, ctx: &Context<'_>) -> Result<ID> {
        self.sync(ctx).await
    }

    pub(crate) async fn export_as_exportable(
        &self,
        ctx: &Context<'_>,
        path: String,
    ) -> Result<String> {
        self.export(ctx, path).await
    }
}
