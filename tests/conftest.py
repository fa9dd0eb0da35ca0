from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

pytest_plugins = ["kafka_broker"]


@pytest.fixture
def shared_dir() -> Path:
    """The shared folder beside the repository (fixtures, seeds); skip when absent."""
    if not (SHARED / "fixtures").is_dir():
        pytest.skip(f"the shared folder {SHARED} is not present beside the repository")
    return SHARED
