//! The HTTP front: `POST /query` with GraphQL-over-HTTP JSON bodies,
//! `GET /events` (the engine's step events and exec output as server-sent
//! events) and
//! GraphiQL at `/` (see `graphiql`).
//!
//! On the Unix socket (mode 0600, so only its owner connects) no token is
//! needed; on loopback TCP every request needs the session token and gets
//! 401 without it. SDKs send the token as the HTTP basic-auth username (or
//! as a bearer token); a browser exchanges `/?token=…` for an HttpOnly,
//! SameSite=Strict cookie, which is honoured only on same-origin requests.

mod graphiql;
mod tcp;
mod version;

pub use tcp::serve_tcp;
pub use version::version_headers;

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use futures::StreamExt as _;
use gantry_core::events::Event as EngineEvent;
use gantry_core::Engine;
use tokio::sync::broadcast;

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

/// Watches every `POST /query` (`gantry serve`'s traces): a router gets
/// one as an `Extension(Arc<dyn RequestObserver>)` layer.
pub trait RequestObserver: Send + Sync {
    /// A request starts. `headers` and `extensions` are the request's own
    /// (a `traceparent` header; what the server's connection added).
    fn start(
        &self,
        headers: &HeaderMap,
        extensions: &Extensions,
        operation: Option<&str>,
    ) -> Box<dyn RequestScope>;
}

/// One request being watched; ended when its response is ready.
pub trait RequestScope: Send {
    /// The tag of the step events the request's evaluation emits
    /// (`gantry_core::events::with_origin`).
    fn origin(&self) -> u64;
    /// The request was answered; `failed` when its response has errors.
    fn end(self: Box<Self>, failed: bool);
}

struct AppState {
    schema: GantrySchema,
    access: Access,
    workdir: Option<PathBuf>,
    /// A nested session's listener: its clients have no host
    /// (`ClientInfo::nested`).
    nested: bool,
}

/// The router for one listener. `workdir` is where relative host paths
/// resolve for clients that send no `X-Gantry-Workdir` header (a session's
/// command directory); with none, such clients get relative paths refused.
pub fn router(schema: GantrySchema, access: Access, workdir: Option<PathBuf>) -> Router {
    router_for(AppState {
        schema,
        access,
        workdir,
        nested: false,
    })
}

/// The router of a nested session (`crate::nested`): `token` required, no
/// host for its clients.
pub(crate) fn nested_router(schema: GantrySchema, token: Arc<str>) -> Router {
    router_for(AppState {
        schema,
        access: Access::Token(token),
        workdir: None,
        nested: true,
    })
}

fn router_for(state: AppState) -> Router {
    Router::new()
        .route("/query", post(query))
        .route("/events", get(events))
        .route("/", get(graphiql::index))
        .route("/graphiql/{file}", get(graphiql::asset))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(version_headers))
        .with_state(Arc::new(state))
}

fn error_body(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "errors": [{ "message": message }] })),
    )
        .into_response()
}

/// How a request showed it may use the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credential {
    /// The listener needs no token.
    Open,
    /// `Authorization: Basic` (token as username) or `Bearer`.
    Header,
    /// The login cookie GraphiQL's page got from `/?token=…`.
    Cookie,
}

/// Accepts `Authorization: Basic base64(token:)` (any password),
/// `Authorization: Bearer token`, or the login cookie on a same-origin
/// request.
fn authenticate(access: &Access, headers: &HeaderMap) -> Option<Credential> {
    let Access::Token(token) = access else {
        return Some(Credential::Open);
    };
    if header_token(headers).is_some_and(|presented| token_matches(&presented, token)) {
        return Some(Credential::Header);
    }
    let cookie = graphiql::login_cookie(headers)?;
    (token_matches(&cookie, token) && same_origin(headers)).then_some(Credential::Cookie)
}

fn header_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(encoded) = value.strip_prefix("Basic ") {
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(|text| text.split(':').next().unwrap_or_default().to_owned())
    } else {
        value
            .strip_prefix("Bearer ")
            .map(|token| token.trim().to_owned())
    }
}

fn token_matches(presented: &str, token: &str) -> bool {
    constant_time_eq(presented.as_bytes(), token.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a cookie-carrying request comes from our own page. SameSite
/// keeps other sites' requests from carrying the cookie, but every port on
/// 127.0.0.1 is the same site, so a page served by anything else on this
/// machine could otherwise send it: browsers say where a request comes from
/// in `Origin` and `Sec-Fetch-Site`, and both must name this origin.
fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|value| value.to_str().ok());
    let Some(host) = text(header::HOST) else {
        return false;
    };
    if let Some(origin) = text(header::ORIGIN) {
        if origin != format!("http://{host}") {
            return false;
        }
    }
    match text(header::HeaderName::from_static("sec-fetch-site")) {
        None | Some("same-origin" | "none") => true,
        Some(_) => false,
    }
}

fn unauthorized_json() -> Response {
    let mut response = error_body(
        StatusCode::UNAUTHORIZED,
        "missing or wrong session token: send it as the HTTP basic-auth username",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"gantry\""),
    );
    response
}

