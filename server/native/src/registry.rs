//! Registries: pulling images into the snapshot store and pushing images built from
//! it, through `oci-client`.
//!
//! Credentials come from the pipeline (`withRegistryAuth`) or else from the Docker
//! client configuration (`$DOCKER_CONFIG/config.json`, `~/.docker/config.json`: its
//! `auths` entries and credential helpers), as `docker pull` would use them.
//! Registries on loopback addresses are spoken to over plain HTTP, as dockerd does.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};

use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt as _;
use gantry_core::runtime::{RegistryAuth, RuntimeError};
use gantry_core::{Hashing, ImageRef};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth as OciAuth;
use oci_client::{Client, Reference};

use crate::error::Error;
use crate::store::{ImageRecord, LayerOrigin, Store, LAYER_ID_LEN};
use crate::unpack::{self, Mode};

/// Layers downloaded and unpacked at once.
const PARALLEL_LAYERS: usize = 4;

/// `reference` read by gantry-core's parser (the one parser of image references), as
/// the registry client's type.
pub(crate) fn parse(reference: &str) -> Result<(ImageRef, Reference), RuntimeError> {
    let image = ImageRef::parse(reference).map_err(|error| RuntimeError::ImageNotFound {
        reference: reference.to_owned(),
        reason: format!("not a valid image reference: {error}"),
    })?;
    let (registry, path) = (image.registry().to_owned(), image.path());
    let client_ref = match (image.tag(), image.digest()) {
        (None, Some(digest)) => Reference::with_digest(registry, path, digest.to_owned()),
        (Some(tag), Some(digest)) => {
            Reference::with_tag_and_digest(registry, path, tag.to_owned(), digest.to_owned())
        }
        (_, None) => Reference::with_tag(registry, path, image.tag_or_latest().to_owned()),
    };
    Ok((image, client_ref))
}

/// Whether `registry` (`host[:port]`) is on a loopback address, spoken to over plain
/// HTTP as dockerd does.
pub fn is_loopback(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(host, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            host
        } else {
            registry
        }
    });
    host == "localhost" || host.starts_with("127.") || host == "[::1]" || host == "::1"
}

pub(crate) fn client(registry: &str) -> Client {
    client_for(registry, is_loopback(registry))
}

/// The clients for anonymous pulls, one per registry, made once per runtime and
/// shared by its pulls: making one loads the system's root certificates (twice, in
/// `oci-client`), which cost every pull some tens of milliseconds. Only anonymous
/// access shares a client (its token cache then holds anonymous tokens only); a pull
/// with credentials gets a client of its own, so no pipeline's tokens serve another.
/// Per runtime, not per process: a client's pooled connections are tasks of the
/// tokio runtime that opened them, and a pull in another runtime that takes one after
/// that runtime ended fails ("dispatch task is gone"), as tests that each start their
/// own runtime did.
#[derive(Default)]
pub(crate) struct Clients(std::sync::Mutex<HashMap<String, Client>>);

impl Clients {
    /// The client a pull of `image` with `auth` uses.
    fn for_pull(&self, image: &Reference, auth: &OciAuth) -> Client {
        let registry = image.resolve_registry();
        match auth {
            OciAuth::Anonymous => self
                .0
                .lock()
                .expect("the client map is never poisoned")
                .entry(registry.to_owned())
                .or_insert_with(|| client(registry))
                .clone(),
            _ => client(registry),
        }
    }
}

/// A registry client for `registry`, over plain HTTP when `plain_http` (loopback
/// registries, or one the user declared insecure), else HTTPS.
pub fn client_for(registry: &str, plain_http: bool) -> Client {
    // reqwest needs a process-wide TLS crypto provider; another part of the process
    // may have installed one first, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let protocol = if plain_http {
        ClientProtocol::HttpsExcept(vec![registry.to_owned()])
    } else {
        ClientProtocol::Https
    };
    Client::new(ClientConfig {
        protocol,
        max_concurrent_download: PARALLEL_LAYERS,
        // One request per blob (a POST, then a PUT of it all), which every
        // registry serves: oci-client's default sends 4 MiB chunks, a request
        // each (25 for a 100 MB layer, twice the time on a local registry).
        use_monolithic_push: true,
        connect_timeout: Some(std::time::Duration::from_secs(30)),
        read_timeout: Some(std::time::Duration::from_secs(300)),
        ..Default::default()
    })
}

