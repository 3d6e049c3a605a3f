//! Where containers come from and how they leave as images: `container`
//! (scratch), `from`, `import` and `asTarball`.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::{info_span, Instrument};

use crate::context::Context;
use crate::digest::{Digest, Domain, Encoder};
use crate::error::{Error, Result};
use crate::eval::{Call, OpEncoder, Operation};
use crate::events::StepState;
use crate::oci::{Compression, ImageFormat, MediaTypes};
use crate::registry_service::RegistryService;
use crate::runtime::{ImageConfig, PulledImage, RegistryAuth};
use crate::value::{ContainerState, FileValue, Kind, Rootfs, ServiceValue, Value};

/// `Query.container`: an empty container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scratch {
    pub platform: Option<String>,
}

impl Operation for Scratch {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        Vec::new()
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.opt_str(self.platform.as_deref());
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        // The platform is part of the key only: gantry runs the engine's own.
        Ok(Value::Container(Arc::new(ContainerState {
            key: Some(call.key),
            ..ContainerState::default()
        })))
    }
}

/// `Container.from`: the image at `address`, pulled once per engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FromImage {
    pub parent: Digest,
    pub address: String,
    /// `registryService`: a registry running as a service, which the
    /// address names by its hostname, started for the pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_service: Option<Digest>,
}

impl Operation for FromImage {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        std::iter::once(self.parent)
            .chain(self.registry_service)
            .collect()
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.address);
        // Written only when given, so other pulls keep their digests.
        if let Some(service) = &self.registry_service {
            e.str("registry-service");
            e.input(service);
        }
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let auth = cx.registry_auth_for(&parent, &self.address)?;
        let pulled = match self.registry_service {
            Some(service) => {
                let service = call.inputs.service(&service)?;
                pull_from_service(cx, &service, &self.address, auth).await?
            }
            None => pull(cx, &self.address, auth).await?,
        };
        let mut state = (*parent).clone();
        // Keyed on the image ID the tag resolved to, not the tag.
        let mut encoder = Encoder::new(Domain::FromKey);
        encoder.digest(&call.key).str(&pulled.image_id);
        state.key = Some(encoder.finish());
        state.config = merge_image_config(&parent.config, &pulled.config);
        state.adopt_image_ports();
        state.rootfs = Rootfs {
            image_id: Some(pulled.image_id.clone()),
            layers: Vec::new(),
        };
        state.image_ref = Some(pulled.resolved_ref.clone());
        state.exec = None;
        Ok(Value::Container(Arc::new(state)))
    }
}

/// Pulls an image once per engine and set of credentials: the tag is
/// pinned to the digest it resolved to for as long as this engine runs.
/// The credentials are part of the key so that a pull that succeeded
/// with one password does not vouch for another (or for none).
async fn pull(cx: &Context, address: &str, auth: Option<RegistryAuth>) -> Result<PulledImage> {
    let mut key = address.to_owned();
    if let Some(auth) = &auth {
        key.push_str(&format!("#auth:{}", cx.secrets.credentials_tag(auth)));
    }
    cx.pulls
        .run(key, || async {
            let span = info_span!("pull", image = %address);
            let step = Digest::of_bytes(address.as_bytes());
            let name = || format!("pull {address}");
            cx.events.emit(&step, name(), StepState::Running, None);
            let pulled = cx
                .runtime
                .pull(address, auth.as_ref())
                .instrument(span)
                .await
                .map_err(Error::from);
            match &pulled {
                Ok(_) => cx.events.emit(&step, name(), StepState::Done, None),
                Err(error) => {
                    let detail = Some(error.to_string());
                    cx.events.emit(&step, name(), StepState::Failed, detail);
                }
            }
            pulled
        })
        .await
}

/// `pull` of `address` from the registry `service` runs: through a loopback
/// forward (`registry_service.rs`), answering with the address as given.
async fn pull_from_service(
    cx: &Context,
    service: &Arc<ServiceValue>,
    address: &str,
    auth: Option<RegistryAuth>,
) -> Result<PulledImage> {
    let registry = RegistryService::start(cx, service, address).await?;
    let auth = registry.local_auth(auth);
    let mut pulled = registry
        .run(cx, address, pull(cx, &registry.local(address), auth))
        .await?;
    pulled.resolved_ref = registry.given(&pulled.resolved_ref);
    Ok(pulled)
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

/// `Container.import`: a container from an image tarball (a file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Import {
    pub source: Digest,
    pub tag: String,
}

impl Operation for Import {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.source]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.source).str(&self.tag);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let file = call.inputs.file(&self.source)?;
        let tarball = cx.store.get_blob(&file.blob)?;
        let loaded = cx.runtime.load_image(Bytes::from(tarball)).await?;
        let mut encoder = Encoder::new(Domain::ImportKey);
        encoder.digest(&call.key).str(&loaded.image_id);
        let mut state = ContainerState {
            key: Some(encoder.finish()),
            config: loaded.config,
            rootfs: Rootfs {
                image_id: Some(loaded.image_id),
                layers: Vec::new(),
            },
            ..ContainerState::default()
        };
        state.adopt_image_ports();
        Ok(Value::Container(Arc::new(state)))
    }
}

/// `Container.asTarball`: the container as an image tarball (a file, mode
/// 0600 as Dagger makes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AsTarball {
    pub container: Digest,
    #[serde(default, skip_serializing_if = "ImageFormat::is_default")]
    pub format: ImageFormat,
}

impl Operation for AsTarball {
    const KIND: Kind = Kind::File;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.container]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.container);
        let media_types = match self.format.media_types {
            MediaTypes::Oci => "",
            MediaTypes::Docker => "docker",
        };
        let compression = match self.format.compression {
            Compression::Gzip => "",
            Compression::Uncompressed => "uncompressed",
        };
        e.added_str("mediaTypes", media_types)
            .added_str("compression", compression);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let container = call.inputs.container(&self.container)?;
        let tarball = cx.image_tarball(&container, self.format).await?;
        let blob = cx.store.put_blob(&tarball)?;
        Ok(Value::File(Arc::new(FileValue::new(
            "image.tar".into(),
            blob,
            tarball.len() as u64,
            0o600,
        ))))
    }
}

/// `Host.containerImage`: an image from the runtime's local image store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostContainerImage {
    pub name: String,
}

impl Operation for HostContainerImage {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        Vec::new()
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.str(&self.name);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let image = cx.runtime.local_image(&self.name).await?;
        // Keyed like `import`: the op's key plus the image found.
        let mut encoder = Encoder::new(Domain::ImportKey);
        encoder.digest(&call.key).str(&image.image_id);
        Ok(Value::Container(Arc::new(ContainerState {
            key: Some(encoder.finish()),
            config: image.config,
            rootfs: Rootfs {
                image_id: Some(image.image_id),
                layers: Vec::new(),
            },
            ..ContainerState::default()
        })))
    }
}
