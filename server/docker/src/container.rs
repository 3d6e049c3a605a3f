//! Container lifecycle: creation under a guard that removes the container if the
//! operation is abandoned, layer application, reading paths, and orphan cleanup.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bollard::{body_full, Docker};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use gantry_core::runtime::{RootfsSpec, RuntimeError, TarLayer};

use crate::error::{runtime_error, status, Operation};
use crate::{archive, DockerRuntime, LABEL_ENGINE_PID, LABEL_MANAGED};

/// Entrypoint of containers that are created only to be read or committed, never
/// started. Setting it (rather than a `Cmd`) lets a base without any command be used
/// and keeps the container's `Cmd` empty, which matters to `docker commit` (see
/// `DockerRuntime::build`).
pub(crate) const NEVER_STARTED: &str = "/.gantry-never-started";

/// Removes its container when dropped, unless [`ContainerGuard::remove`] already did.
///
/// The guard exists before the create request is sent (the container's name is chosen
/// up front), so an operation dropped while dockerd is still creating the container
/// cleans up too; a removal that finds nothing then tries once more a moment later in
/// case the creation was still landing.
pub(crate) struct ContainerGuard {
    docker: Docker,
    name: String,
    /// Whether dockerd confirmed the creation.
    created: bool,
    armed: bool,
}

impl ContainerGuard {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Force-removes the container (and its anonymous volumes) now.
    pub(crate) async fn remove(mut self) -> Result<(), BollardError> {
        // On failure the guard stays armed and its drop tries once more.
        remove_container(&self.docker, &self.name).await?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let docker = self.docker.clone();
        let name = std::mem::take(&mut self.name);
        let created = self.created;
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                tracing::debug!(container = %name, "removing abandoned container");
                handle.spawn(async move {
                    let mut result = remove_container(&docker, &name).await;
                    if !created && matches!(result, Ok(false)) {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        result = remove_container(&docker, &name).await;
                    }
                    if let Err(error) = result {
                        tracing::warn!(container = %name, %error, "cannot remove abandoned container");
                    }
                });
            }
            Err(_) => tracing::warn!(
                container = %name,
                "cannot remove abandoned container outside a tokio runtime"
            ),
        }
    }
}

/// Force-removes a container; `Ok(false)` when there was none.
async fn remove_container(docker: &Docker, name: &str) -> Result<bool, BollardError> {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(name, Some(options)).await {
        Ok(()) => Ok(true),
        Err(error) if status(&error) == Some(404) => Ok(false),
        // "removal of container … is already in progress"
        Err(error) if status(&error) == Some(409) => Ok(true),
        Err(error) => Err(error),
    }
}

static CONTAINER_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Container names are `gantry-<pid scope>-<engine pid>-<sequence>-<nanos>`. Names, unlike
/// labels, do not end up in committed images.
const CONTAINER_PREFIX: &str = "gantry-";

/// A short fingerprint of this machine's boot and this process's pid namespace: an engine
/// pid says whether that engine is alive only when looked up where it was recorded. Two
/// engines sharing one daemon from different pid namespaces (one of them in a container,
/// say) or different machines must not take each other's live containers for orphans.
pub(crate) fn pid_scope() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let namespace = std::fs::read_link("/proc/self/ns/pid")
        .map(|link| link.to_string_lossy().into_owned())
        .unwrap_or_default();
    // FNV-1a: stable across builds, unlike std's hasher.
    let hash = format!("{}/{namespace}", boot.trim())
        .bytes()
        .fold(0x811c_9dc5_u32, |hash, byte| {
            (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
        });
    format!("{hash:08x}")
}

/// The pid scope in a container name gantry gave, if it is one.
fn scope_of(name: &str) -> Option<&str> {
    let rest = name
        .trim_start_matches('/')
        .strip_prefix(CONTAINER_PREFIX)?;
    let (scope, _) = rest.split_once('-')?;
    (scope.len() == 8 && scope.bytes().all(|b| b.is_ascii_hexdigit())).then_some(scope)
}

