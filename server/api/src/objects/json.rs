//! `JSONValue`: a JSON document, edited and read field by field.

use std::sync::Arc;

use async_graphql::{Context, Object, Result, ID};
use gantry_core::{ops, Kind, Node};
use serde_json::Value as Json;

use super::{add, engine, expected_type, load_arg, values::Json as JsonScalar};
use crate::error::gql;
use crate::ids::format_id;

#[derive(Clone)]
pub(crate) struct JsonValue(pub(crate) Arc<Node>);

fn invalid(message: impl Into<String>) -> async_graphql::Error {
    gql(gantry_core::Error::InvalidArgument {
        message: message.into(),
    })
}

impl JsonValue {
    async fn value(&self, ctx: &Context<'_>) -> Result<Arc<Json>> {
        engine(ctx).json(self.0.digest).await.map_err(gql)
    }

    /// A new value from JSON text (`Query.json`, `withContents`, `new…`).
    pub(crate) fn literal(ctx: &Context<'_>, contents: String) -> JsonValue {
        JsonValue(add(ctx, ops::JsonLiteral { contents }))
    }
}

/// A JSON value.
#[Object(name = "JSONValue")]
impl JsonValue {
    /// A unique identifier for this JSONValue.
    pub(crate) async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        format_id(engine(ctx), &self.0)
    }

    /// Return the value encoded as json
    async fn contents(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(false)", desc = "Pretty-print")] pretty: Option<bool>,
        #[graphql(
            default_with = "Some(\"  \".to_owned())",
            desc = "Optional line prefix"
        )]
        indent: Option<String>,
    ) -> Result<JsonScalar> {
        let value = self.value(ctx).await?;
        if !pretty.unwrap_or(false) {
            return Ok(JsonScalar(value.to_string()));
        }
        let indent = indent.unwrap_or_default();
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        serde::Serialize::serialize(&*value, &mut serializer)
            .map_err(|error| invalid(error.to_string()))?;
        Ok(JsonScalar(String::from_utf8_lossy(&out).into_owned()))
    }

    /// Return a new json value, decoded from the given content
    async fn with_contents(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "New JSON-encoded contents")] contents: JsonScalar,
    ) -> Result<JsonValue> {
        serde_json::from_str::<Json>(&contents.0)
            .map_err(|error| invalid(format!("invalid JSON: {error}")))?;
        Ok(JsonValue::literal(ctx, contents.0))
    }

    /// Encode an integer to json
    async fn new_integer(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "New integer value")] value: i64,
    ) -> JsonValue {
        JsonValue::literal(ctx, value.to_string())
    }

    /// Encode a string to json
    async fn new_string(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "New string value")] value: String,
    ) -> JsonValue {
        JsonValue::literal(ctx, Json::String(value).to_string())
    }

    /// Encode a boolean to json
    async fn new_boolean(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "New boolean value")] value: bool,
    ) -> JsonValue {
        JsonValue::literal(ctx, value.to_string())
    }

    /// Decode an integer from json
    async fn as_integer(&self, ctx: &Context<'_>) -> Result<i64> {
        let value = self.value(ctx).await?;
        value
            .as_i64()
            .ok_or_else(|| invalid(format!("value is not an integer: {value}")))
    }

    /// Decode a string from json
    async fn as_string(&self, ctx: &Context<'_>) -> Result<String> {
        let value = self.value(ctx).await?;
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| invalid(format!("value is not a string: {value}")))
    }

    /// Decode a boolean from json
    async fn as_boolean(&self, ctx: &Context<'_>) -> Result<bool> {
        let value = self.value(ctx).await?;
        value
            .as_bool()
            .ok_or_else(|| invalid("value is not a boolean"))
    }

    /// Decode an array from json
    async fn as_array(&self, ctx: &Context<'_>) -> Result<Vec<JsonValue>> {
        let value = self.value(ctx).await?;
        let items = value
            .as_array()
            .ok_or_else(|| invalid("value is not an array"))?;
        Ok((0..items.len() as u64)
            .map(|index| {
                JsonValue(add(
                    ctx,
                    ops::JsonItem {
                        parent: self.0.digest,
                        index,
                    },
                ))
            })
            .collect())
    }

    /// List fields of the encoded object
    async fn fields(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let value = self.value(ctx).await?;
        let object = value
            .as_object()
            .ok_or_else(|| invalid("value is not an object"))?;
        Ok(object.keys().cloned().collect())
    }

    /// Lookup the field at the given path, and return its value.
    async fn field(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Path of the field to lookup, encoded as an array of field names")]
        path: Vec<String>,
    ) -> JsonValue {
        JsonValue(add(
            ctx,
            ops::JsonField {
                parent: self.0.digest,
                path,
            },
        ))
    }

    /// Set a new field at the given path
    async fn with_field(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Path of the field to set, encoded as an array of field names")] path: Vec<
            String,
        >,
        #[graphql(
            desc = "The new value of the field",
            directive = expected_type::apply("JSONValue".into())
        )]
        value: ID,
    ) -> Result<JsonValue> {
        let value = load_arg(ctx, "value", &value, Kind::JsonValue)?;
        Ok(JsonValue(add(
            ctx,
            ops::JsonWithField {
                parent: self.0.digest,
                path,
                value: value.digest,
            },
        )))
    }
}
