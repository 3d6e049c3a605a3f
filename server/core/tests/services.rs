//! Services against `FakeRuntime`: started when a dependent runs, shared,
//! health-checked, named, counted, stopped, and failing their dependents
//! with their own output. No Docker needed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use gantry_core::fake::FakeRuntime;
use gantry_core::ops;
use gantry_core::store::MemoryStore;
use gantry_core::value::{PortForward, Protocol};
use gantry_core::{Digest, Engine, EngineOptions, Error};

mod common;
use common::{base, exec};

/// A short grace period, so the tests see services stop.
const GRACE: Duration = Duration::from_millis(100);

fn new_engine() -> (Arc<Engine>, Arc<FakeRuntime>) {
    let runtime = Arc::new(FakeRuntime::default());
    let engine = Engine::new(
        runtime.clone(),
        Arc::new(MemoryStore::default()),
        EngineOptions {
            max_parallel: 16,
            secret_key: [7; 32],
        },
    )
    .with_service_grace(GRACE);
    (Arc::new(engine), runtime)
}

/// A service running `args`, exposing `ports`.
fn service(engine: &Engine, args: &[&str], ports: &[u16]) -> Digest {
    let mut container = base(engine);
    for port in ports {
        container = engine
            .add(ops::WithExposedPort {
                parent: container,
                port: *port,
                protocol: Protocol::Tcp,
                description: None,
                skip_healthcheck: false,
            })
            .digest;
    }
    engine
        .add(ops::AsService {
            container,
            args: args.iter().map(|arg| arg.to_string()).collect(),
            use_entrypoint: false,
            expand: false,
            insecure_root_capabilities: false,
        })
        .digest
}

/// `service` (an `asService` node) with `insecureRootCapabilities: true`.
fn privileged_service(engine: &Engine, service: Digest) -> Digest {
    let node = engine.node(&service).unwrap();
    let ops::Op::AsService(as_service) = &node.op else {
        panic!("an asService node");
    };
    let mut as_service = as_service.clone();
    as_service.insecure_root_capabilities = true;
    engine.add(as_service).digest
}

fn bind(engine: &Engine, parent: Digest, alias: &str, service: Digest) -> Digest {
    engine
        .add(ops::WithServiceBinding {
            parent,
            alias: alias.into(),
            service,
        })
        .digest
}

async fn settle(runtime: &FakeRuntime, running: usize) {
    for _ in 0..100 {
        if runtime.services_running() == running {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "expected {running} running services, found {}",
        runtime.services_running()
    );
}

#[tokio::test]
async fn a_dependent_starts_its_service_and_reaches_it_by_alias_and_hostname() {
    let (engine, runtime) = new_engine();
    let db = service(&engine, &["serve", "5432"], &[5432]);
    let client = bind(&engine, base(&engine), "db", db);
    let run = exec(&engine, client, &["echo", "query"]);
    assert_eq!(runtime.service_starts.load(Ordering::SeqCst), 0, "lazy");

    engine.container(run).await.unwrap();
    assert_eq!(runtime.service_starts.load(Ordering::SeqCst), 1);
    let hostname = engine.service(db).await.unwrap().hostname.clone();
    let networks = runtime.networks.lock().unwrap().clone();
    let hosts = &networks.last().unwrap().hosts;
    let address_of = |name: &str| {
        hosts
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, address)| *address)
    };
    let address = address_of("db").expect("the alias resolves");
    assert_eq!(address_of(&hostname), Some(address));
    assert_eq!(
        address_of(&format!("{hostname}.gantry.local")),
        Some(address)
    );
    assert_eq!(networks.last().unwrap().search, vec!["gantry.local"]);
    // The service itself answers to its hostname on the network.
    let services = runtime.services.lock().unwrap().clone();
    assert_eq!(services[0].1.hostname, hostname);
    assert!(services[0].1.aliases.contains(&hostname));

    // No dependent left: it stops after the grace period.
    settle(&runtime, 0).await;
}