impl DockerRuntime {
    /// Creates a container under a guard; `body.labels` gets the engine's labels added.
    pub(crate) async fn create_container(
        &self,
        mut body: ContainerCreateBody,
    ) -> Result<ContainerGuard, RuntimeError> {
        let labels = body.labels.take().unwrap_or_default();
        body.labels = Some(self.container_labels(labels.iter()));
        let sequence = CONTAINER_SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut guard = ContainerGuard {
            docker: self.docker.clone(),
            name: format!(
                "{CONTAINER_PREFIX}{}-{}-{sequence}-{nanos:08x}",
                self.pid_scope, self.engine_pid
            ),
            created: false,
            armed: true,
        };
        let options = CreateContainerOptionsBuilder::new()
            .name(&guard.name)
            .build();
        match self.docker.create_container(Some(options), body).await {
            Ok(response) => {
                guard.created = true;
                for warning in response.warnings {
                    tracing::warn!(container = %guard.name, %warning, "dockerd warning on create");
                }
                tracing::debug!(container = %guard.name, "container created");
                Ok(guard)
            }
            Err(error) => {
                // dockerd answered, so nothing was created.
                guard.armed = false;
                Err(runtime_error(
                    Operation::Other {
                        action: "creating a container",
                    },
                    &error,
                ))
            }
        }
    }

    /// The image a root filesystem starts from: its image, or the empty image.
    pub(crate) async fn base_image(&self, rootfs: &RootfsSpec) -> Result<String, RuntimeError> {
        match &rootfs.image_id {
            Some(image_id) => Ok(image_id.clone()),
            None => self
                .scratch
                .get_or_try_init(|| self.scratch_image())
                .await
                .cloned(),
        }
    }

    /// A container on `rootfs` (layers applied) that is never started.
    pub(crate) async fn create_unstarted(
        &self,
        rootfs: &RootfsSpec,
        base: &str,
    ) -> Result<ContainerGuard, RuntimeError> {
        let body = ContainerCreateBody {
            image: Some(base.to_owned()),
            entrypoint: Some(vec![NEVER_STARTED.to_owned()]),
            network_disabled: Some(true),
            ..Default::default()
        };
        let container = self.create_container(body).await?;
        self.apply_layers(container.name(), &rootfs.layers).await?;
        Ok(container)
    }

    /// Unpacks each layer at its destination, in order, creating missing directories.
    pub(crate) async fn apply_layers(
        &self,
        container: &str,
        layers: &[TarLayer],
    ) -> Result<(), RuntimeError> {
        let failed = |error: &BollardError| {
            runtime_error(
                Operation::Other {
                    action: "copying a layer into a container",
                },
                error,
            )
        };
        for (index, layer) in layers.iter().enumerate() {
            tracing::debug!(container, index, dest = %layer.dest, bytes = layer.tar.len(), "applying layer");
            match self.upload(container, &layer.dest, layer.tar.clone()).await {
                Ok(()) => {}
                Err(error) if status(&error) == Some(404) => {
                    self.make_directories(container, &layer.dest).await?;
                    self.upload(container, &layer.dest, layer.tar.clone())
                        .await
                        .map_err(|error| failed(&error))?;
                }
                Err(error) => return Err(failed(&error)),
            }
        }
        Ok(())
    }

    /// `mkdir -p dest`: unpacks the missing directory entries at the deepest existing
    /// ancestor. Uploading them at `/` instead would replace a symlinked ancestor (say
    /// `/var/run -> /run`) with a directory.
    async fn make_directories(&self, container: &str, dest: &str) -> Result<(), RuntimeError> {
        let components: Vec<&str> = dest
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        let failed = |reason: String| RuntimeError::Failed {
            action: format!("creating directory {dest} in a container"),
            reason,
        };
        for existing in (0..components.len()).rev() {
            let parent = format!("/{}", components[..existing].join("/"));
            let tar = archive::directories(&components[existing..])
                .map_err(|error| failed(error.to_string()))?;
            match self.upload(container, &parent, tar.into()).await {
                Ok(()) => return Ok(()),
                Err(error) if status(&error) == Some(404) => continue,
                Err(error) => return Err(failed(crate::error::message(&error))),
            }
        }
        Err(failed("the container has no root directory".to_owned()))
    }

