"""Benchmark data: reading images, building HR/LR pairs, finding the standard test sets.

The evaluation protocol used by published SR tables is:

1. read the HR image as 8-bit RGB (grayscale images become three equal channels);
2. crop it at the bottom/right to a multiple of the scale ("modcrop");
3. make the LR image with MATLAB-compatible bicubic downscaling (antialiased), rounded to uint8.

Benchmark copies usually ship step 3 precomputed (``LR_bicubic/X4/babyx4.png``); when they do, we
use those files, otherwise we compute the LR with the kit's bicubic (:mod:`sr_kit.imresize`).

Where data lives, what each set is and how to get it: see ``data/README.md``.
Importing this module pulls in numpy and Pillow only (no torch, no matplotlib).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, overload

import numpy as np
from PIL import Image

__all__ = [
    "DATASETS",
    "EMBEDDED_SPLIT",
    "IMAGE_EXTENSIONS",
    "CheckReport",
    "DatasetError",
    "DatasetSpec",
    "ImageError",
    "ImagePair",
    "PairedDataset",
    "check_dataset",
    "data_root",
    "embedded_dataset",
    "embedded_images",
    "image_folder",
    "list_datasets",
    "modcrop",
    "read_image",
    "resolve_dataset",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# A source checkout keeps data/README.md and data/manifests/ next to the package.
_REPO_ROOT = Path(__file__).resolve().parents[1]
_MANIFEST_DIR = _REPO_ROOT / "data" / "manifests"


class ImageError(ValueError):
    """An image file that cannot be used: unreadable, or not 8-bit opaque RGB/grayscale."""


class DatasetError(ValueError):
    """A missing or malformed dataset, folder or dataset name."""


# ----------------------------------------------------------------------------------------------
# Reading images
# ----------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------
# Paired datasets
# ----------------------------------------------------------------------------------------------


# eq=False: the fields are arrays, for which dataclass == and hash() would be wrong or fail.
@dataclass(frozen=True, eq=False)
class ImagePair:
    """One benchmark image: the modcropped HR image and its LR counterpart.

    Attributes:
        name: File name of the HR image, e.g. ``"baby.png"``.
        hr: ``H×W×3`` uint8, already modcropped (H and W are multiples of the scale).
        lr: ``(H/scale)×(W/scale)×3`` uint8.
    """

    name: str
    hr: np.ndarray
    lr: np.ndarray


class PairedDataset(Sequence[ImagePair]):
    """HR/LR image pairs, listed eagerly and loaded lazily (one pair per ``dataset[i]``).

    Build one with :func:`image_folder`, :func:`resolve_dataset` or :func:`embedded_dataset`.

    Attributes:
        name: Dataset name used in result tables ("Set5", "embedded", a folder name...).
        scale: The SR scale factor.
        lr_source: ``"files"`` when LR images are read from files, ``"bicubic"`` when they are
            made from the HR image with the kit's bicubic.
        hr_paths: The HR image files, sorted by file name.
        lr_paths: The matching LR files, or ``None`` when ``lr_source == "bicubic"``.
        names: The HR file names.
        root: The folder the dataset was found in, if any.
    """

    def __init__(
        self,
        name: str,
        scale: int,
        hr_paths: Sequence[Path],
        lr_paths: Sequence[Path] | None = None,
        *,
        root: Path | None = None,
    ) -> None:
        """Create a dataset from HR files and optional matching LR files (same order)."""
        self.name = name
        self.scale = _check_scale(scale)
        self.hr_paths: tuple[Path, ...] = tuple(Path(p) for p in hr_paths)
        self.lr_paths: tuple[Path, ...] | None = (
            None if lr_paths is None else tuple(Path(p) for p in lr_paths)
        )
        if self.lr_paths is not None and len(self.lr_paths) != len(self.hr_paths):
            raise ValueError(
                f"{name}: {len(self.hr_paths)} HR files but {len(self.lr_paths)} LR files"
            )
        self.lr_source: Literal["files", "bicubic"] = "bicubic" if lr_paths is None else "files"
        self.names: tuple[str, ...] = tuple(p.name for p in self.hr_paths)
        self.root = root

    def __len__(self) -> int:
        return len(self.hr_paths)

    @overload
    def __getitem__(self, index: int) -> ImagePair: ...

    @overload
    def __getitem__(self, index: slice) -> list[ImagePair]: ...

    def __getitem__(self, index: int | slice) -> ImagePair | list[ImagePair]:
        if isinstance(index, slice):
            return [self._load(i) for i in range(*index.indices(len(self)))]
        n = len(self)
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(f"{self.name}: index {index} out of range for {n} images")
        return self._load(i)

    def __iter__(self) -> Iterator[ImagePair]:
        for i in range(len(self)):
            yield self._load(i)

    def __repr__(self) -> str:
        return (
            f"PairedDataset(name={self.name!r}, scale={self.scale}, images={len(self)}, "
            f"lr_source={self.lr_source!r})"
        )

    def validate(self) -> None:
        """Load every pair once; raise the first :class:`ImageError`/:class:`DatasetError`."""
        for i in range(len(self)):
            self._load(i)

    def _read_hr(self, i: int) -> np.ndarray:
        return read_image(self.hr_paths[i])

    def _load(self, i: int) -> ImagePair:
        hr_path, s = self.hr_paths[i], self.scale
        hr = self._read_hr(i)
        h, w = hr.shape[:2]
        if h < s or w < s:
            raise DatasetError(
                f"{hr_path}: HR image is {h}x{w} (HxW), smaller than the scale {s}; "
                "remove it from the dataset or use a smaller scale"
            )
        # Sizes not divisible by the scale are cropped at the bottom/right (the protocol).
        hr = np.ascontiguousarray(modcrop(hr, s))
        expected = (hr.shape[0] // s, hr.shape[1] // s)
        if self.lr_paths is None:
            lr = _bicubic_lr(hr, s)
        else:
            lr_path = self.lr_paths[i]
            lr = read_image(lr_path)
            if lr.shape[:2] != expected:
                raise DatasetError(
                    f"{lr_path}: LR image is {lr.shape[0]}x{lr.shape[1]} (HxW), expected "
                    f"{expected[0]}x{expected[1]} = the HR image {hr_path.name} cropped to "
                    f"{hr.shape[0]}x{hr.shape[1]}, divided by the scale {s}"
                )
        return ImagePair(name=hr_path.name, hr=hr, lr=lr)


def _list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name.

    Files with other extensions (README.txt, .DS_Store) are ignored, and so are hidden files
    (macOS copies "._baby.png" resource forks next to the real images).
    """
    return sorted(
        (
            p
            for p in folder.iterdir()
            if not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
        ),
        key=lambda p: p.name,
    )


