"""Ablation grids: switch values x seeds -> runs (reused when already done) -> one row per config.

``ablate`` trains every run of the grid with every seed, reusing finished runs from the registry
when their run hash matches (same model config, training settings, training data and seed). A
reused run that has no metrics for an evaluation set asked for is evaluated on it from its saved
model, so every table has every set it was asked for. The summary gives mean and standard
deviation over seeds per metric, the difference to the base run with its 95 % interval, and
whether that difference is within seed noise. Explained in notebooks/11_ablations.ipynb.

The noise rule (used by notebooks 10, 11 and 12 and by ``sr_kit.plots``): two means over seeds,
``a`` (n_a seeds, standard deviation s_a) and ``b``, differ beyond seed noise when their
difference lies outside its two-sided 95 % t interval::

    delta = mean_a - mean_b
    se = sqrt(s_a**2 / n_a + s_b**2 / n_b)
    df = se**4 / ((s_a**2 / n_a)**2 / (n_a - 1) + (s_b**2 / n_b)**2 / (n_b - 1))   # Welch
    halfwidth = t(0.975, df) * se          beyond noise  <=>  |delta| > halfwidth

This is Welch's t interval with the Welch-Satterthwaite degrees of freedom. It is chosen over
the pooled Student t (df = n_a + n_b - 2) because a variant may well spread more or less than
the base from seed to seed, and Welch does not assume equal spreads. When the two spreads and
seed counts are equal the two rules coincide (df = 2n - 2), which is the case
``resolvable_difference`` states. With equal seed counts (every grid's case) the standard error
is the same under both rules, and unequal spreads only lower Welch's df: its interval is then
wider than the pooled one, never narrower. With three seeds per side df lies between 2 and 4, so
the half-width is 2.8 to 4.3 standard errors: the earlier rule of 2 standard errors
(``NOISE_Z = 2``, until the course's issue 11) was anti-conservative for so few seeds and is gone.
With fewer than two seeds on either side nothing can be said (no interval, flag ``None``).
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

__all__ = [
    "LEVEL",
    "ablate",
    "add_noise_columns",
    "diff_interval",
    "grid_runs",
    "mean_interval",
    "resolvable_difference",
    "summarize_runs",
    "t_quantile",
    "welch_df",
]

LEVEL = 0.95  # the two-sided confidence level of every interval the kit reports

# t(0.975, df) for df = 1..30 (scipy.stats.t.ppf, 4 decimals), used only when scipy is missing
# fmt: off
_T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
         2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
         2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)
# fmt: on
_Z975 = 1.959964  # the normal quantile, the limit as df -> infinity


def t_quantile(df: float, level: float = LEVEL) -> float:
    """The two-sided ``level`` quantile of Student's t with ``df`` degrees of freedom.

    ``t_quantile(2) == 4.303``, ``t_quantile(4) == 2.776``, ``t_quantile(inf) == 1.960``
    (rounded). Non-integer ``df`` (Welch) is allowed. Uses ``scipy.stats.t`` (a dependency of
    the kit); without scipy, a table of the 95 % values for df 1..30 (a non-integer df rounded
    down), then towards the normal value: never below the exact value, so never less cautious.
    """
    df = float(df)
    if not df > 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    try:
        from scipy.stats import t as student_t
    except ImportError:  # pragma: no cover - scipy is a pinned dependency
        return _t_from_table(df, level)
    return float(student_t.ppf((1 + level) / 2, df))


def _t_from_table(df: float, level: float = LEVEL) -> float:
    """``t_quantile`` from the 95 % table (no scipy): never below the exact value.

    Below 30 a non-integer df is rounded down (a slightly wider interval); beyond 30 the value
    is interpolated linearly in 1/df between t(0.975, 30) and the normal value.
    """
    if abs(level - 0.95) > 1e-12:
        raise ValueError("without scipy only the 95 % level is available")
    if df < 1:
        raise ValueError(f"the table starts at df = 1, got {df}")
    if df <= len(_T975):
        return _T975[int(df) - 1]
    last = len(_T975)
    return _Z975 + (_T975[-1] - _Z975) * (last / df)  # 1/df from 1/30 down to 0


def welch_df(sd_a: float, n_a: int, sd_b: float, n_b: int) -> float:
    """Welch-Satterthwaite degrees of freedom of a difference of two means.

    Equal spreads and seed counts give ``2n - 2`` (the pooled Student value); when both spreads
    are zero the pooled value ``n_a + n_b - 2`` is returned.
    """
    va, vb = sd_a**2 / n_a, sd_b**2 / n_b
    if va + vb == 0:
        return float(n_a + n_b - 2)
    return (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))


def diff_interval(
    mean_a: float, sd_a: float, n_a: int, mean_b: float, sd_b: float, n_b: int,
    level: float = LEVEL,
) -> tuple[float, float]:  # fmt: skip
    """``(delta, halfwidth)``: ``mean_a - mean_b`` and the half-width of its Welch t interval.

    ``sd_*`` are sample standard deviations over seeds (ddof=1) and ``n_*`` seed counts. The
    difference is beyond seed noise when ``abs(delta) > halfwidth``. With fewer than two seeds
    on either side (or a missing spread) the half-width is ``nan``: nothing can be said.
    """
    delta = float(mean_a) - float(mean_b)
    values = (sd_a, n_a, sd_b, n_b)
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return delta, math.nan
    if n_a < 2 or n_b < 2:
        return delta, math.nan
    se = math.sqrt(sd_a**2 / n_a + sd_b**2 / n_b)
    if se == 0:
        return delta, 0.0
    return delta, t_quantile(welch_df(sd_a, n_a, sd_b, n_b), level) * se


def mean_interval(sd: float, n: int, level: float = LEVEL) -> float:
    """Half-width of the t interval of one mean over ``n`` seeds: ``t(n - 1) * sd / sqrt(n)``.

    The error bar of a bar in an ablation plot; ``nan`` with fewer than two seeds.
    """
    if n is None or n < 2 or sd is None or math.isnan(sd):
        return math.nan
    return t_quantile(n - 1, level) * sd / math.sqrt(n)


def resolvable_difference(sd: float, n: int, level: float = LEVEL) -> float:
    """The smallest difference two variants can show beyond noise with ``n`` seeds each.

    Both variants are taken to spread by ``sd`` from seed to seed, so the rule's half-width is
    ``t(2n - 2) * sd * sqrt(2 / n)``: it shrinks with more seeds, both through ``sqrt(2 / n)``
    and through the t quantile (4.30 at n = 2, 2.78 at n = 3, 2.31 at n = 5), and it scales
    with the spread, which depends on the model and on the training length.
    """
    return diff_interval(0.0, sd, n, 0.0, sd, n, level)[1]


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
    has a value for are left out. Per metric: ``<metric>_mean``, ``_std`` (over seeds, ddof=1),
    ``_n``, ``_delta`` (to the base) and ``_ci95`` (the half-width of the delta's 95 % Welch t
    interval, ``diff_interval``; empty for the base and with fewer than two seeds). Per PSNR set,
    ``<metric>_within_noise`` (``abs(delta) <= ci95``; ``None`` when nothing can be said); the
    first evaluation set's flag is also ``within_noise``.
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
    add_noise_columns(table, metric_cols)
    return table


def add_noise_columns(table: pd.DataFrame, metric_cols: Sequence[str]) -> pd.DataFrame:
    """Add ``<metric>_ci95`` and the PSNR ``within_noise`` flags to a summary table, in place.

    Needs ``is_base``, ``<metric>_mean``, ``_std``, ``_n`` and ``_delta``. Also used to recompute
    the flags of a committed table from its stored means, spreads and seed counts.
    """
    base_row = table[table.is_base.astype(bool)].iloc[0]
    for col in metric_cols:
        halfwidths = []
        for _, row in table.iterrows():
            if bool(row.is_base):
                halfwidths.append(math.nan)
                continue
            _, hw = diff_interval(row[f"{col}_mean"], row[f"{col}_std"], int(row[f"{col}_n"]),
                                  base_row[f"{col}_mean"], base_row[f"{col}_std"],
                                  int(base_row[f"{col}_n"]))  # fmt: skip
            halfwidths.append(hw)
        table[f"{col}_ci95"] = halfwidths
    psnr_cols = [c for c in metric_cols if c.startswith("psnr_y/")]
    for col in psnr_cols:
        hw = table[f"{col}_ci95"]
        flag = (table[f"{col}_delta"].abs() <= hw).astype(object)
        table[f"{col}_within_noise"] = flag.where(hw.notna(), None)
    if psnr_cols:  # the headline flag: the first evaluation set's PSNR
        table["within_noise"] = table[f"{psnr_cols[0]}_within_noise"]
    return table
