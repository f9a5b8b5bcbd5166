"""The training side of the CLI: train -> eval --checkpoint -> results -> upscale, and ablate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sr_kit.cli import main
from sr_kit.runs import Registry

TINY = ["--model", "rfdn", "--scale", "2", "--set", "channels=8", "--set", "num_blocks=1",
        "--batch-size", "2", "--patch", "12", "--device", "cpu", "--val-every", "0"]  # fmt: skip


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_then_eval_results_and_upscale(capsys, tmp_path):
    reg, run_dir = tmp_path / "runs.sqlite", tmp_path / "run"
    code, out, _ = run(capsys, "train", *TINY, "--steps", "8", "--run-dir", run_dir,
                       "--registry", reg)  # fmt: skip
    assert code == 0 and "run 1: 8 steps" in out and "embedded  PSNR_Y" in out
    assert (run_dir / "model.pt").exists() and (run_dir / "checkpoint.pt").exists()
    with Registry(reg) as r:
        row = r.get(1)
    # RFDN C=8, one block, x2: head 224 + RFDB 2,488 + gather 72 + post 584 + upsampler 876
    assert row["status"] == "done" and row["steps"] == 8 and row["params"] == 4_244
    assert row["command"].startswith("sr-kit train") and row["device"].startswith("cpu")
    recorded = row["metrics"]["embedded"]["psnr_y"]

    # eval --checkpoint reproduces the recorded PSNR from the saved model
    code, out, _ = run(capsys, "eval", "--checkpoint", run_dir, "--data", "embedded",
                       "--csv", tmp_path / "e.csv")  # fmt: skip
    assert code == 0
    per_image = pd.read_csv(tmp_path / "e.csv")
    assert per_image.psnr_y.mean() == pytest.approx(recorded, abs=1e-6)

    code, out, _ = run(
        capsys,
        "results",
        "--registry",
        reg,
        "--csv",
        tmp_path / "all.csv",
        "--plot",
        tmp_path / "p.png",
        "--dataset",
        "embedded",
        "--scale",
        "2",
    )
    assert code == 0 and "rfdn" in out
    assert pd.read_csv(tmp_path / "all.csv").loc[0, "psnr_y/embedded"] == pytest.approx(recorded)
    assert (tmp_path / "p.png").stat().st_size > 1000

    lr = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(lr).save(tmp_path / "in.png")
    code, _, _ = run(capsys, "upscale", "--checkpoint", run_dir, tmp_path / "in.png",
                     tmp_path / "out" / "sr.png")  # fmt: skip
    assert code == 0
    assert Image.open(tmp_path / "out" / "sr.png").size == (60, 40)


def test_train_refuses_to_overwrite_and_resumes(capsys, tmp_path):
    args = ["train", *TINY, "--run-dir", tmp_path / "run", "--registry", tmp_path / "r.sqlite"]
    assert run(capsys, *args, "--steps", "4")[0] == 0
    code, _, err = run(capsys, *args, "--steps", "8")
    assert code == 2 and "--resume" in err
    code, out, _ = run(capsys, *args, "--steps", "8", "--resume")
    assert code == 0 and "run 3: 8 steps" in out  # run 2 failed on the existing checkpoint
    with Registry(tmp_path / "r.sqlite") as r:
        assert [r.get(i)["status"] for i in (1, 2, 3)] == ["done", "failed", "done"]


def test_eval_needs_a_model_or_a_checkpoint(capsys, tmp_path):
    code, _, err = run(capsys, "eval", "--data", "embedded")
    assert code == 2 and "--checkpoint, or --model and --scale" in err
    code, _, err = run(capsys, "eval", "--checkpoint", tmp_path / "none.pt", "--data", "embedded")
    assert code == 2 and "no such model file" in err


def test_ablate_grid_over_seeds_reuses_finished_runs(capsys, tmp_path):
    args = ["ablate", "--model", "lmswn", "--scale", "2", "--set", "channels=8",
            "--set", "num_blocks=1", "--batch-size", "2", "--patch", "12", "--device", "cpu",
            "--val-every", "0", "--steps", "4", "--grid", "asym=false", "--grid",
            "weights=fixed,none", "--one-at-a-time", "--seeds", "2",
            "--registry", tmp_path / "r.sqlite", "--csv", tmp_path / "abl.csv",
            "--run-root", tmp_path / "runs"]  # fmt: skip
    assert run(capsys, *args)[0] == 0
    table = pd.read_csv(tmp_path / "abl.csv")
    assert list(table.label) == ["base", "asym=False", "weights=fixed", "weights=none"]
    assert list(table.n) == [2, 2, 2, 2]
    assert table.params.tolist()[0] - table.params.tolist()[1] == 3 * 2 * 8 * 8 * 3  # the 1x3/3x1
    assert {"psnr_y/embedded_mean", "psnr_y/embedded_std", "psnr_y/embedded_delta",
            "within_noise"} <= set(table.columns)  # fmt: skip
    assert table.loc[0, "psnr_y/embedded_delta"] == 0
    with Registry(tmp_path / "r.sqlite") as r:
        assert len(r) == 8
    # the second call trains nothing: every (config, seed) is found in the registry
    assert run(capsys, *args)[0] == 0
    with Registry(tmp_path / "r.sqlite") as r:
        assert len(r) == 8
    assert len(list((tmp_path / "runs").iterdir())) == 8  # checkpoints went where asked
    code, _, err = run(capsys, *args[:-6], "--grid", "asym=perhaps")
    assert code == 2 and "asym" in err


@pytest.mark.slow
def test_ablate_in_parallel_worker_processes(capsys, tmp_path):
    """--parallel 2 trains in two spawned processes; both runs land in one registry."""
    code, _, _ = run(capsys, "ablate", "--model", "lmswn", "--scale", "2", "--set", "channels=8",
                     "--set", "num_blocks=1", "--batch-size", "2", "--patch", "12", "--device",
                     "cpu", "--val-every", "0", "--steps", "3", "--grid", "asym=false",
                     "--seeds", "1", "--parallel", "2", "--registry", tmp_path / "r.sqlite",
                     "--run-root", tmp_path / "runs", "--csv", tmp_path / "t.csv")  # fmt: skip
    assert code == 0
    table = pd.read_csv(tmp_path / "t.csv")
    assert list(table.label) == ["base", "asym=False"] and list(table.n) == [1, 1]
    with Registry(tmp_path / "r.sqlite") as r:
        assert len(r) == 2 and {r.get(i)["status"] for i in (1, 2)} == {"done"}


def test_resume_refuses_a_checkpoint_of_another_network_or_seed(capsys, tmp_path):
    args = ["train", *TINY, "--run-dir", tmp_path / "run", "--registry", tmp_path / "r.sqlite"]
    assert run(capsys, *args, "--steps", "4")[0] == 0
    code, _, err = run(capsys, *args, "--steps", "8", "--resume", "--seed", "1")
    assert code == 2 and "checkpoint of another run (its seed differs)" in err
    code, _, err = run(capsys, *args, "--steps", "8", "--resume", "--set", "num_blocks=2")
    assert code == 2 and "(its model differs)" in err
    import torch

    stored = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert stored["run"]["seed"] == 0 and stored["run"]["train"]["steps"] == 4
