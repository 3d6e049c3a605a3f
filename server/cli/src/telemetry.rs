//! OpenTelemetry traces of sessions: when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, a session (`gantry run`,
//! `gantry call`, `gantry session`, an in-process `gantry query`) exports
//! one trace over OTLP/HTTP (protobuf): a span for
//! the session and, under it, one span per step, built from the engine's
//! step events (`gantry_core::events`). A `TRACEPARENT` in the environment
//! makes the session span a child of that span (its trace, its sampling);
//! `gantry run` (and `gantry call`, its module's runtime) hands its command
//! the session span as `TRACEPARENT`, so the
//! spans of an SDK joining the session nest under it.
//!
//! What it does not own: the events themselves (core emits them whether or
//! not anyone traces) and the wire format (opentelemetry-otlp's exporter).
//! Spans are built here after the fact from the events' times rather than
//! through the SDK's tracer, which would have to live on the step path.
//!
//! Sending never holds a step back: events are read by a task of their own,
//! spans go to the collector from another one, and a collector that is down
//! or slow costs one warning in the log. Step names and failures may hold
//! what a command was given, so every attribute goes through the engine's
//! secret scrubber (the one exec output goes through). Without an endpoint
//! nothing here runs: no exporter, no subscriber, so core builds no events
//! for it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use gantry_core::events::{Event, StepEvent, StepState};
use gantry_core::Engine;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use opentelemetry_sdk::Resource;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::env;

/// Spans go out in batches of at most this many...
const BATCH_SPANS: usize = 256;
/// ...and at least this often while a session runs.
const EXPORT_INTERVAL: Duration = Duration::from_secs(5);
/// How long a session's end waits for its last spans to reach the collector.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// Span names are cut to this many characters (the full, scrubbed step
/// name is the `gantry.step.name` attribute, cut at `MAX_ATTRIBUTE`).
const MAX_SPAN_NAME: usize = 120;
const MAX_ATTRIBUTE: usize = 4096;

/// The only value of `OTEL_EXPORTER_OTLP_PROTOCOL` gantry speaks.
const HTTP_PROTOBUF: &str = "http/protobuf";

/// Whether an OTLP endpoint is configured (the cheap check every session makes).
fn endpoint_configured() -> bool {
    [env::OTEL_TRACES_ENDPOINT, env::OTEL_ENDPOINT]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

/// The exporter the environment asks for, or `None` (tracing off; a setting
/// gantry cannot honour is named in a warning).
fn exporter_from_env() -> Option<opentelemetry_otlp::SpanExporter> {
    if !endpoint_configured() {
        return None;
    }
    if std::env::var(env::OTEL_SDK_DISABLED).is_ok_and(|value| value.eq_ignore_ascii_case("true")) {
        return None;
    }
    match std::env::var(env::OTEL_TRACES_EXPORTER).ok().as_deref() {
        None | Some("" | "otlp") => {}
        Some("none") => return None,
        Some(other) => {
            tracing::warn!(
                value = other,
                "{} is not `otlp` or `none`: gantry only exports OTLP; traces are off",
                env::OTEL_TRACES_EXPORTER
            );
            return None;
        }
    }
    let protocol = [env::OTEL_TRACES_PROTOCOL, env::OTEL_PROTOCOL]
        .iter()
        .find_map(|name| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.is_empty())
                .map(|value| (*name, value))
        });
    if let Some((name, value)) = protocol {
        if !value.eq_ignore_ascii_case(HTTP_PROTOBUF) {
            tracing::warn!(
                variable = name,
                value = %value,
                "unsupported OTLP protocol: gantry sends traces as http/protobuf only (set {name}=http/protobuf and point the endpoint at the collector's HTTP port, usually 4318); traces are off"
            );
            return None;
        }
    }
    // The HTTP client (reqwest with rustls) needs a process-wide crypto
    // provider for https endpoints; ring is the one built in.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let built = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build();
    match built {
        Ok(mut exporter) => {
            opentelemetry_sdk::trace::SpanExporter::set_resource(&mut exporter, &resource());
            Some(exporter)
        }
        Err(error) => {
            tracing::warn!(error = %redact(&error.to_string()), "cannot set up the OTLP trace exporter; traces are off");
            None
        }
    }
}

