//! Reading out of a container's filesystem: `Container.directory`,
//! `rootfs` and `file`, and the read behind `redirectStdin`. Reads are
//! cached persistently per container content key and path.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::context::Context;
use crate::digest::{Digest, Domain, Encoder};
use crate::error::{Error, Result};
use crate::eval::{Call, OpEncoder, Operation};
use crate::events::{EventSink, StepState};
use crate::lookup::Stat;
use crate::owner::{Accounts, Owner, OwnerSpec};
use crate::runtime::{Runtime, RuntimeError};
use crate::store::{RecordKind, RemoteCache, SharedRead, Store};
use crate::tree::{self, Entry, Tree};
use crate::value::{ContainerState, FileValue, Kind, Mount, MountSource, Value};

/// `Container.directory`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDirectory {
    pub container: Digest,
    pub path: String,
}

impl Operation for ContainerDirectory {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.container]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.container).str(&self.path);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let container = call.inputs.container(&self.container)?;
        let target = tree::absolute(&container.workdir(), &self.path)?;
        let tree = read_container_path(cx, &container, &target).await?;
        match tree.get(Tree::name_of(&target)) {
            Some(Entry::Dir { .. }) => Ok(Value::from_tree(tree.subtree(Tree::name_of(&target))?)),
            Some(_) => Err(Error::NotADirectory { path: target }),
            None if target == "/" => Ok(Value::from_tree((*tree).clone())),
            None => Err(Error::NotFound { path: target }),
        }
    }
}

/// `Container.rootfs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRootfs {
    pub container: Digest,
}

impl Operation for ContainerRootfs {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.container]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.container);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let container = call.inputs.container(&self.container)?;
        let tree = read_container_path(cx, &container, "/").await?;
        Ok(Value::from_tree((*tree).clone()))
    }
}

/// `Container.file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerFile {
    pub container: Digest,
    pub path: String,
}

impl Operation for ContainerFile {
    const KIND: Kind = Kind::File;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.container]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.container).str(&self.path);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let container = call.inputs.container(&self.container)?;
        let target = tree::absolute(&container.workdir(), &self.path)?;
        let tree = read_container_path(cx, &container, &target).await?;
        let file = FileValue::in_tree(&tree, Tree::name_of(&target), &target)?;
        Ok(Value::File(Arc::new(file)))
    }
}

/// The owner an `owner:` argument names, for content put into `state`:
/// `inherit` takes the container's user instead (Dagger's `inheritOwner`),
/// and names are looked up in the container's `/etc/passwd` and
/// `/etc/group` (mounts included). `None`: leave owners as they are.
pub(super) async fn container_owner(
    cx: &Context,
    state: &ContainerState,
    owner: &str,
    inherit: bool,
) -> Result<Option<Owner>> {
    let owner = if inherit {
        state.config.user.as_str()
    } else {
        owner
    };
    let Some(spec) = OwnerSpec::parse(owner)? else {
        return Ok(None);
    };
    if let Some(numeric) = spec.numeric() {
        return Ok(Some(numeric));
    }
    let accounts = Accounts {
        of: "the container",
        passwd: read_text(cx, state, "/etc/passwd").await?,
        group: read_text(cx, state, "/etc/group").await?,
    };
    spec.resolve(&accounts).map(Some)
}

