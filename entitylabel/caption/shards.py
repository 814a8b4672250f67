"""Caption shards: the plan over the pair manifest and writing shards with their done markers.

Pairs sorted by pair_id are cut into shards of `shard_size` pairs; shard k is `shard-0000k.parquet`.
A shard is written to a temporary file and renamed, then its `.done` marker is written; the marker holds a
fingerprint of the shard's pairs and of every setting that shapes its captions, so a rerun skips a shard
only when it is finished AND was made the same way. Rows are sorted by (pair_id, modality, prompt_id),
so the same inputs give byte-identical files whatever the batch size or the number of processes.
The schema and the folder layout readers rely on live in `entitylabel.tables`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..io import atomic_write_json, write_parquet
from ..tables.layout import CAPTION_SCHEMA, finished_shard_files  # noqa: F401 - the tables module owns them

SORT_KEY = ["pair_id", "modality", "prompt_id", "source"]


@dataclass(frozen=True)
class Shard:
    index: int
    pair_ids: tuple[str, ...]
    prefix: str = "shard"

    @property
    def name(self) -> str:
        return f"{self.prefix}-{self.index:05d}"

    def parquet(self, folder: Path) -> Path:
        return folder / f"{self.name}.parquet"

    def marker(self, folder: Path) -> Path:
        return folder / f"{self.name}.done"


def plan_shards(pair_ids: Sequence[str], shard_size: int, prefix: str = "shard") -> list[Shard]:
    """Cut the sorted pair ids into consecutive shards of `shard_size`."""
    ids = sorted(pair_ids)
    return [Shard(k, tuple(ids[i : i + shard_size]), prefix) for k, i in enumerate(range(0, len(ids), shard_size))]


def fingerprint(shard: Shard, settings: dict[str, Any]) -> str:
    """Hash of a shard's pairs and the settings that make its rows."""
    blob = json.dumps({"pairs": shard.pair_ids, "settings": settings}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def is_done(shard: Shard, folder: Path, fp: str) -> bool:
    """Finished and made with the same pairs and settings."""
    marker, data = shard.marker(folder), shard.parquet(folder)
    if not (marker.is_file() and data.is_file()):
        return False
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("fingerprint") == fp
    except (OSError, ValueError):
        return False


def write_shard(shard: Shard, folder: Path, rows: list[dict[str, Any]], fp: str) -> int:
    """Write the shard's rows (sorted) atomically, then its done marker; returns the row count."""
    shard.marker(folder).unlink(missing_ok=True)  # a stale marker must never vouch for new data
    df = pd.DataFrame(rows, columns=CAPTION_SCHEMA.names)
    if len(df):
        df = df.sort_values(SORT_KEY, kind="stable", na_position="first").reset_index(drop=True)
    df["n_tokens"] = df["n_tokens"].astype("Int32")
    df["truncated"] = df["truncated"].astype(bool)
    write_parquet(df, shard.parquet(folder), schema=CAPTION_SCHEMA)
    atomic_write_json(
        shard.marker(folder),
        {"shard": shard.name, "pairs": len(shard.pair_ids), "rows": len(df), "fingerprint": fp},
    )
    return len(df)


def clean_temp_files(folder: Path, shards: Sequence[Shard]) -> None:
    """Remove temporary files a killed run left behind for these shards (only ours: other ranks may be writing)."""
    for shard in shards:
        for tmp in folder.glob(f".{shard.name}.*.tmp"):
            tmp.unlink(missing_ok=True)


def remove_stale(folder: Path, shards: Sequence[Shard], prefix: str = "shard") -> list[str]:
    """Delete `{prefix}-NNNNN.*` files beyond the plan (the manifest shrank); returns their names."""
    keep = {s.name for s in shards}
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d{{5}})\.(parquet|done)$")
    gone = []
    for f in sorted(folder.glob(f"{prefix}-*")):
        m = pattern.match(f.name)
        if m and f"{prefix}-{m.group(1)}" not in keep:
            f.unlink(missing_ok=True)
            gone.append(f.name)
    return gone
