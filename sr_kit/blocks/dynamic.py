"""Dynamic depthwise convolution: every pixel of every image gets its own predicted kernel.

The op (``dynamic_dwconv``) is the one that DLGSANet (Li et al., ICCV 2023; NeonLeexiang/DLGSANet,
``basicsr/archs/dlgsanet_idynamicdwconv_util.py``) runs as a custom cupy CUDA kernel, taken from
the "I-D-DW" conv of Han et al., "On the Connection between Local Attention and Dynamic
Depth-wise Convolution" (ICLR 2022). Here it is plain PyTorch, so it runs on any device:

    out[b, c, y, x] = sum_{i, j} W[b, g(c), i, j, y, x] * x_pad[b, c, y + i, x + j]

with zero padding (k - 1) / 2, g(c) = c // (C / G): the C channels form G groups and the
channels of a group share one k x k kernel per pixel. That is local self-attention without the
softmax, whose "attention weights" are predicted from the features (``DynamicDWConv``).

Implementation: a sum over the k*k shifted views of the padded input, each multiplied by one
plane of the kernel tensor (a custom autograd function with a matching hand-written backward).
On the CPU this is 10-30x faster than unfolding the k*k neighbourhoods (``F.unfold``, which
materialises a tensor k*k times the feature map) followed by a weighted sum or an ``einsum``,
and about 7x faster to train than the same shifted views left to autograd (whose slice
backward allocates a padded zero tensor per shift). fvcore traces the function as one op,
``prim::PythonOp.DynamicDWConvFunction``; ``sr_kit.complexity`` counts it as k*k MACs per output
element.

No notebook opens this up; notebooks/13_the_family.ipynb introduces DLGSANet's dynamic local
attention in its overview.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

__all__ = ["DynamicDWConv", "DynamicDWConvFunction", "dynamic_dwconv"]


def _check(x: Tensor, weight: Tensor) -> tuple[int, int]:
    """Validate shapes; return (groups, kernel size)."""
    if x.dim() != 4 or weight.dim() != 6:
        raise ValueError(
            f"dynamic_dwconv needs x (B, C, H, W) and weight (B, G, k, k, H, W), got "
            f"{tuple(x.shape)} and {tuple(weight.shape)}"
        )
    b, c, h, w = x.shape
    wb, g, kh, kw, wh, ww = weight.shape
    if wb != b or (wh, ww) != (h, w):
        raise ValueError(
            f"dynamic_dwconv: weight {tuple(weight.shape)} does not match x {tuple(x.shape)} "
            "(same batch and spatial size needed: one kernel per pixel)"
        )
    if kh != kw or kh % 2 == 0:
        raise ValueError(f"dynamic_dwconv: the kernel must be square and odd, got {kh}x{kw}")
    if c % g:
        raise ValueError(f"dynamic_dwconv: {c} channels do not split into {g} groups")
    return g, kh


class DynamicDWConvFunction(torch.autograd.Function):
    """Autograd function of ``dynamic_dwconv`` (x and weight of one dtype; see there)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor) -> Tensor:
        g, k = _check(x, weight)
        b, c, h, w = x.shape
        p = (k - 1) // 2
        # (B, G, C/G, H + 2p, W + 2p): the channels of a group broadcast against its kernel
        xp = F.pad(x, (p, p, p, p)).reshape(b, g, c // g, h + 2 * p, w + 2 * p)
        out = x.new_zeros(b, g, c // g, h, w)
        for i in range(k):
            for j in range(k):
                out.addcmul_(xp[..., i : i + h, j : j + w], weight[:, :, i, j].unsqueeze(2))
        ctx.save_for_backward(xp, weight)
        return out.reshape(b, c, h, w)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None]:
        xp, weight = ctx.saved_tensors
        b, g, cg, hp, wp = xp.shape
        k = weight.shape[2]
        p = (k - 1) // 2
        h, w = hp - 2 * p, wp - 2 * p
        go = grad_out.reshape(b, g, cg, h, w)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            # each shifted view sent its pixels to the output: send the gradient back the same way
            grad_xp = torch.zeros_like(xp)
            for i in range(k):
                for j in range(k):
                    grad_xp[..., i : i + h, j : j + w].addcmul_(go, weight[:, :, i, j].unsqueeze(2))
            grad_x = grad_xp[..., p : p + h, p : p + w].reshape(b, g * cg, h, w)
        if ctx.needs_input_grad[1]:
            # a kernel plane touches every channel of its group: sum over those channels
            grad_w = torch.empty_like(weight)
            for i in range(k):
                for j in range(k):
                    grad_w[:, :, i, j] = (go * xp[..., i : i + h, j : j + w]).sum(dim=2)
        return grad_x, grad_w


def dynamic_dwconv(x: Tensor, weight: Tensor) -> Tensor:
    """Depthwise conv with one k x k kernel per image, channel group and pixel.

    Args:
        x: Features (B, C, H, W).
        weight: Kernels (B, G, k, k, H, W), k odd; channel c uses group c // (C / G).

    Returns:
        (B, C, H, W), zero padding (k - 1) / 2 (the official op, stride 1, dilation 1, no bias).
    """
    _check(x, weight)
    dtype = torch.promote_types(x.dtype, weight.dtype)  # e.g. bf16 kernels on fp32 features
    return DynamicDWConvFunction.apply(x.to(dtype), weight.to(dtype))


class DynamicDWConv(nn.Module):
    """Dynamic depthwise conv with its kernel predictor (DLGSANet's ``IDynamicDWConv``).

    Predictor ("hypernet"): 1x1 (C -> C/r, bias) -> depthwise k x k (bias) -> 1x1 (C/r -> G k^2,
    bias); DLGSANet dropped the LayerNorm and GELU of Han et al.'s predictor and added the
    depthwise k x k so each kernel sees its whole window. Then ``dynamic_dwconv`` with those
    kernels (no bias). Shape: (B, C, H, W) -> (B, C, H, W).

    Names are the kit's; in the release ``conv1.0`` is ``reduce``, ``conv1.1`` is ``spatial`` and
    ``conv2.0`` is ``predict``. Overview: notebooks/13_the_family.ipynb (DLGSANet).

    Args:
        channels: C.
        kernel_size: k (odd); DLGSANet uses 7 (its "window_size").
        groups: G, kernels per pixel; C / G channels share one. DLGSANet passes 6 channels per
            group (its ``idynamic_num_heads=6``), i.e. G = 8 at 48 channels.
        reduction: r, width reduction of the predictor (4 in DLGSANet).
    """

    def __init__(
        self, channels: int, kernel_size: int = 7, groups: int = 8, reduction: int = 4
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0 or kernel_size < 1:
            raise ValueError(f"DynamicDWConv: kernel_size must be odd, got {kernel_size}")
        if groups < 1 or channels % groups:
            raise ValueError(
                f"DynamicDWConv: {channels} channels do not split into {groups} groups"
            )
        hidden = channels // reduction
        if hidden < 1:
            raise ValueError(f"DynamicDWConv: channels // reduction must be >= 1, got {hidden}")
        self.kernel_size, self.groups = kernel_size, groups
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.spatial = nn.Conv2d(
            hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden
        )
        self.predict = nn.Conv2d(hidden, groups * kernel_size**2, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        k = self.kernel_size
        # predicted channels are ordered (group, row, column), as the official view()
        weight = self.predict(self.spatial(self.reduce(x))).view(b, self.groups, k, k, h, w)
        return dynamic_dwconv(x, weight)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, groups={self.groups}"