/// `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES`, with the service
/// named `gantry` unless they name it.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    let builder = Resource::builder().with_attribute(KeyValue::new(
        "service.version",
        gantry_api::VERSION.to_owned(),
    ));
    if named {
        builder.build()
    } else {
        builder.with_service_name("gantry").build()
    }
}

/// The span context `TRACEPARENT` carries, if it is set and valid (an
/// invalid one is named in a warning and ignored: the session starts a new
/// trace).
fn parent_from_env() -> Option<SpanContext> {
    let value = std::env::var(env::TRACEPARENT)
        .ok()
        .filter(|value| !value.is_empty())?;
    let parent = parse_traceparent(&value);
    if parent.is_none() {
        tracing::warn!(value = %value, "TRACEPARENT is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>); the session starts a trace of its own");
    }
    parent
}

fn parse_traceparent(value: &str) -> Option<SpanContext> {
    // The propagator takes shorter ids too; W3C's fields have fixed widths.
    let widths: Vec<usize> = value.split('-').map(str::len).collect();
    if widths.get(..4) != Some(&[2, 32, 16, 2][..]) {
        return None;
    }
    let carrier = HashMap::from([("traceparent".to_owned(), value.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    let span = context.span().span_context().clone();
    span.is_valid().then_some(span)
}

/// `span` as a W3C `traceparent` value.
fn traceparent_of(span: &SpanContext) -> String {
    let context = opentelemetry::Context::new().with_remote_span_context(span.clone());
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent").unwrap_or_default()
}

/// A session's trace while it runs. `finish` sends what is left.
pub(crate) struct SessionTrace {
    span: SpanContext,
    stop: oneshot::Sender<()>,
    collector: tokio::task::JoinHandle<()>,
}

impl SessionTrace {
    /// Starts tracing `engine`'s steps as the session `name` (`gantry run`),
    /// when an endpoint is configured; `None` otherwise, at the cost of an
    /// environment lookup. Subscribes at once: start it before any step.
    pub(crate) fn start(engine: &Arc<Engine>, name: &'static str) -> Option<Self> {
        let exporter = exporter_from_env()?;
        let parent = parent_from_env();
        if parent.as_ref().is_some_and(|parent| !parent.is_sampled()) {
            // The caller's trace is not recorded: neither are we (its
            // TRACEPARENT still reaches the command through the environment).
            return None;
        }
        let span = new_span(parent.as_ref());
        let (batches, outbox) = mpsc::unbounded_channel();
        // One warning per session about the collector, whichever way it fails.
        let warned = Arc::new(AtomicBool::new(false));
        let sender = tokio::spawn(send_batches(exporter, outbox, warned.clone()));
        let collector = Collector {
            engine: engine.clone(),
            session: span.clone(),
            parent,
            name,
            started: SystemTime::now(),
            running: HashMap::new(),
            batch: Vec::new(),
            batches,
        };
        let (stop, stopped) = oneshot::channel();
        let events = engine.events().subscribe();
        let collector = tokio::spawn(async move {
            collector.run(events, stopped).await;
            // Every batch is queued: wait for them to be sent, within bounds.
            if tokio::time::timeout(FLUSH_TIMEOUT, sender).await.is_err() {
                let timeout_seconds = FLUSH_TIMEOUT.as_secs();
                if warned.swap(true, Ordering::SeqCst) {
                    tracing::debug!(
                        timeout_seconds,
                        "the OTLP collector did not take the session's spans in time"
                    );
                } else {
                    tracing::warn!(timeout_seconds, "the OTLP collector did not take the session's spans in time; the rest are dropped");
                }
            }
        });
        Some(Self {
            span,
            stop,
            collector,
        })
    }

    /// The `TRACEPARENT` a session's command gets: the session span.
    pub(crate) fn traceparent(&self) -> String {
        traceparent_of(&self.span)
    }

    /// Ends the session span and sends every span not sent yet (waiting at
    /// most `FLUSH_TIMEOUT`). Call it once the session's steps are over.
    pub(crate) async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.collector.await;
    }
}

/// A new sampled span: in `parent`'s trace (with its trace state), or the
/// root of a new trace.
fn new_span(parent: Option<&SpanContext>) -> SpanContext {
    SpanContext::new(
        parent.map_or_else(random_trace_id, SpanContext::trace_id),
        random_span_id(),
        TraceFlags::SAMPLED,
        false,
        parent.map_or(TraceState::NONE, |parent| parent.trace_state().clone()),
    )
}

fn random_trace_id() -> TraceId {
    loop {
        let id = TraceId::from_bytes(rand::random());
        if id != TraceId::INVALID {
            return id;
        }
    }
}

fn random_span_id() -> SpanId {
    loop {
        let id = SpanId::from_bytes(rand::random());
        if id != SpanId::INVALID {
            return id;
        }
    }
}

/// A step that started and has not finished.
struct Running {
    start: SystemTime,
    /// What the step does (its event's name).
    name: String,
}

/// Turns one session's step events into spans.
struct Collector {
    engine: Arc<Engine>,
    session: SpanContext,
    parent: Option<SpanContext>,
    name: &'static str,
    started: SystemTime,
    /// Running steps, by their events' digest.
    running: HashMap<String, Running>,
    batch: Vec<SpanData>,
    batches: mpsc::UnboundedSender<Vec<SpanData>>,
}

impl Collector {
    async fn run(
        mut self,
        mut events: gantry_core::events::Subscription,
        mut stopped: oneshot::Receiver<()>,
    ) {
        let mut tick = tokio::time::interval(EXPORT_INTERVAL);
        tick.tick().await;
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(Event::Step(step)) => self.step(step),
                    Ok(Event::Output(_)) => {}
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "the trace collector fell behind the engine's events; some steps have no span");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick() => self.send(),
                _ = &mut stopped => {
                    // What was emitted before the session ended is queued.
                    while let Ok(event) = events.try_recv() {
                        if let Event::Step(step) = event {
                            self.step(step);
                        }
                    }
                    break;
                }
            }
        }
        self.end();
    }

    fn step(&mut self, event: StepEvent) {
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(event.time.max(0.0));
        match event.state {
            StepState::Running => {
                let running = Running {
                    start: time,
                    name: event.name,
                };
                self.running.insert(event.digest, running);
            }
            StepState::Cached | StepState::Done | StepState::Failed => {
                let start = self
                    .running
                    .remove(&event.digest)
                    .map_or(time, |running| running.start);
                let span = step_span(
                    &self.engine,
                    &self.session,
                    self.session.span_id(),
                    &event,
                    (start, time),
                );
                self.batch.push(span);
                if self.batch.len() >= BATCH_SPANS {
                    self.send();
                }
            }
        }
    }

    fn send(&mut self) {
        if !self.batch.is_empty() {
            let _ = self.batches.send(std::mem::take(&mut self.batch));
        }
    }

    /// Ends the steps still running (the session ended under them) and the
    /// session span, and queues what is left.
    fn end(mut self) {
        let now = SystemTime::now();
        let unfinished: Vec<(String, Running)> = self.running.drain().collect();
        for (digest, running) in unfinished {
            let span = unfinished_step_span(
                &self.engine,
                &self.session,
                self.session.span_id(),
                digest,
                &running,
                now,
            );
            self.batch.push(span);
        }
        let session = SpanIds {
            trace: &self.session,
            id: self.session.span_id(),
            parent: self
                .parent
                .as_ref()
                .map_or(SpanId::INVALID, SpanContext::span_id),
            parent_is_remote: self.parent.is_some(),
        };
        let span = session.data(
            self.name.to_owned(),
            (self.started, now),
            vec![KeyValue::new("gantry.version", gantry_api::VERSION)],
            Status::Unset,
        );
        self.batch.push(span);
        self.send();
    }
}

