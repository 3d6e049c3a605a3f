//! TypeScript: naming, type spelling and TSDoc for `templates/typescript/`.
//!
//! The output is what Prettier's defaults would keep (two-space indent, double
//! quotes, semicolons, trailing commas, lines up to 100 columns): signatures
//! that would be longer are exploded one parameter per line here, and argument
//! objects are always written one property per line, which Prettier preserves.
//! No formatter runs at generation time.
//!
//! Optional arguments go in one options object per method (`ContainerWithExecOpts`),
//! enums are TypeScript string enums whose values are the GraphQL names, and
//! enum-typed arguments are wrapped in `enumArg(...)` so the runtime inlines them
//! unquoted.

use minijinja::value::Serde;
use minijinja::Environment;

use super::model::{describe_arg, Arg, Field, FieldKind, Input, Model, Names, TypeRef};
use super::text;

language! {
    name: "typescript",
    api: "client.gen.ts.jinja" => "sdk-typescript/src/api/client.gen.ts",
    names: "env.gen.ts.jinja" => "sdk-typescript/src/api/env.gen.ts",
}

const LINE_LENGTH: usize = 100;

/// The class an open `ID` argument accepts when the schema has no `Node` interface (the runtime's base class).
const BASE_CLASS: &str = "BaseObject";

/// Words that cannot name a parameter; such a parameter gets a trailing underscore.
const RESERVED: &[&str] = &[
    "arguments",
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "eval",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "implements",
    "import",
    "in",
    "instanceof",
    "interface",
    "let",
    "new",
    "null",
    "opts",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "static",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
];

/// TypeScript's type spelling over the naming rule every SDK shares.
#[derive(Clone)]
struct TypeScript {
    names: Names,
    /// Input objects whose values need marking before they are sent: those
    /// with an enum field (sent bare, not as a string), directly or in a
    /// nested input.
    marked_inputs: Vec<String>,
}

impl TypeScript {
    fn new(model: &Model) -> Self {
        Self {
            names: Names::new(model, str::to_owned, BASE_CLASS),
            marked_inputs: marked_inputs(model),
        }
    }

    /// The type of a value; `null` is part of it unless `non_null` (or `strip_null`).
    fn ty(&self, ty: &TypeRef, strip_null: bool) -> String {
        let (inner, non_null) = match ty {
            TypeRef::Scalar { name, non_null } => (scalar(name).to_owned(), *non_null),
            TypeRef::Enum { name, non_null } | TypeRef::Input { name, non_null } => {
                (name.clone(), *non_null)
            }
            TypeRef::Object { name, non_null } => (self.names.object(name.as_deref()), *non_null),
            TypeRef::List { of, non_null } => {
                let item = self.ty(of, false);
                let item = if item.contains(' ') {
                    format!("({item})")
                } else {
                    item
                };
                (format!("{item}[]"), *non_null)
            }
        };
        if non_null || strip_null {
            inner
        } else {
            format!("{inner} | null")
        }
    }

    fn returns(&self, field: &Field) -> String {
        match &field.kind {
            FieldKind::Id => "Promise<string>".to_owned(),
            FieldKind::Object { object } => self.names.class(object),
            FieldKind::Sync { object } => format!("Promise<{}>", self.names.class(object)),
            FieldKind::ObjectList { object } => format!("Promise<{}[]>", self.names.class(object)),
            FieldKind::Leaf => format!("Promise<{}>", self.ty(&field.ty, false)),
        }
    }

    /// The leaf's value type, as passed to `execute<T>()`.
    fn leaf_type(&self, field: &Field) -> String {
        self.ty(&field.ty, false)
    }

