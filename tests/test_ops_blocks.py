"""Ops and blocks: the channel shift pixel by pixel, every block x every switch (shape, finite
output, hand-derived parameter count from NETWORKS.md sections 5-7), ACB fusion, ESA sizes, the
global attention unit and the adaptive weights of LMSWN's block."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sr_kit.blocks import (
    CCA,
    ESA,
    IMDB,
    RFDB,
    SAFDB,
    AsymConv,
    ChannelShift,
    DistillWeightBlock,
    GlobalAttention,
    LayerNorm2d,
    PixelShuffleUp,
    PyramidConv,
    make_attn,
)
from sr_kit.complexity import count_params
from sr_kit.ops import channel_shift, shift_groups


def n_params(module: nn.Module) -> int:
    return count_params(module)


def same_weights(dst: nn.Module, src: nn.Module, *, strict: bool = True) -> nn.Module:
    """Copy ``src``'s parameters into ``dst`` (both built with the same layout) and return it."""
    dst.load_state_dict(src.state_dict(), strict=strict)
    return dst


# --------------------------------------------------------------------------------------------
# channel_shift / shift_groups / ChannelShift
# --------------------------------------------------------------------------------------------

# One 3x3 channel holding 1..9, and its four one-pixel shifts written out by hand: the content
# moves in the named direction, the vacated row/column is zero, nothing wraps around.
GRID = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
SHIFTED_1PX = {
    "left": [[2, 3, 0], [5, 6, 0], [8, 9, 0]],
    "right": [[0, 1, 2], [0, 4, 5], [0, 7, 8]],
    "up": [[4, 5, 6], [7, 8, 9], [0, 0, 0]],
    "down": [[0, 0, 0], [1, 2, 3], [4, 5, 6]],
}


def test_channel_shift_moves_each_group_exactly_one_pixel_hand_built():
    # 12 channels, ratio 1/3 -> one channel per direction (left, right, up, down), 8 untouched.
    x = torch.tensor(GRID, dtype=torch.float32).repeat(1, 12, 1, 1)
    x = x + 100 * torch.arange(12.0).view(1, 12, 1, 1) * (x > 0)  # tell the channels apart
    y = channel_shift(x, 1 / 3, 1)
    for c, direction in enumerate(("left", "right", "up", "down")):
        expected = torch.tensor(SHIFTED_1PX[direction], dtype=torch.float32)
        expected = torch.where(expected > 0, expected + 100 * c, expected)
        assert torch.equal(y[0, c], expected), direction
    assert torch.equal(y[:, 4:], x[:, 4:])  # leftover channels untouched
    assert y.shape == x.shape


