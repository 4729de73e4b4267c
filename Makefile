# deeplab-gateway. Every target that needs the virtual environment makes it first, so a fresh machine needs
# nothing but `make run` or `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUF := $(VENV)/bin/buf
STAMP := $(VENV)/.installed-stamp
# The hash-pinned locks made from pyproject.toml by `make lock` (requirements/README.md): the development
# environment's, pip's and the build backend's, and the images' (gateway.txt, modelserver.txt).
LOCK := requirements/dev.txt
BUILD_LOCK := requirements/build.txt
IMAGE_LOCKS := requirements/gateway.txt requirements/modelserver.txt
# `make audit`: the locks whose versions are checked against PyPI's advisories (tools/audit.py), and its flags
# (e.g. AUDIT_FLAGS="--ignore-vuln GHSA-xxxx-xxxx-xxxx", with the reason where it is set).
AUDIT_LOCKS ?= $(IMAGE_LOCKS)
AUDIT_FLAGS ?=
# It needs no venv; the venv's Python, where there is one, tells which locked versions are behind (packaging).
AUDIT_PY = $(if $(wildcard $(PY)),$(PY),$(PYTHON))
# `make lock`: e.g. LOCK_FLAGS=--upgrade (every package at its newest allowed version), --upgrade-package=NAME.
LOCK_FLAGS ?=
SBOM := sbom/deeplab-gateway.cdx.json
SHARED ?= ../shared
FROZEN_GRAPH ?= $(SHARED)/models/deeplabv3_mnv2_pascal/frozen_inference_graph.pb
MODEL_BASE ?= models/deeplab
TFLITE_MODEL ?= $(SHARED)/models/deeplabv3_mnv2_pascal/deeplabv3_257_mv_gpu.tflite
LITE_BASE ?= models/deeplab-lite
# A gateway config file for `make run` (e.g. examples/multi-model.toml); empty: one model, from flags.
CONFIG ?=

.PHONY: setup toolchains browser triton-venv kserve-venv alerting-tools run-triton test-unit gen check-gen lint format export test run bench bench-quick capacity fidelity clients demo fuzz soak schema \
	clean image compose-test scale-test docs attacks lock check-lock audit sbom

setup: $(STAMP) toolchains browser triton-venv kserve-venv alerting-tools

# protoc, grpc-java, Scala, Go and npm packages for the other languages' stubs and examples (idempotent).
toolchains:
	@bash clients/install-toolchains.sh

# Debian's Chromium and ChromeDriver, for the web page's tests in a real browser (idempotent).
browser:
	@bash tests/install-browser.sh

# NVIDIA Triton Inference Server (nvidia-pytriton) and TensorFlow in triton/.venv, made with Debian's Python, for the
# kserve-v2 backend's tests and `make run-triton` (idempotent; about 40 s the first time).
triton-venv:
	@bash triton/setup.sh

# KServe's model server (kserve, with its own pins) in bench/.venv-kserve, for the kserve-v2 backend's tests and the
# bench's KServe peer (idempotent; about 50 s the first time).
kserve-venv:
	@bash bench/kserve/setup.sh

# promtool (Debian's prometheus package), which `make lint` checks and unit-tests the alert rules with (idempotent).
alerting-tools:
	@bash deploy/install-debian-packages.sh alerting-tools prometheus

# The venv holds what the locks pin, each file checked against its sha256, and nothing else: pip and setuptools
# (requirements/build.txt), every extra (requirements/dev.txt), then the project itself, editable, built with the
# locked setuptools. Done again whenever pyproject.toml or a lock changes; packages a lock no longer pins are
# uninstalled. A lock older than pyproject.toml's dependencies is installed as it is, with a warning (`make lint`
# fails on it): `make lock` then.
$(STAMP): pyproject.toml $(LOCK) $(BUILD_LOCK)
	@$(PYTHON) tools/lock.py check --warn
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r $(BUILD_LOCK)
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) tools/lock.py extraneous $(BUILD_LOCK) $(LOCK) | xargs --no-run-if-empty $(PY) -m pip uninstall --quiet --yes
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $(STAMP)

