//! Images from snapshots: pull, read a path, build, export as OCI layers (push, save)
//! and load, plus the mount plumbing they share with `exec` (layer chains, flattening).

use std::collections::HashMap;
use std::io::Read as _;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use gantry_core::reproducible::{self, Epoch};
use gantry_core::runtime::{
    format_go_duration, CacheImage, CacheLayer, Healthcheck, ImageConfig, PulledImage, PulledLayer,
    RegistryAuth, RootfsSpec, RuntimeError, TarLayer,
};
use gantry_core::{Hashing, ImageRef};

use crate::error::{failed, Error};
use crate::overlay::{self, Layers, OverlayMount};
use crate::registry;
use crate::store::{remove_tree, write_atomic, ImageRecord, LayerOrigin, Store};
use crate::unpack::{self, Mode};
use crate::Inner;
use gantry_core::gzip::ParallelGzip;
use gantry_core::pack::{self, PackOptions};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Tag prefix of flattened copies of deep images.
const FLAT_TAG: &str = "gantry.internal/flat:";

fn is_image_id(reference: &str) -> bool {
    reference
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The image configuration gantry tracks, from an OCI config document.
pub(crate) fn image_config(config: Option<&serde_json::Value>) -> ImageConfig {
    let Some(config) = config else {
        return ImageConfig::default();
    };
    let inner = &config["config"];
    let strings = |value: &serde_json::Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    ImageConfig {
        env: strings(&inner["Env"])
            .into_iter()
            .map(|entry| match entry.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => (entry, String::new()),
            })
            .collect(),
        workdir: inner["WorkingDir"].as_str().unwrap_or_default().to_owned(),
        user: inner["User"].as_str().unwrap_or_default().to_owned(),
        entrypoint: strings(&inner["Entrypoint"]),
        cmd: strings(&inner["Cmd"]),
        labels: inner["Labels"]
            .as_object()
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default(),
        exposed_ports: exposed_ports_of(&inner["ExposedPorts"]),
        healthcheck: healthcheck_of(&inner["Healthcheck"]),
    }
}

/// A config document's `ExposedPorts` (`{"8080/tcp": {}}`), sorted as the
/// Docker runtime reads them.
fn exposed_ports_of(value: &serde_json::Value) -> Vec<String> {
    let mut ports: Vec<String> = value
        .as_object()
        .map(|ports| ports.keys().cloned().collect())
        .unwrap_or_default();
    ports.sort();
    ports
}

/// A Docker-style `Healthcheck` of a config document (durations in
/// nanoseconds), as gantry's (`None` when absent, disabled or inherited).
fn healthcheck_of(value: &serde_json::Value) -> Option<Healthcheck> {
    let test: Vec<String> = value["Test"]
        .as_array()?
        .iter()
        .filter_map(|item| item.as_str().map(str::to_owned))
        .collect();
    let (shell, args) = match test.split_first() {
        Some((kind, rest)) if kind == "CMD-SHELL" => (true, rest.to_vec()),
        Some((kind, rest)) if kind == "CMD" => (false, rest.to_vec()),
        _ => return None,
    };
    let duration = |key: &str| {
        value[key]
            .as_i64()
            .filter(|n| *n > 0)
            .map(format_go_duration)
            .unwrap_or_default()
    };
    Some(Healthcheck {
        args,
        shell,
        interval: duration("Interval"),
        timeout: duration("Timeout"),
        start_period: duration("StartPeriod"),
        start_interval: duration("StartInterval"),
        retries: value["Retries"].as_i64().unwrap_or(0),
    })
}

/// gantry's health check as a config document's `Healthcheck`.
fn health_config(check: &Healthcheck) -> serde_json::Value {
    let [interval, timeout, start_period, start_interval] = check.durations().unwrap_or_default();
    let kind = if check.shell { "CMD-SHELL" } else { "CMD" };
    let mut out = serde_json::Map::new();
    let test: Vec<String> = std::iter::once(kind.to_owned())
        .chain(check.args.iter().cloned())
        .collect();
    out.insert("Test".into(), test.into());
    for (key, nanos) in [
        ("Interval", interval),
        ("Timeout", timeout),
        ("StartPeriod", start_period),
        ("StartInterval", start_interval),
    ] {
        if nanos > 0 {
            out.insert(key.into(), nanos.into());
        }
    }
    if check.retries > 0 {
        out.insert("Retries".into(), check.retries.into());
    }
    out.into()
}

/// An OCI config document for `config` (the layers' diff IDs are added on export).
fn config_document(config: &ImageConfig) -> serde_json::Value {
    let env: Vec<String> = config.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut inner = serde_json::Map::new();
    inner.insert("Env".into(), env.into());
    if !config.entrypoint.is_empty() {
        inner.insert("Entrypoint".into(), config.entrypoint.clone().into());
    }
    if !config.cmd.is_empty() {
        inner.insert("Cmd".into(), config.cmd.clone().into());
    }
    if !config.workdir.is_empty() {
        inner.insert("WorkingDir".into(), config.workdir.clone().into());
    }
    if !config.user.is_empty() {
        inner.insert("User".into(), config.user.clone().into());
    }
    if !config.labels.is_empty() {
        inner.insert(
            "Labels".into(),
            serde_json::to_value(&config.labels).expect("labels serialise"),
        );
    }
    if !config.exposed_ports.is_empty() {
        let ports: serde_json::Map<String, serde_json::Value> = config
            .exposed_ports
            .iter()
            .map(|port| (port.clone(), serde_json::json!({})))
            .collect();
        inner.insert("ExposedPorts".into(), ports.into());
    }
    if let Some(check) = &config.healthcheck {
        inner.insert("Healthcheck".into(), health_config(check));
    }
    serde_json::json!({
        "architecture": oci_architecture(),
        "os": "linux",
        "config": inner,
        "rootfs": { "type": "layers", "diff_ids": [] },
    })
}

fn oci_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn pulled(image_id: &str, resolved_ref: String, record: &ImageRecord) -> PulledImage {
    PulledImage {
        image_id: image_id.to_owned(),
        resolved_ref,
        config: image_config(record.config.as_ref()),
    }
}

