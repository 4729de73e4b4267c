# deeplab-gateway. Every target that needs the virtual environment makes it first, so a fresh machine needs
# nothing but `make run` or `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUF := $(VENV)/bin/buf
STAMP := $(VENV)/.installed-stamp
SHARED ?= ../shared
FROZEN_GRAPH ?= $(SHARED)/models/deeplabv3_mnv2_pascal/frozen_inference_graph.pb
MODEL_BASE ?= models/deeplab

.PHONY: setup gen check-gen lint format export test run bench bench-quick clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[model,dev]"
	touch $(STAMP)

# Regenerates the committed stubs under protos/gen from protos/ (see buf.gen.yaml).
gen: setup
	$(BUF) generate

# Fails when the committed stubs differ from what `make gen` would write.
check-gen: setup
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  $(BUF) generate --output "$$tmp" && \
	  diff -r "$$tmp/protos/gen" protos/gen -x README.md -x __pycache__ && echo "generated stubs are fresh"

lint: setup check-gen
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(BUF) lint
	$(BUF) format --diff --exit-code
	@if git rev-parse --verify --quiet main:buf.yaml >/dev/null; then \
	  $(BUF) breaking --against '.git#branch=main' && echo "no breaking changes against main"; \
	else echo "buf breaking: main has no protos yet, nothing to compare"; fi

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
	$(BUF) format -w

# Exports the shared DeepLab frozen graph as version 1 of the servable, unless it is already there.
export: setup $(MODEL_BASE)/1/saved_model.pb

$(MODEL_BASE)/1/saved_model.pb:
	$(PY) -m exporter --frozen-graph $(FROZEN_GRAPH) --export-dir $(MODEL_BASE) --version 1

test: setup
	$(PY) -m pytest tests/gateway
	$(PY) -m pytest tests/model

# modelserver on :8500 and the gateway on :50051 until Ctrl-C.
run: export
	@bash deploy/run-local.sh

# Side-by-side benchmarks; writes bench/BENCHMARKS.md and bench/benchmarks.png (about 6 minutes; quick: 1).
bench: export
	$(PY) -m bench --plan=full --model-base=$(MODEL_BASE)

bench-quick: export
	$(PY) -m bench --plan=quick --model-base=$(MODEL_BASE)

clean:
	rm -rf $(VENV) models .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
