"""Separable 3x3 convolutions: blueprint separable (BSConv-U, used by BSRN) and depthwise separable.

A full k x k conv from C_in to C_out channels has C_in * C_out * k^2 weights. Both separable forms
split it into a 1x1 ("pointwise") conv that mixes channels and a k x k depthwise conv (one filter
per channel) that mixes pixels, for C_in * C_out + C * k^2 weights:

- BSConv-U (Haase & Amthor, "Rethinking depthwise separable convolutions", CVPR 2020): pointwise
  first, then depthwise. Each output filter is one k x k "blueprint" scaled per input channel,
  which is what trained full kernels tend to look like. BSRN (Li et al., CVPR-W 2022,
  github.com/xiaom233/BSRN) builds every 3x3 of its network from it.
- DSConv (MobileNet): depthwise first, then pointwise; BSRN's code offers it as an alternative.

No notebook builds these; notebooks/13_the_family.ipynb gives BSRN's idea in one row and an
exercise (``conv=conv3`` against the blueprint convs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from torch import Tensor, nn

__all__ = ["BSConvU", "ConvKind", "DSConv", "conv3x3_factory"]

ConvKind = Literal["bsconv", "dsconv", "conv3"]


class BSConvU(nn.Module):
    """Blueprint separable conv, unconstrained: 1x1 (C_in -> C_out) then k x k depthwise on C_out.

    The depthwise conv carries the bias. The pointwise conv has none in BSRN and one in BSRN-S,
    whose code writes it as an ``nn.Linear`` (``pw_bias``). ``stride`` and ``padding`` apply to the
    depthwise conv. Shape: (B, C_in, H, W) -> (B, C_out, H', W').

    ``pw`` (1x1 C_in -> C_out) and ``dw`` (k x k depthwise on C_out) are the names of BSRN's
    released ``BSConvU``. Overview: notebooks/13_the_family.ipynb (BSRN).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        padding: int | None = None,
        pw_bias: bool = False,
    ) -> None:
        super().__init__()
        pad = (kernel_size - 1) // 2 if padding is None else padding
        self.pw = nn.Conv2d(in_channels, out_channels, 1, bias=pw_bias)
        self.dw = nn.Conv2d(
            out_channels, out_channels, kernel_size, stride, pad, groups=out_channels
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.dw(self.pw(x))


class DSConv(nn.Module):
    """Depthwise separable conv: k x k depthwise on C_in (with bias), then 1x1 (C_in -> C_out).

    The order is the reverse of ``BSConvU``. Shape: (B, C_in, H, W) -> (B, C_out, H', W').

    ``dw`` (k x k depthwise on C_in) and ``pw`` (1x1 C_in -> C_out) are the names of BSRN's
    released ``DepthWiseConv``. Not covered by a notebook (13_the_family only names BSRN's
    ``conv`` switch).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        padding: int | None = None,
    ) -> None:
        super().__init__()
        pad = (kernel_size - 1) // 2 if padding is None else padding
        self.dw = nn.Conv2d(in_channels, in_channels, kernel_size, stride, pad, groups=in_channels)
        self.pw = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.pw(self.dw(x))


Conv3x3 = Callable[..., nn.Module]


def conv3x3_factory(kind: ConvKind, *, pw_bias: bool = False) -> Conv3x3:
    """A builder ``make(in_ch, out_ch, stride=1, padding=1)`` of 3x3 convs of the given kind.

    ``conv3`` is a full 3x3 conv, ``bsconv`` a ``BSConvU`` (``pw_bias`` sets its pointwise
    bias), ``dsconv`` a ``DSConv``.
    """
    if kind not in ("bsconv", "dsconv", "conv3"):
        raise ValueError(f"conv must be 'bsconv', 'dsconv' or 'conv3', got {kind!r}")

    def make(in_ch: int, out_ch: int, stride: int = 1, padding: int = 1) -> nn.Module:
        if kind == "bsconv":
            return BSConvU(in_ch, out_ch, stride=stride, padding=padding, pw_bias=pw_bias)
        if kind == "dsconv":
            return DSConv(in_ch, out_ch, stride=stride, padding=padding)
        return nn.Conv2d(in_ch, out_ch, 3, stride, padding)

    return make