/// A pulled image whose layers the store lacks, left to fetch until
/// something needs them (`Inner::ensure`); recorded in the store (with its
/// name) only then, so the store never holds an image without its layers.
pub(crate) struct Deferred {
    /// The name the pull records.
    name: String,
    image: oci_client::Reference,
    credentials: oci_client::secrets::RegistryAuth,
    password: Option<String>,
    record: ImageRecord,
    missing: Vec<registry::MissingLayer>,
    /// Held while the layers are fetched; `true` once they are.
    fetched: tokio::sync::Mutex<bool>,
}

impl Inner {
    /// The deferred pull of `image_id`, if any.
    pub(crate) fn deferred(&self, image_id: &str) -> Option<Arc<Deferred>> {
        self.deferred
            .lock()
            .expect("never poisoned")
            .get(image_id)
            .cloned()
    }

    /// Fetches the layers of `image_id` when its pull deferred them, and
    /// records the image; every runtime operation that mounts, reads,
    /// builds on or pushes an image calls this first.
    pub(crate) async fn ensure(&self, image_id: Option<&str>) -> Result<(), RuntimeError> {
        let Some(deferred) = image_id.and_then(|id| self.deferred(id)) else {
            return Ok(());
        };
        let image_id = image_id.expect("found by it");
        let mut fetched = deferred.fetched.lock().await;
        if *fetched {
            return Ok(());
        }
        registry::fetch_layers(
            &self.store,
            &self.clients,
            &deferred.image,
            &deferred.credentials,
            deferred.password.as_deref(),
            deferred.missing.clone(),
        )
        .await?;
        self.store
            .put_image(image_id, &deferred.record)
            .and_then(|()| self.store.tag(&deferred.name, image_id))
            .map_err(failed("recording a pulled image"))?;
        *fetched = true;
        self.deferred
            .lock()
            .expect("never poisoned")
            .remove(image_id);
        tracing::debug!(image = %image_id, "deferred layers pulled");
        Ok(())
    }

    /// `ensure` of the deferred pull recorded under `name`, if any.
    pub(crate) async fn ensure_named(&self, name: &str) -> Result<(), RuntimeError> {
        let id = self
            .deferred
            .lock()
            .expect("never poisoned")
            .iter()
            .find(|(_, deferred)| deferred.name == name)
            .map(|(id, _)| id.clone());
        self.ensure(id.as_deref()).await
    }

    /// `Runtime::rename_image`: the name a pull recorded (a push records
    /// none) moved to `to`.
    pub(crate) fn rename(&self, from: &str, to: &str) -> Result<(), RuntimeError> {
        let ((from_ref, from), (to_ref, to)) = (registry::parse(from)?, registry::parse(to)?);
        let (old, new) = (from.whole(), to.whole());
        if from_ref.digest().is_some() || to_ref.digest().is_some() || old == new {
            return Ok(());
        }
        self.store
            .rename_tag(&old, &new)
            .map_err(failed("renaming a pulled image"))
    }

