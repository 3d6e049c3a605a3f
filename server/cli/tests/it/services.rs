//! Services on the runtime under test (both passes: Docker and native): an
//! HTTP server (busybox httpd) reached by its alias and hostname,
//! health-checked, shared, stopped; early exits; ports forwarded both ways
//! (`up`, `Host.tunnel`, `Host.service`); host Unix sockets; on the native
//! runtime, nothing of a service left once it stopped.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{self, busybox, data, error_message, run, text, Server};

/// A service serving `page` over HTTP on port 8080 (busybox httpd), as an ID.
fn http_service(server: &Server, page: &str) -> String {
    let out = run(
        server,
        r#"query($image: String!, $page: String!) { container { from(address: $image) {
            withNewFile(path: "/www/index.html", contents: $page) { withExposedPort(port: 8080) {
              asService(args: ["httpd", "-f", "-p", "8080", "-h", "/www"]) { id hostname } } } } } }"#,
        json!({ "image": busybox(), "page": page }),
    );
    text(
        &out,
        "container.from.withNewFile.withExposedPort.asService.id",
    )
}

/// The stdout of `script` run by busybox sh in a container bound to `service`
/// as `alias`.
fn client_stdout(server: &Server, service: &str, alias: &str, script: &str) -> Value {
    server.query_vars(
        r#"query($image: String!, $svc: ID!, $alias: String!, $script: String!) { container {
            from(address: $image) { withServiceBinding(alias: $alias, service: $svc) {
              withExec(args: ["sh", "-c", $script]) { stdout } } } } }"#,
        &json!({ "image": busybox(), "svc": service, "alias": alias, "script": script }),
    )
}

fn stdout(answer: Value) -> String {
    text(
        &data(answer),
        "container.from.withServiceBinding.withExec.stdout",
    )
}