def _no_images_error(folder: Path) -> DatasetError:
    return DatasetError(
        f"No images found in {folder}: looked for files ending in {', '.join(IMAGE_EXTENSIONS)} "
        "(hidden files are skipped). Put the HR images there, or in an HR/ subfolder of the "
        "dataset folder."
    )


def _match_lr(
    hr_paths: Sequence[Path], lr_dir: Path, scale: int, *, allow_plain_stem: bool
) -> list[Path]:
    """Find the LR file for each HR file: ``{stem}x{scale}.ext`` (or ``{stem}.ext`` if allowed)."""
    if not lr_dir.exists():
        raise DatasetError(f"LR folder not found: {lr_dir}")
    if not lr_dir.is_dir():
        raise DatasetError(f"LR folder {lr_dir} is not a folder")
    by_stem: dict[str, list[Path]] = {}
    for p in _list_images(lr_dir):
        by_stem.setdefault(p.stem, []).append(p)
    matched = []
    for hr in hr_paths:
        wanted = [f"{hr.stem}x{scale}"] + ([hr.stem] if allow_plain_stem else [])
        found = [p for stem in wanted for p in by_stem.get(stem, [])]
        if not found:
            names = " or ".join(f"{stem}.<ext>" for stem in wanted)
            raise DatasetError(
                f"HR image {hr} has no matching LR file in {lr_dir}: expected {names}. "
                "Add the LR file, remove the HR image, or drop the LR folder to have LR "
                "images made with the kit's bicubic."
            )
        if len(found) > 1:
            raise DatasetError(
                f"HR image {hr} matches several LR files in {lr_dir}: "
                f"{', '.join(p.name for p in found)}; keep only one"
            )
        matched.append(found[0])
    return matched


