//! The boundary between the solver and the network: Git repositories and
//! HTTP downloads. Like `Runtime`, `Remote` only moves bytes: the solver
//! decides what is fetched, how it is cached and what it is keyed on.
//! `gantry-remote` implements it with the host's `git` binary and an HTTP
//! client; the CLI wires it in (`Engine::with_remote`). An engine without
//! one refuses Git and HTTP sources with a clear error.
//!
//! Credentials travel here as plain values held in memory only; every
//! type that holds one redacts it in `Debug`, and implementations must
//! keep them out of process arguments, files, logs and errors.

use std::net::IpAddr;
use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Credentials for a Git remote over HTTP(S). `token` becomes the password
/// of basic authentication, `header` a whole `Authorization` header.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct GitAuth {
    pub username: String,
    pub token: Option<String>,
    pub header: Option<String>,
}

impl std::fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitAuth")
            .field("username", &self.username)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("header", &self.header.as_ref().map(|_| "***"))
            .finish()
    }
}

impl GitAuth {
    /// The secret values, for scrubbing messages that might echo them.
    pub fn secrets(&self) -> Vec<&str> {
        self.token
            .iter()
            .chain(self.header.iter())
            .map(String::as_str)
            .collect()
    }
}

/// A Git remote: where it is and how to authenticate to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRemote {
    /// A URL `git` understands: `https://…`, `http://…`, `git://…`,
    /// `file:///…`, `ssh://…` or `user@host:path`.
    pub url: String,
    pub auth: GitAuth,
    /// `known_hosts` lines for SSH remotes; empty means no host checking.
    pub ssh_known_hosts: String,
    /// An SSH agent's socket on the engine's host (`sshAuthSocket`): the
    /// keys SSH remotes are authenticated with. None: no agent, so an SSH
    /// remote that wants a key refuses the connection.
    pub ssh_auth_socket: Option<String>,
    /// Where the URL's host is, when DNS cannot say (`experimentalServiceHost`).
    pub resolve: Option<HostAddress>,
}

/// A host name and the address it stands for: a gantry service's, which
/// only the engine knows (services get no DNS records on the engine's
/// host). A fetch connects to `address` but keeps the name everywhere else
/// (the `Host` header, TLS, credentials scoped to the URL's origin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddress {
    pub host: String,
    pub address: IpAddr,
}

/// The authority of a `scheme://[userinfo@]host[:port]/…` URL. An
/// scp-like Git URL (`user@host:path`) has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlAuthority<'a> {
    pub scheme: &'a str,
    /// The host without an IPv6 literal's brackets.
    pub host: &'a str,
    pub port: Option<u16>,
    /// `scheme://` and the authority as written (user info included).
    pub prefix: &'a str,
}

/// The authority of `url`, or None when it has none (or an invalid port).
pub fn url_authority(url: &str) -> Option<UrlAuthority<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    let port = match port {
        Some(port) => Some(port.parse().ok()?),
        None => None,
    };
    Some(UrlAuthority {
        scheme,
        host,
        port,
        prefix: &url[..scheme.len() + 3 + end],
    })
}

/// One ref a remote advertises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitRefEntry {
    /// The full name (`refs/heads/main`, `refs/tags/v1`, `refs/tags/v1^{}`
    /// for a peeled annotated tag, `HEAD`).
    pub name: String,
    /// The object the ref points at (40 or 64 hex digits).
    pub sha: String,
}

/// What `git ls-remote --symref` tells about a remote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitRefs {
    /// Every ref, in the order the remote listed them.
    pub refs: Vec<GitRefEntry>,
    /// The ref `HEAD` points at (`refs/heads/main`), when the remote says.
    pub head_target: Option<String>,
}

/// What to check out of a remote into a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitCheckout {
    /// The commit (full hex).
    pub commit: String,
    /// The ref it was resolved from (`refs/heads/main`), or empty for a
    /// bare commit: a branch is checked out as that branch.
    pub ref_name: String,
    /// How many commits of history to fetch; 0 or less fetches all.
    pub depth: i64,
    /// Fetch tags too.
    pub include_tags: bool,
    /// Keep `.git` in the checkout.
    pub keep_git_dir: bool,
}

