"""Checker of ``notebooks/exercises/06_matlab_cubic_solution.ipynb`` (MATLAB's bicubic LR images).

Students write ``cubic(x)`` (Keys' kernel, a = -0.5) and ``antialias_weights(j, scale)`` (the
input pixels and weights of one output pixel when shrinking). The references are the kit's
:func:`sr_kit.imresize.cubic` and the rows of :func:`sr_kit.imresize.resize_weights`, the tables
``sr_kit.imresize.imresize`` resizes with. The kit has only a = -0.5, so the general Keys kernel
stays here, to recognise a = -0.75 (OpenCV's and PyTorch's choice).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from sr_kit.imresize import cubic as kit_cubic
from sr_kit.imresize import resize_weights

from .harness import CheckResult, Session, call, close, expect_tensor, fail, need_any

__all__ = ["check_cubic"]


def _keys(x: Tensor, a: float) -> Tensor:
    """Keys' cubic convolution kernel for any ``a`` (``a = -0.5`` is ``sr_kit.imresize.cubic``)."""
    ax = x.abs()
    near = ((a + 2) * ax**3 - (a + 3) * ax**2 + 1) * (ax <= 1)
    far = (a * ax**3 - 5 * a * ax**2 + 8 * a * ax - 4 * a) * ((ax > 1) & (ax <= 2))
    return near + far


