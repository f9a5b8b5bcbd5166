"""``fit``: a short, honest, resumable training loop. It knows nothing about SR architectures.

It takes a model, a batch source (anything with ``sample(batch_size) -> (lr, hr)``, such as
``PatchSampler``), a ``TrainConfig`` and optional validation pairs. L1 loss, Adam, linear warm-up
then cosine decay (or step halving). bf16 autocast and channels_last when the config asks (the
defaults, meant for CUDA; the CPU preset turns them off, and the tests run them on the CPU);
optional ``torch.compile``; DistributedDataParallel when a process group is initialised (torchrun).

Robustness: checkpoints are written atomically every ``checkpoint_every`` steps and hold only plain
data (loadable with ``weights_only=True``); ``resume=True`` continues from the last one, and on the
CPU the continued run reproduces the uninterrupted one exactly. A non-finite loss stops the run with
``TrainingDiverged`` and no checkpoint is written after it; Ctrl-C saves before it propagates.
The loop reads the loss back to the host only every ``log_every`` steps, not every step.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import TrainConfig, config_to_dict
from .models.checkpoint import FORMAT, atomic_torch_save

__all__ = [
    "TRAIN_FORMAT",
    "BatchSource",
    "FitResult",
    "TrainingDiverged",
    "fit",
    "lr_multiplier",
    "psnr_y_torch",
    "resolve_device",
]

TRAIN_FORMAT = "sr-kit-train/1"
CHECKPOINT = "checkpoint.pt"


class BatchSource(Protocol):
    def sample(self, batch_size: int) -> tuple[Tensor, Tensor]: ...


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class FitResult:
    """What a training run produced."""

    history: list[dict[str, float]]
    steps: int
    wall_s: float
    status: str  # done | time_budget | interrupted
    device: str
    run_dir: Path | None = None
    final_psnr: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but CUDA is not available here")
    return dev


def lr_multiplier(step: int, cfg: TrainConfig) -> float:
    """Learning-rate factor for 0-based ``step``: linear warm-up, then cosine or halving."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_halve_every:
        return 0.5 ** (step // cfg.lr_halve_every)
    span = max(cfg.steps - cfg.warmup_steps, 1)
    progress = min((step - cfg.warmup_steps) / span, 1.0)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


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


def _is_main() -> bool:
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) or (
        torch.distributed.get_rank() == 0
    )


class _Validator:
    """Validation pairs kept on the device; PSNR on Y per image, averaged."""

    def __init__(self, pairs: Sequence[Any], scale: int, device: torch.device) -> None:
        def t(a: np.ndarray) -> Tensor:
            return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).to(device)

        self.items = [(t(p.lr), t(p.hr)) for p in pairs]
        self.scale = scale

    @torch.inference_mode()
    def __call__(self, model: nn.Module, autocast: Callable[[], Any]) -> float:
        was = model.training
        model.eval()
        scores = []
        for lr, hr in self.items:
            with autocast():
                sr = model(lr[None].float().div(255))
            scores.append(psnr_y_torch(sr[0].float(), hr, self.scale))
        model.train(was)
        return float(np.mean(scores))


def _checkpoint_data(
    model: nn.Module, opt: torch.optim.Optimizer, step: int, cfg: TrainConfig,
    source: BatchSource, history: list[dict[str, float]], wall_s: float,
) -> dict[str, Any]:  # fmt: skip
    model_cfg = getattr(model, "config", None)
    return {
        # A training checkpoint is also a model file: load_model() reads config + state_dict.
        "format": TRAIN_FORMAT,
        "model_format": FORMAT,
        "config": config_to_dict(model_cfg) if model_cfg is not None else {},
        "graph": "train",
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "train_config": dataclasses.asdict(cfg),
        "step": step,
        "optimizer": opt.state_dict(),
        "sampler": source.get_state() if hasattr(source, "get_state") else None,
        "torch_rng": torch.get_rng_state(),
        "history": history,
        "wall_s": wall_s,
    }


