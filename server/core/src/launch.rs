//! Processes beyond one-shot execs, and what every process needs first.
//!
//! - `prepare`: a process about to run in a container state: its bound
//!   services started (and held), its mounts in place, its environment and
//!   its view of the step network. `withExec`, and services both start
//!   from one.
//! - Services: containers (`asService`), host ports (`Host.service`) and
//!   tunnels (`Host.tunnel`); when each is ready (its exposed TCP ports
//!   accept connections); and why it stopped, which fails whatever was
//!   bound to it, with the service's own output.
//!
//! The table of running services (who holds what, when they stop) is
//! `services.rs`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use futures::future::{try_join_all, BoxFuture, FutureExt as _};
use tokio::sync::OwnedMutexGuard;
use tokio::task::JoinSet;

use crate::context::Context;
use crate::error::{Error, ExecFailure, Result};
use crate::events::StepState;
use crate::mounts::PreparedMounts;
use crate::runtime::{ContainerExit, ExecSpec, NestedSession, NetworkSpec, RuntimeError};
use crate::services::{first_exit, Instance, Lease};
use crate::text::{scrub_secrets, tail};
use crate::value::{
    ContainerState, PortForward, PortSpec, Protocol, SecretValue, ServiceBinding, ServiceSource,
    ServiceValue,
};

/// The DNS search domain of every step: a service's hostname resolves bare
/// and as `HOSTNAME.gantry.local`.
pub(crate) const SEARCH_DOMAIN: &str = "gantry.local";

/// The most of a service's output an error carries per stream.
const ERROR_OUTPUT_CAP: usize = 100 * 1024;

/// A process about to run in a container state. Dropping it releases its
/// services (after their grace period), mounts and cache volume locks.
pub(crate) struct Process {
    /// Rootfs, command, environment, mounts and network; the caller adds
    /// what is its own (stdin, labels, commit tag).
    pub(crate) spec: ExecSpec,
    pub(crate) services: Attached,
    pub(crate) mounts: PreparedMounts,
    /// Values to scrub from the process's output.
    pub(crate) secrets: Vec<SecretValue>,
    _locks: Vec<OwnedMutexGuard<()>>,
    /// Its nested session (`nest`), served until the process is dropped.
    nested: Option<NestedSession>,
}

impl Process {
    /// Gives the command a nested session of its own
    /// (`experimentalPrivilegedNesting`), served until the process is
    /// dropped: puts it on the host's network, where the session listens on
    /// the loopback, and names the session in the variables gantry's and
    /// Dagger's SDKs read. The token is a secret: in the process's
    /// environment only, and scrubbed from its output like one.
    pub(crate) async fn nest(&mut self, cx: &Context) -> Result<()> {
        let sessions = cx.nesting.get().ok_or_else(|| Error::Unsupported {
            message: "experimentalPrivilegedNesting needs an engine that serves nested \
                      sessions, and this one was started without the API"
                .into(),
        })?;
        let session = sessions.open().await.map_err(|reason| {
            Error::Runtime(RuntimeError::Failed {
                action: "opening a nested session".into(),
                reason,
            })
        })?;
        self.spec.host_network = true;
        for name in ["GANTRY_SESSION_PORT", "DAGGER_SESSION_PORT"] {
            self.spec.env.push(format!("{name}={}", session.port));
        }
        for name in ["GANTRY_SESSION_TOKEN", "DAGGER_SESSION_TOKEN"] {
            self.spec
                .secret_env
                .push(format!("{name}={}", session.token));
        }
        self.secrets.push(SecretValue {
            name: "the nested session's token".into(),
            plaintext: Arc::from(session.token.as_str()),
        });
        self.nested = Some(session);
        Ok(())
    }
}

