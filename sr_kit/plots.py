"""Figures for the notebooks: size-vs-quality, training curves, ablation bars and zoomed crops.

Every function takes plain data (DataFrames, numpy arrays, tensors), returns the matplotlib
``Figure`` and never calls ``plt.show()``, so the same code works in notebooks, scripts and tests.
Only ``crop_psnr`` (sr_kit.metrics) and ``interval_halfwidth`` (sr_kit.ablation's t rule) import
the rest of sr_kit, when called; importing ``sr_kit`` itself never imports matplotlib.

Used in notebooks/06_lmswn.ipynb and 09_safdnet.ipynb (training curves, crops),
11_ablations.ipynb (ablation bars), 12_params_vs_psnr.ipynb (size vs PSNR, the Pareto front) and
13_the_family.ipynb.
"""

from __future__ import annotations

import functools
import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "STYLE",
    "ablation_bars",
    "crop_comparison",
    "crop_psnr",
    "interval_halfwidth",
    "metric_label",
    "params_vs_psnr",
    "pareto_front",
    "training_curves",
    "use_style",
]

#: The kit's figure style: matplotlib rcParams applied by ``use_style()`` (and so by
#: ``sr_kit.nb.setup()``). 100 dpi and 8 × 4.5 inches make a default figure 800 px wide, legible
#: at 100 % zoom in JupyterLab and in an HTML export; no committed figure is narrower than 600 px.
STYLE: dict[str, Any] = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.figsize": (8.0, 4.5),
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "figure.titlesize": 12,
    "axes.grid": False,
    "grid.alpha": 0.3,
    "image.interpolation": "nearest",
}
DPI = STYLE["figure.dpi"]
FIGSIZE = STYLE["figure.figsize"]
#: The narrowest figure the kit commits, in pixels (tests/test_notebook_figures.py checks it).
MIN_WIDTH_PX = 600


def use_style() -> dict[str, Any]:
    """Apply ``STYLE`` to matplotlib's rcParams; returns the settings it applied.

    The inline backend (matplotlib-inline >= 0.1.4) keeps no rc of its own, so figures shown in
    a notebook carry these sizes and the 100 dpi in their PNG metadata."""
    plt.rcParams.update(STYLE)
    return dict(STYLE)


