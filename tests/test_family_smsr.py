"""SMSR (Wang et al., CVPR 2021; LongguangWang/SMSR): parameter counts, the masks in training and
eval, the sparsity loss and temperature schedules, equality with the official sparse inference,
odd input sizes, the dense ablation, and the import of the released x2 weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sr_kit.complexity import count_params
from sr_kit.config import SMSRConfig, switches
from sr_kit.experiment import l1_loss
from sr_kit.models import build_model
from sr_kit.models.smsr import SMSR, SparseMaskModule, SpatialMask, mask_stats, sparse_macs

# Learnable parameters at x2/x3/x4: head 38,720 + 5 SMMs x 176,838 + fuse 57,472 + tail
# (6,924 / 15,579 / 27,696). The official file adds 24 MeanShift values (two 3x3 1x1 convs with
# bias): 987,330 numbers in model_1000.pt. The kit keeps one (1, 3, 1, 1) mean buffer instead.
LEARNABLE = {2: 987_306, 3: 995_961, 4: 1_008_078}
CHANNEL_LOGITS = 5 * 4 * 64 * 2  # the paper's 985K / 993K / 1,006K leave these 2,560 out
PAPER = {2: 985_000, 3: 993_000, 4: 1_006_000}
DENSE = {s: n - 5 * (9_232 + 2_320 + 290 + 512) for s, n in LEARNABLE.items()}  # sparse=False


def _tiny(**kw) -> SMSR:
    torch.manual_seed(0)
    return build_model("smsr", **{"scale": 2, "channels": 16, "num_blocks": 2, **kw})


# --------------------------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_parameter_counts(scale):
    model = build_model("smsr", scale=scale)
    n = count_params(model)
    assert n == LEARNABLE[scale]
    assert round((n - CHANNEL_LOGITS) / 1000) * 1000 == PAPER[scale]
    assert sum(b.numel() for b in model.buffers()) == 3  # the DIV2K mean, not learnable
    assert sum(t.numel() for t in model.state_dict().values()) == n + 3
    official_all_tensors = n + 2 * (9 + 3)  # sub_mean and add_mean as 1x1 convs
    if scale == 2:
        assert official_all_tensors == 987_330  # what the released file holds
    assert count_params(build_model("smsr", scale=scale, sparse=False)) == DENSE[scale]


def test_config_and_switch():
    cfg = SMSRConfig()
    assert (cfg.channels, cfg.num_blocks, cfg.convs_per_block, cfg.sparse) == (64, 5, 4, True)
    info = switches(cfg)["sparse"]
    assert info["claim"].startswith("SMSR:") and info["choices"] == [True, False]
    dense = build_model("smsr", sparse=False)
    assert not any(isinstance(m, SpatialMask) for m in dense.modules())
    assert all(b.channel_logits is None for b in dense.blocks)


# --------------------------------------------------------------------------------------------
# Masks: Gumbel softmax while training, hard at test
# --------------------------------------------------------------------------------------------


def test_train_forward_backward_reaches_the_masks():
    model = _tiny().train()
    x = torch.rand(2, 3, 12, 10)
    y = model(x)
    assert y.shape == (2, 3, 24, 20)
    loss = F.l1_loss(y, torch.rand_like(y)) + model.extra_loss(0.5)
    loss.backward()
    for block in model.blocks:
        for p in (block.channel_logits, block.spatial.conv1.weight, block.spatial.up.bias):
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())
    with torch.no_grad():  # the masks are samples: two training forwards differ
        assert not torch.equal(model(x), model(x))


def test_eval_masks_are_hard_and_deterministic():
    model = _tiny().eval()
    x = torch.rand(1, 3, 14, 12)
    h = model.head(x - model.rgb_mean)
    spatial, sparse = model.blocks[0].masks(h)
    assert spatial.shape == (1, 1, 14, 12) and sparse.shape == (4, 16)
    for m in (spatial, sparse):
        assert set(m.unique().tolist()) <= {0.0, 1.0}
    stats = mask_stats(model, x)
    assert len(stats.spatial_density) == 2 and 0.0 <= stats.skipped <= 1.0
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    assert model.extra_loss(0.5) is None  # eval forwards leave no sparsity term


def test_extra_loss_ramp_and_temperature():
    model = _tiny().train()
    assert model.extra_loss(0.1) is None  # nothing before a training forward
    model(torch.rand(2, 3, 8, 8))
    term = model.extra_loss(0.025)  # halfway up the ramp: weight 0.05
    assert term.dim() == 0 and torch.isfinite(term) and term.requires_grad
    density = term.item() / 0.05
    assert 0.0 < density <= 1.0  # fraction of sites computed
    assert model.extra_loss(0.025) is None  # read once
    assert all(b.tau == pytest.approx(0.95) for b in model.blocks)
    assert SMSR.sparsity_weight(0.0) == 0.0
    assert SMSR.sparsity_weight(0.05) == SMSR.sparsity_weight(0.9) == pytest.approx(0.1)
    assert SMSR.temperature(0.0) == 1.0 and SMSR.temperature(0.2) == pytest.approx(0.6)
    assert SMSR.temperature(0.3) == SMSR.temperature(0.99) == pytest.approx(0.4)
    model.anneal_tau = False  # the released run: tau stays 1
    for b in model.blocks:
        b.tau = 1.0
    model(torch.rand(1, 3, 8, 8))
    model.extra_loss(0.9)
    assert all(b.tau == 1.0 for b in model.blocks)
    dense = _tiny(sparse=False).train()
    dense(torch.rand(1, 3, 8, 8))
    assert dense.extra_loss(0.5) is None


def test_fit_calls_extra_loss():
    from sr_kit.config import TrainConfig
    from sr_kit.sampler import PatchSampler
    from sr_kit.train import fit

    model = _tiny(num_blocks=1, convs_per_block=2)
    seen = []
    original = model.extra_loss
    model.extra_loss = lambda p: (seen.append(p), original(p))[1]
    logits = model.blocks[0].channel_logits.detach().clone()
    rng = np.random.default_rng(0)
    pool = [rng.integers(0, 256, (24, 24, 3), dtype=np.uint8) for _ in range(2)]
    cfg = TrainConfig(steps=4, batch_size=2, patch=8, warmup_steps=0, device="cpu", amp=False,
                      channels_last=False, val_every=0, checkpoint_every=0)  # fmt: skip
    fit(model, l1_loss, PatchSampler(pool, 2, 8, seed=0), cfg, progress=False, log_every=2)
    assert seen == [0.0, 0.25, 0.5, 0.75]
    assert model.blocks[0].tau == pytest.approx(SMSR.temperature(0.75))
    assert not torch.equal(model.blocks[0].channel_logits.detach(), logits)


# --------------------------------------------------------------------------------------------
# Eval = the official sparse-conv inference
# --------------------------------------------------------------------------------------------


def _sparse_reference(block: SparseMaskModule, x: Tensor, spatial: Tensor, sparse: Tensor):
    """One SMM the way the official test path computes it (batch 1): sparse features exist only
    as a (channels, N) list at the N kept pixels; 3x3 neighbours are gathered by index."""
    _, c, h, w = x.shape
    keep = spatial[0, 0].flatten().nonzero().flatten()  # kept pixels, row-major
    n = keep.numel()
    lookup = torch.zeros(h * w, dtype=torch.long)
    lookup[keep] = torch.arange(1, n + 1)  # 0: not kept (reads the zero column)
    lookup = F.pad(lookup.view(1, 1, h, w).float(), (1, 1, 1, 1)).long()[0, 0]
    ys, xs = keep // w, keep % w
    nbr = torch.stack([lookup[ys + dy, xs + dx] for dy in range(3) for dx in range(3)])  # (9, N)
    dense_feats, sparse_feats = [], []
    d_in = torch.ones(c, dtype=torch.bool)
    s_in = torch.zeros(c, dtype=torch.bool)
    fd, fs = x[0], x.new_zeros(0, n)  # dense (Cd, H, W) and sparse (Cs, N) features
    for i, layer in enumerate(block.convs):
        wgt = layer.weight
        s_out = sparse[i].bool()
        d_out = ~s_out
        w_dd = wgt[d_out][:, d_in]
        cols = F.unfold(fd[None], 3, padding=1)[0] if len(fd) else x.new_zeros(0, h * w)
        out_d = (w_dd.flatten(1) @ cols).view(-1, h, w)
        w_ds = wgt[s_out][:, d_in]
        out_s = w_ds.flatten(1) @ cols[:, keep]
        if s_in.any():
            gathered = F.pad(fs, (1, 0))[:, nbr].reshape(int(s_in.sum()) * 9, n)  # (Cs*9, N)
            w_s = wgt[:, s_in]
            from_s = w_s.flatten(1) @ gathered
            out_d.view(-1, h * w)[:, keep] += from_s[d_out]
            out_s = out_s + from_s[s_out]
        fd, fs = out_d.relu(), out_s.relu()
        dense_feats.append(fd)
        sparse_feats.append(fs)
        d_in, s_in = d_out, s_out
    wm = block.merge.weight[:, :, 0, 0].view(c, len(block.convs), c)  # (out, layer, in)
    dmask = ~sparse.bool()
    out = torch.einsum("ok,khw->ohw", wm[:, dmask], torch.cat(dense_feats))
    out = out + block.merge.bias.view(-1, 1, 1)
    out.view(c, -1)[:, keep] += wm[:, ~dmask] @ torch.cat(sparse_feats)
    return block.ca(out[None]) + x


def test_eval_equals_sparse_inference():
    torch.manual_seed(1)
    block = SparseMaskModule(16, 4).eval()
    with torch.no_grad():
        block.channel_logits.normal_()  # a mix of dense and sparse channels in every layer
        x = torch.randn(1, 16, 11, 13)
        logits = block.spatial(x)
        block.spatial.up.bias[1] -= (logits[:, 1] - logits[:, 0]).median()  # keep about half
        spatial, sparse = block.masks(x)
        assert 0.2 < spatial.mean() < 0.8
        assert all(0 < s.sum() < 16 for s in sparse)
        ours = block(x)
        ref = _sparse_reference(block, x, spatial, sparse)
    assert (ours - ref).abs().max() < 1e-5


def test_all_dense_channels_equal_the_dense_ablation():
    sparse = _tiny().eval()
    dense = _tiny(sparse=False).eval()
    missing, unexpected = dense.load_state_dict(sparse.state_dict(), strict=False)
    assert not missing and all(".spatial." in k or "channel_logits" in k for k in unexpected)
    with torch.no_grad():
        for b in sparse.blocks:
            b.channel_logits[..., 0] = 1.0  # dense wins everywhere: nothing is skipped
            b.channel_logits[..., 1] = 0.0
        x = torch.rand(1, 3, 10, 12)
        assert (sparse(x) - dense(x)).abs().max() < 1e-6


# --------------------------------------------------------------------------------------------
# Odd sizes and MAC accounting
# --------------------------------------------------------------------------------------------


def test_mask_branch_is_the_released_one_on_even_sizes_and_takes_odd_ones():
    torch.manual_seed(0)
    branch = SpatialMask(16)
    released = nn.Sequential(
        branch.conv1, nn.ReLU(), nn.AvgPool2d(2), branch.conv2, nn.ReLU(), branch.up
    )
    x = torch.randn(2, 16, 10, 14)
    with torch.no_grad():
        assert torch.equal(branch(x), released(x))
        for hw in [(9, 14), (10, 7), (5, 5), (1, 1)]:
            assert branch(torch.randn(1, 16, *hw)).shape == (1, 2, *hw)
    model = _tiny(scale=3)
    for mode in (model.train, model.eval):
        mode()
        assert model(torch.rand(1, 3, 9, 7)).shape == (1, 3, 27, 21)


def test_sparse_macs():
    model = _tiny()
    stats = mask_stats(model, torch.rand(1, 3, 8, 8))
    full = type(stats)((1.0, 1.0), stats.sparse_channels)
    sparse, dense = sparse_macs(model, full, (10, 20))
    assert sparse == dense == 2 * 200 * (4 * 9 * 16 * 16 + 4 * 16 * 16)
    # all channels sparse, nothing kept: only layer 0's dense part would run, and it has none
    none = type(stats)((0.0, 0.0), tuple(torch.ones(4, 16) for _ in range(2)))
    assert sparse_macs(model, none, (10, 20))[0] == 0


# --------------------------------------------------------------------------------------------
# The released weights (LongguangWang/SMSR experiment/SMSR_X2/model/model_1000.pt)
# --------------------------------------------------------------------------------------------


def _official_forward(state: dict[str, Tensor], x255: Tensor) -> Tensor:
    """The released network in [0, 255] from its own keys (hard masks, sparse SMMs)."""

    def c(x, key, pad=1):
        return F.conv2d(x, state[key + ".weight"], state.get(key + ".bias"), padding=pad)

    x0 = c(x255, "sub_mean", 0)
    f0 = c(F.relu(c(x0, "head.0")), "head.2")
    outs, h = [], f0
    for b in range(5):
        p = f"body.{b}."
        m = F.avg_pool2d(F.relu(c(h, p + "spa_mask.0")), 2)
        m = F.relu(c(m, p + "spa_mask.3"))
        wt, bt = state[p + "spa_mask.5.weight"], state[p + "spa_mask.5.bias"]
        m = F.conv_transpose2d(m, wt, bt, stride=2, padding=1, output_padding=1)
        spatial = (m[:, 1:] > m[:, :1]).float()
        ch = state[p + "body.ch_mask"][0].softmax(-1).round()  # (C, layers, 2), as _prepare
        block = SparseMaskModule(64, 4)
        block.load_state_dict(
            {
                **{f"convs.{i}.weight": state[f"{p}body.body.{i}.weight"] for i in range(4)},
                "merge.weight": state[p + "body.collect.weight"],
                "merge.bias": state[p + "body.collect.bias"],
                **{
                    f"ca.gate.{j}.{t}": state[f"{p}ca.conv_du.{j}.{t}"]
                    for j in (0, 2)
                    for t in ("weight", "bias")
                },
            },
            strict=False,
        )
        h = _sparse_reference(block.eval(), h, spatial, ch[..., 1].t())
        outs.append(h)
    y = c(F.relu(c(torch.cat(outs, 1), "collect.0", 0)), "collect.2") + f0
    y = F.pixel_shuffle(c(y, "tail.0"), 2)
    y = y + F.interpolate(x0, scale_factor=2, mode="bicubic", align_corners=False)
    return c(y, "add_mean", 0)


def test_released_x2_weights(shared_weights, shared_data):
    from sr_kit.data import PairedDataset, resolve_dataset
    from sr_kit.evaluate import evaluate
    from sr_kit.imresize import imresize_uint8
    from sr_kit.metrics import psnr_y
    from sr_kit.models.importers import import_weights

    path = shared_weights / "SMSR_x2.pt"
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert sum(v.numel() for v in state.values()) == 987_330
    net = import_weights(path)
    assert net.config == SMSRConfig(scale=2)
    assert torch.allclose(net.rgb_mean.flatten(), torch.tensor([0.4488, 0.4371, 0.4040]))
    assert not net.training
    x = torch.rand(1, 3, 20, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = net(x) * 255
        ref = _official_forward(state, x * 255)
    assert (ours - ref).abs().max() < 2e-3  # in [0, 255] units

    ds = resolve_dataset("set5", 2, data_root=shared_data / "benchmarks")
    two = PairedDataset("Set5", 2, ds.hr_paths[1:3], ds.lr_paths[1:3])  # bird, butterfly
    bird = torch.from_numpy(two[0].lr.astype(np.float32)).permute(2, 0, 1)[None] / 255
    stats = mask_stats(net, bird)
    # measured: 0.623 of the body's (layer, channel, pixel) sites are skipped on bird; 86-99%
    # of the channels are sparse, and 20-46% of the pixels are kept per block
    assert 0.55 < stats.skipped < 0.7
    assert all(0.8 < float(s.mean()) < 1.0 for s in stats.sparse_channels)
    per = evaluate(net, [two], scale=2, progress=False)
    for pair, psnr in zip(two, per["psnr_y"], strict=True):
        bicubic = psnr_y(imresize_uint8(pair.lr, 2.0), pair.hr, 2)
        assert psnr > bicubic + 3.0, (pair.name, psnr, bicubic)
    assert per["psnr_y"].tolist() == pytest.approx([43.353, 35.370], abs=0.01)
