"""RLFN, RLFN-S, BSRN and BSRN-S: parameter counts of the official code, forward and backward,
what each switch changes, the separable-conv equivalences, and (with ../shared/weights) the
import of every released file against an independent re-implementation of the official forward.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sr_kit.blocks import ESA
from sr_kit.blocks.bsconv import BSConvU, DSConv, conv3x3_factory
from sr_kit.complexity import count_params
from sr_kit.config import BSRNConfig, RLFNConfig, RLFNSConfig, get_config
from sr_kit.models import build_model

NAMES = ("rlfn", "rlfn_s", "bsrn", "bsrn_s")

# x2 / x3 / x4. RLFN(-S) x2/x4 and BSRN(-S) are the sizes of the released files (the tensors they
# hold); x3 of RLFN and x2/x3 of BSRN-S follow from the official code with another upsampler.
PARAMS = {
    "rlfn": (526_856, 533_891, 543_740),
    "rlfn_s": (454_620, 461_115, 470_208),
    "bsrn": (331_628, 340_283, 352_400),
    "bsrn_s": (140_700, 147_195, 156_288),
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scale", (2, 3, 4))
def test_parameter_counts_of_the_official_code(name, scale):
    assert count_params(build_model(name, scale=scale)) == PARAMS[name][scale - 2]


def test_rlfn_s_is_rlfn_with_48_channels():
    a, b = RLFNSConfig(), RLFNConfig(channels=48)
    assert dataclasses.asdict(a) == dataclasses.asdict(b)
    torch.manual_seed(0)
    small = build_model("rlfn_s", scale=2)
    torch.manual_seed(0)
    plain = build_model("rlfn", scale=2, channels=48)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(small(x), plain(x))


# --------------------------------------------------------------------------------------------
# Forward and backward
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_backward_on_cpu(name):
    torch.manual_seed(0)
    model = build_model(name, scale=4).train()
    x = torch.rand(2, 3, 16, 16)
    y = model(x)
    assert y.shape == (2, 3, 64, 64)
    loss = (y - torch.rand_like(y)).abs().mean()
    loss.backward()
    dead = []
    for key, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), key
        if p.grad.abs().sum() == 0:
            dead.append(key)
    # Every weight is on the path to the output; only CCA's 1x1s can get no gradient, when
    # all of its few (C/16) ReLU units start negative on this input.
    assert all(".cca.gate." in k for k in dead), dead


@pytest.mark.parametrize("name", NAMES)
def test_non_square_input(name):
    torch.manual_seed(0)
    model = build_model(name, scale=3, channels=16, num_blocks=2).eval()
    with torch.no_grad():
        y = model(torch.rand(1, 3, 9, 14))
    assert y.shape == (1, 3, 27, 42) and torch.isfinite(y).all()


# --------------------------------------------------------------------------------------------
# Switches: exactly the intended layers change
# --------------------------------------------------------------------------------------------


def _conv_cost(kind: str, i: int, o: int, pw_bias: bool = False) -> int:
    """Parameters of one 3x3 conv of the given kind from i to o channels."""
    if kind == "bsconv":  # 1x1 (i -> o) + depthwise 3x3 on o with bias
        return i * o + (o if pw_bias else 0) + 9 * o + o
    if kind == "dsconv":  # depthwise 3x3 on i with bias + 1x1 (i -> o)
        return 9 * i + i + i * o
    return 9 * i * o + o


def _bsrn_convs(c: int, n: int, *, esa_down: bool) -> list[tuple[int, int]]:
    """Every 3x3 that the ``conv`` switch swaps: head, per block 3 refine + last + ESA's, post."""
    f = c // 4
    esa = [(f, f)] * (4 if esa_down else 3)
    return [(12, c)] + n * ([(c, c)] * 3 + [(c, c // 2)] + esa) + [(c, c)]


@pytest.mark.parametrize("kind", ("dsconv", "conv3"))
@pytest.mark.parametrize("name", ("bsrn", "bsrn_s"))
def test_conv_switch_swaps_every_separable_3x3_and_nothing_else(name, kind):
    cfg = get_config(name, scale=4)
    pw_bias = name == "bsrn_s"  # BSRN-S's pointwise convs are nn.Linear layers (with bias)
    convs = _bsrn_convs(cfg.channels, cfg.num_blocks, esa_down=name == "bsrn")
    rest = PARAMS[name][2] - sum(_conv_cost("bsconv", i, o, pw_bias) for i, o in convs)
    expected = rest + sum(_conv_cost(kind, i, o, pw_bias) for i, o in convs)
    assert count_params(build_model(name, scale=4, conv=kind)) == expected
    if kind == "conv3":
        assert expected > 2 * PARAMS[name][2]  # the separable convs are what keeps BSRN small


def test_bsrn_attention_switch():
    n, c = 8, 64
    cca = c * 4 + 4 + 4 * c + c  # 1x1 C -> C/16 -> C
    f = c // 4
    esa = (c * f + f) + (f * f + f) + 4 * _conv_cost("bsconv", f, f) + (f * c + c)
    full = PARAMS["bsrn"][2]
    assert count_params(build_model("bsrn", attn="esa")) == full - n * cca
    assert count_params(build_model("bsrn", attn="cca")) == full - n * esa
    assert count_params(build_model("bsrn", attn="none")) == full - n * (esa + cca)


def test_rlfn_esa_switch():
    n, c, f = 6, 52, 16
    light = (c * f + f) + (f * f + f) + 2 * (9 * f * f + f) + (f * c + c)  # conv2 and conv3
    full = PARAMS["rlfn"][2]
    assert count_params(build_model("rlfn", esa="full")) == full + n * 2 * (9 * f * f + f)
    assert count_params(build_model("rlfn", esa="none")) == full - n * light
    assert count_params(build_model("rlfn", esa_channels=8)) < full


def test_rlfn_block_switch_puts_rfdb_distillation_back():
    n, c, d = 6, 52, 26
    distill = 3 * (c * d + d) + (9 * c * d + d) + (4 * d * c + c)  # taps, last 3x3, 1x1 fusion
    residual_1x1 = c * c + c  # RLFB's 1x1 after the residual
    model = build_model("rlfn", block="rfdb")
    assert count_params(model) == PARAMS["rlfn"][2] + n * (distill - residual_1x1)
    esa = model.blocks[0].esa
    assert isinstance(esa, ESA) and esa.conv_max is None  # the ESA switch stays independent
    assert esa.conv1.out_channels == 16


def test_rlfb_has_no_distillation_and_one_residual():
    """RLFB(x) = ESA(1x1(LReLU(3x3(LReLU(3x3(LReLU(3x3 x))))) + x)), written out."""
    torch.manual_seed(0)
    block = build_model("rlfn", channels=8, num_blocks=1).blocks[0].eval()
    x = torch.rand(1, 8, 17, 19)
    h = x
    for c in block.convs:
        h = F.leaky_relu(c(h), 0.05)
    with torch.no_grad():
        assert torch.allclose(block(x), block.esa(block.merge(h + x)), atol=1e-6)


# --------------------------------------------------------------------------------------------
# Separable convs and the ESA variants
# --------------------------------------------------------------------------------------------


def test_bsconv_u_is_a_full_conv_with_blueprint_kernels():
    """BSConv-U = a 3x3 conv whose kernel (o, i) is pw[o, i] times one blueprint dw[o]."""
    torch.manual_seed(0)
    bs = BSConvU(5, 7).double()
    full = nn.Conv2d(5, 7, 3, padding=1).double()
    with torch.no_grad():
        full.weight.copy_(bs.pw.weight * bs.dw.weight)  # (7, 5, 1, 1) * (7, 1, 3, 3)
        full.bias.copy_(bs.dw.bias)
        x = torch.randn(2, 5, 9, 11, dtype=torch.float64)
        assert (bs(x) - full(x)).abs().max() < 1e-12
    assert count_params(bs) == 5 * 7 + 9 * 7 + 7 < count_params(full)


def test_dsconv_is_a_full_conv_with_input_side_kernels():
    """DSConv = a 3x3 conv whose kernel (o, i) is pw[o, i] times dw[i] (bias folded through)."""
    torch.manual_seed(0)
    ds = DSConv(5, 7).double()
    full = nn.Conv2d(5, 7, 3, padding=1).double()
    with torch.no_grad():
        full.weight.copy_(ds.pw.weight * ds.dw.weight.permute(1, 0, 2, 3))
        full.bias.copy_(ds.pw.weight[:, :, 0, 0] @ ds.dw.bias)
        x = torch.randn(2, 5, 9, 11, dtype=torch.float64)
        # equal away from the border only: zero padding sees the dw bias, the full conv does not
        assert (ds(x) - full(x))[..., 1:-1, 1:-1].abs().max() < 1e-12


def test_conv3x3_factory_strided_and_unknown():
    x = torch.rand(1, 4, 11, 11)
    for kind in ("bsconv", "dsconv", "conv3"):
        assert conv3x3_factory(kind)(4, 6, stride=2, padding=0)(x).shape == (1, 6, 5, 5)
    with pytest.raises(ValueError, match="bsconv"):
        conv3x3_factory("conv5")


def test_esa_defaults_keep_rfdn_keys_and_variants_have_theirs():
    def keys(m):
        return [k.rsplit(".", 1)[0] for k in m.state_dict() if k.endswith("weight")]

    assert keys(ESA(48)) == ["conv1", "conv_f", "conv_max", "conv2", "conv3", "conv3_", "conv4"]
    assert keys(ESA(48, f=16, pool_convs=1)) == ["conv1", "conv_f", "conv2", "conv3", "conv4"]
    bs = ESA(64, act="gelu", conv=conv3x3_factory("bsconv"))
    assert "conv2.pw" in keys(bs) and "conv_max.dw" in keys(bs)
    with pytest.raises(ValueError, match="pool_convs"):
        ESA(16, pool_convs=2)
    with pytest.raises(ValueError, match="act"):
        ESA(16, act="silu")


def test_bsrn_head_on_repeated_input_equals_summed_3_channel_head():
    torch.manual_seed(0)
    model = build_model("bsrn", channels=16, num_blocks=1, conv="conv3").eval()
    w = model.head.weight  # (16, 12, 3, 3) on the RGB image repeated 4 times
    folded = w.reshape(16, 4, 3, 3, 3).sum(1)
    x = torch.rand(1, 3, 10, 12)
    with torch.no_grad():
        ref = F.conv2d(x, folded, model.head.bias, padding=1)
        assert torch.allclose(model.head(x.repeat(1, 4, 1, 1)), ref, atol=1e-5)


def test_bsrn_config_rejects_bad_values():
    with pytest.raises(ValueError, match="conv"):
        BSRNConfig(conv="bsconv-s")
    with pytest.raises(ValueError, match="at least 4"):
        BSRNConfig(channels=2)


# --------------------------------------------------------------------------------------------
# Released weights: kit model == independent re-implementation of the official forward
# --------------------------------------------------------------------------------------------


def _conv(sd, name, h, stride=1, padding=None):
    w = sd[name + ".weight"]
    pad = w.shape[-1] // 2 if padding is None else padding
    return F.conv2d(h, w, sd.get(name + ".bias"), stride=stride, padding=pad)


def rlfn_reference(sd, x):
    """bytedance/RLFN model/rlfn.py + block.py, from the raw state dict, fed [0, 255]."""
    lrelu = lambda t: F.leaky_relu(t, 0.05)  # noqa: E731
    x = x * 255.0
    f0 = _conv(sd, "conv_1", x)
    h, i = f0, 1
    while f"block_{i}.c1_r.weight" in sd:
        p = f"block_{i}."
        t = lrelu(
            _conv(sd, p + "c3_r", lrelu(_conv(sd, p + "c2_r", lrelu(_conv(sd, p + "c1_r", h)))))
        )
        t = _conv(sd, p + "c5", t + h)
        c1_ = _conv(sd, p + "esa.conv1", t)
        c1 = _conv(sd, p + "esa.conv2", c1_, stride=2, padding=0)
        c3 = _conv(sd, p + "esa.conv3", F.max_pool2d(c1, 7, 3))
        c3 = F.interpolate(c3, t.shape[-2:], mode="bilinear", align_corners=False)
        h = t * torch.sigmoid(_conv(sd, p + "esa.conv4", c3 + _conv(sd, p + "esa.conv_f", c1_)))
        i += 1
    y = _conv(sd, "conv_2", h) + f0
    up = _conv(sd, "upsampler.0", y)
    return F.pixel_shuffle(up, math.isqrt(up.shape[1] // 3)) / 255.0


def _pw(sd, name, h):
    """A 1x1 conv, or BSRN-S's nn.Linear over the channels (NHWC)."""
    w = sd[name + ".weight"]
    if w.dim() == 2:
        return F.linear(h.permute(0, 2, 3, 1), w, sd.get(name + ".bias")).permute(0, 3, 1, 2)
    return F.conv2d(h, w, sd.get(name + ".bias"))


def _bsconv(sd, name, h, stride=1, padding=1):
    h = _pw(sd, name + ".pw", h)
    w = sd[name + ".dw.weight"]
    return F.conv2d(h, w, sd[name + ".dw.bias"], stride=stride, padding=padding, groups=w.shape[0])


def bsrn_reference(sd, x):
    """xiaom233/BSRN BSRN_arch.py (BSRN) and rfdnfinalB5_arch.py (BSRN-S), from the raw state
    dict, fed [0, 1]."""
    small = "B1.cw" in sd  # BSRN-S: Linear 1x1s, plain strided conv in ESA, cw + conv_out, no CCA
    gelu = F.gelu
    f0 = _bsconv(sd, "fea_conv", torch.cat([x, x, x, x], dim=1))
    h, outs, i = f0, [], 1
    while f"B{i}.c1_d.weight" in sd:
        p = f"B{i}."
        parts, r = [], h
        for k in (1, 2, 3):
            parts.append(gelu(_pw(sd, p + f"c{k}_d", r)))
            r = gelu(_bsconv(sd, p + f"c{k}_r", r) + r)
        parts.append(gelu(_bsconv(sd, p + "c4", r)))
        y = _pw(sd, p + "c5", torch.cat(parts, dim=1))
        e = p + "esa."
        c1_ = _pw(sd, e + "conv1", y)
        if small:
            c1 = _conv(sd, e + "conv2", c1_, stride=2, padding=0)
        else:
            c1 = _bsconv(sd, e + "conv2", c1_, stride=2, padding=0)
        v = gelu(_bsconv(sd, e + "conv_max", F.max_pool2d(c1, 7, 3)))
        c3 = _bsconv(sd, e + "conv3_", gelu(_bsconv(sd, e + "conv3", v)))
        c3 = F.interpolate(c3, y.shape[-2:], mode="bilinear", align_corners=False)
        y = y * torch.sigmoid(_pw(sd, e + "conv4", c3 + _pw(sd, e + "conv_f", c1_)))
        if small:
            y = _pw(sd, p + "conv_out", y * sd[p + "cw"][:, :, None, None])
        else:
            mean = y.mean((2, 3), keepdim=True)
            std = (y - mean).pow(2).mean((2, 3), keepdim=True).sqrt()
            g = F.relu(_pw(sd, p + "cca.conv_du.0", std + mean))
            y = y * torch.sigmoid(_pw(sd, p + "cca.conv_du.2", g))
        h = y + h
        outs.append(h)
        i += 1
    t = _bsconv(sd, "c2", gelu(_pw(sd, "c1", torch.cat(outs, dim=1)))) + f0
    up = _conv(sd, "upsampler.upsampleOneStep.0", t)
    return F.pixel_shuffle(up, math.isqrt(up.shape[1] // 3))


RELEASED = [
    # file, kit model, scale, reference
    ("rlfn_x2.pth", "rlfn", 2, rlfn_reference),
    ("rlfn_x4.pth", "rlfn", 4, rlfn_reference),
    ("rlfn_s_x2.pth", "rlfn_s", 2, rlfn_reference),
    ("rlfn_s_x4.pth", "rlfn_s", 4, rlfn_reference),
    ("BSRN_x2.pth", "bsrn", 2, bsrn_reference),
    ("BSRN_x3.pth", "bsrn", 3, bsrn_reference),
    ("BSRN_x4.pth", "bsrn", 4, bsrn_reference),
    ("BSRN-S.pth", "bsrn_s", 4, bsrn_reference),
]


@pytest.fixture(scope="module")
def set5_two(shared_data):
    """Two Set5 images per scale (bird, butterfly) and bicubic's PSNR_Y on them."""
    from sr_kit.data import resolve_dataset
    from sr_kit.data.pairs import PairedDataset
    from sr_kit.evaluate import evaluate

    out = {}
    for s in (2, 3, 4):
        ds = resolve_dataset("set5", s, data_root=shared_data / "benchmarks")
        lr = None if ds.lr_paths is None else ds.lr_paths[1:3]
        two = PairedDataset("Set5-2", s, ds.hr_paths[1:3], lr)
        bic = evaluate(build_model("bicubic", scale=s), [two], scale=s, progress=False)
        out[s] = (two, bic["psnr_y"].mean())
    return out


@pytest.mark.parametrize("file,name,scale,reference", RELEASED, ids=[r[0] for r in RELEASED])
def test_import_released_weights(shared_weights, set5_two, file, name, scale, reference):
    from sr_kit.evaluate import evaluate
    from sr_kit.models.importers import import_weights, load_released

    net = import_weights(shared_weights / file)
    assert net.config == get_config(name, scale=scale)
    assert count_params(net) == PARAMS[name][scale - 2]
    # In float64: on random input these networks reach large activations, where float32
    # rounding alone moves BSRN's output by up to ~1e-2.
    sd = {k: v.double() for k, v in load_released(shared_weights / file).items()}
    x = torch.rand(1, 3, 20, 23, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        ref = reference(sd, x)
        got = copy.deepcopy(net).double()(x)
    assert got.shape == ref.shape == (1, 3, 20 * scale, 23 * scale)
    assert (got - ref).abs().max() < 1e-6  # RLFN's [0, 255] range is folded into float32 weights
    two, bicubic = set5_two[scale]
    psnr = evaluate(net, [two], scale=scale, progress=False)["psnr_y"].mean()
    assert psnr > bicubic + {2: 3.0, 3: 2.5, 4: 2.0}[scale], (psnr, bicubic)


def test_each_family_has_its_own_format(shared_weights):
    from sr_kit.models.importers import ImportError_, detect_format, import_weights, load_released

    expected = {
        "rlfn_x4.pth": "rlfn",
        "rlfn_s_x2.pth": "rlfn-s",
        "BSRN_x3.pth": "bsrn",
        "BSRN-S.pth": "bsrn-s",
    }
    for file, fmt in expected.items():
        assert detect_format(load_released(shared_weights / file)).name == fmt, file
    assert import_weights(shared_weights / "rlfn_s_x4.pth", model="rlfn_s").config.channels == 48
    with pytest.raises(ImportError_, match="as model 'rlfn'"):
        import_weights(shared_weights / "rlfn_s_x4.pth", model="rlfn")
