"""Feature distillation blocks: IMDB (IMDN), RFDB (RFDN), LMSWN's multi-stage residual
distillation-weighted block, and SAFDNet's self-attention feature distillation block.

All four follow one pattern: at each stage part of the features is *distilled* (kept aside,
cheaply) while the rest is *refined* further; the distilled parts are concatenated, fused by a
1x1 conv and passed through an attention. IMDB, RFDB and DistillWeightBlock are explained in
notebooks/04_feature_distillation.ipynb, SAFDB in notebooks/09_safdnet.ipynb.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from .attention import CCA, ESA, GlobalAttention, make_attn
from .conv import AsymConv, conv

__all__ = ["IMDB", "RFDB", "SAFDB", "DistillWeightBlock"]

NEG_SLOPE = 0.05  # LeakyReLU slope of IMDN/RFDN (block.py), kept by both papers' families


def _act() -> nn.LeakyReLU:
    return nn.LeakyReLU(NEG_SLOPE)


class IMDB(nn.Module):
    """Information multi-distillation block (IMDN, Hui et al., ACM MM 2019).

    Three 3x3 stages each output C channels, split into C/4 distilled and 3C/4 remaining; a
    fourth 3x3 maps the remaining 3C/4 to C/4. The four distilled parts -> CCA -> 1x1 -> + input.
    Shape: (B, C, H, W) -> (B, C, H, W).

    The attributes keep the released IMDB's names (its weights load as they are), d = C/4:
    ``c1``: 3x3 C -> C, first stage (split into d kept + C - d refined); ``c2``, ``c3``: 3x3
    C - d -> C, second and third stages (split the same way); ``c4``: 3x3 C - d -> d, the last
    distilled part; ``cca``: CCA on the 4d concatenated parts; ``c5``: 1x1 4d -> C, the fusion.
    ``d`` and ``r`` are the kept and refined widths.

    Explained in notebooks/04_feature_distillation.ipynb.
    """

    def __init__(self, channels: int, distill_ratio: float = 0.25) -> None:
        super().__init__()
        self.d = int(channels * distill_ratio)
        self.r = channels - self.d
        self.c1 = conv(channels, channels)
        self.c2 = conv(self.r, channels)
        self.c3 = conv(self.r, channels)
        self.c4 = conv(self.r, self.d)
        self.act = _act()
        self.cca = CCA(4 * self.d)
        self.c5 = nn.Conv2d(4 * self.d, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        d1, r1 = torch.split(self.act(self.c1(x)), (self.d, self.r), dim=1)
        d2, r2 = torch.split(self.act(self.c2(r1)), (self.d, self.r), dim=1)
        d3, r3 = torch.split(self.act(self.c3(r2)), (self.d, self.r), dim=1)
        d4 = self.c4(r3)  # no activation here in the released IMDN
        return self.c5(self.cca(torch.cat([d1, d2, d3, d4], dim=1))) + x  # (B, 4d -> C, H, W)


class RFDB(nn.Module):
    """Residual feature distillation block (RFDN, Liu et al., ECCV-W 2020), as released.

    Each of three stages: distilled = LReLU(1x1, C -> C/2), refined = LReLU(3x3(x) + x) (the
    shallow residual block). A last 3x3 maps C -> C/2; the four parts (2C) -> 1x1 -> ESA. The
    release has no block-level skip. Shape: (B, C, H, W) -> (B, C, H, W).

    Names are the kit's; the released ones are ``c{1,2,3}_d`` -> ``distill.{0,1,2}`` (1x1
    C -> C/2), ``c{1,2,3}_r`` -> ``refine.{0,1,2}`` (3x3 C -> C), ``c4`` -> ``last`` (3x3
    C -> C/2), ``c5`` -> ``merge`` (1x1 2C -> C); ``esa`` keeps ESA's released names. The E-RFDN
    importer (``sr_kit.models.baseline_formats``) does this mapping.

    Explained in notebooks/04_feature_distillation.ipynb.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        dc = channels // 2
        self.distill = nn.ModuleList(nn.Conv2d(channels, dc, 1) for _ in range(3))
        self.refine = nn.ModuleList(conv(channels, channels) for _ in range(3))
        self.last = conv(channels, dc)
        self.act = _act()
        self.merge = nn.Conv2d(4 * dc, channels, 1)
        self.esa = ESA(channels)

    def forward(self, x: Tensor) -> Tensor:
        parts = []
        for dist, ref in zip(self.distill, self.refine, strict=True):
            parts.append(self.act(dist(x)))
            x = self.act(ref(x) + x)
        parts.append(self.act(self.last(x)))
        return self.esa(self.merge(torch.cat(parts, dim=1)))  # (B, 2C -> C, H, W)


Distill = Literal["split1x1", "fdc", "split"]
Weights = Literal["scalar", "fixed", "none", "channel"]


