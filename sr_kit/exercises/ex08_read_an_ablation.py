"""Checker of ``notebooks/exercises/08_read_an_ablation_solution.ipynb`` (reading LMSWN's
ablation, claims L1-L4, under the kit's noise rule).

Students write ``diff_ci(a, b)``: the difference of two rows' mean PSNRs and its Welch t 95 %
interval, and ``my_reading()``: a structured answer (a dict) saying, for each ablation row of
:data:`LMSWN_X4_CPU`, whether the base or the variant is better beyond seed noise or the two are
within noise, and whether the table supports claim L1. The reference is the kit's noise rule,
:func:`sr_kit.ablation.diff_interval` (Welch-Satterthwaite degrees of freedom,
:func:`~sr_kit.ablation.t_quantile`); the typical mistakes (2 SE, the pooled df, df = n - 1,
SD for SE, the sign) are modelled here to recognise them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from sr_kit.ablation import diff_interval, t_quantile, welch_df

from .harness import CheckResult, Session, call, fail, need_any

__all__ = [
    "CLAIM_VERDICTS",
    "LMSWN_X4_CPU",
    "PROVENANCE",
    "ROW_VERDICTS",
    "check_ablation_reading",
    "row",
]

#: PSNR_Y (dB) per row of ``results/ablation_lmswn_x4_cpu.csv``: label -> (n seeds, mean, SD).
#: A frozen copy, so that the exercise and its answers do not move when the table is re-run;
#: ``tests/test_exercises.py`` checks that it still agrees with the CSV.
LMSWN_X4_CPU: dict[str, tuple[int, float, float]] = {
    "base": (3, 26.310135, 0.068170),
    "head=conv3": (3, 26.616522, 0.036377),
    "asym=False": (3, 26.341251, 0.079270),
    "distill=fdc": (3, 26.422096, 0.084526),
    "weights=fixed": (3, 26.349585, 0.059572),
}
PROVENANCE = (
    "results/ablation_lmswn_x4_cpu.csv: LMSWN x4, 300 training steps (quick-cpu preset), "
    "3 seeds per row, PSNR_Y in dB on the kit's embedded validation images"
)
ROW_VERDICTS = ("base better", "variant better", "within noise")
CLAIM_VERDICTS = ("supported", "inconclusive", "contradicted")
_ROWS = [label for label in LMSWN_X4_CPU if label != "base"]
_KEYS = [*_ROWS, "L1"]


def row(label: str, table: Mapping[str, tuple[int, float, float]] = LMSWN_X4_CPU) -> dict:
    """One row of ``table`` as ``{"label", "n", "mean", "sd"}`` (what ``diff_ci`` receives)."""
    n, mean, sd = table[label]
    return {"label": label, "n": n, "mean": mean, "sd": sd}


def _reference(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[float, float, float]:
    delta, half = diff_interval(a["mean"], a["sd"], a["n"], b["mean"], b["sd"], b["n"])
    return delta, delta - half, delta + half


def _verdict(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    _, low, high = _reference(a, b)
    return "base better" if low > 0 else "variant better" if high < 0 else "within noise"


def _claim_l1() -> str:
    """L1: the pyramid head (base) beats a plain 3x3 head (the ``head=conv3`` row)."""
    v = _verdict(row("base"), row("head=conv3"))
    return {"base better": "supported", "variant better": "contradicted"}.get(v, "inconclusive")


def _mistakes(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Intervals (low, high) of the usual mistakes, keyed by the hint to give."""
    delta = a["mean"] - b["mean"]
    va, vb = a["sd"] ** 2 / a["n"], b["sd"] ** 2 / b["n"]
    se = math.sqrt(va + vb)
    sd = math.sqrt(a["sd"] ** 2 + b["sd"] ** 2)
    pooled = t_quantile(a["n"] + b["n"] - 2)
    df_n1 = t_quantile(min(a["n"], b["n"]) - 1)
    welch = t_quantile(welch_df(a["sd"], a["n"], b["sd"], b["n"]))
    return {
        "2 SE is the normal rule: with 3 seeds use the t quantile, t_quantile(df), about "
        "2.8 to 3.2 here": (delta - 2 * se, delta + 2 * se),
        "1.96 SE is the normal rule: with 3 seeds use the t quantile": (
            delta - 1.96 * se,
            delta + 1.96 * se,
        ),
        "the spreads differ: use Welch's df = (va + vb)^2 / (va^2 / (na - 1) + vb^2 / (nb - 1)) "
        "with va = sd_a^2 / n_a, not the pooled na + nb - 2": (
            delta - pooled * se,
            delta + pooled * se,
        ),
        "the df of a difference of two means is Welch's (about na + nb - 2 for equal spreads), "
        "not n - 1": (delta - df_n1 * se, delta + df_n1 * se),
        "the interval of a mean uses the standard error sd / sqrt(n), not the SD itself": (
            delta - welch * sd,
            delta + welch * sd,
        ),
        "the difference is a - b (base minus variant), not b - a": (
            -delta - welch * se,
            -delta + welch * se,
        ),
    }


