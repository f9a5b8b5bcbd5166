"""Figures: each returns a Figure whose plotted data equal the inputs, in the kit's style."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from sr_kit.metrics import psnr_y
from sr_kit.plots import (
    DPI,
    STYLE,
    ablation_bars,
    crop_comparison,
    crop_psnr,
    interval_halfwidth,
    metric_label,
    params_vs_psnr,
    pareto_front,
    training_curves,
    use_style,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _runs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["imdn", "imdn", "imdn", "lmswn", "lmswn", "rfdn"],
            "scale": [4, 4, 4, 4, 2, 4],
            "status": ["done", "done", "done", "done", "done", "failed"],
            "params": [715176, 715176, 715176, 785148, 776055, 581952],
            "macs": [40.9e9, 40.9e9, 40.9e9, 43.45e9, 90e9, 31.7e9],
            "device": ["cpu", "cpu", "cpu", "cpu", "cuda", "cpu"],
            "psnr_y/Set5": [30.0, 30.2, 30.4, 31.0, 36.0, 29.0],
        }
    )


def _published() -> pd.DataFrame:
    # Hand-made: A and C are on the front, B is dominated by A, D sits on another scale.
    return pd.DataFrame(
        {
            "method": ["A", "B", "C", "D", "E"],
            "scale": [4, 4, 4, 2, 4],
            "params": [100_000, 300_000, 500_000, 200_000, 400_000],
            "macs_g": [10.0, 30.0, np.nan, 20.0, 40.0],
            "dataset": ["Set5", "Set5", "Set5", "Set5", "Set14"],
            "psnr": [31.0, 30.5, 32.0, 37.0, 28.0],
            "ssim": [0.88, 0.87, 0.90, 0.95, 0.78],
        }
    )


def _errorbars(ax) -> list[ErrorbarContainer]:
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def test_pareto_front() -> None:
    fx, fy = pareto_front([3, 1, 2, 4, 2], [5, 4, 3, 5, 6])
    assert fx.tolist() == [1, 2] and fy.tolist() == [4, 6]


def _width_px(fig: Figure) -> float:
    return fig.get_size_inches()[0] * fig.dpi


def test_style_is_applied_by_setup_and_by_every_function() -> None:
    from sr_kit.nb import setup

    with plt.rc_context({"figure.dpi": 72, "figure.figsize": (6, 3.2), "font.size": 6}):
        setup(verbose=False)
        assert plt.rcParams["figure.dpi"] == 100 and list(plt.rcParams["figure.figsize"]) == [
            8,
            4.5,
        ]
        assert plt.rcParams["font.size"] == 11 and plt.rcParams["axes.titlesize"] == 12
    with plt.rc_context({"figure.dpi": 72, "font.size": 6}):  # without use_style(): same look
        fig = training_curves([{"step": 0, "loss": 1.0}, {"step": 1, "loss": 0.5}])
        assert fig.dpi == DPI == 100 and _width_px(fig) >= 800
        assert fig.axes[0].xaxis.label.get_fontsize() == STYLE["axes.labelsize"]
    assert use_style()["figure.dpi"] == 100


def test_params_vs_psnr_data_and_provenance() -> None:
    fig = params_vs_psnr(_runs(), _published(), device_note="kit runs: CPU quick mode")
    assert isinstance(fig, Figure) and len(fig.axes) == 1 and _width_px(fig) >= 900
    ax = fig.axes[0]
    bars = _errorbars(ax)
    # x2 run and failed run out; the legend gives the device of each kit point
    assert [c.get_label() for c in bars] == ["imdn, kit: cpu (n=3)", "lmswn, kit: cpu"]
    imdn, lmswn = bars
    x, y = imdn.lines[0].get_data()
    assert x[0] == pytest.approx(715.176) and y[0] == pytest.approx(30.2)
    # The error bar spans mean ± sample std of the three seeds.
    (seg,) = imdn.lines[2][0].get_segments()
    std = np.std([30.0, 30.2, 30.4], ddof=1)
    assert seg[:, 1].tolist() == pytest.approx([30.2 - std, 30.2 + std])
    assert lmswn.has_yerr is False
    assert lmswn.lines[0].get_data()[1][0] == 31.0
    # Published points of scale 4 on Set5, with names, and their Pareto front as a step line.
    (scatter,) = [c for c in ax.collections if c.get_label() == "published (papers)"]
    assert scatter.get_offsets().tolist() == [[100.0, 31.0], [300.0, 30.5], [500.0, 32.0]]
    assert {t.get_text() for t in ax.texts} == {"A", "B", "C", "imdn", "lmswn"}
    (front,) = [ln for ln in ax.lines if ln.get_label().startswith("Pareto front")]
    assert front.get_drawstyle() == "steps-post"
    assert front.get_xdata().tolist() == [100.0, 500.0]
    assert front.get_ydata().tolist() == [31.0, 32.0]
    title = ax.get_title()
    assert "Set5" in title and "×4" in title and "CPU quick mode" in title
    assert "device: cpu" in title and "cuda" not in title.lower()
    assert "thousands" in ax.get_xlabel()


def test_params_vs_psnr_macs_and_devices() -> None:
    runs = _runs()
    fig = params_vs_psnr(runs, _published(), x="macs", scale=2)
    ax = fig.axes[0]
    (bar,) = _errorbars(ax)
    x, y = bar.lines[0].get_data()
    assert (x[0], y[0]) == (pytest.approx(90.0), 36.0)
    (scatter,) = [c for c in ax.collections if c.get_label() == "published (papers)"]
    assert scatter.get_offsets().tolist() == [[20.0, 37.0]]
    assert "device: cuda" in ax.get_title() and "kit runs" in ax.get_title()
    assert "MACs" in ax.get_xlabel()
    # Published points without a MAC count are left out of the MACs plot; with no kit run
    # plotted there is no device subtitle at all (no "device: not recorded").
    ax4 = params_vs_psnr(None, _published(), x="macs").axes[0]
    (scatter,) = [c for c in ax4.collections if c.get_label() == "published (papers)"]
    assert scatter.get_offsets().tolist() == [[10.0, 31.0], [30.0, 30.5]]
    assert "device" not in ax4.get_title() and "kit runs" not in ax4.get_title()
    failed_only = _runs()[_runs()["status"] == "failed"]
    assert "device" not in params_vs_psnr(failed_only, _published()).axes[0].get_title()


def test_params_vs_psnr_real_published_table() -> None:
    pub = pd.read_csv(REPO / "results" / "published.csv")
    ax = params_vs_psnr(None, pub, dataset="Urban100", scale=4).axes[0]
    texts = {t.get_text() for t in ax.texts}
    assert {"IMDN", "SAFMN", "Bicubic"} <= texts
    # Front: Bicubic, FSRCNN, SAFMN, BSRN, DLGSANet-tiny, DLGSANet-light (by hand from §1.3).
    (front,) = [ln for ln in ax.lines if ln.get_label().startswith("Pareto front")]
    assert front.get_xdata().tolist() == [0.0, 12.0, 240.0, 352.0, 581.0, 761.0]
    assert front.get_ydata().tolist() == [23.14, 24.62, 25.97, 26.27, 26.55, 26.66]
    with pytest.raises(KeyError, match="psnr_y/B100"):
        params_vs_psnr(_runs(), pub, dataset="B100")  # the runs were not evaluated on B100
    with pytest.raises(ValueError, match="flops"):
        params_vs_psnr(_runs(), x="flops")


def _overlapping_labels(fig: Figure) -> list[tuple[str, str]]:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    pairs = []
    for ax in fig.axes:
        texts = [t for t in ax.texts if t.get_text()]
        boxes = [t.get_window_extent(renderer) for t in texts]
        for i in range(len(texts)):
            for j in range(i + 1, len(texts)):
                if boxes[i].overlaps(boxes[j]):
                    pairs.append((texts[i].get_text(), texts[j].get_text()))
    return pairs


def _headline_figure(**kw) -> Figure:
    pub = pd.read_csv(REPO / "results" / "published.csv")
    official = pd.read_csv(REPO / "results" / "official_weights.csv")
    kit = pd.DataFrame(
        {
            "model": ["lmswn", "safdnet"],
            "scale": [4, 4],
            "params": [536316, 489672],
            "steps": [2000, 2000],
            "device": ["cpu: AMD EPYC"] * 2,
            "status": ["done"] * 2,
            "psnr_y/Set5": [29.96, 30.02],
        }
    )
    return params_vs_psnr(kit, pub, measured=official, device_note="kit runs: CPU", **kw)


@pytest.mark.parametrize("zoom", [None, (120, 800, 31.8, 32.65)])
def test_params_vs_psnr_labels_do_not_overlap_and_are_deterministic(zoom) -> None:
    """The real Set5 ×4 picture of notebook 12: DLGSANet, ELAN and IMDN, and the kit's lmswn
    and safdnet, sit close together; after drawing, no two labels' window extents overlap."""
    fig = _headline_figure(zoom=zoom)
    assert _width_px(fig) >= 900
    assert _overlapping_labels(fig) == []
    names = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert {"DLGSANet-tiny", "ELAN-light", "IMDN", "lmswn", "safdnet", "RLFN"} <= names
    # the same inputs put every label in the same place
    again = _headline_figure(zoom=zoom)
    again.canvas.draw()
    pos = [[t.get_position() for t in ax.texts] for ax in fig.axes]
    assert pos == [[t.get_position() for t in ax.texts] for ax in again.axes]
    if zoom is not None:  # points in the zoomed region are named there, not in the overview
        overview, zoomed = fig.axes
        assert "IMDN" in {t.get_text() for t in zoomed.texts}
        assert "IMDN" not in {t.get_text() for t in overview.texts}
        assert zoomed.get_xlim() == (120, 800) and zoomed.get_ylim() == (31.8, 32.65)


