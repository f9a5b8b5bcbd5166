"""The run registry: round trips, run reuse lookup, the DataFrame view, concurrent writers, and
the upgrade of schema-1 files (from before run configs were stored)."""

from __future__ import annotations

import dataclasses
import math
import multiprocessing as mp
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sr_kit.config import PROTOCOL, TrainConfig, config_to_dict, get_config, stable_hash
from sr_kit.runconfig import DataConfig, RunConfig
from sr_kit.runs import SCHEMA_VERSION, Registry, RegistryError, default_registry_path

RUN = RunConfig(
    model=get_config("lmswn", scale=4),
    train=TrainConfig(steps=200, device="cpu"),
)
CFG = config_to_dict(RUN.model)
TRAIN = RUN.train_key()


def _run(*, seed: int = 0, data: str = "embedded", steps: int = 200, **model) -> RunConfig:
    return dataclasses.replace(
        RUN, model=dataclasses.replace(RUN.model, **model), seed=seed,
        train=dataclasses.replace(RUN.train, steps=steps), data=DataConfig(train=data),
    )  # fmt: skip


def _start(reg: Registry, run: RunConfig | None = None, **kwargs) -> int:
    return reg.start_run(run or RUN, **kwargs)


@pytest.fixture
def reg(tmp_path: Path):
    with Registry(tmp_path / "runs.sqlite") as r:
        yield r