fn service_field(server: &Server, id: &str, field: &str) -> Value {
    let out = run(
        server,
        &format!(r#"query($id: ServiceID!) {{ loadServiceFromID(id: $id) {{ {field} }} }}"#),
        json!({ "id": id }),
    );
    out["loadServiceFromID"].clone()
}

/// GET / over a plain TCP connection; the body.
fn http_get(host: &str, port: u16) -> String {
    let mut stream = std::net::TcpStream::connect((host, port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET / HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or(answer)
}

#[test]
fn a_bound_service_answers_by_alias_and_hostname() {
    require_runtime!();
    let server = Server::start();
    let page = support::unique("page");
    let svc = http_service(&server, &page);
    let hostname = text(&service_field(&server, &svc, "hostname"), "hostname");
    assert_eq!(hostname.len(), 13, "{hostname}");
    // The alias through /etc/hosts, the hostname bare (search domain) and
    // qualified.
    let script = format!(
        "wget -qO- http://www:8080/ && wget -qO- http://{hostname}:8080/ && \
         wget -qO- http://{hostname}.gantry.local:8080/"
    );
    let out = stdout(client_stdout(&server, &svc, "www", &script));
    assert_eq!(out.matches(page.as_str()).count(), 3, "{out}");

    let endpoint = service_field(&server, &svc, r#"endpoint(scheme: "http")"#);
    assert_eq!(endpoint["endpoint"], format!("http://{hostname}:8080"));
    let ports = service_field(
        &server,
        &svc,
        "ports { port protocol description experimentalSkipHealthcheck }",
    );
    assert_eq!(
        ports["ports"],
        json!([{ "port": 8080, "protocol": "TCP", "description": null,
                 "experimentalSkipHealthcheck": false }])
    );
    support::still_serving(&server);
}

#[test]
fn a_changed_service_reruns_its_dependents() {
    require_runtime!();
    let server = Server::start();
    let script = "wget -qO- http://www:8080/";
    let first = support::unique("first");
    let second = support::unique("second");
    let one = stdout(client_stdout(
        &server,
        &http_service(&server, &first),
        "www",
        script,
    ));
    let two = stdout(client_stdout(
        &server,
        &http_service(&server, &second),
        "www",
        script,
    ));
    assert_eq!(one, first);
    assert_eq!(
        two, second,
        "the same command with another service ran again"
    );
}

#[test]
fn a_service_that_exits_early_fails_its_dependent_with_its_output() {
    require_runtime!();
    let server = Server::start();
    let out = run(
        &server,
        r#"query($image: String!) { container { from(address: $image) { withExposedPort(port: 8080) {
            asService(args: ["sh", "-c", "echo missing configuration; exit 3"]) { id } } } } }"#,
        json!({ "image": busybox() }),
    );
    let svc = text(&out, "container.from.withExposedPort.asService.id");
    let started = Instant::now();
    let answer = client_stdout(&server, &svc, "db", "echo never");
    let message = error_message(&answer);
    assert!(message.contains("(aliased as db)"), "{message}");
    assert!(message.contains("exit code: 3"), "{message}");
    let extensions = &answer["errors"][0]["extensions"];
    assert_eq!(extensions["_type"], "EXEC_ERROR", "{answer}");
    assert_eq!(extensions["exitCode"], 3, "{answer}");
    assert!(
        extensions["stdout"]
            .as_str()
            .unwrap()
            .contains("missing configuration"),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    support::still_serving(&server);
}

#[test]
fn start_stop_and_a_tunnel_reach_the_service_from_the_host() {
    require_runtime!();
    let server = Server::start();
    let page = support::unique("tunnelled");
    let svc = http_service(&server, &page);
    let out = run(
        &server,
        r#"query($id: ID!) { host { tunnel(service: $id) { start endpoint ports { port } } } }"#,
        json!({ "id": svc }),
    );
    let endpoint = text(&out, "host.tunnel.endpoint");
    let (host, port) = endpoint.rsplit_once(':').unwrap();
    assert_eq!(host, "127.0.0.1");
    let port: u16 = port.parse().unwrap();
    assert_eq!(out["host"]["tunnel"]["ports"][0]["port"], port);
    assert_eq!(http_get(host, port), page);

    // Stopping the tunnel closes its port.
    let stopped = run(
        &server,
        r#"query($id: ID!) { host { tunnel(service: $id) { stop } } }"#,
        json!({ "id": svc }),
    );
    assert!(stopped["host"]["tunnel"]["stop"].is_string());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn a_started_service_answers_by_its_hostname_without_a_binding() {
    require_runtime!();
    let server = Server::start();
    let page = support::unique("named");
    let svc = http_service(&server, &page);
    let hostname = support::unique("web").replace('_', "-");
    let out = run(
        &server,
        r#"query($id: ServiceID!, $name: String!) { loadServiceFromID(id: $id) {
            withHostname(hostname: $name) { start hostname } } }"#,
        json!({ "id": svc, "name": hostname }),
    );
    let named = text(&out, "loadServiceFromID.withHostname.start");
    assert_eq!(
        text(&out, "loadServiceFromID.withHostname.hostname"),
        hostname
    );
    let fetched = run(
        &server,
        r#"query($image: String!, $url: String!) { container { from(address: $image) {
            withExec(args: ["wget", "-qO-", $url]) { stdout } } } }"#,
        json!({ "image": busybox(), "url": format!("http://{hostname}:8080/") }),
    );
    assert_eq!(text(&fetched, "container.from.withExec.stdout"), page);
    let stopped = run(
        &server,
        r#"query($id: ServiceID!) { loadServiceFromID(id: $id) { stop(kill: true) } }"#,
        json!({ "id": named }),
    );
    assert_eq!(text(&stopped, "loadServiceFromID.stop"), named);
    // Stopped: nothing of its container is left (Docker's container; the native
    // runtime's step, with its namespace and mount).
    let deadline = Instant::now() + Duration::from_secs(30);
    while support::gantry_containers_of(server.pid()) > 0 {
        assert!(
            Instant::now() < deadline,
            "the stopped service's container is left"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Stopped: a new step no longer resolves the name.
    let after = server.query_vars(
        r#"query($image: String!, $url: String!) { container { from(address: $image) {
            withExec(args: ["wget", "-qO-", "-T", "2", $url]) { stdout } } } }"#,
        &json!({ "image": busybox(), "url": format!("http://{hostname}:8080/?again") }),
    );
    assert!(after["errors"].is_array(), "{after}");
}