#[tokio::test]
async fn a_privileged_service_is_another_service_and_runs_privileged() {
    let (engine, runtime) = new_engine();
    let plain = service(&engine, &["serve", "80"], &[80]);
    let privileged = privileged_service(&engine, plain);
    assert_ne!(privileged, plain, "the flag is in the service's identity");
    let plain_name = engine.service(plain).await.unwrap().hostname.clone();
    let privileged_name = engine.service(privileged).await.unwrap().hostname.clone();
    assert_ne!(plain_name, privileged_name, "so is its instance");

    let first = exec(
        &engine,
        bind(&engine, base(&engine), "s", plain),
        &["echo", "1"],
    );
    engine.container(first).await.unwrap();
    let second = exec(
        &engine,
        bind(&engine, base(&engine), "s", privileged),
        &["echo", "1"],
    );
    engine.container(second).await.unwrap();
    assert_eq!(
        *runtime.privileged_services.lock().unwrap(),
        [false, true],
        "two instances, the second privileged"
    );
    settle(&runtime, 0).await;
}

#[tokio::test]
async fn concurrent_dependents_share_one_instance() {
    let (engine, runtime) = new_engine();
    let db = service(&engine, &["serve", "5432"], &[5432]);
    let client = bind(&engine, base(&engine), "db", db);
    let runs: Vec<Digest> = (0..4)
        .map(|n| exec(&engine, client, &["sleep-ms", "50", &n.to_string()]))
        .collect();
    let results = futures::future::join_all(runs.iter().map(|run| engine.container(*run))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(runtime.service_starts.load(Ordering::SeqCst), 1);
    settle(&runtime, 0).await;
}

#[tokio::test]
async fn consecutive_dependents_within_the_grace_period_keep_it_running() {
    let (engine, runtime) = new_engine();
    let db = service(&engine, &["serve", "5432"], &[5432]);
    let client = bind(&engine, base(&engine), "db", db);
    engine
        .container(exec(&engine, client, &["echo", "1"]))
        .await
        .unwrap();
    engine
        .container(exec(&engine, client, &["echo", "2"]))
        .await
        .unwrap();
    assert_eq!(runtime.service_starts.load(Ordering::SeqCst), 1);
    settle(&runtime, 0).await;
    engine
        .container(exec(&engine, client, &["echo", "3"]))
        .await
        .unwrap();
    assert_eq!(
        runtime.service_starts.load(Ordering::SeqCst),
        2,
        "stopped after the grace period, started again"
    );
}

#[tokio::test]
async fn a_cached_dependent_starts_no_service() {
    let store = Arc::new(MemoryStore::default());
    let runtimes = [
        Arc::new(FakeRuntime::default()),
        Arc::new(FakeRuntime::default()),
    ];
    for runtime in &runtimes {
        // A new engine over the same store: the second finds the result.
        let engine = Engine::new(
            runtime.clone(),
            store.clone(),
            EngineOptions {
                max_parallel: 4,
                secret_key: [7; 32],
            },
        );
        let db = service(&engine, &["serve", "5432"], &[5432]);
        let run = exec(
            &engine,
            bind(&engine, base(&engine), "db", db),
            &["echo", "cached"],
        );
        engine.container(run).await.unwrap();
        engine.shutdown().await;
    }
    assert_eq!(runtimes[0].service_starts.load(Ordering::SeqCst), 1);
    assert_eq!(
        runtimes[1].service_starts.load(Ordering::SeqCst),
        0,
        "the second engine found the result cached"
    );
    assert_eq!(runtimes[1].execs(), 0);
}

#[tokio::test]
async fn the_service_is_part_of_its_dependents_cache_keys() {
    let (engine, _) = new_engine();
    let client = |args: &[&str]| {
        let svc = service(&engine, args, &[]);
        let bound = bind(&engine, base(&engine), "db", svc);
        exec(&engine, bound, &["echo", "same"])
    };
    let a = engine.container(client(&["serve", "1"])).await.unwrap();
    let b = engine.container(client(&["serve", "2"])).await.unwrap();
    let a_again = engine.container(client(&["serve", "1"])).await.unwrap();
    assert_ne!(a.key, b.key);
    assert_eq!(a.key, a_again.key);
}

#[tokio::test]
async fn a_service_that_exits_early_fails_its_dependent_with_its_output() {
    let (engine, runtime) = new_engine();
    let broken = service(&engine, &["exit", "3", "no", "config"], &[8080]);
    let hostname = engine.service(broken).await.unwrap().hostname.clone();
    let run = exec(
        &engine,
        bind(&engine, base(&engine), "www", broken),
        &["echo", "never"],
    );
    let error = engine.container(run).await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&format!("start {hostname} (aliased as www): exit code: 3")),
        "{message}"
    );
    let failure = error.exec_failure().expect("carries the service's failure");
    assert_eq!(failure.exit_code, 3);
    assert_eq!(failure.cmd, vec!["exit", "3", "no", "config"]);
    assert!(failure.stdout.contains("no config"), "{failure:?}");
    assert_eq!(error.code(), "EXEC_ERROR");
    assert_eq!(runtime.execs(), 0, "the dependent never ran");
}

