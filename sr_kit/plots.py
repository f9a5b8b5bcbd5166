"""Figures for the notebooks: size-vs-quality, training curves, ablation bars and zoomed crops.

Every function takes plain data (DataFrames, numpy arrays, tensors), returns the matplotlib
``Figure`` and never calls ``plt.show()``, so the same code works in notebooks, scripts and tests.
Nothing here imports the rest of sr_kit; importing ``sr_kit`` itself never imports matplotlib.

Used in notebooks/06_lmswn.ipynb and 09_safdnet.ipynb (training curves, crops),
11_ablations.ipynb (ablation bars), 12_params_vs_psnr.ipynb (size vs PSNR, the Pareto front) and
13_the_family.ipynb.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch, Rectangle

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "ablation_bars",
    "crop_comparison",
    "params_vs_psnr",
    "pareto_front",
    "training_curves",
]

FIGSIZE = (5.0, 3.5)


def _devices(runs: pd.DataFrame) -> list[str]:
    if "device" not in runs.columns:
        return []
    values = (str(d).strip() for d in runs["device"].dropna())
    return sorted({d for d in values if d})


def pareto_front(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The non-dominated points (smaller x, larger y is better), sorted by x.

    A point is kept when its y beats every point with smaller or equal x.
    """
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    order = np.lexsort((-ys, xs))  # by x, and at equal x the best y first
    keep_x, keep_y = [], []
    best = -math.inf
    for i in order:
        if ys[i] > best:
            keep_x.append(xs[i])
            keep_y.append(ys[i])
            best = ys[i]
    return np.asarray(keep_x), np.asarray(keep_y)


