"""Helpers shared by the caption tests: small pair manifests over real and synthetic images."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from entitylabel.io import write_parquet
from entitylabel.pairs import PAIRS_SCHEMA, ROOT_KEY, load_pairs

REPO = Path(__file__).resolve().parents[1]


def discover_subset(root: Path, work: Path, n: int) -> Path:
    """Discover the pairs under `root` (read in place) and keep the first `n` by pair_id."""
    from entitylabel.discover import run_discover

    run_discover(root, work / "all")
    full = load_pairs(work / "all")
    df = full.df.sort_values("pair_id").head(n).reset_index(drop=True)
    return write_manifest(df, full.root, work / "pairs.parquet")


def write_manifest(df: pd.DataFrame, root: Path, path: Path) -> Path:
    return write_parquet(df, path, schema=PAIRS_SCHEMA, metadata={ROOT_KEY: str(root)})


def synthetic_manifest(folder: Path, n: int, *, size: tuple[int, int] = (48, 40)) -> Path:
    """`n` synthetic IR/VIS pairs (ir/ and vi/ PNGs) in `folder` and their manifest `folder/pairs.parquet`."""
    from entitylabel.discover import run_discover

    rng = np.random.default_rng(0)
    for d in ("ir", "vi"):
        (folder / d).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        stem = f"{i:02d}"
        Image.fromarray(rng.integers(0, 255, size[::-1], dtype=np.uint8), mode="L").save(folder / "ir" / f"{stem}.png")
        Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8), mode="RGB").save(
            folder / "vi" / f"{stem}.png"
        )
    run_discover(folder, folder, dataset="syn")  # pair ids syn-00, syn-01, ...
    return folder / "pairs.parquet"


def shard_bytes(folder: Path) -> dict[str, bytes]:
    """Every data file of a caption folder (shards, markers, summary), not the timing log."""
    return {f.name: f.read_bytes() for f in sorted(folder.iterdir()) if f.suffix in (".parquet", ".done", ".json")}


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "entitylabel", *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def tno_manifest(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 6 real TNO pairs."""
    return discover_subset(shared_data / "TNO", tmp_path_factory.mktemp("tno"), 6)


@pytest.fixture(scope="session")
def roadscene_manifest(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 5 real RoadScene pairs."""
    return discover_subset(shared_data / "RoadScene", tmp_path_factory.mktemp("roadscene"), 5)
