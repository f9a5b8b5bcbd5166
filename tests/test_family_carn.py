"""CARN and CARN-M (Ahn et al., ECCV 2018; nmhkahn/CARN-pytorch): exact parameter counts of the
official code, forward and backward, the switches, the equivalences the design rests on (shared
residual-E block, multi-scale upsamplers), and the import of the released carn_m.pth (plus a
synthetic file in the official CARN layout) against an independent functional reference."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from sr_kit.complexity import count_params
from sr_kit.config import CARNConfig, CARNMConfig, ConfigError, switches
from sr_kit.models import build_model
from sr_kit.models.carn import CARN, DIV2K_MEAN
from sr_kit.models.importers import ImportError_, import_weights, load_released

SCALES = (2, 3, 4)
MEAN_SHIFT = 24  # two frozen 1x1 convs (3x3 weight + 3 bias each) in the official code

# Learnable parameters, single-scale at x2/x3/x4 (the kit's buffers are not counted). The
# official code counts the two frozen mean-shift convs too: add MEAN_SHIFT to get its figures.
CARN_PARAMS = (964_163, 1_148_803, 1_111_875)  # x4: 1,111,899 with the mean shifts
CARN_MULTI = 1_591_939  # all three upsamplers: 1,591,963 in the official code (issue #6)
CARN_M_PARAMS = (257_027, 303_427, 294_147)  # 257,051 / 303,451 / 294,171 with the mean shifts
CARN_M_MULTI = 414_787  # 414,811 tensors in carn_m.pth

# One set of 1x1 fusions of a cascade of three stages: 128->64, 192->64, 256->64 (+ biases).
FUSE = (128 + 192 + 256) * 64 + 3 * 64
# A residual-E block at group 4 (two grouped 3x3 convs and a 1x1) and at group 1.
ERB_G4 = 2 * (64 * 16 * 9 + 64) + (64 * 64 + 64)
ERB_G1 = 2 * (64 * 64 * 9 + 64) + (64 * 64 + 64)


def _x(h: int = 16, w: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------------------------
# Parameter counts
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", SCALES)
def test_parameter_counts_single_scale(scale):
    carn = build_model("carn", scale=scale)
    carn_m = build_model("carn_m", scale=scale)
    assert count_params(carn) == CARN_PARAMS[scale - 2]
    assert count_params(carn_m) == CARN_M_PARAMS[scale - 2]
    # The mean shift is a buffer, not a parameter (frozen in the official code as well).
    for net in (carn, carn_m):
        assert count_params(net, trainable_only=False) == count_params(net)
        assert "rgb_mean" in dict(net.named_buffers())


def test_official_counts_include_the_mean_shifts():
    assert CARN_PARAMS[2] + MEAN_SHIFT == 1_111_899
    assert CARN_MULTI + MEAN_SHIFT == 1_591_963
    assert CARN_M_MULTI + MEAN_SHIFT == 414_811


@pytest.mark.parametrize("scale", SCALES)
def test_parameter_counts_multi_scale(scale):
    assert count_params(build_model("carn", scale=scale, multi_scale=True)) == CARN_MULTI
    assert count_params(build_model("carn_m", scale=scale, multi_scale=True)) == CARN_M_MULTI


SWITCH_COUNTS_X4 = [
    ("carn", {"cascade": "global"}, CARN_PARAMS[2] - 3 * FUSE),  # no local 1x1s in 3 blocks
    ("carn", {"cascade": "local"}, CARN_PARAMS[2] - FUSE),  # no global 1x1s
    ("carn", {"cascade": "none"}, CARN_PARAMS[2] - 4 * FUSE),
    ("carn_m", {"cascade": "none"}, CARN_M_PARAMS[2] - 4 * FUSE),
    ("carn_m", {"share": False}, CARN_M_PARAMS[2] + 3 * 2 * ERB_G4),  # 3 blocks x 2 more ERBs
    # group 1: the three shared ERBs and both x4 upsampler convs (256x64x3x3) lose their groups
    ("carn_m", {"group": 1}, CARN_M_PARAMS[2] + 3 * (ERB_G1 - ERB_G4) + 2 * 256 * 48 * 9),
    ("carn_m", {"group": 2}, CARN_M_PARAMS[2] + 3 * 2 * 64 * 16 * 9 + 2 * 256 * 16 * 9),
]


@pytest.mark.parametrize(
    "name,overrides,expected",
    SWITCH_COUNTS_X4,
    ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in o.items())}" for n, o, _ in SWITCH_COUNTS_X4],
)
def test_switch_parameter_counts_at_x4(name, overrides, expected):
    assert count_params(build_model(name, scale=4, **overrides)) == expected


def test_switch_counts_by_hand():
    assert FUSE == 37_056 and ERB_G4 == 22_720
    assert CARN_PARAMS[2] - 4 * FUSE == 963_651  # the plain chain: 1,111,875 - 148,224
    assert count_params(build_model("carn_m", scale=4, group=1)) == 681_219


# --------------------------------------------------------------------------------------------
# Forward, backward, config
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["carn", "carn_m"])
def test_forward_and_backward_cpu(name):
    torch.manual_seed(0)
    net = build_model(name, scale=3).train()
    x = _x(9, 14).requires_grad_(True)
    y = net(x)
    assert y.shape == (1, 3, 27, 42)
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert net.rgb_mean.grad is None  # a buffer: never trained


def test_switches_and_defaults():
    assert list(switches(CARNConfig())) == ["cascade"]
    assert list(switches(CARNMConfig())) == ["cascade", "group", "share"]
    for cfg in (CARNConfig(), CARNMConfig()):
        for key, info in switches(cfg).items():
            assert info["claim"].strip() and info["doc"].strip(), key
            assert info["value"] == info["choices"][0], key  # the official network first
    assert switches(CARNMConfig())["group"]["choices"] == [4, 1, 2]
    assert CARNConfig().multi_scale is False and CARNMConfig().multi_scale is False


def test_bad_values():
    with pytest.raises(ConfigError, match=r"cascade='x' is not valid"):
        build_model("carn", cascade="x")
    with pytest.raises(ConfigError, match=r"group=3 is not valid; choose one of \[4, 1, 2\]"):
        build_model("carn_m", group=3)
    with pytest.raises(ConfigError, match="channels must divide by 4"):
        build_model("carn_m", channels=30)


# --------------------------------------------------------------------------------------------
# Equivalences
# --------------------------------------------------------------------------------------------


def test_multi_scale_runs_each_scale_like_the_single_scale_model():
    """The multi-scale network with one upsampler per scale is the single-scale network at
    every scale once it has that upsampler: the trunk is shared, the forward picks by scale."""
    torch.manual_seed(0)
    cfg = CARNMConfig(scale=4, channels=16, num_blocks=2, multi_scale=True)
    multi = build_model(cfg).eval()
    assert sorted(multi.upsamplers) == ["x2", "x3", "x4"]
    x = _x(10, 12)
    for s in SCALES:
        single = build_model(dataclasses.replace(cfg, scale=s, multi_scale=False)).eval()
        state = {
            k: v
            for k, v in multi.state_dict().items()
            if not k.startswith("upsamplers.") or k.startswith(f"upsamplers.x{s}.")
        }
        single.load_state_dict(state)
        with torch.no_grad():
            assert torch.equal(multi(x, scale=s), single(x))
    with torch.no_grad():
        assert torch.equal(multi(x), multi(x, scale=4))  # the default is the config's scale
        with pytest.raises(ValueError, match="no x3 upsampler"):
            single(x, scale=3)  # `single` is the x4 model here


def test_shared_block_equals_three_copies_of_one_block():
    """CARN-M's recursive cascading block: one residual-E block run three times is the
    unshared block with three identical copies."""
    torch.manual_seed(0)
    shared = build_model("carn_m", scale=2, channels=16, num_blocks=1).eval()
    unshared = build_model("carn_m", scale=2, channels=16, num_blocks=1, share=False).eval()
    state = {}
    for k, v in shared.state_dict().items():
        if ".stages.0.stages.0." in k:
            for j in range(3):
                state[k.replace(".stages.0.stages.0.", f".stages.0.stages.{j}.")] = v
        else:
            state[k] = v
    unshared.load_state_dict(state)
    with torch.no_grad():
        assert torch.equal(shared(_x()), unshared(_x()))
    assert count_params(unshared) - count_params(shared) == 2 * sum(
        p.numel() for p in shared.blocks.stages[0].stages[0].parameters()
    )


def test_no_cascade_is_a_plain_chain():
    """cascade="none": the cascading block is its residual units in series (o_i = b_i)."""
    torch.manual_seed(0)
    net = build_model("carn", scale=2, channels=16, num_blocks=2, cascade="none").eval()
    block = net.blocks.stages[0]
    assert block.fuse is None and net.blocks.fuse is None
    h = torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        chained = h
        for unit in block.stages:
            chained = unit(chained)
        assert torch.equal(block(h), chained)


def test_cascade_switch_changes_outputs_at_equal_weights():
    """ "local" and "global" remove different 1x1s: the remaining weights load, outputs differ."""
    torch.manual_seed(0)
    full = build_model("carn", scale=2, channels=16, num_blocks=2).eval()
    x = _x()
    outs = {}
    for mode in ("local", "global", "none"):
        part = build_model("carn", scale=2, channels=16, num_blocks=2, cascade=mode).eval()
        missing = part.load_state_dict(
            {k: v for k, v in full.state_dict().items() if k in part.state_dict()}, strict=True
        )
        assert not missing.missing_keys
        with torch.no_grad():
            outs[mode] = part(x)
    with torch.no_grad():
        ref = full(x)
    for mode, y in outs.items():
        assert (y - ref).abs().max() > 1e-4, mode


# --------------------------------------------------------------------------------------------
# Released weights: an independent reference in the official key layout
# --------------------------------------------------------------------------------------------


def reference_forward(
    sd: dict[str, torch.Tensor], x: torch.Tensor, scale: int, *, mobile: bool, group: int
) -> torch.Tensor:
    """The official forward written with F.conv2d on the official keys (carn.py, carn_m.py,
    ops.py of nmhkahn/CARN-pytorch): frozen 1x1 mean shifts, b{i}.b{j} residual blocks
    (CARN-M: b{i}.b1 reused), b{i}.c{j} / c{j} 1x1 + ReLU cascades, upsample.up{s}, exit."""

    def c(key: str, h: torch.Tensor, pad: int = 0, groups: int = 1) -> torch.Tensor:
        return F.conv2d(h, sd[key + ".weight"], sd[key + ".bias"], padding=pad, groups=groups)

    def unit(prefix: str, h: torch.Tensor) -> torch.Tensor:
        if mobile:
            y = F.relu(c(prefix + ".body.0", h, 1, group))
            y = c(prefix + ".body.4", F.relu(c(prefix + ".body.2", y, 1, group)))
        else:
            y = c(prefix + ".body.2", F.relu(c(prefix + ".body.0", h, 1)), 1)
        return F.relu(y + h)

    def cascade(prefix: str, h: torch.Tensor, stage) -> torch.Tensor:
        cat = out = h
        for j in (1, 2, 3):
            cat = torch.cat([cat, stage(j, out)], dim=1)
            out = F.relu(c(f"{prefix}c{j}.body.0", cat))
        return out

    h = c("entry", c("sub_mean.shifter", x), 1)
    h = cascade(
        "",
        h,
        lambda i, hi: cascade(f"b{i}.", hi, lambda j, hj: unit(f"b{i}.b{1 if mobile else j}", hj)),
    )
    up = f"upsample.up{scale}.body."
    for idx, r in ((0, 3),) if scale == 3 else [(0, 2), (3, 2)][: int(math.log2(scale))]:
        h = F.pixel_shuffle(F.relu(c(up + str(idx), h, 1, group)), r)
    return c("add_mean.shifter", c("exit", h, 1))


def official_carn_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights with the keys and shapes of the official multi-scale CARN (carn.py)."""
    g = torch.Generator().manual_seed(seed)

    def conv(key: str, cout: int, cin: int, k: int) -> None:
        bound = (1.0 / (cin * k * k)) ** 0.5
        sd[key + ".weight"] = (torch.rand(cout, cin, k, k, generator=g) * 2 - 1) * bound
        sd[key + ".bias"] = (torch.rand(cout, generator=g) * 2 - 1) * bound

    mean = torch.tensor(DIV2K_MEAN)
    sd = {
        "sub_mean.shifter.weight": torch.eye(3).view(3, 3, 1, 1),
        "sub_mean.shifter.bias": -mean,
        "add_mean.shifter.weight": torch.eye(3).view(3, 3, 1, 1),
        "add_mean.shifter.bias": mean.clone(),
    }
    conv("entry", 64, 3, 3)
    for i in (1, 2, 3):
        for j in (1, 2, 3):
            conv(f"b{i}.b{j}.body.0", 64, 64, 3)
            conv(f"b{i}.b{j}.body.2", 64, 64, 3)
        for j in (1, 2, 3):
            conv(f"b{i}.c{j}.body.0", 64, 64 * (j + 1), 1)
    for j in (1, 2, 3):
        conv(f"c{j}.body.0", 64, 64 * (j + 1), 1)
    conv("upsample.up2.body.0", 256, 64, 3)
    conv("upsample.up3.body.0", 576, 64, 3)
    conv("upsample.up4.body.0", 256, 64, 3)
    conv("upsample.up4.body.3", 256, 64, 3)
    conv("exit", 3, 64, 3)
    return sd


