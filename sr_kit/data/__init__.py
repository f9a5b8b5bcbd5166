"""Benchmark data: reading images, building HR/LR pairs, finding the standard test sets.

The evaluation protocol used by published SR tables is:

1. read the HR image as 8-bit RGB (grayscale images become three equal channels);
2. crop it at the bottom/right to a multiple of the scale ("modcrop");
3. make the LR image with MATLAB-compatible bicubic downscaling (antialiased), rounded to uint8.

Benchmark copies usually ship step 3 precomputed (``LR_bicubic/X4/babyx4.png``); when they do, we
use those files, otherwise we compute the LR with the kit's bicubic (:mod:`sr_kit.imresize`).

Where data lives, what each set is and how to get it: see ``data/README.md``.
Importing this module pulls in numpy and Pillow only (no torch, no matplotlib).

Explained in notebooks/00_start_here.ipynb (the embedded set, adding the benchmark sets) and
notebooks/01_the_sr_problem.ipynb (the protocol: modcrop, bicubic LR).
"""

from .embedded import EMBEDDED_SPLIT, embedded_dataset, embedded_images
from .images import IMAGE_EXTENSIONS, DatasetError, ImageError, modcrop, read_image
from .pairs import ImagePair, PairedDataset, image_folder
from .registry import (
    DATASETS,
    CheckReport,
    DatasetSpec,
    check_dataset,
    data_root,
    list_datasets,
    resolve_dataset,
)

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
