//! `Service`, `Port`, `Socket` and the `PortForward` input, with the helpers the
//! service fields of `Container` and `Host` share.

use std::sync::Arc;

use async_graphql::{Context, InputObject, Object, Result, ID};
use gantry_core::value::{PortForward as CorePortForward, PortSpec, Protocol};
use gantry_core::{ops, Digest, Kind, Node};

use super::{add, engine, NetworkProtocol, Void};
use crate::error::gql;
use crate::ids::format_id;

#[derive(Clone)]
pub(crate) struct Service(pub(crate) Arc<Node>);

/// A content-addressed service providing TCP connectivity.
#[Object]
impl Service {
    /// A unique identifier for this Service.
    pub(crate) async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        format_id(engine(ctx), &self.0)
    }

    /// Forces evaluation of the pipeline in the engine.
    async fn sync(&self, ctx: &Context<'_>) -> Result<ID> {
        engine(ctx).service(self.0.digest).await.map_err(gql)?;
        format_id(engine(ctx), &self.0)
    }

    /// Retrieves an endpoint that clients can use to reach this container.
    ///
    /// If no port is specified, the first exposed port is used. If none exist an error is returned.
    ///
    /// If a scheme is specified, a URL is returned. Otherwise, a host:port pair is returned.
    async fn endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The exposed port number for the endpoint")] port: Option<i32>,
        #[graphql(
            default_with = "Some(String::new())",
            desc = "Return a URL with the given scheme, eg. http for http://"
        )]
        scheme: Option<String>,
    ) -> Result<String> {
        let port = port.map(port_number).transpose()?;
        engine(ctx)
            .service_endpoint(self.0.digest, port, &scheme.unwrap_or_default())
            .await
            .map_err(gql)
    }

    /// Retrieves a hostname which can be used by clients to reach this container.
    async fn hostname(&self, ctx: &Context<'_>) -> Result<String> {
        let service = engine(ctx).service(self.0.digest).await.map_err(gql)?;
        Ok(service.hostname.clone())
    }

    /// Retrieves the list of ports provided by the service.
    async fn ports(&self, ctx: &Context<'_>) -> Result<Vec<Port>> {
        let ports = engine(ctx)
            .service_ports(self.0.digest)
            .await
            .map_err(gql)?;
        Ok(ports_of(&self.0, ports))
    }

    /// Start the service and wait for its health checks to succeed.
    ///
    /// Services bound to a Container do not need to be manually started.
    async fn start(&self, ctx: &Context<'_>) -> Result<ID> {
        engine(ctx)
            .start_service(self.0.digest)
            .await
            .map_err(gql)?;
        format_id(engine(ctx), &self.0)
    }

    /// Stop the service.
    async fn stop(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Immediately kill the service without waiting for a graceful exit"
        )]
        kill: Option<bool>,
    ) -> Result<ID> {
        engine(ctx)
            .stop_service(self.0.digest, kill.unwrap_or_default())
            .await
            .map_err(gql)?;
        format_id(engine(ctx), &self.0)
    }

    /// Creates a tunnel that forwards traffic from the caller's network to this service.
    async fn up(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "List of frontend/backend port mappings to forward.\n\nFrontend is the port accepting traffic on the host, backend is the service port."
        )]
        ports: Option<Vec<PortForward>>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Bind each tunnel port to a random port on the host."
        )]
        random: Option<bool>,
    ) -> Result<Option<Void>> {
        up(ctx, self.0.digest, ports, random).await
    }

    /// Opens an interactive terminal in a new container of this service's container state (gantry does not enter the running service), using its default terminal command if not overridden by args (or sh as a fallback default). The terminal is the one of the client that owns the session (`gantry run`, `gantry call` in a terminal); elsewhere the call fails with an error naming that fix. Returns this service once the shell exits.
    async fn terminal(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "If set, override the container's default terminal command and invoke these command arguments instead."
        )]
        cmd: Option<Vec<String>>,
    ) -> Result<Service> {
        engine(ctx)
            .service_terminal(self.0.digest, &cmd.unwrap_or_default())
            .await
            .map_err(gql)?;
        Ok(self.clone())
    }

    /// Configures a hostname which can be used by clients within the session to reach this container.
    async fn with_hostname(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The hostname to use.")] hostname: String,
    ) -> Result<Service> {
        check_hostname(&hostname)?;
        Ok(Service(add(
            ctx,
            ops::ServiceWithHostname {
                service: self.0.digest,
                hostname,
            },
        )))
    }
}

/// A port exposed by a container.
#[derive(Clone)]
pub(crate) struct Port {
    /// The container or service whose port it is, and its place among them.
    pub(crate) owner: Arc<Node>,
    pub(crate) index: usize,
    pub(crate) spec: PortSpec,
}

#[Object]
impl Port {
    /// A unique identifier for this Port.
    pub(crate) async fn id(&self) -> ID {
        ID(format!(
            "Port:{}:{}:{}",
            self.owner.kind().name(),
            self.owner.digest.hex(),
            self.index
        ))
    }

    /// The port description.
    async fn description(&self) -> Option<&str> {
        self.spec.description.as_deref()
    }