    /// `name(params): Returns` for a class method (`async` when it returns a
    /// promise) or an interface member, exploded when longer than a line.
    fn signature(&self, field: &Field, owner: &str, indent: usize, declaration: bool) -> String {
        let mut params: Vec<String> = field
            .required_args
            .iter()
            .map(|arg| format!("{}: {}", identifier(&arg.name), self.ty(&arg.ty, false)))
            .collect();
        if !field.optional_args.is_empty() {
            params.push(format!(
                "opts?: {}",
                opts_name(&self.names.class(owner), &field.name)
            ));
        }
        let prefix = if !declaration && !matches!(field.kind, FieldKind::Object { .. }) {
            "async "
        } else {
            ""
        };
        let returns = self.returns(field);
        let end = if declaration { ";" } else { " {" };
        let one_line = format!(
            "{prefix}{}({}): {returns}{end}",
            field.name,
            params.join(", ")
        );
        if indent + one_line.len() <= LINE_LENGTH || params.is_empty() {
            return one_line;
        }
        let pad = " ".repeat(indent);
        let mut out = format!("{prefix}{}(\n", field.name);
        for param in &params {
            out.push_str(&format!("{pad}  {param},\n"));
        }
        out.push_str(&format!("{pad}): {returns}{end}"));
        out
    }

    /// The expression passing `arg` to the runtime.
    fn arg_value(&self, arg: &Arg) -> String {
        let value = if arg.optional {
            format!("opts?.{}", arg.name)
        } else {
            identifier(&arg.name)
        };
        self.marked(&arg.ty, value)
    }

    /// `value` as the runtime must see it: enums wrapped in `enumArg`, input
    /// objects that hold enums passed through their marker function.
    fn marked(&self, ty: &TypeRef, value: String) -> String {
        if holds_enum(ty) {
            format!("enumArg({value})")
        } else if let Some(input) = self.marked_input(ty) {
            format!("inputArg({value}, {})", marker_name(input))
        } else {
            value
        }
    }

    /// The input object `ty` holds (directly or in lists) if it has a marker.
    fn marked_input<'a>(&self, ty: &'a TypeRef) -> Option<&'a str> {
        match ty {
            TypeRef::Input { name, .. } => self.marked_inputs.contains(name).then_some(name),
            TypeRef::List { of, .. } => self.marked_input(of),
            _ => None,
        }
    }

    /// The body of an input's marker: a copy of the value with each enum
    /// field wrapped and each nested input marked.
    fn marker_body(&self, input: &Input) -> String {
        let mut out = String::from("{ ...value");
        for field in &input.fields {
            let access = format!("value.{}", field.name);
            let marked = self.marked(&field.ty, access.clone());
            if marked != access {
                out.push_str(&format!(", {}: {marked}", property(&field.name)));
            }
        }
        out.push_str(" }");
        out
    }

    /// One property of the argument object: `name` (shorthand) or `name: value`.
    fn arg_property(&self, arg: &Arg) -> String {
        let value = self.arg_value(arg);
        if value == arg.name {
            value
        } else {
            format!("{}: {value}", property(&arg.name))
        }
    }
}

/// The inputs that hold an enum, directly or through nested inputs (a
/// fixpoint: nesting may be deep).
fn marked_inputs(model: &Model) -> Vec<String> {
    fn holds(ty: &TypeRef, marked: &[String]) -> bool {
        match ty {
            TypeRef::Enum { .. } => true,
            TypeRef::Input { name, .. } => marked.contains(name),
            TypeRef::List { of, .. } => holds(of, marked),
            _ => false,
        }
    }
    let mut marked: Vec<String> = Vec::new();
    loop {
        let more: Vec<String> = model
            .inputs
            .iter()
            .filter(|input| !marked.contains(&input.name))
            .filter(|input| input.fields.iter().any(|field| holds(&field.ty, &marked)))
            .map(|input| input.name.clone())
            .collect();
        if more.is_empty() {
            return marked;
        }
        marked.extend(more);
    }
}

/// `PortForward` → `markPortForward`.
fn marker_name(input: &str) -> String {
    format!("mark{input}")
}

fn holds_enum(ty: &TypeRef) -> bool {
    match ty {
        TypeRef::Enum { .. } => true,
        TypeRef::List { of, .. } => holds_enum(of),
        _ => false,
    }
}

