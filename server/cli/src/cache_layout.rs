//! The remote cache tier in a local OCI image layout directory
//! (`--cache oci-layout:DIR`, docs/cache.md): what a CI cache action
//! (`actions/cache`, GitLab's `cache:`) saves and restores between jobs.
//!
//! The entries are those of the registry form. An entry is an OCI manifest
//! whose config blob holds the step's record; `index.json` lists it with the
//! cache key as its `org.opencontainers.image.ref.name` (the tag of the
//! registry form). The step's filesystem is an OCI image manifest in the same
//! `blobs/sha256/` directory, named by digest in the entry, its layers
//! uncompressed tars shared by digest between entries; a layer pulled
//! unchanged from a registry may instead be named by the repository it came
//! from (`Filesystem::Layers`), and is then fetched from there by a reader
//! that needs it (`foreign_layers`).
//!
//! Writes are atomic: every blob and `index.json` is written to a temporary
//! file and renamed into place, so an engine killed mid-write leaves at worst
//! an unreferenced temporary file, never a half entry. Every blob is checked
//! against its digest when it is read. Writers (and prunes) of any number of
//! engines take an exclusive lock on `DIR/gantry.lock` while they add blobs
//! and update the index; the first writer of a key wins. Readers take no
//! lock: they see the old index or the new one.
//!
//! This module owns the directory's format; `cache` decides what to store
//! and when, and the runtime saves and loads the filesystems.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context as _, Result};
use gantry_core::runtime::{CacheImage, CacheLayer, PulledLayer};
use sha2::{Digest as _, Sha256};

/// The index's media type.
const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// An image manifest's media type (entries and filesystems alike).
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// A filesystem image's config.
const IMAGE_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// A filesystem layer: an uncompressed tar, as the runtimes save them.
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
/// The annotation that names an index entry (the registry form's tag).
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation that holds the cache key.
const KEY_ANNOTATION: &str = "dev.gantry.cache.key";
/// On a filesystem layer pulled unchanged from a registry: the repository
/// (`host/name`) to fetch the blob from, which the directory does not hold.
const SOURCE_ANNOTATION: &str = "dev.gantry.cache.source";
/// On a filesystem manifest (here and in a registry): the image's ID in the
/// runtime that wrote it,
/// when that is not the config's digest (`CacheImage::runtime_id`).
pub(crate) const RUNTIME_ID_ANNOTATION: &str = "dev.gantry.cache.runtime-id";
/// The file writers lock.
const LOCK_FILE: &str = "gantry.lock";
/// Temporary files start with this (in the directory they are renamed into).
const TEMP_PREFIX: &str = ".gantry-tmp-";

/// Why an entry or filesystem cannot be used.
#[derive(Debug)]
pub(crate) enum Fault {
    /// Present but not sound (a digest or format mismatch): ignored and replaced.
    Corrupt(String),
    /// The directory cannot be read at all.
    Unreadable(String),
}

/// One entry as `index.json` lists it.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    /// The cache key (hex).
    pub(crate) key: String,
    /// The entry manifest's digest.
    pub(crate) manifest: String,
}

/// A step's filesystem as a runtime gave it, for `Layout::put`.
pub(crate) enum Filesystem {
    /// A whole saved image (`Runtime::save_as_is`).
    Saved(bytes::Bytes),
    /// Its config and layers (`Runtime::cache_layers`).
    Layers(CacheImage),
}

/// A layer `Layout::put` stores: a saved image's, or a runtime's.
enum NewLayer<'a> {
    Bytes(&'a [u8]),
    Runtime(&'a CacheLayer),
}

/// A local OCI image layout directory holding cache entries.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    dir: PathBuf,
    /// The entries of the last `index.json` read, by the file's identity
    /// (every write renames a new file into place, so a new inode).
    listing: Arc<Mutex<Option<Listing>>>,
}

/// The entries of one `index.json`, and which file they were read from.
type Listing = (IndexFile, Arc<Vec<Listed>>);

