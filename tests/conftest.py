"""Shared fixtures: the real data beside the repo, and synthetic IR/VIS pairs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Tests never reach a hub: no network here or in CI.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real RoadScene, TNO, captions), read in place; skipped when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside the repo")
    return SHARED_DATA


@pytest.fixture(scope="session")
def entitylabel_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A per-session cache folder so tests never touch the user's ~/.cache."""
    path = tmp_path_factory.mktemp("cache")
    os.environ["ENTITYLABEL_CACHE"] = str(path)
    return path