/// Credentials for `registry`: the pipeline's, else the Docker configuration's.
pub async fn credentials(registry: &str, auth: Option<&RegistryAuth>) -> OciAuth {
    if let Some(auth) = auth {
        return OciAuth::Basic(auth.username.clone(), auth.password.clone());
    }
    let registry = registry.to_owned();
    tokio::task::spawn_blocking(move || docker_config_auth(&registry))
        .await
        .ok()
        .flatten()
        .unwrap_or(OciAuth::Anonymous)
}

/// The credentials to hand a registry client for `image`: `auth`, or, where
/// `auth` is anonymous and the registry asks `client` for no token, an empty
/// bearer token, for a client of its own.
///
/// oci-client asks a registry's `/v2/` for a token before each request while
/// it holds none, and it keeps none from a registry that gives none (a plain
/// `registry:2`), so every manifest and blob request there cost two. An empty
/// bearer token is kept and sent instead, and such a registry ignores it; one
/// that wants Basic credentials refuses the request as it would an anonymous
/// one. `client` keeps the anonymous access it asked with (a client keeps the
/// first credentials it is given for a registry), so the token goes to
/// another client.
pub async fn tokenless(client: &Client, image: &Reference, auth: OciAuth) -> OciAuth {
    if !matches!(auth, OciAuth::Anonymous) {
        return auth;
    }
    match client
        .auth(
            image,
            &OciAuth::Anonymous,
            oci_client::RegistryOperation::Pull,
        )
        .await
    {
        Ok(None) => OciAuth::Bearer(String::new()),
        _ => OciAuth::Anonymous,
    }
}

fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".docker").join("config.json"))
}

fn docker_config_auth(registry: &str) -> Option<OciAuth> {
    let text = std::fs::read(docker_config_path()?).ok()?;
    let config: serde_json::Value = serde_json::from_slice(&text).ok()?;
    // Docker Hub is keyed by its historical URL.
    let keys: Vec<String> = if registry == "docker.io" || registry == "index.docker.io" {
        vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
        ]
    } else {
        vec![
            registry.to_owned(),
            format!("https://{registry}"),
            format!("http://{registry}"),
        ]
    };
    let helper = keys
        .iter()
        .find_map(|key| config["credHelpers"][key].as_str())
        .or_else(|| config["credsStore"].as_str());
    if let Some(helper) = helper.filter(|h| !h.is_empty()) {
        if let Some(auth) = helper_auth(helper, &keys[0]) {
            return Some(auth);
        }
    }
    let entry = keys.iter().find_map(|key| config["auths"].get(key))?;
    let encoded = entry["auth"].as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some(OciAuth::Basic(user.to_owned(), password.to_owned()))
}

/// `docker-credential-HELPER get` with the server on stdin.
fn helper_auth(helper: &str, server: &str) -> Option<OciAuth> {
    use std::io::Write as _;
    let mut child = std::process::Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(server.as_bytes()).ok()?;
    let output = child.wait_with_output().ok()?;
    if !output.status.success() {
        return None;
    }
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    let user = answer["Username"].as_str()?;
    let secret = answer["Secret"].as_str()?;
    if user == "<token>" {
        return Some(OciAuth::Bearer(secret.to_owned()));
    }
    Some(OciAuth::Basic(user.to_owned(), secret.to_owned()))
}

/// Replaces `secret` in `text` (registry errors may echo what was sent).
pub(crate) fn redact(text: &str, secret: Option<&str>) -> String {
    match secret.filter(|s| !s.is_empty()) {
        Some(secret) => text.replace(secret, "***"),
        None => text.to_owned(),
    }
}

