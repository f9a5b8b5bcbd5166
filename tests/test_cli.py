"""The sr-kit command: info, eval (with --csv), data list/check, and its error messages."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sr_kit.cli import main
from sr_kit.imresize import imresize_uint8
from sr_kit.metrics import psnr_y, ssim_y


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_info_json_for_bicubic(capsys):
    code, out, _ = run(capsys, "info", "--model", "bicubic", "--scale", "3", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["model"] == "bicubic" and info["scale"] == 3
    assert info["params"] == 0 and info["params_deploy"] == 0
    assert info["switches"] == {}
    assert isinstance(info["macs_720p"], int)


def test_info_text(capsys):
    code, out, _ = run(capsys, "info", "--model", "bicubic", "--scale", "4")
    assert code == 0
    assert "bicubic x4" in out and "parameters       0 (training graph)" in out
    assert "switches         none" in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["info", "--model", "edsr", "--scale", "4"], "unknown model 'edsr'; known models:"),
        (["info", "--model", "bicubic", "--scale", "4", "--set", "asym=false"], "unknown key"),
        (["eval", "--model", "bicubic", "--scale", "2", "--data", "no_such_set"], "no_such_set"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err and "Traceback" not in err


def _image_folder(tmp_path, n=2, size=(48, 40)):
    folder = tmp_path / "MyPhotos"
    folder.mkdir()
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    for i in range(n):
        base = np.stack([xx * 5 + i * 20, yy * 4, (xx + yy) * 2], -1) % 256
        noise = rng.integers(0, 30, base.shape)
        Image.fromarray(((base + noise) % 256).astype(np.uint8)).save(folder / f"img{i}.png")
    return folder


def test_eval_on_a_folder_writes_the_per_image_csv(capsys, tmp_path):
    folder = _image_folder(tmp_path)
    out_csv = tmp_path / "res" / "bicubic.csv"
    code, out, err = run(
        capsys, "eval", "--model", "bicubic", "--scale", "2", "--data", str(folder),
        "--csv", str(out_csv),
    )  # fmt: skip
    assert code == 0
    with open(out_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["dataset", "image", "scale", "psnr_y", "ssim_y"]
    assert [r["image"] for r in rows] == ["img0.png", "img1.png"]
    assert {r["dataset"] for r in rows} == {"MyPhotos"}
    # Recompute the first row by hand: modcrop, MATLAB bicubic down and up, metrics on Y.
    hr = np.array(Image.open(folder / "img0.png"))
    sr = imresize_uint8(imresize_uint8(hr, 1 / 2), 2)
    assert float(rows[0]["psnr_y"]) == pytest.approx(psnr_y(sr, hr, 2), abs=1e-6)
    assert float(rows[0]["ssim_y"]) == pytest.approx(ssim_y(sr, hr, 2), abs=1e-6)
    assert "MyPhotos" in out and "PSNR_Y" in out
    assert "MyPhotos x2:" in err and "it/s" in err  # progress on stderr, the table on stdout
    assert "it/s" not in out


def test_eval_on_shared_benchmarks_matches_oracle_means(capsys, tmp_path, shared_data):
    oracle = pd.read_csv(shared_data / "oracles" / "bicubic_metrics.csv")
    out_csv = tmp_path / "x.csv"
    for scale in (2, 3, 4):
        code, out, _ = run(
            capsys, "eval", "--model", "bicubic", "--scale", str(scale), "--data", "set5",
            "--data", "Set14", "--data-root", str(shared_data / "benchmarks"),
            "--csv", str(out_csv),
        )  # fmt: skip
        assert code == 0
        got = pd.read_csv(out_csv)
        assert len(got) == 19
        ref = oracle[oracle.scale == scale]
        merged = got.assign(image=got.image.str.replace(".png", "")).merge(
            ref, on=["dataset", "image", "scale"]
        )
        assert len(merged) == 19
        assert (merged.psnr_y - merged.bicubic_psnr_y).abs().max() < 1e-4
        assert (merged.ssim_y - merged.bicubic_ssim_y).abs().max() < 1e-5
        set5 = ref[ref.dataset == "Set5"].bicubic_psnr_y.mean()
        assert f"{set5:.2f}" in out


def test_data_list_and_check(capsys, shared_data):
    root = str(shared_data / "benchmarks")
    code, out, _ = run(capsys, "data", "list", "--data-root", root)
    assert code == 0
    for key in ("set5", "set14", "b100", "urban100", "manga109", "div2k"):
        assert key in out
    code, out, _ = run(capsys, "data", "check", "set5", "--data-root", root)
    assert code == 0 and "5/5" in out and "checksums: ok" in out


def test_data_check_missing_set_fails_and_says_where(capsys, tmp_path):
    code, out, err = run(capsys, "data", "check", "urban100", "--data-root", str(tmp_path))
    assert code != 0
    assert "Urban100" in out + err


@pytest.mark.parametrize(
    "model,overrides,params,params_deploy",
    [
        ("imdn", [], 715_176, 715_176),
        ("rfdn", [], 581_952, 581_952),
        ("lmswn", [], 785_148, 536_316),
        ("lmswn", ["asym=false"], 536_316, 536_316),
        # fdc adds 63,360 (spec 6.3), per-channel weights 6 x (96 - 2); deploying folds the
        # 1x3 + 3x1 kernels: 6 blocks x 3 stages x 2 x 48 x 48 x 3 = 248,832
        ("lmswn", ["distill=fdc", "weights=channel"], 849_072, 849_072 - 248_832),
        ("safdnet", ["shift_ratio=0"], 489_672, 489_672),
        ("safdnet", ["compress_ratio=4"], 473_904, 473_904),
    ],
)
def test_info_json_counts_for_models_and_switches(capsys, model, overrides, params, params_deploy):
    argv = ["info", "--model", model, "--scale", "4", "--json"]
    for item in overrides:
        argv += ["--set", item]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    info = json.loads(out)
    assert (info["params"], info["params_deploy"]) == (params, params_deploy)
    if overrides == ["asym=false"]:
        assert info["switches"]["asym"] == {"value": False, "choices": [True, False]}


def test_info_json_lists_every_switch_with_its_choices(capsys):
    _, out, _ = run(capsys, "info", "--model", "safdnet", "--scale", "2", "--json")
    sw = json.loads(out)["switches"]
    assert sw["global_attn"] == {"value": "acffn", "choices": ["acffn", "dw3x3", "pw", "none"]}
    assert sw["compress_ratio"] == {"value": 2, "choices": [2, 1, 4]}
    assert set(sw) == {"global_attn", "compress_ratio", "shift_ratio", "shift_px", "distill",
                       "attn_norm"}  # fmt: skip


def test_info_text_names_the_claim_each_switch_tests(capsys):
    code, out, _ = run(capsys, "info", "--model", "lmswn", "--scale", "4")
    assert code == 0
    assert "785,148 (training graph)" in out and "536,316 (deployed graph)" in out
    assert "tests: L2: strengthened square convolution" in out
    assert "blocks.0" in out and "DistillWeightBlock" in out  # the per-module table


def test_info_bad_switch_value_lists_choices(capsys):
    code, _, err = run(capsys, "info", "--model", "lmswn", "--scale", "4", "--set", "head=conv9")
    assert code == 2
    assert "choose one of ['pyramid', 'dilated', 'conv3']" in err


def test_eval_lpips_without_the_package_says_how_to_enable_it(capsys, monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "lpips", None)  # as if not installed
    folder = _image_folder(tmp_path)
    code, _, err = run(capsys, "eval", "--model", "bicubic", "--scale", "2", "--data",
                       str(folder), "--lpips")  # fmt: skip
    assert code == 2 and "pip install lpips" in err and "never downloads" in err


def test_eval_lpips_column_when_available(monkeypatch, tmp_path):
    """With a stand-in LPIPS network the per-image table gains an lpips column."""
    import torch

    import sr_kit.metrics as metrics
    from sr_kit.data import image_folder
    from sr_kit.evaluate import evaluate, summarize
    from sr_kit.models import build_model

    class FakeLpips(torch.nn.Module):
        def forward(self, a, b):  # mean absolute difference in [-1, 1] units
            return (a - b).abs().mean().view(1, 1, 1, 1)

    monkeypatch.setattr(metrics, "lpips_model", lambda net="alex": FakeLpips())
    ds = image_folder(_image_folder(tmp_path), 2)
    table = evaluate(build_model("bicubic", scale=2), [ds], scale=2, progress=False, lpips=None)
    assert list(table.columns) == ["dataset", "image", "scale", "psnr_y", "ssim_y", "lpips"]
    assert (table.lpips > 0).all() and (table.lpips < 0.2).all()
    assert "LPIPS" in summarize(table).columns


def test_exercises_release_writes_student_versions(capsys, tmp_path):
    code, _, _ = run(capsys, "exercises", "release", "--out", str(tmp_path / "class"))
    assert code == 0
    written = sorted(p.name for p in (tmp_path / "class").glob("*.ipynb"))
    assert len(written) >= 6 and all(not n.endswith("_solution.ipynb") for n in written)
    for path in (tmp_path / "class").glob("*.ipynb"):
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "raise NotImplementedError()" in text
    code, _, err = run(capsys, "exercises", "release", "--out", "notebooks/exercises")
    assert code == 2 and "refusing" in err
