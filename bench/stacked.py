"""Benchmark (not a test): S seeds of one config, stacked in one process vs one after another.

``sr_kit.stacked.fit_stacked`` trains S copies as one vmapped model; the alternative is S separate
``fit`` runs (one after another here; ``bench/ablation_parallel.py`` measures concurrent
processes). Both train the same weights (tests/test_stacked.py), so the only question is speed:
seed-steps per second for S = 1, 2, 4, 8.

    python bench/stacked.py [--device cuda] [--model lmswn] [--steps 50] [--out CSV]

Writes ``results/stacked_<device>.csv`` with the device, torch, commit, date and command. On a
CPU stacking mostly does not pay; a GPU, where launch overhead dominates small models, decides.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from sr_kit.config import train_config
from sr_kit.data import embedded_images
from sr_kit.device import device_name, resolve_device
from sr_kit.evaluate import write_csv_atomic
from sr_kit.experiment import git_commit, l1_loss, utc_now
from sr_kit.models import build_model
from sr_kit.sampler import PatchSampler
from sr_kit.stacked import fit_stacked
from sr_kit.train import fit


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--model", default="lmswn")
    p.add_argument("--seeds", default="1,2,4,8", help="stack sizes S")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 50 GPU, 5 CPU)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    steps = args.steps or (50 if gpu else 5)
    cfg = train_config("brief-gpu" if gpu else "quick-cpu", steps=steps, device=str(device),
                       val_every=0, checkpoint_every=0, time_budget_s=0.0,
                       channels_last=False)  # fmt: skip
    images = list(embedded_images("train").values())
    command = "python bench/stacked.py " + shlex.join(sys.argv[1:])
    rows = []
    for s in (int(v) for v in args.seeds.split(",")):
        seeds = range(s)
        models = [build_model(args.model, scale=4) for _ in seeds]
        sources = [PatchSampler(images, 4, cfg.patch, device=device, seed=i) for i in seeds]
        fit_stacked(models, l1_loss, sources, dataclasses.replace(cfg, steps=1))  # warm-up
        _sync(device)
        t0 = time.perf_counter()
        fit_stacked(models, l1_loss, sources, cfg)
        _sync(device)
        stacked = s * steps / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for model, source in zip(models, sources, strict=True):
            fit(model, l1_loss, source, cfg, progress=False)
        _sync(device)
        apart = s * steps / (time.perf_counter() - t0)
        rows.append({
            "model": args.model, "scale": 4, "seeds": s, "batch_size": cfg.batch_size,
            "patch": cfg.patch, "amp_bf16": cfg.amp, "steps": steps,
            "stacked_seed_steps_per_s": round(stacked, 3),
            "separate_seed_steps_per_s": round(apart, 3), "ratio": round(stacked / apart, 3),
            "device": device_name(device), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "commit": git_commit(), "date": utc_now(),
            "command": command,
        })  # fmt: skip
        print(f"S={s}: stacked {stacked:7.2f} seed-steps/s, separate {apart:7.2f}, "
              f"ratio {stacked / apart:.2f}")  # fmt: skip
    out = Path(args.out or f"results/stacked_{device.type}.csv")
    write_csv_atomic(pd.DataFrame(rows), out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
