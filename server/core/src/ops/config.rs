//! Ops that change a container's configuration, not its filesystem:
//! environment, secret and volatile variables, workdir, user, entrypoint,
//! default args, labels, annotations and registry credentials.

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::eval::{Call, OpEncoder, Operation};
use crate::reference::auth_host;
use crate::runtime::Healthcheck;
use crate::text::expand_vars;
use crate::tree;
use crate::value::{Kind, Value};

/// `Container.withEnvVariable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithEnvVariable {
    pub parent: Digest,
    pub name: String,
    pub value: String,
    pub expand: bool,
}

impl Operation for WithEnvVariable {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent)
            .str(&self.name)
            .str(&self.value)
            .bool(self.expand);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        check_env_name(&self.name)?;
        call.derive(&self.parent, |state| {
            let value = if self.expand {
                expand_vars(&self.value, &state.config.env)
            } else {
                self.value.clone()
            };
            let env = &mut state.config.env;
            match env.iter_mut().find(|(existing, _)| *existing == self.name) {
                Some(slot) => slot.1 = value,
                None => env.push((self.name.clone(), value)),
            }
            Ok(())
        })
    }
}

/// `Container.withoutEnvVariable` (plain or secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithoutEnvVariable {
    pub parent: Digest,
    pub name: String,
}

impl Operation for WithoutEnvVariable {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.name);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        call.derive(&self.parent, |state| {
            state
                .config
                .env
                .retain(|(existing, _)| *existing != self.name);
            state
                .secret_env
                .retain(|(existing, _)| *existing != self.name);
            Ok(())
        })
    }
}

/// `Container.withSecretVariable`: the value is looked up only at exec time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithSecretVariable {
    pub parent: Digest,
    pub name: String,
    pub secret: Digest,
}

impl Operation for WithSecretVariable {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.secret]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.name);
        e.input(&self.secret);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        check_env_name(&self.name)?;
        call.derive(&self.parent, |state| {
            state
                .secret_env
                .retain(|(existing, _)| *existing != self.name);
            state.secret_env.push((self.name.clone(), self.secret));
            Ok(())
        })
    }
}

/// `Container.withWorkdir` (relative paths resolve against the current one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithWorkdir {
    pub parent: Digest,
    pub path: String,
}

impl Operation for WithWorkdir {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        call.derive(&self.parent, |state| {
            state.config.workdir = tree::absolute(&state.workdir(), &self.path)?;
            Ok(())
        })
    }
}

/// `Container.withUser`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithUser {
    pub parent: Digest,
    pub name: String,
}

impl Operation for WithUser {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.name);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        call.derive(&self.parent, |state| {
            state.config.user = self.name.clone();
            Ok(())
        })
    }
}

/// `Container.withEntrypoint`: clears the default args unless kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithEntrypoint {
    pub parent: Digest,
    pub args: Vec<String>,
    pub keep_default_args: bool,
}

impl Operation for WithEntrypoint {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent)
            .strs(&self.args)
            .bool(self.keep_default_args);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        call.derive(&self.parent, |state| {
            state.config.entrypoint = self.args.clone();
            if !self.keep_default_args {
                state.config.cmd.clear();
                state.default_args_set = false;
            }
            Ok(())
        })
    }
}

/// `Container.withDefaultArgs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithDefaultArgs {
    pub parent: Digest,
    pub args: Vec<String>,
}

impl Operation for WithDefaultArgs {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).strs(&self.args);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        call.derive(&self.parent, |state| {
            state.config.cmd = self.args.clone();
            state.default_args_set = true;
            Ok(())
        })
    }
}

/// `Container.withLabel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithLabel {
    pub parent: Digest,
    pub name: String,
    pub value: String,
}

impl Operation for WithLabel {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.name).str(&self.value);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        call.derive(&self.parent, |state| {
            state
                .config
                .labels
                .insert(self.name.clone(), self.value.clone());
            Ok(())
        })
    }
}

/// `Container.withRegistryAuth`: credentials for one registry host, used
/// by `from` and `publish`; the password is a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithRegistryAuth {
    pub parent: Digest,
    pub address: String,
    pub username: String,
    pub secret: Digest,
}

impl Operation for WithRegistryAuth {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.secret]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.address).str(&self.username);
        e.input(&self.secret);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let host = auth_host(&self.address);
        call.derive(&self.parent, |state| {
            state
                .registry_auth
                .retain(|(existing, _, _)| *existing != host);
            state
                .registry_auth
                .push((host.clone(), self.username.clone(), self.secret));
            Ok(())
        })
    }
}

/// `Container.withoutRegistryAuth`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithoutRegistryAuth {
    pub parent: Digest,
    pub address: String,
}

