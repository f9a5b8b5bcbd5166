"""Checkers for the exercise notebooks in ``notebooks/exercises``.

Every ``check_*`` function takes the student's function(s), runs a fixed list of deterministic
sub-checks against the kit's own implementation (fixed seeds, local random generators, so the
notebook's random state is left alone), and prints one line per sub-check::

    PASS: zero fill at the borders, no wrap-around
    FAIL: zero fill at the borders, no wrap-around: 24 border values are not 0. Hint: ...

It returns a :class:`CheckResult` when everything passed. Otherwise it raises at the end:

* ``NotImplementedError`` when every failure came from a function that still raises
  ``NotImplementedError`` (the stub of the student version), so the check cell of an untouched
  exercise fails with exactly that error;
* ``AssertionError("N of M checks failed")`` in every other case.

Either exception carries the result as ``err.result``. A student function that raises, or
returns something of the wrong type or shape, is reported as a FAIL line; the checker itself
never crashes on it. PASS lines contain no measured numbers, so the printed text is identical on
every machine (nbval compares it in the solution notebooks).
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "CheckResult",
    "check_adaptive_weights",
    "check_channel_shift",
    "check_cubic",
    "check_distill_step",
    "check_fuse_acb",
    "check_lmswn_rf",
    "check_psnr_y",
    "check_receptive_field",
]

NOT_IMPLEMENTED = "not implemented yet: write the function body"


# --------------------------------------------------------------------------------------------
# The machinery shared by all checkers
# --------------------------------------------------------------------------------------------


@dataclass
class CheckResult:
    """What a checker found: ``passed`` and the printed ``lines`` (one per sub-check)."""

    name: str
    passed: bool
    lines: list[str]
    n_checks: int
    n_failed: int
    not_implemented: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        if self.passed:
            return f"{self.name}: all {self.n_checks} checks passed"
        return f"{self.name}: {self.n_failed} of {self.n_checks} checks failed"


class _Fail(Exception):
    """A sub-check failed: ``detail`` says what was wrong, ``hint`` how to fix it."""

    def __init__(self, detail: str, hint: str | None = None) -> None:
        super().__init__(detail)
        self.detail, self.hint = detail, hint


def _fail(detail: str, hint: str | None = None) -> NoReturn:
    raise _Fail(detail, hint)


def _short(err: BaseException, limit: int = 160) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _exception_hint(err: BaseException) -> str | None:
    text = str(err)
    if "leaf Variable" in text or ("requires grad" in text and "in-place" in text):
        return (
            "you are writing into a tensor that requires grad: wrap the body in "
            "`with torch.no_grad():`"
        )
    if "ZeroDivisionError" in type(err).__name__ or "division by zero" in text:
        return "when the MSE is 0 (identical images) return float('inf')"
    return None


def _stub_name(err: BaseException, default: str) -> str:
    """The function that raised ``err``: the innermost frame of its traceback."""
    tb, frame = err.__traceback__, None
    while tb is not None:
        frame, tb = tb.tb_frame, tb.tb_next
    if frame is None or frame.f_code.co_name.startswith("<"):
        return default
    name = frame.f_code.co_name
    owner = frame.f_locals.get("self")
    if owner is not None and isinstance(owner, nn.Module):
        return f"{type(owner).__name__}.{name}"
    return name


def _call(fn: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call the student's ``fn``; any exception but NotImplementedError becomes a FAIL."""
    if not callable(fn):
        _fail(f"{name} is not callable (got {type(fn).__name__})", f"pass the function {name}")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as err:
        _fail(f"{name} raised {type(err).__name__}: {_short(err)}", _exception_hint(err))