#[test]
fn up_forwards_ports_to_the_host_until_the_client_hangs_up() {
    require_runtime!();
    let server = Server::start();
    let page = support::unique("up");
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let query = format!(
        r#"{{ container {{ from(address: "{}") {{ withNewFile(path: "/www/index.html", contents: "{page}") {{
            withExposedPort(port: 8080) {{
              up(args: ["httpd", "-f", "-p", "8080", "-h", "/www"], ports: [{{ frontend: {port}, backend: 8080 }}]) }} }} }} }} }}"#,
        busybox()
    );
    let connection = server.send_and_hang_up(&query, Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "up never opened port {port}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // On a loaded machine the first answer can come late: ask again (a read
    // times out after 10 s) until the deadline rather than once.
    let answered = loop {
        let attempt = std::panic::catch_unwind(|| http_get("127.0.0.1", port));
        match attempt {
            Ok(body) if body == page || Instant::now() >= deadline => break body,
            _ if Instant::now() >= deadline => break String::new(),
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    };
    assert_eq!(answered, page);
    drop(connection);
    // The forward goes once the client is gone (after the grace period).
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "port {port} still open");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn host_services_reach_a_server_on_the_host() {
    require_runtime!();
    let server = Server::start();
    // A one-answer-per-connection server on the host's loopback.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let greeting = support::unique("from-the-host");
    let answer = greeting.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            // Read the request first: closing a socket with unread input
            // resets the connection, which can lose the answer.
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                request.push(byte[0]);
            }
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    let out = run(
        &server,
        r#"query($port: Int!) { host { service(ports: [{ backend: $port }]) { id endpoint } } }"#,
        json!({ "port": port }),
    );
    let svc = text(&out, "host.service.id");
    assert!(text(&out, "host.service.endpoint").ends_with(&format!(":{port}")));
    let out = stdout(client_stdout(
        &server,
        &svc,
        "hostapp",
        &format!("wget -qO- http://hostapp:{port}/"),
    ));
    assert_eq!(out, greeting);
}

#[test]
fn unix_sockets_of_the_host_are_mounted_and_keyed_by_identity() {
    require_runtime!();
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let query = r#"query($image: String!, $path: String!) { host { unixSocket(path: $path) { id } }
        container { from(address: $image) { id } } }"#;
    let step = r#"query($image: String!, $sock: ID!) { container { from(address: $image) {
        withUnixSocket(path: "/run/agent.sock", source: $sock) {
          withExec(args: ["sh", "-c", "test -S /run/agent.sock && echo socket $(cat /proc/sys/kernel/random/uuid)"]) { stdout }
          withoutUnixSocket(path: "/run/agent.sock") {
            withExec(args: ["sh", "-c", "test -e /run/agent.sock || echo gone"]) { stdout } } } } } }"#;
    let mut outputs = Vec::new();
    for _ in 0..2 {
        let _ = std::fs::remove_file(&path);
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let vars = json!({ "image": busybox(), "path": path.display().to_string() });
        let sock = text(&run(&server, query, vars), "host.unixSocket.id");
        assert!(!sock.contains("agent.sock"), "the ID holds no path: {sock}");
        let out = run(&server, step, json!({ "image": busybox(), "sock": sock }));
        let mounted = text(&out, "container.from.withUnixSocket.withExec.stdout");
        assert!(mounted.starts_with("socket "), "{mounted}");
        assert_eq!(
            text(
                &out,
                "container.from.withUnixSocket.withoutUnixSocket.withExec.stdout"
            ),
            "gone\n"
        );
        outputs.push(mounted);
    }
    assert_ne!(
        outputs[0], outputs[1],
        "a socket re-created at the same path is another input"
    );

    let not_a_socket = server.query_vars(
        r#"query($path: String!) { host { unixSocket(path: $path) { id } } }"#,
        &json!({ "path": dir.path().display().to_string() }),
    );
    assert!(
        error_message(&not_a_socket).contains("not a Unix socket"),
        "{not_a_socket}"
    );
}

