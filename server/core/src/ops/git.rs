//! Git sources: `Query.git` and `Directory.asGit` (a repository), its refs
//! (`head`, `branch`, `tag`, `ref`, `commit`, `latestVersion`) and their
//! trees.
//!
//! Content-addressed by commit: a repository node touches no network; a
//! ref resolves with one `ls-remote` per repository and engine (a full
//! commit SHA needs none), and a tree is fetched once per commit and
//! checkout options, then kept in the store (`RecordKind::Fetch`), so a
//! later engine asking for the same commit only resolves the ref.
//! Credentials are secret nodes: their values reach the `Remote` only, and
//! neither keys nor records hold them.

use std::cmp::Ordering;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::digest::{Digest, Domain, Encoder};
use crate::error::{Error, Result};
use crate::eval::{Call, OpEncoder, Operation, Subgraph};
use crate::events::StepState;
use crate::host::read_tree;
use crate::mounts::write_tree;
use crate::remote::{
    url_authority, GitAuth, GitCheckout, GitRefEntry, GitRefs, GitRemote, RemoteError,
};
use crate::service_host::ServiceHost;
use crate::store::RecordKind;
use crate::text::scrub_secrets;
use crate::tree::Tree;
use crate::value::{
    ChangesetValue, GitRefValue, GitRepositoryValue, GitSource, Kind, ServiceValue, Value,
};

/// `Query.git`: a remote repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Git {
    pub url: String,
    pub keep_git_dir: bool,
    pub ssh_known_hosts: String,
    pub http_auth_username: String,
    /// A secret: the password of HTTP basic authentication.
    pub http_auth_token: Option<Digest>,
    /// A secret: a whole `Authorization` header.
    pub http_auth_header: Option<Digest>,
    /// A socket (`Host.unixSocket`): the SSH agent for SSH remotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_auth_socket: Option<Digest>,
    /// `experimentalServiceHost`: a service serving the repository, which
    /// the URL names by its hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_host: Option<Digest>,
}

/// A URL as `git` takes it: one without a scheme (`github.com/o/r`, not
/// `user@host:path`) means HTTPS, as in Dagger.
pub fn normalize_url(url: &str) -> String {
    if url.contains("://") || scp_path(url).is_some() {
        url.to_owned()
    } else {
        format!("https://{url}")
    }
}

/// The path of SSH's `user@host:path` form, where `url` has that form.
fn scp_path(url: &str) -> Option<&str> {
    url.split_once(':')
        .filter(|(host, _)| host.contains('@') && !host.contains('/'))
        .map(|(_, path)| path)
}

/// A directory or file in a Git repository, named as Dagger's CLI and
/// `Address` name one (the `#REF:PATH` fragment of BuildKit's Git contexts):
/// `URL[#[REF][:PATH]]`. The URL has a scheme other than `file://`
/// (`https://`, `http://`, `git://`, `ssh://`) or is SSH's `user@host:path`;
/// anything else is a local path. No ref: the remote's HEAD; no path: the
/// repository's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitAddress {
    pub url: String,
    pub reference: Option<String>,
    pub path: Option<String>,
}

impl GitAddress {
    /// `value` as a Git address; `None`: a local path (or `file://`).
    pub fn parse(value: &str) -> Option<Self> {
        let (url, fragment) = match value.split_once('#') {
            Some((url, fragment)) => (url, Some(fragment)),
            None => (value, None),
        };
        let remote = match url.split_once("://") {
            Some((scheme, rest)) => scheme != "file" && !scheme.is_empty() && !rest.is_empty(),
            None => scp_path(url).is_some_and(|path| !path.is_empty()),
        };
        if !remote {
            return None;
        }
        let (reference, path) = match fragment.map(|f| f.split_once(':').unwrap_or((f, ""))) {
            Some((reference, path)) => (reference, path),
            None => ("", ""),
        };
        let some = |text: &str| (!text.is_empty()).then(|| text.to_owned());
        Some(Self {
            url: url.to_owned(),
            reference: some(reference),
            path: some(path.trim_start_matches('/')),
        })
    }
}

