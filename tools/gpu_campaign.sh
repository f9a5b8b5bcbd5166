#!/usr/bin/env bash
# One GPU campaign chunk, from the source tree, with whatever torch the machine has.
#
#   bash tools/gpu_campaign.sh CHUNK [--out DIR] [--data-root DIR] [...]   (see sr_kit/campaign.py)
#   PYTHON=.venv/bin/python bash tools/gpu_campaign.sh smoke --device cpu --dry-run   (here)
#
# On a lent GPU machine nothing can be installed from a registry: the pure-Python packages the kit
# needs and the machine lacks travel as wheels in .whl/ (made here by tools/gpu_wheels.sh, named
# in the device call's `carry`), installed into /tmp/site. Write results under $OUT there so
# that they come back: --out "$OUT/results" --checkpoints "$OUT/checkpoints".
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import torch, sys; print(f'torch {torch.__version__}, cuda {torch.cuda.is_available()}', file=sys.stderr)"
exec "$PY" -m sr_kit.campaign "$@"