    /// `Runtime::pull`.
    pub(crate) async fn pull(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<PulledImage, RuntimeError> {
        let not_found = |reason: &str| RuntimeError::ImageNotFound {
            reference: reference.to_owned(),
            reason: reason.to_owned(),
        };
        if is_image_id(reference) {
            let record = self
                .deferred(reference)
                .map(|deferred| deferred.record.clone())
                .or_else(|| self.store.image(reference))
                .ok_or_else(|| not_found("no such image in the snapshot store"))?;
            return Ok(pulled(reference, reference.to_owned(), &record));
        }
        // gantry's own names are never in a registry.
        if reference.starts_with("gantry.local/") {
            let id = self
                .store
                .resolve_tag(reference)
                .or_else(|| self.store.resolve_tag(&format!("{reference}:latest")))
                .ok_or_else(|| not_found("no such image in the snapshot store"))?;
            let record = self
                .store
                .image(&id)
                .ok_or_else(|| not_found("no such image in the snapshot store"))?;
            return Ok(pulled(&id, id.clone(), &record));
        }
        let (parsed, image) = registry::parse(reference)?;
        let name = image.whole();
        let credentials = registry::credentials(image.resolve_registry(), auth).await;
        let password = auth.map(|a| a.password.as_str());
        match registry::pull(
            &self.store,
            &self.clients,
            &image,
            &credentials,
            password,
            true,
        )
        .await
        {
            Ok(mut result) => {
                let resolved = parsed.canonical().resolved(&result.digest);
                let answer = pulled(&result.image_id, resolved.clone(), &result.record);
                if result.missing.is_empty() {
                    self.store
                        .put_image(&result.image_id, &result.record)
                        .and_then(|()| self.store.tag(&name, &result.image_id))
                        .map_err(failed("recording a pulled image"))?;
                    tracing::debug!(image = %result.image_id, %resolved, "image pulled");
                } else {
                    // Its layers come when something needs them (`ensure`): a
                    // pipeline whose steps are all cached needs only the config.
                    tracing::debug!(image = %result.image_id, %resolved, layers = result.missing.len(), "image resolved; its layers are fetched when needed");
                    let deferred = Deferred {
                        name,
                        image,
                        credentials,
                        password: auth.map(|a| a.password.clone()),
                        record: result.record,
                        missing: std::mem::take(&mut result.missing),
                        fetched: tokio::sync::Mutex::new(false),
                    };
                    self.deferred
                        .lock()
                        .expect("never poisoned")
                        .insert(result.image_id.clone(), Arc::new(deferred));
                }
                Ok(answer)
            }
            Err(error) => {
                // As with dockerd: an image pulled before stands in for an unreachable
                // registry, but refused explicit credentials are reported.
                if matches!(error, RuntimeError::Unauthorized { .. }) && auth.is_some() {
                    return Err(error);
                }
                match self
                    .store
                    .resolve_tag(&name)
                    .filter(|id| self.store.image_complete(id))
                {
                    Some(id) => {
                        tracing::debug!(%error, "pull failed; using the stored image");
                        let record = self.store.image(&id).expect("complete images have records");
                        Ok(pulled(&id, id.clone(), &record))
                    }
                    None => Err(error),
                }
            }
        }
    }

    /// `Runtime::local_image`: an image of the snapshot store, by ID or by a
    /// name it holds (one pulled, loaded, or given by `exportImage`), written
    /// as given or in full (`busybox` finds `docker.io/library/busybox:latest`);
    /// nothing is pulled.
    pub(crate) fn local(&self, reference: &str) -> Result<PulledImage, RuntimeError> {
        let not_found = || RuntimeError::ImageNotFound {
            reference: reference.to_owned(),
            reason: "no such image in the snapshot store (the native runtime's image store: \
                     images it pulled, loaded or exported with exportImage)"
                .to_owned(),
        };
        let id = if is_image_id(reference) {
            reference.to_owned()
        } else {
            let (parsed, image) = registry::parse(reference)?;
            [reference.to_owned(), parsed.normalized(), image.whole()]
                .iter()
                .find_map(|name| self.store.resolve_tag(name))
                .ok_or_else(not_found)?
        };
        match self.store.image(&id) {
            Some(record) if self.store.image_complete(&id) => Ok(pulled(&id, id.clone(), &record)),
            _ => Err(not_found()),
        }
    }

    pub(crate) fn record(&self, image_id: &str) -> Result<ImageRecord, Error> {
        let missing = |reason: String| Error::ImageMissing {
            image: image_id.to_owned(),
            reason,
        };
        let record = self.store.image(image_id).ok_or_else(|| {
            missing(format!(
                "{image_id} is not in the snapshot store (was it pruned? run the pipeline again)"
            ))
        })?;
        if let Some(layer) = record
            .layers
            .iter()
            .find(|layer| !self.store.has_layer(layer))
        {
            return Err(missing(format!(
                "layer {layer} of {image_id} is missing from the snapshot store"
            )));
        }
        Ok(record)
    }

    /// The layers to mount for `image_id` (bottom first), flattened when the chain
    /// is too deep to mount with `extra` more layers on top.
    pub(crate) fn mountable_layers(
        &self,
        image_id: Option<&str>,
        extra: usize,
    ) -> Result<Vec<String>, Error> {
        let Some(image_id) = image_id else {
            return Ok(Vec::new());
        };
        let record = self.record(image_id)?;
        if self.fits(&record.layers, extra) {
            return Ok(record.layers);
        }
        let flat_tag = format!("{FLAT_TAG}{}", image_id.trim_start_matches("sha256:"));
        if let Some(flat) = self
            .store
            .resolve_tag(&flat_tag)
            .and_then(|id| self.store.image(&id))
        {
            if flat.layers.iter().all(|layer| self.store.has_layer(layer)) {
                return Ok(flat.layers);
            }
        }
        let mut layers = record.layers.clone();
        while !self.fits(&layers, extra) {
            let take = layers
                .len()
                .min(overlay::MAX_LOWER_LAYERS - extra - 1)
                .max(2);
            let merged = self.flatten(&layers[..take])?;
            layers.splice(..take, [merged]);
        }
        let flat = ImageRecord {
            layers: layers.clone(),
            config: record.config,
        };
        let flat_id = flat.derived_id();
        self.store.put_image(&flat_id, &flat)?;
        self.store.tag(&flat_tag, &flat_id)?;
        tracing::info!(image = %image_id, from = record.layers.len(), to = layers.len(), "flattened a deep layer chain");
        Ok(layers)
    }

    fn fits(&self, layers: &[String], extra: usize) -> bool {
        let mut paths = self.lower_paths(layers);
        for _ in 0..extra {
            paths.push(self.store.init_dir());
        }
        overlay::fits(&paths)
    }

    /// Layer directories top first, as overlayfs wants them.
    pub(crate) fn lower_paths(&self, layers: &[String]) -> Vec<PathBuf> {
        layers
            .iter()
            .rev()
            .map(|id| self.store.layer_dir(id))
            .collect()
    }

    /// Copies the merged view of `layers` into one new layer; returns its ID.
    fn flatten(&self, layers: &[String]) -> Result<String, Error> {
        let scratch = self.store.scratch("flatten")?;
        let target = scratch.join("merged");
        let output = scratch.join("layer");
        for dir in [&target, &output] {
            std::fs::create_dir(dir)
                .map_err(|source| Error::io("creating a directory", dir, source))?;
        }
        let empty = scratch.join("empty");
        std::fs::create_dir(&empty)
            .map_err(|source| Error::io("creating a directory", &empty, source))?;
        let result = (|| {
            let mount = OverlayMount::mount(
                Layers {
                    lowers: self.lower_paths(layers),
                    upper: None,
                },
                &empty,
                &target,
            )?;
            copy_tree(mount.path(), &output)?;
            mount.unmount()
        })();
        let outcome = result.and_then(|()| {
            let id = Store::new_layer_id();
            self.store.commit_layer(&output, &id)?;
            Ok(id)
        });
        remove_tree(&scratch);
        outcome
    }

    /// A scratch directory with `merged/` mounted over `image_id`'s layers and, when
    /// `layers` is not empty, an upper directory holding them (applied as Docker
    /// applies archives to a container). Read-only when `layers` is empty.
    pub(crate) fn mount_rootfs(
        &self,
        image_id: Option<&str>,
        layers: &[TarLayer],
        mountpoint: &Path,
    ) -> Result<(PathBuf, OverlayMount), Error> {
        let scratch = self.store.scratch("mount")?;
        let upper = scratch.join("upper");
        let work = scratch.join("work");
        let empty = scratch.join("empty");
        for dir in [&upper, &work, &empty] {
            std::fs::create_dir(dir)
                .map_err(|source| Error::io("creating a directory", dir, source))?;
        }
        let base = self.mountable_layers(image_id, 1)?;
        let writable = !layers.is_empty();
        let mount = OverlayMount::mount(
            Layers {
                lowers: self.lower_paths(&base),
                upper: writable.then_some((upper.as_path(), work.as_path())),
            },
            &empty,
            mountpoint,
        );
        let mount = match mount {
            Ok(mount) => mount,
            Err(error) => {
                remove_tree(&scratch);
                return Err(error);
            }
        };
        if let Err(error) = apply_layers(mountpoint, layers) {
            drop(mount);
            remove_tree(&scratch);
            return Err(error);
        }
        Ok((scratch, mount))
    }
}

/// Unpacks each pending layer at its destination inside a mounted root filesystem.
pub(crate) fn apply_layers(root: &Path, layers: &[TarLayer]) -> Result<(), Error> {
    for layer in layers {
        let dest = unpack::components(layer.dest.as_bytes())?;
        let dir = if dest.is_empty() {
            root.to_owned()
        } else {
            unpack::make_dirs(root, &dest)?
        };
        unpack::unpack(layer.tar.as_ref(), &dir, Mode::Apply)?;
    }
    Ok(())
}

/// Copies a directory tree with everything tar keeps (pack on one thread, unpack on
/// another, through a pipe).
fn copy_tree(from: &Path, to: &Path) -> Result<(), Error> {
    let (reader, writer) =
        std::io::pipe().map_err(|source| Error::io("copying a tree", from, source))?;
    let source = from.to_owned();
    let packer = std::thread::spawn(move || {
        pack::pack_layer(
            &source,
            writer,
            PackOptions {
                overlay_whiteouts: false,
                clamp_mtime: None,
            },
        )
    });
    let unpacked = unpack::unpack(reader, to, Mode::Layer);
    let packed = packer
        .join()
        .map_err(|_| Error::other("copying a tree", "the packing thread panicked"))?;
    packed.map_err(Error::from).and(unpacked)
}

/// `Runtime::read_path`.
pub(crate) async fn read_path(
    inner: Arc<Inner>,
    rootfs: RootfsSpec,
    path: String,
) -> Result<Bytes, RuntimeError> {
    let task = tokio::task::spawn_blocking(move || {
        let id = inner.next_id();
        let step_dir = inner.run.step_dir(&id);
        let mountpoint = step_dir.join("rootfs");
        std::fs::create_dir_all(&mountpoint).map_err(|source| {
            Error::io("creating a mount point", &mountpoint, source).into_runtime("reading a path")
        })?;
        let outcome = (|| {
            let (scratch, mount) = inner
                .mount_rootfs(rootfs.image_id.as_deref(), &rootfs.layers, &mountpoint)
                .map_err(failed("reading a path"))?;
            let read = read_in_mount(mount.path(), &path);
            let unmounted = mount.unmount();
            remove_tree(&scratch);
            unmounted.map_err(failed("reading a path"))?;
            read
        })();
        remove_tree(&step_dir);
        outcome
    });
    task.await.map_err(|error| RuntimeError::Failed {
        action: "reading a path".to_owned(),
        reason: error.to_string(),
    })?
}

/// Packs `path` of the filesystem mounted at `root`.
fn read_in_mount(root: &Path, path: &str) -> Result<Bytes, RuntimeError> {
    let mut components = unpack::components(path.as_bytes()).map_err(failed("reading a path"))?;
    let not_found = || RuntimeError::PathNotFound {
        path: path.to_owned(),
    };
    let (parent, name) = match components.pop() {
        None => (root.to_owned(), b"./".to_vec()),
        Some(name) => {
            let real = unpack::resolve_dir(root, &components).ok_or_else(not_found)?;
            (real, name)
        }
    };
    let target = if name == b"./" {
        parent.clone()
    } else {
        parent.join(std::ffi::OsStr::from_bytes(&name))
    };
    if std::fs::symlink_metadata(&target).is_err() {
        return Err(not_found());
    }
    let mut out = Vec::new();
    pack::pack_path(&target, &name, &mut out)
        .map_err(|error| failed("reading a path")(error.into()))?;
    Ok(out.into())
}

/// `Runtime::build_image`: the rootfs's pending layers become one new layer.
pub(crate) async fn build(
    inner: Arc<Inner>,
    rootfs: RootfsSpec,
    config: ImageConfig,
    tag: String,
) -> Result<String, RuntimeError> {
    let task = tokio::task::spawn_blocking(move || {
        let mut layers = match &rootfs.image_id {
            Some(id) => inner.record(id)?.layers,
            None => Vec::new(),
        };
        if !rootfs.layers.is_empty() {
            layers.push(inner.materialize(rootfs.image_id.as_deref(), &rootfs.layers)?);
        }
        let record = ImageRecord {
            layers,
            config: Some(config_document(&config)),
        };
        let id = record.derived_id();
        inner.store.put_image(&id, &record)?;
        inner.store.tag(&tag, &id)?;
        Ok::<_, Error>(id)
    });
    task.await
        .map_err(|error| RuntimeError::Failed {
            action: "building an image".to_owned(),
            reason: error.to_string(),
        })?
        .map_err(failed("building an image"))
}

impl Inner {
    /// Applies pending layers over an image and keeps the result as a new layer.
    fn materialize(&self, image_id: Option<&str>, layers: &[TarLayer]) -> Result<String, Error> {
        let id = self.next_id();
        let step_dir = self.run.step_dir(&id);
        let mountpoint = step_dir.join("rootfs");
        std::fs::create_dir_all(&mountpoint)
            .map_err(|source| Error::io("creating a mount point", &mountpoint, source))?;
        let outcome = (|| {
            let (scratch, mount) = self.mount_rootfs(image_id, layers, &mountpoint)?;
            let unmounted = mount.unmount();
            let layer = Store::new_layer_id();
            let committed =
                unmounted.and_then(|()| self.store.commit_layer(&scratch.join("upper"), &layer));
            remove_tree(&scratch);
            committed.map(|()| layer)
        })();
        remove_tree(&step_dir);
        outcome
    }
}

/// One exported layer: its digests and where its blob is cached.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct ExportedLayer {
    diff_id: String,
    /// Bytes of the uncompressed tar.
    diff_size: u64,
    digest: String,
    size: u64,
    /// The blob's media type, when not gzip OCI (a plain tar's, a mounted
    /// layer's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
}