def load_training_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training checkpoint safely (``weights_only``); errors name the file."""
    path = Path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise RuntimeError(f"{path}: cannot read the training checkpoint ({err})") from err
    if not isinstance(data, dict) or data.get("format") != TRAIN_FORMAT:
        raise RuntimeError(f"{path}: not an sr-kit training checkpoint")
    return data


def fit(
    model: nn.Module,
    source: BatchSource,
    cfg: TrainConfig,
    *,
    val: Sequence[Any] | None = None,
    scale: int | None = None,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    callbacks: Sequence[Callable[[dict[str, float]], None]] = (),
    log_every: int = 10,
) -> FitResult:
    """Train ``model`` on batches from ``source`` for ``cfg.steps`` steps.

    Args:
        model: The network (moved to the training device in place).
        source: Batch source; a ``PatchSampler`` keeps its pool on the device.
        cfg: Training settings (see ``TrainConfig``).
        val: Validation pairs (objects with uint8 ``lr`` and ``hr`` arrays); PSNR_Y is measured
            every ``cfg.val_every`` steps and at the end.
        scale: Border shave for validation PSNR (defaults to ``model.config.scale``).
        run_dir: Where checkpoints go (``checkpoint.pt``); None keeps everything in memory.
        resume: Continue from ``run_dir/checkpoint.pt``. Without it, an existing checkpoint is
            an error, so a finished run is never overwritten by accident.
        progress: Show a tqdm bar with the loss and PSNR.
        callbacks: Called with each history record (every ``log_every`` steps and validations).
        log_every: Steps between host reads of the loss (progress, history, NaN check).

    The loss is L1; a model with an ``extra_loss(progress)`` method (progress = step / steps, in
    [0, 1)) adds what it returns after each forward (a scalar tensor, or None for nothing).

    Returns:
        A ``FitResult``; ``status`` is "done" or "time_budget".

    Raises:
        TrainingDiverged: On a non-finite loss (the last checkpoint on disk stays valid).
        KeyboardInterrupt: After saving a checkpoint, when interrupted.
    """
    from tqdm.auto import tqdm

    device = resolve_device(cfg.device)
    cuda = device.type == "cuda"
    scale = scale or getattr(getattr(model, "config", None), "scale", None)
    if val and not scale:
        raise ValueError("fit: give `scale` (the validation border shave) or a model with .config")
    run_path = Path(run_dir) if run_dir is not None else None
    ckpt_path = run_path / CHECKPOINT if run_path is not None else None
    if ckpt_path is not None and ckpt_path.exists() and not resume:
        raise FileExistsError(
            f"{ckpt_path} exists: pass resume=True (--resume) to continue it, "
            "or use another run dir"
        )

    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("fit: the model has no trainable parameters (bicubic cannot be trained)")
    opt = torch.optim.Adam(params, lr=cfg.learning_rate, betas=(0.9, 0.999))

    start, history, wall_before = 0, [], 0.0
    if resume and ckpt_path is not None and ckpt_path.exists():
        data = load_training_checkpoint(ckpt_path)
        model.load_state_dict(data["state_dict"])
        opt.load_state_dict(data["optimizer"])
        if data.get("sampler") is not None and hasattr(source, "set_state"):
            source.set_state(data["sampler"])
        torch.set_rng_state(data["torch_rng"])
        start, history, wall_before = int(data["step"]), list(data["history"]), data["wall_s"]

    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    net: nn.Module = model
    if distributed:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device] if cuda else None)
    if cfg.compile:
        net = torch.compile(net)
    main = _is_main()
    # A network with a training term of its own (an auxiliary loss) exposes extra_loss(progress)
    extra_loss = getattr(model, "extra_loss", None)

    def autocast():
        if cfg.amp:
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return torch.autocast(device.type, enabled=False)

    validator = _Validator(val, scale, device) if (val and main) else None
    save = (lambda s, w: atomic_torch_save(
        _checkpoint_data(model, opt, s, cfg, source, history, w), ckpt_path
    )) if (ckpt_path is not None and main) else (lambda s, w: None)  # fmt: skip

    bar = tqdm(total=cfg.steps, initial=start, disable=not (progress and main), desc="train")
    t0 = time.perf_counter()
    loss_sum = torch.zeros((), device=device)
    n_sum, completed, status, psnr = 0, start, "done", None
    model.train()

    def check_finite(upto: int) -> float:
        mean = (loss_sum / max(n_sum, 1)).item()  # the one host sync per log interval
        if not math.isfinite(mean):
            raise TrainingDiverged(
                f"loss became {mean} between steps {upto - n_sum + 1} and {upto}; stopping. "
                + (f"The last good checkpoint is {ckpt_path}." if ckpt_path else "")
                + " Try a lower learning rate or gradient clipping (grad_clip)."
            )
        return mean

    try:
        for step in range(start, cfg.steps):
            lr, hr = source.sample(cfg.batch_size)
            if cfg.channels_last:
                lr = lr.contiguous(memory_format=torch.channels_last)
            for group in opt.param_groups:
                group["lr"] = cfg.learning_rate * lr_multiplier(step, cfg)
            with autocast():
                loss = F.l1_loss(net(lr).float(), hr)
                if extra_loss is not None:  # e.g. SMSR's sparsity term on its last masks
                    extra = extra_loss(step / cfg.steps)
                    if extra is not None:
                        loss = loss + extra.float()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            loss_sum += loss.detach()
            n_sum += 1
            completed = done = step + 1
            last = done == cfg.steps
            over_time = bool(cfg.time_budget_s) and time.perf_counter() - t0 >= cfg.time_budget_s
            if distributed and cfg.time_budget_s and done % log_every == 0:
                # every rank must stop at the same step, or DDP's all-reduce would hang
                flag = torch.tensor(float(over_time), device=device)
                torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
                over_time = bool(flag.item())
            elif distributed:
                over_time = False
            if done % log_every == 0 or last or over_time:
                record = {"step": done, "loss": check_finite(done), "lr": opt.param_groups[0]["lr"]}
                loss_sum.zero_()
                n_sum = 0
                if validator and ((cfg.val_every and done % cfg.val_every == 0) or last):
                    psnr = validator(model, autocast)
                    record["psnr"] = psnr
                history.append(record)
                bar.set_postfix(
                    loss=f"{record['loss']:.4f}", **({"psnr": f"{psnr:.2f}"} if psnr else {})
                )
                for cb in callbacks:
                    cb(record)
            bar.update(1)
            if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and not last:
                if n_sum:
                    check_finite(done)  # never save weights that already saw a NaN
                save(done, wall_before + time.perf_counter() - t0)
            if over_time and not last:
                status = "time_budget"
                break
    except KeyboardInterrupt:
        # save what we have (if it is finite), then let the interrupt through
        if n_sum == 0 or math.isfinite((loss_sum / n_sum).item()):
            save(completed, wall_before + time.perf_counter() - t0)
        raise
    finally:
        bar.close()
    wall = wall_before + time.perf_counter() - t0
    if validator and (not history or "psnr" not in history[-1]):
        psnr = validator(model, autocast)
        history.append({"step": completed, "loss": history[-1]["loss"] if history else float("nan"),
                        "lr": opt.param_groups[0]["lr"], "psnr": psnr})  # fmt: skip
    save(completed, wall)
    return FitResult(
        history=history, steps=completed, wall_s=wall, status=status, device=str(device),
        run_dir=run_path, final_psnr=psnr,
    )  # fmt: skip
