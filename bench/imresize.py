"""Benchmark (not a test): the kit's bicubic vs Pillow's on a 2040x1356 RGB image, x4 down, CPU.

Run with ``make bench`` or ``.venv/bin/python bench/imresize.py [--threads N] [--csv FILE]``.
Both resize uint8 in -> uint8 out. Pillow's bicubic is not MATLAB's (a = -0.5 but a different
antialiasing support and rounding), so this compares speed only; correctness is in the tests.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch
from PIL import Image

from sr_kit.complexity import device_name
from sr_kit.data import embedded_images
from sr_kit.imresize import imresize, imresize_uint8


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up: builds and caches the weight tables
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    # A natural image from the embedded set, resized to DIV2K's usual 2040x1356.
    src = next(iter(embedded_images().values()))
    img = np.asarray(Image.fromarray(src).resize((2040, 1356), Image.BICUBIC))
    pil = Image.fromarray(img)
    out_w, out_h = 510, 339

    t_pil = _median_ms(lambda: pil.resize((out_w, out_h), Image.BICUBIC), args.repeats)
    t_kit = _median_ms(lambda: imresize_uint8(img, 1 / 4), args.repeats)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255)
    t_float = _median_ms(lambda: imresize(x, 1 / 4), args.repeats)

    print(
        f"device: {device_name('cpu')}, torch threads: {args.threads}, "
        f"python {platform.python_version()}"
    )
    print("2040x1356 RGB -> 510x339 (x4 down), median of", args.repeats)
    print(f"  Pillow BICUBIC (uint8)          {t_pil:7.1f} ms")
    print(f"  sr_kit imresize_uint8 (uint8)   {t_kit:7.1f} ms   ratio {t_kit / t_pil:.2f}x")
    print(f"  sr_kit imresize (float NCHW)    {t_float:7.1f} ms   ratio {t_float / t_pil:.2f}x")


if __name__ == "__main__":
    main()