/// The span of a finished step, a child of `parent` in `trace`'s trace.
fn step_span(
    engine: &Engine,
    trace: &SpanContext,
    parent: SpanId,
    event: &StepEvent,
    (start, end): (SystemTime, SystemTime),
) -> SpanData {
    let name = engine.scrub_secrets(&event.name);
    let duration = end.duration_since(start).unwrap_or_default();
    let mut attributes = vec![
        KeyValue::new("gantry.step.name", cut(&name, MAX_ATTRIBUTE)),
        KeyValue::new("gantry.step.digest", event.digest.clone()),
        KeyValue::new("gantry.cache.hit", event.state == StepState::Cached),
        KeyValue::new(
            "gantry.step.duration_ms",
            i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
        ),
    ];
    if let Some(code) = event.exit_code {
        attributes.push(KeyValue::new("process.exit.code", code));
    }
    if let Some(image) = &event.image {
        attributes.push(KeyValue::new(
            "container.image.name",
            engine.scrub_secrets(image),
        ));
    }
    let status = match event.state {
        StepState::Failed => Status::error(failure(engine, event)),
        _ => Status::Unset,
    };
    let span = SpanIds {
        trace,
        id: random_span_id(),
        parent,
        parent_is_remote: false,
    };
    span.data(cut(&name, MAX_SPAN_NAME), (start, end), attributes, status)
}

