//! Host Unix sockets: `Host.unixSocket` and the container fields that mount
//! one (`withUnixSocket`, `withoutUnixSocket`), e.g. an SSH agent or the
//! Docker socket forwarded into a step.
//!
//! A socket is not content: what it answers cannot be hashed. Its key is a
//! MAC (under the engine's secret key) of its path and the identity of the
//! socket file there, taken when the API call is made, so a cache key never
//! holds a socket by its path alone: a socket re-created at the same path
//! (a restarted agent or daemon) is a different input, and a path on
//! another machine never matches.

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::digest::Digest;
use crate::error::Result;
use crate::eval::{Call, OpEncoder, Operation};
use crate::tree;
use crate::value::{Kind, MountSource, Value};

/// `Host.unixSocket`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostUnixSocket {
    /// Absolute path on the engine's host.
    pub path: String,
    /// The socket's identity (see the module's comment).
    pub handle: Digest,
}

impl Operation for HostUnixSocket {
    const KIND: Kind = Kind::Socket;

    fn inputs(&self) -> Vec<Digest> {
        Vec::new()
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.str(&self.path).digest(&self.handle);
    }

    async fn evaluate(&self, _cx: &Context, _call: &Call) -> Result<Value> {
        Ok(Value::Socket {
            key: self.handle,
            path: self.path.clone(),
        })
    }
}

/// `Container.withUnixSocket`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithUnixSocket {
    pub parent: Digest,
    pub path: String,
    pub source: Digest,
}

impl Operation for WithUnixSocket {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.source]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
        e.input(&self.source);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let host_path = call.inputs.socket(&self.source)?;
        parent.with_mount(call.key, &self.path, MountSource::Socket { host_path })
    }
}

/// `Container.withoutUnixSocket`: only a socket mounted at the path goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithoutUnixSocket {
    pub parent: Digest,
    pub path: String,
}

impl Operation for WithoutUnixSocket {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let target = tree::absolute(&parent.workdir(), &self.path)?;
        call.derive(&self.parent, |state| {
            state.mounts.retain(|mount| {
                mount.path != target || !matches!(mount.source, MountSource::Socket { .. })
            });
            Ok(())
        })
    }
}