def _shift_reference(img: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """out[i, j] = img[i - dy, j - dx] where that pixel exists, else 0 (pixel loops, no slicing)."""
    h, w = img.shape
    out = torch.zeros_like(img)
    for i in range(h):
        for j in range(w):
            si, sj = i - dy, j - dx
            if 0 <= si < h and 0 <= sj < w:
                out[i, j] = img[si, sj]
    return out


@pytest.mark.parametrize("px", [1, 2, 3])
@pytest.mark.parametrize("ratio,groups", [(1 / 3, (1, 1, 1, 1)), (1 / 2, (2, 2, 1, 1))])
def test_channel_shift_matches_pixel_loop_reference(px, ratio, groups):
    x = torch.arange(1, 2 * 12 * 5 * 6 + 1, dtype=torch.float32).reshape(2, 12, 5, 6)
    y = channel_shift(x, ratio, px)
    directions = ((0, -px), (0, px), (-px, 0), (px, 0))  # left, right, up, down
    c = 0
    for (dy, dx), n in zip(directions, groups, strict=True):
        for _ in range(n):
            for b in range(2):
                assert torch.equal(y[b, c], _shift_reference(x[b, c], dy, dx)), (c, dy, dx)
            c += 1
    assert c == sum(groups)
    assert torch.equal(y[:, c:], x[:, c:])


def test_channel_shift_two_pixels_hand_built():
    x = torch.arange(1, 17, dtype=torch.float32).reshape(1, 1, 4, 4).repeat(1, 4, 1, 1)
    y = channel_shift(x, 1.0, 2)  # 4 channels, ratio 1 -> one per direction
    g = x[0, 0]
    zero2 = torch.zeros(4, 2)
    assert torch.equal(y[0, 0], torch.cat([g[:, 2:], zero2], dim=1))  # left
    assert torch.equal(y[0, 1], torch.cat([zero2, g[:, :2]], dim=1))  # right
    assert torch.equal(y[0, 2], torch.cat([g[2:], zero2.T], dim=0))  # up
    assert torch.equal(y[0, 3], torch.cat([zero2.T, g[:2]], dim=0))  # down


def test_channel_shift_never_wraps_and_keeps_input():
    x = torch.rand(1, 12, 6, 7) + 1.0  # strictly positive, so a zero can only come from the fill
    before = x.clone()
    y = channel_shift(x, 1 / 3, 1)
    assert torch.equal(x, before)  # pure function: the input is not modified
    assert (y[0, 0, :, -1] == 0).all() and (y[0, 0, :, :-1] > 0).all()  # left: last column
    assert (y[0, 1, :, 0] == 0).all() and (y[0, 1, :, 1:] > 0).all()  # right: first column
    assert (y[0, 2, -1, :] == 0).all() and (y[0, 2, :-1, :] > 0).all()  # up: last row
    assert (y[0, 3, 0, :] == 0).all() and (y[0, 3, 1:, :] > 0).all()  # down: first row
    assert torch.equal(y[0, :4], channel_shift(x[:, :4], 1.0, 1)[0])  # same groups, fewer channels
    assert not torch.equal(y[0, :4], torch.roll(x[0, :4], 1, dims=-1))  # not a roll


def test_channel_shift_px_equal_to_size_empties_the_shifted_channels():
    x = torch.rand(1, 4, 3, 5) + 1.0
    y = channel_shift(x, 1.0, 3)  # up/down by 3 rows of 3: nothing left
    assert (y[0, 2:] == 0).all()
    assert torch.equal(y[0, 0, :, :2], x[0, 0, :, 3:]) and (y[0, 0, :, 2:] == 0).all()  # left
    assert torch.equal(y[0, 1, :, 3:], x[0, 1, :, :2]) and (y[0, 1, :, :3] == 0).all()  # right


def test_channel_shift_px_larger_than_size_gives_zeros():
    x = torch.rand(1, 4, 3, 3) + 1.0
    y = channel_shift(x, 1.0, 4)  # every shifted pixel leaves the 3x3 image
    assert (y == 0).all()


def test_channel_shift_ratio_zero_is_identity():
    x = torch.randn(2, 12, 5, 5)
    assert torch.equal(channel_shift(x, 0.0, 1), x)
    assert torch.equal(ChannelShift(0.0)(x), x)


@pytest.mark.parametrize(
    "channels,ratio,expected",
    [
        (12, 1 / 3, (1, 1, 1, 1)),
        (12, 1 / 6, (1, 1, 0, 0)),
        (12, 1 / 2, (2, 2, 1, 1)),
        (12, 0.0, (0, 0, 0, 0)),
        (12, 1.0, (3, 3, 3, 3)),
        (48, 1 / 3, (4, 4, 4, 4)),
    ],
)
def test_shift_groups_counts(channels, ratio, expected):
    groups = shift_groups(channels, ratio)
    assert groups == expected
    assert sum(groups) == round(channels * ratio)


@pytest.mark.parametrize("ratio,total", [(1 / 3, 4), (1 / 6, 2), (1 / 2, 6)])
def test_channel_shift_moves_exactly_round_c_ratio_channels(ratio, total):
    x = torch.rand(1, 12, 5, 5) + 1.0
    y = channel_shift(x, ratio, 1)
    changed = [c for c in range(12) if not torch.equal(y[0, c], x[0, c])]
    assert changed == list(range(total))


def test_channel_shift_module_has_no_parameters_and_matches_op():
    m = ChannelShift(1 / 3, 2)
    assert n_params(m) == 0 and len(list(m.parameters())) == 0 and len(list(m.buffers())) == 0
    x = torch.randn(1, 12, 6, 6)
    assert torch.equal(m(x), channel_shift(x, 1 / 3, 2))
    assert "ratio=0.3333" in repr(m) and "px=2" in repr(m)


@pytest.mark.parametrize(
    "ratio,px,match",
    [
        (-0.1, 1, r"ratio must be in \[0, 1\], got -0.1"),
        (1.5, 1, r"ratio must be in \[0, 1\], got 1.5"),
        (1 / 3, 0, r"px must be >= 1, got 0"),
        (1 / 3, -1, r"px must be >= 1, got -1"),
    ],
)
def test_bad_shift_arguments_raise(ratio, px, match):
    with pytest.raises(ValueError, match=match):
        ChannelShift(ratio, px)
    with pytest.raises(ValueError, match=match):
        channel_shift(torch.zeros(1, 12, 4, 4), ratio, px)


def test_shift_groups_and_channel_shift_reject_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        shift_groups(12, 1.01)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        channel_shift(torch.zeros(12, 4, 4))


# --------------------------------------------------------------------------------------------
# Every block x every switch value: shape, finite output, exact parameter count
# --------------------------------------------------------------------------------------------

C = 48  # the spec's width; building and running a 48-channel block on 16x16 is cheap
H = W = 16

# Hand-derived counts (NETWORKS.md sections 5-7), with the arithmetic behind each number:
#   3x3 C->C conv: 48*48*9 + 48 = 20,784; 1x3 + 3x1 without bias: 2 * 48*48*3 = 13,824
#   ESA(48), f = 12: 588 + 156 + 4*1,308 + 624 = 6,600 (the shift adds nothing)
#   GAU(48), C' = 24: LN 96 + qkv 3,528 + acffn 2*288 + tau 4 + proj 1,200 = 5,404
#   CCA(48): 48*3+3 + 3*48+48 = 339; CCA(64): 64*4+4 + 4*64+64 = 580
#   MRDWB: 3*34,608 + 3*156 + 5,196 + 2,352 + 6,600 + 2 = 118,442
#   SAFDB: 5,404 + 2*20,784 + 3*1,176 + 10,392 + 4,656 + 6,600 = 72,148
BLOCK_CASES: list[tuple[str, Callable[[], nn.Module], int, int, tuple[int, ...]]] = [
    # id, factory, expected params, input channels, output shape
    ("AsymConv-asym", lambda: AsymConv(C, C), 34_608, C, (1, C, H, W)),
    ("AsymConv-noasym", lambda: AsymConv(C, C, asym=False), 20_784, C, (1, C, H, W)),
    ("AsymConv-8to16", lambda: AsymConv(8, 16), 16 * 8 * 9 + 16 + 2 * 16 * 8 * 3, 8, (1, 16, H, W)),
    ("PyramidConv-pyramid", lambda: PyramidConv(3, C), 19_056, 3, (1, C, H, W)),
    ("PyramidConv-dilated", lambda: PyramidConv(3, C, "dilated"), 10_992, 3, (1, C, H, W)),
    ("PyramidConv-conv3", lambda: PyramidConv(3, C, "conv3"), 1_344, 3, (1, C, H, W)),
    ("ESA", lambda: ESA(C), 6_600, C, (1, C, H, W)),
    ("ESA-shift1/3", lambda: ESA(C, shift_ratio=1 / 3), 6_600, C, (1, C, H, W)),
    ("ESA-shift1/6", lambda: ESA(C, shift_ratio=1 / 6), 6_600, C, (1, C, H, W)),
    ("ESA-shift1/2", lambda: ESA(C, shift_ratio=1 / 2), 6_600, C, (1, C, H, W)),
    ("ESA-shift1/3-px2", lambda: ESA(C, shift_ratio=1 / 3, shift_px=2), 6_600, C, (1, C, H, W)),
    ("CCA-48", lambda: CCA(C), 339, C, (1, C, H, W)),
    ("CCA-64", lambda: CCA(64), 580, 64, (1, 64, H, W)),
    ("LayerNorm2d", lambda: LayerNorm2d(C), 96, C, (1, C, H, W)),
    ("ChannelShift", lambda: ChannelShift(1 / 3), 0, C, (1, C, H, W)),
    ("make_attn-esa", lambda: make_attn("esa", C), 6_600, C, (1, C, H, W)),
    ("make_attn-cca", lambda: make_attn("cca", C), 339, C, (1, C, H, W)),
    ("make_attn-none", lambda: make_attn("none", C), 0, C, (1, C, H, W)),
    ("GAU", lambda: GlobalAttention(C), 5_404, C, (1, C, H, W)),
    ("GAU-dw3x3", lambda: GlobalAttention(C, projector="dw3x3"), 5_548, C, (1, C, H, W)),
    ("GAU-pw", lambda: GlobalAttention(C, projector="pw"), 4_828, C, (1, C, H, W)),
    ("GAU-r1", lambda: GlobalAttention(C, compress_ratio=1), 10_660, C, (1, C, H, W)),
    ("GAU-r4", lambda: GlobalAttention(C, compress_ratio=4), 2_776, C, (1, C, H, W)),
    ("GAU-relu", lambda: GlobalAttention(C, attn_norm="relu"), 5_404, C, (1, C, H, W)),
    ("GAU-heads2", lambda: GlobalAttention(C, heads=2), 5_402, C, (1, C, H, W)),
    ("GAU-heads3", lambda: GlobalAttention(C, heads=3), 5_403, C, (1, C, H, W)),
    ("MRDWB", lambda: DistillWeightBlock(C), 118_442, C, (1, C, H, W)),
    ("MRDWB-noasym", lambda: DistillWeightBlock(C, asym=False), 76_970, C, (1, C, H, W)),
    # fdc: distil 3*1,176, last 10,392, merge 4,656 -> +10,560 per block
    ("MRDWB-fdc", lambda: DistillWeightBlock(C, distill="fdc"), 129_002, C, (1, C, H, W)),
    ("MRDWB-split", lambda: DistillWeightBlock(C, distill="split"), 117_974, C, (1, C, H, W)),
    ("MRDWB-fixed", lambda: DistillWeightBlock(C, weights="fixed"), 118_440, C, (1, C, H, W)),
    ("MRDWB-none", lambda: DistillWeightBlock(C, weights="none"), 118_440, C, (1, C, H, W)),
    ("MRDWB-channel", lambda: DistillWeightBlock(C, weights="channel"), 118_536, C, (1, C, H, W)),
    ("MRDWB-cca", lambda: DistillWeightBlock(C, attn="cca"), 112_181, C, (1, C, H, W)),
    ("MRDWB-attnnone", lambda: DistillWeightBlock(C, attn="none"), 111_842, C, (1, C, H, W)),
    ("SAFDB", lambda: SAFDB(C), 72_148, C, (1, C, H, W)),
    ("SAFDB-gau-none", lambda: SAFDB(C, global_attn="none"), 66_744, C, (1, C, H, W)),
    ("SAFDB-dw3x3", lambda: SAFDB(C, global_attn="dw3x3"), 72_292, C, (1, C, H, W)),
    ("SAFDB-pw", lambda: SAFDB(C, global_attn="pw"), 71_572, C, (1, C, H, W)),
    ("SAFDB-r1", lambda: SAFDB(C, compress_ratio=1), 77_404, C, (1, C, H, W)),
    ("SAFDB-r4", lambda: SAFDB(C, compress_ratio=4), 69_520, C, (1, C, H, W)),
    ("SAFDB-heads2", lambda: SAFDB(C, heads=2), 72_146, C, (1, C, H, W)),
    ("SAFDB-relu", lambda: SAFDB(C, attn_norm="relu"), 72_148, C, (1, C, H, W)),
    ("SAFDB-shift0", lambda: SAFDB(C, shift_ratio=0.0), 72_148, C, (1, C, H, W)),
    ("SAFDB-shift1/6", lambda: SAFDB(C, shift_ratio=1 / 6), 72_148, C, (1, C, H, W)),
    ("SAFDB-shift1/2", lambda: SAFDB(C, shift_ratio=1 / 2), 72_148, C, (1, C, H, W)),
    ("SAFDB-px2", lambda: SAFDB(C, shift_px=2), 72_148, C, (1, C, H, W)),
    # no distillation: GAU + 2 SRBs + 3x3 C->C + ESA = 5,404 + 41,568 + 20,784 + 6,600
    ("SAFDB-nodistill", lambda: SAFDB(C, distill=False), 74_356, C, (1, C, H, W)),
    # IMDB(64): 36,928 + 2*27,712 + 6,928 + 580 + 4,160
    ("IMDB-64", lambda: IMDB(64), 104_020, 64, (1, 64, H, W)),
    ("IMDB-48", lambda: IMDB(C), 58_575, C, (1, C, H, W)),
    # RFDB(48): 3*1,176 + 3*20,784 + 10,392 + 4,656 + 6,600
    ("RFDB", lambda: RFDB(C), 87_528, C, (1, C, H, W)),
    ("PixelShuffleUp-x2", lambda: PixelShuffleUp(C, 2), 5_196, C, (1, 3, 2 * H, 2 * W)),
    ("PixelShuffleUp-x3", lambda: PixelShuffleUp(C, 3), 11_691, C, (1, 3, 3 * H, 3 * W)),
    ("PixelShuffleUp-x4", lambda: PixelShuffleUp(C, 4), 20_784, C, (1, 3, 4 * H, 4 * W)),
]


@pytest.mark.parametrize(
    "factory,expected,in_channels,out_shape",
    [case[1:] for case in BLOCK_CASES],
    ids=[case[0] for case in BLOCK_CASES],
)
def test_block_shape_finite_and_parameter_count(factory, expected, in_channels, out_shape):
    torch.manual_seed(0)
    block = factory()
    assert n_params(block) == expected
    x = torch.rand(1, in_channels, H, W)
    with torch.no_grad():
        y = block(x)
    assert tuple(y.shape) == out_shape
    assert torch.isfinite(y).all()


def test_blocks_run_on_a_batch_and_non_square_input():
    torch.manual_seed(0)
    x = torch.rand(2, 16, 9, 13)
    for block in (
        AsymConv(16, 16),
        ESA(16, shift_ratio=1 / 3),
        CCA(16),
        GlobalAttention(16),
        DistillWeightBlock(16),
        SAFDB(16),
        IMDB(16),
        RFDB(16),
    ):
        with torch.no_grad():
            y = block(x)
        assert y.shape == x.shape, type(block).__name__
        assert torch.isfinite(y).all(), type(block).__name__


@pytest.mark.parametrize(
    "factory,match",
    [
        (lambda: PyramidConv(3, 8, "conv5"), "pyramid, dilated or conv3"),
        (lambda: make_attn("se", 8), "'esa', 'cca' or 'none'"),
        (lambda: DistillWeightBlock(8, distill="bare"), "split1x1, fdc or split"),
        (lambda: DistillWeightBlock(8, weights="learned"), "scalar, fixed, none or channel"),
        (lambda: GlobalAttention(8, projector="conv"), "'acffn', 'dw3x3' or 'pw'"),
        (lambda: GlobalAttention(8, attn_norm="sigmoid"), "'softmax' or 'relu'"),
    ],
)
def test_bad_block_choices_raise_value_error(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


# --------------------------------------------------------------------------------------------
# Shift switch: no parameters, different output
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio,px", [(1 / 3, 1), (1 / 6, 1), (1 / 2, 1), (1 / 3, 2)])
def test_esa_shift_changes_output_not_parameters(ratio, px):
    torch.manual_seed(0)
    plain = ESA(C)
    shifted = same_weights(ESA(C, shift_ratio=ratio, shift_px=px), plain)  # same keys: no params
    assert n_params(shifted) == n_params(plain) == 6_600
    x = torch.rand(1, C, H, W)
    with torch.no_grad():
        assert (shifted(x) - plain(x)).abs().max() > 1e-6


def test_esa_shift_px_changes_output():
    torch.manual_seed(0)
    one = ESA(C, shift_ratio=1 / 3, shift_px=1)
    two = same_weights(ESA(C, shift_ratio=1 / 3, shift_px=2), one)
    x = torch.rand(1, C, H, W)
    with torch.no_grad():
        assert (one(x) - two(x)).abs().max() > 1e-6


@pytest.mark.parametrize("kwargs", [{"shift_ratio": 0.0}, {"shift_ratio": 1 / 6}, {"shift_px": 2}])
def test_safdb_shift_switch_changes_output_not_parameters(kwargs):
    torch.manual_seed(0)
    default = SAFDB(C)
    other = same_weights(SAFDB(C, **kwargs), default)
    assert n_params(other) == n_params(default)
    x = torch.rand(1, C, H, W)
    with torch.no_grad():
        assert (other(x) - default(x)).abs().max() > 1e-6


# --------------------------------------------------------------------------------------------
# AsymConv.fuse
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("asym", [True, False])
@pytest.mark.parametrize("channels", [(48, 48), (8, 16)])
def test_asymconv_fuse_is_equivalent_and_leaves_original(asym, channels):
    torch.manual_seed(0)
    block = AsymConv(*channels, asym=asym)
    with torch.no_grad():  # random, non-trivial weights in every branch (and a bias)
        for p in block.parameters():
            p.copy_(0.1 * torch.randn_like(p))
    before = {k: v.clone() for k, v in block.state_dict().items()}
    fused = block.fuse()
    assert type(fused) is nn.Conv2d
    assert fused.kernel_size == (3, 3) and fused.padding == (1, 1) and fused.bias is not None
    assert (fused.in_channels, fused.out_channels) == channels
    assert n_params(fused) == channels[1] * channels[0] * 9 + channels[1]
    x = torch.randn(2, channels[0], 11, 13)
    with torch.no_grad():
        diff = (fused(x) - block(x)).abs().max().item()
    assert diff < 1e-5
    after = block.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)  # original not modified
    assert fused.weight.data_ptr() != block.square.weight.data_ptr()  # no shared storage
    assert (block.hor is not None) == asym


def test_asymconv_fuse_keeps_dtype():
    block = AsymConv(4, 4).double()
    fused = block.fuse()
    assert fused.weight.dtype == torch.float64
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        assert (fused(x) - block(x)).abs().max() < 1e-12


# --------------------------------------------------------------------------------------------
# ESA: any size >= 3x3, identical to the released ESA (7x7 pooling) from 15x15 on
# --------------------------------------------------------------------------------------------


def esa_reference(esa: ESA, x: torch.Tensor, shift_ratio: float = 0.0, px: int = 1):
    """RFDN's released ESA forward (max-pool 7, stride 3) with the module's weights, plus the
    SAFDNet shift after conv1."""
    c1_ = esa.conv1(x)
    if shift_ratio > 0:
        c1_ = channel_shift(c1_, shift_ratio, px)
    c1 = esa.conv2(c1_)
    v_max = F.max_pool2d(c1, kernel_size=7, stride=3)
    v_range = F.relu(esa.conv_max(v_max))
    c3 = F.relu(esa.conv3(v_range))
    c3 = esa.conv3_(c3)
    c3 = F.interpolate(c3, x.shape[-2:], mode="bilinear", align_corners=False)
    cf = esa.conv_f(c1_)
    return x * torch.sigmoid(esa.conv4(c3 + cf))


def test_esa_runs_on_every_size_from_3_to_20_and_non_square():
    torch.manual_seed(0)
    esa = ESA(8, shift_ratio=1 / 2)
    sizes = [(s, s) for s in range(3, 21)] + [(8, 30), (30, 8), (3, 40), (17, 4)]
    with torch.no_grad():
        for h, w in sizes:
            x = torch.rand(1, 8, h, w)
            y = esa(x)
            assert y.shape == x.shape, (h, w)
            assert torch.isfinite(y).all(), (h, w)


@pytest.mark.parametrize("hw", [(2, 2), (1, 1), (2, 10), (10, 2)])
def test_esa_below_3_pixels_raises_with_what_is_needed(hw):
    with pytest.raises(ValueError, match=r"at least 3x3.*got " + f"{hw[0]}x{hw[1]}"):
        ESA(8)(torch.rand(1, 8, *hw))


@pytest.mark.parametrize("hw", [(15, 15), (16, 16), (20, 20), (15, 40), (23, 17)])
@pytest.mark.parametrize("shift_ratio", [0.0, 1 / 3])
def test_esa_from_15x15_equals_released_esa_with_7x7_pooling(hw, shift_ratio):
    torch.manual_seed(0)
    esa = ESA(16, shift_ratio=shift_ratio)
    x = torch.rand(1, 16, *hw)
    with torch.no_grad():
        assert torch.equal(esa(x), esa_reference(esa, x, shift_ratio))


def test_released_esa_crashes_at_14x14_which_the_kit_handles():
    torch.manual_seed(0)
    esa = ESA(16)
    x = torch.rand(1, 16, 14, 14)
    with torch.no_grad():
        with pytest.raises(RuntimeError):
            esa_reference(esa, x)  # the 7x7 pooling finds a 6x6 map (NETWORKS.md section 5)
        assert esa(x).shape == x.shape


# --------------------------------------------------------------------------------------------
# GlobalAttention (the GAU)
# --------------------------------------------------------------------------------------------


def gau_reference(gau: GlobalAttention, x: torch.Tensor) -> torch.Tensor:
    """The GAU of NETWORKS.md section 7.2 written out with einsum, using the module's weights."""
    b, c, h, w = x.shape
    heads, inner = gau.heads, gau.inner
    mu = x.mean(1, keepdim=True)
    var = x.var(1, keepdim=True, unbiased=False)
    z = (x - mu) / torch.sqrt(var + gau.norm.eps)
    z = z * gau.norm.weight.view(1, c, 1, 1) + gau.norm.bias.view(1, c, 1, 1)
    z = gau.projector(gau.qkv(z))
    q, k, v = (t.reshape(b, heads, inner // heads, h * w) for t in z.split(inner, dim=1))
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    k = k / k.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    a = torch.einsum("bhin,bhjn->bhij", q, k) * gau.temperature.view(1, heads, 1, 1)
    a = a.softmax(-1) if gau.attn_norm == "softmax" else a.clamp_min(0)
    out = torch.einsum("bhij,bhjn->bhin", a, v).reshape(b, inner, h, w)
    return x + gau.proj(out)


@pytest.mark.parametrize("projector", ["acffn", "dw3x3", "pw"])
@pytest.mark.parametrize("attn_norm", ["softmax", "relu"])
def test_gau_matches_written_out_reference(projector, attn_norm):
    torch.manual_seed(0)
    gau = GlobalAttention(16, heads=2, projector=projector, attn_norm=attn_norm)
    with torch.no_grad():
        gau.temperature.copy_(torch.tensor([0.5, 3.0]).view(2, 1, 1))
        gau.norm.weight.add_(0.1 * torch.randn(16))
        x = torch.randn(2, 16, 6, 9)
        assert (gau(x) - gau_reference(gau, x)).abs().max() < 1e-5


def test_gau_shape_and_is_global():
    torch.manual_seed(0)
    gau = GlobalAttention(C)
    x = torch.rand(2, C, 12, 20)
    with torch.no_grad():
        y = gau(x)
        assert y.shape == x.shape and torch.isfinite(y).all()
        x2 = x.clone()
        x2[:, 0, 0, 0] += 1.0  # one channel of one corner pixel (not all: LN would cancel it)
        far = gau(x2)[..., -1, -1] - y[..., -1, -1]  # ... changes the opposite corner
    assert far.abs().max() > 1e-6


@pytest.mark.parametrize(
    "kwargs",
    [
        {"channels": 48, "heads": 5},  # C' = 24 is not divisible by 5
        {"channels": 48, "compress_ratio": 5},
        {"channels": 8, "compress_ratio": 3},
        {"channels": 8, "heads": 3},
        {"channels": 16, "compress_ratio": 4, "heads": 8},  # C' = 4 < heads
    ],
)
def test_gau_validates_compress_ratio_and_heads(kwargs):
    channels = kwargs.pop("channels")
    with pytest.raises(ValueError, match="must divide by compress_ratio"):
        GlobalAttention(channels, **kwargs)


@pytest.mark.parametrize("kwargs", [{"heads": 0}, {"compress_ratio": 0}, {"heads": -2}])
def test_gau_rejects_non_positive_heads_and_ratio_with_value_error(kwargs):
    with pytest.raises(ValueError, match="must be >= 1"):
        GlobalAttention(48, **kwargs)


def test_gau_relu_and_softmax_give_different_outputs():
    torch.manual_seed(0)
    soft = GlobalAttention(16, attn_norm="softmax")
    relu = same_weights(GlobalAttention(16, attn_norm="relu"), soft)
    x = torch.rand(1, 16, 8, 8)
    with torch.no_grad():
        assert (soft(x) - relu(x)).abs().max() > 1e-6
    assert "attn_norm=relu" in repr(relu)
    assert relu.attn_norm == "relu" and isinstance(relu.norm, LayerNorm2d)  # the map vs the LN


@pytest.mark.parametrize("heads", [1, 2, 3, 4, 6])
def test_gau_temperature_has_one_element_per_head(heads):
    gau = GlobalAttention(48, heads=heads)
    assert gau.temperature.numel() == heads
    assert gau.temperature.shape == (heads, 1, 1)
    assert torch.equal(gau.temperature.detach(), torch.ones(heads, 1, 1))  # tau init 1
    assert gau.temperature.requires_grad


def test_gau_temperature_receives_gradient():
    torch.manual_seed(0)
    gau = GlobalAttention(16, heads=4)
    gau(torch.rand(1, 16, 6, 6)).square().sum().backward()
    assert gau.temperature.grad is not None
    assert (gau.temperature.grad.abs() > 0).all()


def test_layernorm2d_normalises_each_pixel_over_channels():
    ln = LayerNorm2d(8)
    x = torch.randn(2, 8, 5, 6) * 3 + 2
    y = ln(x)
    assert torch.allclose(y.mean(1), torch.zeros(2, 5, 6), atol=1e-5)
    assert torch.allclose(y.var(1, unbiased=False), torch.ones(2, 5, 6), atol=1e-3)


# --------------------------------------------------------------------------------------------
# DistillWeightBlock (LMSWN's MRDWB): the two adaptive weights of claim L4
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weights,shape", [("scalar", (1,)), ("channel", (1, 16, 1, 1))])
def test_learnable_weights_exist_and_get_gradients(weights, shape):
    torch.manual_seed(0)
    block = DistillWeightBlock(16, weights=weights)
    assert isinstance(block.lambda_y, nn.Parameter) and isinstance(block.lambda_x, nn.Parameter)
    assert block.lambda_y.shape == shape and block.lambda_x.shape == shape
    assert torch.equal(block.lambda_y.detach(), torch.ones(shape))  # AWSRN: init 1
    names = {n for n, _ in block.named_parameters()}
    assert {"lambda_y", "lambda_x"} <= names
    x = torch.rand(2, 16, 8, 8)
    target = torch.rand(2, 16, 8, 8)
    F.mse_loss(block(x), target).backward()
    for p in (block.lambda_y, block.lambda_x):
        assert p.grad is not None and p.grad.shape == shape
        assert (p.grad.abs() > 0).all()


@pytest.mark.parametrize("weights", ["fixed", "none"])
def test_fixed_and_none_have_no_adaptive_weights(weights):
    block = DistillWeightBlock(16, weights=weights)
    assert block.lambda_y is None and block.lambda_x is None
    assert not any("lambda" in n for n, _ in block.named_parameters())


def test_fixed_none_and_scalar_outputs():
    torch.manual_seed(0)
    none = DistillWeightBlock(16, weights="none")
    fixed = same_weights(DistillWeightBlock(16, weights="fixed"), none)
    scalar = same_weights(DistillWeightBlock(16, weights="scalar"), none, strict=False)
    x = torch.rand(1, 16, 8, 8)
    with torch.no_grad():
        y = none(x)  # the attention branch alone (RFDN's release: no skip)
        assert (fixed(x) - y).abs().max() > 1e-3  # fixed adds the identity
        assert torch.allclose(fixed(x), y + x, atol=1e-6)
        assert torch.allclose(scalar(x), fixed(x), atol=1e-6)  # lambda = 1 at init
        scalar.lambda_y.fill_(2.0)
        scalar.lambda_x.fill_(0.5)
        assert torch.allclose(scalar(x), 2.0 * y + 0.5 * x, atol=1e-5)  # l1 * Y + l2 * X0


def test_channel_weights_scale_each_channel():
    torch.manual_seed(0)
    none = DistillWeightBlock(8, weights="none")
    chan = same_weights(DistillWeightBlock(8, weights="channel"), none, strict=False)
    lam_y = torch.arange(1.0, 9.0).view(1, 8, 1, 1)
    lam_x = torch.linspace(-1, 1, 8).view(1, 8, 1, 1)
    x = torch.rand(1, 8, 6, 6)
    with torch.no_grad():
        chan.lambda_y.copy_(lam_y)
        chan.lambda_x.copy_(lam_x)
        assert torch.allclose(chan(x), lam_y * none(x) + lam_x * x, atol=1e-5)


@pytest.mark.parametrize("distill", ["split1x1", "fdc", "split"])
def test_distill_variants_change_output(distill):
    torch.manual_seed(0)
    block = DistillWeightBlock(16, distill=distill)
    assert block.d == (8 if distill == "fdc" else 4)
    assert (block.distill is None) == (distill == "split")
    with torch.no_grad():
        y = block(torch.rand(1, 16, 8, 8))
    assert y.shape == (1, 16, 8, 8) and torch.isfinite(y).all()
    assert f"distill={distill}" in repr(block)
