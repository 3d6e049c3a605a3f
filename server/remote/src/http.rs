//! HTTP(S) GETs with reqwest and rustls (ring), trusting the platform's
//! certificate store. The client is built on first use, so an engine on a
//! machine or image without a trust store starts and serves everything but
//! HTTP sources, which then fail naming the cause.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::{Once, OnceLock};

use bytes::Bytes;
use gantry_core::remote::{HttpRequest, HttpResponse, RemoteError};
use reqwest::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use reqwest::StatusCode;

pub(crate) struct HttpClient {
    client: OnceLock<Result<reqwest::Client, String>>,
}

/// rustls needs a process-wide crypto provider; ring is the one built in.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another part of the process may have installed one already.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl HttpClient {
    pub(crate) fn new() -> Self {
        Self {
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> Result<&reqwest::Client, RemoteError> {
        self.client
            .get_or_init(|| build(reqwest::Client::builder()))
            .as_ref()
            .map_err(|reason| RemoteError::Unavailable {
                reason: reason.clone(),
            })
    }

    /// The shared client, or one of its own for a request whose host only
    /// the engine can resolve (a service's): it connects to the given
    /// address, directly (a proxy could not reach a service), and keeps
    /// the URL's name in the `Host` header and TLS.
    fn client_for(&self, request: &HttpRequest) -> Result<Cow<'_, reqwest::Client>, RemoteError> {
        let Some(resolve) = &request.resolve else {
            return self.client().map(Cow::Borrowed);
        };
        // Port 0: the URL's own port (or its scheme's) is used.
        let builder = reqwest::Client::builder()
            .no_proxy()
            .resolve(&resolve.host, SocketAddr::new(resolve.address, 0));
        build(builder)
            .map(Cow::Owned)
            .map_err(|reason| RemoteError::Unavailable { reason })
    }

    pub(crate) async fn get(&self, request: &HttpRequest) -> Result<HttpResponse, RemoteError> {
        let failed = |reason: String| RemoteError::Http {
            url: request.url.clone(),
            reason,
        };
        let response = self
            .client_for(request)?
            .get(&request.url)
            .headers(headers(request).map_err(failed)?)
            .send()
            .await
            .map_err(|error| failed(without_url(error)))?;
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|value: &HeaderValue| value.to_str().ok())
                .map(str::to_owned)
        };
        let etag = header(ETAG);
        let last_modified = header(LAST_MODIFIED);
        match response.status() {
            StatusCode::NOT_MODIFIED => Ok(HttpResponse::NotModified {
                etag,
                last_modified,
            }),
            StatusCode::OK => {
                let body: Bytes = response
                    .bytes()
                    .await
                    .map_err(|error| failed(without_url(error)))?;
                Ok(HttpResponse::Body {
                    body,
                    etag,
                    last_modified,
                })
            }
            status => Err(RemoteError::HttpStatus {
                url: request.url.clone(),
                status: status.as_u16(),
            }),
        }
    }
}

fn build(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, String> {
    install_crypto_provider();
    builder
        .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| {
            format!(
                "building the HTTP client failed: {error} (is there a TLS trust store? gantry \
                 reads the system's CA certificates, e.g. /etc/ssl/certs; in a container image, \
                 mount or copy them)"
            )
        })
}

/// The request's headers; the `Authorization` value is marked sensitive
/// (kept out of debug output, dropped on redirects to another host).
fn headers(request: &HttpRequest) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    if let Some(authorization) = &request.authorization {
        let mut value = HeaderValue::from_str(authorization)
            .map_err(|_| "the authHeader secret is not a valid header value".to_owned())?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    for (name, value) in [
        (IF_NONE_MATCH, &request.etag),
        (IF_MODIFIED_SINCE, &request.last_modified),
    ] {
        if let Some(value) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, value);
        }
    }
    Ok(headers)
}

/// reqwest's message with its source chain, without repeating the URL
/// (the error names it already).
fn without_url(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
