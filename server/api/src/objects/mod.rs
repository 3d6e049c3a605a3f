//! GraphQL object types. Each wraps a DAG node; `with…` fields add a node
//! and return a new object, leaf fields ask the engine to evaluate.

mod changeset;
mod container;
mod directory;
mod enums;
mod envfile;
mod file;
mod git;
mod host;
mod json;
mod query;
mod secret;
mod service;
mod values;

use std::sync::Arc;

use async_graphql::{Context, Interface, TypeDirective, ID};
use gantry_core::{Engine, Kind, Node as DagNode, Op};

pub(crate) use changeset::{Changeset, DiffStat};
pub(crate) use container::{Container, EnvVariable, EnvVariableValue};
pub(crate) use directory::Directory;
pub(crate) use enums::{
    CacheSharingMode, ImageLayerCompression, ImageMediaTypes, NetworkProtocol, RegistryProtocol,
    ReturnType,
};
pub(crate) use envfile::EnvFile;
pub(crate) use file::File;
pub(crate) use git::{GitRef, GitRepository};
pub(crate) use host::{Host, HostSnapshots};
pub(crate) use json::JsonValue;
pub use query::Query;
pub(crate) use secret::{CacheVolume, Secret};
pub(crate) use service::{Port, Service, Socket};
pub(crate) use values::{
    Address, ErrorObject, ErrorValue, ExistsType, Label, SearchArgs, SearchResult, SearchSubmatch,
    Stat,
};

use crate::error::gql;
use crate::ClientInfo;

/// Names the object type an `ID` argument takes (Dagger's directive, read by
/// the SDK generators): `source: ID! @expectedType(name: "Directory")`.
#[TypeDirective(
    name = "expectedType",
    location = "ArgumentDefinition",
    location = "FieldDefinition"
)]
pub(crate) fn expected_type(name: String) {}

/// The default mode of new files (`permissions: Int = 420`).
pub(crate) const FILE_MODE: i32 = 0o644;

/// The default mode of mounted secrets (`mode: Int = 256`).
pub(crate) const SECRET_MODE: i32 = 0o400;

/// The error for an option gantry does not implement. An option is never
/// accepted and ignored: the error names it and says what to do instead.
pub(crate) fn unsupported(option: &str, instead: &str) -> async_graphql::Error {
    gql(gantry_core::Error::Unsupported {
        message: format!("{option} is not supported by gantry: {instead}"),
    })
}

/// Loads the node behind an object argument, refusing an ID of another type
/// with an error that names the argument.
pub(crate) fn load_arg(
    ctx: &Context<'_>,
    argument: &str,
    id: &ID,
    kind: Kind,
) -> async_graphql::Result<Arc<DagNode>> {
    crate::ids::load(engine(ctx), id, kind).map_err(|error| {
        let mut error = gql(error);
        error.message = format!("argument {argument}: {}", error.message);
        error
    })
}

/// The absence of a value: fields of this type always return null.
pub(crate) struct Void;

#[async_graphql::Scalar(name = "Void")]
impl async_graphql::ScalarType for Void {
    fn parse(value: async_graphql::Value) -> async_graphql::InputValueResult<Self> {
        match value {
            async_graphql::Value::Null => Ok(Void),
            other => Err(async_graphql::InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> async_graphql::Value {
        async_graphql::Value::Null
    }
}

/// Every object with an ID.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "A unique identifier for this object."))]
pub(crate) enum Node {
    Container(Container),
    Directory(Directory),
    File(File),
    Secret(Secret),
    CacheVolume(CacheVolume),
    Host(Host),
    EnvVariable(EnvVariable),
    Service(Service),
    Socket(Socket),
    Port(Port),
    GitRepository(GitRepository),
    GitRef(GitRef),
    Changeset(Changeset),
    EnvFile(EnvFile),
    JsonValue(JsonValue),
    Label(Label),
    Stat(Stat),
    SearchResult(SearchResult),
    SearchSubmatch(SearchSubmatch),
    DiffStat(DiffStat),
    Address(Address),
    Error(ErrorObject),
    ErrorValue(ErrorValue),
}

/// An object whose evaluation `sync` forces. (Dagger declares it
/// `implements Node`; async-graphql cannot declare an interface that
/// implements another.)
// Two fields of type ID (`id`, `sync`) repeat `ty = "ID"`, which this lint
// takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(Interface)]
#[graphql(
    field(name = "id", ty = "ID", desc = "A unique identifier for this object."),
    field(
        name = "sync",
        ty = "ID",
        method = "sync_as_syncer",
        desc = "Force evaluation in the engine."
    )
)]
pub(crate) enum Syncer {
    Container(Container),
    Directory(Directory),
    File(File),
    Changeset(Changeset),
}

/// An object that can be written to the client's host.
#[derive(Interface)]
#[graphql(
    field(name = "id", ty = "ID", desc = "A unique identifier for this object."),
    field(
        name = "export",
        ty = "String",
        method = "export_as_exportable",
        desc = "Writes the object to a path on the host. Returns the absolute path written.",
        arg(name = "path", ty = "String", desc = "Location on the host.")
    )
)]
pub(crate) enum Exportable {
    Container(Container),
    Directory(Directory),
    File(File),
    Changeset(Changeset),
}

pub(crate) fn engine<'a>(ctx: &Context<'a>) -> &'a Arc<Engine> {
    ctx.data_unchecked::<Arc<Engine>>()
}

pub(crate) fn client<'a>(ctx: &Context<'a>) -> &'a ClientInfo {
    ctx.data_unchecked::<ClientInfo>()
}

/// Runs a digest computation that reads blobs off the async threads.
pub(crate) async fn checksum_blocking(
    compute: impl FnOnce() -> gantry_core::Result<gantry_core::Digest> + Send + 'static,
) -> async_graphql::Result<gantry_core::Digest> {
    tokio::task::spawn_blocking(compute)
        .await
        .map_err(|error| async_graphql::Error::new(format!("computing a digest failed: {error}")))?
        .map_err(gql)
}

/// Adds an op to the DAG (no evaluation).
pub(crate) fn add(ctx: &Context<'_>, op: impl Into<Op>) -> Arc<DagNode> {
    engine(ctx).add(op)
}

/// The validator of every `permissions` argument: a Unix file mode, setuid,
/// setgid and sticky bits allowed (as in Dagger), nothing above them.
pub(crate) fn file_mode(mode: &i32) -> Result<(), String> {
    if (0..=0o7777).contains(mode) {
        Ok(())
    } else {
        Err(format!(
            "permissions {mode} is not a file mode: give 0 to 4095 (0o7777), e.g. 420 for 0o644"
        ))
    }
}
