"""Read a run folder's tables (pairs, captions, entities, rejected) into the review page's data.

Everything here follows the data contract in `entitylabel.tables` (captions come through its one reader,
finished shards only); stages that have not run yet are simply absent from the page (a run with only
pairs.parquet still gets thumbnails).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..extract.reasons import REASONS
from ..tables import finished_shard_files, load_pairs, read_caption_table
from ..tables.entities import read_entity_frames
from .highlight import PhraseIndex, Segment, segments_from_search, segments_from_spans, status_kind

_MODALITY_ORDER = {"ir": 0, "vis": 1}


@dataclass
class RunTables:
    """The tables of one run folder; missing stages are None."""

    pairs: pd.DataFrame
    captions: pd.DataFrame | None = None
    entities: pd.DataFrame | None = None
    labels: pd.DataFrame | None = None
    label_space: dict[str, Any] = field(default_factory=dict)
    rejected: pd.DataFrame | None = None
    mentions: pd.DataFrame | None = None
    extract_info: dict[str, Any] = field(default_factory=dict)


def read_captions(path: Path) -> pd.DataFrame | None:
    """Caption rows of a caption folder (its finished shards) or one Parquet/JSONL file; None before captioning."""
    if not path.exists() or (path.is_dir() and not finished_shard_files(path, skip_unfinished=True)):
        return None
    return read_caption_table(path, skip_unfinished=True)


def exported_splits(export_dir: Path) -> dict[str, str]:
    """pair_id -> split from an export folder's plain tables (`tables/<config>/pairs.parquet`)."""
    found: dict[str, str] = {}
    for f in sorted(export_dir.glob("tables/*/pairs.parquet")) if export_dir.is_dir() else []:
        try:
            df = pd.read_parquet(f, columns=["pair_id", "split"])
        except Exception:  # not an export table after all: keep discover's splits
            continue
        found.update(zip(df["pair_id"].astype(str), df["split"].astype(str), strict=True))
    return found


def load_run(
    pairs_path: Path, captions_path: Path | None, entities_dir: Path | None, root: Path | None = None
) -> tuple[RunTables, Path]:
    """Load what exists of a run; returns the tables and the dataset root of the pair manifest."""
    manifest = load_pairs(pairs_path, root=root)
    tables = RunTables(pairs=manifest.df.sort_values("pair_id", kind="stable").reset_index(drop=True))
    if captions_path is not None:
        tables.captions = read_captions(captions_path)
    if entities_dir is not None and entities_dir.is_dir():
        frames, tables.label_space, tables.extract_info = read_entity_frames(entities_dir)
        for name, frame in frames.items():
            setattr(tables, name, frame)
    return tables, manifest.root


def _num(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else round(f, 3)


def _as_list(x: Any) -> list:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return []
    return [v for v in list(x) if v is not None]


def _text(x: Any) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x)


@dataclass
class _Labels:
    """The final labels: names per pair, how many pairs carry each name, and the label space's order."""

    by_pair: dict[str, list[str]]
    counts: dict[str, int]
    names: list[str]


@dataclass
class _Highlighter:
    """What marks a caption's words: exact mention spans when extract wrote them, else phrase search over the
    accepted mentions of the caption's own source and the rejected phrases of the whole run."""

    spans: dict[tuple[str, str], list[dict[str, Any]]]
    accepted_by_src: dict[tuple[str, str], PhraseIndex]
    rejected: PhraseIndex
    _none: PhraseIndex = field(default_factory=PhraseIndex)  # for a caption with no accepted mention

    def segments(self, pid: str, src: str, text: str) -> list[Segment]:
        if (pid, src) in self.spans:
            return segments_from_spans(text, self.spans[(pid, src)])
        accepted = self.accepted_by_src.get((pid, src)) or self.accepted_by_src.get((pid, "*"), self._none)
        return segments_from_search(text, accepted, self.rejected)


@dataclass
class _CaptionView:
    """Captions per pair as the page shows them, and the counts its summary states."""

    by_pair: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    truncated: int = 0
    models: set[str] = field(default_factory=set)


