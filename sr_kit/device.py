"""Devices: the one place that turns "auto", "cpu", "cuda:1" ... into a ``torch.device``.

Training, evaluation, upscaling, the ablation grid and the benchmarks all resolve their device
here, and result tables name the hardware with :func:`device_name`.

Not covered by a notebook (notebooks/00_start_here.ipynb explains quick mode, which picks the
device of the notebooks).
"""

from __future__ import annotations

import contextlib
import platform

import torch

__all__ = ["device_name", "resolve_device"]


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an explicit device must exist here.

    A bare "cuda" becomes the current CUDA device with its index ("cuda:0"), so it compares
    equal to the device a tensor reports.
    """
    if isinstance(name, str) and name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        else:
            return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {str(name)!r} asked for, but CUDA is not available here")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    if dev.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise RuntimeError(f"device {str(name)!r} asked for, but MPS is not available here")
    return dev


def device_name(device: str | torch.device = "cpu") -> str:
    """Human-readable name of the hardware behind ``device``, for result tables.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...

    Returns:
        The GPU name from ``torch.cuda.get_device_name`` (e.g. ``"NVIDIA H100 80GB HBM3"``),
        or ``"cpu: <model name>"`` from ``/proc/cpuinfo`` (``platform.processor()`` where that
        is unavailable), or ``str(device)`` for other device types.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    if dev.type != "cpu":
        return str(dev)
    name = ""
    with (
        contextlib.suppress(OSError),
        open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f,
    ):
        for line in f:
            if line.lower().startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"cpu: {name or platform.processor() or platform.machine() or 'unknown'}"
