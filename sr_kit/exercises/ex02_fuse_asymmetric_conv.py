"""Checker of ``notebooks/exercises/02_fuse_asymmetric_conv_solution.ipynb`` (LMSWN claim L2).

Students write ``fuse_acb(square, hor, ver) -> nn.Conv2d``: ACNet's fusion of a 3x3, a 1x3 and a
3x1 conv into one 3x3. The reference is the kit's :class:`sr_kit.blocks.AsymConv`: its
``forward`` gives the output the fused conv must reproduce, its ``fuse()`` the right kernel and
the configuration of the returned conv.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn

from sr_kit.blocks import AsymConv

from .harness import CheckResult, Session, call, close, expect_tensor, fail, seeded

__all__ = ["check_fuse_acb"]


def _acb(cin: int, cout: int, seed: int, branch_bias: bool) -> tuple[nn.Conv2d, ...]:
    """Three seeded branches; ``branch_bias``: hor and ver have biases too (ACNet after folding
    BatchNorm; the kit's AsymConv has none there)."""
    with seeded(seed):
        sq = nn.Conv2d(cin, cout, 3, padding=1)
        hor = nn.Conv2d(cin, cout, (1, 3), padding=(0, 1), bias=branch_bias)
        ver = nn.Conv2d(cin, cout, (3, 1), padding=(1, 0), bias=branch_bias)
    return sq, hor, ver


def _kit_acb(sq: nn.Conv2d, hor: nn.Conv2d, ver: nn.Conv2d) -> AsymConv:
    """The kit's AsymConv with copies of these three branches in it: its forward is the output a
    fusion must reproduce and its ``fuse()`` the right kernel. Copies, so that nothing the
    student's code does to the branches can reach the reference."""
    acb = AsymConv(sq.in_channels, sq.out_channels)
    acb.square, acb.hor, acb.ver = (copy.deepcopy(c) for c in (sq, hor, ver))
    return acb


def _acb_forward(sq: nn.Conv2d, hor: nn.Conv2d, ver: nn.Conv2d, x: Tensor) -> Tensor:
    with torch.no_grad():
        return _kit_acb(sq, hor, ver)(x)  # AsymConv.forward: square(x) + hor(x) + ver(x)


def _fusion_hint(fused: nn.Conv2d, sq: nn.Conv2d, hor: nn.Conv2d, ver: nn.Conv2d) -> str:
    """Why a fused conv is wrong: compare its kernel and bias with the right ones."""
    w = fused.weight.detach()
    kit = _kit_acb(sq, hor, ver)
    right = kit.fuse().weight  # the kit's fusion: 1x3 into the middle row, 3x1 into the column
    with torch.no_grad():
        # The right bias is the block's output for a zero input (it is affine). Not fuse().bias:
        # the kit's own hor and ver have no bias, so fuse() copies square.bias alone.
        zero = torch.zeros(1, sq.in_channels, 1, 1, dtype=sq.weight.dtype)
        right_b = kit(zero)[0, :, 0, 0]
    # the typical mistake: the 1x3 kernel added into the middle column, the 3x1 into the row
    swapped = sq.weight.detach().clone()
    swapped[:, :, :, 1] += hor.weight.detach()[:, :, 0, :]
    swapped[:, :, 1, :] += ver.weight.detach()[:, :, :, 0]
    branch_bias = hor.bias is not None or ver.bias is not None
    if w.shape != right.shape:
        return f"the fused kernel has shape {tuple(w.shape)}, expected {tuple(right.shape)}"
    if close(w, swapped, 1e-6):
        return (
            "hor (1x3) and ver (3x1) are swapped: the 1x3 kernel is one row, so it adds into the "
            "middle row weight[:, :, 1:2, :]; the 3x1 kernel into the middle column "
            "weight[:, :, :, 1:2]"
        )
    if close(w, sq.weight.detach(), 1e-6):
        return "the 1x3 and 3x1 kernels were not added into the 3x3 kernel"
    if not close(w, right, 1e-6):
        return (
            "the 1x3 kernel adds into the middle row weight[:, :, 1:2, :] and the 3x1 kernel "
            "into the middle column weight[:, :, :, 1:2] of the 3x3 kernel"
        )
    if fused.bias is None:
        return "the fused conv needs a bias: nn.Conv2d(..., bias=True), set to the summed biases"
    b = fused.bias.detach()
    if close(b, sq.bias.detach(), 1e-6) and branch_bias:
        return "you kept only square.bias: the biases of hor and ver add to it"
    if not close(b, right_b, 1e-6):
        return "the fused bias is square.bias + hor.bias + ver.bias (a branch without bias adds 0)"
    return "check the padding (1) and stride (1) of the returned conv"


def check_fuse_acb(fuse_acb: Callable, *, hidden: bool | None = None) -> CheckResult:
    """Check ``fuse_acb(square, hor, ver) -> nn.Conv2d`` (ACNet fusion, as ``AsymConv.fuse``):
    the returned conv's configuration, its output on the kit's AsymConv and on branches with
    biases or other widths, and that the three inputs are left alone; hidden tests: float64
    branches, and one input channel to sixteen. An answer that calls ``AsymConv.fuse`` scores
    0."""
    s = Session("check_fuse_acb", hidden)
    name = "fuse_acb"

    def fused_of(sq: nn.Conv2d, hor: nn.Conv2d, ver: nn.Conv2d) -> nn.Conv2d:
        fused = call(fuse_acb, name, sq, hor, ver)
        if not isinstance(fused, nn.Conv2d):
            fail(
                f"returned {type(fused).__name__}, expected an nn.Conv2d",
                "build one nn.Conv2d(in, out, 3, padding=1) and copy the summed kernels into it",
            )
        return fused

    def equivalent(sq: nn.Conv2d, hor: nn.Conv2d, ver: nn.Conv2d, x: Tensor, want: Tensor) -> None:
        # copies: a fusion that writes into its inputs must not spoil the diagnosis below
        fused = fused_of(*(copy.deepcopy(c) for c in (sq, hor, ver)))
        with torch.no_grad():
            out = expect_tensor(
                call(fused, "the returned conv", x), want.shape, "the returned conv"
            )
        if not close(out, want, 1e-5, 1e-5):
            diff = float((out.double() - want.double()).abs().max())
            fail(f"max |difference| {diff:.3g} > 1e-5", _fusion_hint(fused, sq, hor, ver))

    def is_conv3() -> None:
        sq, hor, ver = _acb(4, 6, 10, False)
        fused = fused_of(sq, hor, ver)
        got = (
            tuple(fused.kernel_size),
            fused.in_channels,
            fused.out_channels,
            tuple(fused.stride),
            tuple(fused.dilation),
            fused.groups,
        )
        kit = AsymConv(4, 6).fuse()  # what the kit's own fusion returns at these widths
        want = (
            tuple(kit.kernel_size),
            kit.in_channels,
            kit.out_channels,
            tuple(kit.stride),
            tuple(kit.dilation),
            kit.groups,
        )
        if got != want:
            fail(
                f"kernel, in/out channels, stride, dilation, groups = {got}, expected {want}",
                "nn.Conv2d(square.in_channels, square.out_channels, 3, padding=1)",
            )
        if fused.padding not in (tuple(kit.padding), "same"):
            fail(f"padding {fused.padding}, expected 1", "padding=1 keeps the spatial size")
        if fused.bias is None:
            fail("the returned conv has no bias", "keep bias=True and copy square.bias into it")

    def kit_acb() -> None:
        with seeded(11):
            acb = AsymConv(4, 4)
        x = torch.randn(2, 4, 9, 11, generator=torch.Generator().manual_seed(12))
        with torch.no_grad():
            want = acb(x)
        equivalent(acb.square, acb.hor, acb.ver, x, want)

    def biased() -> None:
        sq, hor, ver = _acb(5, 5, 13, True)
        x = torch.randn(1, 5, 7, 8, generator=torch.Generator().manual_seed(14))
        equivalent(sq, hor, ver, x, _acb_forward(sq, hor, ver, x))

    def other_widths() -> None:
        sq, hor, ver = _acb(3, 8, 15, False)
        x = torch.randn(1, 3, 6, 6, generator=torch.Generator().manual_seed(16))
        equivalent(sq, hor, ver, x, _acb_forward(sq, hor, ver, x))

    def no_side_effects() -> None:
        convs = _acb(4, 4, 17, True)
        before = [{k: v.clone() for k, v in c.state_dict().items()} for c in convs]
        fused = fused_of(*convs)
        changed = [
            n
            for n, c, b in zip(("square", "hor", "ver"), convs, before, strict=True)
            if any(not torch.equal(v, b[k]) for k, v in c.state_dict().items())
        ]
        if changed:
            fail(
                f"{', '.join(changed)} changed during fusion",
                "build a new nn.Conv2d and copy into it under torch.no_grad(); adding in place "
                "into square.weight changes the model you are still training",
            )
        if any(fused is c for c in convs):
            fail("returned one of its inputs", "return a new nn.Conv2d")

    def probe() -> None:
        call(fuse_acb, name, *_acb(4, 4, 18, False))

    def float64() -> None:
        sq, hor, ver = (c.double() for c in _acb(3, 5, 19, True))
        x = torch.randn(
            1, 3, 5, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(20)
        )
        equivalent(sq, hor, ver, x, _acb_forward(sq, hor, ver, x))

    def one_to_sixteen() -> None:
        sq, hor, ver = _acb(1, 16, 21, False)
        x = torch.randn(2, 1, 6, 4, generator=torch.Generator().manual_seed(22))
        equivalent(sq, hor, ver, x, _acb_forward(sq, hor, ver, x))

    s.own_work(name, probe, {"sr_kit.blocks.AsymConv.fuse": AsymConv.fuse}, name)
    s.check("returns a 3x3 nn.Conv2d (padding 1, stride 1, with bias)", is_conv3, name)
    s.check(
        "same output as the kit's AsymConv (branches without bias) within 1e-5",
        kit_acb,
        name,
        points=2,
    )
    s.check("same output when hor and ver have biases too (ACNet after BN folding)", biased, name)
    s.check("same output with different in/out channels (3 -> 8)", other_widths, name)
    s.check("square, hor and ver are left unchanged; a new conv is returned", no_side_effects, name)
    s.check("float64 branches with biases (3 -> 5)", float64, name, hidden=True)
    s.check("one input channel to sixteen", one_to_sixteen, name, hidden=True)
    return s.finish()
