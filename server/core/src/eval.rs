//! What every op implements (`Operation`) and what it gets to work with:
//! an `OpEncoder` for its versioned encoding and, when it runs, a `Call`
//! holding its inputs' values, looked up by digest.
//!
//! The engine evaluates an op's inputs first (concurrently), then calls
//! `evaluate` with the `Context`. An op never sees the `Engine`: it cannot
//! add or evaluate nodes, only read the inputs it declared.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::context::Context;
use crate::digest::{Digest, Domain, Encoder};
use crate::envfile::EnvFile;
use crate::error::Result;
use crate::history::StepInputs;
use crate::tree::Tree;
use crate::value::{
    ChangesetValue, ContainerState, FileValue, GitRefValue, GitRepositoryValue, Kind, ServiceValue,
    Value,
};

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

/// An op's tag: what its encoding starts with and its recipe's `op` field.
/// The registry in `ops/mod.rs` implements it for every kind, so the tag
/// is written in one place.
pub(crate) trait Tagged {
    const TAG: &'static str;
}

/// The digest of `op` in `domain`: its tag, then its fields, each input
/// written as `input` maps it (`Op::digest` and `Op::key_with` use this).
pub(crate) fn encode_op<O: Operation>(
    tag: &str,
    op: &O,
    domain: Domain,
    input: &mut dyn FnMut(&Digest) -> Digest,
) -> Digest {
    let mut encoder = Encoder::new(domain);
    encoder.str(tag);
    let mut encoded = Vec::new();
    let mut record = |digest: &Digest| {
        encoded.push(*digest);
        input(digest)
    };
    op.encode(&mut OpEncoder::new(&mut encoder, &mut record));
    if cfg!(debug_assertions) {
        // Evaluation finds inputs through `inputs()`, so it must list
        // exactly what the encoding covers.
        let mut listed = op.inputs();
        listed.sort_unstable();
        encoded.sort_unstable();
        assert_eq!(listed, encoded, "{tag}: inputs() and encode() disagree");
    }
    encoder.finish()
}

/// Ops evaluated outside the engine's DAG, from values in hand: how an op
/// that builds a small graph of its own (a Dockerfile build) runs it. Each
/// op gets the node digest and cache key the engine would give it, so its
/// results (exec results above all) are shared with pipelines that build
/// the same steps through the API.
pub(crate) struct Subgraph<'a> {
    cx: &'a Context,
    values: HashMap<Digest, Value>,
}

impl<'a> Subgraph<'a> {
    pub(crate) fn new(cx: &'a Context) -> Self {
        Self {
            cx,
            values: HashMap::new(),
        }
    }

    /// Makes a value known under `digest` (an input of the enclosing node).
    pub(crate) fn insert(&mut self, digest: Digest, value: Value) {
        self.values.insert(digest, value);
    }

    pub(crate) fn value(&self, digest: &Digest) -> &Value {
        self.values
            .get(digest)
            .expect("a subgraph evaluates only ops whose inputs it holds")
    }

    /// Evaluates `op`, whose inputs must be known; returns its node digest.
    pub(crate) async fn eval<O: Operation + Tagged>(&mut self, op: O) -> Result<Digest> {
        let node = encode_op(O::TAG, &op, Domain::Op, &mut |digest| *digest);
        if self.values.contains_key(&node) {
            return Ok(node);
        }
        let inputs: Vec<(Digest, Value)> = op
            .inputs()
            .into_iter()
            .map(|digest| (digest, self.value(&digest).clone()))
            .collect();
        let inputs = Inputs::new(inputs);
        let key = encode_op(O::TAG, &op, Domain::Key, &mut |digest| inputs.key(digest));
        // A subgraph's steps have no named inputs for cache explanations:
        // a miss of one is explained as a new step.
        let call = Call {
            node,
            key,
            inputs,
            step: None,
        };
        let value = op.evaluate(self.cx, &call).await?;
        self.values.insert(node, value);
        Ok(node)
    }
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

    pub(crate) fn changeset(&self, digest: &Digest) -> Result<Arc<ChangesetValue>> {
        self.value(digest).changeset()
    }

    pub(crate) fn env_file(&self, digest: &Digest) -> Result<Arc<EnvFile>> {
        self.value(digest).env_file()
    }

    pub(crate) fn json(&self, digest: &Digest) -> Result<Arc<serde_json::Value>> {
        self.value(digest).json()
    }

    /// A cache volume input's name.
    pub(crate) fn cache_volume(&self, digest: &Digest) -> Result<String> {
        self.value(digest).cache_volume()
    }

    pub(crate) fn service(&self, digest: &Digest) -> Result<Arc<ServiceValue>> {
        self.value(digest).service()
    }

    /// A host socket input's path.
    pub(crate) fn socket(&self, digest: &Digest) -> Result<String> {
        self.value(digest).socket()
    }

    pub(crate) fn git_repository(&self, digest: &Digest) -> Result<Arc<GitRepositoryValue>> {
        self.value(digest).git_repository()
    }

    pub(crate) fn git_ref(&self, digest: &Digest) -> Result<Arc<GitRefValue>> {
        self.value(digest).git_ref()
    }
}
