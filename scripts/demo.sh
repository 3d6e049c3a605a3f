#!/usr/bin/env bash
# `make demo`: runs examples/demo.graphql through `gantry query` twice on a
# fresh state directory and shows that the second run is served from cache:
# no step runs a container (counted from the engine's plain progress lines, so
# the count holds on either runtime).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/test-registry.env

gantry=${GANTRY_BIN:-target/release/gantry}
state=$(mktemp -d "${TMPDIR:-/tmp}/gantry-demo.XXXXXX")
trap 'rm -rf "$state"' EXIT
export GANTRY_STATE_DIR=$state/state GANTRY_SOCKET=$state/engine.sock

run() {
    local started took ran cached log=$state/$2.log
    started=$(date +%s%N)
    # The result on stdout; the progress lines on stderr, also kept in $log to count.
    { "$gantry" query --progress plain examples/demo.graphql \
        --var golang="$GANTRY_TEST_FIXTURES/golang:latest" \
        --var runtime="$GANTRY_TEST_FIXTURES/busybox:latest" 2>&1 1>&3 3>&- | tee "$log" >&2; } 3>&1
    took=$(( ($(date +%s%N) - started) / 1000000 ))
    ran=$(grep -c '\[done[^]]*\] exec ' "$log" || true)
    cached=$(grep -c '\[cached\] exec ' "$log" || true)
    echo "== $1: ${took} ms, steps run in a container: ${ran}, served from the cache: ${cached}"
}

echo "== first run (state: $GANTRY_STATE_DIR)"
run "first run" first
echo
echo "== second run: same pipeline, same state"
run "second run (cached)" second
