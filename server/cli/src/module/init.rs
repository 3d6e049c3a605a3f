//! `gantry init`: a new module with one example function.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use super::manifest::{pascal_case, Sdk, DAGGER_MANIFEST, GANTRY_MANIFEST};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  gantry init --sdk=python ci && cd ci && gantry call hello --name=you"
)]
pub(crate) struct InitArgs {
    /// The module's language
    #[arg(long, value_enum)]
    sdk: Sdk,
    /// The module's name [default: the directory's name]
    #[arg(long)]
    name: Option<String>,
    /// Where to create the module (created if missing)
    #[arg(value_name = "DIR", default_value = ".")]
    dir: PathBuf,
}

/// A name made of letters, digits, `-` and `_`, starting with a letter.
fn module_name(args: &InitArgs, dir: &Path) -> Result<String> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "ci".into()),
    };
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        bail!("{name:?} is not a module name: use letters, digits, - and _, starting with a letter (pass --name)");
    }
    Ok(name)
}

pub(crate) fn run(args: InitArgs) -> Result<()> {
    let cwd = std::env::current_dir().context("while reading the current directory")?;
    let dir = cwd.join(&args.dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("while creating {}", dir.display()))?;
    let dir = std::fs::canonicalize(&dir)?;
    for manifest in [GANTRY_MANIFEST, DAGGER_MANIFEST] {
        if dir.join(manifest).exists() {
            bail!(
                "{} already has a {manifest}: it is a module already",
                dir.display()
            );
        }
    }
    let name = module_name(&args, &dir)?;
    let object = pascal_case(&name);
    let snake = name.replace('-', "_");
    let files: Vec<(&str, String)> = match args.sdk {
        Sdk::Python => vec![(
            "main.py",
            PYTHON.replace("OBJECT", &object).replace("NAME", &name),
        )],
        Sdk::Typescript => vec![
            (
                "src/index.ts",
                TYPESCRIPT.replace("OBJECT", &object).replace("NAME", &name),
            ),
            ("package.json", TS_PACKAGE.replace("NAME", &name)),
            ("tsconfig.json", TS_CONFIG.to_owned()),
        ],
        Sdk::Go => vec![
            (
                "main.go",
                GO.replace("OBJECT", &object).replace("NAME", &name),
            ),
            ("go.mod", GO_MOD.replace("NAME", &snake)),
        ],
        Sdk::Php => vec![
            (
                "src/OBJECT.php",
                PHP.replace("OBJECT", &object).replace("NAME", &name),
            ),
            ("composer.json", PHP_COMPOSER.replace("NAME", &snake)),
        ],
    };
    for (path, _) in &files {
        let path = dir.join(path.replace("OBJECT", &object));
        if path.exists() {
            bail!(
                "{} exists: gantry init does not overwrite files",
                path.display()
            );
        }
    }
    std::fs::write(
        dir.join(GANTRY_MANIFEST),
        format!("name = \"{name}\"\nsdk = \"{}\"\n", args.sdk.name()),
    )?;
    for (path, text) in files {
        let path = dir.join(path.replace("OBJECT", &object));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).with_context(|| format!("while writing {}", path.display()))?;
    }
    let setup = match args.sdk {
        Sdk::Python => {
            "pip install gantry-sdk (from sdk-python/) into the Python gantry uses, then "
        }
        Sdk::Typescript => "npm install (needs @gantry/sdk and typescript), then ",
        Sdk::Go => "go mod tidy, then ",
        Sdk::Php => "composer install (needs gantry/sdk), then ",
    };
    let line = format!(
        "\nThis directory is a gantry module ({}): {setup}`gantry call hello --name=you` \
         (`gantry functions` lists its functions; see gantry's docs/modules.md).\n",
        args.sdk.name()
    );
    let readme = dir.join("README.md");
    let mut text = std::fs::read_to_string(&readme).unwrap_or_else(|_| format!("# {name}\n"));
    text.push_str(&line);
    std::fs::write(&readme, text)?;
    eprintln!(
        "created module {name} ({}) in {}",
        args.sdk.name(),
        dir.display()
    );
    eprintln!("next: {setup}gantry call hello --name=you");
    Ok(())
}

const PYTHON: &str = r#""""The NAME module: its functions run with `gantry call`."""

import gantry


class OBJECT:
    """Functions of the NAME module."""

    async def hello(self, name: str = "world", image: str = "alpine:3.20") -> str:
        """Says hello from a container.

        Args:
            name: Who to greet.
            image: The image to run in.
        """
        async with gantry.Connection() as client:
            return await (
                client.container()
                .from_(image)
                .with_exec(["echo", f"hello, {name}"])
                .stdout()
            )
"#;

const TYPESCRIPT: &str = r#"/** The NAME module: its functions run with `gantry call`. */
import { connect } from "@gantry/sdk";

/** Functions of the NAME module. */
export class OBJECT {
  /**
   * Says hello from a container.
   * @param name Who to greet.
   * @param image The image to run in.
   */
  async hello(name: string = "world", image: string = "alpine:3.20"): Promise<string> {
    return connect((client) =>
      client.container().from(image).withExec(["echo", `hello, ${name}`]).stdout(),
    );
  }
}
"#;

const TS_PACKAGE: &str = r#"{
  "name": "NAME",
  "private": true,
  "type": "module",
  "dependencies": {
    "@gantry/sdk": "*"
  },
  "devDependencies": {
    "typescript": "^6.0.3"
  }
}
"#;

const TS_CONFIG: &str = r#"{
  "compilerOptions": {
    "target": "ES2022",
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "strict": true,
    "skipLibCheck": true
  },
  "include": ["src"]
}
"#;

const GO: &str = r#"// The NAME module: its functions run with `gantry call`.
package main

import (
	"context"
	"fmt"

	"dagger.io/dagger"
)

// OBJECT holds the functions of the NAME module.
type OBJECT struct{}

// Hello says hello from a container.
func (m *OBJECT) Hello(ctx context.Context, name string, image string) (string, error) {
	client, err := dagger.Connect(ctx)
	if err != nil {
		return "", err
	}
	defer client.Close()
	return client.Container().From(image).WithExec([]string{"echo", fmt.Sprintf("hello, %s", name)}).Stdout(ctx)
}
"#;

const GO_MOD: &str = "module NAME\n\ngo 1.22\n\nrequire dagger.io/dagger v0.21.9\n";

const PHP: &str = r#"<?php

declare(strict_types=1);

use Gantry\Client;

/**
 * Functions of the NAME module.
 */
final class OBJECT
{
    /**
     * Says hello from a container.
     *
     * @param string $name Who to greet.
     * @param string $image The image to run in.
     */
    public function hello(string $name = 'world', string $image = 'alpine:3.20'): string
    {
        $client = Client::connect();
        return $client->container()->from($image)->withExec(['echo', "hello, {$name}"])->stdout();
    }
}
"#;

const PHP_COMPOSER: &str = r#"{
    "name": "local/NAME",
    "require": {
        "gantry/sdk": "*"
    }
}
"#;