@contextmanager
def _isolated() -> Iterator[None]:
    """Run a sub-check without warnings or numpy floating-point messages, and give the notebook
    its random state back afterwards (the student's code may draw random numbers, e.g. when it
    creates an ``nn.Conv2d``)."""
    np_state = np.random.get_state()
    with (
        warnings.catch_warnings(),
        np.errstate(all="ignore"),
        torch.random.fork_rng(devices=[]),
    ):
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            np.random.set_state(np_state)


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch's global generator inside, and give the notebook its own state back after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class _Session:
    """Runs the sub-checks of one checker, prints their lines, and decides what to raise."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self.n_checks = self.n_failed = 0
        self.missing: dict[str, int] = {}  # stub name -> further failed checks that needed it

    def _emit(self, line: str) -> None:
        print(line)
        self.lines.append(line)

    def check(self, label: str, fn: Callable[[], str | None], who: str | None = None) -> None:
        """Run one sub-check; ``fn`` returns None (or a short note) or raises ``_Fail``."""
        self.n_checks += 1
        try:
            with _isolated():
                note = fn()
        except _Fail as f:
            self.n_failed += 1
            hint = f" Hint: {f.hint}" if f.hint else ""
            self._emit(f"FAIL: {label}: {f.detail.rstrip('.')}.{hint}")
        except NotImplementedError as err:
            self.n_failed += 1
            stub = _stub_name(err, who or self.name)
            if stub in self.missing:
                self.missing[stub] += 1
            else:
                self.missing[stub] = 0
                self._emit(f"FAIL: {label}: {stub} is {NOT_IMPLEMENTED}.")
        except Exception as err:  # the checker met something it did not expect: still a FAIL
            self.n_failed += 1
            self._emit(
                f"FAIL: {label}: could not check the result ({type(err).__name__}: {_short(err)})."
            )
        else:
            self._emit(f"PASS: {label}" + (f" ({note})" if note else ""))

    def finish(self) -> CheckResult:
        for who, extra in self.missing.items():
            if extra:
                self._emit(f"      ({extra} more check{'s' * (extra > 1)} also need {who})")
        result = CheckResult(
            self.name,
            self.n_failed == 0,
            list(self.lines),
            self.n_checks,
            self.n_failed,
            list(self.missing),
        )
        if result.passed:
            return result
        summary = f"{self.n_failed} of {self.n_checks} checks failed"
        err: Exception
        if self.n_failed == sum(1 + extra for extra in self.missing.values()):
            err = NotImplementedError(f"{', '.join(self.missing)}: {NOT_IMPLEMENTED} ({summary})")
        else:
            err = AssertionError(summary)
        err.result = result  # type: ignore[attr-defined]
        raise err


def _need_any(name: str, **functions: Any) -> None:
    if all(f is None for f in functions.values()):
        raise TypeError(f"{name}() needs at least one of: {', '.join(functions)}")


# ---- result validation ----------------------------------------------------------------------


def _tensor(out: Any, shape: Sequence[int] | None, what: str) -> Tensor:
    if not torch.is_tensor(out):
        _fail(f"{what} returned {type(out).__name__}, expected a torch.Tensor", "return a tensor")
    if shape is not None and tuple(out.shape) != tuple(shape):
        _fail(
            f"{what} returned shape {tuple(out.shape)}, expected {tuple(shape)}",
            "check which dimension you slice or concatenate; the batch and spatial size stay",
        )
    return out.detach()


def _array(out: Any, what: str) -> np.ndarray:
    if torch.is_tensor(out):
        out = out.detach().cpu().numpy()
    if not isinstance(out, np.ndarray):
        _fail(f"{what} returned {type(out).__name__}, expected a numpy array", "return an array")
    return out


def _number(out: Any, what: str) -> float:
    if torch.is_tensor(out) and out.numel() == 1:
        out = out.item()
    if isinstance(out, np.ndarray) and out.size == 1:
        out = out.item()
    if isinstance(out, bool) or not isinstance(out, numbers.Real):
        _fail(f"{what} returned {type(out).__name__}, expected a number", "return a number")
    return float(out)


def _close(a: Tensor, b: Tensor, atol: float, rtol: float = 0.0) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), rtol, atol))


# --------------------------------------------------------------------------------------------
# 01 channel shift (SAFDNet claim S3)
# --------------------------------------------------------------------------------------------

_DIRS = ("left", "right", "up", "down")
_ROLLS = ((-1, -1), (1, -1), (-1, -2), (1, -2))  # torch.roll (shift, dim) for the same four


def check_channel_shift(channel_shift: Callable) -> CheckResult:
    """Check ``channel_shift(x, ratio, px)`` against ``sr_kit.ops.channel_shift``."""
    from sr_kit.ops import channel_shift as ref

    s = _Session("check_channel_shift")
    name = "channel_shift"

    def run(x: Tensor, ratio: float, px: int) -> Tensor:
        return _tensor(_call(channel_shift, name, x.clone(), ratio, px), x.shape, name)

    def counting(shape: tuple[int, ...]) -> Tensor:  # 1, 2, 3, ...: every value distinct, > 0
        return torch.arange(1, math.prod(shape) + 1, dtype=torch.float32).reshape(shape)

    def new_tensor() -> None:
        x = torch.randn(1, 12, 5, 6, generator=torch.Generator().manual_seed(0))
        keep = x.clone()
        out = _tensor(_call(channel_shift, name, x, 1 / 3, 1), x.shape, name)
        if out.dtype != x.dtype:
            _fail(f"returned dtype {out.dtype}, expected {x.dtype}", "use torch.zeros_like(x)")
        if not torch.equal(x, keep):
            _fail(
                "the input tensor x was changed",
                "start from x.clone() (or torch.zeros_like(x)) and write into the copy: "
                "the caller still needs x",
            )

    def moves(plane: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """One (H, W) plane moved one pixel in each direction: zero-filled, and rolled."""
        filled = ref(plane[None, None].repeat(1, 4, 1, 1), 1.0, 1)[0]
        rolled = [torch.roll(plane, shift, dim) for shift, dim in _ROLLS]
        return list(filled), rolled

    def no_wrap() -> None:
        x = counting((1, 4, 5, 6))
        out, want = run(x, 1.0, 1), ref(x, 1.0, 1)
        for c in range(4):
            if any(torch.equal(out[0, c], r) for r in moves(x[0, c])[1]):
                _fail(
                    f"channel {c}: values wrapped around to the opposite border",
                    "use slicing into a zero tensor, not torch.roll",
                )
            zeros, expected = int((out[0, c] == 0).sum()), int((want[0, c] == 0).sum())
            if zeros != expected:
                _fail(
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
            _fail(
                f"channel {c} should move {_DIRS[c]}, {got}",
                "the groups from shift_groups(C, ratio) go left, right, up, down in this order; "
                "'left' means out[..., j] = x[..., j + px]",
            )

    def untouched() -> None:
        x = torch.randn(1, 12, 5, 6, generator=torch.Generator().manual_seed(1))
        out = run(x, 1 / 3, 1)
        if not torch.equal(out[:, 4:], x[:, 4:]):
            _fail(
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
            out, want = run(x, ratio, px), ref(x, ratio, px)
            if torch.equal(out, want):
                continue
            hint = "use shift_groups(C, ratio) for the group sizes and slice by px"
            if px > 1 and torch.equal(out, ref(x, ratio, 1)):
                hint = "shift by px pixels, not by 1"
            _fail(
                f"shape {shape}, ratio {ratio:.3g}, px {px}: "
                f"{int((out != want).sum())} values differ from the kit",
                hint,
            )

    def beyond_image() -> None:
        x = counting((1, 4, 3, 3))
        out = run(x, 1.0, 4)
        if out.abs().sum() != 0:
            _fail(
                "with px = 4 on a 3x3 image every shifted channel must be all zeros",
                "when px >= W the slice end W - px is negative and counts from the end: "
                "use x[..., px:] / x[..., :-px] style slices, or clamp with max(W - px, 0)",
            )

    s.check("returns a new tensor of the same shape and dtype; x unchanged", new_tensor, name)
    s.check("zero fill at the borders, no wrap-around", no_wrap, name)
    s.check("four groups in the order left, right, up, down", directions, name)
    s.check("channels beyond the shifted share are left untouched", untouched, name)
    s.check(f"equals sr_kit.ops.channel_shift on {len(cases)} shapes/ratios/px", matches_kit, name)
    s.check("px larger than the image shifts everything out (all zeros)", beyond_image, name)
    return s.finish()


# --------------------------------------------------------------------------------------------
# 02 fusing the asymmetric convolution block (LMSWN claim L2)
# --------------------------------------------------------------------------------------------


def _acb(cin: int, cout: int, seed: int, branch_bias: bool) -> tuple[nn.Conv2d, ...]:
    with _seeded(seed):
        sq = nn.Conv2d(cin, cout, 3, padding=1)
        hor = nn.Conv2d(cin, cout, (1, 3), padding=(0, 1), bias=branch_bias)
        ver = nn.Conv2d(cin, cout, (3, 1), padding=(1, 0), bias=branch_bias)
    return sq, hor, ver


def _acb_forward(sq: nn.Conv2d, hor: nn.Conv2d, ver: nn.Conv2d, x: Tensor) -> Tensor:
    with torch.no_grad():
        return sq(x) + hor(x) + ver(x)


def _fusion_hint(fused: nn.Conv2d, sq: nn.Conv2d, hor: nn.Conv2d, ver: nn.Conv2d) -> str:
    """Why a fused conv is wrong: compare its kernel and bias with the right ones."""
    w = fused.weight.detach()
    right = sq.weight.detach().clone()
    right[:, :, 1:2, :] += hor.weight.detach()
    right[:, :, :, 1:2] += ver.weight.detach()
    swapped = sq.weight.detach().clone()
    swapped[:, :, :, 1] += hor.weight.detach()[:, :, 0, :]
    swapped[:, :, 1, :] += ver.weight.detach()[:, :, :, 0]
    bias_parts = [c.bias.detach() for c in (sq, hor, ver) if c.bias is not None]
    right_b = torch.stack(bias_parts).sum(0)
    if w.shape != right.shape:
        return f"the fused kernel has shape {tuple(w.shape)}, expected {tuple(right.shape)}"
    if _close(w, swapped, 1e-6):
        return (
            "hor (1x3) and ver (3x1) are swapped: the 1x3 kernel is one row, so it adds into the "
            "middle row weight[:, :, 1:2, :]; the 3x1 kernel into the middle column "
            "weight[:, :, :, 1:2]"
        )
    if _close(w, sq.weight.detach(), 1e-6):
        return "the 1x3 and 3x1 kernels were not added into the 3x3 kernel"
    if not _close(w, right, 1e-6):
        return (
            "the 1x3 kernel adds into the middle row weight[:, :, 1:2, :] and the 3x1 kernel "
            "into the middle column weight[:, :, :, 1:2] of the 3x3 kernel"
        )
    if fused.bias is None:
        return "the fused conv needs a bias: nn.Conv2d(..., bias=True), set to the summed biases"
    b = fused.bias.detach()
    if _close(b, sq.bias.detach(), 1e-6) and len(bias_parts) > 1:
        return "you kept only square.bias: the biases of hor and ver add to it"
    if not _close(b, right_b, 1e-6):
        return "the fused bias is square.bias + hor.bias + ver.bias (a branch without bias adds 0)"
    return "check the padding (1) and stride (1) of the returned conv"


def check_fuse_acb(fuse_acb: Callable) -> CheckResult:
    """Check ``fuse_acb(square, hor, ver) -> nn.Conv2d`` (ACNet fusion, as ``AsymConv.fuse``)."""
    from sr_kit.blocks import AsymConv

    s = _Session("check_fuse_acb")
    name = "fuse_acb"

    def fused_of(sq: nn.Conv2d, hor: nn.Conv2d, ver: nn.Conv2d) -> nn.Conv2d:
        fused = _call(fuse_acb, name, sq, hor, ver)
        if not isinstance(fused, nn.Conv2d):
            _fail(
                f"returned {type(fused).__name__}, expected an nn.Conv2d",
                "build one nn.Conv2d(in, out, 3, padding=1) and copy the summed kernels into it",
            )
        return fused

    def equivalent(sq: nn.Conv2d, hor: nn.Conv2d, ver: nn.Conv2d, x: Tensor, want: Tensor) -> None:
        # copies: a fusion that writes into its inputs must not spoil the diagnosis below
        fused = fused_of(*(copy.deepcopy(c) for c in (sq, hor, ver)))
        with torch.no_grad():
            out = _tensor(_call(fused, "the returned conv", x), want.shape, "the returned conv")
        if not _close(out, want, 1e-5, 1e-5):
            diff = float((out.double() - want.double()).abs().max())
            _fail(f"max |difference| {diff:.3g} > 1e-5", _fusion_hint(fused, sq, hor, ver))

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
        want = ((3, 3), 4, 6, (1, 1), (1, 1), 1)
        if got != want:
            _fail(
                f"kernel, in/out channels, stride, dilation, groups = {got}, expected {want}",
                "nn.Conv2d(square.in_channels, square.out_channels, 3, padding=1)",
            )
        if fused.padding not in ((1, 1), "same"):
            _fail(f"padding {fused.padding}, expected 1", "padding=1 keeps the spatial size")
        if fused.bias is None:
            _fail("the returned conv has no bias", "keep bias=True and copy square.bias into it")

    def kit_acb() -> None:
        with _seeded(11):
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
            _fail(
                f"{', '.join(changed)} changed during fusion",
                "build a new nn.Conv2d and copy into it under torch.no_grad(); adding in place "
                "into square.weight changes the model you are still training",
            )
        if any(fused is c for c in convs):
            _fail("returned one of its inputs", "return a new nn.Conv2d")

    s.check("returns a 3x3 nn.Conv2d (padding 1, stride 1, with bias)", is_conv3, name)
    s.check("same output as the kit's AsymConv (branches without bias) within 1e-5", kit_acb, name)
    s.check("same output when hor and ver have biases too (ACNet after BN folding)", biased, name)
    s.check("same output with different in/out channels (3 -> 8)", other_widths, name)
    s.check("square, hor and ver are left unchanged; a new conv is returned", no_side_effects, name)
    return s.finish()


# --------------------------------------------------------------------------------------------
# 03 split + 1x1 distillation (LMSWN claim L3)
# --------------------------------------------------------------------------------------------


def _integer(out: Any, what: str) -> int:
    value = _number(out, what)
    if value != int(value):
        _fail(f"{what} returned {value}, expected a whole number", "parameters are counted")
    return int(value)


def check_distill_step(
    distill_step: Callable | None = None,
    params_split1x1: Callable | None = None,
    params_fdc: Callable | None = None,
) -> CheckResult:
    """Check ``distill_step(x, conv1x1, d)`` against ``DistillWeightBlock`` and the two
    parameter formulas ``params_split1x1(C)`` and ``params_fdc(C)`` against the kit's counts.
    Pass the functions you have written; the others are skipped."""
    from sr_kit.blocks import DistillWeightBlock
    from sr_kit.blocks.distill import NEG_SLOPE

    _need_any(
        "check_distill_step",
        distill_step=distill_step,
        params_split1x1=params_split1x1,
        params_fdc=params_fdc,
    )
    s = _Session("check_distill_step")

    def block(channels: int, distill: str = "split1x1") -> DistillWeightBlock:
        with _seeded(20 + channels):
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
            if _close(out, value, 1e-6):
                return hint
        return "D = LeakyReLU_0.05(conv1x1(x[:, :d])): split first, then the 1x1, then the act"

    def compare(blk: DistillWeightBlock, k: int, x: Tensor) -> None:
        d, conv = blk.d, blk.distill[k]
        with torch.no_grad():
            want = blk._distill(k, x)  # the block's own distillation step
            out = _call(distill_step, "distill_step", x, conv, d)
        out = _tensor(out, want.shape, "distill_step")
        if not _close(out, want, 1e-6, 1e-5):
            _fail(
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
            _call(distill_step, "distill_step", x, blk.distill[0], blk.d)
        if not torch.equal(x, keep):
            _fail(
                "x was changed",
                "an in-place activation on a slice of x (leaky_relu_, inplace=True) writes into "
                "x: apply it to the conv's output",
            )

    def count(blk: DistillWeightBlock) -> int:
        return sum(p.numel() for p in blk.distill[0].parameters())

    widths = (48, 52, 64)

    def formula(fn: Callable, fn_name: str, kind: str) -> str:
        wrong_hint = {
            "split1x1": "the split itself is free: only the 1x1 conv d -> d (d = C // 4) has "
            "parameters, d * d weights plus d biases",
            "fdc": "RFDN's 1x1 maps all C channels to C // 2: C * (C // 2) weights plus "
            "C // 2 biases",
        }[kind]
        for c in widths:
            want = count(block(c, kind))
            got = _integer(_call(fn, fn_name, c), fn_name)
            if got != want:
                d = c // 4 if kind == "split1x1" else c // 2
                cin = d if kind == "split1x1" else c
                hint = wrong_hint
                if got == cin * d:
                    hint = "a 1x1 conv from a to b channels has a * b weights plus b biases"
                _fail(f"{fn_name}({c}) = {got}, the kit counts {want}", hint)
        return ""

    def split_counts() -> str:
        formula(params_split1x1, "params_split1x1", "split1x1")
        return f"{count(block(48)):,} at C = 48"

    def fdc_counts() -> str:
        formula(params_fdc, "params_fdc", "fdc")
        ours, theirs = count(block(48)), count(block(48, "fdc"))
        return f"{theirs:,} at C = 48: {theirs / ours:.1f}x the split + 1x1, claim L3's saving"

    if distill_step is not None:
        s.check("distill_step equals DistillWeightBlock(48)'s first stage", first_stage)
        s.check("all three stages, at C = 48 and C = 64", all_stages, "distill_step")
        s.check("x is left unchanged", input_kept, "distill_step")
    if params_split1x1 is not None:
        s.check("params_split1x1(C) for C = 48, 52, 64", split_counts, "params_split1x1")
    if params_fdc is not None:
        s.check("params_fdc(C) for C = 48, 52, 64", fdc_counts, "params_fdc")
    return s.finish()


# --------------------------------------------------------------------------------------------
# 04 two adaptive weights (LMSWN claim L4)
# --------------------------------------------------------------------------------------------


def check_adaptive_weights(
    weighted_output: Callable | None = None, AdaptiveWeights: type | None = None
) -> CheckResult:
    """Check ``weighted_output(y, x, lambda_y, lambda_x)`` and the module ``AdaptiveWeights``
    (two learnable scalars ``lambda_y``, ``lambda_x`` initialised to 1; ``forward(y, x)``)."""
    _need_any(
        "check_adaptive_weights", weighted_output=weighted_output, AdaptiveWeights=AdaptiveWeights
    )
    s = _Session("check_adaptive_weights")
    gen = torch.Generator().manual_seed(30)
    y, x, g = (torch.randn(2, 4, 3, 3, generator=gen) for _ in range(3))

    def value_hint(out: Tensor, ly: Any, lx: Any) -> str:
        if _close(out, lx * y + ly * x, 1e-6):
            return "lambda_y weights y (the attention branch), lambda_x weights x (the identity)"
        if _close(out, y + x, 1e-6):
            return "multiply each branch by its weight"
        return "out = lambda_y * y + lambda_x * x"

    def wo(*args: Any) -> Tensor:
        return _tensor(_call(weighted_output, "weighted_output", *args), y.shape, "weighted_output")

    def floats() -> None:
        out = wo(y.clone(), x.clone(), 0.5, 2.0)
        if not _close(out, 0.5 * y + 2.0 * x, 1e-6):
            _fail("wrong values for lambda_y = 0.5, lambda_x = 2", value_hint(out, 0.5, 2.0))

    def grads(ly: Tensor, lx: Tensor, what: str) -> None:
        for p, branch, pname in ((ly, y, "lambda_y"), (lx, x, "lambda_x")):
            if p.grad is None:
                _fail(
                    f"{pname} got no gradient{what}",
                    "keep the computation in torch: float(lambda), .item() or .detach() cut "
                    "the graph, and plain tensors (not nn.Parameter) are not learnable",
                )
            want = (branch * g).sum().reshape(p.shape) if p.numel() == 1 else None
            if want is not None and not _close(p.grad, want, 1e-5, 1e-5):
                _fail(f"{pname} has a wrong gradient{what}", "out = lambda_y * y + lambda_x * x")

    def tensor_scalars() -> None:
        ly = torch.tensor([0.5], requires_grad=True)
        lx = torch.tensor([2.0], requires_grad=True)
        out_full = _call(weighted_output, "weighted_output", y.clone(), x.clone(), ly, lx)
        out = _tensor(out_full, y.shape, "weighted_output")
        if not _close(out, 0.5 * y + 2.0 * x, 1e-6):
            _fail("wrong values for tensor weights of shape (1,)", value_hint(out, 0.5, 2.0))
        if not torch.is_tensor(out_full) or not out_full.requires_grad:
            _fail(
                "the output does not depend on lambda_y and lambda_x through autograd",
                "use the tensors themselves, not float(lambda) or lambda.item()",
            )
        (out_full * g).sum().backward()
        grads(ly, lx, "")

    def per_channel() -> None:
        ly = torch.linspace(0.5, 2.0, 4).reshape(1, 4, 1, 1)
        lx = torch.linspace(1.5, -1.0, 4).reshape(1, 4, 1, 1)
        out = wo(y.clone(), x.clone(), ly, lx)
        if not _close(out, ly * y + lx * x, 1e-6):
            _fail("wrong values for weights of shape (1, C, 1, 1)", value_hint(out, ly, lx))

    def inputs_kept() -> None:
        yc, xc = y.clone(), x.clone()
        _call(weighted_output, "weighted_output", yc, xc, 0.5, 2.0)
        if not (torch.equal(yc, y) and torch.equal(xc, x)):
            _fail(
                "y or x was changed in place",
                "write lambda_y * y + lambda_x * x; mul_ and += overwrite the caller's tensors",
            )

    def make() -> nn.Module:
        m = _call(AdaptiveWeights, "AdaptiveWeights")
        if not isinstance(m, nn.Module):
            _fail(f"AdaptiveWeights() gave {type(m).__name__}", "subclass nn.Module")
        return m

    def registered() -> None:
        m = make()
        params = dict(m.named_parameters())
        if len(params) != 2 or sum(p.numel() for p in params.values()) != 2:
            hint = "each is one scalar: nn.Parameter(torch.ones(1))"
            if not params:
                hint = (
                    "wrap them in nn.Parameter: a plain tensor attribute is not registered, so "
                    "the optimizer never updates it"
                )
            sizes = {k: p.numel() for k, p in params.items()}
            _fail(f"registered parameters {sizes}, expected two scalars", hint)
        if set(params) != {"lambda_y", "lambda_x"}:
            _fail(
                f"parameters are named {sorted(params)}",
                "call them self.lambda_y and self.lambda_x, as the kit does",
            )

    def start_at_one() -> None:
        m = make()
        for pname in ("lambda_y", "lambda_x"):
            p = getattr(m, pname, None)
            if not isinstance(p, torch.Tensor) or not torch.all(p.detach() == 1):
                _fail(
                    f"{pname} does not start at 1",
                    "AWSRN starts both at 1, so a new block is a plain residual y + x",
                )

    def forward_uses_params() -> None:
        m = make()
        at_init = _tensor(_call(m, "AdaptiveWeights.forward", y, x), y.shape, "forward")
        if not _close(at_init, y + x, 1e-6):
            _fail("forward(y, x) at initialisation is not y + x", "return ly * y + lx * x")
        with torch.no_grad():
            m.lambda_y.fill_(0.5)
            m.lambda_x.fill_(2.0)
        out = _tensor(_call(m, "AdaptiveWeights.forward", y, x), y.shape, "forward")
        if not _close(out, 0.5 * y + 2.0 * x, 1e-6):
            hint = value_hint(out, 0.5, 2.0)
            if _close(out, y + x, 1e-6):
                hint = "forward must use self.lambda_y and self.lambda_x, not constants"
            _fail("with lambda_y = 0.5 and lambda_x = 2 forward gives wrong values", hint)

    def backward() -> None:
        m = make()
        out = _call(m, "AdaptiveWeights.forward", y, x)
        _tensor(out, y.shape, "forward")
        if not out.requires_grad:
            _fail("the output does not depend on the parameters", "use self.lambda_y directly")
        (out * g).sum().backward()
        grads(m.lambda_y, m.lambda_x, " after backward()")

    if weighted_output is not None:
        s.check("weighted_output with float weights", floats, "weighted_output")
        s.check("tensor weights: values, and gradients reach both", tensor_scalars)
        s.check("per-channel weights (1, C, 1, 1) broadcast", per_channel, "weighted_output")
        s.check("y and x are not modified", inputs_kept, "weighted_output")
    if AdaptiveWeights is not None:
        s.check("AdaptiveWeights registers two scalar parameters", registered, "AdaptiveWeights")
        s.check("both start at 1 (AWSRN)", start_at_one, "AdaptiveWeights")
        s.check("forward(y, x) = lambda_y * y + lambda_x * x", forward_uses_params, "forward")
        s.check("after backward() both parameters have their gradient", backward, "forward")
    return s.finish()


# --------------------------------------------------------------------------------------------
# 05 PSNR on Y with a shaved border (the evaluation protocol of the published tables)
# --------------------------------------------------------------------------------------------


def _psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak**2 / mse)


def _same_db(a: float, b: float, tol: float = 1e-9) -> bool:
    return a == b or abs(a - b) <= tol


def check_psnr_y(
    rgb_to_y_bt601: Callable | None = None, psnr_y_shaved: Callable | None = None
) -> CheckResult:
    """Check ``rgb_to_y_bt601(img)`` and ``psnr_y_shaved(sr, hr, scale)`` against
    ``sr_kit.metrics.rgb_to_y`` and ``psnr_y`` (within 1e-9)."""
    from sr_kit.metrics import psnr_y, rgb_to_y

    _need_any("check_psnr_y", rgb_to_y_bt601=rgb_to_y_bt601, psnr_y_shaved=psnr_y_shaved)
    s = _Session("check_psnr_y")
    rng = np.random.default_rng(50)
    rgb = rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
    noisy = np.clip(rgb.astype(np.int16) + rng.integers(-6, 7, rgb.shape), 0, 255).astype(np.uint8)
    gray = rng.integers(0, 256, (21, 19), dtype=np.uint8)
    # differences up to 40 grey levels: their squares overflow uint8, as a wrap-around would
    gray_sr = np.clip(gray.astype(np.int16) + rng.integers(-40, 41, gray.shape), 0, 255)
    gray_sr = gray_sr.astype(np.uint8)

    def y_of(img: np.ndarray) -> np.ndarray:
        out = _array(_call(rgb_to_y_bt601, "rgb_to_y_bt601", img.copy()), "rgb_to_y_bt601")
        if out.shape != img.shape[:2]:
            _fail(
                f"returned shape {out.shape}, expected {img.shape[:2]}",
                "one Y value per pixel: combine the three channels of the last axis",
            )
        return out

    def y_hint(out: np.ndarray, img: np.ndarray) -> str:
        f = img.astype(np.float64)
        variants = {
            "those are the full-range (JPEG) weights; the SR protocol uses BT.601 studio swing: "
            "Y = (65.481 R + 128.553 G + 24.966 B) / 255 + 16": f @ [0.299, 0.587, 0.114],
            "add 16: studio-swing Y lies in [16, 235]": f @ [65.481, 128.553, 24.966] / 255,
            "the weights 65.481, 128.553, 24.966 are for RGB in [0, 1]: divide by 255": f
            @ [65.481, 128.553, 24.966]
            + 16,
            "the channels are R, G, B in this order (OpenCV loads B, G, R)": f[..., ::-1]
            @ [65.481, 128.553, 24.966]
            / 255
            + 16,
        }
        for hint, value in variants.items():
            if np.allclose(out, value, atol=1e-6):
                return hint
        if np.allclose(out, np.round(rgb_to_y(img)), atol=1e-9):
            return "do not round: PSNR needs the fractional Y values (return float64)"
        return "Y = (65.481 R + 128.553 G + 24.966 B) / 255 + 16, on RGB as floats"

    def rgb_case() -> None:
        out = y_of(rgb)
        if not np.issubdtype(out.dtype, np.floating):
            _fail(f"returned dtype {out.dtype}", "return floats (float64), not rounded integers")
        if not np.allclose(out, rgb_to_y(rgb), rtol=0, atol=1e-9):
            _fail("differs from sr_kit.metrics.rgb_to_y by more than 1e-9", y_hint(out, rgb))

    def extremes() -> None:
        black, white = np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 255, np.uint8)
        lo, hi = y_of(black).astype(np.float64), y_of(white).astype(np.float64)
        if not (np.allclose(lo, 16, atol=1e-9) and np.allclose(hi, 235, atol=1e-9)):
            _fail(
                f"black -> {lo.flat[0]:.4g}, white -> {hi.flat[0]:.4g}",
                "Y = (65.481 R + 128.553 G + 24.966 B) / 255 + 16",
            )

    def grayscale_y() -> None:
        out = y_of(gray)
        if not np.issubdtype(out.dtype, np.floating):
            _fail(
                f"a (H, W) image came back as {out.dtype}",
                "a 2-D image is Y already: return img.astype(np.float64); a uint8 result wraps "
                "around when you subtract (3 - 5 = 254)",
            )
        if not np.array_equal(out, gray.astype(np.float64)):
            _fail("a (H, W) image is Y already and must come back unchanged (as float)")

    def input_kept() -> None:
        img = rgb.copy()
        _call(rgb_to_y_bt601, "rgb_to_y_bt601", img)
        if not np.array_equal(img, rgb):
            _fail("the input image was changed", "compute on a float copy: img.astype(float)")

    def psnr_value(sr: np.ndarray, hr: np.ndarray, scale: int) -> float:
        out = _call(psnr_y_shaved, "psnr_y_shaved", sr.copy(), hr.copy(), scale)
        return _number(out, "psnr_y_shaved")

    def psnr_hint(got: float, sr: np.ndarray, hr: np.ndarray, b: int) -> str:
        ys, yh = rgb_to_y(sr), rgb_to_y(hr)
        cut = (slice(b, -b), slice(b, -b))
        one_side = (slice(b, None), slice(b, None))
        a8, b8 = sr[cut].astype(np.uint8), hr[cut].astype(np.uint8)
        variants = {
            "did you convert to float before subtracting? uint8 wraps around (3 - 5 = 254)": [
                _psnr(a8 - b8, 0),
                10 * math.log10(255**2 / max(np.mean((a8 - b8) ** 2), 1e-300)),
            ],
            "shave `scale` pixels from every side before the MSE: Y[s:-s, s:-s]": [_psnr(ys, yh)],
            "shave all four sides, not only the top and left": [_psnr(ys[one_side], yh[one_side])],
            "compute PSNR on the Y channel only": [_psnr(sr[cut], hr[cut])],
            "the peak value is 255 for 8-bit images": [_psnr(ys[cut], yh[cut], 1.0)],
        }
        for hint, values in variants.items():
            if any(_same_db(got, v, 1e-6) for v in values):
                return hint
        return "PSNR = 10 log10(255² / MSE) on Y (float), after shaving `scale` px per side"

    def compare(sr: np.ndarray, hr: np.ndarray, scale: int) -> None:
        got, want = psnr_value(sr, hr, scale), psnr_y(sr, hr, scale)
        if not _same_db(got, want):
            _fail(
                f"{got:.6f} dB, sr_kit.metrics.psnr_y gives {want:.6f} dB",
                psnr_hint(got, sr, hr, scale),
            )

    def rgb_pair() -> None:
        compare(noisy, rgb, 2)

    def border_ignored() -> None:
        sr = noisy.copy()
        sr[:4], sr[-4:], sr[:, :4], sr[:, -4:] = 0, 255, 255, 0
        compare(sr, rgb, 4)

    def gray_pair() -> None:
        compare(gray_sr, gray, 3)

    def identical() -> None:
        got = psnr_value(rgb, rgb, 4)
        if got != math.inf:
            _fail(f"identical images gave {got}", "when the MSE is 0 return float('inf')")

    if rgb_to_y_bt601 is not None:
        s.check("RGB uint8 -> float Y within 1e-9 of sr_kit.metrics.rgb_to_y", rgb_case)
        s.check("black -> 16 and white -> 235 (studio swing)", extremes, "rgb_to_y_bt601")
        s.check("a grayscale (H, W) image is Y already, returned as float", grayscale_y)
        s.check("the input image is left unchanged", input_kept, "rgb_to_y_bt601")
    if psnr_y_shaved is not None:
        s.check("RGB pair, scale 2: within 1e-9 dB of sr_kit.metrics.psnr_y", rgb_pair)
        s.check("a damaged border inside the shave does not count (scale 4)", border_ignored)
        s.check("grayscale uint8 pair, scale 3 (the uint8 pitfall)", gray_pair, "psnr_y_shaved")
        s.check("identical images give inf", identical, "psnr_y_shaved")
    return s.finish()


# --------------------------------------------------------------------------------------------
# 06 MATLAB's bicubic kernel and its antialiased weights
# --------------------------------------------------------------------------------------------


def _keys(x: Tensor, a: float) -> Tensor:
    ax = x.abs()
    near = ((a + 2) * ax**3 - (a + 3) * ax**2 + 1) * (ax <= 1)
    far = (a * ax**3 - 5 * a * ax**2 + 8 * a * ax - 4 * a) * ((ax > 1) & (ax <= 2))
    return near + far


def check_cubic(
    cubic: Callable | None = None, antialias_weights: Callable | None = None
) -> CheckResult:
    """Check ``cubic(x)`` against ``sr_kit.imresize.cubic`` and ``antialias_weights(j, scale)``
    (the input pixels and weights of output pixel ``j`` when shrinking by ``scale`` < 1)
    against the rows of ``sr_kit.imresize.resize_weights``."""
    from sr_kit.imresize import cubic as ref_cubic
    from sr_kit.imresize import resize_weights

    _need_any("check_cubic", cubic=cubic, antialias_weights=antialias_weights)
    s = _Session("check_cubic")
    grid = torch.linspace(-3, 3, 601, dtype=torch.float64)

    def k(x: Tensor) -> Tensor:
        return _tensor(_call(cubic, "cubic", x.clone()), x.shape, "cubic")

    def cubic_hint(out: Tensor, x: Tensor) -> str:
        if _close(out, _keys(x, -0.75), 1e-9):
            return "a = -0.75 is OpenCV's and PyTorch's choice; MATLAB's imresize uses a = -0.5"
        pos = x >= 0
        if _close(out[pos], ref_cubic(x[pos]), 1e-9):
            return "the kernel is symmetric: compute it on |x|"
        if (out[x.abs() > 2] != 0).any():
            return "the kernel is 0 for |x| > 2"
        return (
            "a = -0.5: 1.5|x|³ - 2.5|x|² + 1 for |x| <= 1, "
            "-0.5|x|³ + 2.5|x|² - 4|x| + 2 for 1 < |x| <= 2, else 0"
        )

    def on_grid() -> None:
        out = k(grid)
        if not _close(out, ref_cubic(grid), 1e-12):
            _fail("differs from sr_kit.imresize.cubic by more than 1e-12", cubic_hint(out, grid))

    def interpolating() -> None:
        pts = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0], dtype=torch.float64)
        out = k(pts)
        want = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
        if not _close(out, want, 1e-12):
            _fail(
                f"cubic at -2, -1, 0, 1, 2 = {[round(float(v), 6) for v in out]}",
                "an interpolating kernel is 1 at 0 and 0 at every other integer",
            )

    def unity() -> None:
        t = torch.linspace(0, 1, 11, dtype=torch.float64)[:-1]
        total = sum(k(t - shift) for shift in range(-3, 4))
        if not _close(total, torch.ones_like(t), 1e-12):
            _fail(
                "sum over k of cubic(t - k) is not 1",
                "with the right coefficients the four taps always sum to 1 (a flat image stays "
                "flat)",
            )

    def shapes() -> None:
        x = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(60)) * 2
        keep = x.clone()
        out = _tensor(_call(cubic, "cubic", x), x.shape, "cubic")
        if out.dtype != x.dtype:
            _fail(f"a float32 input gave {out.dtype}", "build the result from x's own dtype")
        if not torch.equal(x, keep):
            _fail("the input was changed", "x.abs() returns a new tensor; x.abs_() overwrites x")
        if not _close(out, ref_cubic(x), 1e-6):
            _fail("wrong values on a (2, 3, 4) float32 tensor", cubic_hint(out, x))

    def weights_of(j: int, scale: float) -> dict[int, float]:
        out = _call(antialias_weights, "antialias_weights", j, scale)
        if not (isinstance(out, tuple | list) and len(out) == 2):
            _fail(
                f"returned {type(out).__name__}, expected a pair (indices, weights)",
                "return idx, w",
            )
        idx, w = (np.asarray(torch.as_tensor(v).detach().cpu(), np.float64) for v in out)
        if idx.ndim != 1 or idx.shape != w.shape:
            _fail(
                f"indices {idx.shape} and weights {w.shape} should be two 1-D arrays of equal "
                "length",
                "one weight per input pixel",
            )
        taps: dict[int, float] = {}
        for i, wi in zip(idx, w, strict=True):
            if i != int(i):
                _fail(f"index {i} is not a whole number", "indices are input pixel numbers")
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
        _fail(
            f"scale {scale:.4g}, pixel {j}: taps {sorted(got)[:3]}... (n = {len(got)}) vs the "
            f"kit's {sorted(want)[:3]}... (n = {len(want)})",
            hint,
        )

    def sums_to_one() -> None:
        for scale in (1 / 2, 1 / 3):
            total = sum(weights_of(5, scale).values())
            if abs(total - 1) > 1e-12:
                _fail(f"scale {scale:.4g}: the weights sum to {total:.6g}", "normalise them")

    if cubic is not None:
        s.check("cubic equals sr_kit.imresize.cubic on [-3, 3] within 1e-12", on_grid, "cubic")
        s.check("cubic(0) = 1 and cubic(±1) = cubic(±2) = 0", interpolating, "cubic")
        s.check("shifted copies sum to 1 (partition of unity)", unity, "cubic")
        s.check("any shape, keeps the dtype, x unchanged", shapes, "cubic")
    if antialias_weights is not None:
        cases = ((10, 1 / 2, 64), (7, 1 / 3, 60), (6, 1 / 4, 64))
        for j, scale, in_len in cases:
            label = f"x1/{round(1 / scale)}, output pixel {j}: taps and weights of resize_weights"
            s.check(label, lambda j=j, s_=scale, n=in_len: weights_case(j, s_, n))
        s.check("the weights sum to 1", sums_to_one, "antialias_weights")
    return s.finish()


# --------------------------------------------------------------------------------------------
# 07 receptive fields (LMSWN claim L1)
# --------------------------------------------------------------------------------------------


def _rf(kernels: Sequence[int], dilations: Sequence[int], strides: Sequence[int]) -> int:
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


def _conv_stack(kernels: Sequence[int], dilations: Sequence[int], strides: Sequence[int]):
    layers = [
        nn.Conv2d(1, 1, k, stride=st, dilation=d, bias=False)
        for k, d, st in zip(kernels, dilations, strides, strict=True)
    ]
    net = nn.Sequential(*layers).double()
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(1.0)  # all positive: no cancellation, so every path shows up in the gradient
    return net


def check_receptive_field(receptive_field: Callable) -> CheckResult:
    """Check ``receptive_field(kernel_sizes, dilations=None, strides=None)`` on known stacks and
    against the gradient footprint of real conv stacks."""
    s = _Session("check_receptive_field")
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
            got = _integer(_call(receptive_field, name, list(ks), **kwargs), name)
            dd, st = ds or [1] * len(ks), ss or [1] * len(ks)
            want = _rf(ks, dd, st)
            if got != want:
                what = f"kernels {ks}" + "".join(f", {k} {v}" for k, v in kwargs.items())
                _fail(f"{what}: got {got}, expected {want}", rf_hint(got, ks, dd, st))

    def empirical() -> None:
        cases = [
            ([3, 3, 3], [1, 1, 1], [1, 1, 1]),
            ([3, 5], [2, 1], [1, 1]),
            ([3, 3, 3], [1, 1, 1], [2, 1, 1]),
            ([5, 3], [1, 3], [2, 1]),
        ]
        for ks, ds, ss in cases:
            with _seeded(70):  # nn.Conv2d draws its initial weights from the global generator
                stack = _conv_stack(ks, ds, ss)
            measured = _footprint(stack, 1, 41)
            got = _integer(
                _call(receptive_field, name, list(ks), dilations=list(ds), strides=list(ss)), name
            )
            if got != measured:
                _fail(
                    f"kernels {ks}, dilations {ds}, strides {ss}: the gradient of one output "
                    f"pixel reaches {measured} input pixels, your formula says {got}",
                    rf_hint(got, ks, ds, ss),
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
    s.check("agrees with the gradient footprint of 4 real conv stacks", empirical, name)
    return s.finish()


_HEADS = ("pyramid", "dilated", "conv3")


def _lmswn_rf(head: str, stages: int) -> int:
    if head == "conv3":
        return _rf([3] + [3] * stages, [1] * (stages + 1), [1] * (stages + 1))
    widest = ([7], [1]) if head == "pyramid" else ([3], [3])
    ks, ds = widest[0] + [1] + [3] * stages, widest[1] + [1] + [1] * stages
    return _rf(ks, ds, [1] * len(ks))


def check_lmswn_rf(lmswn_rf: Callable) -> CheckResult:
    """Check ``lmswn_rf(head, stages)``: the receptive field of LMSWN's shallow feature extractor
    (``head`` = "pyramid", "dilated" or "conv3") followed by ``stages`` refinement stages of the
    first block, on the formula and through gradients of the kit's own modules."""
    from sr_kit.blocks import AsymConv, PyramidConv
    from sr_kit.blocks.distill import NEG_SLOPE

    s = _Session("check_lmswn_rf")
    name = "lmswn_rf"

    def rf_hint(head: str, stages: int, got: int) -> str:
        if head == "pyramid" and got == 1 + 2 + 4 + 6 + 2 * stages:
            return (
                "the 3x3, 5x5 and 7x7 branches run in parallel: the head sees as far as its "
                "widest branch (7), not as a stack of the three"
            )
        if head == "dilated" and got == 3 + 2 * stages:
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
                got = _integer(_call(lmswn_rf, name, head, stages), name)
                want = _lmswn_rf(head, stages)
                if got != want:
                    _fail(
                        f"lmswn_rf({head!r}, {stages}) = {got}, expected {want}",
                        rf_hint(head, stages, got),
                    )

    def model(head: str, stages: int) -> Callable[[Tensor], Tensor]:
        with _seeded(71):
            psfe = PyramidConv(3, 4, head).double()  # type: ignore[arg-type]
            refine = [AsymConv(4, 4).double() for _ in range(stages)]
        with torch.no_grad():
            for m in (psfe, *refine):
                for p in m.parameters():
                    p.abs_()  # positive weights: nothing cancels in the gradient

        def forward(x: Tensor) -> Tensor:
            h = psfe(x)
            for ac in refine:
                h = nn.functional.leaky_relu(ac(h) + h, NEG_SLOPE)
            return h

        return forward

    def empirical() -> str:
        for head in _HEADS:
            measured = _footprint(model(head, 3), 3, 33)
            got = _integer(_call(lmswn_rf, name, head, 3), name)
            if got != measured:
                _fail(
                    f"{head} head + 3 stages: the gradient reaches {measured} pixels, "
                    f"lmswn_rf says {got}",
                    rf_hint(head, 3, got),
                )
        return f"pyramid {_lmswn_rf('pyramid', 3)} vs conv3 {_lmswn_rf('conv3', 3)} pixels"

    s.check("the head alone: pyramid 7, dilated 7, conv3 3", lambda: values(_HEADS, [0]), name)
    s.check("head + 1, 2, 3 refinement stages", lambda: values(_HEADS, [1, 2, 3]), name)
    s.check("agrees with gradients through the kit's PyramidConv + AsymConv", empirical, name)
    return s.finish()
