"""sr-kit: building blocks, evaluation protocol and ablation tools for lightweight super-resolution.

Start with notebooks/00_start_here.ipynb.

The main entry points are importable from the top level (``sr_kit.build_model`` ...). They load
on first use, so ``import sr_kit`` stays light: no torch, matplotlib or ipywidgets.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it. Names of submodules (imresize, evaluate) are left out:
# once such a submodule is imported, the package attribute is the module, not the function.
_LAZY = {
    "build_model": "sr_kit.models",
    "deploy": "sr_kit.models",
    "load_model": "sr_kit.models",
    "save_model": "sr_kit.models",
    "get_config": "sr_kit.config",
    "train_config": "sr_kit.config",
    "switches": "sr_kit.config",
    "psnr_y": "sr_kit.metrics",
    "ssim_y": "sr_kit.metrics",
    "resolve_dataset": "sr_kit.data",
    "RunConfig": "sr_kit.runconfig",
    "DataConfig": "sr_kit.runconfig",
    "fit": "sr_kit.train",
    "train_sr": "sr_kit.experiment",
    "run_training": "sr_kit.experiment",
    "ablate": "sr_kit.ablation",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sr_kit' has no attribute {name!r}")