#[tokio::test]
async fn a_service_exiting_mid_step_fails_the_step() {
    let (engine, _) = new_engine();
    let flaky = service(&engine, &["exit-after", "100", "42"], &[]);
    let hostname = engine.service(flaky).await.unwrap().hostname.clone();
    let run = exec(
        &engine,
        bind(&engine, base(&engine), "app", flaky),
        &["sleep-ms", "5000"],
    );
    let started = std::time::Instant::now();
    let error = engine.container(run).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "short-circuited"
    );
    let message = error.to_string();
    assert!(
        message.contains(&format!("bound service {hostname} (aliased as app) exited")),
        "{message}"
    );
    assert!(message.contains("exit code: 42"), "{message}");
}

#[tokio::test]
async fn dependents_wait_until_the_ports_accept_connections() {
    let (engine, runtime) = new_engine();
    let slow = service(&engine, &["serve-after", "300", "8080"], &[8080]);
    let run = exec(
        &engine,
        bind(&engine, base(&engine), "www", slow),
        &["echo", "ready"],
    );
    let started = std::time::Instant::now();
    engine.container(run).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the step waited for the port"
    );
    assert_eq!(runtime.execs(), 1);
}

#[tokio::test]
async fn start_and_stop_hold_a_service_explicitly() {
    let (engine, runtime) = new_engine();
    let db = service(&engine, &["serve", "5432"], &[5432]);
    engine.start_service(db).await.unwrap();
    tokio::time::sleep(GRACE * 3).await;
    assert_eq!(runtime.services_running(), 1, "held by start");
    let hostname = engine.service(db).await.unwrap().hostname.clone();

    // An unbound step resolves a started service by its hostname.
    engine
        .container(exec(&engine, base(&engine), &["echo", "unbound"]))
        .await
        .unwrap();
    let networks = runtime.networks.lock().unwrap().clone();
    assert!(networks
        .last()
        .unwrap()
        .hosts
        .iter()
        .any(|(name, _)| *name == hostname));

    engine.stop_service(db, false).await.unwrap();
    assert_eq!(runtime.services_running(), 0);
}

#[tokio::test]
async fn a_failing_start_is_an_exec_error() {
    let (engine, _) = new_engine();
    let broken = service(&engine, &["exit", "42", "stdout", "message"], &[8080]);
    let error = engine.start_service(broken).await.unwrap_err();
    let failure = error.exec_failure().expect("an exec failure");
    assert_eq!(failure.exit_code, 42);
    assert!(failure.stdout.contains("stdout message"));
    assert!(failure.stderr.contains("fake service failed"));
}

#[tokio::test]
async fn services_bound_to_services_start_first() {
    let (engine, runtime) = new_engine();
    let db = service(&engine, &["serve", "5432"], &[5432]);
    let api_container = bind(&engine, base(&engine), "db", db);
    let api = engine
        .add(ops::AsService {
            container: api_container,
            args: vec!["serve".into(), "80".into()],
            use_entrypoint: false,
            expand: false,
            insecure_root_capabilities: false,
        })
        .digest;
    let run = exec(
        &engine,
        bind(&engine, base(&engine), "api", api),
        &["echo", "e2e"],
    );
    engine.container(run).await.unwrap();
    let services = runtime.services.lock().unwrap().clone();
    assert_eq!(services.len(), 2);
    assert_eq!(services[0].0, vec!["serve", "5432"], "the database first");
    assert!(
        services[1].1.hosts.iter().any(|(name, _)| name == "db"),
        "the API reaches the database by its alias"
    );
    settle(&runtime, 0).await;
}

