#!/usr/bin/env bash
# Creates or updates a virtual environment of its own for a program that must not share the project's .venv (a
# peer with other pins, a server that needs another Python), from a pinned requirements file.
#   tools/side-venv.sh LABEL REQUIREMENTS VENV [PACKAGE]
# PYTHON picks the interpreter (default python3). Idempotent: does nothing when the venv's stamp holds the hash of
# the requirements and of the Python used. Prints one line (PACKAGE's version, if given); pip's output goes to
# VENV/install.log.
set -euo pipefail

label="$1" requirements="$2" venv="$3" package="${4:-}"
python="${PYTHON:-python3}"
stamp="$venv/.requirements.sha256"

# One maker at a time (test processes running side by side may each ask for the same venv): the lock is held on the
# requirements file, which exists before the venv and outlives a venv made again.
exec 9<"$requirements"
flock 9

version() {
  [[ -n "$package" ]] && echo ", $package $("$venv/bin/python" -c "import importlib.metadata as m; print(m.version('$package'))")"
  true
}

want="$({ sha256sum <"$requirements"; "$python" -c 'import sys; print(sys.executable, sys.version)'; } | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/python" ]]; then
  echo "$label venv: up to date ($venv$(version))"
  exit 0
fi

start=$SECONDS
rm -f "$stamp"
# A venv left half made (its maker interrupted) has a python but no pip: made again from scratch.
"$venv/bin/python" -m pip --version >/dev/null 2>&1 || "$python" -m venv --clear "$venv"
if ! "$venv/bin/python" -m pip install --disable-pip-version-check -r "$requirements" >"$venv/install.log" 2>&1; then
  tail -n 30 "$venv/install.log" >&2
  echo "$label venv: pip install failed (whole log: $venv/install.log)" >&2
  exit 1
fi
echo "$want" >"$stamp"
echo "$label venv: installed in $((SECONDS - start)) s ($venv, $(du -sh "$venv" | cut -f1)$(version))"
