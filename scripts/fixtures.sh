#!/usr/bin/env bash
# Build gantry's test fixture images locally (no Docker Hub) and keep them in the local
# registry (127.0.0.1:5000) and in the local Docker daemon. Called by scripts/setup.sh,
# which starts the daemon and the registries first. Quiet when everything is in place.
#
#   127.0.0.1:5000/gantry-fixtures/busybox:latest  Debian's busybox-static with all applet
#       links, /etc/passwd with root and nonroot (uid/gid 65532), /tmp (1777), CMD ["sh"].
#   127.0.0.1:5000/gantry-fixtures/golang:latest   busybox + the host's Go toolchain in
#       /usr/local/go; GOPATH=/go, GOTOOLCHAIN=local, GOPROXY=off, CGO_ENABLED=0.
#       The Go build cache for the standard library is pre-warmed (as root).
#   127.0.0.1:5000/gantry-fixtures/static:nonroot  scratch-like image for static binaries:
#       /etc/passwd, /etc/group, /tmp, /home/nonroot; USER 65532 (stands in for distroless).
#   127.0.0.1:5000/gantry-fixtures/node:latest     busybox + the host's Node.js and npm (for the
#       cookbook, docs/cookbook/node.md), with the shared libraries they load.
#   127.0.0.1:5000/gantry-fixtures/python:latest   busybox + the host's Python 3 and its standard
#       library, no pip (for docs/cookbook/python.md), with the shared libraries they load.
#   127.0.0.1:5000/gantry-fixtures/rust:latest     busybox + rustc and cargo of the toolchain that
#       rust-toolchain.toml pins, for the musl target only, linking with rust-lld (no C
#       compiler: crates with build scripts, proc macros or C code do not build); for
#       docs/cookbook/rust.md. CARGO_BUILD_TARGET=x86_64-unknown-linux-musl.
#   127.0.0.1:5001/gantry-fixtures/busybox:latest  the busybox image again, in the registry
#       that needs basic auth (credentials in scripts/test-registry.env).
#
# Every image has the labels dev.gantry.fixture=1 and dev.gantry.fixture.rev=<fingerprint>;
# an image whose fingerprint (inputs + FIXTURE_REV) changed is rebuilt. Bump FIXTURE_REV
# after changing how an image is built.
set -euo pipefail

FIXTURE_REV=1

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/test-registry.env
source "$SCRIPT_DIR/test-registry.env"

NS=$GANTRY_TEST_FIXTURES # 127.0.0.1:5000/gantry-fixtures
REG=$GANTRY_TEST_REGISTRY
AUTH_REG=$GANTRY_TEST_AUTH_REGISTRY
AUTH=("$GANTRY_TEST_AUTH_REGISTRY_USER:$GANTRY_TEST_AUTH_REGISTRY_PASSWORD")
BUSYBOX=${BUSYBOX:-/bin/busybox} # from Debian's busybox-static
MANIFEST_V2=application/vnd.docker.distribution.manifest.v2+json
BASE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { printf 'fixtures: %s\n' "$*"; }
die() { printf 'fixtures: ERROR: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/gantry-fixtures.XXXXXX") # scratch dir, removed on exit
trap 'rm -rf "$WORK"' EXIT

# run_logged DESCRIPTION CMD...: run CMD quietly; on failure show its output and stop.
run_logged() {
    local what=$1 out
    shift
    out=$WORK/cmd.log
    if ! "$@" >"$out" 2>&1; then
        cat "$out" >&2
        die "$what failed"
    fi
}

[[ -x $BUSYBOX ]] || die "$BUSYBOX not found (install Debian's busybox-static)"

# ---------------------------------------------------------------- registry / daemon state
# registry_digest HOST REPO TAG [curl args]: manifest digest in the registry, or empty.
registry_digest() {
    local host=$1 repo=$2 tag=$3
    shift 3
    curl -fsS --max-time 10 -o /dev/null -D - -H "Accept: $MANIFEST_V2" "$@" \
        "http://$host/v2/$repo/manifests/$tag" 2>/dev/null |
        tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }' || true
}

