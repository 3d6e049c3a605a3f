//! `Container`: an OCI container's recipe. `with…` fields extend it lazily.

use std::sync::Arc;

use async_graphql::{Context, Object, Result, ID};
use gantry_core::ops::ExecArgs;
use gantry_core::{ops, Kind, Node, Op};

use super::{
    add, client, engine, CacheSharingMode, Directory, ExistsType, File, ImageLayerCompression,
    ImageMediaTypes, Label, NetworkProtocol, RegistryProtocol, ReturnType, Stat, Void,
};
use crate::error::gql;
use crate::ids::{format_id, load};

#[derive(Clone)]
pub(crate) struct Container(pub(crate) Arc<Node>);

/// An environment variable name and value.
#[derive(Clone)]
pub(crate) struct EnvVariable {
    /// The container and index it was listed from; `None` for a variable
    /// of an env file, whose ID is its name and value (`ids::value_id`).
    pub(crate) container: Option<Arc<Node>>,
    pub(crate) index: usize,
    pub(crate) name: String,
    pub(crate) value: String,
}

/// The fields an env file variable's ID holds.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct EnvVariableValue {
    pub(crate) name: String,
    pub(crate) value: String,
}

impl EnvVariable {
    pub(crate) fn plain(name: String, value: String) -> Self {
        EnvVariable {
            container: None,
            index: 0,
            name,
            value,
        }
    }
}

#[Object]
impl EnvVariable {
    /// A unique identifier for this EnvVariable.
    pub(crate) async fn id(&self) -> Result<ID> {
        Ok(match &self.container {
            Some(container) => ID(format!(
                "EnvVariable:{}:{}",
                container.digest.hex(),
                self.index
            )),
            None => crate::ids::value_id(
                "EnvVariable",
                &EnvVariableValue {
                    name: self.name.clone(),
                    value: self.value.clone(),
                },
            ),
        })
    }

    /// The environment variable name.
    async fn name(&self) -> &str {
        &self.name
    }

    /// The environment variable value.
    async fn value(&self) -> &str {
        &self.value
    }
}

fn unsupported_expand(expand: bool) -> Result<()> {
    if expand {
        return Err(gql(gantry_core::Error::Unsupported {
            message:
                "expand: true is not supported by gantry yet; expand the value in your program"
                    .into(),
        }));
    }
    Ok(())
}

impl Container {
    fn then(&self, ctx: &Context<'_>, op: impl Into<Op>) -> Container {
        Container(add(ctx, op))
    }

    fn parent(&self) -> gantry_core::Digest {
        self.0.digest
    }

    async fn state(&self, ctx: &Context<'_>) -> Result<Arc<gantry_core::value::ContainerState>> {
        engine(ctx).container(self.0.digest).await.map_err(gql)
    }

    async fn exec(&self, ctx: &Context<'_>) -> Result<Arc<gantry_core::value::ExecRecord>> {
        self.state(ctx)
            .await?
            .exec
            .clone()
            .ok_or_else(|| gql(gantry_core::Error::NoCommand))
    }
}

