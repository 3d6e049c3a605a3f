//! `Host`: the client's filesystem, read relative to its working directory.

use async_graphql::{Context, Object, Result, ID};
use gantry_core::{host, ops};

use super::{add, client, engine, Container, Directory, File};
use crate::error::gql;

#[derive(Clone, Default)]
pub(crate) struct Host;

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
            default,
            desc = "Exclude artifacts that match the given pattern (e.g., [\"node_modules/\", \".git*\"])."
        )]
        exclude: Vec<String>,
        #[graphql(
            default,
            desc = "Include only artifacts that match the given pattern (e.g., [\"app/\", \"package.*\"])."
        )]
        include: Vec<String>,
        #[graphql(
            default = false,
            desc = "If true, the directory will always be reloaded from the host."
        )]
        no_cache: bool,
        #[graphql(default = false)] gitignore: bool,
    ) -> Result<Directory> {
        let _ = (no_cache, gitignore);
        let engine = engine(ctx);
        let root = client(ctx).resolve(&path);
        let store = engine.store().clone();
        let (root_for_read, include_for_read, exclude_for_read) =
            (root.clone(), include.clone(), exclude.clone());
        let content = tokio::task::spawn_blocking(move || {
            host::read_directory(
                store.as_ref(),
                &root_for_read,
                &include_for_read,
                &exclude_for_read,
            )
        })
        .await
        .map_err(|error| {
            async_graphql::Error::new(format!("reading the host directory failed: {error}"))
        })?
        .map_err(gql)?;
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
        #[graphql(default = false)] no_cache: bool,
    ) -> Result<File> {
        let _ = no_cache;
        let engine = engine(ctx);
        let target = client(ctx).resolve(&path);
        let content = host::read_file(engine.store().as_ref(), &target).map_err(gql)?;
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
        host::find_up(&client(ctx).workdir, &name).map_err(gql)
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
