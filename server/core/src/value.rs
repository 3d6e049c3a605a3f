//! What nodes evaluate to. Every value carries a content `key`: the digest
//! that cache keys downstream are computed from (see `ops/mod.rs`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Domain, Encoder};
use crate::envfile::EnvFile;
use crate::error::{Error, Result};
use crate::lookup::Stat;
use crate::runtime::ImageConfig;
use crate::text::expand_vars;
use crate::tree::{self, Entry, Owner, Tree};

/// The type of object a node evaluates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    Container,
    Directory,
    File,
    Secret,
    CacheVolume,
    Service,
    Socket,
    GitRepository,
    GitRef,
    Changeset,
    EnvFile,
    JsonValue,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Container => "Container",
            Kind::Directory => "Directory",
            Kind::File => "File",
            Kind::Secret => "Secret",
            Kind::CacheVolume => "CacheVolume",
            Kind::Service => "Service",
            Kind::Socket => "Socket",
            Kind::GitRepository => "GitRepository",
            Kind::GitRef => "GitRef",
            Kind::Changeset => "Changeset",
            Kind::EnvFile => "EnvFile",
            Kind::JsonValue => "JSONValue",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [
            Kind::Container,
            Kind::Directory,
            Kind::File,
            Kind::Secret,
            Kind::CacheVolume,
            Kind::Service,
            Kind::Socket,
            Kind::GitRepository,
            Kind::GitRef,
            Kind::Changeset,
            Kind::EnvFile,
            Kind::JsonValue,
        ]
        .into_iter()
        .find(|kind| kind.name() == name)
    }
}

/// How concurrent execs share a cache volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Sharing {
    #[default]
    Shared,
    Private,
    Locked,
}

impl Sharing {
    /// How the sharing mode is written into encodings.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Sharing::Shared => "shared",
            Sharing::Private => "private",
            Sharing::Locked => "locked",
        }
    }
}

/// A root filesystem: an image plus layers of content not yet committed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rootfs {
    pub(crate) image_id: Option<String>,
    pub(crate) layers: Vec<Layer>,
}

#[derive(Debug, Clone)]
pub(crate) struct Layer {
    /// Absolute directory the tree is unpacked into.
    pub(crate) dest: String,
    pub(crate) tree: Arc<Tree>,
}

#[derive(Debug, Clone)]
pub(crate) enum MountSource {
    Directory {
        tree: Arc<Tree>,
        read_only: bool,
    },
    File(Arc<FileValue>),
    Cache {
        volume: String,
        sharing: Sharing,
        source: Option<Arc<Tree>>,
        /// Given the volume's directory when it is first created.
        owner: Option<Owner>,
    },
    /// A tmpfs (`size` in bytes, the runtime's default when `None`).
    Temp {
        size: Option<u64>,
    },
    /// The secret's node digest; its value is looked up only at exec time.
    Secret {
        secret: Digest,
        mode: u32,
        owner: Owner,
    },
    /// A Unix socket of the engine's host (`withUnixSocket`).
    Socket {
        host_path: String,
    },
}

impl MountSource {
    /// What kind of mount this is, for errors.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            MountSource::Directory { .. } => "directory",
            MountSource::File(_) => "file",
            MountSource::Cache { .. } => "cache volume",
            MountSource::Temp { .. } => "temporary directory",
            MountSource::Secret { .. } => "secret",
            MountSource::Socket { .. } => "Unix socket",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Mount {
    /// Absolute path in the container.
    pub path: String,
    pub(crate) source: MountSource,
}

/// The recorded outcome of a `withExec`, as cached (output already scrubbed
/// of secret values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRecord {
    pub image_id: String,
    pub cmd: Vec<String>,
    pub stdout: String,
    pub stderr: String,
    /// Both streams interleaved as written (scrubbed too); `None` in
    /// records written before it was kept: stdout then stderr stands in.
    #[serde(default)]
    pub combined: Option<String>,
    pub exit_code: i64,
    /// The contents each writable directory mount (by path) had after the
    /// command, as stored trees (`host::load_tree`).
    #[serde(default)]
    pub mounts: Vec<(String, Digest)>,
}