/// A registry error as the solver's `RuntimeError`.
pub fn registry_error(
    reference: &str,
    error: &OciDistributionError,
    password: Option<&str>,
) -> RuntimeError {
    let reason = redact(&crate::error::chain(error), password);
    let unauthorized = match error {
        OciDistributionError::AuthenticationFailure(_)
        | OciDistributionError::UnauthorizedError { .. } => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)),
        OciDistributionError::ServerError { code, .. } => *code == 401 || *code == 403,
        _ => false,
    };
    if unauthorized {
        RuntimeError::Unauthorized {
            reference: reference.to_owned(),
            reason,
        }
    } else {
        RuntimeError::ImageNotFound {
            reference: reference.to_owned(),
            reason,
        }
    }
}

/// The layers' uncompressed digests an OCI image config lists, bottom first.
pub(crate) fn diff_ids(config: &serde_json::Value) -> Vec<String> {
    config["rootfs"]["diff_ids"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The layer ID under which a layer with uncompressed digest `diff_id` is stored.
pub(crate) fn layer_id(diff_id: &str) -> Result<String, Error> {
    let hex = diff_id
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| Error::archive(format!("{diff_id} is not a sha256 digest")))?;
    Ok(hex[..LAYER_ID_LEN].to_owned())
}

/// What a pull found: the manifest digest it resolved and the stored image.
pub(crate) struct Pulled {
    pub(crate) image_id: String,
    pub(crate) digest: String,
    pub(crate) record: ImageRecord,
    /// The layers left to fetch (a deferred pull's).
    pub(crate) missing: Vec<MissingLayer>,
}

/// Pulls `reference` into `store`: the manifest and config, then every layer the
/// store lacks (downloaded, decompressed, verified against its diff ID and unpacked
/// in one stream, several layers at once). With `defer`, the layers are left for
/// `fetch_layers` and the image is not recorded: `Pulled::missing` lists them.
pub(crate) async fn pull(
    store: &Store,
    clients: &Clients,
    image: &Reference,
    auth: &OciAuth,
    password: Option<&str>,
    defer: bool,
) -> Result<Pulled, RuntimeError> {
    let reference = image.whole();
    let client = clients.for_pull(image, auth);
    let (manifest, manifest_digest, config, list_digest) = client
        .pull_manifest_and_config_and_list_digest(image, auth)
        .await
        .map_err(|error| registry_error(&reference, &error, password))?;
    let config: serde_json::Value =
        serde_json::from_str(&config).map_err(|error| RuntimeError::Failed {
            action: format!("pulling {reference}"),
            reason: format!("the image config is not JSON: {error}"),
        })?;
    let image_id = manifest.config.digest.clone();
    let diff_ids = diff_ids(&config);
    if diff_ids.len() != manifest.layers.len() {
        return Err(RuntimeError::Failed {
            action: format!("pulling {reference}"),
            reason: format!(
                "the manifest lists {} layers but the config {} diff IDs",
                manifest.layers.len(),
                diff_ids.len()
            ),
        });
    }
    let mut layers = Vec::new();
    for diff_id in &diff_ids {
        layers.push(layer_id(diff_id).map_err(crate::error::failed("pulling an image"))?);
    }
    for ((descriptor, diff_id), id) in manifest.layers.iter().zip(&diff_ids).zip(&layers) {
        let origin = LayerOrigin {
            registry: image.resolve_registry().to_owned(),
            repository: image.repository().to_owned(),
            digest: descriptor.digest.clone(),
            size: descriptor.size,
            media_type: descriptor.media_type.clone(),
            diff_id: diff_id.clone(),
        };
        // Best effort: without it, a push exports the layer instead.
        if let Err(error) = store.set_origin(id, &origin) {
            tracing::debug!(layer = %id, %error, "cannot record where a layer came from");
        }
    }
    let missing: Vec<MissingLayer> = manifest
        .layers
        .iter()
        .zip(&diff_ids)
        .zip(&layers)
        .filter(|(_, id)| !store.has_layer(id))
        .map(|((descriptor, diff_id), id)| (descriptor.clone(), diff_id.clone(), id.clone()))
        .collect();
    let record = ImageRecord {
        layers,
        config: Some(config),
    };
    let mut pulled = Pulled {
        image_id,
        digest: list_digest.unwrap_or(manifest_digest),
        record,
        missing,
    };
    if !defer {
        fetch_layers(
            store,
            clients,
            image,
            auth,
            password,
            std::mem::take(&mut pulled.missing),
        )
        .await?;
        store
            .put_image(&pulled.image_id, &pulled.record)
            .map_err(crate::error::failed("recording a pulled image"))?;
    }
    Ok(pulled)
}

/// A layer a pull found missing from the store: its blob, diff ID and layer ID.
pub(crate) type MissingLayer = (OciDescriptor, String, String);

/// Downloads and unpacks `missing` layers of `image` into `store` (several at
/// once).
pub(crate) async fn fetch_layers(
    store: &Store,
    clients: &Clients,
    image: &Reference,
    auth: &OciAuth,
    password: Option<&str>,
    missing: Vec<MissingLayer>,
) -> Result<(), RuntimeError> {
    let reference = image.whole();
    let client = clients.for_pull(image, auth);
    if !missing.is_empty() {
        // The token the manifest request would have fetched.
        client
            .store_auth_if_needed(image.resolve_registry(), auth)
            .await;
    }
    let started = std::time::Instant::now();
    let count = missing.len();
    futures::stream::iter(missing)
        .map(|(descriptor, diff_id, id)| {
            let client = &client;
            let reference = &reference;
            async move {
                fetch_layer(store, client, image, &descriptor, &diff_id, &id, password)
                    .await
                    .map_err(|error| match error {
                        FetchError::Registry(error) => registry_error(reference, &error, password),
                        FetchError::Local(error) => error.into_runtime("unpacking a pulled layer"),
                    })
            }
        })
        .buffer_unordered(PARALLEL_LAYERS)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<()>, _>>()?;
    tracing::debug!(
        layers = count,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "layers pulled"
    );
    Ok(())
}

enum FetchError {
    Registry(OciDistributionError),
    Local(Error),
}

/// Streams one layer blob into an unpacking thread.
async fn fetch_layer(
    store: &Store,
    client: &Client,
    image: &Reference,
    descriptor: &OciDescriptor,
    diff_id: &str,
    id: &str,
    _password: Option<&str>,
) -> Result<(), FetchError> {
    let mut stream = client
        .pull_blob_stream(image, descriptor)
        .await
        .map_err(FetchError::Registry)?;
    let dir = store.scratch("pull").map_err(FetchError::Local)?;
    let (sender, receiver) = mpsc::sync_channel::<Bytes>(64);
    let media_type = descriptor.media_type.clone();
    let expected = diff_id.to_owned();
    let target = dir.clone();
    let unpacker = tokio::task::spawn_blocking(move || {
        unpack_stream(
            ChannelReader::new(receiver),
            &media_type,
            &target,
            &expected,
        )
    });
    let mut download_error = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                if sender.send(chunk).is_err() {
                    break; // the unpacker stopped: its error says why
                }
            }
            Err(error) => {
                download_error = Some(error);
                break;
            }
        }
    }
    drop(sender);
    let unpacked = unpacker
        .await
        .map_err(|error| FetchError::Local(Error::other("unpacking a layer", error)))?;
    if let Some(error) = download_error {
        crate::store::remove_tree(&dir);
        return Err(FetchError::Local(Error::io(
            "downloading a layer",
            &dir,
            error,
        )));
    }
    if let Err(error) = unpacked {
        crate::store::remove_tree(&dir);
        return Err(FetchError::Local(error));
    }
    store.commit_layer(&dir, id).map_err(FetchError::Local)
}

