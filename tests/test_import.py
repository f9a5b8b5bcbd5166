"""Importing released weights, on files the tests make: key mapping, wrappers, range folding,
error messages, provenance, the CLI, and the imported file used like any kit model file."""

from __future__ import annotations

import json
import pickle
import re

import pytest
import torch

from sr_kit.cli import main
from sr_kit.config import ConfigError, IMDNConfig, RFDNConfig
from sr_kit.models import build_model, load_model, save_model
from sr_kit.models.importers import (
    FORMATS,
    ImportError_,
    WeightFormat,
    detect_format,
    import_weights,
    load_released,
    map_keys,
    sha256_file,
)


def _imdn_release_keys(kit_key: str) -> str:
    """The key IMDN's own code gives a kit IMDN tensor (written here from the release's names)."""
    rules = [
        (r"head\.(.*)", r"fea_conv.\1"),
        (r"blocks\.(\d+)\.cca\.gate\.(.*)", lambda m: f"IMDB{int(m[1]) + 1}.cca.conv_du.{m[2]}"),
        (r"blocks\.(\d+)\.(.*)", lambda m: f"IMDB{int(m[1]) + 1}.{m[2]}"),
        (r"gather\.0\.(.*)", r"c.0.\1"),
        (r"post\.(.*)", r"LR_conv.\1"),
        (r"upsampler\.0\.(.*)", r"upsampler.0.\1"),
    ]
    for pat, repl in rules:
        if re.fullmatch(pat, kit_key):
            return "module." + re.sub(pat, repl, kit_key)
    raise AssertionError(kit_key)


def _erfdn_release_key(kit_key: str) -> str:
    m = re.fullmatch(r"blocks\.(\d+)\.(distill|refine)\.(\d)\.(.*)", kit_key)
    if m:
        kind = "d" if m[2] == "distill" else "r"
        return f"B{int(m[1]) + 1}.c{int(m[3]) + 1}_{kind}.{m[4]}"
    m = re.fullmatch(r"blocks\.(\d+)\.(last|merge|esa)\.(.*)", kit_key)
    if m:
        name = {"last": "c4", "merge": "c5", "esa": "esa"}[m[2]]
        return f"B{int(m[1]) + 1}.{name}.{m[3]}"
    return _imdn_release_keys(kit_key)[len("module.") :]


@pytest.fixture()
def small_imdn_release(tmp_path):
    torch.manual_seed(0)
    net = build_model(IMDNConfig(scale=2, channels=16, num_blocks=2)).eval()
    state = {_imdn_release_keys(k): v.clone() for k, v in net.state_dict().items()}
    path = tmp_path / "IMDN_small.pth"
    torch.save(state, path)
    return net, path


def test_imdn_release_imports_exactly(small_imdn_release, tmp_path):
    net, path = small_imdn_release
    out = tmp_path / "imdn.pt"
    imported = import_weights(path, out)
    assert imported.config == net.config  # channels, blocks and scale read from the shapes
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        assert torch.equal(imported(x), net(x))
    # the written file is an ordinary kit model file with provenance
    again = load_model(out)
    with torch.no_grad():
        assert torch.equal(again(x), net(x))
    meta = torch.load(out, weights_only=True)["meta"]["imported"]
    assert meta["source_file"] == "IMDN_small.pth"
    assert meta["source_sha256"] == sha256_file(path)
    assert meta["format"] == "imdn" and meta["original_input_range"] == 1.0


def test_range_folding_reproduces_a_network_fed_0_255(tmp_path):
    """E-RFDN's own test feeds [0, 255]: the imported net on [0, 1] equals it, divided by 255."""
    torch.manual_seed(1)
    cfg = RFDNConfig(scale=3, channels=10, num_blocks=2)  # channels not a multiple of 4
    original = build_model(cfg).eval()  # stands for the released network (weights as trained)
    release = {_erfdn_release_key(k): v.clone() for k, v in original.state_dict().items()}
    path = tmp_path / "RFDN_small.pth"
    torch.save(release, path)
    imported = import_weights(path)
    assert imported.config == cfg
    x = torch.rand(1, 3, 16, 15)
    with torch.no_grad():
        want = original(x * 255.0) / 255.0
        got = imported(x)
    assert (got - want).abs().max().item() < 2e-5
    # and the folding is not a no-op: the unfolded weights on [0, 1] give something else
    with torch.no_grad():
        assert (original(x) - want).abs().max().item() > 1e-2


def test_wrappers_and_prefixes_are_unwrapped(small_imdn_release, tmp_path):
    _, path = small_imdn_release
    state = torch.load(path, weights_only=True)
    bare = {k.removeprefix("module."): v for k, v in state.items()}
    for i, data in enumerate(({"params": bare}, {"state_dict": state}, {"params_ema": bare})):
        wrapped = tmp_path / f"wrapped{i}.pth"
        torch.save(data, wrapped)
        assert set(load_released(wrapped)) == set(bare)
    # BasicSR files keep both; the EMA weights are the ones the authors evaluate
    both = tmp_path / "both.pth"
    ema = {k: v + 1 for k, v in bare.items()}
    torch.save({"params": bare, "params_ema": ema}, both)
    got = load_released(both)
    assert torch.equal(got["fea_conv.weight"], ema["fea_conv.weight"])


