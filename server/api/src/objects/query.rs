//! The root `Query` type.

use async_graphql::{Context, Object, Result, ID};
use gantry_core::{ops, Digest, Kind};

use super::{
    add, engine, expected_type, load_arg, service, Address, CacheSharingMode, CacheVolume,
    Changeset, Container, DiffStat, Directory, EnvFile, EnvVariable, EnvVariableValue, ErrorObject,
    ErrorValue, Exportable, File, GitRef, GitRepository, Host, JsonValue, Label, Node, Port,
    SearchResult, SearchSubmatch, Secret, Service, Socket, Stat, Syncer, FILE_MODE,
};
use crate::error::gql;
use crate::ids::{
    load, load_value, split_id, AddressId, CacheVolumeId, ChangesetId, ContainerId, DiffStatId,
    DirectoryId, EnvFileId, EnvVariableId, ErrorId, ErrorValueId, ExportableId, FileId, GitRefId,
    GitRepositoryId, HostId, JsonValueId, LabelId, PortId, SearchResultId, SearchSubmatchId,
    SecretId, ServiceId, SocketId, StatId, SyncerId,
};

#[derive(Default)]
pub struct Query;

async fn node_for(ctx: &Context<'_>, id: &str) -> Result<Node> {
    let engine = engine(ctx);
    let (type_name, _) = split_id(id).map_err(gql)?;
    let value = |error| gql(error);
    Ok(match type_name {
        "Host" => Node::Host(Host),
        "EnvVariable" => Node::EnvVariable(env_variable(ctx, id).await?),
        "Port" => Node::Port(service::load_port(ctx, id).await?),
        "Label" => Node::Label(load_value(type_name, id).map_err(value)?),
        "Stat" => Node::Stat(load_value(type_name, id).map_err(value)?),
        "SearchResult" => Node::SearchResult(load_value(type_name, id).map_err(value)?),
        "SearchSubmatch" => Node::SearchSubmatch(load_value(type_name, id).map_err(value)?),
        "DiffStat" => Node::DiffStat(load_value(type_name, id).map_err(value)?),
        "Address" => Node::Address(load_value(type_name, id).map_err(value)?),
        "Error" => Node::Error(load_value(type_name, id).map_err(value)?),
        "ErrorValue" => Node::ErrorValue(load_value(type_name, id).map_err(value)?),
        other => {
            let kind = Kind::from_name(other).ok_or_else(|| {
                gql(gantry_core::Error::UnknownId {
                    kind: "object".into(),
                    id: id.into(),
                })
            })?;
            let node = load(engine, id, kind).map_err(gql)?;
            match kind {
                Kind::Container => Node::Container(Container(node)),
                Kind::Directory => Node::Directory(Directory(node)),
                Kind::File => Node::File(File(node)),
                Kind::Secret => Node::Secret(Secret(node)),
                Kind::CacheVolume => Node::CacheVolume(CacheVolume(node)),
                Kind::Service => Node::Service(Service(node)),
                Kind::Socket => Node::Socket(Socket(node)),
                Kind::GitRepository => Node::GitRepository(GitRepository(node)),
                Kind::GitRef => Node::GitRef(GitRef(node)),
                Kind::Changeset => Node::Changeset(Changeset(node)),
                Kind::EnvFile => Node::EnvFile(EnvFile(node)),
                Kind::JsonValue => Node::JsonValue(JsonValue(node)),
            }
        }
    })
}

/// Loads an `EnvVariable:<container>:<index>` ID. Evaluation of the
/// container happens here because the value is the object's content.
fn env_variable_stub(ctx: &Context<'_>, id: &str) -> Result<EnvVariable> {
    let bad = || {
        gql(gantry_core::Error::UnknownId {
            kind: "EnvVariable".into(),
            id: id.into(),
        })
    };
    let mut parts = id.splitn(3, ':');
    let (_, hex, index) = (parts.next(), parts.next().ok_or_else(bad)?, parts.next());
    let Some(index) = index else {
        // An env file's variable: its ID is its content.
        let value: EnvVariableValue = load_value("EnvVariable", id).map_err(gql)?;
        return Ok(EnvVariable::plain(value.name, value.value));
    };
    let digest = Digest::from_hex(hex).ok_or_else(bad)?;
    let index: usize = index.parse().map_err(|_| bad())?;
    let container = engine(ctx)
        .node_of_kind(&digest, Kind::Container)
        .map_err(gql)?;
    Ok(EnvVariable {
        container: Some(container),
        index,
        name: String::new(),
        value: String::new(),
    })
}

