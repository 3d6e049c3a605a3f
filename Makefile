# gantry: developer and CI entry points. CI runs `bash .ci/run`, which runs `make test`.
#
#   make setup           install/start what the tests need (scripts/setup.sh; idempotent)
#   make test            every test step, in lanes that run side by side (see TEST_LANES below)
#   make test-serial     the same steps one after another (slower; one log in order)
#   make rust-test       fmt, clippy and cargo tests only (after setup); the end-to-end suite
#                        runs once per runtime (GANTRY_RUNTIME=native, then docker)
#   make python-test     Python SDK: codegen --check, ruff, mypy, pytest (after setup)
#   make go-test         Go SDK: codegen --check, gofmt, go vet, staticcheck, go test (after setup)
#   make browser-test    GraphiQL in headless Chromium (after setup); screenshot in target/test-artifacts/
#   make conformance     the same scenarios in every gantry SDK against one engine (conformance-tests/),
#                        on SUITE_RUNTIME (default: docker)
#   make dagger-core     Dagger's own core integration tests against gantry (slow; not in `make test`)
#   make compat          docs/compatibility.md is fresh and every difference from Dagger's API explained
#   make compat-update   rewrite the generated table in docs/compatibility.md
#   make chaos           fault scenarios (SIGKILL, shared state dirs, full disk, floods, huge files, dockerd restart)
#   make demo            setup, release build, scripts/demo.sh
#   make bench           setup, bench/run.sh
#   make dist            release files in dist/: static musl binaries, install.sh, SDK packages, SHA256SUMS
#   make image           the gantry container image (FROM scratch) from dist/'s x86_64 archive
#   make clean-test-env  stop the dockerd/registries that scripts/setup.sh started
#
# To add a test step: define a target that depends on `setup`, then add it to a lane in
# TEST_LANES (or to TEST_LAST if it must run alone), below, before the `test` rule.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test
# Steps run one after another, in the order listed, even under `make -j`.
.NOTPARALLEL:

# Test registry addresses and credentials (KEY=VALUE lines), exported to every recipe.
include scripts/test-registry.env
export GANTRY_TEST_REGISTRY GANTRY_TEST_AUTH_REGISTRY GANTRY_TEST_AUTH_REGISTRY_USER \
	GANTRY_TEST_AUTH_REGISTRY_PASSWORD GANTRY_TEST_FIXTURES

CARGO ?= cargo
comma := ,
space := $(subst ,, )

# The runtimes the Rust end-to-end suite runs on (GANTRY_RUNTIME of its engines), one pass each.
# The SDK-level suites run once each, so that between them both runtimes serve both kinds of
# SDK without running every scenario twice (CI time): the gantry SDKs' own tests start engines
# with the default, `auto` (the native runtime where it can run), conformance (the gantry SDKs
# again) runs on SUITE_RUNTIME, and Dagger's official SDKs on DAGGER_SDK_RUNTIME.
RUNTIMES ?= native docker
SUITE_RUNTIME ?= docker
DAGGER_SDK_RUNTIME ?= native

# `make test` runs in three phases:
#  1. `setup`, then `test-build`: fmt, clippy and every debug build the steps use, once, so
#     that no two steps compile at the same time;
#  2. TEST_LANES side by side (scripts/lanes.sh): the steps of a lane in order, the lanes
#     concurrently, each lane's log printed whole when it ends. Most steps wait on
#     containers rather than the CPU. The Rust end-to-end suite's passes (one per runtime)
#     share a lane: the Docker runtime's tests and the Docker crate's remove images by ID,
#     and reproducible images have the same ID wherever their content is the same, so the
#     passes run one after the other. Steps that share a venv, node_modules or generated files
#     (sdk-python/.venv, sdk-typescript/dist, sdk-php/vendor) are in one lane. The go lane
#     ends with the release build that dist-test and docs-test use next (it starts when
#     the Go tests are done, the shortest lane, so it does not slow the others' start);
#  3. TEST_LAST, one after another, alone: dist-test and docs-test pack the SDK folders the
#     lanes read from, and chaos restarts a dockerd and floods the machine. They too use the
#     lanes' engine binary (docs-test had rebuilt `-p gantry` for its pages: 46 s in CI).
# `make test-serial` runs the same steps one after another.
TEST_LANES := rust=$(subst $(space),$(comma),$(addprefix rust-e2e-,$(RUNTIMES)))
TEST_LANES += sdk=compat,python-test,php-test,typescript-test,browser-test,conformance
TEST_LANES += go=go-test,dagger-sdk-test,release-build
TEST_LAST := dist-test docs-test chaos

