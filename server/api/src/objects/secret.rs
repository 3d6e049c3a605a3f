//! `Secret` and `CacheVolume`.

use std::sync::Arc;

use async_graphql::{Context, Object, Result, ID};
use gantry_core::Node;

use super::engine;
use crate::error::gql;
use crate::ids::format_id;

#[derive(Clone)]
pub(crate) struct Secret(pub(crate) Arc<Node>);

/// A reference to a secret value, which can be handled more safely than the value itself.
#[Object]
impl Secret {
    /// A unique identifier for this Secret. It never contains the value.
    pub(crate) async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        format_id(engine(ctx), &self.0)
    }

    /// The name of this secret.
    async fn name(&self, ctx: &Context<'_>) -> Result<String> {
        engine(ctx).secret_name(&self.0.digest).map_err(gql)
    }

    /// The value of this secret.
    async fn plaintext(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(engine(ctx)
            .secret(&self.0.digest)
            .map_err(gql)?
            .plaintext
            .to_string())
    }

    /// The URI of this secret.
    async fn uri(&self, ctx: &Context<'_>) -> Result<String> {
        let name = engine(ctx).secret_name(&self.0.digest).map_err(gql)?;
        Ok(if name.contains("://") {
            name
        } else {
            format!("gantry://{name}")
        })
    }
}

#[derive(Clone)]
pub(crate) struct CacheVolume(pub(crate) Arc<Node>);

/// A directory whose contents persist across runs.
#[Object]
impl CacheVolume {
    /// A unique identifier for this CacheVolume.
    pub(crate) async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        format_id(engine(ctx), &self.0)
    }
}
