"""Networks, configs and deployment: exact parameter counts (NETWORKS.md sections 1.5, 6.3, 7.3),
forward at every scale, deploy() equivalence, every config field has an effect, config errors,
the switch metadata, MACs at 720p, and the checkpoint round trip."""

from __future__ import annotations

import dataclasses
import functools
import typing

import pytest
import torch
from torch import nn

import sr_kit.models as sr_models
from sr_kit.blocks import AsymConv
from sr_kit.complexity import count_params, macs_at
from sr_kit.config import (
    CONFIGS,
    ConfigError,
    LMSWNConfig,
    SAFDNetConfig,
    config_from_dict,
    config_to_dict,
    get_config,
    switches,
)
from sr_kit.models import MODELS, build_model, deploy

NETS = ("imdn", "rfdn", "lmswn", "safdnet")
SCALES = (2, 3, 4)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


# --------------------------------------------------------------------------------------------
# Exact parameter counts
# --------------------------------------------------------------------------------------------

PARAMS = {
    "imdn": (694_404, 703_059, 715_176),
    "rfdn": (566_364, 572_859, 581_952),
    "lmswn": (769_560, 776_055, 785_148),
    "safdnet": (474_084, 480_579, 489_672),
}
LMSWN_DEPLOYED = (520_728, 527_223, 536_316)


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("scale", SCALES)
def test_published_parameter_counts(name, scale):
    model = build_model(name, scale=scale)
    assert count_params(model) == PARAMS[name][scale - 2]
    deployed = count_params(deploy(model))
    if name == "lmswn":
        assert deployed == LMSWN_DEPLOYED[scale - 2]
    else:  # nothing to fuse
        assert deployed == PARAMS[name][scale - 2]


def test_bicubic_has_no_parameters():
    assert count_params(build_model("bicubic", scale=4)) == 0


SWITCH_PARAMS_X4 = [
    ("lmswn", {"head": "conv3"}, 767_436),
    ("lmswn", {"head": "dilated"}, 785_148 - 19_056 + 10_992),
    ("lmswn", {"asym": False}, 536_316),
    ("lmswn", {"distill": "fdc"}, 848_508),
    ("lmswn", {"distill": "split"}, 782_340),
    ("lmswn", {"weights": "fixed"}, 785_136),
    ("lmswn", {"weights": "none"}, 785_136),
    ("lmswn", {"weights": "channel"}, 785_712),
    ("lmswn", {"attn": "none"}, 745_548),
    ("lmswn", {"attn": "cca"}, 785_148 - 6 * (6_600 - 339)),
    ("lmswn", {"num_blocks": 5}, 664_402),  # section 6.3, C48 N5
    ("lmswn", {"channels": 52}, 918_276),  # section 6.3, C52 N6
    ("safdnet", {"global_attn": "none"}, 457_248),
    ("safdnet", {"compress_ratio": 1}, 521_208),
    ("safdnet", {"compress_ratio": 4}, 473_904),
    ("safdnet", {"global_attn": "dw3x3"}, 490_536),
    ("safdnet", {"global_attn": "pw"}, 486_216),
    ("safdnet", {"shift_ratio": 0.0}, 489_672),
    ("safdnet", {"shift_ratio": 1 / 2}, 489_672),
    ("safdnet", {"shift_px": 2}, 489_672),
    ("safdnet", {"attn_norm": "relu"}, 489_672),
    ("safdnet", {"distill": False}, 502_920),
    ("safdnet", {"channels": 56}, 660_816),  # section 7.3
    ("safdnet", {"channels": 64}, 857_544),
]


@pytest.mark.parametrize(
    "name,overrides,expected",
    SWITCH_PARAMS_X4,
    ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in o.items())}" for n, o, _ in SWITCH_PARAMS_X4],
)
def test_switch_parameter_counts_at_x4(name, overrides, expected):
    assert count_params(build_model(name, scale=4, **overrides)) == expected


