//! The HTTP front: `POST /query` with GraphQL-over-HTTP JSON bodies.
//!
//! On the Unix socket (mode 0600, so only its owner connects) no token is
//! needed; on loopback TCP every request needs the session token as HTTP
//! basic-auth username (what Dagger's SDKs send) and gets 401 without it.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;

use crate::{ClientInfo, GantrySchema};

/// The largest request body accepted.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Who may call the API.
#[derive(Clone)]
pub enum Access {
    /// Anyone who can reach the listener (the Unix socket's mode guards it).
    Open,
    /// Requests must carry this token.
    Token(Arc<str>),
}

struct AppState {
    schema: GantrySchema,
    access: Access,
    workdir: PathBuf,
}

/// The router for one listener. `workdir` is where relative host paths
/// resolve for clients that send no `X-Gantry-Workdir` header.
pub fn router(schema: GantrySchema, access: Access, workdir: PathBuf) -> Router {
    Router::new()
        .route("/query", post(query))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Arc::new(AppState {
            schema,
            access,
            workdir,
        }))
}

fn error_body(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "errors": [{ "message": message }] })),
    )
        .into_response()
}

/// Accepts `Authorization: Basic base64(token:)` (any password) or
/// `Authorization: Bearer token`.
fn authorized(access: &Access, headers: &HeaderMap) -> bool {
    let Access::Token(token) = access else {
        return true;
    };
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let presented = if let Some(encoded) = value.strip_prefix("Basic ") {
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(|text| text.split(':').next().unwrap_or_default().to_owned())
    } else {
        value
            .strip_prefix("Bearer ")
            .map(|token| token.trim().to_owned())
    };
    presented.is_some_and(|presented| constant_time_eq(presented.as_bytes(), token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn query(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&state.access, &headers) {
        let mut response = error_body(
            StatusCode::UNAUTHORIZED,
            "missing or wrong session token: send it as the HTTP basic-auth username",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"gantry\""),
        );
        return response;
    }
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return error_body(
                StatusCode::BAD_REQUEST,
                &format!(
                "the request body is not a GraphQL JSON request ({{\"query\": \"...\"}}): {error}"
            ),
            )
        }
    };
    let workdir = headers
        .get("x-gantry-workdir")
        .and_then(|value| value.to_str().ok())
        .filter(|path| path.starts_with('/'))
        .map(PathBuf::from)
        .unwrap_or_else(|| state.workdir.clone());
    let response = state
        .schema
        .execute(request.data(ClientInfo { workdir }))
        .await;
    if let Some(error) = response.errors.first() {
        tracing::debug!(message = %error.message, "request failed");
    }
    Json(response).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_uses_the_username() {
        let access = Access::Token(Arc::from("tok"));
        let mut headers = HeaderMap::new();
        assert!(!authorized(&access, &headers));
        let encoded = base64::engine::general_purpose::STANDARD.encode("tok:");
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {encoded}").parse().unwrap(),
        );
        assert!(authorized(&access, &headers));
        let wrong = base64::engine::general_purpose::STANDARD.encode("nope:");
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {wrong}").parse().unwrap(),
        );
        assert!(!authorized(&access, &headers));
        assert!(authorized(&Access::Open, &HeaderMap::new()));
    }
}