def test_training_curves() -> None:
    history = [
        {"step": 0, "loss": 0.2, "lr": 1e-4},
        {"step": 10, "loss": 0.1, "lr": 2e-4},
        {"step": 10, "psnr": 25.0},
        {"step": 20, "loss": 0.05, "lr": 2e-4, "psnr": 27.5},
    ]
    fig = training_curves(history)
    assert len(fig.axes) == 2 and _width_px(fig) >= 800
    ax, ax2 = fig.axes
    (loss,) = ax.lines
    assert loss.get_xdata().tolist() == [0, 10, 20]
    assert loss.get_ydata().tolist() == [0.2, 0.1, 0.05]
    assert ax.get_yscale() == "log"
    (psnr,) = ax2.lines
    assert psnr.get_xdata().tolist() == [10, 20] and psnr.get_ydata().tolist() == [25.0, 27.5]
    assert "PSNR" in ax2.get_ylabel() and ax.get_xlabel() == "training step"
    assert ax.get_legend().get_texts()[0].get_fontsize() >= 10

    no_val = training_curves(pd.DataFrame(history[:2]))
    assert len(no_val.axes) == 1
    _, given = plt.subplots()
    assert training_curves(history[:2], ax=given) is given.figure


def _ablation_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label": ["base", "asym=False", "head=conv3"],
            "is_base": [True, False, False],
            "n": [3, 3, 2],
            "psnr_y/Set5_mean": [30.50, 30.20, 30.45],
            "psnr_y/Set5_std": [0.05, 0.04, 0.10],
            "psnr_y/Set5_delta": [0.0, -0.30, -0.05],
            "within_noise": [False, False, True],
        }
    )