# The release binary that `make test` packs and installs (dist-test, docs-test) tests the
# packaging and the static musl link, not the optimiser: it is built without optimisation,
# which compiles in a fraction of the time (cargo's per-profile environment override,
# inherited by the cargo that docs-test's pages run, so theirs reuses the same build).
# The same goes for whole-program optimisation (Cargo.toml's lto and codegen-units, which
# shrink the shipped binary and its idle memory but make its link several times slower).
# `make dist` on its own builds the release profile as it stands in Cargo.toml.
TEST_RELEASE_OPT_LEVEL ?= 0
TEST_RELEASE_LTO ?= off
TEST_RELEASE_CODEGEN_UNITS ?= 16
test test-serial: export CARGO_PROFILE_RELEASE_OPT_LEVEL := $(TEST_RELEASE_OPT_LEVEL)
test test-serial: export CARGO_PROFILE_RELEASE_LTO := $(TEST_RELEASE_LTO)
test test-serial: export CARGO_PROFILE_RELEASE_CODEGEN_UNITS := $(TEST_RELEASE_CODEGEN_UNITS)

TEST_STEPS := rust-test compat python-test go-test dagger-sdk-test php-test typescript-test \
	browser-test conformance chaos dist-test docs-test

.PHONY: all setup test test-serial test-build rust-test rust-lint rust-e2e release-build demo bench \
	clean-test-env

all: test

# SKIP_SETUP=1: the lanes of `make test`, which ran set-up once before them.
setup:
	@if [[ -z "$(SKIP_SETUP)" ]]; then bash scripts/setup.sh; fi

test: setup
	$(MAKE) --no-print-directory SKIP_SETUP=1 test-build
	SKIP_SETUP=1 BUILT=1 GANTRY_TEST_BIN=$(LANES_BIN) bash scripts/lanes.sh $(TEST_LANES)
	$(MAKE) --no-print-directory SKIP_SETUP=1 BUILT=1 GANTRY_TEST_BIN=$(LANES_BIN) $(TEST_LAST)

test-serial: setup $(TEST_STEPS)


# The passes after the first rerun only gantry's end-to-end suite, with the workspace's
# features (`-p gantry` alone would resolve other features and compile everything again;
# the excluded crates test one runtime each, which the first pass did).
E2E_ONLY := --workspace --exclude gantry-docker --exclude gantry-native

rust-test: rust-lint rust-e2e

rust-lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# One pass of the end-to-end suite per runtime (rust-e2e-native, rust-e2e-docker, ...). The
# first runtime's pass runs every test of the workspace; the others only the suite.
rust-e2e: $(addprefix rust-e2e-,$(RUNTIMES))

rust-e2e-%: setup
	GANTRY_RUNTIME=$* GANTRY_TEST_REQUIRE_DOCKER=1 $(CARGO) test --locked \
		$(if $(filter $*,$(firstword $(RUNTIMES))),--workspace,$(E2E_ONLY) --test it)

# The engine binary the SDK-level steps run (GANTRY_BIN of their tests). `cargo build -p
# gantry` and `cargo test` leave different builds at target/debug/gantry (dev-dependencies
# turn features on), so one lane's cargo would replace the file under another lane's
# running tests: `make test` gives its lanes a copy made by test-build instead, and BUILT=1
# tells their steps not to run cargo build.
GANTRY_TEST_BIN ?= $(CURDIR)/target/debug/gantry
LANES_BIN := $(CURDIR)/target/lanes/gantry
BUILT ?=
BUILD_GANTRY = $(if $(BUILT),@echo "$@: using $(GANTRY_TEST_BIN) (built by test-build)",$(CARGO) build --locked -p gantry)

