"""Classroom exercises: the checkers, the student-version generator and the student notebooks.

The solution notebooks themselves are validated by nbval (``make test`` collects
``notebooks/``); here the student versions are generated into ``tmp_path`` only and run with
nbclient, so a student notebook never lands in ``notebooks/``.
"""

from __future__ import annotations

import ast
import copy
import math
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sr_kit.exercises.ex01_channel_shift as ex01
import sr_kit.exercises.ex02_fuse_asymmetric_conv as ex02
import sr_kit.exercises.ex03_split_distillation as ex03
import sr_kit.exercises.ex04_adaptive_weights as ex04
import sr_kit.exercises.ex05_psnr_y_shave as ex05
import sr_kit.exercises.ex06_matlab_cubic as ex06
import sr_kit.exercises.ex07_receptive_field as ex07
import sr_kit.exercises.ex08_read_an_ablation as ex08
from sr_kit.exercises import checks, harness
from sr_kit.exercises.release import DEFAULT_SRC, main, make_student, release, student_name

REPO = Path(__file__).resolve().parents[1]
EXERCISES = REPO / "notebooks" / "exercises"
SOLUTIONS = sorted(EXERCISES.glob("*_solution.ipynb"))
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
HIDDEN_REGION = (
    "### BEGIN HIDDEN TESTS\n"
    "from sr_kit.exercises.harness import hidden_tests; hidden_tests()\n"
    "### END HIDDEN TESTS\n"
)


def _grader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _read(path: Path):
    return nbformat.read(path, as_version=4)


# ---- the reference answers, taken from the solution notebooks themselves ---------------------


@pytest.fixture(scope="module")
def ref() -> dict[str, object]:
    """Every name defined by the answer cells of the solution notebooks (first code cell run
    too, for its imports; ``setup`` is not called, so threads and seeds stay as they are)."""
    names: dict[str, object] = {}
    with mock.patch("sr_kit.nb.setup", lambda *a, **k: None):
        for path in SOLUTIONS:
            ns: dict[str, object] = {"__name__": f"exercise_{path.stem}"}
            code = [c for c in _read(path).cells if c.cell_type == "code"]
            exec(compile(code[0].source, f"{path.name}[setup]", "exec"), ns)
            for cell in code:
                if _grader(cell).get("solution"):
                    exec(compile(cell.source, f"{path.name}[answer]", "exec"), ns)
            names.update({k: v for k, v in ns.items() if not k.startswith("_")})
    return names


def _run_reference(ref, checker, *names, hidden=None, **kw_names):
    args = [ref[n] for n in names]
    kwargs = {k: ref[v] for k, v in kw_names.items()}
    return checker(*args, **kwargs, hidden=hidden)


REFERENCE_CALLS = [
    (checks.check_channel_shift, ("channel_shift",), {}),
    (checks.check_fuse_acb, ("fuse_acb",), {}),
    (checks.check_distill_step, ("distill_step", "params_split1x1", "params_fdc"), {}),
    (checks.check_adaptive_weights, ("weighted_output", "AdaptiveWeights"), {}),
    (checks.check_psnr_y, ("rgb_to_y_bt601", "psnr_y_shaved"), {}),
    (checks.check_cubic, ("cubic", "antialias_weights"), {}),
    (checks.check_receptive_field, ("receptive_field",), {}),
    (checks.check_lmswn_rf, ("lmswn_rf",), {}),
    (checks.check_ablation_reading, ("diff_ci", "my_reading"), {}),
]


@pytest.mark.parametrize(
    "checker,names,kw", REFERENCE_CALLS, ids=lambda v: getattr(v, "__name__", "")
)
@pytest.mark.parametrize("hidden", [False, True], ids=["visible", "with-hidden"])
def test_reference_solutions_pass(ref, capsys, checker, names, kw, hidden):
    result = _run_reference(ref, checker, *names, **kw, hidden=hidden)
    out = capsys.readouterr().out
    assert result.passed and result.n_failed == 0 and result.n_checks >= 3
    assert out.splitlines() == result.lines
    assert all(line.startswith("PASS: ") for line in result.lines[:-1])
    assert result.points == result.possible > 0
    p = f"{result.possible:g}"
    assert result.lines[-1] == f"Score: {p} / {p} points"
    assert repr(result) == (
        f"{checker.__name__}: all {result.n_checks} checks passed, {p} / {p} points"
    )
    hidden_lines = [line for line in result.lines if line.startswith("PASS: [hidden] ")]
    assert len(hidden_lines) == result.n_hidden
    assert (result.n_hidden > 0) == hidden


def test_checkers_leave_the_random_state_alone(ref):
    torch.manual_seed(123)
    np.random.seed(123)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    trace = sys.gettrace()
    for checker, names, kw in REFERENCE_CALLS:
        _run_reference(ref, checker, *names, **kw, hidden=True)
    assert sys.gettrace() is trace  # the delegation tripwire gives the trace function back
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state[1])


# ---- plausible wrong answers: each fails with a FAIL line and the right hint ------------------


def _shift_with_roll(x, ratio=1 / 3, px=1):
    from sr_kit.ops import shift_groups

    out, start = x.clone(), 0
    moves = ((-px, -1), (px, -1), (-px, -2), (px, -2))
    for n, (shift, dim) in zip(shift_groups(x.shape[1], ratio), moves, strict=True):
        out[:, start : start + n] = torch.roll(x[:, start : start + n], shift, dim)
        start += n
    return out


def _fuse_without_branch_bias(square, hor, ver):
    fused = nn.Conv2d(square.in_channels, square.out_channels, 3, padding=1)
    with torch.no_grad():
        fused.weight.copy_(square.weight)
        fused.weight[:, :, 1:2, :] += hor.weight
        fused.weight[:, :, :, 1:2] += ver.weight
        fused.bias.copy_(square.bias)
    return fused


def _fuse_swapped(square, hor, ver):
    fused = nn.Conv2d(square.in_channels, square.out_channels, 3, padding=1)
    with torch.no_grad():
        fused.weight.copy_(square.weight)
        fused.weight[:, :, :, 1] += hor.weight[:, :, 0, :]
        fused.weight[:, :, 1, :] += ver.weight[:, :, :, 0]
        fused.bias.copy_(square.bias)
    return fused


def _fuse_in_place(square, hor, ver):
    with torch.no_grad():
        square.weight[:, :, 1:2, :] += hor.weight
        square.weight[:, :, :, 1:2] += ver.weight
        for branch in (hor, ver):
            if branch.bias is not None:
                square.bias += branch.bias
    return square


def _fuse_without_no_grad(square, hor, ver):
    fused = nn.Conv2d(square.in_channels, square.out_channels, 3, padding=1)
    fused.weight.copy_(square.weight)
    return fused


def _y_uint8_gray(img):
    img = np.asarray(img)
    if img.ndim == 2:
        return img  # stays uint8: differences wrap around
    return img.astype(np.float64) @ np.array([65.481, 128.553, 24.966]) / 255.0 + 16.0