impl ExportedLayer {
    fn media_type(&self) -> &str {
        self.media_type.as_deref().unwrap_or(OCI_LAYER_GZIP)
    }
}

/// The form of an exported layer's blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LayerBlob {
    /// Gzip, as registries and `docker pull` expect of published images, on
    /// that many cores (the bytes are the same on any).
    Gzip(Cores),
    /// The plain tar, digest = diff ID: saved tarballs, as `docker save`
    /// writes them.
    Tar,
}

/// How many cores gzip a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cores {
    /// Every core: a publish, which the pipeline waits for.
    All,
    /// One while steps run, every core once none does: a remote cache
    /// push, beside the steps (see `ParallelGzip::beside_steps`).
    BesideSteps,
}

impl LayerBlob {
    fn extension(self) -> &'static str {
        match self {
            Self::Gzip(_) => "tar.gz",
            Self::Tar => "tar",
        }
    }
}

/// The layer as a deterministic blob of form `form`, cached per layer, form
/// and clamp time.
fn export_layer(
    inner: &Inner,
    layer: &str,
    form: LayerBlob,
) -> Result<(ExportedLayer, PathBuf), Error> {
    export_layer_streaming(inner, layer, form, None)
}

/// Where an exported layer's blob is cached, and its metadata.
fn export_paths(inner: &Inner, layer: &str, form: LayerBlob) -> (PathBuf, PathBuf) {
    let dir = inner.store.export_dir();
    let epoch = inner.options.source_date_epoch;
    let extension = form.extension();
    (
        dir.join(format!("{layer}-{epoch}.{extension}")),
        dir.join(format!("{layer}-{epoch}.{extension}.json")),
    )
}