    /// Skip the health check when run as a service.
    async fn experimental_skip_healthcheck(&self) -> bool {
        self.spec.skip_healthcheck
    }

    /// The port number.
    async fn port(&self) -> i32 {
        i32::from(self.spec.port)
    }

    /// The transport layer protocol.
    async fn protocol(&self) -> NetworkProtocol {
        match self.spec.protocol {
            Protocol::Tcp => NetworkProtocol::Tcp,
            Protocol::Udp => NetworkProtocol::Udp,
        }
    }
}

pub(crate) fn ports_of(owner: &Arc<Node>, ports: Vec<PortSpec>) -> Vec<Port> {
    ports
        .into_iter()
        .enumerate()
        .map(|(index, spec)| Port {
            owner: owner.clone(),
            index,
            spec,
        })
        .collect()
}

/// Loads a `Port:<Container|Service>:<digest>:<index>` ID: its owner's ports,
/// evaluated, at the index.
pub(crate) async fn load_port(ctx: &Context<'_>, id: &str) -> Result<Port> {
    let bad = || {
        gql(gantry_core::Error::UnknownId {
            kind: "Port".into(),
            id: id.into(),
        })
    };
    let mut parts = id.splitn(4, ':').skip(1);
    let (kind, hex, index) = (
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
    );
    let kind = Kind::from_name(kind)
        .filter(|kind| matches!(kind, Kind::Container | Kind::Service))
        .ok_or_else(bad)?;
    let digest = Digest::from_hex(hex).ok_or_else(bad)?;
    let index: usize = index.parse().map_err(|_| bad())?;
    let engine = engine(ctx);
    let owner = engine.node_of_kind(&digest, kind).map_err(gql)?;
    let ports = match kind {
        Kind::Container => engine.container(digest).await.map_err(gql)?.ports.clone(),
        _ => engine.service_ports(digest).await.map_err(gql)?,
    };
    let spec = ports.get(index).cloned().ok_or_else(bad)?;
    Ok(Port { owner, index, spec })
}

#[derive(Clone)]
pub(crate) struct Socket(pub(crate) Arc<Node>);

/// A Unix or TCP/IP socket that can be mounted into a container.
#[Object]
impl Socket {
    /// A unique identifier for this Socket.
    pub(crate) async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        format_id(engine(ctx), &self.0)
    }
}

/// Port forwarding rules for tunneling network traffic.
#[derive(InputObject, Clone)]
pub(crate) struct PortForward {
    /// Port to expose to clients. If unspecified, a default will be chosen.
    frontend: Option<i32>,
    /// Destination port for traffic.
    backend: i32,
    /// Transport layer protocol to use for traffic.
    #[graphql(default_with = "Some(NetworkProtocol::Tcp)")]
    protocol: Option<NetworkProtocol>,
}

pub(crate) fn port_number(port: i32) -> Result<u16> {
    u16::try_from(port)
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| {
            gql(gantry_core::Error::InvalidArgument {
                message: format!("port {port} is out of range (1 to 65535)"),
            })
        })
}

pub(crate) fn protocol(protocol: Option<NetworkProtocol>) -> Protocol {
    match protocol {
        Some(NetworkProtocol::Udp) => Protocol::Udp,
        _ => Protocol::Tcp,
    }
}

pub(crate) fn forwards(ports: Option<Vec<PortForward>>) -> Result<Vec<CorePortForward>> {
    ports
        .unwrap_or_default()
        .into_iter()
        .map(|forward| {
            Ok(CorePortForward {
                frontend: forward.frontend.map(port_number).transpose()?,
                backend: port_number(forward.backend)?,
                protocol: protocol(forward.protocol),
            })
        })
        .collect()
}

/// A hostname is one DNS label (or several): letters, digits and `-`.
pub(crate) fn check_hostname(name: &str) -> Result<()> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(gql(gantry_core::Error::InvalidArgument {
            message: format!(
                "{name:?} is not a valid hostname: use DNS labels of letters, digits and '-' \
                 separated by '.'"
            ),
        }));
    }
    Ok(())
}

/// `up`: tunnels the service's ports to the engine's host and keeps them open
/// until the client goes away (its request is cancelled).
pub(crate) async fn up(
    ctx: &Context<'_>,
    service: Digest,
    ports: Option<Vec<PortForward>>,
    random: Option<bool>,
) -> Result<Option<Void>> {
    let mut ports = forwards(ports)?;
    if random.unwrap_or_default() {
        for forward in &mut ports {
            forward.frontend = None;
        }
    }
    let engine = engine(ctx);
    let tunnel = engine.add(ops::HostTunnel {
        service,
        // Without ports, each exposed port on the same port of the host
        // (random: on a free one), as Dagger's `up` does.
        native: ports.is_empty() && !random.unwrap_or_default(),
        ports,
    });
    let hold = engine.hold_service(tunnel.digest).await.map_err(gql)?;
    for port in hold.ports() {
        tracing::info!(
            port = port.port,
            description = port.description.as_deref().unwrap_or(""),
            "service up"
        );
    }
    futures::future::pending::<()>().await;
    drop(hold);
    Ok(None)
}
