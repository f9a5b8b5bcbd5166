"""Model configs: frozen dataclasses whose fields are the ablation switches.

One config object drives everything: the notebook (``dataclasses.replace(cfg, asym=False)``),
the CLI (``--set asym=false``), the widget panel and the ablation grid all produce the same
object, and a checkpoint stores it so the exact network can be rebuilt. Unknown keys and bad
values are errors that list what is valid. This module imports no torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args, get_origin

__all__ = [
    "CONFIGS",
    "PROTOCOL",
    "TRAIN_PRESETS",
    "BicubicConfig",
    "ConfigError",
    "IMDNConfig",
    "LMSWNConfig",
    "ModelConfig",
    "RFDNConfig",
    "SAFDNetConfig",
    "TrainConfig",
    "apply_overrides",
    "canonical_json",
    "config_from_dict",
    "config_hash",
    "config_to_dict",
    "diff_label",
    "field_choices",
    "get_config",
    "parse_field",
    "stable_hash",
    "switch",
    "switches",
    "train_config",
]

SCALES = (2, 3, 4)
# The evaluation protocol of every quality figure the kit records (sr_kit.evaluate implements it):
# PSNR/SSIM on BT.601 Y, `scale` border pixels shaved, LR made by MATLAB-compatible bicubic,
# the output rounded to uint8 before measuring.
PROTOCOL = "y_bt601, shave=scale, matlab_bicubic, uint8"

# ONNX export (sr_kit.export, `sr-kit export`): the opset, the LR sizes (height, width) every
# export is checked at with ONNX Runtime (odd, square, a 720p output at x4) and the largest
# max |ONNX Runtime - PyTorch| accepted on outputs in [0, 1].
ONNX_OPSET = 18
ONNX_CHECK_SIZES: tuple[tuple[int, int], ...] = ((17, 23), (64, 64), (180, 320))
ONNX_TOLERANCE = 1e-4


class ConfigError(ValueError):
    """A config key or value is not valid; the message lists what is."""


def switch(default: Any, doc: str, *, claim: str = "", choices: tuple | None = None) -> Any:
    """Declare a dataclass field as an ablation switch.

    Args:
        default: The value of the full model (switch defaults always give the paper's network).
        doc: What the switch changes, in a few words.
        claim: The paper claim the switch tests (e.g. "L2: strengthened square conv"), or "".
        choices: Allowed values for a numeric switch; bool and Literal fields derive their own.
    """
    return field(
        default=default,
        metadata={"switch": True, "doc": doc, "claim": claim, "choices": choices},
    )


def field_choices(f: dataclasses.Field, hint: Any) -> tuple | None:
    """The allowed values of a config field: declared choices, bool, or a Literal's values."""
    if f.metadata.get("choices") is not None:
        return tuple(f.metadata["choices"])
    if hint is bool:
        return (True, False)
    if get_origin(hint) is Literal:
        return get_args(hint)
    return None


@dataclass(frozen=True)
class ModelConfig:
    """Base of every network config. ``name`` is the registry key of the network."""

    name: ClassVar[str] = ""
    channel_multiple: ClassVar[int] = 1  # `channels`, where a network has it, must divide by this
    min_channels: ClassVar[int] = 1  # and be at least this
    scale: int = 4  # upscaling factor: 2, 3 or 4

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            hint = hints[f.name]
            choices = field_choices(f, hint)
            if f.name == "scale":
                choices = SCALES
            if choices is not None and value not in choices:
                raise ConfigError(
                    f"{self.name}: {f.name}={value!r} is not valid; choose one of {list(choices)}"
                )
            base = _base_type(hint)
            if base is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"{self.name}: {f.name} must be an int, got {value!r}")
            if base is int and f.name != "scale" and value < 1:
                raise ConfigError(f"{self.name}: {f.name} must be >= 1, got {value}")
        channels = getattr(self, "channels", None)
        if channels is not None and channels % self.channel_multiple:
            raise ConfigError(
                f"{self.name}: channels must divide by {self.channel_multiple}, "
                f"got channels={channels}"
            )
        if channels is not None and channels < self.min_channels:
            raise ConfigError(
                f"{self.name}: channels must be at least {self.min_channels}, "
                f"got channels={channels}"
            )


