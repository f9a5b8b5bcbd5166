"""Checker of ``notebooks/exercises/04_adaptive_weights_solution.ipynb`` (LMSWN claim L4).

Students write ``weighted_output(y, x, lambda_y, lambda_x)`` and the module ``AdaptiveWeights``
(two learnable scalars, initialised to 1). Besides the formula on random tensors, the checker
compares with the kit's :class:`sr_kit.blocks.DistillWeightBlock`: ``weighted_output`` must
reproduce the block's own weighted output, and ``AdaptiveWeights`` must register the parameters
the block has (names, sizes, initial values).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from sr_kit.blocks import DistillWeightBlock

from .harness import CheckResult, Session, call, close, expect_tensor, fail, need_any, seeded

__all__ = ["check_adaptive_weights"]


def _kit_lambdas() -> dict[str, Tensor]:
    """The learnable weights of the kit's block as LMSWN uses it (``weights="scalar"``): the
    names, sizes and initial values that ``AdaptiveWeights`` must have."""
    with seeded(33):
        block = DistillWeightBlock(8)
    return {n: p.detach() for n, p in block.named_parameters() if n.startswith("lambda_")}


def check_adaptive_weights(
    weighted_output: Callable | None = None,
    AdaptiveWeights: type | None = None,
    *,
    hidden: bool | None = None,
) -> CheckResult:
    """Check ``weighted_output(y, x, lambda_y, lambda_x)`` and the module ``AdaptiveWeights``
    (two learnable scalars ``lambda_y``, ``lambda_x`` initialised to 1; ``forward(y, x)``),
    on the formula, on autograd and against the kit's ``DistillWeightBlock``. Hidden tests:
    float64 tensors, and two modules that do not share their parameters. An answer that runs
    the kit's block to get the result scores 0."""
    need_any(
        "check_adaptive_weights", weighted_output=weighted_output, AdaptiveWeights=AdaptiveWeights
    )
    s = Session("check_adaptive_weights", hidden)
    gen = torch.Generator().manual_seed(30)
    y, x, g = (torch.randn(2, 4, 3, 3, generator=gen) for _ in range(3))

    def value_hint(out: Tensor, ly: Any, lx: Any, y: Tensor = y, x: Tensor = x) -> str:
        if close(out, lx * y + ly * x, 1e-6):
            return "lambda_y weights y (the attention branch), lambda_x weights x (the identity)"
        if close(out, y + x, 1e-6):
            return "multiply each branch by its weight"
        return "out = lambda_y * y + lambda_x * x"

    def wo(*args: Any) -> Tensor:
        out = call(weighted_output, "weighted_output", *args)
        return expect_tensor(out, y.shape, "weighted_output")

    def floats() -> None:
        out = wo(y.clone(), x.clone(), 0.5, 2.0)
        if not close(out, 0.5 * y + 2.0 * x, 1e-6):
            fail("wrong values for lambda_y = 0.5, lambda_x = 2", value_hint(out, 0.5, 2.0))

    def grads(ly: Tensor, lx: Tensor, what: str) -> None:
        for p, branch, pname in ((ly, y, "lambda_y"), (lx, x, "lambda_x")):
            if p.grad is None:
                fail(
                    f"{pname} got no gradient{what}",
                    "keep the computation in torch: float(lambda), .item() or .detach() cut "
                    "the graph, and plain tensors (not nn.Parameter) are not learnable",
                )
            want = (branch * g).sum().reshape(p.shape) if p.numel() == 1 else None
            if want is not None and not close(p.grad, want, 1e-5, 1e-5):
                fail(f"{pname} has a wrong gradient{what}", "out = lambda_y * y + lambda_x * x")

    def tensor_scalars() -> None:
        ly = torch.tensor([0.5], requires_grad=True)
        lx = torch.tensor([2.0], requires_grad=True)
        out_full = call(weighted_output, "weighted_output", y.clone(), x.clone(), ly, lx)
        out = expect_tensor(out_full, y.shape, "weighted_output")
        if not close(out, 0.5 * y + 2.0 * x, 1e-6):
            fail("wrong values for tensor weights of shape (1,)", value_hint(out, 0.5, 2.0))
        if not torch.is_tensor(out_full) or not out_full.requires_grad:
            fail(
                "the output does not depend on lambda_y and lambda_x through autograd",
                "use the tensors themselves, not float(lambda) or lambda.item()",
            )
        (out_full * g).sum().backward()
        grads(ly, lx, "")

    def per_channel() -> None:
        ly = torch.linspace(0.5, 2.0, 4).reshape(1, 4, 1, 1)
        lx = torch.linspace(1.5, -1.0, 4).reshape(1, 4, 1, 1)
        out = wo(y.clone(), x.clone(), ly, lx)
        if not close(out, ly * y + lx * x, 1e-6):
            fail("wrong values for weights of shape (1, C, 1, 1)", value_hint(out, ly, lx))

    def kit_block() -> None:
        # The kit's block with one weight per channel: with the identity weight at 0 its output
        # is the attention branch Y alone, and with both weights set it is the expected result.
        with seeded(31):
            block = DistillWeightBlock(8, weights="channel")
        x0 = torch.randn(1, 8, 6, 6, generator=torch.Generator().manual_seed(32))
        ly, lx = block.lambda_y, block.lambda_x
        with torch.no_grad():
            ly.fill_(1.0)
            lx.fill_(0.0)
            branch = block(x0)
            ly.copy_(torch.linspace(0.5, 2.0, 8).reshape(ly.shape))
            lx.copy_(torch.linspace(1.5, -1.0, 8).reshape(lx.shape))
            want = block(x0)
            out = call(weighted_output, "weighted_output", branch.clone(), x0.clone(), ly, lx)
        out = expect_tensor(out, want.shape, "weighted_output")
        if not close(out, want, 1e-6, 1e-6):
            fail(
                "differs from the output of DistillWeightBlock(8, weights='channel')",
                value_hint(out, ly.detach(), lx.detach(), branch, x0),
            )

    def inputs_kept() -> None:
        yc, xc = y.clone(), x.clone()
        call(weighted_output, "weighted_output", yc, xc, 0.5, 2.0)
        if not (torch.equal(yc, y) and torch.equal(xc, x)):
            fail(
                "y or x was changed in place",
                "write lambda_y * y + lambda_x * x; mul_ and += overwrite the caller's tensors",
            )

    def make() -> nn.Module:
        m = call(AdaptiveWeights, "AdaptiveWeights")
        if not isinstance(m, nn.Module):
            fail(f"AdaptiveWeights() gave {type(m).__name__}", "subclass nn.Module")
        return m

    def registered() -> None:
        m = make()
        params, kit = dict(m.named_parameters()), _kit_lambdas()
        sizes = {k: p.numel() for k, p in params.items()}
        if len(params) != len(kit) or sum(sizes.values()) != sum(p.numel() for p in kit.values()):
            hint = "each is one scalar: nn.Parameter(torch.ones(1))"
            if not params:
                hint = (
                    "wrap them in nn.Parameter: a plain tensor attribute is not registered, so "
                    "the optimizer never updates it"
                )
            fail(f"registered parameters {sizes}, expected two scalars", hint)
        if set(params) != set(kit):
            fail(
                f"parameters are named {sorted(params)}",
                "call them self.lambda_y and self.lambda_x, as the kit does",
            )

    def start_at_one() -> None:
        m = make()
        for pname, init in _kit_lambdas().items():  # lambda_y, lambda_x: both ones in the kit
            p = getattr(m, pname, None)
            if not isinstance(p, torch.Tensor) or not torch.all(p.detach() == init):
                fail(
                    f"{pname} does not start at 1",
                    "AWSRN starts both at 1, so a new block is a plain residual y + x",
                )

    def forward_uses_params() -> None:
        m = make()
        at_init = expect_tensor(call(m, "AdaptiveWeights.forward", y, x), y.shape, "forward")
        if not close(at_init, y + x, 1e-6):
            fail("forward(y, x) at initialisation is not y + x", "return ly * y + lx * x")
        with torch.no_grad():
            m.lambda_y.fill_(0.5)
            m.lambda_x.fill_(2.0)
        out = expect_tensor(call(m, "AdaptiveWeights.forward", y, x), y.shape, "forward")
        if not close(out, 0.5 * y + 2.0 * x, 1e-6):
            hint = value_hint(out, 0.5, 2.0)
            if close(out, y + x, 1e-6):
                hint = "forward must use self.lambda_y and self.lambda_x, not constants"
            fail("with lambda_y = 0.5 and lambda_x = 2 forward gives wrong values", hint)

    def backward() -> None:
        m = make()
        out = call(m, "AdaptiveWeights.forward", y, x)
        expect_tensor(out, y.shape, "forward")
        if not out.requires_grad:
            fail("the output does not depend on the parameters", "use self.lambda_y directly")
        (out * g).sum().backward()
        grads(m.lambda_y, m.lambda_x, " after backward()")

    def float64() -> None:
        y64, x64 = y.double(), x.double()
        ly, lx = (
            torch.tensor([0.25], dtype=torch.float64),
            torch.tensor([-1.5], dtype=torch.float64),
        )
        out = call(weighted_output, "weighted_output", y64.clone(), x64.clone(), ly, lx)
        out = expect_tensor(out, y.shape, "weighted_output")
        if out.dtype != torch.float64 or not close(out, 0.25 * y64 - 1.5 * x64, 1e-12):
            fail("float64 tensors: wrong values or dtype", "out = lambda_y * y + lambda_x * x")

    def separate() -> None:
        a, b = make(), make()
        shared = {id(p) for p in a.parameters()} & {id(p) for p in b.parameters()}
        if shared:
            fail(
                "two AdaptiveWeights() share their parameters",
                "create the nn.Parameter in __init__ (self.lambda_y = nn.Parameter(...)), not "
                "once at module level",
            )

    if weighted_output is not None:
        s.own_work(
            "weighted_output",
            lambda: call(weighted_output, "weighted_output", y.clone(), x.clone(), 0.5, 2.0),
            {"DistillWeightBlock.forward": DistillWeightBlock.forward},
            "weighted_output",
        )
        s.check("weighted_output with float weights", floats, "weighted_output")
        s.check("tensor weights: values, and gradients reach both", tensor_scalars)
        s.check("per-channel weights (1, C, 1, 1) broadcast", per_channel, "weighted_output")
        s.check(
            "the same as the kit's DistillWeightBlock (per-channel weights)",
            kit_block,
            "weighted_output",
        )
        s.check("y and x are not modified", inputs_kept, "weighted_output")
        s.check("float64 tensors", float64, "weighted_output", hidden=True)
    if AdaptiveWeights is not None:
        s.check("AdaptiveWeights registers two scalar parameters", registered, "AdaptiveWeights")
        s.check("both start at 1 (AWSRN)", start_at_one, "AdaptiveWeights")
        s.check("forward(y, x) = lambda_y * y + lambda_x * x", forward_uses_params, "forward")
        s.check("after backward() both parameters have their gradient", backward, "forward")
        s.check("two modules have their own parameters", separate, "AdaptiveWeights", hidden=True)
    return s.finish()