def params_vs_psnr(
    runs: pd.DataFrame | None,
    published: pd.DataFrame | None = None,
    *,
    dataset: str = "Set5",
    scale: int = 4,
    x: Literal["params", "macs"] = "params",
    label_col: str = "model",
    device_note: str | None = None,
    measured: pd.DataFrame | None = None,
) -> Figure:
    """PSNR against model size: three kinds of point, each drawn differently.

    Published figures (transcribed, grey squares), the authors' released weights measured by the
    kit (red diamonds, joined to the published point of the same network by a thin line), and
    networks trained by the kit (coloured circles, labelled with training length and device).

    Args:
        runs: ``Registry.frame()`` output (columns ``scale``, ``params``/``macs``, ``device``,
            ``psnr_y/<dataset>``, ``label_col``); rows with another scale or a status other than
            ``"done"`` are left out. Rows sharing a label are drawn as mean ± std over them.
        published: ``results/published.csv`` (columns ``method, scale, params, macs_g, dataset,
            psnr``), drawn as grey squares with their names and their Pareto front as a step line.
        dataset: Benchmark set, e.g. ``"Set5"``.
        scale: Upscaling factor.
        x: ``"params"`` (thousands of parameters) or ``"macs"`` (G multiply-accumulates).
        label_col: Column that names a point of the kit's runs.
        device_note: Provenance shown in the title, e.g. ``"kit runs: CPU quick mode"``. The
            devices actually recorded in ``runs`` are always added, so the title cannot claim a
            GPU the runs did not use.
        measured: ``results/official_weights.csv`` (columns ``method, scale, dataset, params,
            macs_720p_g, psnr_y``): the released weights as the kit measures them.
    """
    if x not in ("params", "macs"):
        raise ValueError(f"x must be 'params' or 'macs', got {x!r}")
    fig, ax = plt.subplots(figsize=FIGSIZE)
    metric = f"psnr_y/{dataset}"

    devices: list[str] = []
    if runs is not None and len(runs):
        if metric not in runs.columns:
            have = [c for c in runs.columns if str(c).startswith("psnr_y/")]
            raise KeyError(f"runs have no column {metric!r}; PSNR columns: {have}")
        for col in (x, label_col):
            if col not in runs.columns:
                raise KeyError(f"runs have no column {col!r}")
        sel = runs
        if "scale" in sel.columns:
            sel = sel[sel["scale"] == scale]
        if "status" in sel.columns:
            sel = sel[sel["status"] == "done"]
        devices = _devices(sel)
        xs = sel[x].astype(float) / (1e3 if x == "params" else 1e9)
        ys = sel[metric].astype(float)
        ok = xs.notna() & ys.notna()
        labels = sel[label_col].astype(str)[ok]
        steps = sel["steps"][ok] if "steps" in sel.columns else None
        for i, label in enumerate(dict.fromkeys(labels)):
            mask = labels == label
            gx, gy = xs[ok][mask].to_numpy(), ys[ok][mask].to_numpy()
            n = len(gy)
            std = float(np.std(gy, ddof=1)) if n > 1 else 0.0
            if steps is not None:  # say how long the kit trained it (the device is in the title)
                lengths = sorted({int(v) for v in steps[mask].dropna()})
                if lengths:
                    span = f"{lengths[0]:,}" + (f"-{lengths[-1]:,}" if len(lengths) > 1 else "")
                    label = f"{label}, kit: {span} steps"
            ax.errorbar(
                [float(np.mean(gx))],
                [float(np.mean(gy))],
                yerr=[std] if n > 1 else None,
                fmt="o",
                color=f"C{i % 10}",
                capsize=3,
                label=f"{label} (n={n})" if n > 1 else label,
                zorder=3,
            )

    if published is not None and len(published):
        pub = published[(published["scale"] == scale) & (published["dataset"] == dataset)]
        px = pub["params"].astype(float) / 1e3 if x == "params" else pub["macs_g"].astype(float)
        py = pub["psnr"].astype(float)
        ok = px.notna() & py.notna()
        px, py, names = px[ok].to_numpy(), py[ok].to_numpy(), pub["method"][ok].astype(str)
        if len(px):
            ax.scatter(px, py, marker="s", s=18, color="0.45", label="published", zorder=2)
            for xi, yi, name in zip(px, py, names, strict=True):
                ax.annotate(
                    name,
                    (xi, yi),
                    xytext=(3, 3),
                    textcoords="offset points",
                    fontsize=6,
                    color="0.3",
                )
            fx, fy = pareto_front(px, py)
            ax.step(
                fx, fy, where="post", color="0.6", ls="--", lw=1, label="published Pareto front"
            )

    if measured is not None and len(measured):
        _draw_measured(ax, measured, published, dataset=dataset, scale=scale, x=x)

    note = device_note or "kit runs"
    dev = ", ".join(devices) if devices else "not recorded"
    ax.set_title(f"{dataset} ×{scale}\n{note} (device: {dev})", fontsize=9)
    ax.set_xlabel("parameters (K)" if x == "params" else "MACs (G, 1280×720 output)")
    ax.set_ylabel(f"PSNR (Y channel) on {dataset}, dB")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def _draw_measured(
    ax: Axes,
    measured: pd.DataFrame,
    published: pd.DataFrame | None,
    *,
    dataset: str,
    scale: int,
    x: str,
) -> None:
    """Red diamonds for released weights measured by the kit, tied to their published point."""
    sel = measured[(measured["scale"] == scale) & (measured["dataset"] == dataset)]
    if sel.empty:
        return
    mx = sel["params"].astype(float) / 1e3 if x == "params" else sel["macs_720p_g"].astype(float)
    my = sel["psnr_y"].astype(float)
    ax.scatter(mx, my, marker="D", s=22, color="C3", zorder=4,
               label="authors' weights, measured by the kit")  # fmt: skip
    for xi, yi, name in zip(mx, my, sel["method"].astype(str), strict=True):
        ax.annotate(name, (xi, yi), xytext=(3, -8), textcoords="offset points", fontsize=6,
                    color="C3")  # fmt: skip
        if published is None:
            continue
        pub = published[(published["method"] == name) & (published["scale"] == scale)
                        & (published["dataset"] == dataset)]  # fmt: skip
        if len(pub) and x == "params":
            ax.plot([float(pub["params"].iloc[0]) / 1e3, xi], [float(pub["psnr"].iloc[0]), yi],
                    color="C3", lw=0.6, alpha=0.6, zorder=3)  # fmt: skip


