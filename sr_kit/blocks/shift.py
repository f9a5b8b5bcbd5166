"""Partial channel shift as a module (the op itself is ``sr_kit.ops.channel_shift``).

Explained in notebooks/07_channel_shift.ipynb.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..ops import channel_shift

__all__ = ["ChannelShift"]


class ChannelShift(nn.Module):
    """Move a share of the channels one (or ``px``) pixel left/right/up/down; zero parameters.

    ShiftViT (Wang et al., AAAI 2022) showed that shifting 1/3 of the channels mixes spatial
    information for free; SAFDNet (claim S3) puts it inside the spatial attention. With
    ``ratio=0`` the module is an identity.

    Explained in notebooks/07_channel_shift.ipynb. Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, ratio: float = 1 / 3, px: int = 1) -> None:
        super().__init__()
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"ChannelShift ratio must be in [0, 1], got {ratio}")
        if px < 1:
            raise ValueError(f"ChannelShift px must be >= 1, got {px}")
        self.ratio = ratio
        self.px = px

    def forward(self, x: Tensor) -> Tensor:
        return channel_shift(x, self.ratio, self.px) if self.ratio > 0 else x

    def extra_repr(self) -> str:
        return f"ratio={self.ratio:.4g}, px={self.px}"
