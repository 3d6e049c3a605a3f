//! PHP: naming, type spelling, PHPDoc and method bodies for `templates/php/`.
//!
//! The output is PSR-12 as emitted (4-space indents, braces on their own line
//! for classes and single-line method signatures, `): T {` after an exploded
//! parameter list), because no formatter is run over it. Signatures longer
//! than [`LINE_LENGTH`] are exploded one parameter per line with a trailing
//! comma; PHPDoc is wrapped to the same width.
//!
//! Everything lands in one file (`sdk-php/generated/Api.php`, one per language
//! like the other SDKs), so the package's `composer.json` autoloads it with a
//! classmap rather than one-class-per-file PSR-4.

use minijinja::value::Serde;
use minijinja::Environment;

use super::model::{
    describe_arg, enum_shape, Arg, EnumShape, Field, FieldKind, Input, Model, Names, TypeRef,
};
use super::text;

language! {
    name: "php",
    api: "Api.php.jinja" => "sdk-php/generated/Api.php",
    names: "Env.php.jinja" => "sdk-php/generated/Runtime/Env.php",
}

/// PSR-12's "lines SHOULD NOT be longer than 80 characters".
const LINE_LENGTH: usize = 80;

/// The class an open `ID` argument accepts when the schema has no `Node` interface (the runtime's base class).
const BASE_CLASS: &str = "ApiObject";

/// Names PHP does not accept as a class, interface or enum name
/// (lowercase; PHP names are case-insensitive).
const RESERVED_CLASS_NAMES: &[&str] = &[
    "array", "bool", "callable", "class", "enum", "false", "float", "int", "iterable", "list",
    "mixed", "never", "null", "object", "parent", "self", "static", "string", "true", "void",
];

/// Php's type spelling over the naming rule every SDK shares.
#[derive(Clone)]
struct Php {
    names: Names,
}

impl Php {
    fn new(model: &Model) -> Self {
        Self {
            names: Names::new(model, class_name, BASE_CLASS),
        }
    }

    /// The native type declaration (`?string`, `array`, `Container`).
    fn native(&self, ty: &TypeRef) -> String {
        let (inner, non_null) = match ty {
            TypeRef::Scalar { name, non_null } => (scalar(name).to_owned(), *non_null),
            TypeRef::Enum { name, non_null } | TypeRef::Input { name, non_null } => {
                (class_name(name), *non_null)
            }
            TypeRef::Object { name, non_null } => (self.names.object(name.as_deref()), *non_null),
            TypeRef::List { non_null, .. } => ("array".to_owned(), *non_null),
        };
        if non_null {
            inner
        } else {
            format!("?{inner}")
        }
    }

    /// The PHPDoc type (`list<string>|null`).
    fn doc(&self, ty: &TypeRef) -> String {
        let (inner, non_null) = match ty {
            TypeRef::List { of, non_null } => (format!("list<{}>", self.doc(of)), *non_null),
            TypeRef::Scalar { name, non_null } => (scalar(name).to_owned(), *non_null),
            TypeRef::Enum { name, non_null } | TypeRef::Input { name, non_null } => {
                (class_name(name), *non_null)
            }
            TypeRef::Object { name, non_null } => (self.names.object(name.as_deref()), *non_null),
        };
        if non_null {
            inner
        } else {
            format!("{inner}|null")
        }
    }

    /// (native, PHPDoc) return types of a method.
    fn returns(&self, field: &Field) -> (String, String) {
        match &field.kind {
            FieldKind::Id => ("string".to_owned(), "string".to_owned()),
            FieldKind::Object { object } | FieldKind::Sync { object } => {
                (self.names.class(object), self.names.class(object))
            }
            FieldKind::ObjectList { object } => (
                "array".to_owned(),
                format!("list<{}>", self.names.class(object)),
            ),
            FieldKind::Leaf => (self.native(&field.ty), self.doc(&field.ty)),
        }
    }

    /// `T $name`, or `?T $name = null` for an optional argument.
    fn param(&self, arg: &Arg) -> String {
        let name = variable(&arg.name);
        let native = self.native(&arg.ty);
        if !arg.optional {
            return format!("{native} ${name}");
        }
        if native.starts_with('?') {
            format!("{native} ${name} = null")
        } else {
            format!("?{native} ${name} = null")
        }
    }

    /// The method header through `{` (or `;` when `abstract`), at `indent`.
    fn signature(&self, field: &Field, indent: usize, abstract_: bool) -> String {
        let pad = " ".repeat(indent);
        let (returns, _) = self.returns(field);
        let params: Vec<String> = field
            .required_args
            .iter()
            .chain(&field.optional_args)
            .map(|arg| self.param(arg))
            .collect();
        let end = if abstract_ { ";" } else { "" };
        let one_line = format!(
            "{pad}public function {}({}): {returns}",
            field.name,
            params.join(", ")
        );
        if one_line.len() + end.len() <= LINE_LENGTH || params.is_empty() {
            let brace = if abstract_ {
                ";".to_owned()
            } else {
                format!("\n{pad}{{")
            };
            return format!("{one_line}{brace}");
        }
        let mut out = format!("{pad}public function {}(\n", field.name);
        for param in &params {
            out.push_str(&format!("{pad}    {param},\n"));
        }
        out.push_str(&format!(
            "{pad}): {returns}{}",
            if abstract_ { ";" } else { " {" }
        ));
        out
    }

