"""The family networks in the front ends: `sr-kit info`, the ablation panel and the grid."""

from __future__ import annotations

import json

import pytest

from sr_kit.ablation import grid_runs
from sr_kit.cli import _parse_grid, main
from sr_kit.config import get_config, switches
from sr_kit.runconfig import RunConfig
from sr_kit.runs import Registry

FAMILY = ["carn", "carn_m", "smsr", "rlfn", "rlfn_s", "bsrn", "bsrn_s", "dlgsanet",
          "dlgsanet_tiny"]  # fmt: skip


@pytest.mark.parametrize("name", FAMILY)
def test_every_family_network_has_claimed_switches(name):
    sw = switches(get_config(name, scale=4))
    assert sw, f"{name} has no ablation switch"
    assert all(s["claim"] for s in sw.values())  # every switch names the idea it tests


@pytest.mark.parametrize("name", ["rlfn", "bsrn_s"])  # info counts MACs at 720p: cheap ones
def test_info_lists_the_switches(name, capsys):
    assert main(["info", "--model", name, "--scale", "4", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info["switches"]) == set(switches(get_config(name, scale=4)))


@pytest.mark.parametrize("name", ["bsrn", "carn_m", "smsr"])
def test_panel_and_grid_take_the_family(name):
    pytest.importorskip("ipywidgets")
    from sr_kit.widgets import AblationPanel

    cfg = get_config(name, scale=4)
    panel = AblationPanel(cfg, registry=Registry(":memory:"))
    sw = switches(cfg)
    assert set(sw) <= set(panel.controls)
    key, info = next(iter(sw.items()))
    other = next(c for c in info["choices"] if c != info["value"])
    panel.controls[key].value = other
    assert getattr(panel.value, key) == other
    run = RunConfig(model=cfg)
    grid = _parse_grid([f"{key}={other}"], run)
    assert grid == {key: [str(other)]}
    base, flipped = grid_runs(run, grid)
    assert base == run and getattr(flipped.model, key) == other
