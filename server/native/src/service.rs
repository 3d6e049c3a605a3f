//! Services on the native runtime: long-running containers on the step network,
//! the names steps resolve them by, and the addresses where the engine itself
//! listens for containers (`Host.service`).
//!
//! - A service is a step that is not waited for: the same set-up as an exec
//!   (`exec::set_up`: overlay, network namespace with an address on the bridge,
//!   cgroup, spec), then `RUNTIME run` in the background. Its output is kept (capped)
//!   for the error its dependents get; nothing is committed. Dropping its control
//!   removes the container, its cgroup, namespace, address and mount (the `Step`
//!   guard), and a dead engine's services go with its other steps (`run::orphans`).
//! - Names: there is no DNS server on the step network. The runtime knows the
//!   services it runs (their aliases and addresses, [`Names`]), and every exec's and
//!   service's `/etc/hosts` lists them, after the lines the solver gives
//!   (`NetworkSpec::hosts`: bound services by alias). Its `resolv.conf` gets the
//!   search domains before the host's own. A name is therefore fixed when a step
//!   starts: a service started later is not seen by steps already running (as a
//!   bound service is always started before its dependent, this only matters for
//!   `Service.start` racing a step that is not bound to it).
//! - `Host.service` listens on an address of its own on the bridge (`network::
//!   HostAddress`), released when its listeners go.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt as _;
use gantry_core::runtime::{
    ContainerControl, ContainerExit, ExecSpec, NetworkSpec, OutputSink, OutputStream, RuntimeError,
    StartedContainer, StepNetworkListener,
};

use crate::error::Error;
use crate::exec::{self, SetUp, Step, Timings};
use crate::{oci, Inner};

/// How much of a service's output is kept (per stream) for the error its
/// dependents get.
const SERVICE_OUTPUT_CAP: usize = 1 << 20;

/// The names of the services this engine runs: service step ID → (name, address).
#[derive(Debug, Default)]
pub(crate) struct Names(Mutex<BTreeMap<String, Vec<(String, IpAddr)>>>);

impl Names {
    fn add(&self, id: &str, names: Vec<(String, IpAddr)>) {
        self.0
            .lock()
            .expect("the service names are never poisoned")
            .insert(id.to_owned(), names);
    }

    fn remove(&self, id: &str) {
        self.0
            .lock()
            .expect("the service names are never poisoned")
            .remove(id);
    }

    /// Every running service's names, oldest service first.
    pub(crate) fn names(&self) -> Vec<(String, IpAddr)> {
        self.0
            .lock()
            .expect("the service names are never poisoned")
            .values()
            .flatten()
            .cloned()
            .collect()
    }
}

/// A step's `/etc/hosts`: loopback, its own address by `hostname` (and its aliases,
/// for a service), the solver's lines (`network.hosts`), then every running service
/// by a name not given yet (`running`). The first line for a name wins.
pub(crate) fn hosts_file(
    address: Option<&str>,
    hostname: &str,
    network: &NetworkSpec,
    running: &[(String, IpAddr)],
) -> String {
    let mut out = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    let mut seen: Vec<&str> = vec!["localhost", "ip6-localhost", "ip6-loopback"];
    let own = address.unwrap_or("127.0.0.1");
    let mut own_names = vec![hostname];
    for alias in &network.aliases {
        if !own_names.contains(&alias.as_str()) {
            own_names.push(alias);
        }
    }
    out.push_str(&format!("{own}\t{}\n", own_names.join(" ")));
    seen.extend(&own_names);
    for (name, address) in network.hosts.iter().chain(running) {
        if name.is_empty() || seen.contains(&name.as_str()) {
            continue;
        }
        seen.push(name);
        out.push_str(&format!("{address}\t{name}\n"));
    }
    out
}

/// `resolv.conf` with `search` first in its search list (the host's own domains
/// after them).
pub(crate) fn with_search_domains(resolv: &[u8], search: &[String]) -> Vec<u8> {
    if search.is_empty() {
        return resolv.to_vec();
    }
    let text = String::from_utf8_lossy(resolv);
    let mut domains: Vec<String> = search.to_vec();
    let mut rest = String::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("search" | "domain") => {
                for domain in words {
                    if !domains.iter().any(|known| known == domain) {
                        domains.push(domain.to_owned());
                    }
                }
            }
            _ => {
                rest.push_str(line);
                rest.push('\n');
            }
        }
    }
    format!("search {}\n{rest}", domains.join(" ")).into_bytes()
}

