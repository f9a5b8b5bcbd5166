"""CARN and CARN-M (Ahn, Kang and Sohn, "Fast, Accurate, and Lightweight Super-Resolution with
Cascading Residual Network", ECCV 2018; official code nmhkahn/CARN-pytorch, ``carn/model``).

CARN is a residual network with a *cascading* mechanism at two levels. Inside a cascading block,
the input and the output of every residual block so far are concatenated and fused by a 1x1 conv
(+ ReLU) before the next residual block (local cascade); the network does the same with the
outputs of its cascading blocks (global cascade). There is no long skip from the head: the
cascades carry the shallow features forward. CARN-M (mobile) swaps each residual block for a
residual-E block (grouped 3x3 convs plus a 1x1, as in MobileNet but with groups instead of
depthwise convs), and reuses one residual-E block for all three units of a cascading block
(recursive). Both subtract the DIV2K mean from the [0, 1] input and add it back at the end.

This module holds the blocks, the builders ``carn`` and ``carn_m``, and the importer of the
authors' released files (``carn_m.pth``; the same code reads the full ``carn.pth``).

Introduced in notebooks/13_the_family.ipynb (what CARN changed, its cost, its released weights);
no notebook opens up its blocks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..blocks import conv
from ..config import SCALES, CARNConfig, CARNMConfig
from .importers import ImportError_, State, WeightFormat, map_keys, register_format

__all__ = [
    "CARN",
    "DIV2K_MEAN",
    "Cascade",
    "CascadeUpsampler",
    "EfficientResidualUnit",
    "ResidualUnit",
    "build_carn",
    "build_carn_m",
]

# RGB mean of DIV2K in [0, 1] units, the constant of CARN's MeanShift layers (carn.py, carn_m.py).
DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


class ResidualUnit(nn.Module):
    """CARN's residual block: 3x3 -> ReLU -> 3x3, plus the input, then ReLU.

    The ReLU after the addition (not before it, as in EDSR) is what the official code does.
    Shape: (B, C, H, W) -> (B, C, H, W). ``conv1``, ``conv2`` are the released ``body.0``,
    ``body.2``. Overview: notebooks/13_the_family.ipynb (CARN).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv(channels, channels)
        self.conv2 = conv(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(x))) + x)


class EfficientResidualUnit(nn.Module):
    """CARN-M's residual-E block: grouped 3x3 -> ReLU -> grouped 3x3 -> ReLU -> 1x1, plus the
    input, then ReLU.

    Group convolution cuts the 3x3 cost by ``group``; the closing 1x1 mixes the groups again
    (the paper's answer to MobileNet's depthwise convs, which it found too weak for SR).
    Shape: (B, C, H, W) -> (B, C, H, W). ``conv1``, ``conv2``, ``pw`` are the released
    ``body.0``, ``body.2``, ``body.4``. Overview: notebooks/13_the_family.ipynb (CARN-M).
    """

    def __init__(self, channels: int, group: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, groups=group)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, groups=group)
        self.pw = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.conv2(F.relu(self.conv1(x))))
        return F.relu(self.pw(y) + x)


