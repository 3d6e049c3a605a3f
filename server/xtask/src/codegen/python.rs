//! Python: naming, type spelling and docstrings for `templates/python/`.
//!
//! The output must already be what `ruff format` would write (the SDK's
//! `make python-test` step checks that), so signatures and argument lists with
//! at least one entry are always exploded one per line with a trailing comma,
//! and docstrings are wrapped here to the 88-column line length.

use minijinja::value::Serde;
use minijinja::Environment;

use super::model::{
    describe_arg, enum_shape, Arg, EnumShape, Field, FieldKind, Model, Names, TypeRef,
};
use super::text;

language! {
    name: "python",
    api: "_gen.py.jinja" => "sdk-python/src/gantry/_gen.py",
    names: "_env.py.jinja" => "sdk-python/src/gantry/_env.py",
}

const LINE_LENGTH: usize = 88;

/// The class an open `ID` argument accepts when the schema has no `Node` interface.
const BASE_CLASS: &str = "Object";

/// Python keywords; a name that is one gets a trailing underscore (`from_`).
const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// Python's type spelling over the naming rule every SDK shares.
#[derive(Clone)]
struct Python {
    names: Names,
}

impl Python {
    fn new(model: &Model) -> Self {
        Self {
            names: Names::new(model, str::to_owned, BASE_CLASS),
        }
    }

    fn ty(&self, ty: &TypeRef, argument: bool) -> String {
        let (inner, non_null) = match ty {
            TypeRef::Scalar { name, non_null } => (scalar(name).to_owned(), *non_null),
            TypeRef::Enum { name, non_null } | TypeRef::Input { name, non_null } => {
                (name.clone(), *non_null)
            }
            TypeRef::Object { name, non_null } => (self.names.object(name.as_deref()), *non_null),
            TypeRef::List { of, non_null } => {
                // Object and input lists are covariant `Sequence`s so a
                // `list[Container]` passes where any object is expected, and
                // a tuple of `BuildArg`s passes too.
                let container = if argument && holds_values(of) {
                    "Sequence"
                } else {
                    "list"
                };
                (format!("{container}[{}]", self.ty(of, argument)), *non_null)
            }
        };
        if non_null {
            inner
        } else {
            format!("{inner} | None")
        }
    }

    fn returns(&self, field: &Field) -> String {
        match &field.kind {
            FieldKind::Id => "str".to_owned(),
            FieldKind::Object { object } | FieldKind::Sync { object } => self.names.class(object),
            FieldKind::ObjectList { object } => format!("list[{}]", self.names.class(object)),
            FieldKind::Leaf => self.ty(&field.ty, false),
        }
    }

    /// `name: T`, or `name: T | None = None` for an optional argument.
    fn param(&self, arg: &Arg) -> String {
        let name = identifier(&text::snake_case(&arg.name));
        let ty = self.ty(&arg.ty, true);
        if !arg.optional {
            return format!("{name}: {ty}");
        }
        if ty.ends_with(" | None") {
            format!("{name}: {ty} = None")
        } else {
            format!("{name}: {ty} | None = None")
        }
    }

    /// The statements that await a leaf and return it, at `indent`.
    fn leaf_body(&self, field: &Field, query: &str, indent: usize) -> String {
        let pad = " ".repeat(indent);
        let annotation = self.ty(&field.ty, false);
        match enum_shape(&field.ty) {
            None => format!("{pad}_r: {annotation} = await {query}.execute()\n{pad}return _r"),
            Some((name, EnumShape::One { non_null: true })) => {
                format!("{pad}return {name}(await {query}.execute())")
            }
            Some((name, EnumShape::One { non_null: false })) => format!(
                "{pad}_r: str | None = await {query}.execute()\n\
                 {pad}return None if _r is None else {name}(_r)"
            ),
            Some((name, EnumShape::List)) => format!(
                "{pad}_r: list[str] = await {query}.execute()\n\
                 {pad}return [{name}(_v) for _v in _r]"
            ),
        }
    }
}

/// Whether a list argument of this item type is a `Sequence`: objects and
/// input objects, possibly in nested lists.
fn holds_values(ty: &TypeRef) -> bool {
    match ty {
        TypeRef::Object { .. } | TypeRef::Input { .. } => true,
        TypeRef::List { of, .. } => holds_values(of),
        _ => false,
    }
}

fn scalar(name: &str) -> &str {
    match name {
        "String" | "ID" => "str",
        "Int" => "int",
        "Float" => "float",
        "Boolean" => "bool",
        custom => custom,
    }
}

/// A Python identifier: keywords get a trailing underscore.
fn identifier(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("{name}_")
    } else {
        name.to_owned()
    }
}

/// A GraphQL default value as Python would spell it, for docstrings.
fn python_literal(literal: &str, ty: &TypeRef) -> String {
    match literal {
        "true" => "True".to_owned(),
        "false" => "False".to_owned(),
        "null" => "None".to_owned(),
        _ => match ty {
            TypeRef::Enum { name, .. } => format!("{name}.{}", identifier(literal)),
            _ => literal.to_owned(),
        },
    }
}

/// Escapes text for a `"""` docstring.
fn escape_docstring(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace("\"\"\"", "\\\"\\\"\\\"");
    match escaped.strip_suffix('"') {
        Some(rest) => format!("{rest}\\\""),
        None => escaped,
    }
}