fn scalar(name: &str) -> &str {
    match name {
        "String" | "ID" => "string",
        "Int" | "Float" => "number",
        "Boolean" => "boolean",
        custom => custom,
    }
}

/// A parameter name: reserved words get a trailing underscore.
fn identifier(name: &str) -> String {
    if RESERVED.contains(&name) {
        format!("{name}_")
    } else {
        name.to_owned()
    }
}

/// An object property name: GraphQL names are always valid identifiers.
fn property(name: &str) -> String {
    name.to_owned()
}

/// `Container` + `withExec` → `ContainerWithExecOpts`.
fn opts_name(class: &str, field: &str) -> String {
    let mut chars = field.chars();
    let first = chars.next().map(|c| c.to_ascii_uppercase());
    format!(
        "{class}{}{}Opts",
        first.map(String::from).unwrap_or_default(),
        chars.as_str()
    )
}

/// A GraphQL default value as TypeScript would spell it, for TSDoc.
fn ts_literal(literal: &str, ty: &TypeRef) -> String {
    match ty {
        TypeRef::Enum { name, .. } if literal != "null" => format!("{name}.{literal}"),
        _ => literal.to_owned(),
    }
}

/// Escapes text for a `/** */` comment.
fn escape_comment(text: &str) -> String {
    text.replace("*/", "*\\/")
}

/// A complete TSDoc comment whose first line starts at column `indent`; later
/// lines carry their own indentation. Empty when there is nothing to say.
fn doc_comment(summary: Option<&str>, tags: &[String], indent: usize) -> String {
    let summary = summary.map(str::trim).filter(|text| !text.is_empty());
    if summary.is_none() && tags.is_empty() {
        return String::new();
    }
    let width = LINE_LENGTH.saturating_sub(indent + 3).max(20);
    let pad = " ".repeat(indent);
    if tags.is_empty() {
        let body = escape_comment(summary.unwrap_or_default());
        if !body.contains('\n') && body.len() + 7 + indent <= LINE_LENGTH {
            return format!("/** {body} */");
        }
    }
    let summary = summary.map(escape_comment);
    let tags: Vec<String> = tags.iter().map(|tag| escape_comment(tag)).collect();
    let lines = text::doc_lines(summary.as_deref(), &tags, width, 2);
    let mut out = String::from("/**");
    for line in &lines {
        out.push('\n');
        out.push_str(&pad);
        if line.is_empty() {
            out.push_str(" *");
        } else {
            out.push_str(" * ");
            out.push_str(line);
        }
    }
    out.push('\n');
    out.push_str(&pad);
    out.push_str(" */");
    out
}

fn field_doc(field: &Field, indent: usize) -> String {
    let mut tags: Vec<String> = field
        .required_args
        .iter()
        .filter_map(|arg| {
            let text = arg.description.as_deref().unwrap_or_default().trim();
            (!text.is_empty()).then(|| format!("@param {} - {text}", identifier(&arg.name)))
        })
        .collect();
    if let Some(reason) = &field.deprecated {
        tags.push(format!("@deprecated {reason}"));
    }
    doc_comment(field.description.as_deref(), &tags, indent)
}

fn option_doc(arg: &Arg, indent: usize) -> String {
    let text = describe_arg(arg, |default, ty| {
        format!("Defaults to `{}`.", ts_literal(default, ty))
    });
    doc_comment(Some(&text), &[], indent)
}

/// Variables the TypeScript templates need beyond the model.
#[derive(serde::Serialize)]
pub(crate) struct Extras {
    /// What the API module imports from the runtime: `enumArg` and
    /// `inputArg` only when used.
    imports: Vec<&'static str>,
}

