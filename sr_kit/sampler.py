"""Random aligned LR/HR training patches, cut on the training device with no per-step host work.

All LR and HR images of the pool live in two flat uint8 tensors on the device. A batch is one
gather: for each of the B patches we draw an image, a position and one of the 8 flip/rotation
variants, turn them into an index tensor with the variant already folded in (a flip reverses a
coordinate, a 90-degree rotation is a transpose plus a flip), and index the flat tensors. A step
therefore costs a handful of kernel launches whatever the batch size, and no Python loop over
samples. Explained in notebooks/10_training_recipes.ipynb.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from .device import resolve_device
from .imresize import imresize_uint8

__all__ = ["PatchSampler"]


class PatchSampler:
    """Aligned random patches (LR ``patch`` x ``patch``, HR ``scale`` times larger) from a pool.

    Args:
        hr_images: HR images, uint8 (H, W, 3). Each is cropped to a multiple of ``scale``.
        scale: Upscaling factor.
        patch: LR patch size.
        device: Where the pool lives and patches are cut.
        seed: Seed of the sampler's own random generator (the only randomness it uses).
        augment: Random horizontal/vertical flips and 90-degree rotations (8 variants).
        lr_images: Matching LR images; by default made with the kit's MATLAB bicubic.

    Images smaller than one HR patch cannot give a patch: they are left out with a warning that
    names them, and an error is raised when no image is left.
    """

    def __init__(
        self,
        hr_images: Sequence[np.ndarray],
        scale: int,
        patch: int,
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
        augment: bool = True,
        lr_images: Sequence[np.ndarray] | None = None,
        names: Sequence[str] | None = None,
    ) -> None:
        if patch < 1 or scale < 1:
            raise ValueError(f"patch and scale must be >= 1, got patch={patch}, scale={scale}")
        self.scale, self.patch, self.augment = scale, patch, augment
        self.device = resolve_device(device)
        names = list(names) if names is not None else [f"image {i}" for i in range(len(hr_images))]
        hr_p = patch * scale
        lr_parts, hr_parts, sizes, kept, skipped = [], [], [], [], []
        for i, hr in enumerate(hr_images):
            hr = np.asarray(hr)
            if hr.dtype != np.uint8 or hr.ndim != 3 or hr.shape[2] != 3:
                raise ValueError(f"{names[i]}: expected uint8 (H, W, 3), got {hr.dtype} {hr.shape}")
            h, w = hr.shape[0] // scale, hr.shape[1] // scale
            if h < patch or w < patch:
                skipped.append(f"{names[i]} ({hr.shape[0]}x{hr.shape[1]})")
                continue
            hr = hr[: h * scale, : w * scale]
            lr = imresize_uint8(hr, 1 / scale) if lr_images is None else np.asarray(lr_images[i])
            if lr.shape != (h, w, 3):
                raise ValueError(f"{names[i]}: LR shape {lr.shape} does not match HR/{scale}")
            # channel-first and flattened: one flat index addresses any pixel of any image
            lr_parts.append(
                torch.from_numpy(np.ascontiguousarray(lr.transpose(2, 0, 1))).reshape(-1)
            )
            hr_parts.append(
                torch.from_numpy(np.ascontiguousarray(hr.transpose(2, 0, 1))).reshape(-1)
            )
            sizes.append((h, w))
            kept.append(names[i])
        if skipped:
            warnings.warn(
                f"PatchSampler: {len(skipped)} image(s) smaller than one HR patch of {hr_p}x{hr_p} "
                f"left out: {', '.join(skipped)}",
                stacklevel=2,
            )
        if not sizes:
            raise ValueError(
                f"no training image is at least one HR patch ({hr_p}x{hr_p} at x{scale}) large"
            )
        self.names = kept
        self.lr_flat = torch.cat(lr_parts).to(self.device)
        self.hr_flat = torch.cat(hr_parts).to(self.device)
        hw = torch.tensor(sizes, dtype=torch.int64)
        lr_len = 3 * hw[:, 0] * hw[:, 1]
        self._lr_off = torch.cumsum(lr_len, 0) - lr_len
        self._hr_off = self._lr_off * scale * scale
        self._h, self._w = hw[:, 0], hw[:, 1]
        # Draw images by their number of patch positions, so every position is equally likely.
        self._weights = ((self._h - patch + 1) * (self._w - patch + 1)).double()
        self._lr_off, self._hr_off, self._h, self._w, self._weights = (
            t.to(self.device) for t in (self._lr_off, self._hr_off, self._h, self._w, self._weights)
        )
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        ar = torch.arange(patch, device=self.device)
        self._lr_grid = (ar.view(-1, 1).expand(patch, patch), ar.view(1, -1).expand(patch, patch))
        ar = torch.arange(hr_p, device=self.device)
        self._hr_grid = (ar.view(-1, 1).expand(hr_p, hr_p), ar.view(1, -1).expand(hr_p, hr_p))
        self._chan = torch.arange(3, device=self.device).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return len(self.names)

    def _index(
        self, grid: tuple[Tensor, Tensor], size: int, off: Tensor, h: Tensor, w: Tensor,
        y: Tensor, x: Tensor, variant: Tensor,
    ) -> Tensor:  # fmt: skip
        """Flat indices (B, 3, size, size) of the patches at (y, x) with the variant applied."""
        i, j = grid[0].unsqueeze(0), grid[1].unsqueeze(0)  # (1, size, size)
        v = variant.view(-1, 1, 1)
        transpose = (v & 4).bool()
        u = torch.where(transpose, j, i)  # source row for output pixel (i, j)
        t = torch.where(transpose, i, j)  # source column
        u = torch.where((v & 2).bool(), size - 1 - u, u)  # vertical flip
        t = torch.where((v & 1).bool(), size - 1 - t, t)  # horizontal flip
        rows = (y.view(-1, 1, 1) + u).unsqueeze(1)  # (B, 1, size, size)
        cols = (x.view(-1, 1, 1) + t).unsqueeze(1)
        hw = (h * w).view(-1, 1, 1, 1)
        return off.view(-1, 1, 1, 1) + self._chan * hw + rows * w.view(-1, 1, 1, 1) + cols

    def sample(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """One batch: LR (B, 3, p, p) and HR (B, 3, s p, s p), float in [0, 1] on the device."""
        g, p, s = self.generator, self.patch, self.scale
        img = torch.multinomial(self._weights, batch_size, replacement=True, generator=g)
        h, w = self._h[img], self._w[img]
        r = torch.rand(2, batch_size, device=self.device, generator=g, dtype=torch.float64)
        y = (r[0] * (h - p + 1)).long()
        x = (r[1] * (w - p + 1)).long()
        if self.augment:
            variant = torch.randint(0, 8, (batch_size,), device=self.device, generator=g)
        else:
            variant = torch.zeros(batch_size, dtype=torch.int64, device=self.device)
        lr_idx = self._index(self._lr_grid, p, self._lr_off[img], h, w, y, x, variant)
        hr_idx = self._index(
            self._hr_grid, p * s, self._hr_off[img], h * s, w * s, y * s, x * s, variant
        )
        lr = self.lr_flat[lr_idx].float().div_(255.0)
        hr = self.hr_flat[hr_idx].float().div_(255.0)
        return lr, hr

    def get_state(self) -> Tensor:
        """The random generator's state (for resuming a run exactly)."""
        return self.generator.get_state()

    def set_state(self, state: Tensor) -> None:
        self.generator.set_state(state.cpu())  # generator states are CPU byte tensors
