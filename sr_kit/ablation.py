"""Ablation grids: switch values x seeds -> runs (reused when already done) -> one row per config.

``ablate`` trains every config of the grid with every seed, reusing finished runs from the
registry when the config, seed, training settings and data match, and reports mean and standard
deviation over seeds per metric, the difference to the base config, and whether that difference
is within seed noise. Explained in notebooks/11_ablations.ipynb.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

from .config import ModelConfig, TrainConfig, config_hash, config_to_dict, diff_label
from .runs import Registry, default_registry_path, dict_hash

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ablate", "grid_configs", "summarize_runs"]

# Two means differ beyond seed noise when |delta| > NOISE_Z * standard error of the difference
# (about a 95 % two-sided interval); with fewer than two seeds per side nothing can be said.
NOISE_Z = 2.0


def grid_configs(
    base: ModelConfig,
    grid: Mapping[str, Sequence[Any]],
    mode: Literal["product", "one-at-a-time"] = "product",
) -> list[ModelConfig]:
    """The configs of a grid, base first, without duplicates.

    ``product`` takes every combination of the listed values; ``one-at-a-time`` changes one
    switch at a time from the base (the per-claim rows of the papers' ablation tables).
    """
    configs = [base]
    if mode == "product":
        keys = list(grid)
        for combo in itertools.product(*(grid[k] for k in keys)):
            configs.append(dataclasses.replace(base, **dict(zip(keys, combo, strict=True))))
    elif mode == "one-at-a-time":
        for key, values in grid.items():
            configs += [dataclasses.replace(base, **{key: v}) for v in values]
    else:
        raise ValueError(f"mode must be 'product' or 'one-at-a-time', got {mode!r}")
    seen, unique = set(), []
    for cfg in configs:
        if cfg not in seen:
            seen.add(cfg)
            unique.append(cfg)
    return unique


def _run_job(job: dict[str, Any], registry: Any, progress: bool) -> int | None:
    """Train one (config, seed) of the grid; a run folder with a checkpoint is resumed."""
    from .config import config_from_dict
    from .experiment import run_training

    run_dir = job["run_dir"]
    out = run_training(
        config_from_dict(job["config"]), TrainConfig(**job["train"]), data=job["data"],
        val=job["val"], eval_sets=job["eval_sets"], data_root=job["data_root"],
        run_dir=run_dir, registry=registry, command=job["command"], progress=progress,
        resume=os.path.exists(os.path.join(run_dir, "checkpoint.pt")),
    )  # fmt: skip
    return out.run_id


def _worker(job: dict[str, Any]) -> int | None:
    """``_run_job`` in a spawned worker process (it imports the kit afresh)."""
    import torch

    if job["threads"]:
        torch.set_num_threads(job["threads"])
    return _run_job(job, job["registry"], progress=False)


def ablate(
    base: ModelConfig,
    grid: Mapping[str, Sequence[Any]],
    seeds: int | Sequence[int] = 3,
    train: TrainConfig | None = None,
    *,
    data: str = "embedded",
    val: str | None = "auto",
    eval_sets: Sequence[str] | None = None,
    data_root: str | os.PathLike | None = None,
    registry: Registry | str | os.PathLike | None = None,
    mode: Literal["product", "one-at-a-time"] = "product",
    parallel: int = 1,
    run_root: str | os.PathLike = "runs/ablation",
    command: str = "",
    progress: bool = True,
) -> pd.DataFrame:
    """Train the grid x seeds (reusing finished runs) and summarise one row per config.

    Args:
        base: The reference config (usually the full model); always part of the table.
        grid: Switch name -> values, e.g. ``{"asym": [False], "head": ["conv3", "dilated"]}``.
        seeds: A number of seeds (0..n-1) or explicit seeds.
        train: Training settings shared by every run (their seed field is replaced).
        data, val, eval_sets, data_root: As in ``run_training``.
        registry: Where runs are recorded and looked up (default: the user's registry).
        mode: ``product`` (every combination) or ``one-at-a-time``.
        parallel: Trainings run at once, in separate processes (one lightweight model leaves most
            of a large GPU idle). On the CPU the cores are split between them.
        run_root: Parent folder of the runs' checkpoint folders.
        command: Recorded with each run.
        progress: Progress bars (serial runs only).

    Returns:
        The ``summarize_runs`` table.
    """
    from .experiment import train_key
    from .train import resolve_device

    train = train or TrainConfig()
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    configs = grid_configs(base, grid, mode)
    if val == "auto":
        val = "embedded" if data.lower().startswith("embedded") else None
    eval_sets = list(eval_sets) if eval_sets is not None else ([val] if val else [])
    if not eval_sets:
        raise ValueError("ablate needs at least one evaluation set (eval_sets or a val set)")
    reg_path = registry.path if isinstance(registry, Registry) else (
        registry or default_registry_path()
    )  # fmt: skip
    reg = registry if isinstance(registry, Registry) else Registry(reg_path)
    device = str(resolve_device(train.device))
    key_hash = dict_hash(train_key(train, device))

    jobs = []
    for cfg in configs:
        for seed in seeds:
            if reg.find_done(
                config_hash=config_hash(cfg), seed=seed, train_hash=key_hash, data=data
            ):
                continue  # already trained with these exact settings: reuse it
            run_dir = os.path.join(
                run_root, f"{cfg.name}-x{cfg.scale}-{config_hash(cfg)[:8]}-s{seed}"
            )
            jobs.append({
                "config": config_to_dict(cfg), "train": dataclasses.asdict(
                    dataclasses.replace(train, seed=seed, device=device)),
                "data": data, "val": val, "eval_sets": eval_sets, "data_root": data_root,
                "run_dir": run_dir, "registry": str(reg_path), "command": command,
            })  # fmt: skip
    if parallel <= 1:
        for job in jobs:
            _run_job(job, reg, progress)
    elif jobs:
        import multiprocessing

        threads = 0 if device.startswith("cuda") else max(1, (os.cpu_count() or 1) // parallel)
        for job in jobs:
            job["threads"] = threads
        ctx = multiprocessing.get_context("spawn")  # CUDA cannot be forked
        with ProcessPoolExecutor(max_workers=parallel, mp_context=ctx) as pool:
            list(pool.map(_worker, jobs))
    frame = reg.frame()
    if not isinstance(registry, Registry):
        reg.close()
    return summarize_runs(frame, configs, seeds, train_hash=key_hash, data=data, base=base)


def summarize_runs(
    frame: pd.DataFrame,
    configs: Sequence[ModelConfig],
    seeds: Sequence[int],
    *,
    train_hash: str,
    data: str,
    base: ModelConfig,
) -> pd.DataFrame:
    """One row per config from the registry frame: mean/std/n per metric, delta, noise flag."""
    import pandas as pd

    metric_cols = [c for c in frame.columns if c.split("/")[0] in ("psnr_y", "ssim_y", "lpips")]
    done = frame[
        (frame.status == "done") & (frame.train_hash == train_hash) & (frame.data == data)
        & frame.seed.isin(list(seeds))
    ]  # fmt: skip
    rows = []
    for cfg in configs:
        runs = done[done.config_hash == config_hash(cfg)].sort_values("id")
        runs = runs.drop_duplicates("seed", keep="last")  # the newest run of each seed
        row: dict[str, Any] = {
            "label": diff_label(cfg, base), "is_base": cfg == base, "n": len(runs),
            "params": int(runs.params.iloc[0]) if len(runs) else None,
            "params_deploy": int(runs.params_deploy.iloc[0]) if len(runs) else None,
            "macs": int(runs.macs.iloc[0]) if len(runs) else None,
            "run_ids": ",".join(str(i) for i in runs.id),
            "device": ",".join(sorted(set(runs.device))),
        }  # fmt: skip
        for col in metric_cols:
            vals = runs[col].dropna().astype(float)
            row[f"{col}_mean"] = float(vals.mean()) if len(vals) else math.nan
            row[f"{col}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else math.nan
            row[f"{col}_n"] = len(vals)
        rows.append(row)
    table = pd.DataFrame(rows)
    base_row = table[table.is_base].iloc[0]
    for col in metric_cols:
        table[f"{col}_delta"] = table[f"{col}_mean"] - base_row[f"{col}_mean"]
    psnr_cols = [c for c in metric_cols if c.startswith("psnr_y/")]
    for col in psnr_cols:
        se = (table[f"{col}_std"] ** 2 / table[f"{col}_n"]
              + base_row[f"{col}_std"] ** 2 / base_row[f"{col}_n"]) ** 0.5  # fmt: skip
        enough = (table[f"{col}_n"] >= 2) & (base_row[f"{col}_n"] >= 2) & ~table.is_base
        flag = (table[f"{col}_delta"].abs() <= NOISE_Z * se).astype(object)
        table[f"{col}_within_noise"] = flag.where(enough, None)
    if psnr_cols:  # the headline flag: the first evaluation set's PSNR
        table["within_noise"] = table[f"{psnr_cols[0]}_within_noise"]
    return table
