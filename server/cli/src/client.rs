//! The CLI's HTTP client for an engine that is already running: `POST
//! /query` and `GET /events` over the engine's Unix socket, with hyper's
//! HTTP/1.1 client.
//!
//! It owns the wire (request heads, status checks, JSON bodies, server-sent
//! events); what the events look like on a terminal is `progress.rs`'s
//! business. Each request has a connection of its own: a query and the event
//! stream that shows its progress run side by side, so there is nothing to
//! pool. The connection is generic over its byte stream (`open`), so a
//! loopback TCP session would only need another way to connect.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt as _;
use gantry_core::events::Event;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::UnixStream;

use crate::env;

/// How long the engine may take to answer the event-stream request.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP/1.1 connection to a running engine.
pub(crate) struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    /// Connects to the engine on `socket`; fails when none answers there.
    pub(crate) async fn open(socket: &Path) -> Result<Self> {
        let stream = UnixStream::connect(socket)
            .await
            .with_context(|| format!("while connecting to {}", socket.display()))?;
        Self::over(stream).await
    }

    /// Speaks HTTP/1.1 over `stream`; the connection is driven by a task of
    /// its own until both sides are done with it.
    pub(crate) async fn over(
        stream: impl AsyncRead + AsyncWrite + Send + Unpin + 'static,
    ) -> Result<Self> {
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("while starting an HTTP connection to the engine")?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "the engine connection ended with an error");
            }
        });
        Ok(Self { sender })
    }

    /// `POST /query` with a GraphQL-over-HTTP JSON body, as a client whose
    /// working directory is `workdir` (where relative host paths resolve).
    pub(crate) async fn query(
        mut self,
        body: &serde_json::Value,
        workdir: &Path,
    ) -> Result<serde_json::Value> {
        let mut request = Request::post("/query")
            .header(HOST, "gantry")
            .header(CONTENT_TYPE, "application/json");
        // Percent-encoded: any path, `café` included, reaches the engine.
        let dir = HeaderValue::from_str(&gantry_api::env::encode_workdir(workdir))
            .context("while encoding the working directory")?;
        request = request.header(env::WORKDIR_HEADER, dir);
        let request = request
            .body(Full::new(Bytes::from(serde_json::to_vec(body)?)))
            .context("while building the query request")?;
        let (status, body) = self
            .exchange(request)
            .await
            .context("while sending the query to the engine")?;
        if status != StatusCode::OK {
            bail!(
                "the engine answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        parse_deep(&body).context("while parsing the engine's JSON answer")
    }

    /// A bodiless `method path` (the control endpoint: `GET /engine`, `POST
    /// /engine/stop`); the status and the body, whatever the status.
    pub(crate) async fn send(
        mut self,
        method: hyper::Method,
        path: &str,
    ) -> Result<(StatusCode, Bytes)> {
        let request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(HOST, "gantry")
            .body(Full::default())
            .with_context(|| format!("while building {method} {path}"))?;
        self.exchange(request)
            .await
            .with_context(|| format!("while sending {method} {path} to the engine"))
    }

    /// Sends `request`; the answer's status and whole body.
    async fn exchange(&mut self, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes)> {
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .context("while reading the engine's answer")?
            .to_bytes();
        Ok((status, body))
    }

    /// `GET /events`: the engine's step events and exec output from now on
    /// (with `explain`, cache misses explained). Returns once the engine has
    /// subscribed this client (it answers only then), so no event of a
    /// request sent afterwards is missed. The stream ends when the engine
    /// closes it.
    pub(crate) async fn events(mut self, explain: bool) -> Result<BoxStream<'static, Event>> {
        let path = if explain {
            "/events?explain=1"
        } else {
            "/events"
        };
        let request = Request::get(path)
            .header(HOST, "gantry")
            .header(ACCEPT, "text/event-stream")
            .body(Full::default())
            .context("while building the event-stream request")?;
        let response = tokio::time::timeout(SUBSCRIBE_TIMEOUT, self.sender.send_request(request))
            .await
            .context("while waiting for the event stream")?
            .context("while asking for the event stream")?;
        if response.status() != StatusCode::OK {
            bail!("the engine answered {} to GET /events", response.status());
        }
        let events = sse_stream::SseStream::new(response.into_body()).filter_map(|item| {
            std::future::ready(match item {
                Ok(sse) => decode(sse),
                Err(error) => {
                    // The stream ends after its first error.
                    tracing::debug!(%error, "the event stream broke off");
                    None
                }
            })
        });
        Ok(events.boxed())
    }
}

