# The two set-up commands are `make check` (the main job) and `make test` (every test layer).
# `.ci/run` runs `make test`.

CARGO ?= cargo

.PHONY: check test lint test-std test-loom test-shuttle mutants

## The main job: an exhaustive model check of the default configuration; the same command as
## README.md's main command. Exit 0: pass, 1: fail, 3: incomplete (README.md, "Exit statuses").
check:
	$(CARGO) run --release -- check

## Every test layer, as CI runs it.
test: lint test-std test-loom test-shuttle

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --release -- -D warnings

## Model checks, CLI and Explorer tests, implementation unit and integration tests, conformance.
## The Explorer's browser test needs `chromium` (`.ci/run` installs it); AURORA_REDO_NO_BROWSER=1
## skips it on purpose.
test-std:
	$(CARGO) test --release --workspace

## The implementation's small concurrent pieces under loom (its own build: --cfg loom).
test-loom:
	RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom \
		$(CARGO) test --release -p aurora-redo-impl --test loom

## The whole implementation under shuttle's randomized and PCT schedulers; every schedule's
## recording checked against the model.
test-shuttle:
	$(CARGO) test --release -p aurora-redo-impl --features shuttle --test shuttle
	$(CARGO) test --release -p aurora-redo-tests --features shuttle --test recording_validation

mutants:
	$(CARGO) run --release -- mutants