def _styled(func: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw inside ``STYLE`` so a figure looks the same with or without ``use_style()``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with plt.rc_context(STYLE):
            return func(*args, **kwargs)

    return wrapper


def interval_halfwidth(sd: float, n: int, interval: Literal["t95", "sd"] = "t95") -> float:
    """Half-width of the error bar of a mean over ``n`` seeds with sample std ``sd``.

    ``"t95"``: the 95 % t interval of the mean, ``t(0.975, n - 1) * sd / sqrt(n)``, computed by
    ``sr_kit.ablation.mean_interval`` (the rule notebooks 10-12 use for "beyond noise");
    ``"sd"``: the sample standard deviation itself. NaN when it cannot be computed (n < 2).
    """
    if interval not in ("t95", "sd"):
        raise ValueError(f"interval must be 't95' or 'sd', got {interval!r}")
    if n is None or n < 2 or sd is None or not np.isfinite(sd):
        return math.nan
    if interval == "sd":
        return float(sd)
    from .ablation import mean_interval

    return float(mean_interval(float(sd), int(n)))


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


def _place_labels(ax: Axes, texts: list[Any], xs: list[float], ys: list[float]) -> None:
    """Move point labels apart (adjustText, deterministic: it seeds its own generator), then
    resolve any overlap left with a fixed vertical nudge, so no two labels overlap."""
    if not texts:
        return
    fig = ax.figure
    try:
        from adjustText import adjust_text
    except ImportError:  # pragma: no cover - adjustText is a dependency; keep working without it
        adjust_text = None
    if adjust_text is not None:
        adjust_text(
            texts,
            x=xs,
            y=ys,
            ax=ax,
            expand=(1.15, 1.35),
            force_text=(0.2, 0.4),
            arrowprops={"arrowstyle": "-", "color": "0.55", "lw": 0.6},
            min_arrow_len=8,
        )
    renderer = fig.canvas.get_renderer()
    inv = ax.transData.inverted()
    for _ in range(50):  # a last, deterministic pass: push the later label of a pair upwards
        boxes = [t.get_window_extent(renderer) for t in texts]
        moved = False
        for i in range(len(texts)):
            for j in range(i + 1, len(texts)):
                a, b = boxes[i], boxes[j]
                if a.overlaps(b):
                    lower, upper = (i, j) if a.y0 <= b.y0 else (j, i)
                    shift = boxes[lower].y1 - boxes[upper].y0 + 2
                    tx, ty = ax.transData.transform(texts[upper].get_position())
                    texts[upper].set_position(tuple(inv.transform((tx, ty + shift))))
                    boxes[upper] = texts[upper].get_window_extent(renderer)
                    moved = True
        if not moved:
            break


@_styled
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
    zoom: tuple[float, float, float, float] | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """PSNR against model size: three kinds of point, each drawn differently.

    Published figures (transcribed, grey squares, with their Pareto front as a dashed step
    line), the authors' released weights measured by the kit (red diamonds, joined to the
    published point of the same network by a thin line), and networks trained by the kit
    (coloured circles; the legend gives each one's training length, the subtitle the device).
    Labels are placed so that none overlaps another (``adjustText``, then a deterministic nudge).

    Args:
        runs: ``Registry.frame()`` output (columns ``scale``, ``params``/``macs``, ``device``,
            ``psnr_y/<dataset>``, ``label_col``, optionally ``steps``); rows with another scale
            or a status other than ``"done"`` are left out. Rows sharing a label are drawn as
            mean ± std over them.
        published: ``results/published.csv`` (columns ``method, scale, params, macs_g, dataset,
            psnr``).
        dataset: Benchmark set, e.g. ``"Set5"``.
        scale: Upscaling factor.
        x: ``"params"`` (thousands of parameters) or ``"macs"`` (G multiply-accumulates).
        label_col: Column that names a point of the kit's runs.
        device_note: What the kit's runs are, e.g. ``"kit runs: CPU quick mode"``; shown in the
            subtitle with the devices recorded in ``runs`` (so the title cannot claim a GPU the
            runs did not use). No such subtitle when no kit run is plotted.
        measured: ``results/official_weights.csv`` (columns ``method, scale, dataset, params,
            macs_720p_g, psnr_y``): the released weights as the kit measures them.
        zoom: ``(x0, x1, y0, y1)`` in axis units: adds a second panel under the first that
            shows this region enlarged (where the lightweight methods crowd); points inside it
            are labelled there, not in the overview.
        figsize: Inches at 100 dpi; default 10 × 6 (10 × 10.5 with ``zoom``): 1000 px wide.
    """
    if x not in ("params", "macs"):
        raise ValueError(f"x must be 'params' or 'macs', got {x!r}")
    metric = f"psnr_y/{dataset}"
    # (x, y, name, kind, extra): kind is "pub", "measured" or "kit"
    points: list[dict[str, Any]] = []
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
        xs = sel[x].astype(float) / (1e3 if x == "params" else 1e9)
        ys = sel[metric].astype(float)
        ok = xs.notna() & ys.notna()
        devices = _devices(sel[ok])
        labels = sel[label_col].astype(str)[ok]
        steps = sel["steps"][ok] if "steps" in sel.columns else None
        for i, name in enumerate(dict.fromkeys(labels)):
            mask = labels == name
            gx, gy = xs[ok][mask].to_numpy(), ys[ok][mask].to_numpy()
            n = len(gy)
            parts = []  # the legend says how long, and on what, the kit trained it
            if steps is not None:
                lengths = sorted({int(v) for v in steps[mask].dropna()})
                if lengths:
                    span = f"{lengths[0]:,}" + (f"-{lengths[-1]:,}" if len(lengths) > 1 else "")
                    parts.append(f"{span} steps")
            parts += _devices(sel[ok][mask])
            legend = f"{name}, kit: {', '.join(parts)}" if parts else name
            color = f"C{i % 10}" if i % 10 != 3 else "C9"  # C3 (red) is the diamonds' colour
            points.append({
                "x": float(np.mean(gx)), "y": float(np.mean(gy)), "name": name, "kind": "kit",
                "std": float(np.std(gy, ddof=1)) if n > 1 else 0.0, "n": n, "color": color,
                "legend": f"{legend} (n={n})" if n > 1 else legend,
            })  # fmt: skip
    pub_xy: tuple[np.ndarray, np.ndarray] | None = None
    if published is not None and len(published):
        pub = published[(published["scale"] == scale) & (published["dataset"] == dataset)]
        px = pub["params"].astype(float) / 1e3 if x == "params" else pub["macs_g"].astype(float)
        py = pub["psnr"].astype(float)
        ok = px.notna() & py.notna()
        for xi, yi, name in zip(px[ok], py[ok], pub["method"][ok].astype(str), strict=True):
            points.append({"x": float(xi), "y": float(yi), "name": name, "kind": "pub"})
        if ok.any():
            pub_xy = (px[ok].to_numpy(), py[ok].to_numpy())
    if measured is not None and len(measured):
        points += _measured_points(measured, published, dataset=dataset, scale=scale, x=x)

    if zoom is not None:
        fig, (ax, zax) = plt.subplots(
            2, 1, figsize=figsize or (10.0, 10.5), dpi=DPI, height_ratios=(1, 1.25)
        )
        axes = [ax, zax]
    else:
        fig, ax = plt.subplots(figsize=figsize or (10.0, 6.0), dpi=DPI)
        axes = [ax]

    def inside(p: dict[str, Any]) -> bool:
        return zoom is not None and zoom[0] <= p["x"] <= zoom[1] and zoom[2] <= p["y"] <= zoom[3]

    for k, a in enumerate(axes):
        legend = k == 0
        pubs = [p for p in points if p["kind"] == "pub"]
        if pubs:
            a.scatter(
                [p["x"] for p in pubs],
                [p["y"] for p in pubs],
                marker="s",
                s=40,
                color="0.45",
                zorder=3,
                label="published (papers)" if legend else None,
            )
        if pub_xy is not None:
            fx, fy = pareto_front(*pub_xy)
            a.step(
                fx,
                fy,
                where="post",
                color="0.5",
                ls="--",
                lw=1.2,
                zorder=2,
                label="Pareto front of the published points" if legend else None,
            )
        meas = [p for p in points if p["kind"] == "measured"]
        if meas:
            a.scatter(
                [p["x"] for p in meas],
                [p["y"] for p in meas],
                marker="D",
                s=45,
                color="C3",
                edgecolor="white",
                lw=0.6,
                zorder=4,
                label="authors' weights, measured by the kit" if legend else None,
            )
            for p in meas:
                if "tie" in p:
                    a.plot(
                        [p["tie"][0], p["x"]],
                        [p["tie"][1], p["y"]],
                        color="C3",
                        lw=0.8,
                        alpha=0.7,
                        zorder=3,
                    )
        for p in points:
            if p["kind"] == "kit":
                a.errorbar(
                    [p["x"]],
                    [p["y"]],
                    yerr=[p["std"]] if p["n"] > 1 else None,
                    fmt="o",
                    ms=8,
                    color=p["color"],
                    capsize=4,
                    zorder=5,
                    label=p["legend"] if legend else None,
                )
        a.grid(alpha=0.3)
        a.set_xlabel("parameters (thousands)" if x == "params" else "MACs (G, 1280×720 output)")
        a.set_ylabel(f"PSNR on {dataset}, Y channel (dB)")
    ax.margins(x=0.06, y=0.12)
    if zoom is not None:
        zax.set_xlim(zoom[0], zoom[1])
        zax.set_ylim(zoom[2], zoom[3])
        zax.set_title("the crowded region, enlarged (grey box above)", fontsize=11)
        ax.add_patch(
            Rectangle(
                (zoom[0], zoom[2]),
                zoom[1] - zoom[0],
                zoom[3] - zoom[2],
                fill=False,
                edgecolor="0.4",
                lw=1,
                ls="-",
                zorder=1,
            )
        )
    kit_plotted = any(p["kind"] == "kit" for p in points)
    title = f"{dataset} ×{scale}: PSNR against {'size' if x == 'params' else 'compute'}"
    if kit_plotted:
        note = device_note or "kit runs"
        dev = ", ".join(devices) if devices else "device not recorded"
        title += f"\n{note} (device: {dev})"
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", framealpha=0.9, fontsize=9)
    fig.tight_layout()
    colors = {"pub": "0.2", "measured": "C3"}
    for a, mine in [(ax, [p for p in points if not inside(p)])] + (
        [(zax, [p for p in points if inside(p)])] if zoom is not None else []
    ):
        texts = [
            a.text(p["x"], p["y"], p["name"], fontsize=9 if a is ax else 10,
                   color=p.get("color", colors.get(p["kind"], "0.2")),
                   weight="bold" if p["kind"] == "kit" else "normal", zorder=6)
            for p in mine if p["kind"] != "measured" or "tie" not in p
        ]  # fmt: skip
        _place_labels(a, texts, [p["x"] for p in points], [p["y"] for p in points])
    return fig


def _measured_points(
    measured: pd.DataFrame,
    published: pd.DataFrame | None,
    *,
    dataset: str,
    scale: int,
    x: str,
) -> list[dict[str, Any]]:
    """The released weights measured by the kit, each with a ``tie`` to the published point of
    the same method when there is one (a tied diamond is named by its square, so only the
    untied ones get a label)."""
    sel = measured[(measured["scale"] == scale) & (measured["dataset"] == dataset)]
    if sel.empty:
        return []
    mx = sel["params"].astype(float) / 1e3 if x == "params" else sel["macs_720p_g"].astype(float)
    out = []
    for xi, yi, name in zip(mx, sel["psnr_y"].astype(float), sel["method"].astype(str),
                            strict=True):  # fmt: skip
        point: dict[str, Any] = {"x": float(xi), "y": float(yi), "name": name, "kind": "measured"}
        if published is not None:
            pub = published[(published["method"] == name) & (published["scale"] == scale)
                            & (published["dataset"] == dataset)]  # fmt: skip
            if len(pub):
                px = (float(pub["params"].iloc[0]) / 1e3 if x == "params"
                      else float(pub["macs_g"].iloc[0]))  # fmt: skip
                if np.isfinite(px):
                    point["tie"] = (px, float(pub["psnr"].iloc[0]))
        out.append(point)
    return out


@_styled
def training_curves(
    history: pd.DataFrame | Sequence[Mapping[str, Any]], *, ax: Axes | None = None
) -> Figure:
    """Training loss against step (log y) and, when present, validation PSNR on a twin axis.

    Args:
        history: ``fit``'s records: ``step``, ``loss`` and, on validation rows,
            ``val_psnr_y`` (histories saved before it was named so call it ``psnr``).
        ax: Axes to draw into; a new 800 × 400 px figure when None.
    """
    import pandas as pd

    df = history if isinstance(history, pd.DataFrame) else pd.DataFrame(list(history))
    if "step" not in df.columns:
        raise KeyError(f"history needs a 'step' column, got {list(df.columns)}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(8.0, 4.0), dpi=DPI)
    else:
        fig = ax.figure
    handles = []
    if "loss" in df.columns:
        rows = df[df["loss"].notna()]
        (line,) = ax.plot(
            rows["step"].astype(float), rows["loss"].astype(float), color="C0", lw=1.2,
            label="training loss (left axis)",
        )  # fmt: skip
        handles.append(line)
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (log scale)", color="C0")
    ax.grid(alpha=0.3)
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
            ms=4,
            label="validation PSNR (right axis)",
        )
        ax2.set_ylabel("validation PSNR, Y channel (dB)", color="C1")
        handles.append(line)
    if handles:
        ax.legend(handles=handles, loc="center right", framealpha=0.9)
    fig.tight_layout()
    return fig


_SET_NAMES = {"embedded": "the embedded validation images"}


def metric_label(metric: str) -> str:
    """A readable axis label for a metric column stem: ``"psnr_y/Set5"`` ->
    ``"PSNR on Set5, Y channel (dB)"``."""
    kind, _, where = metric.partition("/")
    where = _SET_NAMES.get(where, where)
    on = f" on {where}" if where else ""
    if kind == "psnr_y":
        return f"PSNR, Y channel (dB){on.replace(' on ', chr(10) + 'on ', 1)}"
    if kind == "ssim_y":
        return f"SSIM{on}, Y channel"
    if kind == "lpips":
        return f"LPIPS{on} (lower is better)"
    return metric


def _min_span(metric: str) -> float:
    kind = metric.split("/")[0]
    return {"psnr_y": 1.0, "ssim_y": 0.02, "lpips": 0.02}.get(kind, 0.0)


@_styled
def ablation_bars(
    table: pd.DataFrame,
    metric: str = "psnr_y/Set5",
    *,
    bicubic: float | None = None,
    interval: Literal["t95", "sd"] = "t95",
    ylabel: str | None = None,
    min_span: float | None = None,
) -> Figure:
    """One point per config: the mean over seeds with its 95 % t interval, the base config as a
    dashed line with its interval as a band, and bicubic as a grey line.

    Configs whose difference from the base is within seed noise (``within_noise``, computed by
    ``sr_kit.ablation``) are drawn grey and hollow. The means are points, not bars from zero,
    because the y axis does not start at zero. Range rule: the y axis covers every interval and
    the bicubic line, and spans at least ``min_span`` (1 dB for PSNR, 0.02 for SSIM/LPIPS), so
    that a 0.05 dB difference looks as small as it is; the rule is written under the axis.

    Args:
        table: The ablation summary: ``label`` (or ``config``), ``is_base``, ``n`` (or
            ``<metric>_n``), ``<metric>_mean``, ``<metric>_std`` and ``within_noise``.
        metric: The metric column stem, e.g. ``"psnr_y/Set5"``.
        bicubic: The bicubic score on the same images by the same code (a horizontal line).
        interval: ``"t95"`` (default): ``t(0.975, n - 1) * std / sqrt(n)``; ``"sd"``: ± std.
        ylabel: The y-axis label; by default a readable name of ``metric``.
        min_span: The smallest y range; see the range rule.
    """
    if interval not in ("t95", "sd"):
        raise ValueError(f"interval must be 't95' or 'sd', got {interval!r}")
    mean_col, std_col = f"{metric}_mean", f"{metric}_std"
    if mean_col not in table.columns:
        raise KeyError(f"table has no column {mean_col!r}; columns: {list(table.columns)}")
    label_col = next((c for c in ("label", "config") if c in table.columns), None)
    labels = table[label_col].astype(str).tolist() if label_col else [str(i) for i in table.index]
    means = table[mean_col].astype(float).to_numpy()
    stds = (
        table[std_col].astype(float).to_numpy()
        if std_col in table.columns
        else np.full(len(table), np.nan)
    )
    n_col = next((c for c in (f"{metric}_n", "n") if c in table.columns), None)
    ns = table[n_col].fillna(0).astype(int).to_numpy() if n_col else np.zeros(len(table), int)
    half = np.array([interval_halfwidth(s, n, interval) for s, n in zip(stds, ns, strict=True)])
    err = np.nan_to_num(half, nan=0.0)
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
    span_rule = _min_span(metric) if min_span is None else float(min_span)

    width = max(8.0, 0.9 * len(table) + 3.0)
    fig, ax = plt.subplots(figsize=(width, 5.6), dpi=DPI)
    pos = np.arange(len(table))
    what = "95 % t interval of the mean" if interval == "t95" else "± 1 std over seeds"
    base = int(np.flatnonzero(is_base)[0]) if is_base.any() else None
    if base is not None:
        ax.axhline(means[base], color="C1", ls="--", lw=1.2, label="base config (mean)", zorder=1)
        if err[base] > 0:
            ax.axhspan(means[base] - err[base], means[base] + err[base], color="C1", alpha=0.12,
                       lw=0, label="base config's interval", zorder=0)  # fmt: skip
    unit = " dB" if metric.startswith("psnr") else ""
    if bicubic is not None:
        ax.axhline(float(bicubic), color="0.35", ls="-", lw=1.5, zorder=1,
                   label=f"bicubic ({float(bicubic):.2f}{unit})")  # fmt: skip
    colors = ["0.6" if nz else ("C1" if b else "C0") for nz, b in zip(noise, is_base, strict=True)]
    for p, m, e, c, nz in zip(pos, means, err, colors, noise, strict=True):
        ax.errorbar([p], [m], yerr=[e], fmt="o", ms=8, color=c, capsize=5, lw=1.5, zorder=3,
                    mfc="white" if nz else c, mew=1.5)  # fmt: skip
    # legend proxies (one entry per kind of point, not per config)
    ax.errorbar([], [], yerr=[], fmt="o", color="C0", capsize=5, label=f"mean, {what}")
    if noise.any():
        ax.errorbar([], [], yerr=[], fmt="o", color="0.6", mfc="white", capsize=5,
                    label="within seed noise of the base")  # fmt: skip

    finite = np.isfinite(means)
    lo = float(np.min((means - err)[finite])) if finite.any() else 0.0
    hi = float(np.max((means + err)[finite])) if finite.any() else 1.0
    if bicubic is not None:
        lo, hi = min(lo, float(bicubic)), max(hi, float(bicubic))
    span = max(hi - lo, span_rule, 1e-6)
    mid = (hi + lo) / 2
    bottom, top = mid - 0.6 * span, mid + 0.65 * span  # room for the n= labels
    ax.set_ylim(bottom, top)
    if n_col:
        for p, m, e, n in zip(pos, means, err, ns, strict=True):
            if np.isfinite(m):
                ax.text(p, m + e + 0.03 * span, f"n={int(n)}", ha="center", va="bottom",
                        fontsize=9, color="0.3")  # fmt: skip
    ax.set_xticks(pos, labels, rotation=25, ha="right")
    ax.set_xlim(-0.6, len(table) - 0.4)
    ax.set_ylabel(ylabel or metric_label(metric))
    ax.grid(axis="y", alpha=0.3)
    rule = f"y range: at least {span_rule:g}{unit}, centred on the data" if span_rule else None
    ax.set_title(f"Ablation: each config against the base\nerror bars: {what}")
    # the rule sits with the legend, so that a notebook's own title does not drop it
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, framealpha=0.9,
              fontsize=9, title=rule, title_fontsize=9)  # fmt: skip
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


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    a = arr.astype(float)
    if a.size and float(np.nanmax(a)) <= 1.0 + 1e-6:
        a = a * 255.0
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


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