#[derive(Debug, Clone, Default)]
pub struct ContainerState {
    pub key: Option<Digest>,
    pub config: ImageConfig,
    pub(crate) rootfs: Rootfs,
    pub exec: Option<Arc<ExecRecord>>,
    /// Set only directly after `from`.
    pub image_ref: Option<String>,
    pub mounts: Vec<Mount>,
    /// Environment variables whose values come from secrets (node digests).
    pub(crate) secret_env: Vec<(String, Digest)>,
    /// Registry address → (username, secret node digest).
    pub(crate) registry_auth: Vec<(String, String, Digest)>,
    /// Exposed ports, in the order they were added.
    pub ports: Vec<PortSpec>,
    /// Services this container's execs reach, by alias.
    pub services: Vec<ServiceBinding>,
    /// Whether `withDefaultArgs` set the default args (then `asService`
    /// runs them without the entrypoint unless asked to).
    pub(crate) default_args_set: bool,
    /// Variables execs see that are in no cache key
    /// (`withVolatileVariable`); never in the image configuration.
    pub volatile_env: Vec<(String, String)>,
    /// OCI annotations for the image manifest (`withAnnotation`).
    pub annotations: std::collections::BTreeMap<String, String>,
    /// What `terminal` runs when not told (`withDefaultTerminalCmd`);
    /// empty: `sh`.
    pub default_terminal_cmd: Vec<String>,
    /// Whether that default command runs with every root capability
    /// (`withDefaultTerminalCmd(insecureRootCapabilities: true)`).
    pub default_terminal_privileged: bool,
    /// Whether it gets a nested session
    /// (`withDefaultTerminalCmd(experimentalPrivilegedNesting: true)`).
    pub default_terminal_nesting: bool,
}

impl ContainerState {
    /// The working directory, `/` when unset.
    pub fn workdir(&self) -> String {
        if self.config.workdir.is_empty() {
            "/".into()
        } else {
            self.config.workdir.clone()
        }
    }

    /// A path argument, `$VAR` expanded from the environment when asked.
    pub(crate) fn path_arg(&self, path: &str, expand: bool) -> String {
        if expand {
            expand_vars(path, &self.config.env)
        } else {
            path.to_owned()
        }
    }

    /// A copy of this state with content key `key`, changed by `change`:
    /// how most container ops derive their value from their parent's.
    pub(crate) fn derive(
        &self,
        key: Digest,
        change: impl FnOnce(&mut ContainerState) -> Result<()>,
    ) -> Result<Value> {
        let mut state = self.clone();
        state.key = Some(key);
        change(&mut state)?;
        Ok(Value::Container(Arc::new(state)))
    }

    /// The mount `path` (absolute) is at or under, the deepest one, and the
    /// path inside it ("" for the mount point itself).
    pub(crate) fn mount_at(&self, path: &str) -> Option<(usize, String)> {
        self.mounts
            .iter()
            .enumerate()
            .filter_map(|(index, mount)| {
                let inner = if path == mount.path {
                    ""
                } else {
                    path.strip_prefix(mount.path.as_str())?
                        .strip_prefix('/')
                        .or_else(|| (mount.path == "/").then(|| path.trim_start_matches('/')))?
                };
                Some((index, inner.to_owned()))
            })
            .max_by_key(|(index, _)| self.mounts[*index].path.len())
    }

    /// A copy with `source` mounted at `path` (relative to the workdir),
    /// replacing whatever was mounted there.
    pub(crate) fn with_mount(&self, key: Digest, path: &str, source: MountSource) -> Result<Value> {
        let target = tree::absolute(&self.workdir(), path)?;
        self.derive(key, |state| {
            state.mounts.retain(|mount| mount.path != target);
            state.mounts.push(Mount {
                path: target,
                source,
            });
            Ok(())
        })
    }
}

