#!/usr/bin/env bash
# Creates bench/.venv-kserve, a virtual environment of its own for the KServe transformer peer
# (bench/kserve/transformer.py), from bench/kserve/requirements.txt. KServe's pins never touch the project's .venv.
# Idempotent; prints one line; pip's output goes to bench/.venv-kserve/install.log.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$here/../../tools/side-venv.sh" kserve "$here/requirements.txt" "$(dirname "$here")/.venv-kserve" kserve
