"""Building blocks, one idea per file; each usable on its own with plain keyword arguments.

Notebooks 03-09 build them one by one (03 PyramidConv, 04 the distillation blocks, 05 AsymConv,
07 ChannelShift and ESA, 08 GlobalAttention, 09 SAFDB); notebooks/13_the_family.ipynb shows which
network uses which. Each module's docstring says where it is explained.
"""

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