impl Operation for WithoutRegistryAuth {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.address);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let host = auth_host(&self.address);
        call.derive(&self.parent, |state| {
            state
                .registry_auth
                .retain(|(existing, _, _)| *existing != host);
            Ok(())
        })
    }
}

// ---- undo helpers, annotations, volatile variables, raised errors -------------

/// `Container.withoutWorkdir`: back to the image's default (`/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithoutWorkdir {
    pub parent: Digest,
}

impl Operation for WithoutWorkdir {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        call.derive(&self.parent, |state| {
            state.config.workdir.clear();
            Ok(())
        })
    }
}

/// `Container.withoutLabel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithoutLabel {
    pub parent: Digest,
    pub name: String,
}

impl Operation for WithoutLabel {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.name);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        call.derive(&self.parent, |state| {
            state.config.labels.remove(&self.name);
            Ok(())
        })
    }
}

/// `Container.withoutSecretVariable`: plain variables stay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithoutSecretVariable {
    pub parent: Digest,
    pub name: String,
}

impl Operation for WithoutSecretVariable {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.name);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        call.derive(&self.parent, |state| {
            state
                .secret_env
                .retain(|(existing, _)| *existing != self.name);
            Ok(())
        })
    }
}

/// `Container.withAnnotation` / `withoutAnnotation` (`value: None`): OCI
/// annotations of the container's image manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithAnnotation {
    pub parent: Digest,
    pub name: String,
    pub value: Option<String>,
}

impl Operation for WithAnnotation {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent)
            .str(&self.name)
            .opt_str(self.value.as_deref());
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        call.derive(&self.parent, |state| {
            match &self.value {
                Some(value) => state.annotations.insert(self.name.clone(), value.clone()),
                None => state.annotations.remove(&self.name),
            };
            Ok(())
        })
    }
}

/// `Container.withVolatileVariable` / `withoutVolatileVariable` (`value:
/// None`): a variable later execs see that is in no cache key. The node
/// digest covers the value (two values are two containers), but the
/// container keeps its parent's content key, so execs downstream hit the
/// same cache whatever the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithVolatileVariable {
    pub parent: Digest,
    pub name: String,
    pub value: Option<String>,
}

impl Operation for WithVolatileVariable {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent)
            .str(&self.name)
            .opt_str(self.value.as_deref());
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        check_env_name(&self.name)?;
        let parent = call.inputs.container(&self.parent)?;
        let key = parent.key.expect("evaluated containers have keys");
        parent.derive(key, |state| {
            state.volatile_env.retain(|(name, _)| *name != self.name);
            if let Some(value) = &self.value {
                state.volatile_env.push((self.name.clone(), value.clone()));
            }
            Ok(())
        })
    }
}

/// `Container.withError`: a container that fails with `message` when used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerWithError {
    pub parent: Digest,
    pub message: String,
}

impl Operation for ContainerWithError {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.message);
    }

    async fn evaluate(&self, _cx: &Context, _call: &Call) -> Result<Value> {
        Err(Error::Raised {
            message: self.message.clone(),
        })
    }
}

/// `Container.withDockerHealthcheck`, `withoutDockerHealthcheck` (`None`)
/// and a Dockerfile's `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithHealthcheck {
    pub parent: Digest,
    pub healthcheck: Option<Healthcheck>,
}

impl Operation for WithHealthcheck {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent);
        match &self.healthcheck {
            None => {
                e.str("-");
            }
            Some(check) => {
                e.str("+")
                    .strs(&check.args)
                    .bool(check.shell)
                    .str(&check.interval)
                    .str(&check.timeout)
                    .str(&check.start_period)
                    .str(&check.start_interval)
                    .i64(check.retries);
            }
        }
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        if let Some(check) = &self.healthcheck {
            check
                .durations()
                .map_err(|bad| crate::error::Error::InvalidArgument {
                    message: format!("health check: {bad:?} is not a duration (e.g. 30s, 1m30s)"),
                })?;
        }
        call.derive(&self.parent, |state| {
            state.config.healthcheck = self.healthcheck.clone();
            Ok(())
        })
    }
}

/// An environment variable's name can hold neither `=` (it ends the name)
/// nor a NUL byte (it ends the string the kernel gets), and is not empty.
fn check_env_name(name: &str) -> Result<()> {
    if !name.is_empty() && !name.contains(['=', '\0']) {
        return Ok(());
    }
    Err(crate::error::Error::InvalidArgument {
        message: format!(
            "environment variable name {} must be non-empty, without '=' or NUL bytes",
            crate::text::quoted(name)
        ),
    })
}