async fn env_variable(ctx: &Context<'_>, id: &str) -> Result<EnvVariable> {
    let mut stub = env_variable_stub(ctx, id)?;
    let Some(container) = &stub.container else {
        return Ok(stub);
    };
    let state = engine(ctx).container(container.digest).await.map_err(gql)?;
    let (name, value) = state.config.env.get(stub.index).cloned().ok_or_else(|| {
        gql(gantry_core::Error::UnknownId {
            kind: "EnvVariable".into(),
            id: id.into(),
        })
    })?;
    stub.name = name;
    stub.value = value;
    Ok(stub)
}

/// The root of the API.
#[Object]
impl Query {
    /// A unique identifier for the root object.
    pub(crate) async fn id(&self) -> ID {
        ID("Query:root".into())
    }

    /// Creates a scratch container, with no image or metadata. To pull an image, follow up with the "from" function.
    async fn container(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Platform to initialize the container with. gantry runs containers of its own machine's platform only."
        )]
        platform: Option<Platform>,
    ) -> Result<Container> {
        if let Some(platform) = &platform {
            refuse_foreign_platform(&platform.0)?;
        }
        Ok(Container(add(
            ctx,
            ops::Scratch {
                platform: platform.map(|p| p.0),
            },
        )))
    }

    /// Creates an empty directory.
    async fn directory(&self, ctx: &Context<'_>) -> Directory {
        Directory(add(ctx, ops::EmptyDirectory {}))
    }

    /// Creates a file with the specified contents.
    async fn file(
        &self,
        ctx: &Context<'_>,
        name: String,
        contents: String,
        #[graphql(
            default_with = "Some(FILE_MODE)",
            validator(custom = "super::file_mode")
        )]
        permissions: Option<i32>,
    ) -> File {
        let file = add(
            ctx,
            ops::NewFile {
                contents,
                permissions: permissions.unwrap_or(FILE_MODE) as u32,
            },
        );
        File(add(
            ctx,
            ops::FileWithName {
                parent: file.digest,
                name,
            },
        ))
    }

    /// The gantry engine version.
    async fn version(&self) -> &'static str {
        crate::VERSION
    }

    /// Queries the host environment.
    async fn host(&self) -> Host {
        Host
    }

    /// Constructs a cache volume for a given cache key.
    async fn cache_volume(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "A string identifier to target this cache volume (e.g., \"modules-cache\")."
        )]
        key: String,
        #[graphql(
            desc = "Identifier of the directory to use as the cache volume's root when it is first created.",
            directive = expected_type::apply("Directory".into())
        )]
        source: Option<ID>,
        #[graphql(
            default_with = "Some(CacheSharingMode::Shared)",
            desc = "Sharing mode of the cache volume, used by withMountedCache when it is given none."
        )]
        sharing: Option<CacheSharingMode>,
        #[graphql(
            default_with = "Some(String::new())",
            desc = "A user:group to own the cache volume when it is first created, used by withMountedCache when it is given none."
        )]
        owner: Option<String>,
    ) -> Result<CacheVolume> {
        if key.is_empty() {
            return Err(gql(gantry_core::Error::InvalidArgument {
                message: "cacheVolume: key must not be empty".into(),
            }));
        }
        let source = match source {
            Some(id) => Some(load_arg(ctx, "source", &id, Kind::Directory)?.digest),
            None => None,
        };
        let sharing_given = ctx
            .field()
            .arguments()
            .unwrap_or_default()
            .iter()
            .any(|(name, _)| name.as_str() == "sharing");
        Ok(CacheVolume(add(
            ctx,
            ops::CacheVolume {
                key,
                source,
                sharing: sharing.filter(|_| sharing_given).map(Into::into),
                owner: owner.unwrap_or_default(),
            },
        )))
    }

    /// Sets a secret given a user defined name to its plaintext and returns the secret. The plaintext value is kept in memory only.
    async fn set_secret(&self, ctx: &Context<'_>, name: String, plaintext: String) -> Secret {
        Secret(engine(ctx).set_secret(&name, &plaintext))
    }

    /// Creates a new secret from a URI: env://NAME reads an environment variable of the engine's client, file://PATH a file.
    async fn secret(
        &self,
        ctx: &Context<'_>,
        uri: String,
        #[graphql(
            desc = "If set, the cache identity of the secret: steps that use it stay cached when its value changes but this key does not."
        )]
        cache_key: Option<String>,
    ) -> Result<Secret> {
        let value = crate::secret_from_uri(&uri, super::client(ctx)).map_err(gql)?;
        Ok(Secret(engine(ctx).set_secret_keyed(
            &uri,
            &value,
            cache_key.as_deref(),
        )))
    }

    /// Queries a Git repository.
    async fn git(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "URL of the git repository. Can be formatted as `https://{host}/{owner}/{repo}`, `git@{host}:{owner}/{repo}`. Suffix \".git\" is optional."
        )]
        url: String,
        #[graphql(
            default_with = "Some(true)",
            deprecation = "Use `discardGitDir` on `GitRef.tree` instead.",
            desc = "Set to true to keep .git directory."
        )]
        keep_git_dir: Option<bool>,
        #[graphql(default_with = "Some(String::new())", desc = "Set SSH known hosts")]
        ssh_known_hosts: Option<String>,
        #[graphql(
            desc = "Set SSH auth socket",
            directive = expected_type::apply("Socket".into())
        )]
        ssh_auth_socket: Option<ID>,
        #[graphql(
            default_with = "Some(String::new())",
            desc = "Username used to populate the password during basic HTTP Authorization"
        )]
        http_auth_username: Option<String>,
        #[graphql(
            directive = expected_type::apply("Secret".into()),
            desc = "Secret used to populate the password during basic HTTP Authorization"
        )]
        http_auth_token: Option<ID>,
        #[graphql(
            directive = expected_type::apply("Secret".into()),
            desc = "Secret used to populate the Authorization HTTP header"
        )]
        http_auth_header: Option<ID>,
        #[graphql(
            desc = "A service which must be started before the repo is fetched.",
            directive = expected_type::apply("Service".into())
        )]
        experimental_service_host: Option<ID>,
    ) -> Result<GitRepository> {
        let secret = |argument: &str, id: Option<ID>| -> Result<Option<Digest>> {
            id.map(|id| Ok(load_arg(ctx, argument, &id, Kind::Secret)?.digest))
                .transpose()
        };
        Ok(GitRepository(add(
            ctx,
            ops::Git {
                url: ops::normalize_url(&url),
                keep_git_dir: keep_git_dir.unwrap_or(true),
                ssh_known_hosts: ssh_known_hosts.unwrap_or_default(),
                http_auth_username: http_auth_username.unwrap_or_default(),
                http_auth_token: secret("httpAuthToken", http_auth_token)?,
                http_auth_header: secret("httpAuthHeader", http_auth_header)?,
                ssh_auth_socket: ssh_auth_socket
                    .map(|id| {
                        load_arg(ctx, "sshAuthSocket", &id, Kind::Socket)
                            .map(|socket| socket.digest)
                    })
                    .transpose()?,
                service_host: service_host(ctx, experimental_service_host)?,
            },
        )))
    }

    /// Returns a file containing an http remote url content.
    async fn http(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "HTTP url to get the content from (e.g., \"https://docs.dagger.io\").")]
        url: String,
        #[graphql(desc = "File name to use for the file. Defaults to the last part of the URL.")]
        name: Option<String>,
        #[graphql(
            validator(custom = "super::file_mode"),
            desc = "Permissions to set on the file."
        )]
        permissions: Option<i32>,
        #[graphql(desc = "Expected digest of the downloaded content (e.g., \"sha256:...\").")]
        checksum: Option<String>,
        #[graphql(
            directive = expected_type::apply("Secret".into()),
            desc = "Secret used to populate the Authorization HTTP header"
        )]
        auth_header: Option<ID>,
        #[graphql(
            desc = "A service which must be started before the URL is fetched.",
            directive = expected_type::apply("Service".into())
        )]
        experimental_service_host: Option<ID>,
    ) -> Result<File> {
        let auth_header = match auth_header {
            Some(id) => Some(load_arg(ctx, "authHeader", &id, Kind::Secret)?.digest),
            None => None,
        };
        Ok(File(add(
            ctx,
            ops::Http {
                url,
                name,
                permissions: permissions.map(|mode| mode as u32),
                checksum,
                auth_header,
                service_host: service_host(ctx, experimental_service_host)?,
            },
        )))
    }

    /// Load any object by its ID.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        node_for(ctx, &id).await.map(Some)
    }

    /// Load a Container from its ID.
    #[graphql(name = "loadContainerFromID")]
    async fn load_container_from_id(
        &self,
        ctx: &Context<'_>,
        id: ContainerId,
    ) -> Result<Container> {
        Ok(Container(
            load(engine(ctx), &id.0, Kind::Container).map_err(gql)?,
        ))
    }

    /// Load a Directory from its ID.
    #[graphql(name = "loadDirectoryFromID")]
    async fn load_directory_from_id(
        &self,
        ctx: &Context<'_>,
        id: DirectoryId,
    ) -> Result<Directory> {
        Ok(Directory(
            load(engine(ctx), &id.0, Kind::Directory).map_err(gql)?,
        ))
    }

    /// Load a File from its ID.
    #[graphql(name = "loadFileFromID")]
    async fn load_file_from_id(&self, ctx: &Context<'_>, id: FileId) -> Result<File> {
        Ok(File(load(engine(ctx), &id.0, Kind::File).map_err(gql)?))
    }

    /// Load a Secret from its ID.
    #[graphql(name = "loadSecretFromID")]
    async fn load_secret_from_id(&self, ctx: &Context<'_>, id: SecretId) -> Result<Secret> {
        Ok(Secret(load(engine(ctx), &id.0, Kind::Secret).map_err(gql)?))
    }

    /// Load a CacheVolume from its ID.
    #[graphql(name = "loadCacheVolumeFromID")]
    async fn load_cache_volume_from_id(
        &self,
        ctx: &Context<'_>,
        id: CacheVolumeId,
    ) -> Result<CacheVolume> {
        Ok(CacheVolume(
            load(engine(ctx), &id.0, Kind::CacheVolume).map_err(gql)?,
        ))
    }

    /// Load a Host from its ID.
    #[graphql(name = "loadHostFromID")]
    async fn load_host_from_id(&self, id: HostId) -> Result<Host> {
        let _ = id;
        Ok(Host)
    }

    /// Load a GitRepository from its ID.
    #[graphql(name = "loadGitRepositoryFromID")]
    async fn load_git_repository_from_id(
        &self,
        ctx: &Context<'_>,
        id: GitRepositoryId,
    ) -> Result<GitRepository> {
        Ok(GitRepository(
            load(engine(ctx), &id.0, Kind::GitRepository).map_err(gql)?,
        ))
    }

    /// Load a GitRef from its ID.
    #[graphql(name = "loadGitRefFromID")]
    async fn load_git_ref_from_id(&self, ctx: &Context<'_>, id: GitRefId) -> Result<GitRef> {
        Ok(GitRef(load(engine(ctx), &id.0, Kind::GitRef).map_err(gql)?))
    }

    /// Load an EnvVariable from its ID.
    #[graphql(name = "loadEnvVariableFromID")]
    async fn load_env_variable_from_id(
        &self,
        ctx: &Context<'_>,
        id: EnvVariableId,
    ) -> Result<EnvVariable> {
        env_variable(ctx, &id.0).await
    }

    /// Load a Service from its ID.
    #[graphql(name = "loadServiceFromID")]
    async fn load_service_from_id(&self, ctx: &Context<'_>, id: ServiceId) -> Result<Service> {
        Ok(Service(
            load(engine(ctx), &id.0, Kind::Service).map_err(gql)?,
        ))
    }

    /// Load a Socket from its ID.
    #[graphql(name = "loadSocketFromID")]
    async fn load_socket_from_id(&self, ctx: &Context<'_>, id: SocketId) -> Result<Socket> {
        Ok(Socket(load(engine(ctx), &id.0, Kind::Socket).map_err(gql)?))
    }

    /// Load a Port from its ID.
    #[graphql(name = "loadPortFromID")]
    async fn load_port_from_id(&self, ctx: &Context<'_>, id: PortId) -> Result<Port> {
        service::load_port(ctx, &id.0).await
    }
    // ---- Tier 2 root fields and the loaders of their types

    /// Initialize an address to load directories, containers, secrets or other object types.
    async fn address(&self, value: String) -> Result<Address> {
        if value.is_empty() {
            return Err(gql(gantry_core::Error::InvalidArgument {
                message: "resource cannot have empty address".into(),
            }));
        }
        Ok(Address { value })
    }

    /// Creates an empty changeset
    async fn changeset(&self, ctx: &Context<'_>) -> Changeset {
        Changeset(add(ctx, ops::EmptyChangeset {}))
    }

    /// The default platform of the engine.
    async fn default_platform(&self) -> Platform {
        Platform(default_platform())
    }

    /// Initialize an environment file
    async fn env_file(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Replace \"${VAR}\" or \"$VAR\" with the value of other vars")]
        expand: Option<bool>,
    ) -> EnvFile {
        EnvFile(add(
            ctx,
            ops::NewEnvFile {
                expand: expand.unwrap_or(false),
            },
        ))
    }

    /// Create a new error.
    async fn error(
        &self,
        #[graphql(desc = "A brief description of the error.")] message: String,
    ) -> ErrorObject {
        ErrorObject {
            message,
            values: Vec::new(),
        }
    }

    /// Initialize a JSON value
    async fn json(&self, ctx: &Context<'_>) -> JsonValue {
        JsonValue::literal(ctx, "null".into())
    }

    /// Load a Changeset from its ID.
    #[graphql(name = "loadChangesetFromID")]
    async fn load_changeset_from_id(
        &self,
        ctx: &Context<'_>,
        id: ChangesetId,
    ) -> Result<Changeset> {
        Ok(Changeset(
            load(engine(ctx), &id.0, Kind::Changeset).map_err(gql)?,
        ))
    }

    /// Load an EnvFile from its ID.
    #[graphql(name = "loadEnvFileFromID")]
    async fn load_env_file_from_id(&self, ctx: &Context<'_>, id: EnvFileId) -> Result<EnvFile> {
        Ok(EnvFile(
            load(engine(ctx), &id.0, Kind::EnvFile).map_err(gql)?,
        ))
    }

    /// Load a JSONValue from its ID.
    #[graphql(name = "loadJSONValueFromID")]
    async fn load_json_value_from_id(
        &self,
        ctx: &Context<'_>,
        id: JsonValueId,
    ) -> Result<JsonValue> {
        Ok(JsonValue(
            load(engine(ctx), &id.0, Kind::JsonValue).map_err(gql)?,
        ))
    }

    /// Load a Label from its ID.
    #[graphql(name = "loadLabelFromID")]
    async fn load_label_from_id(&self, id: LabelId) -> Result<Label> {
        load_value("Label", &id.0).map_err(gql)
    }

    /// Load a Stat from its ID.
    #[graphql(name = "loadStatFromID")]
    async fn load_stat_from_id(&self, id: StatId) -> Result<Stat> {
        load_value("Stat", &id.0).map_err(gql)
    }

    /// Load a SearchResult from its ID.
    #[graphql(name = "loadSearchResultFromID")]
    async fn load_search_result_from_id(&self, id: SearchResultId) -> Result<SearchResult> {
        load_value("SearchResult", &id.0).map_err(gql)
    }

    /// Load a SearchSubmatch from its ID.
    #[graphql(name = "loadSearchSubmatchFromID")]
    async fn load_search_submatch_from_id(&self, id: SearchSubmatchId) -> Result<SearchSubmatch> {
        load_value("SearchSubmatch", &id.0).map_err(gql)
    }

    /// Load a DiffStat from its ID.
    #[graphql(name = "loadDiffStatFromID")]
    async fn load_diff_stat_from_id(&self, id: DiffStatId) -> Result<DiffStat> {
        load_value("DiffStat", &id.0).map_err(gql)
    }

    /// Load an Address from its ID.
    #[graphql(name = "loadAddressFromID")]
    async fn load_address_from_id(&self, id: AddressId) -> Result<Address> {
        load_value("Address", &id.0).map_err(gql)
    }

    /// Load an Error from its ID.
    #[graphql(name = "loadErrorFromID")]
    async fn load_error_from_id(&self, id: ErrorId) -> Result<ErrorObject> {
        load_value("Error", &id.0).map_err(gql)
    }

    /// Load an ErrorValue from its ID.
    #[graphql(name = "loadErrorValueFromID")]
    async fn load_error_value_from_id(&self, id: ErrorValueId) -> Result<ErrorValue> {
        load_value("ErrorValue", &id.0).map_err(gql)
    }

    /// Load a Syncer from its ID.
    #[graphql(name = "loadSyncerFromID")]
    async fn load_syncer_from_id(&self, ctx: &Context<'_>, id: SyncerId) -> Result<Syncer> {
        Ok(match node_for(ctx, &id.0).await? {
            Node::Container(object) => Syncer::Container(object),
            Node::Directory(object) => Syncer::Directory(object),
            Node::File(object) => Syncer::File(object),
            Node::Changeset(object) => Syncer::Changeset(object),
            _ => return Err(not_a(&id.0, "Syncer")),
        })
    }

    /// Load an Exportable from its ID.
    #[graphql(name = "loadExportableFromID")]
    async fn load_exportable_from_id(
        &self,
        ctx: &Context<'_>,
        id: ExportableId,
    ) -> Result<Exportable> {
        Ok(match node_for(ctx, &id.0).await? {
            Node::Container(object) => Exportable::Container(object),
            Node::Directory(object) => Exportable::Directory(object),
            Node::File(object) => Exportable::File(object),
            Node::Changeset(object) => Exportable::Changeset(object),
            _ => return Err(not_a(&id.0, "Exportable")),
        })
    }
}

