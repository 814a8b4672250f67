"""Write step: the tables and reports of one extract run, built under a temporary name and swapped in whole.

Files in `<out_dir>/entities/` (all but the log are byte-identical for the same input and settings):
- entities.parquet: every candidate (pair_id, entity) with support (sources voting for it), confidence,
  accepted (it is a label), sources, weak_sources (those whose only votes are weak: late in a long caption
  or a modifier) and mentions (surface phrases), sorted by pair_id, entity;
- labels.parquet: pair_id, entities (in label-space order), n_sources; one row per pair (every manifest pair
  when `pairs` is given, else every pair with at least one usable caption), sorted by pair_id;
- label_space.json: names in vocabulary file order (so one vocabulary gives the same order on every dataset;
  pruned entities are skipped), counts of positive pairs, vocabulary name/version/sha256, dropped entities;
- rejected.parquet: see filters.py;
- mentions.parquet: every mention's character span in its caption (pair_id, source, start, end, text,
  entity, status: `accepted` or its rejection reason), in caption order; the review page highlights with it;
- extract.json: settings, counts, how confidences were obtained, per-model reliability, dropped labels;
- extract.log.jsonl: wall-clock time and throughput (not deterministic, kept apart).
The folder goes through `io.atomic_dir`: a run killed half-way leaves the earlier result untouched, and the
next run removes the temporaries it left (`io.clean_stale_temps`: only ours, only of dead processes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..io import atomic_dir, clean_stale_temps, dumps_json, write_parquet
from ..tables import layout
from .filters import RejectLog
from .labelspace import Decisions
from .votes import VoteTable

ENTITIES_SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("entity", pa.string()),
        ("support", pa.int32()),
        ("confidence", pa.float64()),
        ("accepted", pa.bool_()),
        ("sources", pa.list_(pa.string())),
        ("weak_sources", pa.list_(pa.string())),
        ("mentions", pa.list_(pa.string())),
    ]
)
LABELS_SCHEMA = pa.schema([("pair_id", pa.string()), ("entities", pa.list_(pa.string())), ("n_sources", pa.int32())])
MENTIONS_SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("source", pa.string()),
        ("start", pa.int32()),
        ("end", pa.int32()),
        ("text", pa.string()),
        ("entity", pa.string()),
        ("status", pa.string()),
    ]
)


def entities_table(table: VoteTable, dec: Decisions) -> pa.Table:
    votes = [table.votes[k] for k in dec.items]
    return pa.table(
        {
            "pair_id": [k[0] for k in dec.items],
            "entity": [k[1] for k in dec.items],
            "support": [len(v) for v in votes],
            "confidence": dec.confidence,
            "accepted": dec.accepted,
            "sources": [sorted(v) for v in votes],
            "weak_sources": [sorted(s for s, x in v.items() if not x.strong) for v in votes],
            "mentions": [sorted(table.phrases[k]) for k in dec.items],
        },
        schema=ENTITIES_SCHEMA,
    )


def labels_table(table: VoteTable, dec: Decisions, order: dict[str, int], all_pairs: list[str]) -> pa.Table:
    per_pair: dict[str, list[str]] = {}
    for k in sorted(dec.labels()):
        per_pair.setdefault(k[0], []).append(k[1])
    return pa.table(
        {
            "pair_id": all_pairs,
            "entities": [sorted(per_pair.get(p, []), key=order.__getitem__) for p in all_pairs],
            "n_sources": [len(table.captions.get(p, ())) for p in all_pairs],
        },
        schema=LABELS_SCHEMA,
    )


def mentions_table(table: VoteTable, dec: Decisions) -> pa.Table:
    rows = table.span_rows(dec.labels(), dec.verdict)
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in MENTIONS_SCHEMA.names]
    return pa.table(dict(zip(MENTIONS_SCHEMA.names, map(list, cols), strict=True)), schema=MENTIONS_SCHEMA)


def write_outputs(
    out_dir: str | Path,
    tables: dict[str, pa.Table],
    rejects: RejectLog,
    jsons: dict[str, dict[str, Any]],
    log: dict[str, Any],
) -> Path:
    """Write `<out_dir>/entities/` atomically: `tables` as Parquet, `jsons` as JSON, the log line apart."""
    target = Path(out_dir) / layout.ENTITIES_DIR
    clean_stale_temps(target.parent)  # what a killed run left half-written (its process is gone)
    with atomic_dir(target, overwrite=True) as tmp:
        for name, t in tables.items():
            write_parquet(t, tmp / name)
        write_parquet(rejects.table(), tmp / layout.REJECTED_FILE)
        for name, obj in jsons.items():
            (tmp / name).write_text(dumps_json(obj), encoding="utf-8")
        (tmp / "extract.log.jsonl").write_text(json.dumps(log, sort_keys=True) + "\n", encoding="utf-8")
    return target
