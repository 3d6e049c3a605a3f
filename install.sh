#!/bin/sh
# Install gantry from a release archive, after checking its SHA-256 sum.
#
#   sh install.sh [--bin-dir DIR] [--sha256 HEX] [ARCHIVE]
#
# ARCHIVE is a release archive (gantry-VERSION-TARGET.tar.gz, as `make dist` writes them)
# given as a path or a URL (https://, file://; fetched with curl). Without ARCHIVE, the one
# archive for this machine's architecture beside this script is used, so `sh dist/install.sh`
# works in an unpacked release folder.
#
# The sum comes from --sha256, else from the SHA256SUMS file beside the archive (same folder
# or same URL folder). An archive whose sum is missing or differs is not installed.
#
# The binary goes to --bin-dir, else $GANTRY_INSTALL_DIR, else /usr/local/bin when run as
# root, else ~/.local/bin. It is checked to run (`gantry version`) before it replaces any
# gantry already there. POSIX sh; needs tar, gzip and sha256sum (or shasum).
set -eu

say() { printf 'install.sh: %s\n' "$*" >&2; }
die() {
    printf 'install.sh: error: %s\n' "$*" >&2
    exit 1
}
usage() {
    sed -n '2,17s/^# \{0,1\}//p' "$0" >&2
    exit "${1:-2}"
}

bin_dir=${GANTRY_INSTALL_DIR:-}
want_sum=
archive=
while [ $# -gt 0 ]; do
    case $1 in
    --bin-dir) [ $# -ge 2 ] || die "--bin-dir needs a folder"; bin_dir=$2; shift 2 ;;
    --bin-dir=*) bin_dir=${1#--bin-dir=}; shift ;;
    --sha256) [ $# -ge 2 ] || die "--sha256 needs a hex sum"; want_sum=$2; shift 2 ;;
    --sha256=*) want_sum=${1#--sha256=}; shift ;;
    -h | --help) usage 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$archive" ] || die "more than one archive given: $archive and $1"; archive=$1; shift ;;
    esac
done

if [ -z "$bin_dir" ]; then
    if [ "$(id -u)" -eq 0 ]; then bin_dir=/usr/local/bin; else bin_dir=${HOME:?HOME is not set}/.local/bin; fi
fi

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d' ' -f1
    else
        die "neither sha256sum nor shasum is installed; one is needed to check the archive"
    fi
}

work=$(mktemp -d "${TMPDIR:-/tmp}/gantry-install.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

# Find the archive for this machine beside the script when none is named.
if [ -z "$archive" ]; then
    case $(uname -m) in
    x86_64 | amd64) arch=x86_64 ;;
    aarch64 | arm64) arch=aarch64 ;;
    *) die "no gantry build for this machine's architecture ($(uname -m)); build from source: cargo install --path server/cli" ;;
    esac
    [ "$(uname -s)" = Linux ] || die "release archives are for Linux; on $(uname -s) build from source: cargo install --path server/cli"
    here=$(cd "$(dirname "$0")" && pwd)
    found=
    for candidate in "$here"/gantry-*-"$arch"-unknown-linux-musl.tar.gz; do
        [ -f "$candidate" ] || continue
        [ -z "$found" ] || die "several archives for $arch in $here; name one: sh install.sh ARCHIVE"
        found=$candidate
    done
    [ -n "$found" ] || die "no gantry-*-$arch-unknown-linux-musl.tar.gz beside $0; name the archive: sh install.sh ARCHIVE"
    archive=$found
fi

name=$(basename "$archive")
case $name in
gantry-*.tar.gz) ;;
*) die "$name is not a gantry release archive (gantry-VERSION-TARGET.tar.gz)" ;;
esac

# Fetch (for URLs) or locate the archive and its SHA256SUMS.
case $archive in
http://* | https://* | file://*)
    command -v curl >/dev/null 2>&1 || die "curl is needed to download $archive"
    say "downloading $archive"
    curl -fsSL -o "$work/$name" "$archive" || die "could not download $archive"
    local_archive=$work/$name
    if [ -z "$want_sum" ]; then
        sums_url=${archive%/*}/SHA256SUMS
        curl -fsSL -o "$work/SHA256SUMS" "$sums_url" ||
            die "could not download $sums_url to check the archive; pass the sum with --sha256 HEX"
        sums=$work/SHA256SUMS
    fi
    ;;
*)
    [ -f "$archive" ] || die "$archive: no such file"
    local_archive=$archive
    sums=$(dirname "$archive")/SHA256SUMS
    if [ -z "$want_sum" ] && [ ! -f "$sums" ]; then
        die "no SHA256SUMS beside $archive to check it against; pass the sum with --sha256 HEX"
    fi
    ;;
esac

if [ -z "$want_sum" ]; then
    # sha256sum's format: HEX, two spaces (or space and '*'), file name.
    want_sum=$(awk -v file="$name" '$2 == file || $2 == "*" file { print $1; exit }' "$sums")
    [ -n "$want_sum" ] || die "SHA256SUMS has no line for $name"
fi
have_sum=$(sha256_of "$local_archive")
if [ "$have_sum" != "$(printf '%s' "$want_sum" | tr 'A-F' 'a-f')" ]; then
    die "SHA-256 mismatch for $name: expected $want_sum, got $have_sum; the archive is damaged or not the released one, so nothing was installed"
fi
say "checked $name (sha256 $have_sum)"

tar -xzf "$local_archive" -C "$work" || die "could not unpack $name"
dir=$work/${name%.tar.gz}
[ -f "$dir/gantry" ] || die "$name has no ${name%.tar.gz}/gantry"
version=$("$dir/gantry" version 2>&1) || die "the unpacked gantry does not run on this machine: $version"

mkdir -p "$bin_dir" || die "cannot create $bin_dir (choose another with --bin-dir DIR)"
# Copy next to the destination, then rename: a running gantry is never overwritten in place.
cp "$dir/gantry" "$bin_dir/.gantry.install.$$" || die "cannot write to $bin_dir (choose another with --bin-dir DIR, or run as root)"
chmod 0755 "$bin_dir/.gantry.install.$$"
mv -f "$bin_dir/.gantry.install.$$" "$bin_dir/gantry"
say "installed $version to $bin_dir/gantry"

case ":${PATH:-}:" in
*":$bin_dir:"*) ;;
*) say "$bin_dir is not on PATH; add it, e.g. export PATH=\"$bin_dir:\$PATH\"" ;;
esac
