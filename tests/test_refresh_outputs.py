"""tools/refresh_outputs.py saves the widgets' state, so that a static render (nbconvert HTML)
draws a widget such as notebook 11's ablation panel instead of its text form."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]
STATE = "application/vnd.jupyter.widget-state+json"
VIEW = "application/vnd.jupyter.widget-view+json"


def _views(nb) -> list[str]:
    return [
        out["data"][VIEW]["model_id"]
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if VIEW in out.get("data", {})
    ]


def test_every_widget_shown_in_a_committed_notebook_has_its_state_saved():
    shown = 0
    for path in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        views = _views(nb)
        if not views:
            continue
        shown += 1
        state = nb.metadata.get("widgets", {}).get(STATE, {})
        missing = [m for m in views if m not in state.get("state", {})]
        assert not missing, f"{path.name}: widget state missing; run tools/refresh_outputs.py"
        assert state.get("version_major") == 2, path.name
        assert len(json.dumps(state)) < 1_000_000, path.name  # it must not bloat the notebook
    assert shown >= 1  # notebook 11's ablation panel at least


@pytest.mark.slow
def test_refresh_keeps_the_state_of_a_widget(tmp_path, monkeypatch):
    monkeypatch.setenv("SR_KIT_QUICK", "1")  # refresh() sets them only when unset
    monkeypatch.setenv("SR_KIT_THREADS", "1")
    spec = importlib.util.spec_from_file_location("refresh", REPO / "tools" / "refresh_outputs.py")
    refresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(refresh)
    path = tmp_path / "w.ipynb"
    nb = new_notebook(cells=[new_code_cell("import ipywidgets as w\nw.IntSlider(value=3)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, path)
    refresh.refresh(path)
    nb = nbformat.read(path, as_version=4)
    (model_id,) = _views(nb)
    state = nb.metadata["widgets"][STATE]["state"][model_id]
    assert state["model_name"] == "IntSliderModel" and state["state"]["value"] == 3
    assert "execution" not in nb.cells[0].metadata  # timings still dropped