# registry_label REPO TAG: the fingerprint label of REPO:TAG in the plain registry (read
# from the image config blob, without pulling the layers), or empty.
registry_label() {
    local config
    config=$(curl -fsS --max-time 10 -H "Accept: $MANIFEST_V2" "http://$REG/v2/$1/manifests/$2" 2>/dev/null |
        tr -d ' \n\t' | grep -o '"config":{[^}]*}' | grep -o 'sha256:[0-9a-f]*') || return 0
    curl -fsSL --max-time 10 "http://$REG/v2/$1/blobs/$config" 2>/dev/null |
        grep -o '"dev\.gantry\.fixture\.rev":"[^"]*"' | head -n 1 | cut -d'"' -f4 || true
}

local_label() { # local_label REF: fingerprint label of the local image, or empty
    docker image inspect -f '{{index .Config.Labels "dev.gantry.fixture.rev"}}' "$1" 2>/dev/null || true
}

local_has_digest() { # local_has_digest REF DIGEST: the local REF is REF's repository@DIGEST
    docker image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' "$1" 2>/dev/null |
        grep -qxF "${1%:*}@$2"
}

drop_old() { # drop_old REF OLD_ID: remove the replaced image if nothing else uses it
    if [[ -n $2 && $2 != "$(docker image inspect -f '{{.Id}}' "$1")" ]]; then
        docker rmi "$2" >/dev/null 2>&1 || true
    fi
}

