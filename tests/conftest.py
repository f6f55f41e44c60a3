"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real benchmark files in ../shared/data (env SEMID_SHARED_DATA overrides); skip when absent."""
    env = os.environ.get("SEMID_SHARED_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"real data folder {path} is absent (set SEMID_SHARED_DATA to its location)")
    return path
