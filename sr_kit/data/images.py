"""Reading images: the kit's 8-bit RGB policy, modcrop, and the errors of this package.

modcrop is explained in notebooks/01_the_sr_problem.ipynb; the RGB policy (grayscale becomes
three channels) is stated in notebooks/00_start_here.ipynb.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class ImageError(ValueError):
    """An image file that cannot be used: unreadable, or not 8-bit opaque RGB/grayscale."""


class DatasetError(ValueError):
    """A missing or malformed dataset, folder or dataset name."""


# Raw (on-disk) modes that carry more than 8 bits per sample. Pillow opens a 16-bit RGB PNG as
# mode "RGB" and silently drops the low byte, so the mode alone cannot tell us; the decoder's raw
# mode ("RGB;16B", "LA;16B", "RGB;16N", ...) can, but only before load() clears the tile list.
# The byte-order suffix (B/L/N) matters: BMP's "BGR;16" is 5-6-5 packed, i.e. under 8 bits.
_HIGH_DEPTH_RAWMODE = re.compile(r";(16|32|64)[BLN]$")

# Everything Pillow raises for a file that is not a (complete, valid) image.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    TypeError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
)


def _raw_modes(img: Image.Image) -> list[str]:
    """The decoder raw modes of an opened, not yet loaded image ("RGB;16B" for 16-bit RGB PNG)."""
    modes = []
    for tile in getattr(img, "tile", None) or ():
        args = tile[3] if len(tile) > 3 else None
        if isinstance(args, str):
            modes.append(args)
        elif isinstance(args, tuple) and args and isinstance(args[0], str):
            modes.append(args[0])
    return modes


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[:, :, None], 3, axis=2)


def _require_opaque(alpha: Image.Image, path: Path, mode: str) -> None:
    a = np.asarray(alpha)
    if a.size and a.min() < 255:
        n = int(np.count_nonzero(a < 255))
        raise ImageError(
            f"{path}: {n} of {a.size} pixels are (partly) transparent (mode {mode}); expected an "
            "opaque image. SR evaluation has no defined background, so flatten the image onto "
            "one yourself and save it as RGB."
        )


def _to_rgb(img: Image.Image, path: Path, raw_modes: list[str]) -> np.ndarray:
    mode = img.mode
    deep = [r for r in raw_modes if _HIGH_DEPTH_RAWMODE.search(r)]
    if deep or mode in ("I", "F") or mode.startswith(("I;", "F;")):
        stored = f", stored as {deep[0]}" if deep else ""
        raise ImageError(
            f"{path}: 16-bit, 32-bit or float image (mode {mode}{stored}); expected 8 bits per "
            "channel. The evaluation protocol is 8-bit and sr-kit does not requantize silently: "
            "convert the file to 8-bit RGB yourself."
        )
    if mode == "P" or mode == "PA":
        # A palette may carry transparency (tRNS / "transparency" info, or an RGBA palette).
        has_alpha = (
            mode == "PA"
            or "transparency" in img.info
            or (img.palette is not None and img.palette.mode == "RGBA")
        )
        img = img.convert("RGBA" if has_alpha else "RGB")
        mode = img.mode
    if mode == "RGB":
        return np.array(img, dtype=np.uint8)
    if mode == "RGBA":
        _require_opaque(img.getchannel("A"), path, mode)
        return np.array(img.convert("RGB"), dtype=np.uint8)
    if mode in ("L", "1"):
        # "1" is stored as 0/1 bits; convert("L") maps it to 0/255 like MATLAB's imread of a
        # logical image followed by im2uint8.
        return _gray_to_rgb(np.array(img.convert("L"), dtype=np.uint8))
    if mode == "LA":
        _require_opaque(img.getchannel("A"), path, mode)
        return _gray_to_rgb(np.array(img.getchannel("L"), dtype=np.uint8))
    raise ImageError(
        f"{path}: unsupported image mode {mode}; expected 8-bit RGB, grayscale (L), "
        "black-and-white (1) or palette (P). Convert the file to 8-bit RGB yourself."
    )


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as an ``H×W×3`` uint8 RGB array.

    Policy (the evaluation protocol is 8-bit RGB):

    * 8-bit RGB: returned as is.
    * Grayscale ``L`` and black-and-white ``1``: replicated to 3 equal channels (Set14 has
      grayscale images; the published protocol treats them as 3 equal channels).
    * ``LA``: the alpha channel must be fully opaque, then treated as ``L``.
    * Palette ``P``: converted to RGB; if it carries transparency, the RGBA rule applies.
    * ``RGBA``: alpha fully opaque → dropped; any transparent pixel → :class:`ImageError`.
    * 16-bit, 32-bit and float images (``I;16``, ``I``, ``F``, 16-bit RGB PNG): :class:`ImageError`;
      we do not silently requantize to 8 bits.
    * ``CMYK``, ``YCbCr`` and other modes: :class:`ImageError`.
    * Missing, unreadable, truncated or not an image: :class:`ImageError` (chained to the
      Pillow error).

    Pixels are returned as stored: EXIF orientation and ICC profiles are ignored, like MATLAB's
    ``imread``. Multi-page files give their first page.

    Args:
        path: The image file.

    Returns:
        A new, writable, C-contiguous ``H×W×3`` uint8 array.

    Raises:
        ImageError: The file cannot be read or is not an 8-bit opaque image. The message names
            the file.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            raw_modes = _raw_modes(img)
            # Force the full decode here so a truncated file fails inside the try, not later.
            img.load()
            return _to_rgb(img, path, raw_modes)
    except ImageError:
        raise
    except FileNotFoundError as exc:
        raise ImageError(f"{path}: file not found; expected an image file") from exc
    except _DECODE_ERRORS as exc:
        raise ImageError(
            f"{path}: cannot be read as an image ({type(exc).__name__}: {exc}); expected a "
            "complete PNG, JPEG, BMP or TIFF file"
        ) from exc


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop an image at the bottom/right so both sides are multiples of ``scale``.

    Args:
        img: An ``H×W`` or ``H×W×C`` array.
        scale: The SR scale factor (an int >= 1).

    Returns:
        A view of ``img`` of size ``(H - H % scale)×(W - W % scale)``.

    Raises:
        ValueError: ``scale`` is not an int >= 1, ``img`` is not 2-D/3-D, or the image is
            smaller than ``scale`` in either dimension.
    """
    if isinstance(scale, bool) or not isinstance(scale, int | np.integer) or scale < 1:
        raise ValueError(f"modcrop: scale must be an integer >= 1, got {scale!r}")
    if img.ndim not in (2, 3):
        raise ValueError(f"modcrop: expected an H×W or H×W×C array, got shape {img.shape}")
    h, w = img.shape[:2]
    if h < scale or w < scale:
        raise ValueError(
            f"modcrop: image of size {h}x{w} (HxW) is smaller than the scale {scale}; "
            f"it needs at least {scale} pixels on each side"
        )
    return img[: h - h % scale, : w - w % scale]


def _check_scale(scale: object) -> int:
    # Datasets need a real downscale; 1 would make LR == HR and silently "evaluate" nothing.
    if isinstance(scale, bool) or not isinstance(scale, int | np.integer) or scale < 2:
        raise ValueError(f"scale must be an integer >= 2 (typically 2, 3 or 4), got {scale!r}")
    return int(scale)


def _bicubic_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """LR by MATLAB-compatible antialiased bicubic, rounded to uint8 (``hr`` already modcropped)."""
    # Imported here: sr_kit.imresize needs torch, and reading data must not.
    from sr_kit.imresize import imresize_uint8

    return np.ascontiguousarray(imresize_uint8(hr, 1 / scale))