def _base_type(hint: Any) -> Any:
    if get_origin(hint) is Literal:
        return type(get_args(hint)[0])
    if get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return hint


@dataclass(frozen=True)
class BicubicConfig(ModelConfig):
    """MATLAB-compatible bicubic upscaling: the baseline row of every SR table (no parameters)."""

    name: ClassVar[str] = "bicubic"


@dataclass(frozen=True)
class IMDNConfig(ModelConfig):
    """IMDN (Hui et al., ACM MM 2019) as released: 64 channels, 6 IMDBs. A baseline: no switches."""

    name: ClassVar[str] = "imdn"
    min_channels: ClassVar[int] = 4  # int(C/4) distilled channels; any C >= 4 builds
    channels: int = 64
    num_blocks: int = 6


@dataclass(frozen=True)
class RFDNConfig(ModelConfig):
    """RFDN (Liu et al., ECCV-W 2020), rebuilt from the released block: 48 channels, 6 RFDBs.

    ``channels=50, num_blocks=4`` is E-RFDN, the AIM 2020 release (433,448 parameters at x4).
    """

    name: ClassVar[str] = "rfdn"
    # The block takes C // 2 distilled and C // 4 ESA channels, so any C >= 4 builds (the
    # released E-RFDN has C = 50)
    min_channels: ClassVar[int] = 4
    channels: int = 48
    num_blocks: int = 6


@dataclass(frozen=True)
class LMSWNConfig(ModelConfig):
    """LMSWN: multi-stage feature distillation-weighted network (spec: NETWORKS.md section 6).

    Every switch default gives the full network; each switch tests one claim of the abstract.
    """

    name: ClassVar[str] = "lmswn"
    channel_multiple: ClassVar[int] = 4  # the C/4 split and ESA
    channels: int = 48
    num_blocks: int = 6
    head: Literal["pyramid", "dilated", "conv3"] = switch(
        "pyramid",
        "shallow features: parallel 3x3/5x5/7x7 (pyramid), dilated 3x3 d=1/2/3, or one 3x3",
        claim="L1: a pyramid-like multi-scale module widens the receptive field",
    )
    asym: bool = switch(
        True,
        "1x3 + 3x1 branches beside each refinement 3x3 (fused away at deployment)",
        claim="L2: strengthened square convolution extracts local key features",
    )
    distill: Literal["split1x1", "fdc", "split"] = switch(
        "split1x1",
        "distillation step: split C/4 + 1x1 (split1x1), RFDN's 1x1 C->C/2 (fdc), bare split",
        claim="L3: channel split + 1x1 conv distils stage by stage with fewer parameters",
    )
    weights: Literal["scalar", "fixed", "none", "channel"] = switch(
        "scalar",
        "block output l1*Y + l2*X: learnable scalars, fixed 1, no skip, or per-channel",
        claim="L4: two adaptive parameters jointly weight the block's two branches",
    )
    attn: Literal["esa", "cca", "none"] = switch(
        "esa", "attention closing each block (inherited from RFDB)", claim=""
    )