async fn query(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Bytes,
) -> Response {
    let Some(credential) = authenticate(&state.access, &headers) else {
        return unauthorized_json();
    };
    // A cookie is sent by the browser on its own: insisting on a JSON body
    // means a cross-origin page cannot send one without a CORS preflight,
    // which this server never grants.
    if credential == Credential::Cookie && !is_json(&headers) {
        return error_body(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "requests authorised by the login cookie must be Content-Type: application/json",
        );
    }
    let request = match crate::parse_request(&body) {
        Ok(request) if has_query(&body) => request,
        Ok(_) => {
            return error_body(
                StatusCode::BAD_REQUEST,
                "the request body has no \"query\": send {\"query\": \"...\"}",
            )
        }
        Err(error) => {
            return error_body(
                StatusCode::BAD_REQUEST,
                &format!(
                "the request body is not a GraphQL JSON request ({{\"query\": \"...\"}}): {error}"
            ),
            )
        }
    };
    let workdir = match headers.get(crate::env::WORKDIR_HEADER) {
        None => state.workdir.clone(),
        Some(value) => match crate::env::decode_workdir(value.as_bytes()) {
            Some(path) => Some(path),
            None => {
                return error_body(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "the {} header must be an absolute path, percent-encoded (RFC 3986) \
                         where it is not printable ASCII",
                        crate::env::WORKDIR_HEADER
                    ),
                )
            }
        },
    };
    let scope = extensions
        .get::<Arc<dyn RequestObserver>>()
        .map(|observer| observer.start(&headers, &extensions, request.operation_name.as_deref()));
    let client = match state.nested {
        true => ClientInfo::nested(),
        false => ClientInfo::new(workdir),
    };
    let execution = state.schema.execute(request.data(client));
    let response = match &scope {
        Some(scope) => gantry_core::events::with_origin(scope.origin(), execution).await,
        None => execution.await,
    };
    if let Some(scope) = scope {
        scope.end(!response.errors.is_empty());
    }
    if let Some(error) = response.errors.first() {
        tracing::debug!(message = %error.message, "request failed");
    }
    Json(response).into_response()
}

/// Whether a JSON body has a non-empty `query` string (async-graphql
/// defaults a missing one to empty, which would answer 200 with an error).
fn has_query(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        query: Option<String>,
    }
    serde_json::from_slice::<Body>(body)
        .ok()
        .and_then(|body| body.query)
        .is_some_and(|query| !query.trim().is_empty())
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// `GET /events`: every step event of this engine from now on, one
/// server-sent event per step (`data: {"digest","name","state","time",…}`),
/// and the lines running execs print, scrubbed of secrets, as events named
/// `output` (`data: {"digest","stream","lines"}`), for every client of the
/// engine. With `?explain=1`, each exec that runs says why the cache
/// missed (`cache_miss` on its `running` event) while this client listens.
/// The first message is a comment, so a client knows it is subscribed once
/// it has read it.
async fn events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if authenticate(&state.access, &headers).is_none() {
        return unauthorized_json();
    }
    let Some(engine) = state.schema.data::<Arc<Engine>>() else {
        return error_body(StatusCode::NOT_FOUND, "this schema has no engine");
    };
    let explain = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .any(|pair| matches!(pair, "explain" | "explain=1" | "explain=true"));
    let subscription = engine.events().subscribe().explaining(explain);
    let events = futures::stream::unfold(subscription, |mut subscription| async move {
        let event = match subscription.recv().await {
            Ok(event) => sse_event(&event),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "event stream client fell behind");
                Event::default().comment(format!("missed {missed} events"))
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((event, subscription))
    });
    let stream = futures::stream::once(async { Event::default().comment("gantry events") })
        .chain(events)
        .map(Ok::<_, Infallible>);
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// One engine event on the wire: step events unnamed (as before output
/// events existed), output lines named `output`.
fn sse_event(event: &EngineEvent) -> Event {
    match event {
        EngineEvent::Step(step) => Event::default()
            .json_data(step)
            .expect("step events always serialise"),
        EngineEvent::Output(output) => Event::default()
            .event("output")
            .json_data(output)
            .expect("output events always serialise"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_uses_the_username() {
        let access = Access::Token(Arc::from("tok"));
        let mut headers = HeaderMap::new();
        assert!(authenticate(&access, &headers).is_none());
        let encoded = base64::engine::general_purpose::STANDARD.encode("tok:");
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {encoded}").parse().unwrap(),
        );
        assert_eq!(authenticate(&access, &headers), Some(Credential::Header));
        let wrong = base64::engine::general_purpose::STANDARD.encode("nope:");
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {wrong}").parse().unwrap(),
        );
        assert!(authenticate(&access, &headers).is_none());
        assert_eq!(
            authenticate(&Access::Open, &HeaderMap::new()),
            Some(Credential::Open)
        );
    }

    fn cookie_request(origin: Option<&str>, site: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        headers.insert(
            header::COOKIE,
            "other=1; gantry-token-8080=tok".parse().unwrap(),
        );
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, origin.parse().unwrap());
        }
        if let Some(site) = site {
            headers.insert("sec-fetch-site", site.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_login_cookie_counts_only_from_the_same_origin() {
        let access = Access::Token(Arc::from("tok"));
        let ok = [
            cookie_request(None, None),
            cookie_request(Some("http://127.0.0.1:8080"), Some("same-origin")),
            cookie_request(None, Some("none")),
        ];
        for headers in ok {
            assert_eq!(authenticate(&access, &headers), Some(Credential::Cookie));
        }
        let refused = [
            cookie_request(Some("http://127.0.0.1:9999"), None),
            cookie_request(Some("null"), None),
            cookie_request(None, Some("same-site")),
            cookie_request(None, Some("cross-site")),
        ];
        for headers in refused {
            assert_eq!(authenticate(&access, &headers), None, "{headers:?}");
        }
        // Another port's cookie (another engine) is not ours.
        let mut other_port = cookie_request(None, None);
        other_port.insert(header::HOST, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(authenticate(&access, &other_port), None);
        let mut wrong = cookie_request(None, None);
        wrong.insert(header::COOKIE, "gantry-token-8080=nope".parse().unwrap());
        assert_eq!(authenticate(&access, &wrong), None);
    }
}