def _folder_dataset(
    name: str,
    scale: int,
    hr_dir: Path,
    lr_dir: Path | None,
    *,
    allow_plain_stem: bool,
    root: Path,
) -> PairedDataset:
    hr_paths = _list_images(hr_dir)
    if not hr_paths:
        raise _no_images_error(hr_dir)
    lr_paths = (
        None
        if lr_dir is None
        else _match_lr(hr_paths, lr_dir, scale, allow_plain_stem=allow_plain_stem)
    )
    return PairedDataset(name, scale, hr_paths, lr_paths, root=root)


def image_folder(
    path: str | os.PathLike[str],
    scale: int,
    *,
    lr_dir: str | os.PathLike[str] | None = None,
    name: str | None = None,
) -> PairedDataset:
    """A dataset from a folder of images.

    Layouts accepted:

    (a) ``path/HR/*.png`` [+ ``path/LR_bicubic/X{scale}/{stem}x{scale}.png``]: the LR files are
        used when that ``X{scale}`` folder exists; otherwise LR is made with the kit's bicubic.
    (b) ``path/*.png`` (a folder of HR images): LR made with the kit's bicubic after modcrop.
    (c) ``lr_dir`` given: LR files are taken from it, matched by stem, named either
        ``{stem}.ext`` or ``{stem}x{scale}.ext``.

    Files without an image extension (README.txt, .DS_Store) and hidden files are ignored. A
    file with an image extension that cannot be decoded raises :class:`ImageError` when it is
    loaded (or by :meth:`PairedDataset.validate`). HR sizes not divisible by the scale are
    modcropped.

    Args:
        path: The dataset folder.
        scale: The SR scale factor, an int >= 2.
        lr_dir: Folder of LR images (layout c).
        name: Dataset name; defaults to the folder name.

    Returns:
        The dataset, sorted by HR file name.

    Raises:
        ValueError: ``scale`` is not an int >= 2.
        DatasetError: The folder is missing, is not a folder, holds no images, or an HR image
            has no matching LR file.
    """
    scale = _check_scale(scale)
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetError(
            f"Dataset folder not found: {path}. Check the path, or put the images there "
            "(see data/README.md)."
        )
    if not path.is_dir():
        raise DatasetError(
            f"{path} is not a folder: expected a folder of images or a folder with an HR/ subfolder"
        )
    name = name if name is not None else path.name
    if (path / "HR").is_dir():
        hr_dir = path / "HR"
        default_lr = path / "LR_bicubic" / f"X{scale}"
        auto_lr = default_lr if default_lr.is_dir() else None
    else:
        hr_dir, auto_lr = path, None
    if lr_dir is not None:
        return _folder_dataset(
            name, scale, hr_dir, Path(lr_dir).expanduser(), allow_plain_stem=True, root=path
        )
    return _folder_dataset(name, scale, hr_dir, auto_lr, allow_plain_stem=False, root=path)


