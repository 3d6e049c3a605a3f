#!/usr/bin/env bash
# Build the SDK packages the way each ecosystem does, into OUT (default dist/sdk):
#
#   gantry_sdk-VERSION-py3-none-any.whl, gantry_sdk-VERSION.tar.gz   python -m build (sdk-python)
#   gantry-sdk-VERSION.tgz                                          npm pack (sdk-typescript)
#   gantry-sdk-VERSION.zip                                          composer archive (sdk-php)
#
# Go has no package file: a Go module is published by pushing the tag sdk-go/vVERSION
# (docs/releasing.md). Each SDK's version is generated from Cargo.toml's by
# `cargo xtask codegen`; this script refuses to build when a manifest disagrees.
# Called by scripts/dist.sh; needs sdk-python/.venv with `build` and hatchling (make
# python-venv), npm and composer.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${1:-$root/dist/sdk}
python=${PYTHON_VENV:-$root/sdk-python/.venv}/bin/python

say() { printf 'dist-sdks: %s\n' "$*"; }
die() { printf 'dist-sdks: error: %s\n' "$*" >&2; exit 1; }

version=$(bash scripts/version.sh)
[[ -x $python ]] || die "no Python venv at ${python%/bin/python} (make python-venv creates it)"
"$python" -c 'import build, hatchling' 2>/dev/null ||
    die "${python%/bin/python} lacks build or hatchling (make python-venv installs sdk-python/requirements-dev.txt)"

rm -rf "$out"
mkdir -p "$out"

# Python: wheel and sdist. No build isolation: the backend is the pinned hatchling from
# requirements-dev.txt, so the build needs no network and is the same every time.
say "python -m build sdk-python"
"$python" -m build --no-isolation --sdist --wheel --outdir "$out" sdk-python >"$out/.python-build.log" 2>&1 ||
    { cat "$out/.python-build.log" >&2; die "python -m build failed"; }
rm -f "$out/.python-build.log"
for file in "gantry_sdk-$version-py3-none-any.whl" "gantry_sdk-$version.tar.gz"; do
    [[ -f $out/$file ]] || die "python -m build did not write $file (is sdk-python's version $version? run cargo xtask codegen)"
done

# TypeScript: npm pack runs the package's prepack (tsc) and packs what `files` lists.
say "npm pack sdk-typescript"
(
    cd sdk-typescript
    if [[ ! -d node_modules/typescript ]]; then npm ci --no-audit --no-fund --loglevel=error; fi
    npm pack --silent --pack-destination "$out" >/dev/null
)
[[ -f $out/gantry-sdk-$version.tgz ]] ||
    die "npm pack did not write gantry-sdk-$version.tgz (is sdk-typescript's version $version? run cargo xtask codegen)"

# PHP: the package as Packagist would serve it, without the files composer.json's
# archive.exclude lists (tests, dev configuration).
say "composer archive sdk-php"
(
    cd sdk-php
    COMPOSER_DISABLE_NETWORK=1 composer archive --quiet --format=zip --dir="$out" --file="gantry-sdk-$version"
)
[[ -f $out/gantry-sdk-$version.zip ]] || die "composer archive did not write gantry-sdk-$version.zip"

say "wrote $(find "$out" -maxdepth 1 -type f | wc -l) packages to ${out#"$root"/}"