    async fn upload(&self, container: &str, dest: &str, tar: Bytes) -> Result<(), BollardError> {
        let options = UploadToContainerOptionsBuilder::new().path(dest).build();
        self.docker
            .upload_to_container(container, Some(options), body_full(tar))
            .await
    }

    /// `Runtime::read_path`.
    pub(crate) async fn read(
        &self,
        rootfs: &RootfsSpec,
        path: &str,
    ) -> Result<Bytes, RuntimeError> {
        let base = self.base_image(rootfs).await?;
        let container = self.create_unstarted(rootfs, &base).await?;
        let options = DownloadFromContainerOptionsBuilder::new()
            .path(path)
            .build();
        let mut stream = self
            .docker
            .download_from_container(container.name(), Some(options));
        let mut tar = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|error| runtime_error(Operation::ReadPath { path }, &error))?;
            tar.extend_from_slice(&chunk);
        }
        drop(stream);
        if let Err(error) = container.remove().await {
            tracing::warn!(%error, "cannot remove container");
        }
        let docker_bytes = tar.len();
        let rebased = tokio::task::spawn_blocking(move || archive::rebase_read(&tar))
            .await
            .map_err(|error| RuntimeError::Failed {
                action: format!("reading {path}"),
                reason: error.to_string(),
            })?
            .map_err(|error| RuntimeError::Failed {
                action: format!("reading {path}"),
                reason: format!("cannot rewrite dockerd's archive: {error}"),
            })?;
        tracing::debug!(docker_bytes, bytes = rebased.len(), "path read");
        Ok(rebased.into())
    }

    /// `Runtime::remove_orphans`.
    pub(crate) async fn remove_orphan_containers(&self) -> Result<usize, RuntimeError> {
        let filters = HashMap::from([("label", vec![format!("{LABEL_MANAGED}=true")])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|error| {
                runtime_error(
                    Operation::Other {
                        action: "listing containers",
                    },
                    &error,
                )
            })?;
        let mut removed = 0;
        for container in containers {
            let Some(id) = container.id else { continue };
            let pid = container
                .labels
                .as_ref()
                .and_then(|labels| labels.get(LABEL_ENGINE_PID))
                .and_then(|pid| pid.parse::<u32>().ok());
            // Without a readable pid nobody can tell whose it is: leave it alone. Nor can
            // anyone here judge a pid recorded in another pid namespace or machine.
            let Some(pid) = pid else { continue };
            let foreign = container
                .names
                .iter()
                .flatten()
                .filter_map(|name| scope_of(name))
                .any(|scope| scope != self.pid_scope);
            if foreign {
                continue;
            }
            if pid == self.engine_pid || std::path::Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            match remove_container(&self.docker, &id).await {
                Ok(true) => {
                    tracing::debug!(container = %id, engine_pid = pid, "removed orphaned container");
                    removed += 1;
                }
                Ok(false) => {}
                Err(error) => {
                    return Err(runtime_error(
                        Operation::Other {
                            action: "removing an orphaned container",
                        },
                        &error,
                    ))
                }
            }
        }
        if removed > 0 {
            tracing::info!(removed, "removed containers of engines no longer running");
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_carry_the_pid_scope() {
        let scope = pid_scope();
        assert_eq!(scope.len(), 8);
        assert_eq!(scope, pid_scope());
        let name = format!("/gantry-{scope}-42-7-0badf00d");
        assert_eq!(scope_of(&name), Some(scope.as_str()));
        assert_eq!(scope_of("/gantry-orphan-123-456"), None);
        assert_eq!(scope_of("/busy_turing"), None);
    }
}
