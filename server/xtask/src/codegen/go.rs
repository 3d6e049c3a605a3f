//! Go: naming, type spelling and doc comments for `templates/go/`.
//!
//! The output must already be what `gofmt` writes (`make go-test` checks
//! `gofmt -l`), and the generator does not run gofmt itself so that the
//! output never depends on which Go toolchain is installed. The templates
//! avoid every construct gofmt would realign: no trailing comments, and the
//! fields of an `Opts` struct and the constants of an enum are separated by
//! blank lines, so each stands in its own alignment section. Doc comments are
//! wrapped here to [`LINE_LENGTH`] columns.

use minijinja::value::Serde;
use minijinja::Environment;

use super::model::{describe_arg, Arg, Field, FieldKind, Model, Names, TypeRef};
use super::text;

language! {
    name: "go",
    api: "gantry.gen.go.jinja" => "sdk-go/gantry.gen.go",
    names: "env.gen.go.jinja" => "sdk-go/env.gen.go",
}

/// Doc comments wrap at this column (a tab counts as 4).
const LINE_LENGTH: usize = 80;

/// The type an open `ID` argument accepts when the schema has no `Node` interface (the template declares it then).
const BASE_CLASS: &str = "Object";

/// Go keywords and predeclared names a parameter must not shadow.
const RESERVED: &[&str] = &[
    "break",
    "case",
    "chan",
    "const",
    "continue",
    "default",
    "defer",
    "else",
    "fallthrough",
    "for",
    "func",
    "go",
    "goto",
    "if",
    "import",
    "interface",
    "map",
    "package",
    "range",
    "return",
    "select",
    "struct",
    "switch",
    "type",
    "var",
    // Names the generated method bodies use.
    "ctx",
    "opts",
    "opt",
    "r",
    "q",
    "res",
    "resID",
    "resIDs",
    "err",
    "i",
    "context",
    // Predeclared identifiers that would be shadowed.
    "string",
    "int",
    "bool",
    "error",
    "len",
    "make",
    "append",
    "nil",
    "true",
    "false",
];

/// Words Go spells in capitals inside identifiers (`ID`, `URL`, ...).
const INITIALISMS: &[&str] = &[
    "api", "cpu", "dns", "html", "http", "https", "id", "ip", "json", "oci", "sha", "ssh", "tcp",
    "tls", "ttl", "udp", "uid", "uri", "url", "uuid", "xml",
];

/// Go's type spelling over the naming rule every SDK shares.
#[derive(Clone)]
struct Go {
    names: Names,
}

impl Go {
    fn new(model: &Model) -> Self {
        Self {
            names: Names::new(model, exported, BASE_CLASS),
        }
    }

    /// How a value of an object or interface type is spelled: `*Container`, `Node`.
    fn reference(&self, name: &str) -> String {
        if name == self.names.any_object() || self.names.is_interface(name) {
            self.names.class(name)
        } else {
            format!("*{}", self.names.class(name))
        }
    }

    /// The Go spelling of a type. Objects are pointers (interfaces are not);
    /// null is the zero value, so nullable and non-null types look the same.
    fn ty(&self, ty: &TypeRef) -> String {
        match ty {
            TypeRef::Scalar { name, .. } => scalar(name),
            TypeRef::Enum { name, .. } | TypeRef::Input { name, .. } => exported(name),
            TypeRef::Object { name: None, .. } => self.names.any_object().to_owned(),
            TypeRef::Object {
                name: Some(name), ..
            } => self.reference(name),
            TypeRef::List { of, .. } => format!("[]{}", self.ty(of)),
        }
    }

    /// The first result type of a method that talks to the engine.
    fn returns(&self, field: &Field) -> String {
        match &field.kind {
            FieldKind::Id => "string".to_owned(),
            FieldKind::Object { object } | FieldKind::Sync { object } => self.reference(object),
            FieldKind::ObjectList { object } => format!("[]{}", self.reference(object)),
            FieldKind::Leaf => self.ty(&field.ty),
        }
    }

    /// The method's parameter list, without parentheses.
    fn params(&self, owner: &str, field: &Field) -> String {
        let mut params = Vec::new();
        if !matches!(field.kind, FieldKind::Object { .. }) {
            params.push("ctx context.Context".to_owned());
        }
        for arg in &field.required_args {
            params.push(format!("{} {}", parameter(&arg.name), self.ty(&arg.ty)));
        }
        if !field.optional_args.is_empty() {
            params.push(format!(
                "opts ...{}",
                opts_name(&self.names.class(owner), field)
            ));
        }
        params.join(", ")
    }
}

/// `<Type><Field>Opts`, e.g. `ContainerWithExecOpts`.
fn opts_name(class: &str, field: &Field) -> String {
    format!("{class}{}Opts", exported(&field.name))
}

