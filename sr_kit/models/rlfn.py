"""RLFN and RLFN-S (Kong et al., "Residual Local Feature Network for Efficient Super-Resolution",
CVPR-W 2022; code and weights: github.com/bytedance/RLFN, ``model/``): builders and the importer
of the released weights.

RLFN starts from RFDN and removes what costs run time more than it buys quality: inside each
block the hierarchical distillation taps and their concatenation go (three 3x3 convs learn one
residual "local feature"), ESA loses the conv group after its pooling, and the trunk no longer
concatenates every block's output (the last block feeds a 3x3 conv directly).

Introduced in notebooks/13_the_family.ipynb (what RLFN changed, its cost, its released weights).
"""

from __future__ import annotations

from torch import Tensor, nn

from ..blocks import ESA, RFDB, PixelShuffleUp, conv
from ..blocks.distill import NEG_SLOPE
from ..config import RLFNConfig, RLFNSConfig
from .baseline_formats import block_index, count_blocks, pixelshuffle_scale
from .importers import WeightFormat, map_keys, register_format

__all__ = ["RLFB", "RLFN", "build_rlfn"]


def make_rlfn_esa(kind: str, channels: int, f: int) -> nn.Module:
    """The ESA of ``RLFNConfig.esa``: ``light`` (RLFN's), ``full`` (RFDN's) or ``none``."""
    if kind == "light":
        return ESA(channels, f=f, pool_convs=1)
    if kind == "full":
        return ESA(channels, f=f)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"esa must be 'light', 'full' or 'none', got {kind!r}")


class RLFB(nn.Module):
    """Residual local feature block (RLFN): (3x3 -> LReLU) x 3, + input, 1x1, ESA.

    Where RFDB taps a distilled copy of the features before every refinement conv and fuses the
    four copies with a 1x1, RLFB keeps only the chain of convs and one residual connection around
    it (the "residual local feature"), which is faster on GPUs at a similar size. No skip around
    the whole block (as in the release). Shape: (B, C, H, W) -> (B, C, H, W).

    Names are the kit's: the release's ``c1_r``, ``c2_r``, ``c3_r`` are ``convs.0..2`` and its
    ``c5`` is ``merge``; ``esa`` keeps ESA's released names. Overview:
    notebooks/13_the_family.ipynb (RLFN).

    Args:
        channels: C.
        esa_channels: ESA's reduced width (16 in RLFN and RLFN-S).
        esa: ``light`` (RLFN), ``full`` (RFDN's ESA) or ``none``.
    """

    def __init__(self, channels: int, *, esa_channels: int = 16, esa: str = "light") -> None:
        super().__init__()
        self.convs = nn.ModuleList(conv(channels, channels) for _ in range(3))
        self.act = nn.LeakyReLU(NEG_SLOPE)
        self.merge = nn.Conv2d(channels, channels, 1)
        self.esa = make_rlfn_esa(esa, channels, esa_channels)

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for c in self.convs:
            h = self.act(c(h))
        return self.esa(self.merge(h + x))


class RLFN(nn.Module):
    """3x3 head -> N blocks in a chain -> 3x3 -> + head features -> 3x3 to 3 s^2 -> PixelShuffle.

    Unlike IMDN/RFDN (``DistillNet``) only the last block's output reaches the tail: no
    concatenation of all block outputs and no 1x1 fusion. Takes RGB in [0, 1] (the released
    weights, trained on [0, 255], are rescaled on import). Shape: (B, 3, h, w) -> (B, 3, sh, sw).

    Overview: notebooks/13_the_family.ipynb.
    """

    def __init__(self, blocks: list[nn.Module], channels: int, scale: int) -> None:
        super().__init__()
        self.head = conv(3, channels)
        self.blocks = nn.Sequential(*blocks)
        self.post = conv(channels, channels)
        self.upsampler = PixelShuffleUp(channels, scale)
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        f0 = self.head(x)
        return self.upsampler(self.post(self.blocks(f0)) + f0)


def _rfdb(channels: int, esa: nn.Module) -> RFDB:
    """RFDN's released block with the ESA of the config (so ``block`` and ``esa`` stay apart)."""
    block = RFDB(channels)
    block.esa = esa
    return block