/// Decompresses (by media type, or by magic number), hashes and unpacks a layer.
pub(crate) fn unpack_stream(
    reader: impl Read,
    media_type: &str,
    target: &std::path::Path,
    diff_id: &str,
) -> Result<(), Error> {
    let mut reader = std::io::BufReader::with_capacity(1 << 20, reader);
    let gzip = if media_type.ends_with("gzip") {
        true
    } else if media_type.contains("zstd") {
        return Err(Error::archive(format!(
            "{media_type} layers are not supported yet"
        )));
    } else {
        let head = std::io::BufRead::fill_buf(&mut reader)
            .map_err(|source| Error::io("reading a layer", target, source))?;
        head.starts_with(&[0x1f, 0x8b])
    };
    let decompressed: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let mut hashing = Hashing::new(decompressed);
    unpack::unpack(&mut hashing, target, Mode::Layer)?;
    // The archive may end before its reader does (padding blocks): hash the rest.
    std::io::copy(&mut hashing, &mut std::io::sink())
        .map_err(|source| Error::io("reading a layer", target, source))?;
    let actual = hashing.finish().1.to_string();
    if actual != diff_id {
        return Err(Error::archive(format!(
            "layer content is {actual}, but the image config says {diff_id}"
        )));
    }
    Ok(())
}

