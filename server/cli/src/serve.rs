//! `gantry serve`: the engine as a long-running server on a Unix socket,
//! optionally also on loopback TCP with a token.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context as _, Result};
use gantry_api::Access;
use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::sync::watch;

use crate::activity::{self, Activity};
use crate::engine::{self, EngineArgs};
use crate::status::StopReason;

/// How long a stopping engine waits for the requests in flight to be answered.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// How long answers already produced get to reach their clients once the
/// requests have drained (event streams, which never end, are cut after it).
const FLUSH_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The Unix socket is created with mode 0600: only its owner can connect.\n\
With --listen, every request needs the printed token as the HTTP basic-auth username.\n\
\n\
GraphiQL: start with --listen (e.g. --listen 127.0.0.1:8080) and open the printed\n\
http://127.0.0.1:8080/?token=... URL in a browser. It logs the browser in with an\n\
HttpOnly cookie for that port and shows GraphiQL (schema docs, completion, history),\n\
served by gantry itself: no internet access is needed. Without the token: 401.\n\
\n\
Both listeners also stream step events at GET /events (server-sent events), which\n\
`gantry query` shows as progress. The socket alone also serves GET /engine (status,\n\
`gantry engine status`) and POST /engine/stop (`gantry engine stop`).\n\
\n\
Stopping (SIGTERM, SIGINT, `gantry engine stop`, idle timeout) is graceful: no new\n\
connections, requests in flight get up to 60 s to finish, then the socket is removed\n\
and the state directory released."
)]
pub(crate) struct ServeArgs {
    /// Unix socket to listen on [env: GANTRY_SOCKET] [default: $XDG_RUNTIME_DIR/gantry/engine.sock or /tmp/gantry-$UID/engine.sock]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Also listen on this loopback address, e.g. 127.0.0.1:8080 (token required; GraphiQL at /)
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Token for --listen [default: random, printed at start]
    #[arg(long, env = crate::env::TOKEN, hide_env_values = true)]
    token: Option<String>,
    /// Stop after this long with no open connection and no request in flight, e.g. 30m, 1h, 90s; 0 or off: never [default: never; engines the SDKs start: 30m]
    #[arg(long, value_name = "DURATION", env = crate::env::IDLE_TIMEOUT)]
    idle_timeout: Option<activity::IdleTimeout>,
    #[command(flatten)]
    engine: EngineArgs,
}

/// `--socket` if given, else `GANTRY_SOCKET`, else the default path.
pub(crate) fn socket_path(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .unwrap_or_else(crate::env::socket_path)
}

pub(crate) fn random_token() -> String {
    let bytes: [u8; 24] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Binds the socket, refusing to steal it from a live engine and removing a
/// stale one left by an engine that died.
async fn bind_socket(path: &Path) -> Result<UnixListener> {
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            bail!(
                "another engine is already listening on {}; stop it or pass --socket with another path",
                path.display()
            );
        }
        fs::remove_file(path)
            .with_context(|| format!("while removing the stale socket {}", path.display()))?;
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("while creating {}", parent.display()))?;
        fs::set_permissions(parent, fs::Permissions::from_mode(0o700)).ok();
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("while binding {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("while setting the mode of {}", path.display()))?;
    Ok(listener)
}

