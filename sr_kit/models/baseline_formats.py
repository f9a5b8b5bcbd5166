"""Released IMDN and E-RFDN weights, mapped onto the kit's ``imdn`` and ``rfdn`` networks.

- IMDN (Zheng222/IMDN, ``checkpoints/IMDN_x{2,3,4}.pth``): saved from DataParallel (``module.``
  prefixes), fed RGB in [0, 1] by ``test_IMDN.py``.
- E-RFDN (njulj/RFDN, ``trained_model/RFDN_AIM.pth``): the AIM 2020 challenge model, 50 channels
  and 4 blocks, fed RGB in [0, 255] by its test script (folded into the weights on import).

Their measurements are in notebooks/13_the_family.ipynb.
"""

from __future__ import annotations

import math
import re

from torch import Tensor

from ..config import IMDNConfig, RFDNConfig
from .importers import WeightFormat, map_keys, register_format

__all__ = ["block_index", "count_blocks", "pixelshuffle_scale"]


def pixelshuffle_scale(weight: Tensor) -> int:
    """The scale of a ``conv -> PixelShuffle(s)`` upsampler from its conv weight (3 s^2 outputs)."""
    s = math.isqrt(weight.shape[0] // 3)
    if 3 * s * s != weight.shape[0]:
        raise ValueError(f"{weight.shape[0]} output channels is not 3 s^2")
    return s


def count_blocks(state: dict[str, Tensor], pattern: str) -> int:
    """How many distinct block numbers ``pattern`` (a regex with one group) finds in the keys."""
    return len({m.group(1) for k in state if (m := re.fullmatch(pattern, k))})


def block_index(prefix: str, group: int = 1, offset: int = -1):
    """A ``map_keys`` replacement: ``prefix`` + (1-based block number + offset) + the rest."""

    def repl(m: re.Match) -> str:
        return f"{prefix}{int(m.group(group)) + offset}.{m.group(group + 1)}"

    return repl


# ---- IMDN ------------------------------------------------------------------------------------


def _imdn_config(state: dict[str, Tensor], scale: int) -> IMDNConfig:
    return IMDNConfig(
        scale=scale,
        channels=state["fea_conv.weight"].shape[0],
        num_blocks=count_blocks(state, r"IMDB(\d+)\.c1\.weight"),
    )


def _imdn_convert(state: dict[str, Tensor], scale: int) -> dict[str, Tensor]:
    return map_keys(
        state,
        [
            (r"fea_conv\.(weight|bias)", r"head.\1"),
            (
                r"IMDB(\d+)\.cca\.conv_du\.(\d\.(?:weight|bias))",
                lambda m: f"blocks.{int(m[1]) - 1}.cca.gate.{m[2]}",
            ),
            (r"IMDB(\d+)\.(c[1-5]\.(?:weight|bias))", block_index("blocks.")),
            (r"c\.0\.(weight|bias)", r"gather.0.\1"),
            (r"LR_conv\.(weight|bias)", r"post.\1"),
            (r"upsampler\.0\.(weight|bias)", r"upsampler.0.\1"),
        ],
        source="IMDN weights",
    )


IMDN_FORMAT = register_format(
    WeightFormat(
        name="imdn",
        model="imdn",
        description="IMDN (Zheng222/IMDN checkpoints/IMDN_x*.pth, DataParallel keys)",
        detect=lambda s: "IMDB1.c1.weight" in s and "IMDB1.cca.conv_du.0.weight" in s,
        scales=lambda s: (pixelshuffle_scale(s["upsampler.0.weight"]),),
        config=_imdn_config,
        convert=_imdn_convert,
        notes="test_IMDN.py feeds RGB in [0, 1] with no mean shift and rounds the output.",
    )
)


# ---- E-RFDN (AIM 2020) -----------------------------------------------------------------------


def _rfdn_config(state: dict[str, Tensor], scale: int) -> RFDNConfig:
    return RFDNConfig(
        scale=scale,
        channels=state["fea_conv.weight"].shape[0],
        num_blocks=count_blocks(state, r"B(\d+)\.c1_d\.weight"),
    )


def _stage(kind: str):
    def repl(m: re.Match) -> str:
        return f"blocks.{int(m.group(1)) - 1}.{kind}.{int(m.group(2)) - 1}.{m.group(3)}"

    return repl


def _rfdn_convert(state: dict[str, Tensor], scale: int) -> dict[str, Tensor]:
    return map_keys(
        state,
        [
            (r"fea_conv\.(weight|bias)", r"head.\1"),
            (r"B(\d+)\.c([123])_d\.(weight|bias)", _stage("distill")),
            (r"B(\d+)\.c([123])_r\.(weight|bias)", _stage("refine")),
            (r"B(\d+)\.c4\.(weight|bias)", lambda m: f"blocks.{int(m[1]) - 1}.last.{m[2]}"),
            (r"B(\d+)\.c5\.(weight|bias)", lambda m: f"blocks.{int(m[1]) - 1}.merge.{m[2]}"),
            (r"B(\d+)\.(esa\.\w+\.(?:weight|bias))", block_index("blocks.")),
            (r"c\.0\.(weight|bias)", r"gather.0.\1"),
            (r"LR_conv\.(weight|bias)", r"post.\1"),
            (r"upsampler\.0\.(weight|bias)", r"upsampler.0.\1"),
        ],
        source="E-RFDN weights",
    )


RFDN_FORMAT = register_format(
    WeightFormat(
        name="e-rfdn",
        model="rfdn",
        description="E-RFDN, the AIM 2020 release (njulj/RFDN trained_model/RFDN_AIM.pth)",
        detect=lambda s: (
            "B1.c1_d.weight" in s
            and "B1.c1_r.weight" in s
            and "B1.esa.conv1.weight" in s
            and s["B1.c1_r.weight"].dim() == 4
        ),
        scales=lambda s: (pixelshuffle_scale(s["upsampler.0.weight"]),),
        config=_rfdn_config,
        convert=_rfdn_convert,
        input_range=255.0,
        head=("head.weight",),
        tail=("upsampler.0",),
        notes="Its test script feeds RGB in [0, 255] with no mean shift; folded into the first "
        "and last convs on import.",
    )
)