def test_round_trip_every_field(reg: Registry) -> None:
    three = dataclasses.replace(RUN, seed=3)
    run_id = reg.start_run(
        three,
        command="sr-kit train --model lmswn",
        device="cpu",
        torch_version="2.13.0",
        commit="abc1234",
        params=785148,
        params_deploy=536316,
        macs=43_450_000_000,
        run_dir="/tmp/run1",
    )
    run = reg.get(run_id)
    assert run["status"] == "running" and run["finished"] is None and run["steps"] is None
    assert run["created"].endswith("+00:00")  # UTC
    reg.finish_run(
        run_id,
        steps=200,
        wall_s=12.5,
        metrics=[
            {"dataset": "Set5", "psnr_y": 30.1, "ssim_y": 0.85, "lpips": 0.2},
            {"dataset": "Set14", "psnr_y": 27.2, "ssim_y": 0.75, "images": 14},  # extra key ok
        ],
    )
    run = reg.get(run_id)
    expected = {
        "id": run_id,
        "model": "lmswn",
        "scale": 4,
        "seed": 3,
        "data": "embedded",
        "status": "done",
        "steps": 200,
        "wall_s": 12.5,
        "device": "cpu",
        "torch": "2.13.0",
        "commit": "abc1234",
        "command": "sr-kit train --model lmswn",
        "params": 785148,
        "params_deploy": 536316,
        "macs": 43_450_000_000,
        "run_dir": "/tmp/run1",
        "config": CFG,
        "train": TRAIN,
        "config_hash": stable_hash(CFG),
        "train_hash": stable_hash(TRAIN),
        "run": three.to_dict(),
        "run_hash": three.hash(),
        "protocol": PROTOCOL,
    }
    assert {k: run[k] for k in expected} == expected
    assert run["finished"] >= run["created"]
    assert run["metrics"] == {
        "Set5": {"psnr_y": 30.1, "ssim_y": 0.85, "lpips": 0.2},
        "Set14": {"psnr_y": 27.2, "ssim_y": 0.75, "lpips": None},
    }
    # A later evaluation adds a dataset and fills LPIPS in without wiping PSNR/SSIM.
    reg.add_metrics(run_id, [{"dataset": "Set14", "lpips": 0.3}, {"dataset": "B100", "psnr_y": 26}])
    metrics = reg.get(run_id)["metrics"]
    assert metrics["Set14"] == {"psnr_y": 27.2, "ssim_y": 0.75, "lpips": 0.3}
    assert metrics["B100"] == {"psnr_y": 26.0, "ssim_y": None, "lpips": None}
    # Stored JSON is canonical (sorted keys).
    con = sqlite3.connect(reg.path)
    stored = con.execute("SELECT config_json FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
    con.close()
    assert stored == (
        '{"asym":true,"attn":"esa","channels":48,"distill":"split1x1","head":"pyramid",'
        '"model":"lmswn","num_blocks":6,"scale":4,"weights":"scalar"}'
    )
    assert RunConfig.from_dict(reg.get(run_id)["run"]) == three


def test_numpy_scalars_are_accepted(reg: Registry) -> None:
    np = pytest.importorskip("numpy")
    run_id = _start(reg, params=np.int64(5), macs=np.int64(7))
    reg.finish_run(run_id, steps=np.int64(3), wall_s=np.float32(1.5), metrics=[
        {"dataset": "Set5", "psnr_y": np.float32(30.5), "ssim_y": np.float64(0.9)}
    ])  # fmt: skip
    run = reg.get(run_id)
    assert (run["params"], run["macs"], run["steps"]) == (5, 7, 3)
    assert run["metrics"]["Set5"]["psnr_y"] == 30.5


def test_find_done_newest_matching(reg: Registry) -> None:
    assert reg.find_done(RUN.hash()) is None
    old = _start(reg)
    reg.finish_run(old, steps=200, wall_s=1.0, metrics=[{"dataset": "Set5", "psnr_y": 29.0}])
    new = _start(reg)
    reg.finish_run(new, steps=200, wall_s=1.0, metrics=[{"dataset": "Set5", "psnr_y": 29.5}])
    # Newer runs that must not be picked: unfinished, failed, or another key.
    _start(reg)
    reg.finish_run(_start(reg), status="failed", steps=3, wall_s=0.1)
    reg.finish_run(_start(reg), status="interrupted", steps=3, wall_s=0.1)
    for other in (_run(seed=1), _run(data="div2k"), _run(steps=201), _run(asym=False)):
        reg.finish_run(_start(reg, other), steps=200, wall_s=1.0)
    found = reg.find_done(RUN.hash())
    assert found is not None and found["id"] == new
    assert found["metrics"]["Set5"]["psnr_y"] == 29.5
    assert reg.find_done(_run(seed=1).hash())["seed"] == 1
    assert reg.find_done(_run(data="set5").hash()) is None
    # what does not change the weights does not change the key
    quiet = dataclasses.replace(RUN, train=dataclasses.replace(RUN.train, val_every=7),
                                data=DataConfig(eval=("set14",)))  # fmt: skip
    assert reg.find_done(quiet.hash())["id"] == new


def test_hash_stability() -> None:
    shuffled = dict(reversed(list(CFG.items())))
    assert list(shuffled) != list(CFG)
    assert stable_hash(shuffled) == stable_hash(CFG)
    assert len(stable_hash(CFG)) == 16 and int(stable_hash(CFG), 16) >= 0
    assert stable_hash({**CFG, "asym": False}) != stable_hash(CFG)
    # Pinned: a changed canonical form would orphan every stored run.
    assert stable_hash({"b": 1, "a": [1, 2]}) == "94a786c3662bc7be"


def test_hash_matches_config_module() -> None:
    config = pytest.importorskip("sr_kit.config")
    cfg = config.get_config("lmswn", scale=4)
    assert stable_hash(config.config_to_dict(cfg)) == config.config_hash(cfg)


def test_frame_columns_and_pivoted_metrics(reg: Registry) -> None:
    import pandas as pd

    empty = reg.frame()
    assert isinstance(empty, pd.DataFrame) and len(empty) == 0
    assert {"id", "model", "config_hash", "train_hash"} <= set(empty.columns)

    a = _start(reg, device="cpu")
    reg.finish_run(a, steps=10, wall_s=2.0, metrics=[
        {"dataset": "Set14", "psnr_y": 27.0, "ssim_y": 0.7},
        {"dataset": "Set5", "psnr_y": 30.0, "ssim_y": 0.8, "lpips": 0.1},
    ])  # fmt: skip
    imdn = RunConfig(model=get_config("imdn", scale=4), train=RUN.train, seed=1)
    b = _start(reg, imdn)
    reg.finish_run(b, steps=10, wall_s=2.0, metrics=[{"dataset": "Set5", "psnr_y": 31.0}])
    df = reg.frame()
    assert list(df["id"]) == [a, b]
    base = [
        "id", "created", "model", "scale", "seed", "data", "status", "steps", "wall_s", "device",
        "torch", "commit", "command", "params", "params_deploy", "macs", "config_hash",
        "train_hash",
    ]  # fmt: skip
    assert list(df.columns[: len(base)]) == base
    cfg_cols = [c for c in df.columns if c.startswith("cfg.")]
    assert cfg_cols == sorted(f"cfg.{k}" for k in {*CFG, *config_to_dict(imdn.model)})
    metric_cols = [c for c in df.columns if "/" in c]
    assert metric_cols == [
        "psnr_y/Set5", "psnr_y/Set14", "ssim_y/Set5", "ssim_y/Set14", "lpips/Set5", "lpips/Set14",
    ]  # fmt: skip
    row_a, row_b = df.iloc[0], df.iloc[1]
    assert row_a["psnr_y/Set5"] == 30.0 and row_a["psnr_y/Set14"] == 27.0
    assert row_a["ssim_y/Set5"] == 0.8 and row_a["lpips/Set5"] == 0.1
    assert math.isnan(row_a["lpips/Set14"])
    assert row_b["psnr_y/Set5"] == 31.0 and math.isnan(row_b["psnr_y/Set14"])
    assert row_a["protocol"] == PROTOCOL and row_a["run_hash"] == RUN.hash()
    assert row_b["cfg.channels"] == 64 and row_a["cfg.channels"] == 48
    assert row_b["seed"] == 1 and row_a["device"] == "cpu" and row_b["model"] == "imdn"
    assert df["psnr_y/Set5"].dtype == float


def test_bad_input(reg: Registry) -> None:
    run_id = _start(reg)
    with pytest.raises(ValueError, match="'finished'"):
        reg.finish_run(run_id, status="finished", steps=1, wall_s=1.0)
    with pytest.raises(KeyError, match="12345"):
        reg.get(12345)
    with pytest.raises(KeyError, match="12345"):
        reg.finish_run(12345, steps=1, wall_s=1.0)
    with pytest.raises(KeyError, match="12345"):
        reg.add_metrics(12345, [{"dataset": "Set5", "psnr_y": 1.0}])
    with pytest.raises(ValueError, match="dataset"):
        reg.add_metrics(run_id, [{"psnr_y": 1.0}])
    with pytest.raises(ValueError, match="psnr_y"):
        reg.add_metrics(run_id, [{"dataset": "Set5", "psnr": 1.0}])  # typo of psnr_y
    # A failed finish (bad metrics) leaves the run untouched: one transaction.
    with pytest.raises(TypeError, match="psnr_y"):
        reg.finish_run(run_id, steps=5, wall_s=1.0, metrics=[{"dataset": "Set5", "psnr_y": "x"}])
    assert reg.get(run_id)["status"] == "running"
    with pytest.raises(TypeError, match="needs a RunConfig"):
        reg.start_run(RUN.to_dict())


def test_finish_is_atomic_on_database_error(reg: Registry) -> None:
    run_id = _start(reg)
    # A trigger makes the metrics insert fail after the runs update has been executed.
    reg._con.execute(
        "CREATE TRIGGER boom BEFORE INSERT ON metrics BEGIN SELECT RAISE(ABORT, 'boom'); END"
    )
    with pytest.raises(sqlite3.IntegrityError):
        reg.finish_run(run_id, steps=5, wall_s=1.0, metrics=[{"dataset": "Set5", "psnr_y": 1.0}])
    assert reg.get(run_id)["status"] == "running"


def test_schema_version_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "runs.sqlite"
    with Registry(path) as reg:
        run_id = _start(reg)
    with Registry(path) as reg:  # reopening keeps the data and does not recreate anything
        assert reg.get(run_id)["model"] == "lmswn" and len(reg) == 1
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(RegistryError, match="schema version"):
        Registry(path)


def test_not_a_registry(tmp_path: Path) -> None:
    bad = tmp_path / "runs.sqlite"
    bad.write_bytes(b"this is not a database, just some text " * 100)
    with pytest.raises(RegistryError, match=r"runs\.sqlite"):
        Registry(bad)
    with pytest.raises(RegistryError, match="directory"):
        Registry(tmp_path)
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE photos (x)")
    con.close()
    with pytest.raises(RegistryError, match=r"other\.sqlite"):
        Registry(other)


def test_in_memory_registry() -> None:
    with Registry(":memory:") as reg:
        reg.finish_run(_start(reg), steps=1, wall_s=0.5)
        assert len(reg) == 1


def test_default_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SR_KIT_REGISTRY", str(tmp_path / "mine.sqlite"))
    assert default_registry_path() == tmp_path / "mine.sqlite"
    monkeypatch.delenv("SR_KIT_REGISTRY")
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
        assert default_registry_path() == tmp_path / "xdg" / "sr-kit" / "runs.sqlite"
        monkeypatch.delenv("XDG_DATA_HOME")
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        expected = tmp_path / "home" / ".local" / "share" / "sr-kit" / "runs.sqlite"
        assert default_registry_path() == expected
        monkeypatch.setenv("XDG_DATA_HOME", "relative/dir")  # invalid per the XDG spec
        assert default_registry_path() == expected
    # Registry() with no path uses the default, creating its folders.
    monkeypatch.setenv("SR_KIT_REGISTRY", str(tmp_path / "a" / "b" / "runs.sqlite"))
    with Registry() as reg:
        assert reg.path == tmp_path / "a" / "b" / "runs.sqlite"
    assert (tmp_path / "a" / "b" / "runs.sqlite").is_file()


def _writer(path: str, worker: int, n: int, barrier) -> None:
    barrier.wait()  # open (maybe creating the schema) and write at the same moment as the other
    with Registry(path) as reg:
        for i in range(n):
            run_id = reg.start_run(dataclasses.replace(RUN, seed=worker * 1000 + i))
            reg.finish_run(
                run_id,
                steps=i,
                wall_s=0.1,
                metrics=[{"dataset": "Set5", "psnr_y": 30.0 + i, "ssim_y": 0.9}],
            )
            # A writer that re-takes the lock at once can starve the other one (SQLite's busy
            # handler polls); a short pause, like real training between writes, interleaves them.
            time.sleep(0.002)


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "runs.sqlite")
    Registry(path).close()  # create the schema first, as the kit would on first import
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(path, w, 50, barrier)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    with Registry(path) as reg:
        df = reg.frame()
        n_metrics = reg._con.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    assert len(df) == 100 and df["id"].is_unique and n_metrics == 100
    assert sorted(df["seed"]) == sorted([w * 1000 + i for w in range(2) for i in range(50)])
    assert (df["status"] == "done").all() and df["psnr_y/Set5"].notna().all()


