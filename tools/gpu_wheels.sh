#!/usr/bin/env bash
# The wheels a lent GPU machine needs for tools/gpu_campaign.sh, into .whl/ (git-ignored).
# The machine's image has torch, numpy, scipy, pandas, scikit-image, pillow, matplotlib, tqdm,
# pyyaml, tabulate and portalocker (device KINDS.md); it lacks fvcore and three of its needs.
# fvcore and iopath are published as source only: they are built here (pure Python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
mkdir -p .whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
"$PY" -m pip wheel -q --no-deps -w .whl fvcore==0.1.5.post20221221 iopath==0.1.10
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 --platform any -d .whl yacs==0.1.8 termcolor==3.1.0
ls -1 .whl