/// Starts `state`'s bound services, locks its LOCKED cache volumes, puts
/// its mounts in place and builds the spec of `args` in it.
pub(crate) async fn prepare(
    cx: &Context,
    state: &ContainerState,
    args: Vec<String>,
) -> Result<Process> {
    let services = attach(cx, &state.services).await?;
    let secrets = cx.attached_secrets(state)?;
    let locks = cx.lock_cache_volumes(state).await;
    let mounts = PreparedMounts::prepare(cx, state)?;
    let environment = cx.exec_environment(state)?;
    let spec = ExecSpec {
        rootfs: cx.rootfs_spec(&state.rootfs)?,
        args,
        mounts: mounts.binds.clone(),
        tmpfs: mounts.tmpfs.clone(),
        remove_after_start: mounts.secret_files.clone(),
        network: network_for(cx, &services),
        ..environment
    };
    Ok(Process {
        spec,
        services,
        mounts,
        secrets,
        _locks: locks,
        nested: None,
    })
}

/// What a step sees of the network: the services it is bound to, by alias
/// and hostname, and every running service by hostname (so a service
/// started with `Service.start` is reachable by its name, as in Dagger).
fn network_for(cx: &Context, services: &Attached) -> NetworkSpec {
    let mut hosts = services.hosts();
    for (hostname, address) in cx.services.resolvable_hosts() {
        for name in [format!("{hostname}.{SEARCH_DOMAIN}"), hostname] {
            if !hosts.iter().any(|(known, _)| *known == name) {
                hosts.push((name, address));
            }
        }
    }
    NetworkSpec {
        hosts,
        search: vec![SEARCH_DOMAIN.to_owned()],
        ..NetworkSpec::default()
    }
}

// ---------------------------------------------------------------------------
// Bindings

/// A step's holds on the services it is bound to.
pub(crate) struct Attached {
    bindings: Vec<(String, Lease)>,
}

impl Attached {
    /// `/etc/hosts` lines: each service by alias, hostname, and hostname in
    /// the search domain.
    fn hosts(&self) -> Vec<(String, IpAddr)> {
        let mut hosts: Vec<(String, IpAddr)> = Vec::new();
        for (alias, lease) in &self.bindings {
            let instance = &lease.instance;
            let mut names = vec![alias.clone()];
            if instance.resolvable {
                names.push(instance.hostname.clone());
                names.push(format!("{}.{SEARCH_DOMAIN}", instance.hostname));
            }
            for name in names {
                if !hosts.iter().any(|(known, _)| *known == name) {
                    hosts.push((name, instance.address));
                }
            }
        }
        hosts
    }

    /// Resolves when a bound service stops on its own (never, if none can),
    /// with the reason: the step that needed it fails rather than hang.
    pub(crate) fn exited(&self) -> BoxFuture<'static, Error> {
        let exits = self
            .bindings
            .iter()
            .filter_map(|(alias, lease)| {
                let exited = lease.instance.exited.clone()?;
                let context = format!(
                    "bound service {} (aliased as {alias}) exited",
                    lease.instance.hostname
                );
                Some(
                    exited
                        .map(move |source| Error::Service {
                            context,
                            source: Box::new(source),
                        })
                        .boxed(),
                )
            })
            .collect();
        first_exit(exits)
    }
}

/// Starts (or joins) every bound service, concurrently.
pub(crate) async fn attach(cx: &Context, bindings: &[ServiceBinding]) -> Result<Attached> {
    let bindings = try_join_all(bindings.iter().map(|binding| async move {
        let lease = start(cx, &binding.service)
            .await
            .map_err(|source| Error::Service {
                context: format!(
                    "start {} (aliased as {})",
                    binding.service.hostname, binding.alias
                ),
                source: Box::new(source),
            })?;
        Ok::<_, Error>((binding.alias.clone(), lease))
    }))
    .await?;
    Ok(Attached { bindings })
}

/// A hold on `service`'s running instance, started if none runs. Boxed:
/// services are bound to services.
pub(crate) fn start<'a>(
    cx: &'a Context,
    service: &'a Arc<ServiceValue>,
) -> BoxFuture<'a, Result<Lease>> {
    async move {
        cx.services
            .acquire(service.key, || launch(cx, service))
            .await
    }
    .boxed()
}

