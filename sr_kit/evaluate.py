"""Evaluate a network on paired datasets under the published protocol.

Per image: LR (uint8) -> float in [0, 1] -> model -> x255, rounded to uint8 -> PSNR/SSIM on Y with
``scale`` pixels shaved. Averages are per-image means, as the tables in the literature report them.

Explained in notebooks/01_the_sr_problem.ipynb.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .config import PROTOCOL
from .device import resolve_device
from .fileio import atomic_path
from .imresize import to_uint8_tensor
from .metrics import psnr_y, ssim_y

if TYPE_CHECKING:
    import pandas as pd

    from .data import ImagePair

__all__ = [
    "PER_IMAGE_COLUMNS",
    "PROTOCOL",
    "evaluate",
    "summarize",
    "super_resolve",
    "write_csv_atomic",
]

# The per-image CSV of `sr-kit eval --csv`: exactly these columns, in this order.
PER_IMAGE_COLUMNS = ["dataset", "image", "scale", "psnr_y", "ssim_y"]


@torch.inference_mode()
def super_resolve(
    model: nn.Module, lr: np.ndarray, device: str | torch.device = "cpu"
) -> np.ndarray:
    """Run ``model`` on one uint8 (h, w, 3) image and return the uint8 (H, W, 3) result."""
    x = torch.from_numpy(lr.astype(np.float32)).to(device)  # a copy: lr may be read-only
    x = x.permute(2, 0, 1)[None].div_(255.0)
    y = model(x)[0].permute(1, 2, 0).mul(255.0)
    return to_uint8_tensor(y).cpu().numpy()


def evaluate(
    model: nn.Module,
    datasets: Iterable[Sequence[ImagePair]],
    *,
    scale: int,
    device: str | torch.device = "cpu",
    progress: bool = True,
    lpips: bool | None = False,
) -> pd.DataFrame:
    """Per-image PSNR_Y/SSIM_Y of ``model`` on each dataset; columns ``PER_IMAGE_COLUMNS``.

    ``lpips``: True adds an ``lpips`` column (an error says how to enable it when the package or
    its weights are missing); None adds it only when LPIPS is available; False never.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from .metrics import LpipsUnavailable, lpips_distance, lpips_model

    lpips_net = None
    if lpips or lpips is None:
        try:
            lpips_net = lpips_model()
        except LpipsUnavailable:
            if lpips:
                raise

    device = resolve_device(device)
    model = model.eval().to(device)
    rows = []
    for ds in datasets:
        if getattr(ds, "scale", scale) != scale:
            raise ValueError(f"dataset {ds.name} is prepared for x{ds.scale}, not x{scale}")
        for pair in tqdm(ds, desc=f"{ds.name} x{scale}", disable=not progress, leave=False):
            sr = super_resolve(model, pair.lr, device)
            if sr.shape != pair.hr.shape:
                raise ValueError(
                    f"{ds.name}/{pair.name}: model output {sr.shape} "
                    f"differs from HR {pair.hr.shape}"
                )
            rows.append(
                {
                    "dataset": ds.name,
                    "image": pair.name,
                    "scale": scale,
                    "psnr_y": psnr_y(sr, pair.hr, scale),
                    "ssim_y": ssim_y(sr, pair.hr, scale),
                    **(
                        {"lpips": lpips_distance(sr, pair.hr, scale, lpips_net)}
                        if lpips_net is not None
                        else {}
                    ),
                }
            )
    columns = PER_IMAGE_COLUMNS + (["lpips"] if lpips_net is not None else [])
    return pd.DataFrame(rows, columns=columns)


def summarize(per_image: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, scale): image count and mean PSNR_Y / SSIM_Y."""
    g = per_image.groupby(["dataset", "scale"], sort=False)
    extra = {"LPIPS": ("lpips", "mean")} if "lpips" in per_image else {}
    out = g.agg(
        images=("image", "count"), PSNR_Y=("psnr_y", "mean"), SSIM_Y=("ssim_y", "mean"), **extra
    )
    return out.reset_index()


def write_csv_atomic(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a CSV through a temporary file and a rename, so a crash never leaves half a file."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6f")
    return Path(path)
