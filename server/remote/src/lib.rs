//! gantry-remote: the engine's network sources, `HostRemote: Remote`.
//!
//! Git goes through the host's `git` binary (`git.rs`): every transport
//! git speaks works the way users know it (smart HTTP, `git://`, SSH,
//! `file://`), shallow fetches of one commit are cheap, and the engine
//! compiles no Git implementation of its own. HTTP downloads use reqwest
//! with rustls (`http.rs`). Credentials reach git only through its
//! environment (never its arguments, a file or a log) and reqwest only as
//! a sensitive header.
//!
//! Nothing here decides what is cached: the solver does (`gantry-core`).

mod git;
mod http;

use std::path::Path;

use async_trait::async_trait;
use gantry_core::remote::{
    GitCheckout, GitRefs, GitRemote, HttpRequest, HttpResponse, Remote, RemoteError,
};

/// The network as the engine's host sees it.
pub struct HostRemote {
    git: git::GitCli,
    http: http::HttpClient,
}

impl Default for HostRemote {
    fn default() -> Self {
        Self::new()
    }
}

impl HostRemote {
    /// A remote using `git` from `PATH` and an HTTP client built on first
    /// use (a missing TLS trust store fails HTTP sources, not the engine).
    pub fn new() -> Self {
        Self {
            git: git::GitCli::new("git"),
            http: http::HttpClient::new(),
        }
    }
}

#[async_trait]
impl Remote for HostRemote {
    async fn git_refs(&self, remote: &GitRemote) -> Result<GitRefs, RemoteError> {
        self.git.refs(remote).await
    }

    async fn git_checkout(
        &self,
        remote: &GitRemote,
        checkout: &GitCheckout,
        dest: &Path,
    ) -> Result<(), RemoteError> {
        self.git.checkout(remote, checkout, dest).await
    }

    async fn http_get(&self, request: &HttpRequest) -> Result<HttpResponse, RemoteError> {
        self.http.get(request).await
    }
}
