"""The kit's noise rule (sr_kit.ablation): a t-based 95 % interval for the difference of two means
over seeds, Welch's t with the Welch-Satterthwaite degrees of freedom; its quantiles, its table
fallback, the summary's flags, and the committed ablation tables' flags recomputed by it."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from sr_kit import ablation
from sr_kit.ablation import (
    diff_interval,
    grid_runs,
    mean_interval,
    resolvable_difference,
    summarize_runs,
    t_quantile,
    welch_df,
)
from sr_kit.config import get_config
from sr_kit.runconfig import RunConfig

RESULTS = Path(__file__).resolve().parents[1] / "results"


@pytest.mark.parametrize(
    ("df", "t"),
    [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (8, 2.306), (30, 2.042), (math.inf, 1.960)],
)
def test_t_quantiles_are_the_textbook_values(df, t):
    assert t_quantile(df) == pytest.approx(t, abs=5e-4)
    assert ablation._t_from_table(df) == pytest.approx(t, abs=5e-4)


def test_the_table_fallback_follows_scipy_between_and_beyond_its_rows():
    for df in (1.5, 2.4, 3.46, 5.9, 12.3, 29.5, 31.0, 45.0, 200.0, 1e6):
        exact, table = t_quantile(df), ablation._t_from_table(df)
        assert exact <= table, df  # never less cautious than the exact quantile
        assert table - exact < (0.01 if df > 30 else t_quantile(int(df)) - exact + 1e-3), df
    assert t_quantile(2, level=0.99) == pytest.approx(9.925, abs=1e-3)  # scipy: any level
    with pytest.raises(ValueError, match="95 %"):
        ablation._t_from_table(2, level=0.99)
    with pytest.raises(ValueError, match="positive"):
        t_quantile(0)


def test_welch_degrees_of_freedom():
    assert welch_df(0.1, 3, 0.1, 3) == pytest.approx(4)  # equal spreads: the pooled 2n - 2
    assert welch_df(0.1, 5, 0.1, 5) == pytest.approx(8)
    assert 2 < welch_df(0.1, 3, 0.01, 3) < 2.1  # one spread dominates: its own n - 1
    assert welch_df(0.0, 3, 0.0, 4) == 5  # no spread at all: the pooled value


def test_diff_interval_and_its_edge_cases():
    # equal spreads: t(4) * sd * sqrt(2/3)
    delta, hw = diff_interval(26.1, 0.1, 3, 26.0, 0.1, 3)
    assert delta == pytest.approx(0.1)
    assert hw == pytest.approx(2.7764 * 0.1 * math.sqrt(2 / 3), rel=1e-4)
    assert resolvable_difference(0.1, 3) == pytest.approx(hw)
    assert resolvable_difference(0.1, 5) < resolvable_difference(0.1, 3)
    assert resolvable_difference(0.29, 3) == pytest.approx(0.657, abs=1e-3)  # notebook 10's spread
    assert math.isnan(diff_interval(1.0, 0.1, 1, 0.0, 0.1, 3)[1])  # one seed: nothing to say
    assert math.isnan(diff_interval(1.0, math.nan, 3, 0.0, 0.1, 3)[1])
    assert diff_interval(1.0, 0.0, 3, 1.0, 0.0, 3) == (0.0, 0.0)
    assert mean_interval(0.1, 3) == pytest.approx(4.3027 * 0.1 / math.sqrt(3), rel=1e-4)
    assert math.isnan(mean_interval(0.1, 1))


def test_three_seeds_where_two_standard_errors_say_beyond_noise_and_the_t_interval_within():
    # SAFDNet's row distill=False against its base in the table of 2026-11-21 (results/README.md)
    delta, hw = diff_interval(26.606804, 0.015532, 3, 26.652347, 0.023579, 3)
    se = math.sqrt(0.015532**2 / 3 + 0.023579**2 / 3)
    assert abs(delta) > 2 * se  # the old rule: beyond noise
    assert abs(delta) <= hw  # Welch t (df 3.5, t 2.96): within noise
    assert hw == pytest.approx(0.0482, abs=1e-4)


def _frame(runs, psnr):
    """A registry-like frame: one done run per (grid run, seed) with the given PSNRs."""
    rows, i = [], 0
    for run, values in zip(runs, psnr, strict=True):
        for seed, value in enumerate(values):
            i += 1
            rows.append({
                "id": i, "status": "done", "seed": seed,
                "run_hash": RunConfig(model=run.model, train=run.train, data=run.data,
                                      seed=seed).hash(),
                "params": 100, "params_deploy": 90, "macs": 1000, "device": "cpu",
                "protocol": "y_bt601", "psnr_y/embedded": value,
            })  # fmt: skip
    return pd.DataFrame(rows)


def test_summary_flags_use_the_t_interval_not_two_standard_errors():
    base = RunConfig(model=get_config("lmswn", scale=2, channels=8, num_blocks=1))
    runs = grid_runs(base, {"asym": [False], "weights": ["fixed"]}, mode="one-at-a-time")
    psnr = [
        [26.00, 26.03, 26.06],  # base: mean 26.03, sd 0.03
        [26.07, 26.08, 26.09],  # +0.05, sd 0.01: 2 SE = 0.037 (beyond), t interval 0.069 (within)
        [26.13, 26.14, 26.15],  # +0.11: beyond by either rule
    ]
    table = summarize_runs(_frame(runs, psnr), runs, [0, 1, 2], base=base)
    assert list(table.label) == ["base", "asym=False", "weights=fixed"]
    d, hw = table["psnr_y/embedded_delta"], table["psnr_y/embedded_ci95"]
    se = math.sqrt(0.03**2 / 3 + 0.01**2 / 3)
    assert d[1] == pytest.approx(0.05) and d[1] > 2 * se
    assert hw[1] == pytest.approx(t_quantile(welch_df(0.01, 3, 0.03, 3)) * se)
    assert math.isnan(hw[0])
    assert table.within_noise.tolist() == [None, True, False]
    assert table["psnr_y/embedded_within_noise"].tolist() == [None, True, False]
    # one seed on one side: nothing can be said
    table = summarize_runs(_frame(runs, [[26.0, 26.02], [26.5], [26.1, 26.12]]), runs, [0, 1],
                           base=base)  # fmt: skip
    assert table.within_noise.tolist() == [None, None, False]  # +0.1 > t(2) * 0.014


@pytest.mark.parametrize("name", ["ablation_lmswn_x4_cpu.csv", "ablation_safdnet_x4_cpu.csv"])
def test_committed_tables_carry_the_flags_of_the_t_rule(name):
    table = pd.read_csv(RESULTS / name)
    base = table[table.is_base].iloc[0]
    col = "psnr_y/embedded"

    def stats(r):
        return r[f"{col}_mean"], r[f"{col}_std"], int(r[f"{col}_n"])

    for _, row in table[~table.is_base].iterrows():
        delta, hw = diff_interval(*stats(row), *stats(base))
        assert row[f"{col}_delta"] == pytest.approx(delta, abs=2e-6)
        assert row[f"{col}_ci95"] == pytest.approx(hw, abs=2e-6)
        assert bool(row.within_noise) == (abs(delta) <= hw), row.label
        assert bool(row[f"{col}_within_noise"]) == bool(row.within_noise)
