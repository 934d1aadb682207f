# The two set-up commands are `make check` (the main job) and `make test` (every test layer).
# `.ci/run` runs `make test`.

CARGO ?= cargo

.PHONY: check test test-long lint test-std test-loom test-shuttle mutants mutation

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

## The long exhaustive runs CI leaves out (docs/testing.md, "The long runs", has their figures):
## the `all-faults` preset through its reductions (pinned state count), the `full` preset, and
## every seeded bug on every network kind with its exact catchers.
test-long:
	$(CARGO) test --release -p aurora-redo-tests --test model_checks -- --ignored
	$(CARGO) run --release -- check --preset full
	$(CARGO) run --release -- mutants

mutants:
	$(CARGO) run --release -- mutants

## Mutation testing (cargo-mutants; not part of `make test` or CI), in two runs: the engine's
## concurrent pieces against the engine's std tests (`.cargo/mutants.toml`; report in
## mutants.out/), then the model's rule files against the model's unit tests and its fast rule
## checks (`.cargo/mutants-model.toml`; report in target/model-mutation/mutants.out/).
## cargo-mutants exits 2 when a mutation is missed and 3 when one times out (a timeout counts as
## detected). Passes when every missed mutation of either run is one `docs/mutation.md` lists,
## with the reason, and every listed one is missed.
MUTANTS_JOBS ?= 1
MODEL_MUTANTS_OUT = target/model-mutation
mutation:
	@status=0; $(CARGO) mutants --workspace --jobs $(MUTANTS_JOBS) || status=$$?; \
	case $$status in 0|2|3) ;; *) exit $$status ;; esac; \
	status=0; $(CARGO) mutants --workspace --jobs $(MUTANTS_JOBS) \
		--config .cargo/mutants-model.toml --output $(MODEL_MUTANTS_OUT) || status=$$?; \
	case $$status in 0|2|3) ;; *) exit $$status ;; esac; \
	cat mutants.out/missed.txt $(MODEL_MUTANTS_OUT)/mutants.out/missed.txt \
		| sed -E 's/:[0-9]+:[0-9]+:/:/' | sort > mutants.out/missed.names; \
	awk -F'`' '/^- `[a-z]+\/src\//{print $$2}' docs/mutation.md | sort > mutants.out/listed.names; \
	if ! diff -u mutants.out/listed.names mutants.out/missed.names; then \
		echo "missed mutations differ from those docs/mutation.md lists (- listed, + missed)"; \
		exit 1; \
	fi; \
	echo "every missed mutation is one docs/mutation.md lists"

