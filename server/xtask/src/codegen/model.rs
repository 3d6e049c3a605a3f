//! The language-neutral type model every SDK template renders.
//!
//! [`Model::from_sdl`] reads the checked-in SDL and keeps what an SDK needs:
//! object and interface types with their fields, enums, and custom scalars,
//! each with its description. Types and fields are sorted by name, arguments
//! keep schema order, so the output does not depend on how the server happens
//! to order its SDL. Naming and type spelling per language live in the
//! language modules (`python.rs`), never here.
//!
//! Conventions the model encodes (shared with Dagger's schema):
//! - An argument of type `ID` names an object and is passed by ID. Its object
//!   type comes from `@expectedType(name: "T")`, a per-type scalar `TID`, or
//!   else stays open ([`TypeRef::Object`] with `name: None`: any `Node`).
//! - A field other than `id` that returns an ID (`sync: ID!`) evaluates the
//!   object and returns it again ([`FieldKind::Sync`]).
//! - Fields returning an interface or union (`Query.node`) are internal to the
//!   runtime and left out.
//! - An input object (`BuildArg`, `PortForward`) becomes a value type per SDK
//!   ([`Input`]); its fields are described like arguments (name, type,
//!   default, optional), in schema order, and an SDK writes it as a GraphQL
//!   object literal with its optional fields left out when unset.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context as _, Result};
use async_graphql_parser::types::{
    BaseType, ConstDirective, FieldDefinition, InputValueDefinition, Type, TypeKind,
    TypeSystemDefinition,
};
use async_graphql_parser::Positioned;
use async_graphql_value::{ConstValue, Name};
use serde::{Deserialize, Serialize};

/// Scalars every GraphQL schema has; anything else is a custom scalar.
const BUILTIN_SCALARS: &[&str] = &["String", "Int", "Float", "Boolean", "ID"];

/// The directive naming the object type behind an `ID` argument.
const EXPECTED_TYPE: &str = "expectedType";

#[derive(Debug, Serialize)]
pub(crate) struct Model {
    /// Name of the root query type (`Query`).
    pub(crate) root: String,
    /// Interfaces, sorted by name. Objects that implement one extend it.
    pub(crate) interfaces: Vec<Object>,
    /// Object types including the root, sorted by name.
    pub(crate) objects: Vec<Object>,
    pub(crate) enums: Vec<Enum>,
    /// Input objects, sorted by name.
    pub(crate) inputs: Vec<Input>,
    pub(crate) scalars: Vec<Scalar>,
    /// The interface every object with an ID implements (`Node`), if any:
    /// the type of an `ID` argument whose object type is unknown.
    pub(crate) node_interface: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Object {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) is_root: bool,
    /// Implemented interfaces that the model keeps, sorted.
    pub(crate) interfaces: Vec<String>,
    pub(crate) fields: Vec<Field>,
}

/// An input object type: a value an argument takes, written inline as a
/// GraphQL object literal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Input {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    /// Fields in schema order, described as arguments are.
    pub(crate) fields: Vec<Arg>,
    /// Required fields (non-null, no default), in schema order.
    pub(crate) required_fields: Vec<Arg>,
    /// Optional fields (nullable or with a default), in schema order.
    pub(crate) optional_fields: Vec<Arg>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Field {
    /// The GraphQL name, e.g. `withExec`.
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) deprecated: Option<String>,
    /// Arguments in schema order.
    pub(crate) args: Vec<Arg>,
    /// Required arguments (non-null, no default), in schema order.
    pub(crate) required_args: Vec<Arg>,
    /// Optional arguments (nullable or with a default), in schema order.
    pub(crate) optional_args: Vec<Arg>,
    pub(crate) ty: TypeRef,
    pub(crate) kind: FieldKind,
}

/// How an SDK evaluates a field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum FieldKind {
    /// `id`: the object's ID, fetched once and remembered.
    Id,
    /// A field returning a scalar, an enum or a list of them: awaiting it
    /// sends the query.
    Leaf,
    /// Returns an object: extends the query, sends nothing.
    Object { object: String },
    /// Returns a list of objects: sends the query selecting each `id`, then
    /// addresses each element by ID.
    ObjectList { object: String },
    /// Returns an ID of `object` (`sync`): sends the query, then continues
    /// from the returned ID.
    Sync { object: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Arg {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) ty: TypeRef,
    /// The default as a GraphQL literal, e.g. `false`, `"", `SHARED`.
    pub(crate) default: Option<String>,
    pub(crate) optional: bool,
}