def test_unknown_file_lists_the_known_formats(tmp_path):
    path = tmp_path / "mystery.pth"
    torch.save({"encoder.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ImportError_) as info:
        import_weights(path)
    msg = str(info.value)
    assert "mystery.pth" in msg and "encoder.weight" in msg and "Known formats" in msg
    for fmt in FORMATS:
        assert fmt.name in msg


def test_unsafe_and_foreign_files_are_refused(tmp_path):
    pickled = tmp_path / "code.pth"
    with open(pickled, "wb") as fh:
        pickle.dump({"x": ConfigError("not a tensor")}, fh)  # an arbitrary class
    with pytest.raises(ImportError_, match=r"code\.pth: cannot be read safely.*weights_only"):
        load_released(pickled)
    text = tmp_path / "notes.pth"
    text.write_text("hello")
    with pytest.raises(ImportError_, match=r"notes\.pth: cannot be read safely"):
        load_released(text)
    with pytest.raises(ImportError_, match="no such file"):
        load_released(tmp_path / "absent.pth")
    empty = tmp_path / "empty.pth"
    torch.save({"epoch": 3}, empty)
    with pytest.raises(ImportError_, match=r"empty\.pth: holds no tensors"):
        load_released(empty)
    kit = tmp_path / "kit.pt"
    save_model(build_model("imdn", scale=2, channels=8, num_blocks=1), kit)
    with pytest.raises(ImportError_, match="already a kit model file"):
        load_released(kit)


def test_map_keys_names_what_it_cannot_map():
    state = {"a.weight": torch.zeros(1), "b.weight": torch.zeros(1), "up3.weight": torch.zeros(1)}
    out = map_keys(state, [(r"a\.(.*)", r"x.\1"), (r"b\.(.*)", lambda m: f"y.{m[1]}")],
                   drop=[r"up3\..*"])  # fmt: skip
    assert set(out) == {"x.weight", "y.weight"}
    with pytest.raises(ImportError_, match=r"no mapping for 1 key\(s\): b\.weight"):
        map_keys(state, [(r"a\.(.*)", r"x.\1")], drop=[r"up3\..*"])
    with pytest.raises(ImportError_, match="twice"):
        map_keys(state, [(r".*", "same")], drop=[r"up3\..*"])


def test_scale_choice_and_model_restriction(small_imdn_release, monkeypatch):
    _, path = small_imdn_release
    with pytest.raises(ImportError_, match=r"for x2, not x4"):
        import_weights(path, scale=4)
    with pytest.raises(ImportError_, match=r"as model 'rfdn'"):
        import_weights(path, model="rfdn")
    # a multi-scale format needs --scale
    multi = WeightFormat(
        name="test-multi",
        model="imdn",
        description="test",
        detect=lambda s: "fea_conv.weight" in s,
        scales=lambda s: (2, 3),
        config=lambda s, k: IMDNConfig(scale=k),
        convert=lambda s, k: s,
    )
    monkeypatch.setattr("sr_kit.models.importers.FORMATS", [multi])
    with pytest.raises(ImportError_, match=r"multi-scale test-multi file \(x2, x3\).*--scale"):
        import_weights(path)
    assert detect_format(load_released(path)) is multi


def test_cli_import_then_eval_info_and_upscale(small_imdn_release, tmp_path, capsys):
    import numpy as np
    from PIL import Image

    _, path = small_imdn_release
    out = tmp_path / "imdn.pt"
    assert main(["import", str(path), str(out)]) == 0
    assert "imdn x2" in capsys.readouterr().err
    assert main(["info", "--checkpoint", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model"] == "imdn" and info["scale"] == 2
    assert info["meta"]["imported"]["format"] == "imdn"
    img = tmp_path / "in.png"
    Image.fromarray((np.random.default_rng(0).random((20, 24, 3)) * 255).astype(np.uint8)).save(img)
    assert main(["upscale", "--checkpoint", str(out), str(img), str(tmp_path / "o.png")]) == 0
    assert Image.open(tmp_path / "o.png").size == (48, 40)
    folder = tmp_path / "hr"
    folder.mkdir()
    Image.fromarray((np.random.default_rng(1).random((32, 32, 3)) * 255).astype(np.uint8)).save(
        folder / "a.png"
    )
    assert main(["eval", "--checkpoint", str(out), "--data", str(folder)]) == 0
    assert "hr" in capsys.readouterr().out
    assert main(["import", str(tmp_path / "absent.pth"), str(tmp_path / "x.pt")]) == 2
    assert "absent.pth: no such file" in capsys.readouterr().err


def test_rfdn_channel_rule_follows_the_block():
    # E-RFDN, the released AIM 2020 model: 50 channels, which the block handles (C//2, C//4)
    from sr_kit.complexity import count_params

    assert count_params(build_model("rfdn", scale=4, channels=50, num_blocks=4)) == 433_448
    with pytest.raises(ConfigError, match="channels must be at least 4"):
        build_model("rfdn", scale=4, channels=3)
