//! The words after `gantry call`: a chain of fields, each with its flags,
//! checked against the types before anything runs.
//!
//! `publish --src=. --tag v1` is one segment; `build --src=. file --path=/server
//! size` is three: a module function, then a field of the Container it
//! returns, then a field of that File.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::api::{core, Field, Param, Ty, FLAG_OBJECTS};
use super::dotenv::FlagDefault;
use super::Usage;

/// One flag value, checked and converted.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// A scalar, enum or list of them, as JSON.
    Json(serde_json::Value),
    /// An object the engine makes from the flag's value.
    Object(ObjectSource),
}

/// Where an object argument comes from.
#[derive(Debug, Clone)]
pub(crate) enum ObjectSource {
    Directory(PathBuf),
    File(PathBuf),
    /// A directory or file in a Git repository: `URL[#REF][:PATH]`
    /// (`gantry_core::ops::GitAddress`), loaded through `Query.address`.
    GitDirectory(String),
    GitFile(String),
    Container(String),
    CacheVolume(String),
    /// `env:NAME`, `file:PATH` or `cmd:COMMAND`; read only when the call runs.
    Secret(SecretSource),
}

#[derive(Debug, Clone)]
pub(crate) enum SecretSource {
    Env(String),
    File(PathBuf),
    Command(String),
}

/// One field of the chain with its arguments (declared names).
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub(crate) field: Field,
    pub(crate) args: BTreeMap<String, Value>,
}

/// Where a chain starts: a module's functions or the core API's `Query`.
pub(crate) enum Start<'a> {
    Module {
        name: &'a str,
        functions: &'a [Field],
    },
    Core,
}

/// The parsed command line: the segments, and whether help was asked for
/// (then the last segment is the one to explain, and flags are not checked
/// for completeness).
pub(crate) struct Chain {
    pub(crate) segments: Vec<Segment>,
}

