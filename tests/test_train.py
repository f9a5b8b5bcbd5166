"""fit(): schedules, determinism, exact resume, NaN handling, Ctrl-C, time budget, checkpoints.

Most tests go through ``train_sr`` (fit + L1 + PSNR_Y validation + model-file checkpoints); the
last ones check that fit itself is generic: any loss, any batch source, no SR imports.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sr_kit.config import TrainConfig, train_config
from sr_kit.experiment import l1_loss, psnr_y_torch, train_sr
from sr_kit.metrics import psnr_y
from sr_kit.models import build_model, load_model
from sr_kit.sampler import PatchSampler
from sr_kit.train import TrainingDiverged, fit, lr_multiplier


class Pair:
    def __init__(self, lr, hr):
        self.lr, self.hr = lr, hr


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48]
    base = np.stack([xx * 5, yy * 5, (xx + yy) * 2], -1)
    noisy = [base + rng.integers(0, 40, base.shape) + 30 * i for i in range(3)]
    return [(im % 256).astype(np.uint8) for im in noisy]


def _model(seed=0):
    torch.manual_seed(seed)
    return build_model("rfdn", scale=2, channels=8, num_blocks=1)


def _cfg(**kw) -> TrainConfig:
    base = dict(steps=20, batch_size=4, patch=8, learning_rate=2e-3, warmup_steps=3, device="cpu",
                val_every=10, checkpoint_every=10, amp=False, channels_last=False)  # fmt: skip
    return TrainConfig(**{**base, **kw})


def _val(pool):
    from sr_kit.imresize import imresize_uint8

    return [Pair(imresize_uint8(pool[0][:32, :32], 0.5), pool[0][:32, :32])]


def _run(pool, tmp=None, resume=False, callbacks=(), seed=0, model=None, **kw):
    model = model or _model(seed)
    src = PatchSampler(pool, 2, 8, seed=seed)
    ckpt = tmp / "checkpoint.pt" if tmp is not None else None
    res = train_sr(model, src, _cfg(**kw), val=_val(pool), checkpoint=ckpt, resume=resume,
                   progress=False, callbacks=callbacks, log_every=5)  # fmt: skip
    return model, res


def test_lr_schedule_warmup_cosine_and_halving():
    cfg = TrainConfig(steps=110, warmup_steps=10, learning_rate=1.0, min_lr_ratio=0.1)
    assert lr_multiplier(0, cfg) == pytest.approx(0.1)
    assert lr_multiplier(9, cfg) == pytest.approx(1.0)
    assert lr_multiplier(10, cfg) == pytest.approx(1.0)
    assert lr_multiplier(60, cfg) == pytest.approx(0.1 + 0.9 * 0.5)  # half way down the cosine
    assert lr_multiplier(110, cfg) == pytest.approx(0.1)
    step = TrainConfig(steps=1000, warmup_steps=0, lr_halve_every=200)
    assert [lr_multiplier(s, step) for s in (0, 199, 200, 450)] == [1.0, 1.0, 0.5, 0.25]


def test_psnr_on_device_equals_the_numpy_protocol():
    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    sr = np.clip(hr + rng.normal(0, 6, hr.shape), 0, 255) / 255
    t_sr = torch.from_numpy(sr.transpose(2, 0, 1)).float()
    t_hr = torch.from_numpy(hr.transpose(2, 0, 1).copy())
    sr_u8 = np.floor(np.clip(t_sr.double().numpy() * 255, 0, 255) + 0.5).astype(np.uint8)
    expected = psnr_y(sr_u8.transpose(1, 2, 0), hr, 2)
    assert psnr_y_torch(t_sr, t_hr, 2) == pytest.approx(expected, abs=1e-9)


def test_same_seed_gives_the_same_losses_and_training_lowers_the_loss(pool):
    _, a = _run(pool, steps=30)
    _, b = _run(pool, steps=30)
    la, lb = [h["loss"] for h in a.history], [h["loss"] for h in b.history]
    assert la == lb  # bit-identical on the same machine and thread count
    assert la[-1] < 0.7 * la[0]
    assert a.status == "done" and a.steps == 30 and math.isfinite(a.final["val_psnr_y"])
    assert a.history[-1]["val_psnr_y"] == a.final["val_psnr_y"]
    assert set(a.history[0]) == {"step", "loss", "learning_rate"}  # step 5: a log record
    assert set(a.history[1]) == {"step", "loss", "learning_rate", "val_psnr_y"}  # step 10
    _, c = _run(pool, steps=30, seed=1)
    assert [h["loss"] for h in c.history] != la


def test_resume_after_a_crash_reproduces_the_uninterrupted_run(pool, tmp_path):
    full_model, full = _run(pool, tmp_path / "full")

    def crash(record):
        if record["step"] == 15:  # after the checkpoint at step 10, before the next one
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(pool, tmp_path / "crash", callbacks=[crash])
    ck = torch.load(tmp_path / "crash" / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 10
    model, resumed = _run(pool, tmp_path / "crash", resume=True, seed=5)  # other init: overwritten
    assert resumed.steps == 20
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    for (k, v), w in zip(model.state_dict().items(), full_model.state_dict().values(), strict=True):
        assert torch.equal(v, w), k


def test_existing_checkpoint_is_never_overwritten_without_resume(pool, tmp_path):
    _run(pool, tmp_path, steps=10)
    with pytest.raises(FileExistsError, match="--resume"):
        _run(pool, tmp_path, steps=10)


def test_ctrl_c_saves_before_exiting(pool, tmp_path):
    def interrupt(record):
        if record["step"] == 15:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(pool, tmp_path, callbacks=[interrupt])
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 15
    _, res = _run(pool, tmp_path, resume=True)
    assert res.steps == 20


class NaNAfter:
    """A batch source that turns bad after `n` batches (as a diverging run would)."""

    def __init__(self, inner, n):
        self.inner, self.n, self.calls = inner, n, 0

    def sample(self, batch_size):
        self.calls += 1
        lr, hr = self.inner.sample(batch_size)
        return (lr, hr * float("nan")) if self.calls > self.n else (lr, hr)


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(pool, tmp_path):
    model = _model()
    src = NaNAfter(PatchSampler(pool, 2, 8, seed=0), 13)
    with pytest.raises(TrainingDiverged, match="between steps 11 and 15"):
        fit(model, l1_loss, src, _cfg(), checkpoint=tmp_path / "checkpoint.pt", progress=False,
            log_every=5)  # fmt: skip
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 10
    assert all(torch.isfinite(v).all() for v in ck["state_dict"].values())
    # the same happens when a checkpoint is due inside the bad interval: nothing is saved
    src = NaNAfter(PatchSampler(pool, 2, 8, seed=0), 8)
    with pytest.raises(TrainingDiverged):
        fit(_model(), l1_loss, src, _cfg(checkpoint_every=10),
            checkpoint=tmp_path / "b" / "checkpoint.pt", progress=False, log_every=7)  # fmt: skip
    assert not (tmp_path / "b" / "checkpoint.pt").exists()


def test_time_budget_stops_early_and_saves(pool, tmp_path):
    _, res = _run(pool, tmp_path, steps=100_000, time_budget_s=0.5)
    assert res.status == "time_budget" and 0 < res.steps < 100_000
    # the returned weights are validated, once, on the last record
    assert res.history[-1]["step"] == res.steps and "val_psnr_y" in res.history[-1]
    assert len({h["step"] for h in res.history}) == len(res.history)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == res.steps


def test_checkpoint_is_a_safe_model_file(pool, tmp_path):
    model, _ = _run(pool, tmp_path, steps=10)
    loaded = load_model(tmp_path / "checkpoint.pt")
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_bicubic_cannot_be_trained_and_bad_settings_are_refused(pool):
    with pytest.raises(ValueError, match="no trainable parameters"):
        fit(build_model("bicubic", scale=2), l1_loss, PatchSampler(pool, 2, 8), _cfg(),
            progress=False)  # fmt: skip
    with pytest.raises(Exception, match="steps must be a positive integer"):
        train_config("quick-cpu", steps=0)
    with pytest.raises(
        Exception, match="unknown preset 'fast'; known: quick-cpu, brief-gpu, paper"
    ):
        train_config("fast")
    assert math.isfinite(train_config("paper").learning_rate)


def test_gpu_code_paths_bf16_autocast_and_channels_last_run_on_the_cpu(pool, tmp_path):
    """The CUDA settings (bf16 autocast, channels_last) exercised on the CPU: the loss is a
    float32 scalar, training still learns, and the checkpoint loads back in float32."""
    model, res = _run(pool, tmp_path, steps=30, amp=True, channels_last=True)
    losses = [h["loss"] for h in res.history]
    assert losses[-1] < 0.8 * losses[0]
    assert next(model.parameters()).dtype == torch.float32  # autocast never casts the weights
    # a 3x3 kernel is NHWC-contiguous only after conversion (1x1 kernels always are)
    assert not _model().head.weight.is_contiguous(memory_format=torch.channels_last)
    assert model.head.weight.is_contiguous(memory_format=torch.channels_last)
    loaded = load_model(tmp_path / "checkpoint.pt")
    assert all(v.dtype == torch.float32 for v in loaded.state_dict().values())


@pytest.mark.slow
def test_torch_compile_path_trains(pool):
    pytest.importorskip("torch._inductor")
    _, res = _run(pool, steps=6, compile=True, val_every=0)
    assert res.steps == 6 and math.isfinite(res.history[-1]["loss"])


class Line:
    """A batch source for a regression y = 3x - 1: nothing about images."""

    def __init__(self):
        self.gen = torch.Generator().manual_seed(0)

    def sample(self, batch_size):
        x = torch.rand(batch_size, 1, generator=self.gen)
        return x, 3 * x - 1

    def get_state(self):
        return {"gen": self.gen.get_state()}

    def set_state(self, state):
        self.gen.set_state(state["gen"])


def test_fit_is_generic_any_loss_any_source_any_evaluate(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Linear(1, 1)  # no .config, no SR anywhere
    cfg = TrainConfig(steps=200, batch_size=16, learning_rate=0.1, warmup_steps=0,
                      device="cpu", amp=False, channels_last=False, val_every=100,
                      checkpoint_every=0)  # fmt: skip
    probe = torch.tensor([[0.0], [1.0]])

    def evaluate(model):
        return {"err": float((model(probe) - torch.tensor([[-1.0], [2.0]])).abs().max())}

    res = fit(net, torch.nn.functional.mse_loss, Line(), cfg, evaluate=evaluate,
              checkpoint=tmp_path / "line.pt", checkpoint_meta={"note": "a line"},
              progress=False)  # fmt: skip
    assert [h["step"] for h in res.history if "err" in h] == [100, 200]
    assert res.final["err"] < 0.05
    assert net.weight.item() == pytest.approx(3, abs=0.1)
    ck = torch.load(tmp_path / "line.pt", weights_only=True)
    assert ck["note"] == "a line" and ck["step"] == 200


def test_fit_refuses_a_source_cutting_other_patches_and_meta_clashing_with_its_keys(pool):
    with pytest.raises(ValueError, match=r"cuts 8-pixel patches but train\.patch is 12"):
        fit(_model(), l1_loss, PatchSampler(pool, 2, 8), _cfg(patch=12), progress=False)
    with pytest.raises(ValueError, match="may not set state_dict"):
        fit(_model(), l1_loss, PatchSampler(pool, 2, 8), _cfg(),
            checkpoint_meta={"state_dict": {}}, progress=False)  # fmt: skip


def test_fit_imports_nothing_from_models():
    """The import graph: sr_kit.train (and what it imports) never reaches sr_kit.models."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    import sr_kit.train

    tree = ast.parse(Path(sr_kit.train.__file__).read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [("." * n.level) + (n.module or "") for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom)]  # fmt: skip
    assert not [n for n in names if "models" in n], names
    code = ("import sys, sr_kit.train; "
            "print(sorted(m for m in sys.modules if m.startswith('sr_kit.')))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    loaded = eval(out)  # a printed list of module names
    assert "sr_kit.train" in loaded
    assert not [m for m in loaded if m.startswith(("sr_kit.models", "sr_kit.blocks"))], loaded


def test_a_checkpoint_from_before_run_configs_resumes_and_plots(pool, tmp_path):
    """Training checkpoints written before this layout (TrainConfig had a seed; history keys
    were `lr` and `psnr`) still resume, and their history still plots."""
    from sr_kit.plots import training_curves

    _run(pool, tmp_path, steps=10)
    path = tmp_path / "checkpoint.pt"
    ck = torch.load(path, weights_only=True)
    ck["train_config"]["seed"] = 0
    ck["history"] = [
        {("lr" if k == "learning_rate" else "psnr" if k == "val_psnr_y" else k): v
         for k, v in h.items()}
        for h in ck["history"]
    ]  # fmt: skip
    torch.save(ck, path)
    _, res = _run(pool, tmp_path, steps=20, resume=True)
    assert res.steps == 20 and "lr" in res.history[0] and "val_psnr_y" in res.history[-1]
    assert "psnr" in res.history[1]  # the step-10 validation, written under the old name
    fig = training_curves(res.history)
    assert len(fig.axes) == 2  # loss and validation PSNR, old and new records together


def test_a_file_that_is_not_a_training_checkpoint_is_named(pool, tmp_path):
    from sr_kit.models import save_model
    from sr_kit.train import load_training_checkpoint

    save_model(_model(), tmp_path / "model.pt")
    msg = (r"model\.pt: not an sr-kit training checkpoint "
           r"\(expected format 'sr-kit-train/1', found 'sr-kit-model/1'\)")  # fmt: skip
    with pytest.raises(RuntimeError, match=msg):
        load_training_checkpoint(tmp_path / "model.pt")
