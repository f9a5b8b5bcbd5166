"""SMSR: sparse mask super-resolution (Wang et al., "Exploring Sparsity in Image Super-Resolution
for Efficient Inference", CVPR 2021; code: github.com/LongguangWang/SMSR, ``model/smsr.py``).

Each of the five sparse mask modules (SMMs) runs four 3x3 convs. A small branch predicts a
*spatial* mask (which pixels matter), and every conv layer owns a learnt *channel* mask that
splits its output channels into "dense" ones (computed at every pixel) and "sparse" ones
(computed only where the spatial mask is 1). At test time the official code gathers the masked
pixels and runs the convs as matrix products on them; that is, mathematically, the dense
convolution multiplied by the hard 0/1 masks, which is what this module computes (plain PyTorch,
any batch size). While training, both masks are Gumbel-softmax samples, so gradients reach the
mask branch and the channel logits, and ``extra_loss`` adds the sparsity term.

The network takes RGB in [0, 1]; the released one was trained on [0, 255] with the DIV2K mean
subtracted inside (EDSR's MeanShift), kept here as a buffer in [0, 1] units, and the importer
folds the 255 into the first and last convs.

Also here: the importer of the released ``model_1000.pt`` (x2), ``mask_stats`` (the hard masks
of one image) and ``sparse_macs`` (the MACs the official sparse inference would spend).

Introduced in notebooks/13_the_family.ipynb (what SMSR changed, its cost, its released weights);
no notebook opens up its masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..blocks import PixelShuffleUp, conv
from ..config import SMSRConfig
from .baseline_formats import count_blocks, pixelshuffle_scale
from .importers import ImportError_, WeightFormat, map_keys, register_format

__all__ = [
    "DIV2K_MEAN",
    "SMSR",
    "ChannelAttention",
    "MaskStats",
    "SparseMaskModule",
    "SpatialMask",
    "build_smsr",
    "mask_stats",
    "sparse_macs",
]

# RGB mean of DIV2K, subtracted before the head and added back at the end (SMSR's rgb_mean)
DIV2K_MEAN = (0.4488, 0.4371, 0.4040)

# Training constants of the official trainer.py: the sparsity weight grows linearly to 0.1 over
# the first 50 of 1,000 epochs; the Gumbel temperature falls from 1 by 1/500 per epoch to 0.4.
SPARSITY_WEIGHT = 0.1
SPARSITY_RAMP = 50 / 1000  # fraction of training over which the weight ramps up
TAU_MIN = 0.4
TAU_SLOPE = 1000 / 500  # temperature drop per unit of training progress


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation channel attention as in RCAN (SMSR's ``CALayer``).

    Global average -> 1x1 (C -> C/r) -> ReLU -> 1x1 -> sigmoid -> rescale the input. Unlike the
    kit's CCA it pools the mean only (no standard deviation). Shape: (B, C, H, W) -> same.
    ``gate`` is the released ``conv_du`` (same indices). Not covered by a notebook.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        self.gate = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x.mean(dim=(2, 3), keepdim=True))


class SpatialMask(nn.Module):
    """The hourglass that predicts SMSR's spatial-mask logits (two classes: skip, compute).

    3x3 (C -> C/4) -> ReLU -> 2x2 average pool -> 3x3 -> ReLU -> 3x3 transposed conv, stride 2,
    to 2 channels. Shape: (B, C, H, W) -> (B, 2, H, W).

    The released branch fits even sizes only: the pool floors an odd side and the transposed
    conv doubles it back one pixel short (training then fails to broadcast; the sparse test path
    runs with the last row/column never kept, which is why SMSR's test crops odd LR images).
    Here the pool uses ceil mode, so a last odd row or column is averaged over its own pixels,
    and the transposed conv's output is cut to the input's size. On even sizes this is exactly the
    released branch (no partial windows; output padding 1).

    ``conv1``, ``conv2``, ``up`` are the released ``spa_mask.0``, ``spa_mask.3``, ``spa_mask.5``.
    Overview: notebooks/13_the_family.ipynb (SMSR).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = channels // 4
        self.conv1 = conv(channels, hidden)
        self.conv2 = conv(hidden, hidden)
        self.up = nn.ConvTranspose2d(hidden, 2, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h = F.avg_pool2d(F.relu(self.conv1(x)), 2, ceil_mode=True)
        h = F.relu(self.conv2(h))
        # The transposed conv gives 2 * ceil(H/2) rows: H, or H + 1 for an odd H. Output padding
        # only appends rows and columns, so cutting the extra one equals asking for the size
        # (which the ONNX exporter cannot express for a symbolic size).
        return self.up(h)[..., : x.shape[-2], : x.shape[-1]]


class SparseMaskModule(nn.Module):
    """SMSR's sparse mask module (SMM): ``convs`` 3x3 convs with spatial and channel masks,
    a 1x1 over all of their outputs, channel attention, and a residual connection.

    Masks (``sparse=True``): the spatial mask ``m`` is (B, 1, H, W); layer ``l`` has a channel
    mask ``d_l`` (1: dense channel, computed everywhere) and ``s_l = 1 - d_l`` (sparse channel,
    computed only where ``m = 1``). The input of layer ``l > 0`` is split by the previous
    layer's mask, since that is what made it, and the output is

        y_l = ReLU( W_l(x * d_{l-1}) * (d_l + s_l * m)  +  W_l(x * s_{l-1}) * m ),

    i.e. a dense output channel gets its dense inputs everywhere and its sparse inputs only at
    ``m = 1`` (the only places they exist), and a sparse output channel exists only at ``m = 1``.
    Layer 0 sees the whole (dense) input: ``y_0 = ReLU(W_0 x * (d_0 + s_0 m))``. In training the
    masks are Gumbel-softmax samples (soft, differentiable); in eval they are hard: ``m = 1``
    where the "compute" logit wins, ``s_l = 1`` where the channel's "sparse" logit wins. The
    released training code split layer ``l``'s input by ``d_l`` instead of ``d_{l-1}``; the
    authors fixed that in October 2021 (issue #12), after the weights were released.

    ``sparse=False`` drops the mask branch and the channel logits: a dense block of the same
    body. Shape: (B, C, H, W) -> (B, C, H, W).

    Names are the kit's: ``spatial``, ``channel_logits``, ``convs``, ``merge`` are the released
    ``spa_mask``, ``body.ch_mask``, ``body.body``, ``body.collect``; ``ca`` is kept. Overview:
    notebooks/13_the_family.ipynb (SMSR).
    """

    def __init__(self, channels: int, convs: int = 4, *, sparse: bool = True) -> None:
        super().__init__()
        self.sparse = sparse
        self.tau = 1.0  # Gumbel-softmax temperature (training only); set by SMSR.extra_loss
        self.spatial = SpatialMask(channels) if sparse else None
        # per layer and channel, logits of (dense, sparse); uniform [0, 1) as released
        self.channel_logits = nn.Parameter(torch.rand(convs, channels, 2)) if sparse else None
        self.convs = nn.ModuleList(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False) for _ in range(convs)
        )
        self.merge = nn.Conv2d(convs * channels, channels, 1)
        self.ca = ChannelAttention(channels)
        self.density: Tensor | None = None  # the last training forward's sparsity term
        self.gather = True  # eval: run each part on its channels only (export_form: off)

    def export_form(self) -> SparseMaskModule:
        """This module, its split convs run as convs of 0/1-masked inputs (for ONNX export).

        The eval forward gathers the dense and the sparse input channels (``nonzero``), whose
        count an exporter cannot know; multiplying by the masks gives the same sums without
        data-dependent shapes, at twice these convs' arithmetic. The weights are the same.
        """
        self.gather = False
        return self

    def masks(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The hard eval masks for input ``x``: spatial (B, 1, H, W) and the sparse-channel
        mask (convs, C), both 0/1 floats. (On an exact tie of a channel's two logits the
        released ``softmax().round()`` marks it neither dense nor sparse; here it is dense.
        The released weights have no ties.)"""
        logits = self.spatial(x)
        spatial = (logits[:, 1:] > logits[:, :1]).to(x.dtype)
        sparse = (self.channel_logits[..., 1] > self.channel_logits[..., 0]).to(x.dtype)
        return spatial, sparse

    def forward(self, x: Tensor) -> Tensor:
        if not self.sparse:
            outs, h = [], x
            for layer in self.convs:
                h = F.relu(layer(h))
                outs.append(h)
            return self.ca(self.merge(torch.cat(outs, 1))) + x

        if self.training:
            spatial = F.gumbel_softmax(self.spatial(x), tau=self.tau, dim=1)[:, 1:]
            ch = F.gumbel_softmax(self.channel_logits, tau=self.tau, dim=-1)
            dense, sparse = ch[..., 0], ch[..., 1]
            # SMSR's sparsity term: the fraction of (layer, channel, pixel) sites computed. It
            # averages m * s + d over all of them; m and (s, d) vary on separate axes, so the
            # mean factorises and the (B, convs*C, H, W) tensor is never built
            self.density = spatial.mean() * sparse.mean() + dense.mean()
        else:
            spatial, sparse = self.masks(x)
            dense = 1.0 - sparse

        outs, h = [], x
        for i, layer in enumerate(self.convs):
            gate = dense[i].view(1, -1, 1, 1) + sparse[i].view(1, -1, 1, 1) * spatial
            if i == 0:
                h = layer(h) * gate
            else:  # the released code writes W(x s) * m * (s_l + d_l); s_l + d_l = 1
                from_dense, from_sparse = self._split_conv(layer, h, dense[i - 1], sparse[i - 1])
                h = from_dense * gate + from_sparse * spatial
            h = F.relu(h)
            outs.append(h)
        return self.ca(self.merge(torch.cat(outs, 1))) + x

    def _split_conv(
        self, layer: nn.Conv2d, h: Tensor, dense: Tensor, sparse: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The conv of the input's dense channels and that of its sparse channels, apart."""
        if self.training or not self.gather:  # weight every input channel by both masks
            return layer(h * dense.view(1, -1, 1, 1)), layer(h * sparse.view(1, -1, 1, 1))
        # hard masks: run each part on its own channels only, so the two convs together cost
        # one dense conv (and fvcore counts them as one)
        parts = []
        for keep in (dense, sparse):
            idx = keep.nonzero().flatten()
            if idx.numel() == 0:
                parts.append(h.new_zeros(()))
            else:
                w = layer.weight.index_select(1, idx)
                parts.append(F.conv2d(h.index_select(1, idx), w, padding=1))
        return parts[0], parts[1]


class SMSR(nn.Module):
    """SMSR, as released: mean shift -> 3x3, ReLU, 3x3 head -> SMMs -> 1x1 over all SMM outputs
    -> ReLU -> 3x3 -> + head features -> 3x3 to 3 s^2 -> PixelShuffle(s) -> + bicubic upscaling
    of the (mean-shifted) input -> + mean.

    Takes RGB in [0, 1]. Shape: (B, 3, h, w) -> (B, 3, s*h, s*w), any h, w >= 1.

    Training (``model.train()``): each forward samples Gumbel-softmax masks and keeps its
    sparsity term; ``extra_loss(progress)`` returns that term times the ramped weight and sets
    the temperature of the following forwards (see there).

    Overview: notebooks/13_the_family.ipynb.
    """

    def __init__(
        self,
        channels: int = 64,
        num_blocks: int = 5,
        convs_per_block: int = 4,
        scale: int = 2,
        *,
        sparse: bool = True,
        anneal_tau: bool = True,
    ) -> None:
        super().__init__()
        self.scale = scale
        self.sparse = sparse
        self.anneal_tau = anneal_tau
        self.register_buffer("rgb_mean", torch.tensor(DIV2K_MEAN).view(1, 3, 1, 1))
        self.head = nn.Sequential(
            conv(3, channels), nn.ReLU(inplace=True), conv(channels, channels)
        )
        self.blocks = nn.ModuleList(
            SparseMaskModule(channels, convs_per_block, sparse=sparse) for _ in range(num_blocks)
        )
        self.fuse = nn.Sequential(
            nn.Conv2d(num_blocks * channels, channels, 1),
            nn.ReLU(inplace=True),
            conv(channels, channels),
        )
        self.upsampler = PixelShuffleUp(channels, scale)

    def forward(self, x: Tensor) -> Tensor:
        x0 = x - self.rgb_mean
        f0 = self.head(x0)
        outs, h = [], f0
        for block in self.blocks:
            h = block(h)
            outs.append(h)
        y = self.fuse(torch.cat(outs, 1)) + f0
        # PyTorch's bicubic (not MATLAB's) on the mean-shifted input, as released
        base = F.interpolate(x0, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return self.upsampler(y) + base + self.rgb_mean

    @staticmethod
    def sparsity_weight(progress: float) -> float:
        """The weight of the sparsity term: 0.1 * min(progress / 0.05, 1) (trainer.py: linear
        over the first 50 of 1,000 epochs)."""
        return SPARSITY_WEIGHT * min(progress / SPARSITY_RAMP, 1.0)

    @staticmethod
    def temperature(progress: float) -> float:
        """The Gumbel-softmax temperature: max(1 - 2 * progress, 0.4) (trainer.py: 1 - epoch/500
        over 1,000 epochs, floored at 0.4)."""
        return max(1.0 - TAU_SLOPE * progress, TAU_MIN)

    def extra_loss(self, progress: float) -> Tensor | None:
        """The sparsity term of the last training forward, times its ramped weight.

        Called by ``sr_kit.train.fit`` after each forward with ``progress`` = step / steps. The
        term is the fraction of (block, layer, channel, pixel) sites the soft masks compute,
        averaged over the blocks (``sparsity.mean()`` in trainer.py). It is read once: a second
        call, an eval forward, or ``sparse=False`` gives None.

        It also sets the Gumbel temperature of the *next* forwards to ``temperature(progress)``
        (one step late, which is immaterial). trainer.py computes that schedule but hands it to
        a ``_set_tau`` method the modules do not have (theirs is ``_update_tau``), so the
        released model was trained at tau = 1 throughout; ``anneal_tau=False`` does the same.
        """
        if not self.sparse:
            return None
        if self.anneal_tau:
            tau = self.temperature(progress)
            for block in self.blocks:
                block.tau = tau
        terms = [b.density for b in self.blocks if b.density is not None]
        for block in self.blocks:
            block.density = None
        if not terms:
            return None
        return self.sparsity_weight(progress) * torch.stack(terms).mean()


def build_smsr(cfg: SMSRConfig) -> SMSR:
    """SMSR: 987,306 / 995,961 / 1,008,078 learnable parameters at x2/x3/x4 as released.

    The paper's 985K / 993K / 1,006K leave out the 2,560 channel-mask logits.
    """
    return SMSR(cfg.channels, cfg.num_blocks, cfg.convs_per_block, cfg.scale, sparse=cfg.sparse)


BUILDERS = {"smsr": build_smsr}


# ---- Mask statistics and the MACs of sparse inference ----------------------------------------


@dataclass(frozen=True)
class MaskStats:
    """The hard masks of one forward: per block, the fraction of pixels the spatial mask keeps
    and the 0/1 sparse-channel mask (convs, C) (1: computed only at kept pixels)."""

    spatial_density: tuple[float, ...]
    sparse_channels: tuple[Tensor, ...]

    @property
    def skipped(self) -> float:
        """Fraction of the body convs' (layer, channel, pixel) output sites that are skipped."""
        per_block = [
            float(s.mean()) * (1.0 - rho)
            for rho, s in zip(self.spatial_density, self.sparse_channels, strict=True)
        ]
        return sum(per_block) / len(per_block)


@torch.no_grad()
def mask_stats(model: SMSR, x: Tensor) -> MaskStats:
    """Run ``model`` (eval masks) on ``x`` in [0, 1] and return its hard masks' statistics."""
    if not model.sparse:
        raise ValueError("mask_stats needs an SMSR built with sparse=True")
    was_training = model.training
    model.eval()
    try:
        h = model.head(x - model.rgb_mean)
        rho, chans = [], []
        for block in model.blocks:
            spatial, sparse = block.masks(h)
            rho.append(float(spatial.mean()))
            chans.append(sparse.cpu())
            h = block(h)
    finally:
        model.train(was_training)
    return MaskStats(tuple(rho), tuple(chans))


def sparse_macs(model: SMSR, stats: MaskStats, hw: tuple[int, int]) -> tuple[int, int]:
    """MACs of the SMM body convs (3x3 layers and the 1x1 merge) on an ``hw`` LR input: the
    official sparse inference at the measured densities, and the dense computation.

    Counted as in the official ``_sparse_conv`` (matrix products only): layer 0 computes its
    dense output channels at every pixel and its sparse ones at the kept pixels; a later layer
    computes dense->dense at every pixel, dense->sparse and sparse->(dense and sparse) at the
    kept pixels; the merge takes dense inputs everywhere and sparse inputs at kept pixels.
    Returns ``(sparse, dense)``; subtract their difference from the whole network's (dense)
    MACs to get the network's sparse MACs.
    """
    pixels = hw[0] * hw[1]
    sparse_total = dense_total = 0.0
    masks = zip(model.blocks, stats.spatial_density, stats.sparse_channels, strict=True)
    for block, rho, s_mask in masks:
        convs, c = s_mask.shape
        kept = rho * pixels
        s_out = [float(s_mask[i].sum()) for i in range(convs)]
        d_out = [c - s for s in s_out]
        k = block.convs[0].kernel_size[0] ** 2
        for i in range(convs):
            if i == 0:
                sparse_total += k * c * (d_out[0] * pixels + s_out[0] * kept)
            else:
                d_in, s_in = d_out[i - 1], s_out[i - 1]
                sparse_total += k * (
                    d_in * d_out[i] * pixels + d_in * s_out[i] * kept + s_in * c * kept
                )
            dense_total += k * c * c * pixels
        sparse_total += c * (sum(d_out) * pixels + sum(s_out) * kept)
        dense_total += convs * c * c * pixels
    return round(sparse_total), round(dense_total)


# ---- The released weights (x2) ---------------------------------------------------------------


def _detect(state: dict[str, Tensor]) -> bool:
    return "body.0.body.ch_mask" in state and "body.0.spa_mask.0.weight" in state


def _config(state: dict[str, Tensor], scale: int) -> SMSRConfig:
    return SMSRConfig(
        scale=scale,
        channels=state["head.0.weight"].shape[0],
        num_blocks=count_blocks(state, r"body\.(\d+)\.body\.ch_mask"),
        convs_per_block=state["body.0.body.ch_mask"].shape[2],
    )


def _mean(state: dict[str, Tensor]) -> Tensor:
    """The RGB mean of the released MeanShift pair, in [0, 1] units, after checking its form."""
    eye = torch.eye(3).view(3, 3, 1, 1)
    sub_w, sub_b = state["sub_mean.weight"], state["sub_mean.bias"]
    add_w, add_b = state["add_mean.weight"], state["add_mean.bias"]
    if not (torch.equal(sub_w, eye) and torch.equal(add_w, eye) and torch.equal(sub_b, -add_b)):
        raise ImportError_("SMSR weights: sub_mean/add_mean are not a +-mean shift with std 1")
    return (add_b.double() / 255.0).float().view(1, 3, 1, 1)


def _convert(state: dict[str, Tensor], scale: int) -> dict[str, Tensor]:
    shift = {k for k in state if k.startswith(("sub_mean.", "add_mean."))}
    rest = {k: v for k, v in state.items() if k not in shift}
    out = map_keys(
        rest,
        [
            (r"head\.([02])\.(weight|bias)", r"head.\1.\2"),
            (r"body\.(\d+)\.spa_mask\.0\.(weight|bias)", r"blocks.\1.spatial.conv1.\2"),
            (r"body\.(\d+)\.spa_mask\.3\.(weight|bias)", r"blocks.\1.spatial.conv2.\2"),
            (r"body\.(\d+)\.spa_mask\.5\.(weight|bias)", r"blocks.\1.spatial.up.\2"),
            (r"body\.(\d+)\.body\.ch_mask", r"blocks.\1.channel_logits"),
            (r"body\.(\d+)\.body\.body\.(\d+)\.weight", r"blocks.\1.convs.\2.weight"),
            (r"body\.(\d+)\.body\.collect\.(weight|bias)", r"blocks.\1.merge.\2"),
            (r"body\.(\d+)\.ca\.conv_du\.([02])\.(weight|bias)", r"blocks.\1.ca.gate.\2.\3"),
            (r"collect\.([02])\.(weight|bias)", r"fuse.\1.\2"),
            (r"tail\.0\.(weight|bias)", r"upsampler.0.\1"),
        ],
        source="SMSR weights",
    )
    for key in [k for k in out if k.endswith("channel_logits")]:
        out[key] = out[key][0].permute(1, 0, 2).contiguous()  # (1, C, convs, 2) -> (convs, C, 2)
    out["rgb_mean"] = _mean(state)
    return out


SMSR_FORMAT = register_format(
    WeightFormat(
        name="smsr",
        model="smsr",
        description="SMSR (LongguangWang/SMSR experiment/SMSR_X2/model/model_1000.pt, "
        "EDSR-PyTorch keys with sub_mean/add_mean)",
        detect=_detect,
        scales=lambda s: (pixelshuffle_scale(s["tail.0.weight"]),),
        config=_config,
        convert=_convert,
        input_range=255.0,
        head=("head.0.weight",),
        tail=("upsampler.0",),
        mean_shift=True,
        notes="main.py --test_only feeds RGB in [0, 255] (rgb_range 255) with the DIV2K mean "
        "subtracted inside (kept as the rgb_mean buffer; 255 folded into the head and tail "
        "convs). Its trainer.test crops an LR image with an odd side to even sizes (and the HR "
        "to match) before scoring, because its mask branch needs even sizes; the kit's "
        "protocol scores the whole image (the kit's mask branch takes any size). PSNR/SSIM "
        "on Y with shave = scale, output quantised to [0, 255] integers.",
    )
)
