"""Notebook helpers: one set-up call, and honest display of where a result came from.

Every numbered notebook starts with ``env = setup()``. It fixes the seeds, the thread count
(``SR_KIT_THREADS``, default 2) and the kit's figure style (``sr_kit.plots.STYLE``: 100 dpi,
800 px wide by default), and decides *quick mode*: on a CPU, or when ``SR_KIT_QUICK=1``,
training cells use short CPU settings. Results that came from longer runs are read from
committed files under ``results/`` and ``checkpoints/`` and always shown with the device, date
and command that produced them (``show_provenance``).

Introduced in notebooks/00_start_here.ipynb ("Your environment"); the conventions that rely on
it are in notebooks/README.md.
"""

from __future__ import annotations

import json
import os
import platform
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__

__all__ = ["REPO", "Env", "load_result", "setup", "show_provenance"]

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Env:
    """What ``setup`` decided."""

    quick: bool
    device: str
    threads: int
    seed: int

    def label(self) -> str:
        """How to label figures made in this session, e.g. 'CPU quick mode'."""
        return "CPU quick mode" if self.quick else f"{self.device.upper()} run"


def setup(seed: int = 0, *, verbose: bool = True) -> Env:
    """Seeds, threads, quick mode and the kit's figure style for a notebook session."""
    threads = int(os.environ.get("SR_KIT_THREADS", "2"))
    torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    cuda = torch.cuda.is_available()
    quick = os.environ.get("SR_KIT_QUICK") == "1" or not cuda
    device = "cuda" if cuda and not quick else "cpu"
    try:  # the kit's figure style (sr_kit.plots.STYLE): 100 dpi, 800 px wide by default
        from .plots import use_style

        use_style()
    except ImportError:
        pass
    env = Env(quick=quick, device=device, threads=threads, seed=seed)
    if verbose:
        mode = "quick mode (short CPU settings)" if quick else "full mode"
        n_threads = f"{threads} thread{'s' if threads != 1 else ''}"
        print(
            f"sr-kit {__version__} | torch {torch.__version__} | python "
            f"{platform.python_version()} | device {device} | {n_threads} | {mode}"
        )
    return env


def show_provenance(meta: dict[str, Any] | str | os.PathLike) -> dict[str, Any]:
    """Print where a committed result came from (a dict, or a .json file next to a checkpoint)."""
    if not isinstance(meta, dict):
        meta = json.loads(Path(meta).read_text())
    keys = ("device", "date", "commit", "torch", "command", "steps", "wall_s")
    for key in keys:
        if key in meta:
            print(f"{key:>8}: {meta[key]}")
    return meta


def load_result(name: str):
    """A committed result table ``results/<name>`` as a DataFrame, with its provenance printed."""
    import pandas as pd

    path = REPO / "results" / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is not in this checkout (see results/README.md)")
    frame = pd.read_csv(path)
    cols = [c for c in ("device", "date", "commit") if c in frame.columns]
    if cols:
        print(
            f"{name}: " + "; ".join(f"{c}: {', '.join(map(str, frame[c].unique()))}" for c in cols)
        )
    return frame