/// A running service: signalled through the OCI runtime; dropping it removes the
/// container and everything its step holds.
struct NativeControl {
    inner: Arc<Inner>,
    id: String,
    exited: Arc<AtomicBool>,
    /// Dropped last: releases the container, cgroup, namespace and mount.
    _step: Step,
}

#[async_trait::async_trait]
impl ContainerControl for NativeControl {
    async fn signal(&self, kill: bool) -> Result<(), RuntimeError> {
        if self.exited.load(Ordering::Acquire) {
            return Ok(());
        }
        let signal = if kill { "KILL" } else { "TERM" };
        let output = tokio::process::Command::from(self.inner.oci.command(&[]))
            .arg("--root")
            .arg(self.inner.run.oci_root())
            .args(["kill", &self.id, signal])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .await
            .map_err(|source| {
                Error::io("signalling a service", &self.inner.oci.binary, source)
                    .into_runtime("signalling a service")
            })?;
        // A process that exited meanwhile cannot be signalled: not an error.
        if output.status.success() || self.exited.load(Ordering::Acquire) {
            return Ok(());
        }
        Err(RuntimeError::Failed {
            action: "signalling a service".to_owned(),
            reason: format!(
                "{} kill {signal}: {}",
                self.inner.oci.flavor.name(),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        })
    }
}

impl Drop for NativeControl {
    fn drop(&mut self) {
        self.inner.services.remove(&self.id);
    }
}

/// `Runtime::start_container`.
pub(crate) async fn start(
    inner: Arc<Inner>,
    spec: ExecSpec,
) -> Result<StartedContainer, RuntimeError> {
    let action = "starting a service";
    let mut timings = Timings::default();
    let set_up = exec::set_up(&inner, &spec, false, &mut timings).await?;
    let after_start = set_up.secret_files(&spec);
    let mut command = set_up.command(&inner);
    let SetUp {
        mut step, id, log, ..
    } = set_up;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tracing::debug!(step = %id, args = spec.args.len(), "creating service container");
    let mut child = command.spawn().map_err(|source| {
        Error::io("starting the OCI runtime", &inner.oci.binary, source).into_runtime(action)
    })?;
    step.started = true;
    inner.run.count_created(&id);
    let address = match &step.network {
        Some(network) => {
            network
                .address
                .parse::<IpAddr>()
                .map_err(|error| RuntimeError::Failed {
                    action: action.to_owned(),
                    reason: format!("the step network gave a bad address: {error}"),
                })?
        }
        // Host networking: every step shares the host's loopback.
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let exited = Arc::new(AtomicBool::new(false));
    let watcher = {
        let exited = exited.clone();
        let inner = inner.clone();
        tokio::spawn(async move {
            let none = OutputSink::default();
            let (out, err, status) = tokio::join!(
                exec::capture(stdout, &none, OutputStream::Stdout, SERVICE_OUTPUT_CAP),
                exec::capture(stderr, &none, OutputStream::Stderr, SERVICE_OUTPUT_CAP),
                child.wait(),
            );
            exited.store(true, Ordering::Release);
            let mut exit = ContainerExit {
                stdout: out.unwrap_or_default(),
                stderr: err.unwrap_or_default(),
                ..ContainerExit::default()
            };
            match status {
                Ok(status) => exit.exit_code = Some(exec::exit_code(&status)),
                Err(error) => exit.error = Some(format!("waiting for the OCI runtime: {error}")),
            }
            // The runtime's own failure is not the command's exit code.
            if let Some(message) = oci::logged_error(&log) {
                match oci::exec_failure_code(&message) {
                    Some(code) => {
                        exit.exit_code = Some(code);
                        exit.stderr = format!("{message}\n").into_bytes();
                    }
                    None => {
                        exit.exit_code = None;
                        exit.error = Some(format!("{}: {message}", inner.oci.flavor.name()));
                    }
                }
            }
            exit
        })
    };
    // Secret files (and the spec, which holds secret variables) are needed only until
    // the container has started.
    // The runtime writes the pid file once the container exists (its mounts in place);
    // a runtime that exits first never started the process.
    let started_process = exec::wait_until_started(&step.dir, &exited).await;
    exec::remove_files(&after_start);
    let exited_future = async move {
        watcher.await.unwrap_or_else(|error| ContainerExit {
            error: Some(format!("lost track of the service: {error}")),
            ..ContainerExit::default()
        })
    }
    .boxed()
    .shared();
    // A process that never ran has no address (the solver then reads `exited`).
    let address = if started_process {
        address
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    if started_process && !spec.network.aliases.is_empty() {
        let names = spec
            .network
            .aliases
            .iter()
            .map(|alias| (alias.clone(), address))
            .collect();
        inner.services.add(&id, names);
    }
    tracing::debug!(step = %id, %address, "service started");
    Ok(StartedContainer {
        address,
        exited: exited_future,
        control: Box::new(NativeControl {
            inner,
            id,
            exited,
            _step: step,
        }),
    })
}

/// `Runtime::listen_on_step_network`: `ports` bound at an address of their own on the
/// bridge (released when the guard drops), or on a loopback address of their own
/// with host networking (steps then share the host's loopback).
pub(crate) fn listen(inner: &Inner, ports: &[u16]) -> Result<StepNetworkListener, RuntimeError> {
    let action = "listening for a host service";
    let bind_all = |address: IpAddr| {
        ports
            .iter()
            .map(|port| std::net::TcpListener::bind((address, *port)))
            .collect::<Result<Vec<_>, _>>()
    };
    match &inner.network {
        Some(network) => {
            let held = network
                .host_address()
                .map_err(crate::error::failed(action))?;
            let address = held.address();
            let listeners = bind_all(address).map_err(|error| RuntimeError::Failed {
                action: format!("listening on {address} for a host service"),
                reason: error.to_string(),
            })?;
            Ok(StepNetworkListener {
                address,
                listeners,
                guard: Box::new(held),
            })
        }
        None => {
            // 127.87.0.1 onwards: the first address where every port is free.
            let mut last_error = None;
            for n in 0u16..1024 {
                let address =
                    IpAddr::V4(Ipv4Addr::new(127, 87, (n / 254) as u8, (n % 254 + 1) as u8));
                match bind_all(address) {
                    Ok(listeners) => {
                        return Ok(StepNetworkListener {
                            address,
                            listeners,
                            guard: Box::new(()),
                        })
                    }
                    Err(error) => last_error = Some(error),
                }
            }
            Err(RuntimeError::Failed {
                action: action.to_owned(),
                reason: format!(
                    "no loopback address 127.87.x.y had ports {ports:?} free: {}",
                    last_error
                        .map(|error| error.to_string())
                        .unwrap_or_default()
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_list_own_names_then_bindings_then_running_services() {
        let web: IpAddr = "10.87.1.5".parse().unwrap();
        let db: IpAddr = "10.87.1.6".parse().unwrap();
        let network = NetworkSpec {
            hostname: "svc".into(),
            aliases: vec!["svc".into(), "svc.gantry.local".into()],
            hosts: vec![("www".into(), web), ("web1".into(), web)],
            search: vec!["gantry.local".into()],
        };
        let running = vec![("web1".into(), db), ("db1".into(), db)];
        let hosts = hosts_file(Some("10.87.1.7"), "svc", &network, &running);
        assert_eq!(
            hosts,
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             10.87.1.7\tsvc svc.gantry.local\n10.87.1.5\twww\n10.87.1.5\tweb1\n\
             10.87.1.6\tdb1\n"
        );
    }

    #[test]
    fn search_domains_come_before_the_hosts_own() {
        let resolv = b"nameserver 10.0.0.2\nsearch corp.example\noptions ndots:1\n";
        let out = with_search_domains(resolv, &["gantry.local".into()]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "search gantry.local corp.example\nnameserver 10.0.0.2\noptions ndots:1\n"
        );
        assert_eq!(with_search_domains(resolv, &[]), resolv.to_vec());
    }
}
