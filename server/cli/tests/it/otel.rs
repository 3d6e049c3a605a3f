//! OpenTelemetry: sessions export their steps as spans to an OTLP/HTTP
//! collector, here a small receiver of our own that decodes each request
//! with the protocol's types (opentelemetry-proto).

use std::path::Path;
use std::process::Output;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::json;

use crate::servers::{HttpServer, Response};
use crate::support::{self, busybox, Server, ServerOptions};

/// An OTLP/HTTP receiver on 127.0.0.1: the tests' HTTP server, answering
/// every post with an empty success.
struct Receiver(HttpServer);

impl Receiver {
    fn start() -> Self {
        Self(HttpServer::start(|_| {
            Response::new(200, Vec::new()).header("Content-Type", "application/x-protobuf")
        }))
    }

    /// Every span received, with the `service.name` of its resource.
    fn spans(&self) -> Vec<(String, Span)> {
        let mut spans = Vec::new();
        for (request, _) in self.0.requests.lock().unwrap().iter() {
            assert_eq!(request.method, "POST");
            assert_eq!(
                request.target, "/v1/traces",
                "OTLP/HTTP posts traces to /v1/traces"
            );
            let request = ExportTraceServiceRequest::decode(request.body.as_slice()).unwrap();
            for resource in request.resource_spans {
                let service = resource
                    .resource
                    .as_ref()
                    .and_then(|resource| text(&resource.attributes, "service.name"))
                    .unwrap_or_default();
                for scope in resource.scope_spans {
                    for span in scope.spans {
                        spans.push((service.clone(), span));
                    }
                }
            }
        }
        spans
    }

