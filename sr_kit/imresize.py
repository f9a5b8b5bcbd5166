"""MATLAB-compatible bicubic resize, in torch (CPU and CUDA, batched).

Published SR tables make their low-resolution inputs with MATLAB's
``imresize(hr, 1/s, 'bicubic')``. That is *not* what ``torch.nn.functional.interpolate`` or
OpenCV do: MATLAB uses the Keys cubic kernel with a = -0.5, widens (antialiases) the kernel when
shrinking, and mirrors the image at its borders.
A PSNR computed on LR images made any other way is not comparable with the literature.

The resize is separable: for each axis we build, once, a table of source indices and weights
(``P`` taps per output pixel, mirrored at the borders) and apply it as a banded sparse matrix. ``P``
is 6 for upscaling and ``4 * s + 2`` for a 1/s downscale, so the cost is linear in the image size.

Explained in notebooks/01_the_sr_problem.ipynb.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "cubic",
    "imresize",
    "imresize_uint8",
    "resize_macs",
    "resize_weights",
    "to_uint8_tensor",
]


def cubic(x: Tensor) -> Tensor:
    """Keys cubic convolution kernel with a = -0.5 (the kernel MATLAB's 'bicubic' uses)."""
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=64)
def _weights_np(in_len: int, out_len: int, scale: float, antialias: bool) -> tuple:
    """Index and weight tables for one axis, as MATLAB's ``contributions`` computes them.

    Returns ``(indices, weights)``, both (out_len, P) numpy arrays; indices are 0-based and
    already mirrored into range. Cached because a dataset resizes many images of few sizes.
    """
    kernel_width = 4.0
    shrink = antialias and scale < 1
    if shrink:  # stretch the kernel by 1/scale so it low-pass filters before subsampling
        kernel_width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)  # MATLAB's 1-based output coordinates
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)  # the matching input coordinate (pixel centres)
    left = np.floor(u - kernel_width / 2.0)
    taps = math.ceil(kernel_width) + 2  # MATLAB takes two extra taps; their weights may be zero
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    dist = torch.from_numpy(u[:, None] - idx)
    w = (scale * cubic(scale * dist) if shrink else cubic(dist)).numpy()
    w = w / w.sum(axis=1, keepdims=True)
    # Mirror out-of-range taps back inside ("symmetric" padding: ... 2 1 | 1 2 3 ... n | n n-1 ...)
    idx0 = idx.astype(np.int64) - 1
    period = 2 * in_len
    idx0 = np.mod(idx0, period)
    idx0 = np.where(idx0 >= in_len, period - 1 - idx0, idx0)
    # MATLAB drops tap columns that are zero for every output; they add nothing, so drop them too.
    keep = np.any(w != 0, axis=0)
    return idx0[:, keep], w[:, keep]


def resize_weights(
    in_len: int, out_len: int, scale: float, *, antialias: bool = True
) -> tuple[Tensor, Tensor]:
    """Source indices (long) and float64 weights, each (out_len, P), for resizing one axis."""
    idx, w = _weights_np(int(in_len), int(out_len), float(scale), bool(antialias))
    return torch.from_numpy(idx.copy()), torch.from_numpy(w.copy())


@lru_cache(maxsize=64)
def _weight_matrix(in_len: int, out_len: int, scale: float, antialias: bool) -> Tensor:
    """The axis resize as a sparse (out_len x in_len) CSR matrix in float64 on the CPU.

    A sparse product does the P multiply-adds per output in one kernel, without the P temporary
    images a gather loop would make: on 2 cores it resizes a 2040x1356 RGB image faster than
    Pillow does.
    """
    idx, w = _weights_np(in_len, out_len, scale, antialias)
    rows = np.repeat(np.arange(out_len), idx.shape[1])
    # Mirrored taps can hit the same source pixel twice near a border: sum them (coalesce).
    coo = torch.sparse_coo_tensor(
        torch.from_numpy(np.stack([rows, idx.reshape(-1)])),
        torch.from_numpy(w.reshape(-1).copy()),
        (out_len, in_len),
        check_invariants=False,
    ).coalesce()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we use only its matmul
        warnings.simplefilter("ignore", UserWarning)
        return coo.to_sparse_csr()


def _resize_axis(x: Tensor, dim: int, out_len: int, scale: float, antialias: bool) -> Tensor:
    """Resize axis ``dim`` of ``x`` with the MATLAB kernel."""
    dim = dim % x.dim()
    n = x.shape[dim]
    mat = _weight_matrix(n, out_len, scale, antialias)
    # cuSPARSE and the CPU kernel support float32/float64; compute half types in float32.
    work = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        mat = mat.to(device=x.device, dtype=work)
    moved = x.movedim(dim, 0)  # (n, ...): the product mixes rows of a 2D view
    rest = moved.shape[1:]
    flat = moved.reshape(n, -1).to(work)
    out = torch.sparse.mm(mat, flat).reshape(out_len, *rest).movedim(0, dim)
    return out.to(x.dtype)


