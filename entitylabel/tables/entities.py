"""Reading the extract stage's `entities/` folder: the export's inputs and the review page's tables."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import EntityLabelError
from .layout import (
    ENTITIES_DIR,
    ENTITIES_FILE,
    EXTRACT_INFO_FILE,
    LABEL_SPACE_FILE,
    LABELS_FILE,
    MENTIONS_FILE,
    REJECTED_FILE,
)


def _read_table(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow raises many types for a damaged file
        raise EntityLabelError(f"not a readable table ({e})", path=path) from None


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
    if not (d / LABELS_FILE).exists() and (d / ENTITIES_DIR / LABELS_FILE).is_file():
        d = d / ENTITIES_DIR
    if not d.is_dir():
        raise EntityLabelError("entities folder not found", path=d, hint="pass the extract stage's output folder")
    for name in (LABELS_FILE, LABEL_SPACE_FILE):
        if not (d / name).is_file():
            raise EntityLabelError(f"{name} missing from the entities folder", path=d)
    space = _read_json(d / LABEL_SPACE_FILE)
    names = space.get("names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise EntityLabelError("`names` must be a list of distinct strings", path=d / LABEL_SPACE_FILE)
    order = {n: i for i, n in enumerate(names)}
    labels_df = _read_table(d / LABELS_FILE)
    if not {"pair_id", "entities"} <= set(labels_df.columns):
        raise EntityLabelError("labels table lacks pair_id / entities columns", path=d / LABELS_FILE)
    labels: dict[str, list[str]] = {}
    for pair_id, ents in zip(labels_df["pair_id"], labels_df["entities"], strict=True):
        ents = [] if ents is None else [str(e) for e in ents]
        unknown = [e for e in ents if e not in order]
        if unknown:
            raise EntityLabelError(
                f"pair {pair_id}: label {unknown[0]!r} is not in {LABEL_SPACE_FILE}", path=d / LABELS_FILE
            )
        labels[str(pair_id)] = sorted(set(ents), key=order.__getitem__)
    entities = _read_entities_table(d / ENTITIES_FILE) if (d / ENTITIES_FILE).is_file() else None
    extract_info = _read_json(d / EXTRACT_INFO_FILE) if (d / EXTRACT_INFO_FILE).is_file() else {}
    info = {k: v for k, v in space.items() if k not in ("names", "counts")}
    return EntityInputs(names, labels, entities, info, extract_info, d)


def read_entity_frames(folder: Path) -> tuple[dict[str, pd.DataFrame], dict[str, Any], dict[str, Any]]:
    """What the review page shows of an entities folder, as written: the tables present (entities, labels,
    rejected, mentions), label_space.json and extract.json ({} when absent)."""
    names = {"entities": ENTITIES_FILE, "labels": LABELS_FILE, "rejected": REJECTED_FILE, "mentions": MENTIONS_FILE}
    frames = {k: _read_table(folder / f) for k, f in names.items() if (folder / f).is_file()}
    space = _read_json(folder / LABEL_SPACE_FILE) if (folder / LABEL_SPACE_FILE).is_file() else {}
    info = _read_json(folder / EXTRACT_INFO_FILE) if (folder / EXTRACT_INFO_FILE).is_file() else {}
    return frames, space, info