@pytest.fixture(scope="module")
def carn_m_file(shared_weights):
    return shared_weights / "carn_m.pth"


def test_carn_m_file_is_what_the_readme_says(carn_m_file):
    sd = load_released(carn_m_file)
    assert sum(v.numel() for v in sd.values()) == CARN_M_MULTI + MEAN_SHIFT
    assert torch.equal(sd["add_mean.shifter.bias"], torch.tensor(DIV2K_MEAN))
    assert sd["b1.b1.body.0.weight"].shape == (64, 16, 3, 3)  # group 4
    assert "b1.b2.body.0.weight" not in sd  # one shared residual-E block per cascading block


@pytest.mark.parametrize("scale", SCALES)
def test_carn_m_import_matches_the_official_forward(carn_m_file, scale):
    net = import_weights(carn_m_file, scale=scale)
    assert isinstance(net, CARN)
    assert net.config == CARNMConfig(scale=scale)  # group 4, shared, cascades, single-scale
    assert list(net.upsamplers) == [f"x{scale}"]  # the other scales' upsamplers are dropped
    assert count_params(net) == CARN_M_PARAMS[scale - 2]
    assert torch.equal(net.rgb_mean.flatten(), torch.tensor(DIV2K_MEAN))
    sd = load_released(carn_m_file)
    x = _x(11, 13, seed=scale)
    with torch.no_grad():
        ref = reference_forward(sd, x, scale, mobile=True, group=4)
        assert (net(x) - ref).abs().max() < 1e-5
    assert net.provenance["format"] == "carn-m" and net.provenance["original_mean_shift"]


