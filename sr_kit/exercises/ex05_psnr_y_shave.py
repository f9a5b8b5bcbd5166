"""Checker of ``notebooks/exercises/05_psnr_y_shave_solution.ipynb`` (the PSNR protocol of the
published tables).

Students write ``rgb_to_y_bt601(img)`` and ``psnr_y_shaved(sr, hr, scale)``. The references are
the kit's metrics: :func:`sr_kit.metrics.rgb_to_y`, :func:`~sr_kit.metrics.psnr_y`, and, to
recognise the typical mistakes (no shave, PSNR on RGB, peak 1, uint8 wrap-around),
:func:`~sr_kit.metrics.psnr` and :func:`~sr_kit.metrics.shave` on the wrongly prepared images.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from sr_kit.metrics import psnr, psnr_y, rgb_to_y, shave

from .harness import (
    CheckResult,
    Session,
    call,
    expect_array,
    expect_number,
    fail,
    need_any,
    same_db,
)

__all__ = ["check_psnr_y"]


def check_psnr_y(
    rgb_to_y_bt601: Callable | None = None,
    psnr_y_shaved: Callable | None = None,
    *,
    hidden: bool | None = None,
) -> CheckResult:
    """Check ``rgb_to_y_bt601(img)`` and ``psnr_y_shaved(sr, hr, scale)`` against
    ``sr_kit.metrics.rgb_to_y`` and ``psnr_y`` (within 1e-9), with hints for the usual
    mistakes, ``scale = 0`` (nothing shaved) included. Hidden tests: a single pixel and a
    non-contiguous view for the luma; odd sizes at scale 3 and a grayscale pair at scale 0 for
    the PSNR. An answer that calls ``sr_kit.metrics`` (``rgb_to_y``, ``psnr_y``, ``psnr``)
    scores 0."""
    need_any("check_psnr_y", rgb_to_y_bt601=rgb_to_y_bt601, psnr_y_shaved=psnr_y_shaved)
    s = Session("check_psnr_y", hidden)
    rng = np.random.default_rng(50)
    rgb = rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
    noisy = np.clip(rgb.astype(np.int16) + rng.integers(-6, 7, rgb.shape), 0, 255).astype(np.uint8)
    gray = rng.integers(0, 256, (21, 19), dtype=np.uint8)
    # differences up to 40 grey levels: their squares overflow uint8, as a wrap-around would
    gray_sr = np.clip(gray.astype(np.int16) + rng.integers(-40, 41, gray.shape), 0, 255)
    gray_sr = gray_sr.astype(np.uint8)

    def y_of(img: np.ndarray) -> np.ndarray:
        out = expect_array(call(rgb_to_y_bt601, "rgb_to_y_bt601", img.copy()), "rgb_to_y_bt601")
        if out.shape != img.shape[:2]:
            fail(
                f"returned shape {out.shape}, expected {img.shape[:2]}",
                "one Y value per pixel: combine the three channels of the last axis",
            )
        return out

    def y_hint(out: np.ndarray, img: np.ndarray) -> str:
        # the usual mistakes: full-range weights, or the kit's rgb_to_y with one thing wrong
        y = rgb_to_y(img)
        jpeg = img.astype(np.float64) @ [0.299, 0.587, 0.114]
        no_offset = y - 16
        no_division = (y - 16) * 255 + 16
        bgr = rgb_to_y(img[..., ::-1])
        variants = {
            "those are the full-range (JPEG) weights; the SR protocol uses BT.601 studio swing: "
            "Y = (65.481 R + 128.553 G + 24.966 B) / 255 + 16": jpeg,
            "add 16: studio-swing Y lies in [16, 235]": no_offset,
            "the weights 65.481, 128.553, 24.966 are for RGB in [0, 1]: divide by 255": no_division,
            "the channels are R, G, B in this order (OpenCV loads B, G, R)": bgr,
        }
        for hint, value in variants.items():
            if np.allclose(out, value, atol=1e-6):
                return hint
        if np.allclose(out, np.round(y), atol=1e-9):
            return "do not round: PSNR needs the fractional Y values (return float64)"
        return "Y = (65.481 R + 128.553 G + 24.966 B) / 255 + 16, on RGB as floats"

    def rgb_case() -> None:
        out = y_of(rgb)
        if not np.issubdtype(out.dtype, np.floating):
            fail(f"returned dtype {out.dtype}", "return floats (float64), not rounded integers")
        if not np.allclose(out, rgb_to_y(rgb), rtol=0, atol=1e-9):
            fail("differs from sr_kit.metrics.rgb_to_y by more than 1e-9", y_hint(out, rgb))

    def extremes() -> None:
        black, white = np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 255, np.uint8)
        lo, hi = y_of(black).astype(np.float64), y_of(white).astype(np.float64)
        want_lo, want_hi = rgb_to_y(black), rgb_to_y(white)  # the kit's 16 and 235
        if not (np.allclose(lo, want_lo, atol=1e-9) and np.allclose(hi, want_hi, atol=1e-9)):
            fail(
                f"black -> {lo.flat[0]:.4g}, white -> {hi.flat[0]:.4g}",
                "Y = (65.481 R + 128.553 G + 24.966 B) / 255 + 16",
            )

    def grayscale_y() -> None:
        out = y_of(gray)
        if not np.issubdtype(out.dtype, np.floating):
            fail(
                f"a (H, W) image came back as {out.dtype}",
                "a 2-D image is Y already: return img.astype(np.float64); a uint8 result wraps "
                "around when you subtract (3 - 5 = 254)",
            )
        if not np.array_equal(out, rgb_to_y(gray)):  # gray as float64
            fail("a (H, W) image is Y already and must come back unchanged (as float)")

    def input_kept() -> None:
        img = rgb.copy()
        call(rgb_to_y_bt601, "rgb_to_y_bt601", img)
        if not np.array_equal(img, rgb):
            fail("the input image was changed", "compute on a float copy: img.astype(float)")

    def psnr_value(sr: np.ndarray, hr: np.ndarray, scale: int) -> float:
        out = call(psnr_y_shaved, "psnr_y_shaved", sr.copy(), hr.copy(), scale)
        return expect_number(out, "psnr_y_shaved")

    def psnr_hint(got: float, sr: np.ndarray, hr: np.ndarray, b: int) -> str:
        # the usual mistakes, each as the kit's psnr on the wrongly prepared images
        ys, yh = rgb_to_y(sr), rgb_to_y(hr)
        one_side = (slice(b, None), slice(b, None))  # shaved at the top and left only
        a8, b8 = shave(sr, b), shave(hr, b)  # uint8, as loaded
        wrapped = a8 - b8  # uint8 arithmetic: 3 - 5 = 254
        # PSNR on RGB first: on RGB, the squared-in-uint8 variant below gives the same value as
        # long as no difference exceeds 15 (the squares stay under 256)
        variants = {
            "compute PSNR on the Y channel only": [psnr(a8, b8)],
            "did you convert to float before subtracting? uint8 wraps around (3 - 5 = 254)": [
                psnr(wrapped, np.zeros_like(wrapped)),
                # ... and squared in uint8 too: the squares wrap around as well
                10 * math.log10(255**2 / max(np.mean(wrapped**2), 1e-300)),
            ],
            "shave `scale` pixels from every side before the MSE: Y[s:-s, s:-s]": [psnr(ys, yh)],
            "shave all four sides, not only the top and left": [psnr(ys[one_side], yh[one_side])],
            "the peak value is 255 for 8-bit images": [psnr(shave(ys, b), shave(yh, b), 1.0)],
        }
        for hint, values in variants.items():
            if any(same_db(got, v, 1e-6) for v in values):
                return hint
        return "PSNR = 10 log10(255² / MSE) on Y (float), after shaving `scale` px per side"

    def compare(sr: np.ndarray, hr: np.ndarray, scale: int) -> None:
        got, want = psnr_value(sr, hr, scale), psnr_y(sr, hr, scale)
        if not same_db(got, want):
            hint = psnr_hint(got, sr, hr, scale)
            if scale == 0:
                hint = (
                    "scale 0 means no shave; Y[0:-0] is empty (its mean is nan): crop only "
                    "when scale > 0, or slice Y[s:h - s, s:w - s]"
                )
            fail(f"{got:.6f} dB, sr_kit.metrics.psnr_y gives {want:.6f} dB", hint)

    def rgb_pair() -> None:
        compare(noisy, rgb, 2)

    def border_ignored() -> None:
        sr = noisy.copy()
        sr[:4], sr[-4:], sr[:, :4], sr[:, -4:] = 0, 255, 255, 0
        compare(sr, rgb, 4)

    def gray_pair() -> None:
        compare(gray_sr, gray, 3)

    def no_shave() -> None:
        compare(noisy, rgb, 0)

    def odd_sizes() -> None:
        sr, hr = noisy[:23, :17], rgb[:23, :17]
        compare(sr, hr, 3)

    def gray_no_shave() -> None:
        compare(gray_sr, gray, 0)

    def one_pixel() -> None:
        px = rgb[:1, :1]
        if not np.allclose(y_of(px), rgb_to_y(px), rtol=0, atol=1e-9):
            fail("a 1x1 RGB image gives a wrong Y", "work on the last axis, whatever H and W are")

    def strided_view() -> None:
        view = rgb[::2, ::-1]  # not contiguous
        if not np.allclose(y_of(view), rgb_to_y(view), rtol=0, atol=1e-9):
            fail("a strided view (img[::2, ::-1]) gives a wrong Y", "use np.asarray(img)")

    luma_kit = {"sr_kit.metrics.rgb_to_y": rgb_to_y, "sr_kit.metrics.psnr_y": psnr_y}
    psnr_kit = {**luma_kit, "sr_kit.metrics.psnr": psnr}

    def identical() -> None:
        got = psnr_value(rgb, rgb, 4)
        if got != math.inf:
            fail(f"identical images gave {got}", "when the MSE is 0 return float('inf')")

    if rgb_to_y_bt601 is not None:
        s.own_work("rgb_to_y_bt601", lambda: y_of(rgb), luma_kit, "rgb_to_y_bt601")
        s.check("RGB uint8 -> float Y within 1e-9 of sr_kit.metrics.rgb_to_y", rgb_case, points=2)
        s.check("black -> 16 and white -> 235 (studio swing)", extremes, "rgb_to_y_bt601")
        s.check("a grayscale (H, W) image is Y already, returned as float", grayscale_y)
        s.check("the input image is left unchanged", input_kept, "rgb_to_y_bt601")
        s.check("a 1x1 RGB image", one_pixel, "rgb_to_y_bt601", hidden=True)
        s.check("a strided, non-contiguous view", strided_view, "rgb_to_y_bt601", hidden=True)
    if psnr_y_shaved is not None:
        s.own_work("psnr_y_shaved", lambda: psnr_value(noisy, rgb, 2), psnr_kit, "psnr_y_shaved")
        s.check("RGB pair, scale 2: within 1e-9 dB of sr_kit.metrics.psnr_y", rgb_pair, points=2)
        s.check("a damaged border inside the shave does not count (scale 4)", border_ignored)
        s.check("grayscale uint8 pair, scale 3 (the uint8 pitfall)", gray_pair, "psnr_y_shaved")
        s.check("scale 0: nothing is shaved", no_shave, "psnr_y_shaved")
        s.check("identical images give inf", identical, "psnr_y_shaved")
        s.check("odd sizes (23 x 17), scale 3", odd_sizes, "psnr_y_shaved", hidden=True)
        s.check("grayscale pair, scale 0", gray_no_shave, "psnr_y_shaved", hidden=True)
    return s.finish()