/// Parses `words` (with `--output`, `--json` and `--help` already taken out).
/// `raw_defaults` gives values for flags of the first segment (`.env`);
/// `check_required` is false when only help is wanted.
pub(crate) fn parse(
    start: &Start<'_>,
    words: &[String],
    cwd: &Path,
    defaults: &dyn Fn(&Field) -> Vec<FlagDefault>,
    check_required: bool,
) -> Result<Chain, Usage> {
    let mut segments = Vec::new();
    let mut i = 0;
    // The fields the next word may name, and what they belong to.
    let mut fields: Vec<Field>;
    let mut owner: String;
    match start {
        Start::Module { name, functions } => {
            fields = functions.to_vec();
            owner = format!("module {name}");
        }
        Start::Core => {
            fields = core()
                .fields("Query")
                .map(<[Field]>::to_vec)
                .unwrap_or_default();
            owner = "the core API".into();
        }
    }
    while i < words.len() {
        let word = &words[i];
        if word.starts_with('-') {
            let hint = match segments.last() {
                None => "name a function first".to_owned(),
                Some(_) => "flags follow the function or field they belong to".to_owned(),
            };
            return Err(Usage::new(format!("unexpected flag {word}: {hint}")));
        }
        let Some(field) = fields
            .iter()
            .find(|f| f.command() == *word || f.name == *word)
            .cloned()
        else {
            let names: Vec<String> = fields.iter().map(Field::command).collect();
            let mut message = match segments.last() {
                None if matches!(start, Start::Module { .. }) => {
                    format!("unknown function {word:?} in {owner}")
                }
                _ => format!("{owner} has no field {word:?}"),
            };
            if let Some(close) = closest(word, &names) {
                message.push_str(&format!(": did you mean {close:?}?"));
            }
            if segments.is_empty() {
                message.push_str(" (`gantry functions` lists them)");
            }
            return Err(Usage::new(message));
        };
        i += 1;
        let first = segments.is_empty();
        let mut raw: BTreeMap<String, Vec<String>> = BTreeMap::new();
        while i < words.len() && words[i].starts_with('-') {
            let word = &words[i];
            let (name, inline) = match word.trim_start_matches('-').split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (word.trim_start_matches('-').to_owned(), None),
            };
            let Some(param) = field
                .params
                .iter()
                .find(|p| p.flag() == name || p.name == name)
            else {
                let flags: Vec<String> = field.params.iter().map(Param::flag).collect();
                let mut message = format!("{} has no flag --{name}", field.command());
                if let Some(close) = closest(&name, &flags) {
                    message.push_str(&format!(": did you mean --{close}?"));
                }
                return Err(Usage::new(message).with_help(field.command()));
            };
            i += 1;
            let value = match inline {
                Some(value) => value,
                None if param.ty == Ty::Boolean => "true".to_owned(),
                None => match words.get(i) {
                    Some(next) if !next.starts_with("--") => {
                        i += 1;
                        next.clone()
                    }
                    _ => {
                        return Err(Usage::new(format!(
                            "--{} needs a value ({})",
                            param.flag(),
                            param.ty.display()
                        ))
                        .with_help(field.command()))
                    }
                },
            };
            raw.entry(param.name.clone()).or_default().push(value);
        }
        let mut args = BTreeMap::new();
        for (name, values) in raw {
            let param = field
                .params
                .iter()
                .find(|p| p.name == name)
                .expect("matched above");
            args.insert(name, convert(param, &values, cwd, "")?);
        }
        if first {
            for default in defaults(&field) {
                if args.contains_key(&default.param) {
                    continue;
                }
                if let Some(param) = field.params.iter().find(|p| p.name == default.param) {
                    let value = convert(param, &[default.value], &default.base, " (from .env)")?;
                    args.insert(default.param, value);
                }
            }
        }
        if check_required {
            let missing: Vec<String> = field
                .params
                .iter()
                .filter(|p| p.required && !args.contains_key(&p.name))
                .map(|p| format!("--{}", p.flag()))
                .collect();
            if !missing.is_empty() {
                return Err(Usage::new(format!(
                    "{} needs {}",
                    field.command(),
                    missing.join(", ")
                ))
                .with_help(field.command()));
            }
        }
        // The returned type's fields, only when a word follows.
        let next = match &field.returns {
            Ty::Object(object) if i < words.len() => core().fields(object).map(<[Field]>::to_vec),
            Ty::Object(_) => Some(Vec::new()),
            _ => None,
        };
        owner = field.returns.display();
        segments.push(Segment { field, args });
        match next {
            Some(next) => fields = next,
            None => {
                if let Some(extra) = words.get(i) {
                    let last = &segments.last().expect("pushed above").field;
                    return Err(Usage::new(format!(
                        "{} returns {}, which has no fields: cannot chain {extra:?}",
                        last.command(),
                        last.returns.display()
                    )));
                }
                fields = Vec::new();
            }
        }
    }
    Ok(Chain { segments })
}

/// Converts a flag's raw values to its type. `base` resolves relative paths.
fn convert(param: &Param, values: &[String], base: &Path, origin: &str) -> Result<Value, Usage> {
    let flag = format!("--{}{origin}", param.flag());
    match &param.ty {
        Ty::List(inner) => {
            let mut items = Vec::new();
            for value in values {
                for item in split_list(value) {
                    match scalar(&flag, inner, &item)? {
                        Some(json) => items.push(json),
                        None => {
                            return Err(Usage::new(format!(
                                "{flag}: lists of {} are not supported on the command line",
                                inner.display()
                            )))
                        }
                    }
                }
            }
            Ok(Value::Json(serde_json::Value::Array(items)))
        }
        ty => {
            let value = values.last().expect("a flag has a value");
            if values.len() > 1 {
                return Err(Usage::new(format!("{flag} is given more than once")));
            }
            if let Some(json) = scalar(&flag, ty, value)? {
                return Ok(Value::Json(json));
            }
            object(&flag, ty, value, base).map(Value::Object)
        }
    }
}