# ----------------------------------------------------------------------------------------------
# Registry of the standard sets
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """A standard SR dataset and where it lives under the data root.

    Attributes:
        key: Registry key (lower case), e.g. ``"set5"``.
        folder: Folder under the data root, e.g. ``"Set5"``.
        num_images: Number of HR images expected.
        description: What the images are.
        source: Where to get it (paper / site names).
        hr_subdir: HR folder inside ``folder``.
        lr_subdir: Folder inside ``folder`` holding ``X{scale}`` LR folders (optional on disk).
        name: Display name in result tables; defaults to ``folder``.
    """

    key: str
    folder: str
    num_images: int
    description: str
    source: str
    hr_subdir: str = "HR"
    lr_subdir: str = "LR_bicubic"
    name: str = ""

    @property
    def display_name(self) -> str:
        """The name used for datasets built from this spec."""
        return self.name or self.folder


DATASETS: dict[str, DatasetSpec] = {
    spec.key: spec
    for spec in (
        DatasetSpec(
            "set5",
            "Set5",
            5,
            "5 images (baby, bird, butterfly, head, woman); the classic small test set",
            "Bevilacqua et al., BMVC 2012; packaged in the EDSR/RCAN benchmark archives",
        ),
        DatasetSpec(
            "set14",
            "Set14",
            14,
            "14 images (people, animals, text/graphics); bridge and man are grayscale",
            "Zeyde et al., Curves and Surfaces 2010; packaged in the EDSR/RCAN benchmark archives",
        ),
        DatasetSpec(
            "b100",
            "B100",
            100,
            "100 natural photos, the test split of BSD300 (also called BSD100/BSDS100)",
            "Martin et al., ICCV 2001 (Berkeley Segmentation Dataset); EDSR benchmark archive",
        ),
        DatasetSpec(
            "urban100",
            "Urban100",
            100,
            "100 urban scenes with regular structures (buildings, windows)",
            "Huang et al., CVPR 2015 (SelfExSR); EDSR benchmark archive",
        ),
        DatasetSpec(
            "manga109",
            "Manga109",
            109,
            "109 manga volume covers (drawn line art)",
            "Matsui et al., 2017, manga109.org (academic-use request); often shipped with "
            "SR benchmark archives",
        ),
        DatasetSpec(
            "div2k",
            "DIV2K",
            800,
            "DIV2K training split: 800 2K-resolution photos (0001-0800), for training",
            "Agustsson & Timofte, NTIRE 2017 (data.vision.ee.ethz.ch/cvl/DIV2K)",
            hr_subdir="DIV2K_train_HR",
            lr_subdir="DIV2K_train_LR_bicubic",
            name="DIV2K-train",
        ),
        DatasetSpec(
            "div2k-val",
            "DIV2K",
            100,
            "DIV2K validation split: 100 2K-resolution photos (0801-0900)",
            "Agustsson & Timofte, NTIRE 2017 (data.vision.ee.ethz.ch/cvl/DIV2K)",
            hr_subdir="DIV2K_valid_HR",
            lr_subdir="DIV2K_valid_LR_bicubic",
            name="DIV2K-val",
        ),
    )
}

# Other names people use for the same sets.
_ALIASES = {"bsd100": "b100", "bsds100": "b100", "div2k-train": "div2k", "div2k_val": "div2k-val"}

_EMBEDDED_NAMES = {
    "embedded": "val",
    "embedded:val": "val",
    "embedded-val": "val",
    "embedded:train": "train",
    "embedded-train": "train",
}


def _lookup_spec(key: str) -> DatasetSpec | None:
    k = key.strip().lower()
    return DATASETS.get(_ALIASES.get(k, k))


