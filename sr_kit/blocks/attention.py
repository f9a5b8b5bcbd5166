"""Attention blocks: CCA (IMDN), ESA with optional partial shift (RFDN, SAFDNet; the variants of
RLFN and BSRN by keyword), LayerNorm2d and the global (channel-wise, "transposed") self-attention
unit of SAFDNet.

Notebooks: ESA in notebooks/07_channel_shift.ipynb (first met in 04_feature_distillation), CCA in
notebooks/04_feature_distillation.ipynb (IMDB), LayerNorm2d and GlobalAttention in
notebooks/08_global_attention.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .shift import ChannelShift

__all__ = ["CCA", "ESA", "GlobalAttention", "LayerNorm2d", "make_attn"]


class CCA(nn.Module):
    """Contrast-aware channel attention (IMDN, Hui et al., ACM MM 2019).

    Per channel, (standard deviation + mean) over the image -> 1x1 (C -> C/r) -> ReLU -> 1x1 ->
    sigmoid -> rescale the input. Shape: (B, C, H, W) -> (B, C, H, W).

    ``gate`` is the released ``conv_du`` (same indices: 0 = 1x1 C -> C/r, 2 = 1x1 C/r -> C).
    Met in notebooks/04_feature_distillation.ipynb, as IMDB's attention.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.gate = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()  # population std, as IMDN
        return x * self.gate(std + mean)


def _plain_conv3x3(in_ch: int, out_ch: int, stride: int = 1, padding: int = 1) -> nn.Module:
    return nn.Conv2d(in_ch, out_ch, 3, stride, padding)