impl ContainerState {
    /// Moves the ports an image config exposes into the container's ports
    /// (after those already there; the image's description-less entries do
    /// not replace ones with descriptions).
    pub(crate) fn adopt_image_ports(&mut self) {
        for exposed in std::mem::take(&mut self.config.exposed_ports) {
            let (number, protocol) = exposed.split_once('/').unwrap_or((&exposed, "tcp"));
            let Ok(port) = number.parse::<u16>() else {
                continue;
            };
            let protocol = if protocol.eq_ignore_ascii_case("udp") {
                Protocol::Udp
            } else {
                Protocol::Tcp
            };
            if !self
                .ports
                .iter()
                .any(|p| p.port == port && p.protocol == protocol)
            {
                self.ports.push(PortSpec {
                    port,
                    protocol,
                    description: None,
                    skip_healthcheck: false,
                });
            }
        }
    }
}

/// A network protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    /// As OCI configs and encodings write it: `tcp`, `udp`.
    pub fn tag(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// An exposed port (`withExposedPort`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub port: u16,
    pub protocol: Protocol,
    pub description: Option<String>,
    /// Not waited for before dependents start.
    pub skip_healthcheck: bool,
}

impl PortSpec {
    /// The OCI config's name for it: `8080/tcp`.
    pub fn oci(&self) -> String {
        format!("{}/{}", self.port, self.protocol.tag())
    }
}

/// A port forward: `frontend` on one side to `backend` on the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortForward {
    /// `None`: the same as the backend (host services) or a free port
    /// (tunnels), as Dagger does.
    pub frontend: Option<u16>,
    pub backend: u16,
    pub protocol: Protocol,
}

/// A service bound into a container under an alias.
#[derive(Debug, Clone)]
pub struct ServiceBinding {
    pub alias: String,
    pub service: Arc<ServiceValue>,
}

/// What a `Service` node evaluates to: what to run, and under which name.
#[derive(Debug, Clone)]
pub struct ServiceValue {
    /// The content key: dependents' cache keys hold it.
    pub key: Digest,
    /// `withHostname`'s, else derived from the key (stable across sessions).
    pub hostname: String,
    pub source: ServiceSource,
}

#[derive(Debug, Clone)]
pub enum ServiceSource {
    /// `asService`: a container and the full command line it runs.
    Container {
        state: Arc<ContainerState>,
        cmd: Vec<String>,
        /// `insecureRootCapabilities`: the runtime's privileged mode, as
        /// `withExec` runs it.
        privileged: bool,
    },
    /// `Host.service`: ports of the engine's host (`host`), reachable from
    /// containers at the service's own address.
    Host {
        host: String,
        forwards: Vec<PortForward>,
    },
    /// `Host.tunnel`: ports of a service, reachable on the engine's host.
    Tunnel {
        upstream: Arc<ServiceValue>,
        forwards: Vec<PortForward>,
    },
}

impl ServiceValue {
    /// The ports a dependent can reach, as far as they are known before
    /// the service runs (a tunnel's are chosen when it starts).
    pub fn ports(&self) -> Vec<PortSpec> {
        match &self.source {
            ServiceSource::Container { state, .. } => state.ports.clone(),
            ServiceSource::Host { forwards, .. } => forwards
                .iter()
                .map(|forward| PortSpec {
                    port: forward.frontend.unwrap_or(forward.backend),
                    protocol: forward.protocol,
                    description: None,
                    skip_healthcheck: false,
                })
                .collect(),
            ServiceSource::Tunnel { .. } => Vec::new(),
        }
    }
}

