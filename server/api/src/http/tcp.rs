//! Serving on loopback TCP, which any local user can reach (every `gantry
//! run` session listens there), so a connection must earn what it holds:
//!
//! - a connection that sends no complete request head within
//!   `HEAD_TIMEOUT` is closed (hyper's header read timeout, also between
//!   requests of a kept-alive connection);
//! - at most `MAX_UNAUTHENTICATED` connections may be open that have not yet
//!   made a request the token authorised; beyond that, new connections wait
//!   in the kernel's accept queue (holding no descriptor of the engine)
//!   until one is authorised or closed.
//!
//! Together they bound the descriptors idle or hostile connections take, so
//! the Unix socket (and the engine's own files) always have some.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt as _;

/// How long a connection may take to send a request head.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// How many connections may be open that no token authorised yet.
pub(crate) const MAX_UNAUTHENTICATED: usize = 64;

/// Serves `app` on `listener` under the limits above; returns only when
/// accepting fails for good.
pub async fn serve_tcp(listener: TcpListener, app: Router) -> std::io::Result<()> {
    let unauthenticated = Arc::new(Semaphore::new(MAX_UNAUTHENTICATED));
    loop {
        let permit = unauthenticated
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of descriptors, say: the permit goes back, and accepting
            // resumes once something has been released.
            Err(error) => {
                tracing::warn!(%error, "cannot accept a TCP connection; retrying");
                drop(permit);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        tokio::spawn(serve_connection(stream, app.clone(), permit));
    }
}

/// One connection; its permit is released by the first request that the
/// token authorised (anything but a 401), or when it closes.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: Router,
    permit: OwnedSemaphorePermit,
) {
    let permit = Arc::new(Mutex::new(Some(permit)));
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let app = app.clone();
        let permit = permit.clone();
        async move {
            let response = app
                .oneshot(request.map(Body::new))
                .await
                .unwrap_or_else(|never: Infallible| match never {});
            if response.status() != StatusCode::UNAUTHORIZED {
                permit.lock().expect("never poisoned").take();
            }
            Ok::<_, Infallible>(response)
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(error) = connection.await {
        tracing::debug!(%error, "TCP connection ended");
    }
}