/// The span of a step the session (or request) ended under.
fn unfinished_step_span(
    engine: &Engine,
    trace: &SpanContext,
    parent: SpanId,
    digest: String,
    running: &Running,
    now: SystemTime,
) -> SpanData {
    let name = engine.scrub_secrets(&running.name);
    let span = SpanIds {
        trace,
        id: random_span_id(),
        parent,
        parent_is_remote: false,
    };
    span.data(
        cut(&name, MAX_SPAN_NAME),
        (running.start, now),
        vec![
            KeyValue::new("gantry.step.name", cut(&name, MAX_ATTRIBUTE)),
            KeyValue::new("gantry.step.digest", digest),
            KeyValue::new("gantry.cache.hit", false),
        ],
        Status::error("the session ended before the step finished"),
    )
}

/// A failed step's status description: its exit code, else the first
/// line of what went wrong (scrubbed).
fn failure(engine: &Engine, event: &StepEvent) -> String {
    if let Some(code) = event.exit_code {
        return format!("exit code {code}");
    }
    let detail = event.detail.as_deref().unwrap_or("failed");
    let first = detail.lines().next().unwrap_or("failed");
    cut(&engine.scrub_secrets(first), MAX_ATTRIBUTE)
}

/// Where a span sits: its trace (and trace state), its id, its parent.
struct SpanIds<'a> {
    trace: &'a SpanContext,
    id: SpanId,
    parent: SpanId,
    parent_is_remote: bool,
}

impl SpanIds<'_> {
    fn data(
        &self,
        name: String,
        (start, end): (SystemTime, SystemTime),
        attributes: Vec<KeyValue>,
        status: Status,
    ) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                self.trace.trace_id(),
                self.id,
                TraceFlags::SAMPLED,
                false,
                self.trace.trace_state().clone(),
            ),
            parent_span_id: self.parent,
            parent_span_is_remote: self.parent_is_remote,
            span_kind: SpanKind::Internal,
            name: name.into(),
            start_time: start,
            end_time: end.max(start),
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status,
            instrumentation_scope: InstrumentationScope::builder("gantry")
                .with_version(gantry_api::VERSION)
                .build(),
        }
    }
}

// ---- gantry serve -----------------------------------------------------------

/// How long an answered request stays known to the collector, for step
/// events that reach it after the answer.
const ANSWERED_GRACE: Duration = Duration::from_secs(60);

/// `gantry serve`'s traces. A served engine has many clients at once, so
/// it has no session span of its own: each `/query` request gets a span,
/// and each step a span under the request whose evaluation ran it (core
/// tags step events with it, `gantry_core::events::with_origin`).
///
/// - A request with a W3C `traceparent` header (Dagger's SDKs send one on
///   every request, from the client's current span) is a child of that span:
///   a client session's requests share its trace.
/// - Without one, the requests of one connection share a trace, under a
///   span for the connection (exported when the connection closes).
pub(crate) struct ServeTrace {
    observer: Arc<ServeObserver>,
    stop: oneshot::Sender<()>,
    collector: tokio::task::JoinHandle<()>,
}

