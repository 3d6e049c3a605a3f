#!/usr/bin/env bash
# `make bench`: builds gantry (release) and the load generator, then runs the
# benchmark suite (bench/bench.py), which writes bench/results/latest.{json,md}.
# Extra arguments go to bench.py: `bash bench/run.sh --quick` or `--only 2,4`.
# Needs what `make setup` provides: Docker, the local registry and its fixtures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/test-registry.env
export GANTRY_TEST_FIXTURES

echo "bench: cargo build --release -p gantry"
cargo build --release --locked -p gantry
export GANTRY_BIN=$PWD/target/release/gantry

echo "bench: building the load generator (Go, standard library only)"
mkdir -p target/bench
(cd bench/loadgen && GOTOOLCHAIN=local GOFLAGS=-mod=mod go build -o ../../target/bench/loadgen .)
export BENCH_LOADGEN=$PWD/target/bench/loadgen

# Benchmarks must not talk to an engine someone else left on the default socket.
unset GANTRY_SOCKET GANTRY_SESSION_PORT GANTRY_SESSION_TOKEN DAGGER_SESSION_PORT DAGGER_SESSION_TOKEN

exec python3 bench/bench.py "$@"
