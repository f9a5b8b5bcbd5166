"""The GPU campaign, in chunks that each fit a short GPU window and leave results behind.

    PYTHONPATH=. python3 -m sr_kit.campaign CHUNK [--device cuda] [--dry-run] [--skip-smoke]
        [--data-root DIR] [--out results] [--parallel N]

Chunks (each one command, sized to finish in 8 minutes of wall time on one H100/H200-class GPU;
the sizes are estimates until a GPU run measures them, see ``CHUNKS``):

- ``smoke`` (run first by every chunk unless ``--skip-smoke``): every network forward and
  backward with bf16 autocast and channels_last, the kit's five networks also through
  ``torch.compile``; the MATLAB-compatible resize on the device against the CPU; checkpoint
  save, simulated kill and resume; one protocol evaluation. -> ``smoke_<device>.csv``.
- ``brief``: ``brief-gpu`` at x4 for every trainable network with a fixed step budget (no wall
  clock budget, so runs compare), evaluated on Set5 and Set14 (B100, Urban100, Manga109 when
  present) -> ``brief_x4_<device>.csv`` and deployed float16 checkpoints in ``checkpoints/``.
- ``claims-lmswn``, ``claims-safdnet``: the one-at-a-time claim grids x 3 seeds at x4, packed on
  one device with ``ablate(parallel=N)`` -> ``ablation_<net>_x4_<device>.csv``.
- ``bench``: fit vs bare loop (eager and compiled), latency, runs per hour against concurrent
  runs, stacked seeds against separate runs -> ``train_throughput_<device>.csv``,
  ``latency_<device>.csv``, ``ablation_parallel_<device>.csv``, ``stacked_<device>.csv``.

``--dry-run`` runs the same code with tiny settings into ``--out`` (CI runs every chunk's dry
run on the CPU). Every table records device, torch, commit, date, command and, for quality
figures, the protocol. Results of chunks run in different sessions merge: each CSV is keyed by
config, seed, training settings and device. Not covered by a notebook (notebooks 11 and 12
show the ``*_cuda.csv`` tables when they exist).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["CHUNKS", "main", "run_chunk"]

REPO = Path(__file__).resolve().parents[1]
KIT = ("imdn", "rfdn", "lmswn", "safdnet")  # compiled in smoke: the kit's own networks
# The one-at-a-time claim grids of notebook 11 (every switch value that tests a claim).
GRIDS = {
    "lmswn": ["head=conv3,dilated", "asym=false", "distill=fdc,split", "weights=fixed,none"],
    "safdnet": ["global_attn=none,dw3x3,pw", "compress_ratio=1,4", "shift_ratio=0",
                "distill=false"],
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One campaign chunk and its sizing assumption."""

    name: str
    run: Callable[[argparse.Namespace], list[Path]]
    budget: str  # what it is sized for, stated until a GPU measures it


def _stamp(rows: list[dict[str, Any]], device: str, command: str) -> list[dict[str, Any]]:
    import torch

    from .device import device_name
    from .experiment import git_commit, utc_now

    extra = {"device": device_name(device), "torch": torch.__version__, "commit": git_commit(),
             "date": utc_now(), "command": command}  # fmt: skip
    return [{**r, **extra} for r in rows]


def _write(rows: list[dict[str, Any]], path: Path, key: list[str]) -> Path:
    """Merge ``rows`` into the table at ``path``: a row with the same ``key`` (and device) is
    replaced, every other row is kept, so chunks run in different sessions add up."""
    import pandas as pd

    from .evaluate import write_csv_atomic

    new = pd.DataFrame(rows)
    cols = [*key, "device"]
    if path.exists():
        old = pd.read_csv(path)
        if set(cols) <= set(old.columns):
            keys = set(map(tuple, new[cols].astype(str).to_numpy()))
            keep = [tuple(r) not in keys for r in old[cols].astype(str).to_numpy()]
            new = pd.concat([old[keep], new], ignore_index=True)
    return write_csv_atomic(new, path)


def _train(dry: bool, device: str, **over: Any):
    from .config import train_config

    if dry:
        return train_config("quick-cpu", steps=2, batch_size=2, patch=12, warmup_steps=0,
                            val_every=0, checkpoint_every=0, device=device)  # fmt: skip
    # a fixed step budget, not a wall clock one, so that runs compare
    return train_config("brief-gpu", time_budget_s=0.0, device=device, **over)