/// The hostname a service gets unless `withHostname` names it: 13 base32
/// characters of its key (the same service has the same name in every
/// session).
pub(crate) fn host_hash(key: &Digest) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let bytes = hex::decode(key.hex()).expect("a digest's hex decodes");
    let head: [u8; 16] = bytes[..16].try_into().expect("a digest has 32 bytes");
    let mut bits = u128::from_be_bytes(head);
    (0..13)
        .map(|_| {
            let symbol = ALPHABET[(bits >> 123) as usize];
            bits <<= 5;
            char::from(symbol)
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileValue {
    pub name: String,
    pub blob: Digest,
    pub size: u64,
    pub mode: u32,
    pub mtime: u64,
    #[serde(default, skip_serializing_if = "Owner::is_root")]
    pub owner: Owner,
}

impl FileValue {
    /// A new file owned by root.
    pub(crate) fn new(name: String, blob: Digest, size: u64, mode: u32) -> Self {
        Self {
            name,
            blob,
            size,
            mode,
            mtime: 0,
            owner: Owner::ROOT,
        }
    }

    /// The content key: name, contents, mode, mtime and an owner other than
    /// root (left out for root, so keys stay what they were before files
    /// had owners).
    pub fn key(&self) -> Digest {
        let mut encoder = Encoder::new(Domain::File);
        encoder
            .str(&self.name)
            .digest(&self.blob)
            .u64(u64::from(self.mode))
            .u64(self.mtime);
        if !self.owner.is_root() {
            encoder
                .str("owner")
                .u64(u64::from(self.owner.uid))
                .u64(u64::from(self.owner.gid));
        }
        encoder.finish()
    }

    /// `stat` of this file (a regular file, by its name).
    pub fn stat(&self) -> Stat {
        Stat::of(&self.name, &self.entry(None))
    }

    /// The tree entry for this file, with `permissions` instead of its own
    /// mode when given.
    pub(crate) fn entry(&self, permissions: Option<u32>) -> Entry {
        Entry::File {
            blob: self.blob,
            size: self.size,
            mode: permissions.unwrap_or(self.mode),
            mtime: self.mtime,
            owner: self.owner,
        }
    }

    /// The file at `inner` (a normalised path) of `tree`; `shown` is the
    /// path errors name.
    pub(crate) fn in_tree(tree: &Tree, inner: &str, shown: &str) -> Result<FileValue> {
        match tree.get(inner) {
            Some(Entry::File {
                blob,
                size,
                mode,
                mtime,
                owner,
            }) => Ok(FileValue {
                name: Tree::name_of(inner).to_owned(),
                blob: *blob,
                size: *size,
                mode: *mode,
                mtime: *mtime,
                owner: *owner,
            }),
            Some(Entry::Dir { .. }) => Err(Error::IsADirectory { path: shown.into() }),
            Some(Entry::Symlink { target, .. }) => Err(Error::Unsupported {
                message: format!("{shown} is a symlink to {target}; read the target instead"),
            }),
            None => Err(Error::NotFound { path: shown.into() }),
        }
    }
}

#[derive(Clone)]
pub struct SecretValue {
    pub name: String,
    pub plaintext: Arc<str>,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("name", &self.name)
            .field("plaintext", &"***")
            .finish()
    }
}

/// Where a Git repository lives.
#[derive(Debug, Clone)]
pub enum GitSource {
    /// A remote, fetched with `Remote`; credentials are secret node digests.
    Remote {
        url: String,
        username: String,
        token: Option<Digest>,
        header: Option<Digest>,
        ssh_known_hosts: String,
        /// The host path of `sshAuthSocket`'s agent.
        ssh_auth_socket: Option<String>,
        /// `experimentalServiceHost`: the service the URL names, started
        /// for each listing and fetch.
        service: Option<Arc<ServiceValue>>,
    },
    /// A directory holding a repository (`Directory.asGit`).
    Local { tree: Arc<Tree>, key: Digest },
}

/// A Git repository: where it is and how trees come out of it. Evaluating
/// one touches no network; refs are resolved by the `GitRef` nodes.
#[derive(Debug, Clone)]
pub struct GitRepositoryValue {
    /// Content key: the repository node's cache key.
    pub key: Digest,
    pub source: GitSource,
    /// Whether trees keep `.git` (unless `tree(discardGitDir: true)`).
    pub keep_git_dir: bool,
}

impl GitRepositoryValue {
    /// What identifies the repository's contents in keys: its URL, or a
    /// local repository's content key. Never a credential.
    pub(crate) fn identity(&self) -> String {
        match &self.source {
            GitSource::Remote { url, .. } => url.clone(),
            GitSource::Local { key, .. } => key.to_string(),
        }
    }
}

/// A ref resolved to a commit.
#[derive(Debug, Clone)]
pub struct GitRefValue {
    pub repository: Arc<GitRepositoryValue>,
    /// The full ref name (`refs/heads/main`), empty for a bare commit.
    pub name: String,
    /// The commit, in full hex.
    pub commit: String,
    /// Content key: repository identity, commit, name and `.git` policy.
    pub key: Digest,
}

/// The value of any node.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Container(Arc<ContainerState>),
    Directory {
        tree: Arc<Tree>,
        key: Digest,
    },
    File(Arc<FileValue>),
    Secret {
        mac: Digest,
    },
    CacheVolume {
        key: String,
    },
    Service(Arc<ServiceValue>),
    /// A host Unix socket: `key` stands for it in cache keys.
    Socket {
        key: Digest,
        path: String,
    },
    GitRepository(Arc<GitRepositoryValue>),
    GitRef(Arc<GitRefValue>),
    /// Two directories: what a changeset goes from and to.
    Changeset(Arc<ChangesetValue>),
    EnvFile(Arc<EnvFile>),
    Json(Arc<serde_json::Value>),
}