def build_rlfn(cfg: RLFNConfig) -> RLFN:
    """RLFN / RLFN-S: 543,740 / 470,208 parameters at x4, 526,856 / 454,620 at x2 (as released)."""
    blocks = []
    for _ in range(cfg.num_blocks):
        if cfg.block == "rlfb":
            blocks.append(RLFB(cfg.channels, esa_channels=cfg.esa_channels, esa=cfg.esa))
        else:
            blocks.append(
                _rfdb(cfg.channels, make_rlfn_esa(cfg.esa, cfg.channels, cfg.esa_channels))
            )
    return RLFN(blocks, cfg.channels, cfg.scale)


BUILDERS = {"rlfn": build_rlfn, "rlfn_s": build_rlfn}


# ---- The released weights (model_zoo/rlfn{,_s}_x{2,4}.pth) -----------------------------------


def _is_rlfn(state: dict[str, Tensor]) -> bool:
    """RLFN's key layout: ``block_N.c1_r``, ESA without ``conv_max`` (E-RFDN has ``B1.c1_r``)."""
    return (
        "conv_1.weight" in state
        and "block_1.c1_r.weight" in state
        and "block_1.esa.conv1.weight" in state
        and "block_1.esa.conv_max.weight" not in state
    )


def _channels(state: dict[str, Tensor]) -> int:
    return state["conv_1.weight"].shape[0]


def _config(cls: type[RLFNConfig]):
    def config(state: dict[str, Tensor], scale: int) -> RLFNConfig:
        return cls(
            scale=scale,
            channels=_channels(state),
            num_blocks=count_blocks(state, r"block_(\d+)\.c1_r\.weight"),
            esa_channels=state["block_1.esa.conv1.weight"].shape[0],
        )

    return config


def _convert(state: dict[str, Tensor], scale: int) -> dict[str, Tensor]:
    def conv_n(m) -> str:  # block_3.c2_r.bias -> blocks.2.convs.1.bias
        return f"blocks.{int(m[1]) - 1}.convs.{int(m[2]) - 1}.{m[3]}"

    return map_keys(
        state,
        [
            (r"conv_1\.(weight|bias)", r"head.\1"),
            (r"block_(\d+)\.c([123])_r\.(weight|bias)", conv_n),
            (r"block_(\d+)\.c5\.(weight|bias)", lambda m: f"blocks.{int(m[1]) - 1}.merge.{m[2]}"),
            (r"block_(\d+)\.(esa\.conv(?:1|_f|2|3|4)\.(?:weight|bias))", block_index("blocks.")),
            (r"conv_2\.(weight|bias)", r"post.\1"),
            (r"upsampler\.0\.(weight|bias)", r"upsampler.0.\1"),
        ],
        source="RLFN weights",
    )


_NOTES = (
    "The repository's test scripts (test_demo.py, val_demo.py) multiply the [0, 1] image by 255, "
    "divide the output by 255 and round to uint8; no mean shift. The range is folded into the "
    "first and last convs on import. The repository has no benchmark script or PSNR table for "
    "these files (its README table is the NTIRE 2022 challenge model's run time)."
)

# Two formats, told apart by the width (the files are otherwise alike), so that
# ``--model rlfn_s`` finds the RLFN-S files.
RLFN_FORMAT = register_format(
    WeightFormat(
        name="rlfn",
        model="rlfn",
        description="RLFN (bytedance/RLFN model_zoo/rlfn_x{2,4}.pth; any width but 48)",
        detect=lambda s: _is_rlfn(s) and _channels(s) != RLFNSConfig.channels,
        scales=lambda s: (pixelshuffle_scale(s["upsampler.0.weight"]),),
        config=_config(RLFNConfig),
        convert=_convert,
        input_range=255.0,
        head=("head.weight",),
        tail=("upsampler.0",),
        notes=_NOTES,
    )
)

RLFN_S_FORMAT = register_format(
    WeightFormat(
        name="rlfn-s",
        model="rlfn_s",
        description="RLFN-S (bytedance/RLFN model_zoo/rlfn_s_x{2,4}.pth; 48 channels)",
        detect=lambda s: _is_rlfn(s) and _channels(s) == RLFNSConfig.channels,
        scales=lambda s: (pixelshuffle_scale(s["upsampler.0.weight"]),),
        config=_config(RLFNSConfig),
        convert=_convert,
        input_range=255.0,
        head=("head.weight",),
        tail=("upsampler.0",),
        notes=_NOTES,
    )
)
