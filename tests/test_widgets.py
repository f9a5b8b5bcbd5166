"""The ablation panel, driven in-process: controls, cost readouts, Train, errors."""

from __future__ import annotations

import dataclasses

import ipywidgets as W
import numpy as np
import pytest

from sr_kit.config import LMSWNConfig, SAFDNetConfig, TrainConfig
from sr_kit.experiment import RunOutcome
from sr_kit.runconfig import RunConfig
from sr_kit.rundir import RunFolder
from sr_kit.runs import Registry
from sr_kit.widgets import AblationPanel, measure_costs

SMALL = LMSWNConfig(scale=2, channels=16, num_blocks=2)


@pytest.fixture(scope="module")
def panel():
    return AblationPanel(SMALL, measure_latency=False)


def test_controls_are_generated_from_the_config(panel):
    c = panel.controls
    assert list(c) == [f.name for f in dataclasses.fields(LMSWNConfig)]
    assert isinstance(c["asym"], W.Checkbox) and c["asym"].value is True
    assert isinstance(c["head"], W.Dropdown)
    assert list(c["head"].options) == [("pyramid", "pyramid"), ("dilated", "dilated"),
                                       ("conv3", "conv3")]  # fmt: skip
    assert isinstance(c["channels"], W.BoundedIntText) and c["channels"].value == 16
    assert isinstance(c["scale"], W.Dropdown) and list(c["scale"].options) == [2, 3, 4]
    rows = [w for w in panel.widget.children if isinstance(w, W.HBox)]
    labels = {r.children[0].description: r.children[1].value for r in rows[: len(c)]}
    assert "L1: a pyramid-like multi-scale module" in labels["head"]  # the claim beside it
    assert "L2: strengthened square convolution" in labels["asym"]
    assert panel.value == SMALL


def test_readout_updates_in_place_with_the_difference_to_the_full_model(panel):
    full = measure_costs(SMALL, latency_lr=None)
    assert f"params: {full.params:,}<br>" in panel.readout.value
    panel.controls["asym"].value = False  # observers run synchronously
    off = measure_costs(dataclasses.replace(SMALL, asym=False), latency_lr=None)
    assert off.params_deploy == full.params_deploy  # fused away: claim L2 is free at inference
    removed = full.params - off.params
    assert removed == 2 * 3 * 2 * 16 * 16 * 3  # 2 blocks x 3 stages x (1x3 + 3x1), no bias
    assert f"params: {off.params:,} (−{removed:,} vs full)" in panel.readout.value
    assert "params (deployed): " + f"{full.params_deploy:,}<br>" in panel.readout.value
    panel.controls["asym"].value = True
    assert "vs full" not in panel.readout.value.split("<br>")[0]


def test_latency_is_measured_when_asked():
    p = AblationPanel(SMALL)
    assert "CPU latency (deployed, LR 160x90): " in p.readout.value
    assert "x the full model" not in p.readout.value
    p.controls["head"].value = "conv3"
    assert "x the full model)" in p.readout.value


def test_invalid_combination_shows_an_error_and_disables_train():
    p = AblationPanel(SAFDNetConfig(scale=2, channels=16, num_blocks=1), measure_latency=False)
    p.controls["channels"].value = 18  # not divisible by 4
    assert "invalid config" in p.status.value and "channels=18" in p.status.value
    assert p.train_button.disabled
    assert p.train() is None  # pressing Train anyway does nothing but say why
    p.controls["channels"].value = 16
    assert p.status.value == "" and not p.train_button.disabled


def _fake_trainer(psnrs):
    calls = []

    def trainer(run, *, callbacks, **kw):
        calls.append((run.model, run.seed))
        for cb in callbacks:
            cb({"step": run.train.steps, "loss": 0.1, "learning_rate": 1e-3})
        return RunOutcome(
            run_id=len(calls),
            run=run,
            folder=RunFolder(kw["run_dir"]),
            history=[],
            steps=run.train.steps,
            wall_s=0.1,
            status="done",
            device="cpu",
            metrics=[{"dataset": "embedded", "psnr_y": psnrs[len(calls) - 1]}],
        )

    return trainer, calls


def test_train_button_records_runs_and_updates_table_and_plot():
    trainer, calls = _fake_trainer([30.0, 31.0, 28.5])
    base = RunConfig(model=SMALL, train=TrainConfig(steps=7, device="cpu"))
    p = AblationPanel(base, measure_latency=False, trainer=trainer)
    p.train_button.click()
    p.train_button.click()  # a second seed of the same config
    p.controls["weights"].value = "fixed"
    p.train_button.click()
    assert [(c.weights, s) for c, s in calls] == [("scalar", 0), ("scalar", 1), ("fixed", 0)]
    assert p.progress.value == p.progress.max == 7
    table = p.results()
    assert table.label.tolist() == ["full model", "weights=fixed"]
    assert table.n.tolist() == [2, 1]
    assert table.psnr_mean.tolist() == [30.5, 28.5]
    assert "weights=fixed" in p.table.value and "30.5" in p.table.value
    ax = p.figure.axes[0]  # the params-vs-PSNR figure, redrawn in place
    assert ax.get_title().startswith("lmswn: brief trainings (cpu)\n")
    assert "95 % t interval" in ax.get_title()
    assert [t.get_text() for t in ax.texts] == ["full model", "weights=fixed"]
    # the kit's figure style: 100 dpi, at least 600 px wide, readable text
    assert p.figure.dpi == 100 and p.figure.get_size_inches()[0] * p.figure.dpi >= 600
    assert min(t.get_fontsize() for t in ax.texts) >= 10
    # the two seeds of the full model: error bar = t(0.975, 1) * std / sqrt(2)
    from matplotlib.container import ErrorbarContainer

    (eb,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    seg = eb.lines[2][0].get_segments()[0]
    half = 12.706 * np.std([30.0, 31.0], ddof=1) / np.sqrt(2)
    assert seg[1, 1] - seg[0, 1] == pytest.approx(2 * half, rel=1e-4)
    assert "PSNR_Y 28.50 dB" in p.status.value


def test_training_errors_show_in_the_panel():
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory (simulated)")

    p = AblationPanel(SMALL, measure_latency=False, trainer=broken)
    assert p.train() is None
    assert "training failed: RuntimeError: out of memory (simulated)" in p.status.value
    assert not p.train_button.disabled


def test_real_training_in_quick_mode_lands_in_the_registry(tmp_path):
    reg = Registry(tmp_path / "r.sqlite")
    train = TrainConfig(steps=4, batch_size=2, patch=12, device="cpu", val_every=0, amp=False,
                        channels_last=False)  # fmt: skip
    base = RunConfig(model=LMSWNConfig(scale=2, channels=8, num_blocks=1), train=train)
    p = AblationPanel(base, registry=reg, measure_latency=False)
    assert p.run == base  # the run the button trains next: the base config, seed 0
    record = p.train()
    assert record is not None and record["steps"] == 4 and record["dataset"] == "embedded"
    row = reg.get(record["run_id"])
    assert row["status"] == "done" and row["command"] == "sr_kit.widgets.AblationPanel"
    assert row["metrics"]["embedded"]["psnr_y"] == pytest.approx(record["psnr_y"])
    assert RunConfig.from_dict(row["run"]).model == base.model and row["run"]["seed"] == 0
    assert p.run.seed == 1
