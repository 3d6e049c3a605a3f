#!/usr/bin/env bash
# Build gantry's release files into dist/ (run by `make dist`; see docs/releasing.md):
#
#   dist/gantry-VERSION-TARGET.tar.gz   a static Linux binary (musl) with README and
#                                       CHANGELOG, one per target in DIST_TARGETS
#   dist/install.sh                     the installer (checks the sum, see install.sh)
#   dist/sdk/                           the SDK packages (scripts/dist-sdks.sh), unless
#                                       DIST_SDKS=0
#   dist/SHA256SUMS                     sha256sum lines for every file above
#
# DIST_TARGETS defaults to "x86_64-unknown-linux-musl aarch64-unknown-linux-musl". A target
# whose Rust standard library or C cross compiler is missing is skipped with a line saying
# which and how to install it (scripts/setup.sh installs both); DIST_REQUIRE_ALL=1 turns a
# skip into a failure. Archives are reproducible: fixed owners, sorted names, mtime of the
# last commit (SOURCE_DATE_EPOCH when set), gzip without a timestamp.
#
# DIST_BINARIES_ONLY=1 only compiles the release binaries into target/ (what `make test`
# does early, at low priority, so that dist-test later packs without compiling).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${DIST_DIR:-$root/dist}
targets=${DIST_TARGETS:-x86_64-unknown-linux-musl aarch64-unknown-linux-musl}
cargo=${CARGO:-cargo}

say() { printf 'dist: %s\n' "$*"; }
die() { printf 'dist: error: %s\n' "$*" >&2; exit 1; }

version=$(bash scripts/version.sh)
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}

binaries_only=${DIST_BINARIES_ONLY:-0}
if [[ $binaries_only != 1 ]]; then
    mkdir -p "$out"
    # Only what this run writes: a stale archive of another version must not be listed.
    rm -f "$out"/gantry-*.tar.gz "$out/SHA256SUMS" "$out/install.sh"
fi

installed_targets=$(rustup target list --installed 2>/dev/null || true)

# cross_cc TARGET: the C compiler for TARGET's build scripts (psm and ring compile C and
# assembly): musl-gcc (musl-tools) for x86_64, the GNU cross compiler for aarch64.
cross_cc() {
    case $1 in
    x86_64-*) echo musl-gcc ;;
    aarch64-*) echo aarch64-linux-gnu-gcc ;;
    *) die "unknown target $1" ;;
    esac
}

built=()
skipped=()
for target in $targets; do
    if ! grep -qx "$target" <<<"$installed_targets"; then
        say "skipping $target: its Rust standard library is not installed (rustup target add $target; make setup adds the x86_64 and aarch64 ones)"
        skipped+=("$target")
        continue
    fi
    cc=$(cross_cc "$target")
    env=()
    if [[ -n $cc ]]; then
        if ! command -v "$cc" >/dev/null; then
            say "skipping $target: no C compiler $cc for it (make setup installs it: musl-tools, gcc-aarch64-linux-gnu)"
            skipped+=("$target")
            continue
        fi
        env=("CC_${target//-/_}=$cc")
        # Rust links x86_64 musl binaries itself (self-contained, static); aarch64 needs the
        # cross toolchain as linker. musl-gcc as linker would make a dynamic binary.
        if [[ $target == aarch64-* ]]; then
            upper=$(tr 'a-z-' 'A-Z_' <<<"$target")
            env+=("CARGO_TARGET_${upper}_LINKER=$cc")
        fi
    fi
    say "building gantry $version for $target"
    env "${env[@]}" "$cargo" build --release --locked -p gantry --target "$target"
    binary=target/$target/release/gantry
    if readelf -lW "$binary" | grep -q 'program interpreter'; then
        die "$binary is dynamically linked; a release binary must be static"
    fi
    if [[ $binaries_only == 1 ]]; then
        say "built $binary"
        built+=("$target")
        continue
    fi

    name=gantry-$version-$target
    stage=$(mktemp -d "${TMPDIR:-/tmp}/gantry-dist.XXXXXX")
    mkdir "$stage/$name"
    install -m 0755 "$binary" "$stage/$name/gantry"
    install -m 0644 README.md CHANGELOG.md "$stage/$name/"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
        -C "$stage" -cf - "$name" | gzip -9n >"$out/$name.tar.gz"
    rm -rf "$stage"
    say "wrote ${out#"$root"/}/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1); binary $(du -h "$binary" | cut -f1))"
    built+=("$target")
done

((${#built[@]} > 0)) || die "no target could be built (skipped: ${skipped[*]})"
if ((${#skipped[@]} > 0)) && [[ ${DIST_REQUIRE_ALL:-0} == 1 ]]; then
    die "DIST_REQUIRE_ALL=1 and skipped: ${skipped[*]}"
fi
[[ $binaries_only == 1 ]] && exit 0
install -m 0755 install.sh "$out/install.sh"

if [[ ${DIST_SDKS:-1} == 1 ]]; then
    bash scripts/dist-sdks.sh "$out/sdk"
fi

(cd "$out" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum >SHA256SUMS)
say "wrote ${out#"$root"/}/SHA256SUMS ($(wc -l <"$out/SHA256SUMS") files); built: ${built[*]}${skipped[*]:+; skipped: ${skipped[*]}}"
