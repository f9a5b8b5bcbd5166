"""Checker of ``notebooks/exercises/03_split_distillation_solution.ipynb`` (LMSWN claim L3).

Students write ``distill_step(x, conv1x1, d)`` (split, then a 1x1, then LeakyReLU) and the two
parameter formulas ``params_split1x1(C)`` and ``params_fdc(C)``. The references are the kit's
:class:`sr_kit.blocks.DistillWeightBlock` (its own distillation step, its width ``d`` and its
slope ``NEG_SLOPE``) and :func:`sr_kit.complexity.count_params` on that block's 1x1 convs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from sr_kit.blocks import DistillWeightBlock
from sr_kit.blocks.distill import NEG_SLOPE
from sr_kit.complexity import count_params

from .harness import (
    CheckResult,
    Session,
    call,
    close,
    expect_integer,
    expect_tensor,
    fail,
    need_any,
    seeded,
)

__all__ = ["check_distill_step"]


def check_distill_step(
    distill_step: Callable | None = None,
    params_split1x1: Callable | None = None,
    params_fdc: Callable | None = None,
    *,
    hidden: bool | None = None,
) -> CheckResult:
    """Check ``distill_step(x, conv1x1, d)`` against ``DistillWeightBlock`` and the two
    parameter formulas ``params_split1x1(C)`` and ``params_fdc(C)`` against the kit's counts.
    Pass the functions you have written; the others are skipped. Hidden tests: C = 32 and 96
    (and odd C = 50 for the counts). An answer that calls the block's own step, or counts
    parameters with ``count_params``, scores 0."""
    need_any(
        "check_distill_step",
        distill_step=distill_step,
        params_split1x1=params_split1x1,
        params_fdc=params_fdc,
    )
    s = Session("check_distill_step", hidden)

    def block(channels: int, distill: str = "split1x1") -> DistillWeightBlock:
        with seeded(20 + channels):
            return DistillWeightBlock(channels, distill=distill)  # type: ignore[arg-type]

    def step_hint(x: Tensor, conv: nn.Conv2d, d: int, out: Tensor) -> str:
        with torch.no_grad():
            variants = {
                "the LeakyReLU slope is 0.05 (nn.LeakyReLU(0.05), as IMDN and RFDN); torch's "
                "default is 0.01": nn.functional.leaky_relu(conv(x[:, :d]), 0.01),
                "apply LeakyReLU(0.05) after the 1x1": conv(x[:, :d]),
                "LeakyReLU(0.05), not ReLU: negative features keep a small slope": torch.relu(
                    conv(x[:, :d])
                ),
                "take the *first* d channels, x[:, :d]": nn.functional.leaky_relu(
                    conv(x[:, -d:]), NEG_SLOPE
                ),
            }
        for hint, value in variants.items():
            if close(out, value, 1e-6):
                return hint
        return "D = LeakyReLU_0.05(conv1x1(x[:, :d])): split first, then the 1x1, then the act"

    def compare(blk: DistillWeightBlock, k: int, x: Tensor) -> None:
        d, conv = blk.d, blk.distill[k]
        with torch.no_grad():
            # The block's own step (a private method: the block has no public one, and
            # rebuilding it here would test the student against a copy, not against the kit).
            want = blk._distill(k, x)
            out = call(distill_step, "distill_step", x, conv, d)
        out = expect_tensor(out, want.shape, "distill_step")
        if not close(out, want, 1e-6, 1e-5):
            fail(
                f"C = {x.shape[1]}, stage {k + 1}: differs from the block's distillation",
                step_hint(x, conv, d, out),
            )

    def first_stage() -> None:
        x = torch.randn(2, 48, 8, 8, generator=torch.Generator().manual_seed(21))
        compare(block(48), 0, x)

    def all_stages() -> None:
        gen = torch.Generator().manual_seed(22)
        blk48, blk64 = block(48), block(64)
        for k in range(3):
            compare(blk48, k, torch.randn(1, 48, 6, 5, generator=gen))
            compare(blk64, k, torch.randn(1, 64, 5, 6, generator=gen))

    def input_kept() -> None:
        blk = block(48)
        x = torch.randn(1, 48, 6, 6, generator=torch.Generator().manual_seed(23))
        keep = x.clone()
        with torch.no_grad():
            call(distill_step, "distill_step", x, blk.distill[0], blk.d)
        if not torch.equal(x, keep):
            fail(
                "x was changed",
                "an in-place activation on a slice of x (leaky_relu_, inplace=True) writes into "
                "x: apply it to the conv's output",
            )

    def count(blk: DistillWeightBlock) -> int:
        return count_params(blk.distill[0])  # one stage's 1x1: all three stages are alike

    widths = (48, 52, 64)

    def formula(fn: Callable, fn_name: str, kind: str, widths: tuple[int, ...] = widths) -> str:
        wrong_hint = {
            "split1x1": "the split itself is free: only the 1x1 conv d -> d (d = C // 4) has "
            "parameters, d * d weights plus d biases",
            "fdc": "RFDN's 1x1 maps all C channels to C // 2: C * (C // 2) weights plus "
            "C // 2 biases",
        }[kind]
        for c in widths:
            blk = block(c, kind)
            want = count(blk)
            got = expect_integer(call(fn, fn_name, c), fn_name)
            if got != want:
                conv = blk.distill[0]  # the kit's 1x1: in_channels -> out_channels (= blk.d)
                hint = wrong_hint
                if got == conv.in_channels * conv.out_channels:  # the weights without the bias
                    hint = "a 1x1 conv from a to b channels has a * b weights plus b biases"
                fail(f"{fn_name}({c}) = {got}, the kit counts {want}", hint)
        return ""

    def split_counts() -> str:
        formula(params_split1x1, "params_split1x1", "split1x1")
        return f"{count(block(48)):,} at C = 48"

    def fdc_counts() -> str:
        formula(params_fdc, "params_fdc", "fdc")
        ours, theirs = count(block(48)), count(block(48, "fdc"))
        return f"{theirs:,} at C = 48: {theirs / ours:.1f}x the split + 1x1, claim L3's saving"

    def other_widths() -> None:
        gen = torch.Generator().manual_seed(24)
        for c in (32, 96):
            blk = block(c)
            for k in range(3):
                compare(blk, k, torch.randn(1, c, 4, 7, generator=gen))

    forbidden = {
        "DistillWeightBlock._distill": DistillWeightBlock._distill,
        "DistillWeightBlock.forward": DistillWeightBlock.forward,
    }
    counting = {"sr_kit.complexity.count_params": count_params}

    def probe_step() -> None:
        blk = block(48)
        x = torch.randn(1, 48, 4, 4, generator=torch.Generator().manual_seed(25))
        with torch.no_grad():
            call(distill_step, "distill_step", x, blk.distill[0], blk.d)

    if distill_step is not None:
        s.own_work("distill_step", probe_step, forbidden, "distill_step")
        s.check("distill_step equals DistillWeightBlock(48)'s first stage", first_stage, points=2)
        s.check("all three stages, at C = 48 and C = 64", all_stages, "distill_step")
        s.check("x is left unchanged", input_kept, "distill_step")
        s.check("C = 32 and C = 96, all three stages", other_widths, "distill_step", hidden=True)
    for fn, fn_name, kind in (
        (params_split1x1, "params_split1x1", "split1x1"),
        (params_fdc, "params_fdc", "fdc"),
    ):
        if fn is None:
            continue
        s.own_work(fn_name, lambda fn=fn, n=fn_name: call(fn, n, 48), counting, fn_name)
        if kind == "split1x1":
            s.check("params_split1x1(C) for C = 48, 52, 64", split_counts, fn_name, points=2)
        else:
            s.check("params_fdc(C) for C = 48, 52, 64", fdc_counts, fn_name, points=2)
        s.check(
            f"{fn_name}(C) for C = 32, 50, 96",
            lambda fn=fn, n=fn_name, k=kind: formula(fn, n, k, (32, 50, 96)) or None,
            fn_name,
            hidden=True,
        )
    return s.finish()