/// The layer's cached blob, when it was exported before.
fn exported_before(
    inner: &Inner,
    layer: &str,
    form: LayerBlob,
) -> Option<(ExportedLayer, PathBuf)> {
    let (blob, meta) = export_paths(inner, layer, form);
    let exported = serde_json::from_slice::<ExportedLayer>(&std::fs::read(&meta).ok()?).ok()?;
    blob.is_file().then_some((exported, blob))
}

/// `export_layer`; a first export also sends the blob's bytes to `stream`
/// as they are written (a cached blob sends none), and keeps the layer's
/// turn until `stream`'s upload has ended.
fn export_layer_streaming(
    inner: &Inner,
    layer: &str,
    form: LayerBlob,
    stream: Option<BlobStream>,
) -> Result<(ExportedLayer, PathBuf), Error> {
    // Pushes of images that share layers (a step's and the next step's, at
    // once) export each shared layer once: the later ones wait here and
    // take its file (and, streamed, find the blob in the registry).
    let turn = inner.exports.of(layer);
    let _turn = turn.lock().expect("never poisoned");
    if let Some(found) = exported_before(inner, layer, form) {
        return Ok(found);
    }
    let dir = inner.store.export_dir();
    std::fs::create_dir_all(&dir).map_err(|source| Error::io("creating", &dir, source))?;
    let epoch = inner.options.source_date_epoch;
    let (blob, meta) = export_paths(inner, layer, form);
    let (copy, upload_ended) = match stream {
        Some(stream) => (Some(stream.pieces), Some(stream.ended)),
        None => (None, None),
    };
    let started = std::time::Instant::now();
    let tmp = blob.with_extension(format!(
        "tmp-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let file = std::fs::File::create(&tmp)
        .map_err(|source| Error::io("writing a layer blob", &tmp, source))?;
    let written = Hashing::new(Copying {
        inner: std::io::BufWriter::new(file),
        copy,
    });
    let options = PackOptions {
        overlay_whiteouts: true,
        clamp_mtime: Some(epoch),
    };
    let layer_dir = inner.store.layer_dir(layer);
    let (copying, exported) = match form {
        LayerBlob::Gzip(cores) => {
            let encoder = match cores {
                Cores::All => ParallelGzip::new(written),
                Cores::BesideSteps => ParallelGzip::beside_steps(written),
            }
            .map_err(|source| Error::io("writing a layer blob", &tmp, source))?;
            let mut uncompressed = Hashing::new(encoder);
            pack::pack_layer(&layer_dir, &mut uncompressed, options)?;
            let (encoder, diff_id, diff_size) = uncompressed.finish();
            let compressed = encoder
                .finish()
                .map_err(|source| Error::io("writing a layer blob", &tmp, source))?;
            let (copying, digest, size) = compressed.finish();
            let exported = ExportedLayer {
                diff_id: diff_id.to_string(),
                diff_size,
                digest: digest.to_string(),
                size,
                media_type: None,
            };
            (copying, exported)
        }
        LayerBlob::Tar => {
            let mut plain = written;
            pack::pack_layer(&layer_dir, &mut plain, options)?;
            let (copying, diff_id, diff_size) = plain.finish();
            let exported = ExportedLayer {
                digest: diff_id.to_string(),
                size: diff_size,
                diff_id: diff_id.to_string(),
                diff_size,
                media_type: Some(OCI_LAYER.to_owned()),
            };
            (copying, exported)
        }
    };
    // The whole blob went to the stream: its upload can end.
    let mut file = copying.finish();
    std::io::Write::flush(&mut file)
        .map_err(|source| Error::io("writing a layer blob", &tmp, source))?;
    std::fs::rename(&tmp, &blob)
        .map_err(|source| Error::io("writing a layer blob", &blob, source))?;
    write_atomic(&meta, &serde_json::to_vec(&exported).expect("serialises"))?;
    tracing::debug!(
        layer,
        bytes = exported.diff_size,
        blob_bytes = exported.size,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "layer exported"
    );
    if let Some(ended) = upload_ended {
        let _ = ended.recv();
    }
    Ok((exported, blob))
}

/// Uploads each layer of `image_id` that has not been exported yet while it
/// is packed and compressed beside the steps (a chunked upload fed by the
/// export), rather than after it: a step's new 100 MB layer reaches the
/// registry about when its export ends, which the end of a pipeline waits
/// for. A layer whose upload fails here (a registry that refuses chunked
/// uploads) is uploaded whole by the push that follows, as one exported
/// before is.
///
/// For the remote cache's pushes only, whose layers are steps' new output:
/// a publish's layers may be in the registry already (the same reproducible
/// image published again from another state directory), which the push finds
/// by digest and does not upload, and a streamed upload cannot know the digest
/// before it has sent the bytes.
async fn stream_new_layers(
    inner: &Arc<Inner>,
    image_id: &str,
    mounted: &HashMap<String, LayerOrigin>,
    (client, image, credentials, password): PushTarget<'_>,
) {
    let layers = inner
        .record(image_id)
        .map(|record| record.layers)
        .unwrap_or_default();
    for layer in layers {
        // Exported before, or being exported by another push (which uploads
        // it, and this push's export waits for that and finds it there).
        let exporting = inner.exports.of(&layer).try_lock().is_err();
        if exporting
            || mounted.contains_key(&layer)
            || exported_before(inner, &layer, LayerBlob::Gzip(Cores::BesideSteps)).is_some()
        {
            continue;
        }
        let (to, mut from) = tokio::sync::mpsc::channel(2);
        let (ended, upload_ended) = std::sync::mpsc::channel();
        let exporter = inner.clone();
        let name = layer.clone();
        let export = tokio::task::spawn_blocking(move || {
            let stream = BlobStream {
                pieces: UploadPieces {
                    piece: Vec::new(),
                    to: Some(to),
                },
                ended: upload_ended,
            };
            export_layer_streaming(
                &exporter,
                &name,
                LayerBlob::Gzip(Cores::BesideSteps),
                Some(stream),
            )
        });
        let pieces = futures::stream::poll_fn(move |cx| from.poll_recv(cx));
        let uploaded = registry::push_stream(client, image, credentials, password, pieces).await;
        let _ = ended.send(());
        let Ok(Ok((exported, _))) = export.await else {
            // The push's own export of the layer says why.
            return;
        };
        match uploaded {
            Ok(digest) if digest == exported.digest => {
                tracing::debug!(%layer, %digest, bytes = exported.size, "layer uploaded as it was exported");
            }
            Ok(digest) => tracing::warn!(
                %layer,
                %digest,
                exported = %exported.digest,
                "a streamed layer upload differs from its export; the export is uploaded"
            ),
            Err(error) => {
                tracing::debug!(%layer, %error, "streamed layer upload failed; the layer is uploaded whole");
            }
        }
    }
}

/// Where a push goes: the client, the image, its credentials and the
/// password to keep out of errors.
type PushTarget<'a> = (
    &'a oci_client::Client,
    &'a oci_client::Reference,
    &'a oci_client::secrets::RegistryAuth,
    Option<&'a str>,
);

/// A blob's bytes on their way to a registry as they are exported (see
/// `stream_new_layers`).
struct BlobStream {
    pieces: UploadPieces,
    /// Answers once the upload has ended, either way.
    ended: std::sync::mpsc::Receiver<()>,
}

/// Pieces of at least `registry::UPLOAD_PIECE` bytes sent from a blocking
/// thread to an upload, each a PATCH of a chunked upload. When the upload
/// stops taking them (it failed) the export goes on without it, and the
/// blob is uploaded whole afterwards.
struct UploadPieces {
    piece: Vec<u8>,
    to: Option<tokio::sync::mpsc::Sender<std::io::Result<Bytes>>>,
}

impl UploadPieces {
    fn send(&mut self, bytes: &[u8]) {
        if self.to.is_none() {
            return;
        }
        self.piece.extend_from_slice(bytes);
        if self.piece.len() >= registry::UPLOAD_PIECE {
            self.send_piece();
        }
    }

    fn send_piece(&mut self) {
        let piece = Bytes::from(std::mem::take(&mut self.piece));
        if let Some(to) = &self.to {
            if to.blocking_send(Ok(piece)).is_err() {
                self.to = None;
            }
        }
    }

    /// Sends the rest; the stream ends with the last piece.
    fn finish(mut self) {
        if !self.piece.is_empty() {
            self.send_piece();
        }
        self.to = None;
    }
}

impl Drop for UploadPieces {
    /// Dropped before `finish` (the export failed): the upload fails too,
    /// rather than commit part of a blob.
    fn drop(&mut self) {
        if let Some(to) = self.to.take() {
            let _ = to.blocking_send(Err(std::io::Error::other("the layer's export failed")));
        }
    }
}

/// A writer that also sends what it writes to an upload.
struct Copying<W> {
    inner: W,
    copy: Option<UploadPieces>,
}

impl<W> Copying<W> {
    fn finish(mut self) -> W {
        if let Some(copy) = self.copy.take() {
            copy.finish();
        }
        self.inner
    }
}

impl<W: std::io::Write> std::io::Write for Copying<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        if let Some(copy) = &mut self.copy {
            copy.send(&buf[..written]);
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Locks by name, each made when first asked for.
#[derive(Debug, Default)]
pub(crate) struct Turns(
    std::sync::Mutex<std::collections::HashMap<String, Arc<std::sync::Mutex<()>>>>,
);

impl Turns {
    /// The lock of `name`.
    pub(crate) fn of(&self, name: &str) -> Arc<std::sync::Mutex<()>> {
        let mut turns = self.0.lock().expect("never poisoned");
        turns.entry(name.to_owned()).or_default().clone()
    }
}

/// An image exported as OCI blobs.
struct Exported {
    /// Each layer and its blob, `None` for a layer mounted instead.
    layers: Vec<(ExportedLayer, Option<PathBuf>)>,
    config: Vec<u8>,
    manifest: Vec<u8>,
}

fn digest_of(bytes: &[u8]) -> String {
    gantry_core::Digest::of_bytes(bytes).to_string()
}

/// The image as OCI blobs, its layers as `form`. The layers in `mounted`
/// are the registry blobs they were pulled from, not exported.
fn export(
    inner: &Inner,
    image_id: &str,
    form: LayerBlob,
    mounted: &HashMap<String, LayerOrigin>,
) -> Result<Exported, Error> {
    let record = inner.record(image_id)?;
    let layers = record
        .layers
        .iter()
        .map(|layer| match mounted.get(layer) {
            Some(origin) => Ok((
                ExportedLayer {
                    diff_id: origin.diff_id.clone(),
                    diff_size: 0,
                    digest: origin.digest.clone(),
                    size: origin.size.max(0) as u64,
                    media_type: Some(origin.media_type.clone()),
                },
                None,
            )),
            None => export_layer(inner, layer, form).map(|(exported, path)| (exported, Some(path))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut config = record
        .config
        .clone()
        .unwrap_or_else(|| config_document(&ImageConfig::default()));
    let diff_ids: Vec<String> = layers.iter().map(|(l, _)| l.diff_id.clone()).collect();
    // Dated at the epoch, without the history of the original layers (which
    // no longer matches the re-exported ones) or what a builder wrote about
    // itself: the same rule as the Docker runtime's.
    reproducible::config(
        &mut config,
        &diff_ids,
        Epoch {
            seconds: inner.options.source_date_epoch,
            builder_labels: &[],
        },
    );
    let config = serde_json::to_vec(&config).expect("configs serialise");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": { "mediaType": OCI_CONFIG, "digest": digest_of(&config), "size": config.len() },
        "layers": layers.iter().map(|(l, _)| {
            serde_json::json!({ "mediaType": l.media_type(), "digest": l.digest, "size": l.size })
        }).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec(&manifest).expect("manifests serialise");
    Ok(Exported {
        layers,
        config,
        manifest,
    })
}

/// `Runtime::push`; `as_is`: `Runtime::push_as_is`, where a layer pulled from
/// the registry pushed to is mounted from where it was pulled (no export, no
/// upload) when the registry allows it.
pub(crate) async fn push(
    inner: Arc<Inner>,
    image_id: &str,
    reference: &str,
    auth: Option<&RegistryAuth>,
    as_is: bool,
) -> Result<String, RuntimeError> {
    let (_, image) = registry::parse(reference)?;
    let credentials = registry::credentials(image.resolve_registry(), auth).await;
    let password = auth.map(|a| a.password.as_str());
    let client = registry::client(image.resolve_registry());
    let mut mounted = HashMap::new();
    if as_is {
        let layers = inner
            .record(image_id)
            .map(|record| record.layers)
            .unwrap_or_default();
        // A push token (anonymous registries need none): a mount is a push.
        let _ = client
            .auth(&image, &credentials, oci_client::RegistryOperation::Push)
            .await;
        for layer in layers {
            let Some(origin) = inner.store.origin(&layer) else {
                continue;
            };
            if registry::mount_or_copy(&client, &image, &origin.source(), &origin.descriptor())
                .await
            {
                mounted.insert(layer, origin);
            }
        }
    }
    // A publish has the cores to itself; the remote cache's pushes (as is)
    // run beside the steps, and stream their new layers.
    let cores = if as_is {
        let target = (&client, &image, &credentials, password);
        stream_new_layers(&inner, image_id, &mounted, target).await;
        Cores::BesideSteps
    } else {
        Cores::All
    };
    let id = image_id.to_owned();
    let exporter = inner.clone();
    let exported = tokio::task::spawn_blocking(move || {
        export(&exporter, &id, LayerBlob::Gzip(cores), &mounted)
    })
    .await
    .map_err(|error| RuntimeError::Failed {
        action: "exporting an image".to_owned(),
        reason: error.to_string(),
    })?
    .map_err(failed("exporting an image"))?;
    let mut blobs = Vec::new();
    for (layer, path) in &exported.layers {
        let Some(path) = path else {
            continue;
        };
        let data = tokio::fs::read(path).await.map_err(|source| {
            Error::io("reading a layer blob", path, source).into_runtime("pushing an image")
        })?;
        blobs.push(registry::Blob {
            digest: layer.digest.clone(),
            media_type: layer.media_type().to_owned(),
            data: data.into(),
        });
    }
    let config = registry::Blob {
        digest: digest_of(&exported.config),
        media_type: OCI_CONFIG.to_owned(),
        data: exported.config.into(),
    };
    let digest = registry::push(
        &client,
        &image,
        &credentials,
        password,
        blobs,
        config,
        exported.manifest.into(),
        OCI_MANIFEST,
    )
    .await?;
    tracing::debug!(%digest, "image pushed");
    Ok(digest)
}

/// `Runtime::save_image`: a tarball both `docker load` (`manifest.json`) and OCI tools
/// (`index.json`, `oci-layout`) read.
pub(crate) async fn save(
    inner: Arc<Inner>,
    image_id: String,
    reference: String,
) -> Result<Bytes, RuntimeError> {
    tokio::task::spawn_blocking(move || {
        let exported = export(&inner, &image_id, LayerBlob::Tar, &HashMap::new())?;
        let name = match ImageRef::parse(&reference) {
            Ok(image) => {
                let full = image.canonical();
                format!("{}:{}", full.repo(), full.tag_or_latest())
            }
            Err(_) => reference.clone(),
        };
        let name = name.strip_prefix("docker.io/").unwrap_or(&name).to_owned();
        let mut builder = tar::Builder::new(Vec::new());
        let mut add = |path: &str, data: &[u8]| -> Result<(), Error> {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            builder.append_data(&mut header, path, data).map_err(|source| Error::io("writing an image tarball", Path::new(path), source))
        };
        let blob_path = |digest: &str| format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
        add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        add(&blob_path(&digest_of(&exported.config)), &exported.config)?;
        for (layer, path) in &exported.layers {
            let path = path.as_ref().expect("a saved image exports every layer");
            let data = std::fs::read(path).map_err(|source| Error::io("reading a layer blob", path, source))?;
            add(&blob_path(&layer.diff_id), &data)?;
        }
        let manifest_digest = digest_of(&exported.manifest);
        add(&blob_path(&manifest_digest), &exported.manifest)?;
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": OCI_MANIFEST,
                "digest": manifest_digest,
                "size": exported.manifest.len(),
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": name.rsplit_once(':').map_or("latest", |(_, tag)| tag),
                },
            }],
        });
        add("index.json", &serde_json::to_vec(&index).expect("serialises"))?;
        let docker_manifest = serde_json::json!([{
            "Config": blob_path(&digest_of(&exported.config)),
            "RepoTags": [name],
            "Layers": exported.layers.iter().map(|(l, _)| blob_path(&l.diff_id)).collect::<Vec<_>>(),
        }]);
        add("manifest.json", &serde_json::to_vec(&docker_manifest).expect("serialises"))?;
        let bytes = builder.into_inner().map_err(|source| Error::io("writing an image tarball", Path::new("-"), source))?;
        Ok::<_, Error>(Bytes::from(bytes))
    })
    .await
    .map_err(|error| RuntimeError::Failed {
        action: "saving an image".to_owned(),
        reason: error.to_string(),
    })?
    .map_err(failed("saving an image"))
}

