//! Services: a long-running container on the step network, reached by the names the
//! runtime writes into each step's `/etc/hosts`; signalled, and removed with its
//! namespace when dropped; the engine's own listeners on the bridge; a killed
//! engine's services removed by the next one.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use gantry_core::runtime::{NetworkSpec, Runtime as _, StartedContainer};

use crate::support::*;

fn steps_in(run_dir: &Path) -> usize {
    std::fs::read_dir(run_dir.join("steps"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// Whether `address` is on the step network's bridge.
fn bridge_has(address: IpAddr) -> bool {
    let out = std::process::Command::new("ip")
        .args(["-o", "-4", "addr", "show", "dev", "gantry0"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains(&format!("inet {address}/32"))
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// busybox httpd serving `page` on port 8080 as a service named `hostname`.
async fn http_service(
    fixture: &Fixture,
    image: &str,
    hostname: &str,
    page: &str,
) -> StartedContainer {
    let script =
        format!("mkdir -p /www && echo {page} > /www/index.html && exec httpd -f -p 8080 -h /www");
    let mut service = spec(image, &["sh", "-c", &script]);
    service.network = NetworkSpec {
        hostname: hostname.to_owned(),
        aliases: vec![hostname.to_owned(), format!("{hostname}.gantry.local")],
        hosts: Vec::new(),
        search: vec!["gantry.local".to_owned()],
    };
    fixture
        .runtime
        .start_container(service)
        .await
        .unwrap_or_else(|error| panic!("start_container: {error}"))
}

#[tokio::test]
async fn a_service_answers_by_alias_and_name_and_goes_when_dropped() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    fixture.runtime.check_services().unwrap();
    let image = fixture.pull(&busybox()).await.image_id;
    let page = format!("page-{:x}", rand_u64());
    let service = http_service(&fixture, &image, "websvc", &page).await;
    assert!(!service.address.is_unspecified(), "{service:?}");
    let run_dir = fixture.runtime.run_dir().to_owned();
    assert_eq!(steps_in(&run_dir), 1, "the service's step is running");

    // A bound step: the solver's line by alias, the runtime's by the service's names;
    // the search domain in resolv.conf.
    let mut client = spec(
        &image,
        &[
            "sh",
            "-c",
            "for n in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://www:8080/ && break; sleep 0.5; done; \
             wget -qO- http://websvc:8080/ && wget -qO- http://websvc.gantry.local:8080/ && \
             grep -c '^search gantry.local' /etc/resolv.conf",
        ],
    );
    client.network = NetworkSpec {
        hosts: vec![("www".to_owned(), service.address)],
        search: vec!["gantry.local".to_owned()],
        ..NetworkSpec::default()
    };
    let out = fixture.run(client).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.exit_code,
        0,
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches(page.as_str()).count(), 3, "{stdout}");
    assert!(stdout.ends_with("1\n"), "{stdout}");

    // The engine reaches it at its address too (what tunnels and `up` do).
    let address = service.address;
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect((address, 8080)).unwrap();
        stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap();
    assert!(answer.contains(&page), "{answer}");

    service.control.signal(true).await.unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(30), service.exited.clone())
        .await
        .expect("the service exits once killed");
    assert_eq!(exit.exit_code, Some(137), "{exit:?}");
    // Signalling what has exited is not an error.
    service.control.signal(true).await.unwrap();

    // Once gone, no step resolves its name any more; its step and namespace go.
    drop(service);
    let out = fixture
        .exec(&image, &["sh", "-c", "grep websvc /etc/hosts || echo none"])
        .await;
    assert_eq!(out.stdout, b"none\n");
    wait_until("the service's step to go", Duration::from_secs(15), || {
        steps_in(&run_dir) == 0
    });
}

#[tokio::test]
async fn sigterm_reaches_a_service_that_handles_it() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    let image = fixture.pull(&busybox()).await.image_id;
    let script = "trap 'echo bye; exit 42' TERM; echo up; while true; do sleep 0.1; done";
    let service = fixture
        .runtime
        .start_container(spec(&image, &["sh", "-c", script]))
        .await
        .unwrap();
    // Once its trap is set (it says so), TERM it.
    std::thread::sleep(Duration::from_millis(500));
    service.control.signal(false).await.unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(30), service.exited.clone())
        .await
        .expect("the service exits on SIGTERM");
    assert_eq!(exit.exit_code, Some(42), "{exit:?}");
    assert_eq!(exit.stdout, b"up\nbye\n");
}

#[tokio::test]
async fn a_service_that_cannot_start_exits_with_its_reason() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    let image = fixture.pull(&busybox()).await.image_id;
    let service = fixture
        .runtime
        .start_container(spec(&image, &["/no/such/program"]))
        .await
        .unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(30), service.exited.clone())
        .await
        .expect("it exits");
    assert_eq!(exit.exit_code, Some(127), "{exit:?}");
    let stderr = String::from_utf8_lossy(&exit.stderr).to_lowercase();
    assert!(
        stderr.contains("no such file") || stderr.contains("not found"),
        "{exit:?}"
    );

    // A service that prints and exits: its output and code.
    let service = fixture
        .runtime
        .start_container(spec(
            &image,
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
        ))
        .await
        .unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(30), service.exited.clone())
        .await
        .expect("it exits");
    assert_eq!(exit.exit_code, Some(3), "{exit:?}");
    assert_eq!(exit.stdout, b"out\n");
    assert_eq!(exit.stderr, b"err\n");
}

