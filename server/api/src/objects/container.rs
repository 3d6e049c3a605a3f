//! `Container`: an OCI container's recipe. `with…` fields extend it lazily.

use std::sync::Arc;

use async_graphql::{Context, Object, Result, ID};
use gantry_core::ops::ExecArgs;
use gantry_core::{ops, Kind, Node, Op};

use super::service::{self, Port, PortForward, Service};
use super::{
    add, client, engine, expected_type, load_arg, unsupported, CacheSharingMode, Directory,
    ExistsType, File, ImageLayerCompression, ImageMediaTypes, Label, NetworkProtocol,
    RegistryProtocol, ReturnType, Stat, Void, FILE_MODE, SECRET_MODE,
};
use crate::error::gql;
use crate::ids::format_id;

#[derive(Clone)]
pub(crate) struct Container(pub(crate) Arc<Node>);

/// Image healthcheck configuration.
pub(crate) struct HealthcheckConfig(gantry_core::runtime::Healthcheck);

#[Object]
impl HealthcheckConfig {
    /// Healthcheck command arguments.
    async fn args(&self) -> &[String] {
        &self.0.args
    }

    /// If true, run the command using the container's shell.
    async fn shell(&self) -> bool {
        self.0.shell
    }

    /// Interval between running healthcheck.
    async fn interval(&self) -> &str {
        &self.0.interval
    }

    /// Healthcheck timeout.
    async fn timeout(&self) -> &str {
        &self.0.timeout
    }

    /// StartPeriod allows for failures during container initialization.
    async fn start_period(&self) -> &str {
        &self.0.start_period
    }

    /// StartInterval configures the duration between checks during the startup period.
    async fn start_interval(&self) -> &str {
        &self.0.start_interval
    }

    /// The maximum number of consecutive failures before the container is marked as unhealthy.
    async fn retries(&self) -> i32 {
        i32::try_from(self.0.retries).unwrap_or(i32::MAX)
    }
}

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

/// The arguments `asService` and `up` share about what the service runs.
struct ServiceArgs {
    args: Option<Vec<String>>,
    use_entrypoint: Option<bool>,
    expand: Option<bool>,
    insecure_root_capabilities: Option<bool>,
}

/// Services have no nested sessions; `what` names the
/// field in the error.
pub(crate) fn refuse_nesting(nesting: Option<bool>, what: &str) -> Result<()> {
    if nesting.unwrap_or_default() {
        return Err(unsupported(
            &format!("{what}(experimentalPrivilegedNesting: true)"),
            "only withExec and terminals give a command the API (a nested session); run \
             the nested pipeline from a withExec step",
        ));
    }
    Ok(())
}

fn unsupported_expand(expand: Option<bool>) -> Result<()> {
    if expand.unwrap_or_default() {
        return Err(unsupported(
            "expand: true",
            "expand the value in your program",
        ));
    }
    Ok(())
}

/// An `owner:` argument with `inheritOwner`, checked as Dagger checks it.
pub(crate) struct OwnerArgument {
    pub(crate) owner: String,
    pub(crate) inherit: bool,
}

pub(crate) fn owner_argument(
    owner: Option<String>,
    inherit_owner: Option<bool>,
) -> Result<OwnerArgument> {
    let owner = owner.unwrap_or_default();
    let inherit = inherit_owner.unwrap_or_default();
    if inherit && !owner.is_empty() {
        return Err(gql(gantry_core::Error::InvalidArgument {
            message: "cannot set both owner and inheritOwner; give one".into(),
        }));
    }
    Ok(OwnerArgument { owner, inherit })
}

