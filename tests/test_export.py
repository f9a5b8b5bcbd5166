"""ONNX export: every network exports with dynamic batch/height/width and ONNX Runtime matches
PyTorch at odd and even sizes; provenance in the file; the kit's eval and upscale run .onnx files
with the same numbers; bad input gets a clear error and leaves no file behind."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from sr_kit import __version__
from sr_kit.cli import main
from sr_kit.config import CONFIGS, ONNX_CHECK_SIZES, config_to_dict, get_config
from sr_kit.data import resolve_dataset
from sr_kit.evaluate import evaluate, summarize
from sr_kit.export import ExportError, OnnxModel, export_onnx, parse_size
from sr_kit.models import MODELS, build_model, save_model
from sr_kit.upscale import upscale_array

REPO = Path(__file__).resolve().parents[1]
# Small widths keep the exports fast; DLGSANet's 3x3 dynamic kernel instead of 7x7 for the same.
SMALL = {"channels": 16, "num_blocks": 1, "num_groups": 1, "local_kernel": 3, "units": 1}


def _small(name: str, scale: int = 4):
    keys = {f.name for f in dataclasses.fields(CONFIGS[name])}
    torch.manual_seed(0)
    return build_model(
        get_config(name, scale=scale, **{k: v for k, v in SMALL.items() if k in keys})
    )


@pytest.fixture(scope="module")
def lmswn_file(tmp_path_factory):
    """A small LMSWN x2 model file and its export."""
    folder = tmp_path_factory.mktemp("onnx")
    model = _small("lmswn", scale=2)
    pt = save_model(model, folder / "lmswn.pt")
    report = export_onnx(pt, folder / "lmswn.onnx")
    return model, pt, report


# ----------------------------------------------------------------------------------------------
# Every network
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_network_exports_and_onnx_runtime_matches(name, tmp_path):
    scale = 3 if name in ("imdn", "carn_m") else 4  # a x3 too: PixelShuffle(3) in the graph
    model = _small(name, scale)
    report = export_onnx(model, tmp_path / f"{name}.onnx")
    # every default size, and the first again as a batch of two; all within the tolerance
    assert [c[:3] for c in report.checks] == [(1, h, w) for h, w in ONNX_CHECK_SIZES] + [
        (2, *ONNX_CHECK_SIZES[0])
    ]
    assert all(c[3] <= 1e-4 for c in report.checks)
    dims = onnx.load(str(report.path)).graph.input[0].type.tensor_type.shape.dim
    assert [bool(d.dim_param) for d in dims] == [True, False, True, True]  # N, 3, H, W
    # the whole chain against the network as built (training graph, eval mode), at a size none
    # of the checks used: deploy, the export forms (bicubic, SMSR) and the runtime change nothing
    # (19x30 is below DLGSANet's 48-pixel TLC tile, where its tiled attention is whole-image)
    x = torch.rand(1, 3, 19, 30, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        expected = model.eval()(x)
    got = OnnxModel(report.path)(x)
    assert got.shape == (1, 3, 19 * scale, 30 * scale)
    assert (got - expected).abs().max().item() < 1e-4


def test_min_size_follows_the_network():
    """ESA's 7x7 max-pool window needs a 15x15 LR input in a static graph; plain convs do not."""
    assert _min_size_of("rfdn") == 15
    assert _min_size_of("imdn") == 1
    assert _min_size_of("bicubic") == 2  # the mirrored border needs two pixels


def _min_size_of(name: str) -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return export_onnx(_small(name), Path(d) / "m.onnx", check_sizes=[(20, 20)]).min_size


def test_dlgsanet_exports_with_whole_image_attention_and_says_so(tmp_path):
    report = export_onnx(_small("dlgsanet"), tmp_path / "d.onnx")
    assert report.notes and "TLC off" in report.notes[0]
    assert "TLC off" in report.metadata["notes"] and "TLC off" in report.summary()


# ----------------------------------------------------------------------------------------------
# Provenance and atomic writes
# ----------------------------------------------------------------------------------------------


def test_metadata_records_the_provenance(lmswn_file):
    model, pt, report = lmswn_file
    meta = OnnxModel(report.path).metadata
    assert meta["kit_version"] == __version__
    assert meta["opset"] == "18"
    assert meta["source"] == "lmswn.pt"
    assert meta["source_sha256"] == hashlib.sha256(pt.read_bytes()).hexdigest()
    assert json.loads(meta["config"]) == config_to_dict(model.config)
    assert meta["model"] == "lmswn" and meta["scale"] == "2" and meta["min_size"] == "15"
    assert json.loads(meta["checked"]) == [[1, h, w] for h, w in ONNX_CHECK_SIZES] + [[2, 17, 23]]
    proto = onnx.load(str(report.path))
    assert proto.opset_import[0].version == 18 or any(o.version == 18 for o in proto.opset_import)
    assert proto.producer_name == "sr-kit"


