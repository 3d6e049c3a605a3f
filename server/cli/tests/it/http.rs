//! `Query.http` against a local HTTP server: names and modes, checksums,
//! validators (ETag / Last-Modified) across engines, the auth header.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::Digest as _;

use crate::servers::{HttpServer, Response};
use crate::support::{self, error_message, files_containing, run, text, Server};

const LAST_MODIFIED: &str = "Tue, 15 Nov 1994 08:12:31 GMT";

/// A server for `/file.txt` whose content the test can change; it answers
/// conditional requests with 304 when the ETag matches.
fn versioned_server() -> (HttpServer, Arc<Mutex<String>>) {
    let content = Arc::new(Mutex::new("version one\n".to_owned()));
    let shared = content.clone();
    let server = HttpServer::start(move |request| {
        let body = shared.lock().unwrap().clone();
        let etag = format!("\"{}\"", body.len() + body.as_bytes()[8] as usize);
        if request.target != "/file.txt" && request.target != "/" {
            return Response::new(404, "no such file");
        }
        if request.headers.get("if-none-match") == Some(&etag) {
            return Response::new(304, "").header("ETag", &etag);
        }
        Response::new(200, body)
            .header("ETag", &etag)
            .header("Last-Modified", LAST_MODIFIED)
    });
    (server, content)
}

fn sha256(text: &str) -> String {
    format!("sha256:{}", hex_of(&sha2::Sha256::digest(text.as_bytes())))
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const FILE: &str = r#"
query($url: String!) { http(url: $url) { name contents size } }"#;

#[test]
fn downloads_are_named_and_revalidated_across_engines() {
    require_runtime!();
    let (http, content) = versioned_server();
    let url = http.url("/file.txt");
    let mut server = Server::start();
    let answer = run(&server, FILE, json!({ "url": url }));
    assert_eq!(text(&answer, "http.name"), "file.txt");
    assert_eq!(text(&answer, "http.contents"), "version one\n");
    assert_eq!(http.statuses(), [200]);
    // The same engine asks once.
    run(&server, FILE, json!({ "url": url }));
    assert_eq!(http.statuses(), [200]);
    // A new engine revalidates: a 304 and the kept content.
    server.restart();
    let answer = run(&server, FILE, json!({ "url": url }));
    assert_eq!(text(&answer, "http.contents"), "version one\n");
    assert_eq!(http.statuses(), [200, 304]);
    let sent = http.requests.lock().unwrap()[1].0.clone();
    assert!(sent.headers.contains_key("if-none-match"), "{sent:?}");
    // Changed on the server: the next engine sees the new content.
    *content.lock().unwrap() = "version two, longer\n".into();
    server.restart();
    let answer = run(&server, FILE, json!({ "url": url }));
    assert_eq!(text(&answer, "http.contents"), "version two, longer\n");
    assert_eq!(http.statuses(), [200, 304, 200]);
}

#[test]
fn names_modes_and_timestamps_follow_dagger() {
    require_runtime!();
    let (http, _) = versioned_server();
    let server = Server::start();
    let url = http.url("/file.txt");
    let answer = run(
        &server,
        r#"query($root: String!, $url: String!) {
          index: http(url: $root) { name }
          named: http(url: $url, name: "renamed.txt", permissions: 493) { name id }
          plain: http(url: $url) { id }
        }"#,
        json!({ "root": http.url("/"), "url": url }),
    );
    assert_eq!(text(&answer, "index.name"), "index");
    assert_eq!(text(&answer, "named.name"), "renamed.txt");
    // Modes (0600 by default) and the Last-Modified time reach a container.
    let stat = run(
        &server,
        r#"query($image: String!, $a: ID!, $b: ID!) {
          container { from(address: $image) {
            withFile(path: "/in/a", source: $a) { withFile(path: "/in/b", source: $b) {
              withExec(args: ["sh", "-c", "stat -c '%a %Y' /in/a /in/b"]) { stdout } } } } } }"#,
        json!({
            "image": crate::support::busybox(),
            "a": text(&answer, "plain.id"),
            "b": text(&answer, "named.id"),
        }),
    );
    assert_eq!(
        text(&stat, "container.from.withFile.withFile.withExec.stdout"),
        "600 784887151\n755 784887151\n"
    );
}

#[test]
fn checksums_are_verified_and_pin_content_without_a_request() {
    require_runtime!();
    let (http, _) = versioned_server();
    let url = http.url("/file.txt");
    let mut server = Server::start();
    let wrong = server.query_vars(
        r#"query($url: String!, $sum: String!) { http(url: $url, checksum: $sum) { contents } }"#,
        &json!({ "url": url, "sum": sha256("something else") }),
    );
    assert_eq!(
        wrong["errors"][0]["extensions"]["code"], "CHECKSUM_MISMATCH",
        "{wrong}"
    );
    let message = wrong["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(&sha256("version one\n")), "{message}");
    let bad = server.query_vars(
        r#"query($url: String!) { http(url: $url, checksum: "md5:abc") { contents } }"#,
        &json!({ "url": url }),
    );
    assert_eq!(bad["errors"][0]["extensions"]["code"], "INVALID_ARGUMENT");
    let pinned = json!({ "url": url, "sum": sha256("version one\n") });
    let query =
        r#"query($url: String!, $sum: String!) { http(url: $url, checksum: $sum) { contents } }"#;
    assert_eq!(
        text(&run(&server, query, pinned.clone()), "http.contents"),
        "version one\n"
    );
    let requests = http.statuses().len();
    // Another engine: the kept content has the checksum, so no request.
    server.restart();
    assert_eq!(
        text(&run(&server, query, pinned), "http.contents"),
        "version one\n"
    );
    assert_eq!(http.statuses().len(), requests);
}

#[test]
fn the_auth_header_is_a_secret() {
    require_runtime!();
    let token = "Bearer http-token-0451-secret";
    let http = HttpServer::start(move |request| {
        if request.headers.get("authorization").map(String::as_str) == Some(token) {
            Response::new(200, "private\n")
        } else {
            Response::new(401, "no")
        }
    });
    let url = http.url("/private.txt");
    let server = Server::start();
    let refused = server.query_vars(FILE, &json!({ "url": url }));
    let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("401"), "{refused}");
    let secret = text(
        &run(
            &server,
            r#"query($token: String!) { setSecret(name: "auth", plaintext: $token) { id } }"#,
            json!({ "token": token }),
        ),
        "setSecret.id",
    );
    let answer = run(
        &server,
        r#"query($url: String!, $secret: ID!) { http(url: $url, authHeader: $secret) { contents } }"#,
        json!({ "url": url, "secret": secret }),
    );
    assert_eq!(text(&answer, "http.contents"), "private\n");
    assert!(!server.log().contains("http-token-0451"));
    assert!(files_containing(&server.state_dir(), b"http-token-0451").is_empty());
    http.clear();
}

