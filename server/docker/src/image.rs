//! Images: pulling, pushing, building from a root filesystem, saving and loading.

use std::collections::{BTreeMap, HashMap, HashSet};

use bollard::auth::DockerCredentials;
use bollard::body_full;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerConfig, ImageInspect};
use bollard::query_parameters::{
    CreateImageOptionsBuilder, ImportImageOptionsBuilder, ListImagesOptionsBuilder,
    PushImageOptionsBuilder, RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use gantry_core::runtime::{
    format_go_duration, Healthcheck, ImageConfig, PulledImage, RegistryAuth, RootfsSpec,
    RuntimeError,
};

use crate::error::{redact, runtime_error, status, Operation};
use crate::exec::env_name;
use crate::reference::{parse_pull, parse_target, pull_tag, split_tag};
use crate::{archive, DockerRuntime, BUILDER_LABELS, LABEL_MANAGED, SCRATCH_TAG};
use gantry_core::reproducible::{self, Epoch};
use gantry_core::{is_image_id, ImageRef};

/// The registry host of the names gantry gives to images it makes (`gantry.local/…`).
const LOCAL_REGISTRY: &str = "gantry.local/";

impl DockerRuntime {
    /// `Runtime::pull`.
    pub(crate) async fn pull_image(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<PulledImage, RuntimeError> {
        let password = auth.map(|a| a.password.as_str());
        if is_image_id(reference) {
            let inspect = self
                .docker
                .inspect_image(reference)
                .await
                .map_err(|error| runtime_error(Operation::Pull { reference }, &error))?;
            return pulled_image(inspect, None, None);
        }
        let parsed = parse_pull(reference)?;
        // gantry's own names are never in a registry: skip the (DNS-bound) pull attempt.
        if parsed.repo().starts_with(LOCAL_REGISTRY) {
            let inspect = self
                .docker
                .inspect_image(&parsed.local_name())
                .await
                .map_err(|error| runtime_error(Operation::Pull { reference }, &error))?;
            return pulled_image(inspect, Some(&parsed), None);
        }
        let options = CreateImageOptionsBuilder::new()
            .from_image(parsed.repo())
            .tag(pull_tag(&parsed))
            .build();
        let mut stream = self
            .docker
            .create_image(Some(options), None, auth.map(credentials));
        let mut pulled_digest = None;
        let mut pull_error = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(digest) = info
                        .status
                        .as_deref()
                        .and_then(|s| s.strip_prefix("Digest: "))
                    {
                        pulled_digest = Some(digest.trim().to_owned());
                    }
                }
                Err(error) => {
                    pull_error = Some(error);
                    break;
                }
            }
        }
        drop(stream);

        let local_name = parsed.local_name();
        if let Some(error) = pull_error {
            let mapped = redact(
                runtime_error(Operation::Pull { reference }, &error),
                password,
            );
            // A tag gantry built or loaded itself exists only here; so may an image the
            // registry no longer serves. Refused credentials are reported, though.
            let explicit_refusal =
                auth.is_some() && matches!(mapped, RuntimeError::Unauthorized { .. });
            if matches!(mapped, RuntimeError::Unavailable { .. }) || explicit_refusal {
                return Err(mapped);
            }
            return match self.docker.inspect_image(&local_name).await {
                Ok(inspect) => {
                    tracing::debug!(reason = %crate::error::message(&error), "pull failed; using the local image");
                    pulled_image(inspect, Some(&parsed), None)
                }
                Err(_) => Err(mapped),
            };
        }
        let inspect = self
            .docker
            .inspect_image(&local_name)
            .await
            .map_err(|error| runtime_error(Operation::Pull { reference }, &error))?;
        let pulled = pulled_image(inspect.clone(), Some(&parsed), pulled_digest.as_deref())?;
        if let Some((_, digest)) = pulled.resolved_ref.rsplit_once('@') {
            self.layer_tars
                .note_pulled(&inspect, format!("{}@{digest}", parsed.canonical().repo()));
        }
        tracing::debug!(image = %pulled.image_id, resolved = %pulled.resolved_ref, "image pulled");
        Ok(pulled)
    }

    /// `Runtime::push`.
    pub(crate) async fn push_image(
        &self,
        image_id: &str,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<String, RuntimeError> {
        // What is pushed is the image made reproducible: saved, rewritten
        // (`save`) and loaded back under the target's name. The same files
        // and config load as the same image, which dockerd pushes as the
        // same manifest.
        let reproducible = self.save(image_id, reference).await?;
        let loaded = self.load(reproducible).await?;
        self.push_tagged(&loaded.image_id, reference, auth).await
    }

    /// Tags `image_id` as `reference` and pushes it as it is (`push_as_is`;
    /// the last step of `push_image`).
    pub(crate) async fn push_tagged(
        &self,
        image_id: &str,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<String, RuntimeError> {
        let password = auth.map(|a| a.password.as_str());
        let parsed = parse_target(reference)?;
        self.tag(image_id, parsed.repo(), parsed.tag_or_latest())
            .await?;
        let options = PushImageOptionsBuilder::new()
            .tag(parsed.tag_or_latest())
            .build();
        // dockerd 20.10 rejects a push without an X-Registry-Auth header, even for
        // registries that need none: send empty credentials then.
        let credentials = auth.map_or_else(DockerCredentials::default, credentials);
        let mut stream = self
            .docker
            .push_image(parsed.repo(), Some(options), Some(credentials));
        let mut digest = None;
        let mut failure = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(found) = info.status.as_deref().and_then(push_digest) {
                        digest = Some(found);
                    }
                }
                Err(error) => {
                    failure = Some(redact(
                        runtime_error(Operation::Push { reference }, &error),
                        password,
                    ));
                    break;
                }
            }
        }
        drop(stream);
        if let Some(failure) = failure {
            // The tag was made only to push; left behind, it would pass for the
            // pushed image when a later pull of the reference falls back to a
            // local image (see `pull_image`).
            let local = format!("{}:{}", parsed.repo(), parsed.tag_or_latest());
            let options = RemoveImageOptionsBuilder::new().noprune(true).build();
            if let Err(error) = self.docker.remove_image(&local, Some(options), None).await {
                tracing::debug!(tag = %local, reason = %crate::error::message(&error), "cannot untag after a failed push");
            }
            return Err(failure);
        }
        let digest = digest.ok_or_else(|| RuntimeError::Failed {
            action: format!("pushing {reference}"),
            reason: "dockerd reported no digest for the pushed manifest".to_owned(),
        })?;
        tracing::debug!(%digest, "image pushed");
        Ok(digest)
    }

    /// `Runtime::build_image`.
    pub(crate) async fn build(
        &self,
        rootfs: &RootfsSpec,
        config: &ImageConfig,
        tag: &str,
    ) -> Result<String, RuntimeError> {
        let base = self.base_image(rootfs).await?;
        let base_env = self
            .inspect_config(&base)
            .await?
            .and_then(|c| c.env)
            .unwrap_or_default();
        let container = self.create_unstarted(rootfs, &base).await?;
        let commit_config = build_commit_config(config, &base_env);
        let image_id = self.commit(container.name(), tag, commit_config).await?;
        if let Err(error) = container.remove().await {
            tracing::warn!(%error, "cannot remove container");
        }
        Ok(image_id)
    }

    /// `Runtime::save_image`: `docker save`, made reproducible (file times
    /// clamped, `created` fixed, what the commit wrote about itself dropped:
    /// `gantry_core::reproducible`), as a legacy `docker save` tarball.
    pub(crate) async fn save(
        &self,
        image_id: &str,
        reference: &str,
    ) -> Result<Bytes, RuntimeError> {
        let saved = self.save_raw(image_id, reference).await?;
        let epoch = self.source_date_epoch;
        let rewritten = tokio::task::spawn_blocking(move || {
            reproducible::saved_image(
                &saved,
                Epoch {
                    seconds: epoch,
                    builder_labels: BUILDER_LABELS,
                },
            )
        })
        .await;
        let failed = |reason: String| RuntimeError::Failed {
            action: "making an image reproducible".to_owned(),
            reason,
        };
        let rewritten = rewritten
            .map_err(|error| failed(error.to_string()))?
            .map_err(|error| failed(error.to_string()))?;
        tracing::debug!(bytes = rewritten.len(), epoch, "image made reproducible");
        Ok(Bytes::from(rewritten))
    }

    /// `docker save` of the image under `reference`'s name (`save_as_is`).
    pub(crate) async fn save_raw(
        &self,
        image_id: &str,
        reference: &str,
    ) -> Result<Bytes, RuntimeError> {
        let parsed = parse_target(reference)?;
        let (repo, tag) = (parsed.repo(), parsed.tag_or_latest());
        // Saved by name so that `docker load` restores the name too.
        self.tag(image_id, repo, tag).await?;
        let mut stream = self.docker.export_image(&format!("{repo}:{tag}"));
        let mut tarball = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| {
                runtime_error(
                    Operation::Other {
                        action: "saving an image",
                    },
                    &error,
                )
            })?;
            tarball.extend_from_slice(&chunk);
        }
        tracing::debug!(bytes = tarball.len(), "image saved");
        Ok(tarball.freeze())
    }

    /// `Runtime::load_image`.
    pub(crate) async fn load(&self, tarball: Bytes) -> Result<PulledImage, RuntimeError> {
        let failed = |error: &BollardError| {
            runtime_error(
                Operation::Other {
                    action: "loading an image",
                },
                error,
            )
        };
        let options = ImportImageOptionsBuilder::new().quiet(true).build();
        let mut stream = self.docker.import_image(options, body_full(tarball), None);
        let mut loaded: Option<String> = None;
        while let Some(item) = stream.next().await {
            let info = item.map_err(|error| failed(&error))?;
            for line in info.stream.as_deref().unwrap_or_default().lines() {
                let name = line
                    .strip_prefix("Loaded image ID: ")
                    .or_else(|| line.strip_prefix("Loaded image: "));
                if let (None, Some(name)) = (&loaded, name) {
                    loaded = Some(name.trim().to_owned());
                }
            }
        }
        let loaded = loaded.ok_or_else(|| RuntimeError::Failed {
            action: "loading an image".to_owned(),
            reason: "dockerd did not report which image the tarball held".to_owned(),
        })?;
        let inspect = self
            .docker
            .inspect_image(&loaded)
            .await
            .map_err(|error| failed(&error))?;
        let reference = (!is_image_id(&loaded))
            .then(|| ImageRef::parse(&loaded).ok())
            .flatten();
        let pulled = pulled_image(inspect, reference.as_ref(), None)?;
        tracing::debug!(image = %pulled.image_id, name = %loaded, "image loaded");
        Ok(pulled)
    }

    /// `Runtime::local_image`: an image of this daemon's store, by name or
    /// ID; nothing is pulled.
    pub(crate) async fn local(&self, reference: &str) -> Result<PulledImage, RuntimeError> {
        let parsed = match is_image_id(reference) {
            true => None,
            false => Some(parse_pull(reference)?),
        };
        let name = parsed
            .as_ref()
            .map_or_else(|| reference.to_owned(), ImageRef::local_name);
        let inspect = self.docker.inspect_image(&name).await.map_err(|error| {
            match runtime_error(Operation::Pull { reference }, &error) {
                // A 404 reads as an image gantry made that went missing;
                // here the user named it, so it was never found.
                RuntimeError::ImageMissing { image } => RuntimeError::ImageNotFound {
                    reference: reference.to_owned(),
                    reason: format!("no such image in the daemon's store: {image}"),
                },
                other => other,
            }
        })?;
        pulled_image(inspect, parsed.as_ref(), None)
    }

    /// `Runtime::image_exists`.
    pub(crate) async fn exists(&self, image_id: &str) -> Result<bool, RuntimeError> {
        match self.docker.inspect_image(image_id).await {
            Ok(_) => Ok(true),
            Err(error) if status(&error) == Some(404) => Ok(false),
            Err(error) => Err(runtime_error(
                Operation::Other {
                    action: "inspecting an image",
                },
                &error,
            )),
        }
    }

    /// `Runtime::rename_image`: tags the image `from` names as `to`, then
    /// removes the tag `from` (only the tag: the image has another now).
    pub(crate) async fn rename(&self, from: &str, to: &str) -> Result<(), RuntimeError> {
        let (from, to) = (parse_target(from)?, parse_target(to)?);
        if from.digest().is_some() || to.digest().is_some() {
            return Ok(());
        }
        let old = from.local_name();
        if old == to.local_name() {
            return Ok(());
        }
        match self.tag(&old, to.repo(), to.tag_or_latest()).await {
            // Nothing was recorded under `from`.
            Err(RuntimeError::ImageMissing { .. } | RuntimeError::ImageNotFound { .. }) => {
                return Ok(())
            }
            other => other?,
        }
        let options = RemoveImageOptionsBuilder::new().noprune(true).build();
        match self.docker.remove_image(&old, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(error) if status(&error) == Some(404) => Ok(()),
            Err(error) => Err(runtime_error(
                Operation::Other {
                    action: "removing an image's old name",
                },
                &error,
            )),
        }
    }

    /// `Runtime::remove_images`. An image still in use (a container or a child image
    /// depends on it) is left in place with a warning rather than failing the batch.
    pub(crate) async fn remove(&self, images: &[String]) -> Result<(), RuntimeError> {
        let mut first_error = None;
        for image in images {
            let options = RemoveImageOptionsBuilder::new().force(true).build();
            match self.docker.remove_image(image, Some(options), None).await {
                Ok(_) => tracing::debug!(%image, "image removed"),
                Err(error) if status(&error) == Some(404) => {}
                Err(error) if status(&error) == Some(409) => {
                    tracing::warn!(%image, reason = %crate::error::message(&error), "image in use; not removed");
                }
                Err(error) => {
                    first_error.get_or_insert(runtime_error(
                        Operation::Other {
                            action: "removing an image",
                        },
                        &error,
                    ));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Every `repo:tag` name of the local images in `repos` (exact
    /// repository names), for prune: a state directory's images are the ones
    /// in its own repositories.
    #[tracing::instrument(skip_all)]
    pub async fn tags_in(&self, repos: &[String]) -> Result<Vec<String>, RuntimeError> {
        let filters = HashMap::from([("reference", repos.to_vec())]);
        let options = ListImagesOptionsBuilder::new().filters(&filters).build();
        let images = self
            .docker
            .list_images(Some(options))
            .await
            .map_err(|error| {
                runtime_error(
                    Operation::Other {
                        action: "listing images",
                    },
                    &error,
                )
            })?;
        Ok(images
            .into_iter()
            .flat_map(|image| image.repo_tags)
            .filter(|tag| {
                tag.rsplit_once(':')
                    .is_some_and(|(repo, _)| repos.iter().any(|wanted| wanted == repo))
            })
            .collect())
    }

    /// IDs of every local image labelled as gantry's ([`LABEL_MANAGED`](crate::LABEL_MANAGED)),
    /// children before their parents so that `remove_images` can take them in order.
    #[tracing::instrument(skip_all)]
    pub async fn managed_images(&self) -> Result<Vec<String>, RuntimeError> {
        let filters = HashMap::from([("label", vec![format!("{LABEL_MANAGED}=true")])]);
        let options = ListImagesOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let images = self
            .docker
            .list_images(Some(options))
            .await
            .map_err(|error| {
                runtime_error(
                    Operation::Other {
                        action: "listing images",
                    },
                    &error,
                )
            })?;
        let parents: HashMap<String, String> = images
            .into_iter()
            .map(|image| (image.id, image.parent_id))
            .collect();
        // Depth of the parent chain within the listed images (`docker commit` records
        // the base as parent); deepest first.
        let depth = |id: &String| {
            let mut id = id;
            let mut depth = 0usize;
            while let Some(parent) = parents.get(id).filter(|p| parents.contains_key(*p)) {
                depth += 1;
                id = parent;
                if depth > parents.len() {
                    break;
                }
            }
            depth
        };
        let mut ids: Vec<(usize, String)> =
            parents.keys().map(|id| (depth(id), id.clone())).collect();
        ids.sort_by(|a, b| b.cmp(a));
        tracing::debug!(count = ids.len(), "listed managed images");
        Ok(ids.into_iter().map(|(_, id)| id).collect())
    }

    /// The configuration of a local image (`None` when it has none).
    pub(crate) async fn inspect_config(
        &self,
        image: &str,
    ) -> Result<Option<bollard::models::ImageConfig>, RuntimeError> {
        let inspect = self.docker.inspect_image(image).await.map_err(|error| {
            runtime_error(
                Operation::Other {
                    action: "inspecting an image",
                },
                &error,
            )
        })?;
        Ok(inspect.config)
    }

    /// The empty image `scratch` root filesystems start from: the existing
    /// `SCRATCH_TAG` if gantry made one, otherwise a fresh import of an empty archive.
    pub(crate) async fn scratch_image(&self) -> Result<String, RuntimeError> {
        let failed = |error: &BollardError| {
            runtime_error(
                Operation::Other {
                    action: "creating the empty base image",
                },
                error,
            )
        };
        if let Ok(inspect) = self.docker.inspect_image(SCRATCH_TAG).await {
            let ours = inspect
                .config
                .as_ref()
                .and_then(|c| c.labels.as_ref())
                .is_some_and(|l| l.get(LABEL_MANAGED).is_some_and(|v| v == "true"));
            if let (true, Some(id)) = (ours, inspect.id) {
                return Ok(id);
            }
        }
        let (repo, tag) = split_tag(SCRATCH_TAG);
        let options = CreateImageOptionsBuilder::new()
            .from_src("-")
            .repo(&repo)
            .tag(&tag)
            .changes(vec![format!("LABEL {LABEL_MANAGED}=true")])
            .build();
        let mut stream = self.docker.create_image(
            Some(options),
            Some(body_full(archive::empty().into())),
            None,
        );
        while let Some(item) = stream.next().await {
            item.map_err(|error| failed(&error))?;
        }
        let inspect = self
            .docker
            .inspect_image(SCRATCH_TAG)
            .await
            .map_err(|error| failed(&error))?;
        let id = inspect.id.ok_or_else(|| RuntimeError::Failed {
            action: "creating the empty base image".to_owned(),
            reason: "dockerd reported no image ID".to_owned(),
        })?;
        tracing::debug!(image = %id, "empty base image created");
        Ok(id)
    }

    pub(crate) async fn tag(
        &self,
        image_id: &str,
        repo: &str,
        tag: &str,
    ) -> Result<(), RuntimeError> {
        let options = TagImageOptionsBuilder::new().repo(repo).tag(tag).build();
        self.docker
            .tag_image(image_id, Some(options))
            .await
            .map_err(|error| {
                runtime_error(
                    Operation::Other {
                        action: "tagging an image",
                    },
                    &error,
                )
            })
    }
}

fn credentials(auth: &RegistryAuth) -> DockerCredentials {
    DockerCredentials {
        username: Some(auth.username.clone()),
        password: Some(auth.password.clone()),
        serveraddress: Some(auth.server.clone()),
        ..Default::default()
    }
}

/// The digest in dockerd's final push status, `<tag>: digest: sha256:… size: N`.
fn push_digest(status: &str) -> Option<String> {
    let (_, rest) = status.split_once("digest: ")?;
    let digest = rest.split_whitespace().next()?;
    digest.starts_with("sha256:").then(|| digest.to_owned())
}

/// Builds a `PulledImage` from an inspection. `digest` is what the pull reported; else a
/// repository digest of the same repository is used, else the image ID.
fn pulled_image(
    inspect: ImageInspect,
    reference: Option<&ImageRef>,
    digest: Option<&str>,
) -> Result<PulledImage, RuntimeError> {
    let image_id = inspect.id.ok_or_else(|| RuntimeError::Failed {
        action: "inspecting an image".to_owned(),
        reason: "dockerd reported no image ID".to_owned(),
    })?;
    let repo_digest = || {
        let reference = reference?;
        inspect
            .repo_digests
            .iter()
            .flatten()
            .filter_map(|d| d.split_once('@'))
            .find(|(repo, _)| reference.same_repo(repo))
            .map(|(_, digest)| digest.to_owned())
    };
    let resolved_ref = match reference {
        Some(reference) => match reference
            .digest()
            .map(str::to_owned)
            .or_else(|| digest.map(str::to_owned))
            .or_else(repo_digest)
        {
            Some(digest) => reference.resolved(&digest),
            None => image_id.clone(),
        },
        None => image_id.clone(),
    };
    Ok(PulledImage {
        image_id,
        resolved_ref,
        config: image_config(inspect.config.unwrap_or_default()),
    })
}

fn image_config(config: bollard::models::ImageConfig) -> ImageConfig {
    let mut exposed_ports: Vec<String> = config
        .exposed_ports
        .unwrap_or_default()
        .into_keys()
        .collect();
    exposed_ports.sort();
    ImageConfig {
        exposed_ports,
        env: config
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|entry| match entry.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => (entry, String::new()),
            })
            .collect(),
        workdir: config.working_dir.unwrap_or_default(),
        user: config.user.unwrap_or_default(),
        entrypoint: config.entrypoint.unwrap_or_default(),
        cmd: config.cmd.unwrap_or_default(),
        labels: config
            .labels
            .unwrap_or_default()
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        healthcheck: config.healthcheck.and_then(healthcheck_of),
    }
}

/// Docker's health config as gantry's (`None` when disabled or inherited).
fn healthcheck_of(config: bollard::models::HealthConfig) -> Option<Healthcheck> {
    let test = config.test.unwrap_or_default();
    let (shell, args) = match test.split_first() {
        Some((kind, rest)) if kind == "CMD-SHELL" => (true, rest.to_vec()),
        Some((kind, rest)) if kind == "CMD" => (false, rest.to_vec()),
        _ => return None,
    };
    let duration = |nanos: Option<i64>| {
        nanos
            .filter(|n| *n > 0)
            .map(format_go_duration)
            .unwrap_or_default()
    };
    Some(Healthcheck {
        args,
        shell,
        interval: duration(config.interval),
        timeout: duration(config.timeout),
        start_period: duration(config.start_period),
        start_interval: duration(config.start_interval),
        retries: config.retries.unwrap_or(0),
    })
}

/// gantry's health check as Docker's (durations already validated).
fn health_config(check: &Healthcheck) -> bollard::models::HealthConfig {
    let [interval, timeout, start_period, start_interval] = check.durations().unwrap_or_default();
    let kind = if check.shell { "CMD-SHELL" } else { "CMD" };
    let nonzero = |n: i64| (n > 0).then_some(n);
    bollard::models::HealthConfig {
        test: Some(
            std::iter::once(kind.to_owned())
                .chain(check.args.iter().cloned())
                .collect(),
        ),
        interval: nonzero(interval),
        timeout: nonzero(timeout),
        start_period: nonzero(start_period),
        start_interval: nonzero(start_interval),
        retries: (check.retries > 0).then_some(check.retries),
    }
}

/// The `docker commit` configuration for `build_image`.
///
/// dockerd appends to it every env key and label of the container it lacks, and the
/// container inherits those of its base image (see `exec_commit_config`); env keys of
/// the base that `config` dropped are therefore set empty, the closest docker commit
/// gets to removing them. `Entrypoint`/`Cmd` come out exactly as given because the
/// container was created with an entrypoint and no `Cmd` (see `NEVER_STARTED`).
fn build_commit_config(config: &ImageConfig, base_env: &[String]) -> ContainerConfig {
    let mut env: Vec<String> = config
        .env
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let mut known: HashSet<&str> = config.env.iter().map(|(name, _)| name.as_str()).collect();
    for entry in base_env {
        let name = env_name(entry);
        if known.insert(name) {
            env.push(format!("{name}="));
        }
    }
    let mut labels: HashMap<String, String> = config
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(LABEL_MANAGED.to_owned(), "true".to_owned());
    ContainerConfig {
        env: Some(env),
        working_dir: Some(config.workdir.clone()),
        user: Some(config.user.clone()),
        entrypoint: Some(config.entrypoint.clone()),
        cmd: Some(config.cmd.clone()),
        labels: Some(labels),
        exposed_ports: Some(
            config
                .exposed_ports
                .iter()
                .map(|port| (port.clone(), HashMap::new()))
                .collect(),
        )
        .filter(|ports: &HashMap<_, _>| !ports.is_empty()),
        healthcheck: config.healthcheck.as_ref().map(health_config),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_digest_from_final_status() {
        assert_eq!(
            push_digest("latest: digest: sha256:abc size: 527").as_deref(),
            Some("sha256:abc")
        );
        assert_eq!(push_digest("Pushed"), None);
    }

    #[test]
    fn image_config_splits_env_at_first_equals() {
        let config = image_config(bollard::models::ImageConfig {
            env: Some(vec!["A=b=c".into(), "EMPTY=".into(), "BARE".into()]),
            ..Default::default()
        });
        assert_eq!(
            config.env,
            [
                ("A".into(), "b=c".into()),
                ("EMPTY".into(), String::new()),
                ("BARE".into(), String::new())
            ]
        );
    }

    #[test]
    fn health_checks_round_trip_through_docker_config() {
        let check = Healthcheck {
            args: vec!["curl -f localhost || exit 1".into()],
            shell: true,
            interval: "30s".into(),
            start_period: "1m30s".into(),
            retries: 3,
            ..Healthcheck::default()
        };
        let config = ImageConfig {
            healthcheck: Some(check.clone()),
            ..Default::default()
        };
        let commit = build_commit_config(&config, &[]).healthcheck.unwrap();
        assert_eq!(
            commit.test.as_deref().unwrap(),
            ["CMD-SHELL", "curl -f localhost || exit 1"]
        );
        assert_eq!(commit.interval, Some(30_000_000_000));
        assert_eq!(commit.timeout, None);
        assert_eq!(healthcheck_of(commit), Some(check));
        let none = bollard::models::HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        };
        assert_eq!(healthcheck_of(none), None);
    }

    #[test]
    fn build_commit_blanks_dropped_base_env() {
        let config = ImageConfig {
            env: vec![("PATH".into(), "/bin".into())],
            ..Default::default()
        };
        let commit = build_commit_config(&config, &["PATH=/usr/bin".into(), "OLD=1".into()]);
        assert_eq!(commit.env.unwrap(), ["PATH=/bin", "OLD="]);
        assert_eq!(commit.entrypoint, Some(vec![]));
        assert_eq!(commit.labels.unwrap()[LABEL_MANAGED], "true");
    }
}
