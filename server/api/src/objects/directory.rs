//! `Directory`: a content-addressed directory tree.

use std::sync::Arc;

use async_graphql::{Context, Object, Result, ID};
use gantry_core::{ops, Kind, Node, Op};

use super::{add, client, engine, expected_type, load_arg, File, FILE_MODE};
use crate::error::gql;
use crate::ids::format_id;

#[derive(Clone)]
pub(crate) struct Directory(pub(crate) Arc<Node>);

impl Directory {
    fn then(&self, ctx: &Context<'_>, op: impl Into<Op>) -> Directory {
        Directory(add(ctx, op))
    }

    async fn tree(
        &self,
        ctx: &Context<'_>,
    ) -> Result<(Arc<gantry_core::tree::Tree>, gantry_core::Digest)> {
        engine(ctx).directory(self.0.digest).await.map_err(gql)
    }
}

/// A directory.
#[Object]
impl Directory {
    /// A unique identifier for this Directory.
    pub(crate) async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        format_id(engine(ctx), &self.0)
    }

    /// Force evaluation in the engine.
    async fn sync(&self, ctx: &Context<'_>) -> Result<ID> {
        self.tree(ctx).await?;
        format_id(engine(ctx), &self.0)
    }

    /// Returns a list of files and directories at the given path. Directories end with a slash.
    async fn entries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Location of the directory to look at (e.g., \"/src\").")] path: Option<
            String,
        >,
    ) -> Result<Vec<String>> {
        let (tree, _) = self.tree(ctx).await?;
        tree.list(path.as_deref().unwrap_or("")).map_err(gql)
    }

    /// Returns a list of files and directories that match the given pattern.
    async fn glob(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Pattern to match (e.g., \"*.md\").")] pattern: String,
    ) -> Result<Vec<String>> {
        let (tree, _) = self.tree(ctx).await?;
        tree.glob(&pattern).map_err(gql)
    }

    /// Return the directory's digest. The format of the digest is not guaranteed to be stable between releases of gantry.
    async fn digest(&self, ctx: &Context<'_>) -> Result<String> {
        // Content only (names, modes, link targets, contents), not timestamps.
        let (tree, _) = self.tree(ctx).await?;
        Ok(tree.digest().to_string())
    }

    /// Retrieve a file at the given path.
    async fn file(&self, ctx: &Context<'_>, path: String) -> File {
        File(add(
            ctx,
            ops::DirectoryFile {
                parent: self.0.digest,
                path,
            },
        ))
    }

    /// Retrieves a directory at the given path.
    async fn directory(&self, ctx: &Context<'_>, path: String) -> Directory {
        self.then(
            ctx,
            ops::Subdirectory {
                parent: self.0.digest,
                path,
            },
        )
    }

    /// Retrieves this directory plus the contents of the given file copied to the given path.
    async fn with_file(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Location of the copied file (e.g., \"/file.txt\"). A directory (\".\", \"dir/\" or an existing one) receives the file under its own name."
        )]
        path: String,
        #[graphql(
            desc = "Identifier of the file to copy.",
            directive = expected_type::apply("File".into())
        )]
        source: ID,
        #[graphql(
            desc = "Permission given to the copied file (e.g., 0600).",
            validator(custom = "super::file_mode")
        )]
        permissions: Option<i32>,
        #[graphql(
            default_with = "Some(String::new())",
            desc = "A user:group to set for the copied file. Names are looked up in the directory's own etc/passwd and etc/group."
        )]
        owner: Option<String>,
    ) -> Result<Directory> {
        let source = load_arg(ctx, "source", &source, Kind::File)?;
        Ok(self.then(
            ctx,
            ops::DirectoryWithFile {
                parent: self.0.digest,
                path,
                source: source.digest,
                permissions: permissions.map(|p| p as u32),
                owner: owner.unwrap_or_default(),
            },
        ))
    }

    /// Return a snapshot with a new file added.
    async fn with_new_file(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Path of the new file. Example: \"foo/bar.txt\"")] path: String,
        #[graphql(desc = "Contents of the new file. Example: \"Hello world!\"")] contents: String,
        #[graphql(
            default_with = "Some(FILE_MODE)",
            desc = "Permissions of the new file. Example: 0600",
            validator(custom = "super::file_mode")
        )]
        permissions: Option<i32>,
    ) -> Directory {
        self.then(
            ctx,
            ops::DirectoryWithNewFile {
                parent: self.0.digest,
                path,
                contents,
                permissions: permissions.unwrap_or(FILE_MODE) as u32,
            },
        )
    }

    /// Return a snapshot with a directory added.
    async fn with_directory(
        &self,
        ctx: &Context<'_>,
        path: String,
        #[graphql(directive = expected_type::apply("Directory".into()))] source: ID,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "Exclude artifacts that match the given pattern (e.g., [\"node_modules/\", \".git*\"])."
        )]
        exclude: Option<Vec<String>>,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "Include only artifacts that match the given pattern (e.g., [\"app/\", \"package.*\"])."
        )]
        include: Option<Vec<String>>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Apply the .gitignore rules found in the copied directory."
        )]
        gitignore: Option<bool>,
        #[graphql(
            default_with = "Some(String::new())",
            desc = "A user:group to set for the copied directory and its contents. Names are looked up in the directory's own etc/passwd and etc/group."
        )]
        owner: Option<String>,
        #[graphql(
            desc = "Permission given to the copied directory and its contents (e.g., 0755).",
            validator(custom = "super::file_mode")
        )]
        permissions: Option<i32>,
    ) -> Result<Directory> {
        let source = load_arg(ctx, "source", &source, Kind::Directory)?;
        Ok(self.then(
            ctx,
            ops::DirectoryWithDirectory {
                parent: self.0.digest,
                path,
                source: source.digest,
                include: include.unwrap_or_default(),
                exclude: exclude.unwrap_or_default(),
                owner: owner.unwrap_or_default(),
                permissions: permissions.map(|mode| mode as u32),
                gitignore: gitignore.unwrap_or_default(),
            },
        ))
    }

    /// Retrieves this directory plus a new directory created at the given path.
    async fn with_new_directory(
        &self,
        ctx: &Context<'_>,
        path: String,
        #[graphql(
            default_with = "Some(FILE_MODE)",
            validator(custom = "super::file_mode")
        )]
        permissions: Option<i32>,
    ) -> Directory {
        self.then(
            ctx,
            ops::DirectoryWithNewDirectory {
                parent: self.0.digest,
                path,
                permissions: permissions.unwrap_or(FILE_MODE) as u32,
            },
        )
    }

    /// Return a snapshot with a file removed.
    async fn without_file(&self, ctx: &Context<'_>, path: String) -> Directory {
        self.then(
            ctx,
            ops::DirectoryWithoutFile {
                parent: self.0.digest,
                path,
            },
        )
    }

    /// Return a snapshot with a subdirectory removed.
    async fn without_directory(&self, ctx: &Context<'_>, path: String) -> Directory {
        self.then(
            ctx,
            ops::DirectoryWithoutDirectory {
                parent: self.0.digest,
                path,
            },
        )
    }

    /// Return the difference between this directory and another directory: what `other` adds or changes. Deletions are not represented.
    async fn diff(
        &self,
        ctx: &Context<'_>,
        #[graphql(directive = expected_type::apply("Directory".into()))] other: ID,
    ) -> Result<Directory> {
        let other = load_arg(ctx, "other", &other, Kind::Directory)?;
        Ok(self.then(
            ctx,
            ops::DirectoryDiff {
                parent: self.0.digest,
                other: other.digest,
            },
        ))
    }

    /// Retrieves this directory with all file/dir timestamps set to the given time.
    async fn with_timestamps(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Timestamp to set dir/files in (seconds since the Unix epoch).")]
        timestamp: i64,
    ) -> Directory {
        self.then(
            ctx,
            ops::DirectoryWithTimestamps {
                parent: self.0.digest,
                timestamp,
            },
        )
    }

    /// Writes the contents of the directory to a path on the host. Returns the absolute path written.
    async fn export(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Location of the copied directory (e.g., \"logs/\").")] path: String,
        #[graphql(
            default_with = "Some(false)",
            desc = "If true, then the host directory will be wiped clean before exporting so that it exactly matches the directory being exported."
        )]
        wipe: Option<bool>,
    ) -> Result<String> {
        let (tree, _) = self.tree(ctx).await?;
        client(ctx)
            .export_tree(engine(ctx), &tree, &path, wipe.unwrap_or_default())
            .map_err(gql)
    }
}
