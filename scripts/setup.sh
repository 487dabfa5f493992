#!/usr/bin/env bash
# Creates a virtual environment (default .venv) with the pinned requirements and phototalk.
# Python: $PYTHON if given, else the newest CPython >= 3.10 found on PATH (python3.14 ...
# python3.10, python3) or under pyenv ($PYENV_ROOT or ~/.pyenv/versions/*). VENV=DIR picks
# another directory (.ci/run uses .venv313 for its second Python).
# Idempotent: re-running is a no-op unless requirements.txt, pyproject.toml or the requested
# Python changed. An existing environment is kept unless PYTHON names another version.
# No apt packages are needed: FFmpeg, espeak-ng and the face models come in wheels/the package.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
MIN_VERSION="(3, 10)"

version_of() {  # prints "3.13" for a usable CPython >= 3.10 with venv, nothing otherwise
  "$1" -c "import sys, venv, ensurepip; v = sys.version_info[:2]; print('%d.%d' % v if v >= $MIN_VERSION and sys.implementation.name == 'cpython' else '')" 2>/dev/null || true
}

newest_python() {
  local best="" best_v="0.0" c v
  local cands=(python3.14 python3.13 python3.12 python3.11 python3.10 python3)
  local root=${PYENV_ROOT:-$HOME/.pyenv}
  for c in "$root"/versions/3.*/bin/python3; do [ -x "$c" ] && cands+=("$c"); done
  for c in "${cands[@]}"; do
    command -v "$c" >/dev/null 2>&1 || continue
    v=$(version_of "$c")
    [ -n "$v" ] || continue
    if [ "$(printf '%s\n%s\n' "$best_v" "$v" | sort -V | tail -1)" = "$v" ] && [ "$v" != "$best_v" ]; then
      best=$c; best_v=$v
    fi
  done
  echo "$best"
}

if [ -n "${PYTHON:-}" ]; then
  PY=$PYTHON
  want_v=$(version_of "$PY")
  [ -n "$want_v" ] || { echo "setup: PYTHON=$PY is not a CPython >= 3.10 with the venv module" >&2; exit 1; }
elif [ -x "$VENV/bin/python" ] && [ -n "$(version_of "$VENV/bin/python")" ]; then
  PY="$VENV/bin/python"  # keep the environment that is there
  want_v=$(version_of "$PY")
else
  PY=$(newest_python)
  [ -n "$PY" ] || { echo "setup: need CPython 3.10 or newer (none found on PATH or under ~/.pyenv); set PYTHON=/path/to/python3" >&2; exit 1; }
  want_v=$(version_of "$PY")
fi

if [ -x "$VENV/bin/python" ] && [ "$(version_of "$VENV/bin/python")" != "$want_v" ]; then
  echo "setup: $VENV has Python $(version_of "$VENV/bin/python"), $want_v was asked for: recreating it" >&2
  rm -rf "$VENV"
fi
stamp=$VENV/.phototalk-installed
want=$( (cat requirements.txt pyproject.toml; echo "$want_v") | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "setup: installing into $VENV with Python $want_v ($PY; first run takes a minute)" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .
echo "$want" > "$stamp"
