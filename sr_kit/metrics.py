"""Image quality metrics under the protocol of the published SR tables.

PSNR and SSIM are computed on the BT.601 luma channel (Y in [16, 235]) of uint8 images, after
shaving ``scale`` pixels from every border; the SR output is rounded to uint8 first. These choices
move PSNR by tenths of a dB, so they are arguments here and are recorded with every result.

SSIM follows Wang et al. (2004) as the field computes it: an 11x11 Gaussian window with sigma 1.5,
K1 = 0.01, K2 = 0.03, data range 255, averaged over the "valid" region (scikit-image's
``structural_similarity`` with ``use_sample_covariance=False`` computes exactly that).

Explained in notebooks/01_the_sr_problem.ipynb.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = [
    "LpipsUnavailable",
    "lpips_distance",
    "psnr",
    "psnr_y",
    "rgb_to_y",
    "shave",
    "ssim",
    "ssim_y",
]

# ITU-R BT.601 "studio swing" luma for R, G, B in [0, 1] (BasicSR's rgb2ycbcr, MATLAB's rgb2ycbcr).
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966])


def _as_uint8_image(img: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise TypeError(
            f"{what}: expected a uint8 image (round the SR output first), got dtype {a.dtype}"
        )
    if a.ndim == 2:
        return a
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"{what}: expected (H, W) or (H, W, 3), got shape {a.shape}")
    return a


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma of a uint8 RGB image (H, W, 3), float64 in [16, 235]; 2-D input is Y already."""
    a = _as_uint8_image(img, "rgb_to_y")
    if a.ndim == 2:
        return a.astype(np.float64)
    return a.astype(np.float64) @ _Y_WEIGHTS / 255.0 + 16.0


def shave(img: np.ndarray, border: int) -> np.ndarray:
    """Drop ``border`` pixels from each side of the first two axes."""
    if border < 0:
        raise ValueError(f"shave: border must be >= 0, got {border}")
    if border == 0:
        return img
    h, w = img.shape[:2]
    if h <= 2 * border or w <= 2 * border:
        raise ValueError(f"shave: a {h}x{w} image has nothing left after shaving {border} px")
    return img[border:-border, border:-border]


def _check_pair(sr: np.ndarray, hr: np.ndarray) -> None:
    if sr.shape != hr.shape:
        raise ValueError(f"SR and HR shapes differ: {sr.shape} vs {hr.shape}")


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """PSNR in dB between two arrays of equal shape; ``inf`` when they are identical."""
    _check_pair(a, b)
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(data_range**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """SSIM of two single-channel float images: Gaussian 11x11 window, sigma 1.5, valid region."""
    from skimage.metrics import structural_similarity

    _check_pair(a, b)
    if min(a.shape[:2]) < 11:
        raise ValueError(f"ssim needs images of at least 11x11 pixels, got {a.shape[:2]}")
    return float(
        structural_similarity(
            np.asarray(a, np.float64),
            np.asarray(b, np.float64),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=data_range,
        )
    )


def psnr_y(sr: np.ndarray, hr: np.ndarray, shave_border: int) -> float:
    """PSNR on the Y channel of two uint8 images, ``shave_border`` (usually the scale) px shaved."""
    _check_pair(sr, hr)
    return psnr(shave(rgb_to_y(sr), shave_border), shave(rgb_to_y(hr), shave_border))


def ssim_y(sr: np.ndarray, hr: np.ndarray, shave_border: int) -> float:
    """SSIM on the Y channel of two uint8 images, ``shave_border`` px shaved from each side."""
    _check_pair(sr, hr)
    return ssim(shave(rgb_to_y(sr), shave_border), shave(rgb_to_y(hr), shave_border))


class LpipsUnavailable(RuntimeError):
    """LPIPS was asked for, but the ``lpips`` package or its backbone weights are not installed."""


def _lpips_backbone_file(net: str) -> Path:
    import torch

    # torchvision stores downloaded ImageNet weights here; lpips builds its backbone from them.
    names = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
    if net not in names:
        raise ValueError(f"LPIPS backbone must be one of {sorted(names)}, got {net!r}")
    return Path(torch.hub.get_dir()) / "checkpoints" / names[net]


def lpips_model(net: str = "alex"):
    """Build the LPIPS (v0.1) metric from local files only; never downloads.

    Raises:
        LpipsUnavailable: with instructions, when ``lpips`` or the backbone weights are missing.
    """
    weights = _lpips_backbone_file(net)
    try:
        import lpips
    except ImportError as err:
        raise LpipsUnavailable(
            "LPIPS needs the optional 'lpips' package (and torchvision): "
            "pip install lpips. sr-kit never downloads it for you."
        ) from err
    if not weights.is_file():
        raise LpipsUnavailable(
            f"LPIPS ({net}) needs the ImageNet backbone weights at {weights}, which are missing. "
            "Copy the torchvision file there (or set TORCH_HOME); sr-kit never downloads weights."
        )
    import lpips

    return lpips.LPIPS(net=net, version="0.1", verbose=False).eval()


def lpips_distance(sr: np.ndarray, hr: np.ndarray, shave_border: int, model=None) -> float:
    """LPIPS distance (lower is better) on RGB scaled to [-1, 1], same shaved crop as PSNR."""
    import torch

    _check_pair(sr, hr)
    model = model if model is not None else lpips_model()

    def to_tensor(img: np.ndarray) -> torch.Tensor:
        a = shave(_as_uint8_image(img, "lpips_distance"), shave_border)
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=2)
        t = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float()
        return (t / 127.5 - 1.0)[None]

    with torch.no_grad():
        return float(model(to_tensor(sr), to_tensor(hr)).item())