# Phase 1 of `make test`: lint, then every debug build and tool install the lanes use (the
# same cargo invocations as the steps, so theirs compile nothing), the workspace's test
# build last, so that target/debug/gantry is the Rust lanes' own when they start. The
# lanes' copy is that same binary (the SDK steps need no build of their own: one compile
# of the CLI instead of two).
test-build: rust-lint python-venv dagger-python-sdk
	$(CARGO) build --locked -p xtask
	$(CARGO) clippy --locked $(CHAOS_TARGET) -- -D warnings
	$(CARGO) test --locked $(CHAOS_TARGET) --no-run
	$(CARGO) test --workspace --locked --no-run
	mkdir -p $(dir $(LANES_BIN)) && cp target/debug/gantry $(LANES_BIN).tmp && mv $(LANES_BIN).tmp $(LANES_BIN)

# The release binary dist-test packs and docs-test installs (scripts/dist.sh, binaries only).
release-build: setup
	DIST_BINARIES_ONLY=1 DIST_TARGETS=x86_64-unknown-linux-musl DIST_REQUIRE_ALL=1 bash scripts/dist.sh

demo: setup
	$(CARGO) build --release -p gantry
	bash scripts/demo.sh

bench: setup
	bash bench/run.sh

# Stops only processes recorded in the pid files scripts/setup.sh wrote (a dockerd that
# was already running when setup ran is left alone). Registry storage is kept.
GANTRY_TEST_STATE_DIR ?= /var/lib/gantry-test
export GANTRY_TEST_STATE_DIR
clean-test-env:
	@for name in registry-auth registry dockerd; do \
		pidfile="$(GANTRY_TEST_STATE_DIR)/run/$$name.pid"; \
		[[ -s $$pidfile ]] || continue; \
		pid=$$(cat "$$pidfile"); \
		cmd=$$(tr '\0' ' ' <"/proc/$$pid/cmdline" 2>/dev/null || true); \
		if [[ $$cmd == *dockerd* || $$cmd == *docker-registry* ]]; then \
			echo "stopping $$name (pid $$pid)"; \
			kill -TERM "$$pid"; \
			for _ in $$(seq 1 100); do \
				state=$$(awk '{print $$3}' "/proc/$$pid/stat" 2>/dev/null || true); \
				[[ -n $$state && $$state != Z ]] || break; \
				sleep 0.2; \
			done; \
			if [[ -n $$state && $$state != Z ]]; then echo "$$name (pid $$pid) still running after 20s" >&2; exit 1; fi; \
		fi; \
		rm -f "$$pidfile"; \
	done

# Python SDK (sdk-python/): generated code is fresh, then ruff, mypy --strict and pytest
# against an engine the tests start themselves (target/debug/gantry). The venv lives in
# sdk-python/.venv (gitignored); pinned tools are reinstalled only when
# sdk-python/requirements-dev.txt changes, the SDK itself on every run.
PYTHON ?= python3
PY_VENV := sdk-python/.venv
PIP := $(PY_VENV)/bin/python -m pip --disable-pip-version-check -q

.PHONY: python-test python-venv
python-venv:
	@if [[ ! -x $(PY_VENV)/bin/python ]]; then $(PYTHON) -m venv $(PY_VENV); fi
	@if ! cmp -s sdk-python/requirements-dev.txt $(PY_VENV)/requirements-dev.txt; then \
		echo "python-venv: installing sdk-python/requirements-dev.txt into $(PY_VENV)"; \
		$(PIP) install -r sdk-python/requirements-dev.txt; \
		cp sdk-python/requirements-dev.txt $(PY_VENV)/requirements-dev.txt; \
	fi

python-test: setup python-venv
	$(CARGO) xtask codegen --check
	$(BUILD_GANTRY)
	$(PIP) install --no-build-isolation --no-deps --force-reinstall ./sdk-python
	cd sdk-python && .venv/bin/ruff format --check . && .venv/bin/ruff check .
	cd sdk-python && .venv/bin/mypy src examples tests
	cd sdk-python && GANTRY_BIN=$(GANTRY_TEST_BIN) .venv/bin/pytest