/// Writes an optional input with a presence marker, so that "none" and
/// any input encode differently.
fn optional_input(e: &mut OpEncoder<'_>, input: Option<&Digest>) {
    match input {
        Some(digest) => {
            e.str("+");
            e.input(digest);
        }
        None => {
            e.str("-");
        }
    }
}

impl Operation for Git {
    const KIND: Kind = Kind::GitRepository;

    fn inputs(&self) -> Vec<Digest> {
        self.http_auth_token
            .iter()
            .chain(self.http_auth_header.iter())
            .chain(self.ssh_auth_socket.iter())
            .chain(self.service_host.iter())
            .copied()
            .collect()
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.str(&self.url)
            .bool(self.keep_git_dir)
            .str(&self.ssh_known_hosts)
            .str(&self.http_auth_username);
        optional_input(e, self.http_auth_token.as_ref());
        optional_input(e, self.http_auth_header.as_ref());
        // Written only when given, so repositories without one keep the
        // digests they had before the argument was served.
        if let Some(socket) = &self.ssh_auth_socket {
            e.str("ssh-agent");
            e.input(socket);
        }
        if let Some(service) = &self.service_host {
            e.str("service");
            e.input(service);
        }
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        Ok(Value::GitRepository(Arc::new(GitRepositoryValue {
            key: call.key,
            source: GitSource::Remote {
                url: self.url.clone(),
                username: self.http_auth_username.clone(),
                token: self.http_auth_token,
                header: self.http_auth_header,
                ssh_known_hosts: self.ssh_known_hosts.clone(),
                ssh_auth_socket: self
                    .ssh_auth_socket
                    .map(|socket| call.inputs.socket(&socket))
                    .transpose()?,
                service: self
                    .service_host
                    .map(|service| call.inputs.service(&service))
                    .transpose()?,
            },
            keep_git_dir: self.keep_git_dir,
        })))
    }
}

/// `Directory.asGit`: the repository a directory holds (its `.git`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AsGit {
    pub directory: Digest,
}

impl Operation for AsGit {
    const KIND: Kind = Kind::GitRepository;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.directory]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.directory);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let (tree, key) = call.inputs.value(&self.directory).directory()?;
        Ok(Value::GitRepository(Arc::new(GitRepositoryValue {
            key: call.key,
            source: GitSource::Local { tree, key },
            keep_git_dir: true,
        })))
    }
}

/// `GitRepository.uncommitted`: a local worktree's changes against its
/// HEAD commit (staged or not, `.git` left out), as a changeset. A remote
/// repository, or a bare one (`Directory.asGit` of a `.git` directory), has
/// none. Untracked files count as added, ignored ones too: `.gitignore` is
/// not applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitUncommitted {
    pub repository: Digest,
}

impl Operation for GitUncommitted {
    const KIND: Kind = Kind::Changeset;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.repository]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.repository);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let value = call.inputs.value(&self.repository).clone();
        let repository = value.git_repository()?;
        let worktree = match &repository.source {
            GitSource::Local { tree, .. } if tree.entries.contains_key(".git") => tree.clone(),
            _ => {
                let empty = Arc::new(Tree::default());
                return Ok(Value::Changeset(Arc::new(ChangesetValue::new(
                    empty.clone(),
                    empty,
                ))));
            }
        };
        // HEAD's files, as `head.tree(discardGitDir: true)` checks them out.
        let mut graph = Subgraph::new(cx);
        graph.insert(self.repository, value);
        let head = graph
            .eval(GitRef {
                repository: self.repository,
                selector: RefSelector::Head,
            })
            .await?;
        let checkout = graph
            .eval(GitTree {
                reference: head,
                discard_git_dir: true,
                depth: 1,
                include_tags: false,
            })
            .await?;
        let (before, _) = graph.value(&checkout).directory()?;
        let mut after = (*worktree).clone();
        after.remove(".git");
        Ok(Value::Changeset(Arc::new(ChangesetValue::new(
            before,
            Arc::new(after),
        ))))
    }
}

