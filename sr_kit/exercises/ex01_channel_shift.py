"""Checker of ``notebooks/exercises/01_channel_shift_solution.ipynb`` (SAFDNet claim S3).

Students write ``channel_shift(x, ratio, px)``: the partial channel shift, zero-filled. The
reference is the kit's own op, :func:`sr_kit.ops.channel_shift`, with its group sizes from
:func:`sr_kit.ops.shift_groups`; ``torch.roll`` appears only as the typical mistake to recognise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from sr_kit.ops import channel_shift as kit_channel_shift
from sr_kit.ops import shift_groups

from .harness import CheckResult, Session, call, expect_tensor, fail

__all__ = ["check_channel_shift"]

# The order in which shift_groups' four groups move (sr_kit.ops keeps its own table private).
_DIRS = ("left", "right", "up", "down")
_ROLLS = ((-1, -1), (1, -1), (-1, -2), (1, -2))  # torch.roll (shift, dim) for the same four


def check_channel_shift(channel_shift: Callable, *, hidden: bool | None = None) -> CheckResult:
    """Check ``channel_shift(x, ratio, px)`` against ``sr_kit.ops.channel_shift``: a new tensor,
    zero fill (no wrap-around), the four directions, the untouched channels, six shapes, and a
    shift wider than the image; hidden tests (``hidden``, see :mod:`.harness`): float64 and a
    batch of 3, a non-contiguous input, a shift as tall as the image in one direction only. An
    answer that calls the kit's channel shift scores 0."""
    s = Session("check_channel_shift", hidden)
    name = "channel_shift"

    def run(x: Tensor, ratio: float, px: int) -> Tensor:
        return expect_tensor(call(channel_shift, name, x.clone(), ratio, px), x.shape, name)

    def counting(shape: tuple[int, ...]) -> Tensor:  # 1, 2, 3, ...: every value distinct, > 0
        return torch.arange(1, math.prod(shape) + 1, dtype=torch.float32).reshape(shape)

    def new_tensor() -> None:
        x = torch.randn(1, 12, 5, 6, generator=torch.Generator().manual_seed(0))
        keep = x.clone()
        out = expect_tensor(call(channel_shift, name, x, 1 / 3, 1), x.shape, name)
        if out.dtype != x.dtype:
            fail(f"returned dtype {out.dtype}, expected {x.dtype}", "use torch.zeros_like(x)")
        if not torch.equal(x, keep):
            fail(
                "the input tensor x was changed",
                "start from x.clone() (or torch.zeros_like(x)) and write into the copy: "
                "the caller still needs x",
            )

    def moves(plane: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """One (H, W) plane moved one pixel in each direction: zero-filled, and rolled."""
        filled = kit_channel_shift(plane[None, None].repeat(1, 4, 1, 1), 1.0, 1)[0]
        rolled = [torch.roll(plane, shift, dim) for shift, dim in _ROLLS]
        return list(filled), rolled

    def no_wrap() -> None:
        x = counting((1, 4, 5, 6))
        out, want = run(x, 1.0, 1), kit_channel_shift(x, 1.0, 1)
        for c in range(4):
            if any(torch.equal(out[0, c], r) for r in moves(x[0, c])[1]):
                fail(
                    f"channel {c}: values wrapped around to the opposite border",
                    "use slicing into a zero tensor, not torch.roll",
                )
            zeros, expected = int((out[0, c] == 0).sum()), int((want[0, c] == 0).sum())
            if zeros != expected:
                fail(
                    f"channel {c} has {zeros} zero pixels, expected {expected}",
                    "the px rows or columns shifted in from outside the image are 0; every "
                    "other pixel comes from its neighbour px pixels away",
                )

    def directions() -> None:
        x = counting((1, 4, 5, 6))
        out = run(x, 1.0, 1)
        for c in range(4):
            filled, rolled = moves(x[0, c])
            if torch.equal(out[0, c], filled[c]) or torch.equal(out[0, c], rolled[c]):
                continue  # the right way (a wrap-around is reported by the check above)
            moved = [
                d
                for d, f, r in zip(_DIRS, filled, rolled, strict=True)
                if torch.equal(out[0, c], f) or torch.equal(out[0, c], r)
            ]
            got = f"it moved {moved[0]}" if moved else "it did not move one pixel in any direction"
            fail(
                f"channel {c} should move {_DIRS[c]}, {got}",
                "the groups from shift_groups(C, ratio) go left, right, up, down in this order; "
                "'left' means out[..., j] = x[..., j + px]",
            )

    def untouched() -> None:
        x = torch.randn(1, 12, 5, 6, generator=torch.Generator().manual_seed(1))
        out = run(x, 1 / 3, 1)
        moved = sum(shift_groups(x.shape[1], 1 / 3))  # the kit's share: 4 of 12 channels
        if not torch.equal(out[:, moved:], x[:, moved:]):
            fail(
                "the channels after the four shifted groups changed",
                "only the first round(C * ratio) channels move (shift_groups gives the four "
                "group sizes); copy the others unchanged",
            )

    cases = [
        ((1, 12, 5, 6), 1 / 3, 1),
        ((2, 8, 4, 4), 0.5, 2),
        ((1, 6, 3, 7), 1.0, 1),
        ((1, 13, 6, 5), 1 / 3, 1),
        ((1, 24, 8, 8), 0.25, 3),
        ((1, 8, 4, 4), 0.0, 1),
    ]

    def matches_kit() -> None:
        gen = torch.Generator().manual_seed(2)
        for shape, ratio, px in cases:
            x = torch.randn(shape, generator=gen)
            out, want = run(x, ratio, px), kit_channel_shift(x, ratio, px)
            if torch.equal(out, want):
                continue
            hint = "use shift_groups(C, ratio) for the group sizes and slice by px"
            if px > 1 and torch.equal(out, kit_channel_shift(x, ratio, 1)):
                hint = "shift by px pixels, not by 1"
            fail(
                f"shape {shape}, ratio {ratio:.3g}, px {px}: "
                f"{int((out != want).sum())} values differ from the kit",
                hint,
            )

    def beyond_image() -> None:
        x = counting((1, 4, 3, 3))
        out = run(x, 1.0, 4)
        if (out != kit_channel_shift(x, 1.0, 4)).any():  # the kit gives all zeros here
            fail(
                "with px = 4 on a 3x3 image every shifted channel must be all zeros",
                "when px >= W the slice end W - px is negative and counts from the end: "
                "use x[..., px:] / x[..., :-px] style slices, or clamp with max(W - px, 0)",
            )

    def probe() -> None:
        call(channel_shift, name, torch.randn(1, 8, 4, 4, generator=torch.Generator()), 0.5, 1)

    def float64_batch() -> None:
        x = torch.randn(
            3, 10, 7, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(3)
        )
        out = run(x, 0.4, 2)
        if out.dtype != torch.float64 or not torch.equal(out, kit_channel_shift(x, 0.4, 2)):
            fail("float64, batch 3, ratio 0.4, px 2: differs from the kit", "keep x's dtype")

    def non_contiguous() -> None:
        x = torch.randn(1, 8, 6, 5, generator=torch.Generator().manual_seed(4)).transpose(-1, -2)
        out = run(x, 0.5, 1)
        if not torch.equal(out, kit_channel_shift(x, 0.5, 1)):
            fail("a transposed (non-contiguous) input gives other values than the kit")

    def one_direction_out() -> None:
        x = counting((1, 4, 2, 5))  # px = 2: rows shift out entirely, columns only partly
        out = run(x, 1.0, 2)
        if not torch.equal(out, kit_channel_shift(x, 1.0, 2)):
            fail(
                "px = 2 on a 2x5 image: the up/down groups must be all zeros, left/right shifted",
                "decide 'shifted out entirely' per direction: rows against H, columns against W",
            )

    s.own_work(name, probe, {"sr_kit.ops.channel_shift": kit_channel_shift}, name)
    s.check("returns a new tensor of the same shape and dtype; x unchanged", new_tensor, name)
    s.check("zero fill at the borders, no wrap-around", no_wrap, name)
    s.check("four groups in the order left, right, up, down", directions, name)
    s.check("channels beyond the shifted share are left untouched", untouched, name)
    s.check(
        f"equals sr_kit.ops.channel_shift on {len(cases)} shapes/ratios/px",
        matches_kit,
        name,
        points=2,
    )
    s.check("px larger than the image shifts everything out (all zeros)", beyond_image, name)
    s.check("float64 and a batch of 3 (ratio 0.4, px 2)", float64_batch, name, hidden=True)
    s.check("a non-contiguous input (a transposed view)", non_contiguous, name, hidden=True)
    s.check(
        "px = 2 on a 2x5 image: rows out, columns shifted", one_direction_out, name, hidden=True
    )
    return s.finish()
