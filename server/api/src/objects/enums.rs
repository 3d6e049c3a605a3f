//! Enums of the API, with Dagger's names and aliases.

use async_graphql::Enum;
use gantry_core::ops::{Compression, Expect, MediaTypes, Sharing};

/// Sharing mode of a cache volume.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "CacheSharingMode")]
pub(crate) enum CacheSharingMode {
    /// Shares the cache volume amongst many build pipelines.
    #[graphql(name = "SHARED")]
    Shared,
    /// Keeps a cache volume for a single build pipeline (behaves like LOCKED).
    #[graphql(name = "PRIVATE")]
    Private,
    /// Shares the cache volume amongst many build pipelines, but will serialize the writes.
    #[graphql(name = "LOCKED")]
    Locked,
}

impl From<CacheSharingMode> for Sharing {
    fn from(mode: CacheSharingMode) -> Self {
        match mode {
            CacheSharingMode::Shared => Sharing::Shared,
            CacheSharingMode::Private => Sharing::Private,
            CacheSharingMode::Locked => Sharing::Locked,
        }
    }
}

/// Expected return type of an execution.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ReturnType")]
pub(crate) enum ReturnType {
    /// A successful execution (exit code 0).
    #[graphql(name = "SUCCESS")]
    Success,
    /// A failed execution (exit codes 1-127 and 192-255).
    #[graphql(name = "FAILURE")]
    Failure,
    /// Any execution (exit codes 0-127 and 192-255).
    #[graphql(name = "ANY")]
    Any,
}

impl From<ReturnType> for Expect {
    fn from(value: ReturnType) -> Self {
        match value {
            ReturnType::Success => Expect::Success,
            ReturnType::Failure => Expect::Failure,
            ReturnType::Any => Expect::Any,
        }
    }
}

/// Compression algorithm to use for image layers.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ImageLayerCompression")]
pub(crate) enum ImageLayerCompression {
    #[graphql(name = "Gzip")]
    Gzip,
    #[graphql(name = "Zstd")]
    Zstd,
    #[graphql(name = "EStarGZ")]
    EStarGz,
    #[graphql(name = "Uncompressed")]
    Uncompressed,
    #[graphql(name = "GZIP")]
    GzipUpper,
    #[graphql(name = "ZSTD")]
    ZstdUpper,
    #[graphql(name = "ESTARGZ")]
    EStarGzUpper,
    #[graphql(name = "UNCOMPRESSED")]
    UncompressedUpper,
}

impl ImageLayerCompression {
    /// The compression of an image tarball layer, `None` for those gantry
    /// does not produce (Zstd, EStarGZ).
    pub(crate) fn tarball_compression(self) -> Option<Compression> {
        match self {
            Self::Gzip | Self::GzipUpper => Some(Compression::Gzip),
            Self::Uncompressed | Self::UncompressedUpper => Some(Compression::Uncompressed),
            Self::Zstd | Self::ZstdUpper | Self::EStarGz | Self::EStarGzUpper => None,
        }
    }

    /// The GraphQL name, for errors.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Gzip => "Gzip",
            Self::Zstd => "Zstd",
            Self::EStarGz => "EStarGZ",
            Self::Uncompressed => "Uncompressed",
            Self::GzipUpper => "GZIP",
            Self::ZstdUpper => "ZSTD",
            Self::EStarGzUpper => "ESTARGZ",
            Self::UncompressedUpper => "UNCOMPRESSED",
        }
    }
}

/// Mediatypes to use in published or exported image metadata.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ImageMediaTypes")]
pub(crate) enum ImageMediaTypes {
    #[graphql(name = "OCIMediaTypes")]
    OciMediaTypes,
    #[graphql(name = "DockerMediaTypes")]
    DockerMediaTypes,
    #[graphql(name = "OCI")]
    Oci,
    #[graphql(name = "DOCKER")]
    Docker,
}

impl ImageMediaTypes {
    pub(crate) fn is_oci(self) -> bool {
        matches!(self, Self::OciMediaTypes | Self::Oci)
    }
}

impl From<ImageMediaTypes> for MediaTypes {
    fn from(types: ImageMediaTypes) -> Self {
        if types.is_oci() {
            MediaTypes::Oci
        } else {
            MediaTypes::Docker
        }
    }
}

/// Transport layer network protocol.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "NetworkProtocol")]
pub(crate) enum NetworkProtocol {
    #[graphql(name = "TCP")]
    Tcp,
    #[graphql(name = "UDP")]
    Udp,
}

/// The protocol used to talk to a registry.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "RegistryProtocol")]
pub(crate) enum RegistryProtocol {
    #[graphql(name = "HTTPS")]
    Https,
    #[graphql(name = "HTTP")]
    Http,
}
