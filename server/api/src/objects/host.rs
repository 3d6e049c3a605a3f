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
use gantry_core::{host, ops, Digest, Kind};

use super::service::{self, PortForward, Service, Socket};
use super::{add, client, engine, expected_type, load_arg, Container, Directory, File};
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
        let checksums = engine.checksums().clone();
        let (root_read, include_read, exclude_read) =
            (root.clone(), include.clone(), exclude.clone());
        let content =
            HostSnapshots::get_or_read(ctx, key, no_cache.unwrap_or_default(), move || {
                let options = host::ReadOptions {
                    include: &include_read,
                    exclude: &exclude_read,
                    gitignore,
                    checksums: Some(&checksums),
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

    /// Creates a service that forwards traffic to a specified address via the host.
    async fn service(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Ports to expose via the service, forwarding through the host network.\n\nIf a port's frontend is unspecified or 0, it defaults to the same as the backend port.\n\nAn empty set of ports is not valid; an error will be returned."
        )]
        ports: Vec<PortForward>,
        #[graphql(
            default_with = "Some(\"localhost\".to_owned())",
            desc = "Upstream host to forward traffic to."
        )]
        host: Option<String>,
    ) -> Result<Service> {
        let ports = service::forwards(Some(ports))?;
        if ports.is_empty() {
            return Err(gql(gantry_core::Error::InvalidArgument {
                message: "Host.service: give at least one port to forward".into(),
            }));
        }
        Ok(Service(add(
            ctx,
            ops::HostService {
                host: host.unwrap_or_else(|| "localhost".to_owned()),
                ports,
            },
        )))
    }

    /// Creates a tunnel that forwards traffic from the host to a service.
    async fn tunnel(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Service to send traffic from the tunnel.",
            directive = expected_type::apply("Service".into())
        )]
        service: ID,
        #[graphql(
            default_with = "Some(false)",
            desc = "Map each service port to the same port on the host, as if the service were running natively.\n\nNote: enabling may result in port conflicts."
        )]
        native: Option<bool>,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "Configure explicit port forwarding rules for the tunnel.\n\nIf a port's frontend is unspecified or 0, a random port will be chosen by the host.\n\nIf no ports are given, all of the service's ports are forwarded. If native is true, each port maps to the same port on the host. If native is false, each port maps to a random port chosen by the host.\n\nIf ports are given and native is true, the ports are additive."
        )]
        ports: Option<Vec<PortForward>>,
    ) -> Result<Service> {
        let service = load_arg(ctx, "service", &service, Kind::Service)?;
        Ok(Service(add(
            ctx,
            ops::HostTunnel {
                service: service.digest,
                native: native.unwrap_or_default(),
                ports: service::forwards(ports)?,
            },
        )))
    }

    /// Accesses a Unix socket on the host.
    async fn unix_socket(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Location of the Unix socket (e.g., \"/var/run/docker.sock\").")]
        path: String,
    ) -> Result<Socket> {
        use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
        let target = client(ctx).resolve(&path).map_err(gql)?;
        let shown = target.display().to_string();
        let metadata = std::fs::metadata(&target).map_err(|error| {
            gql(gantry_core::Error::Host {
                path: shown.clone(),
                reason: error.to_string(),
            })
        })?;
        if !metadata.file_type().is_socket() {
            return Err(gql(gantry_core::Error::Host {
                path: shown,
                reason: "not a Unix socket".into(),
            }));
        }
        // Its identity, so that a socket re-created at the path is another
        // input (a freed inode number is often reused at once: the change
        // time tells the two apart).
        let identity = format!(
            "{}:{}:{}.{}",
            metadata.dev(),
            metadata.ino(),
            metadata.ctime(),
            metadata.ctime_nsec()
        );
        let handle = engine(ctx).socket_handle(&shown, &identity);
        Ok(Socket(add(
            ctx,
            ops::HostUnixSocket {
                path: shown,
                handle,
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