/// A changeset's two sides.
#[derive(Debug, Clone)]
pub struct ChangesetValue {
    pub before: Arc<Tree>,
    pub after: Arc<Tree>,
    /// The content keys of the two sides.
    pub(crate) keys: (Digest, Digest),
}

impl ChangesetValue {
    pub(crate) fn new(before: Arc<Tree>, after: Arc<Tree>) -> Self {
        let keys = (before.key(), after.key());
        Self {
            before,
            after,
            keys,
        }
    }

    fn key(&self) -> Digest {
        let mut encoder = Encoder::new(Domain::Changeset);
        encoder.digest(&self.keys.0).digest(&self.keys.1);
        encoder.finish()
    }
}

impl Value {
    /// A directory value, keyed by its tree's content key.
    pub(crate) fn from_tree(tree: Tree) -> Self {
        let key = tree.key();
        Value::Directory {
            tree: Arc::new(tree),
            key,
        }
    }

    /// A directory value of a tree already shared, whose `Tree::digest` is
    /// `digest`.
    pub(crate) fn from_shared_tree(tree: Arc<Tree>, digest: Digest) -> Self {
        let key = tree.key_with_digest(digest);
        Value::Directory { tree, key }
    }

    /// The content key downstream cache keys are built from.
    pub(crate) fn key(&self) -> Digest {
        match self {
            Value::Container(state) => state.key.expect("every evaluated container has a key"),
            Value::Directory { key, .. } => *key,
            Value::File(file) => file.key(),
            Value::Secret { mac } => *mac,
            Value::CacheVolume { key } => {
                let mut encoder = Encoder::new(Domain::CacheVolume);
                encoder.str(key);
                encoder.finish()
            }
            Value::Service(service) => service.key,
            Value::Socket { key, .. } => *key,
            Value::GitRepository(repository) => repository.key,
            Value::GitRef(reference) => reference.key,
            Value::Changeset(changeset) => changeset.key(),
            Value::EnvFile(file) => {
                let mut encoder = Encoder::new(Domain::EnvFile);
                encoder
                    .strs(&file.variables)
                    .strs(&file.context)
                    .bool(file.expand);
                encoder.finish()
            }
            Value::Json(json) => {
                let mut encoder = Encoder::new(Domain::JsonValue);
                encoder.str(&json.to_string());
                encoder.finish()
            }
        }
    }

