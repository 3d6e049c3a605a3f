//! What a serving engine is busy with, for its idle shutdown and its drain:
//! the Unix socket's open connections (a listener that counts them) and the
//! requests still waiting for their answer on any listener (a middleware).
//!
//! A request counts until its response head is sent: a `POST /query` counts
//! while its pipeline runs; a `GET /events` stream stops counting once it is
//! subscribed (it never ends by itself, and its connection keeps the engine
//! from being idle anyway). Connections of the token-protected TCP listener
//! are not counted, only their requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};

use crate::units;

/// Open connections and requests in flight, and since when there were none.
#[derive(Debug)]
pub(crate) struct Activity {
    connections: AtomicUsize,
    in_flight: AtomicUsize,
    /// When the last connection or request ended (or the engine started).
    quiet_since: Mutex<Instant>,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            connections: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            quiet_since: Mutex::new(Instant::now()),
        })
    }

    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// How long nothing has been open or in flight; `None` while something is.
    pub(crate) fn idle_for(&self) -> Option<Duration> {
        if self.connections() > 0 || self.in_flight() > 0 {
            return None;
        }
        let since = *self
            .quiet_since
            .lock()
            .expect("never poisoned: no panics inside");
        // Re-checked after reading the time: something may have begun meanwhile.
        (self.connections() == 0 && self.in_flight() == 0).then(|| since.elapsed())
    }

    /// Waits until no request is in flight, for at most `timeout`; whether
    /// they all finished.
    pub(crate) async fn drained(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.in_flight() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    fn begin(counter: &AtomicUsize) {
        counter.fetch_add(1, Ordering::SeqCst);
    }

    fn end(&self, counter: &AtomicUsize) {
        // The time first: `idle_for` must never see zero with an old time.
        *self
            .quiet_since
            .lock()
            .expect("never poisoned: no panics inside") = Instant::now();
        counter.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts one connection or request while it lives.
struct Guard {
    activity: Arc<Activity>,
    connection: bool,
}

impl Guard {
    fn new(activity: &Arc<Activity>, connection: bool) -> Self {
        let counter = if connection {
            &activity.connections
        } else {
            &activity.in_flight
        };
        Activity::begin(counter);
        Self {
            activity: activity.clone(),
            connection,
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let counter = if self.connection {
            &self.activity.connections
        } else {
            &self.activity.in_flight
        };
        self.activity.end(counter);
    }
}

/// Middleware: counts the request until its response head is ready (the
/// guard is dropped with the handler's future, also when the client hangs
/// up and hyper drops it).
pub(crate) async fn track(
    State(activity): State<Arc<Activity>>,
    request: Request,
    next: Next,
) -> Response {
    let _guard = Guard::new(&activity, false);
    next.run(request).await
}

/// The Unix listener, counting the connections it accepted while they are open.
pub(crate) struct CountingListener {
    pub(crate) listener: UnixListener,
    pub(crate) activity: Arc<Activity>,
}

impl axum::serve::Listener for CountingListener {
    type Io = CountedStream;
    type Addr = tokio::net::unix::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, addr)) => {
                    let guard = Guard::new(&self.activity, true);
                    return (
                        CountedStream {
                            stream,
                            _guard: guard,
                        },
                        addr,
                    );
                }
                // Out of descriptors, say: wait for some to be released.
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// A Unix connection that counts as open until dropped.
pub(crate) struct CountedStream {
    stream: UnixStream,
    _guard: Guard,
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// `--idle-timeout`: `None` for never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdleTimeout(pub(crate) Option<Duration>);

impl std::str::FromStr for IdleTimeout {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse_idle_timeout(text).map(Self)
    }
}

/// `--idle-timeout`: a duration such as `30m`, `1h30m`, `90s` or `500ms`;
/// `0`, `off` or `never`: never.
pub(crate) fn parse_idle_timeout(text: &str) -> Result<Option<Duration>, String> {
    let text = text.trim();
    if matches!(text, "0" | "off" | "never" | "") {
        return Ok(None);
    }
    let duration =
        units::parse_duration(text).map_err(|error| format!("{error}, or 0/off for never"))?;
    Ok((!duration.is_zero()).then_some(duration))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_timeouts_parse() {
        assert_eq!(
            parse_idle_timeout("30m"),
            Ok(Some(Duration::from_secs(1800)))
        );
        assert_eq!(
            parse_idle_timeout("1h30m"),
            Ok(Some(Duration::from_secs(5400)))
        );
        assert_eq!(
            parse_idle_timeout("1500ms"),
            Ok(Some(Duration::from_millis(1500)))
        );
        assert_eq!(
            parse_idle_timeout("2d"),
            Ok(Some(Duration::from_secs(172_800)))
        );
        for never in ["0", "off", "never", "0s"] {
            assert_eq!(parse_idle_timeout(never), Ok(None), "{never}");
        }
        for bad in ["30", "m", "5 minutes", "-1s", "3x"] {
            let error = parse_idle_timeout(bad).unwrap_err();
            assert!(error.contains("is not a duration"), "{bad}: {error}");
        }
    }

    #[tokio::test]
    async fn idle_only_without_connections_and_requests() {
        let activity = Activity::new();
        assert!(activity.idle_for().is_some());
        let request = Guard::new(&activity, false);
        assert_eq!(activity.idle_for(), None);
        assert!(!activity.drained(Duration::from_millis(100)).await);
        drop(request);
        assert!(activity.drained(Duration::from_millis(100)).await);
        let connection = Guard::new(&activity, true);
        assert_eq!(activity.idle_for(), None);
        drop(connection);
        assert!(activity.idle_for().unwrap() < Duration::from_secs(5));
    }
}
