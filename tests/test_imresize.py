"""MATLAB-compatible bicubic: the kernel, the oracle outputs, and the benchmark LR images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from sr_kit.imresize import cubic, imresize, imresize_uint8, resize_weights

ORACLE_CASES = [
    ("down2", 1 / 2),
    ("down3", 1 / 3),
    ("down4", 1 / 4),
    ("up2", 2),
    ("up3", 3),
    ("up4", 4),
]


def test_cubic_kernel_values():
    x = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, -0.5, -1.5], dtype=torch.float64)
    # Keys (a = -0.5): 1 at 0, 0 at the integers, 0.5625 at 1/2, -0.0625 at 3/2, 0 beyond 2.
    expected = [1.0, 0.5625, 0.0, -0.0625, 0.0, 0.0, 0.5625, -0.0625]
    assert cubic(x).tolist() == expected


def test_weights_sum_to_one_and_indices_stay_in_range():
    for in_len, scale in [(37, 1 / 3), (5, 4), (1, 2), (2, 1 / 2), (100, 0.7)]:
        out_len = math.ceil(in_len * scale)
        idx, w = resize_weights(in_len, out_len, scale)
        assert torch.allclose(w.sum(1), torch.ones(out_len, dtype=torch.float64))
        assert int(idx.min()) >= 0 and int(idx.max()) < in_len


def test_downscale_by_integer_uses_4s_plus_2_taps_before_zero_columns_are_dropped():
    _, w = resize_weights(64, 16, 1 / 4)
    assert w.shape[1] <= 18  # MATLAB: ceil(4 * 4) + 2 taps, zero columns removed


@pytest.mark.parametrize("name,scale", ORACLE_CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_matches_matlab_oracle(shared_data, name, scale, dtype):
    src = np.load(shared_data / "oracles" / "imresize_input.npy")
    ref = np.load(shared_data / "oracles" / f"imresize_{name}.npy")
    x = torch.from_numpy(src).permute(2, 0, 1).to(dtype) / 255
    out = imresize(x[None], scale)[0].permute(1, 2, 0).numpy()
    assert out.shape == ref.shape  # ceil(in * scale)
    assert np.abs(out - ref).max() <= 2e-6


def test_constant_image_stays_constant_and_sizes_are_ceil():
    x = torch.full((2, 3, 13, 17), 0.25, dtype=torch.float64)
    for scale in (1 / 4, 1 / 3, 0.5, 2, 3, 4, 0.37):
        y = imresize(x, scale)
        assert y.shape[-2:] == (math.ceil(13 * scale), math.ceil(17 * scale))
        assert torch.allclose(y, torch.full_like(y, 0.25), atol=1e-12)


def test_size_argument_and_batched_equals_per_image():
    x = torch.rand(3, 3, 20, 24, dtype=torch.float64)
    y = imresize(x, size=(10, 30))
    assert y.shape == (3, 3, 10, 30)
    for i in range(3):
        assert torch.equal(imresize(x[i], size=(10, 30)), y[i])


def test_upscale_then_matches_linear_ramp_in_interior():
    # Cubic convolution reproduces linear functions exactly away from the mirrored borders.
    ramp = torch.arange(32, dtype=torch.float64).repeat(8, 1)  # (8, 32), varies along W
    y = imresize(ramp, 2)
    u = (torch.arange(1, 65, dtype=torch.float64) / 2 + 0.25) - 1  # source coordinate, 0-based
    assert torch.allclose(y[4, 4:-4], u[4:-4], atol=1e-10)


def test_uint8_helper_agrees_with_float_path_and_rounds_half_away_from_zero():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(30, 26, 3), dtype=np.uint8)
    ref = imresize(torch.from_numpy(img).permute(2, 0, 1).double(), 1 / 3).permute(1, 2, 0)
    expected = np.floor(np.clip(ref.numpy(), 0, 255) + 0.5).astype(np.uint8)
    got = imresize_uint8(img, 1 / 3)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    assert (got == expected).mean() > 0.999
    gray = imresize_uint8(img[..., 0], 1 / 3)
    assert gray.shape == (10, 9) and np.array_equal(gray, got[..., 0])


def test_bad_inputs_are_refused_with_clear_messages():
    with pytest.raises(TypeError, match="floating-point"):
        imresize(torch.zeros(4, 4, dtype=torch.uint8), 2)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(torch.zeros(4, 4), 2, size=(8, 8))
    with pytest.raises(ValueError, match="positive"):
        imresize(torch.zeros(4, 4), -2)
    with pytest.raises(TypeError, match="uint8"):
        imresize_uint8(np.zeros((4, 4), np.float32), 2)


def test_reproduces_benchmark_lr_images(shared_data):
    """The kit's LR images equal the shipped MATLAB-made ones (<= 1 level, >= 99.9 % identical)."""
    total = same = 0
    worst = 0
    for hr_path in sorted((shared_data / "benchmarks").glob("Set*/HR/*.png")):
        hr = np.array(Image.open(hr_path).convert("RGB"))
        for s in (2, 3, 4):
            crop = hr[: hr.shape[0] // s * s, : hr.shape[1] // s * s]
            lr = imresize_uint8(crop, 1 / s)
            ref_path = hr_path.parents[1] / "LR_bicubic" / f"X{s}" / f"{hr_path.stem}x{s}.png"
            ref = np.array(Image.open(ref_path).convert("RGB"))
            assert lr.shape == ref.shape, ref_path.name
            diff = np.abs(lr.astype(int) - ref.astype(int))
            total += diff.size
            same += int((diff == 0).sum())
            worst = max(worst, int(diff.max()))
    assert total > 0
    assert worst <= 1
    assert same / total >= 0.999


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    x = torch.rand(2, 3, 40, 50)
    assert torch.allclose(imresize(x.cuda(), 1 / 3).cpu(), imresize(x, 1 / 3), atol=1e-5)


def test_resize_macs_counts_the_nonzero_taps_of_each_pass():
    # x2 up of 10x12, rows first (equal scales). Interior outputs take 4 taps (the Keys kernel
    # spans 4 pixels); at the borders, mirrored taps land on the same pixel and count once.
    from sr_kit.imresize import resize_macs

    def distinct_taps(n_in, n_out):
        idx, w = resize_weights(n_in, n_out, 2)
        rows = zip(idx.tolist(), w.tolist(), strict=True)
        return sum(len({i for i, v in zip(r, q, strict=True) if v != 0}) for r, q in rows)

    nnz_h, nnz_w = distinct_taps(10, 20), distinct_taps(12, 24)
    assert 4 * 16 < nnz_h < 4 * 20 and 4 * 20 < nnz_w < 4 * 24
    assert resize_macs((1, 3, 10, 12), 2) == 3 * (nnz_h * 12 + nnz_w * 20)
    assert resize_macs((2, 3, 10, 12), 2) == 2 * resize_macs((1, 3, 10, 12), 2)