def crop_psnr(sr: Any, hr: Any, box: tuple[int, int, int, int], *, scale: int) -> float:
    """PSNR_Y (dB) of the crop ``box`` = (top, left, height, width) of ``sr`` against ``hr``.

    The benchmark protocol shaves ``scale`` px at the image border; on a crop, only the sides
    that lie within ``scale`` px of the image border are shaved (by what falls inside that
    margin), so an inner crop is scored whole. Computed by ``sr_kit.metrics.psnr_y``.
    """
    from .metrics import psnr_y

    a, b = _to_uint8(_to_hwc(sr)), _to_uint8(_to_hwc(hr))
    if a.shape != b.shape:
        raise ValueError(f"sr {a.shape} and hr {b.shape} differ in size")
    if a.ndim == 2:
        a, b = np.repeat(a[..., None], 3, -1), np.repeat(b[..., None], 3, -1)
    top, left, height, width = (int(v) for v in box)
    H, W = b.shape[:2]
    t0, l0 = max(top, scale), max(left, scale)
    t1, l1 = min(top + height, H - scale), min(left + width, W - scale)
    if t1 <= t0 or l1 <= l0:
        raise ValueError(f"box {box} lies inside the {scale}-px border that the protocol shaves")
    return float(psnr_y(a[t0:t1, l0:l1], b[t0:t1, l0:l1], 0))


