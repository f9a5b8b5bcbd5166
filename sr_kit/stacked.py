"""Stacked training: the seeds of one config trained together, in one process, as one model.

A lightweight SR network leaves most of a large GPU idle. Besides running several processes at
once (``ablate(parallel=N)``), the seeds of one config can share every kernel launch:
``torch.func.stack_module_state`` stacks the S copies' parameters along a new first dimension,
``torch.func.functional_call`` under ``torch.vmap`` runs the S forward passes as one batched pass,
each copy on its own batch from its own sampler, and one Adam steps the stacked tensors. Adam is
elementwise, and the summed loss gives each slice exactly its own copy's gradient, so slice i
follows the same trajectory as a separate run of seed i (up to float rounding, which the tests
bound). What does not decompose per slice is refused: gradient clipping (one norm over all seeds),
an ``extra_loss`` of the model, and DDP.

Whether stacking pays depends on the device: on a GPU it removes launch overhead, on a CPU it
mostly does not (``bench``). Explained in notebooks/10_training_recipes.ipynb (packing small runs).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .config import TrainConfig
from .device import resolve_device
from .train import BatchSource, check_patch, lr_multiplier

__all__ = ["StackedResult", "fit_stacked", "unstack"]

LossFn = Callable[[Tensor, Tensor], Tensor]


@dataclass
class StackedResult:
    """What a stacked run produced: one loss history per seed."""

    losses: list[list[float]]  # losses[i][k]: seed i's mean loss over log interval k
    steps: int
    wall_s: float
    device: str


def _check(models: Sequence[nn.Module], sources: Sequence[BatchSource], cfg: TrainConfig) -> None:
    if len(models) < 1 or len(models) != len(sources):
        raise ValueError(
            f"fit_stacked needs one batch source per model, got {len(models)} models and "
            f"{len(sources)} sources"
        )
    if cfg.grad_clip:
        raise ValueError("fit_stacked: grad_clip is one norm over all seeds; train them apart")
    if any(hasattr(m, "extra_loss") for m in models):
        raise ValueError("fit_stacked: a model with extra_loss (e.g. SMSR) must train on its own")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        raise ValueError("fit_stacked does not run under DDP")
    kinds = {type(m) for m in models}
    shapes = {tuple((k, tuple(v.shape)) for k, v in m.state_dict().items()) for m in models}
    if len(kinds) != 1 or len(shapes) != 1:
        raise ValueError("fit_stacked: every model must be the same network (same config)")
    for src in sources:
        check_patch(src, cfg, "fit_stacked")


def fit_stacked(
    models: Sequence[nn.Module],
    loss_fn: LossFn,
    sources: Sequence[BatchSource],
    cfg: TrainConfig,
    *,
    log_every: int = 10,
) -> StackedResult:
    """Train ``models`` (one per seed, same network) together; their weights are updated in place.

    Model i trains on batches from ``sources[i]`` with the schedule of ``cfg`` (warm-up, cosine or
    halving, ``cfg.learning_rate``), as ``fit`` would train it alone; bf16 autocast follows
    ``cfg``; channels_last does not apply (the stacked input has a leading seed dimension).
    Returns the per-seed loss histories.
    """
    from torch.func import functional_call, stack_module_state

    _check(models, sources, cfg)
    device = resolve_device(cfg.device)
    for m in models:
        m.to(device).train()
    params, buffers = stack_module_state(list(models))
    params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    # a stateless copy to call with the stacked tensors ("meta" keeps it from holding weights)
    base = copy.deepcopy(models[0]).to("meta")
    opt = torch.optim.Adam(list(params.values()), lr=cfg.learning_rate, betas=(0.9, 0.999))

    def one(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(base, (p, b), (x,))

    forward = torch.vmap(one, randomness="different")
    n = len(models)
    sums = torch.zeros(n, device=device)
    count, losses = 0, [[] for _ in range(n)]
    t0 = time.perf_counter()
    for step in range(cfg.steps):
        batches = [src.sample(cfg.batch_size) for src in sources]
        x = torch.stack([b[0] for b in batches])
        y = torch.stack([b[1] for b in batches])
        for group in opt.param_groups:
            group["lr"] = cfg.learning_rate * lr_multiplier(step, cfg)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp):
            out = forward(params, buffers, x).float()
        per_seed = torch.stack([loss_fn(out[i], y[i]) for i in range(n)])
        opt.zero_grad(set_to_none=True)
        per_seed.sum().backward()  # slice i's gradient is exactly its own loss's gradient
        opt.step()
        sums += per_seed.detach()
        count += 1
        if (step + 1) % log_every == 0 or step + 1 == cfg.steps:
            for i, v in enumerate((sums / count).tolist()):  # the one host read per interval
                losses[i].append(v)
            sums.zero_()
            count = 0
    unstack(params, buffers, models)
    return StackedResult(losses=losses, steps=cfg.steps, wall_s=time.perf_counter() - t0,
                         device=str(device))  # fmt: skip


def unstack(params: dict[str, Tensor], buffers: dict[str, Tensor],
            models: Sequence[nn.Module]) -> None:  # fmt: skip
    """Copy slice i of the stacked tensors back into ``models[i]``."""
    with torch.no_grad():
        for i, m in enumerate(models):
            state = {k: v[i] for k, v in {**params, **buffers}.items()}
            m.load_state_dict(state, strict=True)
