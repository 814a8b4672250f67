"""Reading what the caption and extract stages wrote (the data contract: `entitylabel.tables`).

Captions: through the one caption reader (`tables.read_caption_table`: a caption folder's finished shards, or
one Parquet / JSON Lines file; duplicates and non-string captions left out, as extract leaves them out).
Entities: the extract folder (labels.parquet, label_space.json, optionally entities.parquet and extract.json).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import EntityLabelError
from ..tables import CAPTION_SCHEMA, read_caption_table

CAPTIONS_SCHEMA = CAPTION_SCHEMA  # the tables module owns the contract
MODALITIES = ("ir", "vis")


def _read_table(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow raises many types for a damaged file
        raise EntityLabelError(f"not a readable table ({e})", path=path) from None


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


@dataclass
class EntityInputs:
    """The extract stage's output for one dataset."""

    label_space: list[str]
    labels: dict[str, list[str]]  # pair_id -> entity names in label-space order
    entities: pa.Table | None  # entities.parquet as written (all its columns), sorted by pair_id, entity
    space_info: dict[str, Any] = field(default_factory=dict)  # label_space.json without names/counts
    extract_info: dict[str, Any] = field(default_factory=dict)  # extract.json
    folder: Path | None = None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise EntityLabelError(f"not readable JSON ({e})", path=path) from None
    if not isinstance(data, dict):
        raise EntityLabelError("expected a JSON object", path=path)
    return data


def _read_entities_table(path: Path) -> pa.Table:
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise EntityLabelError(f"not a readable table ({e})", path=path) from None
    missing = [c for c in ("pair_id", "entity", "confidence") if c not in table.column_names]
    if missing:
        raise EntityLabelError(f"entities table lacks columns {missing}", path=path)
    return table.sort_by([("pair_id", "ascending"), ("entity", "ascending")])


def read_entities(folder: str | Path) -> EntityInputs:
    """labels.parquet + label_space.json (required), entities.parquet + extract.json (optional).

    `folder` is the extract stage's `entities/` folder or the run folder holding it.
    """
    d = Path(folder)
    if not (d / "labels.parquet").exists() and (d / "entities" / "labels.parquet").is_file():
        d = d / "entities"
    if not d.is_dir():
        raise EntityLabelError("entities folder not found", path=d, hint="pass the extract stage's output folder")
    for name in ("labels.parquet", "label_space.json"):
        if not (d / name).is_file():
            raise EntityLabelError(f"{name} missing from the entities folder", path=d)
    space = _read_json(d / "label_space.json")
    names = space.get("names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise EntityLabelError("`names` must be a list of distinct strings", path=d / "label_space.json")
    order = {n: i for i, n in enumerate(names)}
    labels_df = _read_table(d / "labels.parquet")
    if not {"pair_id", "entities"} <= set(labels_df.columns):
        raise EntityLabelError("labels table lacks pair_id / entities columns", path=d / "labels.parquet")
    labels: dict[str, list[str]] = {}
    for pair_id, ents in zip(labels_df["pair_id"], labels_df["entities"], strict=True):
        ents = [] if ents is None else [str(e) for e in ents]
        unknown = [e for e in ents if e not in order]
        if unknown:
            raise EntityLabelError(
                f"pair {pair_id}: label {unknown[0]!r} is not in label_space.json", path=d / "labels.parquet"
            )
        labels[str(pair_id)] = sorted(set(ents), key=order.__getitem__)
    entities = _read_entities_table(d / "entities.parquet") if (d / "entities.parquet").is_file() else None
    extract_info = _read_json(d / "extract.json") if (d / "extract.json").is_file() else {}
    info = {k: v for k, v in space.items() if k not in ("names", "counts")}
    return EntityInputs(names, labels, entities, info, extract_info, d)