/// Which `index.json` a listing was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IndexFile {
    inode: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl Layout {
    /// The layout at `dir` (absolute), created when missing if `create`
    /// (otherwise a missing layout reads as empty: a CI cache not restored).
    pub(crate) fn open(dir: &Path, create: bool) -> Result<Self> {
        let layout = Self {
            dir: dir.to_owned(),
            listing: Arc::default(),
        };
        if create && !dir.join("oci-layout").is_file() {
            std::fs::create_dir_all(layout.blobs())
                .with_context(|| format!("while creating {}", dir.display()))?;
            let _lock = layout.lock()?;
            if !dir.join("oci-layout").is_file() {
                layout.write_file(
                    &dir.join("index.json"),
                    &serde_json::to_vec_pretty(&empty_index()).expect("serialises"),
                )?;
                layout.write_file(
                    &dir.join("oci-layout"),
                    br#"{"imageLayoutVersion":"1.0.0"}"#,
                )?;
            }
        }
        Ok(layout)
    }

    /// The layout at `dir`, which must be one (for `gantry cache --remote`).
    pub(crate) fn existing(dir: &Path) -> Result<Self> {
        if !dir.join("oci-layout").is_file() {
            bail!(
                "{} is not an OCI image layout directory (it has no oci-layout file); give the directory --cache oci-layout:DIR wrote",
                dir.display()
            );
        }
        Self::open(dir, false)
    }

    fn blobs(&self) -> PathBuf {
        self.dir.join("blobs").join("sha256")
    }

    fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.blobs().join(hex))
    }

    /// Holds every other writer of the directory off until dropped.
    fn lock(&self) -> Result<std::fs::File> {
        let path = self.dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("while opening {}", path.display()))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .with_context(|| format!("while locking {}", path.display()))?;
        Ok(file)
    }

    /// Writes `path` whole or not at all: a temporary file beside it, synced,
    /// renamed over it.
    fn write_file(&self, path: &Path, data: &[u8]) -> Result<()> {
        let parent = path.parent().expect("layout paths have a parent");
        let temp = parent.join(format!("{TEMP_PREFIX}{:016x}", rand::random::<u64>()));
        let written = (|| {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(data)?;
            file.sync_all()?;
            std::fs::rename(&temp, path)
        })();
        if let Err(error) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(error).with_context(|| format!("while writing {}", path.display()));
        }
        Ok(())
    }

    /// Stores `data` as a blob unless a sound copy is there; returns its digest.
    fn put_blob(&self, data: &[u8]) -> Result<String> {
        let digest = digest_of(data);
        let path = self.blob_path(&digest).expect("a sha256 digest");
        let sound = std::fs::read(&path).is_ok_and(|stored| digest_of(&stored) == digest);
        if !sound {
            self.write_file(&path, data)?;
        }
        Ok(digest)
    }

    /// Stores the file at `source` as the blob `digest` unless a sound copy
    /// is there, checking it against `digest` as it is copied; returns its
    /// size.
    fn put_file_blob(&self, source: &Path, digest: &str) -> Result<u64> {
        let path = self
            .blob_path(digest)
            .with_context(|| format!("{digest:?} is not a sha256 digest"))?;
        if let Ok((stored, size)) = file_digest(&path, None) {
            if stored == digest {
                return Ok(size);
            }
        }
        let parent = path.parent().expect("layout paths have a parent");
        let temp = parent.join(format!("{TEMP_PREFIX}{:016x}", rand::random::<u64>()));
        let copied = (|| {
            let (copied, size) = file_digest(source, Some(&temp))?;
            if copied != digest {
                anyhow::bail!("{} is {copied}, not {digest}", source.display());
            }
            std::fs::File::open(&temp)?.sync_all()?;
            std::fs::rename(&temp, &path)?;
            Ok(size)
        })();
        if copied.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        copied.with_context(|| format!("while writing {}", path.display()))
    }

    /// The blob `digest`, checked against it (and against `size` when given).
    fn blob(&self, digest: &str, size: Option<i64>) -> Result<Vec<u8>, Fault> {
        let Some(path) = self.blob_path(digest) else {
            return Err(Fault::Corrupt(format!("{digest:?} is not a sha256 digest")));
        };
        let data = match std::fs::read(&path) {
            Ok(data) => data,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(Fault::Corrupt(format!("blob {digest} is missing")))
            }
            Err(error) => {
                return Err(Fault::Unreadable(format!(
                    "reading {}: {error}",
                    path.display()
                )))
            }
        };
        if digest_of(&data) != digest || size.is_some_and(|size| size != data.len() as i64) {
            return Err(Fault::Corrupt(format!(
                "blob {digest} does not match its digest"
            )));
        }
        Ok(data)
    }

    /// `index.json`; an empty index when there is none yet.
    fn index(&self) -> Result<serde_json::Value, Fault> {
        let path = self.dir.join("index.json");
        match std::fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data)
                .map_err(|error| Fault::Unreadable(format!("{}: {error}", path.display()))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(empty_index()),
            Err(error) => Err(Fault::Unreadable(format!(
                "reading {}: {error}",
                path.display()
            ))),
        }
    }

    /// The entries `index.json` lists, in its order (parsed again only when
    /// the file changed: lookups of a pipeline read it once).
    pub(crate) fn listed(&self) -> Result<Arc<Vec<Listed>>, Fault> {
        let path = self.dir.join("index.json");
        let file = std::fs::metadata(&path).ok().map(|meta| IndexFile {
            inode: std::os::unix::fs::MetadataExt::ino(&meta),
            len: meta.len(),
            modified: meta.modified().ok(),
        });
        let mut cached = self.listing.lock().expect("never poisoned");
        if let (Some(file), Some((read, listed))) = (file, cached.as_ref()) {
            if file == *read {
                return Ok(listed.clone());
            }
        }
        let index = self.index()?;
        let listed: Arc<Vec<Listed>> = Arc::new(
            index["manifests"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|descriptor| {
                    let key = descriptor["annotations"][KEY_ANNOTATION].as_str()?;
                    let manifest = descriptor["digest"].as_str()?;
                    Some(Listed {
                        key: key.to_owned(),
                        manifest: manifest.to_owned(),
                    })
                })
                .collect(),
        );
        *cached = file.map(|file| (file, listed.clone()));
        Ok(listed)
    }

    /// The manifest digest `key` (hex) is listed under, if any.
    pub(crate) fn manifest_of(&self, key: &str) -> Result<Option<String>, Fault> {
        Ok(self
            .listed()?
            .iter()
            .find(|listed| listed.key == key)
            .map(|listed| listed.manifest.clone()))
    }

    /// The config blob (the entry's record) of the entry `manifest`, checked,
    /// provided it has `media_type`.
    pub(crate) fn entry_blob(&self, manifest: &str, media_type: &str) -> Result<Vec<u8>, Fault> {
        let manifest = self.blob(manifest, None)?;
        let config = serde_json::from_slice::<serde_json::Value>(&manifest)
            .ok()
            .map(|m| m["config"].clone())
            .filter(|c| c["mediaType"] == media_type)
            .ok_or_else(|| Fault::Corrupt("its manifest is not a gantry cache entry".into()))?;
        let digest = config["digest"].as_str().unwrap_or_default();
        self.blob(digest, config["size"].as_i64())
    }

    /// The layers of the entry `manifest` (a path read's files) as digests
    /// and sizes, at most `max` bytes in all; each is read (and checked)
    /// only when asked for (`file`).
    pub(crate) fn entry_layers(
        &self,
        manifest: &str,
        max: i64,
    ) -> Result<Vec<(gantry_core::Digest, u64)>, Fault> {
        let manifest = self.blob(manifest, None)?;
        let manifest = serde_json::from_slice::<serde_json::Value>(&manifest)
            .map_err(|_| Fault::Corrupt("its manifest is not a gantry cache entry".into()))?;
        let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
        let total: i64 = layers.iter().filter_map(|l| l["size"].as_i64()).sum();
        if total > max {
            return Err(Fault::Corrupt("its files are larger than any read".into()));
        }
        layers
            .iter()
            .map(|layer| {
                let digest = layer["digest"].as_str().unwrap_or_default();
                let blob = sha256_digest(digest)
                    .ok_or_else(|| Fault::Corrupt(format!("{digest:?} is not a sha256 digest")))?;
                let size = layer["size"]
                    .as_u64()
                    .ok_or_else(|| Fault::Corrupt(format!("layer {digest} has no size")))?;
                // A missing or truncated file is found now, by its size;
                // one whose bytes were changed when it is read.
                let on_disk = self
                    .blob_path(digest)
                    .and_then(|path| std::fs::metadata(path).ok())
                    .map(|meta| meta.len());
                if on_disk != Some(size) {
                    return Err(Fault::Corrupt(format!(
                        "blob {digest} is missing or does not match its digest"
                    )));
                }
                Ok((blob, size))
            })
            .collect()
    }

    /// The file `blob` of a path read entry, `size` bytes, checked.
    pub(crate) fn file(&self, blob: &gantry_core::Digest, size: u64) -> Result<Vec<u8>, Fault> {
        self.blob(&blob.to_string(), Some(size as i64))
    }

    /// Adds an entry for `key` (hex) that carries its data itself: the
    /// record `config` of `media_type` and `files` as layers of
    /// `file_media_type` (a path read). Returns false, writing nothing, when
    /// `key` has an entry already and not `replace`.
    #[allow(clippy::too_many_arguments, reason = "one entry, described in full")]
    pub(crate) fn put_artifact(
        &self,
        key: &str,
        media_type: &str,
        artifact_type: &str,
        config: &[u8],
        files: &[Vec<u8>],
        file_media_type: &str,
        replace: bool,
    ) -> Result<bool> {
        let _lock = self.lock()?;
        let index = self
            .index()
            .map_err(|fault| anyhow::anyhow!("{}", fault_text(&fault)))?;
        let Some(existing) = Self::slot_of(&index, key, replace)? else {
            return Ok(false);
        };
        let mut layers = Vec::new();
        for file in files {
            layers.push(serde_json::json!({
                "mediaType": file_media_type,
                "digest": self.put_blob(file)?,
                "size": file.len(),
            }));
        }
        let record = self.put_blob(config)?;
        let manifest = entry_manifest(
            artifact_type,
            media_type,
            &record,
            config.len(),
            layers,
            key,
        );
        self.list(index, existing, key, artifact_type, &manifest)?;
        Ok(true)
    }

    /// Where `key`'s entry is in `index` (`Some(None)`: not there yet);
    /// `None` when it is there and not to be replaced (first writer wins).
    fn slot_of(
        index: &serde_json::Value,
        key: &str,
        replace: bool,
    ) -> Result<Option<Option<usize>>> {
        let manifests = index["manifests"]
            .as_array()
            .context("index.json has no manifests list")?;
        let existing = manifests
            .iter()
            .position(|d| d["annotations"][KEY_ANNOTATION] == key);
        if existing.is_some() && !replace {
            return Ok(None);
        }
        Ok(Some(existing))
    }

    /// Writes the entry `manifest` for `key` and lists it in `index` (at
    /// `existing`, replacing what was there), then writes the index.
    fn list(
        &self,
        mut index: serde_json::Value,
        existing: Option<usize>,
        key: &str,
        artifact_type: &str,
        manifest: &[u8],
    ) -> Result<()> {
        let manifest_digest = self.put_blob(manifest)?;
        let descriptor = serde_json::json!({
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": artifact_type,
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": { REF_NAME: key, KEY_ANNOTATION: key },
        });
        let manifests = index["manifests"]
            .as_array_mut()
            .context("index.json has no manifests list")?;
        match existing {
            Some(at) => manifests[at] = descriptor,
            None => manifests.push(descriptor),
        }
        self.write_file(
            &self.dir.join("index.json"),
            &serde_json::to_vec_pretty(&index).expect("serialises"),
        )
    }

    /// Adds an entry for `key` (hex): the filesystem (its layers, config and
    /// manifest), then the entry blob `entry_of(filesystem digest)` of
    /// `media_type`, then the index line, under the writers' lock. Returns
    /// false, writing nothing, when `key` has an entry already and not
    /// `replace` (first writer wins). A runtime's layer tars are copied in
    /// unless the directory has them; its pulled layers are listed with the
    /// repository they came from and not copied (a registry push mounts them
    /// likewise): a reader fetches those from there when it needs the
    /// filesystem (`foreign_layers`).
    pub(crate) fn put(
        &self,
        key: &str,
        filesystem: &Filesystem,
        media_type: &str,
        artifact_type: &str,
        replace: bool,
        entry_of: impl FnOnce(&str) -> Vec<u8>,
    ) -> Result<bool> {
        let saved;
        let (config, layers, runtime_id): (&[u8], Vec<NewLayer<'_>>, _) = match filesystem {
            Filesystem::Saved(tarball) => {
                saved = SavedImage::read(tarball)?;
                let layers = saved.layers.iter().map(|l| NewLayer::Bytes(l)).collect();
                (&saved.config, layers, None)
            }
            Filesystem::Layers(image) => (
                &image.config,
                image.layers.iter().map(NewLayer::Runtime).collect(),
                image.runtime_id.as_deref(),
            ),
        };
        let _lock = self.lock()?;
        let index = self
            .index()
            .map_err(|fault| anyhow::anyhow!("{}", fault_text(&fault)))?;
        let Some(existing) = Self::slot_of(&index, key, replace)? else {
            return Ok(false);
        };
        let config_digest = self.put_blob(config)?;
        let layers = layers
            .iter()
            .map(|layer| self.put_layer(layer))
            .collect::<Result<Vec<_>>>()?;
        let mut filesystem = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {
                "mediaType": IMAGE_CONFIG_MEDIA_TYPE,
                "digest": config_digest,
                "size": config.len(),
            },
            "layers": layers,
        });
        if let Some(id) = runtime_id.filter(|id| **id != config_digest) {
            filesystem["annotations"] = serde_json::json!({ RUNTIME_ID_ANNOTATION: id });
        }
        let filesystem = serde_json::to_vec(&filesystem).expect("serialises");
        let filesystem = self.put_blob(&filesystem)?;
        let entry = entry_of(&filesystem);
        let entry_digest = self.put_blob(&entry)?;
        let manifest = entry_manifest(
            artifact_type,
            media_type,
            &entry_digest,
            entry.len(),
            Vec::new(),
            key,
        );
        self.list(index, existing, key, artifact_type, &manifest)?;
        Ok(true)
    }

    /// Stores what `layer` needs and returns its descriptor.
    fn put_layer(&self, layer: &NewLayer<'_>) -> Result<serde_json::Value> {
        Ok(match layer {
            NewLayer::Bytes(data) => serde_json::json!({
                "mediaType": LAYER_MEDIA_TYPE,
                "digest": self.put_blob(data)?,
                "size": data.len(),
            }),
            NewLayer::Runtime(CacheLayer::Tar { path, digest }) => serde_json::json!({
                "mediaType": LAYER_MEDIA_TYPE,
                "digest": digest,
                "size": self.put_file_blob(path, digest)?,
            }),
            NewLayer::Runtime(CacheLayer::Pulled(PulledLayer {
                repository,
                digest,
                size,
                media_type,
            })) => serde_json::json!({
                "mediaType": media_type,
                "digest": digest,
                "size": size,
                "annotations": { SOURCE_ANNOTATION: repository },
            }),
            NewLayer::Runtime(CacheLayer::OfImage { reference, .. }) => {
                anyhow::bail!("layer of {reference} not named by its registry blob")
            }
        })
    }

    /// The IDs a runtime may hold the filesystem image `manifest` under:
    /// its config digest, and the writer's own ID for it where that differs
    /// (`CacheImage::runtime_id`).
    pub(crate) fn image_ids_of(&self, manifest: &str) -> Result<Vec<String>, Fault> {
        let manifest = self.filesystem_manifest(manifest)?;
        let config = manifest["config"]["digest"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Fault::Corrupt("its filesystem manifest is not valid".into()))?;
        let runtime_id = manifest["annotations"][RUNTIME_ID_ANNOTATION]
            .as_str()
            .filter(|id| sha256_digest(id).is_some())
            .map(str::to_owned);
        Ok(std::iter::once(config).chain(runtime_id).collect())
    }

    /// The layers of the filesystem image `manifest` that the directory
    /// lists with the repository they came from and does not hold (see
    /// `put`): what `image_tarball` needs fetched.
    pub(crate) fn foreign_layers(&self, manifest: &str) -> Result<Vec<PulledLayer>, Fault> {
        let manifest = self.filesystem_manifest(manifest)?;
        let mut foreign = Vec::new();
        for layer in manifest["layers"].as_array().into_iter().flatten() {
            let Some(repository) = layer["annotations"][SOURCE_ANNOTATION].as_str() else {
                continue;
            };
            let (Some(digest), Some(size), Some(media_type)) = (
                layer["digest"].as_str(),
                layer["size"].as_u64(),
                layer["mediaType"].as_str(),
            ) else {
                return Err(Fault::Corrupt(
                    "its filesystem manifest names a layer without digest, size or media type"
                        .into(),
                ));
            };
            if self.blob_path(digest).is_some_and(|path| path.is_file()) {
                continue;
            }
            foreign.push(PulledLayer {
                repository: repository.to_owned(),
                digest: digest.to_owned(),
                size,
                media_type: media_type.to_owned(),
            });
        }
        Ok(foreign)
    }

    fn filesystem_manifest(&self, manifest: &str) -> Result<serde_json::Value, Fault> {
        let bytes = self.blob(manifest, None)?;
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .map_err(|_| Fault::Corrupt("its filesystem manifest is not valid".into()))
    }

    /// The filesystem image `manifest` as a tarball both runtimes load
    /// (`docker save`'s `manifest.json` form) as `name`, every blob checked;
    /// `fetched`: the foreign layers' blobs by digest (checked by whoever
    /// fetched them).
    pub(crate) fn image_tarball(
        &self,
        manifest: &str,
        name: &str,
        fetched: &HashMap<String, Vec<u8>>,
    ) -> Result<Vec<u8>, Fault> {
        let manifest = self.filesystem_manifest(manifest)?;
        let descriptor = |d: &serde_json::Value| -> Result<(String, Option<i64>), Fault> {
            match d["digest"].as_str() {
                Some(digest) => Ok((digest.to_owned(), d["size"].as_i64())),
                None => Err(Fault::Corrupt(
                    "its filesystem manifest names a blob without a digest".into(),
                )),
            }
        };
        let config = descriptor(&manifest["config"])?;
        let layers = manifest["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(descriptor)
            .collect::<Result<Vec<_>, _>>()?;
        let path = |digest: &str| format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
        let mut builder = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8]| -> Result<(), Fault> {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            builder
                .append_data(&mut header, name, data)
                .map_err(|error| Fault::Unreadable(format!("writing a tarball: {error}")))
        };
        let mut seen = HashSet::new();
        for (digest, size) in std::iter::once(&config).chain(&layers) {
            if seen.insert(digest.clone()) {
                match fetched.get(digest) {
                    Some(blob) => add(&path(digest), blob)?,
                    None => add(&path(digest), &self.blob(digest, *size)?)?,
                }
            }
        }
        let docker_manifest = serde_json::json!([{
            "Config": path(&config.0),
            "RepoTags": [name],
            "Layers": layers.iter().map(|(digest, _)| path(digest)).collect::<Vec<_>>(),
        }]);
        add(
            "manifest.json",
            &serde_json::to_vec(&docker_manifest).expect("serialises"),
        )?;
        builder
            .into_inner()
            .map_err(|error| Fault::Unreadable(format!("writing a tarball: {error}")))
    }

    /// Removes the entries with manifest digest in `manifests` from the index,
    /// then every blob no remaining entry reaches (and temporary files of
    /// killed writers). Returns the blobs removed and their bytes.
    pub(crate) fn remove(&self, manifests: &HashSet<String>) -> Result<(usize, u64)> {
        let _lock = self.lock()?;
        let mut index = self
            .index()
            .map_err(|fault| anyhow::anyhow!("{}", fault_text(&fault)))?;
        if let Some(list) = index["manifests"].as_array_mut() {
            let before = list.len();
            list.retain(|d| !d["digest"].as_str().is_some_and(|m| manifests.contains(m)));
            if list.len() != before {
                self.write_file(
                    &self.dir.join("index.json"),
                    &serde_json::to_vec_pretty(&index).expect("serialises"),
                )?;
            }
        }
        // What the kept entries reach: manifest, record, filesystem manifest,
        // its config and layers; and whatever else the index lists (images
        // other tools put in the same directory keep their blobs).
        let mut reachable = HashSet::new();
        for descriptor in index["manifests"].as_array().into_iter().flatten() {
            if let Some(digest) = descriptor["digest"].as_str() {
                self.reach(digest, &mut reachable);
            }
        }
        // Temporary files of writers that were killed (none runs: we hold the lock).
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let mut removed = (0, 0);
        let blobs = self.blobs();
        let entries = match std::fs::read_dir(&blobs) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
            Err(error) => {
                return Err(error).with_context(|| format!("while listing {}", blobs.display()))
            }
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("while listing {}", blobs.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if reachable.contains(&format!("sha256:{name}")) {
                continue;
            }
            let size = entry.metadata().map_or(0, |m| m.len());
            std::fs::remove_file(entry.path())
                .with_context(|| format!("while removing {}", entry.path().display()))?;
            removed.0 += usize::from(!name.starts_with(TEMP_PREFIX));
            removed.1 += size;
        }
        Ok(removed)
    }

    /// The blobs the entry `manifest` reaches (as `remove` keeps them: its
    /// manifest, record, filesystem manifest, config and layers), each with
    /// its size on disk; missing ones are left out.
    pub(crate) fn footprint(&self, manifest: &str) -> BTreeMap<String, u64> {
        let mut reachable = HashSet::new();
        self.reach(manifest, &mut reachable);
        reachable
            .into_iter()
            .filter_map(|digest| {
                let size = std::fs::metadata(self.blob_path(&digest)?).ok()?.len();
                Some((digest, size))
            })
            .collect()
    }

    /// Adds the blobs `manifest` reaches to `reachable` (unreadable ones are
    /// left out: they go).
    fn reach(&self, manifest: &str, reachable: &mut HashSet<String>) {
        let Ok(bytes) = self.blob(manifest, None) else {
            return;
        };
        reachable.insert(manifest.to_owned());
        let Ok(manifest) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return;
        };
        let config = manifest["config"]["digest"].as_str().unwrap_or_default();
        reachable.insert(config.to_owned());
        for layer in manifest["layers"].as_array().into_iter().flatten() {
            if let Some(digest) = layer["digest"].as_str() {
                reachable.insert(digest.to_owned());
            }
        }
        // A nested index (another tool's multi-platform image).
        for child in manifest["manifests"].as_array().into_iter().flatten() {
            if let Some(digest) = child["digest"].as_str().filter(|d| !reachable.contains(*d)) {
                self.reach(digest, reachable);
            }
        }
        // An entry's record names its filesystem manifest.
        if manifest["config"]["mediaType"] != IMAGE_CONFIG_MEDIA_TYPE {
            let filesystem = self
                .blob(config, None)
                .ok()
                .and_then(|record| serde_json::from_slice::<serde_json::Value>(&record).ok())
                .and_then(|record| record["image"].as_str().map(str::to_owned));
            if let Some(filesystem) = filesystem.filter(|f| !reachable.contains(f)) {
                self.reach(&filesystem, reachable);
            }
        }
    }
}

