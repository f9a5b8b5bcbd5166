"""Convolutions: a same-padding helper and the asymmetric convolution block (ACB) with fusion.

Explained in notebooks/05_asymmetric_conv.ipynb (``conv`` is the plain 3x3 the notebooks use
throughout, counted in 02_counting_cost).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["AsymConv", "conv"]


def conv(
    in_channels: int, out_channels: int, kernel_size: int = 3, *, dilation: int = 1
) -> nn.Conv2d:
    """A stride-1 conv that keeps the spatial size (padding = dilation * (k - 1) / 2)."""
    return nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size,
        padding=dilation * (kernel_size - 1) // 2,
        dilation=dilation,
    )


class AsymConv(nn.Module):
    """3x3 conv plus parallel 1x3 and 3x1 convs, summed (ACNet's ACB, Ding et al., ICCV 2019).

    The extra branches strengthen the skeleton (central row and column) of the square kernel
    during training; ``fuse()`` folds them into one 3x3 conv for inference, so the deployed model
    costs exactly what a plain 3x3 does. No BatchNorm (SR networks use none), and only the 3x3
    branch has a bias, since the biases of summed branches would merge into one anyway.

    Explained in notebooks/05_asymmetric_conv.ipynb. Shape: (B, C_in, H, W) -> (B, C_out, H, W).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        asym: Ablation switch (LMSWN claim L2). False keeps only the 3x3 conv.
    """

    def __init__(self, in_channels: int, out_channels: int, *, asym: bool = True) -> None:
        super().__init__()
        self.square = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.hor = nn.Conv2d(in_channels, out_channels, (1, 3), padding=(0, 1), bias=False)
        self.ver = nn.Conv2d(in_channels, out_channels, (3, 1), padding=(1, 0), bias=False)
        if not asym:  # switched off: no parameters left behind, so counts stay honest
            self.hor = self.ver = None

    def forward(self, x: Tensor) -> Tensor:
        y = self.square(x)
        if self.hor is not None:
            y = y + self.hor(x) + self.ver(x)
        return y

    @torch.no_grad()
    def fuse(self) -> nn.Conv2d:
        """One 3x3 conv computing the same output: the 1x3 kernel adds into the middle row and
        the 3x1 kernel into the middle column (convolution is linear in its kernel)."""
        sq = self.square
        fused = nn.Conv2d(sq.in_channels, sq.out_channels, 3, padding=1)
        fused = fused.to(device=sq.weight.device, dtype=sq.weight.dtype)
        fused.weight.copy_(sq.weight)
        fused.bias.copy_(sq.bias)
        if self.hor is not None:
            fused.weight[:, :, 1:2, :] += self.hor.weight
            fused.weight[:, :, :, 1:2] += self.ver.weight
        return fused

    def extra_repr(self) -> str:
        return f"asym={self.hor is not None}"