    pub(crate) fn kind(&self) -> Kind {
        match self {
            Value::Container(_) => Kind::Container,
            Value::Directory { .. } => Kind::Directory,
            Value::File(_) => Kind::File,
            Value::Secret { .. } => Kind::Secret,
            Value::CacheVolume { .. } => Kind::CacheVolume,
            Value::Service(_) => Kind::Service,
            Value::Socket { .. } => Kind::Socket,
            Value::GitRepository(_) => Kind::GitRepository,
            Value::GitRef(_) => Kind::GitRef,
            Value::Changeset(_) => Kind::Changeset,
            Value::EnvFile(_) => Kind::EnvFile,
            Value::Json(_) => Kind::JsonValue,
        }
    }

    /// The error for this value where a `expected` one was needed.
    fn mismatch(&self, expected: Kind) -> Error {
        Error::WrongIdKind {
            expected: expected.name().into(),
            found: self.kind().name().into(),
        }
    }

    pub(crate) fn container(&self) -> Result<Arc<ContainerState>> {
        match self {
            Value::Container(state) => Ok(state.clone()),
            other => Err(other.mismatch(Kind::Container)),
        }
    }

    /// A directory's tree and content key.
    pub(crate) fn directory(&self) -> Result<(Arc<Tree>, Digest)> {
        match self {
            Value::Directory { tree, key } => Ok((tree.clone(), *key)),
            other => Err(other.mismatch(Kind::Directory)),
        }
    }

    pub(crate) fn file(&self) -> Result<Arc<FileValue>> {
        match self {
            Value::File(file) => Ok(file.clone()),
            other => Err(other.mismatch(Kind::File)),
        }
    }

    pub(crate) fn changeset(&self) -> Result<Arc<ChangesetValue>> {
        match self {
            Value::Changeset(changeset) => Ok(changeset.clone()),
            other => Err(other.mismatch(Kind::Changeset)),
        }
    }

    pub(crate) fn env_file(&self) -> Result<Arc<EnvFile>> {
        match self {
            Value::EnvFile(file) => Ok(file.clone()),
            other => Err(other.mismatch(Kind::EnvFile)),
        }
    }

    pub(crate) fn json(&self) -> Result<Arc<serde_json::Value>> {
        match self {
            Value::Json(json) => Ok(json.clone()),
            other => Err(other.mismatch(Kind::JsonValue)),
        }
    }

    /// A cache volume's name.
    pub(crate) fn cache_volume(&self) -> Result<String> {
        match self {
            Value::CacheVolume { key } => Ok(key.clone()),
            other => Err(other.mismatch(Kind::CacheVolume)),
        }
    }

    pub(crate) fn git_repository(&self) -> Result<Arc<GitRepositoryValue>> {
        match self {
            Value::GitRepository(repository) => Ok(repository.clone()),
            other => Err(other.mismatch(Kind::GitRepository)),
        }
    }

    pub(crate) fn git_ref(&self) -> Result<Arc<GitRefValue>> {
        match self {
            Value::GitRef(reference) => Ok(reference.clone()),
            other => Err(other.mismatch(Kind::GitRef)),
        }
    }

    pub(crate) fn service(&self) -> Result<Arc<ServiceValue>> {
        match self {
            Value::Service(service) => Ok(service.clone()),
            other => Err(other.mismatch(Kind::Service)),
        }
    }

    /// A host socket's path.
    pub(crate) fn socket(&self) -> Result<String> {
        match self {
            Value::Socket { path, .. } => Ok(path.clone()),
            other => Err(other.mismatch(Kind::Socket)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_hashes_are_stable_dns_labels() {
        let name = host_hash(&Digest::of_bytes(b"service"));
        assert_eq!(name.len(), 13);
        assert!(name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)));
        assert_eq!(name, host_hash(&Digest::of_bytes(b"service")));
        assert_ne!(name, host_hash(&Digest::of_bytes(b"other")));
    }
}
