"""Tests for sr_kit.complexity: exact parameter/MAC counts, cross-checks, latency, memory."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from sr_kit import complexity as cx

# --------------------------------------------------------------------------------------------
# Toy models whose counts can be derived by hand
# --------------------------------------------------------------------------------------------


class ChannelAttention(nn.Module):
    """Channel-wise ("transposed") attention: the attention map is C/h × C/h per head."""

    def __init__(self, channels: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Conv2d(channels, 3 * channels, 1, bias=False)
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = (
            t.reshape(b, self.heads, c // self.heads, h * w) for t in self.qkv(x).chunk(3, 1)
        )
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(-1)
        return self.proj((attn @ v).reshape(b, c, h, w)) + x


def attention_macs(channels: int = 8, heads: int = 2, hw: int = 20) -> int:
    d = channels // heads
    qkv = 3 * channels * channels * hw
    scores = heads * d * d * hw  # q @ kᵀ: (h, d, N) @ (h, N, d)
    mix = heads * d * hw * d  # attn @ v: (h, d, d) @ (h, d, N)
    proj = channels * channels * hw
    return qkv + scores + mix + proj


def conv_zoo() -> nn.Sequential:
    """Strided, grouped, depthwise, dilated and transposed convs, then a PixelShuffle."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.Conv2d(16, 16, 3, stride=2, padding=1),
        nn.Conv2d(16, 16, 3, padding=2, dilation=2, groups=4),
        nn.Conv2d(16, 16, 3, padding=1, groups=16),
        nn.LeakyReLU(0.1),
        nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1),
        nn.Conv2d(8, 3 * 4, 3, padding=1),
        nn.PixelShuffle(2),
    )


def conv_zoo_macs(h: int = 12, w: int = 16) -> int:
    h2, w2 = h // 2, w // 2
    return (
        16 * 3 * 9 * h * w
        + 16 * 16 * 9 * h2 * w2
        + 16 * 4 * 9 * h2 * w2
        + 16 * 1 * 9 * h2 * w2
        + 16 * 8 * 16 * h2 * w2  # transposed: every input pixel scatters a full kernel
        + 12 * 8 * 9 * h * w
    )


