//! `Container.withDefaultTerminalCmd`: what `terminal` runs when not told.

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::digest::Digest;
use crate::error::Result;
use crate::eval::{Call, OpEncoder, Operation};
use crate::value::{Kind, Value};

/// `Container.withDefaultTerminalCmd`. The node digest covers the command,
/// but the container keeps its parent's content key: a terminal command
/// changes no step's inputs, so execs downstream share their cache with
/// the same container without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithDefaultTerminalCmd {
    pub parent: Digest,
    pub args: Vec<String>,
    /// The command runs with every root capability.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_root_capabilities: bool,
    /// The command gets a nested session (`launch::Process::nest`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub experimental_privileged_nesting: bool,
}

impl Operation for WithDefaultTerminalCmd {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).strs(&self.args);
        // Written only when set, so other nodes keep their digests.
        if self.insecure_root_capabilities {
            e.str("insecure-root-capabilities");
        }
        if self.experimental_privileged_nesting {
            e.str("experimental-privileged-nesting");
        }
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let parent = call.inputs.container(&self.parent)?;
        let key = parent.key.expect("evaluated containers have keys");
        parent.derive(key, |state| {
            state.default_terminal_cmd.clone_from(&self.args);
            state.default_terminal_privileged = self.insecure_root_capabilities;
            state.default_terminal_nesting = self.experimental_privileged_nesting;
            Ok(())
        })
    }
}
