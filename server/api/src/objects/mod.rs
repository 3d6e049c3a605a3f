//! GraphQL object types. Each wraps a DAG node; `with…` fields add a node
//! and return a new object, leaf fields ask the engine to evaluate.

mod container;
mod directory;
mod enums;
mod file;
mod git;
mod host;
mod query;
mod secret;

use std::sync::Arc;

use async_graphql::{Context, Interface, ID};
use gantry_core::{Engine, Node as DagNode, Op};

pub(crate) use container::{Container, EnvVariable};
pub(crate) use directory::Directory;
pub(crate) use enums::{
    CacheSharingMode, ImageLayerCompression, ImageMediaTypes, NetworkProtocol, RegistryProtocol,
    ReturnType,
};
pub(crate) use file::File;
pub(crate) use git::{GitRef, GitRepository};
pub(crate) use host::Host;
pub use query::Query;
pub(crate) use secret::{CacheVolume, Secret};

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
    GitRepository(GitRepository),
    GitRef(GitRef),
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