def flop_counter_total(model: nn.Module, *args: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(*args)
    return counter.get_total_flops()


class TinySR(nn.Module):
    """head → body (2 residual blocks) → tail, with a global residual (0 MACs of its own)."""

    def __init__(self, c: int = 8, scale: int = 2) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.body = nn.Sequential(
            *[
                nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.GELU(), ChannelAttention(c, 2))
                for _ in range(2)
            ]
        )
        self.tail = nn.Sequential(
            nn.Conv2d(c, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.head(x)
        return self.tail(self.body(f) + f)


# --------------------------------------------------------------------------------------------
# count_params / lr_size_for_output
# --------------------------------------------------------------------------------------------


def test_count_params_hand_computed() -> None:
    assert cx.count_params(nn.Conv2d(3, 8, 3)) == 3 * 8 * 9 + 8 == 224
    assert cx.count_params(nn.Conv2d(3, 8, 3, bias=False)) == 216
    assert cx.count_params(nn.Linear(10, 4)) == 44
    assert cx.count_params(nn.Conv2d(16, 16, 3, groups=4)) == 16 * 4 * 9 + 16
    # BatchNorm: weight + bias count, running statistics (buffers) do not.
    assert cx.count_params(nn.BatchNorm2d(4)) == 8


def test_count_params_trainable_only_and_sharing() -> None:
    shared = nn.Conv2d(3, 3, 3)  # 84 params, used twice
    frozen = nn.Linear(3, 2)  # 8 params
    frozen.requires_grad_(False)
    model = nn.ModuleDict({"a": shared, "b": shared, "f": frozen})
    model.register_buffer("table", torch.zeros(100))
    assert cx.count_params(model) == 84
    assert cx.count_params(model, trainable_only=False) == 92


def test_lr_size_for_output() -> None:
    assert cx.lr_size_for_output(2) == (360, 640)
    assert cx.lr_size_for_output(3) == (240, 427)
    assert cx.lr_size_for_output(4) == (180, 320)
    assert cx.lr_size_for_output(1) == (720, 1280)
    assert cx.lr_size_for_output(3, (10, 11)) == (4, 4)


@pytest.mark.parametrize("scale", [0, -2, 2.0, True, "2"])
def test_lr_size_for_output_rejects_bad_scale(scale: object) -> None:
    with pytest.raises(ValueError, match="scale"):
        cx.lr_size_for_output(scale)  # type: ignore[arg-type]


def test_lr_size_for_output_rejects_bad_size() -> None:
    with pytest.raises(ValueError, match="out_hw"):
        cx.lr_size_for_output(2, (0, 1280))


# --------------------------------------------------------------------------------------------
# count_macs
# --------------------------------------------------------------------------------------------


def test_count_macs_conv_and_linear() -> None:
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert cx.count_macs(conv, torch.zeros(1, 3, 16, 16)) == 8 * 3 * 9 * 16 * 16
    # Linear on (batch, tokens, features): every output element is one length-in dot product.
    assert cx.count_macs(nn.Linear(10, 4), torch.zeros(2, 5, 10)) == 2 * 5 * 10 * 4


def test_count_macs_channel_attention() -> None:
    model = ChannelAttention(8, 2)
    macs = cx.count_macs(model, torch.randn(1, 8, 4, 5))
    assert macs == attention_macs(8, 2, 20) == 6400
    # Elementwise ops, normalisation and softmax are seen but not counted ...
    unsupported = cx.unsupported_ops(model, torch.randn(1, 8, 4, 5))
    assert "aten::softmax" in unsupported
    assert "aten::linalg_vector_norm" in unsupported
    # ... while no multiply-accumulate op is left out.
    assert not {"aten::matmul", "aten::bmm", "aten::baddbmm"} & set(unsupported)


class MatmulZoo(nn.Module):
    """Each multiply-accumulate op fvcore handles badly or not at all."""

    def __init__(self, op: str) -> None:
        super().__init__()
        self.op = op

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.op == "broadcast_matmul":  # (3, 4) @ (2, 5, 4, 6): batch only on the right
            return a[0, 0, :3] @ b
        if self.op == "baddbmm":
            return torch.baddbmm(torch.ones(1), a.flatten(0, 1), b.flatten(0, 1))
        if self.op == "einsum":
            return torch.einsum("bhcn,bhnd->bhcd", a, b)
        if self.op == "einsum_elementwise":
            return torch.einsum("bhcn,bhcn->bhcn", a, a)
        if self.op == "sdpa":  # q (2, 5, 3, 4), k = v = b-shaped (2, 5, 4, 6) transposed
            kv = b.transpose(-2, -1)
            return F.scaled_dot_product_attention(a, kv, kv)
        raise AssertionError(self.op)


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("broadcast_matmul", 2 * 5 * 3 * 4 * 6),  # fvcore's own handle gives 3 * 4 * 6
        ("baddbmm", 10 * 3 * 4 * 6),  # fvcore: unsupported (0)
        ("einsum", 2 * 5 * 3 * 4 * 6),
        ("einsum_elementwise", 0),  # no summed index: elementwise, not counted
        ("sdpa", 2 * 5 * 3 * 6 * 4 + 2 * 5 * 3 * 6 * 4),  # q@kᵀ + attn@v; fvcore: 0
    ],
)
def test_count_macs_matmul_family(op: str, expected: int) -> None:
    a, b = torch.randn(2, 5, 3, 4), torch.randn(2, 5, 4, 6)
    macs = cx.count_macs(MatmulZoo(op), (a, b))
    assert isinstance(macs, int)
    assert macs == expected


def test_count_macs_restores_training_flags() -> None:
    model = TinySR()
    model.train()
    model.body[0].eval()  # a deliberately mixed state must survive
    cx.count_macs(model, torch.zeros(1, 3, 6, 6))
    assert model.training
    assert not model.body[0].training and not model.body[0][0].training
    assert model.body[1].training