def check_ablation_reading(
    diff_ci: Callable | None = None,
    my_reading: Callable | None = None,
    *,
    hidden: bool | None = None,
) -> CheckResult:
    """Check ``diff_ci(a, b) -> (delta, low, high)`` against ``sr_kit.ablation.diff_interval``
    (Welch t, 95 %) and the structured answer ``my_reading() -> dict`` against the verdicts
    that the noise rule gives on :data:`LMSWN_X4_CPU`. Hidden tests: unequal seed counts, a row
    without spread, the sign on a made-up pair, and no keys besides the five in the answer. An
    answer that calls the kit's ``diff_interval`` or ``welch_df`` scores 0."""
    need_any("check_ablation_reading", diff_ci=diff_ci, my_reading=my_reading)
    s = Session("check_ablation_reading", hidden)
    base = row("base")

    def interval(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[float, float, float]:
        out = call(diff_ci, "diff_ci", dict(a), dict(b))
        if not (isinstance(out, tuple | list) and len(out) == 3):
            fail(
                f"diff_ci returned {type(out).__name__}, expected (delta, low, high)",
                "return delta, delta - half, delta + half",
            )
        values = []
        for v in out:
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                fail(f"diff_ci returned a {type(v).__name__}", "return three floats")
            values.append(float(v))
        return values[0], values[1], values[2]

    def compare(a: Mapping[str, Any], b: Mapping[str, Any], tol: float = 1e-6) -> None:
        got, want = interval(a, b), _reference(a, b)
        if all(abs(g - w) <= tol for g, w in zip(got, want, strict=True)):
            return
        what = f"{a['label']} vs {b['label']}: ({got[0]:.4f}, {got[1]:.4f}, {got[2]:.4f})"
        if abs(got[0] - want[0]) > tol and abs(got[0] + want[0]) > tol:
            fail(f"{what}: the difference is wrong", "delta = a['mean'] - b['mean']")
        for hint, (low, high) in _mistakes(a, b).items():
            if abs(got[1] - low) <= 1e-4 and abs(got[2] - high) <= 1e-4:
                fail(what, hint)
        fail(
            what,
            "half = t_quantile(df) * sqrt(sd_a^2 / n_a + sd_b^2 / n_b), df by Welch-Satterthwaite",
        )

    def head_row() -> None:
        compare(base, row("head=conv3"))

    def all_rows() -> None:
        for label in _ROWS:
            compare(base, row(label))

    def symmetric() -> None:
        delta, low, high = interval(base, row("distill=fdc"))
        if not (low <= delta <= high) or abs((delta - low) - (high - delta)) > 1e-9:
            fail("the interval is not centred on the difference", "low = delta - half")

    def unequal_n() -> None:
        a = {"label": "a", "n": 2, "mean": 30.10, "sd": 0.08}
        b = {"label": "b", "n": 5, "mean": 29.90, "sd": 0.02}
        compare(a, b)

    def no_spread() -> None:
        a = {"label": "a", "n": 4, "mean": 28.0, "sd": 0.05}
        b = {"label": "b", "n": 4, "mean": 28.2, "sd": 0.0}
        compare(a, b)

    def negative() -> None:
        a = {"label": "a", "n": 5, "mean": 27.00, "sd": 0.03}
        b = {"label": "b", "n": 5, "mean": 27.20, "sd": 0.04}
        compare(a, b)

    def answer() -> dict:
        out = call(my_reading, "my_reading")
        if not isinstance(out, Mapping):
            fail(f"my_reading returned {type(out).__name__}, expected a dict", "return {...}")
        return dict(out)

    def keys() -> None:
        out = answer()
        missing = [k for k in _KEYS if k not in out]
        if missing:
            fail(f"missing keys {missing}", f"the keys are {_KEYS}")
        for k in _ROWS:
            if out[k] not in ROW_VERDICTS:
                fail(f"{k!r}: {out[k]!r} is not one of {ROW_VERDICTS}")
        if out["L1"] not in CLAIM_VERDICTS:
            fail(f"'L1': {out['L1']!r} is not one of {CLAIM_VERDICTS}")

    def no_extra_keys() -> None:
        extra = sorted(set(answer()) - set(_KEYS), key=str)
        if extra:
            fail(f"unexpected keys {extra}", f"answer exactly the keys {_KEYS}")

    def row_verdict(label: str) -> None:
        got = answer().get(label)
        if got != _verdict(base, row(label)):
            fail(
                f"{got!r} is not what the noise rule says",
                "compute diff_ci(base, row): beyond noise only when the interval excludes 0; "
                "above 0 the base is better, below 0 the variant",
            )

    def claim() -> None:
        got = answer().get("L1")
        if got != _claim_l1():
            fail(
                f"{got!r} does not follow from the head=conv3 row",
                "L1 says the pyramid head beats a plain 3x3 head: supported if the base is "
                "better beyond noise, contradicted if the variant is, else inconclusive",
            )

    forbidden = {
        "sr_kit.ablation.diff_interval": diff_interval,
        "sr_kit.ablation.welch_df": welch_df,
        "the checker's _reference": _reference,
    }
    if diff_ci is not None:
        s.own_work("diff_ci", lambda: interval(base, row("head=conv3")), forbidden, "diff_ci")
        s.check(
            "returns (delta, low, high) as three numbers", lambda: interval(base, base) and None
        )
        s.check("base vs head=conv3 within 1e-6 of the kit's Welch t interval", head_row, points=2)
        s.check("base vs each of the four ablation rows", all_rows, "diff_ci")
        s.check("the interval is centred on the difference", symmetric, "diff_ci")
        s.check("unequal seed counts (2 vs 5)", unequal_n, "diff_ci", hidden=True)
        s.check("a row without spread", no_spread, "diff_ci", hidden=True)
        s.check("a negative difference", negative, "diff_ci", hidden=True)
    if my_reading is not None:
        s.own_work("my_reading", lambda: call(my_reading, "my_reading"), forbidden, "my_reading")
        s.check("the answer has the five keys and allowed values", keys, "my_reading")
        for label in _ROWS:
            s.check(f"verdict for {label}", lambda label=label: row_verdict(label), "my_reading")
        s.check("claim L1 read off the table", claim, "my_reading", points=2)
        s.check("no keys besides the five", no_extra_keys, "my_reading", hidden=True)
    return s.finish()