# Writes the locks under requirements/ from pyproject.toml with uv (tools/lock.py): for CPython 3.11 on Linux
# x86_64, every file's sha256, the versions already locked kept where pyproject.toml still allows them. Commit them.
lock:
	@test -x $(VENV)/bin/uv || $(MAKE) --no-print-directory $(STAMP)
	$(PYTHON) tools/lock.py compile --uv $(VENV)/bin/uv $(LOCK_FLAGS)

# Fails when a lock was not made from pyproject.toml's dependencies as they are (offline; part of `make lint`).
check-lock:
	@$(PYTHON) tools/lock.py check

# Known vulnerabilities in the images' locked versions, from PyPI's JSON API (tools/audit.py; part of `make lint`;
# needs PyPI, a few seconds). Versions behind their latest release can be checked only against its advisories here:
# the audit lists them.
audit:
	$(AUDIT_PY) tools/audit.py $(AUDIT_LOCKS) $(AUDIT_FLAGS)

# The gateway's CycloneDX SBOM (JSON, spec 1.6, reproducible: no timestamp or serial number): its dependencies as
# installed from requirements/gateway.txt into a throwaway environment (no pip, no setuptools), with their licenses
# and the dependency graph, the project from pyproject.toml at the root. Not committed (sbom/ is ignored): it is
# made again from the lock of the commit built.
sbom: $(SBOM)