def check_cubic(
    cubic: Callable | None = None,
    antialias_weights: Callable | None = None,
    *,
    hidden: bool | None = None,
) -> CheckResult:
    """Check ``cubic(x)`` against ``sr_kit.imresize.cubic`` and ``antialias_weights(j, scale)``
    (the input pixels and weights of output pixel ``j`` when shrinking by ``scale`` < 1)
    against the rows of ``sr_kit.imresize.resize_weights``. Hidden tests: a 0-d tensor for the
    kernel, two more output pixels for the weights. An answer that calls the kit's kernel or
    weight tables scores 0."""
    need_any("check_cubic", cubic=cubic, antialias_weights=antialias_weights)
    s = Session("check_cubic", hidden)
    grid = torch.linspace(-3, 3, 601, dtype=torch.float64)

    def k(x: Tensor) -> Tensor:
        return expect_tensor(call(cubic, "cubic", x.clone()), x.shape, "cubic")

    def cubic_hint(out: Tensor, x: Tensor) -> str:
        if close(out, _keys(x, -0.75), 1e-9):
            return "a = -0.75 is OpenCV's and PyTorch's choice; MATLAB's imresize uses a = -0.5"
        pos = x >= 0
        if close(out[pos], kit_cubic(x[pos]), 1e-9):
            return "the kernel is symmetric: compute it on |x|"
        if (out[x.abs() > 2] != 0).any():
            return "the kernel is 0 for |x| > 2"
        return (
            "a = -0.5: 1.5|x|³ - 2.5|x|² + 1 for |x| <= 1, "
            "-0.5|x|³ + 2.5|x|² - 4|x| + 2 for 1 < |x| <= 2, else 0"
        )

    def on_grid() -> None:
        out = k(grid)
        if not close(out, kit_cubic(grid), 1e-12):
            fail("differs from sr_kit.imresize.cubic by more than 1e-12", cubic_hint(out, grid))

    def interpolating() -> None:
        pts = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0], dtype=torch.float64)
        out = k(pts)
        want = kit_cubic(pts)  # 0, 0, 1, 0, 0: an interpolating kernel
        if not close(out, want, 1e-12):
            fail(
                f"cubic at -2, -1, 0, 1, 2 = {[round(float(v), 6) for v in out]}",
                "an interpolating kernel is 1 at 0 and 0 at every other integer",
            )

    def unity() -> None:
        t = torch.linspace(0, 1, 11, dtype=torch.float64)[:-1]
        total = sum(k(t - shift) for shift in range(-3, 4))
        if not close(total, torch.ones_like(t), 1e-12):
            fail(
                "sum over k of cubic(t - k) is not 1",
                "with the right coefficients the four taps always sum to 1 (a flat image stays "
                "flat)",
            )

    def shapes() -> None:
        x = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(60)) * 2
        keep = x.clone()
        out = expect_tensor(call(cubic, "cubic", x), x.shape, "cubic")
        if out.dtype != x.dtype:
            fail(f"a float32 input gave {out.dtype}", "build the result from x's own dtype")
        if not torch.equal(x, keep):
            fail("the input was changed", "x.abs() returns a new tensor; x.abs_() overwrites x")
        if not close(out, kit_cubic(x), 1e-6):
            fail("wrong values on a (2, 3, 4) float32 tensor", cubic_hint(out, x))

    def weights_of(j: int, scale: float) -> dict[int, float]:
        out = call(antialias_weights, "antialias_weights", j, scale)
        if not (isinstance(out, tuple | list) and len(out) == 2):
            fail(
                f"returned {type(out).__name__}, expected a pair (indices, weights)",
                "return idx, w",
            )
        idx, w = (np.asarray(torch.as_tensor(v).detach().cpu(), np.float64) for v in out)
        if idx.ndim != 1 or idx.shape != w.shape:
            fail(
                f"indices {idx.shape} and weights {w.shape} should be two 1-D arrays of equal "
                "length",
                "one weight per input pixel",
            )
        taps: dict[int, float] = {}
        for i, wi in zip(idx, w, strict=True):
            if i != int(i):
                fail(f"index {i} is not a whole number", "indices are input pixel numbers")
            taps[int(i)] = taps.get(int(i), 0.0) + float(wi)
        return {i: wi for i, wi in taps.items() if abs(wi) > 1e-14}

    def weights_case(j: int, scale: float, in_len: int) -> str:
        out_len = math.ceil(in_len * scale)
        idx, w = resize_weights(in_len, out_len, scale)
        want = {
            int(i): float(wi) for i, wi in zip(idx[j], w[j], strict=True) if abs(float(wi)) > 1e-14
        }
        got = weights_of(j, scale)
        if set(got) == set(want) and all(abs(got[i] - want[i]) <= 1e-12 for i in want):
            return f"{len(want)} taps"
        total = sum(got.values())
        centre = (j + 0.5) / scale - 0.5
        if len(got) <= 4:
            hint = (
                "when shrinking by s, stretch the kernel (antialiasing): "
                "w_i = s * cubic(s * (c - i)) for every i with |c - i| < 2 / s"
            )
        elif abs(total - 1) > 1e-9:
            hint = "normalise: divide the weights by their sum"
        elif set(got) != set(want):
            hint = (
                f"the centre of output pixel {j} is c = (j + 0.5) / s - 0.5 = {centre:g} "
                "in input pixels, and the taps are the i with |c - i| < 2 / s"
            )
        else:
            hint = "w_i = s * cubic(s * (c - i)), normalised to sum 1"
        fail(
            f"scale {scale:.4g}, pixel {j}: taps {sorted(got)[:3]}... (n = {len(got)}) vs the "
            f"kit's {sorted(want)[:3]}... (n = {len(want)})",
            hint,
        )

    def sums_to_one() -> None:
        for scale in (1 / 2, 1 / 3):
            total = sum(weights_of(5, scale).values())
            if abs(total - 1) > 1e-12:
                fail(f"scale {scale:.4g}: the weights sum to {total:.6g}", "normalise them")

    def zero_d() -> None:
        x = torch.tensor(1.25, dtype=torch.float64)
        out = expect_tensor(call(cubic, "cubic", x.clone()), (), "cubic")
        if not close(out, kit_cubic(x), 1e-12):
            fail("cubic(tensor(1.25)) is wrong", cubic_hint(out.reshape(1), x.reshape(1)))

    forbidden = {
        "sr_kit.imresize.cubic": kit_cubic,
        "sr_kit.imresize.resize_weights": resize_weights,
        "the checker's _keys": _keys,
    }

    if cubic is not None:
        s.own_work("cubic", lambda: k(grid), forbidden, "cubic")
        s.check(
            "cubic equals sr_kit.imresize.cubic on [-3, 3] within 1e-12", on_grid, "cubic", points=2
        )
        s.check("cubic(0) = 1 and cubic(±1) = cubic(±2) = 0", interpolating, "cubic")
        s.check("shifted copies sum to 1 (partition of unity)", unity, "cubic")
        s.check("any shape, keeps the dtype, x unchanged", shapes, "cubic")
        s.check("a 0-d tensor", zero_d, "cubic", hidden=True)
    if antialias_weights is not None:
        s.own_work(
            "antialias_weights",
            lambda: weights_of(10, 1 / 2),
            forbidden,
            "antialias_weights",
        )
        cases = ((10, 1 / 2, 64), (7, 1 / 3, 60), (6, 1 / 4, 64))
        for j, scale, in_len in cases:
            label = f"x1/{round(1 / scale)}, output pixel {j}: taps and weights of resize_weights"
            s.check(label, lambda j=j, s_=scale, n=in_len: weights_case(j, s_, n))
        s.check("the weights sum to 1", sums_to_one, "antialias_weights")
        for j, scale, in_len in ((3, 1 / 2, 64), (13, 1 / 3, 60)):
            label = f"x1/{round(1 / scale)}, output pixel {j}"
            s.check(label, lambda j=j, s_=scale, n=in_len: weights_case(j, s_, n), hidden=True)
    return s.finish()