def _psnr_uint8(sr, hr, scale):
    a = _y_uint8_gray(sr)[scale:-scale, scale:-scale]
    b = _y_uint8_gray(hr)[scale:-scale, scale:-scale]
    mse = float(np.mean((a - b).astype(np.float64) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def _psnr_no_shave(ref):
    def psnr(sr, hr, scale):
        a, b = ref["rgb_to_y_bt601"](sr), ref["rgb_to_y_bt601"](hr)
        mse = float(np.mean((a - b) ** 2))
        return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)

    return psnr


def _cubic_a075(x):
    a, ax = -0.75, x.abs()
    near = ((a + 2) * ax**3 - (a + 3) * ax**2 + 1) * (ax <= 1)
    return near + (a * ax**3 - 5 * a * ax**2 + 8 * a * ax - 4 * a) * ((ax > 1) & (ax <= 2))


def _weights_no_antialias(ref):
    def weights(j, scale):
        c = (j + 0.5) / scale - 0.5
        idx = torch.arange(math.floor(c) - 1, math.floor(c) + 3)
        w = ref["cubic"](c - idx.double())
        return idx, w / w.sum()

    return weights


def _rf_without_dilation(kernel_sizes, dilations=None, strides=None):
    rf, jump = 1, 1
    for k, s in zip(kernel_sizes, strides or [1] * len(kernel_sizes), strict=True):
        rf += (k - 1) * jump
        jump *= s
    return rf


def _rf_own_stride(kernel_sizes, dilations=None, strides=None):
    n = len(kernel_sizes)
    rf, jump = 1, 1
    for k, d, s in zip(kernel_sizes, dilations or [1] * n, strides or [1] * n, strict=True):
        jump *= s
        rf += (k - 1) * d * jump
    return rf


def _lmswn_serial_pyramid(ref):
    def lmswn_rf(head, stages):
        heads = {"pyramid": [3, 5, 7], "dilated": [3], "conv3": [3]}
        dil = {"pyramid": [1, 1, 1], "dilated": [3], "conv3": [1]}
        return ref["receptive_field"](heads[head] + [3] * stages, dil[head] + [1] * stages)

    return lmswn_rf


class _PlainTensors(nn.Module):
    def __init__(self):
        super().__init__()
        self.lambda_y = torch.ones(1)
        self.lambda_x = torch.ones(1)

    def forward(self, y, x):
        return self.lambda_y * y + self.lambda_x * x


WRONG = [
    # (id, checker, arguments (given the reference names), a hint that must be printed)
    (
        "roll",
        checks.check_channel_shift,
        lambda r: {"channel_shift": _shift_with_roll},
        "values wrapped around to the opposite border. Hint: use slicing into a zero tensor, "
        "not torch.roll",
    ),
    (
        "fuse-bias",
        checks.check_fuse_acb,
        lambda r: {"fuse_acb": _fuse_without_branch_bias},
        "you kept only square.bias",
    ),
    ("fuse-swapped", checks.check_fuse_acb, lambda r: {"fuse_acb": _fuse_swapped}, "swapped"),
    ("fuse-in-place", checks.check_fuse_acb, lambda r: {"fuse_acb": _fuse_in_place}, "changed"),
    (
        "fuse-no-grad",
        checks.check_fuse_acb,
        lambda r: {"fuse_acb": _fuse_without_no_grad},
        "torch.no_grad()",
    ),
    (
        "slope-0.01",
        checks.check_distill_step,
        lambda r: {"distill_step": lambda x, conv, d: F.leaky_relu(conv(x[:, :d]))},
        "slope is 0.05",
    ),
    (
        "last-channels",
        checks.check_distill_step,
        lambda r: {"distill_step": lambda x, conv, d: F.leaky_relu(conv(x[:, -d:]), 0.05)},
        "*first* d channels",
    ),
    (
        "params-no-bias",
        checks.check_distill_step,
        lambda r: {"params_split1x1": lambda c: (c // 4) ** 2, "params_fdc": r["params_fdc"]},
        "plus b biases",
    ),
    (
        "float-lambdas",
        checks.check_adaptive_weights,
        lambda r: {"weighted_output": lambda y, x, ly, lx: float(ly) * y + float(lx) * x},
        "not float(lambda)",
    ),
    (
        "swapped-lambdas",
        checks.check_adaptive_weights,
        lambda r: {"weighted_output": lambda y, x, ly, lx: lx * y + ly * x},
        "lambda_y weights y",
    ),
    (
        "plain-tensors",
        checks.check_adaptive_weights,
        lambda r: {"AdaptiveWeights": _PlainTensors},
        "wrap them in nn.Parameter",
    ),
    (
        "uint8-y",
        checks.check_psnr_y,
        lambda r: {"rgb_to_y_bt601": _y_uint8_gray},
        "a uint8 result wraps around",
    ),
    (
        "uint8-subtraction",
        checks.check_psnr_y,
        lambda r: {"psnr_y_shaved": _psnr_uint8},
        "did you convert to float before subtracting? uint8 wraps around",
    ),
    (
        "no-shave",
        checks.check_psnr_y,
        lambda r: {"psnr_y_shaved": _psnr_no_shave(r)},
        "shave `scale` pixels from every side",
    ),
    (
        "full-range-y",
        checks.check_psnr_y,
        lambda r: {"rgb_to_y_bt601": lambda img: np.asarray(img, float) @ [0.299, 0.587, 0.114]},
        "full-range (JPEG) weights",
    ),
    ("a=-0.75", checks.check_cubic, lambda r: {"cubic": _cubic_a075}, "a = -0.75 is OpenCV's"),
    (
        "no-antialias",
        checks.check_cubic,
        lambda r: {"antialias_weights": _weights_no_antialias(r)},
        "stretch the kernel (antialiasing)",
    ),
    (
        "rf-no-dilation",
        checks.check_receptive_field,
        lambda r: {"receptive_field": _rf_without_dilation},
        "multiply (k - 1) by d",
    ),
    (
        "rf-own-stride",
        checks.check_receptive_field,
        lambda r: {"receptive_field": _rf_own_stride},
        "own stride only affects the layers after it",
    ),
    (
        "lmswn-serial",
        checks.check_lmswn_rf,
        lambda r: {"lmswn_rf": _lmswn_serial_pyramid(r)},
        "run in parallel",
    ),
    ("ci-2se", checks.check_ablation_reading, lambda r: {"diff_ci": _ci(2.0)}, "2 SE is"),
    (
        "ci-pooled-df",
        checks.check_ablation_reading,
        lambda r: {"diff_ci": _ci(lambda a, b: ex08.t_quantile(a["n"] + b["n"] - 2))},
        "not the pooled",
    ),
    (
        "ci-sign",
        checks.check_ablation_reading,
        lambda r: {"diff_ci": lambda a, b: r["diff_ci"](b, a)},
        "base minus variant",
    ),
    (
        "reading-2se",
        checks.check_ablation_reading,
        lambda r: {"my_reading": lambda: {**r["my_reading"](), "distill=fdc": "variant better"}},
        "beyond noise only when the interval excludes 0",
    ),
    (
        "reading-l1",
        checks.check_ablation_reading,
        lambda r: {"my_reading": lambda: {**r["my_reading"](), "L1": "inconclusive"}},
        "L1 says the pyramid head beats",
    ),
]


def _ci(t):
    """diff_ci with a fixed quantile (2.0: the 2-SE rule) or one given as a function of rows."""

    def diff_ci(a, b):
        delta = a["mean"] - b["mean"]
        se = math.sqrt(a["sd"] ** 2 / a["n"] + b["sd"] ** 2 / b["n"])
        half = (t(a, b) if callable(t) else t) * se
        return delta, delta - half, delta + half

    return diff_ci


@pytest.mark.parametrize("case", WRONG, ids=[w[0] for w in WRONG])
def test_wrong_answers_fail_with_a_hint(ref, capsys, case):
    _, checker, arguments, hint = case
    with pytest.raises(AssertionError, match=r"^\d+ of \d+ checks failed$") as info:
        checker(**arguments(ref))
    out = capsys.readouterr().out
    lines = info.value.result.lines
    assert out.splitlines() == lines
    fails = [line for line in lines if line.startswith("FAIL: ")]
    assert fails and any(hint in line and "Hint: " in line for line in fails), out
    assert not info.value.result.passed


# ---- the sub-checks that compare with the kit's own functions still fail typical mistakes -------
#
# Each case names the sub-check (the start of its label) that must fail, and the hint it must
# print: the checkers take their references from the kit (sr_kit.ops, AsymConv and fuse(),
# DistillWeightBlock, count_params, sr_kit.metrics, sr_kit.imresize, PyramidConv), so these
# cases show that a kit-based reference still tells a wrong answer from the right one.


def _slice_shift_into(out, x, ratio, px):
    """Write the solution's four sliced shifts of ``x`` into ``out`` (what is not written stays)."""
    from sr_kit.ops import shift_groups

    start = 0
    for n, direction in zip(shift_groups(x.shape[1], ratio), "lrud", strict=True):
        g = slice(start, start + n)
        if direction == "l":
            out[:, g, :, :-px] = x[:, g, :, px:]
        elif direction == "r":
            out[:, g, :, px:] = x[:, g, :, :-px]
        elif direction == "u":
            out[:, g, :-px, :] = x[:, g, px:, :]
        else:
            out[:, g, px:, :] = x[:, g, :-px, :]
        start += n
    return out


def _shift_keeps_vacated(x, ratio=1 / 3, px=1):
    """Slices like the solution, but starts from x.clone(): the vacated pixels keep x's values."""
    return _slice_shift_into(x.clone(), x, ratio, px)


def _shift_zeroes_the_rest(x, ratio=1 / 3, px=1):
    """Shifts right, but builds the output from zeros: the unshifted channels are lost."""
    return _slice_shift_into(torch.zeros_like(x), x, ratio, px)


def _fuse(square, hor, ver, *, rows=True, bias=True, padding=1, branch_bias=("hor", "ver")):
    """fuse_acb with switchable mistakes (rows=False: the 1x3 and 3x1 kernels are left out)."""
    fused = nn.Conv2d(square.in_channels, square.out_channels, 3, padding=padding, bias=bias)
    with torch.no_grad():
        fused.weight.copy_(square.weight)
        if rows:
            fused.weight[:, :, 1:2, :] += hor.weight
            fused.weight[:, :, :, 1:2] += ver.weight
        if bias:
            fused.bias.copy_(square.bias)
            for name in branch_bias:
                branch = {"hor": hor, "ver": ver}[name]
                if branch.bias is not None:
                    fused.bias += branch.bias
    return fused


def _first_weight(w):
    """A weight used as if it were always one scalar: per-channel weights lose all but one."""
    return torch.as_tensor(w).flatten()[0]


class _Weights(nn.Module):
    """AdaptiveWeights with a wrong name or a wrong start."""

    def __init__(self, names=("lambda_y", "lambda_x"), start=1.0):
        super().__init__()
        self.names = names
        for name in names:
            setattr(self, name, nn.Parameter(torch.full((1,), start)))

    def forward(self, y, x):
        ly, lx = (getattr(self, n) for n in self.names)
        return ly * y + lx * x


_BT601 = np.array([65.481, 128.553, 24.966])


def _y(fn):
    """rgb_to_y_bt601 with a mistake on RGB input (a 2-D image is returned as float)."""

    def rgb_to_y_bt601(img):
        img = np.asarray(img).astype(np.float64)
        return img if img.ndim == 2 else fn(img)

    return rgb_to_y_bt601


def _psnr_variant(y_of, cut):
    def psnr_y_shaved(sr, hr, scale):
        a, b = (cut(y_of(np.asarray(v)), scale) for v in (sr, hr))
        mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
        return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)

    return psnr_y_shaved


def _both_sides(img, s):
    return img[s:-s, s:-s]


def _cubic_no_abs(x):
    near = (1.5 * x**3 - 2.5 * x**2 + 1) * (x.abs() <= 1)
    return near + (-0.5 * x**3 + 2.5 * x**2 - 4 * x + 2) * ((x.abs() > 1) & (x.abs() <= 2))


def _cubic_far_offset(x):
    ax = x.abs()
    near = (1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
    return near + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2.5) * ((ax > 1) & (ax <= 2))


def _weights_centre_j_over_s(ref):
    """Antialiased weights around c = j / s: the half-pixel offsets of the centre forgotten."""

    def weights(j, scale):
        c = j / scale
        half = 2 / scale
        idx = torch.arange(math.floor(c - half), math.ceil(c + half) + 1)
        idx = idx[(c - idx).abs() < half]
        w = scale * ref["cubic"](scale * (c - idx.double()))
        return idx, w / w.sum()

    return weights


def _lmswn(ref, head_layers, per_stage=((3, 1),)):
    """lmswn_rf from given (kernel, dilation) head layers and layers added by each stage."""

    def lmswn_rf(head, stages):
        layers = list(head_layers[head]) + list(per_stage) * stages
        return ref["receptive_field"]([k for k, _ in layers], [d for _, d in layers])

    return lmswn_rf


_RIGHT_HEADS = {"pyramid": [(7, 1), (1, 1)], "dilated": [(3, 3), (1, 1)], "conv3": [(3, 1)]}

WRONG_VS_KIT = [
    # (id, checker, arguments (given the reference names), failing sub-check, hint)
    (
        "shift-no-zero-fill",
        checks.check_channel_shift,
        lambda r: {"channel_shift": _shift_keeps_vacated},
        "px larger than the image",
        "when px >= W the slice end W - px is negative",
    ),
    (
        "shift-zeroes-the-rest",
        checks.check_channel_shift,
        lambda r: {"channel_shift": _shift_zeroes_the_rest},
        "channels beyond the shifted share",
        "copy the others unchanged",
    ),
    (
        "fuse-square-only",
        checks.check_fuse_acb,
        lambda r: {"fuse_acb": lambda s, h, v: _fuse(s, h, v, rows=False)},
        "same output as the kit's AsymConv",
        "the 1x3 and 3x1 kernels were not added into the 3x3 kernel",
    ),
    (
        "fuse-no-bias",
        checks.check_fuse_acb,
        lambda r: {"fuse_acb": lambda s, h, v: _fuse(s, h, v, bias=False)},
        "same output as the kit's AsymConv",
        "the fused conv needs a bias",
    ),
    (
        "fuse-no-bias-config",
        checks.check_fuse_acb,
        lambda r: {"fuse_acb": lambda s, h, v: _fuse(s, h, v, bias=False)},
        "returns a 3x3 nn.Conv2d",
        "keep bias=True",
    ),
    (
        "fuse-padding-0",
        checks.check_fuse_acb,
        lambda r: {"fuse_acb": lambda s, h, v: _fuse(s, h, v, padding=0)},
        "returns a 3x3 nn.Conv2d",
        "padding=1 keeps the spatial size",
    ),
    (
        "fuse-forgets-ver-bias",
        checks.check_fuse_acb,
        lambda r: {"fuse_acb": lambda s, h, v: _fuse(s, h, v, branch_bias=("hor",))},
        "same output when hor and ver have biases",
        "the fused bias is square.bias + hor.bias + ver.bias",
    ),
    (
        "fdc-no-bias",
        checks.check_distill_step,
        lambda r: {"params_fdc": lambda c: c * (c // 2)},
        "params_fdc(C)",
        "a 1x1 conv from a to b channels has a * b weights plus b biases",
    ),
    (
        "split-half",
        checks.check_distill_step,
        lambda r: {"params_split1x1": lambda c: (c // 2) ** 2 + c // 2},
        "params_split1x1(C)",
        "the split itself is free",
    ),
    (
        "weights-as-scalars",
        checks.check_adaptive_weights,
        lambda r: {
            "weighted_output": lambda y, x, ly, lx: _first_weight(ly) * y + _first_weight(lx) * x
        },
        "the same as the kit's DistillWeightBlock",
        "out = lambda_y * y + lambda_x * x",
    ),
    (
        "weights-swapped-in-the-block",
        checks.check_adaptive_weights,
        lambda r: {"weighted_output": lambda y, x, ly, lx: lx * y + ly * x},
        "the same as the kit's DistillWeightBlock",
        "lambda_y weights y",
    ),
    (
        "weights-other-names",
        checks.check_adaptive_weights,
        lambda r: {"AdaptiveWeights": lambda: _Weights(names=("weight_y", "weight_x"))},
        "AdaptiveWeights registers two scalar parameters",
        "call them self.lambda_y and self.lambda_x",
    ),
    (
        "weights-start-at-0",
        checks.check_adaptive_weights,
        lambda r: {"AdaptiveWeights": lambda: _Weights(start=0.0)},
        "both start at 1",
        "AWSRN starts both at 1",
    ),
    (
        "y-no-16",
        checks.check_psnr_y,
        lambda r: {"rgb_to_y_bt601": _y(lambda f: f @ _BT601 / 255)},
        "RGB uint8 -> float Y",
        "add 16: studio-swing Y lies in [16, 235]",
    ),
    (
        "y-no-16-extremes",
        checks.check_psnr_y,
        lambda r: {"rgb_to_y_bt601": _y(lambda f: f @ _BT601 / 255)},
        "black -> 16 and white -> 235",
        "Y = (65.481 R + 128.553 G + 24.966 B) / 255 + 16",
    ),
    (
        "y-no-255",
        checks.check_psnr_y,
        lambda r: {"rgb_to_y_bt601": _y(lambda f: f @ _BT601 + 16)},
        "RGB uint8 -> float Y",
        "divide by 255",
    ),
    (
        "y-bgr",
        checks.check_psnr_y,
        lambda r: {"rgb_to_y_bt601": _y(lambda f: f[..., ::-1] @ _BT601 / 255 + 16)},
        "RGB uint8 -> float Y",
        "the channels are R, G, B in this order",
    ),
    (
        "y-rounded",
        checks.check_psnr_y,
        lambda r: {"rgb_to_y_bt601": _y(lambda f: np.round(f @ _BT601 / 255 + 16))},
        "RGB uint8 -> float Y",
        "do not round",
    ),
    (
        "psnr-top-left-shave",
        checks.check_psnr_y,
        lambda r: {"psnr_y_shaved": _psnr_variant(r["rgb_to_y_bt601"], lambda img, s: img[s:, s:])},
        "RGB pair, scale 2",
        "shave all four sides, not only the top and left",
    ),
    (
        "psnr-on-rgb",
        checks.check_psnr_y,
        lambda r: {"psnr_y_shaved": _psnr_variant(lambda img: img, _both_sides)},
        "RGB pair, scale 2",
        "compute PSNR on the Y channel only",
    ),
    (
        "psnr-peak-1",
        checks.check_psnr_y,
        lambda r: {
            "psnr_y_shaved": lambda sr, hr, s: r["psnr_y_shaved"](sr, hr, s) - 20 * math.log10(255)
        },
        "RGB pair, scale 2",
        "the peak value is 255 for 8-bit images",
    ),
    (
        "cubic-no-abs",
        checks.check_cubic,
        lambda r: {"cubic": _cubic_no_abs},
        "cubic equals sr_kit.imresize.cubic",
        "the kernel is symmetric: compute it on |x|",
    ),
    (
        "cubic-not-interpolating",
        checks.check_cubic,
        lambda r: {"cubic": _cubic_far_offset},
        "cubic(0) = 1 and cubic(±1) = cubic(±2) = 0",
        "an interpolating kernel is 1 at 0 and 0 at every other integer",
    ),
    (
        "weights-centre",
        checks.check_cubic,
        lambda r: {"antialias_weights": _weights_centre_j_over_s(r)},
        "x1/2, output pixel 10",
        "the centre of output pixel 10 is c = (j + 0.5) / s - 0.5 = 20.5",
    ),
    (
        "rf-not-whole",
        checks.check_receptive_field,
        lambda r: {"receptive_field": lambda ks, dilations=None, strides=None: 7.5},
        "plain stacks",
        "a receptive field is a whole number of pixels",
    ),
    (
        "lmswn-no-dilation",
        checks.check_lmswn_rf,
        lambda r: {"lmswn_rf": _lmswn(r, {**_RIGHT_HEADS, "dilated": [(3, 1), (1, 1)]})},
        "the head alone",
        "a 3x3 with dilation 3 spans 2 * 3 + 1 = 7 pixels",
    ),
    (
        "lmswn-acconv-serial",
        checks.check_lmswn_rf,
        lambda r: {"lmswn_rf": _lmswn(r, _RIGHT_HEADS, per_stage=((3, 1), (3, 1)))},
        "head + 1, 2, 3 refinement stages",
        "run in parallel with the 3x3: a stage still adds 2",
    ),
]


@pytest.mark.parametrize("case", WRONG_VS_KIT, ids=[w[0] for w in WRONG_VS_KIT])
def test_kit_based_checks_fail_wrong_answers(ref, capsys, case):
    _, checker, arguments, label, hint = case
    with pytest.raises(AssertionError, match=r"^\d+ of \d+ checks failed$") as info:
        checker(**arguments(ref))
    out = capsys.readouterr().out
    fails = [line for line in info.value.result.lines if line.startswith(f"FAIL: {label}")]
    assert fails, out
    assert hint in fails[0] and "Hint: " in fails[0], out


class _AsymConvWithoutBranches(ex02.AsymConv):
    def forward(self, x):
        return self.square(x)


class _BlockWithExtraSkip(ex04.DistillWeightBlock):
    def forward(self, x0):
        return super().forward(x0) + x0


def _roll_shift(x, ratio=1 / 3, px=1):
    return _shift_with_roll(x, ratio, px)


# (module, kit name in it, replacement, checker, reference names, sub-check that must then fail)
KIT_SWAPS = [
    (ex01, "kit_channel_shift", _roll_shift, "check_channel_shift", ["channel_shift"], "equals"),
    (
        ex02,
        "AsymConv",
        _AsymConvWithoutBranches,
        "check_fuse_acb",
        ["fuse_acb"],
        "same output as the kit's AsymConv",
    ),
    (
        ex03,
        "count_params",
        lambda m: 0,
        "check_distill_step",
        ["params_split1x1", "params_fdc"],
        "params_split1x1",
    ),
    (
        ex04,
        "DistillWeightBlock",
        _BlockWithExtraSkip,
        "check_adaptive_weights",
        ["weighted_output", "AdaptiveWeights"],
        "the same as the kit's DistillWeightBlock",
    ),
    (
        ex05,
        "psnr_y",
        lambda sr, hr, s: 0.0,
        "check_psnr_y",
        ["psnr_y_shaved"],
        "RGB pair, scale 2",
    ),
    (ex06, "kit_cubic", _cubic_a075, "check_cubic", ["cubic"], "cubic equals"),
    (
        ex06,
        "resize_weights",
        lambda n, m, s: ex06.resize_weights(n, m, s, antialias=False),
        "check_cubic",
        ["antialias_weights"],
        "x1/2",
    ),
    (
        ex07,
        "PyramidConv",
        lambda cin, cout, head: ex07.PyramidConv(cin, cout, "conv3"),
        "check_lmswn_rf",
        ["lmswn_rf"],
        "the head alone",
    ),
    (
        ex08,
        "diff_interval",
        lambda *a, **k: (0.0, 1.0),
        "check_ablation_reading",
        ["diff_ci"],
        "base vs head=conv3",
    ),
]


@pytest.mark.parametrize(
    "module,kit_name,replacement,checker,names,label",
    KIT_SWAPS,
    ids=[f"{c[0].__name__.rsplit('.', 1)[-1]}.{c[1]}" for c in KIT_SWAPS],
)
def test_checkers_take_their_reference_from_the_kit(
    ref, capsys, monkeypatch, module, kit_name, replacement, checker, names, label
):
    """With the kit function swapped for a different one, the reference answer fails: the
    checker really compares with the kit, not with a copy of its own."""
    monkeypatch.setattr(module, kit_name, replacement)
    with pytest.raises(AssertionError):
        getattr(module, checker)(**{n: ref[n] for n in names})
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith(f"FAIL: {label}") for line in lines), lines


def test_the_mistake_models_agree_with_the_kit():
    """The few references the kit has no function for are written to match it where they
    overlap: Keys' kernel at a = -0.5 is sr_kit.imresize.cubic, and the layers read off the
    kit's modules give the receptive fields the check labels promise."""
    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    assert torch.equal(ex06._keys(x, -0.5), ex06.kit_cubic(x))
    assert [ex07._lmswn_rf(h, 0) for h in ex07._HEADS] == [7, 7, 3]
    assert [ex07._lmswn_rf(h, 3) for h in ex07._HEADS] == [13, 13, 9]
    assert ex07._rf([3, 3, 3], [1, 1, 1], [2, 2, 1]) == 15


def test_one_module_per_exercise():
    """checks gathers the checkers; each is defined in the module named after its notebook,
    whose docstring names that notebook."""
    modules = {p.name.removesuffix("_solution.ipynb"): p.name for p in SOLUTIONS}
    import sr_kit.exercises as package

    assert sorted(package.__all__) == sorted(checks.__all__)
    for name in checks.__all__:
        obj = getattr(checks, name)
        assert getattr(package, name) is obj
        if name == "CheckResult":
            assert obj is harness.CheckResult
            continue
        module = sys.modules[obj.__module__]
        stem = module.__name__.rsplit(".", 1)[-1].removeprefix("ex")
        assert stem in modules, module.__name__
        assert f"notebooks/exercises/{modules[stem]}" in module.__doc__
    defined = {sys.modules[getattr(checks, n).__module__] for n in checks.__all__}
    assert len(defined - {harness}) == len(SOLUTIONS)


def _stub(*args, **kwargs):
    raise NotImplementedError()


class _StubModule(nn.Module):
    def __init__(self):
        super().__init__()
        raise NotImplementedError()


ALL_ARGUMENTS = {
    checks.check_channel_shift: ["channel_shift"],
    checks.check_fuse_acb: ["fuse_acb"],
    checks.check_distill_step: ["distill_step", "params_split1x1", "params_fdc"],
    checks.check_adaptive_weights: ["weighted_output", "AdaptiveWeights"],
    checks.check_psnr_y: ["rgb_to_y_bt601", "psnr_y_shaved"],
    checks.check_cubic: ["cubic", "antialias_weights"],
    checks.check_receptive_field: ["receptive_field"],
    checks.check_lmswn_rf: ["lmswn_rf"],
    checks.check_ablation_reading: ["diff_ci", "my_reading"],
}


@pytest.mark.parametrize("checker", list(ALL_ARGUMENTS), ids=lambda c: c.__name__)
def test_stubs_raise_not_implemented(capsys, checker):
    args = {n: (_StubModule if n == "AdaptiveWeights" else _stub) for n in ALL_ARGUMENTS[checker]}
    with pytest.raises(NotImplementedError, match="not implemented yet") as info:
        checker(**args)
    out = capsys.readouterr().out
    assert "is not implemented yet: write the function body" in out
    result = info.value.result
    assert result.n_failed == result.n_checks and result.not_implemented
    # one FAIL line per stub, not one per sub-check
    assert sum(line.startswith("FAIL: ") for line in result.lines) == len(result.not_implemented)


def test_stub_is_named_by_the_function_that_raised(ref, capsys):
    """lmswn_rf written, receptive_field still a stub: the message names receptive_field."""

    def receptive_field(kernel_sizes, dilations=None, strides=None):
        raise NotImplementedError()

    def lmswn_rf(head, stages):
        return receptive_field([7, 1] + [3] * stages)

    with pytest.raises(NotImplementedError, match="receptive_field"):
        checks.check_lmswn_rf(lmswn_rf)
    assert "receptive_field is not implemented yet" in capsys.readouterr().out


def test_a_stub_next_to_a_wrong_answer_is_an_assertion(ref, capsys):
    with pytest.raises(AssertionError):
        checks.check_distill_step(params_split1x1=lambda c: 0, params_fdc=_stub)
    assert "_stub is not implemented yet" in capsys.readouterr().out


def _returns(value):
    return lambda *args, **kwargs: value


BAD_RETURNS = {
    "None": lambda: None,
    "str": lambda: "no",
    "wrong-shape": lambda: torch.zeros(3),
    "list": lambda: [1, 2],
    "nan": lambda: float("nan"),
}


@pytest.mark.parametrize("bad", list(BAD_RETURNS))
@pytest.mark.parametrize("checker", list(ALL_ARGUMENTS), ids=lambda c: c.__name__)
def test_checkers_never_crash_on_bad_returns(capsys, checker, bad):
    args = {n: _returns(BAD_RETURNS[bad]()) for n in ALL_ARGUMENTS[checker]}
    with pytest.raises(AssertionError) as info:
        checker(**args)
    lines = info.value.result.lines
    assert all(line.startswith(("FAIL: ", "PASS: ")) for line in lines[:-1])
    assert lines[-1].startswith("Score: ") and info.value.result.points < info.value.result.possible
    capsys.readouterr()


def test_checkers_report_exceptions_as_failures(capsys):
    def boom(*args, **kwargs):
        raise ValueError("bad things")

    with pytest.raises(AssertionError):
        checks.check_receptive_field(boom)
    assert "receptive_field raised ValueError: bad things" in capsys.readouterr().out


def test_importing_the_kit_does_not_import_the_exercises():
    code = (
        "import sys, sr_kit\n"
        "assert 'sr_kit.exercises' not in sys.modules\n"
        "import sr_kit.exercises, sr_kit.exercises.release\n"
        "assert 'sr_kit.exercises.checks' not in sys.modules\n"
        "assert 'torch' not in sys.modules, 'release must not need torch'\n"
        "sr_kit.exercises.check_cubic\n"
        "assert 'sr_kit.exercises.checks' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# ---- the solution notebooks: layout and nbgrader metadata -------------------------------------


def test_solution_notebooks_layout():
    assert len(SOLUTIONS) >= 7
    assert DEFAULT_SRC == EXERCISES
    # only solution notebooks under notebooks/exercises: a student version would fail under nbval
    assert sorted(EXERCISES.glob("*.ipynb")) == SOLUTIONS
    for path in SOLUTIONS:
        nb = _read(path)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "env = setup(verbose=False)" in code[0].source, path.name
        answers = [c for c in code if _grader(c).get("solution")]
        graded = [c for c in code if _grader(c).get("grade")]
        assert 1 <= len(answers) <= 3 and len(graded) >= len(answers), path.name
        ids = [_grader(c)["grade_id"] for c in answers + graded]
        assert len(set(ids)) == len(ids), path.name
        for cell in answers:
            meta = _grader(cell)
            assert meta == {**meta, "grade": False, "locked": False, "schema_version": 3}
            # the answer is a function body: the marker is indented, inside a def
            assert re.search(r"\n {4,}### BEGIN SOLUTION", cell.source), path.name
        student = make_student(nb, path.name)
        by_id = {_grader(c).get("grade_id"): c for c in student.cells}
        for cell in graded:
            meta = _grader(cell)
            assert meta["locked"] and meta["schema_version"] == 3
            assert "nbval-check-output" in cell.metadata.get("tags", [])
            # the instructor's check cell switches the hidden tests on; the student's does not
            assert cell.source.startswith(HIDDEN_REGION), path.name
            assert by_id[meta["grade_id"]].source.startswith("check_"), path.name
            assert cell.outputs and cell.execution_count, f"{path.name}: run refresh_outputs"
            printed = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
            score = re.findall(r"^Score: (\S+) / (\S+) points$", printed, re.M)
            # nbgrader's points are the checker's possible points, hidden tests included
            assert score == [(f"{meta['points']:g}", f"{meta['points']:g}")], path.name
            assert "PASS: [hidden] " in printed, path.name


# ---- make_student ----------------------------------------------------------------------------


def _solution_lines(nb) -> set[str]:
    """The non-empty lines strictly inside the solution regions of the answer cells."""
    lines: set[str] = set()
    for cell in nb.cells:
        inside = False
        for line in cell.source.split("\n"):
            if "BEGIN SOLUTION" in line:
                inside = True
            elif "END SOLUTION" in line:
                inside = False
            elif inside and line.strip():
                lines.add(line.strip())
    return lines


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_make_student_clears_every_solution(path):
    nb = _read(path)
    before = copy.deepcopy(nb)
    student = make_student(nb, path.name)
    assert nb == before  # the solution notebook is not changed
    assert len(student.cells) == len(nb.cells)
    hidden = _solution_lines(nb)
    assert hidden
    for orig, cell in zip(nb.cells, student.cells, strict=True):
        assert not any(m in cell.source for m in MARKERS)
        assert cell.metadata.get("tags") == orig.metadata.get("tags")
        assert _grader(cell) == _grader(orig)
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            ast.parse(cell.source)  # still valid Python
        if _grader(cell).get("solution"):
            assert "raise NotImplementedError()" in cell.source
            assert not hidden & {line.strip() for line in cell.source.split("\n")}
        elif _grader(cell).get("grade"):
            assert cell.source == orig.source.removeprefix(HIDDEN_REGION)
            assert "hidden_tests" not in cell.source
        else:
            assert cell.source == orig.source
    nbformat.validate(student)


def _nb(*cells):
    return nbformat.v4.new_notebook(cells=list(cells))


def _answer(source, cell_type="code"):
    make = nbformat.v4.new_code_cell if cell_type == "code" else nbformat.v4.new_markdown_cell
    cell = make(source)
    cell.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "q1"}
    return cell


def test_make_student_stub_keeps_indentation_and_text():
    src = (
        "class M:\n    def f(self):\n"
        "        ## BEGIN SOLUTION\n        return 1\n        #### END SOLUTION\n"
    )
    md = "Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"
    tests = nbformat.v4.new_code_cell(
        "assert f()\n### BEGIN HIDDEN TESTS\nassert g()\n### END HIDDEN TESTS"
    )
    whole = _answer("x = 42")  # a solution cell without a region is replaced as a whole
    student = make_student(_nb(_answer(src), _answer(md, "markdown"), tests, whole))
    assert student.cells[0].source == (
        "class M:\n    def f(self):\n"
        "        # YOUR CODE HERE\n        raise NotImplementedError()\n"
    )
    assert student.cells[1].source == "Why?\nYOUR ANSWER HERE"
    assert student.cells[2].source == "assert f()"
    assert student.cells[3].source == "# YOUR CODE HERE\nraise NotImplementedError()"


@pytest.mark.parametrize(
    "source,message",
    [
        ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "never closed"),
        ("def f():\n    return 1\n    ### END SOLUTION\n", "without BEGIN"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\nx\n### END SOLUTION\n", "inside the one"),
        (
            "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
            "z = 0  # BEGIN SOLUTION",
            "line of its own",
        ),
    ],
)
def test_make_student_refuses_broken_markers(source, message):
    with pytest.raises(ValueError, match=rf"^09_broken_solution\.ipynb: cell 1 \(q1\).*{message}"):
        make_student(
            _nb(nbformat.v4.new_markdown_cell("# hi"), _answer(source)), "09_broken_solution.ipynb"
        )


def test_make_student_refuses_a_region_outside_a_solution_cell():
    cell = nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")
    with pytest.raises(ValueError, match=r"nb\.ipynb: cell 0.*nbgrader\.solution"):
        make_student(_nb(cell), "nb.ipynb")


def test_make_student_matches_nbgrader_when_installed():
    pytest.importorskip("nbgrader")
    from nbconvert.preprocessors import ClearOutputPreprocessor
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions
    from traitlets.config import Config

    config = Config()
    config.ClearSolutions.enforce_metadata = False
    for path in SOLUTIONS:
        nb = _read(path)
        theirs = copy.deepcopy(nb)
        for pre in (ClearSolutions(config=config), ClearHiddenTests(config=config)):
            theirs, _ = pre.preprocess(theirs, {})
        theirs, _ = ClearOutputPreprocessor().preprocess(theirs, {})
        ours = make_student(nb, path.name)
        assert [c.source for c in ours.cells] == [c.source for c in theirs.cells]


# ---- release -----------------------------------------------------------------------------------


def test_release_writes_one_student_notebook_per_solution(tmp_path):
    out = tmp_path / "release" / "week1"
    written = release(EXERCISES, out)
    assert written == [out / student_name(p) for p in SOLUTIONS]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)
    assert all(not p.name.endswith("_solution.ipynb") for p in written)
    for src, dst in zip(SOLUTIONS, written, strict=True):
        assert _read(dst) == make_student(_read(src), src.name)
    assert release(EXERCISES, out) == written  # a second release overwrites in place


def test_release_refuses_the_solution_folder(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "01_x_solution.ipynb").write_text(SOLUTIONS[0].read_text())
    for out in (src, src / ".", src / "student"):
        with pytest.raises(ValueError, match="solution folder"):
            release(src, out)
    assert sorted(p.name for p in src.iterdir()) == ["01_x_solution.ipynb"]


def test_release_writes_nothing_when_a_notebook_is_broken(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "01_good_solution.ipynb").write_text(SOLUTIONS[0].read_text())
    nbformat.write(_nb(_answer("### BEGIN SOLUTION\nx = 1")), src / "02_bad_solution.ipynb")
    with pytest.raises(ValueError, match=r"02_bad_solution\.ipynb: cell 0"):
        release(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"no \*_solution\.ipynb"):
        release(empty, tmp_path / "out")


def test_release_command_line(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "o"), "--src", str(EXERCISES)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(SOLUTIONS)
    assert main(["--out", str(EXERCISES)]) == 2
    assert "refusing" in capsys.readouterr().err


# ---- the student notebooks run, and fail exactly at their check cells ---------------------------


@pytest.mark.slow
@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_student_notebook_fails_only_at_check_cells(path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("SR_KIT_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("SR_KIT_QUICK", "1")
    nb = make_student(_read(path), path.name)
    NotebookClient(
        nb,
        timeout=120,
        allow_errors=True,
        record_timing=False,
        kernel_name="python3",
        resources={"metadata": {"path": str(EXERCISES)}},
    ).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    graded = 0
    for index, cell in enumerate(code):
        errors = [o for o in cell.outputs if o.output_type == "error"]
        is_check = bool(_grader(cell).get("grade"))
        graded += is_check
        where = f"{path.name}, code cell {index}: {cell.source[:60]!r}"
        if is_check:
            assert [e.ename for e in errors] == ["NotImplementedError"], where
            printed = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
            assert "is not implemented yet: write the function body" in printed, where
        else:
            assert not errors, f"{where}: {[(e.ename, e.evalue) for e in errors]}"
    assert graded >= 1
    assert code[-1].execution_count is not None  # the notebook ran to the end


# ---- points, hidden tests, delegation, the grading log ------------------------------------------


def _psnr_breaks_at_scale_0(ref):
    """The old solution of exercise 05: a[0:-0] is empty at scale 0, so its PSNR is nan."""

    def psnr_y_shaved(sr, hr, scale):
        a = ref["rgb_to_y_bt601"](sr)[scale:-scale, scale:-scale]
        b = ref["rgb_to_y_bt601"](hr)[scale:-scale, scale:-scale]
        mse = float(np.mean((a - b) ** 2))
        return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)

    return psnr_y_shaved


@pytest.mark.parametrize("hidden,lost", [(False, 1), (True, 2)])
def test_scale_0_costs_exactly_its_points(ref, capsys, hidden, lost):
    """Exercise 05: shave 0 means no crop; a solution that breaks there loses the points of the
    scale-0 sub-check (and, with the hidden tests, of the hidden grayscale one), nothing else."""
    full = checks.check_psnr_y(psnr_y_shaved=ref["psnr_y_shaved"], hidden=hidden)
    with pytest.raises(AssertionError, match=rf"^{lost} of \d+ checks failed$") as info:
        checks.check_psnr_y(psnr_y_shaved=_psnr_breaks_at_scale_0(ref), hidden=hidden)
    result = info.value.result
    assert result.possible == full.possible and result.points == full.possible - lost
    assert result.failed[0] == "scale 0: nothing is shaved"
    assert "Y[0:-0] is empty" in capsys.readouterr().out
    assert ref["psnr_y_shaved"](np.zeros((4, 4), np.uint8), np.ones((4, 4), np.uint8), 0) == (
        pytest.approx(48.13, abs=0.01)
    )


def test_partial_credit_adds_the_points_of_the_passed_checks(ref, capsys):
    with pytest.raises(AssertionError) as info:
        checks.check_channel_shift(_shift_with_roll)
    result = info.value.result
    assert 0 < result.points < result.possible
    assert result.lines[-1] == f"Score: {result.points:g} / {result.possible:g} points"
    passed = [line for line in result.lines if line.startswith("PASS: ")]
    # every sub-check is worth 1 but "equals sr_kit.ops.channel_shift" (2) and the delegation
    # check (0, passed here)
    assert result.points == len(passed) - 1
    capsys.readouterr()


def test_hidden_tests_run_only_when_switched_on(ref, capsys):
    visible = checks.check_channel_shift(ref["channel_shift"])
    assert visible.n_hidden == 0 and not any("[hidden]" in line for line in visible.lines)
    try:
        harness.hidden_tests()
        on = checks.check_channel_shift(ref["channel_shift"])
    finally:
        harness.hidden_tests(False)
    assert on.n_hidden == 3 and on.possible == visible.possible + 3
    assert checks.check_channel_shift(ref["channel_shift"], hidden=True).lines == on.lines
    capsys.readouterr()


def test_a_hidden_test_can_cost_points_the_student_never_saw(ref, capsys):
    def float32_only(x, ratio=1 / 3, px=1):  # right, but always float32: only a hidden test sees
        return ref["channel_shift"](x, ratio, px).float()

    assert checks.check_channel_shift(float32_only).passed
    with pytest.raises(AssertionError, match=r"^1 of 10 checks failed$") as info:
        checks.check_channel_shift(float32_only, hidden=True)
    assert info.value.result.failed == ["[hidden] float64 and a batch of 3 (ratio 0.4, px 2)"]
    capsys.readouterr()


def test_the_student_version_has_no_hidden_tests(tmp_path):
    for path in release(EXERCISES, tmp_path):
        text = path.read_text()
        assert "hidden_tests" not in text and "[hidden]" not in text and "Score:" not in text


def _swallowing(fn):
    """A delegating answer that hides any exception from the kit function."""

    def answer(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception:
            return None

    return answer


DELEGATING = [
    # (id, checker, arguments, the kit function the message must name)
    (
        "ops.channel_shift",
        checks.check_channel_shift,
        lambda r: {
            "channel_shift": lambda x, ratio=1 / 3, px=1: __import__(
                "sr_kit.ops"
            ).ops.channel_shift(x, ratio, px)
        },
        "sr_kit.ops.channel_shift",
    ),
    (
        "ChannelShift-module",
        checks.check_channel_shift,
        lambda r: {
            "channel_shift": lambda x, ratio=1 / 3, px=1: __import__(
                "sr_kit.blocks", fromlist=["ChannelShift"]
            ).ChannelShift(ratio, px)(x)
        },
        "sr_kit.ops.channel_shift",
    ),
    (
        "swallowed",
        checks.check_channel_shift,
        lambda r: {"channel_shift": _swallowing(ex01.kit_channel_shift)},
        "sr_kit.ops.channel_shift",
    ),
    (
        "AsymConv.fuse",
        checks.check_fuse_acb,
        lambda r: {"fuse_acb": lambda sq, h, v: ex02._kit_acb(sq, h, v).fuse()},
        "sr_kit.blocks.AsymConv.fuse",
    ),
    (
        "count_params",
        checks.check_distill_step,
        lambda r: {"params_split1x1": lambda c: ex03.count_params(nn.Conv2d(c // 4, c // 4, 1))},
        "sr_kit.complexity.count_params",
    ),
    (
        "metrics.psnr_y",
        checks.check_psnr_y,
        lambda r: {
            "psnr_y_shaved": lambda sr, hr, s: __import__("sr_kit.metrics").metrics.psnr_y(
                sr, hr, s
            )
        },
        "sr_kit.metrics.psnr_y",
    ),
    (
        "metrics.rgb_to_y",
        checks.check_psnr_y,
        lambda r: {"rgb_to_y_bt601": lambda img: ex05.rgb_to_y(img)},
        "sr_kit.metrics.rgb_to_y",
    ),
    (
        "imresize.cubic",
        checks.check_cubic,
        lambda r: {"cubic": lambda x: ex06.kit_cubic(x)},
        "sr_kit.imresize.cubic",
    ),
    (
        "checker-formula",
        checks.check_receptive_field,
        lambda r: {
            "receptive_field": lambda k, dilations=None, strides=None: ex07._rf(
                k, dilations or [1] * len(k), strides or [1] * len(k)
            )
        },
        "the checker's _rf",
    ),
    (
        "ablation.diff_interval",
        checks.check_ablation_reading,
        lambda r: {"diff_ci": lambda a, b: _from_kit(a, b)},
        "sr_kit.ablation.diff_interval",
    ),
]


def _from_kit(a, b):
    delta, half = ex08.diff_interval(a["mean"], a["sd"], a["n"], b["mean"], b["sd"], b["n"])
    return delta, delta - half, delta + half


@pytest.mark.parametrize("case", DELEGATING, ids=[d[0] for d in DELEGATING])
def test_an_answer_that_delegates_to_the_kit_scores_0(ref, capsys, case):
    _, checker, arguments, kit_name = case
    trace = sys.gettrace()
    with pytest.raises(AssertionError) as info:
        checker(**arguments(ref), hidden=True)
    assert sys.gettrace() is trace
    result = info.value.result
    assert result.points == 0 and result.possible > 0 and result.delegated == [kit_name]
    assert result.n_failed == result.n_checks  # the other sub-checks are not run (and count 0)
    first = result.lines[0]
    assert first.startswith("FAIL: ") and "does its own work" in first
    assert f"calls {kit_name}, the kit's own implementation" in first
    assert "so this exercise scores 0" in first
    assert not any(line.startswith("PASS: ") for line in result.lines)
    assert result.lines[-1] == f"Score: 0 / {result.possible:g} points"
    capsys.readouterr()


def test_the_tripwire_sees_every_path_and_changes_nothing():
    from sr_kit.ops import channel_shift as renamed

    x = torch.randn(1, 4, 3, 3)
    before = ex01.kit_channel_shift.__code__
    with harness.tripwire({"cs": ex01.kit_channel_shift}) as hits:
        renamed(x)
    assert hits == ["cs"] and ex01.kit_channel_shift.__code__ is before
    with harness.tripwire({"cs": ex01.kit_channel_shift}) as hits:
        ex01.shift_groups(4, 1.0)  # another kit function: allowed
    assert hits == []


def test_the_grading_log_records_every_result(ref, capsys, tmp_path, monkeypatch):
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv(harness.GRADE_LOG_ENV, str(log))
    monkeypatch.setenv("SR_KIT_GRADE_CELL", "ex05-check-psnr")
    checks.check_psnr_y(psnr_y_shaved=ref["psnr_y_shaved"])
    with pytest.raises(AssertionError):
        checks.check_psnr_y(psnr_y_shaved=_psnr_breaks_at_scale_0(ref))
    import json

    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["cell"] for r in records] == ["ex05-check-psnr"] * 2
    assert records[0]["points"] == records[0]["possible"] == records[1]["possible"]
    assert records[1]["points"] == records[0]["points"] - 1
    assert records[1]["failed"] == ["scale 0: nothing is shaved"]
    capsys.readouterr()


def test_the_ablation_exercise_table_agrees_with_the_committed_csv():
    import pandas as pd

    table = pd.read_csv(REPO / "results" / "ablation_lmswn_x4_cpu.csv").set_index("label")
    for label, (n, mean, sd) in ex08.LMSWN_X4_CPU.items():
        assert int(table.loc[label, "n"]) == n
        assert table.loc[label, "psnr_y/embedded_mean"] == pytest.approx(mean, abs=1e-6)
        assert table.loc[label, "psnr_y/embedded_std"] == pytest.approx(sd, abs=1e-6)
    assert int(table["steps"].iloc[0]) == 300 and "300 training steps" in ex08.PROVENANCE
    # the answers of the exercise, as the kit's noise rule gives them
    assert ex08._claim_l1() == "contradicted"
    assert [ex08._verdict(ex08.row("base"), ex08.row(k)) for k in ex08._ROWS] == [
        "variant better",
        "within noise",
        "within noise",
        "within noise",
    ]


# ---- sr-kit exercises grade, end to end ---------------------------------------------------------


def _fill(student, solution, answers=None):
    """A copy of a student notebook with its answer cells filled: from the solution notebook
    (the correct answers), or from ``answers`` (grade_id -> source)."""
    filled = copy.deepcopy(student)
    sources = {_grader(c).get("grade_id"): c.source for c in solution.cells}
    for cell in filled.cells:
        gid = _grader(cell).get("grade_id")
        if _grader(cell).get("solution"):
            cell.source = (answers or {}).get(gid, sources[gid])
    return filled


_WRONG_PSNR = """def psnr_y_shaved(sr, hr, scale):
    a = rgb_to_y_bt601(sr)[scale:-scale, scale:-scale]
    b = rgb_to_y_bt601(hr)[scale:-scale, scale:-scale]
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)"""

_DELEGATING_SHIFT = """import sr_kit.ops

def channel_shift(x, ratio=1 / 3, px=1):
    return sr_kit.ops.channel_shift(x, ratio, px)"""


@pytest.mark.slow
def test_grade_command_end_to_end(tmp_path, capsys, monkeypatch):
    """Release, fill in (a correct, a wrong and a delegating notebook), grade with the CLI:
    the exact scores, hidden tests included; the stored outputs are not trusted."""
    from sr_kit.cli import main as cli_main

    monkeypatch.setenv("SR_KIT_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("SR_KIT_QUICK", "1")
    released = tmp_path / "released"
    assert cli_main(["exercises", "release", "--out", str(released)]) == 0
    capsys.readouterr()
    sol05 = _read(EXERCISES / "05_psnr_y_shave_solution.ipynb")
    sol01 = _read(EXERCISES / "01_channel_shift_solution.ipynb")
    blank05, blank01 = (
        _read(released / "05_psnr_y_shave.ipynb"),
        _read(released / "01_channel_shift.ipynb"),
    )
    alice, bob, carol = (tmp_path / n for n in ("alice", "bob", "carol"))
    for folder in (alice, bob, carol):
        folder.mkdir()
    nbformat.write(_fill(blank05, sol05), alice / "05_psnr_y_shave.ipynb")
    wrong = _fill(blank05, sol05, {"ex05-psnr": _WRONG_PSNR})
    # a stored output claiming full marks changes nothing: outputs are thrown away
    check = next(c for c in wrong.cells if _grader(c).get("grade_id") == "ex05-check-psnr")
    check.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="Score: 99 / 99 points\n")
    ]
    nbformat.write(wrong, bob / "05_psnr_y_shave.ipynb")
    nbformat.write(
        _fill(blank01, sol01, {"ex01-channel-shift": _DELEGATING_SHIFT}),
        carol / "renamed.ipynb",  # recognised by its grade_ids, not its name
    )
    out_csv = tmp_path / "scores.csv"
    submissions = [str(p / "05_psnr_y_shave.ipynb") for p in (alice, bob)]
    submissions.append(str(carol / "renamed.ipynb"))
    assert (
        cli_main(["exercises", "grade", *submissions, "--csv", str(out_csv), "--timeout", "120"])
        == 0
    )
    printed = capsys.readouterr().out
    print(printed)
    import csv as csv_module

    rows = list(csv_module.DictReader(out_csv.open()))
    points05 = sum(_grader(c).get("points", 0) for c in sol05.cells if _grader(c).get("grade"))
    points01 = sum(_grader(c).get("points", 0) for c in sol01.cells if _grader(c).get("grade"))
    assert (points05, points01) == (15, 10)
    assert [(r["exercise"], r["points"], r["possible"]) for r in rows] == [
        ("05_psnr_y_shave", "15", "15"),
        # the scale-0 sub-check (1 point) and the hidden grayscale scale-0 one (1 point)
        ("05_psnr_y_shave", "13", "15"),
        ("01_channel_shift", "0", "10"),
    ]
    assert rows[0]["notes"] == ""
    assert rows[1]["notes"] == (
        "failed: scale 0: nothing is shaved; [hidden] grayscale pair, scale 0"
    )
    assert rows[2]["notes"].startswith("delegates to sr_kit.ops.channel_shift")
    assert printed.splitlines()[0].split() == ["student", "exercise", "points", "possible", "notes"]
    assert len(printed.splitlines()) == 4


def test_the_graded_notebook_takes_the_checks_from_the_solution():
    """Check cells come from the instructor's notebook (hidden tests on) whatever the student did
    to them; answer cells keep only the student's code; a deleted check cell is added back."""
    from sr_kit.exercises.grade import graded_version

    solution = _read(EXERCISES / "05_psnr_y_shave_solution.ipynb")
    student = make_student(solution)
    for cell in student.cells:
        if _grader(cell).get("grade_id") == "ex05-check-y":
            cell.source = "print('Score: 99 / 99 points')"  # tampered with
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="PASS")]
    student.cells = [c for c in student.cells if _grader(c).get("grade_id") != "ex05-check-psnr"]
    graded, notes = graded_version(student, solution)
    assert notes == ["check cell ex05-check-psnr was missing (added back)"]
    by_id = {_grader(c).get("grade_id"): c for c in graded.cells if _grader(c)}
    sol_by_id = {_grader(c).get("grade_id"): c for c in solution.cells if _grader(c)}
    assert by_id["ex05-check-y"].source == sol_by_id["ex05-check-y"].source
    assert by_id["ex05-check-y"].source.startswith(HIDDEN_REGION)
    assert "raise NotImplementedError()" in by_id["ex05-psnr"].source  # the student's (stub)
    assert graded.cells[-1].source == sol_by_id["ex05-check-psnr"].source
    assert all(not c.get("outputs") for c in graded.cells if c.cell_type == "code")
    markers = [c for c in graded.cells if c.metadata.get("sr_kit_grading")]
    assert len(markers) == 2 and "ex05-check-y" in markers[0].source


def test_grade_stops_a_notebook_at_its_time_limit(tmp_path):
    from sr_kit.exercises.grade import grade_notebook

    solution = _read(EXERCISES / "01_channel_shift_solution.ipynb")
    answer = next(c for c in solution.cells if _grader(c).get("solution"))
    slow = copy.deepcopy(answer)
    slow.source = "import time\ntime.sleep(60)"
    path = tmp_path / "slow.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[slow]), path)
    result = grade_notebook(path, EXERCISES, timeout=3)
    assert (result.exercise, result.points, result.possible) == ("01_channel_shift", 0, 10)
    assert "timed out after 3 s" in result.notes and "ex01-check did not finish" in result.notes


def test_grade_command_line_errors(tmp_path, capsys):
    from sr_kit.cli import main as cli_main
    from sr_kit.exercises.grade import grade_notebook

    assert cli_main(["exercises", "grade", str(tmp_path / "nope.ipynb")]) == 2
    assert "no such file" in capsys.readouterr().err
    other = tmp_path / "other.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), other)
    result = grade_notebook(other, EXERCISES)
    assert (result.exercise, result.points, result.possible) == ("?", 0, 0)
    assert "not one of the exercises" in result.notes
