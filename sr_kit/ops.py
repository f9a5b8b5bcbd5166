"""Pure tensor functions shared by blocks and notebooks (no parameters, no state).

``channel_shift`` and ``shift_groups`` are explained in notebooks/07_channel_shift.ipynb.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["channel_shift", "shift_groups"]

# The four directions in the order channels are assigned to them: (dy, dx) per pixel step.
_DIRECTIONS = ((0, -1), (0, 1), (-1, 0), (1, 0))  # left, right, up, down


def shift_groups(channels: int, ratio: float) -> tuple[int, int, int, int]:
    """How many channels move left, right, up and down for a given shifted share.

    ``round(channels * ratio)`` channels move in total, spread over the four directions as evenly
    as possible (ShiftViT moves channels/12 each way, i.e. ratio 1/3).
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"shift ratio must be in [0, 1], got {ratio}")
    total = round(channels * ratio)
    base, extra = divmod(total, 4)
    return tuple(base + (1 if i < extra else 0) for i in range(4))  # type: ignore[return-value]


def channel_shift(x: Tensor, ratio: float = 1 / 3, px: int = 1) -> Tensor:
    """Shift the first channels of ``x`` (B, C, H, W) by ``px`` pixels in four directions.

    The first group moves left, the next right, then up, then down; the remaining channels are
    untouched. Pixels shifted out are dropped and the gap is zero-filled (never wrapped around, as
    ``torch.roll`` would). No parameters and no multiply-adds: only memory moves.
    """
    if x.dim() != 4:
        raise ValueError(f"channel_shift expects (B, C, H, W), got shape {tuple(x.shape)}")
    if px < 1:
        raise ValueError(f"shift distance px must be >= 1, got {px}")
    # int(): under torch.jit.trace (fvcore's MAC counter) sizes arrive as tensors
    groups = shift_groups(int(x.shape[1]), ratio)
    if sum(groups) == 0:
        return x
    out = x.clone()
    start = 0
    h, w = int(x.shape[-2]), int(x.shape[-1])
    for (dy, dx), n in zip(_DIRECTIONS, groups, strict=True):
        if n == 0:
            continue
        src = x[:, start : start + n]
        dst = torch.zeros_like(src)
        sy, sx = dy * px, dx * px
        if abs(sy) >= h or abs(sx) >= w:  # shifted entirely out of the image: all zeros
            out[:, start : start + n] = dst
            start += n
            continue
        # dst[y, x] = src[y - sy, x - sx] where that source pixel exists
        dst[..., max(sy, 0) : h + min(sy, 0), max(sx, 0) : w + min(sx, 0)] = src[
            ..., max(-sy, 0) : h + min(-sy, 0), max(-sx, 0) : w + min(-sx, 0)
        ]
        out[:, start : start + n] = dst
        start += n
    return out
