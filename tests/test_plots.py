"""Figures: each returns a Figure whose plotted data equal the inputs."""

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

from sr_kit.plots import (
    ablation_bars,
    crop_comparison,
    params_vs_psnr,
    pareto_front,
    training_curves,
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


def test_params_vs_psnr_data_and_provenance() -> None:
    fig = params_vs_psnr(_runs(), _published(), device_note="kit runs: CPU quick mode")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    bars = _errorbars(ax)
    assert [c.get_label() for c in bars] == ["imdn (n=3)", "lmswn"]  # x2 run and failed run out
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
    (scatter,) = [c for c in ax.collections if c.get_label() == "published"]
    assert scatter.get_offsets().tolist() == [[100.0, 31.0], [300.0, 30.5], [500.0, 32.0]]
    assert {t.get_text() for t in ax.texts} == {"A", "B", "C"}
    (front,) = [ln for ln in ax.lines if ln.get_label() == "published Pareto front"]
    assert front.get_drawstyle() == "steps-post"
    assert front.get_xdata().tolist() == [100.0, 500.0]
    assert front.get_ydata().tolist() == [31.0, 32.0]
    title = ax.get_title()
    assert "Set5" in title and "×4" in title and "CPU quick mode" in title
    assert "device: cpu" in title and "cuda" not in title.lower()
    assert "(K)" in ax.get_xlabel()


def test_params_vs_psnr_macs_and_devices() -> None:
    runs = _runs()
    fig = params_vs_psnr(runs, _published(), x="macs", scale=2)
    ax = fig.axes[0]
    (bar,) = _errorbars(ax)
    x, y = bar.lines[0].get_data()
    assert (x[0], y[0]) == (pytest.approx(90.0), 36.0)
    (scatter,) = [c for c in ax.collections if c.get_label() == "published"]
    assert scatter.get_offsets().tolist() == [[20.0, 37.0]]
    assert "device: cuda" in ax.get_title() and "kit runs" in ax.get_title()
    assert "MACs" in ax.get_xlabel()
    # Published points without a MAC count are left out of the MACs plot.
    ax4 = params_vs_psnr(None, _published(), x="macs").axes[0]
    (scatter,) = [c for c in ax4.collections if c.get_label() == "published"]
    assert scatter.get_offsets().tolist() == [[10.0, 31.0], [30.0, 30.5]]
    assert "device: not recorded" in ax4.get_title()


def test_params_vs_psnr_real_published_table() -> None:
    pub = pd.read_csv(REPO / "results" / "published.csv")
    ax = params_vs_psnr(None, pub, dataset="Urban100", scale=4).axes[0]
    texts = {t.get_text() for t in ax.texts}
    assert {"IMDN", "SAFMN", "Bicubic"} <= texts
    # Front: Bicubic, FSRCNN, SAFMN, BSRN, DLGSANet-tiny, DLGSANet-light (by hand from §1.3).
    (front,) = [ln for ln in ax.lines if ln.get_label() == "published Pareto front"]
    assert front.get_xdata().tolist() == [0.0, 12.0, 240.0, 352.0, 581.0, 761.0]
    assert front.get_ydata().tolist() == [23.14, 24.62, 25.97, 26.27, 26.55, 26.66]
    with pytest.raises(KeyError, match="psnr_y/B100"):
        params_vs_psnr(_runs(), pub, dataset="B100")  # the runs were not evaluated on B100
    with pytest.raises(ValueError, match="flops"):
        params_vs_psnr(_runs(), x="flops")


def test_training_curves() -> None:
    history = [
        {"step": 0, "loss": 0.2, "lr": 1e-4},
        {"step": 10, "loss": 0.1, "lr": 2e-4},
        {"step": 10, "psnr": 25.0},
        {"step": 20, "loss": 0.05, "lr": 2e-4, "psnr": 27.5},
    ]
    fig = training_curves(history)
    assert len(fig.axes) == 2
    ax, ax2 = fig.axes
    (loss,) = ax.lines
    assert loss.get_xdata().tolist() == [0, 10, 20]
    assert loss.get_ydata().tolist() == [0.2, 0.1, 0.05]
    assert ax.get_yscale() == "log"
    (psnr,) = ax2.lines
    assert psnr.get_xdata().tolist() == [10, 20] and psnr.get_ydata().tolist() == [25.0, 27.5]
    assert "PSNR" in ax2.get_ylabel() and ax.get_xlabel() == "step"

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


def test_ablation_bars() -> None:
    fig = ablation_bars(_ablation_table())
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    bars = ax.patches[:3]
    assert [b.get_height() for b in bars] == [30.50, 30.20, 30.45]
    assert [b.get_hatch() for b in bars] == [None, None, "//"]
    assert bars[2].get_facecolor()[:3] == pytest.approx((0.75, 0.75, 0.75))
    (eb,) = _errorbars(ax)
    segs = eb.lines[2][0].get_segments()
    assert [s[1, 1] - s[0, 1] for s in segs] == pytest.approx([0.10, 0.08, 0.20])
    (base_line,) = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert list(base_line.get_ydata()) == [30.50, 30.50]
    assert [t.get_text() for t in ax.texts] == ["n=3", "n=3", "n=2"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["base", "asym=False", "head=conv3"]
    lo, hi = ax.get_ylim()
    assert 29.5 < lo < 30.16 and 30.55 < hi < 31.5  # zoomed on the data, not from zero
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["base: base", "within noise"]
    assert "psnr_y/Set5" in ax.get_title()


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


def test_crop_comparison_pixels(tmp_path: Path) -> None:
    imgs = _images()
    box = (8, 12, 16, 20)
    fig = crop_comparison(imgs, box, scale=4, psnr={"SR": 27.123, "bicubic": 25.0})
    assert len(fig.axes) == 5
    full, lr_ax, bic_ax, sr_ax, hr_ax = fig.axes
    np.testing.assert_array_equal(np.asarray(full.images[0].get_array()), imgs["HR"])
    (rect,) = full.patches
    assert (rect.get_x(), rect.get_y()) == (11.5, 7.5)
    assert (rect.get_width(), rect.get_height()) == (20, 16)
    np.testing.assert_array_equal(np.asarray(lr_ax.images[0].get_array()), imgs["LR"][2:6, 3:8])
    assert lr_ax.images[0].get_interpolation() == "nearest"
    for ax, name in ((bic_ax, "bicubic"), (sr_ax, "SR"), (hr_ax, "HR")):
        crop = imgs[name][8:24, 12:32]
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), crop)
    assert "27.12 dB" in sr_ax.get_title() and "25.00 dB" in bic_ax.get_title()
    assert hr_ax.get_title() == "HR" and lr_ax.get_title().startswith("LR")
    fig.savefig(tmp_path / "crops.png")  # renders without error
    assert (tmp_path / "crops.png").stat().st_size > 0


