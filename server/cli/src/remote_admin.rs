//! `gantry cache ls --remote REF` and `gantry cache prune --remote REF`: the
//! entries of a remote cache repository (docs/cache.md, "Entries"), listed
//! from its tags, and removed by manifest digest through the registry API.
//!
//! An OCI layout directory (`oci-layout:DIR`) is read as files: its
//! `index.json` lists the entries, and removing entries also removes the
//! blobs no remaining entry reaches.
//!
//! There is no separate index: the tag list is the index, and each entry's
//! record blob says when it was pushed and what it ran (one manifest and one
//! small blob per entry). Deleting needs the registry to allow it
//! (Distribution: `storage.delete.enabled`); the space is reclaimed by the
//! registry's own garbage collection.
//!
//! A registry reports no repository size, so `prune --max-size` measures
//! entries from their manifests: an entry's footprint is its manifest, its
//! record and its filesystem image's manifest, config and layers, by digest,
//! so that blobs several entries share count once.

use anyhow::{bail, Context as _, Result};
use gantry_native::registry_client as registry;
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth as OciAuth;
use oci_client::{Client, Reference, RegistryOperation};

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::cache::{
    self, Entry, ReadEntry, ENTRY_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, READ_MEDIA_TYPE,
};
use crate::cache_layout::{fault_text, Layout};

/// One entry of the remote cache.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct RemoteEntry {
    /// The cache key (hex): the entry's tag.
    pub(crate) key: String,
    /// `exec` (a step's result) or `path-read` (a file or directory read
    /// out of a container's filesystem).
    pub(crate) kind: &'static str,
    /// The entry manifest's digest.
    pub(crate) manifest: String,
    /// The manifest digest of the step's filesystem image (empty for a path
    /// read, whose files are in its own manifest).
    pub(crate) filesystem: String,
    /// When it was pushed (seconds since the Unix epoch; 0 when unknown).
    pub(crate) created: u64,
    /// The step's command (a path read: `read PATH`).
    pub(crate) command: String,
    /// The record blob's size.
    pub(crate) record_bytes: i64,
    /// The record blob's digest (for sizes; not listed).
    #[serde(skip)]
    pub(crate) record: String,
    /// The entry manifest's size (for sizes; not listed).
    #[serde(skip)]
    pub(crate) manifest_bytes: u64,
    /// The files a path read carries, its manifest's layers (for sizes; not
    /// listed; empty for an exec entry and in a layout, measured as files).
    #[serde(skip)]
    pub(crate) files: Footprint,
}

/// The blobs (manifests included) an entry occupies: digest to size.
pub(crate) type Footprint = BTreeMap<String, u64>;

