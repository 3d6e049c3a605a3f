//! gantry-api: the GraphQL schema (async-graphql) over gantry-core's engine,
//! the mapping of core errors to GraphQL errors, and the HTTP router that
//! serves `POST /query` on a Unix socket or on loopback with a token.
//!
//! Resolvers only build DAG nodes or ask the engine for values; all caching
//! and execution policy lives in gantry-core.

mod client;
pub mod env;
mod error;
mod http;
mod ids;
mod nested;
mod objects;

use std::sync::Arc;

use async_graphql::{EmptyMutation, EmptySubscription, Schema};
use gantry_core::Engine;

pub use client::ClientInfo;
pub use http::{router, serve_tcp, version_headers, Access, RequestObserver, RequestScope};
pub use objects::Query;

/// How deeply a query may nest (one level per chained call). async-graphql's
/// parser refuses documents nested deeper than 64 selection sets, so longer
/// chains must continue from an ID (`loadContainerFromID`), as the SDKs do.
pub const MAX_QUERY_DEPTH: usize = 64;

/// The engine version reported by `Query.version` and `gantry version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub type GantrySchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// Builds the schema; `engine` is reachable from every resolver.
pub fn schema(engine: Arc<Engine>) -> GantrySchema {
    nested::attach(&engine);
    builder()
        .data(engine)
        // SDKs replay whole chains, so documents nest as deep as pipelines
        // are long; async-graphql's default of 32 is far too low.
        .limit_recursive_depth(MAX_QUERY_DEPTH)
        .finish()
}

/// Builds the schema of an engine that serves one session (`gantry run`,
/// `gantry session`, `gantry call`): host paths are read once per session,
/// as Dagger snapshots them, rather than once per request.
pub fn session_schema(engine: Arc<Engine>) -> GantrySchema {
    nested::attach(&engine);
    builder()
        .data(engine)
        .data(objects::HostSnapshots::default())
        .limit_recursive_depth(MAX_QUERY_DEPTH)
        .finish()
}

/// The schema's types, shared by `schema` and `sdl`.
fn builder() -> async_graphql::SchemaBuilder<Query, EmptyMutation, EmptySubscription> {
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .register_output_type::<objects::Node>()
        .register_output_type::<objects::Syncer>()
        .register_output_type::<objects::Exportable>()
        .register_output_type::<objects::Void>()
}

/// The SDL of the schema, as checked in at the repository root.
pub fn sdl() -> String {
    builder().finish().sdl()
}

/// Resolves a secret URI: `env://NAME` (also `env:NAME`) reads the engine
/// process's environment, `file://PATH` (also `file:PATH`) reads a file, a
/// relative path against the client's working directory.
pub(crate) fn secret_from_uri(
    uri: &str,
    client: &ClientInfo,
) -> Result<String, gantry_core::Error> {
    let unsupported = || gantry_core::Error::InvalidArgument {
        message: format!("secret URI {uri:?}: gantry supports env://NAME and file://PATH"),
    };
    let (scheme, rest) = uri.split_once(':').ok_or_else(unsupported)?;
    let rest = rest.trim_start_matches("//");
    match scheme {
        "env" => {
            client.check_host(&format!("secret URI {uri:?}"))?;
            std::env::var(rest).map_err(|_| gantry_core::Error::InvalidArgument {
                message: format!("secret URI {uri:?}: environment variable {rest} is not set"),
            })
        }
        "file" => {
            let path = client.resolve(rest)?;
            std::fs::read_to_string(&path).map_err(|error| gantry_core::Error::Host {
                path: path.display().to_string(),
                reason: error.to_string(),
            })
        }
        _ => Err(unsupported()),
    }
}

/// Parses a GraphQL-over-HTTP JSON body.
pub(crate) fn parse_request(body: &[u8]) -> Result<async_graphql::Request, serde_json::Error> {
    serde_json::from_slice(body).map(request_without_empty_operation_name)
}

/// `"operationName": ""` means no operation name, as in Dagger's server: its
/// Go SDK sends it with every anonymous query. async-graphql would look for
/// an operation named "" and fail.
fn request_without_empty_operation_name(
    mut request: async_graphql::Request,
) -> async_graphql::Request {
    if request.operation_name.as_deref() == Some("") {
        request.operation_name = None;
    }
    request
}

/// Executes a GraphQL-over-HTTP JSON body in process (for `gantry query`
/// without a server) and returns the JSON response.
pub async fn execute_json(
    schema: &GantrySchema,
    body: serde_json::Value,
    client: ClientInfo,
) -> Result<serde_json::Value, serde_json::Error> {
    let request = request_without_empty_operation_name(serde_json::from_value(body)?);
    let response = schema.execute(request.data(client)).await;
    serde_json::to_value(&response)
}
