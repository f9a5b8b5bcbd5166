"""RunConfig: the JSON round trip, the reuse hash, one override syntax for every field (walked
field by field through the CLI), the CLI aliases, and the ablation grid filling in evaluation sets
without retraining."""

from __future__ import annotations

import dataclasses
import typing

import numpy as np
import pytest
from PIL import Image

from sr_kit.ablation import ablate, grid_runs
from sr_kit.cli import ALIASES, build_parser, main, run_from_args
from sr_kit.config import ConfigError, TrainConfig, get_config
from sr_kit.runconfig import DataConfig, RunConfig, apply_run_overrides, override_keys
from sr_kit.runs import Registry

BASE = RunConfig(model=get_config("lmswn", scale=4))


def test_json_round_trip_and_what_the_hash_covers():
    run = BASE.override(["asym=false", "train.patch=24", "data.eval=set5,set14", "seed=3"])
    assert RunConfig.from_json(run.to_json()) == run
    assert RunConfig.from_dict(run.to_dict()) == run
    assert run.to_dict()["data"]["eval"] == ["set5", "set14"]  # JSON-ready (a list)
    # what defines the trained network changes the hash ...
    for other in ("asym=true", "train.patch=48", "data.train=div2k", "seed=4",
                  "train.amp=false", "train.device=cuda"):  # fmt: skip
        assert run.override([other]).hash() != run.hash(), other
    # ... what only watches or saves it does not
    for same in ("data.eval=set5", "data.val=none", "train.val_every=7",
                 "train.checkpoint_every=3", "data.root=/elsewhere"):  # fmt: skip
        assert run.override([same]).hash() == run.hash(), same
    # the device type counts, not which GPU
    assert (
        run.override(["train.device=cuda"]).hash() == run.override(["train.device=cuda:1"]).hash()
    )


def test_from_dict_refuses_what_it_cannot_read():
    with pytest.raises(ConfigError, match="format 'sr-kit-run/1'"):
        RunConfig.from_dict({"model": {"model": "lmswn"}})
    bad = {**BASE.to_dict(), "train": {"steps": 5, "warmup": 1}}
    with pytest.raises(ConfigError, match=r"train: unknown key.*warmup; valid: steps"):
        RunConfig.from_dict(bad)
    with pytest.raises(ConfigError, match="seed must be an integer >= 0"):
        dataclasses.replace(BASE, seed=-1)
    with pytest.raises(ConfigError, match="model must be a ModelConfig"):
        RunConfig(model="lmswn")


def _example(cls: type, name: str, current):
    """A valid value different from ``current`` for one field, as text."""
    hint = typing.get_type_hints(cls)[name]
    if name == "device":
        return "cpu" if current != "cpu" else "auto"
    if hint is bool:
        return str(not current).lower()
    if hint is int:
        return str(current + 1)
    if hint is float:
        return "0.25" if current != 0.25 else "0.5"
    if name == "eval":
        return "set5,set14"
    return "set14" if current != "set14" else "set5"


@pytest.mark.parametrize("section,cls", [("train", TrainConfig), ("data", DataConfig)])
def test_every_field_can_be_set_from_the_cli(section, cls):
    parser = build_parser()
    for f in dataclasses.fields(cls):
        current = getattr(getattr(BASE, section), f.name)
        text = _example(cls, f.name, current)
        args = parser.parse_args(["train", "--model", "lmswn", "--scale", "4",
                                  "--set", f"{section}.{f.name}={text}"])  # fmt: skip
        run = run_from_args(args)
        got = getattr(getattr(run, section), f.name)
        expected = apply_run_overrides(BASE, [f"{section}.{f.name}={text}"])
        assert got == getattr(getattr(expected, section), f.name) != current, f.name
        # and nothing else moved
        assert dataclasses.replace(run, **{section: getattr(BASE, section)}) == BASE, f.name
    args = parser.parse_args(["train", "--model", "lmswn", "--scale", "4", "--set", "seed=7"])
    assert run_from_args(args).seed == 7


def test_short_flags_are_aliases_of_set_and_set_wins():
    parser = build_parser()
    argv = ["train", "--model", "lmswn", "--scale", "4", "--preset", "quick-cpu",
            "--steps", "12", "--patch", "16", "--seed", "2", "--eval", "set5", "--eval", "set14",
            "--data", "embedded", "--val", "none", "--compile", "--time-budget", "30",
            "--set", "asym=false", "--set", "train.steps=13"]  # fmt: skip
    run = run_from_args(parser.parse_args(argv))
    assert run.train.steps == 13  # --set comes after the alias
    assert (run.train.patch, run.seed, run.data.eval) == (16, 2, ("set5", "set14"))
    assert run.data.val is None and run.train.compile and run.train.time_budget_s == 30.0
    assert run.model.asym is False and run.train.batch_size == 8  # from the preset
    # every alias names a real override key
    keys = set(override_keys(BASE))
    assert {key for key in ALIASES.values()} <= keys