/// How a `GitRef` names its commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", content = "name", rename_all = "camelCase")]
pub enum RefSelector {
    /// What the remote's `HEAD` points at.
    Head,
    Branch(String),
    Tag(String),
    /// A branch, tag, full ref or commit, resolved as `git checkout` would.
    Ref(String),
    /// A full commit SHA: resolved without the network.
    Commit(String),
    /// The highest semver tag `v…`.
    LatestVersion,
}

impl RefSelector {
    fn parts(&self) -> (&'static str, &str) {
        match self {
            RefSelector::Head => ("head", ""),
            RefSelector::Branch(name) => ("branch", name),
            RefSelector::Tag(name) => ("tag", name),
            RefSelector::Ref(name) => ("ref", name),
            RefSelector::Commit(sha) => ("commit", sha),
            RefSelector::LatestVersion => ("latestVersion", ""),
        }
    }
}

/// A ref of a repository, resolved to a commit when evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitRef {
    pub repository: Digest,
    pub selector: RefSelector,
}

impl Operation for GitRef {
    const KIND: Kind = Kind::GitRef;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.repository]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        let (by, name) = self.selector.parts();
        e.input(&self.repository).str(by).str(name);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let repository = call.inputs.git_repository(&self.repository)?;
        let (name, commit) = match &self.selector {
            RefSelector::Commit(sha) => {
                if !is_commit_sha(sha) {
                    return Err(Error::InvalidArgument {
                        message: format!(
                            "invalid commit SHA {sha:?}: give the full 40 (or 64) hex digits"
                        ),
                    });
                }
                (String::new(), sha.to_ascii_lowercase())
            }
            selector => resolve(&*listing(cx, &repository).await?, selector)?,
        };
        let mut encoder = Encoder::new(Domain::GitRef);
        encoder
            .str(&repository.identity())
            .str(&commit)
            .str(&name)
            .bool(repository.keep_git_dir);
        Ok(Value::GitRef(Arc::new(GitRefValue {
            key: encoder.finish(),
            repository,
            name,
            commit,
        })))
    }
}

/// `GitRef.tree`: the files at a commit, with or without `.git`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitTree {
    pub reference: Digest,
    pub discard_git_dir: bool,
    pub depth: i64,
    pub include_tags: bool,
}

/// What a checkout record holds.
#[derive(Serialize, Deserialize)]
struct CheckoutRecord {
    tree: Tree,
}

impl Operation for GitTree {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.reference]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.reference)
            .bool(self.discard_git_dir)
            .i64(self.depth)
            .bool(self.include_tags);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let reference = call.inputs.git_ref(&self.reference)?;
        let checkout = GitCheckout {
            commit: reference.commit.clone(),
            ref_name: reference.name.clone(),
            depth: self.depth,
            include_tags: self.include_tags,
            keep_git_dir: reference.repository.keep_git_dir && !self.discard_git_dir,
        };
        let key = checkout_key(&reference.repository, &checkout);
        cx.fetches
            .run(key, || checkout_tree(cx, &reference, &checkout, key))
            .await
    }
}

/// Where a checkout is stored: what decides its files, never credentials.
/// Without `.git`, only the repository and the commit do.
fn checkout_key(repository: &GitRepositoryValue, checkout: &GitCheckout) -> Digest {
    let mut encoder = Encoder::new(Domain::GitTree);
    encoder
        .str(&repository.identity())
        .str(&checkout.commit)
        .bool(checkout.keep_git_dir);
    if checkout.keep_git_dir {
        encoder
            .i64(checkout.depth)
            .bool(checkout.include_tags)
            .str(&checkout.ref_name);
    }
    encoder.finish()
}