/// The HTTP server fixture (scripts/fixtures/httpserver): its image's
/// entrypoint, default args and EXPOSE run as a service with no arguments.
#[test]
fn an_image_runs_as_a_service_with_its_own_command_and_ports() {
    require_runtime!();
    let server = Server::start();
    let greeting = support::unique("greeting");
    let out = run(
        &server,
        r#"query($image: String!, $greeting: String!) { container { from(address: $image) {
            exposedPorts { port protocol }
            withEnvVariable(name: "GREETING", value: $greeting) { asService { id } } } } }"#,
        json!({ "image": support::fixture("httpserver:latest"), "greeting": greeting }),
    );
    assert_eq!(
        out["container"]["from"]["exposedPorts"],
        json!([{ "port": 8080, "protocol": "TCP" }])
    );
    let svc = text(&out, "container.from.withEnvVariable.asService.id");
    let page = stdout(client_stdout(
        &server,
        &svc,
        "api",
        "wget -qO- http://api:8080/ && wget -qO- http://api:8080/env/GREETING",
    ));
    assert_eq!(
        page,
        format!("hello from httpserver (host api:8080)\n{greeting}\n")
    );
}

#[test]
fn a_service_that_dies_mid_step_fails_the_step_with_its_output() {
    require_runtime!();
    let server = Server::start();
    let out = run(
        &server,
        r#"query($image: String!) { container { from(address: $image) {
            asService(args: ["--listen", ":8080"], useEntrypoint: true) { id } } } }"#,
        json!({ "image": support::fixture("httpserver:latest") }),
    );
    let svc = text(&out, "container.from.asService.id");
    let started = Instant::now();
    let answer = client_stdout(
        &server,
        &svc,
        "api",
        "wget -qO- http://api:8080/ && wget -qO- http://api:8080/fail && sleep 60",
    );
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "the step was stopped when its service died"
    );
    let message = error_message(&answer);
    assert!(message.contains("(aliased as api) exited"), "{message}");
    assert!(message.contains("exit code: 3"), "{message}");
    let extensions = &answer["errors"][0]["extensions"];
    assert!(
        extensions["stderr"]
            .as_str()
            .unwrap()
            .contains("failing on purpose"),
        "{answer}"
    );
}

#[test]
fn insecure_root_capabilities_run_the_service_privileged() {
    require_runtime!();
    let server = Server::start();
    // The service says over HTTP whether it could mount a tmpfs, which
    // takes CAP_SYS_ADMIN (and no seccomp or AppArmor in the way).
    let serve = "mkdir -p /m /www; if mount -t tmpfs tmpfs /m 2>/dev/null; \
                 then echo mounted; else echo refused; fi > /www/index.html; \
                 exec httpd -f -p 8080 -h /www";
    let out = run(
        &server,
        r#"query($image: String!, $serve: String!) { container { from(address: $image) {
            withExposedPort(port: 8080) {
              plain: asService(args: ["sh", "-c", $serve]) { id }
              privileged: asService(args: ["sh", "-c", $serve], insecureRootCapabilities: true) { id }
            } } } }"#,
        json!({ "image": busybox(), "serve": serve }),
    );
    let answer = |name: &str| {
        let svc = text(&out, &format!("container.from.withExposedPort.{name}.id"));
        stdout(client_stdout(
            &server,
            &svc,
            "www",
            "wget -qO- http://www:8080/",
        ))
    };
    assert_eq!(answer("privileged"), "mounted\n");
    assert_eq!(answer("plain"), "refused\n");
}

/// A registry (the host's `docker-registry`, Debian's build of the
/// distribution registry, with the C library it loads) as a started
/// service on port 5000: its ID and hostname. Started, so that its storage
/// (the container's own) outlives each pull and push.
fn registry_service(server: &Server) -> (String, String) {
    let real = |path: &str| std::fs::canonicalize(path).unwrap().display().to_string();
    let files = run(
        server,
        r#"query($registry: String!, $libc: String!, $loader: String!) { host {
            registry: file(path: $registry) { id }
            libc: file(path: $libc) { id }
            loader: file(path: $loader) { id } } }"#,
        json!({
            "registry": real("/usr/bin/docker-registry"),
            "libc": real("/lib/x86_64-linux-gnu/libc.so.6"),
            "loader": real("/lib64/ld-linux-x86-64.so.2"),
        }),
    );
    let config = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n\
                  http:\n  addr: :5000\n";
    let out = run(
        server,
        r#"query($image: String!, $registry: FileID!, $libc: FileID!, $loader: FileID!,
                 $config: String!) { container { from(address: $image) {
            withFile(path: "/usr/bin/registry", source: $registry) {
            withFile(path: "/lib/x86_64-linux-gnu/libc.so.6", source: $libc) {
            withFile(path: "/lib64/ld-linux-x86-64.so.2", source: $loader) {
            withNewFile(path: "/etc/registry.yml", contents: $config) {
            withExposedPort(port: 5000) {
              asService(args: ["/usr/bin/registry", "serve", "/etc/registry.yml"]) {
                start hostname } } } } } } } } }"#,
        json!({
            "image": busybox(),
            "registry": text(&files, "host.registry.id"),
            "libc": text(&files, "host.libc.id"),
            "loader": text(&files, "host.loader.id"),
            "config": config,
        }),
    );
    let service = "container.from.withFile.withFile.withFile.withNewFile.withExposedPort.asService";
    (
        text(&out, &format!("{service}.start")),
        text(&out, &format!("{service}.hostname")),
    )
}

