//! The solver: evaluates nodes of the DAG on demand, with three layers of
//! reuse, cheapest first:
//!
//! 1. `values`: every node evaluated in this engine, keyed by node digest.
//!    A re-sent query (SDKs replay whole chains) is answered from here
//!    without touching the store or Docker.
//! 2. The persistent `Store`, keyed by cache key (an op over its inputs'
//!    content keys): exec results and file trees survive restarts.
//! 3. The `Runtime`, only when both miss.
//!
//! Identical work requested concurrently runs once (`InFlight`), and
//! independent inputs are evaluated concurrently. Each op evaluates itself
//! (`ops/`) in a `Context`; the engine owns the DAG and dispatches.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use dashmap::{DashMap, DashSet};
use futures::future::{try_join_all, BoxFuture, FutureExt};
use tracing::{info_span, Instrument};

use crate::context::{Context, EngineOptions};
use crate::digest::Digest;
use crate::envfile::EnvFile;
use crate::error::{Error, Result};
use crate::eval::{Call, Inputs};
use crate::events::{exec_name, EventSink};
use crate::history::{InputKind, StepInput, StepInputs};
use crate::inflight::InFlight;
use crate::launch;
use crate::lookup::Stat;
use crate::oci::ImageFormat;
use crate::ops::{git_listing, stat_container_path, Node, Op, Secret};
use crate::reference::normalize_reference;
use crate::registry_service::RegistryService;
use crate::remote::{GitRefs, Remote};
use crate::runtime::{Runtime, TerminalHost};
use crate::services::{Lease, Services};
use crate::store::{RecordKind, RemoteCache, Store};
use crate::terminal;
use crate::tree::{self, Tree};
use crate::value::{
    ChangesetValue, ContainerState, FileValue, GitRefValue, Kind, PortSpec, SecretValue,
    ServiceSource, ServiceValue, Value,
};

/// A hold on a running service (`Engine::hold_service`); dropping it lets
/// the service stop after its grace period.
pub struct ServiceHold {
    lease: Lease,
}

impl ServiceHold {
    /// The service's ports as reached from where it is held (a tunnel's
    /// host ports).
    pub fn ports(&self) -> &[PortSpec] {
        &self.lease.instance.ports
    }
}

pub struct Engine {
    cx: Context,
    nodes: DashMap<Digest, Arc<Node>>,
    persisted: DashSet<Digest>,
    values: InFlight<Digest, Value, Error>,
    /// The named inputs of exec nodes, by node digest (`step_inputs`).
    steps: DashMap<Digest, Arc<StepInputs>>,
    /// `Directory.digest` and `File.digest` already computed.
    checksums: Arc<crate::checksum::Memo>,
}

/// An op as an input of a step: named, with a digest of what it holds,
/// and whether the walk stops there (a leaf).
fn name_input(op: &Op, value: &Value) -> (StepInput, bool) {
    let input = |kind, name: &str, digest| StepInput {
        kind,
        name: name.to_owned(),
        digest,
        detail: None,
    };
    match (op, value) {
        (Op::WithExec(_), Value::Container(state)) => {
            let cmd = state.exec.as_ref().map(|exec| exec.cmd.clone());
            let name = exec_name(&cmd.unwrap_or_default());
            (input(InputKind::Upstream, &name, value.key()), true)
        }
        (Op::FromImage(from), Value::Container(state)) => {
            let mut named = input(InputKind::Image, &from.address, value.key());
            named.detail.clone_from(&state.image_ref);
            (named, false)
        }
        (Op::HostDirectory(host), _) => {
            let mut name = host.path.clone();
            for (label, patterns) in [("include", &host.include), ("exclude", &host.exclude)] {
                if !patterns.is_empty() {
                    name.push_str(&format!(" ({label} {})", patterns.join(", ")));
                }
            }
            (input(InputKind::HostDirectory, &name, host.content), true)
        }
        (Op::HostFile(host), _) => (input(InputKind::HostFile, &host.path, host.content), true),
        (Op::Secret(secret), _) => (input(InputKind::Secret, &secret.name, secret.mac), true),
        (Op::CacheVolume(volume), _) => (
            input(InputKind::CacheVolume, &volume.key, value.key()),
            true,
        ),
        (Op::WithEnvVariable(env), _) => {
            let digest = Digest::of_bytes(env.value.as_bytes());
            (input(InputKind::Env, &env.name, digest), false)
        }
        _ => (own_fields(op), false),
    }
}

