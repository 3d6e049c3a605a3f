//! Services as nodes: `asService`, `Service.withHostname`, `Host.service`,
//! `Host.tunnel`, and the container fields that concern them
//! (`withServiceBinding`, `withExposedPort`, `withoutExposedPort`).
//!
//! A service's value says what to run and under which name; nothing runs
//! when it is evaluated. It starts when a step that needs it runs
//! (`launch.rs`), and its key is in the cache key of every container bound
//! to it, so a changed service re-runs its dependents.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::eval::{Call, OpEncoder, Operation};
use crate::text::expand_vars;
use crate::value::{
    host_hash, ContainerState, Kind, PortForward, PortSpec, Protocol, ServiceBinding,
    ServiceSource, ServiceValue, Value,
};

/// The hostname of a tunnel: its ports are on the engine's host.
const TUNNEL_HOST: &str = "127.0.0.1";

/// `Container.asService`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AsService {
    pub container: Digest,
    pub args: Vec<String>,
    pub use_entrypoint: bool,
    pub expand: bool,
    /// Run the service with every root capability, as `withExec` can.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_root_capabilities: bool,
}

impl Operation for AsService {
    const KIND: Kind = Kind::Service;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.container]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.container)
            .strs(&self.args)
            .bool(self.use_entrypoint)
            .bool(self.expand);
        // Written only when set, so every other service keeps its key (and
        // its hostname, which comes from the key).
        if self.insecure_root_capabilities {
            e.str("insecure-root-capabilities");
        }
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let state = call.inputs.container(&self.container)?;
        let args: Vec<String> = if self.expand {
            self.args
                .iter()
                .map(|arg| expand_vars(arg, &state.config.env))
                .collect()
        } else {
            self.args.clone()
        };
        let cmd = service_command(&state, args, self.use_entrypoint)?;
        Ok(Value::Service(Arc::new(ServiceValue {
            key: call.key,
            hostname: host_hash(&call.key),
            source: ServiceSource::Container {
                state,
                cmd,
                privileged: self.insecure_root_capabilities,
            },
        })))
    }
}

/// What a container service runs, by Dagger's rule: the given args, else
/// the default args; the entrypoint goes first when asked for, and also
/// when no args were given and the default args came from the image (not
/// `withDefaultArgs`), as `docker run` would.
fn service_command(
    state: &ContainerState,
    args: Vec<String>,
    use_entrypoint: bool,
) -> Result<Vec<String>> {
    let config = &state.config;
    if args.is_empty() && config.cmd.is_empty() && config.entrypoint.is_empty() {
        return Err(Error::NoServiceCommand);
    }
    let (mut cmd, with_entrypoint) = if args.is_empty() {
        let implicit = !config.entrypoint.is_empty() && !state.default_args_set;
        (config.cmd.clone(), use_entrypoint || implicit)
    } else {
        (args, use_entrypoint)
    };
    if with_entrypoint && !config.entrypoint.is_empty() {
        let mut full = config.entrypoint.clone();
        full.append(&mut cmd);
        cmd = full;
    }
    if cmd.is_empty() {
        return Err(Error::NoServiceCommand);
    }
    Ok(cmd)
}

/// `Service.withHostname`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceWithHostname {
    pub service: Digest,
    pub hostname: String,
}

impl Operation for ServiceWithHostname {
    const KIND: Kind = Kind::Service;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.service]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.service).str(&self.hostname);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let service = call.inputs.service(&self.service)?;
        Ok(Value::Service(Arc::new(ServiceValue {
            key: call.key,
            hostname: self.hostname.clone(),
            source: service.source.clone(),
        })))
    }
}

/// `Host.service`: ports of the engine's host, reachable from containers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostService {
    pub host: String,
    pub ports: Vec<PortForward>,
}

impl Operation for HostService {
    const KIND: Kind = Kind::Service;

    fn inputs(&self) -> Vec<Digest> {
        Vec::new()
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.str(&self.host);
        encode_forwards(e, &self.ports);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        Ok(Value::Service(Arc::new(ServiceValue {
            key: call.key,
            hostname: host_hash(&call.key),
            source: ServiceSource::Host {
                host: self.host.clone(),
                forwards: self.ports.clone(),
            },
        })))
    }
}

fn encode_forwards(e: &mut OpEncoder<'_>, forwards: &[PortForward]) {
    e.u64(forwards.len() as u64);
    for forward in forwards {
        e.opt_str(forward.frontend.map(|port| port.to_string()).as_deref())
            .u64(u64::from(forward.backend))
            .str(forward.protocol.tag());
    }
}

/// `Host.tunnel`: a container service's ports, reachable on the engine's
/// host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostTunnel {
    pub service: Digest,
    pub native: bool,
    pub ports: Vec<PortForward>,
}

