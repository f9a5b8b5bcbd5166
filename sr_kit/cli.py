"""The ``sr-kit`` command: info, eval, data, train, ablate, results, import, export, upscale, ...

A thin front end: every option maps onto a library call, and model options go through the config
(``--set key=value``), so the CLI accepts exactly what a notebook can build.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .config import (
    ONNX_CHECK_SIZES,
    ONNX_OPSET,
    ONNX_TOLERANCE,
    ConfigError,
    apply_overrides,
    config_to_dict,
    get_config,
    switches,
)
from .rundir import model_file

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

    from .complexity import lr_size_for_output, model_cost, module_table
    from .models import build_model

    meta: dict = {}
    if args.checkpoint:
        if args.model or args.set:
            raise UserError("give either --checkpoint or --model/--set, not both")
        from .config import config_from_dict
        from .models.checkpoint import read_model_file

        data = read_model_file(model_file(args.checkpoint))
        meta = data.get("meta", {})
        cfg = config_from_dict(data["config"])  # counted on the training graph it rebuilds
        model = build_model(cfg)
    elif not (args.model and args.scale):
        raise UserError("info needs --model and --scale, or --checkpoint")
    else:
        cfg = _model_from_args(args)
        model = build_model(cfg)
    cost = model_cost(model, cfg.scale)
    params, params_deploy, macs = cost.params, cost.params_deploy, cost.macs
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
            **({"meta": meta} if meta else {}),
        }
        print(json.dumps(out, indent=2))
        return 0
    print(f"model            {cfg.name} x{cfg.scale}")
    if "imported" in meta:
        imp = meta["imported"]
        print(f"imported from    {imp['source_file']} (sha256 {imp['source_sha256'][:12]}..., "
              f"format {imp['format']})")  # fmt: skip
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


def _eval_model(args: argparse.Namespace):
    """The model to evaluate: from --checkpoint, or built from --model/--scale/--set."""
    from .models import build_model, load_model

    if args.checkpoint:
        if args.model or args.set:
            raise UserError("give either --checkpoint or --model/--set, not both")
        from .export import OnnxModel, is_onnx_path

        if is_onnx_path(args.checkpoint):
            _onnx_on_cpu(args.device)
            model = OnnxModel(args.checkpoint)
            if args.scale and args.scale != model.scale:
                raise UserError(f"{args.checkpoint} is a x{model.scale} model, not x{args.scale}")
            return model, model.scale
        path = model_file(args.checkpoint)
        model = load_model(path, device=args.device)
        if args.scale and args.scale != model.config.scale:
            raise UserError(f"{path} is a x{model.config.scale} model, not x{args.scale}")
        return model, model.config.scale
    if not (args.model and args.scale):
        raise UserError("eval needs --checkpoint, or --model and --scale")
    cfg = _model_from_args(args)
    return build_model(cfg), cfg.scale


def cmd_eval(args: argparse.Namespace) -> int:
    from .data import resolve_dataset
    from .evaluate import evaluate, summarize, write_csv_atomic

    model, scale = _eval_model(args)
    datasets = [resolve_dataset(d, scale, data_root=args.data_root) for d in args.data]
    per_image = evaluate(model, datasets, scale=scale, device=args.device, progress=True,
                         lpips=args.lpips)  # fmt: skip
    summary = summarize(per_image)
    formats = {"PSNR_Y": "{:.2f}".format, "SSIM_Y": "{:.4f}".format, "LPIPS": "{:.4f}".format}
    print(summary.to_string(index=False, formatters=formats))
    if args.csv:
        path = write_csv_atomic(per_image, args.csv)
        print(f"per-image results: {path}", file=sys.stderr)
    return 0


# The short training flags: each is an alias of `--set <key>=<value>` (flag dest -> override
# key). They are applied first, then the --set items in order, so a --set can refine them.
ALIASES: dict[str, str] = {
    "steps": "train.steps",
    "batch_size": "train.batch_size",
    "patch": "train.patch",
    "learning_rate": "train.learning_rate",
    "device": "train.device",
    "checkpoint_every": "train.checkpoint_every",
    "val_every": "train.val_every",
    "time_budget": "train.time_budget_s",
    "seed": "seed",
    "data": "data.train",
    "val": "data.val",
    "data_root": "data.root",
}


def run_from_args(args: argparse.Namespace):
    """The ``RunConfig`` of a train/ablate command line: preset, short flags, then ``--set``."""
    from .config import train_config
    from .runconfig import RunConfig

    run = RunConfig(model=get_config(args.model, scale=args.scale),
                    train=train_config(args.preset))  # fmt: skip
    items = [f"{key}={getattr(args, dest)}" for dest, key in ALIASES.items()
             if getattr(args, dest, None) is not None]  # fmt: skip
    if getattr(args, "eval", None):
        items.append("data.eval=" + ",".join(args.eval))
    if getattr(args, "compile", False):
        items.append("train.compile=true")
    return run.override([*items, *(args.set or [])])


def _init_distributed() -> bool:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    torch.distributed.init_process_group(backend=backend)
    return True


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from .experiment import run_training

    run = run_from_args(args)
    distributed = _init_distributed()
    try:
        out = run_training(run, run_dir=args.run_dir, resume=args.resume, registry=args.registry,
                           command=args.command_line)  # fmt: skip
    except KeyboardInterrupt:
        print("sr-kit: interrupted; the checkpoint was saved (continue with --resume)",
              file=sys.stderr)  # fmt: skip
        return 130
    finally:
        if distributed:
            torch.distributed.destroy_process_group()
    if out.run_id is None:  # a non-zero rank of a distributed run
        return 0
    print(f"run {out.run_id}: {out.steps} steps in {out.wall_s:.1f} s on {out.device} "
          f"({out.status}); model: {out.folder.model}")  # fmt: skip
    for m in out.metrics:
        print(f"  {m['dataset']:>12}  PSNR_Y {m['psnr_y']:.2f}  SSIM_Y {m['ssim_y']:.4f}")
    return 0


def _parse_grid(items: Sequence[str], run) -> dict[str, list[str]]:
    """``--grid key=v1,v2`` items -> {key: [v1, v2]}, each value checked against the run."""
    grid: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--grid {item!r} must look like key=v1,v2")
        key, values = (part.strip() for part in item.split("=", 1))
        grid[key] = [v.strip() for v in values.split(",")]
        for value in grid[key]:
            run.override([f"{key}={value}"])  # a bad key or value fails here, listing what is valid
    return grid


def cmd_ablate(args: argparse.Namespace) -> int:
    import pandas as pd

    from .ablation import ablate
    from .evaluate import write_csv_atomic

    run = run_from_args(args)
    grid = _parse_grid(args.grid, run)
    table = ablate(
        run, grid, seeds=args.seeds, registry=args.registry,
        mode="one-at-a-time" if args.one_at_a_time else "product", parallel=args.parallel,
        run_root=args.run_root, command=args.command_line,
    )  # fmt: skip
    cols = ["label", "n", "params", "params_deploy"] + [
        c for c in table.columns
        if c.startswith("psnr_y/") and c.endswith(("_mean", "_std", "_delta", "_ci95"))
    ] + ["within_noise"]  # fmt: skip
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(table[[c for c in cols if c in table.columns]].round(4).to_string(index=False))
    if args.csv:
        from .experiment import git_commit, utc_now

        provenance = {
            "model": run.model.name, "scale": run.model.scale, "steps": run.train.steps,
            "batch_size": run.train.batch_size, "patch": run.train.patch,
            "data": run.data.train, "commit": git_commit(), "date": utc_now(),
            "command": args.command_line, "base_run": run.to_json(),
        }  # fmt: skip
        write_csv_atomic(table.assign(**provenance), args.csv)
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    import pandas as pd

    from .evaluate import write_csv_atomic
    from .runs import Registry

    with Registry(args.registry) as reg:
        frame = reg.frame()
    if args.model:
        frame = frame[frame.model == args.model]
    if frame.empty:
        print(f"no runs in {args.registry or 'the default registry'}")
        return 0
    show = ["id", "created", "model", "scale", "seed", "status", "steps", "wall_s", "device",
            "params"] + [c for c in frame.columns if c.startswith("psnr_y/")]  # fmt: skip
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(frame[show].round(3).to_string(index=False))
    if args.csv:
        write_csv_atomic(frame, args.csv)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        from .plots import params_vs_psnr

        published = pd.read_csv(Path(__file__).resolve().parents[1] / "results" / "published.csv")
        runs = frame.assign(psnr_y=frame.get(f"psnr_y/{args.dataset}"))
        fig = params_vs_psnr(runs, published, dataset=args.dataset, scale=args.scale)
        fig.savefig(args.plot, dpi=120, bbox_inches="tight")
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from .complexity import count_params
    from .models.importers import import_weights

    net = import_weights(args.weights, args.out, scale=args.scale, model=args.model)
    prov = net.provenance
    print(f"{args.weights}: {prov['format']} ({prov['description']})", file=sys.stderr)
    shift = ", mean shift inside" if prov["original_mean_shift"] else ""
    print(f"  -> {net.config.name} x{net.config.scale}, {count_params(net):,} parameters; "
          f"original input range [0, {prov['original_input_range']:g}]{shift}",
          file=sys.stderr)  # fmt: skip
    print(args.out)
    return 0


def _onnx_on_cpu(device: str) -> None:
    if device != "cpu":
        raise UserError(
            f"an .onnx model runs on the CPU with ONNX Runtime; got --device {device} (use cpu, "
            "or the .pt model file for a GPU)"
        )


def cmd_upscale(args: argparse.Namespace) -> int:
    from .export import is_onnx_path
    from .upscale import upscale_file

    if is_onnx_path(args.checkpoint):
        _onnx_on_cpu(args.device)
    model_path = args.checkpoint if is_onnx_path(args.checkpoint) else model_file(args.checkpoint)
    out = upscale_file(model_path, args.input, args.output, tile=args.tile or None,
                       overlap=args.overlap, device=args.device)  # fmt: skip
    print(out)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_onnx, parse_size

    if args.checkpoint and (args.model or args.set):
        raise UserError("give either --checkpoint or --model/--set, not both")
    if args.checkpoint:
        source = args.checkpoint
    elif args.model and args.scale:
        from .models import build_model

        source = build_model(_model_from_args(args))  # untrained weights: for trying it out
        print(f"exporting an untrained {source.config.name} x{source.config.scale} "
              "(give --checkpoint for trained weights)", file=sys.stderr)  # fmt: skip
    else:
        raise UserError("export needs --checkpoint, or --model and --scale")
    sizes = [parse_size(s) for s in args.check_size] if args.check_size else None
    report = export_onnx(source, args.onnx, opset=args.opset, tolerance=args.tolerance,
                         **({"check_sizes": sizes} if sizes else {}))  # fmt: skip
    print(report.summary(), file=sys.stderr)
    print(report.path)
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


def cmd_exercises_release(args: argparse.Namespace) -> int:
    from .exercises.release import DEFAULT_SRC, release

    written = release(Path(args.src) if args.src else DEFAULT_SRC, Path(args.out))
    for path in written:
        print(path)
    print(f"{len(written)} student notebooks (solutions removed, outputs cleared)", file=sys.stderr)
    return 0


def cmd_exercises_grade(args: argparse.Namespace) -> int:
    from .exercises.grade import grade, print_table, write_csv
    from .exercises.release import DEFAULT_SRC

    missing = [p for p in args.submissions if not Path(p).is_file()]
    if missing:
        print(f"error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    grades = grade(
        args.submissions, Path(args.src) if args.src else DEFAULT_SRC, timeout=args.timeout
    )
    print_table(grades)
    if args.csv:
        write_csv(grades, args.csv)
        print(f"wrote {args.csv}", file=sys.stderr)
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    import tempfile

    from .reproduce import load_manifest, run_entry, select

    entries = select(load_manifest(), only=args.only, device=args.device)
    if args.list:
        for e in entries:
            took = f"{e.expected_s:.0f} s" if e.expected_s else "not timed"
            what = e.command or f"(no command: {e.note})"
            print(f"{e.name:28s} {e.device:5s} {took:>9s}  {', '.join(e.files)}")
            print(f"{'':28s} {what}")
        return 0
    failed = 0
    with tempfile.TemporaryDirectory(prefix="sr-kit-reproduce-") as tmp:
        for e in entries:
            out = run_entry(e, dry=args.dry_run, root=tmp if args.dry_run else None)
            print(f"{e.name:28s} {out.status:8s} {out.wall_s:7.1f} s  {out.reason[:300]}")
            failed += out.status == "failed"
    return 1 if failed else 0


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
            help="override any run setting (repeatable): a model switch (asym=false), a "
            "training setting (train.warmup_steps=0), data (data.eval=set5,set14) or seed=1",
        )

    def root_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--data-root",
            default=None,
            help="folder holding the named benchmark sets (default: $SR_KIT_DATA, else data/)",
        )

    sp = sub.add_parser("info", help="parameters, MACs at 720p, switches, per-module table")
    sp.add_argument("--model", help="model name, e.g. bicubic")
    sp.add_argument("--scale", type=int, choices=(2, 3, 4))
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override")
    sp.add_argument("--checkpoint", help="a model file or run folder (instead of --model)")
    sp.add_argument("--json", action="store_true", help="one JSON object instead of text")
    sp.set_defaults(func=cmd_info)

    sp = sub.add_parser("eval", help="PSNR/SSIM on Y (shave = scale) on one or more datasets")
    sp.add_argument("--checkpoint", help="a model file or run folder (instead of --model)")
    sp.add_argument("--model", help="model name, e.g. bicubic")
    sp.add_argument("--scale", type=int, choices=(2, 3, 4))
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override")
    sp.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="NAME_OR_DIR",
        help="a named set (set5, set14, ..., embedded) or an image folder (repeatable)",
    )
    sp.add_argument("--csv", help="write one row per image: dataset,image,scale,psnr_y,ssim_y")
    sp.add_argument("--device", default="cpu", help="torch device (default cpu)")
    sp.add_argument(
        "--lpips",
        action="store_true",
        help="also LPIPS (needs the lpips package and its weights; never downloads)",
    )
    root_arg(sp)
    sp.set_defaults(func=cmd_eval)

    def train_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--preset", choices=("quick-cpu", "brief-gpu", "paper"),
                        help="training settings to start from (default: TrainConfig)")  # fmt: skip
        helps = {
            "data": "training HR images: embedded (default), a named set or a folder",
            "val": "validation set during training: auto (default; the embedded val split when "
                   "training on embedded data), a set, or none",
            "device": "auto (cuda > mps > cpu), cpu, cuda, cuda:N",
            "time_budget": "stop (and save) after this many seconds",
        }  # fmt: skip
        for dest, key in ALIASES.items():
            if dest == "data_root":
                continue  # root_arg below
            # values stay text: the override parser reads them by the field's type
            what = helps.get(dest, "")
            sp.add_argument("--" + dest.replace("_", "-"), dest=dest, metavar="VALUE",
                            help=f"{what} (= --set {key}=VALUE)".lstrip())  # fmt: skip
        sp.add_argument("--eval", action="append", metavar="NAME_OR_DIR",
                        help="a set evaluated with the full protocol at the end (repeatable; "
                             "= --set data.eval=A,B)")  # fmt: skip
        sp.add_argument("--compile", action="store_true", help="= --set train.compile=true")
        sp.add_argument("--registry", help="run registry file (default: user data dir)")
        root_arg(sp)

    sp = sub.add_parser("train", help="a brief training run, recorded in the run registry")
    model_args(sp)
    train_args(sp)
    sp.add_argument("--run-dir", help="checkpoint folder (default runs/<model>-...)")
    sp.add_argument("--resume", action="store_true", help="continue the checkpoint in --run-dir")
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("ablate", help="switch grid x seeds, reusing finished runs")
    model_args(sp)
    train_args(sp)
    sp.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2",
                    help="switch values to try (repeatable)")  # fmt: skip
    sp.add_argument("--seeds", type=int, default=3, help="seeds per config (default 3)")
    sp.add_argument(
        "--one-at-a-time",
        action="store_true",
        help="change one switch at a time instead of every combination",
    )
    sp.add_argument("--parallel", type=int, default=1, help="trainings at once (processes)")
    sp.add_argument("--csv", help="write the summary table")
    sp.add_argument(
        "--run-root",
        default="runs/ablation",
        help="parent folder of the runs' checkpoints (default runs/ablation)",
    )
    sp.set_defaults(func=cmd_ablate)

    sp = sub.add_parser("results", help="the run registry as a table, CSV or plot")
    sp.add_argument("--registry", help="run registry file (default: user data dir)")
    sp.add_argument("--model", help="only this model")
    sp.add_argument("--csv", help="write every run and field")
    sp.add_argument("--plot", help="params vs PSNR with the published points (PNG/PDF/SVG)")
    sp.add_argument("--dataset", default="Set5", help="dataset of the plot (default Set5)")
    sp.add_argument("--scale", type=int, default=4, help="scale of the plot (default 4)")
    sp.set_defaults(func=cmd_results)

    sp = sub.add_parser("import", help="import the authors' released weights as a kit model file")
    sp.add_argument("weights", help="the released .pth/.pt file (read with weights_only=True)")
    sp.add_argument("out", help="the kit model file to write (with provenance)")
    sp.add_argument("--scale", type=int, choices=(2, 3, 4),
                    help="which scale of a multi-scale file (e.g. CARN-M)")  # fmt: skip
    sp.add_argument("--model", help="restrict recognition to this kit model name")
    sp.set_defaults(func=cmd_import)

    sp = sub.add_parser("upscale", help="upscale one image of any size (tiled)")
    sp.add_argument("--checkpoint", required=True, help="model file or run folder")
    sp.add_argument("input")
    sp.add_argument("output")
    sp.add_argument("--tile", type=int, default=256, help="LR tile size (0: whole image)")
    sp.add_argument("--overlap", type=int, default=16, help="LR context pixels per tile side")
    sp.add_argument("--device", default="cpu")
    sp.set_defaults(func=cmd_upscale)

    sp = sub.add_parser("export", help="the deployed graph as ONNX, checked with ONNX Runtime")
    sp.add_argument("--checkpoint", help="a kit model file or run folder")
    sp.add_argument("--model", help="or a model name (untrained weights), with --scale")
    sp.add_argument("--scale", type=int, choices=(2, 3, 4))
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override")
    sp.add_argument("--onnx", required=True, help="the .onnx file to write")
    sizes = ", ".join(f"{h}x{w}" for h, w in ONNX_CHECK_SIZES)
    sp.add_argument("--opset", type=int, default=ONNX_OPSET, help=f"(default {ONNX_OPSET})")
    sp.add_argument(
        "--check-size",
        action="append",
        metavar="HxW",
        help=f"LR size ONNX Runtime is checked at (repeatable; default {sizes})",
    )
    sp.add_argument("--tolerance", type=float, default=ONNX_TOLERANCE,
                    help="largest max |ONNX Runtime - PyTorch| accepted on outputs in [0, 1] "
                         f"(default {ONNX_TOLERANCE:g})")  # fmt: skip
    sp.set_defaults(func=cmd_export)

    sp = sub.add_parser("exercises", help="classroom exercises (instructors)")
    esub = sp.add_subparsers(dest="exercises_command", required=True)
    er = esub.add_parser("release", help="write the student versions of the exercise notebooks")
    er.add_argument("--out", required=True, help="folder for the student notebooks")
    er.add_argument("--src", help="folder of *_solution.ipynb (default notebooks/exercises)")
    er.set_defaults(func=cmd_exercises_release)
    eg = esub.add_parser(
        "grade",
        help="run filled-in student notebooks with the hidden tests and print a score table",
    )
    eg.add_argument("submissions", nargs="+", help="student notebooks (.ipynb)")
    eg.add_argument("--csv", help="also write the score table to this CSV file")
    eg.add_argument("--src", help="folder of *_solution.ipynb (default notebooks/exercises)")
    eg.add_argument("--timeout", type=float, default=300, help="seconds per notebook (default 300)")
    eg.set_defaults(func=cmd_exercises_grade)

    sp = sub.add_parser("reproduce", help="re-make the committed results (results/manifest.toml)")
    sp.add_argument("--list", action="store_true", help="list the entries and their commands")
    sp.add_argument("--only", metavar="NAME", help="just this entry")
    sp.add_argument("--device", choices=("cpu", "cuda", "none"), help="entries of one device class")
    sp.add_argument(
        "--dry-run",
        action="store_true",
        help="every entry, tiny settings, into a temporary folder (CI runs this)",
    )
    sp.set_defaults(func=cmd_reproduce)

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
    argv = list(argv) if argv is not None else sys.argv[1:]
    args = parser.parse_args(argv)
    args.command_line = "sr-kit " + shlex.join(argv)  # recorded with every run
    from .data import DatasetError, ImageError
    from .export import ExportError
    from .metrics import LpipsUnavailable
    from .models import CheckpointError
    from .models.importers import ImportError_
    from .reproduce import ReproduceError

    try:
        _threads()
        return args.func(args)
    except (UserError, ConfigError, DatasetError, ImageError, CheckpointError, FileExistsError,
            FileNotFoundError, ValueError, LpipsUnavailable, ImportError_,
            ReproduceError, ExportError) as err:  # fmt: skip
        print(f"sr-kit: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `sr-kit info | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
