//! `EnvFile`: a collection of environment variables.

use std::sync::Arc;

use async_graphql::{Context, Object, Result, ID};
use gantry_core::ops::engine_env;
use gantry_core::{ops, Node};

use super::{add, engine, EnvVariable, File};
use crate::error::gql;
use crate::ids::format_id;

#[derive(Clone)]
pub(crate) struct EnvFile(pub(crate) Arc<Node>);

impl EnvFile {
    async fn value(&self, ctx: &Context<'_>) -> Result<Arc<gantry_core::envfile::EnvFile>> {
        engine(ctx).env_file(self.0.digest).await.map_err(gql)
    }

    fn then(&self, ctx: &Context<'_>, op: impl Into<gantry_core::Op>) -> EnvFile {
        EnvFile(add(ctx, op))
    }
}

/// A collection of environment variables.
#[Object]
impl EnvFile {
    /// A unique identifier for this EnvFile.
    pub(crate) async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        format_id(engine(ctx), &self.0)
    }

    /// Return all variables (each name once, sorted by name).
    async fn variables(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Return values exactly as written to the file. No quote removal or variable expansion"
        )]
        raw: Option<bool>,
    ) -> Result<Vec<EnvVariable>> {
        let file = self.value(ctx).await?;
        let variables = file.list(raw.unwrap_or(false), &engine_env).map_err(gql)?;
        Ok(variables
            .into_iter()
            .map(|(name, value)| EnvVariable::plain(name, value))
            .collect())
    }

    /// Add a variable
    async fn with_variable(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Variable name")] name: String,
        #[graphql(desc = "Variable value")] value: String,
    ) -> EnvFile {
        self.then(
            ctx,
            ops::EnvFileWithVariable {
                parent: self.0.digest,
                name,
                value,
            },
        )
    }

    /// Remove all occurrences of the named variable
    async fn without_variable(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Variable name")] name: String,
    ) -> EnvFile {
        self.then(
            ctx,
            ops::EnvFileWithoutVariable {
                parent: self.0.digest,
                name,
            },
        )
    }

    /// Lookup a variable (last occurrence wins) and return its value, or an empty string
    async fn get(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Variable name")] name: String,
        #[graphql(
            desc = "Return the value exactly as written to the file. No quote removal or variable expansion"
        )]
        raw: Option<bool>,
    ) -> Result<String> {
        let file = self.value(ctx).await?;
        if raw.unwrap_or(false) {
            return Ok(file.raw(&name).unwrap_or_default().to_owned());
        }
        Ok(file
            .get(&name, &engine_env)
            .map_err(gql)?
            .unwrap_or_default())
    }

    /// Check if a variable exists
    async fn exists(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Variable name")] name: String,
    ) -> Result<bool> {
        Ok(self.value(ctx).await?.exists(&name))
    }

    /// Return as a file
    async fn as_file(&self, ctx: &Context<'_>) -> File {
        File(add(
            ctx,
            ops::EnvFileAsFile {
                parent: self.0.digest,
            },
        ))
    }

    /// Filters variables by prefix and removes the prefix from keys. Variables without the prefix are excluded. For example, with the prefix "MY_APP_" and variables MY_APP_TOKEN=topsecret, MY_APP_NAME=hello and FOO=bar, the resulting environment contains TOKEN=topsecret and NAME=hello. The prefix is compared without regard to case, dashes or underscores.
    async fn namespace(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The prefix to filter by")] prefix: String,
    ) -> EnvFile {
        self.then(
            ctx,
            ops::EnvFileNamespace {
                parent: self.0.digest,
                prefix,
            },
        )
    }
}
