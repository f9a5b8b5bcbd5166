"""The registry of standard benchmark sets: where they live, and checking them.

Met in notebooks/00_start_here.ipynb ("Adding the benchmark sets", ``list_datasets``); checking
and checksums are not covered by a notebook (see ``data/README.md``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from .embedded import embedded_dataset
from .images import DatasetError, _check_scale
from .pairs import PairedDataset, _list_images, _match_lr, image_folder

# A source checkout keeps data/README.md and data/manifests/ next to the package.
_REPO_ROOT = Path(__file__).resolve().parents[2]
_MANIFEST_DIR = _REPO_ROOT / "data" / "manifests"


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