/// A scalar or enum value; `None` for object types.
fn scalar(flag: &str, ty: &Ty, value: &str) -> Result<Option<serde_json::Value>, Usage> {
    let wrong = |what: &str| Usage::new(format!("{flag}: expected {what}, got {value:?}"));
    Ok(Some(match ty {
        Ty::String => serde_json::Value::String(value.to_owned()),
        Ty::Int => serde_json::Value::from(
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| wrong("an integer"))?,
        ),
        Ty::Float => {
            let number: f64 = value.trim().parse().map_err(|_| wrong("a number"))?;
            serde_json::Number::from_f64(number)
                .map(serde_json::Value::Number)
                .ok_or_else(|| wrong("a finite number"))?
        }
        Ty::Boolean => match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => serde_json::Value::Bool(true),
            "false" | "0" | "no" => serde_json::Value::Bool(false),
            _ => return Err(wrong("true or false")),
        },
        Ty::Enum { values, .. } => {
            let found = values
                .iter()
                .find(|v| v.as_str() == value)
                .or_else(|| values.iter().find(|v| v.eq_ignore_ascii_case(value)));
            match found {
                Some(v) => serde_json::Value::String(v.clone()),
                None => return Err(wrong(&format!("one of {}", values.join(", ")))),
            }
        }
        Ty::Object(_) | Ty::List(_) | Ty::Void => return Ok(None),
    }))
}

fn object(flag: &str, ty: &Ty, value: &str, base: &Path) -> Result<ObjectSource, Usage> {
    let Ty::Object(name) = ty else {
        return Err(Usage::new(format!(
            "{flag}: this argument's type cannot be given on the command line"
        )));
    };
    let path = || base.join(value);
    let git = gantry_core::ops::GitAddress::parse(value);
    Ok(match name.as_str() {
        "Directory" if git.is_some() => ObjectSource::GitDirectory(value.to_owned()),
        "File" if git.as_ref().is_some_and(|git| git.path.is_none()) => {
            return Err(Usage::new(format!(
                "{flag}: {value} names no file in the repository: use URL#REF:PATH \
                 (URL#:PATH at HEAD)"
            )))
        }
        "File" if git.is_some() => ObjectSource::GitFile(value.to_owned()),
        "Directory" => {
            let path = path();
            if !path.is_dir() {
                return Err(Usage::new(format!(
                    "{flag}: no such directory: {}",
                    path.display()
                )));
            }
            ObjectSource::Directory(path)
        }
        "File" => {
            let path = path();
            if !path.is_file() {
                return Err(Usage::new(format!(
                    "{flag}: no such file: {}",
                    path.display()
                )));
            }
            ObjectSource::File(path)
        }
        "Container" => ObjectSource::Container(value.to_owned()),
        "CacheVolume" => ObjectSource::CacheVolume(value.to_owned()),
        "Secret" => ObjectSource::Secret(secret_source(flag, value, base)?),
        other => {
            return Err(Usage::new(format!(
                "{flag}: a {other} cannot be given on the command line (only {})",
                FLAG_OBJECTS.join(", ")
            )))
        }
    })
}

fn secret_source(flag: &str, value: &str, base: &Path) -> Result<SecretSource, Usage> {
    let (scheme, rest) = value.split_once(':').unwrap_or(("", value));
    let rest = rest.trim_start_matches("//");
    let source = match scheme {
        "env" => SecretSource::Env(rest.to_owned()),
        "file" => SecretSource::File(base.join(rest)),
        "cmd" => SecretSource::Command(rest.to_owned()),
        _ => {
            // The value may be the secret itself: never echo it.
            let shown = if scheme.is_empty() || scheme.len() > 16 {
                "<value>".to_owned()
            } else {
                format!("{scheme}:…")
            };
            return Err(Usage::new(format!(
                "{flag}: unknown secret source {shown}: use env:NAME, file:PATH or cmd:COMMAND"
            )));
        }
    };
    if rest.is_empty() {
        return Err(Usage::new(format!(
            "{flag}: {scheme}: needs a name, path or command after the colon"
        )));
    }
    Ok(source)
}

