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
//! independent inputs are evaluated concurrently; a semaphore bounds how
//! many containers run at once.

use std::sync::Arc;

use bytes::Bytes;
use dashmap::{DashMap, DashSet};
use futures::future::{try_join_all, BoxFuture, FutureExt};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Semaphore;
use tracing::{debug, info_span, Instrument};

use crate::digest::{Digest, Encoder};
use crate::error::{Error, ExecFailure, Result};
use crate::events::{EventSink, StepState};
use crate::inflight::InFlight;
use crate::mounts::PreparedMounts;
use crate::op::{ExecArgs, Kind, Node, Op, Sharing};
use crate::runtime::{
    ExecSpec, ImageConfig, PulledImage, RegistryAuth, RootfsSpec, Runtime, TarLayer,
};
use crate::store::{step_image_tag, RecordKind, Store};
use crate::text::{expand_vars, scrub_secrets, tail};
use crate::tree::{self, Entry, PathFilter, Tree};
use crate::value::{
    ContainerState, ExecRecord, FileValue, Layer, Mount, MountSource, Owner, Rootfs, SecretValue,
    Value,
};

/// The platform's default `PATH`, filled in at exec time when unset.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The most output an exec error carries per stream.
const ERROR_OUTPUT_CAP: usize = 100 * 1024;

pub struct EngineOptions {
    /// How many containers may run at once.
    pub max_parallel: usize,
    /// Keys secret MACs; persisted so cache keys survive restarts.
    pub secret_key: [u8; 32],
}

pub struct Engine {
    runtime: Arc<dyn Runtime>,
    store: Arc<dyn Store>,
    options: EngineOptions,
    nodes: DashMap<Digest, Arc<Node>>,
    persisted: DashSet<Digest>,
    values: InFlight<Digest, Value, Error>,
    execs: InFlight<Digest, Arc<ExecRecord>, Error>,
    pulls: InFlight<String, PulledImage, Error>,
    builds: InFlight<Digest, String, Error>,
    secrets: DashMap<Digest, SecretValue>,
    exec_slots: Semaphore,
    cache_locks: DashMap<String, Arc<tokio::sync::Mutex<()>>>,
    events: EventSink,
}

impl Engine {
    pub fn new(runtime: Arc<dyn Runtime>, store: Arc<dyn Store>, options: EngineOptions) -> Self {
        let slots = options.max_parallel.max(1);
        Self {
            runtime,
            store,
            options,
            nodes: DashMap::new(),
            persisted: DashSet::new(),
            values: InFlight::default(),
            execs: InFlight::default(),
            pulls: InFlight::default(),
            builds: InFlight::default(),
            secrets: DashMap::new(),
            exec_slots: Semaphore::new(slots),
            cache_locks: DashMap::new(),
            events: EventSink::default(),
        }
    }

    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn events(&self) -> &EventSink {
        &self.events
    }

    // ------------------------------------------------------------------
    // Building the DAG (no evaluation happens here)

    /// Records an operation and returns its node. Cheap: one hash.
    pub fn add(&self, op: Op) -> Arc<Node> {
        let node = Node::new(op);
        self.nodes
            .entry(node.digest)
            .or_insert_with(|| Arc::new(node))
            .clone()
    }

