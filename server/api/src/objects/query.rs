//! The root `Query` type.

use async_graphql::{Context, Object, Result, ID};
use gantry_core::{ops, Digest, Kind};

use super::{
    add, engine, expected_type, load_arg, CacheSharingMode, CacheVolume, Container, Directory,
    EnvVariable, File, Host, Node, Secret, FILE_MODE,
};
use crate::error::gql;
use crate::ids::{
    load, split_id, CacheVolumeId, ContainerId, DirectoryId, EnvVariableId, FileId, HostId,
    SecretId,
};

#[derive(Default)]
pub struct Query;

async fn node_for(ctx: &Context<'_>, id: &str) -> Result<Node> {
    let engine = engine(ctx);
    let (type_name, _) = split_id(id).map_err(gql)?;
    Ok(match type_name {
        "Host" => Node::Host(Host),
        "EnvVariable" => Node::EnvVariable(env_variable(ctx, id).await?),
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
    let (_, hex, index) = (
        parts.next(),
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
    );
    let digest = Digest::from_hex(hex).ok_or_else(bad)?;
    let index: usize = index.parse().map_err(|_| bad())?;
    let container = engine(ctx)
        .node_of_kind(&digest, Kind::Container)
        .map_err(gql)?;
    Ok(EnvVariable {
        container,
        index,
        name: String::new(),
        value: String::new(),
    })
}

async fn env_variable(ctx: &Context<'_>, id: &str) -> Result<EnvVariable> {
    let mut stub = env_variable_stub(ctx, id)?;
    let state = engine(ctx)
        .container(stub.container.digest)
        .await
        .map_err(gql)?;
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

    /// Load an EnvVariable from its ID.
    #[graphql(name = "loadEnvVariableFromID")]
    async fn load_env_variable_from_id(
        &self,
        ctx: &Context<'_>,
        id: EnvVariableId,
    ) -> Result<EnvVariable> {
        env_variable(ctx, &id.0).await
    }
}

/// Refuses a platform other than this machine's: running it would need an
/// emulator, which gantry does not drive.
fn refuse_foreign_platform(platform: &str) -> Result<()> {
    if gantry_core::runtime::is_host_platform(platform) {
        return Ok(());
    }
    let host = gantry_core::runtime::host_platform();
    Err(super::unsupported(
        &format!("container(platform: {platform:?})"),
        &format!("gantry runs containers of this machine's platform ({host}) only; leave platform out, or run the pipeline on a {platform} machine"),
    ))
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