def build_payload(tables: RunTables, *, max_rejected: int = 50) -> dict[str, Any]:
    """The JSON the page renders: pairs with caption segments and entity chips, chart and rejected data."""
    labels = _final_labels(tables)
    chips, accepted_by_src = _entity_chips(tables, labels.by_pair)
    rejected_index, rejected_rows = _rejected(tables, max_rejected)
    spans = _mention_spans(tables)
    captions = _caption_view(tables, _Highlighter(spans, accepted_by_src, rejected_index))
    records = [
        {
            "id": str(row.pair_id),
            "split": _text(row.split),
            "size": f"{int(row.width)}x{int(row.height)}" if _num(row.width) is not None else "",
            "caps": captions.by_pair.get(str(row.pair_id), []),
            "ents": chips.get(str(row.pair_id), []),
        }
        for row in tables.pairs.itertuples(index=False)
    ]
    return {
        "pairs": records,
        "labels": labels.names,
        "labelCounts": {n: labels.counts.get(n, 0) for n in labels.names},
        "splits": sorted({r["split"] for r in records}),
        "rejected": rejected_rows,
        "rejectedTotal": int(len(tables.rejected)) if tables.rejected is not None else 0,
        "summary": _summary(tables, records, labels, captions, exact_spans=bool(spans)),
    }


def _final_labels(tables: RunTables) -> _Labels:
    """Labels per pair; the label space in the extract stage's order, else names by frequency."""
    by_pair: dict[str, list[str]] = {}
    if tables.labels is not None:
        for pid, ents in zip(tables.labels["pair_id"], tables.labels["entities"], strict=True):
            by_pair[str(pid)] = [str(e) for e in _as_list(ents)]
    counts: dict[str, int] = {}
    for ents in by_pair.values():
        for e in ents:
            counts[e] = counts.get(e, 0) + 1
    names = [str(n) for n in tables.label_space.get("names", [])] or sorted(counts, key=lambda n: (-counts[n], n))
    for n in sorted(set(counts) - set(names)):
        names.append(n)
    return _Labels(by_pair, counts, names)


def _entity_chips(
    tables: RunTables, labels_by_pair: dict[str, list[str]]
) -> tuple[dict[str, list[list[Any]]], dict[tuple[str, str], PhraseIndex]]:
    """Entity candidates per pair as chips `[name, confidence, final, sources, support]`, final labels first;
    and the accepted mentions per (pair, source) for highlighting."""
    chips: dict[str, list[list[Any]]] = {}
    accepted_by_src: dict[tuple[str, str], PhraseIndex] = {}
    if tables.entities is not None:
        df = tables.entities
        cols = {
            c: df[c].tolist() if c in df.columns else [None] * len(df)
            for c in ("pair_id", "entity", "confidence", "support", "sources", "mentions", "accepted")
        }
        for pid, ent, conf, sup, srcs, ments, acc in zip(*cols.values(), strict=True):
            pid, ent = str(pid), str(ent)
            if tables.labels is not None:
                final = ent in labels_by_pair.get(pid, ())
            else:
                final = bool(acc) if acc is not None else True
            chips.setdefault(pid, []).append(
                [ent, _num(conf), 1 if final else 0, [str(s) for s in _as_list(srcs)], _num(sup)]
            )
            # A mention is marked as accepted only in the captions of the sources that voted for it.
            for src in [str(x) for x in _as_list(srcs)] or ["*"]:
                index = accepted_by_src.setdefault((pid, src), PhraseIndex())
                for m in _as_list(ments):
                    index.add(str(m), "ok", ent)
    for pid, labs in labels_by_pair.items():  # a label without an entities row still gets a chip
        have = {e[0] for e in chips.get(pid, [])}
        for lab in labs:
            if lab not in have:
                chips.setdefault(pid, []).append([lab, None, 1, [], None])
    for pair_chips in chips.values():
        pair_chips.sort(key=lambda c: (-c[2], -(c[1] if c[1] is not None else -1), c[0]))
    return chips, accepted_by_src


def _rejected(tables: RunTables, max_rejected: int) -> tuple[PhraseIndex, list[dict[str, Any]]]:
    """Rejected phrases: a global phrase index for highlighting, and the curator's top list (most frequent)."""
    index = PhraseIndex()
    if tables.rejected is None or not len(tables.rejected):
        return index, []
    rej = tables.rejected.copy()
    if "count" not in rej.columns:
        rej["count"] = 1
    recs = rej.sort_values(["count", "phrase"], ascending=[False, True], kind="stable").to_dict("records")
    for r in recs:
        reason = _text(r.get("reason"))
        known = REASONS.get(reason)
        if known is None or known.phrase_is_text:  # not a pair id or a problem code
            index.add(_text(r.get("phrase")), status_kind(reason), reason)
    return index, [_rejected_row(r) for r in recs[:max_rejected]]