def training_curves(
    history: pd.DataFrame | Sequence[Mapping[str, Any]], *, ax: Axes | None = None
) -> Figure:
    """Training loss against step (log y) and, when present, validation PSNR on a twin axis.

    Args:
        history: ``fit``'s records: ``step``, ``loss`` and, on validation rows,
            ``val_psnr_y`` (histories saved before it was named so call it ``psnr``).
        ax: Axes to draw into; a new figure when None.
    """
    import pandas as pd

    df = history if isinstance(history, pd.DataFrame) else pd.DataFrame(list(history))
    if "step" not in df.columns:
        raise KeyError(f"history needs a 'step' column, got {list(df.columns)}")
    if ax is None:
        fig, ax = plt.subplots(figsize=FIGSIZE)
    else:
        fig = ax.figure
    handles = []
    if "loss" in df.columns:
        rows = df[df["loss"].notna()]
        (line,) = ax.plot(
            rows["step"].astype(float), rows["loss"].astype(float), color="C0", lw=1, label="loss"
        )
        handles.append(line)
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    if "val_psnr_y" not in df.columns and "psnr" in df.columns:
        df = df.rename(columns={"psnr": "val_psnr_y"})
    if "val_psnr_y" in df.columns and df["val_psnr_y"].notna().any():
        rows = df[df["val_psnr_y"].notna()]
        ax2 = ax.twinx()
        (line,) = ax2.plot(
            rows["step"].astype(float),
            rows["val_psnr_y"].astype(float),
            color="C1",
            marker="o",
            ms=3,
            label="validation PSNR",
        )
        ax2.set_ylabel("validation PSNR (dB)")
        handles.append(line)
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="center right")
    fig.tight_layout()
    return fig


def ablation_bars(table: pd.DataFrame, metric: str = "psnr_y/Set5") -> Figure:
    """One bar per config: mean over seeds with ± std, the base config as a dashed line.

    Args:
        table: The ablation summary: ``label`` (or ``config``), ``is_base``, ``n``,
            ``<metric>_mean``, ``<metric>_std`` and ``within_noise`` (bars whose difference from
            the base is within seed noise are drawn grey and hatched).
        metric: The metric column stem, e.g. ``"psnr_y/Set5"``.
    """
    mean_col, std_col = f"{metric}_mean", f"{metric}_std"
    if mean_col not in table.columns:
        raise KeyError(f"table has no column {mean_col!r}; columns: {list(table.columns)}")
    label_col = next((c for c in ("label", "config") if c in table.columns), None)
    labels = table[label_col].astype(str).tolist() if label_col else [str(i) for i in table.index]
    means = table[mean_col].astype(float).to_numpy()
    stds = (
        table[std_col].astype(float).fillna(0.0).to_numpy()
        if std_col in table.columns
        else np.zeros(len(table))
    )
    noise = (
        table["within_noise"].fillna(False).astype(bool).to_numpy()
        if "within_noise" in table.columns
        else np.zeros(len(table), dtype=bool)
    )
    is_base = (
        table["is_base"].fillna(False).astype(bool).to_numpy()
        if "is_base" in table.columns
        else np.zeros(len(table), dtype=bool)
    )

    fig, ax = plt.subplots(figsize=(max(FIGSIZE[0], 0.55 * len(table) + 2), FIGSIZE[1]))
    pos = np.arange(len(table))
    colors = ["0.75" if nz else ("C1" if b else "C0") for nz, b in zip(noise, is_base, strict=True)]
    bars = ax.bar(pos, means, yerr=stds, color=colors, capsize=3, edgecolor="0.3", lw=0.6)
    for bar, nz in zip(bars, noise, strict=True):
        if nz:
            bar.set_hatch("//")
    # Bars start at zero, but PSNR differences are tenths of a dB: zoom the y axis on the data.
    lo = float(np.nanmin(means - stds)) if len(means) else 0.0
    hi = float(np.nanmax(means + stds)) if len(means) else 1.0
    pad = max(hi - lo, 1e-3) * 0.25
    ax.set_ylim(lo - pad, hi + 2 * pad)
    if "n" in table.columns:
        for bar, top, n in zip(bars, means + stds, table["n"], strict=True):
            ax.text(
                bar.get_x() + bar.get_width() / 2,
                top + pad * 0.2,
                f"n={int(n)}",
                ha="center",
                va="bottom",
                fontsize=7,
            )
    legend = []
    if is_base.any():
        base = int(np.flatnonzero(is_base)[0])
        ax.axhline(means[base], color="C1", ls="--", lw=1)
        legend.append(Patch(color="C1", label=f"base: {labels[base]}"))
    if noise.any():
        legend.append(Patch(facecolor="0.75", hatch="//", edgecolor="0.3", label="within noise"))
    if legend:
        ax.legend(handles=legend, fontsize=7, loc="upper right")
    ax.set_xticks(pos, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_title(f"Ablation: {metric} (mean ± std over seeds)", fontsize=9)
    fig.tight_layout()
    return fig


def _to_hwc(image: Any) -> np.ndarray:
    # Tensors come as (1,)C,H,W floats; numpy images as H,W(,C). Both become H,W(,C) arrays.
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    arr = np.asarray(image)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3):
        raise ValueError(f"expected an H×W or H×W×C image, got shape {arr.shape}")
    return arr


