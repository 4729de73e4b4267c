#!/usr/bin/env bash
# Creates triton/.venv, a virtual environment of its own for NVIDIA Triton Inference Server (nvidia-pytriton ships
# the real `tritonserver`) and triton/serve.py, from triton/requirements.txt.
# Made with Debian's /usr/bin/python3: under other builds of Python 3.11 Triton's Python backend stub fails at
# start ('_thread.RLock' object has no attribute '_recursion_count').
# Idempotent; prints one line; pip's output goes to triton/.venv/install.log.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${TRITON_PYTHON:-/usr/bin/python3}" exec "$here/../tools/side-venv.sh" triton "$here/requirements.txt" \
  "$here/.venv" nvidia-pytriton