impl Operation for HostTunnel {
    const KIND: Kind = Kind::Service;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.service]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.service).bool(self.native);
        encode_forwards(e, &self.ports);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let upstream = call.inputs.service(&self.service)?;
        let forwards = tunnel_forwards(&upstream, self.native, &self.ports)?;
        Ok(Value::Service(Arc::new(ServiceValue {
            key: call.key,
            hostname: TUNNEL_HOST.into(),
            source: ServiceSource::Tunnel { upstream, forwards },
        })))
    }
}

/// Dagger's rule: with `native`, each exposed port on the same port of the
/// host; then the given forwards; with neither, each exposed port on a
/// free port of the host.
fn tunnel_forwards(
    upstream: &ServiceValue,
    native: bool,
    given: &[PortForward],
) -> Result<Vec<PortForward>> {
    let ServiceSource::Container { state, .. } = &upstream.source else {
        return Err(Error::InvalidArgument {
            message: "Host.tunnel: only container services (asService) can be tunnelled".into(),
        });
    };
    let exposed = |frontend: bool| {
        state.ports.iter().map(move |port| PortForward {
            frontend: frontend.then_some(port.port),
            backend: port.port,
            protocol: port.protocol,
        })
    };
    let mut forwards: Vec<PortForward> = Vec::new();
    if native {
        forwards.extend(exposed(true));
    }
    forwards.extend(given.iter().cloned());
    if forwards.is_empty() {
        forwards.extend(exposed(false));
    }
    if forwards.is_empty() {
        return Err(Error::InvalidArgument {
            message: "Host.tunnel: no ports to forward: expose a port on the service's container \
                      (withExposedPort) or give ports"
                .into(),
        });
    }
    Ok(forwards)
}

/// `Container.withServiceBinding`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithServiceBinding {
    pub parent: Digest,
    pub alias: String,
    pub service: Digest,
}

impl Operation for WithServiceBinding {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.service]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.alias);
        e.input(&self.service);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let service = call.inputs.service(&self.service)?;
        call.derive(&self.parent, |state| {
            state.services.retain(|binding| binding.alias != self.alias);
            state.services.push(ServiceBinding {
                alias: self.alias.clone(),
                service,
            });
            Ok(())
        })
    }
}

/// `Container.withExposedPort`: replaces a port of the same number and
/// protocol, else adds one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithExposedPort {
    pub parent: Digest,
    pub port: u16,
    pub protocol: Protocol,
    pub description: Option<String>,
    pub skip_healthcheck: bool,
}

impl Operation for WithExposedPort {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent)
            .u64(u64::from(self.port))
            .str(self.protocol.tag())
            .opt_str(self.description.as_deref())
            .bool(self.skip_healthcheck);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        call.derive(&self.parent, |state| {
            let port = PortSpec {
                port: self.port,
                protocol: self.protocol,
                description: self.description.clone(),
                skip_healthcheck: self.skip_healthcheck,
            };
            match state
                .ports
                .iter_mut()
                .find(|p| p.port == self.port && p.protocol == self.protocol)
            {
                Some(existing) => *existing = port,
                None => state.ports.push(port),
            }
            state.image_ref = None;
            Ok(())
        })
    }
}

/// `Container.withoutExposedPort`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithoutExposedPort {
    pub parent: Digest,
    pub port: u16,
    pub protocol: Protocol,
}

impl Operation for WithoutExposedPort {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent)
            .u64(u64::from(self.port))
            .str(self.protocol.tag());
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        call.derive(&self.parent, |state| {
            state
                .ports
                .retain(|p| p.port != self.port || p.protocol != self.protocol);
            state.image_ref = None;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(entrypoint: &[&str], cmd: &[&str], default_args_set: bool) -> ContainerState {
        let mut state = ContainerState::default();
        state.config.entrypoint = entrypoint.iter().map(|s| s.to_string()).collect();
        state.config.cmd = cmd.iter().map(|s| s.to_string()).collect();
        state.default_args_set = default_args_set;
        state
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn service_commands_follow_daggers_rules() {
        // An image's entrypoint and cmd run together, as with docker run.
        let image = state(&["/app"], &["--serve"], false);
        assert_eq!(
            service_command(&image, Vec::new(), false).unwrap(),
            strings(&["/app", "--serve"])
        );
        // withDefaultArgs: the entrypoint only when asked.
        let explicit = state(&["/app"], &["/other"], true);
        assert_eq!(
            service_command(&explicit, Vec::new(), false).unwrap(),
            strings(&["/other"])
        );
        assert_eq!(
            service_command(&explicit, Vec::new(), true).unwrap(),
            strings(&["/app", "/other"])
        );
        // Given args replace the default args; the entrypoint when asked.
        assert_eq!(
            service_command(&image, strings(&["x"]), false).unwrap(),
            strings(&["x"])
        );
        assert_eq!(
            service_command(&image, strings(&["x"]), true).unwrap(),
            strings(&["/app", "x"])
        );
        assert!(matches!(
            service_command(&state(&[], &[], false), Vec::new(), true),
            Err(Error::NoServiceCommand)
        ));
    }
}
