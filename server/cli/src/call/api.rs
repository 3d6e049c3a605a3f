//! What `gantry call` can call: a module's functions (from the description
//! its runtime printed) and the core API's fields (from gantry's SDL), in one
//! shape, `Field`, so flags, help and chaining treat both alike.

use std::collections::BTreeMap;

use anyhow::{bail, Context as _, Result};
use async_graphql_parser::types::{BaseType, TypeKind, TypeSystemDefinition};
use serde::{Deserialize, Serialize};

/// A value's type, as far as the command line cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ty {
    String,
    Int,
    Float,
    Boolean,
    /// Returns nothing.
    Void,
    Enum {
        name: String,
        values: Vec<String>,
    },
    /// An object: `Container`, `Directory`, ... As an argument, made from the
    /// flag's value (a host path, an image address, a secret source, a name).
    Object(String),
    List(Box<Ty>),
}

/// The core objects a flag value can name.
pub(crate) const FLAG_OBJECTS: [&str; 5] =
    ["Directory", "File", "Secret", "Container", "CacheVolume"];

impl Ty {
    /// Parses a description's type: `String`, `[String]`, `Directory`, ...
    pub(crate) fn parse(text: &str) -> Result<Self> {
        let text = text.trim().trim_end_matches('!');
        if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            return Ok(Self::List(Box::new(Self::parse(inner)?)));
        }
        Ok(match text {
            "String" | "str" | "string" => Self::String,
            "Int" | "int" => Self::Int,
            "Float" | "float" => Self::Float,
            "Boolean" | "bool" | "boolean" => Self::Boolean,
            "Void" | "None" | "void" => Self::Void,
            "" => bail!("empty type name"),
            other if other.chars().all(|c| c.is_ascii_alphanumeric()) => {
                Self::Object(other.to_owned())
            }
            other => bail!("unsupported type {other:?}"),
        })
    }

    /// How help shows the type.
    pub(crate) fn display(&self) -> String {
        match self {
            Self::String => "string".into(),
            Self::Int => "int".into(),
            Self::Float => "float".into(),
            Self::Boolean => "bool".into(),
            Self::Void => "void".into(),
            Self::Enum { values, .. } => values.join("|"),
            Self::Object(name) => name.clone(),
            Self::List(inner) => format!("{},...", inner.display()),
        }
    }

    pub(crate) fn object_name(&self) -> Option<&str> {
        match self {
            Self::Object(name) => Some(name),
            _ => None,
        }
    }
}

/// One parameter of a function or field.
#[derive(Debug, Clone)]
pub(crate) struct Param {
    /// As declared (`registryToken`, `registry_token`).
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) ty: Ty,
    pub(crate) required: bool,
    pub(crate) default: Option<serde_json::Value>,
}

impl Param {
    /// The flag name: `--registry-token`.
    pub(crate) fn flag(&self) -> String {
        kebab_case(&self.name)
    }
}

/// A module function or a core field.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    /// As declared (`Publish`, `withExec`).
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) params: Vec<Param>,
    pub(crate) returns: Ty,
}

impl Field {
    /// The command-line name: `publish`, `with-exec`.
    pub(crate) fn command(&self) -> String {
        kebab_case(&self.name)
    }
}

/// `registryToken`, `registry_token` and `RegistryToken` all become
/// `registry-token`; `HTTPServer` becomes `http-server`.
pub(crate) fn kebab_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' || c == '-' {
            if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
            continue;
        }
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let boundary = prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower);
            if boundary && !out.ends_with('-') {
                out.push('-');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

// --- module descriptions ------------------------------------------------------------

/// What a module runtime prints for `describe` (docs/modules.md, "Runtimes").
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Description {
    pub(crate) object: String,
    #[serde(default)]
    pub(crate) description: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub(crate) functions: Vec<FunctionDescription>,
}

/// `null` (a nil slice from Go's encoding/json) as an empty list.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FunctionDescription {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(crate) args: Vec<ArgDescription>,
    pub(crate) returns: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ArgDescription {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) ty: String,
    #[serde(default)]
    pub(crate) optional: bool,
    #[serde(default)]
    pub(crate) default: Option<serde_json::Value>,
    #[serde(default)]
    pub(crate) description: String,
    /// Allowed values, for an enum-like string parameter.
    #[serde(default, rename = "enum")]
    pub(crate) values: Option<Vec<String>>,
}