# t(0.975, df) from a printed table (e.g. NIST/SEMATECH e-Handbook, table 1.3.6.7.2)
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 9: 2.262, 29: 2.045}


@pytest.mark.parametrize("n", [2, 3, 4, 5, 10, 30])
def test_interval_halfwidth_is_the_t_interval_of_the_mean(n: int) -> None:
    sd = 0.07
    expected = T975[n - 1] * sd / np.sqrt(n)
    assert interval_halfwidth(sd, n) == pytest.approx(expected, rel=2e-4)
    assert interval_halfwidth(sd, n, "sd") == sd
    assert np.isnan(interval_halfwidth(sd, 1)) and np.isnan(interval_halfwidth(np.nan, 3))
    with pytest.raises(ValueError, match="t95"):
        interval_halfwidth(sd, n, "2se")


def test_ablation_bars() -> None:
    fig = ablation_bars(_ablation_table(), bicubic=30.1)
    assert len(fig.axes) == 1 and _width_px(fig) >= 800
    ax = fig.axes[0]
    bars = _errorbars(ax)
    # one point per config, then two legend proxies (no data)
    points = [b for b in bars if len(b.lines[0].get_xdata())]
    assert [b.lines[0].get_ydata()[0] for b in points] == [30.50, 30.20, 30.45]
    assert [b.lines[0].get_xdata()[0] for b in points] == [0, 1, 2]
    # error bars: the 95 % t interval of the mean, t(0.975, n-1) * sd / sqrt(n)
    half = [T975[2] * 0.05 / np.sqrt(3), T975[2] * 0.04 / np.sqrt(3), T975[1] * 0.10 / np.sqrt(2)]
    for b, h in zip(points, half, strict=True):
        (seg,) = b.lines[2][0].get_segments()
        assert seg[1, 1] - seg[0, 1] == pytest.approx(2 * h, rel=2e-4)
    # within noise: hollow grey
    assert points[2].lines[0].get_markerfacecolor() == "white"
    # the base's mean as a dashed line, bicubic as a solid line at the given value
    (base_line,) = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert list(base_line.get_ydata()) == [30.50, 30.50]
    (bic,) = [ln for ln in ax.lines if ln.get_label().startswith("bicubic")]
    assert list(bic.get_ydata()) == [30.1, 30.1] and "30.10 dB" in bic.get_label()
    assert [t.get_text() for t in ax.texts] == ["n=3", "n=3", "n=2"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["base", "asym=False", "head=conv3"]
    # range rule: every interval and the bicubic line inside, at least 1 dB of axis
    lo, hi = ax.get_ylim()
    assert hi - lo >= 1.0
    assert lo < 30.1 and lo < 30.20 - half[1] and hi > 30.50 + half[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "base: base" not in legend and not any(t.startswith("base: ") for t in legend)
    assert "mean, 95 % t interval of the mean" in legend
    assert "within seed noise of the base" in legend and "bicubic (30.10 dB)" in legend
    assert "95 % t interval" in ax.get_title()
    assert ax.get_legend().get_title().get_text() == "y range: at least 1 dB, centred on the data"
    # a readable y-label, not the column name
    assert ax.get_ylabel() == metric_label("psnr_y/Set5") == "PSNR, Y channel (dB)\non Set5"
    assert "psnr_y/" not in ax.get_ylabel()
    sd_ax = ablation_bars(_ablation_table(), interval="sd", ylabel="my label").axes[0]
    seg = next(b for b in _errorbars(sd_ax) if len(b.lines[0].get_xdata())).lines[2][0]
    assert np.diff(seg.get_segments()[0][:, 1])[0] == pytest.approx(0.10)
    assert sd_ax.get_ylabel() == "my label" and "std" in sd_ax.get_title()


def test_ablation_bars_range_does_not_inflate_small_differences() -> None:
    """0.05 dB on a >= 1 dB axis is at most 5 % of the axis height."""
    table = _ablation_table().assign(**{"psnr_y/Set5_std": [0.001, 0.001, 0.001]})
    table["psnr_y/Set5_mean"] = [30.50, 30.45, 30.48]
    lo, hi = ablation_bars(table).axes[0].get_ylim()
    assert 0.05 / (hi - lo) <= 0.05


def test_ablation_bars_config_column_and_missing_metric() -> None:
    table = _ablation_table().rename(columns={"label": "config"}).drop(columns="n")
    ax = ablation_bars(table).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()][1] == "asym=False"
    assert not ax.texts
    with pytest.raises(KeyError, match="ssim_y/Set5_mean"):
        ablation_bars(table, metric="ssim_y/Set5")


def _images():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    lr = hr[::4, ::4]
    sr = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    return {"LR": lr, "bicubic": sr[::-1].copy(), "SR": sr, "HR": hr}


def test_crop_comparison_pixels_psnr_diff_and_provenance(tmp_path: Path) -> None:
    imgs = _images()
    box = (8, 12, 16, 20)
    outputs = {"LR": imgs["LR"], "bicubic": imgs["bicubic"], "SR": imgs["SR"]}
    fig = crop_comparison(outputs, box, hr=imgs["HR"], scale=4, diff_gain=3,
                          provenance="SR x4, 80 steps, CPU quick mode")  # fmt: skip
    assert _width_px(fig) >= 800 and fig.dpi == 100
    (full, lr_ax, bic_ax, sr_ax, hr_ax), bottom = fig.axes[:5], fig.axes[5:]
    np.testing.assert_array_equal(np.asarray(full.images[0].get_array()), imgs["HR"])
    (rect,) = full.patches
    assert (rect.get_x(), rect.get_y()) == (11.5, 7.5)
    assert (rect.get_width(), rect.get_height()) == (20, 16)
    np.testing.assert_array_equal(np.asarray(lr_ax.images[0].get_array()), imgs["LR"][2:6, 3:8])
    assert lr_ax.images[0].get_interpolation() == "nearest"
    for ax, name in ((bic_ax, "bicubic"), (sr_ax, "SR"), (hr_ax, "HR")):
        crop = imgs[name][8:24, 12:32]
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), crop)
    # the crop's own PSNR_Y, by sr_kit.metrics.psnr_y (an inner crop: nothing shaved)
    for ax, name in ((bic_ax, "bicubic"), (sr_ax, "SR")):
        value = psnr_y(imgs[name][8:24, 12:32], imgs["HR"][8:24, 12:32], 0)
        assert f"crop PSNR {value:.2f} dB" in ax.get_title()
    assert "PSNR" not in lr_ax.get_title() and hr_ax.get_title() == "HR (ground truth)"
    # the amplified difference under SR (not under the reference, nor under LR)
    diff_axes = [ax for ax in bottom if ax.images]
    (dax,) = diff_axes
    assert dax.get_title() == "|SR − bicubic| × 3"
    a = imgs["SR"][8:24, 12:32].astype(int)
    b = imgs["bicubic"][8:24, 12:32].astype(int)
    expected = np.clip(np.abs(a - b) * 3, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(dax.images[0].get_array()), expected)
    (note,) = [t.get_text() for t in fig.texts]  # the provenance, inside the figure
    assert note.startswith("SR x4, 80 steps, CPU quick mode\n") and "× 3" in note
    fig.savefig(tmp_path / "crops.png")  # renders without error
    assert (tmp_path / "crops.png").stat().st_size > 0


