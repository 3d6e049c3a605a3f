//! The snapshot store: layer directories, image records and tags under one root.
//!
//! ```text
//! ROOT/layers/<id>/        one filesystem layer in overlayfs "diff" form: whiteouts are
//!                          0/0 character devices, opaque directories carry the
//!                          `trusted.overlay.opaque` xattr. Unpacked once, never modified.
//! ROOT/images/<hex>.json   an image: its layers bottom to top, and its OCI config if it
//!                          has one. Named by the image ID (`sha256:<hex>`).
//! ROOT/tags/<hex>.json     a name (`gantry.local/<state id>/cache:…`, a pulled reference) → image ID.
//! ROOT/origins/<id>.json   where a pulled layer came from: the registry blob it was unpacked
//!                          from (`LayerOrigin`), so that a push can mount that blob.
//! ROOT/tmp/                layers being written (unpacks, upper dirs of running steps),
//!                          renamed into `layers/` when complete.
//! ROOT/init/               the mount-point skeleton every step gets as its top lower layer.
//! ```
//!
//! Image IDs of pulled and loaded images are their config digests (as Docker's); IDs of
//! images gantry made (step results, builds) are the digest of their record. Both stay
//! valid across engine restarts, which matters because the solver persists them.
//! The root is the state directory's snapshot bucket, which `gantry_store::StateDir`
//! places (and removes on a full prune); this module lays out only what is inside it.

use std::fs;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use gantry_core::files::AtomicFile;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Layer IDs are 32 hex digits (128 bits): short, so that the overlayfs `lowerdir`
/// option of a long chain fits in one page.
pub(crate) const LAYER_ID_LEN: usize = 32;

/// An image as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ImageRecord {
    /// Layer IDs, bottom first.
    pub(crate) layers: Vec<String>,
    /// The OCI image configuration (raw JSON), when the image has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) config: Option<serde_json::Value>,
}

impl ImageRecord {
    /// The ID of an image gantry made: the digest of its record.
    pub(crate) fn derived_id(&self) -> String {
        let json = serde_json::to_vec(self).expect("records always serialise");
        gantry_core::Digest::of_bytes(&json).to_string()
    }
}