/// A push's error: an image "not found" there is a repository that cannot be
/// pushed to.
fn push_error(
    reference: &str,
    error: &OciDistributionError,
    password: Option<&str>,
) -> RuntimeError {
    match registry_error(reference, error, password) {
        RuntimeError::ImageNotFound { reason, .. } => RuntimeError::Failed {
            action: format!("pushing {reference}"),
            reason,
        },
        other => other,
    }
}

/// A first authenticated request, so that the push operations get a token.
async fn authorize_push(
    client: &Client,
    image: &Reference,
    auth: &OciAuth,
) -> Result<(), OciDistributionError> {
    client
        .store_auth_if_needed(image.resolve_registry(), auth)
        .await;
    client
        .auth(image, auth, oci_client::RegistryOperation::Push)
        .await
        .map(|_| ())
}

/// Uploads a blob from `pieces` as a chunked upload (a PATCH each), its
/// digest computed on the way; returns that digest.
pub(crate) async fn push_stream(
    client: &Client,
    image: &Reference,
    auth: &OciAuth,
    password: Option<&str>,
    pieces: impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
) -> Result<String, RuntimeError> {
    use futures::StreamExt as _;
    let reference = image.whole();
    let fail = |error: OciDistributionError| push_error(&reference, &error, password);
    authorize_push(client, image, auth).await.map_err(fail)?;
    let pieces = pieces.map(|piece| {
        piece.map_err(|error| OciDistributionError::GenericError(Some(error.to_string())))
    });
    let pushed = client
        .push_blob_stream_chunked(image, pieces)
        .await
        .map_err(fail)?;
    Ok(pushed.blob_digest)
}

