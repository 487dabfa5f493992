#!/usr/bin/env bash
# Creates .venv (Python 3.10-3.12) with the pinned requirements and phototalk itself.
# Idempotent: re-running is a no-op unless requirements.txt or pyproject.toml changed.
# No apt packages are needed: FFmpeg, MediaPipe's models and espeak-ng come in wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.11 python3.12 python3.10 python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(not (3,10) <= sys.version_info[:2] <= (3,12))'; then
      PY=$c; break
    fi
  done
fi
[ -n "$PY" ] || { echo "setup: need Python 3.10, 3.11 or 3.12 (mediapipe 0.10.21 has no wheels for others)" >&2; exit 1; }
stamp=.venv/.phototalk-installed
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "setup: installing into .venv with $PY (first run takes a minute or two)" >&2
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
echo "$want" > "$stamp"