/// `Runtime::cache_layers`: the layers pulled from a registry, whose snapshots
/// are those blobs unpacked, as where they came from; the others exported as
/// tars. The config is `save`'s, with the pulled layers' own diff IDs.
pub(crate) async fn cache_layers(
    inner: Arc<Inner>,
    image_id: String,
) -> Result<CacheImage, RuntimeError> {
    tokio::task::spawn_blocking(move || {
        let record = inner.record(&image_id)?;
        let pulled: HashMap<String, LayerOrigin> = record
            .layers
            .iter()
            .filter_map(|layer| Some((layer.clone(), inner.store.origin(layer)?)))
            .collect();
        let exported = export(&inner, &image_id, LayerBlob::Tar, &pulled)?;
        let layers = record
            .layers
            .iter()
            .zip(exported.layers)
            .map(|(id, (layer, path))| match (path, pulled.get(id)) {
                (Some(path), _) => CacheLayer::Tar {
                    path,
                    digest: layer.diff_id,
                },
                (None, Some(origin)) => CacheLayer::Pulled(PulledLayer {
                    repository: format!("{}/{}", origin.registry, origin.repository),
                    digest: origin.digest.clone(),
                    size: origin.size.max(0) as u64,
                    media_type: origin.media_type.clone(),
                }),
                (None, None) => unreachable!("export leaves out only the layers it was given"),
            })
            .collect();
        Ok::<_, Error>(CacheImage {
            config: exported.config,
            layers,
            runtime_id: None,
        })
    })
    .await
    .map_err(|error| RuntimeError::Failed {
        action: "saving an image for the cache".to_owned(),
        reason: error.to_string(),
    })?
    .map_err(failed("saving an image for the cache"))
}

