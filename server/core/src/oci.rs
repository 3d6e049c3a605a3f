//! Image tarballs as `export` and `asTarball` hand them out: an OCI image
//! layout (`oci-layout`, `index.json`, `blobs/sha256/…`) that also holds a
//! `manifest.json`, so `docker load` accepts it, as Dagger's do. It is made
//! from what a runtime saves (`docker save`, either its legacy layout or an
//! OCI one), with the layers compressed and the media types named as asked.
//! The output is deterministic: same image and options, same bytes.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// Which family of media types the manifest and layers are named with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MediaTypes {
    #[default]
    Oci,
    Docker,
}

/// How layers are compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compression {
    #[default]
    Gzip,
    Uncompressed,
}

/// The shape of an image tarball.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageFormat {
    pub media_types: MediaTypes,
    pub compression: Compression,
}

impl ImageFormat {
    /// Whether this is the default (OCI media types, gzip).
    pub fn is_default(&self) -> bool {
        *self == ImageFormat::default()
    }

    fn manifest_type(self) -> &'static str {
        match self.media_types {
            MediaTypes::Oci => "application/vnd.oci.image.manifest.v1+json",
            MediaTypes::Docker => "application/vnd.docker.distribution.manifest.v2+json",
        }
    }

    fn config_type(self) -> &'static str {
        match self.media_types {
            MediaTypes::Oci => "application/vnd.oci.image.config.v1+json",
            MediaTypes::Docker => "application/vnd.docker.container.image.v1+json",
        }
    }

    fn layer_type(self) -> &'static str {
        match (self.media_types, self.compression) {
            (MediaTypes::Oci, Compression::Gzip) => "application/vnd.oci.image.layer.v1.tar+gzip",
            (MediaTypes::Oci, Compression::Uncompressed) => {
                "application/vnd.oci.image.layer.v1.tar"
            }
            (MediaTypes::Docker, Compression::Gzip) => {
                "application/vnd.docker.image.rootfs.diff.tar.gzip"
            }
            (MediaTypes::Docker, Compression::Uncompressed) => {
                "application/vnd.docker.image.rootfs.diff.tar"
            }
        }
    }
}

/// One image of a `manifest.json` (Docker's tarball index).
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SavedImage {
    pub(crate) config: String,
    #[serde(default)]
    pub(crate) repo_tags: Option<Vec<String>>,
    pub(crate) layers: Vec<String>,
}

pub(crate) fn malformed(what: &str) -> Error {
    Error::Archive(std::sync::Arc::new(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("the runtime's image tarball {what}"),
    )))
}

pub(crate) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", Digest::of_bytes(bytes).hex())
}

fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

/// Converts a runtime's saved image (the first of its `manifest.json`) into
/// an OCI image layout tarball in `format`.
pub(crate) fn image_layout(saved: &[u8], format: ImageFormat) -> Result<Vec<u8>> {
    let files = read_entries(saved)?;
    let index: Vec<SavedImage> = files
        .get("manifest.json")
        .and_then(|bytes| serde_json::from_slice(bytes).ok())
        .ok_or_else(|| malformed("has no readable manifest.json"))?;
    let image = index
        .into_iter()
        .next()
        .ok_or_else(|| malformed("holds no image"))?;
    let config = files
        .get(&image.config)
        .ok_or_else(|| malformed("lacks its image config"))?;
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut layers = Vec::new();
    for path in &image.layers {
        let layer = files.get(path).ok_or_else(|| malformed("lacks a layer"))?;
        let bytes = compress(layer, format.compression)?;
        let digest = sha256(&bytes);
        layers.push(json!({
            "mediaType": format.layer_type(),
            "digest": digest,
            "size": bytes.len(),
        }));
        blobs.push((digest, bytes));
    }
    let config_digest = sha256(config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": format.manifest_type(),
        "config": {
            "mediaType": format.config_type(),
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": layers,
    }))
    .expect("manifests always serialise");
    let manifest_digest = sha256(&manifest);
    let platform = platform_of(config);
    let tags = image.repo_tags.clone().unwrap_or_default();
    let mut descriptor = json!({
        "mediaType": format.manifest_type(),
        "digest": manifest_digest,
        "size": manifest.len(),
        "platform": platform,
    });
    if let Some(tag) = tags.first() {
        descriptor["annotations"] = json!({ "io.containerd.image.name": tag });
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [descriptor],
    }))
    .expect("indexes always serialise");
    let docker_manifest = serde_json::to_vec(&[SavedImage {
        config: blob_path(&config_digest),
        repo_tags: Some(tags),
        layers: blobs.iter().map(|(digest, _)| blob_path(digest)).collect(),
    }])
    .expect("manifests always serialise");
    blobs.push((config_digest, config.clone()));
    blobs.push((manifest_digest, manifest));
    write_layout(blobs, &index, &docker_manifest)
}

/// `os` and `architecture` (and `variant`) of an image config.
fn platform_of(config: &[u8]) -> serde_json::Value {
    let config: serde_json::Value = serde_json::from_slice(config).unwrap_or_default();
    let mut platform = json!({
        "architecture": config["architecture"].as_str().unwrap_or("amd64"),
        "os": config["os"].as_str().unwrap_or("linux"),
    });
    if let Some(variant) = config["variant"].as_str() {
        platform["variant"] = json!(variant);
    }
    platform
}

