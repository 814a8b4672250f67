"""Train/test assignment: the dataset's own split folders where it has them, else a hash of the pair id.

A hash split is deterministic (no seed, no row order dependence) and stable when pairs are added: a pair's
split depends only on its own id, so regenerating a config never moves existing pairs between splits.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import pandas as pd

from ..errors import EntityLabelError
from ..pairs import NO_SPLIT

DEFAULT_TEST_FRACTION = 0.2
# The hub / `datasets` canonical names; folder names like "val" map onto them.
_ALIASES = {"val": "validation", "valid": "validation", "dev": "validation", "eval": "validation"}
_SPLIT_RE = re.compile(r"^\w+(\.\w+)*$")  # what `datasets` accepts as a split name in data_files
SPLIT_ORDER = ("train", "validation", "test")
_MAX_SPLIT_BYTES = 255 - len("-00000-of-00000.parquet")  # shard names are `<split>-0000i-of-0000N.parquet`


@dataclass(frozen=True)
class SplitMethod:
    """How the splits of a config were made; written into export.json and the card."""

    kind: str  # "folders" (the dataset's own split folders), "hash", or "mixed" (folders where present)
    test_fraction: float | None = None

    def describe(self) -> str:
        if self.kind == "folders":
            return "the source dataset's own split folders"
        rule = (
            f"deterministic hash split: a pair goes to `test` when the first 8 bytes of sha256(pair_id), "
            f"read as a big-endian fraction of 2^64, are below {self.test_fraction}, otherwise to `train`"
        )
        return rule if self.kind == "hash" else f"the source's split folders where present, else a {rule}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "test_fraction": self.test_fraction}


def hash_fraction(pair_id: str) -> float:
    """A pair id's position in [0, 1): the first 8 bytes of its SHA-256 as a fraction of 2^64."""
    return int.from_bytes(hashlib.sha256(pair_id.encode("utf-8")).digest()[:8], "big") / 2.0**64


def normalise_split(name: str) -> str:
    split = _ALIASES.get(name.lower(), name.lower())
    if not _SPLIT_RE.match(split):
        raise EntityLabelError(f"split name {name!r} is not usable on the hub (letters, digits, '_' only)")
    if len(split.encode("utf-8")) > _MAX_SPLIT_BYTES:
        raise EntityLabelError(
            f"split name {name!r} is too long: its shard file names would exceed 255 bytes "
            f"(at most {_MAX_SPLIT_BYTES} bytes)"
        )
    return split


def assign_splits(df: pd.DataFrame, test_fraction: float = DEFAULT_TEST_FRACTION) -> tuple[pd.Series, SplitMethod]:
    """Split name per row of a pairs table (same index), and how it was decided.

    Pairs whose manifest `split` is a real folder split keep it; pairs marked "all" are hashed.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise EntityLabelError(f"test fraction must be in [0, 1), got {test_fraction}")
    from_folders = df["split"].fillna(NO_SPLIT).astype(str)
    hashed = df["pair_id"].map(lambda p: "test" if hash_fraction(p) < test_fraction else "train")
    has_folders = from_folders != NO_SPLIT
    splits = from_folders.where(has_folders, hashed).map(normalise_split)
    if has_folders.all() and len(df):
        return splits, SplitMethod("folders")
    return splits, SplitMethod("mixed" if has_folders.any() else "hash", test_fraction)


def ordered_splits(names: set[str] | list[str]) -> list[str]:
    """train, validation, test first, then any other split alphabetically."""
    known = [s for s in SPLIT_ORDER if s in names]
    return known + sorted(set(names) - set(SPLIT_ORDER))