$(SBOM): requirements/gateway.txt pyproject.toml $(STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  $(PYTHON) -m venv --without-pip "$$tmp/env" && \
	  $(PY) -m pip --python "$$tmp/env/bin/python" install --quiet --require-hashes --only-binary :all: \
	    -r requirements/gateway.txt && \
	  mkdir -p $(dir $(SBOM)) && \
	  $(VENV)/bin/cyclonedx-py environment --pyproject pyproject.toml --mc-type application --sv 1.6 --of JSON \
	    --output-reproducible -o $@.tmp "$$tmp/env/bin/python" && \
	  mv $@.tmp $@ && \
	  $(PY) -c 'import json, sys; bom = json.load(open(sys.argv[1])); print(sys.argv[1] + ": CycloneDX", bom["specVersion"] + ",", len(bom["components"]), "components")' $@

# Regenerates the committed Python stubs under protos/gen/python from protos/ (see buf.gen.yaml). The other
# languages' stubs are not committed: `make clients` generates them.
gen: setup
	$(BUF) generate

GENERATED := protos/gen/python
CLIENT_STUBS := clients/node/gen clients/java/gen clients/go/gen

# Fails when the committed Python stubs differ from what `make gen` would write.
check-gen: setup
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  $(BUF) generate --output "$$tmp" && \
	  for dir in $(GENERATED); do diff -r "$$tmp/$$dir" "$$dir" -x __pycache__ || exit 1; done && \
	  echo "generated stubs are fresh"

lint: setup check-gen check-lock
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(BUF) lint
	$(BUF) format --diff --exit-code
	@# The API against its first release and against the commit before this one (main itself is this commit).
	@first=$$(git log --diff-filter=A --format=%H -- protos/segmentation/v1/segmentation_service.proto | tail -n 1); \
	if [ -n "$$first" ] && git rev-parse --verify --quiet HEAD~1 >/dev/null; then \
	  $(BUF) breaking --against ".git#ref=$$first" && $(BUF) breaking --against '.git#ref=HEAD~1' && \
	  echo "no breaking changes against the API's first release ($${first:0:7}) or the previous commit"; \
	else echo "buf breaking: no earlier API in this clone's history, nothing to compare"; fi
	bash deploy/check-manifests.sh
	bash deploy/envoy/check.sh
	promtool check rules deploy/alerts/gateway.rules.yml
	promtool test rules deploy/alerts/gateway.rules.test.yml
	$(AUDIT_PY) tools/audit.py $(AUDIT_LOCKS) $(AUDIT_FLAGS)

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
	$(BUF) format -w

# Exports the shared DeepLab frozen graph as versions 1 and 2 of the servable, and lays out the shared TFLite model
# as version 1 of another, unless they are already there.
export: setup $(MODEL_BASE)/1/saved_model.pb $(MODEL_BASE)/2/saved_model.pb $(LITE_BASE)/1/model.tflite

# Made again when the exporter changes (its signatures may have), from scratch: models/ holds only what this writes.
$(MODEL_BASE)/1/saved_model.pb: $(wildcard exporter/*.py)
	rm -rf $(MODEL_BASE)
	$(PY) -m exporter --frozen-graph $(FROZEN_GRAPH) --export-dir $(MODEL_BASE) --version 1

# Version 2 for the A/B and shadow examples (deploy/models.config labels it "canary"): here, a copy of version 1;
# copied aside and renamed, since model servers poll these folders.
$(MODEL_BASE)/2/saved_model.pb: $(MODEL_BASE)/1/saved_model.pb
	rm -rf $(MODEL_BASE)/.2.tmp && cp -r $(MODEL_BASE)/1 $(MODEL_BASE)/.2.tmp && mv $(MODEL_BASE)/.2.tmp $(MODEL_BASE)/2

# The shared TFLite model as version 1 of a servable, laid out as TF Serving serves it (--prefer_tflite_model);
# written atomically, since model servers poll these folders.
$(LITE_BASE)/1/model.tflite:
	mkdir -p $(LITE_BASE)
	rm -rf $(LITE_BASE)/.1.tmp && mkdir $(LITE_BASE)/.1.tmp && cp $(TFLITE_MODEL) $(LITE_BASE)/.1.tmp/model.tflite
	mv $(LITE_BASE)/.1.tmp $(LITE_BASE)/1

# Generates the Node, Java and Go stubs (clients/buf.gen.yaml) and compiles the Java, Scala and Go examples (the
# Node one runs from source).
clients: setup
	@BUF=$(BUF) bash clients/build.sh

# The unit tests (tests/service, which mirrors service/, tests/clients and tests/tools; marked `unit`): in-process,
# no model server, toolchain or browser, spread over UNIT_TEST_PROCS processes (pytest-xdist): many of them wait on
# sockets and timers, so a process more than the cores keeps the cores busy (25 s rather than 30 on 2 cores).
TEST_PROCS ?= 3
UNIT_TEST_PROCS ?= 3
test-unit: $(STAMP)
	$(PY) -m pytest -n $(UNIT_TEST_PROCS) tests/service tests/clients tests/tools tests/bench

# The config file's JSON Schema for editors, from the keys' declarations (service/config.py, service/profiles.py);
# tests/service/test_config_schema.py fails when the committed one differs.
schema: $(STAMP)
	$(PY) -m service.config_schema > docs/config.schema.json

# docs/ built into site/ by MkDocs (mkdocs.yml; --strict: a broken link or anchor between pages fails), then README.md
# and docs/ checked by tools/check_docs.py: every link and anchor, and the commands in their shell blocks.
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --quiet
	$(PY) tools/check_docs.py

# The unit and end-to-end tests side by side in TEST_PROCS processes, each end-to-end one with servers of its own on
# loopback, and the scale test (Envoy, two gateways, two modelservers); then those that judge latency under load
# (marked `alone`) with nothing beside them; then the TensorFlow side, a process of its own (it registers the same
# protobuf names as the gateway's stubs). Side by side, a module's tests run in one process (its servers start once;
# tests/conftest.py hands out the end-to-end modules first), three processes on two cores (many tests wait on
# servers and timers), and the servable exported by `make export` is copied instead of exported again by each.
SIDE_BY_SIDE = -n $(TEST_PROCS) --dist loadscope --no-loadscope-reorder
test: export TEST_EXPORTED_VERSION = $(MODEL_BASE)/1
test: setup clients export
	$(PY) -m pytest $(SIDE_BY_SIDE) -m "not alone" tests/service tests/clients tests/tools tests/bench tests/gateway \
	  tests/deploy/test_scale.py
	$(PY) -m pytest -m alone tests/gateway
	$(PY) -m pytest $(SIDE_BY_SIDE) tests/model

# The gateway's image and the local modelserver's (deploy/Containerfile*), built with podman; their sizes at the end.
# BASE_IMAGE=... picks the base (default: python:3.11-slim-bookworm if a registry answers, else a local Debian one).
image: setup
	@bash deploy/containers/build.sh

# deploy/compose/ brought up with podman-compose (the local override: modelserver for tensorflow/serving), a photo
# sent through it with grpcurl, metrics read from the gateway, the model server and Prometheus, then taken down.
compose-test: image
	$(PY) -m pytest -s -p no:cacheprovider tests/deploy/test_compose.py

# Envoy (deploy/envoy/envoy.yaml) -> 2 gateways -> round_robin -> 2 modelservers on loopback: the spread, then one
# gateway and one modelserver killed under load and restarted (tests/deploy/test_scale.py), with its report printed.
# Part of `make test` too (beside the other tests, its report unprinted).
scale-test: export
	$(PY) -m pytest -s -p no:cacheprovider tests/deploy/test_scale.py

# Each attack of docs/reliability.md's "Security" section against a gateway of its own beside modelserver
# (bench/attacks.py): the codes, the time to refusal and the RSS growth, as one JSON line. ATTACK_SOURCE=DIR attacks
# another checkout's gateway (with this one's environment): the figures before a change.
ATTACK_SOURCE ?= .
attacks: export
	$(PY) -m bench.attacks --source=$(ATTACK_SOURCE) --model-base=$(MODEL_BASE)

# 10 minutes at concurrency 16 of mixed photos, formats, mask options and bad inputs (bench/soak.py): unexpected
# errors, the gateway's RSS slope and the first and last minute's p99, as one JSON line.
soak: export
	$(PY) -m bench.soak --minutes=10 --concurrency=16 --model-base=$(MODEL_BASE)

# Each fuzz target (tests/fuzz) for FUZZ_SECONDS (default 5 minutes); crashes land in tests/fuzz/regressions/.
FUZZ_SECONDS ?= 300
fuzz: setup
	for target in probe decode sizes mask request; do $(PY) -m tests.fuzz $$target -max_total_time=$(FUZZ_SECONDS) || exit 1; done

# modelserver on :8500 and the gateway on :50051 until Ctrl-C; CONFIG=FILE runs the gateway with a config file.
run: export
	@CONFIG=$(CONFIG) bash deploy/run-local.sh

# The same, with NVIDIA Triton serving the same servable on :8001 beside modelserver, and examples/triton.toml: the
# default model answered by TF Serving and shadowed on Triton (their agreement in ListModels), deeplab-triton on Triton.
run-triton: export
	@CONFIG=examples/triton.toml TRITON=1 bash deploy/run-local.sh

# The `segment` CLI on the shared photos, against the servers `make run` started (in another terminal).
demo: setup
	@.venv/bin/segment health --server localhost:50051 >/dev/null 2>&1 || \
	  { echo "no SERVING gateway on localhost:50051: run 'make run' in another terminal first" >&2; exit 1; }
	.venv/bin/segment $(SHARED)/images --server localhost:50051 --out demo-out --overwrite
	@echo "masks, overlays and JSON summaries are in demo-out/"

# Side-by-side benchmarks with the peers and levers; writes bench/BENCHMARKS.md, benchmarks.png and benchmarks-run.json
# (a full run took 19 minutes here on 2026-12-03; quick: 1080p and 4K only, 2 s a cell).
bench: export
	$(PY) -m bench --plan=full --model-base=$(MODEL_BASE)

# The gateway's own capacity beside an instant model server (bench/capacity.py; about 3 minutes): images per gateway
# CPU-second on one core against the full decodes a core does, and one and two processes on two cores, as one JSON line.
capacity: export
	$(PY) -m bench.capacity --model-base=$(MODEL_BASE)

bench-quick: export
	$(PY) -m bench --plan=quick --model-base=$(MODEL_BASE)

# Every model the examples configure against the model's own output on the full photo, case by case (bench/fidelity.py:
# the shared and scikit-image photos as given, in every EXIF orientation, as PNG, WebP, HEIC and AVIF, at 1080p and 4K;
# about 2 minutes). Writes bench/FIDELITY.md, prints one JSON line, and fails if a target is missed. `make test` runs its
# short form (tests/model/test_fidelity.py).
fidelity: export
	$(PY) -m bench.fidelity --plan=full --model-base=$(MODEL_BASE) --lite-base=$(LITE_BASE) --report=bench/FIDELITY.md

clean:
	rm -rf $(VENV) triton/.venv bench/.venv-kserve models .pytest_cache .ruff_cache .run demo-out site sbom
	rm -rf clients/java/build clients/scala/build clients/go/bin clients/node/node_modules $(CLIENT_STUBS)
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
