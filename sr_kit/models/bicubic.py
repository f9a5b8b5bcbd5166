"""The bicubic baseline as a network: no parameters, MATLAB-compatible upscaling.

Met in notebooks/00_start_here.ipynb; its kernel is explained in notebooks/01_the_sr_problem.ipynb.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import BicubicConfig
from ..imresize import cubic, imresize, resize_macs


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

    def export_form(self) -> BicubicConv:
        """The same resize as two convolutions that need no size tables (for ONNX export)."""
        return BicubicConv(self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


def phase_weights(scale: int) -> Tensor:
    """The 5-tap MATLAB bicubic weights of each output phase for an integer upscale, (s, 5).

    Output pixel ``s*k + p`` (0-based) sits at input coordinate ``k + 0.5 + (p + 0.5)/s`` (1-based,
    MATLAB's sampling grid); its four non-zero taps fall within input pixels ``k-2 .. k+2``, so one
    5-tap filter per phase covers them all (the unused tap gets weight 0).
    """
    p = torch.arange(scale, dtype=torch.float64)[:, None]
    j = torch.arange(5, dtype=torch.float64)[None, :]  # tap j reads input pixel k + j - 2
    w = cubic(0.5 + (p + 0.5) / scale - (j - 1))
    return w / w.sum(dim=1, keepdim=True)  # as MATLAB normalizes each row


def _mirror2(x: Tensor, dim: int) -> Tensor:
    """Pad two pixels at both ends of ``dim``, mirrored with the edge repeated (MATLAB's rule)."""
    n = x.shape[dim]
    lo = x.narrow(dim, 0, 2).flip(dim)
    hi = x.narrow(dim, n - 2, 2).flip(dim)
    return torch.cat([lo, x, hi], dim=dim)


class BicubicConv(nn.Module):
    """MATLAB bicubic upscaling by an integer factor as per-phase convolutions and interleaving.

    Equal to :class:`Bicubic` within float32 rounding, for images of at least 2x2 pixels. It reads
    no image size into Python, so it exports to ONNX with dynamic height and width (the
    index tables of ``imresize`` are built per size and cannot). The filters are buffers, not
    parameters: the network still has nothing to train.
    """

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        w = phase_weights(scale)  # float64, cast to the input's dtype in forward (x3's
        # weights are not exact in float32)
        self.register_buffer("w_rows", w[:, None, :, None].clone(), persistent=False)
        self.register_buffer("w_cols", w[:, None, None, :].clone(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        torch._check(h >= 2)
        torch._check(w >= 2)
        s = self.scale
        y = x.reshape(b * c, 1, h, w)
        # Rows first, as MATLAB does for equal scales: (N, s, h, w) -> (N, 1, h*s, w).
        y = F.conv2d(_mirror2(y, 2), self.w_rows.to(y.dtype))
        y = y.permute(0, 2, 1, 3).reshape(b * c, 1, h * s, w)
        y = F.conv2d(_mirror2(y, 3), self.w_cols.to(y.dtype))  # (N, s, h*s, w)
        y = y.permute(0, 2, 3, 1).reshape(b, c, h * s, w * s)
        return y

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


def build_bicubic(cfg: BicubicConfig) -> Bicubic:
    return Bicubic(cfg.scale)