class Cascade(nn.Module):
    """The cascading mechanism, the same at both levels (a cascading block, or the whole trunk).

    With ``x`` the input, ``stage_i`` the i-th residual unit (local) or cascading block (global)::

        c_0 = o_0 = x
        b_i = stage_i(o_{i-1});  c_i = concat(c_{i-1}, b_i);  o_i = ReLU(Conv1x1_i(c_i))

    and the output is ``o_n``. The i-th 1x1 conv sees ``(i + 1) * C`` channels, so every stage
    reads a learned mix of all earlier features. ``cascade=False`` drops the 1x1 convs and the
    concatenations: ``o_i = b_i``, a plain chain (the "no cascading" baseline).

    Args:
        stages: The stage modules; a single module is reused for all ``steps`` (CARN-M's
            recursive block; its parameters appear once in the ``state_dict``).
        channels: Feature channels C.
        steps: How many stages run (default: ``len(stages)``).
        cascade: Keep the concatenations and 1x1 convs.

    ``fuse.i`` is the released ``c{i+1}.body.0``. Overview: notebooks/13_the_family.ipynb (CARN).
    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(
        self,
        stages: Sequence[nn.Module],
        channels: int,
        *,
        steps: int | None = None,
        cascade: bool = True,
    ) -> None:
        super().__init__()
        self.steps = len(stages) if steps is None else steps
        if len(stages) not in (1, self.steps):
            raise ValueError(f"Cascade: {len(stages)} stages for {self.steps} steps")
        self.stages = nn.ModuleList(stages)
        self.fuse = (
            nn.ModuleList(nn.Conv2d((i + 2) * channels, channels, 1) for i in range(self.steps))
            if cascade
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        out = cat = x
        shared = len(self.stages) == 1
        for i in range(self.steps):
            b = self.stages[0 if shared else i](out)
            if self.fuse is None:
                out = b
            else:
                cat = torch.cat([cat, b], dim=1)  # (B, (i + 2) C, H, W)
                out = F.relu(self.fuse[i](cat))
        return out

    def extra_repr(self) -> str:
        return (
            f"steps={self.steps}, shared={len(self.stages) == 1}, cascade={self.fuse is not None}"
        )


class CascadeUpsampler(nn.Module):
    """CARN's upsampler: [3x3 conv C -> r^2 C (grouped) -> ReLU -> PixelShuffle(r)] per factor:
    r = 2 once (x2), twice (x4), r = 3 once (x3). It keeps C channels at the HR size; a last
    3x3 conv (the network's ``tail``) maps them to RGB.

    ``convs.k`` is the released ``upsample.up{s}.body.{0,3}`` (k = 0, 1). Not covered by a
    notebook. Shape: (B, C, h, w) -> (B, C, s*h, s*w).
    """

    def __init__(self, channels: int, scale: int, group: int = 1) -> None:
        super().__init__()
        factors = {2: (2,), 3: (3,), 4: (2, 2)}
        if scale not in factors:
            raise ValueError(f"CascadeUpsampler: scale {scale} not in {sorted(factors)}")
        self.factors = factors[scale]
        self.convs = nn.ModuleList(
            nn.Conv2d(channels, r * r * channels, 3, padding=1, groups=group) for r in self.factors
        )
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        for conv_, r in zip(self.convs, self.factors, strict=True):
            x = F.pixel_shuffle(F.relu(conv_(x)), r)
        return x


class CARN(nn.Module):
    """CARN / CARN-M: mean shift -> 3x3 head -> global cascade of cascading blocks -> upsampler
    (that of ``scale``) -> 3x3 tail -> add the mean back.

    Takes RGB in [0, 1]. ``rgb_mean`` is a buffer (the official code uses frozen 1x1 convs),
    subtracted before the head so the zero padding of the head sees the same values as there.
    Shape: (B, 3, h, w) -> (B, 3, s*h, s*w).

    Args:
        channels: Feature channels (64).
        num_blocks: Cascading blocks (3).
        units: Residual units per cascading block (3).
        scale: The default upscaling factor.
        multi_scale: Build the x2, x3 and x4 upsamplers (as in the released models).
        cascade: "both", "local", "global" or "none": which 1x1 cascades exist.
        efficient: Residual-E blocks (CARN-M) instead of plain residual blocks (CARN).
        group: Groups of the residual-E 3x3 convs and of the upsampler convs.
        share: One residual unit reused across each cascading block (CARN-M).

    Overview: notebooks/13_the_family.ipynb.
    """

    def __init__(
        self,
        *,
        channels: int = 64,
        num_blocks: int = 3,
        units: int = 3,
        scale: int = 4,
        multi_scale: bool = False,
        cascade: str = "both",
        efficient: bool = False,
        group: int = 1,
        share: bool = False,
    ) -> None:
        super().__init__()
        self.register_buffer("rgb_mean", torch.tensor(DIV2K_MEAN).view(1, 3, 1, 1))
        self.head = conv(3, channels)

        def unit() -> nn.Module:
            return EfficientResidualUnit(channels, group) if efficient else ResidualUnit(channels)

        local = cascade in ("both", "local")
        blocks = [
            Cascade(
                [unit() for _ in range(1 if share else units)],
                channels,
                steps=units,
                cascade=local,
            )
            for _ in range(num_blocks)
        ]
        self.blocks = Cascade(blocks, channels, cascade=cascade in ("both", "global"))
        scales = SCALES if multi_scale else (scale,)
        self.upsamplers = nn.ModuleDict(
            {f"x{s}": CascadeUpsampler(channels, s, group) for s in scales}
        )
        self.tail = conv(channels, 3)
        self.scale = scale

    def forward(self, x: Tensor, scale: int | None = None) -> Tensor:
        """Super-resolve ``x`` by ``scale`` (default: the config's; others need multi_scale)."""
        key = f"x{self.scale if scale is None else scale}"
        if key not in self.upsamplers:
            raise ValueError(f"CARN: no {key} upsampler (has {', '.join(self.upsamplers)})")
        h = self.blocks(self.head(x - self.rgb_mean))
        return self.tail(self.upsamplers[key](h)) + self.rgb_mean


def build_carn(cfg: CARNConfig) -> CARN:
    """CARN: 1,111,875 parameters single-scale at x4 (+24 in the official frozen mean shifts);
    1,591,939 with all three upsamplers (official count 1,591,963)."""
    return CARN(
        channels=cfg.channels,
        num_blocks=cfg.num_blocks,
        units=cfg.units,
        scale=cfg.scale,
        multi_scale=cfg.multi_scale,
        cascade=cfg.cascade,
    )


def build_carn_m(cfg: CARNMConfig) -> CARN:
    """CARN-M: residual-E blocks (group 4), one shared per cascading block; 414,787 parameters
    with all three upsamplers (414,811 tensors in carn_m.pth, mean shifts included)."""
    return CARN(
        channels=cfg.channels,
        num_blocks=cfg.num_blocks,
        units=cfg.units,
        scale=cfg.scale,
        multi_scale=cfg.multi_scale,
        cascade=cfg.cascade,
        efficient=True,
        group=cfg.group,
        share=cfg.share,
    )


BUILDERS = {"carn": build_carn, "carn_m": build_carn_m}


# --------------------------------------------------------------------------------------------
# The released weights (nmhkahn/CARN-pytorch @ 40d3514f, checkpoint/carn.pth, carn_m.pth)
# --------------------------------------------------------------------------------------------
# Official key layout: sub_mean/add_mean.shifter (frozen 1x1, identity weight, bias -/+ mean),
# entry (3x3 head), b{i} cascading blocks with b{i}.b{j} residual blocks (CARN-M: only b{i}.b1,
# reused) whose convs sit at body.0 / body.2 (/ body.4: the residual-E 1x1) and b{i}.c{j} 1x1
# fusions at c{j}.body.0, top-level c{j} fusions, upsample.up{2,3,4}.body.{0,3} (upsample.up for
# a single-scale model), exit (3x3 tail).


def _count(state: State, pattern: str) -> int:
    rx = re.compile(pattern)
    return sum(1 for k in state if rx.fullmatch(k))


def _is_carn(state: State) -> bool:
    return all(k in state for k in ("entry.weight", "exit.weight", "b1.c1.body.0.weight")) and (
        "c1.body.0.weight" in state and "sub_mean.shifter.bias" in state
    )


def _upsampler_keys(state: State, scale: int) -> str:
    """The official key prefix of the upsampler for ``scale``."""
    return "upsample.up" if "upsample.up.body.0.weight" in state else f"upsample.up{scale}"


def _scales(state: State) -> tuple[int, ...]:
    if "upsample.up.body.0.weight" in state:  # a single-scale model: read the factor off shapes
        channels = state["entry.weight"].shape[0]
        if state["upsample.up.body.0.weight"].shape[0] == 9 * channels:
            return (3,)
        return (4,) if "upsample.up.body.3.weight" in state else (2,)
    return tuple(s for s in SCALES if f"upsample.up{s}.body.0.weight" in state)


def _sizes(state: State) -> tuple[int, int, int]:
    """(channels, cascading blocks, units per block) from the keys and shapes."""
    channels = state["entry.weight"].shape[0]
    blocks = _count(state, r"b\d+\.c1\.body\.0\.weight")
    units = _count(state, r"b1\.c\d+\.body\.0\.weight")
    return channels, blocks, units


def _groups(weight: Tensor, channels: int) -> int:
    return channels // weight.shape[1]  # a grouped conv stores C / group input channels


def _carn_config(state: State, scale: int) -> CARNConfig:
    channels, blocks, units = _sizes(state)
    up = state[f"{_upsampler_keys(state, scale)}.body.0.weight"]
    if _groups(up, channels) != 1:
        raise ImportError_(
            f"carn: upsampler with {_groups(up, channels)} groups; the kit's carn has none "
            "(the official CARN is trained with --group 1)"
        )
    return CARNConfig(scale=scale, channels=channels, num_blocks=blocks, units=units)


def _carn_m_config(state: State, scale: int) -> CARNMConfig:
    channels, blocks, units = _sizes(state)
    group = _groups(state["b1.b1.body.0.weight"], channels)
    share = "b1.b2.body.0.weight" not in state
    return CARNMConfig(
        scale=scale, channels=channels, num_blocks=blocks, units=units, group=group, share=share
    )


def _mean_from_shifters(state: State, source: str) -> Tensor:
    """The RGB mean the frozen shifters hold, checked: identity weights, biases -mean / +mean."""
    eye = torch.eye(3).view(3, 3, 1, 1)
    for side in ("sub_mean", "add_mean"):
        if not torch.equal(state[f"{side}.shifter.weight"].float(), eye):
            raise ImportError_(f"{source}: {side}.shifter.weight is not the identity")
    mean = state["add_mean.shifter.bias"].float()
    if not torch.equal(state["sub_mean.shifter.bias"].float(), -mean):
        raise ImportError_(f"{source}: sub_mean and add_mean biases are not opposite")
    if not torch.allclose(mean, torch.tensor(DIV2K_MEAN), atol=1e-6):
        raise ImportError_(f"{source}: mean shift {mean.tolist()} is not the DIV2K mean")
    return mean.view(1, 3, 1, 1)


def _convert(state: State, scale: int, *, efficient: bool) -> State:
    """Map an official CARN / CARN-M state dict onto the kit's keys (``scale``'s upsampler only)."""
    _, blocks, units = _sizes(state)
    wb = r"\.(weight|bias)"
    rules = [(r"entry" + wb, r"head.\1"), (r"exit" + wb, r"tail.\1")]
    unit_convs = {"0": "conv1", "2": "conv2"} | ({"4": "pw"} if efficient else {})
    for i in range(1, blocks + 1):
        block = f"blocks.stages.{i - 1}"
        rules.append((rf"c{i}\.body\.0" + wb, rf"blocks.fuse.{i - 1}.\1"))
        for j in range(1, units + 1):
            rules.append((rf"b{i}\.c{j}\.body\.0" + wb, rf"{block}.fuse.{j - 1}.\1"))
            for idx, name in unit_convs.items():
                rules.append(
                    (rf"b{i}\.b{j}\.body\.{idx}" + wb, rf"{block}.stages.{j - 1}.{name}.\1")
                )
    up = re.escape(_upsampler_keys(state, scale))
    for k, idx in enumerate(("0", "3")):  # body = [conv, ReLU, PixelShuffle] per factor
        rules.append((rf"{up}\.body\.{idx}" + wb, rf"upsamplers.x{scale}.convs.{k}.\1"))
    drop = [rf"upsample\.up{s}\..*" for s in SCALES if s != scale]
    shifters = [k for k in state if k.startswith(("sub_mean.shifter.", "add_mean.shifter."))]
    source = "carn_m" if efficient else "carn"
    out = map_keys(
        {k: v for k, v in state.items() if k not in shifters}, rules, drop=drop, source=source
    )
    out["rgb_mean"] = _mean_from_shifters(state, source)  # the four shifter tensors, checked
    return out


_NOTES = (
    "Official carn/sample.py builds Net(multi_scale=True, group=G) (G=4 for CARN-M, 1 for CARN), "
    "feeds PIL RGB through ToTensor (RGB in [0, 1]) and calls net(lr, scale), which picks the "
    "upsampler of that scale; the mean shift is inside the network. It saves the output with "
    "mul(255).clamp(0, 255).byte(), which truncates (the kit rounds). The repository's own PSNR "
    "(solver.py) is on RGB and meant for validation only; the paper's tables were measured in "
    "MATLAB on Y. Its README warns that the paper's numbers do not reproduce with the released "
    "code (issue #6). The kit keeps only the chosen scale's upsampler; the others are dropped."
)

register_format(
    WeightFormat(
        name="carn",
        model="carn",
        description="CARN (nmhkahn/CARN-pytorch checkpoint/carn.pth), multi-scale x2/x3/x4",
        detect=lambda s: _is_carn(s) and "b1.b1.body.4.weight" not in s,
        scales=_scales,
        config=_carn_config,
        convert=lambda s, scale: _convert(s, scale, efficient=False),
        mean_shift=True,
        notes=_NOTES,
    )
)
register_format(
    WeightFormat(
        name="carn-m",
        model="carn_m",
        description="CARN-M (nmhkahn/CARN-pytorch checkpoint/carn_m.pth), multi-scale, group 4",
        detect=lambda s: _is_carn(s) and "b1.b1.body.4.weight" in s,
        scales=_scales,
        config=_carn_m_config,
        convert=lambda s, scale: _convert(s, scale, efficient=True),
        mean_shift=True,
        notes=_NOTES,
    )
)