# GraphiQL in the browser: tests/browser/graphiql.test.mjs starts target/debug/gantry serve
# --listen, logs in with the printed token URL, types and runs a query in Debian's headless
# Chromium (scripts/setup.sh installs it) via playwright-core (npm ci, no browser download),
# and saves target/test-artifacts/graphiql.png.
.PHONY: browser-test
browser-test: setup
	@command -v npm >/dev/null || { echo "browser-test: needs Node.js 20+ with npm" >&2; exit 1; }
	$(BUILD_GANTRY)
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	cd tests/browser && GANTRY_BIN=$(GANTRY_TEST_BIN) \
		GANTRY_TEST_ARTIFACTS=$(CURDIR)/target/test-artifacts node --test

# TypeScript SDK (sdk-typescript/): generated code is fresh, npm ci, tsc build, tsc --noEmit of
# examples/, then node --test against an engine the tests start themselves (target/debug/gantry),
# including the README example from an `npm pack` tarball installed into an empty folder.
.PHONY: typescript-test
typescript-test: setup
	$(CARGO) xtask codegen --check
	$(BUILD_GANTRY)
	cd sdk-typescript && npm ci --no-audit --no-fund --loglevel=error
	cd sdk-typescript && npx tsc -p tsconfig.json && npx tsc -p examples/tsconfig.json --noEmit
	cd sdk-typescript && GANTRY_BIN=$(GANTRY_TEST_BIN) npm test

# PHP SDK (sdk-php/): generated code is fresh, `php -l` on every file, then PHPUnit (Debian's
# phpunit 9.6) against an engine the tests start themselves (target/debug/gantry), including
# the README example in a fresh Composer project with Packagist disabled. scripts/setup.sh
# installs php-cli, php-curl, php-mbstring, composer and phpunit. There are no Composer
# dependencies: `composer dump-autoload` only writes sdk-php/vendor/autoload.php (gitignored).
# The tests' engine state persists in target/php-test-state/ so warm runs reuse the Go cache.
.PHONY: php-test
php-test: setup
	$(CARGO) xtask codegen --check
	$(BUILD_GANTRY)
	@for tool in php composer phpunit; do \
		command -v $$tool >/dev/null || { echo "php-test: $$tool is missing: run make setup" >&2; exit 1; }; \
	done
	@php -r 'exit(extension_loaded("curl") && extension_loaded("mbstring") ? 0 : 1);' || \
		{ echo "php-test: needs the php-curl and php-mbstring extensions: run make setup" >&2; exit 1; }
	cd sdk-php && find src generated tests examples module -name '*.php' -print0 | xargs -0 -n1 php -l \
		| { grep -v '^No syntax errors detected' || true; }
	cd sdk-php && COMPOSER_DISABLE_NETWORK=1 composer validate --no-check-publish --no-check-lock -q
	cd sdk-php && COMPOSER_DISABLE_NETWORK=1 composer dump-autoload --dev -q
	cd sdk-php && GANTRY_BIN=$(GANTRY_TEST_BIN) phpunit

# Dagger's official SDKs (PyPI dagger-io, npm @dagger.io/dagger, Go dagger.io/dagger, all
# 0.21.9) running unmodified scenarios against target/debug/gantry, via `gantry run` and via
# `_EXPERIMENTAL_DAGGER_CLI_BIN=gantry` (conformance-tests/dagger/run.sh). Installs are cached
# in conformance-tests/dagger/python/.venv and typescript/node_modules (gitignored); the
# engine state in target/dagger-sdk-test; on DAGGER_SDK_RUNTIME (default: native). Last line:
# `dagger-sdks: N passed, M failed`.
.PHONY: dagger-sdk-test
dagger-sdk-test: setup
	$(BUILD_GANTRY)
	GANTRY_RUNTIME=$(DAGGER_SDK_RUNTIME) GANTRY_BIN=$(GANTRY_TEST_BIN) bash conformance-tests/dagger/run.sh

