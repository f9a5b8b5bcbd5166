"""BSRN and BSRN-S (Li et al., "Blueprint Separable Residual Network for Efficient Image
Super-Resolution", CVPR-W 2022; code and weights: github.com/xiaom233/BSRN): builders and the
importer of the released weights.

BSRN keeps RFDN's skeleton (distillation blocks, every block output concatenated and fused) and
makes it cheap by building every 3x3 conv as a blueprint separable conv (BSConv-U: a 1x1 then a
depthwise 3x3, ``sr_kit.blocks.bsconv``); ESA and CCA after each block recover the lost
capacity, and GELU replaces LeakyReLU. BSRN-S, the NTIRE 2022 challenge entry (the repository's
``RFDNFINALB5`` class), is a smaller variant of the same design with small differences listed at
``build_bsrn_s``.

Introduced in notebooks/13_the_family.ipynb (what BSRN changed, its cost, its released weights).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..blocks import CCA, ESA, PixelShuffleUp
from ..blocks.bsconv import Conv3x3, conv3x3_factory
from ..config import BSRNConfig, BSRNSConfig
from .baseline_formats import block_index, count_blocks, pixelshuffle_scale
from .importers import WeightFormat, map_keys, register_format

__all__ = ["BSRN", "ESDB", "build_bsrn", "build_bsrn_s"]


class ESDB(nn.Module):
    """Efficient separable distillation block (BSRN): RFDB's layout with separable convs and GELU.

    Three stages: distilled = GELU(1x1, C -> C/2), refined = GELU(sep3x3(x) + x); a last sep3x3
    maps C -> C/2; the four parts (2C) -> 1x1 -> ESA -> CCA -> + input (a block-level skip, which
    the released RFDB lacks). Shape: (B, C, H, W) -> (B, C, H, W).

    Names are the kit's (as RFDB's); the release's ``c{1,2,3}_d``, ``c{1,2,3}_r``, ``c4``, ``c5``,
    ``cw`` and ``conv_out`` are ``distill``, ``refine``, ``last``, ``merge``, ``channel_scale``
    and ``proj`` (``_RULES`` below). Overview: notebooks/13_the_family.ipynb (BSRN).

    Args:
        channels: C.
        make_conv: Builder of the block's 3x3 convs (``sr_kit.blocks.bsconv.conv3x3_factory``).
        esa: Whether ESA follows the 1x1 fusion.
        cca: Whether CCA follows (after ESA).
        esa_down: Builder of ESA's stride-2 3x3 (default: ``make_conv``; BSRN-S: a plain conv).
        out_proj: BSRN-S: a learnable per-channel scale and a 1x1 conv after the attention.
    """

    def __init__(
        self,
        channels: int,
        make_conv: Conv3x3,
        *,
        esa: bool = True,
        cca: bool = True,
        esa_down: Conv3x3 | None = None,
        out_proj: bool = False,
    ) -> None:
        super().__init__()
        dc = channels // 2
        self.distill = nn.ModuleList(nn.Conv2d(channels, dc, 1) for _ in range(3))
        self.refine = nn.ModuleList(make_conv(channels, channels) for _ in range(3))
        self.last = make_conv(channels, dc)
        self.merge = nn.Conv2d(4 * dc, channels, 1)
        self.esa = (
            ESA(channels, act="gelu", conv=make_conv, down=esa_down or make_conv) if esa else None
        )
        self.cca = CCA(channels) if cca else None
        if out_proj:
            # BSRN-S draws the scale from N(1, 0.2) at initialisation
            self.channel_scale = nn.Parameter(1 + 0.2 * torch.randn(1, channels, 1, 1))
            self.proj = nn.Conv2d(channels, channels, 1)
        else:
            self.channel_scale = self.proj = None

    def forward(self, x: Tensor) -> Tensor:
        parts, h = [], x
        for dist, ref in zip(self.distill, self.refine, strict=True):
            parts.append(F.gelu(dist(h)))
            h = F.gelu(ref(h) + h)
        parts.append(F.gelu(self.last(h)))
        y = self.merge(torch.cat(parts, dim=1))  # (B, 2C -> C, H, W)
        if self.esa is not None:
            y = self.esa(y)
        if self.cca is not None:
            y = self.cca(y)
        if self.proj is not None:
            y = self.proj(y * self.channel_scale)
        return y + x


class BSRN(nn.Module):
    """The BSRN trunk: input repeated 4 times (3 -> 12 channels) -> separable 3x3 head -> N blocks
    -> concat of every block output -> 1x1 + GELU -> separable 3x3 -> + head features -> 3x3 to
    3 s^2 -> PixelShuffle(s).

    The 4-fold repeat of the RGB input is the official code's (a head on 12 identical channels
    equals one on 3 channels with the four weight slices summed; kept so the parameter count
    and the weights match the release). Takes RGB in [0, 1]. Shape: (B, 3, h, w) -> (B, 3, sh, sw).

    Overview: notebooks/13_the_family.ipynb.
    """

    def __init__(
        self, blocks: list[nn.Module], channels: int, scale: int, make_conv: Conv3x3
    ) -> None:
        super().__init__()
        self.head = make_conv(3 * 4, channels)
        self.blocks = nn.ModuleList(blocks)
        self.gather = nn.Sequential(nn.Conv2d(len(blocks) * channels, channels, 1), nn.GELU())
        self.post = make_conv(channels, channels)
        self.upsampler = PixelShuffleUp(channels, scale)
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        f0 = self.head(x.repeat(1, 4, 1, 1))  # (B, 12, h, w): the image four times
        outs, h = [], f0
        for block in self.blocks:
            h = block(h)
            outs.append(h)
        y = self.post(self.gather(torch.cat(outs, dim=1))) + f0
        return self.upsampler(y)


def build_bsrn(cfg: BSRNConfig) -> BSRN:
    """BSRN: 331,628 / 340,283 / 352,400 parameters at x2/x3/x4 (64 ch, 8 ESDBs, as released).

    ``conv="conv3"`` pads every 3x3 by 1. The official ``conv="Conv2d"`` option would leave the
    three 3x3s after ESA's pooling unpadded (its keyword handling passes no padding to
    ``nn.Conv2d``), a side effect the kit does not copy.
    """
    make_conv = conv3x3_factory(cfg.conv)
    blocks = [
        ESDB(cfg.channels, make_conv, esa="esa" in cfg.attn, cca="cca" in cfg.attn)
        for _ in range(cfg.num_blocks)
    ]
    return BSRN(blocks, cfg.channels, cfg.scale, make_conv)


def build_bsrn_s(cfg: BSRNSConfig) -> BSRN:
    """BSRN-S (RFDNFINALB5): 156,288 parameters at x4 (48 ch, 5 blocks, as released).

    Differences from BSRN, all from the released code: its 1x1 convs are ``nn.Linear`` layers
    (the same maps; the kit uses 1x1 convs), so every BSConv-U pointwise conv has a bias; no CCA;
    ESA's stride-2 3x3 is a plain conv; each block scales its attended features per channel and
    passes them through one more 1x1 before the skip.
    """
    make_conv = conv3x3_factory(cfg.conv, pw_bias=True)

    def plain(in_ch: int, out_ch: int, stride: int = 1, padding: int = 1) -> nn.Module:
        return nn.Conv2d(in_ch, out_ch, 3, stride, padding)

    blocks = [
        ESDB(cfg.channels, make_conv, cca=False, esa_down=plain, out_proj=True)
        for _ in range(cfg.num_blocks)
    ]
    return BSRN(blocks, cfg.channels, cfg.scale, make_conv)


BUILDERS = {"bsrn": build_bsrn, "bsrn_s": build_bsrn_s}


# ---- The released weights (experiments/pretrained_models/net_g_BSRN*.pth, BasicSR format) ----

_UP = "upsampler.upsampleOneStep.0.weight"


def _stage(kind: str):
    def repl(m) -> str:  # B3.c2_r.pw.weight -> blocks.2.refine.1.pw.weight
        return f"blocks.{int(m[1]) - 1}.{kind}.{int(m[2]) - 1}.{m[3]}"

    return repl


def _in_block(name: str):
    def repl(m) -> str:  # B3.c4.dw.bias -> blocks.2.last.dw.bias
        return f"blocks.{int(m[1]) - 1}.{name}.{m[2]}"

    return repl


_RULES = [
    (r"fea_conv\.(.+)", r"head.\1"),
    (r"B(\d+)\.c([123])_d\.(weight|bias)", _stage("distill")),
    (r"B(\d+)\.c([123])_r\.((?:pw|dw)\.(?:weight|bias))", _stage("refine")),
    (r"B(\d+)\.c4\.((?:pw|dw)\.(?:weight|bias))", _in_block("last")),
    (r"B(\d+)\.c5\.(weight|bias)", _in_block("merge")),
    (
        r"B(\d+)\.(esa\.conv(?:1|_f|_max|2|3|3_|4)\.(?:(?:pw|dw)\.)?(?:weight|bias))",
        block_index("blocks."),
    ),
    (r"B(\d+)\.cca\.conv_du\.([02]\.(?:weight|bias))", _in_block("cca.gate")),
    (r"B(\d+)\.cw", lambda m: f"blocks.{int(m[1]) - 1}.channel_scale"),
    (r"B(\d+)\.conv_out\.(weight|bias)", _in_block("proj")),
    (r"c1\.(weight|bias)", r"gather.0.\1"),
    (r"c2\.(.+)", r"post.\1"),
    (r"upsampler\.upsampleOneStep\.0\.(weight|bias)", r"upsampler.0.\1"),
]


def _convert(state: dict[str, Tensor], scale: int) -> dict[str, Tensor]:
    out = map_keys(state, _RULES, source="BSRN weights")
    # BSRN-S stores its 1x1 convs as nn.Linear weights (out, in) and its channel scale as (1, C):
    # both become the (out, in, 1, 1) / (1, C, 1, 1) tensors of the kit's 1x1 convs and scale.
    return {k: v[:, :, None, None] if v.dim() == 2 else v for k, v in out.items()}


def _bsrn_config(state: dict[str, Tensor], scale: int) -> BSRNConfig:
    return BSRNConfig(
        scale=scale,
        channels=state["fea_conv.dw.weight"].shape[0],
        num_blocks=count_blocks(state, r"B(\d+)\.c1_d\.weight"),
    )


def _bsrn_s_config(state: dict[str, Tensor], scale: int) -> BSRNSConfig:
    return BSRNSConfig(
        scale=scale,
        channels=state["fea_conv.dw.weight"].shape[0],
        num_blocks=count_blocks(state, r"B(\d+)\.c1_d\.weight"),
    )


_NOTES = (
    "BasicSR's test (basicsr/test.py with options/test/benchmark_BSRN*_x*.yml) feeds RGB in "
    "[0, 1] from MATLAB-bicubic LR files, no mean shift, clamps and rounds the output to uint8 "
    "and scores PSNR/SSIM on Y with the border of `scale` pixels cropped: the kit's protocol."
)

BSRN_FORMAT = register_format(
    WeightFormat(
        name="bsrn",
        model="bsrn",
        description="BSRN (xiaom233/BSRN experiments/pretrained_models/net_g_BSRN_x{2,3,4}.pth, "
        "BasicSR params)",
        detect=lambda s: (
            "B1.cca.conv_du.0.weight" in s
            and s["B1.c1_r.pw.weight"].dim() == 4
            and "B1.cw" not in s
        ),
        scales=lambda s: (pixelshuffle_scale(s[_UP]),),
        config=_bsrn_config,
        convert=_convert,
        notes=_NOTES,
    )
)

BSRN_S_FORMAT = register_format(
    WeightFormat(
        name="bsrn-s",
        model="bsrn_s",
        description="BSRN-S, the NTIRE 2022 model (xiaom233/BSRN net_g_BSRN-S.pth, class "
        "RFDNFINALB5, nn.Linear 1x1s)",
        detect=lambda s: "B1.cw" in s and "B1.conv_out.weight" in s and "B1.c1_r.pw.weight" in s,
        scales=lambda s: (pixelshuffle_scale(s[_UP]),),
        config=_bsrn_s_config,
        convert=_convert,
        notes=_NOTES,
    )
)