/// `Runtime::load_image`: a `docker save` or OCI layout tarball.
pub(crate) async fn load(inner: Arc<Inner>, tarball: Bytes) -> Result<PulledImage, RuntimeError> {
    tokio::task::spawn_blocking(move || load_blocking(&inner, &tarball))
        .await
        .map_err(|error| RuntimeError::Failed {
            action: "loading an image".to_owned(),
            reason: error.to_string(),
        })?
        .map_err(failed("loading an image"))
}

fn load_blocking(inner: &Inner, tarball: &[u8]) -> Result<PulledImage, Error> {
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    let mut archive = tar::Archive::new(tarball);
    for entry in archive.entries().map_err(Error::archive)? {
        let mut entry = entry.map_err(Error::archive)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes())
            .trim_start_matches("./")
            .to_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(Error::archive)?;
        files.insert(name, data);
    }
    let file = |name: &str| {
        files
            .get(name)
            .ok_or_else(|| Error::archive(format!("the tarball has no {name}")))
    };
    let json =
        |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).map_err(Error::archive);
    let blob = |digest: &str| format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    let (config_path, layer_paths, tags): (String, Vec<String>, Vec<String>) =
        if files.contains_key("manifest.json") {
            let manifest = json(file("manifest.json")?)?;
            let first = &manifest[0];
            let strings = |v: &serde_json::Value| -> Vec<String> {
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            (
                first["Config"]
                    .as_str()
                    .ok_or_else(|| Error::archive("manifest.json names no Config"))?
                    .to_owned(),
                strings(&first["Layers"]),
                strings(&first["RepoTags"]),
            )
        } else {
            let index = json(file("index.json")?)?;
            let entry = &index["manifests"][0];
            let digest = entry["digest"]
                .as_str()
                .ok_or_else(|| Error::archive("index.json lists no manifest"))?;
            let manifest = json(file(&blob(digest))?)?;
            let config = manifest["config"]["digest"]
                .as_str()
                .ok_or_else(|| Error::archive("the manifest has no config"))?;
            let layers = manifest["layers"]
                .as_array()
                .map(|layers| {
                    layers
                        .iter()
                        .filter_map(|l| l["digest"].as_str().map(&blob))
                        .collect()
                })
                .unwrap_or_default();
            let tags = entry["annotations"]["io.containerd.image.name"]
                .as_str()
                .map(|n| vec![n.to_owned()])
                .unwrap_or_default();
            (blob(config), layers, tags)
        };
    let config_bytes = file(&config_path)?;
    let config = json(config_bytes)?;
    let diff_ids = registry::diff_ids(&config);
    if diff_ids.len() != layer_paths.len() {
        return Err(Error::archive(
            "the config's diff IDs do not match the layers",
        ));
    }
    let mut layers = Vec::new();
    for (path, diff_id) in layer_paths.iter().zip(&diff_ids) {
        let id = registry::layer_id(diff_id)?;
        if !inner.store.has_layer(&id) {
            let dir = inner.store.scratch("load")?;
            match registry::unpack_stream(file(path)?.as_slice(), "", &dir, diff_id) {
                Ok(()) => inner.store.commit_layer(&dir, &id)?,
                Err(error) => {
                    remove_tree(&dir);
                    return Err(error);
                }
            }
        }
        layers.push(id);
    }
    let image_id = digest_of(config_bytes);
    let record = ImageRecord {
        layers,
        config: Some(config),
    };
    inner.store.put_image(&image_id, &record)?;
    for tag in &tags {
        inner.store.tag(tag, &image_id)?;
    }
    Ok(pulled(&image_id, image_id.clone(), &record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_round_trip() {
        let config = ImageConfig {
            env: vec![("PATH".into(), "/bin".into())],
            workdir: "/w".into(),
            user: "65532".into(),
            entrypoint: vec!["/e".into()],
            cmd: vec!["c".into()],
            labels: [("a".to_owned(), "b".to_owned())].into(),
            exposed_ports: vec!["53/udp".into(), "8080/tcp".into()],
            healthcheck: Some(Healthcheck {
                args: vec!["curl -f localhost".into()],
                shell: true,
                interval: "30s".into(),
                timeout: "1m30s".into(),
                retries: 3,
                ..Healthcheck::default()
            }),
        };
        assert_eq!(image_config(Some(&config_document(&config))), config);
    }
}