async fn launch(cx: &Context, service: &ServiceValue) -> Result<Instance> {
    // Before anything is pulled or started for it: a runtime without
    // services says so, and what to use instead.
    cx.runtime.check_services()?;
    match &service.source {
        ServiceSource::Container {
            state,
            cmd,
            privileged,
        } => launch_container(cx, service, state, cmd.clone(), *privileged).await,
        ServiceSource::Host { host, forwards } => launch_host(cx, service, host, forwards).await,
        ServiceSource::Tunnel { upstream, forwards } => {
            launch_tunnel(cx, service, upstream, forwards).await
        }
    }
}

// ---------------------------------------------------------------------------
// Container services

async fn launch_container(
    cx: &Context,
    service: &ServiceValue,
    state: &ContainerState,
    cmd: Vec<String>,
    privileged: bool,
) -> Result<Instance> {
    let hostname = service.hostname.clone();
    let mut process = prepare(cx, state, cmd.clone()).await?;
    process.spec.privileged = privileged;
    process.spec.labels = [(
        crate::reproducible::SERVICE_LABEL.to_owned(),
        service.key.hex(),
    )]
    .into();
    process.spec.network.hostname = hostname.clone();
    process.spec.network.aliases = vec![hostname.clone(), format!("{hostname}.{SEARCH_DOMAIN}")];
    let step = service.key;
    let name = format!("service {hostname}: {}", cmd.join(" "));
    cx.events
        .emit(&step, name.clone(), StepState::Running, None);
    let started = cx
        .runtime
        .start_container(process.spec.clone())
        .await
        .inspect_err(|error| {
            let detail = Some(error.to_string());
            cx.events
                .emit(&step, name.clone(), StepState::Failed, detail);
        })?;
    let plaintexts: Vec<String> = process
        .secrets
        .iter()
        .map(|secret| secret.plaintext.to_string())
        .collect();
    let own_exit = started
        .exited
        .clone()
        .map(move |exit| exit_error(cmd, exit, &plaintexts))
        .boxed();
    let exited = first_exit(vec![own_exit, process.services.exited()]).shared();
    tokio::select! {
        ready = wait_ready(started.address, &state.ports, cx.services.ready_timeout) => {
            if let Err(error) = ready {
                cx.events.emit(&step, name, StepState::Failed, Some(error.to_string()));
                // Dropping `started` removes the container.
                return Err(error);
            }
        }
        error = exited.clone() => {
            cx.events.emit(&step, name, StepState::Failed, Some(error.to_string()));
            // Dropping `started` removes the container.
            return Err(error);
        }
    }
    cx.events.emit(&step, name, StepState::Done, None);
    tracing::debug!(%hostname, address = %started.address, "service ready");
    Ok(
        Instance::new(hostname, started.address, state.ports.clone(), true)
            .watching(exited)
            .controlling(started.control)
            .holding(Box::new(process)),
    )
}

/// Why a service's process stopped, as the error its dependents get: its
/// command, exit code and output (secrets scrubbed), like a failed exec.
fn exit_error(cmd: Vec<String>, exit: ContainerExit, secrets: &[String]) -> Error {
    let Some(exit_code) = exit.exit_code else {
        return Error::Runtime(RuntimeError::Failed {
            action: "running a service".into(),
            reason: exit.error.unwrap_or_else(|| "it disappeared".into()),
        });
    };
    let plaintexts: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let output = |bytes: &[u8]| {
        tail(
            &scrub_secrets(&String::from_utf8_lossy(bytes), &plaintexts),
            ERROR_OUTPUT_CAP,
        )
    };
    Error::Exec(Box::new(ExecFailure {
        cmd,
        exit_code,
        stdout: output(&exit.stdout),
        stderr: output(&exit.stderr),
    }))
}

