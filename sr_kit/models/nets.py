"""Builders: the only place where a config becomes blocks (notebooks can build any block alone).

LMSWN is assembled in notebooks/06_lmswn.ipynb, SAFDNet in notebooks/09_safdnet.ipynb; the
blocks of IMDN and RFDN are in notebooks/04_feature_distillation.ipynb.
"""

from __future__ import annotations

from ..blocks import IMDB, RFDB, SAFDB, DistillWeightBlock, PyramidConv, conv
from ..config import IMDNConfig, LMSWNConfig, RFDNConfig, SAFDNetConfig
from .trunk import DistillNet

__all__ = ["build_imdn", "build_lmswn", "build_rfdn", "build_safdnet"]


def build_imdn(cfg: IMDNConfig) -> DistillNet:
    """IMDN: 3x3 head, IMDBs; 694,404 / 703,059 / 715,176 parameters at x2/x3/x4 (as released)."""
    blocks = (IMDB(cfg.channels) for _ in range(cfg.num_blocks))
    return DistillNet(conv(3, cfg.channels), blocks, cfg.channels, cfg.scale)


def build_rfdn(cfg: RFDNConfig) -> DistillNet:
    """RFDN: 3x3 head, RFDBs; 566,364 / 572,859 / 581,952 parameters (48 ch, 6 blocks)."""
    blocks = (RFDB(cfg.channels) for _ in range(cfg.num_blocks))
    return DistillNet(conv(3, cfg.channels), blocks, cfg.channels, cfg.scale)


def build_lmswn(cfg: LMSWNConfig) -> DistillNet:
    """LMSWN: pyramid head (L1), distillation-weighted blocks with ACConv (L2, L3, L4)."""
    blocks = (
        DistillWeightBlock(
            cfg.channels, asym=cfg.asym, distill=cfg.distill, weights=cfg.weights, attn=cfg.attn
        )
        for _ in range(cfg.num_blocks)
    )
    return DistillNet(PyramidConv(3, cfg.channels, cfg.head), blocks, cfg.channels, cfg.scale)


def build_safdnet(cfg: SAFDNetConfig) -> DistillNet:
    """SAFDNet: 3x3 head, self-attention feature distillation blocks (S1, S2, S3)."""
    blocks = (
        SAFDB(
            cfg.channels,
            global_attn=cfg.global_attn,
            heads=cfg.heads,
            compress_ratio=cfg.compress_ratio,
            attn_norm=cfg.attn_norm,
            shift_ratio=cfg.shift_ratio,
            shift_px=cfg.shift_px,
            distill=cfg.distill,
        )
        for _ in range(cfg.num_blocks)
    )
    return DistillNet(conv(3, cfg.channels), blocks, cfg.channels, cfg.scale)
