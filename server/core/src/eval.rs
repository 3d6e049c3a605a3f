//! What every op implements (`Operation`) and what it gets to work with:
//! an `OpEncoder` for its versioned encoding and, when it runs, a `Call`
//! holding its inputs' values, looked up by digest.
//!
//! The engine evaluates an op's inputs first (concurrently), then calls
//! `evaluate` with the `Context`. An op never sees the `Engine`: it cannot
//! add or evaluate nodes, only read the inputs it declared.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::context::Context;
use crate::digest::{Digest, Encoder};
use crate::error::Result;
use crate::history::StepInputs;
use crate::tree::Tree;
use crate::value::{ContainerState, FileValue, Kind, Value};

/// One kind of op: its inputs, its encoding and its evaluation, in one
/// place. Register a new kind in `ops/mod.rs`.
pub(crate) trait Operation {
    /// The kind of object the op evaluates to.
    const KIND: Kind;

    /// The digests of the nodes the op reads. `encode` must write each of
    /// them through `OpEncoder::input` (tests/compatibility.rs checks this
    /// for every kind).
    fn inputs(&self) -> Vec<Digest>;

    /// Writes the op's fields, after the tag the registry writes. Changing
    /// what an existing op writes invalidates every cache on disk: bump
    /// `ENCODING_VERSION` when you mean to.
    fn encode(&self, e: &mut OpEncoder<'_>);

    /// The op's value, from its inputs' values.
    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value>;
}

/// An `Encoder` whose `input` writes an input's digest as the caller maps
/// it: the node digest for an ID, the content key for a cache key.
pub(crate) struct OpEncoder<'a> {
    encoder: &'a mut Encoder,
    input: &'a mut dyn FnMut(&Digest) -> Digest,
}

impl<'a> OpEncoder<'a> {
    pub(crate) fn new(
        encoder: &'a mut Encoder,
        input: &'a mut dyn FnMut(&Digest) -> Digest,
    ) -> Self {
        Self { encoder, input }
    }

    /// Writes one input.
    pub(crate) fn input(&mut self, digest: &Digest) -> &mut Encoder {
        let mapped = (self.input)(digest);
        self.encoder.digest(&mapped)
    }

    /// Writes a field added to an op after its first release, after all its
    /// other fields: nothing when it has its default (so recipes written
    /// before it existed keep their digests and cache keys), else its name
    /// and value.
    pub(crate) fn added_str(&mut self, name: &str, value: &str) -> &mut Self {
        if !value.is_empty() {
            self.encoder.str(name).str(value);
        }
        self
    }

    /// `added_str` for a flag that defaults to false.
    pub(crate) fn added_flag(&mut self, name: &str, value: bool) -> &mut Self {
        if value {
            self.encoder.str(name);
        }
        self
    }

    /// `added_str` for a number that defaults to none.
    pub(crate) fn added_u64(&mut self, name: &str, value: Option<u64>) -> &mut Self {
        if let Some(value) = value {
            self.encoder.str(name).u64(value);
        }
        self
    }
}

/// For `skip_serializing_if` on flags added to ops after their first release
/// (so recipes keep the JSON they had).
pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}

impl Deref for OpEncoder<'_> {
    type Target = Encoder;

    fn deref(&self) -> &Encoder {
        self.encoder
    }
}

impl DerefMut for OpEncoder<'_> {
    fn deref_mut(&mut self) -> &mut Encoder {
        self.encoder
    }
}

/// One evaluation of a node.
pub(crate) struct Call {
    /// The node's digest (names its progress events).
    pub(crate) node: Digest,
    /// The node's cache key: the op over its inputs' content keys.
    pub(crate) key: Digest,
    pub(crate) inputs: Inputs,
    /// For execs: what the cache key covers, named (cache explanations,
    /// the image in progress events).
    pub(crate) step: Option<Arc<StepInputs>>,
}

impl Call {
    /// The container input `parent` changed by `change`, with this call's
    /// key: how ops that only edit their parent's state evaluate.
    pub(crate) fn derive(
        &self,
        parent: &Digest,
        change: impl FnOnce(&mut ContainerState) -> Result<()>,
    ) -> Result<Value> {
        self.inputs.container(parent)?.derive(self.key, change)
    }
}

/// The evaluated inputs of a node, by digest.
pub(crate) struct Inputs {
    values: Vec<(Digest, Value)>,
}

impl Inputs {
    pub(crate) fn new(values: Vec<(Digest, Value)>) -> Self {
        Self { values }
    }

    pub(crate) fn value(&self, digest: &Digest) -> &Value {
        self.values
            .iter()
            .find_map(|(input, value)| (input == digest).then_some(value))
            .expect("an op reads only the inputs it lists, which the engine evaluated")
    }

    /// An input's content key (what cache keys are built from).
    pub(crate) fn key(&self, digest: &Digest) -> Digest {
        self.value(digest).key()
    }

    pub(crate) fn container(&self, digest: &Digest) -> Result<Arc<ContainerState>> {
        self.value(digest).container()
    }

    pub(crate) fn tree(&self, digest: &Digest) -> Result<Arc<Tree>> {
        Ok(self.value(digest).directory()?.0)
    }

    pub(crate) fn file(&self, digest: &Digest) -> Result<Arc<FileValue>> {
        self.value(digest).file()
    }

    /// A cache volume input's name.
    pub(crate) fn cache_volume(&self, digest: &Digest) -> Result<String> {
        self.value(digest).cache_volume()
    }
}
