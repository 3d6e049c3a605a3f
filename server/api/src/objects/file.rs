//! `File`: a single file's content and metadata.

use std::sync::Arc;

use async_graphql::{Context, Object, Result, ID};
use gantry_core::{ops, search, Node};

use super::{
    add, checksum_blocking, client, engine, EnvFile, JsonValue, SearchArgs, SearchResult, Stat,
};
use crate::error::gql;
use crate::ids::format_id;

/// The largest file `contents` returns (bytes): an answer is built in
/// memory, as one JSON string. Larger files are for `export`.
pub(crate) const CONTENTS_CAP: u64 = 64 << 20;

#[derive(Clone)]
pub(crate) struct File(pub(crate) Arc<Node>);

impl File {
    async fn value(&self, ctx: &Context<'_>) -> Result<Arc<gantry_core::value::FileValue>> {
        engine(ctx).file(self.0.digest).await.map_err(gql)
    }
}

/// A file.
#[Object]
impl File {
    /// A unique identifier for this File.
    pub(crate) async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        format_id(engine(ctx), &self.0)
    }

    /// Force evaluation in the engine.
    async fn sync(&self, ctx: &Context<'_>) -> Result<ID> {
        self.value(ctx).await?;
        format_id(engine(ctx), &self.0)
    }

    /// Retrieves the contents of the file.
    async fn contents(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Start reading after this line")] offset_lines: Option<i32>,
        #[graphql(desc = "Maximum number of lines to read")] limit_lines: Option<i32>,
    ) -> Result<String> {
        let file = self.value(ctx).await?;
        if file.size > CONTENTS_CAP {
            return Err(gql(gantry_core::Error::InvalidArgument {
                message: format!(
                    "file {} is {} bytes, more than the cap of {} MiB that contents returns: \
                     use export to write it to the host",
                    gantry_core::text::quoted(&file.name),
                    file.size,
                    CONTENTS_CAP >> 20
                ),
            }));
        }
        let bytes = engine(ctx).read_blob(&file.blob).map_err(gql)?;
        let text = String::from_utf8_lossy(&bytes);
        if offset_lines.is_none() && limit_lines.is_none() {
            return Ok(text.into_owned());
        }
        let skip = offset_lines.unwrap_or(0).max(0) as usize;
        let take = limit_lines.map_or(usize::MAX, |n| n.max(0) as usize);
        Ok(text.split_inclusive('\n').skip(skip).take(take).collect())
    }

    /// Retrieves the size of the file, in bytes.
    async fn size(&self, ctx: &Context<'_>) -> Result<i64> {
        Ok(self.value(ctx).await?.size as i64)
    }

    /// Retrieves the name of the file.
    async fn name(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.value(ctx).await?.name.clone())
    }

    /// Return the file's digest. With excludeMetadata, only the contents are hashed.
    // Computed as Dagger computes it (see gantry_core::checksum).
    async fn digest(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(false)")] exclude_metadata: Option<bool>,
    ) -> Result<String> {
        let file = self.value(ctx).await?;
        if exclude_metadata.unwrap_or_default() {
            return Ok(gantry_core::checksum::file_contents(&file.blob).to_string());
        }
        let engine = Arc::clone(engine(ctx));
        let digest = checksum_blocking(move || engine.file_checksum(&file)).await?;
        Ok(digest.to_string())
    }

    /// Writes the file to a file path on the host. Returns the absolute path written.
    async fn export(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Location of the written file (e.g., \"output.txt\").")] path: String,
        #[graphql(
            default_with = "Some(false)",
            desc = "If allowParentDirPath is true, the path argument can be a directory path, in which case the file will be created in that directory."
        )]
        allow_parent_dir_path: Option<bool>,
    ) -> Result<String> {
        let file = self.value(ctx).await?;
        let blob = engine(ctx).open_blob(&file.blob).map_err(gql)?;
        let client = client(ctx);
        let target = client.resolve(&path).map_err(gql)?;
        let target = if target.is_dir() {
            if !allow_parent_dir_path.unwrap_or_default() {
                return Err(gql(gantry_core::Error::IsADirectory {
                    path: target.display().to_string(),
                }));
            }
            target.join(&file.name)
        } else {
            target
        };
        // Streamed from the store: a file of any size exports in bounded memory.
        let client = client.clone();
        let (mode, mtime) = (file.mode, file.mtime);
        tokio::task::spawn_blocking(move || {
            let written = client.copy_to_host(&target, blob, mode)?;
            crate::client::set_mtime(&target, mtime)?;
            Ok::<_, gantry_core::Error>(written)
        })
        .await
        .map_err(|error| async_graphql::Error::new(format!("exporting the file failed: {error}")))?
        .map_err(gql)
    }

    /// Retrieves this file with its name set to the given name.
    async fn with_name(&self, ctx: &Context<'_>, name: String) -> File {
        File(add(
            ctx,
            ops::FileWithName {
                parent: self.0.digest,
                name,
            },
        ))
    }

    /// Change the owner of the file recursively.
    async fn chown(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The new owner: user or user:group as numeric ids (a file has no etc/passwd to look names up in). Without a group, the group id is the user's id."
        )]
        owner: String,
    ) -> File {
        File(add(
            ctx,
            ops::FileChown {
                parent: self.0.digest,
                owner,
            },
        ))
    }

    /// Retrieves this file with its created/modified timestamps set to the given time.
    async fn with_timestamps(&self, ctx: &Context<'_>, timestamp: i64) -> File {
        File(add(
            ctx,
            ops::FileWithTimestamps {
                parent: self.0.digest,
                timestamp,
            },
        ))
    }

    // ---- Tier 2: inspection, search and replace, reading as env file or JSON

    /// The file's status: type, name, permissions and size.
    async fn stat(&self, ctx: &Context<'_>) -> Result<Option<Stat>> {
        Ok(Some(self.value(ctx).await?.stat().into()))
    }

    /// Lines of the file matching a regular expression (Rust regex syntax) or a literal string.
    #[allow(clippy::too_many_arguments)]
    async fn search(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The text to match.")] pattern: String,
        #[graphql(
            default_with = "Some(false)",
            desc = "Match the pattern as plain text, not as a regular expression."
        )]
        literal: Option<bool>,
        #[graphql(default_with = "Some(false)", desc = "Let matches span several lines.")]
        multiline: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "In multiline mode, let . match line ends too."
        )]
        dotall: Option<bool>,
        #[graphql(default_with = "Some(false)", desc = "Ignore case.")] insensitive: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Has no effect on a single file (kept for Directory.search's signature)."
        )]
        skip_ignored: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Has no effect on a single file (kept for Directory.search's signature)."
        )]
        skip_hidden: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Return one result for the file when it matches, without lines."
        )]
        files_only: Option<bool>,
        #[graphql(desc = "Return at most this many results.")] limit: Option<i32>,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "Refused on a single file (kept for Directory.search's signature); must be empty."
        )]
        paths: Option<Vec<String>>,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "Refused on a single file (kept for Directory.search's signature); must be empty."
        )]
        globs: Option<Vec<String>>,
    ) -> Result<Vec<SearchResult>> {
        if !paths.unwrap_or_default().is_empty() || !globs.unwrap_or_default().is_empty() {
            return Err(super::unsupported(
                "File.search(paths:, globs:)",
                "they select files of a directory; leave them out, or search the directory",
            ));
        }
        let options = SearchArgs {
            pattern,
            literal,
            multiline,
            dotall,
            insensitive,
            skip_ignored,
            skip_hidden,
            files_only,
            limit,
        }
        .options();
        let file = self.value(ctx).await?;
        let bytes = engine(ctx).read_blob(&file.blob).map_err(gql)?;
        let found = search::search_file(&file.name, &bytes, &options).map_err(gql)?;
        Ok(found.into_iter().map(SearchResult::from).collect())
    }

    /// This file with a literal string replaced. Without all, the string must occur exactly once (or, with firstFrom, the first occurrence at or after that line is replaced); with all, every occurrence is replaced and none is not an error.
    async fn with_replaced(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The text to replace.")] search: String,
        #[graphql(desc = "The text to put in its place.")] replacement: String,
        #[graphql(default_with = "Some(false)", desc = "Replace every occurrence.")] all: Option<
            bool,
        >,
        #[graphql(desc = "Replace the first occurrence at or after this line (1-based).")]
        first_from: Option<i32>,
    ) -> Result<File> {
        if let Some(line) = first_from.filter(|line| *line < 1) {
            return Err(gql(gantry_core::Error::InvalidArgument {
                message: format!(
                    "withReplaced: firstFrom must be a line number from 1, not {line}"
                ),
            }));
        }
        Ok(File(add(
            ctx,
            ops::FileWithReplaced {
                parent: self.0.digest,
                search,
                replacement,
                all: all.unwrap_or(false),
                first_from: first_from.map(|line| line as u64),
            },
        )))
    }

    /// The file read as an env file (NAME=value lines).
    async fn as_env_file(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Recorded for Dagger compatibility; values are always read with references expanded unless read raw."
        )]
        expand: Option<bool>,
    ) -> EnvFile {
        EnvFile(add(
            ctx,
            ops::FileAsEnvFile {
                file: self.0.digest,
                expand: expand.unwrap_or(false),
            },
        ))
    }

    /// The file's contents parsed as JSON.
    #[graphql(name = "asJSON")]
    async fn as_json(&self, ctx: &Context<'_>) -> JsonValue {
        JsonValue(add(
            ctx,
            ops::FileAsJson {
                file: self.0.digest,
            },
        ))
    }
}

/// `Syncer.sync` and `Exportable.export` when selected through the
/// interfaces (which pass only the interface's arguments).
impl File {
    pub(crate) async fn sync_as_syncer(&self, ctx: &Context<'_>) -> Result<ID> {
        self.sync(ctx).await
    }

    pub(crate) async fn export_as_exportable(
        &self,
        ctx: &Context<'_>,
        path: String,
    ) -> Result<String> {
        self.export(ctx, path, Some(false)).await
    }
}