/// One server-sent event as the renderer wants it. Step events have no
/// `event:` name; exec output lines are named `output`; a new kind of event
/// gets a name of its own and an arm here.
fn decode(sse: sse_stream::Sse) -> Option<Event> {
    let data = sse.data?;
    let unreadable = |error: serde_json::Error| {
        tracing::debug!(%error, "skipping an unreadable event");
    };
    match sse.event.as_deref() {
        None | Some("message") => serde_json::from_str(&data)
            .map(Event::Step)
            .map_err(unreadable)
            .ok(),
        Some("output") => serde_json::from_str(&data)
            .map(Event::Output)
            .map_err(unreadable)
            .ok(),
        Some(kind) => {
            tracing::debug!(kind, "skipping an event of an unknown kind");
            None
        }
    }
}

/// Parses JSON without serde_json's nesting limit of 128: answers nest one
/// level per chained call, and pipelines can be longer than that. The worker
/// stack (see main.rs) is sized for `MAX_QUERY_DEPTH`.
fn parse_deep(bytes: &[u8]) -> serde_json::Result<serde_json::Value> {
    use serde::Deserialize as _;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    deserializer.disable_recursion_limit();
    serde_json::Value::deserialize(&mut deserializer)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::response::sse::{Event, Sse};
    use axum::routing::{get, post};

    use gantry_core::events::StepEvent;

    use super::*;

    fn event(name: &str) -> StepEvent {
        let mut event: StepEvent = serde_json::from_value(serde_json::json!({
            "digest": "abc", "name": name, "state": "running", "time": 1.5, "detail": null,
        }))
        .unwrap();
        event.cache_miss = Some(vec!["new step".into()]);
        event
    }

    /// Serves `app` on a socket in a fresh directory (kept alive by the
    /// returned guard).
    fn serve(app: axum::Router) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("engine.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (dir, socket)
    }

    #[tokio::test]
    async fn a_query_carries_the_workdir_and_comes_back_parsed() {
        let app = axum::Router::new().route(
            "/query",
            post(|headers: axum::http::HeaderMap, body: String| async move {
                let workdir = headers[env::WORKDIR_HEADER].to_str().unwrap().to_owned();
                let query: serde_json::Value = serde_json::from_str(&body).unwrap();
                axum::Json(
                    serde_json::json!({ "data": { "workdir": workdir, "query": query["query"] } }),
                )
            }),
        );
        let (_dir, socket) = serve(app);
        let body = serde_json::json!({ "query": "{ version }" });
        let answer = Connection::open(&socket)
            .await
            .unwrap()
            .query(&body, Path::new("/work/dir"))
            .await
            .unwrap();
        assert_eq!(answer["data"]["workdir"], "/work/dir");
        assert_eq!(answer["data"]["query"], "{ version }");
    }

    #[tokio::test]
    async fn an_error_status_names_the_status_and_the_body() {
        let app = axum::Router::new().route(
            "/query",
            post(|| async { (axum::http::StatusCode::BAD_REQUEST, "no query here") }),
        );
        let (_dir, socket) = serve(app);
        let error = Connection::open(&socket)
            .await
            .unwrap()
            .query(&serde_json::json!({}), Path::new("/"))
            .await
            .unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            "the engine answered 400 Bad Request: no query here"
        );
    }

    #[tokio::test]
    async fn events_skip_comments_and_unknown_kinds_and_read_output() {
        let app = axum::Router::new().route(
            "/events",
            get(|| async {
                let output = serde_json::json!({
                    "digest": "abc", "stream": "stderr", "lines": ["a line"],
                });
                let events = vec![
                    Event::default().comment("gantry events"),
                    Event::default().json_data(event("one")).unwrap(),
                    Event::default().event("later-kind").data("{}"),
                    Event::default().data("not json"),
                    Event::default().event("output").json_data(output).unwrap(),
                    Event::default().json_data(event("two")).unwrap(),
                ];
                Sse::new(futures::stream::iter(events).map(Ok::<_, Infallible>))
            }),
        );
        let (_dir, socket) = serve(app);
        let events = Connection::open(&socket)
            .await
            .unwrap()
            .events(false)
            .await
            .unwrap();
        let seen: Vec<String> = events
            .map(|event| match event {
                gantry_core::events::Event::Step(step) => {
                    format!("{} {:?}", step.name, step.cache_miss.unwrap_or_default())
                }
                gantry_core::events::Event::Output(output) => {
                    format!("{:?} {:?}", output.stream, output.lines)
                }
            })
            .collect()
            .await;
        assert_eq!(
            seen,
            [
                r#"one ["new step"]"#,
                r#"Stderr ["a line"]"#,
                r#"two ["new step"]"#
            ]
        );
    }

    #[tokio::test]
    async fn nothing_listening_is_an_error_naming_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("none.sock");
        let error = Connection::open(&socket).await.err().unwrap();
        assert!(
            format!("{error:#}").contains(&socket.display().to_string()),
            "{error:#}"
        );
    }
}
