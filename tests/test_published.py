"""results/published.csv: the published reference numbers transcribed from NETWORKS.md §1."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
CSV = REPO / "results" / "published.csv"
NETWORKS_MD = REPO.parent / "shared" / "NETWORKS.md"
COLUMNS = ["method", "scale", "params", "macs_g", "dataset", "psnr", "ssim", "protocol", "source"]
SETS = ["Set5", "Set14", "B100", "Urban100", "Manga109"]


@pytest.fixture(scope="module")
def pub() -> pd.DataFrame:
    return pd.read_csv(CSV)


def _row(pub: pd.DataFrame, method: str, scale: int, dataset: str) -> pd.Series:
    rows = pub[(pub["method"] == method) & (pub["scale"] == scale) & (pub["dataset"] == dataset)]
    assert len(rows) == 1, (method, scale, dataset)
    return rows.iloc[0]


def test_columns_and_ranges(pub: pd.DataFrame) -> None:
    assert list(pub.columns) == COLUMNS
    assert set(pub["scale"]) == {2, 3, 4}
    assert set(pub["dataset"]) == set(SETS)
    assert pub["psnr"].between(20, 45, inclusive="neither").all()
    assert pub["ssim"].between(0.6, 1, inclusive="neither").all()
    assert (pub["params"] >= 0).all() and pub["params"].dtype.kind == "i"
    assert pub["macs_g"].dropna().gt(0).all()
    assert not pub.duplicated(["method", "scale", "dataset"]).any()
    assert pub["source"].str.contains(r"NETWORKS\.md §1\.[123]").all()
    assert pub["source"].str.match(r"\[(P|X|S)\]").all()
    # The section cited matches the scale.
    section = pub["source"].str.extract(r"§1\.(\d)")[0].astype(int)
    assert (section + 1 == pub["scale"]).all()


def test_spot_values(pub: pd.DataFrame) -> None:
    bic = _row(pub, "Bicubic", 2, "Set5")
    assert (bic["psnr"], bic["ssim"], bic["params"]) == (33.66, 0.9299, 0)
    assert pd.isna(bic["macs_g"])
    imdn = _row(pub, "IMDN", 4, "Urban100")
    assert (imdn["psnr"], imdn["ssim"], imdn["params"], imdn["macs_g"]) == (
        26.04,
        0.7838,
        715176,
        41.0,
    )
    assert _row(pub, "IMDN", 2, "Set5")["params"] == 694404
    assert _row(pub, "IMDN", 3, "Set5")["params"] == 703059
    assert _row(pub, "SAFMN", 3, "B100")["params"] == 233000
    assert _row(pub, "SAFMN", 3, "B100")["macs_g"] == 23.0
    rfdn = _row(pub, "RFDN", 4, "Set5")
    assert (rfdn["psnr"], rfdn["params"]) == (32.24, 550000)
    assert "paper-quoted" in rfdn["source"] and "[S]" in rfdn["source"]
    assert _row(pub, "SMSR", 2, "Manga109")["macs_g"] == 131.6  # the sparse count
    assert _row(pub, "BSRN", 4, "Set14")["psnr"] == 28.73
    carn = _row(pub, "CARN", 3, "Manga109")
    assert (carn["psnr"], carn["ssim"]) == (33.50, 0.9440) and carn["source"].startswith("[X]")


def test_unverified_cells_are_left_out(pub: pd.DataFrame) -> None:
    assert pub[(pub["method"] == "BSRN") & (pub["scale"] != 4)].empty
    assert "RFDN-L" not in set(pub["method"])
    assert pub[(pub["method"] == "ESRT") & (pub["dataset"] == "Manga109")].empty
    assert len(pub[pub["method"] == "ESRT"]) == 4


@pytest.mark.shared
def test_every_value_matches_networks_md(pub: pd.DataFrame) -> None:
    if not NETWORKS_MD.is_file():
        pytest.skip(f"needs {NETWORKS_MD} (present in CI only)")
    lines = NETWORKS_MD.read_text(encoding="utf-8").splitlines()
    expected = {}
    for scale, section in ((2, "1.1"), (3, "1.2"), (4, "1.3")):
        i = next(k for k, line in enumerate(lines) if line.startswith(f"### {section} "))
        while not lines[i].startswith("| Method"):
            i += 1
        i += 2  # header and separator
        while lines[i].startswith("|"):
            cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
            for dataset, cell in zip(SETS, cells[3:8], strict=True):
                m = re.fullmatch(r"(\d+\.\d+)/(0\.\d+)", cell)
                if m:
                    expected[(cells[0], scale, dataset)] = (float(m[1]), float(m[2]))
            i += 1
    got = {(r.method, r.scale, r.dataset): (r.psnr, r.ssim) for r in pub.itertuples(index=False)}
    assert got == expected


def test_every_committed_quality_table_records_its_protocol() -> None:
    from sr_kit.config import PROTOCOL

    checked = 0
    for path in sorted((REPO / "results").glob("*.csv")):
        df = pd.read_csv(path)
        if not any(c.startswith(("psnr", "ssim")) for c in df.columns):
            continue  # cost or speed tables: no quality figure
        checked += 1
        assert "protocol" in df.columns, path.name
        assert df["protocol"].notna().all(), path.name
        if path.name != "published.csv":  # measured by the kit: its own protocol
            assert set(df["protocol"]) <= {PROTOCOL}, path.name
    assert checked >= 4
