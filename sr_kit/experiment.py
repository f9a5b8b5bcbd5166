"""One training run from end to end: data -> model -> fit -> protocol evaluation -> registry.

This is what ``sr-kit train``, the ablation grid and the widget's Train button all call, so a run
is recorded the same way whichever door it came through: config and hashes, seed, training
settings, steps, wall time, device, torch version, git commit, command, status, cost and metrics.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import ModelConfig, TrainConfig, config_hash, config_to_dict
from .runs import Registry

__all__ = [
    "RunOutcome",
    "git_commit",
    "run_training",
    "train_key",
    "training_images",
    "utc_now",
]

_REPO = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    """Short commit of the kit's checkout, with ``+dirty`` for uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(_REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(_REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def utc_now() -> str:
    """The current UTC time as recorded in result files, e.g. 2026-11-21T20:52:40Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def train_key(train: TrainConfig, device: str) -> dict[str, Any]:
    """The training settings that change the result: what the registry hashes to reuse runs.

    The seed is stored in its own column; validation and checkpoint intervals do not change the
    weights; the device type does (a CPU run is never reused as a GPU result).
    """
    d = dataclasses.asdict(train)
    for key in ("seed", "val_every", "checkpoint_every", "device"):
        d.pop(key)
    d["device_type"] = torch.device(device).type
    return d


def training_images(
    data: str, scale: int, data_root: str | os.PathLike | None = None
) -> tuple[list[np.ndarray], list[str]]:
    """HR training images: ``embedded`` (its train split), a named set or a folder."""
    from .data import embedded_images, read_image, resolve_dataset

    if data.lower() in ("embedded", "embedded:train", "embedded-train"):
        images = embedded_images("train")
        return list(images.values()), list(images)
    ds = resolve_dataset(data, scale, data_root=data_root)
    return [read_image(p) for p in ds.hr_paths], list(ds.names)


@dataclasses.dataclass
class RunOutcome:
    """The result of ``run_training``."""

    run_id: int | None
    run_dir: Path
    metrics: list[dict[str, Any]]
    history: list[dict[str, float]]
    steps: int
    wall_s: float
    status: str
    device: str


def _default_run_dir(cfg: ModelConfig, seed: int) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.name}-x{cfg.scale}-{config_hash(cfg)[:8]}-s{seed}-{stamp}"


def run_training(
    model_cfg: ModelConfig,
    train: TrainConfig,
    *,
    data: str = "embedded",
    val: str | None = "auto",
    eval_sets: Sequence[str] | None = None,
    data_root: str | os.PathLike | None = None,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    registry: Registry | str | os.PathLike | None = None,
    command: str | None = None,
    progress: bool = True,
    callbacks: Sequence[Callable[[dict[str, float]], None]] = (),
) -> RunOutcome:
    """Train ``model_cfg`` with ``train`` on ``data``, evaluate, and record the run.

    Args:
        model_cfg: The network config (switches included).
        train: Training settings; ``train.seed`` seeds the weights and the patch sampler.
        data: Training images: "embedded", a named set (e.g. "div2k") or a folder of HR images.
        val: Validation set watched during training; "auto" is the embedded val split when
            training on embedded data, else none; None for none.
        eval_sets: Sets evaluated with the full protocol at the end (default: the val set).
        data_root: Where named sets live (see ``sr_kit.data.data_root``).
        run_dir: Checkpoint folder (default ``runs/<model>-x<s>-<hash>-s<seed>-<time>``).
        resume: Continue the checkpoint in ``run_dir``.
        registry: A ``Registry`` or its path; None uses the default registry.
        command: The command line to record (default: this process's argv).
        progress: Progress bars.
        callbacks: Passed to ``fit`` (history records as they come).
    """
    from .complexity import count_params, device_name, macs_at
    from .data import resolve_dataset
    from .evaluate import evaluate
    from .models import build_model, deploy, save_model
    from .sampler import PatchSampler
    from .train import fit, resolve_device

    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    rank = torch.distributed.get_rank() if distributed else 0
    device = resolve_device(train.device)
    if distributed and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    train = dataclasses.replace(train, device=str(device))
    scale = model_cfg.scale

    torch.manual_seed(train.seed)  # the same seed gives the same initial weights on every rank
    model = build_model(model_cfg)
    images, names = training_images(data, scale, data_root)
    source = PatchSampler(
        images, scale, train.patch, device=device, seed=train.seed + 1000 * rank, names=names
    )
    if val == "auto":
        val = "embedded" if data.lower().startswith("embedded") else None
    val_pairs = list(resolve_dataset(val, scale, data_root=data_root)) if val else None
    eval_sets = list(eval_sets) if eval_sets is not None else ([val] if val else [])

    run_path = Path(run_dir) if run_dir is not None else _default_run_dir(model_cfg, train.seed)
    main = rank == 0
    reg = None
    run_id = None
    if main:
        reg = registry if isinstance(registry, Registry) else Registry(registry)
        params = count_params(model)
        run_id = reg.start_run(
            model=model_cfg.name, scale=scale, seed=train.seed, config=config_to_dict(model_cfg),
            train=train_key(train, str(device)), data=data,
            command=command if command is not None else " ".join(sys.argv),
            device=device_name(device), torch_version=torch.__version__, commit=git_commit(),
            params=params, params_deploy=count_params(deploy(model)),
            macs=macs_at(model, scale), run_dir=str(run_path),
        )  # fmt: skip
    status = "failed"
    try:
        result = fit(
            model, source, train, val=val_pairs, scale=scale, run_dir=run_path, resume=resume,
            progress=progress, callbacks=callbacks,
        )  # fmt: skip
        metrics: list[dict[str, Any]] = []
        if main:
            model.eval()
            datasets = [resolve_dataset(name, scale, data_root=data_root) for name in eval_sets]
            per_image = evaluate(model, datasets, scale=scale, device=device, progress=progress,
                                 lpips=None)  # LPIPS recorded when it is installed  # fmt: skip
            for ds_name, group in per_image.groupby("dataset", sort=False):
                metrics.append({
                    "dataset": ds_name, "psnr_y": float(group.psnr_y.mean()),
                    "ssim_y": float(group.ssim_y.mean()), "images": len(group),
                    "lpips": float(group.lpips.mean()) if "lpips" in group else None,
                })  # fmt: skip
            meta = {
                "run_id": run_id, "data": data, "train": dataclasses.asdict(train),
                "device": device_name(device), "torch": torch.__version__, "commit": git_commit(),
                "steps": result.steps, "wall_s": result.wall_s, "metrics": metrics,
                "date": utc_now(),
            }  # fmt: skip
            save_model(model, run_path / "model.pt", meta=meta)
        status = "done"
        return RunOutcome(
            run_id=run_id, run_dir=run_path, metrics=metrics, history=result.history,
            steps=result.steps, wall_s=result.wall_s, status=result.status, device=str(device),
        )  # fmt: skip
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        if reg is not None and run_id is not None:
            if status == "done":
                reg.finish_run(run_id, status="done", steps=result.steps, wall_s=result.wall_s,
                               metrics=metrics)  # fmt: skip
            else:
                reg.finish_run(run_id, status=status, steps=0, wall_s=0.0)
            if not isinstance(registry, Registry):
                reg.close()