def test_two_processes_creating_the_schema_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "fresh.sqlite")
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(path, w, 5, barrier)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    with Registry(path) as reg:
        assert len(reg) == 10


def test_import_is_light() -> None:
    code = (
        "import sys, sr_kit, sr_kit.runs; "
        "bad = [m for m in ('pandas', 'matplotlib') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# The schema of sr-kit registries before run configs were stored (schema 1), verbatim.
_SCHEMA_1 = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT NOT NULL, finished TEXT,
    model TEXT NOT NULL, scale INTEGER NOT NULL, seed INTEGER NOT NULL, data TEXT NOT NULL,
    status TEXT NOT NULL, steps INTEGER, wall_s REAL, device TEXT NOT NULL DEFAULT '',
    torch TEXT NOT NULL DEFAULT '', git_commit TEXT NOT NULL DEFAULT '',
    command TEXT NOT NULL DEFAULT '', params INTEGER, params_deploy INTEGER, macs INTEGER,
    run_dir TEXT NOT NULL DEFAULT '', config_json TEXT NOT NULL, config_hash TEXT NOT NULL,
    train_json TEXT NOT NULL, train_hash TEXT NOT NULL
);
CREATE INDEX runs_lookup ON runs (config_hash, seed, train_hash, data, status);
CREATE TABLE metrics (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE, dataset TEXT NOT NULL,
    psnr_y REAL, ssim_y REAL, lpips REAL, PRIMARY KEY (run_id, dataset)
);
"""


def test_a_schema_1_registry_is_upgraded_and_its_runs_are_reused(tmp_path: Path) -> None:
    import json

    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.executescript(_SCHEMA_1)
    config_json = json.dumps(CFG, sort_keys=True, separators=(",", ":"))
    train_json = json.dumps(TRAIN, sort_keys=True, separators=(",", ":"))
    con.execute(
        "INSERT INTO runs (created, model, scale, seed, data, status, steps, wall_s, config_json, "
        "config_hash, train_json, train_hash) VALUES ('2026-11-20T10:00:00+00:00', 'lmswn', 4, "
        "2, 'embedded', 'done', 200, 5.0, ?, ?, ?, ?)",
        (config_json, stable_hash(CFG), train_json, stable_hash(TRAIN)),
    )
    con.execute("INSERT INTO metrics VALUES (1, 'embedded', 25.5, 0.8, NULL)")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    with Registry(path) as reg:
        old = reg.get(1)
        assert old["run"] is None and old["protocol"] == PROTOCOL
        # the same run made today has the same key: the old row is found and reused
        assert old["run_hash"] == dataclasses.replace(RUN, seed=2).hash()
        assert reg.find_done(dataclasses.replace(RUN, seed=2).hash())["id"] == 1
        assert reg.get(1)["metrics"]["embedded"]["psnr_y"] == 25.5
        new = _start(reg)  # and new rows go in beside it
        assert reg.get(new)["run"] == RUN.to_dict()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    con.close()
