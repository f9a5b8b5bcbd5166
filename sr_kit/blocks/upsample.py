"""The sub-pixel upsampler shared by every network in the kit.

Used in notebooks/06_lmswn.ipynb (the network's last stage) and counted in 02_counting_cost.
"""

from __future__ import annotations

from torch import nn

__all__ = ["PixelShuffleUp"]


class PixelShuffleUp(nn.Sequential):
    """3x3 conv to ``out_channels * scale**2`` channels, then PixelShuffle (ESPCN, Shi et al. 2016).

    Shape: (B, C, h, w) -> (B, out_channels, scale*h, scale*w).

    Used in notebooks/06_lmswn.ipynb, where the network is assembled.
    """

    def __init__(self, channels: int, scale: int, out_channels: int = 3) -> None:
        super().__init__(
            nn.Conv2d(channels, out_channels * scale * scale, 3, padding=1),
            nn.PixelShuffle(scale),
        )
        self.scale = scale
