//! Env files as nodes (`Query.envFile`, `File.asEnvFile` and edits), the
//! file one renders to, and `Container.withEnvFileVariables`. Reading
//! values is in `envfile.rs`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::digest::Digest;
use crate::envfile::EnvFile;
use crate::error::{Error, Result};
use crate::eval::{Call, OpEncoder, Operation};
use crate::tree::Owner;
use crate::value::{FileValue, Kind, Value};

/// Names missing from an env file are looked up in the engine's own
/// environment (Dagger looks in its client's).
pub fn engine_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `Query.envFile`: an empty env file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEnvFile {
    pub expand: bool,
}

impl Operation for NewEnvFile {
    const KIND: Kind = Kind::EnvFile;

    fn inputs(&self) -> Vec<Digest> {
        Vec::new()
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.bool(self.expand);
    }

    async fn evaluate(&self, _cx: &Context, _call: &Call) -> Result<Value> {
        Ok(Value::EnvFile(Arc::new(EnvFile {
            expand: self.expand,
            ..EnvFile::default()
        })))
    }
}

/// `File.asEnvFile`: a file's `NAME=value` lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileAsEnvFile {
    pub file: Digest,
    pub expand: bool,
}

impl Operation for FileAsEnvFile {
    const KIND: Kind = Kind::EnvFile;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.file]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.file).bool(self.expand);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let file = call.inputs.file(&self.file)?;
        let bytes = cx.store.get_blob(&file.blob)?;
        let text = String::from_utf8(bytes).map_err(|_| Error::InvalidArgument {
            message: format!("asEnvFile: {} is not text", file.name),
        })?;
        Ok(Value::EnvFile(Arc::new(EnvFile::parse(&text, self.expand))))
    }
}

/// `EnvFile.withVariable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvFileWithVariable {
    pub parent: Digest,
    pub name: String,
    pub value: String,
}

impl Operation for EnvFileWithVariable {
    const KIND: Kind = Kind::EnvFile;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.name).str(&self.value);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let file = call.inputs.env_file(&self.parent)?;
        Ok(Value::EnvFile(Arc::new(
            file.with_variable(&self.name, &self.value),
        )))
    }
}

/// `EnvFile.withoutVariable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvFileWithoutVariable {
    pub parent: Digest,
    pub name: String,
}

impl Operation for EnvFileWithoutVariable {
    const KIND: Kind = Kind::EnvFile;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.name);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let file = call.inputs.env_file(&self.parent)?;
        Ok(Value::EnvFile(Arc::new(file.without_variable(&self.name))))
    }
}

/// `EnvFile.namespace`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvFileNamespace {
    pub parent: Digest,
    pub prefix: String,
}

impl Operation for EnvFileNamespace {
    const KIND: Kind = Kind::EnvFile;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.prefix);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let file = call.inputs.env_file(&self.parent)?;
        Ok(Value::EnvFile(Arc::new(file.namespace(&self.prefix))))
    }
}

/// `EnvFile.asFile`: the lines as written, in a file named `.env`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvFileAsFile {
    pub parent: Digest,
}

impl Operation for EnvFileAsFile {
    const KIND: Kind = Kind::File;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let text = call.inputs.env_file(&self.parent)?.render();
        let blob = cx.store.put_blob(text.as_bytes())?;
        Ok(Value::File(Arc::new(FileValue {
            name: ".env".into(),
            blob,
            size: text.len() as u64,
            mode: 0o644,
            mtime: 0,
            owner: Owner::ROOT,
        })))
    }
}

/// `Container.withEnvFileVariables`: every variable of the file, read
/// (quotes removed, references expanded), set in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithEnvFileVariables {
    pub parent: Digest,
    pub source: Digest,
}

impl Operation for WithEnvFileVariables {
    const KIND: Kind = Kind::Container;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.source]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent);
        e.input(&self.source);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let file = call.inputs.env_file(&self.source)?;
        let variables = file.list(false, &engine_env)?;
        call.derive(&self.parent, |state| {
            for (name, value) in variables {
                let env = &mut state.config.env;
                match env.iter_mut().find(|(existing, _)| *existing == name) {
                    Some(slot) => slot.1 = value,
                    None => env.push((name, value)),
                }
            }
            Ok(())
        })
    }
}
