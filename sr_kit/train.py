"""``fit``: a short, honest, resumable training loop. It knows nothing about super-resolution.

It takes a model, a loss function ``loss_fn(prediction, target)``, a batch source (anything with
``sample(batch_size) -> (inputs, targets)``, such as ``PatchSampler``), a ``TrainConfig`` and an
optional ``evaluate(model) -> {name: value}`` callback. Adam, linear warm-up then cosine decay (or
step halving). bf16 autocast and channels_last when the config asks (the defaults, meant for
CUDA; the CPU preset turns them off); optional ``torch.compile``; DistributedDataParallel when a
process group is initialised (torchrun). A model with an ``extra_loss(progress)`` method (an
auxiliary training term of its own, such as SMSR's sparsity loss) gets it added to the loss.

Robustness: checkpoints are written atomically every ``checkpoint_every`` steps and hold only plain
data (loadable with ``weights_only=True``); ``resume=True`` continues from the checkpoint, and on
the CPU the continued run reproduces the uninterrupted one exactly. A non-finite loss stops the run
with ``TrainingDiverged`` and no checkpoint is written after it; Ctrl-C saves before it propagates.
The loop reads the loss back to the host only every ``log_every`` steps, not every step.

The SR parts (L1 loss, PSNR_Y validation, the model-file keys of a checkpoint) live with the SR
experiment, in ``sr_kit.experiment``. Explained in notebooks/10_training_recipes.ipynb.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from .config import TrainConfig
from .device import resolve_device
from .fileio import atomic_torch_save

__all__ = [
    "TRAIN_FORMAT",
    "BatchSource",
    "FitResult",
    "TrainingDiverged",
    "fit",
    "load_training_checkpoint",
    "lr_multiplier",
]

TRAIN_FORMAT = "sr-kit-train/1"
# Keys fit writes into every checkpoint; `checkpoint_meta` may not replace them.
_OWN_KEYS = ("format", "state_dict", "optimizer", "step", "sampler", "torch_rng", "history",
             "wall_s", "train_config")  # fmt: skip

LossFn = Callable[[Tensor, Tensor], Tensor]
Evaluate = Callable[[nn.Module], Mapping[str, float]]


class BatchSource(Protocol):
    def sample(self, batch_size: int) -> tuple[Tensor, Tensor]: ...


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class FitResult:
    """What a training run produced.

    ``status`` is "done" (all steps) or "time_budget" (stopped by ``time_budget_s``). ``final``
    holds the last values of the ``evaluate`` callback (empty without one).
    """

    history: list[dict[str, float]]
    steps: int
    wall_s: float
    status: str
    device: str
    final: dict[str, float]


def lr_multiplier(step: int, cfg: TrainConfig) -> float:
    """Learning-rate factor for 0-based ``step``: linear warm-up, then cosine or halving."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_halve_every:
        return 0.5 ** (step // cfg.lr_halve_every)
    span = max(cfg.steps - cfg.warmup_steps, 1)
    progress = min((step - cfg.warmup_steps) / span, 1.0)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def load_training_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training checkpoint safely (``weights_only``); errors name the file."""
    path = Path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise RuntimeError(f"{path}: cannot read the training checkpoint ({err})") from err
    if not isinstance(data, dict) or data.get("format") != TRAIN_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise RuntimeError(
            f"{path}: not an sr-kit training checkpoint (expected format {TRAIN_FORMAT!r}, "
            f"found {found!r})"
        )
    return data


def check_patch(source: BatchSource, cfg: TrainConfig, who: str) -> None:
    """A source that cuts patches must cut ``cfg.patch``: the config records what a run saw."""
    patch = getattr(source, "patch", None)
    if patch is not None and patch != cfg.patch:
        raise ValueError(f"{who}: the batch source cuts {patch}-pixel patches but train.patch is "
                         f"{cfg.patch}; build the source with patch=cfg.patch")  # fmt: skip


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


class _Loop:
    """The state of one ``fit`` call, with one method per step of the loop."""

    def __init__(
        self, model: nn.Module, loss_fn: LossFn, source: BatchSource, cfg: TrainConfig,
        evaluate: Evaluate | None, checkpoint: Path | None, meta: Mapping[str, Any],
        log_every: int,
    ) -> None:  # fmt: skip
        self.model, self.loss_fn, self.source, self.cfg = model, loss_fn, source, cfg
        self.device = resolve_device(cfg.device)
        self.distributed = _distributed()
        self.main = not self.distributed or torch.distributed.get_rank() == 0
        self.evaluate = evaluate if self.main else None
        self.ckpt = checkpoint if self.main else None
        self.meta = dict(meta)
        self.log_every = log_every
        model.to(self.device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError(
                "fit: the model has no trainable parameters (bicubic cannot be trained)"
            )
        self.opt = torch.optim.Adam(self.params, lr=cfg.learning_rate, betas=(0.9, 0.999))
        self.start, self.history, self.wall_before = 0, [], 0.0
        self.loss_sum = torch.zeros((), device=self.device)
        self.n_sum, self.completed, self.final, self.final_step = 0, 0, {}, -1
        # A network with a training term of its own exposes extra_loss(progress)
        self.extra_loss = getattr(model, "extra_loss", None)
        self.t0 = time.perf_counter()

    def restore(self) -> None:
        """Continue from the checkpoint: weights, optimizer, sampler and RNG state, history."""
        data = load_training_checkpoint(self.ckpt)
        self.model.load_state_dict(data["state_dict"])
        self.opt.load_state_dict(data["optimizer"])
        if data.get("sampler") is not None and hasattr(self.source, "set_state"):
            self.source.set_state(data["sampler"])
        torch.set_rng_state(data["torch_rng"])
        self.start, self.wall_before = int(data["step"]), float(data["wall_s"])
        self.history = list(data["history"])
        self.completed = self.start

    def wrap(self) -> None:
        """DDP and torch.compile wrap the model for the forward pass only."""
        self.net: nn.Module = self.model
        if self.distributed:
            cuda = self.device.type == "cuda"
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device] if cuda else None
            )
        if self.cfg.compile:
            self.net = torch.compile(self.net)

    def autocast(self) -> Any:
        if self.cfg.amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return torch.autocast(self.device.type, enabled=False)

    def step(self, step: int) -> None:
        """One optimizer update on a fresh batch; nothing is read back to the host."""
        cfg = self.cfg
        inputs, targets = self.source.sample(cfg.batch_size)
        if cfg.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        for group in self.opt.param_groups:
            group["lr"] = cfg.learning_rate * lr_multiplier(step, cfg)
        with self.autocast():
            loss = self.loss_fn(self.net(inputs).float(), targets)
            if self.extra_loss is not None:
                extra = self.extra_loss(step / cfg.steps)
                if extra is not None:
                    loss = loss + extra.float()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
        self.opt.step()
        self.loss_sum += loss.detach()
        self.n_sum += 1
        self.completed = step + 1

    def over_time(self, done: int) -> bool:
        """Whether the time budget is spent; under DDP every rank agrees on the same step."""
        budget = self.cfg.time_budget_s
        over = bool(budget) and time.perf_counter() - self.t0 >= budget
        if not self.distributed:
            return over
        if not budget or done % self.log_every:
            return False
        # every rank must stop at the same step, or DDP's all-reduce would hang
        flag = torch.tensor(float(over), device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())

    def mean_loss(self, upto: int) -> float:
        """The mean loss since the last read (the one host sync per interval), checked finite."""
        mean = (self.loss_sum / max(self.n_sum, 1)).item()
        if not math.isfinite(mean):
            where = f" The last good checkpoint is {self.ckpt}." if self.ckpt else ""
            raise TrainingDiverged(
                f"loss became {mean} between steps {upto - self.n_sum + 1} and {upto}; "
                f"stopping.{where} Try a lower learning rate or gradient clipping (grad_clip)."
            )
        return mean

    def log(self, done: int) -> dict[str, float]:
        record = {"step": done, "loss": self.mean_loss(done),
                  "learning_rate": self.opt.param_groups[0]["lr"]}  # fmt: skip
        self.loss_sum.zero_()
        self.n_sum = 0
        return record

    def validation_due(self, done: int) -> bool:
        every = self.cfg.val_every
        return self.evaluate is not None and (
            (every and done % every == 0) or done == self.cfg.steps
        )

    def validate(self) -> dict[str, float]:
        """The ``evaluate`` callback in eval mode, without gradients, under the same autocast."""
        was = self.model.training
        self.model.eval()
        with torch.inference_mode(), self.autocast():
            values = {k: float(v) for k, v in self.evaluate(self.model).items()}
        self.model.train(was)
        self.final, self.final_step = values, self.completed
        return values

    def checkpoint_due(self, done: int) -> bool:
        every = self.cfg.checkpoint_every
        return bool(every) and done % every == 0 and done != self.cfg.steps

    def save(self, wall_s: float | None = None) -> None:
        """Write the checkpoint atomically (main rank only), never with a NaN already seen."""
        if self.ckpt is None:
            return
        if self.n_sum:
            self.mean_loss(self.completed)
        atomic_torch_save({
            **self.meta,
            "format": TRAIN_FORMAT,
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "train_config": dataclasses.asdict(self.cfg),
            "step": self.completed,
            "optimizer": self.opt.state_dict(),
            "sampler": self.source.get_state() if hasattr(self.source, "get_state") else None,
            "torch_rng": torch.get_rng_state(),
            "history": self.history,
            "wall_s": self.wall_s() if wall_s is None else wall_s,
        }, self.ckpt)  # fmt: skip

    def wall_s(self) -> float:
        return self.wall_before + time.perf_counter() - self.t0


def fit(
    model: nn.Module,
    loss_fn: LossFn,
    source: BatchSource,
    cfg: TrainConfig,
    *,
    evaluate: Evaluate | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    checkpoint_meta: Mapping[str, Any] | None = None,
    progress: bool = True,
    callbacks: Sequence[Callable[[dict[str, float]], None]] = (),
    log_every: int = 10,
) -> FitResult:
    """Train ``model`` to minimise ``loss_fn`` on batches from ``source`` for ``cfg.steps`` steps.

    Args:
        model: The network (moved to ``cfg.device`` in place).
        loss_fn: ``loss_fn(prediction, target) -> scalar tensor``, e.g. ``F.l1_loss``.
        source: Batch source. If it cuts patches (has a ``patch`` attribute), it must cut
            ``cfg.patch``-sized ones: the config records what the run trained on.
        cfg: Training settings (see ``TrainConfig``).
        evaluate: Called with the model (eval mode, no gradients) every ``cfg.val_every`` steps
            and at the end; its ``{name: value}`` go into the history record.
        checkpoint: The checkpoint file; None keeps everything in memory.
        resume: Continue from ``checkpoint``. Without it, an existing checkpoint is an error, so
            a finished run is never overwritten by accident.
        checkpoint_meta: Plain data stored in every checkpoint beside fit's own keys (e.g. what
            makes it loadable as a model file).
        progress: Show a tqdm bar with the loss and the evaluated values.
        callbacks: Called with each history record (every ``log_every`` steps and validations).
        log_every: Steps between host reads of the loss (progress, history, NaN check).

    Returns:
        A ``FitResult``.

    Raises:
        TrainingDiverged: On a non-finite loss (the last checkpoint on disk stays valid).
        KeyboardInterrupt: After saving a checkpoint, when interrupted.
    """
    from tqdm.auto import tqdm

    check_patch(source, cfg, "fit")
    clash = sorted(set(checkpoint_meta or {}) & set(_OWN_KEYS))
    if clash:
        raise ValueError(f"fit: checkpoint_meta may not set {', '.join(clash)} (fit writes them)")
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists() and not resume:
        raise FileExistsError(
            f"{ckpt} exists: pass resume=True (--resume) to continue it, or use another run dir"
        )
    loop = _Loop(model, loss_fn, source, cfg, evaluate, ckpt, checkpoint_meta or {}, log_every)
    if resume and ckpt is not None and ckpt.exists():
        loop.restore()
    loop.wrap()
    bar = tqdm(total=cfg.steps, initial=loop.start, disable=not (progress and loop.main),
               desc="train")  # fmt: skip
    status = "done"
    model.train()
    try:
        for step in range(loop.start, cfg.steps):
            loop.step(step)
            done = step + 1
            stop = loop.over_time(done)
            if done % log_every == 0 or done == cfg.steps or stop:
                record = loop.log(done)
                if loop.validation_due(done):
                    record.update(loop.validate())
                loop.history.append(record)
                bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "step"})
                for cb in callbacks:
                    cb(record)
            bar.update(1)
            if loop.checkpoint_due(done):
                loop.save()
            if stop and done < cfg.steps:
                status = "time_budget"
                break
    except KeyboardInterrupt:
        # save what we have (if it is finite), then let the interrupt through
        if loop.n_sum == 0 or math.isfinite((loop.loss_sum / loop.n_sum).item()):
            loop.save()
        raise
    finally:
        bar.close()
    if loop.evaluate is not None and loop.final_step != loop.completed:
        # stopped by the time budget between validations (or resumed a finished run):
        # evaluate the weights we return
        values = loop.validate()
        if loop.history and loop.history[-1]["step"] == loop.completed:
            loop.history[-1].update(values)
        else:
            lr_now = loop.opt.param_groups[0]["lr"]
            loop.history.append(
                {"step": loop.completed, "loss": math.nan, "learning_rate": lr_now, **values}
            )
    wall = loop.wall_s()
    loop.save(wall)
    return FitResult(history=loop.history, steps=loop.completed, wall_s=wall, status=status,
                     device=str(loop.device), final=dict(loop.final))  # fmt: skip