/// Returns once every exposed TCP port that is health-checked accepts a
/// connection at `address` (UDP cannot be checked; Dagger skips it too), or
/// fails naming the first port still closed after `timeout`.
async fn wait_ready(address: IpAddr, ports: &[PortSpec], timeout: Duration) -> Result<()> {
    if address.is_unspecified() {
        // No address: the process is gone, and its exit says why.
        return futures::future::pending().await;
    }
    let checked: Vec<&PortSpec> = ports
        .iter()
        .filter(|port| port.protocol == Protocol::Tcp && !port.skip_healthcheck)
        .collect();
    let checks = checked.iter().map(|port| wait_for_port(address, port.port));
    if tokio::time::timeout(timeout, futures::future::join_all(checks))
        .await
        .is_ok()
    {
        return Ok(());
    }
    let mut closed = Vec::new();
    for port in checked {
        let attempt = tokio::net::TcpStream::connect((address, port.port));
        if !matches!(
            tokio::time::timeout(Duration::from_secs(1), attempt).await,
            Ok(Ok(_))
        ) {
            closed.push(port.oci());
        }
    }
    Err(Error::Runtime(RuntimeError::Failed {
        action: "waiting for a service to be ready".into(),
        reason: format!(
            "port {} accepted no connection within {} s: a service must listen on all \
             interfaces (0.0.0.0), not only on 127.0.0.1; a port that is not meant to answer \
             skips the check (withExposedPort(experimentalSkipHealthcheck: true))",
            closed.join(", "),
            timeout.as_secs_f64()
        ),
    }))
}