#[test]
fn an_image_is_published_to_and_pulled_from_a_registry_service() {
    require_runtime!();
    let server = Server::start();
    let (registry, hostname) = registry_service(&server);
    let marker = support::unique("published");
    // A repository of its own: the service's hostname is the same every run.
    let repo = support::unique("gantry-test/app");
    let address = format!("{hostname}:5000/{repo}:v1");
    let published = run(
        &server,
        r#"query($image: String!, $marker: String!, $address: String!, $registry: ID!) {
            container { from(address: $image) { withNewFile(path: "/marker", contents: $marker) {
              publish(address: $address, registryService: $registry) } } } }"#,
        json!({ "image": busybox(), "marker": marker, "address": address, "registry": registry }),
    );
    let published = text(&published, "container.from.withNewFile.publish");
    assert!(
        published.starts_with(&format!("{address}@sha256:")),
        "{published}"
    );
    // Pulled back by the name it was published under, and run.
    let pulled = run(
        &server,
        r#"query($address: String!, $registry: ID!) { container {
            from(address: $address, registryService: $registry) {
              imageRef withExec(args: ["cat", "/marker"]) { stdout } } } }"#,
        json!({ "address": address, "registry": registry }),
    );
    assert_eq!(text(&pulled, "container.from.withExec.stdout"), marker);
    let image_ref = text(&pulled, "container.from.imageRef");
    assert!(
        image_ref.starts_with(&format!("{hostname}:5000/{repo}")),
        "the reference names the registry as given: {image_ref}"
    );
    // The runtime's image store names the image as given too, not by the
    // loopback forward each transfer went through (`127.0.0.1:PORT/…`, a
    // port gone since).
    let names = support::image_names(server.dir(), &format!("/{repo}:"));
    assert_eq!(
        names,
        std::slice::from_ref(&address),
        "named as given, and only so"
    );
    support::forget_published(&address);
    // Another host than the service's is an error naming both.
    let wrong = server.query_vars(
        r#"query($registry: ID!) { container {
            from(address: "elsewhere:5000/gantry-test/app:v1", registryService: $registry) {
              sync } } }"#,
        &json!({ "registry": registry }),
    );
    let message = error_message(&wrong);
    assert!(
        message.contains("elsewhere") && message.contains(&hostname),
        "{message}"
    );
}

/// A nested command (`experimentalPrivilegedNesting`) runs on the host's
/// network, and still reaches the services bound to it by alias.
#[test]
fn a_nested_command_reaches_its_bound_service() {
    require_runtime!();
    let server = Server::start();
    let service = http_service(&server, "nested and bound");
    let answer = server.query_vars(
        r#"query($image: String!, $svc: ID!) { container {
            from(address: $image) { withServiceBinding(alias: "web", service: $svc) {
              withExec(args: ["sh", "-c", "wget -qO- http://web:8080/ && echo port=$DAGGER_SESSION_PORT"],
                       experimentalPrivilegedNesting: true) { stdout } } } } }"#,
        &json!({ "image": busybox(), "svc": service }),
    );
    let out = stdout(answer);
    assert!(out.starts_with("nested and bound"), "{out}");
    assert!(out.contains("port=") && !out.ends_with("port=\n"), "{out}");
}