/// The error for an ID of an object that is not a `what`.
fn not_a(id: &str, what: &str) -> async_graphql::Error {
    let found = split_id(id)
        .map(|(kind, _)| kind.to_owned())
        .unwrap_or_default();
    gql(gantry_core::Error::WrongIdKind {
        expected: what.into(),
        found,
    })
}

/// The platform of the engine's machine (`linux/<GOARCH-style arch>`).
fn default_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("linux/{arch}")
}

/// The service node `experimentalServiceHost` names, if given.
fn service_host(ctx: &Context<'_>, id: Option<ID>) -> Result<Option<Digest>> {
    id.map(|id| Ok(load_arg(ctx, "experimentalServiceHost", &id, Kind::Service)?.digest))
        .transpose()
}

/// Refuses a platform other than this machine's: running it would need an
/// emulator, which gantry does not drive.
pub(super) fn refuse_foreign_platform(platform: &str) -> Result<()> {
    check_platform(platform)?;
    if gantry_core::runtime::is_host_platform(platform) {
        return Ok(());
    }
    let host = gantry_core::runtime::host_platform();
    Err(super::unsupported(
        &format!("container(platform: {platform:?})"),
        &format!("gantry runs containers of this machine's platform ({host}) only; leave platform out, or run the pipeline on a {platform} machine"),
    ))
}