# -- smoke -------------------------------------------------------------------------------------


def smoke(args: argparse.Namespace) -> list[Path]:
    """Every CUDA code path once, in about a minute; each check is one row (ok or the error)."""
    import torch

    from .config import get_config
    from .device import resolve_device
    from .models import MODELS, build_model

    dev = resolve_device(args.device)
    rows = []

    def check(name: str, fn: Callable[[], str]) -> None:
        t0 = time.perf_counter()
        try:
            detail, status = fn(), "ok"
        except Exception as err:  # recorded, so one broken path does not hide the others
            detail, status = f"{type(err).__name__}: {err}"[:300], "failed"
        rows.append({"check": name, "status": status, "detail": detail,
                     "seconds": round(time.perf_counter() - t0, 2)})  # fmt: skip
        print(f"smoke {name:28s} {status:6s} {detail[:80]}", file=sys.stderr, flush=True)

    names = [n for n in sorted(MODELS) if n != "bicubic"]
    size = 12 if args.dry_run else 48
    for name in names:

        def fwd_bwd(name: str = name, compiled: bool = False) -> str:
            torch.manual_seed(0)
            net = (
                build_model(get_config(name, scale=4)).to(dev).to(memory_format=torch.channels_last)
            )
            net = torch.compile(net) if compiled else net
            x = torch.rand(2, 3, size, size, device=dev).contiguous(
                memory_format=torch.channels_last
            )
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                y = net(x).float()
            y.mean().backward()
            ok = all(p.grad is None or torch.isfinite(p.grad).all() for p in net.parameters())
            if not ok:
                raise RuntimeError("non-finite gradient")
            return f"out {tuple(y.shape)}"

        check(f"{name} bf16 channels_last", fwd_bwd)
        if name in KIT and not args.dry_run:
            check(f"{name} compiled", lambda name=name: fwd_bwd(name, compiled=True))

    def resize() -> str:
        from .imresize import imresize

        x = torch.rand(1, 3, 37, 53, dtype=torch.float64)
        cpu = imresize(x, 1 / 4)
        there = imresize(x.to(dev), 1 / 4).cpu()
        err = float((cpu - there).abs().max())
        if err > 1e-9:
            raise RuntimeError(f"device result differs from the CPU by {err:.3g}")
        return f"max |device - cpu| = {err:.2g} (float64)"

    check("imresize device vs cpu", resize)

    def resume() -> str:
        import tempfile

        from .data import embedded_images
        from .experiment import train_sr
        from .sampler import PatchSampler

        cfg = _train(True, str(dev))
        cfg = dataclasses.replace(cfg, steps=6, checkpoint_every=3, amp=dev.type == "cuda",
                                  channels_last=dev.type == "cuda")  # fmt: skip
        images = list(embedded_images("train").values())[:3]
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = Path(tmp) / "checkpoint.pt"

            def killed(record: dict) -> None:
                if record["step"] == 4:
                    raise KeyboardInterrupt  # a kill after the checkpoint at step 3

            torch.manual_seed(0)
            net = build_model("rfdn", scale=4, channels=8, num_blocks=1)
            src = PatchSampler(images, 4, cfg.patch, device=dev, seed=0)
            with contextlib.suppress(KeyboardInterrupt):  # fit saved at step 4, then re-raised
                train_sr(net, src, cfg, checkpoint=ckpt, progress=False, callbacks=[killed],
                         log_every=1)  # fmt: skip
            src = PatchSampler(images, 4, cfg.patch, device=dev, seed=0)
            res = train_sr(net, src, cfg, checkpoint=ckpt, resume=True, progress=False,
                           log_every=1)  # fmt: skip
            if res.steps != 6:
                raise RuntimeError(f"resumed run ended at step {res.steps}, not 6")
        return "killed at step 4, resumed to 6"

    check("checkpoint kill and resume", resume)

    def evaluation() -> str:
        from .data import resolve_dataset
        from .evaluate import evaluate

        per_image = evaluate(build_model("bicubic", scale=4), [resolve_dataset("embedded", 4)],
                             scale=4, device=dev, progress=False)  # fmt: skip
        return f"bicubic on embedded: {per_image.psnr_y.mean():.3f} dB"

    check("protocol evaluation", evaluation)
    out = _write(_stamp(rows, str(dev), args.command), args.out / f"smoke_{args.label}.csv",
                 ["check"])  # fmt: skip
    failed = [r["check"] for r in rows if r["status"] != "ok"]
    if failed:
        raise SystemExit(f"smoke failed: {', '.join(failed)} (see {out})")
    return [out]


