//! GraphiQL, served by the engine itself so it works without internet
//! access: the page (`/`), its bundles (`/graphiql/{file}`) and the login
//! that turns the printed `/?token=…` URL into a cookie, as Jupyter does.
//!
//! The bundles are npm packages' prebuilt browser builds, vendored under
//! `server/api/assets/graphiql/vendor/` by `scripts/vendor-graphiql.sh`
//! from the lockfile beside them, and embedded in the binary here.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{authenticate, token_matches, Access, AppState};

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Scripts only from this origin, no framing. GraphiQL sets inline
/// styles and its stylesheet embeds its fonts and icons as data URIs.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const INDEX_HTML: &str = include_str!("../../assets/graphiql/index.html");

/// `(file name, content type, bytes)` of everything under `/graphiql/`.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "react.production.min.js",
        JAVASCRIPT,
        include_bytes!("../../assets/graphiql/vendor/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        JAVASCRIPT,
        include_bytes!("../../assets/graphiql/vendor/react-dom.production.min.js"),
    ),
    (
        "graphiql.min.js",
        JAVASCRIPT,
        include_bytes!("../../assets/graphiql/vendor/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        CSS,
        include_bytes!("../../assets/graphiql/vendor/graphiql.min.css"),
    ),
    (
        "gantry.js",
        JAVASCRIPT,
        include_bytes!("../../assets/graphiql/gantry.js"),
    ),
    (
        "VERSIONS",
        TEXT,
        include_bytes!("../../assets/graphiql/vendor/VERSIONS"),
    ),
];

/// The login cookie's name. Browsers share cookies between all ports of a
/// host, and every engine (`gantry serve`, each `gantry run`) has its own
/// port and token, so the name carries the port.
fn cookie_name(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let port = match host.rsplit_once(':') {
        Some((_, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => port,
        _ => "80",
    };
    format!("gantry-token-{port}")
}

/// The value of this listener's login cookie, if the request carries one.
pub(super) fn login_cookie(headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(headers);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

fn with_page_headers(mut response: Response, content_type: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// 401 for the page and its assets: a browser shows this text.
fn login_needed(headers: &HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1:PORT");
    let text = format!(
        "401: gantry needs this engine's login token to open GraphiQL.\n\n\
         Open the URL `gantry serve --listen` printed when it started:\n\
         \x20   http://{host}/?token=…\n"
    );
    with_page_headers((StatusCode::UNAUTHORIZED, text).into_response(), TEXT)
}

#[derive(Debug, Deserialize)]
pub(super) struct Login {
    token: Option<String>,
}

/// `GET /`: the GraphiQL page; `GET /?token=…` logs in and redirects here.
pub(super) async fn index(
    State(state): State<Arc<AppState>>,
    Query(login): Query<Login>,
    headers: HeaderMap,
) -> Response {
    if let Some(presented) = login.token {
        return match &state.access {
            Access::Token(token) if token_matches(&presented, token) => {
                let cookie = format!(
                    "{}={presented}; Path=/; HttpOnly; SameSite=Strict",
                    cookie_name(&headers)
                );
                let mut response = with_page_headers(
                    (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response(),
                    TEXT,
                );
                response.headers_mut().insert(
                    header::SET_COOKIE,
                    HeaderValue::from_str(&cookie).expect("tokens are header-safe"),
                );
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                response
            }
            Access::Token(_) => login_needed(&headers),
            Access::Open => with_page_headers(
                (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response(),
                TEXT,
            ),
        };
    }
    if authenticate(&state.access, &headers).is_none() {
        return login_needed(&headers);
    }
    let mut response = with_page_headers(INDEX_HTML.into_response(), HTML);
    let page = response.headers_mut();
    page.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    page.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// `GET /graphiql/{file}`: the embedded bundles.
pub(super) async fn asset(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    if authenticate(&state.access, &headers).is_none() {
        return login_needed(&headers);
    }
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => with_page_headers(bytes.into_response(), content_type),
        None => with_page_headers(
            (StatusCode::NOT_FOUND, "no such GraphiQL asset\n").into_response(),
            TEXT,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_name_carries_the_port() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:4321".parse().unwrap());
        assert_eq!(cookie_name(&headers), "gantry-token-4321");
        headers.insert(header::HOST, "[::1]:99".parse().unwrap());
        assert_eq!(cookie_name(&headers), "gantry-token-99");
        headers.insert(header::HOST, "localhost".parse().unwrap());
        assert_eq!(cookie_name(&headers), "gantry-token-80");
    }

    #[test]
    fn the_page_names_only_embedded_assets() {
        for src in INDEX_HTML
            .split("/graphiql/")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap())
        {
            assert!(
                ASSETS.iter().any(|(name, _, _)| *name == src),
                "index.html loads /graphiql/{src}, which is not embedded"
            );
        }
    }
}
