"""Checker of ``notebooks/exercises/07_receptive_field_solution.ipynb`` (LMSWN claim L1).

Students write ``receptive_field(kernel_sizes, dilations, strides)`` and ``lmswn_rf(head,
stages)``. The kit has no receptive-field function, so the formula ``_rf`` stays here; the checker
verifies it, and the student's answer, against the gradient footprint of real convolutions. The
layers of LMSWN's front end are read off the kit's modules (:class:`sr_kit.blocks.PyramidConv`,
:class:`~sr_kit.blocks.AsymConv`), and its footprint is measured through the kit's own
:class:`~sr_kit.blocks.DistillWeightBlock`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from sr_kit.blocks import AsymConv, DistillWeightBlock, PyramidConv

from .harness import CheckResult, Session, call, expect_integer, fail, seeded

__all__ = ["check_lmswn_rf", "check_receptive_field"]

_WHOLE = "a receptive field is a whole number of pixels"


def _rf(kernels: Sequence[int], dilations: Sequence[int], strides: Sequence[int]) -> int:
    """r = 1 + sum over layers of (k - 1) * d * (product of the earlier strides)."""
    rf, jump = 1, 1
    for k, d, st in zip(kernels, dilations, strides, strict=True):
        rf += (k - 1) * d * jump
        jump *= st
    return rf


def _footprint(model: Callable[[Tensor], Tensor], in_ch: int, size: int) -> int:
    """Width of the input region that the centre output pixel depends on (through gradients)."""
    gen = torch.Generator().manual_seed(72)
    x = torch.rand(1, in_ch, size, size, dtype=torch.float64, generator=gen).requires_grad_()
    y = model(x)
    cy, cx = y.shape[-2] // 2, y.shape[-1] // 2
    y[..., cy, cx].sum().backward()
    rows = (x.grad[0].abs().sum(dim=(0, 2)) > 0).nonzero().flatten()
    return int(rows.max() - rows.min() + 1)


def _conv_stack(
    kernels: Sequence[int], dilations: Sequence[int], strides: Sequence[int]
) -> nn.Sequential:
    """A 1-channel stack of unpadded convs with all weights 1, in float64."""
    layers = [
        nn.Conv2d(1, 1, k, stride=st, dilation=d, bias=False)
        for k, d, st in zip(kernels, dilations, strides, strict=True)
    ]
    net = nn.Sequential(*layers).double()
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(1.0)  # all positive: no cancellation, so every path shows up in the gradient
    return net


def check_receptive_field(receptive_field: Callable, *, hidden: bool | None = None) -> CheckResult:
    """Check ``receptive_field(kernel_sizes, dilations=None, strides=None)`` on known stacks and
    against the gradient footprint of real conv stacks; hidden tests: a ten-layer stack and 1x1
    layers between strides. An answer that calls this checker's own formula scores 0."""
    s = Session("check_receptive_field", hidden)
    name = "receptive_field"

    def rf_hint(got: int, ks: list[int], ds: list[int], ss: list[int]) -> str:
        ones = [1] * len(ks)
        own = _rf(ks, ds, [1] * len(ks))
        with_own = 1 + sum(
            (k - 1) * d * math.prod(ss[: i + 1])
            for i, (k, d) in enumerate(zip(ks, ds, strict=True))
        )
        variants = [
            (
                _rf(ks, ones, ss),
                "a dilated k x k conv spans d * (k - 1) + 1 pixels: multiply (k - 1) by d",
            ),
            (
                own,
                "after a stride-s layer, one step of the next layer is s input pixels: multiply "
                "(k - 1) * d by the product of the *earlier* strides",
            ),
            (
                with_own,
                "a layer's own stride only affects the layers after it: use the product of the "
                "earlier strides",
            ),
            (
                _rf(ks, ds, ss) - 1,
                "start from 1 (a single pixel sees itself); each layer adds (k - 1) * d * jump",
            ),
            (sum(ks), "each layer adds k - 1 pixels, not k (neighbouring windows overlap)"),
        ]
        for value, hint in variants:
            if got == value:
                return hint
        return "r = 1 + Σ (k_l - 1) · d_l · Π_{m<l} s_m"

    def stacks(cases: list[tuple[list[int], list[int] | None, list[int] | None]]) -> None:
        for ks, ds, ss in cases:
            kwargs = {}
            if ds is not None:
                kwargs["dilations"] = ds
            if ss is not None:
                kwargs["strides"] = ss
            got = expect_integer(call(receptive_field, name, list(ks), **kwargs), name, _WHOLE)
            dd, st = ds or [1] * len(ks), ss or [1] * len(ks)
            want = _rf(ks, dd, st)
            if got != want:
                what = f"kernels {ks}" + "".join(f", {k} {v}" for k, v in kwargs.items())
                fail(f"{what}: got {got}, expected {want}", rf_hint(got, ks, dd, st))

    def empirical() -> None:
        cases = [
            ([3, 3, 3], [1, 1, 1], [1, 1, 1]),
            ([3, 5], [2, 1], [1, 1]),
            ([3, 3, 3], [1, 1, 1], [2, 1, 1]),
            ([5, 3], [1, 3], [2, 1]),
        ]
        for ks, ds, ss in cases:
            with seeded(70):  # nn.Conv2d draws its initial weights from the global generator
                stack = _conv_stack(ks, ds, ss)
            measured = _footprint(stack, 1, 41)
            out = call(receptive_field, name, list(ks), dilations=list(ds), strides=list(ss))
            got = expect_integer(out, name, _WHOLE)
            if got != measured:
                fail(
                    f"kernels {ks}, dilations {ds}, strides {ss}: the gradient of one output "
                    f"pixel reaches {measured} input pixels, your formula says {got}",
                    rf_hint(got, ks, ds, ss),
                )

    s.own_work(
        name,
        lambda: call(receptive_field, name, [3, 3], dilations=[1, 2], strides=[2, 1]),
        {"the checker's _rf": _rf, "the checker's _lmswn_rf": _lmswn_rf},
        name,
    )
    s.check(
        "plain stacks: [3] -> 3, [3, 3, 3] -> 7, [7] -> 7, [1, 1] -> 1, [] -> 1",
        lambda: stacks([(ks, None, None) for ks in ([3], [3, 3, 3], [7], [1, 1], [])]),
        name,
    )
    s.check(
        "dilation: [3] with d = 2 -> 5; [3, 3, 3] with d = 1, 2, 3 -> 13",
        lambda: stacks([([3], [2], None), ([3, 3, 3], [1, 2, 3], None)]),
        name,
    )
    s.check(
        "strides: [3, 3] s = 2, 1 -> 7; s = 1, 2 -> 5; [3, 3, 3] s = 2, 2, 1 -> 15",
        lambda: stacks(
            [([3, 3], None, [2, 1]), ([3, 3], None, [1, 2]), ([3, 3, 3], None, [2, 2, 1])]
        ),
        name,
    )
    s.check(
        "dilation and stride together: [3, 5], d = 2, 1, s = 2, 1 -> 13",
        lambda: stacks([([3, 5], [2, 1], [2, 1])]),
        name,
    )
    s.check("agrees with the gradient footprint of 4 real conv stacks", empirical, name, points=2)
    s.check(
        "ten 3x3 layers, strides 2, 1, 2, 1, ...",
        lambda: stacks([([3] * 10, None, [2, 1] * 5)]),
        name,
        hidden=True,
    )
    s.check(
        "1x1 layers between strided 3x3 layers",
        lambda: stacks([([3, 1, 3, 1, 5], [1, 1, 2, 1, 1], [2, 1, 2, 1, 1])]),
        name,
        hidden=True,
    )
    return s.finish()


