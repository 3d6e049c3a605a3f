#!/usr/bin/env bash
# Tests of the release files that scripts/dist.sh wrote into DIST (make dist-test):
#
#   tests/dist/run.sh DIST
#
# The archives and SHA256SUMS; install.sh into temp folders (by path, from beside itself, by
# file:// URL) and its refusals (damaged archive, no sums, wrong --sha256); the installed
# binary's version and a real pipeline run twice (the second from the cache); the container
# image built from the archive, run against the local Docker daemon; the SDK packages
# installed into empty projects with their generated version. Needs Docker and the local
# registry (make setup). Last line: `dist: N passed, M failed`.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dist=$(cd "${1:?usage: tests/dist/run.sh DIST}" && pwd)
version=$(bash "$root/scripts/version.sh")
target=x86_64-unknown-linux-musl
archive=$dist/gantry-$version-$target.tar.gz
# shellcheck disable=SC1091
source "$root/scripts/test-registry.env"
busybox=$GANTRY_TEST_FIXTURES/busybox:latest

work=$(mktemp -d "${TMPDIR:-/tmp}/gantry-dist-test.XXXXXX")
image=gantry-dist-test:$version-$$
cleanup() {
    docker rmi -f "$image" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0
# check NAME CMD...: run CMD (a function of this file) and count it; its output is shown on
# failure only.
check() {
    local name=$1 log=$work/check.log
    shift
    if "$@" >"$log" 2>&1; then
        passed=$((passed + 1))
        echo "  ok    $name"
    else
        failed=$((failed + 1))
        echo "  FAIL  $name"
        sed 's/^/        | /' "$log" | tail -n 30
    fi
}
fail() { echo "$*" >&2; return 1; }
# contains HAYSTACK NEEDLE: HAYSTACK has NEEDLE, else say what it had.
contains() { [[ $1 == *"$2"* ]] || fail "expected '$2' in: $1"; }

# ------------------------------------------------------------------ archives and sums
sums_verify() { (cd "$dist" && sha256sum --check --strict SHA256SUMS); }

archive_layout() {
    local listing
    listing=$(tar -tzvf "$archive") || return 1
    echo "$listing"
    local names
    names=$(tar -tzf "$archive" | LC_ALL=C sort | tr '\n' ' ')
    local dir=gantry-$version-$target
    [[ $names == "$dir/ $dir/CHANGELOG.md $dir/README.md $dir/gantry " ]] || fail "unexpected entries: $names"
    # Reproducible: owners 0/0 in every entry.
    ! grep -v ' 0/0 ' <<<"$listing" || fail "entries not owned by 0/0"
}

binary_is_static() {
    mkdir -p "$work/unpacked"
    tar -xzf "$archive" -C "$work/unpacked"
    local bin=$work/unpacked/gantry-$version-$target/gantry
    readelf -hW "$bin" | grep -q 'Machine:.*X86-64' || fail "not an x86-64 ELF"
    if readelf -lW "$bin" | grep 'program interpreter'; then fail "dynamically linked"; fi
    if readelf -dW "$bin" | grep NEEDED; then fail "needs shared libraries"; fi
}

# ------------------------------------------------------------------ install.sh
install_by_path() {
    local out
    out=$(sh "$dist/install.sh" --bin-dir "$work/bin" "$archive" 2>&1) || fail "$out"
    echo "$out"
    contains "$out" "installed gantry $version to $work/bin/gantry"
    [[ $("$work/bin/gantry" version) == "gantry $version" ]] || fail "installed binary says $("$work/bin/gantry" version)"
}

install_from_beside_itself() {
    # No archive named: install.sh picks this machine's archive in its own folder; the
    # folder comes from GANTRY_INSTALL_DIR.
    local out
    out=$(GANTRY_INSTALL_DIR=$work/beside sh "$dist/install.sh" 2>&1) || fail "$out"
    echo "$out"
    [[ $("$work/beside/gantry" version) == "gantry $version" ]] || fail "wrong version"
}

install_by_url() {
    local out
    out=$(sh "$dist/install.sh" --bin-dir "$work/url" "file://$archive" 2>&1) || fail "$out"
    echo "$out"
    contains "$out" "downloading file://$archive"
    [[ -x $work/url/gantry ]] || fail "not installed"
}

install_default_dir_for_a_user() {
    # Not root: ~/.local/bin. Run as nobody with a HOME it can write.
    command -v setpriv >/dev/null || fail "setpriv (util-linux) is missing"
    local home=$work/home out
    mkdir -p "$home" && chmod 0777 "$home" "$work"
    cp "$archive" "$dist/SHA256SUMS" "$home/"
    chmod 0644 "$home"/*
    out=$(HOME=$home setpriv --reuid=65534 --regid=65534 --clear-groups \
        sh "$dist/install.sh" "$home/$(basename "$archive")" 2>&1) || fail "$out"
    echo "$out"
    contains "$out" "to $home/.local/bin/gantry"
    contains "$out" "$home/.local/bin is not on PATH"
    [[ $("$home/.local/bin/gantry" version) == "gantry $version" ]] || fail "wrong version"
}

refuses_damaged_archive() {
    mkdir -p "$work/bad"
    cp "$archive" "$dist/SHA256SUMS" "$work/bad/"
    printf 'x' >>"$work/bad/$(basename "$archive")"
    local out
    if out=$(sh "$dist/install.sh" --bin-dir "$work/bad-bin" "$work/bad/$(basename "$archive")" 2>&1); then
        fail "installed a damaged archive: $out"
    fi
    echo "$out"
    contains "$out" "SHA-256 mismatch for $(basename "$archive")"
    [[ ! -e $work/bad-bin/gantry ]] || fail "a gantry was installed anyway"
}

refuses_without_sums() {
    mkdir -p "$work/nosums"
    cp "$archive" "$work/nosums/"
    local out
    if out=$(sh "$dist/install.sh" --bin-dir "$work/nosums-bin" "$work/nosums/$(basename "$archive")" 2>&1); then
        fail "installed without a sum: $out"
    fi
    echo "$out"
    contains "$out" "no SHA256SUMS beside"
    # With the sum given, it installs.
    out=$(sh "$dist/install.sh" --bin-dir "$work/nosums-bin" --sha256 "$(sha256sum "$archive" | cut -d' ' -f1)" \
        "$work/nosums/$(basename "$archive")" 2>&1) || fail "$out"
    [[ -x $work/nosums-bin/gantry ]] || fail "not installed with --sha256"
}

refuses_wrong_sha256_option() {
    local out
    if out=$(sh "$dist/install.sh" --bin-dir "$work/wrong-bin" --sha256 "$(printf '0%.0s' {1..64})" "$archive" 2>&1); then
        fail "installed with a wrong --sha256: $out"
    fi
    contains "$out" "SHA-256 mismatch"
}

# ------------------------------------------------------------------ the installed binary runs a pipeline
pipeline() {
    cat >"$work/pipeline.graphql" <<EOF
{
  container {
    from(address: "$busybox") {
      withExec(args: ["sh", "-c", "echo hello from the installed gantry $$"]) { stdout }
    }
  }
}
EOF
    local env=(GANTRY_STATE_DIR="$work/state" GANTRY_SOCKET="$work/engine.sock")
    local out
    out=$(env "${env[@]}" "$work/bin/gantry" query --progress=plain "$work/pipeline.graphql" 2>&1) || fail "$out"
    echo "$out"
    contains "$out" "hello from the installed gantry $$"
    contains "$out" "[done"
    out=$(env "${env[@]}" "$work/bin/gantry" query --progress=plain "$work/pipeline.graphql" 2>&1) || fail "$out"
    echo "$out"
    contains "$out" "hello from the installed gantry $$"
    contains "$out" "[cached] exec sh -c echo hello from the installed gantry"
}

# ------------------------------------------------------------------ the container image
image_builds_and_runs() {
    IMAGE=$image bash "$root/scripts/image.sh" "$archive" || return 1
    [[ $(docker run --rm "$image" version) == "gantry $version" ]] || fail "docker run $image version"
    [[ $(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.version"}}' "$image") == "$version" ]] ||
        fail "image label has the wrong version"
    local layers
    layers=$(docker image inspect -f '{{len .RootFS.Layers}}' "$image")
    [[ $layers == 1 ]] || fail "expected one layer (FROM scratch), got $layers"
}

image_runs_a_pipeline() {
    # The engine in the container drives the host's daemon; the state directory is mounted at
    # the same path inside and out, since the daemon bind-mounts paths from it.
    local state=$work/image-state
    mkdir -p "$state"
    local out
    out=$(docker run --rm --network host \
        -v /var/run/docker.sock:/var/run/docker.sock \
        -v "$state:$state" -e GANTRY_STATE_DIR="$state" \
        -v "$work/pipeline.graphql:/pipeline.graphql:ro" \
        "$image" query --progress=plain /pipeline.graphql 2>&1) || fail "$out"
    echo "$out"
    contains "$out" "hello from the installed gantry $$"
}

# ------------------------------------------------------------------ SDK packages
python_packages() {
    local sdk=$dist/sdk wheel sdist
    wheel=$sdk/gantry_sdk-$version-py3-none-any.whl
    sdist=$sdk/gantry_sdk-$version.tar.gz
    tar -tzf "$sdist" | grep -qx "gantry_sdk-$version/pyproject.toml" || fail "sdist lacks pyproject.toml"
    tar -tzf "$sdist" | grep -qx "gantry_sdk-$version/src/gantry/py.typed" || fail "sdist lacks py.typed"
    python3 -m venv "$work/venv" || return 1
    "$work/venv/bin/pip" install --disable-pip-version-check -q --no-index "$wheel" || return 1
    local got
    got=$(cd "$work" && "$work/venv/bin/python" -c 'import gantry; print(gantry.__version__)') || return 1
    [[ $got == "$version" ]] || fail "gantry.__version__ is $got"
}

npm_package() {
    local tgz=$dist/sdk/gantry-sdk-$version.tgz got
    got=$(tar -xzOf "$tgz" package/package.json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["name"], d["version"])')
    [[ $got == "@gantry/sdk $version" ]] || fail "package.json says $got"
    mkdir -p "$work/node-project"
    (cd "$work/node-project" && echo '{"type":"module","private":true}' >package.json &&
        npm install --no-audit --no-fund --offline --loglevel=error "$tgz") || return 1
    got=$(cd "$work/node-project" && node --input-type=module -e 'import { VERSION } from "@gantry/sdk"; console.log(VERSION);') || return 1
    [[ $got == "$version" ]] || fail "VERSION is $got"
}

composer_package() {
    local zip=$dist/sdk/gantry-sdk-$version.zip listing
    listing=$(python3 -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$zip") || return 1
    grep -qx composer.json <<<"$listing" || fail "no composer.json"
    grep -qx 'generated/Api.php' <<<"$listing" || fail "no generated/Api.php"
    if grep -E '^(tests|vendor)/' <<<"$listing"; then fail "tests or vendor packed"; fi
    # The archive's contents installed into an empty project, offline: a path repository on
    # the unpacked archive, with the version a tag would give it on Packagist.
    mkdir -p "$work/php-project/gantry-sdk"
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$zip" "$work/php-project/gantry-sdk"
    cat >"$work/php-project/composer.json" <<EOF
{
    "repositories": [
        {"type": "path", "url": "gantry-sdk", "options": {"symlink": false, "versions": {"gantry/sdk": "$version"}}},
        {"packagist.org": false}
    ],
    "require": {"gantry/sdk": "$version"}
}
EOF
    (cd "$work/php-project" && COMPOSER_DISABLE_NETWORK=1 composer install --quiet --no-interaction) || return 1
    local got
    got=$(cd "$work/php-project" && php -r 'require "vendor/autoload.php"; echo \Gantry\Version::VERSION;') || return 1
    [[ $got == "$version" ]] || fail "Gantry\\Version::VERSION is $got"
}

go_module_version() {
    grep -q "const Version = \"$version\"" "$root"/sdk-go/*.gen.go || fail "sdk-go has no Version = \"$version\""
}

echo "dist: testing $(basename "$dist") (gantry $version)"
# ------------------------------------------------------------------ the GitHub Actions action
# .github/actions/setup-gantry run as Actions runs it (action.yml's env mapping gives setup.sh
# its inputs; later steps get PATH and variables from $GITHUB_PATH and $GITHUB_ENV), for two
# jobs on fresh "runners" sharing the auth registry as cache: a push build runs the step and
# pushes it; a pull-request build gets read mode and runs nothing.
github_action() {
    # Each failed expectation returns at once (check runs this in an `if`, where set -e is off).
    local action=$root/.github/actions/setup-gantry repo job dir out
    repo=$GANTRY_TEST_AUTH_REGISTRY/gantry-dist-action-$$/cache
    # Every input action.yml declares reaches setup.sh as INPUT_<NAME>.
    local name inputs
    inputs=$(sed -n '/^inputs:/,/^runs:/s/^  \([a-z-]*\):$/\1/p' "$action/action.yml")
    [[ -n $inputs ]] || { fail "no inputs found in action.yml"; return 1; }
    for name in $inputs; do
        local var=INPUT_$(tr 'a-z-' 'A-Z_' <<<"$name")
        grep -qF "$var: \${{ inputs.$name }}" "$action/action.yml" || { fail "input $name: $var does not reach setup.sh"; return 1; }
    done
    cat >"$work/action.graphql" <<GRAPHQL
{ container { from(address: "$busybox") {
    withExec(args: ["sh", "-c", "echo built once for every runner $$"]) { stdout } } } }
GRAPHQL
    for job in push pull_request; do
        dir=$work/gh-$job
        mkdir -p "$dir/tmp"
        : >"$dir/path"
        : >"$dir/env"
        out=$(env -i PATH="$PATH" HOME="$dir" DOCKER_CONFIG="$dir/docker" RUNNER_TEMP="$dir/tmp" \
            GITHUB_PATH="$dir/path" GITHUB_ENV="$dir/env" GITHUB_ACTION_PATH="$action" EVENT_NAME=$job \
            INPUT_VERSION= INPUT_ARCHIVE_URL="file://$archive" INPUT_CACHE="$repo" INPUT_CACHE_MODE= \
            INPUT_REGISTRY_USERNAME="$GANTRY_TEST_AUTH_REGISTRY_USER" \
            INPUT_REGISTRY_PASSWORD="$GANTRY_TEST_AUTH_REGISTRY_PASSWORD" INPUT_CACHE_KEY= \
            bash "$action/setup.sh" 2>&1) || { fail "$out"; return 1; }
        echo "$out"
        [[ $(cat "$dir/path") == "$dir/tmp/gantry/bin" ]] || { fail "GITHUB_PATH: $(cat "$dir/path")"; return 1; }
        grep -qx "GANTRY_CACHE=$repo" "$dir/env" || { fail "GITHUB_ENV: $(cat "$dir/env")"; return 1; }
        [[ $out != *"$GANTRY_TEST_AUTH_REGISTRY_PASSWORD"* ]] || { fail "the password was printed"; return 1; }
        # The job's next step, with what the action exported (KEY=VALUE lines, no spaces).
        # shellcheck disable=SC2046
        out=$(env -i PATH="$(cat "$dir/path"):$PATH" HOME="$dir" DOCKER_CONFIG="$dir/docker" \
            GANTRY_STATE_DIR="$dir/state" GANTRY_SOCKET="$dir/engine.sock" $(cat "$dir/env") \
            gantry query --in-process --progress=plain "$work/action.graphql" 2>&1) || { fail "$out"; return 1; }
        echo "$out"
        contains "$out" "built once for every runner $$" || return 1
    done
    grep -qx GANTRY_CACHE_MODE=readwrite "$work/gh-push/env" || { fail "push: $(cat "$work/gh-push/env")"; return 1; }
    grep -qx GANTRY_CACHE_MODE=read "$work/gh-pull_request/env" || { fail "pull_request: $(cat "$work/gh-pull_request/env")"; return 1; }
    contains "$out" "[cached] exec sh -c echo built once for every runner" || return 1
}

check "SHA256SUMS verifies every file" sums_verify
check "archive holds gantry, README, CHANGELOG, owned by 0/0" archive_layout
check "binary is a static x86-64 executable" binary_is_static
check "install.sh ARCHIVE --bin-dir installs a working gantry" install_by_path
check "install.sh with no archive picks this machine's archive beside itself" install_from_beside_itself
check "install.sh installs from a file:// URL" install_by_url
check "install.sh as a user installs into ~/.local/bin" install_default_dir_for_a_user
check "install.sh refuses a damaged archive" refuses_damaged_archive
check "install.sh refuses an archive without SHA256SUMS (and takes --sha256)" refuses_without_sums
check "install.sh refuses a wrong --sha256" refuses_wrong_sha256_option
check "the installed gantry runs a pipeline, then serves it from the cache" pipeline
check "the image builds FROM scratch and says its version" image_builds_and_runs
check "the image runs a pipeline against the host's Docker daemon" image_runs_a_pipeline
check "Python wheel installs and reports the version; sdist is complete" python_packages
check "npm tarball installs offline and exports VERSION" npm_package
check "Composer archive installs offline and has Gantry\\Version::VERSION" composer_package
check "Go SDK carries the version" go_module_version
check "the setup-gantry GitHub action installs gantry and shares its cache between jobs" github_action

echo "dist: $passed passed, $failed failed"
((failed == 0))
