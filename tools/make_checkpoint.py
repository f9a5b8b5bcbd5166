"""Train a network and commit-ready files: the deployed graph in float16 plus its provenance.

    python tools/make_checkpoint.py --model lmswn --scale 4 --preset quick-cpu --steps 3000 \\
        --eval embedded --eval set5 --eval set14 --data-root ../shared/data/benchmarks

writes ``checkpoints/<model>_x<s>_<data>_<device>.pt`` (``sr_kit.models.load_model`` reads it)
and a ``.json`` beside it with the command, commit, device, torch version, date, training
settings, steps, wall time and the evaluation results. Files stay well under 3.5 MB.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import tempfile
from pathlib import Path

import torch

from sr_kit.complexity import count_params, device_name
from sr_kit.config import get_config, train_config
from sr_kit.experiment import git_commit, run_training, utc_now
from sr_kit.models import deploy, load_model, save_model
from sr_kit.runconfig import DataConfig, RunConfig

NOTE = (
    "metrics: the float32 weights at the end of training; metrics_shipped: this file (float16). "
    "Protocol: Y channel, shave = scale, MATLAB bicubic LR, uint8 SR"
)


def shipped_metrics(path: Path, eval_sets: list[str], data_root: str | None) -> list[dict]:
    """Evaluate the file as shipped (float16 deployed weights, loaded back as float32)."""
    from sr_kit.data import resolve_dataset
    from sr_kit.evaluate import evaluate

    model = load_model(path)
    sets = [resolve_dataset(s, model.config.scale, data_root=data_root) for s in eval_sets]
    table = evaluate(model, sets, scale=model.config.scale, progress=False)
    return [
        {"dataset": name, "psnr_y": round(float(g.psnr_y.mean()), 4),
         "ssim_y": round(float(g.ssim_y.mean()), 5), "images": len(g)}
        for name, g in table.groupby("dataset", sort=False)
    ]  # fmt: skip


def graph_description(cfg) -> str:
    """What deploying changed in this network (SAFDNet, IMDN and RFDN have nothing to fuse)."""
    from sr_kit.blocks import AsymConv
    from sr_kit.models import build_model

    fused = sum(isinstance(m, AsymConv) for m in build_model(cfg).modules())
    what = f"{fused} AsymConv fused into 3x3 convs" if fused else "nothing to fuse"
    return f"deployed graph ({what}), float16 weights"


def verify(path: Path, eval_sets: list[str], data_root: str | None) -> None:
    """Add (or refresh) ``metrics_shipped`` and the graph text in an existing checkpoint's JSON."""
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["metrics_shipped"] = shipped_metrics(path, eval_sets, data_root)
    meta["graph"] = graph_description(load_model(path).config)
    meta["note"] = NOTE
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta["metrics_shipped"], indent=2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--verify", help="only evaluate this existing checkpoint and update its JSON")
    p.add_argument("--model")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--preset", default="quick-cpu")
    p.add_argument("--steps", type=int)
    p.add_argument("--data", default="embedded")
    p.add_argument("--eval", action="append", default=None)
    p.add_argument("--data-root")
    p.add_argument("--threads", type=int)
    p.add_argument("--out-dir", default="checkpoints")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.verify:
        verify(Path(args.verify), args.eval or ["embedded"], args.data_root)
        return
    if not args.model:
        p.error("--model is required (or --verify)")
    overrides = {"steps": args.steps} if args.steps else {}
    run = RunConfig(
        model=get_config(args.model, scale=args.scale),
        train=train_config(args.preset, **overrides),
        data=DataConfig(train=args.data, eval=tuple(args.eval or ()), root=args.data_root),
    )
    cfg, train = run.model, run.train
    with tempfile.TemporaryDirectory() as tmp:
        out = run_training(
            run, run_dir=Path(tmp) / "run", registry=Path(tmp) / "runs.sqlite",
            command="python tools/make_checkpoint.py " + shlex.join(sys.argv[1:]),
        )  # fmt: skip
        model = load_model(out.folder.model)
    fused = deploy(model)
    fused.config = model.config
    device = out.device.split(":")[0]
    stem = f"{args.model}_x{args.scale}_{args.data}_{device}"
    provenance = {
        "file": f"{stem}.pt",
        "model": args.model, "scale": args.scale, "config": dataclasses.asdict(cfg),
        "graph": graph_description(cfg),
        "params_train": count_params(model), "params_deploy": count_params(fused),
        "data": args.data, "train": dataclasses.asdict(train), "run": out.run.to_dict(),
        "steps": out.steps, "wall_s": round(out.wall_s, 1), "status": out.status,
        "device": device_name(out.device), "torch": torch.__version__, "commit": git_commit(),
        "command": "python tools/make_checkpoint.py " + shlex.join(sys.argv[1:]),
        "date": utc_now(),
        "metrics": out.metrics,
        "note": NOTE,
    }  # fmt: skip
    out_dir = Path(args.out_dir)
    save_model(fused, out_dir / f"{stem}.pt", graph="deploy", half=True, meta=provenance)
    (out_dir / f"{stem}.json").write_text(json.dumps(provenance, indent=2) + "\n")
    verify(out_dir / f"{stem}.pt", args.eval or ["embedded"], args.data_root)
    print(f"wrote {out_dir / stem}.pt/.json")


if __name__ == "__main__":
    main()