impl ServeTrace {
    /// Starts tracing `engine`'s requests when an endpoint is configured.
    pub(crate) fn start(engine: &Arc<Engine>) -> Option<Self> {
        let exporter = exporter_from_env()?;
        let (batches, outbox) = mpsc::unbounded_channel();
        let warned = Arc::new(AtomicBool::new(false));
        let sender = tokio::spawn(send_batches(exporter, outbox, warned));
        let observer = Arc::new(ServeObserver {
            engine: engine.clone(),
            next_origin: AtomicU64::new(1),
            requests: Arc::default(),
            batches,
        });
        let events = engine.events().subscribe();
        let (stop, stopped) = oneshot::channel();
        let collecting = observer.clone();
        let collector = tokio::spawn(async move {
            collecting.collect(events, stopped).await;
            // An empty batch is the last one: what is queued goes first.
            let _ = collecting.batches.send(Vec::new());
            if tokio::time::timeout(FLUSH_TIMEOUT, sender).await.is_err() {
                tracing::warn!(
                    timeout_seconds = FLUSH_TIMEOUT.as_secs(),
                    "the OTLP collector did not take the engine's last spans in time; the rest are dropped"
                );
            }
        });
        Some(Self {
            observer,
            stop,
            collector,
        })
    }

    /// `router` with each request watched (a request without `traceparent`
    /// is a trace of its own).
    pub(crate) fn observe(&self, router: axum::Router) -> axum::Router {
        let observer: Arc<dyn gantry_api::RequestObserver> = self.observer.clone();
        router.layer(axum::Extension(observer))
    }

    /// `router` with each request watched and each connection traced.
    pub(crate) fn connections(&self, router: axum::Router) -> TracedConnections {
        TracedConnections {
            router: self.observe(router),
            observer: Some(self.observer.clone()),
        }
    }

    /// Sends the spans not sent yet (waiting at most `FLUSH_TIMEOUT`).
    pub(crate) async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.collector.await;
    }
}

/// Per-connection routers for `axum::serve`: each connection's requests
/// carry its `ConnectionTrace` (none when tracing is off).
#[derive(Clone)]
pub(crate) struct TracedConnections {
    router: axum::Router,
    observer: Option<Arc<ServeObserver>>,
}

impl TracedConnections {
    /// Connections served as they are, untraced.
    pub(crate) fn untraced(router: axum::Router) -> Self {
        Self {
            router,
            observer: None,
        }
    }
}

impl<L: axum::serve::Listener> tower::Service<axum::serve::IncomingStream<'_, L>>
    for TracedConnections
{
    type Response = axum::Router;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<axum::Router, std::convert::Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: axum::serve::IncomingStream<'_, L>) -> Self::Future {
        let router = match &self.observer {
            Some(observer) => self
                .router
                .clone()
                .layer(axum::Extension(Arc::new(ConnectionTrace::new(observer)))),
            None => self.router.clone(),
        };
        std::future::ready(Ok(router))
    }
}

/// The trace of one connection's requests that carry no `traceparent`:
/// its span is sent when the connection is gone, if a request used it.
struct ConnectionTrace {
    span: SpanContext,
    started: SystemTime,
    used: AtomicBool,
    batches: mpsc::UnboundedSender<Vec<SpanData>>,
}

impl ConnectionTrace {
    fn new(observer: &ServeObserver) -> Self {
        Self {
            span: new_span(None),
            started: SystemTime::now(),
            used: AtomicBool::new(false),
            batches: observer.batches.clone(),
        }
    }
}

impl Drop for ConnectionTrace {
    fn drop(&mut self) {
        if !self.used.load(Ordering::SeqCst) {
            return;
        }
        let ids = SpanIds {
            trace: &self.span,
            id: self.span.span_id(),
            parent: SpanId::INVALID,
            parent_is_remote: false,
        };
        let span = ids.data(
            "gantry connection".to_owned(),
            (self.started, SystemTime::now()),
            vec![KeyValue::new("gantry.version", gantry_api::VERSION)],
            Status::Unset,
        );
        let _ = self.batches.send(vec![span]);
    }
}

/// A request's span while it runs (and for `ANSWERED_GRACE` after).
struct RequestSpan {
    span: SpanContext,
    answered: Option<std::time::Instant>,
}

struct ServeObserver {
    engine: Arc<Engine>,
    next_origin: AtomicU64,
    /// Traced requests by origin.
    requests: Arc<Mutex<HashMap<u64, RequestSpan>>>,
    batches: mpsc::UnboundedSender<Vec<SpanData>>,
}

