//! Help text generated from a module's description or gantry's SDL:
//! `gantry functions`, `gantry call FUNCTION --help`.

use std::fmt::Write as _;

use super::api::{Field, Ty};

/// The first paragraph of a doc string, on one line.
fn summary(text: &str) -> String {
    text.trim()
        .lines()
        .map(str::trim)
        .take_while(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The list `gantry functions` prints: one line per function.
pub(crate) fn list(title: &str, fields: &[Field]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{title}");
    if fields.is_empty() {
        let _ = writeln!(out, "\n  (no functions)");
        return out;
    }
    let width = fields.iter().map(|f| f.command().len()).max().unwrap_or(0);
    let _ = writeln!(out);
    for field in fields {
        let _ = writeln!(
            out,
            "  {:width$}  {}",
            field.command(),
            summary(&field.description)
        );
    }
    out
}

/// `gantry call [PREFIX] FUNCTION --help`.
pub(crate) fn usage(prefix: &str, field: &Field, chainable: Option<&[Field]>) -> String {
    let mut out = String::new();
    let flags_hint = if field.params.is_empty() {
        ""
    } else {
        " [FLAGS]"
    };
    let _ = writeln!(
        out,
        "Usage: gantry call {prefix}{}{flags_hint}",
        field.command()
    );
    if !field.description.is_empty() {
        let _ = writeln!(out);
        for line in field.description.lines() {
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    if !field.params.is_empty() {
        let _ = writeln!(out, "\nFlags:");
        let rows: Vec<(String, String)> = field
            .params
            .iter()
            .map(|param| {
                let left = format!("--{} {}", param.flag(), param.ty.display());
                let mut right = summary(&param.description);
                let extra = if param.required {
                    "required".to_owned()
                } else if let Some(default) = &param.default {
                    format!("default: {}", default_text(default))
                } else {
                    "optional".to_owned()
                };
                if !right.is_empty() {
                    right.push(' ');
                }
                right.push_str(&format!("({extra})"));
                (left, right)
            })
            .collect();
        let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        for (left, right) in rows {
            let _ = writeln!(out, "  {left:width$}  {right}");
        }
    }
    let _ = writeln!(out, "\nReturns: {}", field.returns.display());
    if let (Ty::Object(object), Some(fields)) = (&field.returns, chainable) {
        let names: Vec<String> = fields.iter().map(Field::command).collect();
        let _ = writeln!(
            out,
            "\nChain a field of {object} after it ({}), or save it with -o PATH.\n\
             Without either, gantry evaluates it and prints its ID.",
            names.join(", ")
        );
    }
    let mut value_help = Vec::new();
    for param in &field.params {
        let hint = match &param.ty {
            Ty::Object(name) => match name.as_str() {
                "Directory" => "a host path, or a Git URL[#REF][:DIR]",
                "File" => "a host path, or a Git URL#REF:PATH",
                "Secret" => {
                    "env:NAME, file:PATH or cmd:COMMAND (the value never appears in output)"
                }
                "Container" => "an image address",
                "CacheVolume" => "a cache volume name",
                _ => continue,
            },
            Ty::List(_) => "comma-separated, or repeat the flag",
            _ => continue,
        };
        let line = format!("  {}: {hint}", param.ty.display());
        if !value_help.contains(&line) {
            value_help.push(line);
        }
    }
    if !value_help.is_empty() {
        let _ = writeln!(out, "\nValues:");
        for line in value_help {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

fn default_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => format!("{text:?}"),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}
