"""The network skeleton shared by IMDN, RFDN, LMSWN and SAFDNet.

Written out in notebooks/06_lmswn.ipynb and reused in notebooks/09_safdnet.ipynb.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ..blocks import PixelShuffleUp, conv
from ..blocks.distill import NEG_SLOPE

__all__ = ["DistillNet"]


class DistillNet(nn.Module):
    """Head -> N blocks -> concat of every block output -> 1x1 + LReLU -> 3x3 -> + head
    features -> 3x3 conv to 3 s^2 channels -> PixelShuffle(s). (IMDN's layout, kept by RFDN.)

    Takes RGB in [0, 1] (no mean shift). Shape: (B, 3, h, w) -> (B, 3, s*h, s*w).

    Explained in notebooks/06_lmswn.ipynb (built there with the same attribute names).
    """

    def __init__(self, head: nn.Module, blocks: Iterable[nn.Module], channels: int, scale: int):
        super().__init__()
        self.head = head
        self.blocks = nn.ModuleList(blocks)
        n = len(self.blocks)
        self.gather = nn.Sequential(nn.Conv2d(n * channels, channels, 1), nn.LeakyReLU(NEG_SLOPE))
        self.post = conv(channels, channels)
        self.upsampler = PixelShuffleUp(channels, scale)
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        # ---- 1. shallow features ----
        f0 = self.head(x)
        # ---- 2. deep features: every block's output is kept ----
        outs, h = [], f0
        for block in self.blocks:
            h = block(h)
            outs.append(h)
        # ---- 3. gather (B, N*C, h, w) -> (B, C, h, w), global residual ----
        y = self.post(self.gather(torch.cat(outs, dim=1))) + f0
        # ---- 4. upsample ----
        return self.upsampler(y)