impl ServeObserver {
    /// The span the request's steps go under, if it is traced.
    fn request_span(&self, origin: u64) -> Option<SpanContext> {
        let requests = self
            .requests
            .lock()
            .expect("the request map is never poisoned");
        requests.get(&origin).map(|request| request.span.clone())
    }

    /// Turns step events into spans under their requests' spans.
    async fn collect(
        &self,
        mut events: gantry_core::events::Subscription,
        mut stopped: oneshot::Receiver<()>,
    ) {
        let mut running: HashMap<String, Running> = HashMap::new();
        let mut batch = Vec::new();
        let mut tick = tokio::time::interval(EXPORT_INTERVAL);
        tick.tick().await;
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(Event::Step(step)) => self.step(step, &mut running, &mut batch),
                    Ok(Event::Output(_)) => {}
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "the trace collector fell behind the engine's events; some steps have no span");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick() => {
                    if !batch.is_empty() {
                        let _ = self.batches.send(std::mem::take(&mut batch));
                    }
                    let mut requests = self.requests.lock().expect("the request map is never poisoned");
                    requests.retain(|_, request| {
                        request.answered.is_none_or(|at| at.elapsed() < ANSWERED_GRACE)
                    });
                }
                _ = &mut stopped => {
                    while let Ok(event) = events.try_recv() {
                        if let Event::Step(step) = event {
                            self.step(step, &mut running, &mut batch);
                        }
                    }
                    break;
                }
            }
        }
        if !batch.is_empty() {
            let _ = self.batches.send(batch);
        }
    }

    fn step(
        &self,
        event: StepEvent,
        running: &mut HashMap<String, Running>,
        batch: &mut Vec<SpanData>,
    ) {
        let Some(request) = event.origin.and_then(|origin| self.request_span(origin)) else {
            return;
        };
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(event.time.max(0.0));
        if event.state == StepState::Running {
            let name = event.name;
            running.insert(event.digest, Running { start: time, name });
            return;
        }
        let start = running
            .remove(&event.digest)
            .map_or(time, |running| running.start);
        batch.push(step_span(
            &self.engine,
            &request,
            request.span_id(),
            &event,
            (start, time),
        ));
        if batch.len() >= BATCH_SPANS {
            let _ = self.batches.send(std::mem::take(batch));
        }
    }
}

impl gantry_api::RequestObserver for ServeObserver {
    fn start(
        &self,
        headers: &axum::http::HeaderMap,
        extensions: &axum::http::Extensions,
        operation: Option<&str>,
    ) -> Box<dyn gantry_api::RequestScope> {
        let origin = self.next_origin.fetch_add(1, Ordering::Relaxed);
        let header = headers
            .get("traceparent")
            .and_then(|value| value.to_str().ok());
        let (parent, parent_is_remote) = match header.map(|value| (value, parse_traceparent(value)))
        {
            // The client's trace is not recorded: neither is the request.
            Some((_, Some(parent))) if !parent.is_sampled() => {
                return Box::new(RequestTrace {
                    origin,
                    traced: None,
                });
            }
            Some((_, Some(parent))) => (Some(parent), true),
            Some((value, None)) => {
                tracing::debug!(value = %value, "a request's traceparent is not a W3C traceparent; it is traced with its connection");
                (None, false)
            }
            None => (None, false),
        };
        let parent = parent.or_else(|| {
            let connection = extensions.get::<Arc<ConnectionTrace>>()?;
            connection.used.store(true, Ordering::SeqCst);
            Some(connection.span.clone())
        });
        let span = new_span(parent.as_ref());
        self.requests
            .lock()
            .expect("the request map is never poisoned")
            .insert(
                origin,
                RequestSpan {
                    span: span.clone(),
                    answered: None,
                },
            );
        let name = match operation {
            Some(operation) => format!("query {}", cut(operation, MAX_SPAN_NAME)),
            None => "query".to_owned(),
        };
        Box::new(RequestTrace {
            origin,
            traced: Some(Traced {
                batches: self.batches.clone(),
                requests: self.requests.clone(),
                span,
                parent: parent
                    .as_ref()
                    .map_or(SpanId::INVALID, SpanContext::span_id),
                parent_is_remote,
                name,
                started: SystemTime::now(),
            }),
        })
    }
}