#[tokio::test]
async fn host_services_forward_to_the_host() {
    let (engine, _) = new_engine();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt as _;
        let (mut socket, _) = listener.accept().await.unwrap();
        socket.write_all(b"hello from the host").await.unwrap();
    });
    let host = engine
        .add(ops::HostService {
            host: "127.0.0.1".into(),
            ports: vec![PortForward {
                frontend: Some(8080),
                backend,
                protocol: Protocol::Tcp,
            }],
        })
        .digest;
    let hold = engine.hold_service(host).await.unwrap();
    assert_eq!(hold.ports()[0].port, 8080);
    let endpoint = engine.service_endpoint(host, None, "").await.unwrap();
    let hostname = engine.service(host).await.unwrap().hostname.clone();
    assert_eq!(endpoint, format!("{hostname}:8080"));
    drop(hold);
}

#[tokio::test]
async fn tunnels_forward_host_ports_to_a_service() {
    let (engine, _) = new_engine();
    let web = service(&engine, &["serve", "8080"], &[8080]);
    let tunnel = engine
        .add(ops::HostTunnel {
            service: web,
            native: false,
            ports: Vec::new(),
        })
        .digest;
    // Asking for a tunnel's ports starts it: they exist only then.
    let ports = engine.service_ports(tunnel).await.unwrap();
    assert_eq!(ports.len(), 1);
    assert_ne!(ports[0].port, 0);
    let endpoint = engine.service_endpoint(tunnel, None, "http").await.unwrap();
    assert_eq!(endpoint, format!("http://127.0.0.1:{}", ports[0].port));
    // The fake service listens: a connection through the tunnel gets in.
    tokio::net::TcpStream::connect(("127.0.0.1", ports[0].port))
        .await
        .unwrap();
    engine.stop_service(tunnel, false).await.unwrap();
}

#[tokio::test]
async fn a_tunnel_needs_ports() {
    let (engine, _) = new_engine();
    let web = service(&engine, &["serve"], &[]);
    let tunnel = engine
        .add(ops::HostTunnel {
            service: web,
            native: false,
            ports: Vec::new(),
        })
        .digest;
    let error = engine.service(tunnel).await.unwrap_err();
    assert!(error.to_string().contains("no ports to forward"), "{error}");
}

#[tokio::test]
async fn a_container_without_a_command_is_no_service() {
    let (engine, _) = new_engine();
    let scratch = engine.add(ops::Scratch { platform: None }).digest;
    let svc = engine
        .add(ops::AsService {
            container: scratch,
            args: Vec::new(),
            use_entrypoint: false,
            expand: false,
            insecure_root_capabilities: false,
        })
        .digest;
    let error = engine.service(svc).await.unwrap_err();
    assert!(matches!(error, Error::NoServiceCommand), "{error}");
}

#[tokio::test]
async fn shutdown_stops_every_service() {
    let (engine, runtime) = new_engine();
    let db = service(&engine, &["serve", "5432"], &[5432]);
    engine.start_service(db).await.unwrap();
    assert_eq!(runtime.services_running(), 1);
    engine.shutdown().await;
    assert_eq!(runtime.services_running(), 0);
}

#[tokio::test]
async fn a_service_whose_port_never_opens_fails_its_dependent_in_time() {
    let (engine, runtime) = new_engine();
    let engine = Arc::new(
        Arc::try_unwrap(engine)
            .ok()
            .expect("only reference")
            .with_service_ready_timeout(Duration::from_millis(300)),
    );
    // It listens on 9999 but exposes 8080.
    let deaf = service(&engine, &["serve", "9999"], &[8080]);
    let hostname = engine.service(deaf).await.unwrap().hostname.clone();
    let run = exec(
        &engine,
        bind(&engine, base(&engine), "www", deaf),
        &["echo", "never"],
    );
    let error = engine.container(run).await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&format!("start {hostname} (aliased as www)")),
        "{message}"
    );
    assert!(
        message.contains("port 8080/tcp accepted no connection"),
        "{message}"
    );
    assert!(message.contains("0.0.0.0"), "{message}");
    assert_eq!(runtime.execs(), 0, "the dependent never ran");
    settle(&runtime, 0).await;
}