/// The regular files of a tarball by path (a leading `./` dropped).
pub(crate) fn read_entries(saved: &[u8]) -> Result<HashMap<String, Vec<u8>>> {
    let mut files = HashMap::new();
    let mut archive = tar::Archive::new(saved);
    for entry in archive.entries().map_err(Error::tar)? {
        let mut entry = entry.map_err(Error::tar)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(Error::tar)?
            .to_string_lossy()
            .into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(Error::tar)?;
        files.insert(path.trim_start_matches("./").to_owned(), bytes);
    }
    Ok(files)
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A layer as `compression` wants it, whatever it was saved as.
fn compress(layer: &[u8], compression: Compression) -> Result<Vec<u8>> {
    let gzipped = layer.starts_with(&GZIP_MAGIC);
    match (compression, gzipped) {
        (Compression::Gzip, true) | (Compression::Uncompressed, false) => Ok(layer.to_vec()),
        (Compression::Gzip, false) => {
            // No name and a zero mtime in the header: the same layer
            // always compresses to the same bytes.
            let mut encoder =
                flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::default());
            encoder.write_all(layer).map_err(Error::tar)?;
            encoder.finish().map_err(Error::tar)
        }
        (Compression::Uncompressed, true) => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(layer)
                .read_to_end(&mut out)
                .map_err(Error::tar)?;
            Ok(out)
        }
    }
}

fn write_layout(blobs: Vec<(String, Vec<u8>)>, index: &[u8], manifest: &[u8]) -> Result<Vec<u8>> {
    let mut blobs = blobs;
    blobs.sort_by(|a, b| a.0.cmp(&b.0));
    blobs.dedup_by(|a, b| a.0 == b.0);
    let mut entries: Vec<(String, Option<&[u8]>)> = vec![
        ("blobs/".to_owned(), None),
        ("blobs/sha256/".to_owned(), None),
    ];
    for (digest, bytes) in &blobs {
        entries.push((blob_path(digest), Some(bytes)));
    }
    entries.push(("index.json".to_owned(), Some(index)));
    entries.push(("manifest.json".to_owned(), Some(manifest)));
    entries.push((
        "oci-layout".to_owned(),
        Some(br#"{"imageLayoutVersion":"1.0.0"}"#),
    ));
    write_files(&entries)
}

/// A tarball of `entries` in order (a directory where there are no bytes),
/// owned by root with fixed modes and times: the same entries always give
/// the same bytes.
pub(crate) fn write_files(entries: &[(String, Option<&[u8]>)]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        if let Some(bytes) = bytes {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(bytes.len() as u64);
        } else {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
        }
        builder
            .append_data(&mut header, path, bytes.unwrap_or_default())
            .map_err(Error::tar)?;
    }
    builder.into_inner().map_err(Error::tar)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A legacy `docker save` tarball of one image with one layer.
    fn saved() -> Vec<u8> {
        let mut layer = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        layer
            .append_data(&mut header, "hello.txt", &b"hello"[..])
            .unwrap();
        let layer = layer.into_inner().unwrap();
        let config = br#"{"architecture":"arm64","os":"linux","config":{"Entrypoint":["sh"]}}"#;
        let manifest = br#"[{"Config":"abc.json","RepoTags":["app:1"],"Layers":["l1/layer.tar"]}]"#;
        let mut out = tar::Builder::new(Vec::new());
        for (path, bytes) in [
            ("abc.json", &config[..]),
            ("l1/layer.tar", &layer[..]),
            ("manifest.json", &manifest[..]),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            out.append_data(&mut header, path, bytes).unwrap();
        }
        out.into_inner().unwrap()
    }

    fn json_at(files: &HashMap<String, Vec<u8>>, path: &str) -> serde_json::Value {
        serde_json::from_slice(&files[path]).unwrap()
    }

    #[test]
    fn an_oci_layout_that_docker_load_also_reads() {
        let out = image_layout(&saved(), ImageFormat::default()).unwrap();
        assert_eq!(out, image_layout(&saved(), ImageFormat::default()).unwrap());
        let files = read_entries(&out).unwrap();
        assert!(files.contains_key("oci-layout"));
        let index = json_at(&files, "index.json");
        let descriptor = &index["manifests"][0];
        assert_eq!(descriptor["platform"]["architecture"], "arm64");
        assert_eq!(
            descriptor["annotations"]["io.containerd.image.name"],
            "app:1"
        );
        let manifest_path = blob_path(descriptor["digest"].as_str().unwrap());
        let manifest = json_at(&files, &manifest_path);
        assert_eq!(
            manifest["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        let layer = &manifest["layers"][0];
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        let blob = &files[&blob_path(layer["digest"].as_str().unwrap())];
        assert!(blob.starts_with(&GZIP_MAGIC));
        assert_eq!(sha256(blob), layer["digest"]);
        let docker = json_at(&files, "manifest.json");
        let config = json_at(&files, docker[0]["Config"].as_str().unwrap());
        assert_eq!(config["config"]["Entrypoint"][0], "sh");
        let layer_path = blob_path(layer["digest"].as_str().unwrap());
        assert_eq!(docker[0]["Layers"][0], layer_path.as_str());
    }

    #[test]
    fn docker_media_types_and_uncompressed_layers_on_request() {
        let format = ImageFormat {
            media_types: MediaTypes::Docker,
            compression: Compression::Uncompressed,
        };
        let files = read_entries(&image_layout(&saved(), format).unwrap()).unwrap();
        let index = json_at(&files, "index.json");
        let manifest = json_at(
            &files,
            &blob_path(index["manifests"][0]["digest"].as_str().unwrap()),
        );
        assert_eq!(
            manifest["mediaType"],
            "application/vnd.docker.distribution.manifest.v2+json"
        );
        let layer = &manifest["layers"][0];
        assert_eq!(
            layer["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar"
        );
        let blob = &files[&blob_path(layer["digest"].as_str().unwrap())];
        assert!(!blob.starts_with(&GZIP_MAGIC));
    }
}