def test_crop_comparison_long_provenance_stays_inside_the_figure() -> None:
    imgs = _images()
    text = "LMSWN x4, 2,000 steps on the embedded images, cpu: AMD EPYC; " * 4
    fig = crop_comparison({"bicubic": imgs["bicubic"], "SR": imgs["SR"]}, (8, 12, 16, 20),
                          hr=imgs["HR"], scale=4, provenance=text)  # fmt: skip
    fig.canvas.draw()
    (note,) = fig.texts
    box = note.get_window_extent(fig.canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width and box.y0 >= 0
    assert note.get_text().replace("\n", " ").startswith(text.strip()[:60])


def test_crop_psnr_shaves_only_at_the_image_border() -> None:
    imgs = _images()
    hr, sr = imgs["HR"], imgs["SR"]
    inner = crop_psnr(sr, hr, (8, 12, 16, 20), scale=4)
    assert inner == pytest.approx(psnr_y(sr[8:24, 12:32], hr[8:24, 12:32], 0))
    corner = crop_psnr(sr, hr, (0, 0, 16, 20), scale=4)  # touches the top and left borders
    assert corner == pytest.approx(psnr_y(sr[4:16, 4:20], hr[4:16, 4:20], 0))
    whole = crop_psnr(sr, hr, (0, 0, 48, 64), scale=4)  # the whole image: the usual protocol
    assert whole == pytest.approx(psnr_y(sr, hr, 4))
    with pytest.raises(ValueError, match="border"):
        crop_psnr(sr, hr, (0, 0, 3, 3), scale=4)


def test_crop_comparison_takes_tensors_and_no_hr() -> None:
    torch = pytest.importorskip("torch")
    imgs = _images()
    sr_t = torch.from_numpy(imgs["SR"]).permute(2, 0, 1)[None].float() / 255  # 1,C,H,W
    fig = crop_comparison({"LR": imgs["LR"], "SR": sr_t}, (4, 8, 8, 8), reference="SR", scale=4)
    full, lr_ax, sr_ax = fig.axes[:3]
    assert full.get_title() == "SR, full"
    np.testing.assert_array_equal(np.asarray(lr_ax.images[0].get_array()), imgs["LR"][1:3, 2:4])
    np.testing.assert_allclose(
        np.asarray(sr_ax.images[0].get_array()), imgs["SR"][4:12, 8:16] / 255, atol=1e-6
    )
    assert "PSNR" not in sr_ax.get_title()  # no ground truth, no PSNR
    gray = crop_comparison({"HR": imgs["HR"][..., 0]}, (0, 0, 4, 4), reference=None, scale=4)
    np.testing.assert_array_equal(
        np.asarray(gray.axes[1].images[0].get_array()), imgs["HR"][:4, :4, 0]
    )


def test_crop_comparison_bad_input() -> None:
    imgs = _images()
    with pytest.raises(ValueError, match="does not fit"):
        crop_comparison({"bicubic": imgs["bicubic"]}, (40, 0, 16, 16), hr=imgs["HR"], scale=4)
    with pytest.raises(ValueError, match="not a ×4"):
        crop_comparison({"bicubic": np.zeros((48, 64)), "odd": np.zeros((20, 30))}, (0, 0, 4, 4),
                        scale=4)  # fmt: skip
    with pytest.raises(ValueError, match="reference 'bicubic'"):
        crop_comparison({"SR": imgs["SR"]}, (0, 0, 4, 4), scale=4)


def test_params_vs_psnr_three_kinds_of_point() -> None:
    runs = _runs().assign(steps=[300, 300, 2000, 300, 300, 300])
    measured = pd.DataFrame(
        {
            "method": ["A", "Z", "A"],
            "scale": [4, 4, 2],
            "dataset": ["Set5", "Set5", "Set5"],
            "params": [110_000, 250_000, 110_000],
            "macs_720p_g": [11.0, 25.0, 40.0],
            "psnr_y": [31.05, 30.0, 37.0],
        }
    )
    fig = params_vs_psnr(runs, _published(), measured=measured)
    ax = fig.axes[0]
    labels = [c.get_label() for c in _errorbars(ax)]
    assert labels == ["imdn, kit: 300-2,000 steps, cpu (n=3)", "lmswn, kit: 300 steps, cpu"]
    (diamonds,) = [c for c in ax.collections if c.get_label().startswith("authors' weights")]
    assert {"Z"} <= {t.get_text() for t in ax.texts}  # an untied diamond is named
    assert diamonds.get_offsets().tolist() == [[110.0, 31.05], [250.0, 30.0]]
    # the measured A is joined to the published A (100K, 31.0); Z has no published point
    ties = [ln for ln in ax.lines if ln.get_label().startswith("_") and len(ln.get_xdata()) == 2]
    assert [ln.get_xdata().tolist() for ln in ties] == [[100.0, 110.0]]
    assert [ln.get_ydata().tolist() for ln in ties] == [[31.0, 31.05]]