_HEADS = ("pyramid", "dilated", "conv3")
Layers = list[tuple[int, int]]  # (kernel size, dilation) of stride-1 convs, in order


def _front_end(head: str, stages: int) -> Layers:
    """The layers on the widest path of LMSWN's front end, read off the kit's modules (so the
    expected answers follow the kit): the widest branch of ``PyramidConv(head)``, its 1x1 merge
    (conv3 has none), then per refinement stage the 3x3 of an ``AsymConv`` (its 1x3 and 3x1 run
    in parallel with it and reach no further)."""
    psfe = PyramidConv(1, 1, head)  # type: ignore[arg-type]
    widest = max(psfe.branches, key=lambda c: (c.kernel_size[0] - 1) * c.dilation[0])
    head_convs = [widest, psfe.merge] if isinstance(psfe.merge, nn.Conv2d) else [widest]
    square = AsymConv(1, 1).square
    return [(c.kernel_size[0], c.dilation[0]) for c in [*head_convs, *[square] * stages]]


def _rf_of(layers: Layers, *, dilation: bool = True) -> int:
    """``_rf`` of stride-1 layers; ``dilation=False`` ignores their dilations (a mistake)."""
    ks, ds = [k for k, _ in layers], [d if dilation else 1 for _, d in layers]
    return _rf(ks, ds, [1] * len(ks))


