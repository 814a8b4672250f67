"""Reading what the caption and extract stages wrote (the data contract: `entitylabel.tables`).

Captions: through the one caption reader (`tables.read_caption_table`: a caption folder's finished shards, or
one Parquet / JSON Lines file; duplicates and non-string captions left out, as extract leaves them out).
Entities: the extract folder (labels.parquet, label_space.json, optionally entities.parquet and extract.json),
read by `tables.entities.read_entities`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..tables import CAPTION_SCHEMA, read_caption_table
from ..tables.entities import EntityInputs, read_entities  # noqa: F401 - the export's entity inputs

CAPTIONS_SCHEMA = CAPTION_SCHEMA  # the tables module owns the contract
MODALITIES = ("ir", "vis")


def read_captions(path: str | Path) -> pd.DataFrame:
    """All caption rows in CAPTIONS_SCHEMA column order, sorted by (pair_id, modality, source)."""
    return read_caption_table(path)


def primary_captions(captions: pd.DataFrame, prompt: str | None = None) -> dict[str, dict[str, str]]:
    """modality -> pair_id -> the one caption shown in the `caption_<modality>` column.

    Per (pair, modality): successful, non-empty captions only; the `prompt` id first when given, then VLM
    captions before imported ones, then by prompt id and source (so the choice never depends on row order).
    """
    ok = captions[captions["error"].isna() & captions["caption"].fillna("").str.strip().ne("")]
    ok = ok[ok["modality"].isin(MODALITIES)].copy()
    ok["_rank_prompt"] = (ok["prompt_id"] != prompt) if prompt else False
    ok["_rank_external"] = ok["source"].str.startswith("external:")
    ok = ok.sort_values(
        ["pair_id", "modality", "_rank_prompt", "_rank_external", "prompt_id", "source"],
        na_position="last",
        kind="stable",
    )
    first = ok.drop_duplicates(["pair_id", "modality"], keep="first")
    return {m: dict(zip(g["pair_id"], g["caption"], strict=True)) for m, g in first.groupby("modality")}
