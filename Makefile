# bidcore's one entry point for setup, tests, benchmarks and wheels. README and CI call these.
# `make help` lists the targets.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Everything below runs inside the virtualenv.
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(VIRTUAL_ENV)/bin:$(PATH)
# maturin and cargo share one target directory: the release build behind `make dev` is reused
# by `make wheel` and the benchmarks.
export CARGO_TARGET_DIR := $(abspath target)

PY_SOURCES := bidcore tests benchmarks
# numpy's OpenBLAS keeps worker threads that poll for work: on two cores they take a few percent
# of the core a benchmark's second thread needs. bidcore's numpy work is small and one-threaded.
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: help
help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: bidcore needs CPython >= 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements/dev.txt .ci/system-packages | $(BIN)/python
	.ci/system-packages
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	touch $@

.PHONY: setup
setup: $(VENV)/.installed ## create .venv with the pinned tools and test dependencies; Debian's redis-server, prometheus, wrk

.PHONY: dev
dev: setup ## build the native module (release profile) into .venv, editable
	@# A stale per-version build would shadow the abi3 one (Python prefers it on import).
	rm -f bidcore/_core.cpython-*.so
	maturin develop --release --quiet

.PHONY: lint
lint: dev ## ruff, mypy --strict, stubtest, cargo fmt --check, clippy -D warnings
	ruff check $(PY_SOURCES)
	ruff format --check $(PY_SOURCES)
	mypy
	python -m mypy.stubtest bidcore._core --allowlist .ci/stubtest-allowlist.txt
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings
	python .ci/check_version.py

.PHONY: format
format: setup ## apply ruff and cargo formatting
	ruff format $(PY_SOURCES)
	ruff check --fix $(PY_SOURCES)
	cargo fmt --all

.PHONY: test-rust
test-rust: ## cargo test of the core (unit, corpus, proptest)
	cargo test -p bidcore-core --all-features --quiet

.PHONY: test-py
test-py: dev ## pytest (the wheel-from-an-index test included)
	python -m pytest -q

.PHONY: test
test: lint test-rust test-py ## everything CI runs: lint gate, cargo test, pytest

.PHONY: bench
bench: dev ## pytest-benchmark suites, peers side by side; prints the comparison table
	python -m pytest benchmarks -q -p no:randomly --benchmark-enable --benchmark-only \
		--benchmark-columns=median,iqr,ops --benchmark-sort=name \
		--benchmark-json=.benchmarks/latest.json
	python benchmarks/report.py .benchmarks/latest.json

.PHONY: bench-models
bench-models: dev ## model scoring: bidcore's scorers and every peer (lleaves, TL2cgen, LightGBM C API…) in one run
	python -m pip install --quiet -r requirements/bench.txt
	python benchmarks/models.py

.PHONY: bench-engine
bench-engine: dev ## end-to-end Engine.bid against the pure and the best Python bidder (same run), 1 vs 2 threads
	python -m pip install --quiet -r requirements/bench.txt
	python benchmarks/engine.py

.PHONY: bench-experiments
bench-experiments: dev ## Engine.bid on the demo bidder with and without three experiment layers (same run)
	python benchmarks/experiments.py

.PHONY: bench-budget
bench-budget: dev ## Engine.bid with the local ledger and the shared (Redis leases) ledger side by side
	python benchmarks/budget.py

.PHONY: bench-serve
bench-serve: dev ## bidcore serve over HTTP (wrk on loopback) against an empty app and the best Python bidder, uvicorn and granian
	python -m pip install --quiet -r requirements/bench.txt
	python benchmarks/serve.py

.PHONY: bench-gate
bench-gate: dev ## short benchmark run; fails if a speed ratio to a peer falls below its floor
	python benchmarks/gate.py

.PHONY: bench-rust
bench-rust: ## criterion benches of the core (all JSON backends side by side)
	cargo bench -p bidcore-core --all-features

.PHONY: wheel
wheel: setup ## release wheel and sdist into dist/ (fat LTO, one codegen unit, unwinding panics)
	rm -rf dist
	maturin build --release --sdist --out dist --quiet
	auditwheel show dist/*.whl

.PHONY: serve
serve: dev ## run the HTTP bidder on its embedded default (demo config and models) at 127.0.0.1:8080
	bidcore serve

.PHONY: demo
demo: dev ## train the demo models (examples/) and run the demo bidder over the corpus
	python examples/train_demo_models.py
	bidcore bid examples/bidder.toml tests/fixtures/openrtb/requests.jsonl --quiet

.PHONY: fuzz
fuzz: dev ## fuzz the parsers and the engine (requests, model files, features, decisions) with cargo-fuzz, FUZZ_SECONDS each (default 60)
	.ci/fuzz.sh $${FUZZ_SECONDS:-60}

.PHONY: clean
clean: ## remove build outputs (keeps .venv)
	rm -rf dist target/wheels bidcore/_core*.so