impl Description {
    /// The functions as `Field`s, in declaration order.
    pub(crate) fn fields(&self) -> Result<Vec<Field>> {
        self.functions
            .iter()
            .map(|function| {
                let params = function
                    .args
                    .iter()
                    .map(|arg| {
                        let mut ty = Ty::parse(&arg.ty).with_context(|| {
                            format!("function {}, argument {}", function.name, arg.name)
                        })?;
                        if let Some(values) = arg.values.clone().filter(|v| !v.is_empty()) {
                            ty = Ty::Enum {
                                name: arg.name.clone(),
                                values,
                            };
                        }
                        let default = arg.default.clone().filter(|d| !d.is_null());
                        Ok(Param {
                            name: arg.name.clone(),
                            description: arg.description.trim().to_owned(),
                            ty,
                            required: !arg.optional && default.is_none(),
                            default,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Field {
                    name: function.name.clone(),
                    description: function.description.trim().to_owned(),
                    params,
                    returns: Ty::parse(&function.returns)
                        .with_context(|| format!("function {}: return type", function.name))?,
                })
            })
            .collect()
    }
}

// --- the core API -----------------------------------------------------------------------

/// The object types of gantry's GraphQL API, read from its SDL.
pub(crate) struct CoreApi {
    objects: BTreeMap<String, (String, Vec<Field>)>,
}

/// An argument typed `ID` names an object: which one is read from its name or
/// its field's name (`withDirectory(source:)` takes a Directory).
fn id_object(field: &str, arg: &str) -> Option<String> {
    let by_arg = match arg {
        "directory" => Some("Directory"),
        "file" => Some("File"),
        "secret" => Some("Secret"),
        "cache" => Some("CacheVolume"),
        "container" => Some("Container"),
        _ => None,
    };
    let by_field = || {
        ["Directory", "File", "Secret", "CacheVolume", "Container"]
            .into_iter()
            .find(|object| {
                field.contains(object) || (*object == "CacheVolume" && field.contains("Cache"))
            })
    };
    by_arg.or_else(by_field).map(str::to_owned)
}

/// gantry's own API, read from its SDL the first time a command needs it (a
/// plain module call does not).
pub(crate) fn core() -> &'static CoreApi {
    static CORE: std::sync::OnceLock<CoreApi> = std::sync::OnceLock::new();
    CORE.get_or_init(|| CoreApi::from_sdl(&gantry_api::sdl()).expect("gantry's own SDL parses"))
}

impl CoreApi {
    pub(crate) fn from_sdl(sdl: &str) -> Result<Self> {
        let document =
            async_graphql_parser::parse_schema(sdl).context("while parsing gantry's SDL")?;
        let mut enums = BTreeMap::new();
        for definition in &document.definitions {
            if let TypeSystemDefinition::Type(ty) = definition {
                if let TypeKind::Enum(values) = &ty.node.kind {
                    enums.insert(
                        ty.node.name.node.to_string(),
                        values
                            .values
                            .iter()
                            .map(|v| v.node.value.node.to_string())
                            .collect::<Vec<_>>(),
                    );
                }
            }
        }
        let convert =
            |field: &str, arg: Option<&str>, ty: &async_graphql_parser::types::Type| -> Ty {
                fn walk(
                    ty: &async_graphql_parser::types::Type,
                    field: &str,
                    arg: Option<&str>,
                    enums: &BTreeMap<String, Vec<String>>,
                ) -> Ty {
                    match &ty.base {
                        BaseType::List(inner) => Ty::List(Box::new(walk(inner, field, arg, enums))),
                        BaseType::Named(name) => match name.as_str() {
                            "String" | "Platform" | "JSON" => Ty::String,
                            "Int" => Ty::Int,
                            "Float" => Ty::Float,
                            "Boolean" => Ty::Boolean,
                            "Void" => Ty::Void,
                            id if id == "ID" || id.ends_with("ID") => {
                                let inferred = id
                                    .strip_suffix("ID")
                                    .filter(|object| !object.is_empty())
                                    .map(str::to_owned)
                                    .or_else(|| arg.and_then(|arg| id_object(field, arg)));
                                match inferred {
                                    Some(object) if arg.is_some() => Ty::Object(object),
                                    _ => Ty::String,
                                }
                            }
                            other => match enums.get(other) {
                                Some(values) => Ty::Enum {
                                    name: other.to_owned(),
                                    values: values.clone(),
                                },
                                None => Ty::Object(other.to_owned()),
                            },
                        },
                    }
                }
                walk(ty, field, arg, &enums)
            };
        let mut objects = BTreeMap::new();
        for definition in &document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else {
                continue;
            };
            let fields = match &ty.node.kind {
                TypeKind::Object(object) => &object.fields,
                _ => continue,
            };
            let fields = fields
                .iter()
                .map(|field| {
                    let field = &field.node;
                    let name = field.name.node.to_string();
                    let params = field
                        .arguments
                        .iter()
                        .map(|arg| {
                            let arg = &arg.node;
                            let arg_name = arg.name.node.to_string();
                            let default = arg
                                .default_value
                                .as_ref()
                                .and_then(|value| value.node.clone().into_json().ok());
                            Param {
                                ty: convert(&name, Some(&arg_name), &arg.ty.node),
                                name: arg_name,
                                description: arg
                                    .description
                                    .as_ref()
                                    .map(|d| d.node.trim().to_owned())
                                    .unwrap_or_default(),
                                required: !arg.ty.node.nullable && arg.default_value.is_none(),
                                default,
                            }
                        })
                        .collect();
                    Field {
                        description: field
                            .description
                            .as_ref()
                            .map(|d| d.node.trim().to_owned())
                            .unwrap_or_default(),
                        params,
                        returns: convert(&name, None, &field.ty.node),
                        name,
                    }
                })
                .collect();
            let description = ty
                .node
                .description
                .as_ref()
                .map(|d| d.node.trim().to_owned())
                .unwrap_or_default();
            objects.insert(ty.node.name.node.to_string(), (description, fields));
        }
        Ok(Self { objects })
    }

    /// The fields of object type `name` (`Query` for the root).
    pub(crate) fn fields(&self, name: &str) -> Option<&[Field]> {
        self.objects.get(name).map(|(_, fields)| fields.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_case_of_every_naming_style() {
        assert_eq!(kebab_case("registryToken"), "registry-token");
        assert_eq!(kebab_case("registry_token"), "registry-token");
        assert_eq!(kebab_case("Publish"), "publish");
        assert_eq!(kebab_case("withExec"), "with-exec");
        assert_eq!(kebab_case("HTTPServer"), "http-server");
        assert_eq!(kebab_case("loadContainerFromID"), "load-container-from-id");
    }

    #[test]
    fn core_api_types_id_arguments_by_object() {
        let api = core();
        let container = api.fields("Container").unwrap();
        let with_directory = container
            .iter()
            .find(|f| f.name == "withDirectory")
            .unwrap();
        let source = with_directory
            .params
            .iter()
            .find(|p| p.name == "source")
            .unwrap();
        assert_eq!(source.ty, Ty::Object("Directory".into()));
        let with_exec = container.iter().find(|f| f.name == "withExec").unwrap();
        let args = &with_exec.params[0];
        assert_eq!(args.ty, Ty::List(Box::new(Ty::String)));
        assert!(args.required);
        let secret = container
            .iter()
            .find(|f| f.name == "withSecretVariable")
            .unwrap();
        assert_eq!(secret.params[1].ty, Ty::Object("Secret".into()));
        let from = container.iter().find(|f| f.name == "from").unwrap();
        assert_eq!(from.returns, Ty::Object("Container".into()));
    }

    #[test]
    fn description_types_parse() {
        assert_eq!(
            Ty::parse("[String]").unwrap(),
            Ty::List(Box::new(Ty::String))
        );
        assert_eq!(
            Ty::parse("Directory").unwrap(),
            Ty::Object("Directory".into())
        );
        assert!(Ty::parse("dict[str, int]").is_err());
    }
}
