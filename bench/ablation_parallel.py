"""Benchmark (not a test): ablation runs per hour against ``--parallel N``.

One lightweight network leaves most of a large GPU idle, so ``ablate(parallel=N)`` trains N grid
points at once in separate processes. This times the same small grid (fresh registry each time)
for each N and reports total runs per hour. On the CPU the cores are split between the workers.

    python bench/ablation_parallel.py [--device cuda] [--ns 1,2,4,8] [--steps 300] [--out CSV]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from sr_kit.ablation import ablate
from sr_kit.complexity import device_name
from sr_kit.config import get_config, train_config
from sr_kit.device import resolve_device
from sr_kit.evaluate import write_csv_atomic
from sr_kit.experiment import git_commit, utc_now
from sr_kit.runconfig import RunConfig

# The switch each timed grid flips (results/ablation_parallel_cpu.csv used lmswn / asym).
FLIP = {"lmswn": ("asym", False), "safdnet": ("shift_ratio", 0.0)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--ns", default=None, help="parallel values (default 1,2,4,8 GPU; 1,2 CPU)")
    p.add_argument("--model", default="lmswn")
    p.add_argument("--steps", type=int, default=None, help="steps per run (300 GPU, 30 CPU)")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    ns = [int(n) for n in (args.ns or ("1,2,4,8" if gpu else "1,2")).split(",")]
    steps = args.steps or (300 if gpu else 30)
    preset = "brief-gpu" if gpu else "quick-cpu"
    train = train_config(preset, steps=steps, device=str(device), val_every=0,
                         checkpoint_every=0, time_budget_s=0.0)  # fmt: skip
    if args.model not in FLIP:
        p.error(f"--model must be one of {', '.join(FLIP)} (the networks with switches)")
    key, value = FLIP[args.model]
    grid = {key: [value]}  # base + one flipped switch: 2 configs x seeds runs
    base = RunConfig(model=get_config(args.model, scale=4), train=train)
    rows = []
    for n in ns:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            table = ablate(base, grid, seeds=args.seeds,
                           registry=Path(tmp) / "r.sqlite", parallel=n, progress=False,
                           run_root=Path(tmp) / "runs")  # fmt: skip
            wall = time.perf_counter() - t0
        runs = int(table.n.sum())
        rows.append({
            "parallel": n, "runs": runs, "steps_per_run": steps, "wall_s": round(wall, 2),
            "runs_per_hour": round(3600 * runs / wall, 1), "model": args.model,
            "device": device_name(device), "cpu_count": os.cpu_count(),
            "commit": git_commit(), "date": utc_now(),
            "command": "python bench/ablation_parallel.py " + shlex.join(sys.argv[1:]),
        })  # fmt: skip
        print(f"parallel={n}: {runs} runs in {wall:.1f} s -> {3600 * runs / wall:.0f} runs/h")
    out = Path(args.out or f"results/ablation_parallel_{device.type}.csv")
    write_csv_atomic(pd.DataFrame(rows), out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