/// Any op as a `Call` input: its tag (and the path or name it acts on),
/// with a digest of its own fields (not its inputs).
fn own_fields(op: &Op) -> StepInput {
    let mut name = op.tag().to_owned();
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(op) {
        let target = ["path", "name", "address"]
            .iter()
            .find_map(|field| fields.get(*field).and_then(serde_json::Value::as_str));
        if let Some(target) = target {
            name.push(' ');
            name.push_str(target);
        }
    }
    let placeholder = Digest::of_bytes(b"");
    StepInput {
        kind: InputKind::Call,
        name,
        digest: op.key_with(&mut |_| placeholder),
        detail: None,
    }
}

impl Engine {
    pub fn new(runtime: Arc<dyn Runtime>, store: Arc<dyn Store>, options: EngineOptions) -> Self {
        Self {
            cx: Context::new(runtime, store, options),
            nodes: DashMap::new(),
            persisted: DashSet::new(),
            values: InFlight::default(),
            steps: DashMap::new(),
            checksums: Arc::default(),
        }
    }

    /// How long a service outlives its last dependent (10 s by default,
    /// as in Dagger).
    pub fn with_service_grace(mut self, grace: std::time::Duration) -> Self {
        self.cx.services = Services::new(grace, self.cx.services.ready_timeout);
        self
    }

