"""The ``sr-kit`` command: ``info``, ``eval`` and ``data`` (more sub-commands come with training).

A thin front end: every option maps onto a library call, and model options go through the config
(``--set key=value``), so the CLI accepts exactly what a notebook can build.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from . import __version__
from .config import ConfigError, apply_overrides, config_to_dict, get_config, switches

__all__ = ["main"]


class UserError(Exception):
    """An error caused by the command line or the input files: printed without a traceback."""


def _threads() -> None:
    # Notebooks, tests and CI pin the thread count (oversubscribing 2 cores is 2-7x slower).
    n = os.environ.get("SR_KIT_THREADS")
    if n:
        import torch

        try:
            torch.set_num_threads(int(n))
        except ValueError:
            raise UserError(f"SR_KIT_THREADS must be a positive integer, got {n!r}") from None


def _model_from_args(args: argparse.Namespace):
    cfg = get_config(args.model, scale=args.scale)
    return apply_overrides(cfg, args.set or [])


def cmd_info(args: argparse.Namespace) -> int:
    import torch

    from .complexity import count_params, lr_size_for_output, macs_at, module_table
    from .models import build_model, deploy

    cfg = _model_from_args(args)
    model = build_model(cfg)
    params = count_params(model)
    params_deploy = count_params(deploy(model))
    macs = macs_at(model, cfg.scale)
    sw = switches(cfg)
    if args.json:
        out = {
            "model": cfg.name,
            "scale": cfg.scale,
            "params": params,
            "params_deploy": params_deploy,
            "macs_720p": macs,
            "macs_convention": "fvcore: one multiply-add = one MAC; output 1280x720",
            "switches": {k: {"value": v["value"], "choices": v["choices"]} for k, v in sw.items()},
            "config": config_to_dict(cfg),
        }
        print(json.dumps(out, indent=2))
        return 0
    print(f"model            {cfg.name} x{cfg.scale}")
    print(f"parameters       {params:,} (training graph)")
    print(f"parameters       {params_deploy:,} (deployed graph)")
    print(f"MACs at 720p     {macs / 1e9:.2f} G  (fvcore; one multiply-add = one MAC)")
    if sw:
        print("switches:")
        for name, s in sw.items():
            value = f"{s['value']:.4g}" if isinstance(s["value"], float) else s["value"]
            choices = ", ".join(
                f"{c:.4g}" if isinstance(c, float) else str(c) for c in s["choices"]
            )
            print(f"  {name}={value}  (choices: {choices})")
            print(f"      {s['doc']}")
            print(f"      tests: {s['claim'] or 'no paper claim (an extra switch)'}")
    else:
        print("switches         none")
    table = module_table(model, torch.zeros(1, 3, *lr_size_for_output(cfg.scale)))
    if len(table) > 1:
        table = table.assign(
            macs=(table.macs / 1e9).round(3),
            params_pct=table.params_pct.round(1),
            macs_pct=table.macs_pct.round(1),
        ).rename(columns={"macs": "GMACs", "params_pct": "params %", "macs_pct": "MACs %"})
        print()
        print(table.to_string(index=False))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .data import resolve_dataset
    from .evaluate import evaluate, summarize, write_csv_atomic
    from .models import build_model

    cfg = _model_from_args(args)
    model = build_model(cfg)
    datasets = [resolve_dataset(d, cfg.scale, data_root=args.data_root) for d in args.data]
    per_image = evaluate(model, datasets, scale=cfg.scale, device=args.device, progress=True)
    summary = summarize(per_image)
    print(
        summary.to_string(
            index=False, formatters={"PSNR_Y": "{:.2f}".format, "SSIM_Y": "{:.4f}".format}
        )
    )
    if args.csv:
        path = write_csv_atomic(per_image, args.csv)
        print(f"per-image results: {path}", file=sys.stderr)
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    from .data import data_root, list_datasets

    print(f"data root: {data_root(args.data_root)}")
    rows = list_datasets(args.data_root)
    width = max(len(r["key"]) for r in rows)
    for r in rows:
        state = "present" if r["present"] else "missing"
        print(f"  {r['key']:<{width}}  {r['found']:>4}/{r['expected']:<4} {state:8} {r['path']}")
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from .data import check_dataset

    report = check_dataset(args.name, data_root=args.data_root)
    checksums = {None: "no manifest", True: "ok", False: "MISMATCH"}[report.checksum_ok]
    print(f"{report.key}: {report.found}/{report.expected} images at {report.path}")
    print(f"checksums: {checksums}")
    for p in report.problems:
        print(f"  problem: {p}")
    return 0 if report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and documentation)."""
    p = argparse.ArgumentParser(prog="sr-kit", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"sr-kit {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def model_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--model", required=True, help="model name, e.g. bicubic")
        sp.add_argument("--scale", type=int, required=True, choices=(2, 3, 4))
        sp.add_argument(
            "--set",
            action="append",
            metavar="KEY=VALUE",
            help="override a config field / ablation switch (repeatable), e.g. --set asym=false",
        )

    def root_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--data-root",
            default=None,
            help="folder holding the named benchmark sets (default: $SR_KIT_DATA, else data/)",
        )

    sp = sub.add_parser("info", help="parameters, MACs at 720p, switches, per-module table")
    model_args(sp)
    sp.add_argument("--json", action="store_true", help="one JSON object instead of text")
    sp.set_defaults(func=cmd_info)

    sp = sub.add_parser("eval", help="PSNR/SSIM on Y (shave = scale) on one or more datasets")
    model_args(sp)
    sp.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="NAME_OR_DIR",
        help="a named set (set5, set14, ..., embedded) or an image folder (repeatable)",
    )
    sp.add_argument("--csv", help="write one row per image: dataset,image,scale,psnr_y,ssim_y")
    sp.add_argument("--device", default="cpu", help="torch device (default cpu)")
    root_arg(sp)
    sp.set_defaults(func=cmd_eval)

    sp = sub.add_parser("data", help="list or check the named datasets")
    dsub = sp.add_subparsers(dest="data_command", required=True)
    dl = dsub.add_parser("list", help="the registered sets and whether they are present")
    root_arg(dl)
    dl.set_defaults(func=cmd_data_list)
    dc = dsub.add_parser("check", help="count and checksum the files of one set")
    dc.add_argument("name")
    root_arg(dc)
    dc.set_defaults(func=cmd_data_check)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sr-kit`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from .data import DatasetError, ImageError

    try:
        _threads()
        return args.func(args)
    except (UserError, ConfigError, DatasetError, ImageError, FileNotFoundError, ValueError) as err:
        print(f"sr-kit: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `sr-kit info | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
