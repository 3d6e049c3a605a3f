//! `Directory.dockerBuild`: a Dockerfile built as ordinary gantry steps.
//!
//! The build is one node of the DAG (its inputs: the context directory and
//! the secrets), evaluated by interpreting the Dockerfile: every
//! instruction becomes the ops an SDK pipeline would add (`FROM` is
//! `container().from()`, `RUN` a `withExec` between mount ops, `COPY` a
//! `withFile`/`withDirectory`, `ENV` a `withEnvVariable`, …), evaluated in
//! a `Subgraph` with the node digests and cache keys the engine gives such
//! ops. So each step is cached on its own, shared with SDK pipelines that
//! build the same steps, and reported in progress like any step; a changed
//! file re-runs only what depends on it. Stages build concurrently when
//! independent, and only those the target needs are built.
//!
//! The text is parsed by `parse-dockerfile` (instructions, flags, heredocs,
//! the `escape` directive); word expansion follows BuildKit (`words.rs`),
//! `.dockerignore` filters the context (`ignore.rs`). What is not
//! supported fails with an error naming the instruction and its line:
//! `ONBUILD`, `--network` other than `default`,
//! `--security=insecure`, `ADD` of Git URLs or local archives, `COPY
//! --parents`, platforms other than the engine's. `--chown` takes names
//! as well as numbers, resolved against the stage's `/etc/passwd` and
//! `/etc/group` like an `owner:` argument.

mod build;
mod copy;
mod errors;
mod ignore;
mod run;
mod words;

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::eval::{Call, OpEncoder, Operation};
use crate::tree::{self, Tree};
use crate::value::{FileValue, Kind, Value};

use self::build::{Build, Credentials};
use self::ignore::DockerIgnore;

/// `Directory.dockerBuild`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerBuild {
    /// The build context.
    pub context: Digest,
    /// The Dockerfile's path in the context.
    pub dockerfile: String,
    pub platform: Option<String>,
    /// `--build-arg` values, in order.
    pub build_args: Vec<(String, String)>,
    /// The stage to build; empty means the last.
    pub target: String,
    /// Secrets by the name `RUN --mount=type=secret,id=NAME` uses.
    pub secrets: Vec<(String, Digest)>,
    /// A socket (`Host.unixSocket`): the SSH agent `RUN --mount=type=ssh`
    /// mounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<Digest>,
}

impl Operation for DockerBuild {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        let mut inputs = vec![self.context];
        inputs.extend(self.secrets.iter().map(|(_, secret)| *secret));
        inputs.extend(self.ssh);
        inputs
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.context)
            .str(&self.dockerfile)
            .opt_str(self.platform.as_deref())
            .u64(self.build_args.len() as u64);
        for (name, value) in &self.build_args {
            e.str(name).str(value);
        }
        e.str(&self.target).u64(self.secrets.len() as u64);
        for (name, secret) in &self.secrets {
            e.str(name);
            e.input(secret);
        }
        // Written only when given, so builds without one keep the digests
        // they had before the argument was served.
        if let Some(ssh) = &self.ssh {
            e.str("ssh-agent");
            e.input(ssh);
        }
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let context = call.inputs.tree(&self.context)?;
        let path = tree::normalize(&self.dockerfile)?;
        let text = read_text(cx, &context, &path)?;
        let context = ignore_rules(cx, &context, &path)?.apply(&context)?;
        let dockerfile =
            parse_dockerfile::parse(&text).map_err(|error| Error::InvalidArgument {
                message: format!("{}: {error}", self.dockerfile),
            })?;
        let secrets = self
            .secrets
            .iter()
            .map(|(name, digest)| (name.clone(), *digest, call.inputs.value(digest).clone()))
            .collect();
        let ssh = self
            .ssh
            .map(|digest| (digest, call.inputs.value(&digest).clone()));
        let build = Build::new(
            cx,
            &text,
            &dockerfile,
            Value::from_tree(context),
            Credentials { secrets, ssh },
            &self.build_args,
            self.platform.clone(),
        );
        build.run(&self.target).await
    }
}

/// A text file of the context (the Dockerfile, its ignore files).
fn read_text(cx: &Context, context: &Tree, path: &str) -> Result<String> {
    let file = FileValue::in_tree(context, path, path).map_err(|error| match error {
        Error::NotFound { .. } => Error::InvalidArgument {
            message: format!(
                "dockerBuild: no Dockerfile at {path:?} in the build context (pass `dockerfile:` to name another)"
            ),
        },
        other => other,
    })?;
    let bytes = cx.store.get_blob(&file.blob)?;
    String::from_utf8(bytes).map_err(|_| Error::InvalidArgument {
        message: format!("dockerBuild: {path} is not UTF-8 text"),
    })
}

/// `<dockerfile>.dockerignore` beside the Dockerfile, else `.dockerignore`
/// at the root, else no rules.
fn ignore_rules(cx: &Context, context: &Tree, dockerfile: &str) -> Result<DockerIgnore> {
    for candidate in [format!("{dockerfile}.dockerignore"), ".dockerignore".into()] {
        if context.get(&candidate).is_some() {
            return DockerIgnore::parse(&read_text(cx, context, &candidate)?);
        }
    }
    DockerIgnore::parse("")
}