# -- brief -------------------------------------------------------------------------------------


def brief(args: argparse.Namespace) -> list[Path]:
    """brief-gpu at x4 for every trainable network, fixed steps, protocol evaluation."""
    import tempfile

    from .config import PROTOCOL, get_config
    from .device import resolve_device
    from .experiment import run_training
    from .models import MODELS, deploy, load_model, save_model
    from .runconfig import DataConfig, RunConfig

    dev = resolve_device(args.device)
    sets = ("embedded",) if args.dry_run else _present_sets(args.data_root)
    rows = []
    ckpt_dir = args.checkpoints
    with tempfile.TemporaryDirectory() as tmp:
        for name in (n for n in sorted(MODELS) if n != "bicubic"):
            cfg = _small(name) if args.dry_run else get_config(name, scale=4)
            run = RunConfig(model=cfg, train=_train(args.dry_run, str(dev)),
                            data=DataConfig(eval=sets, root=args.data_root))  # fmt: skip
            out = run_training(run, registry=Path(tmp) / "r.sqlite", run_dir=Path(tmp) / name,
                               command=args.command, progress=False)  # fmt: skip
            model = load_model(out.folder.model)
            fused = deploy(model)
            fused.config = model.config
            stem = f"{name}_x4_brief_{args.label}"
            save_model(fused, ckpt_dir / f"{stem}.pt", graph="deploy", half=True,
                       meta={"run": run.to_dict(), "steps": out.steps, "metrics": out.metrics,
                             "command": args.command})  # fmt: skip
            for m in out.metrics:
                rows.append({"model": name, "scale": 4, "dataset": m["dataset"],
                             "psnr_y": m["psnr_y"], "ssim_y": m["ssim_y"], "steps": out.steps,
                             "wall_s": round(out.wall_s, 1), "seed": run.seed,
                             "run_hash": run.hash(), "protocol": PROTOCOL,
                             "checkpoint": f"checkpoints/{stem}.pt"})  # fmt: skip
    out = args.out / f"brief_x4_{args.label}.csv"
    return [_write(_stamp(rows, str(dev), args.command), out, ["model", "dataset", "run_hash"])]


def _small(name: str):
    """A narrow, shallow config of ``name`` for dry runs (the default where that is refused)."""
    from .config import ConfigError, get_config

    for channels in (16, 32):
        try:
            return get_config(name, scale=4, channels=channels, num_blocks=1)
        except ConfigError:
            continue
    return get_config(name, scale=4)


def _present_sets(root: str | None) -> tuple[str, ...]:
    from .data import DatasetError, resolve_dataset

    present = []
    for name in ("set5", "set14", "b100", "urban100", "manga109"):
        try:
            resolve_dataset(name, 4, data_root=root)
            present.append(name)
        except DatasetError:
            if name in ("set5", "set14"):
                raise
    return tuple(present)


# -- claims ------------------------------------------------------------------------------------


def claims(net: str) -> Callable[[argparse.Namespace], list[Path]]:
    def run(args: argparse.Namespace) -> list[Path]:
        """The claim grid of ``net``, one at a time, 3 seeds, packed on the device."""
        import tempfile

        from .ablation import ablate, grid_runs
        from .cli import _parse_grid
        from .config import get_config
        from .device import resolve_device
        from .runconfig import DataConfig, RunConfig

        dev = resolve_device(args.device)
        small = {"channels": 16, "num_blocks": 1} if args.dry_run else {}
        base = RunConfig(model=get_config(net, scale=4, **small),
                         train=_train(args.dry_run, str(dev)),
                         data=DataConfig(eval=("embedded",)))  # fmt: skip
        grid = _parse_grid(GRIDS[net], base)
        seeds = 1 if args.dry_run else 3
        print(f"claims-{net}: {len(grid_runs(base, grid, 'one-at-a-time'))} runs x {seeds} seeds",
              file=sys.stderr)  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            table = ablate(base, grid, seeds=seeds, registry=Path(tmp) / "r.sqlite",
                           mode="one-at-a-time", parallel=1 if args.dry_run else args.parallel,
                           progress=False,
                           run_root=Path(tmp) / "runs", command=args.command)  # fmt: skip
        table = table.assign(model=net, scale=4, steps=base.train.steps,
                             batch_size=base.train.batch_size, patch=base.train.patch,
                             data=base.data.train, base_run=base.to_json())  # fmt: skip
        rows = table.to_dict("records")
        out = args.out / f"ablation_{net}_x4_{args.label}.csv"
        key = ["label", "steps", "batch_size", "patch"]
        return [_write(_stamp(rows, str(dev), args.command), out, key)]

    return run