/// An entry's manifest: its record `record` (`size` bytes, of `media_type`)
/// as config, and `layers`.
fn entry_manifest(
    artifact_type: &str,
    media_type: &str,
    record: &str,
    size: usize,
    layers: Vec<serde_json::Value>,
    key: &str,
) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": artifact_type,
        "config": {
            "mediaType": media_type,
            "digest": record,
            "size": size,
        },
        "layers": layers,
        "annotations": { KEY_ANNOTATION: key },
    }))
    .expect("serialises")
}

/// A fault as text, for errors and warnings.
pub(crate) fn fault_text(fault: &Fault) -> &str {
    match fault {
        Fault::Corrupt(why) | Fault::Unreadable(why) => why,
    }
}

fn empty_index() -> serde_json::Value {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [],
    })
}

/// `path` with `.` and `..` resolved lexically (a symlink target inside a tarball).
fn normalise(path: &Path) -> String {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(part) => parts.push(part),
            _ => {}
        }
    }
    parts
        .iter()
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The digest `sha256:<hex>` names, if it is one.
pub(crate) fn sha256_digest(text: &str) -> Option<gantry_core::Digest> {
    gantry_core::Digest::from_hex(text.strip_prefix("sha256:")?)
}

fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The digest and size of the file at `path`, read once; copied to `copy`
/// as it is read when given.
fn file_digest(path: &Path, copy: Option<&Path>) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut copy = copy.map(std::fs::File::create).transpose()?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    let mut size = 0;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        if let Some(copy) = &mut copy {
            copy.write_all(&buffer[..read])?;
        }
        size += read as u64;
    }
    Ok((format!("sha256:{}", hex::encode(hasher.finalize())), size))
}

