"""Ablation grids: switch values x seeds -> runs (reused when already done) -> one row per config.

``ablate`` trains every run of the grid with every seed, reusing finished runs from the registry
when their run hash matches (same model config, training settings, training data and seed). A
reused run that has no metrics for an evaluation set asked for is evaluated on it from its saved
model, so every table has every set it was asked for. The summary gives mean and standard
deviation over seeds per metric, the difference to the base run, and whether that difference is
within seed noise. Explained in notebooks/11_ablations.ipynb.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

from .config import ModelConfig
from .runconfig import RunConfig, apply_run_overrides, run_diff_label
from .rundir import RunFolder
from .runs import Registry, default_registry_path

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["NOISE_Z", "ablate", "grid_runs", "summarize_runs"]

# Two means differ beyond seed noise when |delta| > NOISE_Z * standard error of the difference
# (about a 95 % two-sided interval); with fewer than two seeds per side nothing can be said.
NOISE_Z = 2.0

Grid = Mapping[str, Sequence[Any]]


def _as_run(base: RunConfig | ModelConfig) -> RunConfig:
    return base if isinstance(base, RunConfig) else RunConfig(model=base)


def _with(run: RunConfig, key: str, value: Any) -> RunConfig:
    """``run`` with one setting changed; ``key`` is an override key (``asym``, ``train.patch``)."""
    if isinstance(value, str):
        return apply_run_overrides(run, [f"{key}={value}"])
    section, _, name = key.rpartition(".")
    if key == "seed":
        return dataclasses.replace(run, seed=value)
    if section in ("", "model"):
        return dataclasses.replace(run, model=dataclasses.replace(run.model, **{name: value}))
    if section in ("train", "data"):
        part = dataclasses.replace(getattr(run, section), **{name: value})
        return dataclasses.replace(run, **{section: part})
    return apply_run_overrides(run, [f"{key}={value}"])  # raises the error listing valid keys


def grid_runs(
    base: RunConfig | ModelConfig,
    grid: Grid,
    mode: Literal["product", "one-at-a-time"] = "product",
) -> list[RunConfig]:
    """The runs of a grid, base first, without duplicates (the seed is the base's).

    ``grid`` maps override keys (a model switch such as ``asym``, or ``train.patch``,
    ``data.train``) to values. ``product`` takes every combination; ``one-at-a-time`` changes one
    key at a time from the base (the per-claim rows of the papers' ablation tables).
    """
    base = _as_run(base)
    runs = [base]
    if mode == "product":
        keys = list(grid)
        for combo in itertools.product(*(grid[k] for k in keys)):
            run = base
            for key, value in zip(keys, combo, strict=True):
                run = _with(run, key, value)
            runs.append(run)
    elif mode == "one-at-a-time":
        for key, values in grid.items():
            runs += [_with(base, key, v) for v in values]
    else:
        raise ValueError(f"mode must be 'product' or 'one-at-a-time', got {mode!r}")
    seen, unique = set(), []
    for run in runs:
        if run not in seen:
            seen.add(run)
            unique.append(run)
    return unique


def _run_job(run: RunConfig, folder: RunFolder, registry: Any, command: str,
             progress: bool) -> int | None:  # fmt: skip
    """Train one (run, seed) of the grid; a run folder with a checkpoint is resumed."""
    from .experiment import run_training

    out = run_training(run, registry=registry, run_dir=folder.path, command=command,
                       progress=progress, resume=folder.has_checkpoint())  # fmt: skip
    return out.run_id


def _worker(job: tuple[RunConfig, RunFolder, str, str, int]) -> int | None:
    """``_run_job`` in a spawned worker process (it imports the kit afresh)."""
    import torch

    run, folder, registry, command, threads = job
    if threads:
        torch.set_num_threads(threads)
    return _run_job(run, folder, registry, command, progress=False)


def ablate(
    base: RunConfig | ModelConfig,
    grid: Grid,
    seeds: int | Sequence[int] = 3,
    *,
    registry: Registry | str | os.PathLike | None = None,
    mode: Literal["product", "one-at-a-time"] = "product",
    parallel: int = 1,
    run_root: str | os.PathLike = "runs/ablation",
    command: str = "",
    progress: bool = True,
) -> pd.DataFrame:
    """Train the grid x seeds (reusing finished runs) and summarise one row per grid run.

    Args:
        base: The reference run (usually the full model with the training settings and data of
            the study); a bare ``ModelConfig`` gets the default ``TrainConfig`` and data.
        grid: Override key -> values, e.g. ``{"asym": [False], "head": ["conv3", "dilated"]}``.
        seeds: A number of seeds (0..n-1) or explicit seeds (they replace the base's seed).
        registry: Where runs are recorded and looked up (default: the user's registry).
        mode: ``product`` (every combination) or ``one-at-a-time``.
        parallel: Trainings run at once, in separate processes (one lightweight model leaves most
            of a large GPU idle). On the CPU the cores are split between them.
        run_root: Parent folder of the runs' folders.
        command: Recorded with each run.
        progress: Progress bars (serial runs only).

    Returns:
        The ``summarize_runs`` table.
    """
    from .device import resolve_device
    from .experiment import fill_missing_sets

    base = _as_run(base)
    device = str(resolve_device(base.train.device))
    base = dataclasses.replace(base, train=dataclasses.replace(base.train, device=device))
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    runs = grid_runs(base, grid, mode)
    for run in runs:
        if not run.data.eval_sets:
            raise ValueError("ablate needs at least one evaluation set (data.eval or a val set)")
    reg_path = registry.path if isinstance(registry, Registry) else (
        registry or default_registry_path()
    )  # fmt: skip
    reg = registry if isinstance(registry, Registry) else Registry(reg_path)

    jobs = []
    for run in runs:
        for seed in seeds:
            seeded = dataclasses.replace(run, seed=seed)
            done = reg.find_done(seeded.hash())
            if done is None:
                jobs.append((seeded, RunFolder.for_run(seeded, run_root, stamp=False)))
            else:  # trained with these exact settings: reuse it, adding any missing set
                fill_missing_sets(reg, done["id"], seeded.data.eval_sets,
                                  data_root=seeded.data.root, device=device)  # fmt: skip
    if parallel <= 1:
        for seeded, folder in jobs:
            _run_job(seeded, folder, reg, command, progress)
    elif jobs:
        import multiprocessing

        threads = 0 if device.startswith("cuda") else max(1, (os.cpu_count() or 1) // parallel)
        work = [(seeded, folder, str(reg_path), command, threads) for seeded, folder in jobs]
        ctx = multiprocessing.get_context("spawn")  # CUDA cannot be forked
        with ProcessPoolExecutor(max_workers=parallel, mp_context=ctx) as pool:
            list(pool.map(_worker, work))
    frame = reg.frame()
    if not isinstance(registry, Registry):
        reg.close()
    return summarize_runs(frame, runs, seeds, base=base)


def summarize_runs(
    frame: pd.DataFrame,
    runs: Sequence[RunConfig],
    seeds: Sequence[int],
    *,
    base: RunConfig,
) -> pd.DataFrame:
    """One row per grid run from the registry frame: mean/std/n per metric, delta, noise flag.

    A run is matched by its run hash with each of ``seeds``; metric columns no run of the grid
    has a value for are left out.
    """
    import pandas as pd

    metric_cols = [c for c in frame.columns if c.split("/")[0] in ("psnr_y", "ssim_y", "lpips")]
    done = frame[frame.status == "done"]
    rows = []
    for run in runs:
        hashes = {dataclasses.replace(run, seed=s).hash() for s in seeds}
        mine = done[done.run_hash.isin(hashes)].sort_values("id")
        mine = mine.drop_duplicates("seed", keep="last")  # the newest run of each seed
        row: dict[str, Any] = {
            "label": run_diff_label(run, base), "is_base": run == base, "n": len(mine),
            "params": int(mine.params.iloc[0]) if len(mine) else None,
            "params_deploy": int(mine.params_deploy.iloc[0]) if len(mine) else None,
            "macs": int(mine.macs.iloc[0]) if len(mine) else None,
            "run_ids": ",".join(str(i) for i in mine.id),
            "device": ",".join(sorted(set(mine.device))),
            "protocol": ",".join(sorted(set(mine.protocol))),
        }  # fmt: skip
        for col in metric_cols:
            vals = mine[col].dropna().astype(float)
            row[f"{col}_mean"] = float(vals.mean()) if len(vals) else math.nan
            row[f"{col}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else math.nan
            row[f"{col}_n"] = len(vals)
        rows.append(row)
    table = pd.DataFrame(rows)
    # keep the metric columns of sets some run of this grid has values for
    empty = [c for c in metric_cols if not (table[f"{c}_n"] > 0).any()]
    metric_cols = [c for c in metric_cols if c not in empty]
    table = table.drop(columns=[f"{c}_{s}" for c in empty for s in ("mean", "std", "n")])
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