/// A blocking reader over chunks sent from an async task.
pub(crate) struct ChannelReader {
    receiver: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl ChannelReader {
    pub(crate) fn new(receiver: mpsc::Receiver<Bytes>) -> Self {
        Self {
            receiver,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.recv() {
                Ok(chunk) => self.current = chunk,
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        bytes::Buf::advance(&mut self.current, n);
        Ok(n)
    }
}

/// Makes the blob `blob` of `source` (a layer of a pulled image) part of
/// `image`'s repository without exporting the layer again: there already,
/// mounted from `source` on the same registry (one request), or else copied
/// from `source`'s registry (`copy_blob`), so that its digest stays the one
/// every machine that pulled the image has. `false`: none of these worked
/// (the blob is gone, the source needs credentials the Docker configuration
/// does not hold); the caller uploads the layer itself.
///
/// The caller has asked `client` for push access to `image` (a mount is a
/// push).
pub async fn mount_or_copy(
    client: &Client,
    image: &Reference,
    source: &Reference,
    blob: &OciDescriptor,
) -> bool {
    if client
        .blob_exists(image, &blob.digest)
        .await
        .unwrap_or(false)
    {
        return true;
    }
    let from = source.repository();
    if source.resolve_registry() == image.resolve_registry() {
        match client.mount_blob(image, source, &blob.digest).await {
            Ok(()) => {
                tracing::debug!(digest = %blob.digest, from, "blob mounted");
                return true;
            }
            Err(error) => {
                tracing::debug!(digest = %blob.digest, from, %error, "cannot mount a blob; copying it");
            }
        }
    }
    let started = std::time::Instant::now();
    match copy_blob(client, image, source, blob).await {
        Ok(()) => {
            let elapsed_ms = started.elapsed().as_millis() as u64;
            tracing::debug!(digest = %blob.digest, from = %source.whole(), size = blob.size, elapsed_ms, "blob copied");
            true
        }
        Err(error) => {
            tracing::debug!(digest = %blob.digest, from = %source.whole(), %error, "cannot copy a blob; uploading the layer");
            false
        }
    }
}

impl LayerOrigin {
    /// The repository the layer was pulled from.
    pub(crate) fn source(&self) -> Reference {
        Reference::with_tag(
            self.registry.clone(),
            self.repository.clone(),
            "latest".to_owned(),
        )
    }

    /// The blob, as the manifest listed it.
    pub(crate) fn descriptor(&self) -> OciDescriptor {
        OciDescriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
            ..Default::default()
        }
    }
}

/// Streams the blob `blob` from `source`'s registry into `image`'s
/// repository: pulled and uploaded piece by piece (a chunked upload), never
/// whole in memory, its digest checked on both sides. The source's
/// credentials come from the Docker configuration; plain HTTP for loopback
/// registries only, as pulls.
async fn copy_blob(
    client: &Client,
    image: &Reference,
    source: &Reference,
    blob: &OciDescriptor,
) -> Result<(), String> {
    let registry = source.resolve_registry();
    let reader = client_for(registry, is_loopback(registry));
    let auth = credentials(registry, None).await;
    let pull_error = |error: OciDistributionError| registry_error(&source.whole(), &error, None);
    reader
        .auth(source, &auth, oci_client::RegistryOperation::Pull)
        .await
        .map_err(|error| pull_error(error).to_string())?;
    let pulled = reader
        .pull_blob_stream(source, blob)
        .await
        .map_err(|error| pull_error(error).to_string())?;
    let copied = client
        .push_blob_stream_chunked(image, in_pieces(pulled.stream))
        .await
        .map_err(|error| registry_error(&image.whole(), &error, None).to_string())?;
    if copied.blob_digest != blob.digest {
        return Err(format!(
            "the copy's digest is {}, not {}",
            copied.blob_digest, blob.digest
        ));
    }
    Ok(())
}

/// Bytes per request of a chunked upload, at least: registries such as ECR
/// refuse pieces under 5 MiB (but the last).
pub(crate) const UPLOAD_PIECE: usize = 8 << 20;

/// `stream` (as a download gives it, in pieces of a few KiB) in pieces of
/// `UPLOAD_PIECE` bytes, the last one shorter.
fn in_pieces(
    stream: futures::stream::BoxStream<'static, std::io::Result<Bytes>>,
) -> impl futures::Stream<Item = oci_client::errors::Result<Bytes>> + Send + 'static {
    futures::stream::unfold(Some(stream), |stream| async move {
        let mut stream = stream?;
        let mut piece = bytes::BytesMut::new();
        loop {
            match stream.next().await {
                Some(Ok(bytes)) => {
                    piece.extend_from_slice(&bytes);
                    if piece.len() >= UPLOAD_PIECE {
                        return Some((Ok(piece.freeze()), Some(stream)));
                    }
                }
                Some(Err(error)) => {
                    let error = OciDistributionError::GenericError(Some(error.to_string()));
                    return Some((Err(error), None));
                }
                None => return (!piece.is_empty()).then(|| (Ok(piece.freeze()), None)),
            }
        }
    })
}

/// The lock of one blob's upload to one repository (`name`: its
/// registry, repository and digest), process-wide.
fn upload_turn(name: &str) -> Arc<tokio::sync::Mutex<()>> {
    static UPLOADS: std::sync::LazyLock<
        std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    > = std::sync::LazyLock::new(Default::default);
    let mut uploads = UPLOADS.lock().expect("never poisoned");
    // Uploads nobody waits for are forgotten (a long-lived engine pushes
    // many blobs).
    uploads.retain(|_, turn| Arc::strong_count(turn) > 1);
    uploads.entry(name.to_owned()).or_default().clone()
}

/// Blobs up to this size (configs, cache records) are uploaded without
/// asking the registry first whether it has them (`push`): a new one then
/// costs two requests instead of three.
const ASK_FIRST_ABOVE: usize = 64 << 10;

/// A blob to push: its digest, size, media type and bytes.
pub struct Blob {
    pub digest: String,
    pub media_type: String,
    pub data: Bytes,
}

/// Pushes layers, config and manifest through `client` (`client_for`); returns the
/// manifest digest.
#[allow(clippy::too_many_arguments, reason = "one push, described in full")]
pub async fn push(
    client: &Client,
    image: &Reference,
    auth: &OciAuth,
    password: Option<&str>,
    layers: Vec<Blob>,
    config: Blob,
    manifest: Bytes,
    manifest_type: &str,
) -> Result<String, RuntimeError> {
    let reference = image.whole();
    let fail = |error: OciDistributionError| push_error(&reference, &error, password);
    authorize_push(client, image, auth).await.map_err(fail)?;
    for blob in layers.iter().chain(std::iter::once(&config)) {
        // A small blob is sent again at no more cost than asking whether it
        // is there. Pushes at once of images that share layers upload each
        // layer once: the later ones wait for the upload under way and find
        // the blob there.
        let ask = blob.data.len() > ASK_FIRST_ABOVE;
        let turn = ask.then(|| {
            upload_turn(&format!(
                "{}/{}@{}",
                image.resolve_registry(),
                image.repository(),
                blob.digest
            ))
        });
        let _turn = match &turn {
            Some(turn) => Some(turn.lock().await),
            None => None,
        };
        if ask
            && client
                .blob_exists(image, &blob.digest)
                .await
                .unwrap_or(false)
        {
            continue;
        }
        client
            .push_blob(image, blob.data.clone(), &blob.digest)
            .await
            .map_err(fail)?;
        tracing::debug!(digest = %blob.digest, media_type = %blob.media_type, bytes = blob.data.len(), "blob pushed");
    }
    let digest = gantry_core::Digest::of_bytes(&manifest).to_string();
    let content_type =
        http::HeaderValue::from_str(manifest_type).expect("media types are valid header values");
    client
        .push_manifest_raw(image, manifest, content_type)
        .await
        .map_err(fail)?;
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_copied_blob_goes_up_in_whole_pieces() {
        // A download's small pieces, 3.5 upload pieces' worth in all.
        let input: Vec<u8> = (0..UPLOAD_PIECE * 7 / 2).map(|i| (i % 251) as u8).collect();
        let small: Vec<std::io::Result<Bytes>> = input
            .chunks(16 << 10)
            .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
            .collect();
        let pieces: Vec<Bytes> = in_pieces(futures::stream::iter(small).boxed())
            .map(|piece| piece.unwrap())
            .collect()
            .await;
        let sizes: Vec<usize> = pieces.iter().map(Bytes::len).collect();
        assert_eq!(
            sizes,
            [UPLOAD_PIECE, UPLOAD_PIECE, UPLOAD_PIECE, UPLOAD_PIECE / 2]
        );
        assert_eq!(pieces.concat(), input);

        // A failed download ends the stream with its error: the upload
        // fails rather than commit part of a blob.
        let failing = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"abc")),
            Err(std::io::Error::other("connection reset")),
        ]);
        let pieces: Vec<_> = in_pieces(failing.boxed()).collect().await;
        assert_eq!(pieces.len(), 1);
        assert!(pieces[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("connection reset"));
    }

    #[test]
    fn loopback_registries_use_http() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5001"));
        assert!(!is_loopback("registry.example.com"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }

    #[test]
    fn layer_ids_are_diff_id_prefixes() {
        let id = layer_id(&format!("sha256:{}", "ab".repeat(32))).unwrap();
        assert_eq!(id.len(), LAYER_ID_LEN);
        assert!(layer_id("md5:x").is_err());
    }
}