def test_lmswn_asym_off_equals_deployed_size():
    """Claim L2 is a fair comparison: the same deployed size with and without the 1x3/3x1."""
    for scale in SCALES:
        full = count_params(deploy(build_model("lmswn", scale=scale)))
        plain = count_params(build_model("lmswn", scale=scale, asym=False))
        assert full == plain == LMSWN_DEPLOYED[scale - 2]


# --------------------------------------------------------------------------------------------
# Forward at every scale
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("scale", SCALES)
def test_forward_every_model_and_scale(name, scale):
    torch.manual_seed(0)
    model = build_model(name, scale=scale).eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 3, 16 * scale, 16 * scale)
    assert torch.isfinite(y).all()
    assert model.config == get_config(name, scale=scale)


def test_forward_batch_and_non_square():
    torch.manual_seed(0)
    for name in NETS:
        model = build_model(name, scale=3, channels=16, num_blocks=2).eval()
        with torch.no_grad():
            y = model(torch.rand(2, 3, 9, 14))
        assert y.shape == (2, 3, 27, 42), name
        assert torch.isfinite(y).all(), name


# --------------------------------------------------------------------------------------------
# deploy()
# --------------------------------------------------------------------------------------------


def _asym_convs(model: nn.Module) -> int:
    return sum(isinstance(m, AsymConv) for m in model.modules())


@pytest.mark.parametrize(
    "name,overrides",
    [(n, {}) for n in sorted(MODELS)] + [("lmswn", {"asym": False}), ("lmswn", {"scale": 2})],
)
def test_deploy_is_equivalent_and_leaves_the_original(name, overrides):
    torch.manual_seed(0)
    model = build_model(name, **overrides)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    n_asym = _asym_convs(model)
    fused = deploy(model)
    assert _asym_convs(fused) == 0
    assert not fused.training
    assert model.training  # the original keeps its mode ...
    assert _asym_convs(model) == n_asym  # ... its blocks ...
    after = model.state_dict()  # ... and its weights
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    if name == "lmswn" and overrides.get("asym", True):
        assert n_asym == 3 * 6  # three ACConvs per block, all fused
    x = torch.rand(1, 3, 16, 16)
    model.eval()
    with torch.no_grad():
        assert max_diff(fused(x), model(x)) < 1e-5


# --------------------------------------------------------------------------------------------
# Every config field changes the built model
# --------------------------------------------------------------------------------------------

# Small bases keep the test fast. channels=32 gives ESA f = 8, where every shift_ratio choice
# moves a different number of channels (1/3 -> 3, 1/6 -> 1, 1/2 -> 4); at channels=16 (f = 4)
# 1/3 and 1/6 would both move one channel.
SMALL = {"channels": 32, "num_blocks": 2}
# Alternative values for fields that are not switches (switches use their declared choices).
ALTERNATIVES: dict[str, tuple] = {
    "scale": (2, 3, 4),
    "channels": (48,),
    "num_blocks": (1, 3),
    "heads": (2, 8),
    "esa_channels": (8,),  # RLFN's ESA width
    "convs_per_block": (2,),  # smsr
    "units": (2,),  # carn, carn_m: residual units per cascading block
    "multi_scale": (True,),  # carn, carn_m: all three upsamplers
    "num_groups": (2,),  # dlgsanet: residual groups
    "head_channels": (4,),  # dlgsanet: channels per attention head
    "kernel_groups": (4,),  # dlgsanet: predicted kernels per pixel
    "local_kernel": (5,),  # dlgsanet: dynamic kernel size
    "ffn_expansion": (1,),  # dlgsanet: GDFN width
}
# Fields allowed to have no effect, with the reason. There should be none.
EXCEPTIONS: dict[tuple[str, str], str] = {}


