"""Building blocks, one idea per file; each usable on its own with plain keyword arguments."""

from .attention import CCA, ESA, GlobalAttention, LayerNorm2d, make_attn
from .conv import AsymConv, conv
from .distill import IMDB, RFDB, SAFDB, DistillWeightBlock
from .pyramid import PyramidConv
from .shift import ChannelShift
from .upsample import PixelShuffleUp

__all__ = [
    "CCA",
    "ESA",
    "IMDB",
    "RFDB",
    "SAFDB",
    "AsymConv",
    "ChannelShift",
    "DistillWeightBlock",
    "GlobalAttention",
    "LayerNorm2d",
    "PixelShuffleUp",
    "PyramidConv",
    "conv",
    "make_attn",
]
