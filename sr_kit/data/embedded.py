"""The embedded default set: images that installed packages ship; no download.

Explained in notebooks/00_start_here.ipynb ("The embedded data").
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from .images import DatasetError, _bicubic_lr, _check_scale, modcrop, read_image
from .pairs import ImagePair, PairedDataset

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