def test_a_failed_check_writes_nothing_and_keeps_the_old_file(tmp_path):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"old")
    with pytest.raises(ExportError, match=r"1x3x17x23 input: max \|diff\| .* > -1"):
        export_onnx(_small("imdn"), out, tolerance=-1.0)
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temporary file left


def test_an_in_memory_model_is_hashed_by_its_weights(tmp_path):
    a = export_onnx(_small("imdn"), tmp_path / "a.onnx", check_sizes=[(8, 8)])
    b = export_onnx(_small("imdn"), tmp_path / "b.onnx", check_sizes=[(8, 8)])
    other = _small("imdn")
    with torch.no_grad():
        next(other.parameters()).add_(1.0)
    c = export_onnx(other, tmp_path / "c.onnx", check_sizes=[(8, 8)])
    assert a.metadata["source"] == "in-memory model"
    assert a.metadata["source_sha256"] == b.metadata["source_sha256"]
    assert a.metadata["source_sha256"] != c.metadata["source_sha256"]


# ----------------------------------------------------------------------------------------------
# The kit runs .onnx files: eval, upscale, CLI
# ----------------------------------------------------------------------------------------------


def test_eval_of_the_onnx_file_equals_pytorch(lmswn_file):
    model, _, report = lmswn_file
    data = [resolve_dataset("embedded", 2)]
    torch_psnr = summarize(evaluate(model, data, scale=2, progress=False)).PSNR_Y.item()
    onnx_psnr = summarize(evaluate(OnnxModel(report.path), data, scale=2, progress=False))
    assert abs(onnx_psnr.PSNR_Y.item() - torch_psnr) < 1e-3


def test_upscale_of_the_onnx_file_equals_pytorch_tiles_and_all(lmswn_file):
    model, _, report = lmswn_file
    lr = np.random.default_rng(0).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    onnx_model = OnnxModel(report.path)
    for tile in (None, 32):  # 32: a batch of four tiles per run (the batch is dynamic)
        a = upscale_array(model, lr, tile=tile, overlap=8).astype(int)
        b = upscale_array(onnx_model, lr, tile=tile, overlap=8).astype(int)
        assert a.shape == b.shape == (90, 140, 3)
        # float32 sums in another order may flip a rare pixel by one grey level
        assert np.abs(a - b).max() <= 1 and (a != b).mean() < 1e-3


def test_cli_export_eval_and_upscale(capsys, tmp_path, lmswn_file):
    _, pt, _ = lmswn_file
    out = tmp_path / "cli.onnx"
    assert main(["export", "--checkpoint", str(pt), "--onnx", str(out),
                 "--check-size", "17x23", "--check-size", "32x32"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    assert "ONNX Runtime matches the PyTorch deployed graph" in captured.err
    assert "1x3x17x23" in captured.err and "1x3x32x32" in captured.err

    assert main(["eval", "--checkpoint", str(out), "--data", "embedded"]) == 0
    onnx_table = capsys.readouterr().out
    assert main(["eval", "--checkpoint", str(pt), "--data", "embedded"]) == 0
    assert capsys.readouterr().out == onnx_table  # the same table to the printed 0.01 dB

    from PIL import Image

    lr = np.random.default_rng(1).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    Image.fromarray(lr).save(tmp_path / "in.png")
    assert main(["upscale", "--checkpoint", str(out), str(tmp_path / "in.png"),
                 str(tmp_path / "out.png")]) == 0  # fmt: skip
    assert np.array(Image.open(tmp_path / "out.png")).shape == (40, 48, 3)


def test_cli_export_of_an_untrained_model_says_so(capsys, tmp_path):
    out = tmp_path / "b.onnx"
    assert main(["export", "--model", "bicubic", "--scale", "2", "--onnx", str(out)]) == 0
    assert "untrained bicubic x2" in capsys.readouterr().err
    assert OnnxModel(out).scale == 2


# ----------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------


def test_an_alien_file_is_refused_by_name(tmp_path):
    alien = tmp_path / "photo.onnx"
    alien.write_bytes(b"\x89PNG not a model")
    with pytest.raises(ExportError, match=r"photo\.onnx: not an ONNX model"):
        OnnxModel(alien)
    with pytest.raises(ExportError, match=r"missing\.onnx: no such ONNX file"):
        OnnxModel(tmp_path / "missing.onnx")


def _save_graph(path: Path, inputs, outputs, nodes) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


def test_an_onnx_file_that_is_not_an_sr_model_is_refused(tmp_path):
    two_inputs = _save_graph(
        tmp_path / "add.onnx",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in "ab"],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 4])],
        [helper.make_node("Add", ["a", "b"], ["c"])],
    )
    with pytest.raises(ExportError, match=r"add\.onnx: not an SR model.*2 inputs"):
        OnnxModel(two_inputs)
    vector = _save_graph(
        tmp_path / "vec.onnx",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 10])],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 10])],
        [helper.make_node("Relu", ["a"], ["b"])],
    )
    with pytest.raises(ExportError, match=r"vec\.onnx: not an SR model.*shape \[1, 10\]"):
        OnnxModel(vector)
    same_size = _save_graph(  # image in, image out, but not upscaled
        tmp_path / "relu.onnx",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_node("Relu", ["a"], ["b"])],
    )
    with pytest.raises(ExportError, match=r"relu\.onnx: not an SR model: a 1x3x32x32 input gives"):
        OnnxModel(same_size)


