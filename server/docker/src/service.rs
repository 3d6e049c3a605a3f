//! Services on dockerd: the engine's step network, long-running containers on it,
//! and the address where the engine itself listens for containers (`Host.service`).
//!
//! Every container that reaches a service, and every service, joins one user-defined
//! bridge network per engine (`gantry-<pid scope>-<engine pid>`), created on first use
//! and removed at shutdown (or by `remove_orphans` once its engine is gone). There a
//! service answers to its aliases through Docker's DNS, and the solver's names for it
//! (alias, hostname) are `/etc/hosts` lines of each dependent. Steps that reach no
//! service stay on Docker's default network, so most pipelines never create one.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};

use bollard::container::AttachContainerResults;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, InspectContainerOptions, InspectNetworkOptions,
    KillContainerOptionsBuilder, ListNetworksOptionsBuilder,
};
use bollard::Docker;
use futures::FutureExt as _;
use gantry_core::runtime::{
    ContainerControl, ContainerExit, ExecSpec, NetworkSpec, OutputSink, RuntimeError,
    StartedContainer, StepNetworkListener,
};

use crate::container::ContainerGuard;
use crate::error::{message, status};
use crate::exec::{collect_output, exec_failure_code, other, wait_exit, Prepared, SecretEnv};
use crate::{DockerRuntime, LABEL_ENGINE_PID, LABEL_MANAGED};

/// How much of a service's output is kept for the error its dependents get.
const SERVICE_OUTPUT_CAP: usize = 1 << 20;

static NETWORK_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Prefix of step network names.
const NETWORK_PREFIX: &str = "gantry-";

/// The engine's step network.
#[derive(Debug)]
pub(crate) struct StepNetwork {
    name: String,
    /// The host's address on it: where containers reach the engine.
    gateway: IpAddr,
}

/// A running service's container: signalled through dockerd, removed when dropped.
struct DockerControl {
    docker: Docker,
    container: ContainerGuard,
    /// Kept until the container is gone (the file itself is removed at start).
    _secret_env: Option<SecretEnv>,
}

#[async_trait::async_trait]
impl ContainerControl for DockerControl {
    async fn signal(&self, kill: bool) -> Result<(), RuntimeError> {
        let signal = if kill { "SIGKILL" } else { "SIGTERM" };
        let options = KillContainerOptionsBuilder::new().signal(signal).build();
        match self
            .docker
            .kill_container(self.container.name(), Some(options))
            .await
        {
            Ok(()) => Ok(()),
            // Gone, or no longer running: nothing left to signal.
            Err(error) if matches!(status(&error), Some(404 | 409)) => Ok(()),
            Err(error) => Err(other("signalling a service", &error)),
        }
    }
}

impl DockerRuntime {
    /// The engine's step network, created on first use.
    async fn step_network(&self) -> Result<&StepNetwork, RuntimeError> {
        self.network
            .get_or_try_init(|| self.create_step_network())
            .await
    }

    /// `gantry-<pid scope>-<engine pid>-<sequence>`: dockerd does not refuse a
    /// second network of the same name, so each runtime of a process names its own.
    fn step_network_name(&self) -> String {
        let sequence = NETWORK_SEQUENCE.fetch_add(1, Ordering::Relaxed);
        format!(
            "{NETWORK_PREFIX}{}-{}-{sequence}",
            self.pid_scope, self.engine_pid
        )
    }