# Go SDK (sdk-go/): generated code is fresh, gofmt -l is empty, go vet, staticcheck (pinned,
# fetched through the Go module proxy; skipped with a note when that is unreachable), then
# go test against an engine the tests start themselves (target/debug/gantry, built if missing;
# engine state kept in target/go-test-engine/ so the Go cache volumes stay warm).
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: go-test
go-test: export PATH := $(PATH):/usr/local/go/bin
go-test: setup
	$(CARGO) xtask codegen --check
	$(BUILD_GANTRY)
	@unformatted=$$(cd sdk-go && gofmt -l .); \
		if [[ -n $$unformatted ]]; then echo "go-test: gofmt -l sdk-go:"; echo "$$unformatted"; exit 1; fi
	cd sdk-go && go vet ./...
	@cd sdk-go && if go run $(STATICCHECK) -version >/dev/null 2>&1; then \
		echo "staticcheck ./..."; go run $(STATICCHECK) ./...; \
	else echo "go-test: staticcheck ($(STATICCHECK)) is not available from the Go module proxy; skipped"; fi
	cd sdk-go && GANTRY_BIN=$(GANTRY_TEST_BIN) GANTRY_TEST_REQUIRE_DOCKER=1 go test -count=1 -timeout 30m ./...

# Every code block in docs/ is run, or checked identical to a file a test runs
# (scripts/docs-test.py says how blocks are marked); the root README's SDK examples must be
# the ones each SDK's tests run. Runs after dist-test in make test: getting-started's
# `make dist` and `cargo install` then reuse its release build. Needs the Python SDK in
# sdk-python/.venv and Dagger's Python SDK (conformance-tests/dagger/python/.venv, installed
# by dagger-sdk-test, or here by its hello scenario when missing).
.PHONY: docs-test
docs-test: setup python-venv
	$(BUILD_GANTRY)
	$(PIP) install --no-build-isolation --no-deps --force-reinstall ./sdk-python
	@if [[ ! -x conformance-tests/dagger/python/.venv/bin/python ]]; then \
		bash conformance-tests/dagger/run.sh hello; fi
	GANTRY_BIN=$(GANTRY_TEST_BIN) $(PYTHON) scripts/docs-test.py

# Compatibility with Dagger's API (docs/compatibility.md): scripts/compat.py compares
# schema.graphql with the generated client of Dagger's Python SDK (dagger-io, pinned in
# conformance-tests/dagger/python/requirements.txt; the venv is dagger-sdk-test's) and fails when
# a difference has no explanation in docs/compatibility.toml or the table is stale.
DAGGER_PY_VENV := conformance-tests/dagger/python/.venv
DAGGER_PY := $(DAGGER_PY_VENV)/bin/python

.PHONY: compat compat-update dagger-python-sdk
dagger-python-sdk:
	@if [[ ! -x $(DAGGER_PY) ]]; then $(PYTHON) -m venv $(DAGGER_PY_VENV); fi
	@if ! cmp -s conformance-tests/dagger/python/requirements.txt $(DAGGER_PY_VENV)/requirements.txt; then \
		echo "compat: installing conformance-tests/dagger/python/requirements.txt into $(DAGGER_PY_VENV)"; \
		$(DAGGER_PY) -m pip install --disable-pip-version-check -q -r conformance-tests/dagger/python/requirements.txt; \
		cp conformance-tests/dagger/python/requirements.txt $(DAGGER_PY_VENV)/requirements.txt; \
	fi

compat: setup dagger-python-sdk
	$(DAGGER_PY) scripts/compat.py --check

compat-update: dagger-python-sdk
	$(DAGGER_PY) scripts/compat.py

# Conformance (conformance-tests/): the same scenarios as small programs in each gantry SDK
# (Python, TypeScript, Go, PHP), one expected output per scenario, all against one engine
# that conformance-tests/run.py starts (state kept in target/conformance/state, so the Go
# caches stay warm). Builds what each SDK needs: the engine, the Python SDK into
# sdk-python/.venv (python-test's venv), sdk-typescript/dist when missing, sdk-php's
# autoloader when missing; Go uses the checkout through a `replace` in conformance-tests/go.
# Prints `python: N passed, M failed` (typescript, go, php likewise), then the total line.
.PHONY: conformance
conformance: export PATH := $(PATH):/usr/local/go/bin
conformance: setup
	$(BUILD_GANTRY)
	@if [[ ! -x $(PY_VENV)/bin/python ]]; then $(PYTHON) -m venv $(PY_VENV); fi
	@if $(PY_VENV)/bin/python -c 'import hatchling' 2>/dev/null; then iso=--no-build-isolation; else iso=; fi; \
		$(PIP) install $$iso --no-deps --force-reinstall ./sdk-python
	@if [[ ! -f sdk-typescript/dist/index.js ]]; then \
		cd sdk-typescript && npm ci --no-audit --no-fund --loglevel=error && npx tsc -p tsconfig.json; fi
	@if [[ ! -f sdk-php/vendor/autoload.php ]]; then \
		cd sdk-php && COMPOSER_DISABLE_NETWORK=1 composer dump-autoload -q; fi
	GANTRY_RUNTIME=$(SUITE_RUNTIME) GANTRY_BIN=$(GANTRY_TEST_BIN) \
		CONFORMANCE_PYTHON=$(CURDIR)/$(PY_VENV)/bin/python $(PYTHON) conformance-tests/run.py