fn scalar(name: &str) -> String {
    match name {
        "String" | "ID" => "string".to_owned(),
        "Int" => "int".to_owned(),
        "Float" => "float64".to_owned(),
        "Boolean" => "bool".to_owned(),
        custom => exported(custom),
    }
}

/// `withExec` → `WithExec`, `loadContainerFromID` → `LoadContainerFromID`,
/// `insecureSkipTLSVerify` → `InsecureSkipTLSVerify`, `SHARED` → `Shared`.
pub(crate) fn exported(name: &str) -> String {
    text::snake_case(name)
        .split('_')
        .filter(|word| !word.is_empty())
        .map(|word| {
            if INITIALISMS.contains(&word) {
                word.to_ascii_uppercase()
            } else {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            }
        })
        .collect()
}

/// A parameter name: lowerCamelCase, with a trailing underscore when it
/// would clash with a keyword or a name the method body uses.
fn parameter(name: &str) -> String {
    let exported = exported(name);
    // Lower the leading word: `ID` → `id`, `InsecureSkip` → `insecureSkip`.
    let split = exported
        .char_indices()
        .skip(1)
        .find(|&(index, ch)| {
            ch.is_ascii_lowercase()
                && exported[..index]
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_ascii_uppercase())
        })
        .map_or(
            exported.len(),
            |(index, _)| {
                if index > 1 {
                    index - 1
                } else {
                    index
                }
            },
        );
    let lowered = exported[..split].to_ascii_lowercase() + &exported[split..];
    if RESERVED.contains(&lowered.as_str()) {
        format!("{lowered}_")
    } else {
        lowered
    }
}

/// A GraphQL default value as Go would spell it, for doc comments.
fn go_literal(literal: &str, ty: &TypeRef) -> String {
    match ty {
        TypeRef::Enum { name, .. } => format!("{}{}", exported(name), exported(literal)),
        TypeRef::List { .. } if literal == "[]" => "empty".to_owned(),
        _ => literal.to_owned(),
    }
}

/// The constant names of an enum's values: `ReturnTypeSuccess`. A value
/// whose name is taken already (Dagger's schema has both `Gzip` and `GZIP`)
/// keeps its spelling: `ImageLayerCompressionGZIP`.
fn enum_names(enumeration: &str, values: &[String]) -> Vec<String> {
    let prefix = exported(enumeration);
    let mut names: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        let mut name = format!("{prefix}{}", exported(value));
        if names.contains(&name) {
            name = format!("{prefix}{value}");
        }
        names.push(name);
    }
    names
}

/// A `//` comment block whose first line starts at the template's position
/// and whose later lines are indented by `indent` tabs. Empty when there is
/// no text.
fn comment(text: &str, indent: usize) -> String {
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let width = LINE_LENGTH.saturating_sub(indent * 4 + 3).max(20);
    let pad = "\t".repeat(indent);
    let mut out = String::new();
    for (index, line) in text::wrap(text, width).iter().enumerate() {
        if index > 0 {
            out.push('\n');
            out.push_str(&pad);
        }
        if line.is_empty() {
            out.push_str("//");
        } else {
            out.push_str("// ");
            out.push_str(line);
        }
    }
    out
}

/// The doc comment of a method: description, then deprecation.
fn field_comment(field: &Field, indent: usize) -> String {
    let mut summary = field
        .description
        .clone()
        .unwrap_or_default()
        .trim()
        .to_owned();
    if let Some(reason) = &field.deprecated {
        summary = format!("{summary}\n\nDeprecated: {reason}")
            .trim()
            .to_owned();
    }
    comment(&summary, indent)
}

/// The doc comment of an optional argument's `Opts` field, or of an input
/// object's field.
fn opt_comment(arg: &Arg, indent: usize) -> String {
    let text = describe_arg(arg, |default, ty| {
        format!(
            "Defaults to {} (the zero value leaves it out).",
            go_literal(default, ty)
        )
    });
    comment(&text, indent)
}

/// Variables the Go templates need beyond the model.
#[derive(serde::Serialize)]
pub(crate) struct Extras {
    /// The type an `ID` argument of unknown object type accepts.
    any_object: String,
    /// Whether the template must declare [`Extras::any_object`] itself (the
    /// schema has no `Node` interface).
    declare_any_object: bool,
}

pub(crate) fn extras(model: &Model) -> Extras {
    Extras {
        any_object: Go::new(model).names.any_object().to_owned(),
        declare_any_object: model.node_interface.is_none(),
    }
}