@dataclass(frozen=True)
class SAFDNetConfig(ModelConfig):
    """SAFDNet: self-attention feature distillation network (spec: NETWORKS.md section 7)."""

    name: ClassVar[str] = "safdnet"
    channel_multiple: ClassVar[int] = 4  # ESA's C/4 reduction
    channels: int = 48
    num_blocks: int = 6
    heads: int = 4
    global_attn: Literal["acffn", "dw3x3", "pw", "none"] = switch(
        "acffn",
        "Q/K/V projector of the global attention: asymmetric 1x3-GELU-3x1 (acffn), depthwise "
        "3x3, 1x1 only (pw), or no global attention",
        claim="S1/S2: self-attention distillation with an asymmetric-conv feed-forward projector",
    )
    compress_ratio: int = switch(
        2,
        "Q/K/V width = channels / compress_ratio",
        claim="S2: compressing channels for global attention cuts cost",
        choices=(2, 1, 4),
    )
    shift_ratio: float = switch(
        1 / 3,
        "share of ESA's reduced channels shifted by shift_px in four directions (0: no shift)",
        claim="S3: partial channel shift adds feature diversity at no FLOP cost",
        choices=(1 / 3, 0.0, 1 / 6, 1 / 2),
    )
    shift_px: int = switch(1, "shift distance in pixels", claim="S3", choices=(1, 2))
    distill: bool = switch(
        True,
        "RFDN-style distillation branches (False: GAU and two SRBs in series, then 3x3)",
        claim="S1: the feature-distillation skeleton",
    )
    attn_norm: Literal["softmax", "relu"] = switch(
        "softmax", "attention map normalisation (relu: DLGSANet's sparse variant)", claim=""
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        inner = self.channels // self.compress_ratio
        if self.channels % self.compress_ratio or inner % self.heads:
            raise ConfigError(
                f"safdnet: channels={self.channels} must divide by compress_ratio="
                f"{self.compress_ratio}, and channels/compress_ratio={inner} by heads={self.heads}"
            )


# The registry of configs, by model name; models/__init__.py holds the matching builders.
CONFIGS: dict[str, type[ModelConfig]] = {
    "bicubic": BicubicConfig,
    "imdn": IMDNConfig,
    "rfdn": RFDNConfig,
    "lmswn": LMSWNConfig,
    "safdnet": SAFDNetConfig,
}


# ---- The family: comparators and relatives, as their official code builds them. ----
# One section per network module (sr_kit/models/<net>.py holds the matching builders and the
# importer of the authors' released weights). Each section registers its configs in CONFIGS.


# == section: rlfn, bsrn (sr_kit/models/rlfn.py, sr_kit/models/bsrn.py) ==
@dataclass(frozen=True)
class RLFNConfig(ModelConfig):
    """RLFN (Kong et al., CVPR-W 2022; bytedance/RLFN model/rlfn.py) as released: 52 channels,
    6 residual local feature blocks, a 16-channel ESA, no concatenation of the block outputs."""

    name: ClassVar[str] = "rlfn"
    min_channels: ClassVar[int] = 2  # block="rfdb" distils C // 2 channels
    channels: int = 52
    num_blocks: int = 6
    esa_channels: int = 16  # ESA's reduced width f, fixed in RLFN (not C / 4)
    block: Literal["rlfb", "rfdb"] = switch(
        "rlfb",
        "block: RLFB (3x3+LReLU three times, one residual, 1x1, ESA) or RFDN's RFDB (a 1x1 "
        "distillation tap per stage, concatenated) in the same trunk",
        claim="RLFN: residual local features instead of RFDB's hierarchical distillation",
    )
    esa: Literal["light", "full", "none"] = switch(
        "light",
        "ESA closing each block: RLFN's (one 3x3 after the pooling, no activation), RFDN's "
        "(three 3x3s with ReLUs) or none",
        claim="RLFN: a lighter ESA without the conv group after the pooling",
    )


@dataclass(frozen=True)
class RLFNSConfig(RLFNConfig):
    """RLFN-S, the small RLFN of the same paper (model/rlfn_s.py): 48 channels, otherwise RLFN."""

    name: ClassVar[str] = "rlfn_s"
    channels: int = 48


@dataclass(frozen=True)
class BSRNConfig(ModelConfig):
    """BSRN (Li et al., CVPR-W 2022; xiaom233/BSRN basicsr/archs/BSRN_arch.py) as released:
    64 channels, 8 ESDBs, every 3x3 a blueprint separable conv (BSConv-U), ESA + CCA."""

    name: ClassVar[str] = "bsrn"
    min_channels: ClassVar[int] = 4  # ESA's C // 4 reduction
    channels: int = 64
    num_blocks: int = 8
    conv: Literal["bsconv", "dsconv", "conv3"] = switch(
        "bsconv",
        "every 3x3 (head, blocks, ESA, trunk): BSConv-U (1x1 then depthwise 3x3), depthwise "
        "separable (depthwise then 1x1) or a full 3x3 conv",
        claim="BSRN: blueprint separable convolutions",
    )
    attn: Literal["esa+cca", "esa", "cca", "none"] = switch(
        "esa+cca",
        "attention closing each ESDB: ESA then CCA, one of them, or none",
        claim="BSRN: ESA and CCA attention strengthen the separable blocks",
    )


@dataclass(frozen=True)
class BSRNSConfig(ModelConfig):
    """BSRN-S, BSRN's NTIRE 2022 challenge model (the repository's RFDNFINALB5 class): 48
    channels, 5 blocks, BSConv-U with biased pointwise convs, ESA only, each block ending in a
    learnable per-channel scale and a 1x1 conv."""

    name: ClassVar[str] = "bsrn_s"
    min_channels: ClassVar[int] = 4  # ESA's C // 4 reduction
    channels: int = 48
    num_blocks: int = 5
    conv: Literal["bsconv", "dsconv", "conv3"] = switch(
        "bsconv",
        "every 3x3 of the head, blocks, ESA (but its strided 3x3) and trunk: BSConv-U, "
        "depthwise separable or a full 3x3 conv",
        claim="BSRN: blueprint separable convolutions",
    )


CONFIGS["rlfn"] = RLFNConfig
CONFIGS["rlfn_s"] = RLFNSConfig
CONFIGS["bsrn"] = BSRNConfig
CONFIGS["bsrn_s"] = BSRNSConfig
# == end section: rlfn, bsrn ==


# == section: carn (sr_kit/models/carn.py) ==
@dataclass(frozen=True)
class CARNConfig(ModelConfig):
    """CARN (Ahn et al., ECCV 2018; nmhkahn/CARN-pytorch) as released: 64 channels, 3 cascading
    blocks of 3 residual blocks, local and global 1x1 cascades, mean shift inside.

    ``multi_scale`` builds the x2, x3 and x4 upsamplers of the released (multi-scale) models and
    runs the one of ``scale``: 1,591,939 parameters, against 1,111,875 single-scale at x4.
    """

    name: ClassVar[str] = "carn"
    channels: int = 64
    num_blocks: int = 3  # cascading blocks
    units: int = 3  # residual blocks inside each cascading block
    multi_scale: bool = False  # build x2/x3/x4 upsamplers (the released files), use `scale`'s
    cascade: Literal["both", "local", "global", "none"] = switch(
        "both",
        "1x1 cascades kept: inside each block (local), between blocks (global), both, none "
        "(plain chain of residual blocks, the paper's ResNet baseline)",
        claim="CARN: cascading residual connections",
    )


@dataclass(frozen=True)
class CARNMConfig(CARNConfig):
    """CARN-M, the mobile CARN (same paper): residual-E blocks with group convolutions, one block
    reused three times in each cascading block (recursive), group=4 (the released carn_m.pth)."""

    name: ClassVar[str] = "carn_m"
    channel_multiple: ClassVar[int] = 4  # every `group` choice must divide the channels
    group: int = switch(
        4,
        "groups of the 3x3 convs in the residual-E blocks and the upsampler",
        claim="CARN-M: group convolution in the efficient residual block",
        choices=(4, 1, 2),
    )
    share: bool = switch(
        True,
        "one residual-E block reused for all units of a cascading block (False: separate ones)",
        claim="CARN-M: recursive cascading block (shared weights)",
    )


CONFIGS["carn"] = CARNConfig
CONFIGS["carn_m"] = CARNMConfig
# == end section: carn ==


# == section: smsr (sr_kit/models/smsr.py) ==
@dataclass(frozen=True)
class SMSRConfig(ModelConfig):
    """SMSR (Wang et al., CVPR 2021) as released: 64 channels, 5 sparse mask modules of 4 3x3
    convs each (987,306 / 995,961 / 1,008,078 learnable parameters at x2/x3/x4)."""

    name: ClassVar[str] = "smsr"
    channel_multiple: ClassVar[int] = 16  # channel attention's C/16 (and the mask branch's C/4)
    channels: int = 64
    num_blocks: int = 5
    convs_per_block: int = 4
    sparse: bool = switch(
        True,
        "a spatial mask per block and a channel mask per conv, learnt with Gumbel softmax (hard "
        "0/1 at test), plus the sparsity loss; False: the same body computed densely",
        claim="SMSR: learnt spatial and channel sparse masks skip redundant computation",
    )


CONFIGS["smsr"] = SMSRConfig
# == end section: smsr ==


# == section: dlgsanet (sr_kit/models/dlgsanet.py) ==
@dataclass(frozen=True)
class DLGSANetConfig(ModelConfig):
    """DLGSANet-light (Li et al., ICCV 2023; NeonLeexiang/DLGSANet @ 0974b9a, the options
    ``train_SISR_ClassicDIV2K_Light_48C4G3B_*``): 48 channels, 4 residual hybrid
    dynamic-Transformer groups (RHDTGs) of 3 hybrid blocks (HDTBs), mean shift inside;
    745,188 / 751,683 / 760,776 parameters at x2/x3/x4.

    An HDTB is LN -> MHDLSA (1x1, 7x7 dynamic depthwise conv, 1x1) -> + x, LN -> GDFN -> + x,
    LN -> SparseGSA (channel attention, ReLU instead of softmax) -> + x, LN -> GDFN -> + x.
    The official code's head counts become sizes that also divide other widths: 6 attention
    heads of 8 channels (``head_channels``) and 8 predicted kernels per pixel, each shared by 6
    channels (``kernel_groups``; its ``idynamic_num_heads=6`` is the channels per kernel).
    """

    name: ClassVar[str] = "dlgsanet"
    channel_multiple: ClassVar[int] = 8  # head_channels and kernel_groups (and C/4 predictor)
    channels: int = 48
    num_blocks: int = 3  # HDTBs per group
    num_groups: int = 4  # RHDTGs
    head_channels: int = 8  # channels per SparseGSA head (48 / 8 = the official 6 heads)
    kernel_groups: int = 8  # predicted kernels per pixel (48 / 8 = 6 channels share one)
    local_kernel: int = 7  # size of the dynamic kernel (official window_size; odd)
    ffn_expansion: int = 2  # GDFN hidden width = ffn_expansion * channels
    local: Literal["dynamic", "static"] = switch(
        "dynamic",
        "local branch: per-pixel predicted depthwise kernels (MHDLSA), or one learned "
        "depthwise conv (static, the official idynamic=False)",
        claim="DLGSANet: dynamic local self-attention",
    )
    attn_norm: Literal["relu", "softmax"] = switch(
        "relu",
        "global channel attention map: ReLU (SparseGSA) or softmax (Restormer's MDTA)",
        claim="DLGSANet: ReLU sparse global self-attention",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        c = self.channels
        if c % self.head_channels or c % self.kernel_groups:
            raise ConfigError(
                f"{self.name}: channels={c} must divide by head_channels={self.head_channels} "
                f"and by kernel_groups={self.kernel_groups}"
            )
        if self.local_kernel % 2 == 0:
            raise ConfigError(f"{self.name}: local_kernel must be odd, got {self.local_kernel}")


@dataclass(frozen=True)
class DLGSANetTinyConfig(DLGSANetConfig):
    """DLGSANet-tiny: DLGSANet-light with 3 groups of 3 HDTBs at every scale; 565,710 / 572,205 /
    581,298 parameters at x2/x3/x4.

    The x3 option file is named ``..._Tiny_48C3G4B_..._SRx3_...`` (its experiment ``name`` too),
    but its ``network_g`` says ``groups: 3, blocks: 3`` (and its comment "48C-3G-3B"), so that
    file builds 3 x 3 like x2 and x4. ``num_blocks=4`` gives the 3G4B network the name describes
    (730,899 parameters at x3).
    """

    name: ClassVar[str] = "dlgsanet_tiny"
    num_groups: int = 3


CONFIGS["dlgsanet"] = DLGSANetConfig
CONFIGS["dlgsanet_tiny"] = DLGSANetTinyConfig
# == end section: dlgsanet ==


@dataclass(frozen=True)
class TrainConfig:
    """How a network is trained: everything ``fit`` needs besides the model and the data.

    The seed is not here: it belongs to the run (``RunConfig.seed``), which seeds both the
    initial weights and the patch sampler.

    Steps count optimizer updates. The learning rate warms up linearly for ``warmup_steps`` and
    then follows a cosine to ``min_lr_ratio * learning_rate``. Patches are LR patches; the HR
    patch is ``patch * scale``. The defaults (bf16 autocast, channels_last) are for CUDA; the
    quick-cpu preset turns both off.
    """

    steps: int = 1000
    batch_size: int = 16
    patch: int = 48
    learning_rate: float = 5e-4
    warmup_steps: int = 50
    min_lr_ratio: float = 0.01
    device: str = "auto"  # auto: cuda > mps > cpu
    amp: bool = True  # bf16 autocast (made for CUDA; works on CPU, usually slower there)
    channels_last: bool = True  # NHWC memory layout (faster convs on CUDA tensor cores)
    compile: bool = False  # torch.compile the model
    val_every: int = 250  # validation PSNR every N steps (0: only at the end)
    checkpoint_every: int = 250  # 0: only at the end
    time_budget_s: float = 0.0  # stop (and save) after this many seconds; 0: no limit
    grad_clip: float = 0.0  # max gradient norm; 0: off
    lr_halve_every: int = 0  # >0: step decay (x0.5 every N steps) instead of cosine

    def __post_init__(self) -> None:
        positive = ("steps", "batch_size", "patch")
        for key in positive:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"train: {key} must be a positive integer, got {value!r}")
        if not self.learning_rate > 0:
            raise ConfigError(f"train: learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"train: min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        for key in ("warmup_steps", "val_every", "checkpoint_every", "lr_halve_every"):
            if getattr(self, key) < 0:
                raise ConfigError(f"train: {key} must be >= 0, got {getattr(self, key)}")
        if self.device not in ("auto", "cpu", "cuda", "mps") and not self.device.startswith(
            "cuda:"
        ):
            raise ConfigError(
                f"train: device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}"
            )


# Named training presets. Lengths were sized on the machines named in each comment.
TRAIN_PRESETS: dict[str, TrainConfig] = {
    # 30-40 s on 2 CPU cores (AMD EPYC, torch 2.13) for the default networks at x4; enough for
    # RFDN to pass bicubic on the embedded validation images, not to rank networks
    "quick-cpu": TrainConfig(
        steps=300, batch_size=8, patch=24, learning_rate=2e-3, warmup_steps=20,
        val_every=100, checkpoint_every=100, device="cpu", amp=False, channels_last=False,
    ),
    # capped at 5 minutes by time_budget_s; 6000 steps is a guess for one GPU, not yet measured
    "brief-gpu": TrainConfig(
        steps=6000, batch_size=32, patch=48, learning_rate=1e-3, warmup_steps=200,
        val_every=500, checkpoint_every=1000, time_budget_s=300.0,
    ),
    # the IMDN schedule (NETWORKS.md section 2): 1M iterations, Adam 2e-4 halved every 200K
    "paper": TrainConfig(
        steps=1_000_000, batch_size=16, patch=48, learning_rate=2e-4, warmup_steps=0,
        lr_halve_every=200_000, val_every=10_000, checkpoint_every=10_000,
    ),
}  # fmt: skip


def train_config(preset: str | None = None, **overrides: Any) -> TrainConfig:
    """A training config from a preset name (or the defaults) with field overrides."""
    if preset is not None and preset not in TRAIN_PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; known: {', '.join(TRAIN_PRESETS)}")
    base = TRAIN_PRESETS[preset] if preset else TrainConfig()
    valid = [f.name for f in dataclasses.fields(TrainConfig)]
    unknown = [k for k in overrides if k not in valid]
    if unknown:
        raise ConfigError(f"train: unknown key(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    return dataclasses.replace(base, **overrides)


def get_config(name: str, **overrides: Any) -> ModelConfig:
    """The default config of model ``name`` with keyword overrides applied."""
    key = name.lower()
    if key not in CONFIGS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(sorted(CONFIGS))}")
    cls = CONFIGS[key]
    _check_keys(cls, overrides)
    return cls(**overrides)


def _check_keys(cls: type[ModelConfig], keys: typing.Iterable[str]) -> None:
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in keys if k not in valid]
    if unknown:
        raise ConfigError(
            f"{cls.name}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(valid)}"
        )


def switches(cfg: ModelConfig) -> dict[str, dict[str, Any]]:
    """Ablation switches of a config: name -> {value, choices, doc, claim}."""
    hints = typing.get_type_hints(type(cfg))
    out = {}
    for f in dataclasses.fields(cfg):
        if f.metadata.get("switch"):
            out[f.name] = {
                "value": getattr(cfg, f.name),
                "choices": list(field_choices(f, hints[f.name]) or ()),
                "doc": f.metadata["doc"],
                "claim": f.metadata["claim"],
            }
    return out


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _field_hint(cls: type, key: str) -> tuple[dataclasses.Field, Any]:
    f = next(f for f in dataclasses.fields(cls) if f.name == key)
    return f, typing.get_type_hints(cls)[key]


def parse_field(cls: type, key: str, text: str, *, owner: str | None = None) -> Any:
    """Read ``text`` (as typed after ``key=`` on a command line) as a value of field ``key``.

    Works for any config dataclass: bool (true/false/yes/no/on/off/1/0), int, float (also a
    fraction such as ``1/3``), str, a Literal, ``X | None`` (``none``) and ``tuple[str, ...]``
    (comma-separated). ``owner`` names the config in error messages (default: ``cls.name``).
    """
    f, hint = _field_hint(cls, key)
    owner = owner or getattr(cls, "name", cls.__name__)
    choices = field_choices(f, hint)
    args = get_args(hint)
    optional = get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    if optional and text.strip().lower() in ("none", "null", ""):
        return None
    if get_origin(hint) is tuple:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    base = _base_type(hint)
    try:
        if base is bool:
            low = text.strip().lower()
            if low not in _TRUE | _FALSE:
                raise ValueError
            return low in _TRUE
        if base is int:
            return int(text)
        if base is float:
            if "/" in text:  # fractions such as shift_ratio=1/3 read naturally on the command line
                num, den = text.split("/", 1)
                value = float(num) / float(den)
            else:
                value = float(text)
            # Snap to a declared choice so 1/3 typed by hand equals the default 1/3.
            for c in choices or ():
                if abs(value - c) < 1e-9:
                    return c
            return value
        return text
    except (ValueError, ZeroDivisionError):
        kinds = {int: "an integer", float: "a number", str: "text", bool: "true or false"}
        allowed = f"one of {list(choices)}" if choices else kinds.get(base, base.__name__)
        raise ConfigError(f"{owner}: cannot read {key}={text!r}; expected {allowed}") from None


def apply_overrides(cfg: ModelConfig, items: typing.Iterable[str]) -> ModelConfig:
    """Apply ``key=value`` strings (as given to ``--set``) to a config, parsing by field type."""
    cls = type(cfg)
    values: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value")
        key, text = (s.strip() for s in item.split("=", 1))
        _check_keys(cls, [key])
        values[key] = parse_field(cls, key, text)
    return dataclasses.replace(cfg, **values)


def diff_label(cfg: ModelConfig, base: ModelConfig, empty: str = "base") -> str:
    """``key=value`` for every field where ``cfg`` differs from ``base`` (``empty`` if none)."""
    diff = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if value != getattr(base, f.name):
            diff.append(
                f"{f.name}={value:.4g}" if isinstance(value, float) else f"{f.name}={value}"
            )
    return ", ".join(diff) or empty


def config_to_dict(cfg: ModelConfig) -> dict[str, Any]:
    """A JSON-ready dict with the model name under ``"model"``."""
    return {"model": cfg.name, **dataclasses.asdict(cfg)}


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a config from ``config_to_dict`` output; unknown keys are an error."""
    if not isinstance(data, dict) or "model" not in data:
        raise ConfigError(f"a config dict needs a 'model' key, got {data!r}")
    rest = {k: v for k, v in data.items() if k != "model"}
    return get_config(str(data["model"]), **rest)


def canonical_json(obj: typing.Mapping[str, Any], what: str = "the value") -> str:
    """The canonical JSON of ``obj``: sorted keys, no spaces (equal settings, equal text)."""
    try:
        return json.dumps(dict(obj), sort_keys=True, separators=(",", ":"))
    except TypeError as e:
        raise TypeError(f"{what} must be JSON-serialisable: {e}") from None


def stable_hash(obj: typing.Mapping[str, Any]) -> str:
    """sha256 of :func:`canonical_json` of ``obj``, first 16 hex digits.

    The one hash of the kit: config hashes, run hashes and the registry's columns all use it,
    so the same settings give the same hash in every process and in every file.
    """
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:16]


def config_hash(cfg: ModelConfig) -> str:
    """A short stable hash of the config (same config, same hash, across processes)."""
    return stable_hash(config_to_dict(cfg))