/// The fixture HTTP server as a service: `GET /` answers `greeting` and the
/// request's `Host` header. Its ID and hostname.
fn greeting_service(server: &Server, greeting: &str) -> (String, String) {
    let out = run(
        server,
        r#"query($image: String!, $greeting: String!) { container { from(address: $image) {
            asService(args: ["--listen", ":8080", "--greeting", $greeting], useEntrypoint: true) {
              id hostname } } } }"#,
        json!({ "image": support::fixture("httpserver:latest"), "greeting": greeting }),
    );
    (
        text(&out, "container.from.asService.id"),
        text(&out, "container.from.asService.hostname"),
    )
}

const FROM_SERVICE: &str = r#"
query($url: String!, $svc: ID!) { http(url: $url, experimentalServiceHost: $svc) { name contents } }"#;

#[test]
fn a_download_from_a_service_reaches_it_by_its_hostname_with_the_url_as_given() {
    require_runtime!();
    let server = Server::start();
    let greeting = support::unique("greeting");
    let (svc, hostname) = greeting_service(&server, &greeting);
    // The engine's host cannot resolve the service's hostname; the request
    // still names it (its Host header), bare and in the search domain.
    for host in [hostname.clone(), format!("{hostname}.gantry.local")] {
        let url = format!("http://{host}:8080/");
        let answer = run(&server, FROM_SERVICE, json!({ "url": url, "svc": svc }));
        assert_eq!(text(&answer, "http.name"), "index");
        assert_eq!(
            text(&answer, "http.contents"),
            format!("{greeting} (host {host}:8080)\n")
        );
    }
    // A hostname of the caller's choosing (`withHostname`).
    let alias = support::unique("files").replace('_', "-");
    let named = text(
        &run(
            &server,
            r#"query($svc: ServiceID!, $alias: String!) { loadServiceFromID(id: $svc) {
                withHostname(hostname: $alias) { id } } }"#,
            json!({ "svc": svc, "alias": alias }),
        ),
        "loadServiceFromID.withHostname.id",
    );
    let url = format!("http://{alias}:8080/");
    let answer = run(&server, FROM_SERVICE, json!({ "url": url, "svc": named }));
    assert_eq!(
        text(&answer, "http.contents"),
        format!("{greeting} (host {alias}:8080)\n")
    );
    // Released with the download: the services outlive it by the grace
    // period (10 s) only, as for a step bound to them.
    assert!(support::gantry_containers_of(server.pid()) > 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while support::gantry_containers_of(server.pid()) > 0 {
        assert!(Instant::now() < deadline, "the services were not stopped");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_service_host_that_fails_to_start_fails_the_download_with_its_output() {
    require_runtime!();
    let server = Server::start();
    let out = run(
        &server,
        r#"query($image: String!) { container { from(address: $image) { withExposedPort(port: 8080) {
            asService(args: ["sh", "-c", "echo missing configuration; exit 3"]) { id hostname } } } } }"#,
        json!({ "image": support::busybox() }),
    );
    let svc = text(&out, "container.from.withExposedPort.asService.id");
    let hostname = text(&out, "container.from.withExposedPort.asService.hostname");
    let url = format!("http://{hostname}:8080/file.txt");
    let answer = server.query_vars(FROM_SERVICE, &json!({ "url": url, "svc": svc }));
    let message = error_message(&answer);
    assert!(
        message.contains(&format!("start {hostname} (experimentalServiceHost)")),
        "{message}"
    );
    assert!(message.contains("exit code: 3"), "{message}");
    let extensions = &answer["errors"][0]["extensions"];
    assert_eq!(extensions["_type"], "EXEC_ERROR", "{answer}");
    assert!(
        extensions["stdout"]
            .as_str()
            .unwrap_or_default()
            .contains("missing configuration"),
        "{answer}"
    );
}

#[test]
fn a_url_that_does_not_name_the_service_fails_naming_both_hosts() {
    require_runtime!();
    let server = Server::start();
    let (svc, hostname) = greeting_service(&server, "unused");
    let url = "http://not-the-service.invalid:8080/";
    let answer = server.query_vars(FROM_SERVICE, &json!({ "url": url, "svc": svc }));
    let message = error_message(&answer);
    assert!(
        message.contains("not-the-service.invalid is not the hostname"),
        "{message}"
    );
    assert!(message.contains(&hostname), "{message}");
}