/// What a filesystem image's manifest may be: Docker pushes its own manifest
/// type, or an index with a containerd image store.
const IMAGE_MEDIA_TYPES: &[&str] = &[
    MANIFEST_MEDIA_TYPE,
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// A remote cache opened for listing and pruning.
pub(crate) enum Repository {
    Registry(RegistryRepository),
    Layout(Layout),
}

impl Repository {
    /// `reference` as `--cache` takes it; credentials from `auth` (`USER:env:VAR`)
    /// or the Docker configuration.
    pub(crate) async fn open(reference: &str, insecure: bool, auth: Option<&str>) -> Result<Self> {
        match cache::Location::parse(reference, insecure, auth)? {
            cache::Location::Registry(endpoint) => {
                Ok(Self::Registry(RegistryRepository::open(endpoint).await))
            }
            cache::Location::Layout(dir) => Ok(Self::Layout(Layout::existing(&dir)?)),
        }
    }

    /// Every gantry entry, oldest first.
    pub(crate) async fn entries(&self) -> Result<Vec<RemoteEntry>> {
        match self {
            Self::Registry(repository) => repository.entries().await,
            Self::Layout(layout) => {
                let layout = layout.clone();
                tokio::task::spawn_blocking(move || layout_entries(&layout))
                    .await
                    .context("while listing the cache directory")?
            }
        }
    }

    /// The footprint of each of `entries`, in their order (a filesystem
    /// image shared by several appears in each of their footprints).
    pub(crate) async fn footprints(&self, entries: &[RemoteEntry]) -> Result<Vec<Footprint>> {
        match self {
            Self::Registry(repository) => repository.footprints(entries).await,
            Self::Layout(layout) => {
                let (layout, manifests): (Layout, Vec<String>) = (
                    layout.clone(),
                    entries.iter().map(|entry| entry.manifest.clone()).collect(),
                );
                tokio::task::spawn_blocking(move || {
                    manifests
                        .iter()
                        .map(|manifest| layout.footprint(manifest))
                        .collect()
                })
                .await
                .context("while measuring the cache directory's entries")
            }
        }
    }

    /// Removes the entries `entries` and the filesystems `filesystems` (a
    /// layout: with every blob no kept entry reaches).
    pub(crate) async fn remove(&self, entries: &[RemoteEntry], filesystems: &[&str]) -> Result<()> {
        match self {
            Self::Registry(repository) => {
                for entry in entries {
                    repository.delete(&entry.manifest).await?;
                }
                for digest in filesystems {
                    repository.delete(digest).await?;
                }
                Ok(())
            }
            Self::Layout(layout) => {
                let manifests: HashSet<String> =
                    entries.iter().map(|entry| entry.manifest.clone()).collect();
                let layout = layout.clone();
                tokio::task::spawn_blocking(move || layout.remove(&manifests))
                    .await
                    .context("while pruning the cache directory")?
                    .map(drop)
            }
        }
    }
}

/// The entries of a layout, oldest first (unsound ones left out, as with a registry).
fn layout_entries(layout: &Layout) -> Result<Vec<RemoteEntry>> {
    let listed = layout
        .listed()
        .map_err(|fault| anyhow::anyhow!("{}", fault_text(&fault)))?;
    let mut entries = Vec::new();
    for listed in listed.iter() {
        for media_type in [ENTRY_MEDIA_TYPE, READ_MEDIA_TYPE] {
            let Ok(blob) = layout.entry_blob(&listed.manifest, media_type) else {
                continue;
            };
            let sizes = Sizes {
                record: String::new(),
                record_bytes: blob.len() as i64,
                manifest_bytes: 0,
                files: Footprint::new(),
            };
            let (key, manifest) = (listed.key.clone(), listed.manifest.clone());
            if let Some(entry) = remote_entry(key, manifest, media_type, &blob, sizes) {
                entries.push(entry);
            }
        }
    }
    entries.sort_by(|a, b| a.created.cmp(&b.created).then(a.key.cmp(&b.key)));
    Ok(entries)
}

/// The sizes (and record digest) of an entry's manifest and record, as read
/// from the registry, and the files a path read carries (its manifest's
/// layers); a layout measures its files instead (`Layout::footprint`).
struct Sizes {
    record: String,
    record_bytes: i64,
    manifest_bytes: u64,
    files: Footprint,
}

/// An entry as `ls` shows it, from its record `blob` of `media_type`; `None`
/// when the record is not valid.
fn remote_entry(
    key: String,
    manifest: String,
    media_type: &str,
    blob: &[u8],
    sizes: Sizes,
) -> Option<RemoteEntry> {
    if media_type == READ_MEDIA_TYPE {
        let entry = serde_json::from_slice::<ReadEntry>(blob).ok()?;
        return Some(RemoteEntry {
            key,
            kind: "path-read",
            manifest,
            filesystem: String::new(),
            created: entry.created,
            command: format!("read {}", entry.path),
            record_bytes: sizes.record_bytes,
            record: sizes.record,
            manifest_bytes: sizes.manifest_bytes,
            files: sizes.files,
        });
    }
    let entry = serde_json::from_slice::<Entry>(blob).ok()?;
    let command = entry.record["cmd"]
        .as_array()
        .map(|args| {
            args.iter()
                .filter_map(|arg| arg.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    Some(RemoteEntry {
        key,
        kind: "exec",
        manifest,
        filesystem: entry.image,
        created: entry.created,
        command,
        record_bytes: sizes.record_bytes,
        record: sizes.record,
        manifest_bytes: sizes.manifest_bytes,
        files: sizes.files,
    })
}

/// The layers an entry `manifest` names (a path read's files), with their sizes.
fn layers_of(manifest: &[u8]) -> Footprint {
    let manifest = serde_json::from_slice::<serde_json::Value>(manifest).unwrap_or_default();
    manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|layer| {
            Some((
                layer["digest"].as_str()?.to_owned(),
                layer["size"].as_u64()?,
            ))
        })
        .collect()
}

/// A cache repository on a registry.
pub(crate) struct RegistryRepository {
    repository: String,
    registry: String,
    plain_http: bool,
    client: Client,
    auth: OciAuth,
    /// Kept out of every error message.
    password: Option<String>,
}

impl RegistryRepository {
    /// The repository `endpoint`; credentials from its `--cache-auth`, else
    /// the Docker configuration.
    async fn open(endpoint: cache::Endpoint) -> Self {
        let cache::Endpoint {
            repository,
            registry,
            plain_http,
            auth,
        } = endpoint;
        let auth = registry::credentials(&registry, auth.as_ref()).await;
        let password = match &auth {
            OciAuth::Basic(_, password) => Some(password.clone()),
            _ => None,
        };
        Self {
            client: registry::client_for(&registry, plain_http),
            repository,
            registry,
            plain_http,
            auth,
            password,
        }
    }

    fn reference(&self, tag: &str) -> Reference {
        format!("{}:{tag}", self.repository)
            .parse()
            .expect("the repository was checked when it was parsed")
    }

    fn failed(
        &self,
        what: &str,
        error: &oci_client::errors::OciDistributionError,
    ) -> anyhow::Error {
        anyhow::anyhow!(
            "{what} of {} failed: {}",
            self.repository,
            registry::registry_error(&self.repository, error, self.password.as_deref())
        )
    }

    /// Every gantry entry in the repository, oldest first. Tags that are not
    /// entries (filesystem tags, other images) are left out.
    async fn entries(&self) -> Result<Vec<RemoteEntry>> {
        let listing = self.reference("latest");
        self.client
            .store_auth_if_needed(listing.resolve_registry(), &self.auth)
            .await;
        let tags = match self
            .client
            .list_tags(&listing, &self.auth, None, None)
            .await
        {
            Ok(response) => response.tags,
            Err(error) if cache::is_not_found(&error) => Vec::new(),
            Err(error) => return Err(self.failed("listing the tags", &error)),
        };
        let mut entries = Vec::new();
        for tag in tags
            .iter()
            .filter(|tag| tag.len() == 64 && tag.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            if let Some(entry) = self.entry(tag).await? {
                entries.push(entry);
            }
        }
        entries.sort_by(|a, b| a.created.cmp(&b.created).then(a.key.cmp(&b.key)));
        Ok(entries)
    }

    /// The entry tagged `tag`; `None` when it is gone or not a gantry entry.
    async fn entry(&self, tag: &str) -> Result<Option<RemoteEntry>> {
        let image = self.reference(tag);
        let (manifest, digest) = match self
            .client
            .pull_manifest_raw(&image, &self.auth, &[MANIFEST_MEDIA_TYPE])
            .await
        {
            Ok(found) => found,
            Err(error) if cache::is_not_found(&error) => return Ok(None),
            Err(error) => return Err(self.failed("reading an entry", &error)),
        };
        let Some(config) = serde_json::from_slice::<serde_json::Value>(&manifest)
            .ok()
            .and_then(|m| serde_json::from_value::<OciDescriptor>(m["config"].clone()).ok())
            .filter(|c| [ENTRY_MEDIA_TYPE, READ_MEDIA_TYPE].contains(&c.media_type.as_str()))
        else {
            return Ok(None);
        };
        let mut blob = Vec::new();
        match self.client.pull_blob(&image, &config, &mut blob).await {
            Ok(()) => {}
            Err(error) if cache::is_not_found(&error) => return Ok(None),
            Err(error) => return Err(self.failed("reading an entry's record", &error)),
        }
        Ok(remote_entry(
            tag.to_owned(),
            digest,
            &config.media_type,
            &blob,
            Sizes {
                record: config.digest.clone(),
                record_bytes: config.size,
                manifest_bytes: manifest.len() as u64,
                files: layers_of(&manifest),
            },
        ))
    }

    /// The footprints of `entries`: the manifest and record as listed, and
    /// the filesystem image's blobs from its manifest (read once per image).
    async fn footprints(&self, entries: &[RemoteEntry]) -> Result<Vec<Footprint>> {
        let mut images: HashMap<&str, Footprint> = HashMap::new();
        let mut footprints = Vec::with_capacity(entries.len());
        for entry in entries {
            let mut footprint = Footprint::from([
                (entry.manifest.clone(), entry.manifest_bytes),
                (
                    entry.record.clone(),
                    u64::try_from(entry.record_bytes).unwrap_or(0),
                ),
            ]);
            footprint.extend(entry.files.clone());
            if !entry.filesystem.is_empty() {
                if !images.contains_key(entry.filesystem.as_str()) {
                    let image = self.image_footprint(&entry.filesystem).await?;
                    images.insert(&entry.filesystem, image);
                }
                footprint.extend(images[entry.filesystem.as_str()].clone());
            }
            footprints.push(footprint);
        }
        Ok(footprints)
    }

    /// The image manifest `digest` and the blobs it names, with their sizes
    /// (an index's manifests too); empty when it is gone (deleted by hand,
    /// or by another prune since the listing).
    async fn image_footprint(&self, digest: &str) -> Result<Footprint> {
        let mut footprint = Footprint::new();
        let mut pending = vec![digest.to_owned()];
        while let Some(digest) = pending.pop() {
            if footprint.contains_key(&digest) {
                continue;
            }
            // A record names its image by digest; one that does not parse
            // names nothing this repository holds.
            let Ok(image) = format!("{}@{digest}", self.repository).parse::<Reference>() else {
                continue;
            };
            let bytes = match self
                .client
                .pull_manifest_raw(&image, &self.auth, IMAGE_MEDIA_TYPES)
                .await
            {
                Ok((bytes, _)) => bytes,
                Err(error) if cache::is_not_found(&error) => continue,
                Err(error) => return Err(self.failed("measuring a filesystem image", &error)),
            };
            footprint.insert(digest, bytes.len() as u64);
            let Ok(manifest) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            let blobs = std::iter::once(&manifest["config"])
                .chain(manifest["layers"].as_array().into_iter().flatten());
            for blob in blobs {
                if let (Some(digest), Some(size)) = (blob["digest"].as_str(), blob["size"].as_u64())
                {
                    footprint.insert(digest.to_owned(), size);
                }
            }
            for child in manifest["manifests"].as_array().into_iter().flatten() {
                if let Some(child) = child["digest"].as_str() {
                    pending.push(child.to_owned());
                }
            }
        }
        Ok(footprint)
    }

    /// Deletes the manifest `digest` (and so every tag on it).
    async fn delete(&self, digest: &str) -> Result<()> {
        let scheme = if self.plain_http { "http" } else { "https" };
        let path = self.repository.split_once('/').map_or("", |(_, path)| path);
        let url = format!("{scheme}://{}/v2/{path}/manifests/{digest}", self.registry);
        let http = reqwest::Client::new();
        let send = |bearer: Option<String>| {
            let mut request = http.delete(&url);
            match (&self.auth, bearer) {
                (_, Some(token)) => request = request.bearer_auth(token),
                (OciAuth::Basic(user, password), None) => {
                    request = request.basic_auth(user, Some(password))
                }
                (OciAuth::Bearer(token), None) => request = request.bearer_auth(token),
                _ => {}
            }
            request.send()
        };
        let mut response = send(None)
            .await
            .with_context(|| format!("while deleting {digest} from {}", self.repository))?;
        let bearer_challenge = response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.to_ascii_lowercase().starts_with("bearer"));
        if response.status() == reqwest::StatusCode::UNAUTHORIZED && bearer_challenge {
            // A token registry: a token with push scope (which registries
            // that allow deletes grant it under).
            let image = self.reference("latest");
            let token = self
                .client
                .auth(&image, &self.auth, RegistryOperation::Push)
                .await
                .map_err(|error| self.failed("authenticating to delete", &error))?;
            response = send(token)
                .await
                .with_context(|| format!("while deleting {digest} from {}", self.repository))?;
        }
        let status = response.status();
        if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        if status == reqwest::StatusCode::METHOD_NOT_ALLOWED || body.contains("UNSUPPORTED") {
            bail!(
                "the registry {} refuses to delete manifests ({status}): enable deletes in its configuration (Distribution/registry:2 and Debian's docker-registry: `storage: delete: enabled: true`, or REGISTRY_STORAGE_DELETE_ENABLED=true), or use the registry's own retention policy",
                self.registry
            );
        }
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            bail!(
                "the registry {} refused to delete from {} ({status}): the credentials (--cache-auth or the Docker configuration) need delete permission",
                self.registry,
                self.repository
            );
        }
        let mut detail: String = body.chars().take(200).collect();
        if let Some(password) = self.password.as_deref().filter(|p| !p.is_empty()) {
            detail = detail.replace(password, "***");
        }
        bail!(
            "deleting {digest} from {} failed ({status}): {}",
            self.repository,
            detail.trim()
        )
    }
}
