//! Secrets and cache volumes: nodes whose value is their identity. A
//! secret's value lives in engine memory (`secrets.rs`), a volume's
//! contents under the state directory; neither is in a recipe.

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::digest::Digest;
use crate::error::Result;
use crate::eval::{Call, OpEncoder, Operation};
use crate::value::{Kind, Sharing, Value};

/// `setSecret`/`secret`: `mac` is an HMAC of the value under the engine's
/// key: it changes when the value does, yet does not reveal it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    pub name: String,
    pub mac: Digest,
}

impl Operation for Secret {
    const KIND: Kind = Kind::Secret;

    fn inputs(&self) -> Vec<Digest> {
        Vec::new()
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.str(&self.name).digest(&self.mac);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        cx.secrets.note_name(call.node, &self.name);
        Ok(Value::Secret { mac: self.mac })
    }
}

/// `cacheVolume(key:)`. The volume is its key; `source`, `sharing` and
/// `owner` are what `withMountedCache` uses when it is not given its own
/// (an owner and a source take effect when the volume is first created).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheVolume {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing: Option<Sharing>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
}

impl Operation for CacheVolume {
    const KIND: Kind = Kind::CacheVolume;

    fn inputs(&self) -> Vec<Digest> {
        self.source.into_iter().collect()
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.str(&self.key);
        if let Some(source) = &self.source {
            e.str("source");
            e.input(source);
        }
        if let Some(sharing) = self.sharing {
            e.str("sharing").str(sharing.tag());
        }
        e.added_str("owner", &self.owner);
    }

    async fn evaluate(&self, _cx: &Context, _call: &Call) -> Result<Value> {
        Ok(Value::CacheVolume {
            key: self.key.clone(),
        })
    }
}
