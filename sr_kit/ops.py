"""Pure tensor functions shared by blocks and notebooks (no parameters, no state).

``channel_shift`` and ``shift_groups`` are explained in notebooks/07_channel_shift.ipynb.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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
    # int(): under torch.jit.trace (fvcore's MAC counter) sizes arrive as tensors. The spatial
    # sizes are never read: a Python int there would freeze H and W in an exported graph.
    groups = shift_groups(int(x.shape[1]), ratio)
    if sum(groups) == 0:
        return x
    parts, start = [], 0
    for (dy, dx), n in zip(_DIRECTIONS, groups, strict=True):
        if n == 0:
            continue
        parts.append(_shift(x[:, start : start + n], dy * px, dx * px))
        start += n
    return torch.cat([*parts, x[:, start:]], dim=1)


def _shift(x: Tensor, sy: int, sx: int) -> Tensor:
    """``out[y, x] = x[y - sy, x - sx]`` where that pixel exists, else 0 (|sy|, |sx| <= px).

    Zero-pad by ``p`` on the shifted axis and cut a window of the original size starting ``p - s``
    into it: the window is expressed by offsets from both ends, so it needs no image size and
    stays correct when the shift is larger than the image (all zeros).
    """
    if sx:
        p = abs(sx)
        padded = F.pad(x, (p, p))
        lo, hi = p - sx, p + sx  # cut lo columns at the left and hi at the right
        return padded[..., lo:-hi] if hi else padded[..., lo:]
    p = abs(sy)
    padded = F.pad(x, (0, 0, p, p))
    lo, hi = p - sy, p + sy
    return padded[..., lo:-hi, :] if hi else padded[..., lo:, :]