/// Registers the Go filters on `env`.
pub(crate) fn register(env: &mut Environment<'_>, model: &Model) {
    let names = Go::new(model);
    let n = names.clone();
    env.add_filter("go_class", move |name: String| n.names.class(&name));
    env.add_filter("go_name", |name: String| exported(&name));
    // A shared name's key as a Go constant: `SESSION_PORT` → `EnvSessionPort`.
    env.add_filter("go_env_name", |key: String| {
        format!("Env{}", exported(&key.to_ascii_lowercase()))
    });
    env.add_filter("go_param", |name: String| parameter(&name));
    let n = names.clone();
    env.add_filter("go_returns", move |field: Serde<Field>| n.returns(&field));
    let n = names.clone();
    env.add_filter("go_type", move |ty: Serde<TypeRef>| n.ty(&ty));
    let n = names.clone();
    env.add_filter("go_params", move |field: Serde<Field>, owner: String| {
        n.params(&owner, &field)
    });
    let n = names;
    env.add_filter("go_opts", move |field: Serde<Field>, owner: String| {
        opts_name(&n.names.class(&owner), &field)
    });
    env.add_filter(
        "go_enum_names",
        |values: Vec<String>, enumeration: String| enum_names(&enumeration, &values),
    );
    env.add_filter("go_doc", |text: Option<String>, indent: usize| {
        comment(text.as_deref().unwrap_or_default(), indent)
    });
    env.add_filter("go_field_doc", |field: Serde<Field>, indent: usize| {
        field_comment(&field, indent)
    });
    env.add_filter("go_opt_doc", |arg: Serde<Arg>, indent: usize| {
        opt_comment(&arg, indent)
    });
    // Whether an interface can declare the method: a field with optional
    // arguments takes a per-type `Opts` struct, which implementors spell
    // differently.
    env.add_filter("go_interface_method", |field: Serde<Field>| {
        field.optional_args.is_empty()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered() -> String {
        super::super::tests::rendered("go")
    }

    #[test]
    fn go_snapshot() {
        insta::assert_snapshot!("go", rendered());
    }

    /// The output is what gofmt would write; skipped when Go is not installed
    /// (`make go-test` runs `gofmt -l` on the real output either way).
    #[test]
    fn go_output_is_gofmt_clean() {
        let dir = std::env::temp_dir().join(format!("xtask-go-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tiny.gen.go");
        std::fs::write(&file, rendered()).unwrap();
        let output = std::process::Command::new("gofmt")
            .arg("-d")
            .arg(&file)
            .output();
        std::fs::remove_dir_all(&dir).ok();
        let Ok(output) = output else {
            return;
        };
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }

    #[test]
    fn names_follow_go_initialisms() {
        assert_eq!(exported("withExec"), "WithExec");
        assert_eq!(exported("loadContainerFromID"), "LoadContainerFromID");
        assert_eq!(exported("insecureSkipTLSVerify"), "InsecureSkipTLSVerify");
        assert_eq!(exported("id"), "ID");
        assert_eq!(exported("uri"), "URI");
        assert_eq!(exported("SHARED"), "Shared");
        assert_eq!(exported("OCIMediaTypes"), "OCIMediaTypes");
        assert_eq!(exported("None"), "None");
        assert_eq!(exported("from"), "From");
    }

    #[test]
    fn enum_names_never_collide() {
        let values = ["Gzip", "EStarGZ", "GZIP", "ESTARGZ"].map(String::from);
        assert_eq!(
            enum_names("ImageLayerCompression", &values),
            [
                "ImageLayerCompressionGzip",
                "ImageLayerCompressionEStarGz",
                "ImageLayerCompressionGZIP",
                "ImageLayerCompressionEstargz"
            ]
        );
    }

    #[test]
    fn parameters_are_lower_camel_and_never_keywords() {
        assert_eq!(parameter("address"), "address");
        assert_eq!(parameter("id"), "id");
        assert_eq!(parameter("ID"), "id");
        assert_eq!(parameter("insecureSkipTLSVerify"), "insecureSkipTLSVerify");
        assert_eq!(parameter("TLSConfig"), "tlsConfig");
        assert_eq!(parameter("type"), "type_");
        assert_eq!(parameter("ctx"), "ctx_");
        assert_eq!(parameter("opts"), "opts_");
        assert_eq!(parameter("platformVariants"), "platformVariants");
    }

    #[test]
    fn comments_wrap_and_keep_paragraphs() {
        assert_eq!(comment("Short.", 1), "// Short.");
        assert_eq!(comment("", 1), "");
        let long = "word ".repeat(30);
        let doc = comment(&format!("{long}\n\nDeprecated: x"), 1);
        assert!(
            doc.lines().all(|line| line.len() + 4 <= LINE_LENGTH),
            "{doc}"
        );
        assert!(doc.contains("\n\t//\n\t// Deprecated: x"), "{doc}");
    }
}