/// A request's scope: its origin, and its span when it is traced.
struct RequestTrace {
    origin: u64,
    traced: Option<Traced>,
}

struct Traced {
    batches: mpsc::UnboundedSender<Vec<SpanData>>,
    requests: Arc<Mutex<HashMap<u64, RequestSpan>>>,
    span: SpanContext,
    parent: SpanId,
    parent_is_remote: bool,
    name: String,
    started: SystemTime,
}

impl gantry_api::RequestScope for RequestTrace {
    fn origin(&self) -> u64 {
        self.origin
    }

    fn end(self: Box<Self>, failed: bool) {
        let Some(traced) = self.traced else {
            return;
        };
        if let Some(request) = traced
            .requests
            .lock()
            .expect("the request map is never poisoned")
            .get_mut(&self.origin)
        {
            request.answered = Some(std::time::Instant::now());
        }
        let ids = SpanIds {
            trace: &traced.span,
            id: traced.span.span_id(),
            parent: traced.parent,
            parent_is_remote: traced.parent_is_remote,
        };
        let status = if failed {
            Status::error("the response has errors")
        } else {
            Status::Unset
        };
        let span = ids.data(
            traced.name,
            (traced.started, SystemTime::now()),
            vec![KeyValue::new("gantry.version", gantry_api::VERSION)],
            status,
        );
        let _ = traced.batches.send(vec![span]);
    }
}

/// Sends batches to the collector one at a time until the session's last
/// one. The first failure is a warning; later ones only debug lines (a
/// collector that is down fails every batch).
async fn send_batches(
    exporter: opentelemetry_otlp::SpanExporter,
    mut outbox: mpsc::UnboundedReceiver<Vec<SpanData>>,
    warned: Arc<AtomicBool>,
) {
    while let Some(batch) = outbox.recv().await {
        if batch.is_empty() {
            // The engine is stopping (sessions never send an empty batch).
            break;
        }
        let spans = batch.len();
        match exporter.export(batch).await {
            Ok(()) => tracing::debug!(spans, "sent spans to the OTLP collector"),
            Err(error) if !warned.swap(true, Ordering::SeqCst) => {
                tracing::warn!(
                    spans,
                    error = %redact(&error.to_string()),
                    "cannot send traces to the OTLP collector (OTEL_EXPORTER_OTLP_ENDPOINT); the pipeline goes on without them"
                );
            }
            Err(error) => {
                tracing::debug!(spans, error = %redact(&error.to_string()), "cannot send traces to the OTLP collector");
            }
        }
    }
}

/// `text` without the user information of URLs in it (`scheme://user:pass@`).
fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority_end = tail.find(['/', ' ', ')', '"']).unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(user_end) => {
                out.push_str("***@");
                rest = &tail[user_end + 1..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// At most `max` characters of `text` (`…` marks a cut).
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_bad_ones_are_refused() {
        let value = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let span = parse_traceparent(value).unwrap();
        assert_eq!(
            span.trace_id(),
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap()
        );
        assert_eq!(
            span.span_id(),
            SpanId::from_hex("b7ad6b7169203331").unwrap()
        );
        assert!(span.is_sampled());
        assert_eq!(traceparent_of(&span), value);
        for bad in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad:?} was accepted");
        }
        let unsampled =
            parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00").unwrap();
        assert!(!unsampled.is_sampled());
    }

    #[test]
    fn redact_hides_user_information_of_urls() {
        assert_eq!(
            redact("error sending request for url (http://user:s3cret@collector:4318/v1/traces)"),
            "error sending request for url (http://***@collector:4318/v1/traces)"
        );
        assert_eq!(
            redact("connection refused: http://127.0.0.1:4318/v1/traces"),
            "connection refused: http://127.0.0.1:4318/v1/traces"
        );
    }

    #[test]
    fn cut_counts_characters() {
        assert_eq!(cut("héllo", 10), "héllo");
        assert_eq!(cut("héllo", 2), "hé…");
    }
}