class DistillWeightBlock(nn.Module):
    """LMSWN's multi-stage residual distillation-weighted block (MRDWB).

    For three stages k: D_k = distill(X_{k-1}) and X_k = LReLU(ACConv(X_{k-1}) + X_{k-1});
    D_4 = LReLU(3x3(X_3)); Y = attn(1x1(concat(D_1..D_4))); out = l1 * Y + l2 * X_0.

    Args:
        channels: C.
        asym: Claim L2. ACConv (3x3 + 1x3 + 3x1) in the refinement stages; False: plain 3x3.
        distill: Claim L3. ``split1x1``: the first C/4 channels, refined by a 1x1 (C/4 -> C/4);
            ``fdc``: RFDN's 1x1 on all channels (C -> C/2); ``split``: IMDN's bare channel split.
        weights: Claim L4. ``scalar``: two learnable scalars (init 1, as AWSRN) weight the
            attention branch and the identity branch; ``channel``: one weight per channel for
            each; ``fixed``: both 1 (a plain residual); ``none``: no identity branch (RFDN).
        attn: Not a claim; the attention inherited from RFDB (``esa``, ``cca`` or ``none``).

    Explained in notebooks/04_feature_distillation.ipynb; LMSWN (06_lmswn) stacks six of them.
    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(
        self,
        channels: int,
        *,
        asym: bool = True,
        distill: Distill = "split1x1",
        weights: Weights = "scalar",
        attn: Literal["esa", "cca", "none"] = "esa",
    ) -> None:
        super().__init__()
        if distill not in ("split1x1", "fdc", "split"):
            raise ValueError(f"distill must be split1x1, fdc or split, got {distill!r}")
        if weights not in ("scalar", "fixed", "none", "channel"):
            raise ValueError(f"weights must be scalar, fixed, none or channel, got {weights!r}")
        self.distill_kind, self.weights_kind = distill, weights
        self.d = channels // 2 if distill == "fdc" else channels // 4
        if distill == "split1x1":
            self.distill = nn.ModuleList(nn.Conv2d(self.d, self.d, 1) for _ in range(3))
        elif distill == "fdc":
            self.distill = nn.ModuleList(nn.Conv2d(channels, self.d, 1) for _ in range(3))
        else:
            self.distill = None
        self.refine = nn.ModuleList(AsymConv(channels, channels, asym=asym) for _ in range(3))
        self.last = conv(channels, self.d)
        self.merge = nn.Conv2d(4 * self.d, channels, 1)
        self.attn = make_attn(attn, channels)
        self.act = _act()
        shape = (1, channels, 1, 1) if weights == "channel" else (1,)
        learnable = weights in ("scalar", "channel")
        self.lambda_y = nn.Parameter(torch.ones(shape)) if learnable else None
        self.lambda_x = nn.Parameter(torch.ones(shape)) if learnable else None

    def _distill(self, k: int, x: Tensor) -> Tensor:
        if self.distill_kind == "split":
            return x[:, : self.d]
        if self.distill_kind == "split1x1":
            return self.act(self.distill[k](x[:, : self.d]))  # channel split, then 1x1
        return self.act(self.distill[k](x))

    def forward(self, x0: Tensor) -> Tensor:
        x, parts = x0, []
        for k, ref in enumerate(self.refine):
            parts.append(self._distill(k, x))
            x = self.act(ref(x) + x)
        parts.append(self.act(self.last(x)))
        y = self.attn(self.merge(torch.cat(parts, dim=1)))  # (B, 4d -> C, H, W)
        if self.lambda_y is not None:
            return self.lambda_y * y + self.lambda_x * x0
        return y + x0 if self.weights_kind == "fixed" else y

    def extra_repr(self) -> str:
        return f"distill={self.distill_kind}, weights={self.weights_kind}"


class SAFDB(nn.Module):
    """SAFDNet's self-attention feature distillation block (claims S1, S2, S3).

    An RFDB skeleton whose first refinement stage is the global attention unit:
    D1 = LReLU(1x1(X)), R1 = GAU(X); D2 = LReLU(1x1(R1)), R2 = LReLU(3x3(R1) + R1);
    D3 = LReLU(1x1(R2)), R3 = LReLU(3x3(R2) + R2); D4 = LReLU(3x3(R3));
    out = PS-ESA(1x1(concat(D1..D4))) + X. With ``distill=False`` the distilled branches and the
    1x1 fusion go, and a 3x3 (C -> C) on R3 feeds the attention: out = PS-ESA(3x3(R3)) + X.

    Args:
        global_attn: The GAU's Q/K/V projector (``acffn``, ``dw3x3``, ``pw``), or ``none`` for no
            GAU (R1 = X); as ``SAFDNetConfig.global_attn``.
        attn_norm: The GAU's attention-map normalisation, ``softmax`` or ``relu``; as
            ``SAFDNetConfig.attn_norm``.

    Explained in notebooks/09_safdnet.ipynb (the GAU in 08_global_attention, PS-ESA in
    07_channel_shift). Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(
        self,
        channels: int,
        *,
        global_attn: Literal["acffn", "dw3x3", "pw", "none"] = "acffn",
        heads: int = 4,
        compress_ratio: int = 2,
        attn_norm: Literal["softmax", "relu"] = "softmax",
        shift_ratio: float = 1 / 3,
        shift_px: int = 1,
        distill: bool = True,
    ) -> None:
        super().__init__()
        if global_attn == "none":
            self.gau = nn.Identity()
        else:
            self.gau = GlobalAttention(
                channels,
                heads=heads,
                compress_ratio=compress_ratio,
                projector=global_attn,
                attn_norm=attn_norm,
            )
        self.refine = nn.ModuleList(conv(channels, channels) for _ in range(2))
        dc = channels // 2
        self.distill = (
            nn.ModuleList(nn.Conv2d(channels, dc, 1) for _ in range(3)) if distill else None
        )
        self.last = conv(channels, dc if distill else channels)
        self.merge = nn.Conv2d(4 * dc, channels, 1) if distill else None
        self.esa = ESA(channels, shift_ratio=shift_ratio, shift_px=shift_px)
        self.act = _act()

    def forward(self, x: Tensor) -> Tensor:
        r = self.gau(x)
        stages = [x, r]
        for ref in self.refine:
            r = self.act(ref(r) + r)
            stages.append(r)
        if self.distill is None:
            return self.esa(self.last(r)) + x
        parts = [self.act(d(s)) for d, s in zip(self.distill, stages[:3], strict=True)]
        parts.append(self.act(self.last(r)))
        return self.esa(self.merge(torch.cat(parts, dim=1))) + x  # (B, 2C -> C, H, W)