    fn bodies_contain(&self, needle: &[u8]) -> bool {
        self.0
            .requests
            .lock()
            .unwrap()
            .iter()
            .any(|(request, _)| support::contains_bytes(&request.body, needle))
    }
}

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attribute(attributes, key)? {
        AnyValue::StringValue(text) => Some(text.clone()),
        other => panic!("{key} is not a string: {other:?}"),
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn hit(span: &Span) -> bool {
    match attribute(&span.attributes, "gantry.cache.hit") {
        Some(AnyValue::BoolValue(hit)) => *hit,
        other => panic!("{} has no gantry.cache.hit: {other:?}", span.name),
    }
}

fn exit_code(span: &Span) -> Option<i64> {
    match attribute(&span.attributes, "process.exit.code")? {
        AnyValue::IntValue(code) => Some(*code),
        other => panic!("exit code {other:?}"),
    }
}

/// The one span named `name` of the trace `trace_id`.
fn span_named<'a>(spans: &'a [&'a Span], name: &str) -> &'a Span {
    let found: Vec<&&Span> = spans.iter().filter(|span| span.name == name).collect();
    let names: Vec<&str> = spans.iter().map(|span| span.name.as_str()).collect();
    assert_eq!(found.len(), 1, "one span {name:?} among {names:?}");
    found[0]
}

/// Posts each of `queries.json`'s lines to the session it runs in, then
/// keeps the TRACEPARENT it was given (`gantry run -- sh -c …`).
const SCRIPT: &str = "while IFS= read -r line; do \
       printf '%s' \"$line\" > one.json; \
       curl -s -u \"$GANTRY_SESSION_TOKEN:\" -H 'Content-Type: application/json' \
         --data-binary @one.json \"http://127.0.0.1:$GANTRY_SESSION_PORT/query\"; echo; \
     done < queries.json; printf '%s' \"${TRACEPARENT:-}\" > traceparent.txt";

/// `gantry run` of `SCRIPT` over `queries`, exporting to `endpoint`.
fn traced_run(dir: &Path, endpoint: &str, traceparent: Option<&str>, queries: &[String]) -> Output {
    let lines: Vec<String> = queries
        .iter()
        .map(|query| json!({ "query": query }).to_string())
        .collect();
    std::fs::write(dir.join("queries.json"), lines.join("\n") + "\n").unwrap();
    let mut command = support::gantry(dir);
    command
        .env_remove("GANTRY_PROGRESS")
        .env_remove("TRACEPARENT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
        .env_remove("OTEL_SERVICE_NAME")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
    if let Some(traceparent) = traceparent {
        command.env("TRACEPARENT", traceparent);
    }
    command
        .args(["run", "--progress=plain", "--", "sh", "-c", SCRIPT])
        .output()
        .unwrap()
}

fn two_steps(first: &str, second: &str) -> String {
    format!(
        r#"{{ container {{ from(address: "{}") {{ withExec(args: ["echo", "{first}"]) {{ withExec(args: ["echo", "{second}"]) {{ stdout }} }} }} }} }}"#,
        busybox()
    )
}

#[test]
fn otel_a_session_is_one_trace_with_a_span_per_step() {
    require_runtime!();
    let received = Receiver::start();
    let endpoint = received.0.url("");
    let dir = tempfile::tempdir().unwrap();
    let marker = support::unique("otel");
    let first_step = format!("{marker}-shared");

    // A session without TRACEPARENT: a trace of its own; both steps run.
    let out = traced_run(
        dir.path(),
        &endpoint,
        None,
        &[two_steps(&first_step, &format!("{marker}-first"))],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("OTLP"), "no trace warning: {stderr}");
    let first_spans = received.spans();
    let root = first_spans
        .iter()
        .find(|(_, span)| span.name == "gantry run")
        .map(|(_, span)| span.clone())
        .unwrap_or_else(|| panic!("no session span: {first_spans:?}"));
    assert!(root.parent_span_id.is_empty(), "a new trace has a root");
    assert!(
        first_spans
            .iter()
            .all(|(service, span)| span.trace_id == root.trace_id && service == "gantry"),
        "one trace, service gantry"
    );
    let spans: Vec<&Span> = first_spans.iter().map(|(_, span)| span).collect();
    let shared = span_named(&spans, &format!("exec echo {first_step}"));
    assert!(!hit(shared));
    assert_eq!(shared.parent_span_id, root.span_id);
    assert!(shared.end_time_unix_nano >= shared.start_time_unix_nano);
    received.0.clear();

    // A session under a caller's trace: the first step is a cache hit, the
    // second a miss, the third fails; a secret in a command line is masked.
    let trace_hex = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_hex = "00f067aa0ba902b7";
    let secret = format!("{marker}-s3cret-value");
    let failing = format!(
        r#"{{ container {{ from(address: "{}") {{ withExec(args: ["sh", "-c", "echo {secret}; exit 3"]) {{ stdout }} }} }} }}"#,
        busybox()
    );
    let out = traced_run(
        dir.path(),
        &endpoint,
        Some(&format!("00-{trace_hex}-{parent_hex}-01")),
        &[
            format!(r#"{{ setSecret(name: "token", plaintext: "{secret}") {{ id }} }}"#),
            two_steps(&first_step, &format!("{marker}-second")),
            failing,
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains(&format!("{marker}-second")), "{stdout}");
    assert!(
        stdout.contains("exit code: 3"),
        "the failing step failed: {stdout}"
    );
    let trace_id = hex::decode(trace_hex).unwrap();
    let second_spans = received.spans();
    assert!(
        second_spans
            .iter()
            .all(|(_, span)| span.trace_id == trace_id),
        "every span joins the given trace"
    );
    let spans: Vec<&Span> = second_spans.iter().map(|(_, span)| span).collect();
    let session = span_named(&spans, "gantry run");
    assert_eq!(session.parent_span_id, hex::decode(parent_hex).unwrap());
    let shared = span_named(&spans, &format!("exec echo {first_step}"));
    assert!(hit(shared), "the unchanged step is a cache hit");
    assert_eq!(shared.parent_span_id, session.span_id);
    let second = span_named(&spans, &format!("exec echo {marker}-second"));
    assert!(!hit(second), "the changed step is a miss");
    assert_eq!(exit_code(second), Some(0));
    assert_eq!(
        text(&second.attributes, "container.image.name").as_deref(),
        Some(busybox().as_str())
    );
    assert!(matches!(
        attribute(&second.attributes, "gantry.step.duration_ms"),
        Some(AnyValue::IntValue(ms)) if *ms >= 0
    ));
    assert_eq!(
        second.status.as_ref().map(|status| status.code),
        Some(StatusCode::Unset as i32)
    );
    let failed = span_named(&spans, "exec sh -c echo ***; exit 3");
    assert_eq!(exit_code(failed), Some(3));
    let status = failed.status.as_ref().unwrap();
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(status.message, "exit code 3");
    assert!(
        !received.bodies_contain(secret.as_bytes()),
        "a secret value reached the collector"
    );
    // The command was handed the session span as its TRACEPARENT.
    let handed = std::fs::read_to_string(dir.path().join("traceparent.txt")).unwrap();
    assert_eq!(
        handed,
        format!("00-{trace_hex}-{}-01", hex::encode(&session.span_id))
    );
}

#[test]
fn otel_a_collector_that_is_down_costs_one_warning() {
    require_runtime!();
    let dir = tempfile::tempdir().unwrap();
    let marker = support::unique("otel-down");
    // Nothing listens there; two batches fail (one every 5 s while running).
    let endpoint = format!("http://127.0.0.1:{}", support::free_port());
    let query = two_steps(&format!("{marker}-a"), &format!("{marker}-b"));
    std::fs::write(
        dir.path().join("query.json"),
        json!({ "query": query }).to_string(),
    )
    .unwrap();
    let post = "curl -sf -u \"$GANTRY_SESSION_TOKEN:\" -H 'Content-Type: application/json' \
                --data-binary @query.json \"http://127.0.0.1:$GANTRY_SESSION_PORT/query\"";
    let out = support::gantry(dir.path())
        .env_remove("GANTRY_PROGRESS")
        .env_remove("TRACEPARENT")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .args(["run", "--progress=plain", "--"])
        .args(["sh", "-c", &format!("{post} && sleep 6 && {post}")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{marker}-b")));
    assert_eq!(
        stderr
            .matches("cannot send traces to the OTLP collector")
            .count(),
        1,
        "{stderr}"
    );

    // A protocol gantry does not speak: a warning naming it, no traces.
    let out = support::gantry(dir.path())
        .env_remove("GANTRY_PROGRESS")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .args(["run", "--progress=plain", "--", "sh", "-c", post])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("unsupported OTLP protocol"), "{stderr}");
    assert!(stderr.contains("OTEL_EXPORTER_OTLP_PROTOCOL"), "{stderr}");
    assert!(!stderr.contains("cannot send traces"), "{stderr}");
}

#[test]
fn otel_gantry_query_with_its_engine_in_process_is_a_session_too() {
    require_runtime!();
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let marker = support::unique("otel-query");
    let mut command = support::gantry(dir.path());
    command
        .env_remove("GANTRY_PROGRESS")
        .env_remove("TRACEPARENT")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            receiver.0.url("/v1/traces"),
        )
        .env("OTEL_SERVICE_NAME", "ci-pipeline");
    let out = support::run_query(
        command,
        &["--progress=quiet"],
        &two_steps(&format!("{marker}-a"), &format!("{marker}-b")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let received = receiver.spans();
    let spans: Vec<&Span> = received.iter().map(|(_, span)| span).collect();
    let session = span_named(&spans, "gantry query");
    let step = span_named(&spans, &format!("exec echo {marker}-b"));
    assert_eq!(step.parent_span_id, session.span_id);
    assert!(received.iter().all(|(service, _)| service == "ci-pipeline"));
}

#[test]
fn otel_a_served_engine_traces_each_client_under_its_traceparent() {
    require_runtime!();
    let receiver = Receiver::start();
    let marker = support::unique("otel-serve");
    let mut server = Server::start_with(ServerOptions {
        env: vec![("OTEL_EXPORTER_OTLP_ENDPOINT".into(), receiver.0.url(""))],
        ..ServerOptions::default()
    });
    // A client with a trace of its own (as Dagger's SDKs send it).
    let trace_hex = "5bf92f3577b34da6a3ce929d0e0e4737";
    let parent_hex = "10f067aa0ba902b8";
    let traceparent = |flags: &str| {
        vec![(
            "traceparent",
            format!("00-{trace_hex}-{parent_hex}-{flags}"),
        )]
    };
    let out = server.query_with_headers(
        &two_steps(&format!("{marker}-a1"), &format!("{marker}-a2")),
        &serde_json::Value::Null,
        &traceparent("01"),
    );
    assert!(out.get("errors").is_none(), "{out}");
    // A client without one; then one whose trace is not sampled.
    let out = server.query(&two_steps(&format!("{marker}-b1"), &format!("{marker}-b2")));
    assert!(out.get("errors").is_none(), "{out}");
    let out = server.query_with_headers(
        &two_steps(&format!("{marker}-c1"), &format!("{marker}-c2")),
        &serde_json::Value::Null,
        &traceparent("00"),
    );
    assert!(out.get("errors").is_none(), "{out}");
    // Stopping sends what is left.
    server.stop();

    let received = receiver.spans();
    let spans: Vec<&Span> = received.iter().map(|(_, span)| span).collect();
    let names: Vec<&str> = spans.iter().map(|span| span.name.as_str()).collect();
    let trace_id = hex::decode(trace_hex).unwrap();
    let a2 = span_named(&spans, &format!("exec echo {marker}-a2"));
    assert_eq!(a2.trace_id, trace_id, "the client's trace");
    let request = spans
        .iter()
        .find(|span| span.span_id == a2.parent_span_id)
        .unwrap_or_else(|| panic!("no parent span of the step among {names:?}"));
    assert_eq!(request.name, "query");
    assert_eq!(request.trace_id, trace_id);
    assert_eq!(request.parent_span_id, hex::decode(parent_hex).unwrap());
    let a1 = span_named(&spans, &format!("exec echo {marker}-a1"));
    assert_eq!(a1.parent_span_id, request.span_id);

    // Without traceparent: the connection's trace, under its span.
    let b2 = span_named(&spans, &format!("exec echo {marker}-b2"));
    assert_ne!(b2.trace_id, trace_id);
    let b_request = spans
        .iter()
        .find(|span| span.span_id == b2.parent_span_id)
        .unwrap_or_else(|| panic!("no parent span of the step among {names:?}"));
    assert_eq!(b_request.name, "query");
    let connection = spans
        .iter()
        .find(|span| span.span_id == b_request.parent_span_id)
        .unwrap_or_else(|| panic!("no connection span among {names:?}"));
    assert_eq!(connection.name, "gantry connection");
    assert!(
        connection.parent_span_id.is_empty(),
        "a connection's trace has a root"
    );
    assert_eq!(connection.trace_id, b2.trace_id);

    // The unsampled client's steps are not recorded.
    assert!(
        !names
            .iter()
            .any(|name| name.contains(&format!("{marker}-c"))),
        "{names:?}"
    );
}
