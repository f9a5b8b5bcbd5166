"""PSNR/SSIM on Y with border shave, against hand values and the per-image bicubic oracle."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from PIL import Image

from sr_kit.imresize import imresize_uint8
from sr_kit.metrics import (
    LpipsUnavailable,
    lpips_distance,
    lpips_model,
    psnr,
    psnr_y,
    rgb_to_y,
    shave,
    ssim,
    ssim_y,
)


def test_y_channel_is_bt601_studio_swing():
    img = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [10, 20, 30]]], np.uint8)
    y = rgb_to_y(img)[0]
    assert y[0] == pytest.approx(16.0)
    assert y[1] == pytest.approx(235.0)
    assert y[2] == pytest.approx(16 + 65.481)
    assert y[3] == pytest.approx(16 + (65.481 * 10 + 128.553 * 20 + 24.966 * 30) / 255)


def test_psnr_known_values():
    a = np.zeros((8, 8))
    assert psnr(a, a) == math.inf
    # A uniform error of 1 grey level gives 20 log10(255) = 48.1308 dB.
    assert psnr(a, a + 1) == pytest.approx(20 * math.log10(255), abs=1e-12)
    assert psnr(a, a + 255) == pytest.approx(0.0, abs=1e-12)


def test_shave_removes_the_border_and_only_the_border():
    img = np.zeros((10, 12, 3), np.uint8)
    img[0, :] = 255  # an error confined to the top row disappears after shaving
    assert shave(img, 2).shape == (6, 8, 3)
    ref = np.zeros_like(img)
    assert psnr_y(img, ref, 1) == math.inf
    assert psnr_y(img, ref, 0) < 30
    with pytest.raises(ValueError, match="nothing left"):
        shave(img, 5)


def test_ssim_identity_and_known_structure():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert ssim_y(a, a, 2) == pytest.approx(1.0)
    # A constant offset leaves contrast and structure intact: only the luminance term drops.
    y = rgb_to_y(a)
    assert 0.95 < ssim(y, y + 10) < 1.0
    assert ssim(y, 255 - y) < 0  # inverted structure correlates negatively
    with pytest.raises(ValueError, match="11x11"):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)))


def test_metrics_refuse_float_images_and_mismatched_shapes():
    a = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(TypeError, match="uint8"):
        psnr_y(a.astype(np.float32), a, 2)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr_y(a, a[:8], 2)


def test_bicubic_baseline_matches_per_image_oracle(shared_data):
    """Every Set5/Set14 image at x2/x3/x4: within 1e-4 dB PSNR and 1e-5 SSIM of the oracle."""
    with open(shared_data / "oracles" / "bicubic_metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * (5 + 14)
    for row in rows:
        s = int(row["scale"])
        (path,) = (shared_data / "benchmarks" / row["dataset"] / "HR").glob(row["image"] + ".*")
        hr = np.array(Image.open(path).convert("RGB"))
        hr = hr[: hr.shape[0] // s * s, : hr.shape[1] // s * s]
        sr = imresize_uint8(imresize_uint8(hr, 1 / s), s)
        label = f"{row['dataset']}/{row['image']} x{s}"
        assert psnr_y(sr, hr, s) == pytest.approx(float(row["bicubic_psnr_y"]), abs=1e-4), label
        assert ssim_y(sr, hr, s) == pytest.approx(float(row["bicubic_ssim_y"]), abs=1e-5), label


def test_lpips_without_package_or_weights_says_how_to_enable(monkeypatch, tmp_path):
    import sys

    import torch

    monkeypatch.setitem(sys.modules, "lpips", None)  # as if the package were not installed
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(LpipsUnavailable, match="never download"):
        lpips_model()
    a = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(LpipsUnavailable):
        lpips_distance(a, a, 2)
    with pytest.raises(ValueError, match="backbone"):
        lpips_model("resnet")


def test_lpips_with_package_but_no_backbone_weights_names_the_missing_file(monkeypatch, tmp_path):
    import sys
    import types

    import torch

    monkeypatch.setitem(sys.modules, "lpips", types.ModuleType("lpips"))  # a stand-in package
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(LpipsUnavailable, match=r"alexnet-owt-7be5be79\.pth"):
        lpips_model("alex")
