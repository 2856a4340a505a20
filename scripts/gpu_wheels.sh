#!/usr/bin/env bash
# Wheels for what the GPU machine lacks (see scripts/gpu_check.sh): fast-bleu, which BLEU needs and
# which PyPI ships only as source, compiled here for that machine's Python 3.12. Then the CUDA tests
# evaluate text runs too instead of skipping them. Run once here, from the repository root, then
# carry .whl (git-ignored) with data/:   bash scripts/gpu_wheels.sh   (PY312=path/to/python3.12)
set -eu
PY312=${PY312:-python3.12}
if ! "$PY312" --version > /dev/null 2>&1; then # e.g. pyenv's shim, with 3.12 installed but not selected
  PY312=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 2> /dev/null | tail -n 1)
  [ -n "$PY312" ] || { echo "no Python 3.12 found: set PY312=path/to/python3.12" >&2; exit 1; }
fi
mkdir -p .whl
"$PY312" -m pip wheel --quiet --no-deps fast-bleu==0.0.90 -w .whl
ls -l .whl
