"""DLGSANet (light and tiny): exact parameter counts of the official code, the plain-PyTorch
dynamic depthwise conv against a per-pixel convolution, its MAC count, TLC tiling, the two
switches, forward and backward on the CPU (16x16 and non-square inputs).

No weights are tested: the authors' lightweight models were lost (their README)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sr_kit.blocks.dynamic import DynamicDWConv, dynamic_dwconv
from sr_kit.complexity import count_macs, count_params, unsupported_ops
from sr_kit.config import ConfigError, DLGSANetConfig, DLGSANetTinyConfig, switches
from sr_kit.models import build_model
from sr_kit.models.dlgsanet import TLC_KERNEL, DLGSANet, SparseGSA, tlc_tile_starts

SCALES = (2, 3, 4)

# The official DLGSANet built with the Light / Tiny options (NETWORKS.md 1.5; checked by loading
# the official module's state_dict, cupy op swapped for ours, into the kit model, strict=True).
PARAMS = {
    "dlgsanet": (745_188, 751_683, 760_776),
    "dlgsanet_tiny": (565_710, 572_205, 581_298),
}
# Per-block parts at 48 channels (the official code's sizes), used for the switch counts below.
DYNAMIC_PREDICTOR = (48 * 12 + 12) + (12 * 49 + 12) + (12 * 392 + 392)  # 1x1, dw 7x7, 1x1: 6,284
STATIC_DW = 48 * 49 + 48  # depthwise 7x7 with bias: 2,400


@pytest.mark.parametrize("name", sorted(PARAMS))
@pytest.mark.parametrize("scale", SCALES)
def test_parameter_counts_of_the_official_code(name, scale):
    assert count_params(build_model(name, scale=scale)) == PARAMS[name][scale - 2]


def test_tiny_x3_builds_what_the_option_file_builds():
    """The x3 tiny options are *named* 48C3G4B but their network_g says groups 3, blocks 3."""
    assert DLGSANetTinyConfig(scale=3).num_blocks == 3
    assert count_params(build_model("dlgsanet_tiny", scale=3, num_blocks=4)) == 730_899


def test_switch_parameter_counts():
    n = 4 * 3  # HDTBs of DLGSANet-light
    full = PARAMS["dlgsanet"][2]
    assert count_params(build_model("dlgsanet", local="static")) == full - n * (
        DYNAMIC_PREDICTOR - STATIC_DW
    )
    assert count_params(build_model("dlgsanet", attn_norm="softmax")) == full  # no parameters


def test_switch_metadata():
    info = switches(DLGSANetConfig())
    assert list(info) == ["local", "attn_norm"]
    assert info["local"]["choices"] == ["dynamic", "static"]
    assert info["attn_norm"]["choices"] == ["relu", "softmax"]
    assert info["local"]["claim"] == "DLGSANet: dynamic local self-attention"
    assert info["attn_norm"]["claim"] == "DLGSANet: ReLU sparse global self-attention"


@pytest.mark.parametrize(
    "overrides,pattern",
    [
        ({"channels": 44}, "channels must divide by 8"),
        ({"head_channels": 16, "channels": 56}, "head_channels=16"),
        ({"kernel_groups": 5}, "kernel_groups=5"),
        ({"local_kernel": 6}, "local_kernel must be odd"),
        ({"local": "window"}, r"\['dynamic', 'static'\]"),
        ({"attn_norm": "gelu"}, r"\['relu', 'softmax'\]"),
    ],
)
def test_config_errors(overrides, pattern):
    with pytest.raises(ConfigError, match=pattern):
        build_model("dlgsanet", **overrides)


# --------------------------------------------------------------------------------------------
# The dynamic depthwise conv against a direct per-pixel convolution
# --------------------------------------------------------------------------------------------


def per_pixel_reference(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Each sample and pixel: F.conv2d of its k x k neighbourhood with its own depthwise kernel."""
    b, c, h, w = x.shape
    g, k = weight.shape[1], weight.shape[2]
    p = (k - 1) // 2
    xp = F.pad(x, (p, p, p, p))
    out = x.new_zeros(b, c, h, w)
    for n in range(b):
        for y in range(h):
            for z in range(w):
                # (G, k, k) -> (C, 1, k, k): channel c uses its group's kernel
                kern = weight[n, :, :, :, y, z].repeat_interleave(c // g, dim=0).unsqueeze(1)
                patch = xp[n : n + 1, :, y : y + k, z : z + k]
                out[n, :, y, z] = F.conv2d(patch, kern, groups=c)[0, :, 0, 0]
    return out


@pytest.mark.parametrize(
    "k,groups,hw", [(1, 2, (5, 6)), (3, 1, (6, 5)), (3, 4, (4, 7)), (5, 2, (6, 6)), (7, 3, (4, 5))]
)
def test_dynamic_dwconv_equals_per_pixel_conv(k, groups, hw):
    gen = torch.Generator().manual_seed(k * 10 + groups)
    x = torch.randn(2, 6 if groups == 3 else 8, *hw, generator=gen)
    weight = torch.randn(2, groups, k, k, *hw, generator=gen)
    ref = per_pixel_reference(x, weight)
    assert (dynamic_dwconv(x, weight) - ref).abs().max().item() < 1e-5
    # gradients of the hand-written backward against autograd through the reference
    xr, wr = x.clone().requires_grad_(), weight.clone().requires_grad_()
    go = torch.randn(ref.shape, generator=gen)
    want = torch.autograd.grad(per_pixel_reference(xr, wr), (xr, wr), go)
    got = torch.autograd.grad(dynamic_dwconv(xr, wr), (xr, wr), go)
    for a, b in zip(got, want, strict=True):
        assert (a - b).abs().max().item() < 1e-5


def test_dynamic_dwconv_gradcheck():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 4, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(1, 2, 3, 3, 4, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(dynamic_dwconv, (x, w))


def test_dynamic_dwconv_rejects_bad_shapes():
    x = torch.zeros(1, 6, 5, 5)
    with pytest.raises(ValueError, match="odd"):
        dynamic_dwconv(x, torch.zeros(1, 2, 4, 4, 5, 5))
    with pytest.raises(ValueError, match="one kernel per pixel"):
        dynamic_dwconv(x, torch.zeros(1, 2, 3, 3, 5, 4))
    with pytest.raises(ValueError, match="groups"):
        dynamic_dwconv(x, torch.zeros(1, 4, 3, 3, 5, 5))


class _Op(nn.Module):
    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return dynamic_dwconv(x, w)


def test_fvcore_counts_the_dynamic_conv():
    b, c, g, k, h, w = 2, 8, 4, 5, 6, 7
    x, weight = torch.rand(b, c, h, w), torch.rand(b, g, k, k, h, w)
    assert count_macs(_Op(), (x, weight)) == b * c * h * w * k * k
    # the module: predictor (1x1, depthwise k x k, 1x1; biases are free) + the dynamic conv
    hid = c // 4
    per_pixel = c * hid + hid * k * k + hid * g * k * k + c * k * k
    module = DynamicDWConv(c, k, groups=g)
    assert count_macs(module, torch.rand(1, c, h, w)) == h * w * per_pixel
    assert not any("PythonOp" in op for op in unsupported_ops(module, torch.rand(1, c, h, w)))


def test_model_macs_dynamic_minus_static():
    """Swapping the dynamic conv for a static one removes exactly the predictor and the op."""
    h, w = 8, 12
    x = torch.rand(1, 3, h, w)
    small = {"scale": 2, "num_groups": 1, "num_blocks": 2}  # fvcore traces slowly: 2 HDTBs
    dyn = count_macs(build_model("dlgsanet_tiny", **small), x)
    static = count_macs(build_model("dlgsanet_tiny", local="static", **small), x)
    c, hid, g, k = 48, 12, 8, 7
    predictor = c * hid + hid * k * k + hid * g * k * k
    assert dyn - static == 2 * h * w * predictor  # c * k * k of the op = the static dw conv


# --------------------------------------------------------------------------------------------
# SparseGSA and TLC
# --------------------------------------------------------------------------------------------


def test_sparse_gsa_equals_the_formula():
    torch.manual_seed(0)
    attn = SparseGSA(8, heads=2)
    with torch.no_grad():
        attn.temperature.copy_(torch.tensor([0.5, 2.0]).view(2, 1, 1))
    x = torch.randn(1, 8, 3, 5)
    q, k, v = attn.qkv_dwconv(attn.qkv(x)).reshape(1, 3, 2, 4, 15).unbind(1)
    q, k = q / q.norm(dim=-1, keepdim=True), k / k.norm(dim=-1, keepdim=True)
    a = torch.relu(q @ k.transpose(-1, -2) * attn.temperature)
    assert (a == 0).any()  # the ReLU does make the map sparse
    want = attn.project_out((a @ v).reshape(1, 8, 3, 5))
    assert (attn(x) - want).abs().max().item() < 1e-6
    attn.attn_norm = "softmax"
    assert "attn_norm=softmax" in repr(attn)
    a = torch.softmax(q @ k.transpose(-1, -2) * attn.temperature, dim=-1)
    assert (attn(x) - attn.project_out((a @ v).reshape(1, 8, 3, 5))).abs().max().item() < 1e-6


def test_tlc_tile_starts_follow_the_official_grid():
    assert tlc_tile_starts(40, 48) == [0]  # smaller than a tile: one tile, the whole axis
    assert tlc_tile_starts(48, 48) == [0]
    assert tlc_tile_starts(100, 48) == [0, 26, 52]  # 3 tiles, step ceil(52 / 2)
    assert tlc_tile_starts(97, 48) == [0, 25, 49]  # the last one flush with the border
    assert tlc_tile_starts(320, 48) == [0, 46, 92, 138, 184, 230, 272]
    assert TLC_KERNEL == {2: 96, 3: 72, 4: 48}


def test_tlc_averages_the_attention_of_overlapping_tiles():
    torch.manual_seed(0)
    attn = SparseGSA(8, heads=2, tlc_kernel=4).eval()
    x = torch.randn(2, 8, 4, 7)  # tiles at columns 0 and 3 of width 4 (overlap: column 3)
    qkv = attn.qkv_dwconv(attn.qkv(x))
    left, right = attn._attend(qkv[..., 0:4]), attn._attend(qkv[..., 3:7])
    mixed = torch.cat([left[..., :3], (left[..., 3:] + right[..., :1]) / 2, right[..., 1:]], -1)
    with torch.no_grad():
        assert (attn(x) - attn.project_out(mixed)).abs().max().item() < 1e-6
        attn.train()  # training sees the whole image
        assert (attn(x) - attn.project_out(attn._attend(qkv))).abs().max().item() < 1e-6


def test_tlc_is_the_eval_default_and_can_be_switched_off():
    torch.manual_seed(0)
    model = build_model("dlgsanet_tiny", scale=4, num_blocks=1).eval()
    assert {m.tlc_kernel for m in model.modules() if isinstance(m, SparseGSA)} == {48}
    x = torch.rand(1, 3, 50, 20)  # taller than one 48-pixel tile
    with torch.no_grad():
        tiled = model(x)
        model.set_tlc(None)
        whole = model(x)
        model.set_tlc(64)  # one tile covers the image: the same as no tiling
        single = model(x)
    assert (tiled - whole).abs().max().item() > 1e-4
    assert (single - whole).abs().max().item() < 1e-6


# --------------------------------------------------------------------------------------------
# The whole network
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PARAMS))
@pytest.mark.parametrize("hw", [(16, 16), (9, 14)])
def test_forward_backward_cpu(name, hw):
    torch.manual_seed(0)
    model = build_model(name, scale=3)
    x = torch.rand(2, 3, *hw)
    y = model(x)
    assert y.shape == (2, 3, 3 * hw[0], 3 * hw[1])
    y.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # every parameter takes part (the mean buffer is not one)
    assert sum(int(g.abs().sum() > 0) for g in grads) == len(grads)
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model(x[:1])).all()


def test_mean_shift_is_a_constant_buffer():
    model = build_model("dlgsanet", scale=2)
    assert isinstance(model, DLGSANet)
    names = dict(model.named_buffers())
    assert torch.allclose(names["mean"].flatten(), torch.tensor([0.4488, 0.4371, 0.4040]))
    assert "mean" not in dict(model.named_parameters()) and "mean" not in model.state_dict()


@pytest.mark.parametrize("overrides", [{"local": "static"}, {"attn_norm": "softmax"}])
def test_switches_change_the_output(overrides):
    x = torch.rand(1, 3, 10, 12, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    base = build_model("dlgsanet_tiny", scale=2, num_blocks=1).eval()
    torch.manual_seed(0)
    other = build_model("dlgsanet_tiny", scale=2, num_blocks=1, **overrides).eval()
    if overrides.get("attn_norm"):  # same parameters: copy them so only the norm differs
        other.load_state_dict(base.state_dict())
    with torch.no_grad():
        assert (base(x) - other(x)).abs().max().item() > 1e-4
