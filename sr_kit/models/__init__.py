"""Networks by name: ``build_model("bicubic", scale=4)`` or ``build_model(cfg)``.

``build_model`` is first used in notebooks/00_start_here.ipynb, ``deploy`` is explained in
notebooks/05_asymmetric_conv.ipynb, and notebooks 06 (LMSWN) and 09 (SAFDNet) assemble the
kit's own networks; the family is in notebooks/13_the_family.ipynb.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from ..config import CONFIGS, ConfigError, ModelConfig, get_config
from . import bsrn, carn, dlgsanet, rlfn, smsr  # the family; each module has a BUILDERS dict
from .bicubic import Bicubic, build_bicubic
from .checkpoint import CheckpointError, load_model, save_model
from .nets import build_imdn, build_lmswn, build_rfdn, build_safdnet
from .trunk import DistillNet

__all__ = [
    "MODELS",
    "Bicubic",
    "CheckpointError",
    "DistillNet",
    "build_model",
    "deploy",
    "load_model",
    "save_model",
]

# Model name -> builder taking its config. Only this registry turns a config into modules.
MODELS: dict[str, Callable[[Any], nn.Module]] = {
    "bicubic": build_bicubic,
    "imdn": build_imdn,
    "rfdn": build_rfdn,
    "lmswn": build_lmswn,
    "safdnet": build_safdnet,
}
for _family in (rlfn, bsrn, carn, smsr, dlgsanet):
    MODELS.update(_family.BUILDERS)


def build_model(name_or_config: str | ModelConfig, **overrides: Any) -> nn.Module:
    """Build a network from a model name (with field overrides) or from a config object."""
    if isinstance(name_or_config, ModelConfig):
        cfg = name_or_config
        if overrides:
            cfg = get_config(cfg.name, **{**_fields(cfg), **overrides})
    else:
        cfg = get_config(name_or_config, **overrides)
    if cfg.name not in MODELS:
        raise ConfigError(f"no builder for model {cfg.name!r}; known: {', '.join(sorted(MODELS))}")
    model = MODELS[cfg.name](cfg)
    model.config = cfg  # so checkpoints and `sr-kit info` can recover it
    return model


def _fields(cfg: ModelConfig) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def deploy(model: nn.Module) -> nn.Module:
    """The inference graph: a copy with every fusable block (``fuse()``) replaced by its fused form.

    The original model is left untouched. Outputs are identical up to float rounding.
    """
    fused = copy.deepcopy(model).eval()

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if inspect.ismethod(getattr(child, "fuse", None)):
                setattr(parent, name, child.fuse())
            else:
                swap(child)

    swap(fused)
    return fused


assert set(MODELS) == set(CONFIGS), "every config needs a builder"
