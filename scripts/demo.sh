#!/usr/bin/env bash
# `make demo`: runs examples/demo.graphql through `gantry query` twice on a
# fresh state directory and shows that the second run is served from cache
# (no container created, counted from Docker's events).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/test-registry.env

gantry=${GANTRY_BIN:-target/release/gantry}
state=$(mktemp -d "${TMPDIR:-/tmp}/gantry-demo.XXXXXX")
trap 'rm -rf "$state"' EXIT
export GANTRY_STATE_DIR=$state/state GANTRY_SOCKET=$state/engine.sock

run() {
    local since started took created
    since=$(date +%s.%N)
    started=$(date +%s%N)
    "$gantry" query examples/demo.graphql \
        --var golang="$GANTRY_TEST_FIXTURES/golang:latest" \
        --var runtime="$GANTRY_TEST_FIXTURES/busybox:latest"
    took=$(( ($(date +%s%N) - started) / 1000000 ))
    created=$(docker events --since "$since" --until "$(date +%s.%N)" \
        --filter type=container --filter event=create \
        --format "{{index .Actor.Attributes \"dev.gantry.managed\"}}" | grep -c true || true)
    echo "== $1: ${took} ms, containers created: ${created}"
}

echo "== first run (state: $GANTRY_STATE_DIR)"
run "first run"
echo
echo "== second run: same pipeline, same state"
run "second run (cached)"