@_styled
def crop_comparison(
    images: Mapping[str, Any],
    box: tuple[int, int, int, int],
    *,
    hr: Any | None = None,
    reference: str | None = "bicubic",
    diff_gain: float = 4,
    provenance: str | None = None,
    scale: int,
    panel_in: float = 2.0,
) -> Figure:
    """The full image with a zoom box, the same crop of every output (with the crop's own
    PSNR), the ground truth, and under each output its amplified difference from ``reference``.

    Top row: the full HR image (or the reference output, without ``hr``) with the box in
    yellow, then one crop per entry of ``images`` in order, then the HR crop. Bottom row, under
    each output other than ``reference``: ``|output - reference| × diff_gain`` (all channels,
    clipped to 255), where the output changed the bicubic picture. The provenance (model, steps,
    device) is written inside the figure, under the panels.

    Args:
        images: Name -> image (uint8 or float H×W×C, or a C×H×W tensor), e.g.
            ``{"bicubic": b, "LMSWN": sr}``. Images ``scale`` times smaller (an LR input) are
            shown enlarged with nearest neighbour and get no PSNR.
        box: ``(top, left, height, width)`` in HR pixels.
        hr: The ground truth; each title then gives the crop PSNR (Y channel, see
            :func:`crop_psnr`).
        reference: The name in ``images`` the differences are taken against; None for none.
        diff_gain: Amplification of the difference panels (stated in their titles).
        provenance: Where the outputs came from, e.g. ``"LMSWN ×4, 2,000 steps, CPU"``.
        scale: The upscaling factor (LR size ratio, and the border shaved by the protocol).
        panel_in: Width of one panel in inches (at 100 dpi); the figure is at least 8 in wide.
    """
    if not images:
        raise ValueError("images is empty")
    arrays = {name: _to_hwc(img) for name, img in images.items()}
    hr_arr = _to_hwc(hr) if hr is not None else None
    if reference is not None and reference not in arrays:
        raise ValueError(f"reference {reference!r} is not in images {list(arrays)}; pass one")
    big = hr_arr if hr_arr is not None else max(arrays.values(), key=lambda a: a.shape[0])
    top, left, height, width = (int(v) for v in box)
    if height < 1 or width < 1 or top < 0 or left < 0:
        raise ValueError(f"box must be (top, left, height, width) with positive size, got {box}")
    if top + height > big.shape[0] or left + width > big.shape[1]:
        raise ValueError(f"box {box} does not fit in an image of size {big.shape[:2]}")

    def crop(name: str, arr: np.ndarray) -> tuple[np.ndarray, int]:
        if arr.shape[:2] == big.shape[:2]:
            return arr[top : top + height, left : left + width], 1
        if abs(arr.shape[0] * scale - big.shape[0]) >= scale:
            raise ValueError(
                f"{name} is {arr.shape[:2]} and the HR image {big.shape[:2]}: not a ×{scale} pair"
            )
        t, le = top // scale, left // scale
        h, w = max(1, height // scale), max(1, width // scale)
        return arr[t : t + h, le : le + w], scale

    names = list(arrays)
    diffs = [n for n in names if reference is not None and n != reference
             and arrays[n].shape[:2] == arrays[reference].shape[:2]]  # fmt: skip
    cols = 1 + len(names) + (1 if hr_arr is not None else 0)
    rows = 2 if diffs else 1
    fig_w = max(8.0, panel_in * cols)
    crop_h = panel_in * height / width
    wrap = max(40, int(fig_w * DPI / 8.5))  # under 8.5 px per character at 10 pt: stays inside
    lines = (len(textwrap.wrap(provenance, wrap)) if provenance else 0) + (2 if diffs else 0)
    fig_h = rows * (crop_h + 0.6) + 0.15 + 0.2 * lines
    fig = plt.figure(figsize=(fig_w, fig_h), dpi=DPI)
    grid = fig.add_gridspec(rows, cols)
    axes = np.empty((rows, cols), dtype=object)
    axes[0, 0] = fig.add_subplot(grid[:, 0])  # the full image spans both rows
    for r in range(rows):
        for c in range(1, cols):
            axes[r, c] = fig.add_subplot(grid[r, c])
            axes[r, c].set_axis_off()

    full = axes[0, 0]
    full_img = hr_arr if hr_arr is not None else arrays[reference or names[0]]
    _show(full, full_img)
    full.add_patch(
        Rectangle((left - 0.5, top - 0.5), width, height, fill=False, edgecolor="yellow", lw=2)
    )
    full.set_title("HR, full image" if hr_arr is not None else f"{reference or names[0]}, full")
    for col, name in enumerate(names, start=1):
        ax = axes[0, col]
        ax.set_axis_on()
        piece, factor = crop(name, arrays[name])
        _show(ax, piece)
        title = name if factor == 1 else f"{name} (×{factor}, nearest)"
        if hr_arr is not None and factor == 1:
            title += f"\ncrop PSNR {crop_psnr(arrays[name], hr_arr, box, scale=scale):.2f} dB"
        ax.set_title(title, fontsize=11)
        if name in diffs:
            dax = axes[1, col]
            dax.set_axis_on()
            a = _to_uint8(piece).astype(np.int16)
            b = _to_uint8(crop(reference, arrays[reference])[0]).astype(np.int16)
            diff = np.clip(np.abs(a - b) * diff_gain, 0, 255).astype(np.uint8)
            _show(dax, diff)
            dax.set_title(f"|{name} − {reference}| × {diff_gain:g}", fontsize=10)
    if hr_arr is not None:
        ax = axes[0, cols - 1]
        ax.set_axis_on()
        _show(ax, crop("HR", hr_arr)[0])
        ax.set_title("HR (ground truth)", fontsize=11)
    bottom = 0.0
    note = "\n".join(textwrap.wrap(provenance, wrap)) if provenance else ""
    if diffs:
        rule = (f"bottom row: |output − {reference}| × {diff_gain:g}, where the output "
                f"changed the {reference} picture (black: no change)")  # fmt: skip
        note += ("\n" if note else "") + "\n".join(textwrap.wrap(rule, wrap))
    if note:
        fig.text(0.01, 0.01, note, ha="left", va="bottom", fontsize=10, color="0.2")
        bottom = (0.25 + 0.2 * note.count("\n")) / fig_h
    fig.tight_layout(rect=(0, bottom, 1, 1))
    return fig
