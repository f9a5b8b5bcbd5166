"""DLGSANet (Li et al., "DLGSANet: Lightweight Dynamic Local and Global Self-Attention Networks
for Image Super-Resolution", ICCV 2023), built as the official code builds it
(NeonLeexiang/DLGSANet @ 0974b9a, ``basicsr/archs/dlgsanet_arch.py`` with the Light/Tiny options
of ``options/DLGSANet_SISR/``: ``buildblock_type='sparseedge'``, GDFN feed-forward, 7x7 dynamic
kernels, ``pixelshuffledirect`` upsampler).

Layout: RGB - mean -> 3x3 conv (no bias) -> G residual groups (RHDTG: N hybrid blocks, 3x3 conv,
+ input) -> 3x3 conv -> + shallow features -> 3x3 conv to 3 s^2 -> PixelShuffle -> + mean.

The release needs a cupy CUDA kernel for the dynamic depthwise conv; the kit's plain-PyTorch op
is in ``sr_kit/blocks/dynamic.py``. In eval mode the official SparseGSA uses TLC (Chu et al.,
"Improving Image Restoration by Revisiting Global Information Aggregation", ECCV 2022): the
attention maps are computed on overlapping LR tiles of 96/72/48 pixels at x2/x3/x4 and the
results averaged; this is reproduced (``DLGSANet.set_tlc``). The authors' lightweight weights
were lost (README), so there is no weight format to import.

Introduced in notebooks/13_the_family.ipynb (what DLGSANet changed, its cost); no notebook opens
up its blocks.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..blocks import LayerNorm2d, PixelShuffleUp, conv
from ..blocks.dynamic import DynamicDWConv
from ..config import DLGSANetConfig, DLGSANetTinyConfig

__all__ = [
    "GDFN",
    "HDTB",
    "MHDLSA",
    "RHDTG",
    "TLC_KERNEL",
    "DLGSANet",
    "SparseGSA",
    "build_dlgsanet",
    "build_dlgsanet_tiny",
    "tlc_tile_starts",
]

RGB_MEAN = (0.4488, 0.4371, 0.4040)  # DIV2K mean, subtracted in [0, 1] units (img_range = 1)
TLC_KERNEL = {2: 96, 3: 72, 4: 48}  # eval-mode attention tile (LR pixels) of the official options
LN_EPS = 1e-5  # the official WithBias_LayerNorm: (x - mean) / sqrt(var + 1e-5)


class GDFN(nn.Module):
    """Gated-Dconv feed-forward network (Restormer, Zamir et al., CVPR 2022), bias-free.

    1x1 (C -> 2E) -> depthwise 3x3 -> split in two halves -> GELU(first) * second -> 1x1 (E -> C),
    E = expansion * C. Shape: (B, C, H, W) -> (B, C, H, W).

    The attributes keep the released ``FeedForward``'s names: ``project_in``: 1x1 C -> 2E;
    ``dwconv``: depthwise 3x3 on the 2E channels; ``project_out``: 1x1 E -> C.
    Not covered by a notebook.
    """

    def __init__(self, channels: int, expansion: int = 2) -> None:
        super().__init__()
        hidden = channels * expansion
        self.project_in = nn.Conv2d(channels, 2 * hidden, 1, bias=False)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=False)
        self.project_out = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value)


class MHDLSA(nn.Module):
    """Multi-head dynamic local self-attention (DLGSANet; the official ``IDynamicDWConvBlock``).

    1x1 (no bias) -> dynamic depthwise k x k conv whose per-pixel kernels are predicted from the
    features (``local="dynamic"``), or one learned depthwise k x k conv with bias (``"static"``,
    the official ``idynamic=False`` ablation) -> 1x1 (no bias). No norm or activation inside.
    Shape: (B, C, H, W) -> (B, C, H, W).

    ``conv0`` (1x1 in) and ``conv1`` (1x1 out) keep the released names; the released ``conv``,
    the dynamic or static k x k between them, is ``local`` here. Overview (DLGSANet's "dynamic
    local attention"): notebooks/13_the_family.ipynb.
    """

    def __init__(
        self,
        channels: int,
        *,
        kernel_size: int = 7,
        kernel_groups: int = 8,
        local: Literal["dynamic", "static"] = "dynamic",
    ) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, 1, bias=False)
        if local == "dynamic":
            self.local = DynamicDWConv(channels, kernel_size, groups=kernel_groups)
        elif local == "static":
            pad = kernel_size // 2
            self.local = nn.Conv2d(channels, channels, kernel_size, padding=pad, groups=channels)
        else:
            raise ValueError(f"local must be 'dynamic' or 'static', got {local!r}")
        self.conv1 = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv1(self.local(self.conv0(x)))


def tlc_tile_starts(size: int, tile: int) -> list[int]:
    """Origins of TLC tiles along one axis: the fewest ``tile``-long windows that cover ``size``,
    spread with an equal (rounded-up) step, the last one flush with the border (as TLC's grids)."""
    tile = min(tile, size)
    count = (size - 1) // tile + 1
    step = tile if count == 1 else math.ceil((size - tile) / (count - 1) - 1e-8)
    starts, i = [], 0
    while i + tile < size:
        starts.append(i)
        i += step
    starts.append(size - tile)
    return starts


class SparseGSA(nn.Module):
    """Sparse global self-attention (DLGSANet): Restormer's MDTA with ReLU instead of softmax.

    1x1 (C -> 3C) -> depthwise 3x3 -> Q, K, V in ``heads`` groups -> Q, K L2-normalised over the
    pixels -> A = ReLU(tau * Q K^T), a (C/h x C/h) map per head with a learnable temperature tau
    per head -> A V -> 1x1. All convs bias-free. ReLU zeroes the negative similarities, so each
    output channel aggregates only the positively related ones (the "sparse" attention);
    ``attn_norm="softmax"`` gives MDTA. The kit's ``GlobalAttention`` computes the same map but
    with biases, its own LayerNorm and residual, so its parameters differ from the official ones.

    The attributes keep the released ``SparseAttention``'s names: ``temperature``: tau, one per
    head; ``qkv``: 1x1 C -> 3C; ``qkv_dwconv``: depthwise 3x3 on the 3C channels;
    ``project_out``: 1x1 C -> C. The map itself is explained, as the GAU's ReLU variant, in
    notebooks/08_global_attention.ipynb (section 7).

    With ``tlc_kernel`` set, eval mode computes A on overlapping tiles of that size and averages
    the A V results (TLC; the official test/validation behaviour). Training always uses the whole
    image. Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(
        self,
        channels: int,
        heads: int = 6,
        *,
        attn_norm: Literal["relu", "softmax"] = "relu",
        tlc_kernel: int | None = None,
    ) -> None:
        super().__init__()
        if heads < 1 or channels % heads:
            raise ValueError(f"SparseGSA: {channels} channels do not split into {heads} heads")
        if attn_norm not in ("relu", "softmax"):
            raise ValueError(f"attn_norm must be 'relu' or 'softmax', got {attn_norm!r}")
        self.heads, self.attn_norm, self.tlc_kernel = heads, attn_norm, tlc_kernel
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(channels, 3 * channels, 1, bias=False)
        self.qkv_dwconv = nn.Conv2d(
            3 * channels, 3 * channels, 3, padding=1, groups=3 * channels, bias=False
        )
        self.project_out = nn.Conv2d(channels, channels, 1, bias=False)

    def _attend(self, qkv: Tensor) -> Tensor:
        """(B, 3C, h, w) -> (B, C, h, w): the channel attention over all pixels given."""
        b, c3, h, w = qkv.shape
        c = c3 // 3
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w) for t in qkv.chunk(3, dim=1))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1)) * self.temperature  # (B, heads, C/h, C/h)
        attn = F.relu(attn) if self.attn_norm == "relu" else attn.softmax(dim=-1)
        return (attn @ v).reshape(b, c, h, w)

    def _attend_tiled(self, qkv: Tensor, tile: int) -> Tensor:
        """TLC: attention on overlapping tiles (all tiles of all images in one batch), averaged."""
        b, c3, h, w = qkv.shape
        th, tw = min(tile, h), min(tile, w)
        boxes = [(i, j) for i in tlc_tile_starts(h, tile) for j in tlc_tile_starts(w, tile)]
        if len(boxes) == 1:
            return self._attend(qkv)
        parts = torch.cat([qkv[:, :, i : i + th, j : j + tw] for i, j in boxes], dim=0)
        outs = self._attend(parts).reshape(len(boxes), b, c3 // 3, th, tw)
        total = qkv.new_zeros(b, c3 // 3, h, w)
        count = qkv.new_zeros(1, 1, h, w)
        for n, (i, j) in enumerate(boxes):
            total[:, :, i : i + th, j : j + tw] += outs[n]
            count[:, :, i : i + th, j : j + tw] += 1
        return total / count

    def forward(self, x: Tensor) -> Tensor:
        qkv = self.qkv_dwconv(self.qkv(x))
        if self.training or self.tlc_kernel is None:
            out = self._attend(qkv)
        else:
            out = self._attend_tiled(qkv, self.tlc_kernel)
        return self.project_out(out)

    def extra_repr(self) -> str:
        return f"heads={self.heads}, attn_norm={self.attn_norm}, tlc_kernel={self.tlc_kernel}"


class HDTB(nn.Module):
    """Hybrid dynamic-Transformer block (DLGSANet): a local and a global pre-norm sub-block.

    x + MHDLSA(LN x), then + GDFN(LN x); then x + SparseGSA(LN x), then + GDFN(LN x) (the
    official ``IDynamicLayerBlock`` followed by ``SparseAttentionLayerBlock``). LayerNorms are
    over channels, with bias, eps 1e-5. Shape: (B, C, H, W) -> (B, C, H, W).

    ``norm1``..``norm4`` keep the released names; the released ``IDynamicDWConv``,
    ``IDynamic_ffn``, ``restormer_attn`` and ``restormer_ffn`` are ``local``, ``ffn1``, ``attn``
    and ``ffn2`` here. Overview: notebooks/13_the_family.ipynb (DLGSANet).
    """

    def __init__(
        self,
        channels: int,
        *,
        heads: int = 6,
        kernel_size: int = 7,
        kernel_groups: int = 8,
        ffn_expansion: int = 2,
        local: Literal["dynamic", "static"] = "dynamic",
        attn_norm: Literal["relu", "softmax"] = "relu",
        tlc_kernel: int | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(channels, eps=LN_EPS)
        self.local = MHDLSA(
            channels, kernel_size=kernel_size, kernel_groups=kernel_groups, local=local
        )
        self.norm2 = LayerNorm2d(channels, eps=LN_EPS)
        self.ffn1 = GDFN(channels, ffn_expansion)
        self.norm3 = LayerNorm2d(channels, eps=LN_EPS)
        self.attn = SparseGSA(channels, heads, attn_norm=attn_norm, tlc_kernel=tlc_kernel)
        self.norm4 = LayerNorm2d(channels, eps=LN_EPS)
        self.ffn2 = GDFN(channels, ffn_expansion)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.local(self.norm1(x))
        x = x + self.ffn1(self.norm2(x))
        x = x + self.attn(self.norm3(x))
        return x + self.ffn2(self.norm4(x))


class RHDTG(nn.Module):
    """Residual hybrid dynamic-Transformer group: N HDTBs -> 3x3 conv -> + input (as in SwinIR's
    residual groups). Shape: (B, C, H, W) -> (B, C, H, W).

    The release's ``BuildBlock``. Overview: notebooks/13_the_family.ipynb (DLGSANet).
    """

    def __init__(self, channels: int, num_blocks: int, **block: object) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(HDTB(channels, **block) for _ in range(num_blocks)))
        self.conv = conv(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(self.blocks(x))


class DLGSANet(nn.Module):
    """DLGSANet: mean shift, 3x3 embedding, residual groups, 3x3 conv, global residual,
    one-step sub-pixel upsampler. Takes RGB in [0, 1]. Shape: (B, 3, h, w) -> (B, 3, s*h, s*w).

    Its cost and switches are in notebooks/13_the_family.ipynb.
    """

    def __init__(
        self,
        channels: int = 48,
        num_groups: int = 4,
        num_blocks: int = 3,
        scale: int = 4,
        *,
        heads: int = 6,
        kernel_size: int = 7,
        kernel_groups: int = 8,
        ffn_expansion: int = 2,
        local: Literal["dynamic", "static"] = "dynamic",
        attn_norm: Literal["relu", "softmax"] = "relu",
        tlc_kernel: int | None = None,
    ) -> None:
        super().__init__()
        # a constant in [0, 1] units, not a parameter (the official code keeps a plain tensor)
        self.register_buffer("mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.head = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        block = dict(
            heads=heads,
            kernel_size=kernel_size,
            kernel_groups=kernel_groups,
            ffn_expansion=ffn_expansion,
            local=local,
            attn_norm=attn_norm,
            tlc_kernel=tlc_kernel,
        )
        self.groups = nn.Sequential(
            *(RHDTG(channels, num_blocks, **block) for _ in range(num_groups))
        )
        self.body_conv = conv(channels, channels)
        self.upsampler = PixelShuffleUp(channels, scale)
        self.scale = scale

    def set_tlc(self, tile: int | None) -> None:
        """Eval-mode attention tile in LR pixels (None: attention over the whole image)."""
        for m in self.modules():
            if isinstance(m, SparseGSA):
                m.tlc_kernel = tile

    def forward(self, x: Tensor) -> Tensor:
        # ---- 1. shallow features (mean-shifted input) ----
        f0 = self.head(x - self.mean)
        # ---- 2. deep features: residual groups, 3x3 conv, global residual ----
        f = self.body_conv(self.groups(f0)) + f0
        # ---- 3. one-step upsampler, mean back ----
        return self.upsampler(f) + self.mean


def _build(cfg: DLGSANetConfig) -> DLGSANet:
    return DLGSANet(
        cfg.channels,
        cfg.num_groups,
        cfg.num_blocks,
        cfg.scale,
        heads=cfg.channels // cfg.head_channels,
        kernel_size=cfg.local_kernel,
        kernel_groups=cfg.kernel_groups,
        ffn_expansion=cfg.ffn_expansion,
        local=cfg.local,
        attn_norm=cfg.attn_norm,
        tlc_kernel=TLC_KERNEL[cfg.scale],
    )


def build_dlgsanet(cfg: DLGSANetConfig) -> DLGSANet:
    """DLGSANet-light: 48 ch, 4 groups x 3 HDTBs; 745,188 / 751,683 / 760,776 parameters."""
    return _build(cfg)


def build_dlgsanet_tiny(cfg: DLGSANetTinyConfig) -> DLGSANet:
    """DLGSANet-tiny: 48 ch, 3 groups x 3 HDTBs; 565,710 / 572,205 / 581,298 parameters."""
    return _build(cfg)


BUILDERS = {"dlgsanet": build_dlgsanet, "dlgsanet_tiny": build_dlgsanet_tiny}