# ensure IMAGE TAG FINGERPRINT BUILDER: make NS/IMAGE:TAG current in the daemon and the
# registry. BUILDER REF FINGERPRINT builds and verifies the image in the local daemon.
ensure() {
    local name=$1 tag=$2 fp=$3 builder=$4
    local repo=${NS#*/}/$name ref=$NS/$name:$tag digest old_id
    old_id=$(docker image inspect -f '{{.Id}}' "$ref" 2>/dev/null || true)
    digest=$(registry_digest "$REG" "$repo" "$tag")
    if [[ $(local_label "$ref") == "$fp" ]]; then
        # Current locally: done if the registry holds the same image, else push it.
        if [[ -n $digest ]] && local_has_digest "$ref" "$digest"; then
            return 0
        fi
    elif [[ -n $digest && $(registry_label "$repo" "$tag") == "$fp" ]]; then
        say "pulling $ref"
        run_logged "docker pull $ref" docker pull "$ref"
        [[ $(local_label "$ref") == "$fp" ]] || die "pulled $ref but its label is not $fp"
        drop_old "$ref" "$old_id"
        return 0
    else
        if [[ -n $digest ]]; then say "$ref in the registry is out of date"; fi
        say "building $ref"
        "$builder" "$ref" "$fp"
        drop_old "$ref" "$old_id"
    fi
    say "pushing $ref"
    run_logged "docker push $ref" docker push "$ref"
}

# ---------------------------------------------------------------- root filesystems
# write_users ROOT SHELL: /etc/passwd and /etc/group with root, nobody and nonroot (65532),
# /tmp (1777), /root and /home/nonroot.
write_users() {
    local root=$1 shell=$2
    mkdir -p "$root/etc" "$root/tmp" "$root/root" "$root/home/nonroot"
    cat >"$root/etc/passwd" <<EOF
root:x:0:0:root:/root:$shell
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
    cat >"$root/etc/group" <<EOF
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
    chmod 1777 "$root/tmp"
    chmod 0700 "$root/root"
    chown 65532:65532 "$root/home/nonroot"
}

# busybox_root ROOT: busybox, a link for every applet, users.
busybox_root() {
    local root=$1 applet
    mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/usr/local/bin" "$root/var/tmp"
    chmod 1777 "$root/var/tmp"
    install -m 0755 "$BUSYBOX" "$root/bin/busybox"
    while read -r applet; do
        [[ -n $applet && ! -e $root/$applet && ! -L $root/$applet ]] || continue
        mkdir -p "$root/$(dirname "$applet")"
        ln -s /bin/busybox "$root/$applet"
    done < <("$BUSYBOX" --list-full)
    write_users "$root" /bin/sh
}

# import ROOT REF FINGERPRINT CHANGE...: tar ROOT and docker-import it as REF.
import() {
    local root=$1 ref=$2 fp=$3
    shift 3
    local changes=(--change 'LABEL dev.gantry.fixture=1' --change "LABEL dev.gantry.fixture.rev=$fp")
    local c
    for c in "$@"; do changes+=(--change "$c"); done
    tar --numeric-owner --sort=name -C "$root" -cf - . |
        docker import "${changes[@]}" - "$ref" >/dev/null
}

# ---------------------------------------------------------------- images
build_busybox() {
    local ref=$1 fp=$2 root
    root=$WORK/busybox
    rm -rf "$root"
    busybox_root "$root"
    import "$root" "$ref" "$fp" "ENV PATH=$BASE_PATH" 'CMD ["sh"]'
    rm -rf "$root"
    local out
    out=$(docker run --rm "$ref" sh -c 'echo "$(id -u):$(stat -c %a /tmp)"') || die "$ref does not run"
    [[ $out == 0:1777 ]] || die "$ref: unexpected output '$out', want 0:1777"
    out=$(docker run --rm --user nonroot "$ref" id -u) || die "$ref: --user nonroot failed"
    [[ $out == 65532 ]] || die "$ref: nonroot has uid '$out', want 65532"
}

GO=$(command -v go || true)
[[ -n $GO ]] || { [[ -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go; } || true

build_golang() {
    local ref=$1 fp=$2 root goroot entry
    goroot=$("$GO" env GOROOT)
    goroot=$(readlink -f "$goroot")
    root=$WORK/golang
    rm -rf "$root"
    busybox_root "$root"
    mkdir -p "$root/usr/local/go" "$root/go/src" "$root/go/bin"
    chmod -R 1777 "$root/go"
    # Everything but tests, docs, API lists and test data; -h follows symlinks (Debian's
    # golang-go GOROOT is made of them).
    local entries=()
    for entry in "$goroot"/*; do
        case ${entry##*/} in test | doc | api) ;; *) entries+=("${entry##*/}") ;; esac
    done
    tar -h -C "$goroot" --exclude=testdata -cf - "${entries[@]}" |
        tar -C "$root/usr/local/go" --no-same-owner -xf -
    local go_env=(
        "ENV PATH=/go/bin:/usr/local/go/bin:$BASE_PATH"
        'ENV GOPATH=/go'
        'ENV GOTOOLCHAIN=local'
        'ENV GOPROXY=off'
        'ENV CGO_ENABLED=0'
    )
    local base=$ref-unwarmed
    import "$root" "$base" "$fp" "${go_env[@]}" 'WORKDIR /go' 'CMD ["sh"]'
    rm -rf "$root"

    # Pre-warm the build cache (/root/.cache/go-build) with the standard library, so the
    # first `go build`/`go test` in a test pipeline does not compile it from scratch.
    local cid
    cid=$(docker create "$base" sh -c '
        set -e
        go build std
        mkdir -p /tmp/warm && cd /tmp/warm
        printf "module warm\n\ngo 1.21\n" >go.mod
        printf "package warm\n\nfunc F() int { return 1 }\n" >warm.go
        printf "package warm\n\nimport \"testing\"\n\nfunc TestF(t *testing.T) { _ = F() }\n" >warm_test.go
        go vet ./... && go test ./... >/dev/null
        cd / && rm -rf /tmp/warm /tmp/go-build* && go clean -testcache')
    if ! docker start -a "$cid" >"$WORK/warm.log" 2>&1; then
        cat "$WORK/warm.log" >&2
        docker rm -f "$cid" >/dev/null 2>&1 || true
        die "warming the Go build cache in $base failed"
    fi
    docker commit --change 'CMD ["sh"]' "$cid" "$ref" >/dev/null
    docker rm "$cid" >/dev/null
    docker rmi "$base" >/dev/null

    # Verify: the toolchain runs, and builds and tests a module with no outside deps.
    docker run --rm "$ref" go version >/dev/null || die "$ref: go version failed"
    local out
    out=$(docker run --rm "$ref" sh -c '
        set -e
        mkdir -p /tmp/hello && cd /tmp/hello
        printf "module example.com/hello\n\ngo 1.21\n" >go.mod
        printf "package main\n\nimport \"fmt\"\n\nfunc Greeting() string { return \"hello\" }\n\nfunc main() { fmt.Println(Greeting()) }\n" >main.go
        printf "package main\n\nimport \"testing\"\n\nfunc TestGreeting(t *testing.T) {\n\tif Greeting() != \"hello\" {\n\t\tt.Fatal(Greeting())\n\t}\n}\n" >main_test.go
        go build -o /tmp/hello/hello . && ./hello && go test ./... 2>&1' 2>&1) ||
        { printf '%s\n' "$out" >&2; die "$ref: building/testing a hello module failed"; }
    [[ $out == hello$'\n'ok* ]] || { printf '%s\n' "$out" >&2; die "$ref: unexpected hello output"; }
}

build_static() {
    local ref=$1 fp=$2 root
    root=$WORK/static
    rm -rf "$root"
    write_users "$root" /sbin/nologin
    import "$root" "$ref" "$fp" 'USER 65532' "ENV PATH=$BASE_PATH"
    rm -rf "$root"
    # Verify with a static Go binary when a Go toolchain is at hand.
    if [[ -n $GO ]]; then
        local dir out
        dir=$WORK/static-check
        mkdir -p "$dir"
        printf 'module check\n\ngo 1.21\n' >"$dir/go.mod"
        printf 'package main\n\nimport (\n\t"fmt"\n\t"os"\n)\n\nfunc main() { fmt.Println(os.Getuid()) }\n' >"$dir/main.go"
        (cd "$dir" && CGO_ENABLED=0 GOFLAGS='' GOTOOLCHAIN=local "$GO" build -o check .) ||
            die "building a static Go binary for checking $ref failed"
        local cid
        cid=$(docker create "$ref" /check)
        docker cp "$dir/check" "$cid:/check" >/dev/null
        out=$(docker start -a "$cid" 2>&1) || { docker rm "$cid" >/dev/null; die "$ref: running a static binary failed: $out"; }
        docker rm "$cid" >/dev/null
        rm -rf "$dir"
        [[ $out == 65532 ]] || die "$ref: static binary ran as uid '$out', want 65532"
    fi
}

# with_libraries ROOT FILE...: copy into ROOT every shared library FILE... load (ldd), and the
# dynamic loader, at the same paths as on the host.
with_libraries() {
    local root=$1 lib
    shift
    while read -r lib; do
        [[ -e $root$lib ]] && continue
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done < <(ldd "$@" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\/.*[^:]$/ { print $1 }' | sort -u)
    # Debian's /lib and /lib64 are links into /usr; the loader's path must resolve.
    [[ -e $root/lib64/ld-linux-x86-64.so.2 ]] || {
        mkdir -p "$root/lib64"
        cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
    }
}

NODE=$(command -v node || true)
PYTHON3=$(command -v python3.11 || true)
[[ -x /usr/bin/python3.11 ]] && PYTHON3=/usr/bin/python3.11

build_node() {
    local ref=$1 fp=$2 root npm
    root=$WORK/node
    rm -rf "$root"
    busybox_root "$root"
    npm=$(dirname "$(readlink -f "$(command -v npm)")")/.. # .../node_modules/npm
    mkdir -p "$root/usr/local/bin" "$root/usr/local/lib/node_modules"
    install -m 0755 "$(readlink -f "$NODE")" "$root/usr/local/bin/node"
    cp -a "$(readlink -f "$npm")" "$root/usr/local/lib/node_modules/npm"
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
    ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
    with_libraries "$root" "$(readlink -f "$NODE")"
    import "$root" "$ref" "$fp" "ENV PATH=$BASE_PATH" 'ENV NPM_CONFIG_UPDATE_NOTIFIER=false' 'CMD ["node"]'
    rm -rf "$root"
    local out
    out=$(docker run --rm "$ref" sh -c 'node -e "console.log(1 + 1)" && npm --version') || die "$ref does not run node/npm"
    [[ $out == 2$'\n'* ]] || die "$ref: unexpected output '$out'"
}

build_python() {
    local ref=$1 fp=$2 root stdlib
    root=$WORK/python
    rm -rf "$root"
    busybox_root "$root"
    stdlib=/usr/lib/python3.11
    mkdir -p "$root/usr/bin" "$root$stdlib"
    install -m 0755 "$PYTHON3" "$root/usr/bin/python3.11"
    ln -s python3.11 "$root/usr/bin/python3"
    ln -s python3.11 "$root/usr/bin/python"
    tar -C "$stdlib" --exclude=./test --exclude=./idlelib --exclude=./tkinter --exclude=./turtledemo \
        --exclude=__pycache__ --exclude=./config-3.11-x86_64-linux-gnu -cf - . | tar -C "$root$stdlib" -xf -
    with_libraries "$root" "$PYTHON3" "$stdlib"/lib-dynload/*.so
    import "$root" "$ref" "$fp" "ENV PATH=$BASE_PATH" 'ENV PYTHONDONTWRITEBYTECODE=1' 'CMD ["python3"]'
    rm -rf "$root"
    local out
    out=$(docker run --rm "$ref" python3 -c 'import json, sqlite3, ssl, zipapp, unittest; print("ok")') ||
        die "$ref: python3 does not run or lacks standard modules"
    [[ $out == ok ]] || die "$ref: unexpected output '$out'"
}

# The toolchain rust-toolchain.toml pins, if rustup has it with the musl target.
RUST_TOOLCHAIN=
if command -v rustup >/dev/null; then
    RUST_TOOLCHAIN=$(cd "$SCRIPT_DIR/.." && rustc --print sysroot 2>/dev/null || true)
    [[ -d $RUST_TOOLCHAIN/lib/rustlib/x86_64-unknown-linux-musl/lib ]] || RUST_TOOLCHAIN=
fi

build_rust() {
    local ref=$1 fp=$2 root sysroot=$RUST_TOOLCHAIN dest=/usr/local/rust
    root=$WORK/rust
    rm -rf "$root"
    busybox_root "$root"
    mkdir -p "$root$dest/bin" "$root$dest/lib/rustlib/x86_64-unknown-linux-gnu" "$root$dest/lib/rustlib/x86_64-unknown-linux-musl"
    install -m 0755 "$sysroot/bin/rustc" "$sysroot/bin/cargo" "$root$dest/bin/"
    cp -a "$sysroot"/lib/*.so* "$root$dest/lib/"
    cp -a "$sysroot/lib/rustlib/x86_64-unknown-linux-gnu/bin" "$root$dest/lib/rustlib/x86_64-unknown-linux-gnu/"
    cp -a "$sysroot/lib/rustlib/x86_64-unknown-linux-musl/lib" "$root$dest/lib/rustlib/x86_64-unknown-linux-musl/"
    ln -s ../lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld "$root$dest/bin/rust-lld"
    with_libraries "$root" "$sysroot/bin/rustc" "$sysroot/bin/cargo" "$sysroot"/lib/*.so*
    mkdir -p "$root/usr/local/cargo" && chmod 1777 "$root/usr/local/cargo"
    import "$root" "$ref" "$fp" "ENV PATH=$dest/bin:$BASE_PATH" 'ENV CARGO_HOME=/usr/local/cargo' \
        'ENV CARGO_BUILD_TARGET=x86_64-unknown-linux-musl' \
        'ENV CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld' 'CMD ["sh"]'
    rm -rf "$root"
    local out
    out=$(docker run --rm "$ref" sh -c '
        set -e
        mkdir -p /tmp/hello/src && cd /tmp/hello
        printf "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n" >Cargo.toml
        printf "fn main() { println!(\"hello\"); }\n" >src/main.rs
        cargo run -q --offline 2>&1') || { printf '%s\n' "$out" >&2; die "$ref: cargo run of a hello crate failed"; }
    [[ $out == hello ]] || die "$ref: unexpected output '$out'"
}

# ---------------------------------------------------------------- main
busybox_sum=$(sha256sum "$BUSYBOX" | cut -c1-16)
ensure busybox latest "r$FIXTURE_REV-busybox-$busybox_sum" build_busybox
ensure static nonroot "r$FIXTURE_REV-static" build_static
if [[ -n $GO ]]; then
    go_version=$("$GO" env GOVERSION)
    ensure golang latest "r$FIXTURE_REV-busybox-$busybox_sum-$go_version" build_golang
else
    die "no Go toolchain found (go on PATH or /usr/local/go/bin/go); needed for $NS/golang:latest"
fi

# The cookbook's Node.js and Python images, from the host's own (skipped with a note when the
# host has none: the cookbook's docs-test then says which image is missing).
if [[ -n $NODE ]] && command -v npm >/dev/null; then
    ensure node latest "r$FIXTURE_REV-busybox-$busybox_sum-node-$("$NODE" --version)-npm-$(npm --version)" build_node
else
    say "no node/npm on this machine: $NS/node:latest not built"
fi
if [[ -n $PYTHON3 ]]; then
    ensure python latest "r$FIXTURE_REV-busybox-$busybox_sum-$("$PYTHON3" -c 'import platform; print(platform.python_version())')" build_python
else
    say "no python3.11 on this machine: $NS/python:latest not built"
fi

if [[ -n $RUST_TOOLCHAIN ]]; then
    ensure rust latest "r$FIXTURE_REV-busybox-$busybox_sum-$(cd "$SCRIPT_DIR/.." && rustc --version | tr -c 'a-z0-9.\n-' '_')" build_rust
else
    say "no Rust toolchain with the x86_64-unknown-linux-musl target: $NS/rust:latest not built"
fi

# The busybox image also in the registry with basic auth, for pulls that need credentials.
auth_repo=${NS#*/}/busybox
want=$(registry_digest "$REG" "$auth_repo" latest)
have=$(registry_digest "$AUTH_REG" "$auth_repo" latest -u "${AUTH[0]}")
if [[ -z $have || $have != "$want" ]]; then
    auth_ref=$AUTH_REG/$auth_repo:latest
    say "pushing $auth_ref"
    docker tag "$NS/busybox:latest" "$auth_ref"
    # Log in with a throw-away client config so ~/.docker/config.json is left alone.
    cfg=$WORK/docker-config
    mkdir -p "$cfg"
    printf '%s' "$GANTRY_TEST_AUTH_REGISTRY_PASSWORD" |
        run_logged "docker login $AUTH_REG" docker --config "$cfg" login -u "$GANTRY_TEST_AUTH_REGISTRY_USER" --password-stdin "$AUTH_REG"
    run_logged "docker push $auth_ref" docker --config "$cfg" push "$auth_ref"
    docker rmi "$auth_ref" >/dev/null
fi
