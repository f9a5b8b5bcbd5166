"""fit(): schedules, determinism, exact resume, NaN handling, Ctrl-C, time budget, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sr_kit.config import TrainConfig, train_config
from sr_kit.metrics import psnr_y
from sr_kit.models import build_model, load_model
from sr_kit.sampler import PatchSampler
from sr_kit.train import TrainingDiverged, fit, lr_multiplier, psnr_y_torch


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
    res = fit(model, src, _cfg(**kw), val=_val(pool), run_dir=tmp, resume=resume,
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
    assert a.status == "done" and a.steps == 30 and a.final_psnr is not None
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
        fit(model, src, _cfg(), run_dir=tmp_path, progress=False, log_every=5)
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 10
    assert all(torch.isfinite(v).all() for v in ck["state_dict"].values())
    # the same happens when a checkpoint is due inside the bad interval: nothing is saved
    src = NaNAfter(PatchSampler(pool, 2, 8, seed=0), 8)
    with pytest.raises(TrainingDiverged):
        fit(_model(), src, _cfg(checkpoint_every=10), run_dir=tmp_path / "b", progress=False,
            log_every=7)  # fmt: skip
    assert not (tmp_path / "b" / "checkpoint.pt").exists()


def test_time_budget_stops_early_and_saves(pool, tmp_path):
    _, res = _run(pool, tmp_path, steps=100_000, time_budget_s=0.5)
    assert res.status == "time_budget" and 0 < res.steps < 100_000
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == res.steps


def test_checkpoint_is_a_safe_model_file(pool, tmp_path):
    model, _ = _run(pool, tmp_path, steps=10)
    loaded = load_model(tmp_path / "checkpoint.pt")
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_bicubic_cannot_be_trained_and_bad_settings_are_refused(pool):
    with pytest.raises(ValueError, match="no trainable parameters"):
        fit(build_model("bicubic", scale=2), PatchSampler(pool, 2, 8), _cfg(), progress=False)
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
