"""Stacked seeds: S copies trained as one vmapped model follow the same trajectories as S runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_kit.config import TrainConfig
from sr_kit.experiment import l1_loss
from sr_kit.models import build_model
from sr_kit.sampler import PatchSampler
from sr_kit.stacked import fit_stacked
from sr_kit.train import fit


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48]
    base = np.stack([xx * 5, yy * 5, (xx + yy) * 2], -1)
    return [((base + rng.integers(0, 40, base.shape) + 30 * i) % 256).astype(np.uint8)
            for i in range(3)]  # fmt: skip


CFG = TrainConfig(steps=12, batch_size=3, patch=8, learning_rate=2e-3, warmup_steps=3,
                  device="cpu", amp=False, channels_last=False, val_every=0,
                  checkpoint_every=0)  # fmt: skip


@pytest.mark.parametrize("name,kw", [("rfdn", dict(channels=8, num_blocks=1)),
                                     ("lmswn", dict(channels=8, num_blocks=1)),
                                     ("safdnet", dict(channels=8, num_blocks=1))])  # fmt: skip
def test_stacked_seeds_equal_separate_runs(pool, name, kw):
    seeds = (0, 1, 2)

    def fresh(seed):
        torch.manual_seed(seed)
        return build_model(name, scale=2, **kw)

    alone = []
    for seed in seeds:
        model = fresh(seed)
        res = fit(model, l1_loss, PatchSampler(pool, 2, 8, seed=seed), CFG, progress=False,
                  log_every=4)  # fmt: skip
        alone.append((model, [h["loss"] for h in res.history]))
    together = [fresh(seed) for seed in seeds]
    out = fit_stacked(together, l1_loss, [PatchSampler(pool, 2, 8, seed=s) for s in seeds], CFG,
                      log_every=4)  # fmt: skip
    assert out.steps == 12 and len(out.losses) == 3
    for (model, losses), stacked, stacked_losses in zip(alone, together, out.losses, strict=True):
        assert stacked_losses == pytest.approx(losses, rel=1e-4)
        for (k, a), b in zip(model.state_dict().items(), stacked.state_dict().values(),
                             strict=True):  # fmt: skip
            assert torch.allclose(a, b, atol=2e-5, rtol=1e-4), k
    # and the seeds really differ from each other
    first = [next(m.parameters()) for m in together]
    assert not torch.allclose(first[0], first[1])


def test_stacking_refuses_what_does_not_decompose(pool):
    models = [build_model("rfdn", scale=2, channels=8, num_blocks=1) for _ in range(2)]
    sources = [PatchSampler(pool, 2, 8, seed=s) for s in (0, 1)]
    from dataclasses import replace

    with pytest.raises(ValueError, match="grad_clip is one norm over all seeds"):
        fit_stacked(models, l1_loss, sources, replace(CFG, grad_clip=1.0))
    with pytest.raises(ValueError, match="one batch source per model"):
        fit_stacked(models, l1_loss, sources[:1], CFG)
    other = [models[0], build_model("rfdn", scale=2, channels=12, num_blocks=1)]
    with pytest.raises(ValueError, match="same network"):
        fit_stacked(other, l1_loss, sources, CFG)
    with pytest.raises(ValueError, match="cuts 8-pixel patches"):
        fit_stacked(models, l1_loss, sources, replace(CFG, patch=12))