pub(crate) fn extras(model: &Model) -> Extras {
    let args = model
        .objects
        .iter()
        .flat_map(|object| &object.fields)
        .flat_map(|field| &field.args);
    let uses_enum_args = args.clone().any(|arg| holds_enum(&arg.ty));
    let marker = TypeScript::new(model);
    let marked_fields = model
        .inputs
        .iter()
        .filter(|input| marker.marked_inputs.contains(&input.name))
        .flat_map(|input| &input.fields);
    let uses_enum_args = uses_enum_args || marked_fields.clone().any(|f| holds_enum(&f.ty));
    let uses_input_args = args
        .into_iter()
        .chain(marked_fields)
        .any(|arg| marker.marked_input(&arg.ty).is_some());
    let mut imports = vec!["BaseObject"];
    if uses_enum_args {
        imports.push("enumArg");
    }
    if uses_input_args {
        imports.push("inputArg");
    }
    Extras { imports }
}

/// Registers the TypeScript filters on `env`.
pub(crate) fn register(env: &mut Environment<'_>, model: &Model) {
    let names = TypeScript::new(model);
    let n = names.clone();
    env.add_filter("ts_class", move |name: String| n.names.class(&name));
    let n = names.clone();
    env.add_filter("ts_opts", move |field: Serde<Field>, owner: String| {
        opts_name(&n.names.class(&owner), &field.name)
    });
    let n = names.clone();
    env.add_filter(
        "ts_signature",
        move |field: Serde<Field>, owner: String, indent: usize, declaration: bool| {
            n.signature(&field, &owner, indent, declaration)
        },
    );
    let n = names.clone();
    env.add_filter("ts_leaf_type", move |field: Serde<Field>| {
        n.leaf_type(&field)
    });
    let n = names.clone();
    env.add_filter("ts_option_type", move |arg: Serde<Arg>| n.ty(&arg.ty, true));
    let n = names.clone();
    env.add_filter("ts_arg_property", move |arg: Serde<Arg>| {
        n.arg_property(&arg)
    });
    let n = names.clone();
    env.add_filter("ts_marked", move |name: String| {
        n.marked_inputs.contains(&name)
    });
    let n = names.clone();
    env.add_filter("ts_marker_body", move |input: Serde<Input>| {
        n.marker_body(&input)
    });
    env.add_filter("ts_marker_name", |name: String| marker_name(&name));
    let n = names.clone();
    env.add_filter("ts_input_field", move |field: Serde<Arg>| {
        let mark = if field.optional { "?" } else { "" };
        format!("{}{mark}: {}", property(&field.name), n.ty(&field.ty, true))
    });
    env.add_filter("ts_doc", |text: Option<String>, indent: usize| {
        doc_comment(text.as_deref(), &[], indent)
    });
    env.add_filter("ts_field_doc", |field: Serde<Field>, indent: usize| {
        field_doc(&field, indent)
    });
    env.add_filter("ts_option_doc", |arg: Serde<Arg>, indent: usize| {
        option_doc(&arg, indent)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typescript_snapshot() {
        insta::assert_snapshot!("typescript", super::super::tests::rendered("typescript"));
    }

    #[test]
    fn comments_escape_and_wrap() {
        assert_eq!(doc_comment(Some("Short."), &[], 2), "/** Short. */");
        assert_eq!(doc_comment(Some("a */ b"), &[], 2), "/** a *\\/ b */");
        assert_eq!(doc_comment(None, &[], 2), "");
        let long = "word ".repeat(30);
        let doc = doc_comment(Some(&long), &["@param name - text".to_owned()], 2);
        let mut lines = doc.lines();
        assert_eq!(lines.next(), Some("/**"));
        assert!(lines.all(|line| line.len() <= LINE_LENGTH), "{doc}");
        assert!(
            doc.ends_with("\n   *\n   * @param name - text\n   */"),
            "{doc}"
        );
    }

    #[test]
    fn names() {
        assert_eq!(opts_name("Container", "withExec"), "ContainerWithExecOpts");
        assert_eq!(identifier("default"), "default_");
        assert_eq!(identifier("address"), "address");
    }
}
