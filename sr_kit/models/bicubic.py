"""The bicubic baseline as a network: no parameters, MATLAB-compatible upscaling.

Met in notebooks/00_start_here.ipynb; its kernel is explained in notebooks/01_the_sr_problem.ipynb.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..config import BicubicConfig
from ..imresize import imresize, resize_macs


class Bicubic(nn.Module):
    """Upscale (B, C, h, w) in [0, 1] to (B, C, s*h, s*w) with MATLAB's bicubic kernel.

    The baseline row of every SR table; it has no parameters, so training it is refused.
    Evaluated in notebooks/00_start_here.ipynb and 01_the_sr_problem.ipynb.
    """

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return imresize(x, self.scale)

    def count_macs(self, inputs: Tensor | tuple[Tensor, ...]) -> int:
        """The resize's multiply-adds; fvcore cannot trace the sparse product, so we count them."""
        x = inputs[0] if isinstance(inputs, tuple) else inputs
        return resize_macs(tuple(x.shape), self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


def build_bicubic(cfg: BicubicConfig) -> Bicubic:
    return Bicubic(cfg.scale)