    /// Records a secret: its value stays in memory, its node holds a MAC.
    pub fn set_secret(&self, name: &str, plaintext: &str) -> Arc<Node> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.options.secret_key)
            .expect("HMAC accepts keys of any length");
        mac.update(plaintext.as_bytes());
        let mut encoder = Encoder::new("secretMac");
        encoder.bytes(&mac.finalize().into_bytes());
        let node = self.add(Op::Secret {
            name: name.to_owned(),
            mac: encoder.finish(),
        });
        self.secrets.insert(
            node.digest,
            SecretValue {
                name: name.to_owned(),
                plaintext: Arc::from(plaintext),
            },
        );
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
            self.store.put(RecordKind::Recipe, &current, &json)?;
            self.persisted.insert(current);
            stack.extend(node.op.inputs());
        }
        Ok(())
    }

    // ------------------------------------------------------------------
    // Evaluation

    /// Evaluates a node (memoised, single-flight).
    pub fn evaluate(&self, digest: Digest) -> BoxFuture<'_, Result<Value>> {
        async move {
            if let Some(value) = self.values.get(&digest) {
                return Ok(value);
            }
            let node = self.node(&digest)?;
            self.values.run(digest, || self.compute(node.clone())).await
        }
        .boxed()
    }

    pub async fn container(&self, digest: Digest) -> Result<Arc<ContainerState>> {
        match self.evaluate(digest).await? {
            Value::Container(state) => Ok(state),
            other => Err(kind_mismatch(Kind::Container, &other)),
        }
    }

    pub async fn directory(&self, digest: Digest) -> Result<(Arc<Tree>, Digest)> {
        match self.evaluate(digest).await? {
            Value::Directory { tree, key } => Ok((tree, key)),
            other => Err(kind_mismatch(Kind::Directory, &other)),
        }
    }

    pub async fn file(&self, digest: Digest) -> Result<Arc<FileValue>> {
        match self.evaluate(digest).await? {
            Value::File(file) => Ok(file),
            other => Err(kind_mismatch(Kind::File, &other)),
        }
    }

    /// A secret's value, when this engine holds it.
    pub fn secret(&self, digest: &Digest) -> Result<SecretValue> {
        if let Some(secret) = self.secrets.get(digest) {
            return Ok(secret.clone());
        }
        let name = match self.node(digest).map(|node| node.op.clone()) {
            Ok(Op::Secret { name, .. }) => name,
            _ => "unknown".into(),
        };
        Err(Error::SecretUnavailable { name })
    }

    /// The name of a secret node (no value needed).
    pub fn secret_name(&self, digest: &Digest) -> Result<String> {
        match &self.node_of_kind(digest, Kind::Secret)?.op {
            Op::Secret { name, .. } => Ok(name.clone()),
            _ => unreachable!("node_of_kind checked the kind"),
        }
    }

    pub fn read_blob(&self, blob: &Digest) -> Result<Vec<u8>> {
        self.store.get_blob(blob)
    }

    async fn compute(&self, node: Arc<Node>) -> Result<Value> {
        let op = &node.op;
        // Evaluate inputs concurrently: independent branches run in parallel.
        let inputs =
            try_join_all(op.inputs().into_iter().map(|input| self.evaluate(input))).await?;
        let mut input_keys = inputs.iter().map(Value::key);
        let key = op.key_with(&mut |_| {
            input_keys
                .next()
                .expect("inputs() and encode_with visit the same inputs")
        });
        let mut values = inputs.into_iter();
        let mut next = || values.next().expect("one value per input");
        use Op::*;
        Ok(match op {
            Scratch { platform } => Value::Container(Arc::new(ContainerState {
                key: Some(key),
                platform: platform.clone(),
                ..ContainerState::default()
            })),
            From { address, .. } => {
                let parent = as_container(next())?;
                let auth = self.registry_auth_for(&parent, address)?;
                let pulled = self.pull(address, auth).await?;
                let mut state = (*parent).clone();
                let mut encoder = Encoder::new("fromKey");
                encoder.digest(&key).str(&pulled.image_id);
                state.key = Some(encoder.finish());
                state.config = merge_image_config(&parent.config, &pulled.config);
                state.rootfs = Rootfs {
                    image_id: Some(pulled.image_id.clone()),
                    layers: Vec::new(),
                };
                state.image_ref = Some(pulled.resolved_ref.clone());
                state.exec = None;
                Value::Container(Arc::new(state))
            }
            WithRootfs { .. } => {
                let parent = as_container(next())?;
                let tree = as_tree(next())?;
                self.derive(&parent, key, |state| {
                    state.rootfs = Rootfs {
                        image_id: None,
                        layers: vec![Layer {
                            dest: "/".into(),
                            tree,
                            owner: None,
                        }],
                    };
                    Ok(())
                })?
            }
            WithExec { exec, .. } => {
                let parent = as_container(next())?;
                let record = self.run_exec(&node, &parent, exec, key).await?;
                let mut state = (*parent).clone();
                state.key = Some(key);
                state.rootfs = Rootfs {
                    image_id: Some(record.image_id.clone()),
                    layers: Vec::new(),
                };
                for (path, content) in &record.mounts {
                    let tree = Arc::new(crate::host::load_tree(self.store.as_ref(), content)?);
                    for mount in &mut state.mounts {
                        if mount.path == *path {
                            if let MountSource::Directory { read_only, .. } = mount.source {
                                mount.source = MountSource::Directory {
                                    tree: tree.clone(),
                                    read_only,
                                };
                            }
                        }
                    }
                }
                let workdir = workdir_of(&parent);
                for (path, output) in [
                    (&exec.redirect_stdout, &record.stdout),
                    (&exec.redirect_stderr, &record.stderr),
                ] {
                    if !path.is_empty() {
                        state.rootfs.layers.push(self.file_layer(
                            &tree::absolute(&workdir, path)?,
                            output.as_bytes(),
                            0o644,
                        )?);
                    }
                }
                state.image_ref = None;
                state.exec = Some(record);
                Value::Container(Arc::new(state))
            }
            WithEnvVariable {
                name,
                value,
                expand,
                ..
            } => {
                let parent = as_container(next())?;
                self.derive(&parent, key, |state| {
                    let value = if *expand {
                        expand_vars(value, &state.config.env)
                    } else {
                        value.clone()
                    };
                    set_env(&mut state.config.env, name, value);
                    Ok(())
                })?
            }
            WithoutEnvVariable { name, .. } => {
                let parent = as_container(next())?;
                self.derive(&parent, key, |state| {
                    state.config.env.retain(|(existing, _)| existing != name);
                    state.secret_env.retain(|(existing, _)| existing != name);
                    Ok(())
                })?
            }
            WithSecretVariable { name, secret, .. } => {
                let parent = as_container(next())?;
                let _ = next();
                self.derive(&parent, key, |state| {
                    state.secret_env.retain(|(existing, _)| existing != name);
                    state.secret_env.push((name.clone(), *secret));
                    Ok(())
                })?
            }
            WithWorkdir { path, .. } => {
                let parent = as_container(next())?;
                self.derive(&parent, key, |state| {
                    state.config.workdir = tree::absolute(&workdir_of(state), path)?;
                    Ok(())
                })?
            }
            WithUser { name, .. } => {
                let parent = as_container(next())?;
                self.derive(&parent, key, |state| {
                    state.config.user = name.clone();
                    Ok(())
                })?
            }
            WithEntrypoint {
                args,
                keep_default_args,
                ..
            } => {
                let parent = as_container(next())?;
                self.derive(&parent, key, |state| {
                    state.config.entrypoint = args.clone();
                    if !keep_default_args {
                        state.config.cmd.clear();
                    }
                    Ok(())
                })?
            }
            WithDefaultArgs { args, .. } => {
                let parent = as_container(next())?;
                self.derive(&parent, key, |state| {
                    state.config.cmd = args.clone();
                    Ok(())
                })?
            }
            WithLabel { name, value, .. } => {
                let parent = as_container(next())?;
                self.derive(&parent, key, |state| {
                    state.config.labels.insert(name.clone(), value.clone());
                    Ok(())
                })?
            }
            WithContent {
                path,
                permissions,
                owner,
                include,
                exclude,
                ..
            } => {
                let parent = as_container(next())?;
                let source = next();
                let owner = Owner::parse(owner)?;
                let target = tree::absolute(&workdir_of(&parent), path)?;
                let layer = match source {
                    Value::File(file) => {
                        let (dir, name) = split_parent(&target);
                        let entry = file_entry(&file, *permissions);
                        Layer {
                            dest: dir,
                            tree: Arc::new(Tree::single(&name, entry)?),
                            owner,
                        }
                    }
                    Value::Directory { tree: source, .. } => {
                        let filter = PathFilter::new(include, exclude)?;
                        let mut filtered = Tree::default();
                        filtered.merge_at("", &source, &filter)?;
                        if let Some(mode) = permissions {
                            apply_permissions(&mut filtered, *mode);
                        }
                        Layer {
                            dest: target,
                            tree: Arc::new(filtered),
                            owner,
                        }
                    }
                    other => return Err(kind_mismatch(Kind::Directory, &other)),
                };
                self.derive(&parent, key, |state| {
                    state.rootfs.layers.push(layer);
                    state.image_ref = None;
                    Ok(())
                })?
            }
            WithMountedDirectory {
                path, read_only, ..
            } => {
                let parent = as_container(next())?;
                let tree = as_tree(next())?;
                self.mount(
                    &parent,
                    key,
                    path,
                    MountSource::Directory {
                        tree,
                        read_only: *read_only,
                    },
                )?
            }
            WithMountedFile { path, .. } => {
                let parent = as_container(next())?;
                let file = as_file(next())?;
                self.mount(&parent, key, path, MountSource::File(file))?
            }
            WithMountedCache {
                path,
                sharing,
                owner,
                ..
            } => {
                let parent = as_container(next())?;
                let volume = match next() {
                    Value::CacheVolume { key } => key,
                    other => return Err(kind_mismatch(Kind::CacheVolume, &other)),
                };
                let source = match values.next() {
                    Some(value) => Some(as_tree(value)?),
                    None => None,
                };
                let sharing = sharing.unwrap_or_default();
                let target = tree::absolute(&workdir_of(&parent), path)?;
                // An exec holds a LOCKED (or PRIVATE) volume's lock for its whole
                // run, so the same volume at a second path of one container
                // could only deadlock or break the promise of exclusive use.
                if let Some(other) = parent.mounts.iter().find(|mount| {
                    mount.path != target
                        && matches!(&mount.source, MountSource::Cache { volume: v, sharing: s, .. }
                            if *v == volume && (*s != Sharing::Shared || sharing != Sharing::Shared))
                }) {
                    return Err(Error::InvalidArgument {
                        message: format!(
                            "cache volume {volume:?} is already mounted at {} in this container; a volume with LOCKED or PRIVATE sharing can be mounted only once per container (mount it once, or use SHARED)",
                            other.path
                        ),
                    });
                }
                self.mount(
                    &parent,
                    key,
                    path,
                    MountSource::Cache {
                        volume,
                        sharing,
                        source,
                        owner: Owner::parse(owner)?,
                    },
                )?
            }
            WithMountedTemp { path, size, .. } => {
                let parent = as_container(next())?;
                self.mount(&parent, key, path, MountSource::Temp { size: *size })?
            }
            WithMountedSecret {
                path, secret, mode, ..
            } => {
                let parent = as_container(next())?;
                let _ = next();
                self.mount(
                    &parent,
                    key,
                    path,
                    MountSource::Secret {
                        secret: *secret,
                        mode: *mode,
                    },
                )?
            }
            WithoutMount { path, .. } => {
                let parent = as_container(next())?;
                let target = tree::absolute(&workdir_of(&parent), path)?;
                self.derive(&parent, key, |state| {
                    state.mounts.retain(|mount| mount.path != target);
                    Ok(())
                })?
            }
            WithRegistryAuth {
                address,
                username,
                secret,
                ..
            } => {
                let parent = as_container(next())?;
                let _ = next();
                let host = auth_host(address);
                self.derive(&parent, key, |state| {
                    state
                        .registry_auth
                        .retain(|(existing, _, _)| *existing != host);
                    state
                        .registry_auth
                        .push((host.clone(), username.clone(), *secret));
                    Ok(())
                })?
            }
            WithoutRegistryAuth { address, .. } => {
                let parent = as_container(next())?;
                let host = auth_host(address);
                self.derive(&parent, key, |state| {
                    state
                        .registry_auth
                        .retain(|(existing, _, _)| *existing != host);
                    Ok(())
                })?
            }
            Import { .. } => {
                let file = as_file(next())?;
                let tarball = self.store.get_blob(&file.blob)?;
                let loaded = self.runtime.load_image(Bytes::from(tarball)).await?;
                let mut encoder = Encoder::new("importKey");
                encoder.digest(&key).str(&loaded.image_id);
                Value::Container(Arc::new(ContainerState {
                    key: Some(encoder.finish()),
                    config: loaded.config,
                    rootfs: Rootfs {
                        image_id: Some(loaded.image_id),
                        layers: Vec::new(),
                    },
                    ..ContainerState::default()
                }))
            }

            EmptyDirectory => Value::directory(Tree::default()),
            DirectoryWithNewFile {
                path,
                contents,
                permissions,
                ..
            } => {
                let mut tree = (*as_tree(next())?).clone();
                let blob = self.store.put_blob(contents.as_bytes())?;
                tree.insert(
                    path,
                    Entry::File {
                        blob,
                        size: contents.len() as u64,
                        mode: *permissions,
                        mtime: 0,
                    },
                )?;
                Value::directory(tree)
            }
            DirectoryWithNewDirectory {
                path, permissions, ..
            } => {
                let mut tree = (*as_tree(next())?).clone();
                tree.insert(path, Entry::Dir { mode: *permissions })?;
                Value::directory(tree)
            }
            DirectoryWithFile {
                path, permissions, ..
            } => {
                let mut tree = (*as_tree(next())?).clone();
                let file = as_file(next())?;
                tree.insert(path, file_entry(&file, *permissions))?;
                Value::directory(tree)
            }
            DirectoryWithDirectory {
                path,
                include,
                exclude,
                ..
            } => {
                let mut tree = (*as_tree(next())?).clone();
                let source = as_tree(next())?;
                tree.merge_at(path, &source, &PathFilter::new(include, exclude)?)?;
                Value::directory(tree)
            }
            DirectoryWithoutFile { path, .. } | DirectoryWithoutDirectory { path, .. } => {
                let mut tree = (*as_tree(next())?).clone();
                tree.remove(&tree::normalize(path)?);
                Value::directory(tree)
            }
            DirectoryDiff { .. } => {
                let tree = as_tree(next())?;
                let other = as_tree(next())?;
                Value::directory(tree.diff(&other)?)
            }
            DirectoryWithTimestamps { timestamp, .. } => {
                let mut tree = (*as_tree(next())?).clone();
                let stamp = u64::try_from(*timestamp).unwrap_or(0);
                for entry in tree.entries.values_mut() {
                    if let Entry::File { mtime, .. } = entry {
                        *mtime = stamp;
                    }
                }
                Value::directory(tree)
            }
            Subdirectory { path, .. } => {
                let tree = as_tree(next())?;
                Value::directory(tree.subtree(path)?)
            }
            ContainerDirectory { path, .. } => {
                let container = as_container(next())?;
                let target = tree::absolute(&workdir_of(&container), path)?;
                let tree = self.read_container_path(&container, &target).await?;
                match tree.get(Tree::name_of(&target)) {
                    Some(Entry::Dir { .. }) => {
                        Value::directory(tree.subtree(Tree::name_of(&target))?)
                    }
                    Some(_) => return Err(Error::NotADirectory { path: target }),
                    None if target == "/" => Value::directory((*tree).clone()),
                    None => return Err(Error::NotFound { path: target }),
                }
            }
            ContainerRootfs { .. } => {
                let container = as_container(next())?;
                let tree = self.read_container_path(&container, "/").await?;
                Value::directory((*tree).clone())
            }
            HostDirectory { content, .. } => {
                let tree = crate::host::load_tree(self.store.as_ref(), content)?;
                Value::directory(tree)
            }
            NewFile {
                contents,
                permissions,
            } => {
                let blob = self.store.put_blob(contents.as_bytes())?;
                Value::File(Arc::new(FileValue {
                    name: String::new(),
                    blob,
                    size: contents.len() as u64,
                    mode: *permissions,
                    mtime: 0,
                }))
            }
            DirectoryFile { path, .. } => {
                let tree = as_tree(next())?;
                Value::File(Arc::new(file_in_tree(
                    &tree,
                    &tree::normalize(path)?,
                    path,
                )?))
            }
            ContainerFile { path, .. } => {
                let container = as_container(next())?;
                let target = tree::absolute(&workdir_of(&container), path)?;
                let tree = self.read_container_path(&container, &target).await?;
                Value::File(Arc::new(file_in_tree(
                    &tree,
                    Tree::name_of(&target),
                    &target,
                )?))
            }
            FileWithName { name, .. } => {
                let mut file = (*as_file(next())?).clone();
                file.name = name.clone();
                Value::File(Arc::new(file))
            }
            FileWithTimestamps { timestamp, .. } => {
                let mut file = (*as_file(next())?).clone();
                file.mtime = u64::try_from(*timestamp).unwrap_or(0);
                Value::File(Arc::new(file))
            }
            HostFile { path, content } => {
                let tree = crate::host::load_tree(self.store.as_ref(), content)?;
                let name = Tree::name_of(path).to_owned();
                Value::File(Arc::new(file_in_tree(&tree, &name, path)?))
            }
            AsTarball { .. } => {
                let container = as_container(next())?;
                let tarball = self.image_tarball(&container).await?;
                let blob = self.store.put_blob(&tarball)?;
                Value::File(Arc::new(FileValue {
                    name: "image.tar".into(),
                    blob,
                    size: tarball.len() as u64,
                    mode: 0o644,
                    mtime: 0,
                }))
            }
            Secret { name, mac } => Value::Secret {
                name: name.clone(),
                mac: *mac,
            },
            CacheVolume { key } => Value::CacheVolume { key: key.clone() },
        })
    }

    fn derive(
        &self,
        parent: &ContainerState,
        key: Digest,
        change: impl FnOnce(&mut ContainerState) -> Result<()>,
    ) -> Result<Value> {
        let mut state = parent.clone();
        state.key = Some(key);
        change(&mut state)?;
        Ok(Value::Container(Arc::new(state)))
    }

    fn mount(
        &self,
        parent: &ContainerState,
        key: Digest,
        path: &str,
        source: MountSource,
    ) -> Result<Value> {
        let target = tree::absolute(&workdir_of(parent), path)?;
        self.derive(parent, key, |state| {
            state.mounts.retain(|mount| mount.path != target);
            state.mounts.push(Mount {
                path: target,
                source,
            });
            Ok(())
        })
    }

    fn file_layer(&self, path: &str, contents: &[u8], mode: u32) -> Result<Layer> {
        let (dir, name) = split_parent(path);
        let blob = self.store.put_blob(contents)?;
        let entry = Entry::File {
            blob,
            size: contents.len() as u64,
            mode,
            mtime: 0,
        };
        Ok(Layer {
            dest: dir,
            tree: Arc::new(Tree::single(&name, entry)?),
            owner: None,
        })
    }

    /// Pulls an image once per engine and set of credentials: the tag is
    /// pinned to the digest it resolved to for as long as this engine runs.
    /// The credentials are part of the key so that a pull that succeeded
    /// with one password does not vouch for another (or for none).
    async fn pull(&self, address: &str, auth: Option<RegistryAuth>) -> Result<PulledImage> {
        let runtime = self.runtime.clone();
        let address_owned = address.to_owned();
        let mut key = address.to_owned();
        if let Some(auth) = &auth {
            let mut mac = Hmac::<Sha256>::new_from_slice(&self.options.secret_key)
                .expect("HMAC accepts keys of any length");
            for part in [&auth.server, &auth.username, &auth.password] {
                mac.update(&(part.len() as u64).to_be_bytes());
                mac.update(part.as_bytes());
            }
            key.push_str(&format!(
                "#auth:{}",
                hex::encode(mac.finalize().into_bytes())
            ));
        }
        self.pulls
            .run(key, || async move {
                let span = info_span!("pull", image = %address_owned);
                let step = Digest::of_bytes(address_owned.as_bytes());
                let name = || format!("pull {address_owned}");
                self.events.emit(&step, name(), StepState::Running, None);
                let pulled = runtime
                    .pull(&address_owned, auth.as_ref())
                    .instrument(span)
                    .await
                    .map_err(Error::from);
                match &pulled {
                    Ok(_) => self.events.emit(&step, name(), StepState::Done, None),
                    Err(error) => {
                        let detail = Some(error.to_string());
                        self.events.emit(&step, name(), StepState::Failed, detail);
                    }
                }
                pulled
            })
            .await
    }

    fn registry_auth_for(
        &self,
        state: &ContainerState,
        address: &str,
    ) -> Result<Option<RegistryAuth>> {
        let host = registry_host(address);
        match state
            .registry_auth
            .iter()
            .find(|(server, _, _)| *server == host)
        {
            None => Ok(None),
            Some((server, username, secret)) => {
                let secret = self.secret(secret)?;
                Ok(Some(RegistryAuth {
                    server: server.clone(),
                    username: username.clone(),
                    password: secret.plaintext.to_string(),
                }))
            }
        }
    }

    /// Runs (or recalls) one exec. Failures are returned as errors and never
    /// cached; allowed outcomes are cached persistently under `key`.
    async fn run_exec(
        &self,
        node: &Node,
        parent: &ContainerState,
        exec: &ExecArgs,
        key: Digest,
    ) -> Result<Arc<ExecRecord>> {
        let cmd = command_line(parent, exec)?;
        if !exec.stdin.is_empty() && !exec.redirect_stdin.is_empty() {
            return Err(Error::InvalidArgument {
                message: "cannot set both stdin and redirectStdin".into(),
            });
        }
        if let Some(bytes) = self.store.get(RecordKind::Exec, &key)? {
            if let Ok(record) = serde_json::from_slice::<ExecRecord>(&bytes) {
                debug!(%key, "exec cache hit");
                self.events
                    .step(&node.digest, &cmd, StepState::Cached, None);
                return Ok(Arc::new(record));
            }
        }
        self.execs
            .run(key, || async {
                let stdin = if !exec.redirect_stdin.is_empty() {
                    let path = tree::absolute(&workdir_of(parent), &exec.redirect_stdin)?;
                    let tree = self.read_container_path(parent, &path).await?;
                    let file = file_in_tree(&tree, Tree::name_of(&path), &path)?;
                    Some(Bytes::from(self.store.get_blob(&file.blob)?))
                } else if !exec.stdin.is_empty() {
                    Some(Bytes::from(exec.stdin.clone()))
                } else {
                    None
                };
                let secrets = self.attached_secrets(parent)?;
                let _locks = self.lock_cache_volumes(parent).await;
                let mounts = PreparedMounts::prepare(self, parent, &secrets)?;
                let mut env: Vec<String> = parent
                    .config
                    .env
                    .iter()
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect();
                if !parent.config.env.iter().any(|(name, _)| name == "PATH") {
                    env.push(format!("PATH={DEFAULT_PATH}"));
                }
                let mut secret_env = Vec::new();
                for (name, secret) in &parent.secret_env {
                    let value = self.secret(secret)?;
                    // A secret variable overrides a plain one of the same name.
                    env.retain(|entry| entry.split_once('=').map(|(n, _)| n) != Some(name));
                    secret_env.push(format!("{name}={}", value.plaintext));
                }
                let spec = ExecSpec {
                    rootfs: self.rootfs_spec(&parent.rootfs)?,
                    args: cmd.clone(),
                    env,
                    secret_env,
                    workdir: workdir_of(parent),
                    user: parent.config.user.clone(),
                    stdin,
                    mounts: mounts.binds.clone(),
                    tmpfs: mounts.tmpfs.clone(),
                    labels: [("dev.gantry.step".to_owned(), key.hex())].into(),
                    commit_tag: step_image_tag(&key),
                };
                let _slot = self
                    .exec_slots
                    .acquire()
                    .await
                    .expect("the exec semaphore is never closed");
                self.events
                    .step(&node.digest, &cmd, StepState::Running, None);
                let output = self
                    .runtime
                    .exec(spec)
                    .instrument(info_span!("exec", %key))
                    .await;
                // What the command left in writable directory mounts, read
                // back before the scratch copies go.
                let mount_trees = match &output {
                    Ok(_) => mounts.read_back(self),
                    Err(_) => Ok(Vec::new()),
                };
                drop(mounts);
                let (output, mount_trees) = match (output, mount_trees) {
                    (Ok(output), Ok(trees)) => (output, trees),
                    (Err(error), _) => {
                        self.events
                            .step(&node.digest, &cmd, StepState::Failed, None);
                        return Err(error.into());
                    }
                    (_, Err(error)) => {
                        self.events
                            .step(&node.digest, &cmd, StepState::Failed, None);
                        return Err(error);
                    }
                };
                let plaintexts: Vec<&str> = secrets.iter().map(|s| &*s.plaintext).collect();
                let record = ExecRecord {
                    image_id: output.image_id,
                    cmd: cmd.clone(),
                    stdout: scrub_secrets(&String::from_utf8_lossy(&output.stdout), &plaintexts),
                    stderr: scrub_secrets(&String::from_utf8_lossy(&output.stderr), &plaintexts),
                    exit_code: output.exit_code,
                    mounts: mount_trees,
                };
                if !exec.expect.allows(record.exit_code) {
                    self.events.step(
                        &node.digest,
                        &cmd,
                        StepState::Failed,
                        // The tail of stderr, or of stdout when stderr is empty.
                        Some(tail(
                            if record.stderr.trim().is_empty() {
                                &record.stdout
                            } else {
                                &record.stderr
                            },
                            2000,
                        )),
                    );
                    return Err(Error::Exec(Box::new(ExecFailure {
                        cmd: record.cmd,
                        exit_code: record.exit_code,
                        stdout: tail(&record.stdout, ERROR_OUTPUT_CAP),
                        stderr: tail(&record.stderr, ERROR_OUTPUT_CAP),
                    })));
                }
                let json = serde_json::to_vec(&record).expect("records always serialise");
                self.store.put(RecordKind::Exec, &key, &json)?;
                self.events.step(&node.digest, &cmd, StepState::Done, None);
                Ok(Arc::new(record))
            })
            .await
    }

    fn attached_secrets(&self, state: &ContainerState) -> Result<Vec<SecretValue>> {
        let mut out = Vec::new();
        for (_, secret) in &state.secret_env {
            out.push(self.secret(secret)?);
        }
        for mount in &state.mounts {
            if let MountSource::Secret { secret, .. } = &mount.source {
                out.push(self.secret(secret)?);
            }
        }
        Ok(out)
    }

    /// Holds the locks of every LOCKED/PRIVATE cache volume the exec mounts,
    /// in a fixed order so two execs can never deadlock on each other.
    async fn lock_cache_volumes(
        &self,
        state: &ContainerState,
    ) -> Vec<tokio::sync::OwnedMutexGuard<()>> {
        let mut volumes: Vec<&str> = state
            .mounts
            .iter()
            .filter_map(|mount| match &mount.source {
                MountSource::Cache {
                    volume, sharing, ..
                } if *sharing != Sharing::Shared => Some(volume.as_str()),
                _ => None,
            })
            .collect();
        volumes.sort_unstable();
        volumes.dedup();
        let mut guards = Vec::new();
        for volume in volumes {
            let lock = self
                .cache_locks
                .entry(volume.to_owned())
                .or_default()
                .clone();
            guards.push(lock.lock_owned().await);
        }
        guards
    }

    pub(crate) fn rootfs_spec(&self, rootfs: &Rootfs) -> Result<RootfsSpec> {
        let layers = rootfs
            .layers
            .iter()
            .map(|layer| {
                Ok(TarLayer {
                    dest: layer.dest.clone(),
                    tar: Bytes::from(layer.tree.to_tar(self.store.as_ref(), layer.owner)?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RootfsSpec {
            image_id: rootfs.image_id.clone(),
            layers,
        })
    }

    /// Reads `path` (absolute) from a container's filesystem as a tree that
    /// holds one entry named after the path's last component (the whole
    /// filesystem for `/`). Cached persistently per container state and path.
    async fn read_container_path(&self, state: &ContainerState, path: &str) -> Result<Arc<Tree>> {
        if let Some(mount) = state
            .mounts
            .iter()
            .find(|mount| path == mount.path || path.starts_with(&format!("{}/", mount.path)))
        {
            return match &mount.source {
                MountSource::Directory { tree, .. } => {
                    let inner = tree::normalize(&path[mount.path.len()..])?;
                    let mut out = Tree::default();
                    if inner.is_empty() {
                        out.merge_at(Tree::name_of(path), tree, &PathFilter::default())?;
                    } else {
                        let name = Tree::name_of(path);
                        match tree.get(&inner) {
                            Some(Entry::Dir { .. }) => {
                                out.merge_at(name, &tree.subtree(&inner)?, &PathFilter::default())?
                            }
                            Some(entry) => out.insert(name, entry.clone())?,
                            None => return Err(Error::NotFound { path: path.into() }),
                        }
                    }
                    Ok(Arc::new(out))
                }
                MountSource::File(file) => {
                    Ok(Arc::new(Tree::single(Tree::name_of(path), file_entry(file, None))?))
                }
                _ => Err(Error::InvalidArgument {
                    message: format!(
                        "{path} is under a cache, temporary or secret mount, whose contents are not part of the container"
                    ),
                }),
            };
        }
        let mut encoder = Encoder::new("readPath");
        encoder
            .digest(&state.key.expect("evaluated containers have keys"))
            .str(path);
        let read_key = encoder.finish();
        if let Some(bytes) = self.store.get(RecordKind::PathRead, &read_key)? {
            if let Ok(tree) = serde_json::from_slice::<Tree>(&bytes) {
                // Reported like the copy out of a container it saves.
                if state.rootfs.image_id.is_some() {
                    let name = format!("read {path}");
                    self.events.emit(&read_key, name, StepState::Cached, None);
                }
                return Ok(Arc::new(tree));
            }
        }
        let tree = if state.rootfs.image_id.is_none() {
            // No image: the filesystem is exactly the layers.
            let mut whole = Tree::default();
            for layer in &state.rootfs.layers {
                whole.merge_at(&layer.dest, &layer.tree, &PathFilter::default())?;
            }
            if path == "/" {
                whole
            } else {
                let inner = tree::normalize(path)?;
                let name = Tree::name_of(path);
                let mut out = Tree::default();
                match whole.get(&inner) {
                    Some(Entry::Dir { .. }) => {
                        out.merge_at(name, &whole.subtree(&inner)?, &PathFilter::default())?
                    }
                    Some(entry) => out.insert(name, entry.clone())?,
                    None => return Err(Error::NotFound { path: path.into() }),
                }
                out
            }
        } else {
            let spec = self.rootfs_spec(&state.rootfs)?;
            let name = || format!("read {path}");
            self.events
                .emit(&read_key, name(), StepState::Running, None);
            let tar = self
                .runtime
                .read_path(&spec, path)
                .await
                .map_err(|error| match error {
                    crate::runtime::RuntimeError::PathNotFound { .. } => {
                        Error::NotFound { path: path.into() }
                    }
                    other => other.into(),
                });
            let outcome = if tar.is_ok() {
                StepState::Done
            } else {
                StepState::Failed
            };
            self.events.emit(&read_key, name(), outcome, None);
            let tar = tar?;
            let tree = Tree::from_tar(&tar, self.store.as_ref())?;
            if path == "/" {
                tree
            } else {
                // The runtime gives a directory's entries relative to `path`,
                // starting with a `./` root entry; a file comes back as one
                // entry with its own name.
                let name = Tree::name_of(path);
                if !tar_starts_with_root_dir(&tar) {
                    tree
                } else {
                    let mut out = Tree::default();
                    out.merge_at(name, &tree, &PathFilter::default())?;
                    out
                }
            }
        };
        let json = serde_json::to_vec(&tree).expect("trees always serialise");
        self.store.put(RecordKind::PathRead, &read_key, &json)?;
        Ok(Arc::new(tree))
    }

    /// Commits a container's filesystem and config as an image (once per
    /// container state) and returns the image ID.
    pub async fn build_image(&self, state: &ContainerState) -> Result<String> {
        let key = state.key.expect("evaluated containers have keys");
        self.builds
            .run(key, || async {
                let spec = self.rootfs_spec(&state.rootfs)?;
                let mut config = state.config.clone();
                config
                    .labels
                    .entry("dev.gantry.managed".into())
                    .or_insert_with(|| "true".into());
                Ok(self
                    .runtime
                    .build_image(&spec, &config, &image_tag(&key))
                    .await?)
            })
            .await
    }

    /// A container as an image tarball that `docker load` accepts. It is
    /// saved under the name `build_image` tagged it with (an image ID cannot
    /// serve as a name), which `docker load` restores.
    pub async fn image_tarball(&self, state: &ContainerState) -> Result<Bytes> {
        let image_id = self.build_image(state).await?;
        let key = state.key.expect("evaluated containers have keys");
        Ok(self.runtime.save_image(&image_id, &image_tag(&key)).await?)
    }

    /// Pushes a container to `address` and returns the reference with its
    /// pushed digest.
    pub async fn publish(&self, digest: Digest, address: &str) -> Result<String> {
        let state = self.container(digest).await?;
        let reference = normalize_reference(address);
        let auth = self.registry_auth_for(&state, &reference)?;
        let image_id = self.build_image(&state).await?;
        let pushed = self
            .runtime
            .push(&image_id, &reference, auth.as_ref())
            .instrument(info_span!("push", reference = %reference))
            .await?;
        Ok(format!("{reference}@{pushed}"))
    }
}

/// The local tag of the image built from a container state with `key`.
fn image_tag(key: &Digest) -> String {
    format!("gantry.local/image:{}", key.hex())
}

/// Whether a tar archive's first entry is its root directory (`./`).
fn tar_starts_with_root_dir(tar: &[u8]) -> bool {
    let mut archive = tar::Archive::new(tar);
    let Ok(mut entries) = archive.entries() else {
        return false;
    };
    match entries.next() {
        Some(Ok(entry)) => {
            entry.header().entry_type().is_dir()
                && entry
                    .path()
                    .map(|path| {
                        tree::normalize(&path.to_string_lossy()).is_ok_and(|p| p.is_empty())
                    })
                    .unwrap_or(false)
        }
        _ => false,
    }
}

fn kind_mismatch(expected: Kind, found: &Value) -> Error {
    let found = match found {
        Value::Container(_) => Kind::Container,
        Value::Directory { .. } => Kind::Directory,
        Value::File(_) => Kind::File,
        Value::Secret { .. } => Kind::Secret,
        Value::CacheVolume { .. } => Kind::CacheVolume,
    };
    Error::WrongIdKind {
        expected: expected.name().into(),
        found: found.name().into(),
    }
}

fn as_container(value: Value) -> Result<Arc<ContainerState>> {
    match value {
        Value::Container(state) => Ok(state),
        other => Err(kind_mismatch(Kind::Container, &other)),
    }
}

fn as_tree(value: Value) -> Result<Arc<Tree>> {
    match value {
        Value::Directory { tree, .. } => Ok(tree),
        other => Err(kind_mismatch(Kind::Directory, &other)),
    }
}

fn as_file(value: Value) -> Result<Arc<FileValue>> {
    match value {
        Value::File(file) => Ok(file),
        other => Err(kind_mismatch(Kind::File, &other)),
    }
}

/// The container's working directory, `/` when unset.
pub fn workdir_of(state: &ContainerState) -> String {
    if state.config.workdir.is_empty() {
        "/".into()
    } else {
        state.config.workdir.clone()
    }
}

/// The full command `withExec` runs: entrypoint (when asked) + args, or the
/// default args when `args` is empty.
fn command_line(state: &ContainerState, exec: &ExecArgs) -> Result<Vec<String>> {
    let mut args = if exec.args.is_empty() {
        state.config.cmd.clone()
    } else {
        exec.args.clone()
    };
    if exec.expand {
        args = args
            .iter()
            .map(|arg| expand_vars(arg, &state.config.env))
            .collect();
    }
    if exec.use_entrypoint {
        let mut full = state.config.entrypoint.clone();
        full.extend(args);
        args = full;
    }
    if args.is_empty() {
        return Err(Error::NoCommand);
    }
    Ok(args)
}

fn set_env(env: &mut Vec<(String, String)>, name: &str, value: String) {
    match env.iter_mut().find(|(existing, _)| existing == name) {
        Some(slot) => slot.1 = value,
        None => env.push((name.to_owned(), value)),
    }
}

/// `from` replaces the image config but keeps env and labels set before it
/// unless the image sets them too (the image wins).
fn merge_image_config(before: &ImageConfig, image: &ImageConfig) -> ImageConfig {
    let mut merged = image.clone();
    for (name, value) in &before.env {
        if !merged.env.iter().any(|(existing, _)| existing == name) {
            merged.env.push((name.clone(), value.clone()));
        }
    }
    for (name, value) in &before.labels {
        merged
            .labels
            .entry(name.clone())
            .or_insert_with(|| value.clone());
    }
    merged
}

fn split_parent(path: &str) -> (String, String) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(0) | None => ("/".into(), trimmed.trim_start_matches('/').to_owned()),
        Some(index) => (trimmed[..index].to_owned(), trimmed[index + 1..].to_owned()),
    }
}

fn file_entry(file: &FileValue, permissions: Option<u32>) -> Entry {
    Entry::File {
        blob: file.blob,
        size: file.size,
        mode: permissions.unwrap_or(file.mode),
        mtime: file.mtime,
    }
}

fn apply_permissions(tree: &mut Tree, mode: u32) {
    for entry in tree.entries.values_mut() {
        match entry {
            Entry::File { mode: current, .. } | Entry::Dir { mode: current } => *current = mode,
            Entry::Symlink { .. } => {}
        }
    }
}

fn file_in_tree(tree: &Tree, inner: &str, shown: &str) -> Result<FileValue> {
    match tree.get(inner) {
        Some(Entry::File {
            blob,
            size,
            mode,
            mtime,
        }) => Ok(FileValue {
            name: Tree::name_of(inner).to_owned(),
            blob: *blob,
            size: *size,
            mode: *mode,
            mtime: *mtime,
        }),
        Some(Entry::Dir { .. }) => Err(Error::IsADirectory { path: shown.into() }),
        Some(Entry::Symlink { target }) => Err(Error::Unsupported {
            message: format!("{shown} is a symlink to {target}; read the target instead"),
        }),
        None => Err(Error::NotFound { path: shown.into() }),
    }
}

/// The registry host part of an image address (`docker.io` when none).
pub fn registry_host(address: &str) -> String {
    let first = address.split('/').next().unwrap_or(address);
    if address.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost")
    {
        first.to_owned()
    } else {
        "docker.io".to_owned()
    }
}

/// The registry host that `withRegistryAuth(address:)` binds credentials
/// to. Besides image references (`127.0.0.1:5001/app:v1`), a bare registry
/// address (`127.0.0.1:5001`, `registry.example.com`, `docker.io`, with or
/// without a scheme) names a host, which `registry_host` would take for a
/// Docker Hub image name.
pub fn auth_host(address: &str) -> String {
    let address = address
        .strip_prefix("https://")
        .or_else(|| address.strip_prefix("http://"))
        .unwrap_or(address)
        .trim_end_matches('/');
    let host = if address.contains('/') {
        registry_host(address)
    } else {
        let port_ok = |port: &str| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        let looks_like_host = match address.split_once(':') {
            Some((_, port)) => port_ok(port),
            None => address.contains('.') || address == "localhost",
        };
        if looks_like_host {
            address.to_owned()
        } else {
            registry_host(address)
        }
    };
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        _ => host,
    }
}

