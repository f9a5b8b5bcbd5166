"""Configs: validation, key=value overrides, JSON round trip, switches, and the model registry."""

from __future__ import annotations

import dataclasses
import json
from typing import ClassVar, Literal

import pytest
import torch

from sr_kit.config import (
    CONFIGS,
    BicubicConfig,
    ConfigError,
    ModelConfig,
    apply_overrides,
    config_from_dict,
    config_hash,
    config_to_dict,
    get_config,
    switch,
    switches,
)
from sr_kit.models import MODELS, build_model, deploy


@dataclasses.dataclass(frozen=True)
class ToyConfig(ModelConfig):
    """A config with one switch of each kind, to test the machinery without a network."""

    name: ClassVar[str] = "toy"
    channels: int = 8
    asym: bool = switch(True, "1x3 + 3x1 branches", claim="L2")
    head: Literal["pyramid", "conv3"] = switch("pyramid", "stem", claim="L1")
    shift_ratio: float = switch(1 / 3, "shifted share", claim="S3", choices=(1 / 3, 0.0, 0.5))


def test_registry_has_a_builder_for_every_config():
    assert set(CONFIGS) == set(MODELS)
    assert "bicubic" in CONFIGS


def test_overrides_parse_by_field_type():
    cfg = ToyConfig()
    new = apply_overrides(cfg, ["asym=false", "head=conv3", "channels=16", "shift_ratio=0"])
    assert new == ToyConfig(asym=False, head="conv3", channels=16, shift_ratio=0.0)
    # A fraction typed by hand snaps to the declared choice.
    assert apply_overrides(new, ["shift_ratio=1/3"]).shift_ratio == ToyConfig().shift_ratio
    assert apply_overrides(cfg, ["asym=0"]).asym is False


@pytest.mark.parametrize(
    "item,message",
    [
        ("depth=3", "unknown key.*depth.*valid keys: scale, channels, asym, head, shift_ratio"),
        ("asym=maybe", r"asym='maybe'; expected one of \[True, False\]"),
        ("head=conv5", r"head='conv5' is not valid; choose one of \['pyramid', 'conv3'\]"),
        ("shift_ratio=0.25", "shift_ratio=0.25 is not valid"),
        ("channels=many", "expected an integer"),
        ("channels=0", "channels must be >= 1"),
        ("scale=5", r"scale=5 is not valid; choose one of \[2, 3, 4\]"),
        ("asym", "key=value"),
    ],
)
def test_bad_overrides_name_the_key_and_the_valid_values(item, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(ToyConfig(), [item])


def test_switches_report_value_choices_doc_and_claim():
    sw = switches(ToyConfig())
    assert list(sw) == ["asym", "head", "shift_ratio"]  # plain sizes are not switches
    assert sw["asym"] == {
        "value": True,
        "choices": [True, False],
        "doc": "1x3 + 3x1 branches",
        "claim": "L2",
    }
    assert sw["head"]["choices"] == ["pyramid", "conv3"]
    assert switches(BicubicConfig()) == {}


def test_json_round_trip_and_hash():
    cfg = BicubicConfig(scale=3)
    data = json.loads(json.dumps(config_to_dict(cfg)))
    assert data == {"model": "bicubic", "scale": 3}
    assert config_from_dict(data) == cfg
    assert config_hash(cfg) == config_hash(BicubicConfig(scale=3))
    assert config_hash(cfg) != config_hash(BicubicConfig(scale=4))
    with pytest.raises(ConfigError, match="'model' key"):
        config_from_dict({"scale": 3})
    with pytest.raises(ConfigError, match="unknown key"):
        config_from_dict({"model": "bicubic", "scale": 3, "asym": True})


def test_unknown_model_lists_known_ones():
    with pytest.raises(ConfigError, match="unknown model 'edsr'; known models: bicubic"):
        get_config("edsr")
    with pytest.raises(ConfigError, match="unknown model"):
        build_model("edsr")


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_model_upscales_and_has_no_parameters(scale):
    model = build_model("bicubic", scale=scale)
    assert model.config == BicubicConfig(scale=scale)
    assert sum(p.numel() for p in model.parameters()) == 0
    x = torch.rand(2, 3, 9, 11)
    y = model(x)
    assert y.shape == (2, 3, 9 * scale, 11 * scale)
    assert torch.equal(deploy(model)(x), y)
    # the form ONNX export uses: per-phase convolutions on a mirrored border, the same resize
    conv = model.export_form()
    assert type(conv).__name__ == "BicubicConv"
    assert sum(p.numel() for p in conv.parameters()) == 0
    assert (conv(x) - y).abs().max().item() < 1e-6
    for h, w in ((2, 2), (2, 7), (5, 3), (16, 9)):  # down to the smallest size it takes
        x64 = torch.rand(1, 2, h, w, dtype=torch.float64)
        assert (conv(x64) - model(x64)).abs().max().item() < 1e-12


def test_build_model_from_config_with_overrides():
    model = build_model(BicubicConfig(scale=2), scale=4)
    assert model.scale == 4


def test_deploy_replaces_fusable_children_and_leaves_the_original():
    class Fusable(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Conv2d(2, 2, 3, padding=1)
            self.b = torch.nn.Conv2d(2, 2, 3, padding=1)

        def forward(self, x):
            return self.a(x) + self.b(x)

        def fuse(self):
            conv = torch.nn.Conv2d(2, 2, 3, padding=1)
            conv.weight.data = self.a.weight.data + self.b.weight.data
            conv.bias.data = self.a.bias.data + self.b.bias.data
            return conv

    net = torch.nn.Sequential(Fusable(), torch.nn.ReLU(), torch.nn.Sequential(Fusable()))
    fused = deploy(net)
    assert isinstance(net[0], Fusable) and isinstance(fused[0], torch.nn.Conv2d)
    assert isinstance(fused[2][0], torch.nn.Conv2d)
    x = torch.rand(1, 2, 8, 8)
    torch.testing.assert_close(fused(x), net(x), atol=1e-5, rtol=0)