def _rejected_row(r: dict[str, Any]) -> dict[str, Any]:
    """One row of the curator's list, with an example caption the phrase came from."""
    reason = _text(r.get("reason"))
    return {
        "phrase": _text(r.get("phrase")),
        "lemma": _text(r.get("lemma")),
        "reason": reason,
        "kind": status_kind(reason),
        "count": int(r["count"]) if _num(r.get("count")) is not None else 0,
        "pair": _text(r.get("example_pair_id")),
        "caption": _text(r.get("example_caption")),
    }


def _mention_spans(tables: RunTables) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Exact mention spans per (pair, source), when the extract stage wrote them."""
    spans: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if tables.mentions is not None and len(tables.mentions):
        for rec in tables.mentions.to_dict("records"):
            spans.setdefault((str(rec["pair_id"]), str(rec.get("source", ""))), []).append(rec)
    return spans


def _caption_view(tables: RunTables, highlighter: _Highlighter) -> _CaptionView:
    """Each pair's captions (IR first, then VIS, then by source) as highlighted segments, with the counts."""
    view = _CaptionView()
    if tables.captions is None:
        return view
    recs = tables.captions.to_dict("records")
    recs.sort(key=lambda r: (str(r["pair_id"]), _MODALITY_ORDER.get(_text(r.get("modality")), 9), str(r["source"])))
    for r in recs:
        pid, src, text = str(r["pair_id"]), str(r["source"]), _text(r.get("caption"))
        err = _text(r.get("error")) or None
        trunc = bool(r.get("truncated")) if r.get("truncated") is not None else False
        view.failed += err is not None
        view.truncated += trunc
        view.sources[src] = view.sources.get(src, 0) + 1
        if _text(r.get("model")):
            view.models.add(_text(r.get("model")))
        cap: dict[str, Any] = {"src": src, "mod": _text(r.get("modality")), "seg": highlighter.segments(pid, src, text)}
        if err:
            cap["err"] = err
        if trunc:
            cap["trunc"] = 1
        view.by_pair.setdefault(pid, []).append(cap)
    return view


def _expected_quality(info: dict[str, Any]) -> str:
    """extract.json's expected precision and recall of the labels, as one line ("" when it has none)."""
    denoise = info.get("denoise") if isinstance(info, dict) else None
    if not isinstance(denoise, dict):
        return ""

    def num(key: str) -> float | None:
        v = denoise.get(key)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

    precision, recall, threshold, target = (
        num(k) for k in ("estimated_precision", "expected_recall", "threshold", "target_precision")
    )
    if precision is None:
        return ""
    parts = [f"precision {precision:.3f}"]
    if recall is not None:
        parts.append(f"recall {recall:.3f} of what the captions name")
    if threshold is not None:
        parts.append(
            f"confidence >= {threshold:.4g}" + (f" (--target-precision {target:g})" if target is not None else "")
        )
    return " · ".join(parts)


def _summary(
    tables: RunTables, records: list[dict[str, Any]], labels: _Labels, captions: _CaptionView, *, exact_spans: bool
) -> dict[str, Any]:
    """The page's summary block: counts, caption provenance, vocabulary and which stages have run."""
    dropped = tables.label_space.get("dropped") or tables.extract_info.get("dropped_labels") or []
    return {
        "pairs": len(records),
        "captions": int(len(tables.captions)) if tables.captions is not None else 0,
        "failedCaptions": int(captions.failed),
        "truncatedCaptions": int(captions.truncated),
        "sources": dict(sorted(captions.sources.items())),
        "models": sorted(captions.models),
        "pairsWithLabels": sum(1 for labs in labels.by_pair.values() if labs),
        "vocabSha256": _text(tables.label_space.get("vocab_sha256")),
        "vocabVersion": _text(tables.label_space.get("vocab_version")),
        "droppedLabels": [str(d) for d in (dropped if isinstance(dropped, list) else list(dropped))],
        "audit": tables.extract_info.get("audit") if isinstance(tables.extract_info.get("audit"), dict) else None,
        "expected": _expected_quality(tables.extract_info),
        "spans": "exact" if exact_spans else "phrase search",
        "stages": {
            "captions": tables.captions is not None,
            "entities": tables.entities is not None,
            "labels": tables.labels is not None,
            "rejected": tables.rejected is not None,
        },
    }
