"""The manifest of committed results: complete, well formed, and every entry's dry run works."""

from __future__ import annotations

import subprocess

import pytest

from sr_kit.reproduce import REPO, ReproduceError, load_manifest, run_entry, select

ENTRIES = load_manifest()


def _committed() -> set[str]:
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "results", "checkpoints"],
                         capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    return {f for f in out if not f.endswith((".md", ".toml"))}


def test_every_committed_artifact_has_exactly_one_entry():
    declared = [f for e in ENTRIES for f in e.files]
    assert len(declared) == len(set(declared)), "a file is declared twice"
    committed = _committed()
    if not committed:  # not a git checkout (e.g. an sdist): nothing to compare
        pytest.skip("not a git checkout")
    assert committed <= set(declared), sorted(committed - set(declared))
    for e in ENTRIES:  # only the GPU campaign's files may be still to make
        for f in e.files:
            assert (REPO / f).is_file() or e.device == "cuda", f


def test_bad_manifests_and_names_are_named(tmp_path):
    bad = tmp_path / "m.toml"
    bad.write_text('[[artifact]]\nname = "x"\nfiles = []\ndevice = "tpu"\n')
    with pytest.raises(ReproduceError, match=r"m\.toml: artifact 1 \(x\): device must be one of"):
        load_manifest(bad)
    bad.write_text('[[artifact]]\nname = "x"\nfiles = []\ndevice = "cpu"\ncommand = "true"\n')
    with pytest.raises(ReproduceError, match="give both `command` and `dry_run`"):
        load_manifest(bad)
    with pytest.raises(ReproduceError, match="no manifest entry 'nope'; known: published"):
        select(ENTRIES, only="nope")
    assert {e.device for e in select(ENTRIES, device="cpu")} == {"cpu"}


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.runnable], ids=lambda e: e.name)
def test_dry_run(entry, tmp_path):
    """The entry's command still works: its tiny version writes every file it declares."""
    out = run_entry(entry, dry=True, root=tmp_path)
    if out.status == "skipped":
        pytest.skip(out.reason)
    assert out.status == "done", out.reason
    assert [p.relative_to(tmp_path).as_posix() for p in out.written] == list(entry.files)
    import pandas as pd

    for path in out.written:  # every table says where, when and how it was made
        if path.suffix == ".csv":
            cols = set(pd.read_csv(path).columns)
            assert {"device", "commit", "date", "command"} <= cols, (path.name, sorted(cols))
            if any(c.startswith(("psnr", "ssim")) for c in cols):
                assert "protocol" in cols, path.name
    print(f"dry run {entry.name}: {out.wall_s:.1f} s")


def test_campaign_tables_merge_across_sessions(tmp_path):
    """A chunk run again (another session, another GPU) replaces its own rows, keeps the rest."""
    import pandas as pd

    from sr_kit.campaign import _write

    path = tmp_path / "brief_x4_cuda.csv"
    key = ["model", "dataset", "run_hash"]
    first = [
        {"model": "imdn", "dataset": "Set5", "run_hash": "a", "device": "H100", "psnr_y": 1.0},
        {"model": "rfdn", "dataset": "Set5", "run_hash": "b", "device": "H100", "psnr_y": 2.0},
    ]
    _write(first, path, key)
    again = [
        {"model": "imdn", "dataset": "Set5", "run_hash": "a", "device": "H100", "psnr_y": 1.5},
        {"model": "imdn", "dataset": "Set5", "run_hash": "a", "device": "H200", "psnr_y": 1.6},
    ]
    _write(again, path, key)
    table = pd.read_csv(path).sort_values(["model", "device"])
    assert table[["model", "device", "psnr_y"]].values.tolist() == [
        ["imdn", "H100", 1.5],
        ["imdn", "H200", 1.6],
        ["rfdn", "H100", 2.0],
    ]


def test_committed_commands_name_no_folder_of_this_machine():
    """Commands are recorded relative to the checkout (``sr-kit reproduce`` runs them from it), so
    a committed table never names the absolute folders of the machine that made it."""
    import shlex

    import pandas as pd

    for rel in sorted(_committed()):
        if not rel.endswith(".csv"):
            continue
        frame = pd.read_csv(REPO / rel)
        for command in frame.get("command", pd.Series(dtype=str)).dropna().unique():
            absolute = [t for t in shlex.split(command) if t.startswith("/")]
            assert not absolute, (rel, absolute)


def test_places_are_relative_to_the_checkout_where_they_can_be(tmp_path):
    from sr_kit.reproduce import _relative

    assert _relative(REPO / "results") == "results"
    assert _relative(REPO.parent / "shared" / "weights") == "../shared/weights"
    if not tmp_path.resolve().is_relative_to(REPO.parent):
        assert _relative(tmp_path) == str(tmp_path.resolve())  # a dry run's scratch folder
