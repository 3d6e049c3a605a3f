#!/usr/bin/env bash
# Runs Dagger's official SDKs (pinned to 0.21.9) unmodified against gantry: every scenario
# of every SDK under `gantry run -- CMD`, and `hello` of each SDK once more through
# `_EXPERIMENTAL_DAGGER_CLI_BIN=gantry` (the SDK starts `gantry session` itself), and the
# seed pipeline written as a Dagger module for the Python and TypeScript SDKs
# (python/module, typescript/module: dagger.json, @object_type/@object()) called
# unmodified through `gantry call` (scenario `module`, driven by ../module_call.py).
#
#   conformance-tests/dagger/run.sh [SCENARIO...]     (default: all, `module` last)
#
# Needs target/debug/gantry (or GANTRY_BIN), Docker and the test registries (`make setup`).
# Installs are cached in gitignored places: python/.venv, typescript/node_modules and
# Go's own module/build caches. The engine state (results, cache volumes) is kept in
# target/dagger-sdk-test/state so a second run is warm. Logs: target/dagger-sdk-test/logs.
# Last line: `dagger-sdks: N passed, M failed`; exit status 1 when M > 0.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
gantry=${GANTRY_BIN:-$root/target/debug/gantry}
out=$root/target/dagger-sdk-test
logs=$out/logs
mkdir -p "$logs" "$out/state"
rm -f "$logs"/*.log

# shellcheck disable=SC1091
set -a && source "$root/scripts/test-registry.env" && set +a
export GANTRY_STATE_DIR=$out/state-${GANTRY_RUNTIME:-auto}
# A fresh secret per run: the scenarios check that it never appears in output.
GANTRY_DAGGER_SECRET=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
export GANTRY_DAGGER_SECRET
unset DAGGER_SESSION_PORT DAGGER_SESSION_TOKEN GANTRY_SESSION_PORT GANTRY_SESSION_TOKEN
export NO_COLOR=1

die() { echo "dagger-sdk-test: $*" >&2; exit 1; }
[[ -x $gantry ]] || die "no gantry binary at $gantry (cargo build -p gantry)"

# --- installs (cached) ---------------------------------------------------------------
py=$here/python/.venv/bin/python
if [[ ! -x $py ]]; then
	python3 -m venv "$here/python/.venv" || die "python venv failed"
fi
if ! cmp -s "$here/python/requirements.txt" "$here/python/.venv/requirements.txt"; then
	echo "dagger-sdk-test: installing python/requirements.txt into python/.venv"
	"$py" -m pip install --disable-pip-version-check -q -r "$here/python/requirements.txt" ||
		die "pip install failed"
	cp "$here/python/requirements.txt" "$here/python/.venv/requirements.txt"
fi
if ! cmp -s "$here/typescript/package-lock.json" "$here/typescript/node_modules/.package-lock.json.installed"; then
	echo "dagger-sdk-test: npm ci in typescript/"
	(cd "$here/typescript" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
	cp "$here/typescript/package-lock.json" "$here/typescript/node_modules/.package-lock.json.installed"
fi
(cd "$here/go" && go mod download) || die "go mod download failed"

# --- scenarios -------------------------------------------------------------------------
scenarios=(hello host_cache_secret exec_error seed more_api services registry_service git docker_build)
modules=1
if (($# > 0)); then
	scenarios=()
	modules=0
	for name in "$@"; do
		if [[ $name == module ]]; then modules=1; else scenarios+=("$name"); fi
	done
fi
passed=0
failed=0
failures=()

# run NAME DIR CMD...: one scenario, its output in $logs/NAME.log.
run() {
	local name=$1 dir=$2
	shift 2
	local log start=$SECONDS
	log=$logs/$(tr -c 'a-zA-Z0-9_.\n-' '_' <<<"$name").log
	if (cd "$dir" && timeout 300 "$@") >"$log" 2>&1 </dev/null; then
		passed=$((passed + 1))
		printf '  ok    %-32s %3ss\n' "$name" $((SECONDS - start))
	else
		failed=$((failed + 1))
		failures+=("$name")
		printf '  FAIL  %-32s %3ss (log: %s)\n' "$name" $((SECONDS - start)) "${log#"$root"/}"
		tail -n 20 "$log" | sed 's/^/        | /'
	fi
	if grep -qF -- "$GANTRY_DAGGER_SECRET" "$log"; then
		failed=$((failed + 1))
		failures+=("$name (secret leaked)")
		echo "  FAIL  $name: the secret's value appears in its output"
	fi
}

for scenario in "${scenarios[@]}"; do
	run "python/$scenario" "$here/python" "$gantry" run -- "$py" "$scenario.py"
	run "typescript/$scenario" "$here/typescript" "$gantry" run -- node "$scenario.mjs"
	run "go/$scenario" "$here/go" "$gantry" run -- go run "./$scenario"
done
if [[ " ${scenarios[*]} " == *" hello "* ]]; then
	# As the issue spells it: `_EXPERIMENTAL_DAGGER_CLI_BIN=gantry`, found on PATH.
	cli=(env PATH="$(dirname "$gantry"):$PATH" _EXPERIMENTAL_DAGGER_CLI_BIN="$(basename "$gantry")")
	run "python/hello (cli bin)" "$here/python" "${cli[@]}" "$py" hello.py
	run "typescript/hello (cli bin)" "$here/typescript" "${cli[@]}" node hello.mjs
	run "go/hello (cli bin)" "$here/go" "${cli[@]}" go run ./hello
fi

if ((modules)); then
	# Modules in Dagger's format, run by gantry's module runtimes with `dag` connected
	# to the call's session; the Python one with the venv that has dagger-io.
	run "python/module (gantry call)" "$here/python" env GANTRY_PYTHON="$py" \
		python3 "$here/../module_call.py" "$gantry" "$here/python/module"
	run "typescript/module (gantry call)" "$here/typescript" \
		python3 "$here/../module_call.py" "$gantry" "$here/typescript/module"
fi

if ((failed > 0)); then
	echo "failed: ${failures[*]}"
fi
echo "dagger-sdks: $passed passed, $failed failed"
((failed == 0))
