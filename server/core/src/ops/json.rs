//! JSON values as nodes (`Query.json`, `File.asJSON` and edits). A value is
//! held parsed; fields that only read it (`asString`, `contents`, …) are
//! leaves in the API.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::context::Context;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::eval::{Call, OpEncoder, Operation};
use crate::value::{Kind, Value};

fn parse(text: &str, what: &str) -> Result<Json> {
    serde_json::from_str(text).map_err(|source| Error::InvalidArgument {
        message: format!("{what}: invalid JSON: {source}"),
    })
}

/// A value written out: `Query.json` (`null`), `withContents`,
/// `newString`, `newInteger`, `newBoolean`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonLiteral {
    pub contents: String,
}

impl Operation for JsonLiteral {
    const KIND: Kind = Kind::JsonValue;

    fn inputs(&self) -> Vec<Digest> {
        Vec::new()
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.str(&self.contents);
    }

    async fn evaluate(&self, _cx: &Context, _call: &Call) -> Result<Value> {
        Ok(Value::Json(Arc::new(parse(&self.contents, "JSON value")?)))
    }
}

/// `File.asJSON`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileAsJson {
    pub file: Digest,
}

impl Operation for FileAsJson {
    const KIND: Kind = Kind::JsonValue;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.file]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.file);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let file = call.inputs.file(&self.file)?;
        let bytes = cx.store.get_blob(&file.blob)?;
        let text = String::from_utf8_lossy(&bytes);
        Ok(Value::Json(Arc::new(parse(
            &text,
            &format!("asJSON of {}", file.name),
        )?)))
    }
}

/// `JSONValue.field(path:)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonField {
    pub parent: Digest,
    pub path: Vec<String>,
}

impl Operation for JsonField {
    const KIND: Kind = Kind::JsonValue;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).strs(&self.path);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let root = call.inputs.json(&self.parent)?;
        let mut current: &Json = &root;
        for part in &self.path {
            let Json::Object(fields) = current else {
                return Err(Error::InvalidArgument {
                    message: format!("can't lookup field '{part}' in non-object value"),
                });
            };
            current = fields.get(part).ok_or_else(|| Error::InvalidArgument {
                message: format!("no such field: '{part}'"),
            })?;
        }
        Ok(Value::Json(Arc::new(current.clone())))
    }
}

/// `JSONValue.withField(path:, value:)`: objects created along the path
/// (a value that is not an object becomes one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonWithField {
    pub parent: Digest,
    pub path: Vec<String>,
    pub value: Digest,
}

impl Operation for JsonWithField {
    const KIND: Kind = Kind::JsonValue;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.value]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).strs(&self.path);
        e.input(&self.value);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let mut root = (*call.inputs.json(&self.parent)?).clone();
        let value = (*call.inputs.json(&self.value)?).clone();
        let Some((last, parents)) = self.path.split_last() else {
            return Err(Error::InvalidArgument {
                message: "withField: path must not be empty".into(),
            });
        };
        if !root.is_object() {
            root = Json::Object(serde_json::Map::new());
        }
        let mut current = &mut root;
        for part in parents {
            let fields = current.as_object_mut().expect("made an object above");
            let next = fields
                .entry(part.clone())
                .or_insert_with(|| Json::Object(serde_json::Map::new()));
            if !next.is_object() {
                *next = Json::Object(serde_json::Map::new());
            }
            current = next;
        }
        current
            .as_object_mut()
            .expect("made an object above")
            .insert(last.clone(), value);
        Ok(Value::Json(Arc::new(root)))
    }
}

/// One element of `JSONValue.asArray`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonItem {
    pub parent: Digest,
    pub index: u64,
}

impl Operation for JsonItem {
    const KIND: Kind = Kind::JsonValue;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).u64(self.index);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let root = call.inputs.json(&self.parent)?;
        let Json::Array(items) = &*root else {
            return Err(Error::InvalidArgument {
                message: "value is not an array".into(),
            });
        };
        let item = usize::try_from(self.index)
            .ok()
            .and_then(|index| items.get(index))
            .ok_or_else(|| Error::InvalidArgument {
                message: format!("array has no element {}", self.index),
            })?;
        Ok(Value::Json(Arc::new(item.clone())))
    }
}