    /// The statements of a method body, at `indent`.
    fn body(&self, field: &Field, indent: usize) -> String {
        let pad = " ".repeat(indent);
        let select = select_expression(field, indent);
        match &field.kind {
            FieldKind::Id => format!("{pad}return $this->ctx->id();"),
            FieldKind::Object { object } => {
                format!("{pad}return new {}({select});", self.names.class(object))
            }
            FieldKind::Sync { object } => format!(
                "{pad}$__q = {select};\n\
                 {pad}return new {class}($this->ctx->load('{object}', $__q->execute()));",
                class = self.names.class(object),
            ),
            FieldKind::ObjectList { object } => format!(
                "{pad}$__ids = {select}->select('id')->executeList();\n\
                 {pad}return array_map(\n\
                 {pad}    fn (mixed $__id): {class} => new {class}($this->ctx->load('{object}', $__id)),\n\
                 {pad}    $__ids,\n\
                 {pad});",
                class = self.names.class(object),
            ),
            FieldKind::Leaf => match enum_shape(&field.ty) {
                None => format!("{pad}return {select}->execute();"),
                Some((name, EnumShape::One { non_null: true })) => format!(
                    "{pad}$__q = {select};\n{pad}return {}::from($__q->execute());",
                    class_name(name)
                ),
                Some((name, EnumShape::One { non_null: false })) => format!(
                    "{pad}$__r = {select}->execute();\n\
                     {pad}return $__r === null ? null : {}::from($__r);",
                    class_name(name)
                ),
                Some((name, EnumShape::List)) => format!(
                    "{pad}$__r = {select}->executeList();\n\
                     {pad}return array_map(static fn (string $__v): {class} => {class}::from($__v), $__r);",
                    class = class_name(name)
                ),
            },
        }
    }
}

/// `$this->ctx->select('name')`, or with an argument array exploded one
/// entry per line (the array's closing `]` at `indent`).
fn select_expression(field: &Field, indent: usize) -> String {
    if field.args.is_empty() {
        return format!("$this->ctx->select('{}')", field.name);
    }
    let pad = " ".repeat(indent);
    let mut out = format!("$this->ctx->select('{}', [\n", field.name);
    for arg in &field.args {
        out.push_str(&format!(
            "{pad}    '{}' => ${},\n",
            arg.name,
            variable(&arg.name)
        ));
    }
    out.push_str(&format!("{pad}])"));
    out
}

fn scalar(name: &str) -> &str {
    match name {
        "Int" => "int",
        "Float" => "float",
        "Boolean" => "bool",
        // ID, String and every custom scalar (`Platform`, `ContainerID`) are
        // strings on the wire.
        _ => "string",
    }
}

/// A class, interface or enum name: reserved words get a `Type` suffix.
fn class_name(name: &str) -> String {
    if RESERVED_CLASS_NAMES.contains(&name.to_ascii_lowercase().as_str()) {
        format!("{name}Type")
    } else {
        name.to_owned()
    }
}

/// A variable name: `$this` is the only one PHP refuses.
fn variable(name: &str) -> String {
    if name == "this" {
        "this_".to_owned()
    } else {
        name.to_owned()
    }
}

/// A GraphQL default value as PHP would spell it, for PHPDoc.
fn php_literal(literal: &str, ty: &TypeRef) -> String {
    match ty {
        TypeRef::Enum { name, .. } => format!("{}::{literal}", class_name(name)),
        _ => literal.to_owned(),
    }
}

/// Makes text safe inside a `/** */` block.
fn escape_doc(text: &str) -> String {
    text.replace("*/", "*\\/")
}

/// A complete PHPDoc block at `indent` (empty when there is nothing to say).
/// `tags` are `@param`/`@return`/`@deprecated` lines, wrapped with a
/// four-space hanging indent.
fn doc_block(summary: Option<&str>, tags: &[String], indent: usize) -> String {
    let summary = summary.map(str::trim).filter(|text| !text.is_empty());
    if summary.is_none() && tags.is_empty() {
        return String::new();
    }
    let pad = " ".repeat(indent);
    let width = LINE_LENGTH.saturating_sub(indent + 3).max(20);
    let summary = summary.map(escape_doc);
    let tags: Vec<String> = tags.iter().map(|tag| escape_doc(tag)).collect();
    let lines = text::doc_lines(summary.as_deref(), &tags, width, 4);
    let mut out = String::from("/**\n");
    for line in lines {
        if line.is_empty() {
            out.push_str(&format!("{pad} *\n"));
        } else {
            out.push_str(&format!("{pad} * {line}\n"));
        }
    }
    out.push_str(&format!("{pad} */"));
    out
}

