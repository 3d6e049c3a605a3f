#!/usr/bin/env bash
# The setup-gantry action's step (action.yml passes its inputs as INPUT_* variables).
# Installs gantry into $RUNNER_TEMP/gantry/bin with the repository's install.sh (which checks
# the archive's SHA-256 sum), puts it on the job's PATH ($GITHUB_PATH), logs in to the cache's
# registry when given credentials, and exports GANTRY_CACHE, GANTRY_CACHE_MODE and
# GANTRY_CACHE_KEY for the job's later steps ($GITHUB_ENV).
set -euo pipefail

die() { echo "::error::setup-gantry: $*" >&2; exit 1; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
: "${GITHUB_PATH:?not running under GitHub Actions (GITHUB_PATH is unset)}"
: "${GITHUB_ENV:?not running under GitHub Actions (GITHUB_ENV is unset)}"

archive=${INPUT_ARCHIVE_URL:-}
if [[ -z $archive ]]; then
    version=${INPUT_VERSION:-}
    [[ -n $version ]] || die "give either version (a gantry release, e.g. 0.1.0) or archive-url"
    version=${version#v}
    case $(uname -m) in
    x86_64 | amd64) target=x86_64-unknown-linux-musl ;;
    aarch64 | arm64) target=aarch64-unknown-linux-musl ;;
    *) die "no gantry release for this runner's architecture $(uname -m)" ;;
    esac
    archive=https://github.com/gantry-dev/gantry/releases/download/v$version/gantry-$version-$target.tar.gz
fi

bin_dir=${RUNNER_TEMP:-${TMPDIR:-/tmp}}/gantry/bin
sh "$root/install.sh" --bin-dir "$bin_dir" "$archive"
echo "$bin_dir" >>"$GITHUB_PATH"

cache=${INPUT_CACHE:-}
if [[ -z $cache ]]; then
    echo "setup-gantry: no cache input; steps are cached on this runner only"
    exit 0
fi
mode=${INPUT_CACHE_MODE:-}
if [[ -z $mode ]]; then
    case ${EVENT_NAME:-} in
    pull_request | pull_request_target) mode=read ;;
    *) mode=readwrite ;;
    esac
fi
[[ $mode == read || $mode == readwrite ]] || die "cache-mode must be read or readwrite, not '$mode'"

if [[ -n ${INPUT_REGISTRY_USERNAME:-} ]]; then
    [[ -n ${INPUT_REGISTRY_PASSWORD:-} ]] || die "registry-username is set but registry-password is empty"
    registry=${cache%%/*}
    printf '%s' "$INPUT_REGISTRY_PASSWORD" |
        docker login --username "$INPUT_REGISTRY_USERNAME" --password-stdin "$registry" >/dev/null ||
        die "docker login to $registry as $INPUT_REGISTRY_USERNAME failed"
    echo "setup-gantry: logged in to $registry as $INPUT_REGISTRY_USERNAME"
fi

{
    echo "GANTRY_CACHE=$cache"
    echo "GANTRY_CACHE_MODE=$mode"
} >>"$GITHUB_ENV"
if [[ -n ${INPUT_CACHE_KEY:-} ]]; then
    echo "::add-mask::$INPUT_CACHE_KEY"
    echo "GANTRY_CACHE_KEY=$INPUT_CACHE_KEY" >>"$GITHUB_ENV"
fi
echo "setup-gantry: cache $cache ($mode)"