/// A stored checkout, else a fetch into a scratch directory, read back
/// into a tree and stored.
async fn checkout_tree(
    cx: &Context,
    reference: &GitRefValue,
    checkout: &GitCheckout,
    key: Digest,
) -> Result<Value> {
    if let Some(bytes) = cx.store.get(RecordKind::Fetch, &key)? {
        if let Ok(record) = serde_json::from_slice::<CheckoutRecord>(&bytes) {
            return Ok(Value::from_tree(record.tree));
        }
    }
    let (remote, held) = git_remote(cx, &reference.repository).await?;
    let dest = Scratch::new(cx)?;
    let step = Digest::of_bytes(key.hex().as_bytes());
    let name = format!(
        "git fetch {} {}",
        shown_url(&remote),
        short(&checkout.commit)
    );
    cx.events
        .emit(&step, name.clone(), StepState::Running, None);
    let fetched = held
        .run(async {
            cx.remote
                .git_checkout(&remote, checkout, &dest.0)
                .await
                .map_err(|error| scrubbed(error, &remote.auth))
        })
        .await;
    if let Err(error) = &fetched {
        cx.events
            .emit(&step, name, StepState::Failed, Some(error.to_string()));
        return Err(error.clone());
    }
    let record = CheckoutRecord {
        tree: read_tree(cx.store.as_ref(), &dest.0)?,
    };
    let json = serde_json::to_vec(&record).expect("trees always serialise");
    cx.store.put(RecordKind::Fetch, &key, &json)?;
    cx.events.emit(&step, name, StepState::Done, None);
    Ok(Value::from_tree(record.tree))
}