impl Php {
    fn field_doc(&self, field: &Field, indent: usize) -> String {
        let mut tags = self.param_tags(field.required_args.iter().chain(&field.optional_args));
        let (_, doc) = self.returns(field);
        if doc.contains("list<") {
            tags.push(format!("@return {doc}"));
        }
        if let Some(reason) = &field.deprecated {
            tags.push(format!("@deprecated {reason}"));
        }
        doc_block(field.description.as_deref(), &tags, indent)
    }

    /// The constructor's PHPDoc of an input object: one `@param` per field.
    fn input_doc(&self, input: &Input, indent: usize) -> String {
        let tags = self.param_tags(input.required_fields.iter().chain(&input.optional_fields));
        doc_block(None, &tags, indent)
    }

    /// `@param` tags for the arguments that need one (a description, a
    /// default or a list type says more than the native type).
    fn param_tags<'a>(&self, args: impl Iterator<Item = &'a Arg>) -> Vec<String> {
        args.filter_map(|arg| {
            let text = describe_arg(arg, |default, ty| {
                format!("Defaults to {}.", php_literal(default, ty))
            });
            // A tag only when it says more than the native type.
            if text.is_empty() && !matches!(arg.ty, TypeRef::List { .. }) {
                return None;
            }
            let mut ty = self.doc(&arg.ty);
            if arg.optional && !ty.ends_with("|null") {
                ty.push_str("|null");
            }
            let tag = format!("@param {ty} ${}", variable(&arg.name));
            Some(if text.is_empty() {
                tag
            } else {
                format!("{tag} {text}")
            })
        })
        .collect()
    }
}

/// Variables the PHP templates need beyond the model.
#[derive(serde::Serialize)]
pub(crate) struct Extras {
    /// The type an `ID` argument of unknown object type accepts.
    any_object: String,
}

pub(crate) fn extras(model: &Model) -> Extras {
    Extras {
        any_object: Php::new(model).names.any_object().to_owned(),
    }
}

/// Registers the PHP filters on `env`.
pub(crate) fn register(env: &mut Environment<'_>, model: &Model) {
    let names = Php::new(model);
    let n = names.clone();
    env.add_filter("php_class", move |name: String| n.names.class(&name));
    env.add_filter("php_doc", |text: Option<String>, indent: usize| {
        doc_block(text.as_deref(), &[], indent)
    });
    let n = names.clone();
    env.add_filter(
        "php_input_doc",
        move |input: Serde<Input>, indent: usize| n.input_doc(&input, indent),
    );
    let n = names.clone();
    env.add_filter("php_param", move |arg: Serde<Arg>| n.param(&arg));
    env.add_filter("php_variable", |name: String| variable(&name));
    let n = names.clone();
    env.add_filter(
        "php_field_doc",
        move |field: Serde<Field>, indent: usize| n.field_doc(&field, indent),
    );
    let n = names.clone();
    env.add_filter(
        "php_signature",
        move |field: Serde<Field>, indent: usize, abstract_: bool| {
            n.signature(&field, indent, abstract_)
        },
    );
    let n = names;
    env.add_filter("php_body", move |field: Serde<Field>, indent: usize| {
        n.body(&field, indent)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_snapshot() {
        insta::assert_snapshot!("php", super::super::tests::rendered("php"));
    }

    #[test]
    fn first_line_opens_php_and_carries_the_header() {
        let rendered = super::super::tests::rendered("php");
        let first = rendered.lines().next().unwrap();
        assert_eq!(first, format!("<?php // {}", super::super::HEADER));
        assert!(rendered.contains("\ndeclare(strict_types=1);\n"));
        assert!(rendered.lines().all(|line| line.len() <= 120), "{rendered}");
        assert!(
            rendered.lines().all(|line| line == line.trim_end()),
            "no trailing whitespace"
        );
    }

    #[test]
    fn doc_blocks_escape_and_wrap() {
        assert_eq!(
            doc_block(Some("Short."), &[], 4),
            "/**\n     * Short.\n     */"
        );
        assert_eq!(doc_block(Some("a */ b"), &[], 0), "/**\n * a *\\/ b\n */");
        let long = "word ".repeat(30);
        let doc = doc_block(Some(&long), &["@param string $name text".into()], 4);
        assert!(doc.lines().all(|line| line.len() <= LINE_LENGTH), "{doc}");
        assert!(
            doc.contains("\n     *\n     * @param string $name text\n"),
            "{doc}"
        );
    }

    #[test]
    fn reserved_names_are_renamed() {
        assert_eq!(class_name("List"), "ListType");
        assert_eq!(class_name("Container"), "Container");
        assert_eq!(variable("this"), "this_");
        assert_eq!(variable("from"), "from");
    }
}
