"""Shared fixtures. ``../shared`` (benchmark images and oracles) sits beside the repo in CI only."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder; tests that need it are skipped, with the reason, without it."""
    if not (SHARED_DATA / "oracles").is_dir() or not (SHARED_DATA / "benchmarks").is_dir():
        pytest.skip(f"needs the shared benchmark data at {SHARED_DATA} (present in CI only)")
    return SHARED_DATA


SHARED_WEIGHTS = REPO.parent / "shared" / "weights"


@pytest.fixture(scope="session")
def shared_weights() -> Path:
    """The authors' released weights in ../shared/weights (test fixtures, never committed)."""
    if not (SHARED_WEIGHTS / "SHA256SUMS").is_file():
        pytest.skip(f"needs the authors' released weights at {SHARED_WEIGHTS} (present in CI only)")
    return SHARED_WEIGHTS
