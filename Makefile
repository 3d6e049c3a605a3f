# gantry: developer and CI entry points. CI runs `bash .ci/run`, which runs `make test`.
#
#   make setup           install/start what the tests need (scripts/setup.sh; idempotent)
#   make test            setup, then every step in TEST_STEPS, in order
#   make rust-test       fmt, clippy and cargo tests only (after setup)
#   make demo            setup, release build, scripts/demo.sh
#   make bench           setup, bench/run.sh
#   make clean-test-env  stop the dockerd/registries that scripts/setup.sh started
#
# To add a test step: define a target that depends on `setup` and append it to
# TEST_STEPS here (before the `test` rule), e.g. `TEST_STEPS += python-test`.

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

TEST_STEPS := rust-test

.PHONY: all setup test rust-test demo bench clean-test-env

all: test

setup:
	bash scripts/setup.sh

test: setup $(TEST_STEPS)

rust-test: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	GANTRY_TEST_REQUIRE_DOCKER=1 $(CARGO) test --workspace --locked

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
