"""Re-execute notebooks in place and store their outputs (what nbval compares against).

Usage: ``python tools/refresh_outputs.py notebooks/00_start_here.ipynb [...]`` (``make notebooks``).
Runs in quick mode with one thread, drops timing metadata so that diffs show only real output
changes, and honours the ``skip-execution`` cell tag. It saves the widgets' state in the
notebook's metadata (``widgets``), so that a static render (nbconvert HTML, GitHub, nbviewer)
draws a widget, such as the ablation panel of notebook 11, as it was when the notebook ran,
instead of its text form ``VBox(children=(HTML(...``. Widget state is written only by
notebooks that display widgets; the size of what it adds is printed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def refresh(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    skipped = []
    for cell in nb.cells:
        if "skip-execution" in cell.get("metadata", {}).get("tags", []):
            skipped.append(cell)
            cell.cell_type = "raw"  # nbclient runs only code cells
    os.environ.setdefault("SR_KIT_QUICK", "1")
    os.environ.setdefault("SR_KIT_THREADS", "1")
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        record_timing=False,
        store_widget_state=True,  # nb.metadata["widgets"]: what a static render draws
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    for cell in skipped:
        cell.cell_type = "code"
    for cell in nb.cells:
        cell.get("metadata", {}).pop("execution", None)
    nbformat.write(nb, path)
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    note = (
        f", widget state of {len(state)} widgets ({_size(nb.metadata['widgets'])})" if state else ""
    )
    print(f"refreshed {path} ({path.stat().st_size / 1e3:.0f} kB{note})")


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def _size(obj: object) -> str:
    import json

    return f"{len(json.dumps(obj)) / 1e3:.0f} kB"


def main(argv: list[str]) -> int:
    paths = [Path(p) for p in argv] or sorted(Path("notebooks").glob("[0-9][0-9]_*.ipynb"))
    for p in paths:
        refresh(p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