/// Where a pulled layer came from: the blob a registry holds of it. A push of
/// an image with that layer, as it is, to the same registry mounts that blob
/// rather than export and upload the layer again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LayerOrigin {
    /// The registry host, as a reference names it.
    pub(crate) registry: String,
    pub(crate) repository: String,
    /// The blob: digest, size and media type, as the manifest listed it.
    pub(crate) digest: String,
    pub(crate) size: i64,
    pub(crate) media_type: String,
    /// The digest of the uncompressed layer (the image config's diff ID).
    pub(crate) diff_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct TagRecord {
    name: String,
    image: String,
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// The snapshot store (see the module documentation).
#[derive(Debug)]
pub(crate) struct Store {
    root: PathBuf,
}

impl Store {
    pub(crate) fn open(root: &Path) -> Result<Self, Error> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true).mode(0o700);
        for dir in ["layers", "images", "tags", "tmp"] {
            let path = root.join(dir);
            builder
                .create(&path)
                .map_err(|source| Error::io("creating the snapshot store", &path, source))?;
        }
        let store = Self {
            root: root.to_owned(),
        };
        store.make_init_layer()?;
        Ok(store)
    }

    /// The store at `root` as it is, creating nothing (`None` when there is none):
    /// for readers outside an engine (`gantry prune`, tests).
    pub(crate) fn open_existing(root: &Path) -> Option<Self> {
        root.join("images").is_dir().then(|| Self {
            root: root.to_owned(),
        })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn layer_dir(&self, id: &str) -> PathBuf {
        self.root.join("layers").join(id)
    }

    pub(crate) fn init_dir(&self) -> PathBuf {
        self.root.join("init")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A fresh directory under `tmp/` named after this engine (so that a later engine
    /// can tell a dead engine's leftovers from live ones).
    pub(crate) fn scratch(&self, kind: &str) -> Result<PathBuf, Error> {
        let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let path = self.tmp_dir().join(format!(
            "{}-{sequence}-{kind}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|source| Error::io("creating a scratch directory", &path, source))?;
        Ok(path)
    }

    /// Moves a complete layer directory into the store as `id`. When `id` exists
    /// already (another pull unpacked the same layer meanwhile) the new copy is dropped.
    pub(crate) fn commit_layer(&self, dir: &Path, id: &str) -> Result<(), Error> {
        let target = self.layer_dir(id);
        match fs::rename(dir, &target) {
            Ok(()) => Ok(()),
            Err(_) if target.is_dir() => {
                remove_tree(dir);
                Ok(())
            }
            Err(source) => Err(Error::io("storing a layer", &target, source)),
        }
    }

    pub(crate) fn has_layer(&self, id: &str) -> bool {
        self.layer_dir(id).is_dir()
    }

    /// A new random layer ID.
    /// Where exported layer blobs are cached (`image::export_layer`).
    pub(crate) fn export_dir(&self) -> PathBuf {
        self.root.join("export")
    }

    pub(crate) fn new_layer_id() -> String {
        hex::encode(rand::random::<[u8; LAYER_ID_LEN / 2]>())
    }

    fn image_path(&self, id: &str) -> Option<PathBuf> {
        let hex = id.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.root.join("images").join(format!("{hex}.json")))
    }

    pub(crate) fn put_image(&self, id: &str, record: &ImageRecord) -> Result<(), Error> {
        let path = self
            .image_path(id)
            .ok_or_else(|| Error::BadId { id: id.to_owned() })?;
        write_atomic(
            &path,
            &serde_json::to_vec(record).expect("records serialise"),
        )
    }

    fn origin_path(&self, layer: &str) -> PathBuf {
        self.root.join("origins").join(format!("{layer}.json"))
    }

    /// Records where `layer` was pulled from, unless known already.
    pub(crate) fn set_origin(&self, layer: &str, origin: &LayerOrigin) -> Result<(), Error> {
        let path = self.origin_path(layer);
        if path.exists() {
            return Ok(());
        }
        let dir = self.root.join("origins");
        fs::create_dir_all(&dir).map_err(|source| Error::io("creating", &dir, source))?;
        write_atomic(
            &path,
            &serde_json::to_vec(origin).expect("origins serialise"),
        )
    }

    /// Where `layer` was pulled from, when it was.
    pub(crate) fn origin(&self, layer: &str) -> Option<LayerOrigin> {
        serde_json::from_slice(&fs::read(self.origin_path(layer)).ok()?).ok()
    }

    pub(crate) fn image(&self, id: &str) -> Option<ImageRecord> {
        let bytes = fs::read(self.image_path(id)?).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Whether the image and every layer it names exist.
    pub(crate) fn image_complete(&self, id: &str) -> bool {
        self.image(id)
            .is_some_and(|record| record.layers.iter().all(|layer| self.has_layer(layer)))
    }

    fn tag_path(&self, name: &str) -> PathBuf {
        let hex = gantry_core::Digest::of_bytes(name.as_bytes()).hex();
        self.root.join("tags").join(format!("{hex}.json"))
    }

    pub(crate) fn tag(&self, name: &str, image: &str) -> Result<(), Error> {
        let record = TagRecord {
            name: name.to_owned(),
            image: image.to_owned(),
        };
        write_atomic(
            &self.tag_path(name),
            &serde_json::to_vec(&record).expect("records serialise"),
        )
    }

    /// Gives the image `old` names the name `new` instead, if `old` names
    /// one. The image keeps a name, so nothing else changes: no layer
    /// becomes unused (unlike `remove`, no collection follows).
    pub(crate) fn rename_tag(&self, old: &str, new: &str) -> Result<(), Error> {
        let Some(image) = self.resolve_tag(old) else {
            return Ok(());
        };
        self.tag(new, &image)?;
        let path = self.tag_path(old);
        match fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io("removing an image name", &path, error))
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn resolve_tag(&self, name: &str) -> Option<String> {
        let bytes = fs::read(self.tag_path(name)).ok()?;
        let record: TagRecord = serde_json::from_slice(&bytes).ok()?;
        (record.name == name).then_some(record.image)
    }

    fn tags(&self) -> Vec<(PathBuf, TagRecord)> {
        let Ok(entries) = fs::read_dir(self.root.join("tags")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let bytes = fs::read(entry.path()).ok()?;
                Some((entry.path(), serde_json::from_slice(&bytes).ok()?))
            })
            .collect()
    }

    /// Every tag whose repository is one of `repos` (`repo:tag` names).
    pub(crate) fn tags_in(&self, repos: &[String]) -> Vec<String> {
        let mut names = self.names();
        names.retain(|name| {
            name.rsplit_once(':')
                .is_some_and(|(repo, _)| repos.iter().any(|wanted| wanted == repo))
        });
        names
    }

    /// Every tag, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tags().into_iter().map(|(_, tag)| tag.name).collect();
        names.sort();
        names
    }

    /// Removes images by ID or name. A name goes, and its image with it when no
    /// other name points there; an ID goes with every name pointing at it. Layers no
    /// remaining image uses are deleted. Missing names are not an error.
    pub(crate) fn remove(&self, names: &[String]) -> Result<usize, Error> {
        let mut tags = self.tags();
        let mut doomed = Vec::new();
        for name in names {
            if self.image_path(name).is_some() {
                doomed.push(name.clone());
                tags.retain(|(path, tag)| {
                    if tag.image == *name {
                        let _ = fs::remove_file(path);
                        false
                    } else {
                        true
                    }
                });
            } else if let Some(index) = tags.iter().position(|(_, tag)| tag.name == *name) {
                let (path, tag) = tags.remove(index);
                let _ = fs::remove_file(path);
                if !tags.iter().any(|(_, other)| other.image == tag.image) {
                    doomed.push(tag.image);
                }
            }
        }
        for id in &doomed {
            if let Some(path) = self.image_path(id) {
                let _ = fs::remove_file(path);
            }
        }
        self.collect_layers()
    }

    /// Deletes layers that no image names; returns how many went.
    fn collect_layers(&self) -> Result<usize, Error> {
        let mut used = std::collections::HashSet::new();
        let images = self.root.join("images");
        for entry in fs::read_dir(&images)
            .map_err(|source| Error::io("listing images", &images, source))?
            .flatten()
        {
            if let Some(record) = fs::read(entry.path())
                .ok()
                .and_then(|bytes| serde_json::from_slice::<ImageRecord>(&bytes).ok())
            {
                used.extend(record.layers);
            }
        }
        let layers = self.root.join("layers");
        let mut removed = 0;
        let mut gone = std::collections::HashSet::new();
        for entry in fs::read_dir(&layers)
            .map_err(|source| Error::io("listing layers", &layers, source))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !used.contains(&name) {
                remove_tree(&entry.path());
                let _ = fs::remove_file(self.origin_path(&name));
                gone.insert(name);
                removed += 1;
            }
        }
        self.remove_exports(&gone);
        Ok(removed)
    }

    /// Deletes the exported blobs (`export/LAYER-EPOCH.FORM`, and their
    /// `.json`) of the layers in `gone`.
    fn remove_exports(&self, gone: &std::collections::HashSet<String>) {
        let Ok(entries) = fs::read_dir(self.export_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name
                .split_once('-')
                .is_some_and(|(layer, _)| gone.contains(layer))
            {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Every image ID with a record (for prune).
    pub(crate) fn image_ids(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.root.join("images")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".json")
                    .map(|hex| format!("sha256:{hex}"))
            })
            .collect()
    }

    /// The skeleton of mount points a step needs (`/proc`, `/sys`, `/dev` and the
    /// files gantry bind-mounts under `/etc`), as a lower layer above the image: the OCI
    /// runtime then finds every mount point in place and creates none in the step's
    /// upper dir, so none ends up in its snapshot (Docker's "init layer").
    fn make_init_layer(&self) -> Result<(), Error> {
        let init = self.init_dir();
        if init.join("etc/hostname").exists() {
            return Ok(());
        }
        let staging = self.scratch("init")?;
        for dir in ["proc", "sys", "dev", "etc"] {
            let path = staging.join(dir);
            fs::create_dir(&path)
                .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o755)))
                .map_err(|source| Error::io("creating the init layer", &path, source))?;
        }
        for file in ["etc/hosts", "etc/resolv.conf", "etc/hostname"] {
            let path = staging.join(file);
            fs::write(&path, b"")
                .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o644)))
                .map_err(|source| Error::io("creating the init layer", &path, source))?;
        }
        if fs::rename(&staging, &init).is_err() {
            remove_tree(&staging);
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` with gantry's one atomic write (a temp file beside it,
/// renamed into place when complete).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    AtomicFile::new(path)
        .write(bytes)
        .map(drop)
        .map_err(|error| Error::io("writing a store record", path, error.source))
}

/// Removes a directory tree, best effort (logged). Overlayfs work directories hold
/// entries without any permission bits, which `remove_dir_all` handles as root.
pub(crate) fn remove_tree(path: &Path) {
    if let Err(error) = fs::remove_dir_all(path) {
        if error.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), %error, "cannot remove a directory");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_removal_collect_unused_layers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        fs::create_dir_all(store.export_dir()).unwrap();
        for id in ["a".repeat(32), "b".repeat(32)] {
            fs::create_dir(store.layer_dir(&id)).unwrap();
            fs::write(store.export_dir().join(format!("{id}-0.tar")), "").unwrap();
        }
        let base = ImageRecord {
            layers: vec!["a".repeat(32)],
            config: None,
        };
        let child = ImageRecord {
            layers: vec!["a".repeat(32), "b".repeat(32)],
            config: None,
        };
        let (base_id, child_id) = (base.derived_id(), child.derived_id());
        store.put_image(&base_id, &base).unwrap();
        store.put_image(&child_id, &child).unwrap();
        store.tag("gantry.local/cache:1", &child_id).unwrap();
        assert_eq!(
            store.resolve_tag("gantry.local/cache:1").as_deref(),
            Some(child_id.as_str())
        );
        assert!(store.image_complete(&child_id));
        store.remove(&["gantry.local/cache:1".to_owned()]).unwrap();
        assert!(store.image(&child_id).is_none());
        assert!(store.image(&base_id).is_some());
        assert!(store.has_layer(&"a".repeat(32)));
        assert!(!store.has_layer(&"b".repeat(32)));
        let exported = |id: String| store.export_dir().join(format!("{id}-0.tar")).exists();
        assert!(exported("a".repeat(32)));
        assert!(
            !exported("b".repeat(32)),
            "a removed layer's exported blob goes with it"
        );
        assert!(store.init_dir().join("etc/resolv.conf").is_file());
    }

    #[test]
    fn a_renamed_tag_names_the_same_image_and_the_old_name_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = format!("sha256:{}", "d".repeat(64));
        store.tag("127.0.0.1:4321/app:v1", &id).unwrap();
        store
            .rename_tag("127.0.0.1:4321/app:v1", "reg:5000/app:v1")
            .unwrap();
        assert_eq!(store.names(), ["reg:5000/app:v1"]);
        assert_eq!(store.resolve_tag("reg:5000/app:v1"), Some(id));
        // A name never recorded: nothing to do, and no error.
        store
            .rename_tag("127.0.0.1:1/none:v1", "x:1/none:v1")
            .unwrap();
        assert_eq!(store.names(), ["reg:5000/app:v1"]);
    }

    #[test]
    fn tags_in_lists_only_the_named_repositories() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = format!("sha256:{}", "c".repeat(64));
        for name in [
            "gantry.local/aaaa/cache:1",
            "gantry.local/aaaa/image:2",
            "gantry.local/bbbb/cache:3",
            "gantry.local/aaaa/cache-other:4",
            "127.0.0.1:5000/busybox:latest",
        ] {
            store.tag(name, &id).unwrap();
        }
        let repos = [
            "gantry.local/aaaa/cache".to_owned(),
            "gantry.local/aaaa/image".to_owned(),
        ];
        assert_eq!(
            store.tags_in(&repos),
            ["gantry.local/aaaa/cache:1", "gantry.local/aaaa/image:2"]
        );
    }
}