/// An OCI-compatible container, also known as a Docker container.
#[Object]
impl Container {
    /// A unique identifier for this Container.
    pub(crate) async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        format_id(engine(ctx), &self.0)
    }

    /// Forces evaluation of the pipeline in the engine. It doesn't run the default command if no exec has been set.
    async fn sync(&self, ctx: &Context<'_>) -> Result<ID> {
        self.state(ctx).await?;
        format_id(engine(ctx), &self.0)
    }

    /// Initializes this container from a pulled base image.
    async fn from(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Image's address from its registry, e.g. 127.0.0.1:5000/busybox:latest.")]
        address: String,
        #[graphql(desc = "Not supported by gantry; must be null.")] registry_service: Option<ID>,
        #[graphql(desc = "Ignored: gantry lets Docker choose.")] protocol: Option<RegistryProtocol>,
        #[graphql(default = false, name = "insecureSkipTLSVerify")] insecure_skip_tls_verify: bool,
    ) -> Result<Container> {
        let _ = (registry_service, protocol, insecure_skip_tls_verify);
        if address.trim().is_empty() {
            return Err(gql(gantry_core::Error::InvalidArgument {
                message: "from: address must not be empty".into(),
            }));
        }
        Ok(self.then(
            ctx,
            ops::FromImage {
                parent: self.parent(),
                address,
            },
        ))
    }

    /// Retrieves this container with its rootfs replaced by the given directory.
    async fn with_rootfs(&self, ctx: &Context<'_>, directory: ID) -> Result<Container> {
        let directory = load(engine(ctx), &directory, Kind::Directory).map_err(gql)?;
        Ok(self.then(
            ctx,
            ops::WithRootfs {
                parent: self.parent(),
                directory: directory.digest,
            },
        ))
    }

    /// The platform this container executes and publishes as.
    async fn platform(&self) -> &str {
        "linux/amd64"
    }

    /// The unique image reference, which can only be retrieved immediately after the 'Container.From' call.
    async fn image_ref(&self, ctx: &Context<'_>) -> Result<String> {
        self.state(ctx).await?.image_ref.clone().ok_or_else(|| {
            gql(gantry_core::Error::InvalidArgument {
                message: "imageRef can only be retrieved immediately after from".into(),
            })
        })
    }

    /// Retrieves this container's root filesystem. Mounts are not included.
    async fn rootfs(&self, ctx: &Context<'_>) -> Directory {
        Directory(add(
            ctx,
            ops::ContainerRootfs {
                container: self.parent(),
            },
        ))
    }

    /// Execute a command in the container, and return a new snapshot of the container state after execution.
    async fn with_exec(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Command to execute. Must be valid exec() arguments, not a shell command. Empty means the default args."
        )]
        args: Vec<String>,
        #[graphql(default = false, desc = "Prepend the container's entrypoint to args.")]
        use_entrypoint: bool,
        #[graphql(
            default = "",
            desc = "Content to write to the command's standard input."
        )]
        stdin: String,
        #[graphql(
            default = "",
            desc = "Redirect the command's standard input from a file in the container."
        )]
        redirect_stdin: String,
        #[graphql(
            default = "",
            desc = "Redirect the command's standard output to a file in the container."
        )]
        redirect_stdout: String,
        #[graphql(
            default = "",
            desc = "Redirect the command's standard error to a file in the container."
        )]
        redirect_stderr: String,
        #[graphql(
            default_with = "ReturnType::Success",
            desc = "Exit codes this command is allowed to exit with without error."
        )]
        expect: ReturnType,
        #[graphql(default = false)] experimental_privileged_nesting: bool,
        #[graphql(default = false)] insecure_root_capabilities: bool,
        #[graphql(
            default = false,
            desc = "Replace ${VAR} or $VAR in the args according to the current environment variables defined in the container."
        )]
        expand: bool,
        #[graphql(default = false)] no_init: bool,
    ) -> Result<Container> {
        let _ = (experimental_privileged_nesting, no_init);
        if insecure_root_capabilities {
            return Err(gql(gantry_core::Error::Unsupported {
                message: "insecureRootCapabilities is not supported by gantry".into(),
            }));
        }
        if !stdin.is_empty() && !redirect_stdin.is_empty() {
            return Err(gql(gantry_core::Error::InvalidArgument {
                message: "withExec: set stdin or redirectStdin, not both".into(),
            }));
        }
        Ok(self.then(
            ctx,
            ops::WithExec {
                parent: self.parent(),
                exec: ExecArgs {
                    args,
                    use_entrypoint,
                    stdin,
                    redirect_stdin,
                    redirect_stdout,
                    redirect_stderr,
                    expect: expect.into(),
                    expand,
                },
            },
        ))
    }

    /// The output stream of the last executed command. Returns an error if no command was executed.
    async fn stdout(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.exec(ctx).await?.stdout.clone())
    }

    /// The error stream of the last executed command. Returns an error if no command was executed.
    async fn stderr(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.exec(ctx).await?.stderr.clone())
    }

    /// The exit code of the last executed command. Returns an error if no command was executed.
    async fn exit_code(&self, ctx: &Context<'_>) -> Result<i64> {
        Ok(self.exec(ctx).await?.exit_code)
    }

    /// Retrieves this container plus the given environment variable.
    async fn with_env_variable(
        &self,
        ctx: &Context<'_>,
        name: String,
        value: String,
        #[graphql(
            default = false,
            desc = "Replace ${VAR} or $VAR in the value according to the current environment variables defined in the container."
        )]
        expand: bool,
    ) -> Container {
        self.then(
            ctx,
            ops::WithEnvVariable {
                parent: self.parent(),
                name,
                value,
                expand,
            },
        )
    }

    /// Retrieves this container minus the given environment variable.
    async fn without_env_variable(&self, ctx: &Context<'_>, name: String) -> Container {
        self.then(
            ctx,
            ops::WithoutEnvVariable {
                parent: self.parent(),
                name,
            },
        )
    }

    /// Retrieves the value of the specified environment variable.
    async fn env_variable(&self, ctx: &Context<'_>, name: String) -> Result<Option<String>> {
        let state = self.state(ctx).await?;
        Ok(state
            .config
            .env
            .iter()
            .rev()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone()))
    }

    /// Retrieves the list of environment variables passed to commands.
    async fn env_variables(&self, ctx: &Context<'_>) -> Result<Vec<EnvVariable>> {
        let state = self.state(ctx).await?;
        Ok(state
            .config
            .env
            .iter()
            .enumerate()
            .map(|(index, (name, value))| EnvVariable {
                container: Some(self.0.clone()),
                index,
                name: name.clone(),
                value: value.clone(),
            })
            .collect())
    }

    /// Retrieves this container plus an env variable containing the given secret.
    async fn with_secret_variable(
        &self,
        ctx: &Context<'_>,
        name: String,
        secret: ID,
    ) -> Result<Container> {
        let secret = load(engine(ctx), &secret, Kind::Secret).map_err(gql)?;
        Ok(self.then(
            ctx,
            ops::WithSecretVariable {
                parent: self.parent(),
                name,
                secret: secret.digest,
            },
        ))
    }

    /// Retrieves this container with a different command user.
    async fn with_user(&self, ctx: &Context<'_>, name: String) -> Container {
        self.then(
            ctx,
            ops::WithUser {
                parent: self.parent(),
                name,
            },
        )
    }

    /// Retrieves the user to be set for all commands.
    async fn user(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.state(ctx).await?.config.user.clone())
    }

    /// Retrieves this container with a different working directory.
    async fn with_workdir(
        &self,
        ctx: &Context<'_>,
        path: String,
        #[graphql(default = false)] expand: bool,
    ) -> Result<Container> {
        unsupported_expand(expand)?;
        Ok(self.then(
            ctx,
            ops::WithWorkdir {
                parent: self.parent(),
                path,
            },
        ))
    }

    /// Retrieves the working directory for all commands.
    async fn workdir(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.state(ctx).await?.config.workdir.clone())
    }

    /// Retrieves this container but with a different command entrypoint.
    async fn with_entrypoint(
        &self,
        ctx: &Context<'_>,
        args: Vec<String>,
        #[graphql(
            default = false,
            desc = "Don't reset the default arguments when setting the entrypoint."
        )]
        keep_default_args: bool,
    ) -> Container {
        self.then(
            ctx,
            ops::WithEntrypoint {
                parent: self.parent(),
                args,
                keep_default_args,
            },
        )
    }

    /// Return the entrypoint of this container.
    async fn entrypoint(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(self.state(ctx).await?.config.entrypoint.clone())
    }

    /// Configures default arguments for future commands.
    async fn with_default_args(&self, ctx: &Context<'_>, args: Vec<String>) -> Container {
        self.then(
            ctx,
            ops::WithDefaultArgs {
                parent: self.parent(),
                args,
            },
        )
    }

    /// Return the container's default arguments.
    async fn default_args(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(self.state(ctx).await?.config.cmd.clone())
    }

    /// Retrieves this container plus the given label.
    async fn with_label(&self, ctx: &Context<'_>, name: String, value: String) -> Container {
        self.then(
            ctx,
            ops::WithLabel {
                parent: self.parent(),
                name,
                value,
            },
        )
    }

    /// Retrieves the value of the specified label.
    async fn label(&self, ctx: &Context<'_>, name: String) -> Result<Option<String>> {
        Ok(self.state(ctx).await?.config.labels.get(&name).cloned())
    }

    /// Expose a network port. Recorded for compatibility; gantry runs no services yet.
    async fn with_exposed_port(
        &self,
        ctx: &Context<'_>,
        port: i32,
        #[graphql(default_with = "NetworkProtocol::Tcp")] protocol: NetworkProtocol,
        description: Option<String>,
        #[graphql(default = false)] experimental_skip_healthcheck: bool,
    ) -> Container {
        let _ = (protocol, description, experimental_skip_healthcheck);
        let value = match protocol {
            NetworkProtocol::Tcp => format!("{port}/tcp"),
            NetworkProtocol::Udp => format!("{port}/udp"),
        };
        self.then(
            ctx,
            ops::WithLabel {
                parent: self.parent(),
                name: "dev.gantry.exposed-port".into(),
                value,
            },
        )
    }

    /// Retrieves this container plus a directory written at the given path.
    async fn with_directory(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Location of the written directory (e.g., \"/tmp/directory\").")]
        path: String,
        #[graphql(desc = "Identifier of the directory to write")] source: ID,
        #[graphql(
            default,
            desc = "Patterns to exclude in the written directory (e.g. [\"node_modules/**\", \".gitignore\", \".git/\"])."
        )]
        exclude: Vec<String>,
        #[graphql(
            default,
            desc = "Patterns to include in the written directory (e.g. [\"*.go\", \"go.mod\", \"go.sum\"])."
        )]
        include: Vec<String>,
        #[graphql(default = false)] gitignore: bool,
        #[graphql(
            default = "",
            desc = "A user:group to set for the directory and its contents (numeric in gantry)."
        )]
        owner: String,
        #[graphql(default = false)] inherit_owner: bool,
        #[graphql(default = false)] expand: bool,
        permissions: Option<i32>,
    ) -> Result<Container> {
        let _ = (gitignore, inherit_owner);
        unsupported_expand(expand)?;
        let source = load(engine(ctx), &source, Kind::Directory).map_err(gql)?;
        Ok(self.then(
            ctx,
            ops::WithContent {
                parent: self.parent(),
                path,
                source: source.digest,
                permissions: permissions.map(|mode| mode as u32),
                owner,
                include,
                exclude,
            },
        ))
    }

    /// Retrieves this container plus the contents of the given file copied to the given path.
    async fn with_file(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Location of the copied file (e.g., \"/tmp/file.txt\").")] path: String,
        #[graphql(desc = "Identifier of the file to copy.")] source: ID,
        #[graphql(desc = "Permission given to the copied file (e.g., 0600).")] permissions: Option<
            i32,
        >,
        #[graphql(default = "")] owner: String,
        #[graphql(default = false)] inherit_owner: bool,
        #[graphql(default = false)] expand: bool,
    ) -> Result<Container> {
        let _ = inherit_owner;
        unsupported_expand(expand)?;
        let source = load(engine(ctx), &source, Kind::File).map_err(gql)?;
        Ok(self.then(
            ctx,
            ops::WithContent {
                parent: self.parent(),
                path,
                source: source.digest,
                permissions: permissions.map(|mode| mode as u32),
                owner,
                include: Vec::new(),
                exclude: Vec::new(),
            },
        ))
    }

    /// Return a new container snapshot, with a file added to its filesystem with text content.
    async fn with_new_file(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Location of the written file (e.g., \"/tmp/file.txt\").")] path: String,
        #[graphql(desc = "Contents of the new file. Example: \"Hello world!\"")] contents: String,
        #[graphql(default = 420, desc = "Permissions of the new file. Example: 0600")] permissions: i32,
        #[graphql(default = "")] owner: String,
        #[graphql(default = false)] inherit_owner: bool,
        #[graphql(default = false)] expand: bool,
    ) -> Result<Container> {
        let _ = inherit_owner;
        unsupported_expand(expand)?;
        let file = add(
            ctx,
            ops::NewFile {
                contents,
                permissions: permissions as u32,
            },
        );
        Ok(self.then(
            ctx,
            ops::WithContent {
                parent: self.parent(),
                path,
                source: file.digest,
                permissions: None,
                owner,
                include: Vec::new(),
                exclude: Vec::new(),
            },
        ))
    }

    /// Retrieves a file at the given path. Mounts are included.
    async fn file(
        &self,
        ctx: &Context<'_>,
        path: String,
        #[graphql(default = false)] expand: bool,
    ) -> Result<File> {
        unsupported_expand(expand)?;
        Ok(File(add(
            ctx,
            ops::ContainerFile {
                container: self.parent(),
                path,
            },
        )))
    }

    /// Retrieves a directory at the given path. Mounts are included.
    async fn directory(
        &self,
        ctx: &Context<'_>,
        path: String,
        #[graphql(default = false)] expand: bool,
    ) -> Result<Directory> {
        unsupported_expand(expand)?;
        Ok(Directory(add(
            ctx,
            ops::ContainerDirectory {
                container: self.parent(),
                path,
            },
        )))
    }

    /// Retrieves this container plus a cache volume mounted at the given path.
    async fn with_mounted_cache(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Location of the cache directory (e.g., \"/root/.npm\").")] path: String,
        #[graphql(desc = "Identifier of the cache volume to mount.")] cache: ID,
        #[graphql(desc = "Identifier of the directory to use as the cache volume's root.")] source: Option<ID>,
        #[graphql(
            default_with = "CacheSharingMode::Shared",
            desc = "Sharing mode of the cache volume."
        )]
        sharing: CacheSharingMode,
        #[graphql(default = "")] owner: String,
        #[graphql(default = false)] inherit_owner: bool,
        #[graphql(default = false)] expand: bool,
    ) -> Result<Container> {
        let _ = inherit_owner;
        unsupported_expand(expand)?;
        let engine = engine(ctx);
        let cache = load(engine, &cache, Kind::CacheVolume).map_err(gql)?;
        let source = match source {
            Some(id) => Some(load(engine, &id, Kind::Directory).map_err(gql)?.digest),
            None => None,
        };
        Ok(self.then(
            ctx,
            ops::WithMountedCache {
                parent: self.parent(),
                path,
                cache: cache.digest,
                source,
                sharing: Some(sharing.into()),
                owner,
            },
        ))
    }

    /// Retrieves this container plus a directory mounted at the given path.
    async fn with_mounted_directory(
        &self,
        ctx: &Context<'_>,
        path: String,
        source: ID,
        #[graphql(default = "")] owner: String,
        #[graphql(default = false)] inherit_owner: bool,
        #[graphql(default = false)] read_only: bool,
        #[graphql(default = false)] expand: bool,
    ) -> Result<Container> {
        let _ = (owner, inherit_owner);
        unsupported_expand(expand)?;
        let source = load(engine(ctx), &source, Kind::Directory).map_err(gql)?;
        Ok(self.then(
            ctx,
            ops::WithMountedDirectory {
                parent: self.parent(),
                path,
                source: source.digest,
                read_only,
            },
        ))
    }

    /// Retrieves this container plus a file mounted at the given path.
    async fn with_mounted_file(
        &self,
        ctx: &Context<'_>,
        path: String,
        source: ID,
        #[graphql(default = "")] owner: String,
        #[graphql(default = false)] inherit_owner: bool,
        #[graphql(default = false)] expand: bool,
    ) -> Result<Container> {
        let _ = (owner, inherit_owner);
        unsupported_expand(expand)?;
        let source = load(engine(ctx), &source, Kind::File).map_err(gql)?;
        Ok(self.then(
            ctx,
            ops::WithMountedFile {
                parent: self.parent(),
                path,
                source: source.digest,
            },
        ))
    }

    /// Retrieves this container plus a secret mounted into a file at the given path.
    async fn with_mounted_secret(
        &self,
        ctx: &Context<'_>,
        path: String,
        source: ID,
        #[graphql(default = "")] owner: String,
        #[graphql(default = false)] inherit_owner: bool,
        #[graphql(
            default = 256,
            desc = "Permission given to the mounted secret (e.g., 0600)."
        )]
        mode: i32,
        #[graphql(default = false)] expand: bool,
    ) -> Result<Container> {
        let _ = (owner, inherit_owner);
        unsupported_expand(expand)?;
        let secret = load(engine(ctx), &source, Kind::Secret).map_err(gql)?;
        Ok(self.then(
            ctx,
            ops::WithMountedSecret {
                parent: self.parent(),
                path,
                secret: secret.digest,
                mode: mode as u32,
            },
        ))
    }

    /// Retrieves this container plus a temporary directory mounted at the given path.
    async fn with_mounted_temp(
        &self,
        ctx: &Context<'_>,
        path: String,
        #[graphql(desc = "Size of the temporary directory in bytes.")] size: Option<i64>,
        #[graphql(default = false)] expand: bool,
    ) -> Result<Container> {
        unsupported_expand(expand)?;
        Ok(self.then(
            ctx,
            ops::WithMountedTemp {
                parent: self.parent(),
                path,
                size: size.map(|s| s as u64),
            },
        ))
    }

    /// Retrieves this container after unmounting everything at the given path.
    async fn without_mount(
        &self,
        ctx: &Context<'_>,
        path: String,
        #[graphql(default = false)] expand: bool,
    ) -> Result<Container> {
        unsupported_expand(expand)?;
        Ok(self.then(
            ctx,
            ops::WithoutMount {
                parent: self.parent(),
                path,
            },
        ))
    }

    /// Retrieves the list of paths where a directory is mounted.
    async fn mounts(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(self
            .state(ctx)
            .await?
            .mounts
            .iter()
            .map(|mount| mount.path.clone())
            .collect())
    }

    /// Writes the container as an OCI tarball to the destination file path on the host. Returns the absolute path written.
    async fn export(
        &self,
        ctx: &Context<'_>,
        path: String,
        #[graphql(default)] platform_variants: Vec<ID>,
        forced_compression: Option<ImageLayerCompression>,
        #[graphql(default_with = "ImageMediaTypes::OciMediaTypes")] media_types: ImageMediaTypes,
        #[graphql(default = false)] expand: bool,
    ) -> Result<String> {
        let _ = (forced_compression, media_types);
        unsupported_expand(expand)?;
        if !platform_variants.is_empty() {
            return Err(gql(gantry_core::Error::Unsupported {
                message: "platformVariants are not supported by gantry yet".into(),
            }));
        }
        let state = self.state(ctx).await?;
        let tarball = engine(ctx).image_tarball(&state).await.map_err(gql)?;
        client(ctx).write_host_file(&path, &tarball).map_err(gql)
    }

    /// Package the container state as an OCI image, and return it as a tar archive.
    async fn as_tarball(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] platform_variants: Vec<ID>,
        forced_compression: Option<ImageLayerCompression>,
        #[graphql(default_with = "ImageMediaTypes::OciMediaTypes")] media_types: ImageMediaTypes,
    ) -> Result<File> {
        let _ = (forced_compression, media_types, platform_variants);
        Ok(File(add(
            ctx,
            ops::AsTarball {
                container: self.parent(),
            },
        )))
    }

    /// Package the container state as an OCI image, and publish it to a registry. Returns the fully qualified address of the published image, with digest.
    async fn publish(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Registry's address to publish the image to, e.g. 127.0.0.1:5000/app:v1."
        )]
        address: String,
        #[graphql(default)] platform_variants: Vec<ID>,
        forced_compression: Option<ImageLayerCompression>,
        #[graphql(default_with = "ImageMediaTypes::OciMediaTypes")] media_types: ImageMediaTypes,
        registry_service: Option<ID>,
        protocol: Option<RegistryProtocol>,
        #[graphql(default = false, name = "insecureSkipTLSVerify")] insecure_skip_tls_verify: bool,
    ) -> Result<String> {
        let _ = (
            forced_compression,
            media_types,
            registry_service,
            protocol,
            insecure_skip_tls_verify,
        );
        if !platform_variants.is_empty() {
            return Err(gql(gantry_core::Error::Unsupported {
                message: "platformVariants are not supported by gantry yet".into(),
            }));
        }
        engine(ctx)
            .publish(self.0.digest, &address)
            .await
            .map_err(gql)
    }

    /// Attach credentials for future publishing to a registry. Use in combination with publish.
    async fn with_registry_auth(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Registry's address to bind the authentication to. Formatted as [host]/[user]/[repo]:[tag] (e.g. 127.0.0.1:5001/app)."
        )]
        address: String,
        #[graphql(desc = "The username to authenticate with.")] username: String,
        #[graphql(desc = "The API key, password or token to authenticate to this registry.")]
        secret: ID,
    ) -> Result<Container> {
        let secret = load(engine(ctx), &secret, Kind::Secret).map_err(gql)?;
        Ok(self.then(
            ctx,
            ops::WithRegistryAuth {
                parent: self.parent(),
                address,
                username,
                secret: secret.digest,
            },
        ))
    }

    /// Retrieves this container without the registry authentication of a given address.
    async fn without_registry_auth(&self, ctx: &Context<'_>, address: String) -> Container {
        self.then(
            ctx,
            ops::WithoutRegistryAuth {
                parent: self.parent(),
                address,
            },
        )
    }

    /// Reads the container from an OCI tarball.
    async fn import(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "File to read the container from.")] source: ID,
        #[graphql(default = "")] tag: String,
    ) -> Result<Container> {
        let source = load(engine(ctx), &source, Kind::File).map_err(gql)?;
        Ok(self.then(
            ctx,
            ops::Import {
                source: source.digest,
                tag,
            },
        ))
    }

    // ---- Tier 2: inspection, undo helpers, symlinks, files, metadata

    /// The standard output and standard error of the last executed command, interleaved as it wrote them. Returns an error if no command was executed.
    async fn combined_output(&self, ctx: &Context<'_>) -> Result<String> {
        let exec = self.exec(ctx).await?;
        Ok(match &exec.combined {
            Some(combined) => combined.clone(),
            None => format!("{}{}", exec.stdout, exec.stderr),
        })
    }

    /// Whether a path exists in the container's filesystem (mounts included), of the expected type when given. A symlink counts as what it points to unless doNotFollowSymlinks is set.
    async fn exists(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The path to look for (e.g., \"/file.txt\"), relative to the working directory."
        )]
        path: String,
        #[graphql(
            desc = "The type the path must have (REGULAR_TYPE, DIRECTORY_TYPE or SYMLINK_TYPE)."
        )]
        expected_type: Option<ExistsType>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Look at a symlink itself rather than at what it points to."
        )]
        do_not_follow_symlinks: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Replace \"${VAR}\" or \"$VAR\" in the path from the container's environment variables."
        )]
        expand: Option<bool>,
    ) -> Result<bool> {
        let follow = !do_not_follow_symlinks.unwrap_or(false);
        let stat = engine(ctx)
            .container_stat(self.0.digest, &path, follow, expand.unwrap_or(false))
            .await
            .map_err(gql)?;
        Ok(match (stat, expected_type) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(stat), Some(kind)) => stat.file_type == kind.into(),
        })
    }

    /// The status of a path in the container's filesystem (mounts included): type, name, permissions and size.
    async fn stat(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The path to look at (e.g., \"/file.txt\"), relative to the working directory."
        )]
        path: String,
        #[graphql(
            default_with = "Some(false)",
            desc = "Look at a symlink itself rather than at what it points to."
        )]
        do_not_follow_symlinks: Option<bool>,
    ) -> Result<Option<Stat>> {
        let follow = !do_not_follow_symlinks.unwrap_or(false);
        let stat = engine(ctx)
            .container_stat(self.0.digest, &path, follow, false)
            .await
            .map_err(gql)?
            .ok_or_else(|| gql(gantry_core::Error::NotFound { path: path.clone() }))?;
        Ok(Some(stat.into()))
    }

    /// The container's labels, sorted by name.
    async fn labels(&self, ctx: &Context<'_>) -> Result<Vec<Label>> {
        let state = self.state(ctx).await?;
        Ok(state
            .config
            .labels
            .iter()
            .map(|(name, value)| Label {
                name: name.clone(),
                value: value.clone(),
            })
            .collect())
    }

    /// This container without the given label.
    async fn without_label(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The label to remove.")] name: String,
    ) -> Container {
        self.then(
            ctx,
            ops::WithoutLabel {
                parent: self.parent(),
                name,
            },
        )
    }

    /// This container with an OCI annotation for its image manifest. gantry cannot write annotations into images yet: publishing or exporting a container that has some fails.
    async fn with_annotation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The annotation's name.")] name: String,
        #[graphql(desc = "The annotation's value.")] value: String,
    ) -> Container {
        self.then(
            ctx,
            ops::WithAnnotation {
                parent: self.parent(),
                name,
                value: Some(value),
            },
        )
    }

    /// This container without the given OCI annotation.
    async fn without_annotation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The annotation to remove.")] name: String,
    ) -> Container {
        self.then(
            ctx,
            ops::WithAnnotation {
                parent: self.parent(),
                name,
                value: None,
            },
        )
    }

    /// This container with the given files copied into the directory at path, each by its own name.
    async fn with_files(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The directory to copy the files into (e.g., \"/src\").")] path: String,
        #[graphql(desc = "The files to copy.")] sources: Vec<ID>,
        #[graphql(desc = "The permissions to give the copied files (e.g., 0600).")]
        permissions: Option<i32>,
        #[graphql(
            default_with = "Some(String::new())",
            desc = "A user:group to own the copied files (numeric in gantry)."
        )]
        owner: Option<String>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Replace \"${VAR}\" or \"$VAR\" in the path from the container's environment variables."
        )]
        expand: Option<bool>,
    ) -> Result<Container> {
        let sources = super::directory::load_all(ctx, &sources, Kind::File)?;
        Ok(self.then(
            ctx,
            ops::WithFiles {
                parent: self.parent(),
                path,
                sources,
                permissions: permissions.map(|mode| mode as u32),
                owner: owner.unwrap_or_default(),
                expand: expand.unwrap_or(false),
            },
        ))
    }

    /// This container without the file at the given path (a missing path is not an error).
    async fn without_file(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The file to remove (e.g., \"/file.txt\").")] path: String,
        #[graphql(
            default_with = "Some(false)",
            desc = "Replace \"${VAR}\" or \"$VAR\" in the path from the container's environment variables."
        )]
        expand: Option<bool>,
    ) -> Container {
        self.without_paths(ctx, vec![path], expand)
    }

    /// This container without the files at the given paths (missing paths are not an error).
    async fn without_files(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The files to remove (e.g., [\"/file.txt\"]).")] paths: Vec<String>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Replace \"${VAR}\" or \"$VAR\" in the paths from the container's environment variables."
        )]
        expand: Option<bool>,
    ) -> Container {
        self.without_paths(ctx, paths, expand)
    }

    /// This container without the directory at the given path and what is in it (a missing path is not an error).
    async fn without_directory(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The directory to remove (e.g., \"/src\").")] path: String,
        #[graphql(
            default_with = "Some(false)",
            desc = "Replace \"${VAR}\" or \"$VAR\" in the path from the container's environment variables."
        )]
        expand: Option<bool>,
    ) -> Container {
        self.without_paths(ctx, vec![path], expand)
    }

    /// This container with a symbolic link at linkName pointing to target (kept as written).
    async fn with_symlink(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the link points to (e.g., \"/existing/file\").")] target: String,
        #[graphql(
            desc = "Where the link is created (e.g., \"/new-file-link\"), relative to the working directory."
        )]
        link_name: String,
        #[graphql(
            default_with = "Some(false)",
            desc = "Replace \"${VAR}\" or \"$VAR\" in both paths from the container's environment variables."
        )]
        expand: Option<bool>,
    ) -> Container {
        self.then(
            ctx,
            ops::ContainerWithSymlink {
                parent: self.parent(),
                target,
                link_name,
                expand: expand.unwrap_or(false),
            },
        )
    }

    /// This container without an entrypoint.
    async fn without_entrypoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Keep the default arguments, which are otherwise cleared too."
        )]
        keep_default_args: Option<bool>,
    ) -> Container {
        self.then(
            ctx,
            ops::WithEntrypoint {
                parent: self.parent(),
                args: Vec::new(),
                keep_default_args: keep_default_args.unwrap_or(false),
            },
        )
    }

    /// This container without default arguments.
    async fn without_default_args(&self, ctx: &Context<'_>) -> Container {
        self.then(
            ctx,
            ops::WithDefaultArgs {
                parent: self.parent(),
                args: Vec::new(),
            },
        )
    }

    /// This container with the image's default user (root).
    async fn without_user(&self, ctx: &Context<'_>) -> Container {
        self.then(
            ctx,
            ops::WithUser {
                parent: self.parent(),
                name: String::new(),
            },
        )
    }

    /// This container without a working directory (commands run in /).
    async fn without_workdir(&self, ctx: &Context<'_>) -> Container {
        self.then(
            ctx,
            ops::WithoutWorkdir {
                parent: self.parent(),
            },
        )
    }

    /// This container without the given secret variable (a plain variable of the same name stays).
    async fn without_secret_variable(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The variable to remove.")] name: String,
    ) -> Container {
        self.then(
            ctx,
            ops::WithoutSecretVariable {
                parent: self.parent(),
                name,
            },
        )
    }

    /// This container with an environment variable that later commands see but that is in no cache key: changing its value alone does not re-run cached commands. It is not part of the image configuration.
    async fn with_volatile_variable(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The variable's name (e.g., \"CI_RUN_ID\").")] name: String,
        #[graphql(desc = "The variable's value.")] value: String,
    ) -> Container {
        self.then(
            ctx,
            ops::WithVolatileVariable {
                parent: self.parent(),
                name,
                value: Some(value),
            },
        )
    }

    /// This container without the given volatile variable.
    async fn without_volatile_variable(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The variable to remove.")] name: String,
    ) -> Container {
        self.then(
            ctx,
            ops::WithVolatileVariable {
                parent: self.parent(),
                name,
                value: None,
            },
        )
    }

    /// This container with the variables of an env file set (values read with quotes removed and references expanded).
    async fn with_env_file_variables(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The env file to read.")] source: ID,
    ) -> Result<Container> {
        let source = load(engine(ctx), &source, Kind::EnvFile).map_err(gql)?;
        Ok(self.then(
            ctx,
            ops::WithEnvFileVariables {
                parent: self.parent(),
                source: source.digest,
            },
        ))
    }

    /// A container that fails with the given message wherever it is used. An empty message changes nothing.
    async fn with_error(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The error's message.")] err: String,
    ) -> Container {
        if err.is_empty() {
            return self.clone();
        }
        self.then(
            ctx,
            ops::ContainerWithError {
                parent: self.parent(),
                message: err,
            },
        )
    }

    /// Writes the container as an image named name into the image store of the machine gantry runs containers on (the Docker daemon, for the Docker runtime).
    async fn export_image(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The image's name (e.g., \"my-app:latest\").")] name: String,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "Not supported by gantry yet; must be empty."
        )]
        platform_variants: Option<Vec<ID>>,
        #[graphql(desc = "Ignored: the image store keeps layers uncompressed.")] forced_compression: Option<ImageLayerCompression>,
        #[graphql(
            default_with = "Some(ImageMediaTypes::OciMediaTypes)",
            desc = "Ignored: the image store decides."
        )]
        media_types: Option<ImageMediaTypes>,
    ) -> Result<Void> {
        let _ = (forced_compression, media_types);
        if !platform_variants.unwrap_or_default().is_empty() {
            return Err(gql(gantry_core::Error::Unsupported {
                message: "platformVariants are not supported by gantry yet".into(),
            }));
        }
        engine(ctx)
            .export_image(self.0.digest, &name)
            .await
            .map_err(gql)?;
        Ok(Void)
    }
}

impl Container {
    fn without_paths(
        &self,
        ctx: &Context<'_>,
        paths: Vec<String>,
        expand: Option<bool>,
    ) -> Container {
        self.then(
            ctx,
            ops::WithoutPaths {
                parent: self.parent(),
                paths,
                expand: expand.unwrap_or(false),
            },
        )
    }
}

/// `Syncer.sync` and `Exportable.export` when selected through the
/// interfaces (which pass only the interface's arguments).
impl Container {
    pub(crate) async fn sync_as_syncer(&self, ctx: &Context<'_>) -> Result<ID> {
        self.sync(ctx).await
    }

    pub(crate) async fn export_as_exportable(
        &self,
        ctx: &Context<'_>,
        path: String,
    ) -> Result<String> {
        self.export(
            ctx,
            path,
            Vec::new(),
            None,
            ImageMediaTypes::OciMediaTypes,
            false,
        )
        .await
    }
}