    /// How long a starting service may take before its exposed ports accept
    /// connections (5 minutes by default); then its dependents fail.
    pub fn with_service_ready_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.cx.services.ready_timeout = timeout;
        self
    }

    /// Stops every service, releases what the runtime set up for this
    /// engine and writes the records the store still holds (`Store::flush`).
    /// Call once, when the engine stops.
    pub async fn shutdown(&self) {
        self.cx.services.shutdown().await;
        self.cx.runtime.shutdown().await;
        let store = self.cx.store.clone();
        if let Err(error) = tokio::task::spawn_blocking(move || store.flush()).await {
            tracing::warn!(%error, "writing the store's last records failed");
        }
    }

    /// Gives the engine its network client for Git and HTTP sources.
    pub fn with_remote(mut self, remote: Arc<dyn Remote>) -> Self {
        self.cx.remote = remote;
        self
    }

    /// Gives the engine a cache tier shared between machines: exec results
    /// missing locally are looked up there, and new ones offered to it.
    pub fn with_remote_cache(mut self, cache: Arc<dyn RemoteCache>) -> Self {
        self.cx.remote_cache = Some(cache);
        self
    }

    /// Waits until the remote cache (if any) has shared what it was offered.
    pub async fn flush_remote_cache(&self) {
        if let Some(cache) = &self.cx.remote_cache {
            cache.flush().await;
        }
    }

    /// Lends the engine what opens nested sessions (once; later calls are
    /// ignored): `withExec(experimentalPrivilegedNesting: true)` needs it.
    pub fn attach_nesting(&self, sessions: Arc<dyn crate::runtime::NestedSessions>) {
        let _ = self.cx.nesting.set(sessions);
    }

    /// Lends the engine the user's terminal (once; later calls are
    /// ignored): `terminal` fields open their shell there, and with
    /// `debug_failures` (`--interactive`) a failed step first opens a shell
    /// in the state it left.
    pub fn attach_terminal(&self, host: Arc<dyn TerminalHost>, debug_failures: bool) {
        if self.cx.terminal.set(host).is_ok() {
            self.cx
                .debug_failures
                .store(debug_failures, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// `terminal`: opens `cmd` (or the container's default terminal
    /// command, or `sh`) in container `digest`'s state on the user's
    /// terminal and returns when it exits; with every root capability when
    /// `privileged` (`insecureRootCapabilities`). `what` names the field in
    /// errors.
    pub async fn terminal(
        &self,
        digest: Digest,
        cmd: &[String],
        privileged: bool,
        nesting: bool,
        what: &str,
    ) -> Result<()> {
        terminal::check(&self.cx, what)?;
        let state = self.container(digest).await?;
        let privileged = terminal::privileged(&state, cmd, privileged);
        let nesting = terminal::nesting(&state, cmd, nesting);
        let cmd = terminal::command(&state, cmd);
        let title = format!("terminal: {}", cmd.join(" "));
        terminal::open(&self.cx, &state, cmd, privileged, nesting, what, &title).await
    }

    /// `Service.terminal`: opens `cmd` (or the container's default
    /// terminal command, or `sh`) in a new container of the service's
    /// container state (a tunnel's: its upstream's), not inside the running
    /// service, and returns when it exits. A service of the host's ports
    /// has no container: that is an error naming it.
    pub async fn service_terminal(&self, digest: Digest, cmd: &[String]) -> Result<()> {
        const WHAT: &str = "Service.terminal";
        terminal::check(&self.cx, WHAT)?;
        let service = self.service(digest).await?;
        let state = terminal::service_state(&service)?;
        let privileged = terminal::privileged(&state, cmd, false);
        let cmd = terminal::command(&state, cmd);
        let title = format!("terminal (service {}): {}", service.hostname, cmd.join(" "));
        terminal::open(&self.cx, &state, cmd, privileged, false, WHAT, &title).await
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.cx.store
    }

    pub fn events(&self) -> &EventSink {
        &self.cx.events
    }

    /// `text` with every secret value set in this engine masked (`***`), with
    /// the scrubber exec output goes through.
    pub fn scrub_secrets(&self, text: &str) -> String {
        self.cx.secrets.scrub(text)
    }

    // ------------------------------------------------------------------
    // Building the DAG (no evaluation happens here)

    /// Records an operation and returns its node. Cheap: one hash.
    pub fn add(&self, op: impl Into<Op>) -> Arc<Node> {
        let node = Node::new(op);
        self.nodes
            .entry(node.digest)
            .or_insert_with(|| Arc::new(node))
            .clone()
    }

    /// Records a secret: its value stays in memory, its node holds a MAC.
    pub fn set_secret(&self, name: &str, plaintext: &str) -> Arc<Node> {
        self.set_secret_keyed(name, plaintext, None)
    }

    /// Records a secret whose cache identity is `cache_key` when given (as
    /// Dagger's `secret(cacheKey:)`): steps that read it stay cached when
    /// the value changes but the key does not.
    pub fn set_secret_keyed(
        &self,
        name: &str,
        plaintext: &str,
        cache_key: Option<&str>,
    ) -> Arc<Node> {
        let mac = match cache_key {
            Some(key) => self.cx.secrets.mac_of_cache_key(key),
            None => self.cx.secrets.mac(plaintext),
        };
        let node = self.add(Secret {
            name: name.to_owned(),
            mac,
        });
        self.cx.secrets.insert(node.digest, name, plaintext);
        node
    }

    /// A node by digest: from memory, else from its persisted recipe.
    pub fn node(&self, digest: &Digest) -> Result<Arc<Node>> {
        if let Some(node) = self.nodes.get(digest) {
            return Ok(node.clone());
        }
        let unknown = || Error::UnknownId {
            kind: "object".into(),
            id: digest.to_string(),
        };
        let bytes = self
            .cx
            .store
            .get(RecordKind::Recipe, digest)?
            .ok_or_else(unknown)?;
        let op: Op = serde_json::from_slice(&bytes).map_err(|_| unknown())?;
        let node = Node::new(op);
        if node.digest != *digest {
            return Err(unknown());
        }
        self.persisted.insert(*digest);
        Ok(self
            .nodes
            .entry(*digest)
            .or_insert_with(|| Arc::new(node))
            .clone())
    }

    /// A node of an expected kind (for IDs passed as arguments).
    pub fn node_of_kind(&self, digest: &Digest, kind: Kind) -> Result<Arc<Node>> {
        let node = self.node(digest)?;
        if node.kind() != kind {
            return Err(Error::WrongIdKind {
                expected: kind.name().into(),
                found: node.kind().name().into(),
            });
        }
        Ok(node)
    }

    /// Persists the recipe of `digest` and everything it depends on, so its
    /// ID can be loaded after a restart. Called when an ID is handed out.
    pub fn persist(&self, digest: &Digest) -> Result<()> {
        let mut stack = vec![*digest];
        while let Some(current) = stack.pop() {
            if self.persisted.contains(&current) {
                continue;
            }
            let node = self.node(&current)?;
            let json = serde_json::to_vec(&node.op).expect("ops always serialise");
            self.cx.store.put(RecordKind::Recipe, &current, &json)?;
            self.persisted.insert(current);
            stack.extend(node.op.inputs());
        }
        Ok(())
    }

    // ------------------------------------------------------------------
    // Evaluation

    /// Evaluates a node (memoised, single-flight).
    pub(crate) fn evaluate(&self, digest: Digest) -> BoxFuture<'_, Result<Value>> {
        async move {
            if let Some(value) = self.values.get(&digest) {
                return Ok(value);
            }
            let node = self.node(&digest)?;
            self.values.run(digest, || self.compute(node.clone())).await
        }
        .boxed()
    }

    /// Evaluates a node's inputs (concurrently: independent branches run
    /// in parallel), then lets its op evaluate itself. When the op finds an
    /// image it needs gone from the runtime (removed behind gantry's back),
    /// everything memoised with that image is forgotten and the node is
    /// evaluated once more: the steps that made the image run again (their
    /// stored results are checked against the runtime before use too, see
    /// `ops::exec`). An input's own failure is its own to retry.
    async fn compute(&self, node: Arc<Node>) -> Result<Value> {
        let call = self.call(&node).await?;
        match node.op.evaluate(&self.cx, &call).await {
            Err(error) if error.missing_image().is_some() => {
                let image = error.missing_image().unwrap_or_default().to_owned();
                tracing::warn!(%image, node = %node.digest, "an image is gone from the runtime; running the steps that made it again");
                self.values.forget_where(|value| match value {
                    Value::Container(state) => state.rootfs.image_id.as_deref() == Some(&image),
                    _ => false,
                });
                self.cx.forget_image(&image);
                let call = self.call(&node).await?;
                node.op.evaluate(&self.cx, &call).await
            }
            outcome => outcome,
        }
    }

    /// A node's evaluated inputs and cache key.
    async fn call(&self, node: &Node) -> Result<Call> {
        let mut digests = node.op.inputs();
        digests.sort_unstable();
        digests.dedup();
        let values = try_join_all(digests.iter().map(|input| self.evaluate(*input))).await?;
        let inputs = Inputs::new(digests.into_iter().zip(values).collect());
        let key = node.op.key_with(&mut |input| inputs.key(input));
        let step = matches!(node.op, Op::WithExec(_)).then(|| self.step_inputs(node));
        Ok(Call {
            node: node.digest,
            key,
            inputs,
            step,
        })
    }

    /// What exec node `node`'s cache key covers, named for people (see
    /// `history`): a walk of its recipe, parents first, that stops at what
    /// enters a key from outside (images, host reads, secrets) and at
    /// upstream execs, which have inputs of their own. Its inputs must have
    /// been evaluated. Walked once per node.
    fn step_inputs(&self, node: &Node) -> Arc<StepInputs> {
        if let Some(found) = self.steps.get(&node.digest) {
            return found.clone();
        }
        let mut step = StepInputs::default();
        step.inputs.push(own_fields(&node.op));
        let mut base_found = false;
        let mut seen = HashSet::new();
        let mut stack: Vec<Digest> = node.op.inputs().into_iter().rev().collect();
        while let Some(digest) = stack.pop() {
            if !seen.insert(digest) {
                continue;
            }
            let (Ok(input), Some(value)) = (self.node(&digest), self.values.get(&digest)) else {
                continue;
            };
            let (named, leaf) = name_input(&input.op, &value);
            if !base_found && matches!(named.kind, InputKind::Image | InputKind::Upstream) {
                // The first base on the parent chain is the step's image.
                base_found = true;
                step.image = match named.kind {
                    InputKind::Image => Some(named.name.clone()),
                    _ => self.step_inputs(&input).image.clone(),
                };
            }
            step.inputs.push(named);
            if !leaf {
                stack.extend(input.op.inputs().into_iter().rev());
            }
        }
        let step = Arc::new(step);
        self.steps.insert(node.digest, step.clone());
        step
    }

    pub async fn container(&self, digest: Digest) -> Result<Arc<ContainerState>> {
        self.evaluate(digest).await?.container()
    }

    /// A directory's tree and content key.
    pub async fn directory(&self, digest: Digest) -> Result<(Arc<Tree>, Digest)> {
        self.evaluate(digest).await?.directory()
    }

    pub async fn file(&self, digest: Digest) -> Result<Arc<FileValue>> {
        self.evaluate(digest).await?.file()
    }

    pub async fn service(&self, digest: Digest) -> Result<Arc<ServiceValue>> {
        self.evaluate(digest).await?.service()
    }

    /// The handle of a host Unix socket (see `ops::HostUnixSocket`).
    pub fn socket_handle(&self, path: &str, identity: &str) -> Digest {
        self.cx.secrets.socket_handle(path, identity)
    }

    /// Starts a service (if it does not run) and keeps it running until
    /// `stop_service` (`Service.start`).
    pub async fn start_service(&self, digest: Digest) -> Result<()> {
        let service = self.service(digest).await?;
        let lease = launch::start(&self.cx, &service).await?;
        self.cx.services.keep_started(service.key, lease);
        Ok(())
    }

    /// Stops a service now, whoever uses it (`Service.stop`): SIGTERM, or
    /// SIGKILL with `kill`.
    pub async fn stop_service(&self, digest: Digest, kill: bool) -> Result<()> {
        let service = self.service(digest).await?;
        self.cx.services.stop(&service.key, kill).await;
        Ok(())
    }

    /// Starts a service and holds it for as long as the returned hold lives
    /// (`up`, which forwards ports until its client goes away).
    pub async fn hold_service(&self, digest: Digest) -> Result<ServiceHold> {
        let service = self.service(digest).await?;
        let lease = launch::start(&self.cx, &service).await?;
        Ok(ServiceHold { lease })
    }

    /// A service's ports. A tunnel's are chosen when it starts, so asking
    /// starts it (as Dagger does), until `Service.stop`.
    pub async fn service_ports(&self, digest: Digest) -> Result<Vec<PortSpec>> {
        let service = self.service(digest).await?;
        match &service.source {
            ServiceSource::Tunnel { .. } => Ok(self.running_tunnel(&service).await?.ports.clone()),
            _ => Ok(service.ports()),
        }
    }

    /// `Service.endpoint`: `host:port`, or `scheme://host:port`. Without a
    /// port, the first one the service has.
    pub async fn service_endpoint(
        &self,
        digest: Digest,
        port: Option<u16>,
        scheme: &str,
    ) -> Result<String> {
        let service = self.service(digest).await?;
        // An address of a service that cannot run would lead nowhere.
        self.cx.runtime.check_services()?;
        let (host, ports) = match &service.source {
            ServiceSource::Tunnel { .. } => {
                let running = self.running_tunnel(&service).await?;
                (running.hostname.clone(), running.ports.clone())
            }
            _ => (service.hostname.clone(), service.ports()),
        };
        let port = match port {
            Some(port) => port,
            None => ports
                .first()
                .map(|p| p.port)
                .ok_or_else(|| Error::InvalidArgument {
                    message: "Service.endpoint: no port given and the service exposes none \
                          (withExposedPort)"
                        .into(),
                })?,
        };
        Ok(if scheme.is_empty() {
            format!("{host}:{port}")
        } else {
            format!("{scheme}://{host}:{port}")
        })
    }

    /// A tunnel's running instance, started (and kept, as `Service.start`
    /// keeps it) if it does not run: its host ports exist only then.
    async fn running_tunnel(
        &self,
        service: &Arc<ServiceValue>,
    ) -> Result<Arc<crate::services::Instance>> {
        if let Some(instance) = self.cx.services.running(&service.key) {
            return Ok(instance);
        }
        let lease = launch::start(&self.cx, service).await?;
        let instance = lease.instance.clone();
        self.cx.services.keep_started(service.key, lease);
        Ok(instance)
    }

    /// The refs a Git repository lists (one `ls-remote` per engine).
    pub async fn git_refs(&self, repository: Digest) -> Result<Arc<GitRefs>> {
        let repository = self.evaluate(repository).await?.git_repository()?;
        git_listing(&self.cx, &repository).await
    }

    /// A Git ref resolved to its commit.
    pub async fn git_ref(&self, reference: Digest) -> Result<Arc<GitRefValue>> {
        self.evaluate(reference).await?.git_ref()
    }

    pub async fn changeset(&self, digest: Digest) -> Result<Arc<ChangesetValue>> {
        self.evaluate(digest).await?.changeset()
    }

    pub async fn env_file(&self, digest: Digest) -> Result<Arc<EnvFile>> {
        self.evaluate(digest).await?.env_file()
    }

    pub async fn json(&self, digest: Digest) -> Result<Arc<serde_json::Value>> {
        self.evaluate(digest).await?.json()
    }

    /// `stat` of `path` (relative to the workdir) in a container's
    /// filesystem, mounts included; `None` when nothing is there.
    pub async fn container_stat(
        &self,
        digest: Digest,
        path: &str,
        follow: bool,
        expand: bool,
    ) -> Result<Option<Stat>> {
        let state = self.container(digest).await?;
        let target = tree::absolute(&state.workdir(), &state.path_arg(path, expand))?;
        stat_container_path(&self.cx, &state, &target, follow).await
    }

    /// A directory's name as Dagger gives it: the last component of the
    /// path it was taken from (`Directory.directory`, `Container.directory`)
    /// with a trailing `/`, kept through edits; `/` otherwise.
    pub async fn directory_name(&self, digest: Digest) -> Result<String> {
        self.directory(digest).await?;
        let mut node = self.node(&digest)?;
        loop {
            let path = match &node.op {
                Op::Subdirectory(op) => &op.path,
                Op::ContainerDirectory(op) => &op.path,
                op => {
                    let parent = op.inputs().first().copied();
                    match parent.map(|parent| self.node(&parent)).transpose()? {
                        Some(parent)
                            if parent.kind() == Kind::Directory && op.kind() == Kind::Directory =>
                        {
                            node = parent;
                            continue;
                        }
                        _ => return Ok("/".into()),
                    }
                }
            };
            let normalized = tree::normalize(path)?;
            let name = Tree::name_of(&normalized);
            return Ok(if name.is_empty() {
                "/".into()
            } else {
                format!("{name}/")
            });
        }
    }

    /// A secret's value, when this engine holds it.
    pub fn secret(&self, digest: &Digest) -> Result<SecretValue> {
        self.cx
            .secret(digest)
            .map_err(|_| Error::SecretUnavailable {
                name: self
                    .secret_name(digest)
                    .unwrap_or_else(|_| "unknown".into()),
            })
    }

    /// The name of a secret node (no value needed).
    pub fn secret_name(&self, digest: &Digest) -> Result<String> {
        match &self.node_of_kind(digest, Kind::Secret)?.op {
            Op::Secret(secret) => Ok(secret.name.clone()),
            _ => unreachable!("node_of_kind checked the kind"),
        }
    }

    pub fn read_blob(&self, blob: &Digest) -> Result<Vec<u8>> {
        self.cx.store.get_blob(blob)
    }

    /// A blob as a stream (exports of large files).
    pub fn open_blob(&self, blob: &Digest) -> Result<Box<dyn std::io::Read + Send>> {
        self.cx.store.open_blob(blob)
    }

    /// `Directory.digest` as Dagger computes it (`checksum::tree`) of a
    /// tree whose content key (`Tree::key`) is `key`; blocking (reads the
    /// contents not hashed before).
    pub fn directory_checksum(&self, tree: &Tree, key: &Digest) -> Result<Digest> {
        self.checksums
            .tree(&|blob: &_| self.open_blob(blob), tree, key)
    }

    /// The digests `directory_checksum` and `file_checksum` remember, for
    /// what computes some ahead (`host::ReadOptions::checksums`).
    pub fn checksums(&self) -> &Arc<crate::checksum::Memo> {
        &self.checksums
    }

    /// `File.digest` as Dagger computes it (`checksum::file`); blocking.
    pub fn file_checksum(&self, file: &FileValue) -> Result<Digest> {
        self.checksums.file(&|blob: &_| self.open_blob(blob), file)
    }

    /// A container as an image tarball (an OCI layout `docker load` accepts).
    pub async fn image_tarball(
        &self,
        state: &ContainerState,
        format: ImageFormat,
    ) -> Result<Bytes> {
        self.cx.image_tarball(state, format).await
    }

    /// Commits a container as an image named `name` in the runtime's own
    /// image store (`exportImage`: the host's Docker, for the Docker runtime).
    pub async fn export_image(&self, digest: Digest, name: &str) -> Result<()> {
        let state = self.container(digest).await?;
        Context::refuse_annotations(&state)?;
        let spec = self.cx.rootfs_spec(&state.rootfs)?;
        let reference = normalize_reference(name);
        self.cx
            .runtime
            .build_image(&spec, &state.config, &reference)
            .instrument(info_span!("export image", reference = %reference))
            .await?;
        Ok(())
    }

    /// Pushes a container to `address` and returns the reference with its
    /// pushed digest; to a registry running as `registry_service` when
    /// given (`registryService`).
    pub async fn publish(
        &self,
        digest: Digest,
        address: &str,
        registry_service: Option<Digest>,
    ) -> Result<String> {
        let state = self.container(digest).await?;
        let reference = normalize_reference(address);
        let auth = self.cx.registry_auth_for(&state, &reference)?;
        let image_id = self.cx.build_image(&state).await?;
        let registry = match registry_service {
            Some(service) => {
                let service = self.service(service).await?;
                Some(RegistryService::start(&self.cx, &service, &reference).await?)
            }
            None => None,
        };
        // To a registry service: through its loopback forward, under the
        // reference as given.
        let (target, auth) = match &registry {
            Some(registry) => (registry.local(&reference), registry.local_auth(auth)),
            None => (reference.clone(), auth),
        };
        let push = async {
            let pushed = self.cx.runtime.push(&image_id, &target, auth.as_ref());
            Ok(pushed
                .instrument(info_span!("push", reference = %reference))
                .await?)
        };
        let pushed = match &registry {
            Some(registry) => registry.run(&self.cx, &reference, push).await?,
            None => push.await?,
        };
        Ok(format!("{reference}@{pushed}"))
    }
}