    async fn create_step_network(&self) -> Result<StepNetwork, RuntimeError> {
        let name = self.step_network_name();
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".to_owned()),
            labels: Some(self.container_labels(std::iter::empty())),
            ..Default::default()
        };
        let created = self
            .docker
            .create_network(request)
            .await
            .map_err(|error| other("creating the step network", &error))?;
        tracing::debug!(network = %name, "step network created");
        let network = self
            .docker
            .inspect_network(&created.id, None::<InspectNetworkOptions>)
            .await
            .map_err(|error| other("inspecting the step network", &error))?;
        let gateway = network
            .ipam
            .and_then(|ipam| ipam.config)
            .into_iter()
            .flatten()
            .filter_map(|config| config.gateway)
            .find_map(|gateway| gateway.parse::<Ipv4Addr>().ok())
            .ok_or_else(|| RuntimeError::Failed {
                action: "creating the step network".to_owned(),
                reason: format!("dockerd gave network {name} no IPv4 gateway"),
            })?;
        Ok(StepNetwork {
            name,
            gateway: IpAddr::V4(gateway),
        })
    }

    /// Puts a container on the step network, with its names, when it has any there
    /// (a step that reaches a service), or `always` (a service).
    pub(crate) async fn join_network(
        &self,
        body: &mut ContainerCreateBody,
        network: &NetworkSpec,
        always: bool,
    ) -> Result<Option<&StepNetwork>, RuntimeError> {
        let named = !network.hosts.is_empty()
            || !network.aliases.is_empty()
            || !network.hostname.is_empty();
        if !(always || named) {
            return Ok(None);
        }
        let step = self.step_network().await?;
        body.hostname = Some(network.hostname.clone()).filter(|name| !name.is_empty());
        let host_config = body.host_config.get_or_insert_with(Default::default);
        host_config.network_mode = Some(step.name.clone());
        host_config.extra_hosts = extra_hosts(network);
        host_config.dns_search = Some(network.search.clone()).filter(|s| !s.is_empty());
        let endpoint = EndpointSettings {
            aliases: Some(network.aliases.clone()).filter(|a| !a.is_empty()),
            ..Default::default()
        };
        body.networking_config = Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(step.name.clone(), endpoint)])),
        });
        Ok(Some(step))
    }

    /// Puts an exec's or a terminal's container where `spec` says: the
    /// host's network (`join_host_network`) or the step network's
    /// (`join_network`).
    pub(crate) async fn join_for(
        &self,
        body: &mut ContainerCreateBody,
        spec: &ExecSpec,
    ) -> Result<(), RuntimeError> {
        if spec.host_network {
            Self::join_host_network(body, &spec.network);
        } else {
            self.join_network(body, &spec.network, false).await?;
        }
        Ok(())
    }

    /// Puts a container in the host's network namespace
    /// (`ExecSpec::host_network`), its bound services as `/etc/hosts` lines:
    /// the host routes to their step-network addresses.
    fn join_host_network(body: &mut ContainerCreateBody, network: &NetworkSpec) {
        let host_config = body.host_config.get_or_insert_with(Default::default);
        host_config.network_mode = Some("host".to_owned());
        host_config.extra_hosts = extra_hosts(network);
    }

    /// `Runtime::start_container`.
    pub(crate) async fn start_service(
        &self,
        spec: ExecSpec,
    ) -> Result<StartedContainer, RuntimeError> {
        let Prepared {
            mut body,
            secret_env,
            base: _,
        } = self.prepare(&spec, false).await?;
        // A service is always on the step network, named or not.
        let step = self.step_network().await?;
        self.join_network(&mut body, &spec.network, true).await?;
        let container = self.create_container(body).await?;
        let name = container.name().to_owned();
        self.apply_layers(&name, &spec.rootfs.layers).await?;
        let attach_options = AttachContainerOptionsBuilder::new()
            .stream(true)
            .stdout(true)
            .stderr(true)
            .build();
        let AttachContainerResults { output, input } = self
            .docker
            .attach_container(&name, Some(attach_options))
            .await
            .map_err(|error| other("attaching to a service", &error))?;
        drop(input);
        let started = self
            .start_forgetting_secrets(&name, &spec.remove_after_start, secret_env.as_ref())
            .await;
        let control = |container| {
            Box::new(DockerControl {
                docker: self.docker.clone(),
                container,
                _secret_env: secret_env,
            })
        };
        if let Err(error) = started {
            // The process never ran: an early exit, told like a shell would.
            let Some(code) = exec_failure_code(&error) else {
                return Err(other("starting a service", &error));
            };
            let exit = ContainerExit {
                exit_code: Some(code),
                stderr: format!("{}\n", message(&error)).into_bytes(),
                ..ContainerExit::default()
            };
            return Ok(StartedContainer {
                address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                exited: futures::future::ready(exit).boxed().shared(),
                control: control(container),
            });
        }
        let inspected = self
            .docker
            .inspect_container(&name, None::<InspectContainerOptions>)
            .await
            .map_err(|error| other("inspecting a service", &error))?;
        // A process that has already exited has no address any more: the
        // unspecified address, which the solver never waits on, and `exited`
        // tells why.
        let address = inspected
            .network_settings
            .and_then(|settings| settings.networks)
            .and_then(|mut networks| networks.remove(&step.name))
            .and_then(|endpoint| endpoint.ip_address)
            .and_then(|address| address.parse::<IpAddr>().ok())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let docker = self.docker.clone();
        let watcher = tokio::spawn(async move {
            let captured = collect_output(output, SERVICE_OUTPUT_CAP, &OutputSink::default()).await;
            let exit_code = wait_exit(&docker, &name).await;
            let (stdout, stderr) = captured
                .map(|captured| (captured.stdout, captured.stderr))
                .unwrap_or_default();
            match exit_code {
                Ok(code) => ContainerExit {
                    exit_code: Some(code),
                    stdout,
                    stderr,
                    error: None,
                },
                Err(error) => ContainerExit {
                    exit_code: None,
                    stdout,
                    stderr,
                    error: Some(error.to_string()),
                },
            }
        });
        let exited = async move {
            watcher.await.unwrap_or_else(|error| ContainerExit {
                error: Some(format!("lost track of the service: {error}")),
                ..ContainerExit::default()
            })
        }
        .boxed()
        .shared();
        tracing::debug!(container = %container.name(), %address, "service started");
        Ok(StartedContainer {
            address,
            exited,
            control: control(container),
        })
    }

    /// `Runtime::listen_on_step_network`: the host's address on the step network.
    /// Two host services asking for the same port there conflict (the second
    /// gets an error naming the port).
    pub(crate) async fn listen_on_network(
        &self,
        ports: &[u16],
    ) -> Result<StepNetworkListener, RuntimeError> {
        let step = self.step_network().await?;
        let listeners = ports
            .iter()
            .map(|port| {
                std::net::TcpListener::bind((step.gateway, *port)).map_err(|error| {
                    RuntimeError::Failed {
                        action: format!("listening on {}:{port} for a host service", step.gateway),
                        reason: error.to_string(),
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(StepNetworkListener {
            address: step.gateway,
            listeners,
            guard: Box::new(()),
        })
    }

    /// `Runtime::shutdown`: removes the step network, if there is one.
    pub(crate) async fn remove_step_network(&self) {
        let Some(step) = self.network.get() else {
            return;
        };
        remove_network(&self.docker, &step.name).await;
    }

    /// Removes the step networks of engines that are no longer running.
    pub(crate) async fn remove_orphan_networks(&self) -> usize {
        let filters = HashMap::from([("label", vec![format!("{LABEL_MANAGED}=true")])]);
        let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
        let networks = match self.docker.list_networks(Some(options)).await {
            Ok(networks) => networks,
            Err(error) => {
                tracing::debug!(%error, "cannot list networks");
                return 0;
            }
        };
        let own_scope = format!("{NETWORK_PREFIX}{}-", self.pid_scope);
        let mut removed = 0;
        for network in networks {
            let Some(name) = network.name else { continue };
            let pid = network
                .labels
                .as_ref()
                .and_then(|labels| labels.get(LABEL_ENGINE_PID))
                .and_then(|pid| pid.parse::<u32>().ok());
            let Some(pid) = pid else { continue };
            if !name.starts_with(&own_scope)
                || pid == self.engine_pid
                || std::path::Path::new(&format!("/proc/{pid}")).exists()
            {
                continue;
            }
            if remove_network(&self.docker, &name).await {
                removed += 1;
            }
        }
        removed
    }
}

/// Removes a network, waiting a little for containers being removed to leave it.
async fn remove_network(docker: &Docker, name: &str) -> bool {
    for attempt in 0..20 {
        match docker.remove_network(name).await {
            Ok(()) => {
                tracing::debug!(network = %name, "step network removed");
                return true;
            }
            Err(error) if status(&error) == Some(404) => return false,
            Err(error) => {
                if attempt == 19 {
                    tracing::warn!(network = %name, %error, "cannot remove the step network");
                    return false;
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        }
    }
    false
}

/// The bound services of `network` as Docker's `extra_hosts` (`name:address`).
fn extra_hosts(network: &NetworkSpec) -> Option<Vec<String>> {
    let hosts: Vec<String> = network
        .hosts
        .iter()
        .map(|(name, address)| format!("{name}:{address}"))
        .collect();
    Some(hosts).filter(|hosts| !hosts.is_empty())
}
