"""Upscale whole images of any size with a trained network, tile by tile, without seams.

A 2040×1356 LR image through a network at once needs gigabytes of activations. Tiling bounds the
memory: the LR image is cut into ``tile``×``tile`` windows that overlap by ``overlap`` LR pixels
of context on each side, each window is run through the network, and only its *core* (the window
minus the context) is written back, scaled by ``s``. Neighbouring cores meet exactly, so every
output pixel comes from exactly one window, and from a window in which it sees at least
``overlap`` LR pixels of real image around it (or the real image border).

Exactness: a network whose receptive field reaches at most ``overlap`` LR pixels (plain
convolutions, pixel shuffle, bicubic) computes the same sums tiled and whole, so it gives the same
uint8 image, up to float rounding: float32 convolution kernels may round a value 1 ulp differently
for another batch size or input size, which flips a rare pixel (about 1 in 10^5) by one grey level
when the value sits on a rounding boundary. In float64 the results are identical in practice.

Networks with global or wide-reaching operations see only their window, so their tiled output
differs slightly from the whole-image output: ESA (RFDN, LMSWN, SAFDNet) max-pools on a strided
grid that follows the window and resizes the result to the window's size, contrast-aware channel
attention (IMDN) pools mean and std over the window, and global attention attends within it.

The uint8 conversion is the evaluation protocol's (``sr_kit.evaluate.super_resolve``): uint8 ->
float in [0, 1] -> network -> ×255 -> rounded half away from zero. Untiled, ``upscale_array``
therefore gives exactly what ``sr-kit eval`` measures.

Not covered by a notebook: ``sr-kit upscale`` (README) is its front end.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .complexity import eval_mode
from .device import resolve_device
from .fileio import atomic_path
from .imresize import to_uint8_tensor

__all__ = ["tile_grid", "upscale_array", "upscale_file"]


# ----------------------------------------------------------------------------------------------
# Tiling geometry
# ----------------------------------------------------------------------------------------------


def tile_grid(length: int, tile: int, overlap: int) -> list[tuple[int, int, int]]:
    """Windows along one axis as ``(start, core_lo, core_hi)`` LR coordinates.

    Every window is ``min(tile, length)`` long and lies inside ``[0, length)``; the last one is
    shifted back inside the image instead of being cut short. The cores ``[core_lo, core_hi)``
    partition ``[0, length)``, and each core keeps ``overlap`` pixels away from its window's edges
    except where that edge is the image border.

    Args:
        length: Image size along the axis (>= 1).
        tile: Window size (> 2 * overlap).
        overlap: Context pixels on each side of a core (>= 0).
    """
    size = min(tile, length)
    if size == length:
        return [(0, 0, length)]
    step = tile - 2 * overlap  # core length of the inner windows
    starts = [*range(0, length - size, step), length - size]
    grid = []
    for i, start in enumerate(starts):
        lo = 0 if i == 0 else grid[-1][2]
        hi = length if i == len(starts) - 1 else start + size - overlap
        # The last window's shifted start puts its core's left edge (the previous core's right
        # edge) at least `overlap` pixels inside it: start_prev + step >= length - size.
        grid.append((start, lo, hi))
    return grid


# ----------------------------------------------------------------------------------------------
# Model handling
# ----------------------------------------------------------------------------------------------


def _model_device_dtype(model: nn.Module) -> tuple[torch.device | None, torch.dtype]:
    """Device of the first parameter/buffer (None if it has none) and its float dtype."""
    device, dtype = None, torch.float32
    for t in [*model.parameters(), *model.buffers()]:
        device = device or t.device
        if t.is_floating_point():
            return t.device, t.dtype
    return device, dtype


@contextlib.contextmanager
def _ready(model: nn.Module, device: torch.device) -> Iterator[nn.Module]:
    """Yield ``model`` on ``device`` in eval mode, leaving the caller's model as it was.

    ``Module.to`` works in place, so a model on another device is deep-copied there; otherwise the
    model itself is used and every submodule's own ``training`` flag is restored afterwards (a
    plain ``model.train(old)`` would unfreeze deliberately frozen BatchNorm layers).
    """
    current, _ = _model_device_dtype(model)
    if current is not None and current != device:
        yield copy.deepcopy(model).to(device).eval()
        return
    with eval_mode(model):
        yield model


# ----------------------------------------------------------------------------------------------
# Arrays
# ----------------------------------------------------------------------------------------------


def _check_image(lr: object) -> np.ndarray:
    if not isinstance(lr, np.ndarray):
        raise TypeError(f"upscale_array expects a uint8 numpy array (H, W, 3), got {type(lr)}")
    if lr.dtype != np.uint8:
        raise TypeError(f"upscale_array expects a uint8 array (H, W, 3), got dtype {lr.dtype}")
    if lr.ndim != 3 or lr.shape[2] != 3 or lr.shape[0] < 1 or lr.shape[1] < 1:
        raise ValueError(f"upscale_array expects an RGB image of shape (H, W, 3), got {lr.shape}")
    return lr


def _check_tiling(tile: int | None, overlap: int, batch_tiles: int) -> None:
    for name, value in (("overlap", overlap), ("batch_tiles", batch_tiles)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"{name} must be an int, got {value!r}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got overlap={overlap}")
    if batch_tiles < 1:
        raise ValueError(f"batch_tiles must be >= 1, got batch_tiles={batch_tiles}")
    if tile is None:
        return
    if isinstance(tile, bool) or not isinstance(tile, int | np.integer):
        raise TypeError(f"tile must be an int or None, got {tile!r}")
    if tile <= 2 * overlap:
        raise ValueError(
            f"tile must be larger than 2 * overlap so each tile keeps a core, got tile={tile}, "
            f"overlap={overlap}"
        )


def _forward(model: nn.Module, batch: Tensor, scale: int | None) -> tuple[Tensor, int]:
    """Run one batch; return the output as float on the 0..255 scale and the scale factor."""
    out = model(batch)
    h, w = batch.shape[-2:]
    if scale is None:  # a model without .config: read the scale off the first output
        scale = out.shape[-2] // h
    expected = (batch.shape[0], 3, scale * h, scale * w)
    if tuple(out.shape) != expected:
        raise ValueError(
            f"model output has shape {tuple(out.shape)} for an input of shape "
            f"{tuple(batch.shape)}; expected {expected} (scale {scale})"
        )
    if out.dtype in (torch.float16, torch.bfloat16):
        out = out.float()  # round to uint8 from float32: half has only 3 digits at 255
    return out.mul(255.0), scale


def upscale_array(
    model: nn.Module,
    lr: np.ndarray,
    *,
    tile: int | None = 256,
    overlap: int = 16,
    device: str | torch.device = "cpu",
    batch_tiles: int = 4,
) -> np.ndarray:
    """Super-resolve a uint8 RGB image of any size, in overlapping tiles.

    The image is cut into ``tile``×``tile`` LR windows with ``overlap`` LR pixels of context on
    each side (none needed at the image borders, where the window simply starts); windows at the
    right/bottom are shifted back inside the image, so all have the same size and run in batches
    of ``batch_tiles``. Only each window's core, scaled by ``s``, is written to the output.

    For a network whose receptive field reaches at most ``overlap`` LR pixels, the result equals
    the whole-image result exactly (float32 kernels may flip a rare pixel by one grey level).
    Networks with global operations (ESA's pooled branch in RFDN/LMSWN/SAFDNet, channel
    attention, global attention) see only their tile, so their tiled output differs slightly
    from the whole-image output (a few grey levels at most on the kit's small test networks);
    use ``tile=None`` when that matters and memory allows.

    Runs under ``torch.inference_mode()`` in eval mode; the model's training flags are restored,
    and a model on another device is copied to ``device`` rather than moved.

    Args:
        model: Network taking (B, 3, h, w) floats in [0, 1] and returning (B, 3, s·h, s·w).
        lr: ``H×W×3`` uint8 RGB image.
        tile: LR window size; ``None`` (or an image that fits in one tile) runs the whole image.
        overlap: LR context pixels on each side of a window's core.
        device: Where the network runs.
        batch_tiles: Windows per forward pass.

    Returns:
        The ``(s·H)×(s·W)×3`` uint8 image.

    Raises:
        TypeError: ``lr`` is not a uint8 numpy array, or an option has the wrong type.
        ValueError: ``lr`` is not ``H×W×3``; ``overlap < 0``; ``tile <= 2 * overlap``;
            ``batch_tiles < 1``; or the model's output has the wrong shape.
    """
    lr = _check_image(lr)
    _check_tiling(tile, overlap, batch_tiles)
    dev = resolve_device(device)
    cfg = getattr(model, "config", None)
    scale: int | None = getattr(cfg, "scale", None)
    h, w = lr.shape[:2]
    rows = tile_grid(h, tile or h, overlap if tile else 0)
    cols = tile_grid(w, tile or w, overlap if tile else 0)
    windows = [(r, c) for r in rows for c in cols]
    th, tw = min(tile or h, h), min(tile or w, w)

    with _ready(model, dev) as net, torch.inference_mode():
        _, dtype = _model_device_dtype(net)
        # The same arithmetic as evaluate.super_resolve: float32 copy, then / 255.
        x = torch.from_numpy(lr.astype(np.float32)).permute(2, 0, 1).div_(255.0)
        out: np.ndarray | None = None
        for b in range(0, len(windows), batch_tiles):
            chunk = windows[b : b + batch_tiles]
            views = [x[:, r[0] : r[0] + th, c[0] : c[0] + tw] for r, c in chunk]
            # A single window keeps its (channels-last) strides instead of being stacked into a
            # copy: the untiled pass then feeds the network exactly what super_resolve does.
            batch = views[0][None] if len(views) == 1 else torch.stack(views)
            y, scale = _forward(net, batch.to(device=dev, dtype=dtype), scale)
            if out is None:
                out = np.empty((scale * h, scale * w, 3), dtype=np.uint8)
            s = scale
            for k, ((r0, rlo, rhi), (c0, clo, chi)) in enumerate(chunk):
                core = y[k, :, s * (rlo - r0) : s * (rhi - r0), s * (clo - c0) : s * (chi - c0)]
                out[s * rlo : s * rhi, s * clo : s * chi] = (
                    to_uint8_tensor(core).permute(1, 2, 0).cpu().numpy()
                )
    assert out is not None  # at least one window: the image is non-empty
    return out


# ----------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------


def _pil_format(path: Path) -> str:
    from PIL import Image

    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"{path}: cannot tell the image format from the extension {path.suffix!r}; "
            "use .png (lossless) or another extension Pillow knows (.jpg, .bmp, .tif, ...)"
        )
    return fmt


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:  # hard links and other aliases of one file
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def upscale_file(
    model_or_path: nn.Module | str | os.PathLike[str],
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    tile: int | None = 256,
    overlap: int = 16,
    device: str | torch.device = "cpu",
) -> Path:
    """Read an image, upscale it with :func:`upscale_array` and write the result atomically.

    The output is written to a temporary file in the destination folder and renamed over
    ``output_path``, so a crash or error never leaves a half-written image; parent folders are
    created. The format follows the extension (PNG for ``.png``, via Pillow).

    Args:
        model_or_path: A network, a model file saved by ``save_model`` (loaded on ``device``), or
            an ``.onnx`` file written by ``sr_kit.export.export_onnx`` (run by ONNX Runtime).
        input_path: The LR image (read with ``sr_kit.data.read_image``).
        output_path: Where to write the upscaled image; must not be the input file.
        tile: See :func:`upscale_array`.
        overlap: See :func:`upscale_array`.
        device: See :func:`upscale_array`.

    Returns:
        ``output_path`` as a ``Path``.

    Raises:
        ValueError: ``output_path`` is the input file, or has an extension Pillow does not know.
        sr_kit.data.ImageError: The input cannot be read as an 8-bit RGB image (names the file).
        sr_kit.models.CheckpointError: The model file cannot be loaded.
    """
    from PIL import Image

    from .data import read_image

    src, dst = Path(input_path), Path(output_path)
    if _same_file(src, dst):
        raise ValueError(f"refusing to overwrite the input image {src} with its upscaled version")
    fmt = _pil_format(dst)
    lr = read_image(src)  # before loading the model: a bad input fails fast
    if isinstance(model_or_path, nn.Module):
        model = model_or_path
    elif isinstance(model_or_path, str | os.PathLike):
        from .export import OnnxModel, is_onnx_path
        from .models import load_model

        if is_onnx_path(model_or_path):  # an exported network, run by ONNX Runtime on the CPU
            model = OnnxModel(model_or_path)
        else:
            model = load_model(model_or_path, device=device)
    else:
        raise TypeError(
            f"model_or_path must be an nn.Module or a model file path, got {type(model_or_path)}"
        )
    sr = upscale_array(model, lr, tile=tile, overlap=overlap, device=device)

    with atomic_path(dst) as tmp:
        Image.fromarray(sr).save(tmp, format=fmt)
    return dst
