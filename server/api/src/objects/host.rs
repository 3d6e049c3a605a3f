//! `Host`: the client's filesystem, read relative to its working directory.
//!
//! As in Dagger, a session reads each host directory (per path and filter)
//! and each host file once, the first time it is asked for, and answers
//! later calls from that snapshot, unless `noCache` asks for a fresh read.
//! An engine serving one session (`gantry run`, `gantry session`, `gantry
//! call`) keeps the snapshots for its lifetime (`HostSnapshots`); `gantry
//! serve`, which has no sessions, reads afresh for every request.

use async_graphql::{Context, Object, Result, ID};
use dashmap::DashMap;
use gantry_core::{host, ops, Digest};

use super::{add, client, engine, Container, Directory, File};
use crate::error::gql;

#[derive(Clone, Default)]
pub(crate) struct Host;

/// What a session has read from the host, by what was asked for.
#[derive(Default)]
pub(crate) struct HostSnapshots {
    reads: DashMap<String, Digest>,
}

impl HostSnapshots {
    /// The snapshot for `key`, read with `read` the first time.
    async fn get_or_read<F>(
        ctx: &Context<'_>,
        key: String,
        no_cache: bool,
        read: F,
    ) -> Result<Digest>
    where
        F: FnOnce() -> gantry_core::Result<Digest> + Send + 'static,
    {
        let snapshots = ctx.data_opt::<HostSnapshots>().filter(|_| !no_cache);
        if let Some(digest) = snapshots.and_then(|s| s.reads.get(&key).map(|entry| *entry)) {
            return Ok(digest);
        }
        let digest = tokio::task::spawn_blocking(read)
            .await
            .map_err(|error| {
                async_graphql::Error::new(format!("reading from the host failed: {error}"))
            })?
            .map_err(gql)?;
        // Concurrent first reads of one key: the first to finish wins, so
        // every later call sees the same snapshot.
        Ok(match snapshots {
            Some(snapshots) => *snapshots.reads.entry(key).or_insert(digest),
            None => digest,
        })
    }
}

/// Information about the host environment.
#[Object]
impl Host {
    /// A unique identifier for this Host.
    pub(crate) async fn id(&self) -> ID {
        ID("Host:local".into())
    }

    /// Accesses a directory on the host. Relative paths resolve against the client's working directory.
    pub(crate) async fn directory(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Location of the directory to access (e.g., \".\").")] path: String,
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
            desc = "If true, the directory will always be reloaded from the host."
        )]
        no_cache: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Apply the .gitignore rules of the enclosing git repository (none outside one)."
        )]
        gitignore: Option<bool>,
    ) -> Result<Directory> {
        let engine = engine(ctx);
        let root = client(ctx).resolve(&path).map_err(gql)?;
        let (include, exclude) = (include.unwrap_or_default(), exclude.unwrap_or_default());
        let gitignore = gitignore.unwrap_or_default();
        let key = serde_json::json!(["directory", root, include, exclude, gitignore]).to_string();
        let store = engine.store().clone();
        let (root_read, include_read, exclude_read) =
            (root.clone(), include.clone(), exclude.clone());
        let content =
            HostSnapshots::get_or_read(ctx, key, no_cache.unwrap_or_default(), move || {
                let options = host::ReadOptions {
                    include: &include_read,
                    exclude: &exclude_read,
                    gitignore,
                };
                host::read_directory(store.as_ref(), &root_read, options)
            })
            .await?;
        Ok(Directory(add(
            ctx,
            ops::HostDirectory {
                path: root.display().to_string(),
                include,
                exclude,
                content,
            },
        )))
    }

    /// Accesses a file on the host. Relative paths resolve against the client's working directory.
    pub(crate) async fn file(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Location of the file to retrieve (e.g., \"README.md\").")] path: String,
        #[graphql(
            default_with = "Some(false)",
            desc = "If true, the file will always be reloaded from the host."
        )]
        no_cache: Option<bool>,
    ) -> Result<File> {
        let engine = engine(ctx);
        let target = client(ctx).resolve(&path).map_err(gql)?;
        let key = serde_json::json!(["file", target]).to_string();
        let store = engine.store().clone();
        let target_read = target.clone();
        let content =
            HostSnapshots::get_or_read(ctx, key, no_cache.unwrap_or_default(), move || {
                host::read_file(store.as_ref(), &target_read)
            })
            .await?;
        Ok(File(add(
            ctx,
            ops::HostFile {
                path: target.display().to_string(),
                content,
            },
        )))
    }

    // ---- Tier 2

    /// Looks for a file or directory named name in the client's working directory, then in each parent up to the root, and returns its path relative to the working directory; null when there is none.
    async fn find_up(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The name of the file or directory to look for.")] name: String,
        #[graphql(
            default_with = "Some(false)",
            desc = "Has no effect: gantry looks at the host on every call."
        )]
        no_cache: Option<bool>,
    ) -> Result<Option<String>> {
        let _ = no_cache;
        let client = client(ctx);
        let start = match &client.workdir {
            Some(workdir) => workdir.clone(),
            // Without one, resolve's error names the header to send.
            None => client.resolve(".").map_err(gql)?,
        };
        host::find_up(&start, &name).map_err(gql)
    }

    /// An image from the image store of the machine gantry runs containers on (the Docker daemon, for the Docker runtime), by name or ID; nothing is pulled.
    async fn container_image(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The image's name or ID (e.g., \"my-app:latest\").")] name: String,
    ) -> Result<Container> {
        if name.trim().is_empty() {
            return Err(gql(gantry_core::Error::InvalidArgument {
                message: "containerImage: name must not be empty".into(),
            }));
        }
        Ok(Container(add(ctx, ops::HostContainerImage { name })))
    }
}
