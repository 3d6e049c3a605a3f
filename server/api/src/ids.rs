//! Object IDs: `<Type>:<node digest hex>`, e.g. `Container:3f2a…`.
//!
//! An ID is bounded (about 75 bytes however long the chain behind it) and
//! stable across restarts: handing one out persists the node's recipe, so
//! `node(id:)` and `load<T>FromID` can rebuild it in a fresh engine.
//! `EnvVariable` IDs name a container and an index instead.

use std::sync::Arc;

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value, ID};
use gantry_core::{Digest, Engine, Error, Kind, Node};

pub(crate) fn format_id(engine: &Engine, node: &Node) -> async_graphql::Result<ID> {
    engine
        .persist(&node.digest)
        .map_err(crate::error::to_graphql)?;
    Ok(ID(format!("{}:{}", node.kind().name(), node.digest.hex())))
}

/// Parses any gantry ID into (type name, rest).
pub(crate) fn split_id(id: &str) -> Result<(&str, &str), Error> {
    id.split_once(':').ok_or_else(|| Error::UnknownId {
        kind: "object".into(),
        id: truncate(id),
    })
}

fn truncate(id: &str) -> String {
    if id.len() > 80 {
        format!(
            "{}…",
            &id[..id.char_indices().nth(80).map_or(id.len(), |(i, _)| i)]
        )
    } else {
        id.to_owned()
    }
}

/// Resolves an ID argument to a node of the expected kind.
pub(crate) fn load(engine: &Engine, id: &str, kind: Kind) -> Result<Arc<Node>, Error> {
    let (type_name, hex) = split_id(id)?;
    if type_name != kind.name() {
        return Err(Error::WrongIdKind {
            expected: kind.name().into(),
            found: type_name.into(),
        });
    }
    let digest = Digest::from_hex(hex).ok_or_else(|| Error::UnknownId {
        kind: kind.name().into(),
        id: truncate(id),
    })?;
    engine
        .node_of_kind(&digest, kind)
        .map_err(|error| match error {
            Error::UnknownId { .. } => Error::UnknownId {
                kind: kind.name().into(),
                id: truncate(id),
            },
            other => other,
        })
}

macro_rules! legacy_id_scalar {
    ($rust:ident, $name:literal) => {
        /// A legacy per-type ID scalar, kept for Dagger SDKs older than
        /// v0.22, which type `load<T>FromID` arguments with it.
        pub(crate) struct $rust(pub(crate) String);

        #[Scalar(name = $name)]
        impl ScalarType for $rust {
            fn parse(value: Value) -> InputValueResult<Self> {
                match value {
                    Value::String(text) => Ok($rust(text)),
                    other => Err(InputValueError::expected_type(other)),
                }
            }

            fn to_value(&self) -> Value {
                Value::String(self.0.clone())
            }
        }
    };
}

legacy_id_scalar!(ContainerId, "ContainerID");
legacy_id_scalar!(DirectoryId, "DirectoryID");
legacy_id_scalar!(FileId, "FileID");
legacy_id_scalar!(SecretId, "SecretID");
legacy_id_scalar!(CacheVolumeId, "CacheVolumeID");
legacy_id_scalar!(HostId, "HostID");
legacy_id_scalar!(EnvVariableId, "EnvVariableID");
legacy_id_scalar!(ServiceId, "ServiceID");
legacy_id_scalar!(SocketId, "SocketID");
legacy_id_scalar!(PortId, "PortID");
legacy_id_scalar!(GitRepositoryId, "GitRepositoryID");
legacy_id_scalar!(GitRefId, "GitRefID");

/// The ID of a plain-data object (`Label`, `Stat`, `SearchResult`, …):
/// `<Type>:` and its fields, serialised, so it loads anywhere without the
/// engine and equal values have equal IDs.
pub(crate) fn value_id<T: serde::Serialize>(type_name: &str, value: &T) -> ID {
    use base64::Engine as _;
    let json = serde_json::to_vec(value).expect("value objects always serialise");
    ID(format!(
        "{type_name}:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    ))
}

/// Loads a plain-data object's ID (see `value_id`).
pub(crate) fn load_value<T: serde::de::DeserializeOwned>(
    type_name: &str,
    id: &str,
) -> Result<T, Error> {
    use base64::Engine as _;
    let unknown = || Error::UnknownId {
        kind: type_name.into(),
        id: truncate(id),
    };
    let (found, payload) = split_id(id)?;
    if found != type_name {
        return Err(Error::WrongIdKind {
            expected: type_name.into(),
            found: found.into(),
        });
    }
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| unknown())?;
    serde_json::from_slice(&json).map_err(|_| unknown())
}

legacy_id_scalar!(ChangesetId, "ChangesetID");
legacy_id_scalar!(EnvFileId, "EnvFileID");
legacy_id_scalar!(JsonValueId, "JSONValueID");
legacy_id_scalar!(LabelId, "LabelID");
legacy_id_scalar!(StatId, "StatID");
legacy_id_scalar!(SearchResultId, "SearchResultID");
legacy_id_scalar!(SearchSubmatchId, "SearchSubmatchID");
legacy_id_scalar!(DiffStatId, "DiffStatID");
legacy_id_scalar!(AddressId, "AddressID");
legacy_id_scalar!(ErrorId, "ErrorID");
legacy_id_scalar!(ErrorValueId, "ErrorValueID");
legacy_id_scalar!(SyncerId, "SyncerID");
legacy_id_scalar!(ExportableId, "ExportableID");