def test_carn_m_import_needs_a_scale(carn_m_file):
    with pytest.raises(ImportError_, match="multi-scale carn-m file"):
        import_weights(carn_m_file)


def test_carn_m_beats_bicubic_on_two_set5_images(carn_m_file, shared_data):
    from sr_kit.data import resolve_dataset
    from sr_kit.data.pairs import PairedDataset
    from sr_kit.evaluate import evaluate

    # Per image: baby gains least (+1.7 dB at x2), bird most (+6.1 dB at x2).
    for scale in (2, 4):
        full = resolve_dataset("set5", scale, data_root=shared_data / "benchmarks")
        two = PairedDataset("Set5", scale, full.hr_paths[:2], full.lr_paths[:2])
        net = import_weights(carn_m_file, scale=scale)
        sr = evaluate(net, [two], scale=scale, progress=False)["psnr_y"]
        bic = evaluate(build_model("bicubic", scale=scale), [two], scale=scale, progress=False)
        gain = sr.to_numpy() - bic["psnr_y"].to_numpy()
        assert gain.min() > 1.0 and gain.mean() > 2.0, (scale, gain)


def test_carn_layout_import_matches_the_official_forward(tmp_path):
    """The full-CARN format (its released carn.pth is not in shared/weights): a random file in
    the official layout, imported and checked against the reference at every scale."""
    sd = official_carn_state()
    assert sum(v.numel() for v in sd.values()) == CARN_MULTI + MEAN_SHIFT  # 1,591,963
    path = tmp_path / "carn.pth"
    torch.save(sd, path)
    x = _x(8, 9)
    for scale in SCALES:
        net = import_weights(path, scale=scale)
        assert net.config == CARNConfig(scale=scale)
        with torch.no_grad():
            ref = reference_forward(sd, x, scale, mobile=False, group=1)
            assert (net(x) - ref).abs().max() < 1e-5


def test_import_checks_the_mean_shift(tmp_path):
    sd = official_carn_state()
    sd["add_mean.shifter.bias"] = sd["add_mean.shifter.bias"] + 0.01
    path = tmp_path / "carn_bad.pth"
    torch.save(sd, path)
    with pytest.raises(ImportError_, match="not opposite"):
        import_weights(path, scale=2)
    sd = official_carn_state()
    sd["extra.weight"] = torch.zeros(1)  # a key no rule maps: an error, never ignored
    torch.save(sd, path)
    with pytest.raises(ImportError_):
        import_weights(path, scale=2)
