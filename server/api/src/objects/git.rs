//! `GitRepository` and `GitRef`: Git sources. A repository and its refs
//! are nodes like any other; refs resolve to commits (one `ls-remote` per
//! repository and engine) only when a leaf needs them.

use std::sync::Arc;

use async_graphql::{Context, Object, Result, ID};
use gantry_core::ops::{self, RefSelector};
use gantry_core::{Node, Op};

use super::{add, engine, Directory};
use crate::error::gql;
use crate::ids::format_id;

#[derive(Clone)]
pub(crate) struct GitRepository(pub(crate) Arc<Node>);

impl GitRepository {
    fn reference(&self, ctx: &Context<'_>, selector: RefSelector) -> GitRef {
        GitRef(add(
            ctx,
            ops::GitRef {
                repository: self.0.digest,
                selector,
            },
        ))
    }

    async fn short_names(
        &self,
        ctx: &Context<'_>,
        prefix: &str,
        patterns: Option<Vec<String>>,
    ) -> Result<Vec<String>> {
        let refs = engine(ctx).git_refs(self.0.digest).await.map_err(gql)?;
        Ok(ops::short_names(
            &refs,
            prefix,
            &patterns.unwrap_or_default(),
        ))
    }
}

/// A git repository.
#[Object]
impl GitRepository {
    /// A unique identifier for this GitRepository.
    pub(crate) async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        format_id(engine(ctx), &self.0)
    }

    /// Returns the changeset of uncommitted changes in the git repository.
    async fn uncommitted(&self, ctx: &Context<'_>) -> super::Changeset {
        super::Changeset(add(
            ctx,
            ops::GitUncommitted {
                repository: self.0.digest,
            },
        ))
    }

    /// Returns details for HEAD.
    async fn head(&self, ctx: &Context<'_>) -> GitRef {
        self.reference(ctx, RefSelector::Head)
    }

    /// Returns details of a ref.
    async fn r#ref(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Ref's name (can be a commit identifier, a tag name, a branch name, or a fully-qualified ref)."
        )]
        name: String,
    ) -> GitRef {
        self.reference(ctx, RefSelector::Ref(name))
    }

    /// Returns details of a branch.
    async fn branch(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Branch's name (e.g., \"main\").")] name: String,
    ) -> GitRef {
        self.reference(ctx, RefSelector::Branch(name))
    }

    /// Returns details of a tag.
    async fn tag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Tag's name (e.g., \"v0.3.9\").")] name: String,
    ) -> GitRef {
        self.reference(ctx, RefSelector::Tag(name))
    }

    /// Returns details of a commit.
    async fn commit(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Identifier of the commit (e.g., \"b6315d8f2810962c601af73f86831f6866ea798b\")."
        )]
        id: String,
    ) -> GitRef {
        self.reference(ctx, RefSelector::Commit(id))
    }

    /// Returns details for the latest semver tag.
    async fn latest_version(&self, ctx: &Context<'_>) -> GitRef {
        self.reference(ctx, RefSelector::LatestVersion)
    }

    /// tags that match any of the given glob patterns.
    async fn tags(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Glob patterns (e.g., \"refs/tags/v*\").")] patterns: Option<Vec<String>>,
    ) -> Result<Vec<String>> {
        self.short_names(ctx, "refs/tags/", patterns).await
    }

    /// branches that match any of the given glob patterns.
    async fn branches(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Glob patterns (e.g., \"refs/tags/v*\").")] patterns: Option<Vec<String>>,
    ) -> Result<Vec<String>> {
        self.short_names(ctx, "refs/heads/", patterns).await
    }

    /// The URL of the git repository.
    async fn url(&self) -> Option<String> {
        match &self.0.op {
            Op::Git(git) => Some(git.url.clone()),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub(crate) struct GitRef(pub(crate) Arc<Node>);

/// A git ref (tag, branch, or commit).
#[Object]
impl GitRef {
    /// A unique identifier for this GitRef.
    pub(crate) async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        format_id(engine(ctx), &self.0)
    }

    /// The resolved commit id at this ref.
    async fn commit(&self, ctx: &Context<'_>) -> Result<String> {
        let reference = engine(ctx).git_ref(self.0.digest).await.map_err(gql)?;
        Ok(reference.commit.clone())
    }

    /// The resolved ref name at this ref.
    async fn r#ref(&self, ctx: &Context<'_>) -> Result<String> {
        let reference = engine(ctx).git_ref(self.0.digest).await.map_err(gql)?;
        Ok(if reference.name.is_empty() {
            reference.commit.clone()
        } else {
            reference.name.clone()
        })
    }

    /// The filesystem tree at this ref.
    async fn tree(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Set to true to discard .git directory."
        )]
        discard_git_dir: Option<bool>,
        #[graphql(default_with = "Some(1)", desc = "The depth of the tree to fetch.")]
        depth: Option<i32>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Set to true to populate tag refs in the local checkout .git."
        )]
        include_tags: Option<bool>,
    ) -> Directory {
        Directory(add(
            ctx,
            ops::GitTree {
                reference: self.0.digest,
                discard_git_dir: discard_git_dir.unwrap_or(false),
                depth: i64::from(depth.unwrap_or(1)),
                include_tags: include_tags.unwrap_or(false),
            },
        ))
    }
}
