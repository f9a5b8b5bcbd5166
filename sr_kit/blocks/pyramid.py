"""The multi-scale ("pyramid-like") shallow feature extractor of LMSWN (claim L1).

Explained in notebooks/03_pyramid_convs.ipynb.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from .conv import conv

__all__ = ["PyramidConv"]

Variant = Literal["pyramid", "dilated", "conv3"]


class PyramidConv(nn.Module):
    """Parallel convolutions of growing receptive field, concatenated and fused by a 1x1.

    ``pyramid``: 3x3, 5x5 and 7x7 (receptive fields 3, 5, 7). ``dilated``: three 3x3 with
    dilation 1, 2, 3 (the same receptive fields for fewer parameters). ``conv3``: one 3x3, the
    single-scale head of IMDN/RFDN (the ablation baseline).

    Explained in notebooks/03_pyramid_convs.ipynb. Shape: (B, C_in, H, W) -> (B, C_out, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, variant: Variant = "pyramid") -> None:
        super().__init__()
        self.variant = variant
        if variant == "pyramid":
            branches = [conv(in_channels, out_channels, k) for k in (3, 5, 7)]
        elif variant == "dilated":
            branches = [conv(in_channels, out_channels, 3, dilation=d) for d in (1, 2, 3)]
        elif variant == "conv3":
            branches = [conv(in_channels, out_channels, 3)]
        else:
            raise ValueError(f"PyramidConv variant must be pyramid, dilated or conv3: {variant!r}")
        self.branches = nn.ModuleList(branches)
        n = len(branches)
        self.merge = nn.Conv2d(n * out_channels, out_channels, 1) if n > 1 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        if len(self.branches) == 1:
            return self.branches[0](x)
        return self.merge(torch.cat([b(x) for b in self.branches], dim=1))  # (B, 3 C_out, H, W)

    def extra_repr(self) -> str:
        return f"variant={self.variant}"