def _field_cases() -> list[tuple[str, str, object]]:
    cases = []
    for name, cls in sorted(CONFIGS.items()):
        base = _small_config(name)
        sw = switches(base)
        for f in dataclasses.fields(cls):
            if (name, f.name) in EXCEPTIONS:
                continue
            current = getattr(base, f.name)
            options = sw[f.name]["choices"] if f.name in sw else ALTERNATIVES.get(f.name, ())
            alts = [v for v in options if v != current]
            # A field without an alternative here would go untested: fail loudly instead.
            cases.append((name, f.name, alts))
    return [(n, f, v) for n, f, alts in cases for v in (alts or [None])]


def _small_config(name: str):
    cls = CONFIGS[name]
    keys = {f.name for f in dataclasses.fields(cls)}
    return get_config(name, **{k: v for k, v in SMALL.items() if k in keys})


def _fingerprint(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize(
    "name,field,value",
    _field_cases(),
    ids=lambda v: str(v) if not isinstance(v, float) else f"{v:.3g}",
)
def test_every_config_field_changes_the_model(name, field, value):
    assert value is not None, (
        f"{name}.{field}: no alternative value to try; add one to ALTERNATIVES"
    )
    base_cfg = _small_config(name)
    other_cfg = dataclasses.replace(base_cfg, **{field: value})  # validates in __post_init__
    torch.manual_seed(0)
    base = build_model(base_cfg).eval()
    torch.manual_seed(0)
    other = build_model(other_cfg).eval()
    assert other.config == other_cfg
    if _fingerprint(base) != _fingerprint(other):
        return  # different parameters: the field reached the modules
    x = torch.rand(1, 3, 12, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = base(x), other(x)
    assert a.shape != b.shape or max_diff(a, b) > 1e-6, f"{name}.{field}={value!r} has no effect"


def test_every_registered_config_is_covered():
    covered = {(n, f) for n, f, _ in _field_cases()}
    for name, cls in CONFIGS.items():
        for f in dataclasses.fields(cls):
            assert (name, f.name) in covered or (name, f.name) in EXCEPTIONS


# --------------------------------------------------------------------------------------------
# Config errors
# --------------------------------------------------------------------------------------------


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as info:
        build_model("lmswn", foo=1)
    msg = str(info.value)
    assert "foo" in msg
    for key in ("scale", "channels", "num_blocks", "head", "asym", "distill", "weights", "attn"):
        assert key in msg.split("valid keys:")[1]
    with pytest.raises(ConfigError, match=r"unknown key.*foo.*valid keys"):
        build_model(LMSWNConfig(), foo=1)  # the config-object path too
    with pytest.raises(ConfigError, match="valid keys: scale, channels, num_blocks, heads"):
        build_model("safdnet", asym=False)  # an LMSWN switch is not a SAFDNet key


@pytest.mark.parametrize(
    "name,overrides,pattern",
    [
        (
            "safdnet",
            {"compress_ratio": 3},
            r"compress_ratio=3 is not valid; choose one of \[2, 1, 4\]",
        ),
        ("lmswn", {"head": "x"}, r"head='x' is not valid.*\['pyramid', 'dilated', 'conv3'\]"),
        ("lmswn", {"distill": "x"}, r"\['split1x1', 'fdc', 'split'\]"),
        ("lmswn", {"weights": "x"}, r"\['scalar', 'fixed', 'none', 'channel'\]"),
        ("lmswn", {"attn": "se"}, r"\['esa', 'cca', 'none'\]"),
        ("lmswn", {"asym": "yes"}, r"\[True, False\]"),
        ("safdnet", {"global_attn": "x"}, r"\['acffn', 'dw3x3', 'pw', 'none'\]"),
        ("safdnet", {"attn_norm": "x"}, r"\['softmax', 'relu'\]"),
        ("safdnet", {"shift_ratio": 0.25}, r"shift_ratio=0.25 is not valid"),
        ("safdnet", {"shift_px": 3}, r"shift_px=3 is not valid; choose one of \[1, 2\]"),
        ("lmswn", {"scale": 5}, r"scale=5 is not valid; choose one of \[2, 3, 4\]"),
        ("bicubic", {"scale": 8}, r"choose one of \[2, 3, 4\]"),
        ("lmswn", {"channels": 50}, "channels must divide by 4"),
        ("imdn", {"channels": 3}, "channels must be at least 4, got channels=3"),
        ("rfdn", {"channels": 2}, "channels must be at least 4, got channels=2"),
        ("safdnet", {"channels": 50}, "must divide by 4"),
        ("safdnet", {"heads": 5}, "by heads=5"),
        ("safdnet", {"channels": 44}, r"channels/compress_ratio=22 by heads=4"),
        ("lmswn", {"num_blocks": 0}, "num_blocks must be >= 1"),
        ("lmswn", {"channels": "48"}, "channels must be an int"),
        ("lmswn", {"channels": 48.0}, "channels must be an int"),
        ("safdnet", {"heads": True}, "heads must be an int"),
    ],
)
def test_bad_values_raise_config_error_listing_choices(name, overrides, pattern):
    with pytest.raises(ConfigError, match=pattern):
        build_model(name, **overrides)


def test_unknown_model_lists_known_models():
    known = (
        "bicubic, bsrn, bsrn_s, carn, carn_m, dlgsanet, dlgsanet_tiny, imdn, lmswn, rfdn, rlfn, "
        "rlfn_s, safdnet, smsr"
    )
    with pytest.raises(ConfigError, match=f"known models: {known}$"):
        build_model("edsr")
    assert issubclass(ConfigError, ValueError)


def test_build_model_from_config_with_overrides():
    model = build_model(LMSWNConfig(channels=16, num_blocks=1), asym=False, scale=2)
    assert model.config == LMSWNConfig(channels=16, num_blocks=1, asym=False, scale=2)
    assert _asym_convs(model) == 3 and all(
        m.hor is None for m in model.modules() if isinstance(m, AsymConv)
    )


# --------------------------------------------------------------------------------------------
# switches()
# --------------------------------------------------------------------------------------------


def test_switch_names_per_model():
    assert list(switches(LMSWNConfig())) == ["head", "asym", "distill", "weights", "attn"]
    assert list(switches(SAFDNetConfig())) == [
        "global_attn",
        "compress_ratio",
        "shift_ratio",
        "shift_px",
        "distill",
        "attn_norm",
    ]
    for name in ("imdn", "rfdn", "bicubic"):
        assert switches(get_config(name)) == {}, name


@pytest.mark.parametrize("cfg", [LMSWNConfig(), SAFDNetConfig()], ids=["lmswn", "safdnet"])
def test_claim_switches_have_claim_text(cfg):
    for key, info in switches(cfg).items():
        assert info["doc"].strip(), key
        if key in ("attn", "attn_norm"):
            assert info["claim"] == "", key  # not a claim of the abstract
        else:
            assert info["claim"].strip(), key
        assert info["value"] == getattr(cfg, key)
        assert info["value"] == info["choices"][0], key  # defaults first: the full network


# --------------------------------------------------------------------------------------------
# MACs at 1280x720 output, x4 (fvcore; <= 8 macs_at calls in this file: 5)
# --------------------------------------------------------------------------------------------


@functools.cache
def _macs(name: str, graph: str = "train", **overrides) -> int:
    model = build_model(name, scale=4, **overrides)
    return macs_at(deploy(model) if graph == "deploy" else model, 4)


@pytest.mark.parametrize(
    "name,graph,spec_g",
    [
        ("lmswn", "train", 43.4),
        ("lmswn", "deploy", 29.1),
        ("safdnet", "train", 26.4),
        ("imdn", "train", 40.9),
    ],
)
def test_macs_at_720p_match_spec(name, graph, spec_g):
    macs = _macs(name, graph)
    assert abs(macs / 1e9 - spec_g) / spec_g < 0.02, f"{name} {graph}: {macs / 1e9:.3f}G"


def test_safdnet_macs_include_attention_matmuls():
    """The GAU's MACs = convs + attention matmuls + fvcore's layer-norm charge, exactly.

    fvcore counts convs without bias, charges aten::layer_norm 5 MACs per element (its "rough
    estimate" with affine), and counts GELU, F.normalize, softmax and the temperature product
    as 0. The GAU is the only difference between the default and ``global_attn="none"``.
    """
    n, c, heads = 6, 48, 4
    inner = c // 2  # C' = 24
    hw = 180 * 320  # the x4 LR grid of a 720p output
    conv = hw * (c * 3 * inner + 3 * inner * 3 * 2 + inner * c)  # qkv 1x1, 1x3 + 3x1 dw, proj
    layer_norm = 5 * c * hw
    matmul = 2 * hw * inner * (inner // heads)  # q @ k^T and attn @ v
    assert matmul == 16_588_800
    diff = _macs("safdnet") - _macs("safdnet", global_attn="none")
    assert diff > n * conv
    assert diff - n * conv - n * layer_norm == n * matmul


# --------------------------------------------------------------------------------------------
# Checkpoint round trip
# --------------------------------------------------------------------------------------------

ROUND_TRIP = [
    ("bicubic", {"scale": 3}),
    ("imdn", {"channels": 16, "num_blocks": 2}),
    ("rfdn", {"channels": 16, "num_blocks": 2, "scale": 2}),
    ("lmswn", {"channels": 16, "num_blocks": 2, "head": "dilated", "weights": "channel"}),
    ("safdnet", {"channels": 32, "num_blocks": 2, "shift_ratio": 1 / 6, "heads": 2}),
]


def _save(tmp_path, name, overrides):
    cfg = get_config(name, **overrides)
    torch.manual_seed(0)
    model = build_model(cfg)
    path = tmp_path / f"{name}.pt"
    torch.save({"config": config_to_dict(cfg), "state_dict": model.state_dict()}, path)
    return cfg, model, path


@pytest.mark.parametrize("name,overrides", ROUND_TRIP, ids=[n for n, _ in ROUND_TRIP])
def test_state_dict_round_trip(tmp_path, name, overrides):
    cfg, model, path = _save(tmp_path, name, overrides)
    ckpt = torch.load(path, weights_only=True)
    cfg2 = config_from_dict(ckpt["config"])
    assert cfg2 == cfg
    torch.manual_seed(123)  # different initial weights, so the load has to do the work
    rebuilt = build_model(cfg2)
    rebuilt.load_state_dict(ckpt["state_dict"])
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x), model.eval()(x))


@pytest.mark.parametrize("graph", ["train", "deploy"])
@pytest.mark.parametrize("name,overrides", ROUND_TRIP, ids=[n for n, _ in ROUND_TRIP])
def test_load_model(tmp_path, name, overrides, graph):
    """``sr_kit.models.load_model`` (added by another change): skipped where it does not exist.

    It reads its own file format (``save_model``: a "format" tag, the graph and metadata on top
    of the config and the state_dict), so the file is written with ``save_model``.
    """
    if not hasattr(sr_models, "load_model") or not hasattr(sr_models, "save_model"):
        pytest.skip("sr_kit.models.load_model / save_model do not exist yet")
    cfg = get_config(name, **overrides)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    if graph == "deploy":
        model = deploy(model)
        model.config = cfg
    path = sr_models.save_model(model, tmp_path / f"{name}.pt", graph=graph)
    torch.manual_seed(123)
    loaded = sr_models.load_model(path)
    assert loaded.config == cfg
    assert not loaded.training
    assert _asym_convs(loaded) == (_asym_convs(model) if graph == "train" else 0)
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_config_round_trip_keeps_types():
    cfg = SAFDNetConfig(shift_ratio=1 / 2, distill=False, compress_ratio=4)
    back = config_from_dict(config_to_dict(cfg))
    assert back == cfg
    hints = typing.get_type_hints(SAFDNetConfig)
    assert hints["distill"] is bool and back.distill is False