/// A text file of the container, `None` when there is none.
async fn read_text(cx: &Context, state: &ContainerState, path: &str) -> Result<Option<String>> {
    let tree = match read_container_path(cx, state, path).await {
        Ok(tree) => tree,
        Err(Error::NotFound { .. }) => return Ok(None),
        Err(other) => return Err(other),
    };
    match FileValue::in_tree(&tree, Tree::name_of(path), path) {
        Ok(file) => Ok(Some(
            String::from_utf8_lossy(&cx.store.get_blob(&file.blob)?).into_owned(),
        )),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Reads `path` (absolute) from a container's filesystem as a tree that
/// holds one entry named after the path's last component (the whole
/// filesystem for `/`). Cached persistently per container state and path.
pub(super) async fn read_container_path(
    cx: &Context,
    state: &ContainerState,
    path: &str,
) -> Result<Arc<Tree>> {
    if let Some(mount) = state
        .mounts
        .iter()
        .find(|mount| path == mount.path || path.starts_with(&format!("{}/", mount.path)))
    {
        return read_mount(mount, path).map(Arc::new);
    }
    let mut encoder = Encoder::new(Domain::ReadPath);
    // "owners": trees read before entries carried owners (all root) are
    // not reused.
    encoder
        .digest(&state.key.expect("evaluated containers have keys"))
        .str(path)
        .str("owners");
    let read_key = encoder.finish();
    if let Some(bytes) = cx.store.get(RecordKind::PathRead, &read_key)? {
        if let Ok(tree) = serde_json::from_slice::<Tree>(&bytes) {
            // Reported like the copy out of a container it saves.
            if state.rootfs.image_id.is_some() {
                let name = format!("read {path}");
                cx.events.emit(&read_key, name, StepState::Cached, None);
            }
            return Ok(Arc::new(tree));
        }
    }
    if state.rootfs.image_id.is_none() {
        let tree = read_layers(state, path)?;
        let json = serde_json::to_vec(&tree).expect("trees always serialise");
        cx.store.put(RecordKind::PathRead, &read_key, &json)?;
        return Ok(Arc::new(tree));
    }
    // Before the runtime is asked: a filesystem found in the remote cache
    // is fetched only when a runtime operation needs it, and a shared read
    // needs none.
    if let Some(tree) = remote_read(cx, state, path, &read_key).await? {
        cx.events
            .emit(&read_key, format!("read {path}"), StepState::Cached, None);
        return Ok(Arc::new(tree));
    }
    let tree = read_image(cx, state, path, &read_key).await?;
    let json = serde_json::to_vec(&tree).expect("trees always serialise");
    cx.store.put(RecordKind::PathRead, &read_key, &json)?;
    if let Some(cache) = &cx.remote_cache {
        offer_read(
            cache.as_ref(),
            cx.store.as_ref(),
            state,
            &read_key,
            path,
            &tree,
            json,
        )?;
    }
    Ok(Arc::new(tree))
}

/// The most file bytes a shared path read carries: a larger read stays
/// local, and another machine fetches the filesystem to read it (its layers
/// cost about what the files would).
const MAX_SHARED_READ_BYTES: u64 = 64 << 20;
/// The most files a shared path read carries (each is a blob to fetch).
const MAX_SHARED_READ_FILES: usize = 256;

/// The contents a tree's files refer to, each once, with their sizes.
fn file_blobs(tree: &Tree) -> std::collections::BTreeMap<Digest, u64> {
    tree.entries
        .values()
        .filter_map(|entry| match entry {
            Entry::File { blob, size, .. } => Some((*blob, *size)),
            _ => None,
        })
        .collect()
}

/// Hands a read through the runtime, with its files' contents, to the
/// remote cache, unless it is too large to be worth sharing.
fn offer_read(
    cache: &dyn RemoteCache,
    store: &dyn Store,
    state: &ContainerState,
    key: &Digest,
    path: &str,
    tree: &Tree,
    json: Vec<u8>,
) -> Result<()> {
    let blobs = file_blobs(tree);
    let bytes: u64 = blobs.values().sum();
    if blobs.len() > MAX_SHARED_READ_FILES || bytes > MAX_SHARED_READ_BYTES {
        debug!(%key, %path, files = blobs.len(), bytes, "a large path read stays local");
        return Ok(());
    }
    let files = blobs
        .keys()
        .map(|blob| Ok((*blob, store.get_blob(blob)?)))
        .collect::<Result<Vec<_>>>()?;
    // As for an exec: what was read may hold what the secrets revealed.
    let secrets = !state.secret_env.is_empty()
        || state
            .mounts
            .iter()
            .any(|mount| matches!(mount.source, MountSource::Secret { .. }));
    let read = SharedRead {
        path: path.to_owned(),
        tree: json,
        files,
    };
    cache.offer_read(key, read, secrets);
    Ok(())
}

/// The read the remote cache tier (if any) shares under `key`, for
/// `state`'s `path`. Its tree is the answer at once; the contents of its
/// files that the store lacks are fetched only when something reads them
/// (the store expects them: `arrivals`), and the read is recorded locally
/// once they are all here (`LazyRead`). An answer that is not a tree, or
/// whose entry lacks a file of it (or has it at another size), is ignored
/// with a warning.
async fn remote_read(
    cx: &Context,
    state: &ContainerState,
    path: &str,
    key: &Digest,
) -> Result<Option<Tree>> {
    let Some(cache) = cx.remote_cache.as_ref() else {
        return Ok(None);
    };
    let Some(found) = cache.lookup_read(key).await else {
        return Ok(None);
    };
    let Ok(tree) = serde_json::from_slice::<Tree>(&found.tree) else {
        warn!(%key, "ignoring a remote path read that is not a tree; reading the path here");
        return Ok(None);
    };
    let held: std::collections::HashMap<Digest, u64> = found.files.iter().copied().collect();
    let blobs = file_blobs(&tree);
    let lacking = blobs
        .iter()
        .find(|(blob, size)| held.get(*blob) != Some(*size));
    if let Some((missing, _)) = lacking {
        warn!(%key, %missing, "ignoring a remote path read that lacks a file's contents; reading the path here");
        return Ok(None);
    }
    let mut absent = Vec::new();
    for (blob, size) in blobs {
        if !cx.store.has_blob(&blob)? {
            absent.push((blob, size));
        }
    }
    debug!(%key, files = held.len(), absent = absent.len(), "remote cache hit (path read)");
    let lazy = Arc::new(LazyRead {
        key: *key,
        path: path.to_owned(),
        tree: found.tree,
        state: state.clone(),
        left: AtomicUsize::new(absent.len()),
        read_here: tokio::sync::Mutex::new(false),
        cache: cache.clone(),
        runtime: cx.runtime.clone(),
        store: cx.store.clone(),
        events: cx.events.clone(),
    });
    match cx.store.arrivals() {
        _ if absent.is_empty() => lazy.record(),
        Some(arrivals) => {
            for (blob, size) in absent {
                let lazy = lazy.clone();
                arrivals.expect(
                    blob,
                    Arc::new(move || Box::pin(lazy.clone().fetch(blob, size))),
                );
            }
        }
        // A store that takes no blobs on trust: every file now.
        None => {
            for (blob, size) in absent {
                lazy.clone()
                    .fetch(blob, size)
                    .await
                    .map_err(|reason| Error::BlobUnavailable {
                        blob: blob.to_string(),
                        reason,
                    })?;
            }
        }
    }
    Ok(Some(tree))
}

/// A path read found in the remote cache, whose files the store expects
/// (`remote_read`). Each file is fetched from the cache when first read;
/// once all are here, the read is recorded locally. A file the cache
/// cannot give (gone unreachable, or the entry is corrupt) is had by
/// reading the path here instead, once for the whole read, which is then
/// shared again (replacing a corrupt entry). A failed fetch is tried again
/// by the next read of that file.
struct LazyRead {
    key: Digest,
    path: String,
    /// The tree's JSON, as found.
    tree: Vec<u8>,
    /// The container read from, for a read here.
    state: ContainerState,
    /// Files not here yet.
    left: AtomicUsize,
    /// Whether the path was read here (when a file could not be fetched);
    /// held while it is read.
    read_here: tokio::sync::Mutex<bool>,
    cache: Arc<dyn RemoteCache>,
    runtime: Arc<dyn Runtime>,
    store: Arc<dyn Store>,
    events: EventSink,
}

impl LazyRead {
    /// Gets file `blob` (`size` bytes) into the store.
    async fn fetch(self: Arc<Self>, blob: Digest, size: u64) -> std::result::Result<(), String> {
        if let Some(file) = self.cache.read_file(&self.key, &blob, size).await {
            self.store
                .put_blob_hashed(&blob, &file)
                .map_err(|error| error.to_string())?;
            if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
                self.record();
            }
            return Ok(());
        }
        {
            let mut done = self.read_here.lock().await;
            if !*done {
                self.read_here().await?;
                *done = true;
            }
        }
        match self.store.has_blob(&blob) {
            Ok(true) => Ok(()),
            _ => Err(format!(
                "the remote cache could not give it, and {} read here has other contents",
                self.path
            )),
        }
    }

    /// Records the read locally, as found: the next engine on this store
    /// needs no lookup.
    fn record(&self) {
        if let Err(error) = self.store.put(RecordKind::PathRead, &self.key, &self.tree) {
            debug!(key = %self.key, %error, "cannot record a remote path read locally");
        }
    }

    /// Reads the path through the runtime (its files into the store),
    /// records that read and offers it to the cache.
    async fn read_here(&self) -> std::result::Result<(), String> {
        tracing::info!(key = %self.key, path = %self.path, "reading the path here: the remote cache could not give a file of it");
        let failed = |error: Error| {
            format!(
                "the remote cache could not give it, and reading {} here failed: {error}",
                self.path
            )
        };
        let (runtime, store) = (self.runtime.as_ref(), self.store.as_ref());
        let tree = read_through(
            runtime,
            store,
            &self.events,
            &self.state,
            &self.path,
            &self.key,
        )
        .await
        .map_err(failed)?;
        let json = serde_json::to_vec(&tree).expect("trees always serialise");
        store
            .put(RecordKind::PathRead, &self.key, &json)
            .map_err(failed)?;
        offer_read(
            self.cache.as_ref(),
            store,
            &self.state,
            &self.key,
            &self.path,
            &tree,
            json,
        )
        .map_err(failed)
    }
}

/// A read under a mount: the mounted directory or file, never the
/// container's own filesystem.
fn read_mount(mount: &Mount, path: &str) -> Result<Tree> {
    let name = Tree::name_of(path);
    match &mount.source {
        MountSource::Directory { tree, .. } => {
            let inner = tree::normalize(&path[mount.path.len()..])?;
            let mut out = Tree::default();
            if inner.is_empty() {
                out.merge_at(name, tree)?;
                return Ok(out);
            }
            match tree.get(&inner) {
                Some(Entry::Dir { .. }) => {
                    out.merge_at(name, &tree.subtree(&inner)?)?
                }
                Some(entry) => out.insert(name, entry.clone())?,
                None => return Err(Error::NotFound { path: path.into() }),
            }
            Ok(out)
        }
        MountSource::File(file) => Tree::single(name, file.entry(None)),
        _ => Err(Error::InvalidArgument {
            message: format!(
                "{path} is under a cache, temporary, secret or socket mount, whose contents are not part of the container"
            ),
        }),
    }
}

/// A read from a container without an image: its filesystem is exactly
/// its layers.
fn read_layers(state: &ContainerState, path: &str) -> Result<Tree> {
    let mut whole = Tree::default();
    for layer in &state.rootfs.layers {
        whole.merge_at(&layer.dest, &layer.tree)?;
    }
    if path == "/" {
        return Ok(whole);
    }
    let inner = tree::normalize(path)?;
    let name = Tree::name_of(path);
    let mut out = Tree::default();
    match whole.get(&inner) {
        Some(Entry::Dir { .. }) => out.merge_at(name, &whole.subtree(&inner)?)?,
        Some(entry) => out.insert(name, entry.clone())?,
        None => return Err(Error::NotFound { path: path.into() }),
    }
    Ok(out)
}

/// A read through the runtime (a step of its own in progress events).
async fn read_image(
    cx: &Context,
    state: &ContainerState,
    path: &str,
    read_key: &Digest,
) -> Result<Tree> {
    read_through(&*cx.runtime, &*cx.store, &cx.events, state, path, read_key).await
}

/// `read_image` with the parts of the context it needs (a read done later
/// has no context: `LazyRead`).
async fn read_through(
    runtime: &dyn Runtime,
    store: &dyn Store,
    events: &EventSink,
    state: &ContainerState,
    path: &str,
    read_key: &Digest,
) -> Result<Tree> {
    let spec = crate::context::rootfs_spec(store, &state.rootfs)?;
    let name = || format!("read {path}");
    events.emit(read_key, name(), StepState::Running, None);
    let tar = runtime
        .read_path(&spec, path)
        .await
        .map_err(|error| match error {
            RuntimeError::PathNotFound { .. } => Error::NotFound { path: path.into() },
            other => other.into(),
        });
    let outcome = if tar.is_ok() {
        StepState::Done
    } else {
        StepState::Failed
    };
    events.emit(read_key, name(), outcome, None);
    let tar = tar?;
    let tree = Tree::from_tar(&tar, store)?;
    // The runtime gives a directory's entries relative to `path`, starting
    // with a `./` root entry; a file comes back as one entry with its own
    // name.
    if path == "/" || !tar_starts_with_root_dir(&tar) {
        return Ok(tree);
    }
    let mut out = Tree::default();
    out.merge_at(Tree::name_of(path), &tree)?;
    Ok(out)
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

/// `stat` of `path` (absolute) in a container's filesystem, mounts
/// included; a final symlink is followed when `follow` (inside the
/// container's root). `None` when nothing is there.
pub(crate) async fn stat_container_path(
    cx: &Context,
    state: &ContainerState,
    path: &str,
    follow: bool,
) -> Result<Option<Stat>> {
    let shown = Tree::name_of(path);
    let shown = if shown.is_empty() { "/" } else { shown };
    let mut current = path.to_owned();
    for _ in 0..=MAX_SYMLINK_HOPS {
        if current == "/" {
            return Ok(Some(Stat::of(shown, &Entry::dir(tree::DIR_MODE))));
        }
        let tree = match read_container_path(cx, state, &current).await {
            Ok(tree) => tree,
            Err(Error::NotFound { .. } | Error::NotADirectory { .. }) => return Ok(None),
            Err(other) => return Err(other),
        };
        let Some(entry) = tree.get(Tree::name_of(&current)) else {
            return Ok(None);
        };
        match entry {
            Entry::Symlink { target, .. } if follow => {
                let (dir, _) = tree::split_parent(&current);
                current = tree::absolute(&dir, target)?;
            }
            entry => return Ok(Some(Stat::of(shown, entry))),
        }
    }
    Err(Error::InvalidArgument {
        message: format!("{path}: too many levels of symbolic links"),
    })
}

/// How many symlinks `stat_container_path` follows (Linux's limit).
const MAX_SYMLINK_HOPS: usize = 40;