/// Checks that `platform` reads as `OS[/ARCH[/VARIANT]]` (or a lone
/// architecture) with an operating system and architecture images use (Go's
/// names, which OCI platforms take, plus the usual aliases).
fn check_platform(platform: &str) -> Result<()> {
    const OSES: &[&str] = &[
        "linux",
        "windows",
        "darwin",
        "freebsd",
        "netbsd",
        "openbsd",
        "dragonfly",
        "solaris",
        "illumos",
        "aix",
        "android",
        "ios",
        "plan9",
        "js",
        "wasip1",
    ];
    const ARCHES: &[&str] = &[
        "amd64", "x86_64", "x86-64", "arm64", "aarch64", "arm", "armhf", "armel", "386", "i386",
        "ppc64le", "ppc64", "s390x", "riscv64", "mips", "mipsle", "mips64", "mips64le", "loong64",
        "wasm",
    ];
    let parts: Vec<&str> = platform.trim().split('/').collect();
    let known = match parts.as_slice() {
        [one] => OSES.contains(one) || ARCHES.contains(one),
        [os, arch] | [os, arch, _] => OSES.contains(os) && ARCHES.contains(arch),
        _ => false,
    };
    if known {
        return Ok(());
    }
    Err(super::gql(gantry_core::Error::InvalidArgument {
        message: format!(
            "unknown operating system or architecture in platform {}: a platform reads OS/ARCH[/VARIANT], e.g. linux/amd64",
            gantry_core::text::quoted(platform)
        ),
    }))
}

/// The platform config OS and architecture in a Container, e.g. "linux/amd64".
pub(crate) struct Platform(pub(crate) String);

#[async_graphql::Scalar(name = "Platform")]
impl async_graphql::ScalarType for Platform {
    fn parse(value: async_graphql::Value) -> async_graphql::InputValueResult<Self> {
        match value {
            async_graphql::Value::String(text) => Ok(Platform(text)),
            other => Err(async_graphql::InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> async_graphql::Value {
        async_graphql::Value::String(self.0.clone())
    }
}