/// The names of the arguments the request gives the current field (to
/// tell an argument left out from one given its default value).
fn given_arguments(ctx: &Context<'_>) -> Vec<&'static str> {
    let given = ctx.field().arguments().unwrap_or_default();
    ["owner", "sharing", "source"]
        .into_iter()
        .filter(|name| given.iter().any(|(given, _)| given.as_str() == *name))
        .collect()
}

/// What a cache volume was created with (`cacheVolume(source:, sharing:,
/// owner:)`), for `withMountedCache` to fall back on.
struct VolumeDefaults {
    sharing: gantry_core::ops::Sharing,
    owner: String,
    source: Option<gantry_core::Digest>,
}

fn volume_defaults(cache: &Node) -> VolumeDefaults {
    match &cache.op {
        Op::CacheVolume(volume) => VolumeDefaults {
            sharing: volume.sharing.unwrap_or_default(),
            owner: volume.owner.clone(),
            source: volume.source,
        },
        _ => VolumeDefaults {
            sharing: gantry_core::ops::Sharing::Shared,
            owner: String::new(),
            source: None,
        },
    }
}

/// Refuses the registry options gantry does not implement (Docker's daemon
/// decides how it reaches a registry), naming each.
fn refuse_registry_options(
    field: &str,
    protocol: Option<RegistryProtocol>,
    insecure_skip_tls_verify: Option<bool>,
) -> Result<()> {
    if protocol.is_some() {
        return Err(unsupported(
            &format!("{field}(protocol:)"),
            "Docker's daemon picks HTTP or HTTPS: list a plain-HTTP registry under insecure-registries in its daemon.json (loopback registries already are)",
        ));
    }
    if insecure_skip_tls_verify.unwrap_or_default() {
        return Err(unsupported(
            &format!("{field}(insecureSkipTLSVerify: true)"),
            "configure the registry's certificate or insecure-registries in Docker's daemon.json",
        ));
    }
    Ok(())
}

fn refuse_platform_variants(field: &str, variants: Option<Vec<ID>>) -> Result<()> {
    if variants.is_some_and(|variants| !variants.is_empty()) {
        return Err(unsupported(
            &format!("{field}(platformVariants:)"),
            "gantry builds one platform per image; publish or export each platform's image on its own",
        ));
    }
    Ok(())
}

/// The image tarball format `export`/`asTarball` arguments ask for.
fn image_format(
    field: &str,
    platform_variants: Option<Vec<ID>>,
    forced_compression: Option<ImageLayerCompression>,
    media_types: Option<ImageMediaTypes>,
) -> Result<ops::ImageFormat> {
    refuse_platform_variants(field, platform_variants)?;
    let compression = match forced_compression {
        None => ops::Compression::Gzip,
        Some(compression) => match compression.tarball_compression() {
            Some(compression) => compression,
            None => {
                return Err(unsupported(
                    &format!("{field}(forcedCompression: {})", compression.name()),
                    "use Gzip or Uncompressed",
                ))
            }
        },
    };
    Ok(ops::ImageFormat {
        media_types: media_types.unwrap_or(ImageMediaTypes::OciMediaTypes).into(),
        compression,
    })
}

/// `publish` goes through Docker's daemon, which pushes gzip layers with
/// Docker media types: asking for anything else is refused.
fn refuse_push_format(
    ctx: &Context<'_>,
    forced_compression: Option<ImageLayerCompression>,
    media_types: Option<ImageMediaTypes>,
) -> Result<()> {
    if let Some(compression) = forced_compression {
        if compression.tarball_compression() != Some(ops::Compression::Gzip) {
            return Err(unsupported(
                &format!("publish(forcedCompression: {})", compression.name()),
                "Docker's daemon pushes gzip layers; export the image with asTarball or export to choose",
            ));
        }
    }
    let explicit = ctx
        .field()
        .arguments()
        .unwrap_or_default()
        .iter()
        .any(|(name, _)| name.as_str() == "mediaTypes");
    if explicit && media_types.is_some_and(|types| types.is_oci()) {
        return Err(unsupported(
            "publish(mediaTypes: OCIMediaTypes)",
            "Docker's daemon pushes Docker media types; leave mediaTypes out or use DockerMediaTypes",
        ));
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

    /// `asService`'s node (also `up`'s).
    fn service(&self, ctx: &Context<'_>, how: ServiceArgs) -> Service {
        Service(add(
            ctx,
            ops::AsService {
                container: self.parent(),
                args: how.args.unwrap_or_default(),
                use_entrypoint: how.use_entrypoint.unwrap_or_default(),
                expand: how.expand.unwrap_or_default(),
                insecure_root_capabilities: how.insecure_root_capabilities.unwrap_or_default(),
            },
        ))
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
        #[graphql(
            desc = "A registry running as a service, which the address names by the service's hostname and the registry's port (e.g. HOSTNAME:5000/app:v1); it is started for the pull and reached over plain HTTP.",
            directive = expected_type::apply("Service".into())
        )]
        registry_service: Option<ID>,
        #[graphql(desc = "Not supported by gantry: Docker's daemon chooses; must be null.")]
        protocol: Option<RegistryProtocol>,
        #[graphql(
            default_with = "Some(false)",
            name = "insecureSkipTLSVerify",
            desc = "Not supported by gantry: configure Docker's daemon; must be false."
        )]
        insecure_skip_tls_verify: Option<bool>,
    ) -> Result<Container> {
        refuse_registry_options("from", protocol, insecure_skip_tls_verify)?;
        let registry_service = registry_service
            .map(|id| load_arg(ctx, "registryService", &id, Kind::Service))
            .transpose()?
            .map(|service| service.digest);
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
                registry_service,
            },
        ))
    }

    /// Retrieves this container with its rootfs replaced by the given directory.
    async fn with_rootfs(
        &self,
        ctx: &Context<'_>,
        #[graphql(directive = expected_type::apply("Directory".into()))] directory: ID,
    ) -> Result<Container> {
        let directory = load_arg(ctx, "directory", &directory, Kind::Directory)?;
        Ok(self.then(
            ctx,
            ops::WithRootfs {
                parent: self.parent(),
                directory: directory.digest,
            },
        ))
    }

    /// The platform this container executes and publishes as.
    async fn platform(&self) -> super::query::Platform {
        super::query::Platform(gantry_core::runtime::host_platform())
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
        #[graphql(
            default_with = "Some(false)",
            desc = "Prepend the container's entrypoint to args."
        )]
        use_entrypoint: Option<bool>,
        #[graphql(
            default_with = "Some(String::new())",
            desc = "Content to write to the command's standard input."
        )]
        stdin: Option<String>,
        #[graphql(
            default_with = "Some(String::new())",
            desc = "Redirect the command's standard input from a file in the container."
        )]
        redirect_stdin: Option<String>,
        #[graphql(
            default_with = "Some(String::new())",
            desc = "Redirect the command's standard output to a file in the container."
        )]
        redirect_stdout: Option<String>,
        #[graphql(
            default_with = "Some(String::new())",
            desc = "Redirect the command's standard error to a file in the container."
        )]
        redirect_stderr: Option<String>,
        #[graphql(
            default_with = "Some(ReturnType::Success)",
            desc = "Exit codes this command is allowed to exit with without error."
        )]
        expect: Option<ReturnType>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Give the command the API: a session of its own (GANTRY_SESSION_PORT/TOKEN and DAGGER_SESSION_PORT/TOKEN, on 127.0.0.1), with the command on the host's network. Its clients have no host: the engine's files and environment are not theirs."
        )]
        experimental_privileged_nesting: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Run the command with every root capability the engine holds, close to Docker's --privileged: nothing of /proc masked, no seccomp or AppArmor confinement, every device allowed. The command can then change the host it runs on: use it only for a command you trust that needs it (mounting filesystems, nested containers)."
        )]
        insecure_root_capabilities: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Replace ${VAR} or $VAR in the args according to the current environment variables defined in the container."
        )]
        expand: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Run without an init process. gantry never starts one, so every command runs this way."
        )]
        no_init: Option<bool>,
    ) -> Result<Container> {
        // gantry runs the command itself as PID 1 (no init process), which
        // is what noInit: true asks for; see docs/compatibility.md.
        let _no_init = no_init;
        let stdin = stdin.unwrap_or_default();
        let redirect_stdin = redirect_stdin.unwrap_or_default();
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
                    use_entrypoint: use_entrypoint.unwrap_or_default(),
                    stdin,
                    redirect_stdin,
                    redirect_stdout: redirect_stdout.unwrap_or_default(),
                    redirect_stderr: redirect_stderr.unwrap_or_default(),
                    expect: expect.unwrap_or(ReturnType::Success).into(),
                    expand: expand.unwrap_or_default(),
                    insecure_root_capabilities: insecure_root_capabilities.unwrap_or_default(),
                    experimental_privileged_nesting: experimental_privileged_nesting
                        .unwrap_or_default(),
                },
            },
        ))
    }

    /// The output stream of the last executed command. Returns an error if no command was executed.
    async fn stdout(&self, ctx: &Context<'_>) -> Result<String> {
        let exec = self.exec(ctx).await?;
        capped_output("stdout", &exec.stdout)
    }

    /// The error stream of the last executed command. Returns an error if no command was executed.
    async fn stderr(&self, ctx: &Context<'_>) -> Result<String> {
        let exec = self.exec(ctx).await?;
        capped_output("stderr", &exec.stderr)
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
            default_with = "Some(false)",
            desc = "Replace ${VAR} or $VAR in the value according to the current environment variables defined in the container."
        )]
        expand: Option<bool>,
    ) -> Container {
        self.then(
            ctx,
            ops::WithEnvVariable {
                parent: self.parent(),
                name,
                value,
                expand: expand.unwrap_or_default(),
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
        #[graphql(directive = expected_type::apply("Secret".into()))] secret: ID,
    ) -> Result<Container> {
        let secret = load_arg(ctx, "secret", &secret, Kind::Secret)?;
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
        #[graphql(default_with = "Some(false)")] expand: Option<bool>,
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
            default_with = "Some(false)",
            desc = "Don't reset the default arguments when setting the entrypoint."
        )]
        keep_default_args: Option<bool>,
    ) -> Container {
        self.then(
            ctx,
            ops::WithEntrypoint {
                parent: self.parent(),
                args,
                keep_default_args: keep_default_args.unwrap_or_default(),
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

    /// Set the default command to invoke for the container's terminal API.
    async fn with_default_terminal_cmd(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The args of the command.")] args: Vec<String>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Give the terminal command the API: a session of its own (GANTRY_SESSION_PORT/TOKEN and DAGGER_SESSION_PORT/TOKEN, on 127.0.0.1), with the command on the host's network. Its clients have no host: the engine's files and environment are not theirs."
        )]
        experimental_privileged_nesting: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Run the terminal command with every root capability the engine holds, close to Docker's --privileged: nothing of /proc masked, no seccomp or AppArmor confinement, every device allowed. It can then change the host it runs on: use it only for a command you trust that needs it."
        )]
        insecure_root_capabilities: Option<bool>,
    ) -> Result<Container> {
        Ok(self.then(
            ctx,
            ops::WithDefaultTerminalCmd {
                parent: self.parent(),
                args,
                insecure_root_capabilities: insecure_root_capabilities.unwrap_or_default(),
                experimental_privileged_nesting: experimental_privileged_nesting
                    .unwrap_or_default(),
            },
        ))
    }

    /// Opens an interactive terminal for this container using its configured default terminal command if not overridden by args (or sh as a fallback default). The terminal is the one of the client that owns the session (`gantry run`, `gantry call` in a terminal); elsewhere the call fails with an error naming that fix. Returns this container unchanged once the shell exits.
    async fn terminal(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "If set, override the container's default terminal command and invoke these command arguments instead."
        )]
        cmd: Option<Vec<String>>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Give the terminal command the API: a session of its own (GANTRY_SESSION_PORT/TOKEN and DAGGER_SESSION_PORT/TOKEN, on 127.0.0.1), with the command on the host's network. Its clients have no host: the engine's files and environment are not theirs."
        )]
        experimental_privileged_nesting: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Run the terminal command with every root capability the engine holds, close to Docker's --privileged: nothing of /proc masked, no seccomp or AppArmor confinement, every device allowed. It can then change the host it runs on: use it only for a command you trust that needs it."
        )]
        insecure_root_capabilities: Option<bool>,
    ) -> Result<Container> {
        engine(ctx)
            .terminal(
                self.parent(),
                &cmd.unwrap_or_default(),
                insecure_root_capabilities.unwrap_or_default(),
                experimental_privileged_nesting.unwrap_or_default(),
                "Container.terminal",
            )
            .await
            .map_err(gql)?;
        Ok(self.clone())
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

    /// Retrieves this container with the given Docker health check. The check is recorded in the image config; gantry does not run it: a service is ready when its exposed ports accept connections.
    #[allow(clippy::too_many_arguments)]
    async fn with_docker_healthcheck(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Healthcheck command to execute within the container.")] args: Vec<String>,
        #[graphql(
            desc = "When true, command must be a single element, which is run using the container's shell"
        )]
        shell: Option<bool>,
        #[graphql(desc = "Interval between running healthcheck. Example: \"30s\"")]
        interval: Option<String>,
        #[graphql(desc = "Healthcheck timeout. Example: \"3s\"")] timeout: Option<String>,
        #[graphql(
            desc = "StartPeriod allows for failures during container initialization. Example: \"0s\""
        )]
        start_period: Option<String>,
        #[graphql(
            desc = "StartInterval configures the duration between checks during the startup period. Example: \"5s\""
        )]
        start_interval: Option<String>,
        #[graphql(
            desc = "The maximum number of consecutive failures before the container is marked as unhealthy. Example: \"3\""
        )]
        retries: Option<i32>,
    ) -> Container {
        let healthcheck = gantry_core::runtime::Healthcheck {
            args,
            shell: shell.unwrap_or(false),
            interval: interval.unwrap_or_default(),
            timeout: timeout.unwrap_or_default(),
            start_period: start_period.unwrap_or_default(),
            start_interval: start_interval.unwrap_or_default(),
            retries: i64::from(retries.unwrap_or(0)),
        };
        self.then(
            ctx,
            ops::WithHealthcheck {
                parent: self.parent(),
                healthcheck: Some(healthcheck),
            },
        )
    }

    /// Retrieves this container without a configured docker healthcheck command.
    async fn without_docker_healthcheck(&self, ctx: &Context<'_>) -> Container {
        self.then(
            ctx,
            ops::WithHealthcheck {
                parent: self.parent(),
                healthcheck: None,
            },
        )
    }

    /// Retrieves this container's configured docker healthcheck.
    async fn docker_healthcheck(&self, ctx: &Context<'_>) -> Result<Option<HealthcheckConfig>> {
        Ok(self
            .state(ctx)
            .await?
            .config
            .healthcheck
            .clone()
            .map(HealthcheckConfig))
    }

    /// Retrieves the value of the specified label.
    async fn label(&self, ctx: &Context<'_>, name: String) -> Result<Option<String>> {
        Ok(self.state(ctx).await?.config.labels.get(&name).cloned())
    }

    /// Retrieves this container plus a directory written at the given path.
    async fn with_directory(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Location of the written directory (e.g., \"/tmp/directory\").")]
        path: String,
        #[graphql(
            desc = "Identifier of the directory to write",
            directive = expected_type::apply("Directory".into())
        )]
        source: ID,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "Patterns to exclude in the written directory (e.g. [\"node_modules/**\", \".gitignore\", \".git/\"])."
        )]
        exclude: Option<Vec<String>>,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "Patterns to include in the written directory (e.g. [\"*.go\", \"go.mod\", \"go.sum\"])."
        )]
        include: Option<Vec<String>>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Apply the .gitignore rules found in the directory when writing it."
        )]
        gitignore: Option<bool>,
        #[graphql(
            default_with = "Some(String::new())",
            desc = "A user:group to set for the directory and its contents. The user and group can either be an ID (1000:1000) or a name (foo:bar), looked up in the container. If the group is omitted, it defaults to the same as the user."
        )]
        owner: Option<String>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Set the owner to the container's current user."
        )]
        inherit_owner: Option<bool>,
        #[graphql(default_with = "Some(false)")] expand: Option<bool>,
        #[graphql(
            desc = "Permission given to the written directory and its contents (e.g., 0755).",
            validator(custom = "super::file_mode")
        )]
        permissions: Option<i32>,
    ) -> Result<Container> {
        unsupported_expand(expand)?;
        let owner = owner_argument(owner, inherit_owner)?;
        let source = load_arg(ctx, "source", &source, Kind::Directory)?;
        Ok(self.then(
            ctx,
            ops::WithContent {
                parent: self.parent(),
                path,
                source: source.digest,
                permissions: permissions.map(|mode| mode as u32),
                owner: owner.owner,
                include: include.unwrap_or_default(),
                exclude: exclude.unwrap_or_default(),
                inherit_owner: owner.inherit,
                gitignore: gitignore.unwrap_or_default(),
            },
        ))
    }

    /// Retrieves this container plus the contents of the given file copied to the given path.
    async fn with_file(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Location of the copied file (e.g., \"/tmp/file.txt\").")] path: String,
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
            desc = "A user:group to set for the file (IDs or names looked up in the container)."
        )]
        owner: Option<String>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Set the owner to the container's current user."
        )]
        inherit_owner: Option<bool>,
        #[graphql(default_with = "Some(false)")] expand: Option<bool>,
    ) -> Result<Container> {
        unsupported_expand(expand)?;
        let owner = owner_argument(owner, inherit_owner)?;
        let source = load_arg(ctx, "source", &source, Kind::File)?;
        Ok(self.then(
            ctx,
            ops::WithContent {
                parent: self.parent(),
                path,
                source: source.digest,
                permissions: permissions.map(|mode| mode as u32),
                owner: owner.owner,
                include: Vec::new(),
                exclude: Vec::new(),
                inherit_owner: owner.inherit,
                gitignore: false,
            },
        ))
    }

    /// Return a new container snapshot, with a file added to its filesystem with text content.
    async fn with_new_file(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Location of the written file (e.g., \"/tmp/file.txt\").")] path: String,
        #[graphql(desc = "Contents of the new file. Example: \"Hello world!\"")] contents: String,
        #[graphql(
            default_with = "Some(FILE_MODE)",
            desc = "Permissions of the new file. Example: 0600",
            validator(custom = "super::file_mode")
        )]
        permissions: Option<i32>,
        #[graphql(
            default_with = "Some(String::new())",
            desc = "A user:group to set for the file (IDs or names looked up in the container)."
        )]
        owner: Option<String>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Set the owner to the container's current user."
        )]
        inherit_owner: Option<bool>,
        #[graphql(default_with = "Some(false)")] expand: Option<bool>,
    ) -> Result<Container> {
        unsupported_expand(expand)?;
        let owner = owner_argument(owner, inherit_owner)?;
        let file = add(
            ctx,
            ops::NewFile {
                contents,
                permissions: permissions.unwrap_or(FILE_MODE) as u32,
            },
        );
        Ok(self.then(
            ctx,
            ops::WithContent {
                parent: self.parent(),
                path,
                source: file.digest,
                permissions: None,
                owner: owner.owner,
                include: Vec::new(),
                exclude: Vec::new(),
                inherit_owner: owner.inherit,
                gitignore: false,
            },
        ))
    }

    /// Retrieves a file at the given path. Mounts are included.
    async fn file(
        &self,
        ctx: &Context<'_>,
        path: String,
        #[graphql(default_with = "Some(false)")] expand: Option<bool>,
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
        #[graphql(default_with = "Some(false)")] expand: Option<bool>,
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
        #[graphql(
            desc = "Identifier of the cache volume to mount.",
            directive = expected_type::apply("CacheVolume".into())
        )]
        cache: ID,
        #[graphql(
            desc = "Identifier of the directory to use as the cache volume's root.",
            directive = expected_type::apply("Directory".into())
        )]
        source: Option<ID>,
        #[graphql(
            default_with = "Some(CacheSharingMode::Shared)",
            desc = "Sharing mode of the cache volume."
        )]
        sharing: Option<CacheSharingMode>,
        #[graphql(
            default_with = "Some(String::new())",
            desc = "A user:group to set for the mounted cache directory when the volume is first created (IDs or names looked up in the container)."
        )]
        owner: Option<String>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Set the owner to the container's current user."
        )]
        inherit_owner: Option<bool>,
        #[graphql(default_with = "Some(false)")] expand: Option<bool>,
    ) -> Result<Container> {
        unsupported_expand(expand)?;
        let cache = load_arg(ctx, "cache", &cache, Kind::CacheVolume)?;
        let source = match source {
            Some(id) => Some(load_arg(ctx, "source", &id, Kind::Directory)?.digest),
            None => None,
        };
        // What withMountedCache leaves out comes from the volume's own
        // cacheVolume(sharing:, owner:, source:).
        let given = given_arguments(ctx);
        let volume = volume_defaults(&cache);
        let owner = match given.contains(&"owner") || inherit_owner.unwrap_or_default() {
            true => owner_argument(owner, inherit_owner)?,
            false => OwnerArgument {
                owner: volume.owner,
                inherit: false,
            },
        };
        let sharing = match given.contains(&"sharing") {
            true => sharing.unwrap_or(CacheSharingMode::Shared).into(),
            false => volume.sharing,
        };
        let source = if given.contains(&"source") {
            source
        } else {
            volume.source
        };
        Ok(self.then(
            ctx,
            ops::WithMountedCache {
                parent: self.parent(),
                path,
                cache: cache.digest,
                source,
                sharing: Some(sharing),
                owner: owner.owner,
                inherit_owner: owner.inherit,
            },
        ))
    }

    /// Retrieves this container plus a directory mounted at the given path.
    async fn with_mounted_directory(
        &self,
        ctx: &Context<'_>,
        path: String,
        #[graphql(directive = expected_type::apply("Directory".into()))] source: ID,
        #[graphql(
            default_with = "Some(String::new())",
            desc = "A user:group to set for the mounted directory and its contents (IDs or names looked up in the container)."
        )]
        owner: Option<String>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Set the owner to the container's current user."
        )]
        inherit_owner: Option<bool>,
        #[graphql(default_with = "Some(false)")] read_only: Option<bool>,
        #[graphql(default_with = "Some(false)")] expand: Option<bool>,
    ) -> Result<Container> {
        unsupported_expand(expand)?;
        let owner = owner_argument(owner, inherit_owner)?;
        let source = load_arg(ctx, "source", &source, Kind::Directory)?;
        Ok(self.then(
            ctx,
            ops::WithMountedDirectory {
                parent: self.parent(),
                path,
                source: source.digest,
                read_only: read_only.unwrap_or_default(),
                owner: owner.owner,
                inherit_owner: owner.inherit,
            },
        ))
    }

    /// Retrieves this container plus a file mounted at the given path.
    async fn with_mounted_file(
        &self,
        ctx: &Context<'_>,
        path: String,
        #[graphql(directive = expected_type::apply("File".into()))] source: ID,
        #[graphql(
            default_with = "Some(String::new())",
            desc = "A user or user:group to set for the mounted file (IDs or names looked up in the container)."
        )]
        owner: Option<String>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Set the owner to the container's current user."
        )]
        inherit_owner: Option<bool>,
        #[graphql(default_with = "Some(false)")] expand: Option<bool>,
    ) -> Result<Container> {
        unsupported_expand(expand)?;
        let owner = owner_argument(owner, inherit_owner)?;
        let source = load_arg(ctx, "source", &source, Kind::File)?;
        Ok(self.then(
            ctx,
            ops::WithMountedFile {
                parent: self.parent(),
                path,
                source: source.digest,
                owner: owner.owner,
                inherit_owner: owner.inherit,
            },
        ))
    }

    /// Retrieves this container plus a secret mounted into a file at the given path.
    async fn with_mounted_secret(
        &self,
        ctx: &Context<'_>,
        path: String,
        #[graphql(directive = expected_type::apply("Secret".into()))] source: ID,
        #[graphql(
            default_with = "Some(String::new())",
            desc = "A user:group to set for the mounted secret (IDs or names looked up in the container)."
        )]
        owner: Option<String>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Set the owner to the container's current user."
        )]
        inherit_owner: Option<bool>,
        #[graphql(
            default_with = "Some(SECRET_MODE)",
            desc = "Permission given to the mounted secret (e.g., 0600)."
        )]
        mode: Option<i32>,
        #[graphql(default_with = "Some(false)")] expand: Option<bool>,
    ) -> Result<Container> {
        unsupported_expand(expand)?;
        let owner = owner_argument(owner, inherit_owner)?;
        let secret = load_arg(ctx, "source", &source, Kind::Secret)?;
        Ok(self.then(
            ctx,
            ops::WithMountedSecret {
                parent: self.parent(),
                path,
                secret: secret.digest,
                mode: mode.unwrap_or(SECRET_MODE) as u32,
                owner: owner.owner,
                inherit_owner: owner.inherit,
            },
        ))
    }

    /// Retrieves this container plus a temporary directory mounted at the given path.
    async fn with_mounted_temp(
        &self,
        ctx: &Context<'_>,
        path: String,
        #[graphql(desc = "Size of the temporary directory in bytes.")] size: Option<i64>,
        #[graphql(default_with = "Some(false)")] expand: Option<bool>,
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
        #[graphql(default_with = "Some(false)")] expand: Option<bool>,
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

    /// Writes the container as an OCI tarball to the destination file path on the host (mode 0600). Returns the absolute path written.
    async fn export(
        &self,
        ctx: &Context<'_>,
        path: String,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "Not supported by gantry (one platform per image); must be empty.",
            directive = expected_type::apply("Container".into())
        )]
        platform_variants: Option<Vec<ID>>,
        #[graphql(
            desc = "Force each layer of the exported image to use the specified compression algorithm (Gzip or Uncompressed in gantry)."
        )]
        forced_compression: Option<ImageLayerCompression>,
        #[graphql(
            default_with = "Some(ImageMediaTypes::OciMediaTypes)",
            desc = "Use the specified media types for the exported image's layers."
        )]
        media_types: Option<ImageMediaTypes>,
        #[graphql(default_with = "Some(false)")] expand: Option<bool>,
    ) -> Result<String> {
        unsupported_expand(expand)?;
        let format = image_format("export", platform_variants, forced_compression, media_types)?;
        let state = self.state(ctx).await?;
        let tarball = engine(ctx)
            .image_tarball(&state, format)
            .await
            .map_err(gql)?;
        let client = client(ctx);
        let target = client.resolve(&path).map_err(gql)?;
        client
            .write_host_file_mode(&target, &tarball, 0o600)
            .map_err(gql)
    }

    /// Package the container state as an OCI image, and return it as a tar archive.
    async fn as_tarball(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "Not supported by gantry (one platform per image); must be empty.",
            directive = expected_type::apply("Container".into())
        )]
        platform_variants: Option<Vec<ID>>,
        #[graphql(
            desc = "Force each layer of the image to use the specified compression algorithm (Gzip or Uncompressed in gantry)."
        )]
        forced_compression: Option<ImageLayerCompression>,
        #[graphql(
            default_with = "Some(ImageMediaTypes::OciMediaTypes)",
            desc = "Use the specified media types for the image's layers."
        )]
        media_types: Option<ImageMediaTypes>,
    ) -> Result<File> {
        let format = image_format(
            "asTarball",
            platform_variants,
            forced_compression,
            media_types,
        )?;
        Ok(File(add(
            ctx,
            ops::AsTarball {
                container: self.parent(),
                format,
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
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "Not supported by gantry (one platform per image); must be empty.",
            directive = expected_type::apply("Container".into())
        )]
        platform_variants: Option<Vec<ID>>,
        #[graphql(desc = "Docker's daemon pushes gzip layers: only Gzip is accepted.")]
        forced_compression: Option<ImageLayerCompression>,
        #[graphql(
            default_with = "Some(ImageMediaTypes::OciMediaTypes)",
            desc = "Docker's daemon pushes Docker media types: OCIMediaTypes is accepted only as the default (see docs/compatibility.md)."
        )]
        media_types: Option<ImageMediaTypes>,
        #[graphql(
            desc = "A registry running as a service, which the address names by the service's hostname and the registry's port (e.g. HOSTNAME:5000/app:v1); it is started for the push and reached over plain HTTP.",
            directive = expected_type::apply("Service".into())
        )]
        registry_service: Option<ID>,
        #[graphql(desc = "Not supported by gantry: Docker's daemon chooses; must be null.")]
        protocol: Option<RegistryProtocol>,
        #[graphql(
            default_with = "Some(false)",
            name = "insecureSkipTLSVerify",
            desc = "Not supported by gantry: configure Docker's daemon; must be false."
        )]
        insecure_skip_tls_verify: Option<bool>,
    ) -> Result<String> {
        refuse_registry_options("publish", protocol, insecure_skip_tls_verify)?;
        refuse_platform_variants("publish", platform_variants)?;
        refuse_push_format(ctx, forced_compression, media_types)?;
        let registry_service = registry_service
            .map(|id| load_arg(ctx, "registryService", &id, Kind::Service))
            .transpose()?
            .map(|service| service.digest);
        engine(ctx)
            .publish(self.0.digest, &address, registry_service)
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
        #[graphql(
            desc = "The API key, password or token to authenticate to this registry.",
            directive = expected_type::apply("Secret".into())
        )]
        secret: ID,
    ) -> Result<Container> {
        let secret = load_arg(ctx, "secret", &secret, Kind::Secret)?;
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
        #[graphql(
            desc = "File to read the container from.",
            directive = expected_type::apply("File".into())
        )]
        source: ID,
        #[graphql(
            default_with = "Some(String::new())",
            desc = "Identifies the tag to import from the archive, if the archive bundles multiple tags."
        )]
        tag: Option<String>,
    ) -> Result<Container> {
        let source = load_arg(ctx, "source", &source, Kind::File)?;
        Ok(self.then(
            ctx,
            ops::Import {
                source: source.digest,
                tag: tag.unwrap_or_default(),
            },
        ))
    }

    // ---- Services and sockets (objects/service.rs)

    /// Expose a network port. Exposed ports serve two purposes: health checks (a service
    /// is ready once its exposed TCP ports accept connections) and naming the ports of
    /// the container's image (its EXPOSE entries).
    async fn with_exposed_port(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Port number to expose. Example: 8080")] port: i32,
        #[graphql(
            default_with = "Some(NetworkProtocol::Tcp)",
            desc = "Network protocol. Example: \"tcp\""
        )]
        protocol: Option<NetworkProtocol>,
        #[graphql(desc = "Port description. Example: \"payment API endpoint\"")]
        description: Option<String>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Skip the health check when run as a service."
        )]
        experimental_skip_healthcheck: Option<bool>,
    ) -> Result<Container> {
        Ok(self.then(
            ctx,
            ops::WithExposedPort {
                parent: self.parent(),
                port: service::port_number(port)?,
                protocol: service::protocol(protocol),
                description,
                skip_healthcheck: experimental_skip_healthcheck.unwrap_or_default(),
            },
        ))
    }

    /// Unexpose a previously exposed port.
    async fn without_exposed_port(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Port number to unexpose")] port: i32,
        #[graphql(
            default_with = "Some(NetworkProtocol::Tcp)",
            desc = "Port protocol to unexpose"
        )]
        protocol: Option<NetworkProtocol>,
    ) -> Result<Container> {
        Ok(self.then(
            ctx,
            ops::WithoutExposedPort {
                parent: self.parent(),
                port: service::port_number(port)?,
                protocol: service::protocol(protocol),
            },
        ))
    }

    /// Retrieves the list of exposed ports.
    ///
    /// This includes ports already exposed by the image, even if not explicitly added with dagger.
    async fn exposed_ports(&self, ctx: &Context<'_>) -> Result<Vec<Port>> {
        let ports = self.state(ctx).await?.ports.clone();
        Ok(service::ports_of(&self.0, ports))
    }

    /// Establish a runtime dependency from a container to a network service.
    ///
    /// The service will be started automatically when needed and detached when it is no longer needed, executing the default command if none is set.
    ///
    /// The service will be reachable from the container via the provided hostname alias.
    ///
    /// The service dependency will also convey to any files or directories produced by the container.
    async fn with_service_binding(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Hostname that will resolve to the target service (only accessible from within this container)"
        )]
        alias: String,
        #[graphql(
            desc = "Identifier of the service container",
            directive = expected_type::apply("Service".into())
        )]
        service: ID,
    ) -> Result<Container> {
        service::check_hostname(&alias)?;
        let service = load_arg(ctx, "service", &service, Kind::Service)?;
        Ok(self.then(
            ctx,
            ops::WithServiceBinding {
                parent: self.parent(),
                alias,
                service: service.digest,
            },
        ))
    }

    /// Turn the container into a Service.
    ///
    /// Be sure to set any exposed ports before this conversion.
    #[allow(
        clippy::too_many_arguments,
        reason = "one argument per GraphQL argument"
    )]
    async fn as_service(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "Command to run instead of the container's default command (e.g., [\"go\", \"run\", \"main.go\"]).\n\nIf empty, the container's default command is used."
        )]
        args: Option<Vec<String>>,
        #[graphql(
            default_with = "Some(false)",
            desc = "If the container has an entrypoint, prepend it to the args."
        )]
        use_entrypoint: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Not supported by gantry for services (withExec and terminals give a command the API); must be false."
        )]
        experimental_privileged_nesting: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Run the service with every root capability the engine holds, close to Docker's --privileged: nothing of /proc masked, no seccomp or AppArmor confinement, every device allowed. It can then change the host it runs on: use it only for a service you trust that needs it."
        )]
        insecure_root_capabilities: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Replace \"${VAR}\" or \"$VAR\" in the args according to the current environment variables defined in the container (e.g. \"/opt/bin:$PATH\")."
        )]
        expand: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "If set, skip the automatic init process injected into containers by default."
        )]
        no_init: Option<bool>,
    ) -> Result<Service> {
        refuse_nesting(experimental_privileged_nesting, "Container.asService")?;
        // gantry injects no init process: noInit asks for what it does anyway.
        let _ = no_init;
        let how = ServiceArgs {
            args,
            use_entrypoint,
            expand,
            insecure_root_capabilities,
        };
        Ok(self.service(ctx, how))
    }

    /// Starts a Service and creates a tunnel that forwards traffic from the caller's network to that service.
    ///
    /// Be sure to set any exposed ports before calling this api.
    #[allow(
        clippy::too_many_arguments,
        reason = "one argument per GraphQL argument"
    )]
    async fn up(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Bind each tunnel port to a random port on the host."
        )]
        random: Option<bool>,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "List of frontend/backend port mappings to forward.\n\nFrontend is the port accepting traffic on the host, backend is the service port."
        )]
        ports: Option<Vec<PortForward>>,
        #[graphql(default_with = "Some(Vec::new())")] args: Option<Vec<String>>,
        #[graphql(default_with = "Some(false)")] use_entrypoint: Option<bool>,
        #[graphql(default_with = "Some(false)")] experimental_privileged_nesting: Option<bool>,
        #[graphql(default_with = "Some(false)")] insecure_root_capabilities: Option<bool>,
        #[graphql(default_with = "Some(false)")] expand: Option<bool>,
        #[graphql(default_with = "Some(false)")] no_init: Option<bool>,
    ) -> Result<Option<Void>> {
        refuse_nesting(experimental_privileged_nesting, "Container.up")?;
        let _ = no_init;
        let how = ServiceArgs {
            args,
            use_entrypoint,
            expand,
            insecure_root_capabilities,
        };
        let service = self.service(ctx, how);
        service::up(ctx, service.0.digest, ports, random).await
    }

    /// Retrieves this container plus a socket forwarded to the given Unix socket path.
    async fn with_unix_socket(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Location of the forwarded Unix socket (e.g., \"/tmp/socket\").")]
        path: String,
        #[graphql(
            desc = "Identifier of the socket to forward.",
            directive = expected_type::apply("Socket".into())
        )]
        source: ID,
        #[graphql(default_with = "Some(String::new())")] owner: Option<String>,
        #[graphql(default_with = "Some(false)")] inherit_owner: Option<bool>,
        #[graphql(default_with = "Some(false)")] expand: Option<bool>,
    ) -> Result<Container> {
        unsupported_expand(expand)?;
        if !owner.unwrap_or_default().is_empty() || inherit_owner.unwrap_or_default() {
            return Err(unsupported(
                "withUnixSocket(owner:/inheritOwner:)",
                "the socket keeps its owner on the host; make it reachable by the container's \
                 user there",
            ));
        }
        let source = load_arg(ctx, "source", &source, Kind::Socket)?;
        Ok(self.then(
            ctx,
            ops::WithUnixSocket {
                parent: self.parent(),
                path,
                source: source.digest,
            },
        ))
    }

    /// Retrieves this container with a previously added Unix socket removed.
    async fn without_unix_socket(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Location of the socket to remove (e.g., \"/tmp/socket\").")] path: String,
        #[graphql(default_with = "Some(false)")] expand: Option<bool>,
    ) -> Result<Container> {
        unsupported_expand(expand)?;
        Ok(self.then(
            ctx,
            ops::WithoutUnixSocket {
                parent: self.parent(),
                path,
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
            name = "expectedType",
            desc = "The type the path must have (REGULAR_TYPE, DIRECTORY_TYPE or SYMLINK_TYPE)."
        )]
        kind: Option<ExistsType>,
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
        Ok(match (stat, kind) {
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
        #[graphql(
            desc = "The files to copy.",
            directive = expected_type::apply("File".into())
        )]
        sources: Vec<ID>,
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
        let sources = super::directory::load_all(ctx, "sources", &sources, Kind::File)?;
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
        #[graphql(
            desc = "The env file to read.",
            directive = expected_type::apply("EnvFile".into())
        )]
        source: ID,
    ) -> Result<Container> {
        let source = load_arg(ctx, "source", &source, Kind::EnvFile)?;
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
            desc = "Not supported by gantry (one platform per image); must be empty.",
            directive = expected_type::apply("Container".into())
        )]
        platform_variants: Option<Vec<ID>>,
        #[graphql(
            desc = "Not supported by gantry: the image store decides how it keeps layers; must be left out."
        )]
        forced_compression: Option<ImageLayerCompression>,
        #[graphql(
            default_with = "Some(ImageMediaTypes::OciMediaTypes)",
            desc = "Not supported by gantry: the image store decides; only the default is accepted."
        )]
        media_types: Option<ImageMediaTypes>,
    ) -> Result<Void> {
        refuse_platform_variants("exportImage", platform_variants)?;
        // The image store decides compression and media types: asking for
        // them is refused rather than ignored.
        if let Some(compression) = forced_compression {
            return Err(unsupported(
                &format!("exportImage(forcedCompression: {})", compression.name()),
                "the image store decides how it keeps layers; export with asTarball or export to choose",
            ));
        }
        if media_types.is_some_and(|types| !types.is_oci()) {
            return Err(unsupported(
                "exportImage(mediaTypes: DockerMediaTypes)",
                "the image store decides; export with asTarball or export to choose",
            ));
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
            None,
            None,
            Some(ImageMediaTypes::OciMediaTypes),
            Some(false),
        )
        .await
    }
}

/// A captured stream, unless it reached the capture cap: then part of it
/// was dropped, and a clear refusal beats a silently cut answer.
fn capped_output(stream: &str, text: &str) -> Result<String> {
    use gantry_core::runtime::OUTPUT_CAP;
    if text.len() < OUTPUT_CAP {
        return Ok(text.to_owned());
    }
    Err(gql(gantry_core::Error::InvalidArgument {
        message: format!(
            "the command's {stream} reached the cap of {} MiB that {stream} returns (the rest was \
             not kept): redirect it to a file (withExec redirectStdout/redirectStderr) and export \
             that file instead",
            OUTPUT_CAP >> 20
        ),
    }))
}
