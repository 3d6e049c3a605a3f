//! GraphQL object types. Each wraps a DAG node; `with…` fields add a node
//! and return a new object, leaf fields ask the engine to evaluate.

mod changeset;
mod container;
mod directory;
mod enums;
mod envfile;
mod file;
mod host;
mod json;
mod query;
mod secret;
mod values;

use std::sync::Arc;

use async_graphql::{Context, Interface, ID};
use gantry_core::{Engine, Node as DagNode, Op};

pub(crate) use changeset::{Changeset, DiffStat};
pub(crate) use container::{Container, EnvVariable, EnvVariableValue};
pub(crate) use directory::Directory;
pub(crate) use enums::{
    CacheSharingMode, ImageLayerCompression, ImageMediaTypes, NetworkProtocol, RegistryProtocol,
    ReturnType,
};
pub(crate) use envfile::EnvFile;
pub(crate) use file::File;
pub(crate) use host::Host;
pub(crate) use json::JsonValue;
pub use query::Query;
pub(crate) use secret::{CacheVolume, Secret};
pub(crate) use values::{
    Address, ErrorObject, ErrorValue, ExistsType, Label, SearchArgs, SearchResult, SearchSubmatch,
    Stat,
};

use crate::ClientInfo;

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

/// Adds an op to the DAG (no evaluation).
pub(crate) fn add(ctx: &Context<'_>, op: impl Into<Op>) -> Arc<DagNode> {
    engine(ctx).add(op)
}
