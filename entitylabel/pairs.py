"""The pair manifest (`pairs.parquet`) that discover writes and every later stage reads."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from .errors import EntityLabelError
from .io import read_parquet_metadata

ROOT_KEY = "entitylabel.root"

PAIRS_SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("dataset", pa.string()),
        ("split", pa.string()),
        ("ir_path", pa.string()),
        ("vis_path", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("ir_mode", pa.string()),
        ("vis_mode", pa.string()),
        ("ir_sha256", pa.string()),
        ("vis_sha256", pa.string()),
    ]
)

PROBLEMS_SCHEMA = pa.schema(
    [
        ("path", pa.string()),  # relative to the dataset root
        ("pair_id", pa.string()),  # empty when the file belongs to no pair
        ("kind", pa.string()),  # short code, e.g. corrupt, missing_vis, size_mismatch, ir_16bit
        ("message", pa.string()),
        ("severity", pa.string()),  # "error": file left out of every pair; "warning": pair kept
    ]
)

NO_SPLIT = "all"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """File-name-safe form of a name: runs of other characters become '_'."""
    return _UNSAFE.sub("_", text).strip("_") or "_"


def make_pair_id(dataset: str, split: str, stem: str) -> str:
    """Stable pair id: `{dataset}-{stem}`, or `{dataset}-{split}-{stem}` when the dataset has split folders."""
    parts = [dataset] + ([split] if split and split != NO_SPLIT else []) + [stem]
    return "-".join(safe_name(p) for p in parts)


@dataclass
class PairManifest:
    """A loaded pair manifest: the table plus the dataset root its relative paths hang from."""

    df: pd.DataFrame
    root: Path

    def path(self, rel: str) -> Path:
        return self.root / rel

    def ir_abspath(self, row: Any) -> Path:
        return self.root / row["ir_path"] if isinstance(row, dict | pd.Series) else self.root / row.ir_path

    def vis_abspath(self, row: Any) -> Path:
        return self.root / row["vis_path"] if isinstance(row, dict | pd.Series) else self.root / row.vis_path

    def __len__(self) -> int:
        return len(self.df)


def load_pairs(path: str | Path, root: str | Path | None = None) -> PairManifest:
    """Read `pairs.parquet` (or a run folder holding one); `root` overrides the stored dataset root."""
    p = Path(path)
    if p.is_dir():
        p = p / "pairs.parquet"
    if not p.is_file():
        raise EntityLabelError("pair manifest not found", path=p, hint="run `entitylabel discover` first")
    try:
        df = pd.read_parquet(p)
        stored = read_parquet_metadata(p).get(ROOT_KEY)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise EntityLabelError(f"not a readable Parquet pair manifest ({e})", path=p) from None
    missing = [c for c in PAIRS_SCHEMA.names if c not in df.columns]
    if missing:
        raise EntityLabelError(f"pair manifest lacks columns {missing}", path=p)
    if root is None:
        if stored is None:
            raise EntityLabelError("pair manifest does not record its dataset root", path=p, hint="pass root=")
        root = stored
    return PairManifest(df=df, root=Path(root))