# Dagger's own core integration tests (core/integration at v0.21.8, unmodified, fetched through
# the Go module proxy) against target/debug/gantry: conformance-tests/dagger-core/run.py. A
# measurement, not a gate, so not in TEST_STEPS: it exits 0 whatever the tests do. The first
# run builds the test binary (cached in target/dagger-core/); see that folder's README.md for
# timings. Results: target/dagger-core/results.json and summary.md.
# Pass options with DAGGER_CORE_ARGS, e.g. DAGGER_CORE_ARGS="--suites TestFile --only Digest".
DAGGER_CORE_ARGS ?=

.PHONY: dagger-core
dagger-core: export PATH := $(PATH):/usr/local/go/bin
dagger-core: setup
	$(BUILD_GANTRY)
	$(PYTHON) conformance-tests/dagger-core/run.py $(DAGGER_CORE_ARGS)

# Chaos (server/cli/tests/chaos/): the engine against the faults of a busy CI machine and a
# hostile local user: SIGKILL at random points, 100 `gantry run` sessions on one state dir,
# two state dirs and a prune on one daemon, images removed behind gantry's back, a full
# tmpfs state dir, 1,100 idle connections under `prlimit --nofile=1024`, a 1 GiB host
# file, a dockerd restart (a private dockerd in its own network namespace). One line per
# scenario with its figure, then `chaos: N passed, M failed`. Needs root (mount, unshare).
# The scenarios read Docker's containers, images and events (and restart a dockerd), so
# their engines run on the Docker runtime (CHAOS_RUNTIME).
CHAOS_RUNTIME ?= docker
CHAOS_TARGET := $(E2E_ONLY) --test chaos

.PHONY: chaos
chaos: setup
	$(CARGO) clippy --locked $(CHAOS_TARGET) -- -D warnings
	GANTRY_RUNTIME=$(CHAOS_RUNTIME) GANTRY_TEST_REQUIRE_DOCKER=1 $(CARGO) test --locked $(CHAOS_TARGET)

# Release files (scripts/dist.sh; docs/releasing.md): for each target in DIST_TARGETS (default
# x86_64 and aarch64 musl) a static binary in dist/gantry-VERSION-TARGET.tar.gz, skipped with a
# message when its Rust target or cross compiler is missing; dist/install.sh; the SDK packages
# in dist/sdk/ (scripts/dist-sdks.sh); dist/SHA256SUMS over all of them.
.PHONY: dist image dist-test
dist: python-venv
	bash scripts/dist.sh

# The container image gantry:VERSION (Dockerfile, FROM scratch) from dist/'s x86_64 archive.
image:
	bash scripts/image.sh

# The release path on this machine (tests/dist/run.sh): builds the x86_64 musl release once
# into target/dist (make dist's aarch64 build is left to make dist), then installs the archive
# with install.sh into a temp folder and runs a real pipeline with the installed binary,
# refuses a damaged archive, builds and runs the container image against the local daemon,
# and installs the SDK packages into empty projects. Last line: `dist: N passed, M failed`.
dist-test: setup python-venv
	DIST_DIR=$(CURDIR)/target/dist DIST_TARGETS=x86_64-unknown-linux-musl DIST_REQUIRE_ALL=1 bash scripts/dist.sh
	bash tests/dist/run.sh $(CURDIR)/target/dist