def test_macs_at_720p() -> None:
    # One conv + PixelShuffle: MACs = Cout·Cin·k² per LR pixel, with LR = ceil(720p / s).
    for scale, (h, w) in [(2, (360, 640)), (3, (240, 427)), (4, (180, 320))]:
        model = nn.Sequential(nn.Conv2d(3, 3 * scale**2, 3, padding=1), nn.PixelShuffle(scale))
        assert cx.macs_at(model, scale) == 3 * scale**2 * 3 * 9 * h * w
    # The zero input follows the model's dtype (a float64 model would fail on a float32 input).
    model64 = nn.Conv2d(1, 2, 1).double()
    assert cx.macs_at(model64, 2, out_hw=(8, 10), in_channels=1) == 2 * 1 * 4 * 5


# --------------------------------------------------------------------------------------------
# Cross-check against torch.utils.flop_counter (2 FLOPs per MAC)
# --------------------------------------------------------------------------------------------


def test_cross_check_flop_counter_conv_zoo() -> None:
    model, x = conv_zoo(), torch.randn(1, 3, 12, 16)
    macs = cx.count_macs(model, x)
    assert macs == conv_zoo_macs(12, 16) == 492288
    assert 2 * macs == flop_counter_total(model, x)


def test_cross_check_flop_counter_attention() -> None:
    model, x = ChannelAttention(8, 2), torch.randn(1, 8, 4, 5)
    assert 2 * cx.count_macs(model, x) == flop_counter_total(model, x) == 2 * 6400
    sr, y = TinySR(), torch.randn(1, 3, 6, 7)
    assert 2 * cx.count_macs(sr, y) == flop_counter_total(sr, y)


@pytest.mark.parametrize("op", ["broadcast_matmul", "baddbmm", "einsum", "sdpa"])
def test_cross_check_flop_counter_matmul_family(op: str) -> None:
    model, a, b = MatmulZoo(op), torch.randn(2, 5, 3, 4), torch.randn(2, 5, 4, 6)
    # FlopCounterMode has no formula for the fused CPU attention kernel; the math backend
    # decomposes attention into bmm calls that it does count.
    with sdpa_kernel(SDPBackend.MATH):
        assert 2 * cx.count_macs(model, (a, b)) == flop_counter_total(model, a, b)


# --------------------------------------------------------------------------------------------
# module_table
# --------------------------------------------------------------------------------------------


def test_module_table_totals_and_order() -> None:
    model, x = TinySR(c=8, scale=2), torch.randn(1, 3, 6, 7)
    table = cx.module_table(model, x, max_depth=2)
    assert list(table.columns) == ["module", "type", "params", "macs", "params_pct", "macs_pct"]
    expected_names = ["", "head", "body", "body.0", "body.1", "tail", "tail.0", "tail.1"]
    assert table["module"].tolist() == ["(total)", *expected_names[1:]]
    assert table["type"].tolist()[:3] == ["TinySR", "Conv2d", "Sequential"]

    root = table.iloc[0]
    assert root["params"] == cx.count_params(model)
    assert root["macs"] == cx.count_macs(model, x)
    assert root["params_pct"] == root["macs_pct"] == 100.0

    # The root runs only an elementwise add itself, so its direct children sum to it.
    rows = table.set_index("module")
    children = rows.loc[["head", "body", "tail"]]
    assert children["params"].sum() == root["params"]
    assert children["macs"].sum() == root["macs"]
    assert children["macs_pct"].sum() == pytest.approx(100.0)
    assert rows.loc[["body.0", "body.1"], "macs"].sum() == rows.loc["body", "macs"]

    # Hand-computed leaf: head conv at 6×7.
    assert rows.loc["head", "macs"] == 8 * 3 * 9 * 42
    assert rows.loc["head", "params"] == 8 * 3 * 9 + 8
    assert rows.loc["tail.1", "macs"] == rows.loc["tail.1", "params"] == 0


def test_module_table_depth() -> None:
    model, x = TinySR(), torch.randn(1, 3, 5, 5)
    assert cx.module_table(model, x, max_depth=0)["module"].tolist() == ["(total)"]
    deep = cx.module_table(model, x, max_depth=3)
    assert "body.0.2" in deep["module"].tolist()
    assert deep["module"].str.count(r"\.").max() == 2
    with pytest.raises(ValueError):
        cx.module_table(model, x, max_depth=-1)