/// A complete docstring (quotes included) whose first line starts at column
/// `indent`; later lines carry their own indentation.
fn docstring(summary: Option<&str>, args: &[(String, String)], indent: usize) -> String {
    let summary = summary.map(str::trim).filter(|text| !text.is_empty());
    if summary.is_none() && args.is_empty() {
        return String::new();
    }
    let width = LINE_LENGTH.saturating_sub(indent).max(20);
    let pad = " ".repeat(indent);
    if args.is_empty() {
        let body = escape_docstring(summary.unwrap_or_default());
        if !body.contains('\n') && body.len() + 6 <= width {
            return format!("\"\"\"{body}\"\"\"");
        }
    }
    let mut lines: Vec<String> = Vec::new();
    if let Some(summary) = summary {
        // The opening quotes share the first line; wrap every line as if they did.
        lines.extend(text::wrap(&escape_docstring(summary), width - 3));
    }
    if !args.is_empty() {
        if !lines.is_empty() {
            lines.push(String::new());
        }
        lines.push("Args:".to_owned());
        for (name, description) in args {
            let entry = escape_docstring(&format!("{name}: {description}"));
            let mut wrapped = text::wrap_line(&entry, width - 4).into_iter();
            if let Some(first) = wrapped.next() {
                lines.push(format!("    {first}"));
            }
            let rest: Vec<String> = wrapped.collect();
            if !rest.is_empty() {
                for line in text::wrap_line(&rest.join(" "), width - 8) {
                    lines.push(format!("        {line}"));
                }
            }
        }
    }
    let mut out = String::from("\"\"\"");
    for (index, line) in lines.iter().enumerate() {
        if index > 0 {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(&pad);
            }
        }
        out.push_str(line);
    }
    out.push('\n');
    out.push_str(&pad);
    out.push_str("\"\"\"");
    out
}

/// An argument's or input field's description with its default, in Python.
fn describe(arg: &Arg) -> String {
    describe_arg(arg, |default, ty| {
        format!("Defaults to {}.", python_literal(default, ty))
    })
}

/// The docstring of an input object's field (its default is the engine's:
/// `None` leaves the field out of the literal).
fn input_field_docstring(field: &Arg, indent: usize) -> String {
    docstring(Some(&describe(field)), &[], indent)
}

fn field_docstring(field: &Field, indent: usize) -> String {
    let mut summary = field.description.clone().unwrap_or_default();
    if let Some(reason) = &field.deprecated {
        summary = format!("{summary}\n\nDeprecated: {reason}")
            .trim()
            .to_owned();
    }
    let args: Vec<(String, String)> = field
        .args
        .iter()
        .filter_map(|arg| {
            let text = describe(arg);
            (!text.is_empty()).then(|| (identifier(&text::snake_case(&arg.name)), text))
        })
        .collect();
    docstring(Some(&summary), &args, indent)
}

/// Variables the Python templates need beyond the model.
#[derive(serde::Serialize)]
pub(crate) struct Extras {
    /// Whether any signature uses `Sequence` (imported only then).
    uses_sequence: bool,
    /// The class an `ID` argument of unknown object type accepts.
    any_object: String,
}

pub(crate) fn extras(model: &Model) -> Extras {
    let uses_sequence = model
        .interfaces
        .iter()
        .chain(&model.objects)
        .flat_map(|object| &object.fields)
        .flat_map(|field| &field.args)
        .any(|arg| matches!(&arg.ty, TypeRef::List { of, .. } if holds_values(of)));
    Extras {
        uses_sequence,
        any_object: Python::new(model).names.any_object().to_owned(),
    }
}

/// Registers the Python filters on `env`.
pub(crate) fn register(env: &mut Environment<'_>, model: &Model) {
    let names = Python::new(model);
    let n = names.clone();
    env.add_filter("py_class", move |name: String| n.names.class(&name));
    env.add_filter("py_name", |name: String| {
        identifier(&text::snake_case(&name))
    });
    env.add_filter("py_member", |name: String| identifier(&name));
    let n = names.clone();
    env.add_filter("py_returns", move |field: Serde<Field>| n.returns(&field));
    let n = names.clone();
    env.add_filter("py_param", move |arg: Serde<Arg>| n.param(&arg));
    let n = names;
    env.add_filter(
        "py_leaf_body",
        move |field: Serde<Field>, query: String, indent: usize| {
            n.leaf_body(&field, &query, indent)
        },
    );
    env.add_filter("py_doc", |text: Option<String>, indent: usize| {
        docstring(text.as_deref(), &[], indent)
    });
    env.add_filter("py_field_doc", |field: Serde<Field>, indent: usize| {
        field_docstring(&field, indent)
    });
    env.add_filter("py_input_field_doc", |field: Serde<Arg>, indent: usize| {
        input_field_docstring(&field, indent)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docstrings_escape_and_wrap() {
        assert_eq!(docstring(Some("Short."), &[], 4), "\"\"\"Short.\"\"\"");
        assert_eq!(
            docstring(Some("a \"quote\""), &[], 4),
            "\"\"\"a \"quote\\\"\"\"\""
        );
        assert_eq!(
            docstring(Some(r"C:\path"), &[], 4),
            "\"\"\"C:\\\\path\"\"\""
        );
        let long = "word ".repeat(30);
        let doc = docstring(Some(&long), &[("name".into(), "text".into())], 8);
        // The first line starts at the indent; later lines carry it.
        let mut lines = doc.lines();
        assert!(lines.next().unwrap().len() + 8 <= LINE_LENGTH, "{doc}");
        assert!(lines.all(|line| line.len() <= LINE_LENGTH), "{doc}");
        assert!(
            doc.contains("\n\n        Args:\n            name: text\n        \"\"\""),
            "{doc}"
        );
    }

    #[test]
    fn keywords_get_an_underscore() {
        assert_eq!(identifier(&text::snake_case("from")), "from_");
        assert_eq!(identifier(&text::snake_case("import")), "import_");
        assert_eq!(identifier("None"), "None_");
        assert_eq!(identifier("match"), "match");
    }
}