class ESA(nn.Module):
    """Enhanced spatial attention (RFANet/RFDN), with SAFDNet's optional partial channel shift.

    1x1 (C -> f = C/4) -> [partial shift] -> 3x3 stride 2 -> max-pool 7/3 -> 3x3+ReLU, 3x3+ReLU,
    3x3 -> bilinear upsample -> + 1x1 of the reduced features -> 1x1 (f -> C) -> sigmoid gate.
    The shift (claim S3) moves ``shift_ratio`` of the f reduced channels by ``shift_px`` pixels:
    no parameters, no multiply-adds.

    The released ESA crashes on LR inputs under 15x15 (the 7x7 pooling finds too few pixels);
    here the pooling window shrinks to fit, which leaves inputs of 15x15 and more unchanged and
    makes any input of at least 3x3 work. Shape: (B, C, H, W) -> (B, C, H, W).

    The attributes keep the released ESA's names (so its weights load as they are):
    ``conv1``: 1x1 C -> f, the reduction; ``conv_f``: 1x1 f -> f on the reduced map, the skip
    added before the gate; ``conv2``: 3x3 stride 2, the downsampling; ``conv_max``: the first 3x3
    after the max-pool; ``conv3``, ``conv3_``: the second and third 3x3 (RLFN: ``conv3`` alone);
    ``conv4``: 1x1 f -> C before the sigmoid. ``shift`` (the partial shift) is the kit's own.

    Explained in notebooks/07_channel_shift.ipynb (PS-ESA); first met, in RFDB, in
    notebooks/04_feature_distillation.ipynb.

    The other keywords give the ESAs of later networks (defaults: RFDN's ESA above):

    Args:
        f: Reduced width (default C // 4; RLFN uses 16 at any C).
        pool_convs: 3x3 convs after the pooling: 3 (``conv_max``, ``conv3``, ``conv3_``, with the
            activation between them) or 1 (RLFN's lighter ESA: ``conv3`` alone, no activation).
        act: Activation between the pooled convs: ``relu`` (RFDN, RLFN) or ``gelu`` (BSRN).
        conv: Builder ``conv(in, out, stride=1, padding=1)`` of the 3x3 convs after the pooling
            (BSRN: blueprint separable convs, ``sr_kit.blocks.bsconv``); default a plain 3x3.
        down: The same for the stride-2 3x3 (default: like ``conv``).
    """

    def __init__(
        self,
        channels: int,
        *,
        shift_ratio: float = 0.0,
        shift_px: int = 1,
        f: int | None = None,
        pool_convs: Literal[1, 3] = 3,
        act: Literal["relu", "gelu"] = "relu",
        conv: Callable[..., nn.Module] | None = None,
        down: Callable[..., nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if pool_convs not in (1, 3):
            raise ValueError(f"ESA pool_convs must be 1 or 3, got {pool_convs!r}")
        if act not in ("relu", "gelu"):
            raise ValueError(f"ESA act must be 'relu' or 'gelu', got {act!r}")
        f = channels // 4 if f is None else f
        conv = conv or _plain_conv3x3
        down = down or conv
        self.act_kind = act
        self.conv1 = nn.Conv2d(channels, f, 1)
        self.shift = ChannelShift(shift_ratio, shift_px) if shift_ratio > 0 else nn.Identity()
        self.conv_f = nn.Conv2d(f, f, 1)
        # Module order (and so state-dict order) as in the released ESA.
        self.conv_max = conv(f, f) if pool_convs == 3 else None
        self.conv2 = down(f, f, stride=2, padding=0)
        self.conv3 = conv(f, f)
        self.conv3_ = conv(f, f) if pool_convs == 3 else None
        self.conv4 = nn.Conv2d(f, channels, 1)

    def _act(self, x: Tensor) -> Tensor:
        return F.relu(x) if self.act_kind == "relu" else F.gelu(x)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if h < 3 or w < 3:
            raise ValueError(f"ESA needs inputs of at least 3x3 pixels, got {h}x{w}")
        c1_ = self.shift(self.conv1(x))
        c1 = self.conv2(c1_)
        k = min(7, c1.shape[-2], c1.shape[-1])  # a 7x7 window unless the map is smaller
        v_max = F.max_pool2d(c1, kernel_size=k, stride=3)
        if self.conv_max is None:  # RLFN: one 3x3, no activation
            c3 = self.conv3(v_max)
        else:
            v_range = self._act(self.conv_max(v_max))
            c3 = self._act(self.conv3(v_range))
            c3 = self.conv3_(c3)
        c3 = F.interpolate(c3, (h, w), mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.conv4(c3 + self.conv_f(c1_)))

    def extra_repr(self) -> str:
        return f"pool_convs={1 if self.conv_max is None else 3}, act={self.act_kind}"


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of an NCHW tensor (each pixel normalised on its own).

    Used in notebooks/08_global_attention.ipynb (the GAU's pre-norm).
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


Projector = Literal["acffn", "dw3x3", "pw"]


def _projector(kind: Projector, channels: int) -> nn.Module:
    """Depthwise spatial mixing applied to the Q/K/V maps after their 1x1 projection."""
    if kind == "acffn":  # asymmetric-conv feed-forward projector: 1x3 -> GELU -> 3x1 (claim S2)
        return nn.Sequential(
            nn.Conv2d(channels, channels, (1, 3), padding=(0, 1), groups=channels),
            nn.GELU(),
            nn.Conv2d(channels, channels, (3, 1), padding=(1, 0), groups=channels),
        )
    if kind == "dw3x3":  # Restormer / DLGSANet projector
        return nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
    if kind == "pw":  # 1x1 only
        return nn.Identity()
    raise ValueError(f"projector must be 'acffn', 'dw3x3' or 'pw', got {kind!r}")


class GlobalAttention(nn.Module):
    """Channel-wise ("transposed") self-attention with a compressed Q/K/V width (SAFDNet's GAU).

    LN -> 1x1 (C -> 3C', C' = C / compress_ratio) -> projector -> Q, K, V of C' channels each, in
    ``heads`` groups -> Q, K L2-normalised over the pixels -> A = attn_norm(tau * Q K^T), a
    (C'/h x C'/h) map per head that every pixel contributes to (hence global, at a cost linear in
    H*W) -> A V -> 1x1 (C' -> C) -> + input. Restormer's MDTA (Zamir et al., CVPR 2022) with the
    projector and the compression as the switches of claim S2; ``attn_norm="relu"`` gives
    DLGSANet's sparse variant.

    Args:
        projector: Spatial mixing of Q/K/V after the 1x1 (SAFDNetConfig.global_attn, less
            ``none``): ``acffn`` (1x3 -> GELU -> 3x1 depthwise), ``dw3x3`` or ``pw`` (none).
        attn_norm: How the map is normalised (SAFDNetConfig.attn_norm): ``softmax`` or ``relu``.

    ``norm`` is the LayerNorm module (its parameters are ``norm.weight``, ``norm.bias``); the
    map normalisation is ``attn_norm``.

    Explained in notebooks/08_global_attention.ipynb. Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(
        self,
        channels: int,
        *,
        heads: int = 4,
        compress_ratio: int = 2,
        projector: Projector = "acffn",
        attn_norm: Literal["softmax", "relu"] = "softmax",
    ) -> None:
        super().__init__()
        if heads < 1 or compress_ratio < 1:
            raise ValueError(
                f"GlobalAttention: heads and compress_ratio must be >= 1, got heads={heads}, "
                f"compress_ratio={compress_ratio}"
            )
        inner = channels // compress_ratio
        if channels % compress_ratio or inner % heads:
            raise ValueError(
                f"GlobalAttention: channels={channels} must divide by compress_ratio="
                f"{compress_ratio}, and channels/compress_ratio={inner} by heads={heads}"
            )
        if attn_norm not in ("softmax", "relu"):
            raise ValueError(f"attn_norm must be 'softmax' or 'relu', got {attn_norm!r}")
        self.heads, self.inner, self.attn_norm = heads, inner, attn_norm
        self.norm = LayerNorm2d(channels)
        self.qkv = nn.Conv2d(channels, 3 * inner, 1)
        self.projector = _projector(projector, 3 * inner)
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.proj = nn.Conv2d(inner, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        q, k, v = self.projector(self.qkv(self.norm(x))).chunk(3, dim=1)
        # (B, C', H, W) -> (B, heads, C'/heads, H*W)
        q, k, v = (t.reshape(b, self.heads, self.inner // self.heads, h * w) for t in (q, k, v))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1)) * self.temperature  # (B, heads, C'/h, C'/h)
        attn = attn.softmax(dim=-1) if self.attn_norm == "softmax" else F.relu(attn)
        out = (attn @ v).reshape(b, self.inner, h, w)
        return x + self.proj(out)

    def extra_repr(self) -> str:
        return f"heads={self.heads}, inner={self.inner}, attn_norm={self.attn_norm}"


def make_attn(kind: Literal["esa", "cca", "none"], channels: int) -> nn.Module:
    """The attention that closes a distillation block, by name ("none" gives an identity)."""
    if kind == "esa":
        return ESA(channels)
    if kind == "cca":
        return CCA(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"attention must be 'esa', 'cca' or 'none', got {kind!r}")
