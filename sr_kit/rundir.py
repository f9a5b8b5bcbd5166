"""Run folders: the one place that names the files of a training run.

A run folder holds ``checkpoint.pt`` (the training checkpoint, written while it trains; also
loadable as a model file) and ``model.pt`` (the final model file with its provenance and run
config). Explained in notebooks/10_training_recipes.ipynb.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runconfig import RunConfig

__all__ = ["CHECKPOINT", "MODEL", "RunFolder", "model_file"]

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"


@dataclass(frozen=True)
class RunFolder:
    """The folder of one run and the names of its files."""

    path: Path

    def __init__(self, path: str | os.PathLike) -> None:
        object.__setattr__(self, "path", Path(path))

    @classmethod
    def for_run(cls, run: RunConfig, root: str | os.PathLike = "runs", *,
                stamp: bool = True) -> RunFolder:  # fmt: skip
        """``<root>/<model>-x<scale>-<run hash[:8]>-s<seed>[-<time>]``.

        Without ``stamp`` the name depends only on the run, so the same run finds its folder
        again (the ablation grid resumes interrupted runs that way).
        """
        name = f"{run.model.name}-x{run.model.scale}-{run.hash()[:8]}-s{run.seed}"
        if stamp:
            name += "-" + time.strftime("%Y%m%d-%H%M%S")
        return cls(Path(root) / name)

    @property
    def checkpoint(self) -> Path:
        """The training checkpoint."""
        return self.path / CHECKPOINT

    @property
    def model(self) -> Path:
        """The final model file."""
        return self.path / MODEL

    def has_checkpoint(self) -> bool:
        return self.checkpoint.exists()


def model_file(path: str | os.PathLike) -> Path:
    """A model file as given, or a run folder's final model (else its last checkpoint)."""
    p = Path(path)
    if p.is_dir():
        folder = RunFolder(p)
        return next((f for f in (folder.model, folder.checkpoint) if f.exists()), folder.model)
    return p
