//! `registryService` on `Container.from` and `Container.publish`: an image
//! pulled from, or pushed to, a registry that runs as a gantry service,
//! named in the reference by the service's hostname
//! (`HOSTNAME:PORT/repo:tag`).
//!
//! Neither runtime pulls from where a service's hostname resolves: Docker's
//! daemon resolves names on the host and speaks plain HTTP only to
//! loopback registries (or those listed in its configuration), and the
//! native runtime's own registry client runs in the engine's process, on
//! the host too. Both speak plain HTTP to a loopback registry, so the
//! engine forwards a free loopback port of its host to the service's port
//! (as `Host.tunnel` does) and the runtime pulls or pushes
//! `127.0.0.1:LOCAL/repo:tag`; what the caller sees (the resolved
//! reference, the published address) names the registry as given. The
//! runtime must run on the engine's host for that loopback to be its own,
//! which it does for both runtimes gantry has.
//!
//! The service starts as a bound one does (shared, counted, released after
//! the pull or push); if it stops during the transfer, the transfer fails
//! with the service's own reason and output.

use std::future::Future;
use std::sync::Arc;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::launch::{self, SEARCH_DOMAIN};
use crate::reference::ImageRef;
use crate::runtime::RegistryAuth;
use crate::services::Lease;
use crate::value::ServiceValue;

/// A pull's or push's hold on its registry service. Fields drop in order:
/// the forward closes before the service is released.
pub(crate) struct RegistryService {
    _forward: Box<dyn Send + Sync>,
    lease: Lease,
    /// The registry (`host:port`) as the reference names it.
    given: String,
    /// The loopback registry (`127.0.0.1:PORT`) forwarded to the service.
    local: String,
}

impl RegistryService {
    /// Starts `service` (or joins its running instance) and forwards a
    /// loopback port to the registry port `reference` names.
    pub(crate) async fn start(
        cx: &Context,
        service: &Arc<ServiceValue>,
        reference: &str,
    ) -> Result<Self> {
        let (given, port) = registry_of(reference, &service.hostname)?;
        let lease = launch::start(cx, service)
            .await
            .map_err(|source| Error::Service {
                context: format!("start {} (registryService)", service.hostname),
                source: Box::new(source),
            })?;
        let (local, forward) = launch::loopback_forward(lease.instance.address, port).await?;
        Ok(Self {
            _forward: forward,
            lease,
            given,
            local: format!("127.0.0.1:{local}"),
        })
    }

    /// `reference` with its registry replaced by the loopback forward.
    pub(crate) fn local(&self, reference: &str) -> String {
        swap_registry(reference, &self.given, &self.local)
    }

    /// `auth` (found for the address as given) for the loopback registry
    /// the runtime is told to reach instead.
    pub(crate) fn local_auth(&self, auth: Option<RegistryAuth>) -> Option<RegistryAuth> {
        auth.map(|auth| RegistryAuth {
            server: self.local.clone(),
            ..auth
        })
    }

    /// `reference` (a runtime's answer) naming the registry as given.
    pub(crate) fn given(&self, reference: &str) -> String {
        swap_registry(reference, &self.local, &self.given)
    }

    /// Runs `transfer` of `reference` (as given; the transfer itself names
    /// `self.local(reference)`); fails with the service's reason if the
    /// service stops first. The runtime's name for the image afterwards is
    /// `reference`: the loopback one names a port that is gone once the
    /// transfer ends, and would be left behind by every transfer.
    pub(crate) async fn run<T>(
        &self,
        cx: &Context,
        reference: &str,
        transfer: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let instance = &self.lease.instance;
        let result = match instance.exited.clone() {
            Some(exited) => tokio::select! {
                biased;
                result = transfer => result,
                source = exited => Err(Error::Service {
                    context: format!("registry service {} exited", instance.hostname),
                    source: Box::new(source),
                }),
            },
            None => transfer.await,
        }?;
        let local = self.local(reference);
        if let Err(error) = cx.runtime.rename_image(&local, reference).await {
            // The image stays, under the loopback name.
            tracing::warn!(%local, %reference, %error, "cannot rename an image pulled or pushed through a registry service");
        }
        Ok(result)
    }
}

/// The registry `reference` names (`host:port`) and its port, which must
/// be the service's: its hostname, bare or in the search domain, with the
/// port the registry listens on.
fn registry_of(reference: &str, hostname: &str) -> Result<(String, u16)> {
    let invalid = |why: &str| Error::InvalidArgument {
        message: format!(
            "registryService: {reference:?} {why}; name the service's registry as \
             {hostname}:PORT/REPOSITORY[:TAG]"
        ),
    };
    let image = ImageRef::parse(reference).map_err(|error| invalid(&error.to_string()))?;
    let registry = image.registry().to_owned();
    if !reference.starts_with(&format!("{registry}/")) {
        return Err(invalid("names no registry host"));
    }
    let (host, port) = registry
        .rsplit_once(':')
        .ok_or_else(|| invalid("names no registry port"))?;
    let port: u16 = port.parse().map_err(|_| invalid("has an invalid port"))?;
    let names_service = host.eq_ignore_ascii_case(hostname)
        || host.eq_ignore_ascii_case(&format!("{hostname}.{SEARCH_DOMAIN}"));
    if !names_service {
        return Err(invalid(&format!(
            "names the registry {host}, not the service's hostname {hostname}"
        )));
    }
    Ok((registry, port))
}

/// `reference` with its leading registry `from` replaced by `to`.
fn swap_registry(reference: &str, from: &str, to: &str) -> String {
    match reference.strip_prefix(from) {
        Some(rest) if rest.starts_with('/') => format!("{to}{rest}"),
        _ => reference.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_names_the_services_registry_with_its_port() {
        assert_eq!(
            registry_of("reg:5000/app:v1", "reg").unwrap(),
            ("reg:5000".to_owned(), 5000)
        );
        assert_eq!(
            registry_of("reg.gantry.local:5000/team/app", "reg").unwrap(),
            ("reg.gantry.local:5000".to_owned(), 5000)
        );
        for (reference, why) in [
            ("app:v1", "names no registry host"),
            ("reg/app", "names no registry host"),
            ("other:5000/app", "not the service's hostname reg"),
        ] {
            let error = registry_of(reference, "reg").unwrap_err().to_string();
            assert!(error.contains(why), "{reference}: {error}");
            assert!(error.contains("reg:PORT/REPOSITORY"), "{error}");
        }
    }

    #[test]
    fn references_swap_registries_both_ways() {
        let local = swap_registry("reg:5000/app:v1", "reg:5000", "127.0.0.1:4321");
        assert_eq!(local, "127.0.0.1:4321/app:v1");
        assert_eq!(
            swap_registry("127.0.0.1:4321/app@sha256:ab", "127.0.0.1:4321", "reg:5000"),
            "reg:5000/app@sha256:ab"
        );
        assert_eq!(
            swap_registry("reg:50000/app", "reg:5000", "x"),
            "reg:50000/app"
        );
    }
}
