#!/usr/bin/env bash
# Build the gantry container image (Dockerfile: FROM scratch) from a release archive:
#
#   scripts/image.sh [ARCHIVE]     (make image; default: dist/gantry-VERSION-x86_64-unknown-linux-musl.tar.gz)
#
# The archive is checked and unpacked by install.sh (SHA256SUMS beside it), into the image's
# root filesystem. Tags the image gantry:VERSION (IMAGE overrides the name). Uses Docker's
# classic builder, which needs no BuildKit and pulls nothing for FROM scratch.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=$(bash "$root/scripts/version.sh")
archive=${1:-$root/dist/gantry-$version-x86_64-unknown-linux-musl.tar.gz}
image=${IMAGE:-gantry:$version}

[[ -f $archive ]] || { echo "image: no $archive (run make dist first)" >&2; exit 1; }
context=$(mktemp -d "${TMPDIR:-/tmp}/gantry-image.XXXXXX")
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/rootfs/tmp" "$context/rootfs/run" "$context/rootfs/var/lib/gantry"
chmod 1777 "$context/rootfs/tmp"
sh "$root/install.sh" --bin-dir "$context/rootfs/usr/local/bin" "$archive" 2>&1 | sed 's/^/image: /'
# CA certificates for HTTPS sources (Query.http, git over https), from the build machine's
# ca-certificates package; without them those sources fail naming the missing trust store.
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    mkdir -p "$context/rootfs/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$context/rootfs/etc/ssl/certs/"
else
    echo "image: no /etc/ssl/certs/ca-certificates.crt here (apt-get install ca-certificates); the image will have no CA certificates" >&2
fi
cp "$root/Dockerfile" "$context/Dockerfile"
DOCKER_BUILDKIT=0 docker build --quiet --build-arg "VERSION=$version" -t "$image" "$context" >/dev/null
echo "image: built $image ($(docker image inspect -f '{{.Size}}' "$image" | numfmt --to=iec))"