#[tokio::test]
async fn the_engine_listens_on_an_address_of_its_own_on_the_bridge() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    let image = fixture.pull(&busybox()).await.image_id;
    let bound = fixture
        .runtime
        .listen_on_step_network(&[8123])
        .await
        .unwrap();
    let address = bound.address;
    assert!(bridge_has(address), "{address} is on the bridge");
    let listener = bound.listeners.into_iter().next().unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request).unwrap();
        stream
            .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nfrom host")
            .unwrap();
    });
    let url = format!("http://{address}:8123/");
    let out = fixture.sh(&image, &format!("wget -qO- {url}")).await;
    assert_eq!(out, "from host");
    server.join().unwrap();
    drop(bound.guard);
    assert!(!bridge_has(address), "{address} was released");
}

/// The child half of `a_killed_engines_services_are_removed_by_the_next`: an engine
/// that starts a service and a host listener, prints the addresses, then waits to be
/// killed.
#[tokio::test]
async fn child_engine_with_a_service() {
    let (Ok(state), Ok(seconds)) = (
        std::env::var("GANTRY_NATIVE_TEST_SERVICE_STATE"),
        std::env::var("GANTRY_NATIVE_TEST_SERVICE_SLEEP"),
    ) else {
        return; // only meaningful when the parent test runs it
    };
    let runtime = start_runtime(Path::new(&state)).await;
    let image = runtime.pull(&busybox(), None).await.unwrap().image_id;
    let service = runtime
        .start_container(spec(&image, &["sleep", &seconds]))
        .await
        .unwrap();
    let bound = runtime.listen_on_step_network(&[8124]).await.unwrap();
    std::fs::write(
        Path::new(&state).join("addresses"),
        format!("{} {}", service.address, bound.address),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
    drop((service, bound));
    panic!("the child engine should have been killed");
}

#[tokio::test]
async fn a_killed_engines_services_are_removed_by_the_next() {
    if !native_available() {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let seconds = (3000 + rand_u64() % 5000).to_string();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "services::child_engine_with_a_service",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("GANTRY_NATIVE_TEST_SERVICE_STATE", state.path())
        .env("GANTRY_NATIVE_TEST_SERVICE_SLEEP", &seconds)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addresses = state.path().join("addresses");
    wait_until(
        "the child engine's service",
        Duration::from_secs(60),
        || addresses.exists(),
    );
    let text = std::fs::read_to_string(&addresses).unwrap();
    let (service, host): (IpAddr, IpAddr) = {
        let (a, b) = text.split_once(' ').unwrap();
        (a.parse().unwrap(), b.parse().unwrap())
    };
    let sleeping = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
            .any(|cmdline| {
                String::from_utf8_lossy(&cmdline).replace('\0', " ").trim()
                    == format!("sleep {seconds}")
            })
    };
    let child_pid = child.id();
    child.kill().unwrap(); // SIGKILL: no cleanup of its own
    child.wait().unwrap();
    assert!(sleeping(), "the service outlived its engine");
    assert!(bridge_has(host), "its host address outlived it");
    assert!(!service.is_unspecified());

    let next = start_runtime(state.path()).await;
    let removed = next.remove_orphans().await.unwrap();
    assert!(removed >= 1, "removed {removed}");
    wait_until(
        "the orphaned service to be killed",
        Duration::from_secs(15),
        || !sleeping(),
    );
    assert!(
        !bridge_has(host),
        "the dead engine's host address was removed"
    );
    let engine = format!("gantry-{child_pid}-");
    let left = std::fs::read_dir("/run/netns")
        .map(|dir| {
            dir.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&engine))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(left, 0, "the service's namespace was removed");
}

/// With host networking every step shares the host's network: a service is reached at
/// the loopback address, and the engine's listeners sit on a loopback address of their
/// own.
#[tokio::test]
async fn services_run_with_host_networking_too() {
    if !native_available() {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let mut options = options(state.path());
    options.network = gantry_native::NetworkMode::Host;
    let runtime = gantry_native::NativeRuntime::start(options).await.unwrap();
    let image = runtime.pull(&busybox(), None).await.unwrap().image_id;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let page = format!("host-page-{:x}", rand_u64());
    let script = format!(
        "mkdir -p /www && echo {page} > /www/index.html && exec httpd -f -p 127.0.0.1:{port} -h /www"
    );
    let mut service = spec(&image, &["sh", "-c", &script]);
    service.network.hostname = "hostnet".to_owned();
    service.network.aliases = vec!["hostnet".to_owned()];
    let service = runtime.start_container(service).await.unwrap();
    assert!(service.address.is_loopback(), "{service:?}");
    let client = format!(
        "for n in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://hostnet:{port}/ && exit 0; sleep 0.5; done; exit 1"
    );
    let out = runtime
        .exec(spec(&image, &["sh", "-c", &client]))
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        page,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The engine's own listener, on a loopback address of its own.
    let bound = runtime.listen_on_step_network(&[port]).await.unwrap();
    assert!(bound.address.is_loopback(), "{}", bound.address);
    assert_ne!(
        bound.address,
        std::net::IpAddr::from([127, 0, 0, 1]),
        "not the loopback address the service listens on"
    );
    drop(bound);
    service.control.signal(true).await.unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(30), service.exited.clone())
        .await
        .expect("the service exits once killed");
    assert_eq!(exit.exit_code, Some(137), "{exit:?}");
}