@pytest.mark.parametrize(
    "item,message",
    [
        ("train.bogus=1", r"unknown key 'train\.bogus'; valid train keys: train\.steps"),
        ("data.bogus=1", r"valid data keys: data\.train, data\.val, data\.eval, data\.root"),
        ("bogus=1", r"lmswn: unknown key 'bogus'; valid model keys: scale, channels"),
        ("optim.lr=1", r"unknown override section 'optim'"),
        ("train.amp=maybe", r"cannot read amp='maybe'; expected one of \[True, False\]"),
        ("train.steps=ten", r"train: cannot read steps='ten'; expected an integer"),
        ("train.steps=0", r"steps must be a positive integer"),
        ("seed=x", r"cannot read seed='x'"),
        ("asym", r"must look like key=value"),
    ],
)
def test_bad_overrides_name_the_key_and_what_is_valid(capsys, item, message):
    with pytest.raises(ConfigError, match=message):
        BASE.override([item])
    code = main(["train", "--model", "lmswn", "--scale", "4", "--set", item])
    assert code == 2 and "sr-kit: error:" in capsys.readouterr().err


def test_grid_runs_take_any_override_key():
    runs = grid_runs(BASE, {"asym": [False], "train.patch": [24, "32"]}, mode="one-at-a-time")
    assert [r.model.asym for r in runs] == [True, False, True, True]
    assert [r.train.patch for r in runs] == [48, 48, 24, 32]
    product = grid_runs(BASE, {"asym": ["false", "true"], "seed": [0]})
    assert product == [BASE, BASE.override(["asym=false"])]  # duplicates dropped


@pytest.fixture
def tiny_set(tmp_path):
    """A small benchmark folder the test makes: four HR images (the LR made by the kit)."""
    folder = tmp_path / "Tiny"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        yy, xx = np.mgrid[0:32, 0:32]
        noise = rng.integers(0, 20, (32, 32, 3))
        im = np.stack([xx * 7 + 9 * i, yy * 5, (xx + yy) * 3], -1) + noise
        Image.fromarray((im % 256).astype(np.uint8)).save(folder / f"im{i}.png")
    return folder


def test_a_rerun_with_an_added_eval_set_fills_it_in_without_retraining(tmp_path, tiny_set):
    """The bug: with --eval embedded and then --eval embedded --eval <set>, the second table had
    no column for the new set. Now the saved models are evaluated on it."""
    model = get_config("rfdn", scale=2, channels=8, num_blocks=1)
    train = TrainConfig(steps=3, batch_size=2, patch=12, device="cpu", val_every=0,
                        checkpoint_every=0, amp=False, channels_last=False)  # fmt: skip
    base = RunConfig(model=model, train=train, data=DataConfig(eval=("embedded",)))
    reg = Registry(tmp_path / "r.sqlite")
    kw = dict(seeds=1, registry=reg, progress=False, run_root=tmp_path / "runs")
    first = ablate(base, {}, **kw)
    assert "psnr_y/embedded_mean" in first.columns and len(reg) == 1
    assert not any(c.startswith("psnr_y/Tiny") for c in first.columns)
    wider = dataclasses.replace(base, data=DataConfig(eval=("embedded", str(tiny_set))))
    assert wider.hash() == base.hash()  # the same trained network
    second = ablate(wider, {}, **kw)
    assert len(reg) == 1  # nothing retrained
    assert second.loc[0, "psnr_y/embedded_mean"] == first.loc[0, "psnr_y/embedded_mean"]
    assert np.isfinite(second.loc[0, "psnr_y/Tiny_mean"]) and second.loc[0, "psnr_y/Tiny_n"] == 1
    # the filled-in value is the protocol evaluation of the run's saved model
    from sr_kit.data import resolve_dataset
    from sr_kit.evaluate import evaluate
    from sr_kit.models import load_model

    row = reg.get(1)
    per_image = evaluate(load_model(f"{row['run_dir']}/model.pt"),
                         [resolve_dataset(str(tiny_set), 2)], scale=2, progress=False)  # fmt: skip
    assert row["metrics"]["Tiny"]["psnr_y"] == pytest.approx(per_image.psnr_y.mean(), abs=1e-9)
    assert second.loc[0, "protocol"] == row["protocol"] != ""


def test_a_reused_run_whose_model_file_is_gone_says_so(tmp_path, tiny_set):
    from sr_kit.models import CheckpointError

    train = TrainConfig(steps=2, batch_size=2, patch=12, device="cpu", val_every=0,
                        checkpoint_every=0, amp=False, channels_last=False)  # fmt: skip
    base = RunConfig(model=get_config("rfdn", scale=2, channels=8, num_blocks=1), train=train)
    reg = Registry(tmp_path / "r.sqlite")
    kw = dict(seeds=1, registry=reg, progress=False, run_root=tmp_path / "runs")
    ablate(base, {}, **kw)
    (tmp_path / "runs").rename(tmp_path / "moved")
    wider = dataclasses.replace(base, data=DataConfig(eval=(str(tiny_set),)))
    with pytest.raises(CheckpointError, match=r"run 1 has no metrics for .*Tiny.*is gone"):
        ablate(wider, {}, **kw)
