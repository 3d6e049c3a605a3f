#!/usr/bin/env bash
# Print the release version: `version` in Cargo.toml's [workspace.package], the one source
# for the binary and every SDK (cargo xtask codegen writes it into each; docs/releasing.md).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml")
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || { echo "version.sh: no version in Cargo.toml's [workspace.package]" >&2; exit 1; }
echo "$version"
