//! `experimentalServiceHost` on `Query.git` and `Query.http`: a source
//! fetched from a gantry service. The engine fetches sources from its own
//! process on the host, where a service's hostname does not resolve (only
//! steps get `/etc/hosts` lines for it); but both runtimes put services on
//! a network the host reaches (`Host.tunnel` connects to the same
//! address). So the fetch keeps its URL as given and is told where the
//! URL's host is (`HostAddress`): the service's address when the URL names
//! the service, as in Dagger, where the fetch resolves it through the
//! engine's DNS.
//!
//! The service starts the way a bound service starts for an exec: shared,
//! counted, and released (stopped after the grace period, if nothing else
//! holds it) when the fetch is done; if it stops during the fetch, the
//! fetch fails with the service's own reason and output.

use std::future::Future;
use std::sync::Arc;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::launch::{self, SEARCH_DOMAIN};
use crate::remote::{url_authority, HostAddress, RemoteError};
use crate::services::Lease;
use crate::value::ServiceValue;

/// A fetch's hold on the service it fetches from.
pub(crate) struct ServiceHost {
    lease: Lease,
    /// Where the URL's host is; None when the URL names another host.
    pub(crate) resolve: Option<HostAddress>,
    /// The URL's host when it is not the service's (for error messages).
    other_host: Option<String>,
}

impl ServiceHost {
    /// Starts `service` (or joins its running instance) to fetch `url`
    /// from it. A start that fails fails the fetch with its reason.
    pub(crate) async fn start(
        cx: &Context,
        service: &Arc<ServiceValue>,
        url: &str,
    ) -> Result<Self> {
        let lease = launch::start(cx, service)
            .await
            .map_err(|source| Error::Service {
                context: format!("start {} (experimentalServiceHost)", service.hostname),
                source: Box::new(source),
            })?;
        let host = url_authority(url).map(|parts| parts.host.to_owned());
        let resolve = host
            .as_deref()
            .and_then(|host| address_of(cx, &lease, host));
        let other_host = host.filter(|_| resolve.is_none());
        Ok(Self {
            lease,
            resolve,
            other_host,
        })
    }

    /// Runs `fetch`; fails with the service's reason if it stops first.
    /// A fetch of another host than the service's that could not reach it
    /// says which name reaches the service.
    pub(crate) async fn run<T>(&self, fetch: impl Future<Output = Result<T>>) -> Result<T> {
        let instance = &self.lease.instance;
        let result = match instance.exited.clone() {
            Some(exited) => tokio::select! {
                biased;
                result = fetch => result,
                source = exited => Err(Error::Service {
                    context: format!(
                        "service {} (experimentalServiceHost) exited",
                        instance.hostname
                    ),
                    source: Box::new(source),
                }),
            },
            None => fetch.await,
        };
        match (&self.other_host, result) {
            (Some(host), Err(source)) if unreached(&source) => Err(Error::Service {
                context: format!(
                    "{host} is not the hostname of the service experimentalServiceHost \
                         names ({}): the engine reaches the service as {} only",
                    instance.hostname, instance.hostname
                ),
                source: Box::new(source),
            }),
            (_, result) => result,
        }
    }
}

/// Whether a fetch failed before its server answered (an HTTP status or a
/// credential refusal came from one).
fn unreached(error: &Error) -> bool {
    matches!(
        error,
        Error::Remote(RemoteError::Http { .. } | RemoteError::Git { .. })
    )
}

/// Where `host` is, if it names the service (its hostname, bare or in the
/// search domain) or another running service a step could resolve.
fn address_of(cx: &Context, lease: &Lease, host: &str) -> Option<HostAddress> {
    let names = |hostname: &str| {
        host.eq_ignore_ascii_case(hostname)
            || host.eq_ignore_ascii_case(&format!("{hostname}.{SEARCH_DOMAIN}"))
    };
    let instance = &lease.instance;
    let address = if names(&instance.hostname) {
        Some(instance.address)
    } else {
        cx.services
            .resolvable_hosts()
            .into_iter()
            .find(|(hostname, _)| names(hostname))
            .map(|(_, address)| address)
    };
    address.map(|address| HostAddress {
        host: host.to_owned(),
        address,
    })
}