def _known_names() -> str:
    return ", ".join([*DATASETS, "embedded", "embedded:train"])


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding the benchmark sets (``<root>/Set5/HR/...``).

    Precedence: ``explicit`` > environment variable ``SR_KIT_DATA`` > the ``data/`` folder of a
    source checkout of sr-kit > ``./data`` in the current directory. The folder need not exist.
    """
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get("SR_KIT_DATA")
    if env:
        return Path(env).expanduser()
    # Only a real checkout (pyproject.toml next to data/), not some site-packages/data folder.
    if (_REPO_ROOT / "pyproject.toml").is_file() and (_REPO_ROOT / "data").is_dir():
        return _REPO_ROOT / "data"
    return Path.cwd() / "data"


def _missing_set_error(spec: DatasetSpec, root: Path) -> DatasetError:
    return DatasetError(
        f"{spec.folder} not found: expected {root / spec.folder / spec.hr_subdir} with "
        f"{spec.num_images} images. Put the files there (see data/README.md), or point "
        "--data-root / SR_KIT_DATA elsewhere."
    )


def resolve_dataset(
    name_or_path: str | os.PathLike[str],
    scale: int,
    *,
    data_root: str | os.PathLike[str] | None = None,
) -> PairedDataset:
    """Turn a dataset name or a folder path into a :class:`PairedDataset`.

    * ``"embedded"`` (= ``"embedded:val"``) or ``"embedded:train"``: :func:`embedded_dataset`.
    * A registry key from :data:`DATASETS`, case-insensitive (``"Set5"`` works): the folder
      ``<data root>/<folder>`` in layout (a) of :func:`image_folder`; the HR image count must
      match the registry.
    * Otherwise an existing folder: :func:`image_folder`.

    Names win over paths: to use a local folder called ``set5``, pass ``"./set5"``.

    Args:
        name_or_path: Dataset name or folder.
        scale: The SR scale factor, an int >= 2.
        data_root: Overrides :func:`data_root`'s search.

    Raises:
        ValueError: ``scale`` is not an int >= 2.
        DatasetError: Unknown name and no such folder; registered set missing or incomplete.
    """
    scale = _check_scale(scale)
    if isinstance(name_or_path, str):
        key = name_or_path.strip().lower()
        if key in _EMBEDDED_NAMES:
            return embedded_dataset(scale, split=_EMBEDDED_NAMES[key])
        spec = _lookup_spec(key)
        if spec is not None:
            return _registered_dataset(spec, scale, _resolve_root(data_root))
    path = Path(name_or_path).expanduser()
    if path.exists():
        return image_folder(path, scale)
    raise DatasetError(
        f"Unknown dataset {str(name_or_path)!r}: not a known name ({_known_names()}) and the "
        f"path {path} does not exist."
    )


def _resolve_root(explicit: str | os.PathLike[str] | None) -> Path:
    return data_root(explicit)


def _registered_dataset(spec: DatasetSpec, scale: int, root: Path) -> PairedDataset:
    folder = root / spec.folder
    hr_dir = folder / spec.hr_subdir
    if not hr_dir.is_dir():
        raise _missing_set_error(spec, root)
    hr_paths = _list_images(hr_dir)
    if len(hr_paths) != spec.num_images:
        raise DatasetError(
            f"{spec.folder} is incomplete or has extra files: expected {spec.num_images} images "
            f"in {hr_dir}, found {len(hr_paths)}. See data/README.md."
        )
    lr_dir = folder / spec.lr_subdir / f"X{scale}"
    lr_paths = (
        _match_lr(hr_paths, lr_dir, scale, allow_plain_stem=False) if lr_dir.is_dir() else None
    )
    return PairedDataset(spec.display_name, scale, hr_paths, lr_paths, root=folder)


# ----------------------------------------------------------------------------------------------
# Checking and listing the standard sets
# ----------------------------------------------------------------------------------------------


@dataclass
class CheckReport:
    """Result of :func:`check_dataset`.

    Attributes:
        key: Registry key.
        path: The dataset folder (``<root>/<folder>``).
        found: HR images found (0 if the folder is missing).
        expected: HR images expected.
        checksum_ok: True/False after checking the manifest; None when there is no manifest or
            the folder is missing (nothing to check).
        problems: Human-readable problems; empty when all is well.
    """

    key: str
    path: Path
    found: int
    expected: int
    checksum_ok: bool | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the set is complete and matches its manifest (if any)."""
        return not self.problems


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_manifest(path: Path) -> list[tuple[str, str]]:
    """``(sha256, relative path)`` pairs from a ``sha256sum``-format file."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        digest, _, rel = line.partition(" ")
        # sha256sum writes "<hash>  <path>" (text) or "<hash> *<path>" (binary).
        entries.append((digest.lower(), rel.lstrip(" ").removeprefix("*")))
    return entries


def check_dataset(
    key: str,
    *,
    data_root: str | os.PathLike[str] | None = None,
    manifest_dir: str | os.PathLike[str] | None = None,
) -> CheckReport:
    """Count a registered set's HR images and verify its checksums.

    Checksums come from ``data/manifests/<key>.sha256`` (sha256sum format, paths relative to the
    dataset folder) when that file exists; only the listed files are checked, and listed files
    that are missing are problems. A mismatch usually means a different public copy of the set,
    whose scores differ slightly from ours.

    Args:
        key: Registry key (case-insensitive).
        data_root: Overrides :func:`data_root`'s search.
        manifest_dir: Folder of manifests; defaults to the checkout's ``data/manifests``.

    Raises:
        DatasetError: ``key`` is not a registered set.
    """
    spec = _lookup_spec(key)
    if spec is None:
        raise DatasetError(f"Unknown dataset {key!r}: known names are {', '.join(DATASETS)}")
    root = _resolve_root(data_root)
    folder = root / spec.folder
    hr_dir = folder / spec.hr_subdir
    problems: list[str] = []
    if not hr_dir.is_dir():
        problems.append(str(_missing_set_error(spec, root)))
        return CheckReport(spec.key, folder, 0, spec.num_images, None, problems)
    found = len(_list_images(hr_dir))
    if found != spec.num_images:
        problems.append(f"expected {spec.num_images} HR images in {hr_dir}, found {found}")
    manifest = Path(manifest_dir or _MANIFEST_DIR) / f"{spec.key}.sha256"
    checksum_ok: bool | None = None
    if manifest.is_file():
        bad: list[str] = []
        for digest, rel in _read_manifest(manifest):
            target = folder / rel
            if not target.is_file():
                bad.append(f"missing: {rel}")
            elif _sha256(target) != digest:
                bad.append(f"checksum mismatch: {rel} (a different copy than {manifest.name})")
        checksum_ok = not bad
        # Keep reports readable when a whole copy differs.
        problems.extend(bad[:10])
        if len(bad) > 10:
            problems.append(f"... and {len(bad) - 10} more files missing or different")
    return CheckReport(spec.key, folder, found, spec.num_images, checksum_ok, problems)


def list_datasets(data_root: str | os.PathLike[str] | None = None) -> list[dict[str, object]]:
    """One dict per registered set: key, name, folder, expected, found, present, complete, path.

    ``found`` is 0 when the folder is missing; ``present`` means the HR folder holds at least one
    image, ``complete`` that it holds exactly the expected number. ``path`` is a string.
    """
    root = _resolve_root(data_root)
    rows: list[dict[str, object]] = []
    for spec in DATASETS.values():
        hr_dir = root / spec.folder / spec.hr_subdir
        found = len(_list_images(hr_dir)) if hr_dir.is_dir() else 0
        rows.append(
            {
                "key": spec.key,
                "name": spec.display_name,
                "folder": spec.folder,
                "expected": spec.num_images,
                "found": found,
                "present": found > 0,
                "complete": found == spec.num_images,
                "path": str(hr_dir),
            }
        )
    return rows


# ----------------------------------------------------------------------------------------------
# Embedded set: images shipped inside installed packages, no download
# ----------------------------------------------------------------------------------------------

# A fixed split of natural-looking images from scikit-image's data folder (plus matplotlib's
# grace_hopper.jpg). Synthetic/binary images (horse, chessboards, logo, phantom, color wheel) are
# left out. Sizes (HxW) are in data/README.md. Never change these lists: results depend on them.
EMBEDDED_SPLIT: dict[str, tuple[str, ...]] = {
    "train": (
        "astronaut.png",
        "brick.png",
        "coins.png",
        "grass.png",
        "gravel.png",
        "hubble_deep_field.jpg",
        "ihc.png",
        "moon.png",
        "motorcycle_left.png",
        "rocket.jpg",
        "text.png",
    ),
    "val": (
        "camera.png",
        "chelsea.png",
        "coffee.png",
        "grace_hopper.jpg",
        "page.png",
    ),
}

_MATPLOTLIB_IMAGES = frozenset({"grace_hopper.jpg"})


def _embedded_path(name: str) -> Path:
    """Where an embedded image lives inside its installed package."""
    if name in _MATPLOTLIB_IMAGES:
        # Imported here, only for this one file: matplotlib is slow to import.
        import matplotlib

        return Path(matplotlib.get_data_path()) / "sample_data" / name
    # find_spec locates scikit-image without importing it.
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("The embedded set needs scikit-image installed (pip install -e .)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / name


def _split_names(split: str | None) -> tuple[str, ...]:
    if split is None:
        return EMBEDDED_SPLIT["train"] + EMBEDDED_SPLIT["val"]
    if split not in EMBEDDED_SPLIT:
        raise DatasetError(
            f"Unknown embedded split {split!r}: use one of {', '.join(EMBEDDED_SPLIT)} or None"
        )
    return EMBEDDED_SPLIT[split]


@functools.cache
def _embedded_image(name: str) -> np.ndarray:
    path = _embedded_path(name)
    if not path.is_file():
        raise DatasetError(
            f"Embedded image {name} not found at {path}: the installed scikit-image/matplotlib "
            "version does not ship it; install the versions pinned in pyproject.toml"
        )
    img = read_image(path)
    img.flags.writeable = False  # the cache hands out copies; this guards the cached original
    return img


@functools.lru_cache(maxsize=64)
def _embedded_pair(name: str, scale: int) -> tuple[np.ndarray, np.ndarray]:
    # A writable copy: torch.from_numpy (inside imresize) warns on read-only arrays.
    hr = modcrop(_embedded_image(name), scale).copy()
    lr = _bicubic_lr(hr, scale)
    hr.flags.writeable = False
    lr.flags.writeable = False
    return hr, lr


def embedded_images(split: str | None = None) -> dict[str, np.ndarray]:
    """The embedded images, read from the installed packages (no download).

    Args:
        split: ``"train"``, ``"val"`` or ``None`` for all (train first, then val).

    Returns:
        File name (e.g. ``"astronaut.png"``) → ``H×W×3`` uint8 array. Arrays are fresh copies of
        an in-process cache, so callers may modify them.
    """
    return {name: _embedded_image(name).copy() for name in _split_names(split)}


class _EmbeddedDataset(PairedDataset):
    """A :class:`PairedDataset` whose pairs come from the in-process embedded cache."""

    def _load(self, i: int) -> ImagePair:
        name = self.names[i]
        hr, lr = _embedded_pair(name, self.scale)
        return ImagePair(name=name, hr=hr.copy(), lr=lr.copy())


def embedded_dataset(scale: int, split: str = "val") -> PairedDataset:
    """The embedded set as HR/LR pairs; LR made with the kit's bicubic after modcrop.

    Args:
        scale: The SR scale factor, an int >= 2.
        split: ``"val"`` (name ``"embedded"``) or ``"train"`` (name ``"embedded-train"``).
    """
    scale = _check_scale(scale)
    if split not in EMBEDDED_SPLIT:
        raise DatasetError(f"Unknown embedded split {split!r}: use 'train' or 'val'")
    names = _split_names(split)
    return _EmbeddedDataset(
        "embedded" if split == "val" else f"embedded-{split}",
        scale,
        [_embedded_path(n) for n in names],
    )
