"""On-device patch sampler: aligned LR/HR crops, the 8 flip/rotation variants, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_kit.imresize import imresize_uint8
from sr_kit.sampler import PatchSampler


def _variants(a: np.ndarray) -> list[np.ndarray]:
    out = []
    for t in (False, True):
        b = a.transpose(1, 0, 2) if t else a
        for fv in (False, True):
            for fh in (False, True):
                c = b[::-1] if fv else b
                out.append(np.ascontiguousarray(c[:, ::-1] if fh else c))
    return out


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((22, 26, 3), (16, 18, 3))]


def _to_u8(t: torch.Tensor) -> np.ndarray:
    return (t.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


def test_every_patch_is_an_aligned_crop_in_one_of_8_variants(images):
    s = PatchSampler(images, 2, 4, seed=3)
    lrs = [imresize_uint8(im[: im.shape[0] // 2 * 2, : im.shape[1] // 2 * 2], 0.5) for im in images]
    lr, hr = s.sample(48)
    assert lr.shape == (48, 3, 4, 4) and hr.shape == (48, 3, 8, 8)
    assert lr.dtype == torch.float32 and float(lr.min()) >= 0 and float(hr.max()) <= 1
    seen = set()
    for k in range(48):
        got_lr, got_hr = _to_u8(lr[k]), _to_u8(hr[k])
        match = None
        for im, small in zip(images, lrs, strict=True):
            for y in range(small.shape[0] - 3):
                for x in range(small.shape[1] - 3):
                    pairs = zip(
                        _variants(small[y : y + 4, x : x + 4]),
                        _variants(im[2 * y : 2 * y + 8, 2 * x : 2 * x + 8]),
                        strict=True,
                    )
                    for v, (a, b) in enumerate(pairs):
                        if np.array_equal(a, got_lr) and np.array_equal(b, got_hr):
                            match = v
        assert match is not None, f"patch {k} is not an aligned crop"
        seen.add(match)
    assert len(seen) >= 6  # all 8 variants are drawn (48 samples: nearly surely >= 6 seen)


def test_without_augmentation_patches_are_plain_crops(images):
    s = PatchSampler(images[:1], 2, 5, seed=0, augment=False)
    small = imresize_uint8(images[0], 0.5)
    lr, hr = s.sample(10)
    for k in range(10):
        a = _to_u8(lr[k])
        hits = [
            (y, x) for y in range(7) for x in range(9)
            if np.array_equal(small[y : y + 5, x : x + 5], a)
        ]  # fmt: skip
        (y, x) = hits[0]
        assert np.array_equal(images[0][2 * y : 2 * y + 10, 2 * x : 2 * x + 10], _to_u8(hr[k]))


def test_same_seed_same_batches_and_state_round_trip(images):
    a, b = PatchSampler(images, 2, 4, seed=7), PatchSampler(images, 2, 4, seed=7)
    assert all(torch.equal(x, y) for x, y in zip(a.sample(8), b.sample(8), strict=True))
    state = a.get_state()
    first = a.sample(8)
    a.set_state(state)
    assert all(torch.equal(x, y) for x, y in zip(first, a.sample(8), strict=True))
    c = PatchSampler(images, 2, 4, seed=8)
    assert not torch.equal(c.sample(8)[0], b.sample(8)[0])


def test_positions_are_drawn_uniformly_over_the_pool():
    # image 0 has 4x more patch positions than image 1: it must be drawn about 4x as often
    big = np.zeros((2 * 12, 2 * 12, 3), np.uint8)  # LR 12x12, patch 3 -> 100 positions
    small = np.full((2 * 7, 2 * 7, 3), 255, np.uint8)  # LR 7x7 -> 25 positions
    s = PatchSampler([big, small], 2, 3, seed=0, augment=False)
    lr, _ = s.sample(4000)
    share_small = float((lr.mean(dim=(1, 2, 3)) > 0.5).float().mean())
    assert share_small == pytest.approx(25 / 125, abs=0.025)


def test_too_small_images_are_named_and_an_empty_pool_is_an_error(images):
    tiny = np.zeros((6, 6, 3), np.uint8)
    with pytest.warns(UserWarning, match=r"tiny \(6x6\)"):
        s = PatchSampler([images[0], tiny], 2, 4, names=["ok", "tiny"])
    assert s.names == ["ok"]
    with pytest.raises(ValueError, match="no training image"), pytest.warns(UserWarning):
        PatchSampler([tiny], 2, 4)
    with pytest.raises(ValueError, match="uint8"):
        PatchSampler([images[0].astype(np.float32)], 2, 4)