/// A GET request, conditional when the validators of an earlier response
/// are given.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub url: String,
    /// A whole `Authorization` header value (a secret).
    pub authorization: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Where the URL's host is, when DNS cannot say (`experimentalServiceHost`).
    pub resolve: Option<HostAddress>,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("url", &self.url)
            .field("authorization", &self.authorization.as_ref().map(|_| "***"))
            .field("etag", &self.etag)
            .field("last_modified", &self.last_modified)
            .field("resolve", &self.resolve)
            .finish()
    }
}

/// The answer to an `HttpRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpResponse {
    /// 304: what the validators describe is still current.
    NotModified {
        etag: Option<String>,
        last_modified: Option<String>,
    },
    /// 200, with the whole body.
    Body {
        body: Bytes,
        etag: Option<String>,
        last_modified: Option<String>,
    },
}

/// Errors a remote reports, as data (shared between every waiter of a
/// deduplicated fetch). Messages never hold a credential.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RemoteError {
    #[error("git {action} of {url} failed: {reason}")]
    Git {
        action: String,
        url: String,
        reason: String,
    },
    /// `hint` says what to pass: credentials for HTTP, an agent for SSH.
    #[error("{url}: authentication failed ({hint})")]
    GitAuth { url: String, hint: String },
    #[error("GET {url} failed: {reason}")]
    Http { url: String, reason: String },
    #[error("GET {url} answered {status}")]
    HttpStatus { url: String, status: u16 },
    #[error("{message}")]
    Unsupported { message: String },
    #[error("network sources are unavailable: {reason}")]
    Unavailable { reason: String },
}

/// Everything the solver needs from the network.
#[async_trait]
pub trait Remote: Send + Sync + 'static {
    /// Lists the refs of a Git remote (one round trip).
    async fn git_refs(&self, remote: &GitRemote) -> Result<GitRefs, RemoteError>;

    /// Checks out one commit of a Git remote into `dest`, an empty
    /// directory that exists.
    async fn git_checkout(
        &self,
        remote: &GitRemote,
        checkout: &GitCheckout,
        dest: &Path,
    ) -> Result<(), RemoteError>;

    /// Sends one GET request.
    async fn http_get(&self, request: &HttpRequest) -> Result<HttpResponse, RemoteError>;
}

/// The remote of an engine that was given none: refuses everything.
pub(crate) struct NoRemote;

impl NoRemote {
    fn refuse() -> RemoteError {
        RemoteError::Unavailable {
            reason: "this engine was built without a network client".into(),
        }
    }
}

#[async_trait]
impl Remote for NoRemote {
    async fn git_refs(&self, _remote: &GitRemote) -> Result<GitRefs, RemoteError> {
        Err(Self::refuse())
    }

    async fn git_checkout(
        &self,
        _remote: &GitRemote,
        _checkout: &GitCheckout,
        _dest: &Path,
    ) -> Result<(), RemoteError> {
        Err(Self::refuse())
    }

    async fn http_get(&self, _request: &HttpRequest) -> Result<HttpResponse, RemoteError> {
        Err(Self::refuse())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_split_into_host_and_port() {
        let parts = url_authority("http://user:pw@svc:8080/repo.git?x").unwrap();
        assert_eq!(
            (parts.scheme, parts.host, parts.port, parts.prefix),
            ("http", "svc", Some(8080), "http://user:pw@svc:8080")
        );
        let parts = url_authority("https://[::1]/a").unwrap();
        assert_eq!((parts.host, parts.port), ("::1", None));
        assert_eq!(url_authority("git://host").unwrap().prefix, "git://host");
        assert_eq!(url_authority("git@host:o/r"), None);
        assert_eq!(url_authority("http://host:port/"), None);
    }
}
