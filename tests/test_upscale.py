"""Tiled upscaling: exact seams for local models, bicubic, real networks, atomic file output."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from sr_kit.data import ImageError, read_image
from sr_kit.evaluate import super_resolve
from sr_kit.imresize import imresize, imresize_uint8
from sr_kit.models import build_model, load_model, save_model
from sr_kit.upscale import tile_grid, upscale_array, upscale_file


class LocalNet(nn.Module):
    """Two 3×3 convs + pixel shuffle on top of a nearest upscale: receptive radius 2 LR pixels.

    The nearest-upscaled input keeps the output spread over 0..1 (an untrained conv alone gives
    values near 0, which clamp to black and would hide seams).
    """

    def __init__(self, scale: int) -> None:
        super().__init__()
        torch.manual_seed(scale)
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 3 * scale * scale, 3, padding=1),
            nn.PixelShuffle(scale),
        )
        self.up = nn.Upsample(scale_factor=scale, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x) + 0.5 * self.body(x)


def _local(scale: int) -> LocalNet:
    # float64: float32 conv kernels may round the same pixel 1 ulp differently for different
    # batch sizes, which can flip a rare uint8 value; in float64 only the tiling geometry matters.
    return LocalNet(scale).double()


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------------------------
# Geometry
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 2, 5, 15, 16, 17, 37, 53, 64, 200])
@pytest.mark.parametrize(("tile", "overlap"), [(16, 2), (16, 4), (24, 4), (5, 2), (9, 0)])
def test_tile_grid_covers_exactly_with_full_size_windows(length, tile, overlap):
    grid = tile_grid(length, tile, overlap)
    size = min(tile, length)
    covered = []
    for start, lo, hi in grid:
        assert start >= 0 and start + size <= length  # full-size window inside the image
        assert start <= lo < hi <= start + size
        # context of at least `overlap` on every side that is not the image border
        assert lo == 0 or lo - start >= overlap
        assert hi == length or start + size - hi >= overlap
        covered.extend(range(lo, hi))
    assert covered == list(range(length))  # cores partition the axis, in order


def test_tile_grid_example():
    # 37 px, tile 16, overlap 4: step 8, the last window shifted back to 21 (= 37 - 16).
    assert tile_grid(37, 16, 4) == [(0, 0, 12), (8, 12, 20), (16, 20, 28), (21, 28, 37)]
    assert tile_grid(5, 16, 4) == [(0, 0, 5)]


# ----------------------------------------------------------------------------------------------
# Exactness for a purely local model
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 3])
@pytest.mark.parametrize("size", [(37, 53), (64, 64), (5, 200), (1, 1), (7, 3), (1, 40)])
@pytest.mark.parametrize(("tile", "overlap"), [(16, 2), (16, 4), (24, 2), (24, 4)])
def test_local_model_tiled_equals_whole_image(scale, size, tile, overlap):
    model = _local(scale)
    lr = _image(*size, seed=size[0] * 1000 + size[1])
    whole = upscale_array(model, lr, tile=None)
    assert whole.shape == (scale * size[0], scale * size[1], 3)
    tiled = upscale_array(model, lr, tile=tile, overlap=overlap, batch_tiles=3)
    assert np.array_equal(tiled, whole)


def test_local_float32_model_tiled_equals_whole_image_up_to_float_rounding():
    model = LocalNet(3)
    lr = _image(37, 53, seed=37053)
    whole = upscale_array(model, lr, tile=None)
    tiled = upscale_array(model, lr, tile=16, overlap=2, batch_tiles=3)
    diff = np.abs(tiled.astype(int) - whole)
    # Only 1-ulp differences of the conv kernels, seen after rounding as rare ±1 values.
    assert diff.max() <= 1
    assert np.count_nonzero(diff) <= 5


@pytest.mark.parametrize(("size", "tile"), [((37, 53), 16), ((64, 64), 24), ((5, 200), 16)])
def test_local_model_without_overlap_shows_seams(size, tile):
    model = _local(2)
    lr = _image(*size, seed=7)
    whole = upscale_array(model, lr, tile=None)
    seamy = upscale_array(model, lr, tile=tile, overlap=0)
    diff = np.abs(seamy.astype(int) - whole)
    assert diff.max() >= 5  # zero padding at inner tile edges replaces real neighbours
    # ... and only near the inner tile edges: rows/columns away from every cut agree exactly.
    cuts = [2 * lo for _, lo, _ in tile_grid(size[1], tile, 0)[1:]]
    assert cuts  # the width really is tiled
    far = np.ones(2 * size[1], bool)
    for c in cuts:
        far[max(c - 4, 0) : c + 4] = False
    rows_far = np.ones(2 * size[0], bool)
    for _, lo, _ in tile_grid(size[0], tile, 0)[1:]:
        rows_far[max(2 * lo - 4, 0) : 2 * lo + 4] = False
    assert np.array_equal(seamy[rows_far][:, far], whole[rows_far][:, far])


def test_batching_and_whole_image_tile_do_not_change_the_result():
    model = _local(2)
    lr = _image(45, 70, seed=3)
    ref = upscale_array(model, lr, tile=16, overlap=3, batch_tiles=1)
    for batch in (2, 4, 100):
        assert np.array_equal(upscale_array(model, lr, tile=16, overlap=3, batch_tiles=batch), ref)
    # An image that fits in one tile is one forward pass, the same as tile=None.
    assert np.array_equal(
        upscale_array(model, lr, tile=70, overlap=3), upscale_array(model, lr, tile=None)
    )


# ----------------------------------------------------------------------------------------------
# Bicubic
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("size", [(37, 53), (64, 64), (5, 200), (1, 1), (7, 3)])
def test_bicubic_whole_image_matches_imresize_up_to_float_ties(scale, size):
    lr = _image(*size, seed=11)
    model = build_model("bicubic", scale=scale)
    got = upscale_array(model, lr, tile=None)
    ref = imresize_uint8(lr, scale)
    assert got.shape == ref.shape == (scale * size[0], scale * size[1], 3)
    # The model works on [0, 1] floats, imresize_uint8 on 0..255 floats: float32 rounding differs,
    # so a value within float error of k + 0.5 may round either way. Only those pixels may differ.
    diff = got.astype(int) - ref
    assert np.abs(diff).max() <= 1
    exact = imresize(torch.from_numpy(lr.astype(np.float64)).permute(2, 0, 1), scale)
    exact = exact.permute(1, 2, 0).numpy()
    off = diff != 0
    assert np.all(np.abs(exact[off] % 1 - 0.5) < 1e-3)
    assert off.mean() < 1e-3
    # ... and it is exactly what the evaluation protocol computes.
    assert np.array_equal(got, super_resolve(model, lr))


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("size", [(37, 53), (64, 64), (5, 200), (7, 3), (30, 1)])
@pytest.mark.parametrize(("tile", "overlap"), [(16, 2), (16, 3), (24, 4)])
def test_bicubic_tiled_equals_whole_image(scale, size, tile, overlap):
    # The upscaling kernel reaches 2 LR pixels; MATLAB's mirrored border is used only at real
    # image borders, where tiles start or end exactly at the border like the whole image does.
    lr = _image(*size, seed=5)
    model = build_model("bicubic", scale=scale)
    whole = upscale_array(model, lr, tile=None)
    assert np.array_equal(upscale_array(model, lr, tile=tile, overlap=overlap), whole)


def test_bicubic_with_too_little_overlap_differs():
    lr = _image(37, 53, seed=5)
    model = build_model("bicubic", scale=2)
    whole = upscale_array(model, lr, tile=None)
    # overlap 1 < the kernel's reach of 2: mirrored tile edges leak into the cores.
    assert not np.array_equal(upscale_array(model, lr, tile=16, overlap=1), whole)


# ----------------------------------------------------------------------------------------------
# A real network with global operations
# ----------------------------------------------------------------------------------------------


def test_rfdn_tiled_is_close_to_whole_image():
    torch.manual_seed(0)
    model = build_model("rfdn", scale=2, num_blocks=1, channels=16)
    lr = _image(40, 50, seed=1)
    whole = upscale_array(model, lr, tile=None)
    tiled = upscale_array(model, lr, tile=24, overlap=4)
    assert whole.shape == tiled.shape == (80, 100, 3)
    assert np.array_equal(whole, super_resolve(model.eval(), lr))
    diff = np.abs(tiled.astype(int) - whole)
    # ESA pools over the whole (tile) input, so tiles differ a little, not by seams.
    assert diff.mean() < 0.5
    assert diff.max() <= 8


# ----------------------------------------------------------------------------------------------
# Model state, errors
# ----------------------------------------------------------------------------------------------


def test_training_flags_are_restored_and_no_grad_is_kept():
    model = LocalNet(2).train()
    model.body[0].eval()  # a deliberately mixed state must survive
    upscale_array(model, _image(20, 20), tile=8, overlap=2)
    assert model.training and model.body.training and not model.body[0].training
    assert all(p.grad is None for p in model.parameters())


def test_bad_inputs_are_refused_with_what_was_expected():
    model = LocalNet(2)
    with pytest.raises(TypeError, match="uint8"):
        upscale_array(model, _image(8, 8).astype(np.float32))
    with pytest.raises(TypeError, match="uint8"):
        upscale_array(model, torch.zeros(8, 8, 3, dtype=torch.uint8))
    for shape in [(8, 8), (8, 8, 4), (0, 8, 3), (1, 8, 8, 3)]:
        with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
            upscale_array(model, np.zeros(shape, np.uint8))
    with pytest.raises(ValueError, match="overlap=-1"):
        upscale_array(model, _image(8, 8), overlap=-1)
    with pytest.raises(ValueError, match="tile=8, overlap=4"):
        upscale_array(model, _image(8, 8), tile=8, overlap=4)
    with pytest.raises(ValueError, match="batch_tiles=0"):
        upscale_array(model, _image(8, 8), batch_tiles=0)


def test_model_with_a_wrong_output_shape_is_reported():
    model = build_model("bicubic", scale=2)
    model.config = build_model("bicubic", scale=3).config  # claims x3, computes x2
    with pytest.raises(ValueError, match="expected"):
        upscale_array(model, _image(8, 8), tile=None)


# ----------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------


def test_upscale_file_round_trip_with_a_model_file(tmp_path):
    torch.manual_seed(0)
    model = build_model("rfdn", scale=2, num_blocks=1, channels=16)
    model_path = save_model(model, tmp_path / "m.pt")
    lr = _image(30, 41, seed=2)
    src = tmp_path / "in.png"
    Image.fromarray(lr).save(src)
    dst = tmp_path / "out" / "sub" / "o.png"

    got = upscale_file(model_path, src, dst, tile=16, overlap=4)
    assert got == dst and dst.is_file()
    out = read_image(dst)
    assert out.shape == (60, 82, 3)
    assert np.array_equal(out, upscale_array(load_model(model_path), lr, tile=16, overlap=4))
    assert np.array_equal(out, upscale_array(model, lr, tile=16, overlap=4))
    assert sorted(p.name for p in dst.parent.iterdir()) == ["o.png"]  # no temp files left

    # An nn.Module works too, and overwriting an existing output is fine.
    upscale_file(model, src, dst, tile=None)
    assert np.array_equal(read_image(dst), upscale_array(model, lr, tile=None))
    assert sorted(p.name for p in dst.parent.iterdir()) == ["o.png"]


def test_upscale_file_refuses_to_overwrite_its_input(tmp_path):
    model = build_model("bicubic", scale=2)
    src = tmp_path / "in.png"
    Image.fromarray(_image(6, 6)).save(src)
    before = src.read_bytes()
    for dst in (src, tmp_path / "." / "in.png", str(src)):
        with pytest.raises(ValueError, match="overwrite the input"):
            upscale_file(model, src, dst)
    assert src.read_bytes() == before


def test_upscale_file_bad_input_names_the_file_and_leaves_nothing(tmp_path):
    model = build_model("bicubic", scale=2)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    out_dir = tmp_path / "out"
    with pytest.raises(ImageError, match=re.escape(str(bad))):
        upscale_file(model, bad, out_dir / "o.png")
    with pytest.raises(ImageError, match=re.escape(str(tmp_path / "missing.png"))):
        upscale_file(model, tmp_path / "missing.png", out_dir / "o.png")
    assert not out_dir.exists()
    with pytest.raises(ValueError, match=r"'\.xyz'"):
        upscale_file(model, bad, tmp_path / "o.xyz")


def test_upscale_file_writes_by_extension(tmp_path):
    model = build_model("bicubic", scale=2)
    lr = _image(9, 11)
    src = tmp_path / "in.png"
    Image.fromarray(lr).save(src)
    dst = upscale_file(model, src, tmp_path / "o.bmp")
    with Image.open(dst) as img:
        assert img.format == "BMP"
    assert np.array_equal(read_image(dst), upscale_array(model, lr))