def resize_macs(shape: tuple[int, ...], scale: float, *, antialias: bool = True) -> int:
    """Multiply-adds that ``imresize`` spends on a tensor of ``shape`` (..., H, W).

    Each axis pass costs (non-zero weights of its matrix) x (elements along the other axes).
    """
    *lead, in_h, in_w = shape
    batch = math.prod(lead)
    (out_h, out_w), (sh, sw) = _output_size((in_h, in_w), scale, None)
    nnz_h = int(_weight_matrix(in_h, out_h, sh, antialias)._nnz())
    nnz_w = int(_weight_matrix(in_w, out_w, sw, antialias)._nnz())
    if sw < sh:  # the same axis order as imresize
        return batch * (nnz_w * in_h + nnz_h * out_w)
    return batch * (nnz_h * in_w + nnz_w * out_h)


def _output_size(
    in_hw: tuple[int, int], scale: float | None, size: tuple[int, int] | None
) -> tuple[tuple[int, int], tuple[float, float]]:
    if (scale is None) == (size is None):
        raise ValueError("imresize: give exactly one of `scale` and `size`")
    if size is not None:
        out_h, out_w = (int(s) for s in size)
        if out_h < 1 or out_w < 1:
            raise ValueError(f"imresize: size must be positive, got {size}")
        return (out_h, out_w), (out_h / in_hw[0], out_w / in_hw[1])
    if not (isinstance(scale, int | float) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"imresize: scale must be a positive number, got {scale!r}")
    # MATLAB: output size = ceil(input size * scale), and the *given* scale sets the sampling grid.
    out = (math.ceil(in_hw[0] * scale), math.ceil(in_hw[1] * scale))
    return out, (float(scale), float(scale))


def imresize(
    x: Tensor,
    scale: float | None = None,
    *,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> Tensor:
    """Resize the last two axes of ``x`` like MATLAB's ``imresize(x, scale, 'bicubic')``.

    Args:
        x: Float tensor (..., H, W), e.g. (B, C, H, W) in [0, 1]. Integer tensors are refused,
            because the result is not clipped or rounded here (see ``imresize_uint8``).
        scale: Scale factor; the output is ceil(H * scale) x ceil(W * scale). E.g. 1/4 or 3.
        size: Output (height, width) instead of a scale factor.
        antialias: Widen the kernel when shrinking (MATLAB's default, used by all benchmarks).

    Returns:
        A tensor of the same dtype and device, not clipped (bicubic overshoots slightly).
    """
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise TypeError(
            f"imresize expects a floating-point tensor, got {getattr(x, 'dtype', type(x))}; "
            "use imresize_uint8 for uint8 images"
        )
    if x.dim() < 2:
        raise ValueError(
            f"imresize expects at least 2 dims (..., H, W), got shape {tuple(x.shape)}"
        )
    in_h, in_w = x.shape[-2], x.shape[-1]
    if in_h < 1 or in_w < 1:
        raise ValueError(f"imresize: empty image of shape {tuple(x.shape)}")
    (out_h, out_w), (sh, sw) = _output_size((in_h, in_w), scale, size)
    # MATLAB resizes the axis with the smaller scale first; for equal scales, rows first.
    if sw < sh:
        y = _resize_axis(x, -1, out_w, sw, antialias)
        return _resize_axis(y, -2, out_h, sh, antialias)
    y = _resize_axis(x, -2, out_h, sh, antialias)
    return _resize_axis(y, -1, out_w, sw, antialias)


def to_uint8_tensor(x: Tensor) -> Tensor:
    """Round values on the 0..255 scale to uint8 as MATLAB does (half away from zero, clipped).

    ``torch.round`` rounds half to even, which differs from MATLAB on exact .5 values.
    """
    return x.detach().clamp(0.0, 255.0).add_(0.5).floor_().to(torch.uint8)


def imresize_uint8(
    img: np.ndarray,
    scale: float | None = None,
    *,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> np.ndarray:
    """Resize a uint8 image (H, W) or (H, W, C) the way MATLAB does for uint8 input.

    The arithmetic is done in float32 on the 0..255 values, then rounded half away from zero and
    clipped, which reproduces the benchmark LR images.
    """
    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise TypeError(f"imresize_uint8 expects a uint8 array, got {a.dtype}")
    if a.ndim not in (2, 3):
        raise ValueError(f"imresize_uint8 expects (H, W) or (H, W, C), got shape {a.shape}")
    t = torch.from_numpy(a.astype(np.float32))  # a copy: the input may be read-only
    if t.dim() == 2:
        t = t.unsqueeze(-1)
    (out_h, out_w), (sh, sw) = _output_size((a.shape[0], a.shape[1]), scale, size)
    # Resize the (H, W, C) array in place of a (C, H, W) copy; same kernel, same axis order.
    if sw < sh:
        t = _resize_axis(_resize_axis(t, 1, out_w, sw, antialias), 0, out_h, sh, antialias)
    else:
        t = _resize_axis(_resize_axis(t, 0, out_h, sh, antialias), 1, out_w, sw, antialias)
    out = to_uint8_tensor(t).numpy()
    return out[..., 0] if a.ndim == 2 else out
