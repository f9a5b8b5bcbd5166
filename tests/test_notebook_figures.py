"""Every figure committed in a notebook is made with the kit's figure style.

A student reads the committed outputs (in JupyterLab, or exported to HTML) at 100 % zoom, so
each PNG output of notebooks/*.ipynb and notebooks/exercises/*.ipynb must be at least
``MIN_WIDTH_PX`` (600) pixels wide and carry the style's 100 dpi in its PNG metadata (which
``sr_kit.nb.setup()`` / ``sr_kit.plots.use_style()`` sets; the old 72-dpi default does not
pass). The test reads the base64 image/png outputs with PIL; it needs no kernel.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from sr_kit.plots import DPI, MIN_WIDTH_PX

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb")) + sorted(
    (REPO / "notebooks" / "exercises").glob("*.ipynb")
)


def _pngs(path: Path) -> list[tuple[int, Image.Image]]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for index, cell in enumerate(nb.get("cells", [])):
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get("image/png")
            if data is None:
                continue
            raw = base64.b64decode("".join(data) if isinstance(data, list) else data)
            image = Image.open(io.BytesIO(raw))
            image.load()
            out.append((index, image))
    return out


def test_there_are_notebooks_to_check() -> None:
    assert len(NOTEBOOKS) >= 10, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(REPO / "notebooks")))
def test_notebook_figures_are_wide_enough_and_in_the_kit_style(path: Path) -> None:
    problems = []
    for cell, image in _pngs(path):
        width = image.size[0]
        dpi = image.info.get("dpi")
        if width < MIN_WIDTH_PX:
            problems.append(f"cell {cell}: {width} px wide (< {MIN_WIDTH_PX})")
        if dpi is None or round(float(dpi[0])) != DPI:
            problems.append(f"cell {cell}: dpi {dpi} in the PNG metadata (want {DPI})")
    assert not problems, f"{path.name}: " + "; ".join(problems)


def test_the_check_reads_png_metadata() -> None:
    """The check itself: a 72-dpi 460 px figure fails, a kit-style 800 px figure passes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sr_kit.plots import STYLE

    def png(**rc) -> Image.Image:
        with plt.rc_context(rc):
            fig = plt.figure()
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
            plt.close(fig)
        return Image.open(io.BytesIO(buf.getvalue()))

    old = png(**{"figure.figsize": (6.4, 1.0), "figure.dpi": 72, "savefig.dpi": "figure"})
    assert old.size[0] == 460 and round(old.info["dpi"][0]) == 72
    new = png(**STYLE)
    assert new.size[0] == 800 and round(new.info["dpi"][0]) == DPI
