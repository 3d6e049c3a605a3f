//! `Runtime::cache_layers` read from dockerd's overlay2 store.
//!
//! dockerd's API saves only whole images (`docker save`), so a step image's
//! entry in an OCI layout cache would copy the base image's every layer on
//! every push. Where the engine runs beside dockerd and can read its store
//! (the usual local or CI machine, as root), the step's own layers are packed
//! here from their overlay2 directories, and the layers of the image it was
//! pulled as are named by that image (`CacheLayer::OfImage`). Anywhere else
//! (a remote `DOCKER_HOST`, another storage driver, a store we cannot read)
//! the answer is `None` and the caller saves the whole image as before.
//!
//! The packed tars are not byte for byte dockerd's (which Go's archive writer
//! produced), so the config lists their own digests as diff IDs and the image
//! keeps its dockerd ID as `CacheImage::runtime_id`.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bollard::models::ImageInspect;
use gantry_core::pack::{self, PackOptions};
use gantry_core::runtime::{CacheImage, CacheLayer, RuntimeError};
use gantry_core::Hashing;
use tokio::sync::OnceCell;

use crate::error::{runtime_error, Operation};
use crate::DockerRuntime;

/// The only storage driver whose layer directories are read here.
const OVERLAY2: &str = "overlay2";
/// How far up an image's parents a pulled image is looked for.
const MAX_PARENTS: usize = 4096;

/// What the cache form needs: where packed layer tars go, the ones packed so
/// far by dockerd diff ID (a step image shares its parent's layers: each is
/// packed once), and the images this runtime pulled.
#[derive(Debug, Default)]
pub(crate) struct LayerTars {
    dir: Option<PathBuf>,
    packed: Mutex<HashMap<String, Arc<OnceCell<PackedTar>>>>,
    /// Pulled images by ID: a filesystem loaded from the cache has no parent,
    /// but its first layers may be those of an image pulled here.
    pulled: Mutex<HashMap<String, (String, Vec<String>)>>,
}

impl LayerTars {
    pub(crate) fn set_dir(&mut self, dir: PathBuf) {
        self.dir = Some(dir);
    }

    /// Records `image`, pulled as `repo_digest` (`host/repository@sha256:…`).
    pub(crate) fn note_pulled(&self, image: &ImageInspect, repo_digest: String) {
        if let Some(id) = &image.id {
            self.pulled
                .lock()
                .expect("the pulled-image map is never poisoned")
                .insert(id.clone(), (repo_digest, diff_ids(image)));
        }
    }

    /// The pulled image with the most layers that are the first of `diff_ids`.
    fn pulled_prefix(&self, diff_ids: &[String]) -> Option<(Pulled, usize)> {
        self.pulled
            .lock()
            .expect("the pulled-image map is never poisoned")
            .iter()
            .filter(|(_, (_, layers))| !layers.is_empty() && diff_ids.starts_with(layers))
            .max_by_key(|(_, (_, layers))| layers.len())
            .map(|(id, (reference, layers))| {
                let pulled = Pulled {
                    reference: reference.clone(),
                    id: id.clone(),
                };
                (pulled, layers.len())
            })
    }
}