/// An image as a runtime's `save_image` wrote it (`manifest.json` form:
/// dockerd's, and the native runtime's, which also writes an OCI index).
struct SavedImage {
    config: Vec<u8>,
    /// Uncompressed layer tars, bottom first.
    layers: Vec<Vec<u8>>,
}

impl SavedImage {
    fn read(tarball: &[u8]) -> Result<Self> {
        let mut files: HashMap<String, Vec<u8>> = HashMap::new();
        // dockerd saves a layer that repeats an earlier one as a symlink to it.
        let mut links: HashMap<String, String> = HashMap::new();
        let mut archive = tar::Archive::new(tarball);
        for entry in archive.entries().context("while reading a saved image")? {
            let mut entry = entry.context("while reading a saved image")?;
            let name = String::from_utf8_lossy(&entry.path_bytes())
                .trim_start_matches("./")
                .to_owned();
            let kind = entry.header().entry_type();
            if kind.is_symlink() {
                if let Ok(Some(target)) = entry.link_name() {
                    let parent = Path::new(&name).parent().unwrap_or(Path::new(""));
                    let target = normalise(&parent.join(target));
                    links.insert(name, target);
                }
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let mut data = Vec::new();
            entry
                .read_to_end(&mut data)
                .context("while reading a saved image")?;
            files.insert(name, data);
        }
        let take = |name: &str| {
            let name = links.get(name).map_or(name, String::as_str);
            files
                .get(name)
                .cloned()
                .with_context(|| format!("the saved image has no {name}"))
        };
        let manifest: serde_json::Value = serde_json::from_slice(&take("manifest.json")?)
            .context("while reading a saved image's manifest.json")?;
        let first = &manifest[0];
        let config_path = first["Config"]
            .as_str()
            .context("the saved image's manifest.json names no Config")?;
        let layer_paths: Vec<String> = first["Layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l.as_str().map(str::to_owned))
            .collect();
        let config = take(config_path)?;
        let layers = layer_paths
            .iter()
            .map(|path| take(path))
            .collect::<Result<_>>()?;
        Ok(Self { config, layers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved_image(layers: &[&[u8]]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, name, data).unwrap();
        };
        add("abc.json", br#"{"rootfs":{}}"#);
        let names: Vec<String> = (0..layers.len())
            .map(|i| format!("l{i}/layer.tar"))
            .collect();
        for (name, data) in names.iter().zip(layers) {
            add(name, data);
        }
        add(
            "manifest.json",
            &serde_json::to_vec(&serde_json::json!([{"Config": "abc.json", "Layers": names}]))
                .unwrap(),
        );
        builder.into_inner().unwrap()
    }

    const MEDIA: &str = "application/vnd.gantry.cache.entry.v1+json";

    fn put(layout: &Layout, key: &str, layers: &[&[u8]], replace: bool) -> bool {
        layout
            .put(
                key,
                &Filesystem::Saved(saved_image(layers).into()),
                MEDIA,
                "t",
                replace,
                |fs| serde_json::to_vec(&serde_json::json!({ "key": key, "image": fs })).unwrap(),
            )
            .unwrap()
    }

    #[test]
    fn entries_round_trip_share_layers_and_first_writer_wins() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open(dir.path(), true).unwrap();
        assert!(put(&layout, "k1", &[b"base", b"one"], false));
        assert!(put(&layout, "k2", &[b"base", b"two"], false));
        assert!(!put(&layout, "k1", &[b"base", b"other"], false));
        // base, one, two, one config, two filesystems, two records, two manifests.
        assert_eq!(std::fs::read_dir(layout.blobs()).unwrap().count(), 10);
        let manifest = layout.manifest_of("k1").unwrap().unwrap();
        let record: serde_json::Value =
            serde_json::from_slice(&layout.entry_blob(&manifest, MEDIA).unwrap()).unwrap();
        let tarball = layout
            .image_tarball(record["image"].as_str().unwrap(), "x/y:z", &HashMap::new())
            .unwrap();
        let image = SavedImage::read(&tarball).unwrap();
        assert_eq!(image.layers, [b"base".to_vec(), b"one".to_vec()]);
        assert!(matches!(
            layout.entry_blob(&manifest, "other/type"),
            Err(Fault::Corrupt(_))
        ));
    }

    #[test]
    fn a_runtime_s_pulled_layers_are_named_by_their_repository_and_its_tars_copied_once() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open(&dir.path().join("cache"), true).unwrap();
        let own = dir.path().join("own.tar");
        std::fs::write(&own, b"own layer").unwrap();
        let pulled = CacheLayer::Pulled(PulledLayer {
            repository: "127.0.0.1:5000/base".into(),
            digest: digest_of(b"base blob"),
            size: 9,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        });
        let image = |own_digest: &str| CacheImage {
            config: br#"{"rootfs":{}}"#.to_vec(),
            layers: vec![
                pulled.clone(),
                CacheLayer::Tar {
                    path: own.clone(),
                    digest: own_digest.to_owned(),
                },
            ],
            runtime_id: Some(digest_of(b"dockerd's config")),
        };
        let put = |key: &str, image: &CacheImage| {
            layout.put(
                key,
                &Filesystem::Layers(image.clone()),
                MEDIA,
                "t",
                false,
                |fs| serde_json::to_vec(&serde_json::json!({ "key": key, "image": fs })).unwrap(),
            )
        };
        // A tar that is not what the runtime says it is: refused, nothing listed.
        let refused = put("k0", &image(&digest_of(b"something else"))).unwrap_err();
        assert!(
            format!("{refused:#}").contains("own.tar is sha256:"),
            "{refused:#}"
        );
        assert!(layout.manifest_of("k0").unwrap().is_none());
        assert!(put("k1", &image(&digest_of(b"own layer"))).unwrap());
        assert!(put("k2", &image(&digest_of(b"own layer"))).unwrap());
        // The own layer once, one config, one filesystem, two records and two
        // manifests; no base blob, no temporary file.
        assert_eq!(std::fs::read_dir(layout.blobs()).unwrap().count(), 7);
        let manifest = layout.manifest_of("k1").unwrap().unwrap();
        let record: serde_json::Value =
            serde_json::from_slice(&layout.entry_blob(&manifest, MEDIA).unwrap()).unwrap();
        let filesystem = record["image"].as_str().unwrap();
        let foreign = layout.foreign_layers(filesystem).unwrap();
        assert_eq!(foreign.len(), 1);
        assert_eq!(foreign[0].repository, "127.0.0.1:5000/base");
        assert_eq!(foreign[0].digest, digest_of(b"base blob"));
        assert_eq!(foreign[0].size, 9);
        // Without the fetched blob the filesystem cannot be read; with it, it
        // is the pulled layer then the own one.
        assert!(matches!(
            layout.image_tarball(filesystem, "x/y:z", &HashMap::new()),
            Err(Fault::Corrupt(_))
        ));
        let fetched = HashMap::from([(digest_of(b"base blob"), b"base blob".to_vec())]);
        let tarball = layout.image_tarball(filesystem, "x/y:z", &fetched).unwrap();
        let image = SavedImage::read(&tarball).unwrap();
        assert_eq!(image.layers, [b"base blob".to_vec(), b"own layer".to_vec()]);
        // The directory's own footprint leaves the pulled layer out.
        assert!(!layout
            .footprint(filesystem)
            .contains_key(&digest_of(b"base blob")));
        // A runtime finds the image by its config's digest or by the
        // writer's own ID for it.
        assert_eq!(
            layout.image_ids_of(filesystem).unwrap(),
            [
                digest_of(br#"{"rootfs":{}}"#),
                digest_of(b"dockerd's config")
            ]
        );
    }

    #[test]
    fn artifacts_carry_their_files_as_layers_and_are_collected_with_their_entry() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open(dir.path(), true).unwrap();
        let files = [b"one file".to_vec(), b"another".to_vec()];
        let put = |key: &str, replace: bool| {
            layout
                .put_artifact(key, "r/json", "r", b"{}", &files, "f", replace)
                .unwrap()
        };
        assert!(put("r1", false));
        assert!(!put("r1", false));
        assert!(put("r1", true));
        let manifest = layout.manifest_of("r1").unwrap().unwrap();
        assert_eq!(layout.entry_blob(&manifest, "r/json").unwrap(), b"{}");
        let named: Vec<_> = files
            .iter()
            .map(|file| (gantry_core::Digest::of_bytes(file), file.len() as u64))
            .collect();
        assert_eq!(layout.entry_layers(&manifest, 1 << 20).unwrap(), named);
        for ((blob, size), file) in named.iter().zip(&files) {
            assert_eq!(&layout.file(blob, *size).unwrap(), file);
        }
        assert!(matches!(
            layout.entry_layers(&manifest, 4),
            Err(Fault::Corrupt(_))
        ));
        let file = layout.blob_path(&digest_of(b"another")).unwrap();
        std::fs::write(&file, b"ANOTHER").unwrap();
        let (another, size) = named[1];
        assert!(matches!(
            layout.file(&another, size),
            Err(Fault::Corrupt(_))
        ));
        assert!(matches!(
            layout.file(&another, size + 1),
            Err(Fault::Corrupt(_))
        ));
        // A prune reaches the files through the kept entry, and removes them
        // with it.
        put("r2", false);
        let (blobs, _) = layout.remove(&HashSet::new()).unwrap();
        assert_eq!(blobs, 0);
        let all = layout
            .listed()
            .unwrap()
            .iter()
            .map(|l| l.manifest.clone())
            .collect();
        layout.remove(&all).unwrap();
        assert_eq!(std::fs::read_dir(layout.blobs()).unwrap().count(), 0);
    }

    #[test]
    fn a_corrupt_blob_is_reported_and_replaced_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open(dir.path(), true).unwrap();
        put(&layout, "k", &[b"layer"], false);
        let manifest = layout.manifest_of("k").unwrap().unwrap();
        let record: serde_json::Value =
            serde_json::from_slice(&layout.entry_blob(&manifest, MEDIA).unwrap()).unwrap();
        let layer = layout.blob_path(&digest_of(b"layer")).unwrap();
        std::fs::write(&layer, b"LAYER").unwrap();
        assert!(matches!(
            layout.image_tarball(record["image"].as_str().unwrap(), "x/y:z", &HashMap::new()),
            Err(Fault::Corrupt(_))
        ));
        assert!(put(&layout, "k", &[b"layer"], true));
        assert_eq!(std::fs::read(&layer).unwrap(), b"layer");
    }

    #[test]
    fn removing_entries_collects_only_their_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open(dir.path(), true).unwrap();
        put(&layout, "k1", &[b"base", b"one"], false);
        put(&layout, "k2", &[b"base", b"two"], false);
        std::fs::write(layout.blobs().join(format!("{TEMP_PREFIX}0")), b"x").unwrap();
        // Another tool's image in the same directory keeps its blobs.
        let foreign_layer = layout.put_blob(b"foreign layer").unwrap();
        let foreign = layout
            .put_blob(
                &serde_json::to_vec(&serde_json::json!({
                    "schemaVersion": 2,
                    "config": { "digest": foreign_layer },
                    "layers": [{ "digest": foreign_layer }],
                }))
                .unwrap(),
            )
            .unwrap();
        let mut index = layout.index().unwrap();
        index["manifests"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({ "digest": foreign }));
        layout
            .write_file(
                &dir.path().join("index.json"),
                &serde_json::to_vec(&index).unwrap(),
            )
            .unwrap();
        let gone = layout.manifest_of("k1").unwrap().unwrap();
        let (blobs, _) = layout.remove(&HashSet::from([gone])).unwrap();
        // k1's layer, filesystem manifest, record and manifest (configs are equal).
        assert_eq!(blobs, 4);
        assert_eq!(layout.listed().unwrap().len(), 1);
        assert!(layout.blob_path(&digest_of(b"base")).unwrap().exists());
        assert!(layout.blob_path(&foreign).unwrap().exists());
        assert!(layout.blob_path(&foreign_layer).unwrap().exists());
        assert!(!layout.blob_path(&digest_of(b"one")).unwrap().exists());
    }
}
