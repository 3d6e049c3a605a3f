#!/usr/bin/env bash
# Benchmark 3 as a user re-runs it from a shell: `gantry query` twice (load the
# source directory, then run test + build with its ID). Uses the engine on
# GANTRY_SOCKET when one answers. Usage: rerun.sh SRC_DIR GOLANG_IMAGE
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
gantry=${GANTRY_BIN:-$here/../../target/release/gantry}
src=$("$gantry" query "$here/source.graphql" --var path="$1")
src=${src#*\"id\": \"}
src=${src%%\"*}
exec "$gantry" query "$here/pipeline.graphql" --var golang="$2" --var src="$src"
