//! Finding a module and reading its manifest: `gantry.toml`, or Dagger's
//! `dagger.json` when a directory has no `gantry.toml`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::Deserialize;

/// The file names a module directory is recognised by, in order of preference.
pub(crate) const GANTRY_MANIFEST: &str = "gantry.toml";
pub(crate) const DAGGER_MANIFEST: &str = "dagger.json";

/// The language a module is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Sdk {
    Python,
    Typescript,
    Go,
    Php,
}

impl Sdk {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Python => "python",
            Self::Typescript => "typescript",
            Self::Go => "go",
            Self::Php => "php",
        }
    }

    fn parse(value: &str, manifest: &Path) -> Result<Self> {
        Ok(match value.to_ascii_lowercase().as_str() {
            "python" => Self::Python,
            "typescript" | "ts" => Self::Typescript,
            "go" | "golang" => Self::Go,
            "php" => Self::Php,
            other => bail!(
                "{}: sdk {other:?} is not supported: gantry runs modules written for \
                 python, typescript, go or php",
                manifest.display()
            ),
        })
    }
}

/// Which manifest described the module. Dagger-format modules get Dagger's
/// conventions: only `@function`/`@func()` members are functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Gantry,
    Dagger,
}

impl Format {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Gantry => "gantry",
            Self::Dagger => "dagger",
        }
    }
}

/// A module found on disk.
#[derive(Debug, Clone)]
pub(crate) struct Module {
    /// The directory holding the manifest (absolute).
    pub(crate) root: PathBuf,
    pub(crate) manifest: PathBuf,
    pub(crate) name: String,
    pub(crate) sdk: Sdk,
    /// The directory holding the code (absolute).
    pub(crate) source: PathBuf,
    /// The main object's name: `object` in the manifest, else the module name in
    /// PascalCase (as Dagger names it).
    pub(crate) object: String,
    pub(crate) format: Format,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GantryToml {
    name: String,
    sdk: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    object: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DaggerJson {
    name: String,
    #[serde(default)]
    sdk: Option<DaggerSdk>,
    #[serde(default)]
    source: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DaggerSdk {
    Name(String),
    Table { source: String },
}

/// The module `explicit` names (a directory or a manifest file), else the
/// one `GANTRY_MODULE` names, else the nearest manifest at or above `cwd`.
pub(crate) fn find(explicit: Option<&Path>, cwd: &Path) -> Result<Module> {
    if let Some(path) = explicit {
        let path = cwd.join(path);
        if path.is_file() {
            return load(&path);
        }
        if !path.is_dir() {
            bail!(
                "module {}: no such directory (pass -m DIR with a {GANTRY_MANIFEST} or \
                 {DAGGER_MANIFEST}, or -m core)",
                path.display()
            );
        }
        return match manifest_in(&path) {
            Some(manifest) => load(&manifest),
            None => bail!(
                "{} holds no {GANTRY_MANIFEST} or {DAGGER_MANIFEST}: create one with \
                 `gantry init --sdk=LANG {}`",
                path.display(),
                path.display()
            ),
        };
    }
    let mut dir = Some(cwd);
    while let Some(here) = dir {
        if let Some(manifest) = manifest_in(here) {
            return load(&manifest);
        }
        dir = here.parent();
    }
    bail!(
        "no module here: no {GANTRY_MANIFEST} or {DAGGER_MANIFEST} in {} or any parent \
         directory; create one with `gantry init --sdk=LANG`, pass -m DIR (or set \
         GANTRY_MODULE), or use -m core for the core API",
        cwd.display()
    )
}

fn manifest_in(dir: &Path) -> Option<PathBuf> {
    [GANTRY_MANIFEST, DAGGER_MANIFEST]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
}

/// Reads one manifest file.
pub(crate) fn load(manifest: &Path) -> Result<Module> {
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("while reading {}", manifest.display()))?;
    let root = manifest
        .parent()
        .context("a manifest file has a parent directory")?
        .to_path_buf();
    let root = std::fs::canonicalize(&root).unwrap_or(root);
    let is_dagger = manifest.file_name().is_some_and(|n| n == DAGGER_MANIFEST);
    let (name, sdk, source, object, format) = if is_dagger {
        let parsed: DaggerJson = serde_json::from_str(&text)
            .with_context(|| format!("while parsing {}", manifest.display()))?;
        let Some(sdk) = parsed.sdk else {
            bail!(
                "{}: no \"sdk\" field: gantry needs {{\"sdk\": {{\"source\": \"python\"}}}} \
                 (or typescript, go, php)",
                manifest.display()
            );
        };
        let sdk = match sdk {
            DaggerSdk::Name(name) | DaggerSdk::Table { source: name } => name,
        };
        (parsed.name, sdk, parsed.source, None, Format::Dagger)
    } else {
        let parsed: GantryToml = toml::from_str(&text)
            .with_context(|| format!("while parsing {}", manifest.display()))?;
        (
            parsed.name,
            parsed.sdk,
            parsed.source,
            parsed.object,
            Format::Gantry,
        )
    };
    if name.trim().is_empty() {
        bail!("{}: the module name is empty", manifest.display());
    }
    let sdk = Sdk::parse(&sdk, manifest)?;
    let source = root.join(source.as_deref().unwrap_or("."));
    if !source.is_dir() {
        bail!(
            "{}: the source directory {} does not exist",
            manifest.display(),
            source.display()
        );
    }
    let object = object.unwrap_or_else(|| pascal_case(&name));
    Ok(Module {
        manifest: root.join(manifest.file_name().expect("a file name")),
        root,
        name,
        sdk,
        source,
        object,
        format,
    })
}

/// `my-module` and `my_module` become `MyModule`.
pub(crate) fn pascal_case(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            first.into_iter().chain(chars).collect::<String>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pascal_case_joins_words() {
        assert_eq!(pascal_case("pipeline"), "Pipeline");
        assert_eq!(pascal_case("my-module"), "MyModule");
        assert_eq!(pascal_case("my_module"), "MyModule");
    }

    #[test]
    fn finds_the_nearest_manifest_upward() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(GANTRY_MANIFEST),
            "name = \"ci\"\nsdk = \"python\"\n",
        )
        .unwrap();
        let nested = dir.path().join("a/b");
        std::fs::create_dir_all(&nested).unwrap();
        let module = find(None, &nested).unwrap();
        assert_eq!(module.name, "ci");
        assert_eq!(module.object, "Ci");
        assert_eq!(module.sdk, Sdk::Python);
        assert_eq!(module.format, Format::Gantry);
    }

    #[test]
    fn reads_dagger_json() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ci")).unwrap();
        std::fs::write(
            dir.path().join(DAGGER_MANIFEST),
            r#"{"name": "my-ci", "sdk": {"source": "typescript"}, "source": "ci"}"#,
        )
        .unwrap();
        let module = find(Some(dir.path()), dir.path()).unwrap();
        assert_eq!(module.object, "MyCi");
        assert_eq!(module.sdk, Sdk::Typescript);
        assert_eq!(module.format, Format::Dagger);
        assert!(module.source.ends_with("ci"));
    }

    #[test]
    fn errors_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(GANTRY_MANIFEST),
            "name = \"ci\"\nsdk = \"cobol\"\n",
        )
        .unwrap();
        let error = find(Some(dir.path()), dir.path()).unwrap_err();
        assert!(format!("{error:#}").contains("sdk \"cobol\" is not supported"));
        let empty = tempfile::tempdir().unwrap();
        let error = find(Some(empty.path()), empty.path()).unwrap_err();
        assert!(format!("{error:#}").contains("gantry init"));
    }
}