/// A field's or argument's type.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum TypeRef {
    /// A built-in or custom scalar (`String`, `Platform`, `ID` as a value).
    Scalar {
        name: String,
        non_null: bool,
    },
    Enum {
        name: String,
        non_null: bool,
    },
    /// An input object, passed by value as an object literal.
    Input {
        name: String,
        non_null: bool,
    },
    /// An object. In argument position it is passed by ID; `name: None` means
    /// any object with an ID (the schema did not say which).
    Object {
        name: Option<String>,
        non_null: bool,
    },
    List {
        of: Box<TypeRef>,
        non_null: bool,
    },
}

/// How a leaf's type involves an enum, for SDKs that convert enum results
/// from their wire strings.
pub(crate) enum EnumShape {
    One { non_null: bool },
    List,
}

/// The enum a leaf returns (one, possibly null, or a list of non-null ones).
pub(crate) fn enum_shape(ty: &TypeRef) -> Option<(&str, EnumShape)> {
    match ty {
        TypeRef::Enum { name, non_null } => Some((
            name,
            EnumShape::One {
                non_null: *non_null,
            },
        )),
        TypeRef::List { of, .. } => match of.as_ref() {
            TypeRef::Enum {
                name,
                non_null: true,
            } => Some((name, EnumShape::List)),
            _ => None,
        },
        _ => None,
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Enum {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) values: Vec<EnumValue>,
}

#[derive(Debug, Serialize)]
pub(crate) struct EnumValue {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Scalar {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
}

/// What a named type is, as needed to classify references to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Named {
    Scalar,
    Enum,
    Object,
    Interface,
    Union,
    Input,
}

impl Model {
    /// Builds the model from SDL text.
    pub(crate) fn from_sdl(sdl: &str) -> Result<Self> {
        let document =
            async_graphql_parser::parse_schema(sdl).context("while parsing the schema SDL")?;
        let mut kinds: BTreeMap<String, Named> = BUILTIN_SCALARS
            .iter()
            .map(|name| ((*name).to_owned(), Named::Scalar))
            .collect();
        let mut root = None;
        for definition in &document.definitions {
            match definition {
                TypeSystemDefinition::Type(ty) => {
                    let kind = match &ty.node.kind {
                        TypeKind::Scalar => Named::Scalar,
                        TypeKind::Enum(_) => Named::Enum,
                        TypeKind::Object(_) => Named::Object,
                        TypeKind::Interface(_) => Named::Interface,
                        TypeKind::Union(_) => Named::Union,
                        TypeKind::InputObject(_) => Named::Input,
                    };
                    kinds.insert(ty.node.name.node.to_string(), kind);
                }
                TypeSystemDefinition::Schema(schema) => {
                    if let Some(query) = &schema.node.query {
                        root = Some(query.node.to_string());
                    }
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        let root = root.unwrap_or_else(|| "Query".to_owned());
        if kinds.get(&root) != Some(&Named::Object) {
            bail!("the schema has no root query object type `{root}`");
        }
        let node_interface =
            (kinds.get("Node") == Some(&Named::Interface)).then(|| "Node".to_owned());
        let builder = Builder { kinds: &kinds };

        let mut model = Model {
            root: root.clone(),
            interfaces: Vec::new(),
            objects: Vec::new(),
            enums: Vec::new(),
            inputs: Vec::new(),
            scalars: Vec::new(),
            node_interface,
        };
        for definition in &document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else {
                continue;
            };
            let ty = &ty.node;
            let name = ty.name.node.to_string();
            let description = ty.description.as_ref().map(|text| text.node.clone());
            match &ty.kind {
                TypeKind::Scalar => {
                    if !BUILTIN_SCALARS.contains(&name.as_str()) {
                        model.scalars.push(Scalar { name, description });
                    }
                }
                TypeKind::Enum(enumeration) => model.enums.push(Enum {
                    name,
                    description,
                    // Enum values keep schema order: it is often meaningful.
                    values: enumeration
                        .values
                        .iter()
                        .map(|value| EnumValue {
                            name: value.node.value.node.to_string(),
                            description: value.node.description.as_ref().map(|d| d.node.clone()),
                        })
                        .collect(),
                }),
                TypeKind::Object(object) => {
                    let is_root = name == root;
                    model.objects.push(Object {
                        fields: builder
                            .fields(&name, &object.fields)
                            .with_context(|| format!("in type {name}"))?,
                        interfaces: sorted_names(&object.implements),
                        name,
                        description,
                        is_root,
                    });
                }
                TypeKind::Interface(interface) => model.interfaces.push(Object {
                    fields: builder
                        .fields(&name, &interface.fields)
                        .with_context(|| format!("in interface {name}"))?,
                    interfaces: sorted_names(&interface.implements),
                    name,
                    description,
                    is_root: false,
                }),
                TypeKind::InputObject(input) => {
                    let fields = input
                        .fields
                        .iter()
                        .map(|field| builder.arg(&field.node))
                        .collect::<Result<Vec<_>>>()
                        .with_context(|| format!("in input {name}"))?;
                    let (optional_fields, required_fields): (Vec<Arg>, Vec<Arg>) =
                        fields.iter().cloned().partition(|field| field.optional);
                    model.inputs.push(Input {
                        name,
                        description,
                        fields,
                        required_fields,
                        optional_fields,
                    });
                }
                TypeKind::Union(_) => {
                    // Not used by gantry's API yet; add when a field needs one.
                }
            }
        }
        model.interfaces.sort_by(|a, b| a.name.cmp(&b.name));
        model.objects.sort_by(|a, b| a.name.cmp(&b.name));
        model.enums.sort_by(|a, b| a.name.cmp(&b.name));
        model.inputs.sort_by(|a, b| a.name.cmp(&b.name));
        model.scalars.sort_by(|a, b| a.name.cmp(&b.name));
        // Interfaces extend each other in dependency order, so every language
        // can declare a base before its subtypes.
        model.interfaces = order_interfaces(std::mem::take(&mut model.interfaces));
        Ok(model)
    }
}

fn sorted_names(names: &[Positioned<Name>]) -> Vec<String> {
    let set: BTreeSet<String> = names.iter().map(|name| name.node.to_string()).collect();
    set.into_iter().collect()
}

/// Puts each interface after the interfaces it implements (stable otherwise).
fn order_interfaces(mut pending: Vec<Object>) -> Vec<Object> {
    let mut ordered: Vec<Object> = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready = pending.iter().position(|candidate| {
            candidate.interfaces.iter().all(|base| {
                ordered.iter().any(|done| &done.name == base)
                    || !pending.iter().any(|other| &other.name == base)
            })
        });
        // A cycle is invalid GraphQL; keep the rest in name order rather than loop.
        let index = ready.unwrap_or(0);
        ordered.push(pending.remove(index));
    }
    ordered
}

struct Builder<'a> {
    kinds: &'a BTreeMap<String, Named>,
}

impl Builder<'_> {
    fn fields(&self, owner: &str, fields: &[Positioned<FieldDefinition>]) -> Result<Vec<Field>> {
        let mut out = Vec::new();
        for field in fields {
            let field = &field.node;
            let name = field.name.node.to_string();
            if name.starts_with("__") {
                continue;
            }
            let Some(kind) = self.field_kind(owner, &name, &field.ty.node, &field.directives)?
            else {
                continue;
            };
            let args = field
                .arguments
                .iter()
                .map(|arg| self.arg(&arg.node))
                .collect::<Result<Vec<_>>>()
                .with_context(|| format!("in field {name}"))?;
            let (optional_args, required_args): (Vec<Arg>, Vec<Arg>) =
                args.iter().cloned().partition(|arg| arg.optional);
            out.push(Field {
                description: field.description.as_ref().map(|d| d.node.clone()),
                deprecated: deprecation(&field.directives),
                ty: self.type_ref(&field.ty.node, None)?,
                kind,
                required_args,
                optional_args,
                args,
                name,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// How a field is evaluated, or `None` when SDKs leave it out.
    fn field_kind(
        &self,
        owner: &str,
        name: &str,
        ty: &Type,
        directives: &[Positioned<ConstDirective>],
    ) -> Result<Option<FieldKind>> {
        let (named, list) = match &ty.base {
            BaseType::Named(named) => (named.to_string(), false),
            BaseType::List(inner) => match &inner.base {
                BaseType::Named(named) => (named.to_string(), true),
                BaseType::List(_) => {
                    return Ok(Some(FieldKind::Leaf));
                }
            },
        };
        let kind = self.kind_of(&named)?;
        Ok(match (kind, list) {
            (Named::Interface | Named::Union, _) => None,
            (Named::Object, false) => Some(FieldKind::Object { object: named }),
            (Named::Object, true) => Some(FieldKind::ObjectList { object: named }),
            (Named::Scalar, false) if named == "ID" && name == "id" => Some(FieldKind::Id),
            (Named::Scalar, false) if named == "ID" => Some(FieldKind::Sync {
                object: expected_type(directives).unwrap_or_else(|| owner.to_owned()),
            }),
            (Named::Input, _) => bail!("field {name} returns the input type {named}"),
            _ => Some(FieldKind::Leaf),
        })
    }

    fn arg(&self, arg: &InputValueDefinition) -> Result<Arg> {
        let expected = expected_type(&arg.directives);
        if let Some(name) = &expected {
            if !matches!(self.kind_of(name)?, Named::Object | Named::Interface) {
                bail!("@expectedType names {name}, which is not an object type");
            }
        }
        let ty = self.type_ref(&arg.ty.node, Some(expected.as_deref()))?;
        let default = arg
            .default_value
            .as_ref()
            .map(|value| value.node.to_string());
        Ok(Arg {
            name: arg.name.node.to_string(),
            description: arg.description.as_ref().map(|d| d.node.clone()),
            optional: arg.ty.node.nullable || default.is_some(),
            default,
            ty,
        })
    }

    fn kind_of(&self, name: &str) -> Result<Named> {
        self.kinds
            .get(name)
            .copied()
            .with_context(|| format!("unknown type {name}"))
    }

    /// `argument` is `Some(expected type)` in argument position, where an
    /// `ID` names an object.
    fn type_ref(&self, ty: &Type, argument: Option<Option<&str>>) -> Result<TypeRef> {
        let non_null = !ty.nullable;
        Ok(match &ty.base {
            BaseType::List(inner) => TypeRef::List {
                of: Box::new(self.type_ref(inner, argument)?),
                non_null,
            },
            BaseType::Named(name) => {
                let name = name.to_string();
                match (self.kind_of(&name)?, argument) {
                    (Named::Scalar, Some(expected)) if name == "ID" => TypeRef::Object {
                        name: expected.map(str::to_owned),
                        non_null,
                    },
                    (Named::Scalar, _) => TypeRef::Scalar { name, non_null },
                    (Named::Enum, _) => TypeRef::Enum { name, non_null },
                    (Named::Object | Named::Interface | Named::Union, _) => TypeRef::Object {
                        name: Some(name),
                        non_null,
                    },
                    (Named::Input, Some(_)) => TypeRef::Input { name, non_null },
                    (Named::Input, None) => bail!("a field returns the input type {name}"),
                }
            }
        })
    }
}

fn directive_string_arg(
    directives: &[Positioned<ConstDirective>],
    directive: &str,
    argument: &str,
) -> Option<Option<String>> {
    let found = directives.iter().find(|d| d.node.name.node == directive)?;
    Some(
        found
            .node
            .get_argument(argument)
            .and_then(|value| match &value.node {
                ConstValue::String(text) => Some(text.clone()),
                _ => None,
            }),
    )
}

fn expected_type(directives: &[Positioned<ConstDirective>]) -> Option<String> {
    directive_string_arg(directives, EXPECTED_TYPE, "name").flatten()
}

fn deprecation(directives: &[Positioned<ConstDirective>]) -> Option<String> {
    directive_string_arg(directives, "deprecated", "reason")
        .map(|reason| reason.unwrap_or_else(|| "No longer supported".to_owned()))
}

/// How an SDK names the schema's object types, the rule every language
/// shares: the root query type is `Client`, any other type is spelled by the
/// language (`spell`), and an `ID` argument whose object type the schema does
/// not name accepts [`Names::any_object`]: the `Node` interface, else the
/// runtime's base class. Each language module adds its own type mapping on
/// top (a wrapper that dereferences to this).
#[derive(Clone)]
pub(crate) struct Names {
    root: String,
    any_object: String,
    interfaces: Vec<String>,
    spell: fn(&str) -> String,
}

impl Names {
    /// `base_class`: what an open `ID` argument accepts when the schema has
    /// no `Node` interface.
    pub(crate) fn new(model: &Model, spell: fn(&str) -> String, base_class: &str) -> Self {
        Self {
            root: model.root.clone(),
            any_object: model
                .node_interface
                .as_deref()
                .map_or_else(|| base_class.to_owned(), spell),
            interfaces: model.interfaces.iter().map(|i| i.name.clone()).collect(),
            spell,
        }
    }

    /// The class (type) name of a GraphQL object or interface.
    pub(crate) fn class(&self, name: &str) -> String {
        if name == self.root {
            "Client".to_owned()
        } else {
            (self.spell)(name)
        }
    }

    /// The class an object reference names; `None` is any object.
    pub(crate) fn object(&self, name: Option<&str>) -> String {
        name.map_or_else(|| self.any_object.clone(), |name| self.class(name))
    }

    /// What an `ID` argument of unknown object type accepts.
    pub(crate) fn any_object(&self) -> &str {
        &self.any_object
    }

    /// Whether `name` is one of the schema's interfaces.
    pub(crate) fn is_interface(&self, name: &str) -> bool {
        self.interfaces.iter().any(|known| known == name)
    }
}

/// An argument's description followed by the sentence `defaults` writes
/// about its default (each language spells the GraphQL literal its way).
pub(crate) fn describe_arg(arg: &Arg, defaults: impl Fn(&str, &TypeRef) -> String) -> String {
    let mut text = arg
        .description
        .clone()
        .unwrap_or_default()
        .trim()
        .to_owned();
    if let Some(default) = &arg.default {
        if !text.is_empty() && !text.ends_with('.') {
            text.push('.');
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&defaults(default, &arg.ty));
    }
    text
}
