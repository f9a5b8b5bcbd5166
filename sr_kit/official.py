"""The authors' released weights, measured by the kit under one protocol.

``measure_official`` imports every released file in a folder (``sr_kit.models.importers``),
evaluates each network at each scale the file holds on the benchmark sets the user has, and
returns one row per (file, scale, dataset) with the published figure of the same network beside
it (``results/published.csv``), its cost and its CPU latency. ``tools/official_weights.py`` writes
the table to ``results/official_weights.csv``; notebooks 01, 12 and 13 read it.

Explained in notebooks/13_the_family.ipynb ("The authors' weights, re-measured under one
protocol").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import ModelConfig

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BENCHMARKS",
    "COLUMNS",
    "EXCEPTIONS_CSV",
    "OFFICIAL_CSV",
    "PUBLISHED_CSV",
    "measure_official",
    "method_name",
    "released_files",
]

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
PUBLISHED_CSV = RESULTS / "published.csv"
OFFICIAL_CSV = RESULTS / "official_weights.csv"
EXCEPTIONS_CSV = RESULTS / "official_exceptions.csv"

# The five standard benchmark sets, in the order the literature's tables use.
BENCHMARKS = ("set5", "set14", "b100", "urban100", "manga109")
LATENCY_LR = (180, 320)  # LR input of the CPU latency: a 1280x720 output at x4

COLUMNS = [
    "method", "model", "scale", "dataset", "images", "psnr_y", "ssim_y",
    "published_psnr", "published_ssim", "delta_psnr", "delta_ssim",
    "params", "macs_720p_g", "cpu_latency_ms", "latency_lr", "threads",
    "source_file", "source_sha256", "format", "original_input_range", "original_mean_shift",
    "protocol", "device", "torch", "commit", "date", "command",
]  # fmt: skip

# Display names as the literature's tables write them (results/published.csv's `method`).
_NAMES = {
    "imdn": "IMDN",
    "rfdn": "RFDN",
    "carn": "CARN",
    "carn_m": "CARN-M",
    "smsr": "SMSR",
    "rlfn": "RLFN",
    "rlfn_s": "RLFN-S",
    "bsrn": "BSRN",
    "bsrn_s": "BSRN-S",
    "dlgsanet": "DLGSANet-light",
    "dlgsanet_tiny": "DLGSANet-tiny",
    "lmswn": "LMSWN",
    "safdnet": "SAFDNet",
    "bicubic": "Bicubic",
}


def method_name(cfg: ModelConfig) -> str:
    """The literature's name of a network config (E-RFDN for RFDN at 50 channels, 4 blocks)."""
    if cfg.name == "rfdn" and (cfg.channels, cfg.num_blocks) == (50, 4):
        return "E-RFDN"
    return _NAMES.get(cfg.name, cfg.name)


def released_files(folder: str | os.PathLike) -> list[Path]:
    """The weight files (``*.pth``, ``*.pt``) of a folder, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of released weights")
    return sorted(p for p in folder.iterdir() if p.suffix in (".pth", ".pt") and p.is_file())


def _published(table: pd.DataFrame | None, method: str, scale: int, dataset: str):
    if table is None:
        return None, None
    row = table[(table.method == method) & (table.scale == scale) & (table.dataset == dataset)]
    if row.empty:
        return None, None
    return float(row.psnr.iloc[0]), float(row.ssim.iloc[0])


def measure_official(
    weights: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    data_root: str | os.PathLike | None = None,
    datasets: Sequence[str] = BENCHMARKS,
    require: Sequence[str] = ("set5", "set14"),
    latency: bool = True,
    threads: int | None = None,
    command: str = "",
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Import and evaluate released weights; one row per (file, scale, dataset).

    Args:
        weights: A folder of released files, or an iterable of files.
        data_root: Where the named benchmark sets are (see ``sr_kit.data``).
        datasets: Sets to evaluate; those in ``require`` must be present, the others are
            evaluated when the user has them and skipped otherwise.
        latency: Time one CPU forward of a 320x180 LR image (median of 5 after 1 warm-up).
        threads: ``torch.set_num_threads`` for the run (recorded in the table).
        command: The command line, recorded in every row.
        progress: Called with a short line per (file, scale).
    """
    import pandas as pd
    import torch

    from .complexity import count_params, device_name, macs_at
    from .complexity import latency as time_forward
    from .data import DatasetError, resolve_dataset
    from .evaluate import PROTOCOL, evaluate, summarize
    from .experiment import git_commit, utc_now
    from .models.importers import detect_format, import_weights, load_released

    if threads:
        torch.set_num_threads(threads)
    files = (
        released_files(weights)
        if isinstance(weights, (str, os.PathLike))
        else [Path(p) for p in weights]
    )
    published = pd.read_csv(PUBLISHED_CSV) if PUBLISHED_CSV.is_file() else None
    stamp = {
        "protocol": PROTOCOL,
        "device": device_name("cpu"),
        "torch": torch.__version__.split("+")[0],
        "commit": git_commit(),
        "date": utc_now(),
        "command": command,
        "threads": torch.get_num_threads(),
    }
    rows: list[dict[str, Any]] = []
    for path in files:
        state = load_released(path)
        for scale in detect_format(state, source=str(path)).scales(state):
            net = import_weights(path, scale=scale)
            cfg, prov = net.config, net.provenance
            method = method_name(cfg)
            if progress:
                progress(f"{path.name}: {method} x{scale}")
            sets = []
            for name in datasets:
                try:
                    sets.append(resolve_dataset(name, scale, data_root=data_root))
                except DatasetError:
                    if name in require:
                        raise
            summary = summarize(evaluate(net, sets, scale=scale, progress=False))
            macs = macs_at(net, scale) / 1e9
            ms = float("nan")
            if latency:
                x = torch.rand(1, 3, *LATENCY_LR)
                ms = time_forward(net, x, warmup=1, repeats=5).median_ms
            for rec in summary.itertuples(index=False):
                pub_psnr, pub_ssim = _published(published, method, scale, rec.dataset)
                rows.append(
                    {
                        "method": method,
                        "model": cfg.name,
                        "scale": scale,
                        "dataset": rec.dataset,
                        "images": rec.images,
                        "psnr_y": rec.PSNR_Y,
                        "ssim_y": rec.SSIM_Y,
                        "published_psnr": pub_psnr,
                        "published_ssim": pub_ssim,
                        "delta_psnr": None if pub_psnr is None else rec.PSNR_Y - pub_psnr,
                        "delta_ssim": None if pub_ssim is None else rec.SSIM_Y - pub_ssim,
                        "params": count_params(net),
                        "macs_720p_g": macs,
                        "cpu_latency_ms": ms,
                        "latency_lr": f"{LATENCY_LR[1]}x{LATENCY_LR[0]}",
                        "source_file": prov["source_file"],
                        "source_sha256": prov["source_sha256"],
                        "format": prov["format"],
                        "original_input_range": prov["original_input_range"],
                        "original_mean_shift": prov["original_mean_shift"],
                        **stamp,
                    }
                )
    return pd.DataFrame(rows, columns=COLUMNS)
