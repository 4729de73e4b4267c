#!/usr/bin/env bash
# Creates bench/.venv-kserve, a virtual environment of its own for the KServe transformer peer
# (bench/kserve/transformer.py), from bench/kserve/requirements.txt. KServe's pins never touch the project's .venv.
# Idempotent: does nothing when the venv's stamp holds the hash of requirements.txt (and of the Python used).
# Prints one line; pip's output goes to bench/.venv-kserve/install.log.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$(dirname "$here")/.venv-kserve"
requirements="$here/requirements.txt"
python="${PYTHON:-python3}"
stamp="$venv/.requirements.sha256"

want="$({ sha256sum <"$requirements"; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/python" ]]; then
  echo "kserve venv: up to date ($venv, kserve $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("kserve"))'))"
  exit 0
fi

start=$SECONDS
rm -f "$stamp"
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
if ! "$venv/bin/python" -m pip install --disable-pip-version-check -r "$requirements" >"$venv/install.log" 2>&1; then
  tail -n 30 "$venv/install.log" >&2
  echo "kserve venv: pip install failed (whole log: $venv/install.log)" >&2
  exit 1
fi
echo "$want" >"$stamp"
echo "kserve venv: installed in $((SECONDS - start)) s ($venv, $(du -sh "$venv" | cut -f1))"