pub(crate) async fn run(args: ServeArgs) -> Result<()> {
    let mut shutdown = Shutdown::listen();
    let started = Instant::now();
    let started_at = SystemTime::now();
    let socket = socket_path(args.socket.as_deref());
    if let Some(addr) = args.listen {
        if !addr.ip().is_loopback() {
            bail!("--listen {addr}: only loopback addresses (127.0.0.1, ::1) are allowed");
        }
    }
    let idle_timeout = args.idle_timeout.and_then(|timeout| timeout.0);
    // One `gantry serve` per state directory: a second is refused with an
    // error naming the first one's socket (other engines on the directory,
    // `gantry run` sessions, cooperate through record locks instead).
    let store = engine::open_store(&args.engine)?;
    let _claim = store
        .state_dir()
        .claim_serving(&socket)
        .context("while claiming the state directory")?;
    let state = store.state_dir().clone();
    let (engine, runtime) = engine::start_serving(&args.engine, store).await?;
    let schema = gantry_api::schema(engine.clone());
    let unix = bind_socket(&socket).await?;
    // `--cache-max-size`: evicted every 5 minutes too, keeping what this
    // engine used since it started (its sessions may still hold it).
    let evictor = tokio::spawn(async {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(300));
        every.tick().await;
        loop {
            every.tick().await;
            engine::enforce_size_limit(false).await;
        }
    });
    tracing::info!(
        socket = %socket.display(),
        state_dir = %args.engine.state_dir().display(),
        runtime = runtime.name(),
        idle_timeout = %idle_timeout.map_or_else(|| "never".to_owned(), crate::units::format_duration),
        "engine serving"
    );
    eprintln!("gantry: serving on unix://{}", socket.display());
    let activity = Activity::new();
    let (stop, mut stopping) = watch::channel(None::<StopReason>);
    let control = crate::status::router(crate::status::Control {
        socket: socket.clone(),
        state,
        runtime: runtime.name(),
        idle_timeout,
        activity: activity.clone(),
        stop: stop.clone(),
        started,
        started_at,
    });
    // A socket client sends its working directory (X-Gantry-Workdir); one
    // that does not gets relative host paths refused, never resolved against
    // the engine's own directory.
    let unix_app = gantry_api::router(schema.clone(), Access::Open, None)
        .merge(control)
        .layer(axum::middleware::from_fn_with_state(
            activity.clone(),
            activity::track,
        ));
    // OTEL_EXPORTER_OTLP_ENDPOINT: a trace per client session (see telemetry).
    let trace = crate::telemetry::ServeTrace::start(&engine);
    let unix_app = match &trace {
        Some(trace) => trace.connections(unix_app),
        None => crate::telemetry::TracedConnections::untraced(unix_app),
    };
    let mut tasks = tokio::task::JoinSet::new();
    let listener = activity::CountingListener {
        listener: unix,
        activity: activity.clone(),
    };
    let mut accepting = stop.subscribe();
    tasks.spawn(async move {
        axum::serve(listener, unix_app)
            // Stops accepting once stopping; open connections finish their
            // requests (and are cut after the drain below).
            .with_graceful_shutdown(async move {
                let _ = accepting.wait_for(Option::is_some).await;
            })
            .await
            .context("while serving the socket")
    });
    if let Some(addr) = args.listen {
        // An empty GANTRY_TOKEN would let any basic-auth request in.
        let token = args
            .token
            .clone()
            .filter(|token| !token.is_empty())
            .unwrap_or_else(random_token);
        let tcp = TcpListener::bind(addr)
            .await
            .with_context(|| format!("while binding {addr}"))?;
        let local = tcp.local_addr()?;
        eprintln!("gantry: serving on http://{local}/query (token: {token})");
        eprintln!("gantry: open GraphiQL at http://{local}/?token={token}");
        let tcp_app =
            gantry_api::router(schema, Access::Token(Arc::from(token.as_str())), None).layer(
                axum::middleware::from_fn_with_state(activity.clone(), activity::track),
            );
        let tcp_app = match &trace {
            Some(trace) => trace.observe(tcp_app),
            None => tcp_app,
        };
        tasks.spawn(async move {
            gantry_api::serve_tcp(tcp, tcp_app)
                .await
                .context("while serving TCP")
        });
    }
    if let Some(timeout) = idle_timeout {
        tokio::spawn(stop_when_idle(activity.clone(), timeout, stop.clone()));
    }
    let (reason, outcome) = tokio::select! {
        // The listeners also end on a stop request: then its reason still holds
        // (they may see the request before this select does).
        result = tasks.join_next() => match result {
            Some(Ok(Err(error))) => (None, Err(error)),
            _ => (*stop.borrow(), Ok(())),
        },
        () = shutdown.next() => (Some(StopReason::Signal), Ok(())),
        reason = stopping.wait_for(Option::is_some) => (reason.ok().and_then(|r| *r), Ok(())),
    };
    if let Some(reason) = reason {
        tracing::info!(
            reason = reason.as_str(),
            in_flight = activity.in_flight(),
            "engine stopping"
        );
        crate::status::request_stop(&stop, reason);
        tokio::select! {
            drained = activity.drained(DRAIN_TIMEOUT) => if !drained {
                tracing::warn!(in_flight = activity.in_flight(), timeout_seconds = DRAIN_TIMEOUT.as_secs(), "requests still in flight after the drain timeout; cutting them off");
            },
            () = shutdown.next() => tracing::warn!(in_flight = activity.in_flight(), "second signal: cutting off the requests in flight"),
        }
        let _ = tokio::time::timeout(FLUSH_GRACE, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
    }
    tasks.abort_all();
    let _ = fs::remove_file(&socket);
    evictor.abort();
    if let Some(trace) = trace {
        trace.finish().await;
    }
    engine::finish(&engine).await;
    engine::stop(&engine).await;
    tracing::info!("engine stopped");
    outcome
}

/// Asks the engine to stop once nothing was open or in flight for `timeout`.
async fn stop_when_idle(
    activity: Arc<Activity>,
    timeout: Duration,
    stop: watch::Sender<Option<StopReason>>,
) {
    let tick = (timeout / 10).clamp(Duration::from_millis(100), Duration::from_secs(10));
    loop {
        tokio::time::sleep(tick).await;
        if activity.idle_for().is_some_and(|idle| idle >= timeout) {
            tracing::info!(
                idle_timeout = %crate::units::format_duration(timeout),
                "no connection or request for the idle timeout"
            );
            crate::status::request_stop(&stop, StopReason::Idle);
            return;
        }
    }
}

/// SIGTERM/SIGINT handlers, installed when created: a signal that arrives
/// before anyone awaits `wait` is still caught instead of killing us.
pub(crate) struct Shutdown {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Shutdown {
    pub(crate) fn listen() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        Self {
            term: signal(SignalKind::terminate()).expect("installing a SIGTERM handler"),
            int: signal(SignalKind::interrupt()).expect("installing a SIGINT handler"),
        }
    }

    pub(crate) async fn wait(mut self) {
        self.next().await;
    }

    /// The next signal (a stopping engine cuts its drain short on a second one).
    pub(crate) async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
