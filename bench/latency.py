"""Benchmark (not a test): inference latency of every network, training and deployed graph.

For each model (IMDN, RFDN, LMSWN, SAFDNet at x4 by default) and each graph (``train``: as built;
``deploy``: ``sr_kit.models.deploy``, which fuses LMSWN's asymmetric convs and is the same graph
for the others; on the CPU also ``onnx``: the deployed graph exported by ``sr_kit.export`` and run
by ONNX Runtime's CPU provider with the same thread count) the forward of one 320x180 LR image
(1x3x180x320, i.e. a 1280x720 output at x4) is timed with ``sr_kit.complexity.latency``: median,
10th and 90th percentile of ``--repeats`` timed calls after ``--warmup`` untimed ones, under
``torch.inference_mode()``.

* CPU: float32 (``--threads`` sets ``torch.set_num_threads``; default: torch's default).
* CUDA (when available): float32 and bfloat16 autocast (weights stay float32), each with and
  without ``channels_last``; the device is synchronised around every timed call.

The results go to a CSV written atomically (a temporary file, then ``os.replace``):
``results/latency_cpu.csv`` for the CPU run, ``results/latency_<gpu name>.csv`` for a GPU run,
or ``--out``. Columns: model, scale, graph, device, dtype, channels_last, lr_h, lr_w, median_ms,
p10_ms, p90_ms, repeats, params (of that graph), torch, threads, date (UTC), commit.

Run: ``.venv/bin/python bench/latency.py --threads 2`` (CPU, 1-2 minutes on 2 idle cores) or
``.venv/bin/python bench/latency.py --device cuda``.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

from sr_kit.complexity import count_params, device_name, latency
from sr_kit.experiment import utc_now
from sr_kit.fileio import atomic_path
from sr_kit.models import build_model, deploy

REPO = Path(__file__).resolve().parents[1]
MODELS = ("imdn", "rfdn", "lmswn", "safdnet")
COLUMNS = (
    "model",
    "scale",
    "graph",
    "device",
    "dtype",
    "channels_last",
    "lr_h",
    "lr_w",
    "median_ms",
    "p10_ms",
    "p90_ms",
    "repeats",
    "params",
    "torch",
    "threads",
    "date",
    "commit",
    "command",
)
# (warmup, repeats) per device: a CPU forward at 320x180 takes seconds on 2 cores, a GPU one ms.
DEFAULTS = {"cpu": (2, 10), "cuda": (10, 50)}


def git_commit() -> str:
    """Short hash of HEAD, or "unknown" outside a git checkout (or without git)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _load() -> str:
    """1-minute load average, or "" where the OS does not report one."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):
        return ""


def default_out(device: str) -> Path:
    if device == "cpu":
        return REPO / "results" / "latency_cpu.csv"
    slug = re.sub(r"[^a-z0-9]+", "-", device_name(device).lower()).strip("-") or "cuda"
    return REPO / "results" / f"latency_{slug}.csv"


def variants(device: str) -> list[tuple[torch.dtype | None, bool]]:
    """(autocast dtype, channels_last) pairs measured on ``device``."""
    if device == "cuda":
        return [(None, False), (None, True), (torch.bfloat16, False), (torch.bfloat16, True)]
    return [(None, False)]


def _onnx(model: torch.nn.Module, folder: Path, threads: int) -> torch.nn.Module:
    """The deployed graph exported to ONNX (checked at the default sizes), run by ONNX Runtime
    with the same thread count as torch."""
    from sr_kit.export import OnnxModel, export_onnx

    path = export_onnx(model, folder / f"{model.config.name}.onnx").path
    return OnnxModel(path, threads=threads)


def write_csv_atomic(rows: list[dict], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def print_table(rows: list[dict]) -> None:
    head = (
        f"{'model':<8} {'graph':<6} {'dtype':<20} {'cl':<3} {'median ms':>10} {'p10 ms':>10} "
        f"{'p90 ms':>10} {'params':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        cl = "y" if r["channels_last"] else "n"
        print(
            f"{r['model']:<8} {r['graph']:<6} {r['dtype']:<20} {cl:<3} {r['median_ms']:>10.1f} "
            f"{r['p10_ms']:>10.1f} {r['p90_ms']:>10.1f} {r['params']:>9,}"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--repeats", type=int, default=None, help="timed calls (cpu 10, cuda 50)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls (cpu 2, cuda 10)")
    p.add_argument(
        "--models",
        default=",".join(MODELS),
        help=f"comma-separated model names (default {','.join(MODELS)})",
    )
    p.add_argument("--scale", type=int, default=4, choices=(2, 3, 4))
    p.add_argument("--lr-size", type=int, nargs=2, default=(180, 320), metavar=("H", "W"))
    p.add_argument("--out", type=Path, default=None, help="CSV path (default under results/)")
    p.add_argument(
        "--no-onnx",
        dest="onnx",
        action="store_false",
        help="leave out the ONNX Runtime rows (CPU only; they need onnxruntime)",
    )
    args = p.parse_args(argv)
    args.models = [m.strip().lower() for m in args.models.split(",") if m.strip()]
    warmup, repeats = DEFAULTS[args.device]
    args.warmup = warmup if args.warmup is None else args.warmup
    args.repeats = repeats if args.repeats is None else args.repeats
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available on this machine; run with --device cpu", file=sys.stderr)
        return 2
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    dev_label = device_name(args.device)
    lr_h, lr_w = args.lr_size
    x = torch.rand(1, 3, lr_h, lr_w, generator=torch.Generator().manual_seed(0))
    common = {
        "torch": torch.__version__,
        "threads": threads,
        "date": utc_now(),
        "commit": git_commit(),
        "command": "python bench/latency.py " + shlex.join(sys.argv[1:] if argv is None else argv),
    }
    load = f", load average {_load()}" if _load() else ""
    print(
        f"{dev_label} | torch {torch.__version__} | {threads} threads{load} | "
        f"LR {lr_h}x{lr_w}, x{args.scale} | warmup {args.warmup}, repeats {args.repeats}",
        flush=True,
    )

    rows = []
    onnx_dir = Path(tempfile.mkdtemp(prefix="sr-kit-latency-"))
    for name in args.models:
        torch.manual_seed(0)
        model = build_model(name, scale=args.scale).eval()
        graphs = {"train": model, "deploy": deploy(model)}
        params_of = {g: count_params(n) for g, n in graphs.items()}
        if args.device == "cpu" and args.onnx:
            graphs["onnx"] = _onnx(model, onnx_dir, threads)
            params_of["onnx"] = params_of["deploy"]  # the exported deployed graph
        for graph, net in graphs.items():
            params = params_of[graph]
            for amp, channels_last in variants(args.device):
                lat = latency(
                    net,
                    x,
                    device=args.device,
                    warmup=args.warmup,
                    repeats=args.repeats,
                    dtype=amp,
                    channels_last=channels_last,
                )
                row = {
                    "model": name,
                    "scale": args.scale,
                    "graph": graph,
                    "device": dev_label,
                    "dtype": lat.dtype,
                    "channels_last": channels_last,
                    "lr_h": lr_h,
                    "lr_w": lr_w,
                    "median_ms": round(lat.median_ms, 3),
                    "p10_ms": round(lat.p10_ms, 3),
                    "p90_ms": round(lat.p90_ms, 3),
                    "repeats": lat.repeats,
                    "params": params,
                    **common,
                }
                rows.append(row)
                print(
                    f"  {name:<8} {graph:<6} {lat.dtype:<20} cl={channels_last!s:<5} "
                    f"median {lat.median_ms:9.1f} ms",
                    flush=True,
                )
        del graphs, model
        if args.device == "cuda":
            torch.cuda.empty_cache()

    shutil.rmtree(onnx_dir, ignore_errors=True)
    out = args.out if args.out is not None else default_out(args.device)
    write_csv_atomic(rows, out)
    print()
    print_table(rows)
    print(f"\nwrote {len(rows)} rows to {out}")
    if _load():  # CPU timings are only meaningful on an otherwise idle machine
        print(f"load average at the end: {_load()} (threads used: {threads})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
