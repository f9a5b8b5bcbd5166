"""Model files: the config travels with the weights, and loading never runs pickled code.

A model file is a ``torch.save`` of plain data only: ``{"format", "config", "graph", "state_dict",
"meta"}``. ``torch.load(weights_only=True)`` refuses anything else (no arbitrary objects, so a
malicious file cannot execute code), and ``load_model`` rebuilds the exact network from the
stored config before loading the weights.

Used in notebooks/06_lmswn.ipynb and 09_safdnet.ipynb ("The shipped checkpoint").
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from ..config import ConfigError, config_from_dict, config_to_dict
from ..fileio import atomic_torch_save

__all__ = ["FORMAT", "CheckpointError", "load_model", "read_model_file", "save_model"]

FORMAT = "sr-kit-model/1"


class CheckpointError(ValueError):
    """A model file that cannot be used; the message names the file and the problem."""


def save_model(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    graph: Literal["train", "deploy"] = "train",
    half: bool = False,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Save ``model`` (built by ``build_model``) with its config, atomically.

    Args:
        model: The network; ``model.config`` must be set (``build_model`` does it).
        path: Destination file (conventionally ``*.pt``).
        graph: "deploy" when ``model`` is the fused graph from ``deploy()``.
        half: Store floating-point weights as float16 (half the size; loaded back as float32).
        meta: Extra plain data (provenance: command, commit, device, metrics ...).
    """
    cfg = getattr(model, "config", None)
    if cfg is None:
        raise CheckpointError("save_model needs a model built by build_model (no .config found)")
    state = {
        k: (v.detach().half() if half and v.is_floating_point() else v.detach()).cpu()
        for k, v in model.state_dict().items()
    }
    data = {
        "format": FORMAT,
        "config": config_to_dict(cfg),
        "graph": graph,
        "state_dict": state,
        # plain JSON types only: weights_only loading refuses any class (even str subclasses
        # such as torch.__version__)
        "meta": json.loads(json.dumps(meta or {}, default=str)),
    }
    return atomic_torch_save(data, path)


def read_model_file(path: str | os.PathLike) -> dict[str, Any]:
    """Load and validate a model file without building anything (safe: weights_only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle errors, truncated zips, foreign objects
        raise CheckpointError(
            f"{path}: not a loadable sr-kit model file ({type(err).__name__}: {err})"
        ) from err
    # A training checkpoint (sr_kit.train) carries the same keys, so it loads as a model file too.
    if not isinstance(data, dict) or data.get("format") not in (FORMAT, "sr-kit-train/1"):
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path}: expected format {FORMAT!r}, found {found!r}")
    for key in ("config", "graph", "state_dict"):
        if key not in data:
            raise CheckpointError(f"{path}: missing key {key!r}")
    if data["graph"] not in ("train", "deploy"):
        raise CheckpointError(f"{path}: graph must be 'train' or 'deploy', got {data['graph']!r}")
    return data


def load_model(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the network stored in ``path`` and load its weights (float32, eval mode)."""
    from . import build_model, deploy

    data = read_model_file(path)
    try:
        cfg = config_from_dict(data["config"])
    except ConfigError as err:
        raise CheckpointError(f"{path}: stored config is not valid here: {err}") from err
    model = build_model(cfg)
    if data["graph"] == "deploy":
        model = deploy(model)
        model.config = cfg
    state = {k: v.float() if v.is_floating_point() else v for k, v in data["state_dict"].items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit {cfg.name}: {err}") from err
    return model.to(device).eval()