def test_crop_comparison_infers_scale_and_takes_tensors() -> None:
    torch = pytest.importorskip("torch")
    imgs = _images()
    sr_t = torch.from_numpy(imgs["SR"]).permute(2, 0, 1)[None].float() / 255  # 1,C,H,W
    fig = crop_comparison({"LR": imgs["LR"], "SR": sr_t}, (4, 8, 8, 8))  # no HR: SR is largest
    full, lr_ax, sr_ax = fig.axes
    assert full.get_title() == "SR (full)"
    np.testing.assert_array_equal(np.asarray(lr_ax.images[0].get_array()), imgs["LR"][1:3, 2:4])
    np.testing.assert_allclose(
        np.asarray(sr_ax.images[0].get_array()), imgs["SR"][4:12, 8:16] / 255, atol=1e-6
    )
    gray = crop_comparison({"HR": imgs["HR"][..., 0]}, (0, 0, 4, 4))
    np.testing.assert_array_equal(
        np.asarray(gray.axes[1].images[0].get_array()), imgs["HR"][:4, :4, 0]
    )


def test_crop_comparison_bad_box() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        crop_comparison(_images(), (40, 0, 16, 16))
    with pytest.raises(ValueError, match="not a ×"):
        crop_comparison({"HR": np.zeros((48, 64)), "odd": np.zeros((20, 30))}, (0, 0, 4, 4))


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
    assert labels == ["imdn, kit: 300-2,000 steps (n=3)", "lmswn, kit: 300 steps"]
    (diamonds,) = [c for c in ax.collections if c.get_label().startswith("authors' weights")]
    assert diamonds.get_offsets().tolist() == [[110.0, 31.05], [250.0, 30.0]]
    # the measured A is joined to the published A (100K, 31.0); Z has no published point
    ties = [ln for ln in ax.lines if ln.get_label().startswith("_") and len(ln.get_xdata()) == 2]
    assert [ln.get_xdata().tolist() for ln in ties] == [[100.0, 110.0]]
    assert [ln.get_ydata().tolist() for ln in ties] == [[31.0, 31.05]]