/// `a,b,"c,d"` → `a`, `b`, `c,d`.
fn split_list(value: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => items.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    items.push(current);
    items
}

/// The candidate closest to `word`, if any is close enough to be a typo.
pub(crate) fn closest(word: &str, candidates: &[String]) -> Option<String> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, c)| *distance <= 2.max(c.len() / 3))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn functions() -> Vec<Field> {
        let description: super::super::api::Description = serde_json::from_value(serde_json::json!({
            "object": "Pipeline",
            "functions": [
                {"name": "Test", "returns": "String", "args": [
                    {"name": "src", "type": "Directory"},
                    {"name": "count", "type": "Int", "optional": true, "default": 1},
                    {"name": "race", "type": "Boolean", "optional": true},
                    {"name": "tags", "type": "[String]", "optional": true},
                    {"name": "level", "type": "String", "optional": true, "enum": ["low", "high"]}
                ]},
                {"name": "Build", "returns": "Container", "args": [{"name": "src", "type": "Directory"}]},
                {"name": "Publish", "returns": "String", "args": [
                    {"name": "registryToken", "type": "Secret"}
                ]}
            ]
        }))
        .unwrap();
        description.fields().unwrap()
    }

    fn run(words: &[&str]) -> Result<Chain, Usage> {
        let functions = functions();
        let start = Start::Module {
            name: "pipeline",
            functions: &functions,
        };
        let words: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        let cwd = std::env::temp_dir();
        parse(&start, &words, &cwd, &|_| Vec::new(), true)
    }

    fn message(result: Result<Chain, Usage>) -> String {
        match result {
            Ok(_) => panic!("expected an error"),
            Err(usage) => usage.message,
        }
    }

    #[test]
    fn typed_flags_and_chaining() {
        let chain = run(&[
            "test",
            "--src",
            ".",
            "--count=3",
            "--race",
            "--tags=a,b",
            "--tags",
            "c",
            "--level=HIGH",
        ])
        .unwrap();
        let args = &chain.segments[0].args;
        assert!(matches!(&args["count"], Value::Json(v) if v == 3));
        assert!(matches!(&args["race"], Value::Json(v) if v == true));
        assert!(
            matches!(&args["tags"], Value::Json(v) if v == &serde_json::json!(["a", "b", "c"]))
        );
        assert!(matches!(&args["level"], Value::Json(v) if v == "high"));
        let chain = run(&["build", "--src=.", "file", "--path=/server", "size"]).unwrap();
        assert_eq!(chain.segments.len(), 3);
        assert_eq!(chain.segments[2].field.returns, Ty::Int);
    }

    #[test]
    fn errors_a_user_can_act_on() {
        assert!(message(run(&["tset"])).contains("did you mean \"test\""));
        assert!(message(run(&["test", "--src=.", "--rase"])).contains("did you mean --race"));
        assert!(message(run(&["test"])).contains("test needs --src"));
        assert!(message(run(&["test", "--src=.", "--count=many"]))
            .contains("expected an integer, got \"many\""));
        assert!(message(run(&["test", "--src=.", "--level=mid"])).contains("one of low, high"));
        assert!(message(run(&["test", "--src=/no/such/dir"])).contains("no such directory"));
        let unknown = message(run(&["publish", "--registry-token=hunter2"]));
        assert!(unknown.contains("unknown secret source"), "{unknown}");
        assert!(!unknown.contains("hunter2"));
        assert!(message(run(&["test", "--src=.", "stdout"]))
            .contains("returns string, which has no fields"));
    }
}
