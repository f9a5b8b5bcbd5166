"""HR/LR pairs: image folders in the benchmark layouts, loaded lazily.

The pairs are used from notebooks/00_start_here.ipynb on (``embedded_dataset`` returns them); how
an LR image is made is explained in notebooks/01_the_sr_problem.ipynb. The folder layouts are in
``data/README.md``; no notebook covers them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload

import numpy as np

from .images import IMAGE_EXTENSIONS, DatasetError, _bicubic_lr, _check_scale, modcrop, read_image


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