def test_a_foreign_sr_onnx_file_gets_its_scale_from_a_probe(tmp_path):
    """An SR model exported elsewhere (no sr_kit metadata) still runs; its scale is measured."""
    up = _save_graph(
        tmp_path / "nearest.onnx",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, ["n", 3, "H", "W"])],
        [
            helper.make_node(
                "Constant",
                [],
                ["s"],
                value=helper.make_tensor("s", TensorProto.FLOAT, [4], [1, 1, 3, 3]),
            ),
            helper.make_node("Resize", ["a", "", "s"], ["b"], mode="nearest"),
        ],
    )
    model = OnnxModel(up)
    assert model.config is None and model.scale == 3
    assert model(torch.rand(2, 3, 5, 7)).shape == (2, 3, 15, 21)


def test_sizes_below_what_the_graph_accepts_are_refused(tmp_path, lmswn_file):
    _, pt, report = lmswn_file
    with pytest.raises(ExportError, match=r"check size 8x40 is smaller than the 15x15 LR pixels"):
        export_onnx(pt, tmp_path / "small.onnx", check_sizes=[(8, 40)])
    assert not (tmp_path / "small.onnx").exists()
    with pytest.raises(ValueError, match=r"input of 10x20 LR pixels is smaller than the 15x15"):
        OnnxModel(report.path)(torch.rand(1, 3, 10, 20))
    with pytest.raises(ValueError, match=r"expects \(N, 3, H, W\), got \(1, 1, 20, 20\)"):
        OnnxModel(report.path)(torch.rand(1, 1, 20, 20))


def test_other_bad_arguments(tmp_path, lmswn_file, capsys):
    _, pt, report = lmswn_file
    with pytest.raises(ExportError, match=r"must end in \.onnx"):
        export_onnx(pt, tmp_path / "m.pt")
    with pytest.raises(ExportError, match=r"already an ONNX file"):
        export_onnx(report.path, tmp_path / "again.onnx")
    for text in ("17", "17x", "axb", "0x5"):
        with pytest.raises(ExportError, match="size"):
            parse_size(text)
    assert parse_size("17X23") == (17, 23)
    code = main(
        ["eval", "--checkpoint", str(report.path), "--data", "embedded", "--device", "cuda"]
    )
    assert code == 2 and "runs on the CPU with ONNX Runtime" in capsys.readouterr().err
    code = main(["eval", "--checkpoint", str(report.path), "--scale", "4", "--data", "embedded"])
    assert code == 2 and "is a x2 model, not x4" in capsys.readouterr().err
    code = main(["export", "--model", "imdn", "--scale", "2", "--onnx", str(tmp_path / "i.onnx"),
                 "--check-size", "2by2"])  # fmt: skip
    assert code == 2 and "expected HEIGHTxWIDTH" in capsys.readouterr().err


def test_import_sr_kit_does_not_import_onnx():
    code = (
        "import sys, sr_kit, sr_kit.cli, sr_kit.models, sr_kit.evaluate, sr_kit.upscale\n"
        "bad = [m for m in ('onnx', 'onnxruntime', 'onnxscript') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_set5_psnr_of_the_shipped_checkpoint_is_the_same_through_onnx(tmp_path, shared_data):
    """Set5 x4 under the standard protocol: the same PSNR from PyTorch and from ONNX Runtime."""
    from sr_kit.models import load_model

    shipped = REPO / "checkpoints" / "lmswn_x4_embedded_cpu.pt"
    report = export_onnx(shipped, tmp_path / "lmswn_x4.onnx")
    set5 = [resolve_dataset("set5", 4, data_root=shared_data / "benchmarks")]
    by_torch = evaluate(load_model(shipped), set5, scale=4, progress=False)
    by_onnx = evaluate(OnnxModel(report.path), set5, scale=4, progress=False)
    assert len(by_onnx) == 5
    assert abs(by_onnx.psnr_y.mean() - by_torch.psnr_y.mean()) < 1e-3
    assert (by_onnx.psnr_y - by_torch.psnr_y).abs().max() < 1e-2  # image by image, too