/// The refs of a repository: one `ls-remote` per repository and engine.
pub(crate) async fn listing(cx: &Context, repository: &GitRepositoryValue) -> Result<Arc<GitRefs>> {
    cx.git_listings
        .run(repository.key, || async {
            let (remote, held) = git_remote(cx, repository).await?;
            let refs = held
                .run(async {
                    cx.remote
                        .git_refs(&remote)
                        .await
                        .map_err(|error| scrubbed(error, &remote.auth))
                })
                .await?;
            Ok(Arc::new(refs))
        })
        .await
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(cx: &Context) -> Result<Self> {
        Ok(Self(cx.store.scratch_dir()?))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a fetch holds until it is done: a local repository's scratch
/// copy, the service a remote is fetched from.
struct Held {
    _local: Option<Scratch>,
    service: Option<ServiceHost>,
}

impl Held {
    async fn run<T>(&self, fetch: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        match &self.service {
            Some(service) => service.run(fetch).await,
            None => fetch.await,
        }
    }
}

/// Starts the service a remote is fetched from, if it has one. Git reaches
/// it over HTTP(S) or `git://`: an SSH remote would need its host key
/// checked under the service's name, which gantry does not arrange.
async fn service_host(
    cx: &Context,
    service: Option<&Arc<ServiceValue>>,
    url: &str,
) -> Result<Option<ServiceHost>> {
    let Some(service) = service else {
        return Ok(None);
    };
    let scheme = url_authority(url).map(|parts| parts.scheme);
    if !matches!(scheme, Some("http" | "https" | "git")) {
        return Err(Error::Unsupported {
            message: format!(
                "git(experimentalServiceHost:): gantry fetches from a service over http://, \
                 https:// or git:// only, not {url:?}"
            ),
        });
    }
    Ok(Some(ServiceHost::start(cx, service, url).await?))
}

/// The remote to fetch from, with its credentials' values, and what the
/// fetch holds meanwhile (`Held`): the service a remote is fetched from,
/// started; a local repository, written to a scratch directory and
/// fetched from as a `file://` remote.
async fn git_remote(cx: &Context, repository: &GitRepositoryValue) -> Result<(GitRemote, Held)> {
    match &repository.source {
        GitSource::Remote {
            url,
            username,
            token,
            header,
            ssh_known_hosts,
            ssh_auth_socket,
            service,
        } => {
            let value = |secret: &Option<Digest>| -> Result<Option<String>> {
                secret
                    .as_ref()
                    .map(|digest| Ok(cx.secret(digest)?.plaintext.to_string()))
                    .transpose()
            };
            let auth = GitAuth {
                username: username.clone(),
                token: value(token)?,
                header: value(header)?,
            };
            let service = service_host(cx, service.as_ref(), url).await?;
            let remote = GitRemote {
                url: url.clone(),
                auth,
                ssh_known_hosts: ssh_known_hosts.clone(),
                ssh_auth_socket: ssh_auth_socket.clone(),
                resolve: service.as_ref().and_then(|service| service.resolve.clone()),
            };
            let held = Held {
                _local: None,
                service,
            };
            Ok((remote, held))
        }
        GitSource::Local { tree, .. } => {
            if !tree.entries.contains_key(".git") && !tree.entries.contains_key("HEAD") {
                return Err(Error::InvalidArgument {
                    message: "asGit: not a git repository: the directory holds neither a .git nor a bare repository".into(),
                });
            }
            let scratch = Scratch::new(cx)?;
            write_tree(cx, tree, &scratch.0)?;
            let remote = GitRemote {
                url: format!("file://{}", scratch.0.display()),
                auth: GitAuth::default(),
                ssh_known_hosts: String::new(),
                ssh_auth_socket: None,
                resolve: None,
            };
            let held = Held {
                _local: Some(scratch),
                service: None,
            };
            Ok((remote, held))
        }
    }
}

/// A URL as shown in progress: a local repository's scratch path is noise.
fn shown_url(remote: &GitRemote) -> &str {
    if remote.url.starts_with("file://") && remote.url.contains("/scratch/") {
        "(local repository)"
    } else {
        &remote.url
    }
}

/// A remote error with any credential value replaced by `***` (a remote
/// should never echo one, but its tools' messages are not ours).
fn scrubbed(error: RemoteError, auth: &GitAuth) -> Error {
    let secrets = auth.secrets();
    if secrets.is_empty() {
        return Error::Remote(error);
    }
    let scrub = |text: &String| scrub_secrets(text, &secrets);
    Error::Remote(match error {
        RemoteError::Git {
            action,
            url,
            reason,
        } => RemoteError::Git {
            action,
            url: scrub(&url),
            reason: scrub(&reason),
        },
        other => other,
    })
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// A full commit SHA: 40 (SHA-1) or 64 (SHA-256) hex digits.
pub fn is_commit_sha(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Resolves a selector against a listing: (full ref name, commit).
fn resolve(refs: &GitRefs, selector: &RefSelector) -> Result<(String, String)> {
    let not_found = |what: &str| Error::NotFound {
        path: format!("git ref {what}"),
    };
    match selector {
        RefSelector::Head => {
            let head = refs
                .refs
                .iter()
                .find(|entry| entry.name == "HEAD")
                .ok_or_else(|| not_found("HEAD"))?;
            let name = refs.head_target.clone().unwrap_or_else(|| "HEAD".into());
            Ok((name, head.sha.clone()))
        }
        RefSelector::Branch(name) => {
            let full = format!("refs/heads/{}", name.trim_start_matches("refs/heads/"));
            exact(refs, &full).ok_or_else(|| not_found(&format!("branch {name:?}")))
        }
        RefSelector::Tag(name) => {
            let full = format!("refs/tags/{}", name.trim_start_matches("refs/tags/"));
            tag(refs, &full).ok_or_else(|| not_found(&format!("tag {name:?}")))
        }
        RefSelector::Ref(name) => lookup(refs, name).ok_or_else(|| not_found(&format!("{name:?}"))),
        RefSelector::Commit(sha) => Ok((String::new(), sha.clone())),
        RefSelector::LatestVersion => {
            let latest = short_names(refs, "refs/tags/", &[])
                .into_iter()
                .filter_map(|tag| Semver::parse(&tag).map(|version| (version, tag)))
                .max_by(|a, b| a.0.cmp(&b.0))
                .ok_or_else(|| Error::NotFound {
                    path: "git ref: no valid semver tags (v1.2.3) found".into(),
                })?;
            tag(refs, &format!("refs/tags/{}", latest.1))
                .ok_or_else(|| not_found(&format!("tag {:?}", latest.1)))
        }
    }
}

fn exact(refs: &GitRefs, full: &str) -> Option<(String, String)> {
    refs.refs
        .iter()
        .find(|entry| entry.name == full)
        .map(|entry| (entry.name.clone(), entry.sha.clone()))
}

/// A tag's commit: the peeled entry of an annotated tag when listed.
fn tag(refs: &GitRefs, full: &str) -> Option<(String, String)> {
    let peeled = format!("{full}^{{}}");
    refs.refs
        .iter()
        .find(|entry| entry.name == peeled)
        .map(|entry| (full.to_owned(), entry.sha.clone()))
        .or_else(|| exact(refs, full))
}

/// `git checkout NAME` semantics: a commit, an exact or `refs/`-relative
/// ref, else a branch, else a tag.
fn lookup(refs: &GitRefs, name: &str) -> Option<(String, String)> {
    if name == "HEAD" {
        return resolve(refs, &RefSelector::Head).ok();
    }
    if is_commit_sha(name) {
        return Some((String::new(), name.to_ascii_lowercase()));
    }
    let relative = format!("refs/{}", name.trim_start_matches("refs/"));
    exact(refs, name)
        .or_else(|| exact(refs, &relative))
        .or_else(|| {
            exact(
                refs,
                &format!("refs/heads/{}", name.trim_start_matches("refs/heads/")),
            )
        })
        .or_else(|| {
            tag(
                refs,
                &format!("refs/tags/{}", name.trim_start_matches("refs/tags/")),
            )
        })
}

/// Short names (`main`, `v1.0`) of the refs under `prefix` that match any
/// of `patterns` (all when none). A pattern matches the end of a full ref
/// name at a `/` boundary, as `git ls-remote` patterns do: `v*` matches
/// `refs/tags/v1`, and so does `refs/tags/v*`.
pub fn short_names(refs: &GitRefs, prefix: &str, patterns: &[String]) -> Vec<String> {
    let matchers: Vec<globset::GlobMatcher> = patterns
        .iter()
        .filter_map(|pattern| globset::Glob::new(pattern).ok())
        .map(|glob| glob.compile_matcher())
        .collect();
    let matches = |name: &str| {
        matchers.is_empty()
            || matchers.iter().any(|matcher| {
                std::iter::once(name)
                    .chain(name.match_indices('/').map(|(at, _)| &name[at + 1..]))
                    .any(|tail| matcher.is_match(tail))
            })
    };
    refs.refs
        .iter()
        .filter(|entry| entry.name.starts_with(prefix) && !entry.name.ends_with("^{}"))
        .filter(|entry| matches(&entry.name))
        .map(|entry: &GitRefEntry| entry.name[prefix.len()..].to_owned())
        .collect()
}

/// A semantic version as Go's `golang.org/x/mod/semver` reads tags:
/// `v` + major[.minor[.patch]][-prerelease][+build].
#[derive(Debug, PartialEq, Eq)]
struct Semver {
    numbers: [u64; 3],
    prerelease: Vec<String>,
}

impl Semver {
    fn parse(tag: &str) -> Option<Semver> {
        let rest = tag.strip_prefix('v')?;
        let rest = rest.split_once('+').map_or(rest, |(version, _)| version);
        let (core, prerelease) = match rest.split_once('-') {
            Some((core, pre)) if !pre.is_empty() => {
                (core, pre.split('.').map(str::to_owned).collect())
            }
            Some(_) => return None,
            None => (rest, Vec::new()),
        };
        let mut numbers = [0u64; 3];
        let parts: Vec<&str> = core.split('.').collect();
        if parts.is_empty() || parts.len() > 3 || (parts.len() < 3 && !prerelease.is_empty()) {
            return None;
        }
        for (slot, part) in numbers.iter_mut().zip(&parts) {
            let canonical = !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_digit())
                && (part.len() == 1 || !part.starts_with('0'));
            if !canonical {
                return None;
            }
            *slot = part.parse().ok()?;
        }
        Some(Semver {
            numbers,
            prerelease,
        })
    }
}

impl Ord for Semver {
    fn cmp(&self, other: &Self) -> Ordering {
        self.numbers.cmp(&other.numbers).then_with(|| {
            match (self.prerelease.is_empty(), other.prerelease.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_prerelease(&self.prerelease, &other.prerelease),
            }
        })
    }
}

impl PartialOrd for Semver {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Numeric identifiers compare as numbers and sort before alphanumeric
/// ones; a shorter list of equal identifiers sorts first.
fn compare_prerelease(a: &[String], b: &[String]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let order = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            (Err(_), Err(_)) => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_addresses_name_a_url_a_ref_and_a_path() {
        let parsed = |value: &str| GitAddress::parse(value).map(|a| (a.url, a.reference, a.path));
        let some = |text: &str| Some(text.to_owned());
        assert_eq!(
            parsed("https://example.com/o/r.git#v1.2:docs/api"),
            Some((
                "https://example.com/o/r.git".into(),
                some("v1.2"),
                some("docs/api")
            ))
        );
        assert_eq!(
            parsed("http://127.0.0.1:8080/r.git"),
            Some(("http://127.0.0.1:8080/r.git".into(), None, None))
        );
        assert_eq!(
            parsed("git://host/r#main"),
            Some(("git://host/r".into(), some("main"), None))
        );
        // No ref: HEAD, with a path; a leading slash is the root's.
        assert_eq!(
            parsed("ssh://git@host/r#:/sub"),
            Some(("ssh://git@host/r".into(), None, some("sub")))
        );
        assert_eq!(
            parsed("git@github.com:o/r.git#feature/x"),
            Some(("git@github.com:o/r.git".into(), some("feature/x"), None))
        );
        // Local paths, file:// included, are not Git addresses.
        for local in [
            "./src",
            "/abs/dir",
            "file:///abs/dir",
            "dir#with-hash",
            "C:dir",
            "://x",
        ] {
            assert_eq!(parsed(local), None, "{local}");
        }
    }

    fn refs(entries: &[(&str, &str)], head: Option<&str>) -> GitRefs {
        GitRefs {
            refs: entries
                .iter()
                .map(|(name, sha)| GitRefEntry {
                    name: (*name).into(),
                    sha: (*sha).into(),
                })
                .collect(),
            head_target: head.map(str::to_owned),
        }
    }

    fn sha(n: u8) -> String {
        format!("{n:040x}")
    }

    #[test]
    fn urls_without_a_scheme_mean_https() {
        assert_eq!(normalize_url("github.com/o/r"), "https://github.com/o/r");
        assert_eq!(normalize_url("git@github.com:o/r"), "git@github.com:o/r");
        assert_eq!(normalize_url("file:///srv/r.git"), "file:///srv/r.git");
        assert_eq!(normalize_url("git://127.0.0.1/r"), "git://127.0.0.1/r");
    }

    #[test]
    fn refs_resolve_as_git_checkout_would() {
        let listing = refs(
            &[
                ("HEAD", &sha(1)),
                ("refs/heads/main", &sha(1)),
                ("refs/heads/v1", &sha(2)),
                ("refs/tags/v1", &sha(3)),
                ("refs/tags/v1^{}", &sha(4)),
                ("refs/tags/light", &sha(5)),
            ],
            Some("refs/heads/main"),
        );
        let get = |selector| resolve(&listing, &selector).unwrap();
        assert_eq!(get(RefSelector::Head), ("refs/heads/main".into(), sha(1)));
        assert_eq!(
            get(RefSelector::Branch("v1".into())),
            ("refs/heads/v1".into(), sha(2))
        );
        // An annotated tag resolves to the commit it points at.
        assert_eq!(
            get(RefSelector::Tag("v1".into())),
            ("refs/tags/v1".into(), sha(4))
        );
        // Ambiguous: branches win, as with `git checkout`.
        assert_eq!(
            get(RefSelector::Ref("v1".into())),
            ("refs/heads/v1".into(), sha(2))
        );
        assert_eq!(
            get(RefSelector::Ref("refs/tags/v1".into())),
            ("refs/tags/v1".into(), sha(3))
        );
        assert_eq!(
            get(RefSelector::Ref("light".into())),
            ("refs/tags/light".into(), sha(5))
        );
        let error = resolve(&listing, &RefSelector::Branch("nope".into())).unwrap_err();
        assert!(error.to_string().contains("branch \"nope\""), "{error}");
    }

    #[test]
    fn latest_version_is_the_highest_semver_tag() {
        let listing = refs(
            &[
                ("refs/tags/v1.2.0", &sha(1)),
                ("refs/tags/v1.10.0", &sha(2)),
                ("refs/tags/v2.0.0-rc.1", &sha(3)),
                ("refs/tags/v1.9", &sha(4)),
                ("refs/tags/release", &sha(5)),
                ("refs/tags/v01.0.0", &sha(6)),
            ],
            None,
        );
        assert_eq!(
            resolve(&listing, &RefSelector::LatestVersion).unwrap(),
            ("refs/tags/v2.0.0-rc.1".into(), sha(3))
        );
        let stable = refs(
            &[
                ("refs/tags/v1.2.0", &sha(1)),
                ("refs/tags/v1.10.0", &sha(2)),
            ],
            None,
        );
        assert_eq!(
            resolve(&stable, &RefSelector::LatestVersion).unwrap().1,
            sha(2)
        );
        let none = refs(&[("refs/tags/release", &sha(1))], None);
        let error = resolve(&none, &RefSelector::LatestVersion).unwrap_err();
        assert!(
            error.to_string().contains("no valid semver tags"),
            "{error}"
        );
    }

    #[test]
    fn semver_orders_prereleases_before_releases() {
        let v = |tag| Semver::parse(tag).unwrap();
        assert!(v("v1.0.0-alpha") < v("v1.0.0-alpha.1"));
        assert!(v("v1.0.0-alpha.1") < v("v1.0.0-beta"));
        assert!(v("v1.0.0-beta.2") < v("v1.0.0-beta.11"));
        assert!(v("v1.0.0-rc.1") < v("v1.0.0"));
        assert!(v("v1") == v("v1.0.0"));
        assert!(Semver::parse("1.0.0").is_none());
        assert!(Semver::parse("v1.0.0-").is_none());
    }

    #[test]
    fn patterns_match_the_tail_of_ref_names() {
        let listing = refs(
            &[
                ("refs/heads/main", &sha(1)),
                ("refs/heads/feature/x", &sha(2)),
                ("refs/tags/v1", &sha(3)),
                ("refs/tags/v1^{}", &sha(4)),
                ("refs/tags/other", &sha(5)),
            ],
            None,
        );
        assert_eq!(short_names(&listing, "refs/tags/", &[]), ["v1", "other"]);
        assert_eq!(short_names(&listing, "refs/tags/", &["v*".into()]), ["v1"]);
        assert_eq!(
            short_names(&listing, "refs/tags/", &["refs/tags/o*".into()]),
            ["other"]
        );
        assert_eq!(
            short_names(&listing, "refs/heads/", &["x".into()]),
            ["feature/x"]
        );
    }
}