def _show(ax: Axes, image: np.ndarray) -> None:
    gray = image.ndim == 2
    vmax = 255 if image.dtype == np.uint8 else 1.0
    ax.imshow(
        image,
        interpolation="nearest",  # show pixels as they are: no smoothing of LR or SR detail
        cmap="gray" if gray else None,
        vmin=0 if gray else None,
        vmax=vmax if gray else None,
    )
    ax.set_xticks([])
    ax.set_yticks([])


def crop_comparison(
    images: Mapping[str, Any],
    box: tuple[int, int, int, int],
    *,
    scale: int | None = None,
    psnr: Mapping[str, float] | None = None,
) -> Figure:
    """The full reference image with a zoom box, then the same crop of every image.

    Args:
        images: Name -> image (uint8 or float H×W×C, or a C×H×W tensor), e.g.
            ``{"LR": lr, "bicubic": b, "SR": sr, "HR": hr}``.
        box: ``(top, left, height, width)`` in pixels of the reference: ``"HR"`` if present,
            else the largest image.
        scale: Size ratio of smaller (LR) images; their box is divided by it. Inferred from
            the shapes when None.
        psnr: Optional name -> PSNR (dB) added to the panel titles.
    """
    if not images:
        raise ValueError("images is empty")
    arrays = {name: _to_hwc(img) for name, img in images.items()}
    ref_name = (
        "HR"
        if "HR" in arrays
        else max(arrays, key=lambda k: arrays[k].shape[0] * arrays[k].shape[1])
    )
    ref = arrays[ref_name]
    top, left, height, width = (int(v) for v in box)
    if height < 1 or width < 1 or top < 0 or left < 0:
        raise ValueError(f"box must be (top, left, height, width) with positive size, got {box}")
    if top + height > ref.shape[0] or left + width > ref.shape[1]:
        raise ValueError(f"box {box} does not fit in {ref_name} of size {ref.shape[:2]}")

    n = len(arrays) + 1
    fig, axes = plt.subplots(1, n, figsize=(min(2.0 * n, 12.0), 2.6))
    _show(axes[0], ref)
    axes[0].add_patch(
        Rectangle((left - 0.5, top - 0.5), width, height, fill=False, edgecolor="yellow", lw=1.5)
    )
    axes[0].set_title(f"{ref_name} (full)", fontsize=8)
    for ax, (name, arr) in zip(axes[1:], arrays.items(), strict=True):
        factor = 1
        if arr.shape[:2] != ref.shape[:2]:
            ratio = ref.shape[0] / arr.shape[0]
            factor = scale if scale is not None else round(ratio)
            if factor < 1 or abs(arr.shape[0] * factor - ref.shape[0]) >= factor:
                raise ValueError(
                    f"{name} is {arr.shape[:2]} and {ref_name} is {ref.shape[:2]}: "
                    f"not a ×{factor} pair; pass scale="
                )
        t, le = top // factor, left // factor
        h, w = max(1, height // factor), max(1, width // factor)
        _show(ax, arr[t : t + h, le : le + w])
        title = name if factor == 1 else f"{name} (×{factor} nearest)"
        if psnr and name in psnr:
            title += f"\n{psnr[name]:.2f} dB"
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig
