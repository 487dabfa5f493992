#!/usr/bin/env bash
# The README's first command: install (once) and render demo.mp4, NASA's public-domain
# astronaut portrait (shipped with scikit-image) speaking a sentence in espeak-ng's voice.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/phototalk demo -o "${1:-demo.mp4}"