async fn wait_for_port(address: IpAddr, port: u16) {
    let mut pause = Duration::from_millis(20);
    loop {
        let attempt = tokio::net::TcpStream::connect((address, port));
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(1), attempt).await {
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

// ---------------------------------------------------------------------------
// Host services and tunnels: the engine forwards connections itself.

/// Aborts its tasks (and so closes their listeners) when dropped.
struct Forwarders(Vec<Forwarder>);

/// A port forward's task, and its listening socket (a second descriptor of
/// it). Aborting the task drops its listener only when the runtime next
/// polls it, on another thread, so a stopped tunnel could still accept for a
/// moment; the socket is shut down at once instead: stopping a tunnel or a
/// host service closes its ports before it returns.
struct Forwarder {
    task: tokio::task::AbortHandle,
    socket: Option<std::os::fd::OwnedFd>,
}

impl Drop for Forwarders {
    fn drop(&mut self) {
        for forwarder in &self.0 {
            if let Some(socket) = &forwarder.socket {
                // A listening TCP socket shut down for reading stops listening.
                let _ = rustix::net::shutdown(socket, rustix::net::Shutdown::Read);
            }
            forwarder.task.abort();
        }
    }
}

/// A forward from a free port of the engine host's loopback to
/// `address:port`: the port, and what closes it when dropped.
pub(crate) async fn loopback_forward(
    address: IpAddr,
    port: u16,
) -> Result<(u16, Box<dyn Send + Sync>)> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .and_then(|listener| Ok((listener.local_addr()?.port(), listener)))
        .map_err(|error| {
            Error::Runtime(RuntimeError::Failed {
                action: "listening on a loopback port of the host".into(),
                reason: error.to_string(),
            })
        })?;
    let (local, listener) = listener;
    let forwarders = Forwarders(vec![spawn_forwarder(listener, address.to_string(), port)]);
    Ok((local, Box::new(forwarders)))
}

/// Accepts on `listener` and joins each connection to `host:port`.
fn spawn_forwarder(listener: tokio::net::TcpListener, host: String, port: u16) -> Forwarder {
    use std::os::fd::AsFd as _;
    let socket = listener.as_fd().try_clone_to_owned().ok();
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let (mut inbound, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::debug!(%error, "port forward: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let host = host.clone();
            connections.spawn(async move {
                match tokio::net::TcpStream::connect((host.as_str(), port)).await {
                    Ok(mut outbound) => {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                    Err(error) => {
                        tracing::debug!(%peer, %host, port, %error, "port forward: cannot connect");
                    }
                }
            });
            // Reap finished connections.
            while connections.try_join_next().is_some() {}
        }
    })
    .abort_handle();
    Forwarder { task, socket }
}

fn tcp_only(what: &str, forwards: &[PortForward]) -> Result<()> {
    if forwards
        .iter()
        .any(|forward| forward.protocol == Protocol::Udp)
    {
        return Err(Error::Unsupported {
            message: format!("{what}: gantry forwards TCP ports only, not UDP"),
        });
    }
    Ok(())
}

async fn launch_host(
    cx: &Context,
    service: &ServiceValue,
    host: &str,
    forwards: &[PortForward],
) -> Result<Instance> {
    tcp_only("Host.service", forwards)?;
    let frontends: Vec<u16> = forwards
        .iter()
        .map(|forward| forward.frontend.unwrap_or(forward.backend))
        .collect();
    let bound = cx.runtime.listen_on_step_network(&frontends).await?;
    let mut tasks = Vec::new();
    for (listener, forward) in bound.listeners.into_iter().zip(forwards) {
        let listener = tokio_listener(listener)?;
        tasks.push(spawn_forwarder(listener, host.to_owned(), forward.backend));
    }
    tracing::debug!(hostname = %service.hostname, address = %bound.address, "host service ready");
    Ok(Instance::new(
        service.hostname.clone(),
        bound.address,
        service.ports(),
        true,
    )
    .holding(Box::new((Forwarders(tasks), bound.guard))))
}

fn tokio_listener(listener: std::net::TcpListener) -> Result<tokio::net::TcpListener> {
    let failed = |error: std::io::Error| {
        Error::Runtime(RuntimeError::Failed {
            action: "listening for a host service".into(),
            reason: error.to_string(),
        })
    };
    listener.set_nonblocking(true).map_err(failed)?;
    tokio::net::TcpListener::from_std(listener).map_err(failed)
}

async fn launch_tunnel(
    cx: &Context,
    service: &ServiceValue,
    upstream: &Arc<ServiceValue>,
    forwards: &[PortForward],
) -> Result<Instance> {
    tcp_only("Host.tunnel", forwards)?;
    let upstream_lease = start(cx, upstream).await?;
    let target = upstream_lease.instance.address.to_string();
    let mut tasks = Vec::new();
    let mut ports = Vec::new();
    for forward in forwards {
        let frontend = forward.frontend.unwrap_or(0);
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, frontend))
            .await
            .map_err(|error| {
                Error::Runtime(RuntimeError::Failed {
                    action: format!("listening on port {frontend} of the host"),
                    reason: error.to_string(),
                })
            })?;
        let port = listener
            .local_addr()
            .map(|address| address.port())
            .unwrap_or(frontend);
        ports.push(PortSpec {
            port,
            protocol: forward.protocol,
            description: Some(format!(
                "tunnel 0.0.0.0:{port} -> {}:{}",
                upstream.hostname, forward.backend
            )),
            skip_healthcheck: false,
        });
        tasks.push(spawn_forwarder(listener, target.clone(), forward.backend));
    }
    let mut instance = Instance::new(
        service.hostname.clone(),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        ports,
        false,
    );
    if let Some(exited) = upstream_lease.instance.exited.clone() {
        instance = instance.watching(exited);
    }
    Ok(instance.holding(Box::new((Forwarders(tasks), upstream_lease))))
}

#[cfg(test)]
mod tests {
    use super::*;

    // One thread: an aborted task is not dropped until this test yields, so
    // only shutting the socket down can close the port before the connect.
    #[tokio::test(flavor = "current_thread")]
    async fn dropping_the_forwarders_closes_their_ports_at_once() {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let forwarders = Forwarders(vec![spawn_forwarder(listener, "127.0.0.1".into(), 9)]);
        assert!(std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok());
        drop(forwarders);
        assert!(std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
    }
}