def _lmswn_rf(head: str, stages: int) -> int:
    return _rf_of(_front_end(head, stages))


def check_lmswn_rf(lmswn_rf: Callable, *, hidden: bool | None = None) -> CheckResult:
    """Check ``lmswn_rf(head, stages)``: the receptive field of LMSWN's shallow feature extractor
    (``head`` = "pyramid", "dilated" or "conv3") followed by ``stages`` refinement stages of the
    first block, on the formula and through gradients of the kit's own modules; hidden tests: 5
    and 8 stages. An answer that calls this checker's own formula scores 0."""
    s = Session("check_lmswn_rf", hidden)
    name = "lmswn_rf"

    def rf_hint(head: str, stages: int, got: int) -> str:
        # the usual mistakes, each as the formula applied to the wrong layers
        stage_layers = _front_end(head, stages)[len(_front_end(head, 0)) :]
        psfe = PyramidConv(1, 1, head)  # type: ignore[arg-type]
        branches = [(c.kernel_size[0], 1) for c in psfe.branches]  # as if one after the other
        if head == "pyramid" and got == _rf_of([*branches, *stage_layers]):
            return (
                "the 3x3, 5x5 and 7x7 branches run in parallel: the head sees as far as its "
                "widest branch (7), not as a stack of the three"
            )
        if head == "dilated" and got == _rf_of(_front_end(head, stages), dilation=False):
            return "a 3x3 with dilation 3 spans 2 * 3 + 1 = 7 pixels"
        if got == _lmswn_rf(head, 0) + 4 * stages:
            return (
                "the 1x3 and 3x1 branches of ACConv run in parallel with the 3x3: a stage still "
                "adds 2"
            )
        return (
            "receptive_field of the widest head branch, the 1x1 merge, then one 3x3 per stage "
            "(the residual skip adds nothing)"
        )

    def values(heads: Sequence[str], stage_list: Sequence[int]) -> None:
        for head in heads:
            for stages in stage_list:
                got = expect_integer(call(lmswn_rf, name, head, stages), name, _WHOLE)
                want = _lmswn_rf(head, stages)
                if got != want:
                    fail(
                        f"lmswn_rf({head!r}, {stages}) = {got}, expected {want}",
                        rf_hint(head, stages, got),
                    )

    def model(head: str) -> tuple[Callable[[Tensor], Tensor], int]:
        """The kit's PyramidConv(head) and first DistillWeightBlock, up to the features after the
        block's refinement stages (what its last 3x3 sees), and the number of those stages."""
        with seeded(71):
            psfe = PyramidConv(3, 4, head).double()  # type: ignore[arg-type]
            block = DistillWeightBlock(4, attn="none").double()
        with torch.no_grad():
            for m in (psfe, block.refine):
                for p in m.parameters():
                    p.abs_()  # positive weights: nothing cancels in the gradient

        def forward(x: Tensor) -> Tensor:
            seen: list[Tensor] = []
            # the block's own forward runs the stages; the input of its `last` conv is X_3
            hook = block.last.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
            try:
                block(psfe(x))
            finally:
                hook.remove()
            return seen[0]

        return forward, len(block.refine)

    def empirical() -> str:
        for head in _HEADS:
            forward, stages = model(head)
            measured = _footprint(forward, 3, 33)
            got = expect_integer(call(lmswn_rf, name, head, stages), name, _WHOLE)
            if got != measured:
                fail(
                    f"{head} head + {stages} stages: the gradient reaches {measured} pixels, "
                    f"lmswn_rf says {got}",
                    rf_hint(head, stages, got),
                )
        return (
            f"pyramid {_lmswn_rf('pyramid', stages)} vs conv3 {_lmswn_rf('conv3', stages)} pixels"
        )

    s.own_work(
        name,
        lambda: call(lmswn_rf, name, "pyramid", 1),
        {"the checker's _rf": _rf, "the checker's _lmswn_rf": _lmswn_rf},
        name,
    )
    s.check("the head alone: pyramid 7, dilated 7, conv3 3", lambda: values(_HEADS, [0]), name)
    s.check("head + 1, 2, 3 refinement stages", lambda: values(_HEADS, [1, 2, 3]), name)
    s.check(
        "agrees with gradients through the kit's PyramidConv + AsymConv", empirical, name, points=2
    )
    s.check("head + 5 and + 8 stages", lambda: values(_HEADS, [5, 8]), name, hidden=True)
    return s.finish()