impl Drop for LayerTars {
    fn drop(&mut self) {
        // Whatever is left (an engine that dies) goes with its scratch.
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A packed layer tar: its path and digest.
type PackedTar = (PathBuf, String);

/// Why the store cannot be read here: logged, and the caller saves instead.
type Skip = String;

impl DockerRuntime {
    /// `Runtime::cache_layers`; `None` where dockerd's store cannot be read.
    pub(crate) async fn layers_for_cache(
        &self,
        image_id: &str,
    ) -> Result<Option<CacheImage>, RuntimeError> {
        match self.read_store(image_id).await {
            Ok(image) => Ok(Some(image)),
            Err(Ok(skip)) => {
                tracing::debug!(image = %image_id, reason = %skip, "saving the whole image for the cache");
                Ok(None)
            }
            Err(Err(error)) => Err(error),
        }
    }

    async fn read_store(&self, image_id: &str) -> Result<CacheImage, Result<Skip, RuntimeError>> {
        let Some(tar_dir) = self.layer_tars.dir.clone() else {
            return Err(Ok("no directory for layer tars was given".into()));
        };
        let image = self.inspect_for_cache(image_id).await?;
        let id = image.id.clone().unwrap_or_default();
        let diff_ids = diff_ids(&image);
        let dirs = layer_dirs(&image)?;
        if dirs.len() != diff_ids.len() {
            return Err(Ok(format!(
                "{} layer directories for {} layers",
                dirs.len(),
                diff_ids.len()
            )));
        }
        let config = self.raw_config(&id).await?;
        let base = self.pulled_ancestor(&image, &diff_ids).await?;
        let based = base.as_ref().map_or(0, |(_, layers)| *layers);
        let mut layers = Vec::with_capacity(diff_ids.len());
        let mut own_ids = Vec::with_capacity(diff_ids.len());
        for (index, (diff_id, dir)) in diff_ids.iter().zip(&dirs).enumerate() {
            if let Some((base, _)) = base.as_ref().filter(|_| index < based) {
                layers.push(CacheLayer::OfImage {
                    reference: base.reference.clone(),
                    config: base.id.clone(),
                    index,
                });
                own_ids.push(diff_id.clone());
                continue;
            }
            let (path, digest) = self.packed(&tar_dir, diff_id, dir).await?;
            own_ids.push(digest.clone());
            layers.push(CacheLayer::Tar { path, digest });
        }
        let config = with_diff_ids(&config, &own_ids).map_err(Ok)?;
        Ok(CacheImage {
            config,
            layers,
            runtime_id: Some(id),
        })
    }

    async fn inspect_for_cache(
        &self,
        image: &str,
    ) -> Result<ImageInspect, Result<Skip, RuntimeError>> {
        self.docker.inspect_image(image).await.map_err(|error| {
            Err(runtime_error(
                Operation::Other {
                    action: "reading an image for the cache",
                },
                &error,
            ))
        })
    }

    /// The config as dockerd stores it, checked against the image ID (its digest).
    async fn raw_config(&self, id: &str) -> Result<Vec<u8>, Result<Skip, RuntimeError>> {
        let root = self
            .root_dir
            .get_or_try_init(|| async {
                self.docker
                    .info()
                    .await
                    .map_err(|error| error.to_string())?
                    .docker_root_dir
                    .ok_or_else(|| "dockerd names no root directory".to_owned())
            })
            .await
            .map_err(|error| Ok(error.clone()))?;
        let hex = id.strip_prefix("sha256:").unwrap_or(id);
        let path = Path::new(root)
            .join("image")
            .join(OVERLAY2)
            .join("imagedb/content/sha256")
            .join(hex);
        let config = tokio::fs::read(&path)
            .await
            .map_err(|error| Ok(format!("cannot read {}: {error}", path.display())))?;
        if gantry_core::Digest::of_bytes(&config).hex() != hex {
            return Err(Ok(format!("{} is not the image's config", path.display())));
        }
        Ok(config)
    }

    /// The closest of `image` and its parents that was pulled (it has a
    /// repository digest) and whose layers are the first of `image`'s, else
    /// (a filesystem loaded from the cache has no parents) the image pulled
    /// here with the most of them: that image and how many layers it has.
    async fn pulled_ancestor(
        &self,
        image: &ImageInspect,
        diff_ids: &[String],
    ) -> Result<Option<(Pulled, usize)>, Result<Skip, RuntimeError>> {
        let mut current = image.clone();
        for _ in 0..MAX_PARENTS {
            let layers = self::diff_ids(&current);
            let digest = current
                .repo_digests
                .as_ref()
                .and_then(|digests| digests.first().cloned());
            if let (Some(reference), Some(id)) = (digest, current.id.clone()) {
                if !layers.is_empty() && diff_ids.starts_with(&layers) {
                    return Ok(Some((Pulled { reference, id }, layers.len())));
                }
            }
            match current
                .parent
                .as_deref()
                .filter(|parent| !parent.is_empty())
            {
                Some(parent) => match self.docker.inspect_image(parent).await {
                    Ok(parent) => current = parent,
                    Err(_) => break,
                },
                None => break,
            }
        }
        Ok(self.layer_tars.pulled_prefix(diff_ids))
    }

    /// The tar of the layer `diff_id` (dockerd's) packed from `dir` once per
    /// runtime, and its digest.
    async fn packed(
        &self,
        tar_dir: &Path,
        diff_id: &str,
        dir: &Path,
    ) -> Result<PackedTar, Result<Skip, RuntimeError>> {
        let cell = self
            .layer_tars
            .packed
            .lock()
            .expect("the packed-layer map is never poisoned")
            .entry(diff_id.to_owned())
            .or_default()
            .clone();
        let (tar_dir, diff_id, dir) = (tar_dir.to_owned(), diff_id.to_owned(), dir.to_owned());
        cell.get_or_try_init(|| async move {
            tokio::task::spawn_blocking(move || pack_to_file(&tar_dir, &diff_id, &dir))
                .await
                .map_err(|error| error.to_string())?
        })
        .await
        .cloned()
        .map_err(|error| {
            Err(RuntimeError::Failed {
                action: "packing an image layer for the cache".to_owned(),
                reason: error,
            })
        })
    }
}

/// A pulled image: a repository digest (`host/repository@sha256:…`) and its ID.
struct Pulled {
    reference: String,
    id: String,
}

fn diff_ids(image: &ImageInspect) -> Vec<String> {
    image
        .root_fs
        .as_ref()
        .and_then(|root_fs| root_fs.layers.clone())
        .unwrap_or_default()
}

/// The image's layer directories, bottom first: overlay2's `LowerDir` lists
/// those below the top one, top first.
fn layer_dirs(image: &ImageInspect) -> Result<Vec<PathBuf>, Result<Skip, RuntimeError>> {
    let driver = image
        .graph_driver
        .as_ref()
        .ok_or_else(|| Ok(Skip::from("dockerd names no storage driver")))?;
    if driver.name != OVERLAY2 {
        return Err(Ok(format!("the storage driver is {}", driver.name)));
    }
    let upper = driver
        .data
        .get("UpperDir")
        .ok_or_else(|| Ok(Skip::from("dockerd names no upper directory")))?;
    let mut dirs: Vec<PathBuf> = std::iter::once(upper.as_str())
        .chain(
            driver
                .data
                .get("LowerDir")
                .map(|lower| lower.split(':').filter(|dir| !dir.is_empty()))
                .into_iter()
                .flatten(),
        )
        .map(PathBuf::from)
        .collect();
    dirs.reverse();
    if let Some(dir) = dirs.iter().find(|dir| !dir.is_dir()) {
        return Err(Ok(format!("cannot read {}", dir.display())));
    }
    Ok(dirs)
}

/// Packs `dir` (an overlay2 layer directory: whiteouts as 0/0 devices, opaque
/// directories by xattr) into `tar_dir`, hashing as it writes.
fn pack_to_file(tar_dir: &Path, diff_id: &str, dir: &Path) -> Result<PackedTar, String> {
    let fail = |error: &dyn std::fmt::Display| format!("{}: {error}", dir.display());
    std::fs::create_dir_all(tar_dir).map_err(|error| fail(&error))?;
    let name = diff_id.strip_prefix("sha256:").unwrap_or(diff_id);
    let path = tar_dir.join(format!("{name}.tar"));
    let file = std::fs::File::create(&path).map_err(|error| fail(&error))?;
    let mut out = Hashing::new(std::io::BufWriter::with_capacity(1 << 20, file));
    let options = PackOptions {
        overlay_whiteouts: true,
        clamp_mtime: None,
    };
    pack::pack_layer(dir, &mut out, options).map_err(|error| fail(&error))?;
    out.flush().map_err(|error| fail(&error))?;
    let digest = out.finish().1.to_string();
    Ok((path, digest))
}

/// `config` with `diff_ids` as its `rootfs.diff_ids`.
fn with_diff_ids(config: &[u8], diff_ids: &[String]) -> Result<Vec<u8>, Skip> {
    let mut config: serde_json::Value =
        serde_json::from_slice(config).map_err(|error| format!("the image config: {error}"))?;
    config["rootfs"]["diff_ids"] = serde_json::json!(diff_ids);
    Ok(serde_json::to_vec(&config).expect("configs serialise"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_keeps_its_fields_and_takes_the_new_diff_ids() {
        let config = br#"{"architecture":"amd64","config":{"Env":["A=1"]},"rootfs":{"type":"layers","diff_ids":["sha256:aa","sha256:bb"]}}"#;
        let changed = with_diff_ids(config, &["sha256:aa".into(), "sha256:cc".into()]).unwrap();
        let changed: serde_json::Value = serde_json::from_slice(&changed).unwrap();
        assert_eq!(changed["rootfs"]["diff_ids"][1], "sha256:cc");
        assert_eq!(changed["rootfs"]["type"], "layers");
        assert_eq!(changed["config"]["Env"][0], "A=1");
        assert!(with_diff_ids(b"not json", &[]).is_err());
    }

    #[test]
    fn overlay_layer_directories_come_bottom_first() {
        let dir = tempfile::tempdir().unwrap();
        let (top, middle, bottom) = (
            dir.path().join("top"),
            dir.path().join("middle"),
            dir.path().join("bottom"),
        );
        for d in [&top, &middle, &bottom] {
            std::fs::create_dir(d).unwrap();
        }
        let image = |driver: &str, lower: Option<String>| ImageInspect {
            graph_driver: Some(bollard::models::DriverData {
                name: driver.into(),
                data: [("UpperDir".to_owned(), top.display().to_string())]
                    .into_iter()
                    .chain(lower.map(|lower| ("LowerDir".to_owned(), lower)))
                    .collect(),
            }),
            ..Default::default()
        };
        let lower = format!("{}:{}", middle.display(), bottom.display());
        let dirs = layer_dirs(&image(OVERLAY2, Some(lower))).unwrap();
        assert_eq!(dirs, vec![bottom.clone(), middle.clone(), top.clone()]);
        assert_eq!(
            layer_dirs(&image(OVERLAY2, None)).unwrap(),
            vec![top.clone()]
        );
        let skipped = |image: &ImageInspect| match layer_dirs(image) {
            Err(Ok(skip)) => skip,
            other => panic!("not skipped: {other:?}"),
        };
        assert!(skipped(&image("btrfs", None)).contains("btrfs"));
        let gone = format!("{}", dir.path().join("gone").display());
        assert!(skipped(&image(OVERLAY2, Some(gone))).contains("cannot read"));
    }
}