# -- bench -------------------------------------------------------------------------------------


def bench(args: argparse.Namespace) -> list[Path]:
    """The three benchmarks of bench/, each writing its own table."""
    dev = "cuda" if args.device.startswith("cuda") else args.device
    tiny = args.dry_run

    def out(stem: str) -> list[str]:
        return ["--device", dev, "--out", str(args.out / f"{stem}_{args.label}.csv")]

    runs = [
        ("train_throughput", out("train_throughput")
         + (["--steps", "2", "--models", "rfdn"] if tiny else ["--compile"])),
        # no ONNX rows: the GPU machine has no onnxruntime (the CPU table has them)
        ("latency", out("latency") + ["--no-onnx"]
         + (["--repeats", "1", "--warmup", "0", "--lr-size", "16", "16"] if tiny else [])),
        ("ablation_parallel", out("ablation_parallel")
         + (["--steps", "2", "--seeds", "1", "--ns", "1,2"] if tiny else [])),
        ("stacked", out("stacked")
         + (["--steps", "1", "--seeds", "1,2", "--model", "rfdn"] if tiny else [])),
    ]  # fmt: skip
    written = []
    for script, extra in runs:
        argv = [sys.executable, str(REPO / "bench" / f"{script}.py"), *extra]
        subprocess.run(argv, cwd=REPO, check=True)
        written.append(Path(extra[extra.index("--out") + 1]))
    return written


CHUNKS: dict[str, Chunk] = {
    "smoke": Chunk("smoke", smoke, "60 s: 13 networks x 1 fwd/bwd + 4 compiles (~10 s each)"),
    "brief": Chunk("brief", brief, "13 networks x 6,000 steps of batch 32 at ~30 steps/s"),
    "claims-lmswn": Chunk("claims-lmswn", claims("lmswn"),
                          "7 runs x 3 seeds x 6,000 steps, 4 at once"),
    "claims-safdnet": Chunk("claims-safdnet", claims("safdnet"),
                            "8 runs x 3 seeds x 6,000 steps, 4 at once"),
    "bench": Chunk("bench", bench, "throughput (eager + compiled), latency, 1/2/4/8 runs at "
                   "once, 1/2/4/8 seeds stacked"),
}  # fmt: skip


def run_chunk(name: str, argv: list[str]) -> list[Path]:
    """Run one chunk (after smoke, unless skipped) with the command line ``argv``."""
    args = parse(argv)
    written = []
    if name != "smoke" and not args.skip_smoke:
        written += CHUNKS["smoke"].run(args)
    written += CHUNKS[name].run(args)
    return written


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m sr_kit.campaign", description=__doc__.splitlines()[0]
    )
    p.add_argument("chunk", choices=list(CHUNKS))
    p.add_argument("--device", default="cuda")
    p.add_argument("--dry-run", action="store_true", help="tiny settings (CI runs this on a CPU)")
    p.add_argument("--skip-smoke", action="store_true")
    p.add_argument("--data-root", default=None, help="folder with Set5/, Set14/ ...")
    p.add_argument("--out", type=Path, default=REPO / "results", help="folder for the tables")
    p.add_argument("--checkpoints", type=Path, default=None,
                   help="brief: folder for the checkpoints (default: beside --out)")  # fmt: skip
    p.add_argument("--parallel", type=int, default=4, help="claims: trainings at once")
    p.add_argument(
        "--label",
        default=None,
        help="device part of the file names (default: the device type; a CPU dry "
        "run of a GPU chunk uses --label cuda to write the names it declares)",
    )
    args = p.parse_args(argv)
    args.command = "python -m sr_kit.campaign " + shlex.join(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.checkpoints = args.checkpoints or args.out.parent / "checkpoints"
    args.label = args.label or args.device.split(":")[0]
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = parse(argv).chunk
    t0 = time.perf_counter()
    written = run_chunk(name, argv)
    print(f"{name}: {time.perf_counter() - t0:.1f} s; wrote " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