/// Adds `docker.io/library/` and `:latest` where an address leaves them out.
pub fn normalize_reference(address: &str) -> String {
    let (name, digest) = match address.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (address, None),
    };
    let mut name = name.to_owned();
    if registry_host(&name) == "docker.io" && !name.starts_with("docker.io/") {
        name = if name.contains('/') {
            format!("docker.io/{name}")
        } else {
            format!("docker.io/library/{name}")
        };
    }
    let last = name.rsplit('/').next().unwrap_or_default();
    if !last.contains(':') && digest.is_none() {
        name.push_str(":latest");
    }
    match digest {
        Some(digest) => format!("{name}@{digest}"),
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_normalised() {
        assert_eq!(
            normalize_reference("alpine"),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(
            normalize_reference("127.0.0.1:5000/app"),
            "127.0.0.1:5000/app:latest"
        );
        assert_eq!(
            normalize_reference("127.0.0.1:5000/app:v1"),
            "127.0.0.1:5000/app:v1"
        );
        assert_eq!(registry_host("127.0.0.1:5000/app:v1"), "127.0.0.1:5000");
        assert_eq!(registry_host("user/app"), "docker.io");
    }

    #[test]
    fn auth_addresses_name_hosts() {
        assert_eq!(auth_host("127.0.0.1:5001"), "127.0.0.1:5001");
        assert_eq!(auth_host("127.0.0.1:5001/app:v1"), "127.0.0.1:5001");
        assert_eq!(
            auth_host("https://registry.example.com/"),
            "registry.example.com"
        );
        assert_eq!(auth_host("localhost"), "localhost");
        assert_eq!(auth_host("docker.io"), "docker.io");
        assert_eq!(auth_host("index.docker.io"), "docker.io");
        assert_eq!(auth_host("busybox:latest"), "docker.io");
        assert_eq!(auth_host("user/app"), "docker.io");
    }

    #[test]
    fn split_parent_handles_root() {
        assert_eq!(split_parent("/a"), ("/".into(), "a".into()));
        assert_eq!(split_parent("/a/b/c"), ("/a/b".into(), "c".into()));
    }
}
