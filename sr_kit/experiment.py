"""The SR experiment: one ``RunConfig`` -> data -> model -> fit -> protocol evaluation -> registry.

``run_training`` is what ``sr-kit train``, the ablation grid and the widget's Train button all
call, so a run is recorded the same way whichever door it came through: the run config whole,
its hash, steps, wall time, device, torch version, git commit, command, status, cost, the
evaluation protocol and the metrics. The SR-specific parts of training live here too: the L1
loss, PSNR_Y validation on the device, and the model-file keys that make a training checkpoint
loadable as a model. Explained in notebooks/10_training_recipes.ipynb and 11_ablations.ipynb.
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import TrainConfig, config_to_dict
from .runconfig import RunConfig
from .rundir import RunFolder
from .runs import Registry
from .train import BatchSource, FitResult, fit

__all__ = [
    "RunOutcome",
    "ValidationPSNR",
    "evaluate_sets",
    "fill_missing_sets",
    "git_commit",
    "l1_loss",
    "model_file_keys",
    "psnr_y_torch",
    "run_training",
    "train_sr",
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


# -- the SR parts of training --------------------------------------------------------------------

l1_loss = F.l1_loss  # the loss of IMDN, RFDN and both papers' networks

_Y = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)


def psnr_y_torch(sr: Tensor, hr: Tensor, shave: int) -> float:
    """PSNR on Y of one SR output (3, H, W) in [0, 1] against uint8 HR (3, H, W), on device.

    Same protocol as ``sr_kit.metrics.psnr_y``: SR rounded to uint8 levels, BT.601 Y, border
    shave; computed in float64 so it agrees with the numpy version to ~1e-9 dB.
    """
    sr8 = sr.detach().double().mul(255).clamp_(0, 255).add_(0.5).floor_()
    w = torch.tensor(_Y, dtype=torch.float64, device=sr.device).view(3, 1, 1)
    y_sr = (sr8 * w).sum(0)
    y_hr = (hr.double() * w).sum(0)
    if shave:
        y_sr, y_hr = y_sr[shave:-shave, shave:-shave], y_hr[shave:-shave, shave:-shave]
    mse = (y_sr - y_hr).pow(2).mean().item()
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


class ValidationPSNR:
    """``fit``'s ``evaluate`` callback for SR: mean PSNR_Y over validation pairs, on the device.

    The pairs (objects with uint8 ``lr`` and ``hr`` arrays) are copied to the device once.
    Returns ``{"val_psnr_y": dB}``; ``scale`` is the border shave.
    """

    key = "val_psnr_y"

    def __init__(self, pairs: Sequence[Any], scale: int, device: str | torch.device) -> None:
        from .device import resolve_device

        device = resolve_device(device)

        def t(a: np.ndarray) -> Tensor:
            return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).to(device)

        self.items = [(t(p.lr), t(p.hr)) for p in pairs]
        if not self.items:
            raise ValueError("ValidationPSNR needs at least one validation pair")
        self.scale = scale

    def __call__(self, model: nn.Module) -> dict[str, float]:
        scores = []
        for lr, hr in self.items:
            sr = model(lr[None].float().div(255))
            scores.append(psnr_y_torch(sr[0].float(), hr, self.scale))
        return {self.key: float(np.mean(scores))}


def model_file_keys(model: nn.Module) -> dict[str, Any]:
    """What a training checkpoint needs to load as a model file (``load_model`` reads it)."""
    from .models.checkpoint import FORMAT

    cfg = getattr(model, "config", None)
    if cfg is None:
        raise ValueError("a kit model (built by build_model) is needed: no .config found")
    return {"model_format": FORMAT, "config": config_to_dict(cfg), "graph": "train"}


def train_sr(
    model: nn.Module,
    source: BatchSource,
    cfg: TrainConfig,
    *,
    val: Sequence[Any] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    callbacks: Sequence[Callable[[dict[str, float]], None]] = (),
    log_every: int = 10,
    meta: dict[str, Any] | None = None,
) -> FitResult:
    """``fit`` for a kit SR network: L1 loss, PSNR_Y on ``val`` pairs, model-file checkpoints.

    The validation border shave is the model's scale (``model.config.scale``); ``meta`` is more
    plain data for the checkpoint (``run_training`` stores the run config there).
    """
    scale = model.config.scale
    evaluate = ValidationPSNR(val, scale, cfg.device) if val else None
    return fit(model, l1_loss, source, cfg, evaluate=evaluate, checkpoint=checkpoint,
               resume=resume, checkpoint_meta={**model_file_keys(model), **(meta or {})},
               progress=progress, callbacks=callbacks, log_every=log_every)  # fmt: skip


# -- one recorded run ----------------------------------------------------------------------------


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
    run: RunConfig
    folder: RunFolder
    metrics: list[dict[str, Any]]
    history: list[dict[str, float]]
    steps: int
    wall_s: float
    status: str
    device: str

    @property
    def run_dir(self) -> Path:
        return self.folder.path


def evaluate_sets(
    model: nn.Module, names: Sequence[str], scale: int, *, data_root: str | None,
    device: str | torch.device, progress: bool,
) -> list[dict[str, Any]]:  # fmt: skip
    """Protocol evaluation (``sr_kit.evaluate``) on named sets: one metrics row per set."""
    from .data import resolve_dataset
    from .evaluate import PROTOCOL, evaluate

    datasets = [resolve_dataset(name, scale, data_root=data_root) for name in names]
    per_image = evaluate(model, datasets, scale=scale, device=device, progress=progress,
                         lpips=None)  # LPIPS recorded when it is installed  # fmt: skip
    rows = []
    for ds_name, group in per_image.groupby("dataset", sort=False):
        rows.append({
            "dataset": ds_name, "psnr_y": float(group.psnr_y.mean()),
            "ssim_y": float(group.ssim_y.mean()), "images": len(group),
            "lpips": float(group.lpips.mean()) if "lpips" in group else None,
            "protocol": PROTOCOL,
        })  # fmt: skip
    return rows


def run_training(
    run: RunConfig,
    *,
    registry: Registry | str | os.PathLike | None = None,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    command: str | None = None,
    progress: bool = True,
    callbacks: Sequence[Callable[[dict[str, float]], None]] = (),
) -> RunOutcome:
    """Train ``run``, evaluate it under the protocol, and record it in the registry.

    Args:
        run: The run: model (switches included), training settings, data and seed. The seed
            seeds the initial weights and the patch sampler.
        registry: A ``Registry`` or its path; None uses the default registry.
        run_dir: The run folder (default ``RunFolder.for_run(run)``, under ``runs/``).
        resume: Continue the checkpoint in ``run_dir``.
        command: The command line to record (default: this process's argv).
        progress: Progress bars.
        callbacks: Passed to ``fit`` (history records as they come).
    """
    from .complexity import device_name, model_cost
    from .data import resolve_dataset
    from .device import resolve_device
    from .evaluate import PROTOCOL
    from .models import build_model, save_model
    from .sampler import PatchSampler

    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    rank = torch.distributed.get_rank() if distributed else 0
    device = resolve_device(run.train.device)
    if distributed and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    run = dataclasses.replace(run, train=dataclasses.replace(run.train, device=str(device)))
    scale, data = run.model.scale, run.data

    torch.manual_seed(run.seed)  # the same seed gives the same initial weights on every rank
    model = build_model(run.model)
    images, names = training_images(data.train, scale, data.root)
    source = PatchSampler(images, scale, run.train.patch, device=device,
                          seed=run.seed + 1000 * rank, names=names)  # fmt: skip
    val = data.val_set
    val_pairs = list(resolve_dataset(val, scale, data_root=data.root)) if val else None

    folder = RunFolder(run_dir) if run_dir is not None else RunFolder.for_run(run)
    if resume and folder.has_checkpoint():
        _check_same_run(folder, run)
    main = rank == 0
    reg = None
    run_id = None
    if main:
        reg = registry if isinstance(registry, Registry) else Registry(registry)
        cost = model_cost(model, scale)
        run_id = reg.start_run(
            run,
            command=command if command is not None else " ".join(sys.argv),
            device=device_name(device), torch_version=torch.__version__, commit=git_commit(),
            params=cost.params, params_deploy=cost.params_deploy, macs=cost.macs,
            run_dir=str(folder.path), protocol=PROTOCOL,
        )  # fmt: skip
    status = "failed"
    try:
        result = train_sr(model, source, run.train, val=val_pairs, checkpoint=folder.checkpoint,
                          resume=resume, progress=progress, callbacks=callbacks,
                          meta={"run": run.to_dict(), "run_hash": run.hash()})  # fmt: skip
        metrics: list[dict[str, Any]] = []
        if main:
            model.eval()
            metrics = evaluate_sets(model, data.eval_sets, scale, data_root=data.root,
                                    device=device, progress=progress)  # fmt: skip
            meta = {
                "run_id": run_id, "run": run.to_dict(), "run_hash": run.hash(),
                "device": device_name(device), "torch": torch.__version__, "commit": git_commit(),
                "steps": result.steps, "wall_s": result.wall_s, "metrics": metrics,
                "protocol": PROTOCOL, "date": utc_now(),
            }  # fmt: skip
            save_model(model, folder.model, meta=meta)
        status = "done"
        return RunOutcome(
            run_id=run_id, run=run, folder=folder, metrics=metrics, history=result.history,
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


def _check_same_run(folder: RunFolder, run: RunConfig) -> None:
    """Resuming continues the same network: another model, seed or training set is an error.

    Training settings may change on resume (e.g. more steps after a time budget ran out).
    """
    from .train import load_training_checkpoint

    stored = load_training_checkpoint(folder.checkpoint).get("run")
    if stored is None:  # written before run configs were stored
        return
    old = RunConfig.from_dict(stored)
    diffs = [name for name, a, b in (("model", old.model, run.model), ("seed", old.seed, run.seed),
             ("data.train", old.data.train, run.data.train)) if a != b]  # fmt: skip
    if diffs:
        verb = "differs" if len(diffs) == 1 else "differ"
        raise ValueError(
            f"{folder.checkpoint} is a checkpoint of another run (its {', '.join(diffs)} "
            f"{verb}): resume it with the model, seed and training data it was started with, "
            "or use another run dir"
        )


def fill_missing_sets(
    reg: Registry, run_id: int, names: Sequence[str], *, data_root: str | None = None,
    device: str | torch.device = "cpu", progress: bool = False,
) -> list[dict[str, Any]]:  # fmt: skip
    """Evaluate a finished run on the sets among ``names`` it has no metrics for.

    The run's saved model file (``model.pt`` in its run folder) is evaluated; nothing is
    retrained. Returns the rows added (empty when nothing was missing).
    """
    from .data import resolve_dataset
    from .models import CheckpointError, load_model

    row = reg.get(run_id)
    have = set(row["metrics"])
    scale = int(row["scale"])
    missing = [n for n in names if resolve_dataset(n, scale, data_root=data_root).name not in have]
    if not missing:
        return []
    path = RunFolder(row["run_dir"]).model
    if not path.is_file():
        raise CheckpointError(
            f"run {run_id} has no metrics for {', '.join(missing)} and its model file {path} is "
            "gone, so it cannot be evaluated without retraining; delete the run from the "
            "registry or restore the file"
        )
    model = load_model(path, device=device)
    rows = evaluate_sets(model, missing, scale, data_root=data_root, device=device,
                         progress=progress)  # fmt: skip
    reg.add_metrics(run_id, rows)
    return rows
