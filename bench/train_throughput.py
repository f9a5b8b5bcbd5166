"""Benchmark (not a test): ``fit`` against a bare forward/backward/step loop, per network.

The bare loop trains on one fixed batch already on the device: it is the ceiling, with no data
path at all. ``fit`` draws a fresh batch every step from the on-device ``PatchSampler`` and keeps
its bookkeeping (schedule, loss accumulation, progress). The ratio ``fit / bare`` (steps per
second) is the kit's overhead; the target on a GPU is >= 0.95.

    python bench/train_throughput.py [--device cuda] [--compile] [--steps 200] [--out CSV]

Writes ``results/train_throughput_<device>.csv`` with the device name, torch version, commit and
date. CPU figures are CPU figures: run it on a GPU for GPU numbers.
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
import torch.nn.functional as F

from sr_kit.config import train_config
from sr_kit.data import embedded_images
from sr_kit.device import device_name, resolve_device
from sr_kit.evaluate import write_csv_atomic
from sr_kit.experiment import git_commit, l1_loss, utc_now
from sr_kit.models import build_model
from sr_kit.sampler import PatchSampler
from sr_kit.train import fit


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_loop(model, lr, hr, cfg, device, steps: int, warmup: int) -> float:
    """Steps per second of the plainest training loop on one fixed batch."""
    if cfg.channels_last:  # the same layout fit uses
        model = model.to(memory_format=torch.channels_last)
        lr = lr.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    net = torch.compile(model) if cfg.compile else model

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp):
            loss = F.l1_loss(net(lr).float(), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps / (time.perf_counter() - t0)


def fit_rate(model, sampler, cfg, steps: int, warmup: int) -> float:
    """Steps per second of ``fit`` (warm-up run first, so compilation is not timed)."""
    fit(model, l1_loss, sampler, dataclasses.replace(cfg, steps=warmup), progress=False)
    t0 = time.perf_counter()
    res = fit(model, l1_loss, sampler, dataclasses.replace(cfg, steps=steps), progress=False)
    return res.steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--models", default="imdn,rfdn,lmswn,safdnet")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 200 GPU, 20 CPU)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--patch", type=int, default=None)
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd models")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    command = "python bench/train_throughput.py " + shlex.join(sys.argv[1:])
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    preset = "brief-gpu" if gpu else "quick-cpu"
    steps = args.steps or (200 if gpu else 20)
    warmup = 20 if gpu else 3
    base = train_config(preset, device=str(device), val_every=0, checkpoint_every=0,
                        time_budget_s=0.0)  # fmt: skip
    if args.batch_size:
        base = dataclasses.replace(base, batch_size=args.batch_size)
    if args.patch:
        base = dataclasses.replace(base, patch=args.patch)
    images = list(embedded_images("train").values())
    sampler = PatchSampler(images, args.scale, base.patch, device=device, seed=0)
    lr, hr = sampler.sample(base.batch_size)
    rows = []
    for compiled in (False, True) if args.compile else (False,):
        cfg = dataclasses.replace(base, compile=compiled)
        for name in args.models.split(","):
            torch.manual_seed(0)
            bare = bare_loop(build_model(name, scale=args.scale).to(device), lr, hr, cfg,
                             device, steps, warmup)  # fmt: skip
            torch.manual_seed(0)
            kit = fit_rate(build_model(name, scale=args.scale), sampler, cfg, steps, warmup)
            rows.append({
                "model": name, "scale": args.scale, "compiled": compiled,
                "batch_size": cfg.batch_size, "patch": cfg.patch, "amp_bf16": cfg.amp,
                "channels_last": cfg.channels_last, "bare_steps_per_s": round(bare, 3),
                "fit_steps_per_s": round(kit, 3), "ratio": round(kit / bare, 3),
                "device": device_name(device), "threads": torch.get_num_threads(),
                "torch": torch.__version__, "commit": git_commit(),
                "date": utc_now(), "command": command,
            })  # fmt: skip
            print(f"{name:8s} compiled={compiled!s:5} bare {bare:7.2f} it/s  fit {kit:7.2f} it/s"
                  f"  ratio {kit / bare:.3f}")  # fmt: skip
    out = Path(args.out or f"results/train_throughput_{device.type}.csv")
    write_csv_atomic(pd.DataFrame(rows), out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
