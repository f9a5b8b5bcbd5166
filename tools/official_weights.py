"""Measure the authors' released weights under the kit's protocol: results/official_weights.csv.

    python tools/official_weights.py --weights ../shared/weights \\
        --data-root ../shared/data/benchmarks --threads 2

imports every ``*.pth``/``*.pt`` file of ``--weights`` (``sr-kit import``), evaluates each
network at each scale the file holds on Set5 and Set14 (required) and on B100, Urban100 and
Manga109 when ``--data-root`` has them, and writes one row per (file, scale, dataset) with the
published figure beside it, parameters, MACs at 720p, CPU latency and provenance (file sha256,
device, torch, commit, date, command). The weights themselves are never copied into the project.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from sr_kit.evaluate import write_csv_atomic
from sr_kit.official import OFFICIAL_CSV, measure_official


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True,
                   help="folder of the authors' released files, or one such file")  # fmt: skip
    p.add_argument("--data-root", help="folder with Set5/, Set14/ (and B100/ ... if present)")
    p.add_argument(
        "--out", default=str(OFFICIAL_CSV), help=f"CSV to write (default {OFFICIAL_CSV})"
    )
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--no-latency", action="store_true", help="skip the CPU latency column")
    args = p.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    # a folder of released files, or one file (the reproduce dry run measures one)
    weights = [args.weights] if Path(args.weights).is_file() else args.weights
    table = measure_official(
        weights,
        data_root=args.data_root,
        latency=not args.no_latency,
        threads=args.threads,
        command="python tools/official_weights.py " + shlex.join(argv),
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    write_csv_atomic(table, args.out)
    show = ["method", "scale", "dataset", "psnr_y", "ssim_y", "published_psnr", "delta_psnr"]
    print(table[show].round(4).to_string(index=False))
    print(f"{len(table)} rows: {Path(args.out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
