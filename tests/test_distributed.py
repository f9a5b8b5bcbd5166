"""Multi-process training: torchrun with two CPU processes on the gloo backend."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sr_kit.models import load_model
from sr_kit.runs import Registry


@pytest.mark.slow
def test_torchrun_two_cpu_processes_train_with_ddp(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        torchrun = shutil.which("torchrun")
    assert torchrun, "torchrun comes with torch"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SR_KIT_THREADS": "1"}
    cmd = [
        str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "sr_kit", "train",
        "--model", "rfdn", "--scale", "2", "--set", "channels=8", "--set", "num_blocks=1",
        "--steps", "12", "--batch-size", "2", "--patch", "12", "--device", "cpu",
        "--checkpoint-every", "6", "--val-every", "6", "--time-budget", "600",
        "--run-dir", str(tmp_path / "run"), "--registry", str(tmp_path / "runs.sqlite"),
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("run 1: 12 steps") == 1  # only rank 0 reports and records
    with Registry(tmp_path / "runs.sqlite") as reg:
        assert len(reg) == 1 and reg.get(1)["status"] == "done"
    ck = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 12
    # DDP keeps the replicas identical: the saved weights are finite and load as a model
    assert load_model(tmp_path / "run" / "model.pt").config.channels == 8