def test_lazy_imports() -> None:
    code = (
        "import sys, sr_kit.complexity\n"
        "assert 'fvcore' not in sys.modules and 'pandas' not in sys.modules, sys.modules.keys()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------------------------
# latency / peak_memory / device_name
# --------------------------------------------------------------------------------------------


def _conv_chain(inplace: bool) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=inplace), nn.Conv2d(8, 4, 3, padding=1)
    )


def _check_latency(result: cx.Latency, repeats: int) -> None:
    assert result.repeats == repeats
    for value in (result.median_ms, result.p10_ms, result.p90_ms):
        assert math.isfinite(value) and value > 0
    assert result.p10_ms <= result.median_ms <= result.p90_ms


def test_latency_cpu() -> None:
    model, x = _conv_chain(False), torch.randn(1, 3, 16, 16)
    result = cx.latency(model, x, warmup=1, repeats=4)
    _check_latency(result, 4)
    assert (result.device, result.dtype, result.channels_last) == ("cpu", "float32", False)
    assert model.training  # restored


def test_latency_cpu_channels_last_bf16_does_not_mutate() -> None:
    model, x = _conv_chain(False), torch.randn(1, 3, 16, 16)
    result = cx.latency(model, x, warmup=1, repeats=3, dtype=torch.bfloat16, channels_last=True)
    _check_latency(result, 3)
    assert result.dtype == "bfloat16 (autocast)" and result.channels_last
    weight = model[0].weight
    assert weight.is_contiguous() and weight.dtype == torch.float32  # caller's copy untouched
    single = cx.latency(model, x, warmup=0, repeats=1)
    assert single.p10_ms == single.median_ms == single.p90_ms
    with pytest.raises(ValueError):
        cx.latency(model, x, repeats=0)
    with pytest.raises(ValueError):
        cx.latency(model, x, dtype=torch.int8)


def test_peak_memory_cpu_exact() -> None:
    x = torch.randn(1, 3, 16, 16)
    act8, act4 = 8 * 16 * 16 * 4, 4 * 16 * 16 * 4  # float32 bytes of the 8- and 4-channel maps
    # Out-of-place ReLU: conv1's output and ReLU's output are alive together (2·act8); conv1's
    # is freed once Sequential rebinds its variable, so conv2 peaks lower (act8 + act4).
    assert cx.peak_memory(_conv_chain(False), x) == 2 * act8 == 16384
    # In-place ReLU allocates nothing: the peak is conv1 + conv2 outputs.
    assert cx.peak_memory(_conv_chain(True), x) == act8 + act4 == 12288
    # Linear's weight transpose is a view of the parameter and adds nothing.
    mlp = nn.Sequential(nn.Linear(16, 32), nn.Linear(32, 8))
    assert cx.peak_memory(mlp, torch.randn(4, 16)) == (4 * 32 + 4 * 8) * 4
    # A pure view of the input allocates nothing.
    assert cx.peak_memory(nn.Flatten(), x) == 0


def test_device_name_cpu() -> None:
    name = cx.device_name("cpu")
    assert name.startswith("cpu: ") and len(name) > len("cpu: ")


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@cuda
def test_latency_and_peak_memory_cuda() -> None:
    model, x = _conv_chain(False), torch.randn(1, 3, 64, 64)
    result = cx.latency(model, x, device="cuda", warmup=2, repeats=5, dtype=torch.bfloat16)
    _check_latency(result, 5)
    assert result.device.startswith("cuda:") and result.dtype == "bfloat16 (autocast)"
    assert next(model.parameters()).device.type == "cpu"  # a copy was moved
    peak = cx.peak_memory(model, x, device="cuda")
    assert peak >= 8 * 64 * 64 * 4 + 4 * 64 * 64 * 4
    assert peak < 64 * 2**20
    assert cx.device_name("cuda") == torch.cuda.get_device_name(0)
