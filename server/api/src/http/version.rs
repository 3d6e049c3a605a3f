//! The version headers: every response names the engine's version
//! (`X-Gantry-Version`), which the SDKs compare with their own, and the
//! engine logs each distinct client (`X-Gantry-Client: <sdk>/<version>`)
//! once, as a warning when its version does not match.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::env::{versions_match, CLIENT_HEADER, VERSION_HEADER};
use crate::VERSION;

/// At most this many distinct clients are logged: the set lives as long as
/// the engine, and a client on loopback TCP could otherwise grow it (and the
/// log) without bound by sending a new value with each request.
const MAX_CLIENTS_LOGGED: usize = 64;

/// The longest client value logged; longer ones are cut.
const MAX_CLIENT_LENGTH: usize = 100;

/// The clients logged so far. One set per process rather than per router:
/// an engine's listeners (the socket, loopback TCP) log a client once
/// between them.
static CLIENTS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Middleware (`axum::middleware::from_fn`): notes the client's version and
/// adds the engine's to the response.
pub async fn version_headers(request: Request, next: Next) -> Response {
    if let Some(client) = request.headers().get(CLIENT_HEADER) {
        note_client(client);
    }
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        HeaderName::from_bytes(VERSION_HEADER.as_bytes()).expect("a valid header name"),
        HeaderValue::from_static(VERSION),
    );
    response
}

fn note_client(value: &HeaderValue) {
    let Some(client) = value
        .to_str()
        .ok()
        .map(|text| text.chars().take(MAX_CLIENT_LENGTH).collect::<String>())
    else {
        return;
    };
    {
        let mut seen = CLIENTS.lock().unwrap_or_else(PoisonError::into_inner);
        let seen = seen.get_or_insert_with(HashSet::new);
        if seen.len() >= MAX_CLIENTS_LOGGED || !seen.insert(client.clone()) {
            return;
        }
    }
    let version = client.rsplit_once('/').map_or(client.as_str(), |(_, v)| v);
    if versions_match(version, VERSION) {
        tracing::info!(%client, engine = VERSION, "client connected");
    } else {
        tracing::warn!(
            %client,
            engine = VERSION,
            "client version does not match the engine's"
        );
    }
}
