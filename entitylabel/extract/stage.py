"""`run_extract`: captions -> entity mentions -> votes -> calibrated confidence -> labels in entities/.

The stage is a short composition of steps, each in its own module:
  read (reader.py) and caption checks (quality.py) -> parse (parse.py: spaCy, mentions.py with token
  spans, filters.py deciding each mention) -> votes (votes.py: per pair and entity, the evidence of each
  source) -> confidence (confidence.py: sources grouped by model, calibrated P(entity in pair)) -> label
  space (labelspace.py: thresholds, pruning, rejection verdicts) -> write (write.py: the files and their
  columns). Every rejection reason is defined once, in reasons.py.
Memory holds per-pair aggregates, the reject counts and the mention spans, never the captions.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..annotations import Annotations
from ..errors import EntityLabelError
from ..pipeline.lock import folder_lock
from ..settings import ExtractSettings, check_values
from ..tables import layout
from .audit import audit_labels, audit_lines
from .confidence import describe, estimate, load_model
from .denoise import model_reliability
from .filters import RejectLog
from .labelspace import Decisions, decide
from .parse import Parser, parse_stream
from .precision import expected_quality, threshold_for_precision
from .quality import caption_problem
from .reader import CaptionRow, caption_files, iter_caption_batches
from .sources import group_by_model
from .vocab import Vocabulary, load_vocab
from .votes import VoteTable
from .write import entities_table, labels_table, mentions_table, write_outputs

MAX_CAPTION_CHARS = 200_000  # longer captions are cut (and counted); 20k-char captions are parsed in chunks
# A mention first made in sentence LATE_SENTENCE (0-based) or later of a caption with at least LATE_MIN_SENTENCES
# sentences is a weak vote (votes.py); the shipped confidence coefficients were fitted with these values.
LATE_SENTENCE = 4
LATE_MIN_SENTENCES = 6
# The default threshold maximises the mean F1 of the five POPE models alone on the tuning half (even
# image_id); confidences are calibrated probabilities, so it is also the least P(entity) a label may have.
MIN_CONFIDENCE = 0.45


@dataclass
class ExtractResult:
    out_dir: Path
    n_captions: int
    n_parsed: int
    n_bad: int
    n_unknown_pair: int
    n_pairs: int
    n_labels: int
    label_space: list[str]
    dropped: dict[str, int]
    rejected: dict[str, int]
    method: str
    reliability: dict[str, dict[str, float]] = field(default_factory=dict)
    wall_s: float = 0.0
    audit: dict[str, Any] | None = None  # against the dataset's own boxes (`annotations=`)

    def print_summary(self, console) -> None:
        from rich.markup import escape

        console.print(
            f"[bold]extract[/]: {self.n_captions} captions ({self.n_bad} bad, {self.n_unknown_pair} unknown pair) "
            f"-> {self.n_pairs} pairs, {self.n_labels} labels over {len(self.label_space)} entities "
            f"({escape(self.method)}); wrote {escape(str(self.out_dir))}",
            markup=True,
        )
        if self.dropped:
            console.print(f"dropped (below --min-pairs): {', '.join(f'{k} ({v})' for k, v in self.dropped.items())}")
        if self.rejected:
            console.print("rejected mentions: " + ", ".join(f"{k} {v}" for k, v in self.rejected.items()))
        if self.audit is not None:
            for line in audit_lines(self.audit):
                console.print(line, markup=False, highlight=False, soft_wrap=True)


def _load_manifest(pairs: Any) -> Any:
    if pairs is None:
        return None
    from ..pairs import PairManifest, load_pairs

    return pairs if isinstance(pairs, PairManifest) else load_pairs(pairs, root=".")


def _load_annotations(annotations: str | Path | None, manifest: Any, voc: Vocabulary) -> Annotations | None:
    """The dataset's own boxes for the audit, read with the extract's vocabulary; they need the pair manifest."""
    if annotations is None:
        return None
    if manifest is None:
        raise EntityLabelError("--annotations needs --pairs: annotation files are matched to the manifest's pairs")
    from ..annotations import load_annotations

    ann = load_annotations(annotations, manifest.df, voc)
    if ann.files.empty:
        raise EntityLabelError("the annotations match no pair of the manifest", path=annotations)
    return ann


def choose_threshold(
    table: VoteTable, items: list[tuple[str, str]], confidence: list[float], min_support: int, target: float
) -> float:
    """The threshold `--target-precision` asks for, on the run's own candidates that have enough support
    (precision.threshold_for_precision); above every confidence when none reaches it (no labels)."""
    pool = [c for k, c in zip(items, confidence, strict=True) if len(table.votes[k]) >= min_support]
    t = threshold_for_precision(pool, target)
    if t is not None:
        return t
    return math.nextafter(max(pool), math.inf) if pool else 1.0


def _usable(
    captions: str | Path,
    batch_size: int,
    known: set[str] | None,
    rejects: RejectLog,
    counts: collections.Counter,
    progress: Any,
) -> Iterator[tuple[list[CaptionRow], list[str]]]:
    """Caption batches with unknown pairs and bad captions taken out (and recorded), long texts cut."""
    task = progress.add_task("extract", total=None) if progress is not None else None
    for batch in iter_caption_batches(captions, batch_size):
        rows: list[CaptionRow] = []
        texts: list[str] = []
        for row in batch:
            counts["captions"] += 1
            if known is not None and row.pair_id not in known:
                counts["unknown_pair"] += 1
                rejects.add(row.pair_id, "", "unknown_pair", row.pair_id, row.caption)
                continue
            problem = "caption_error" if row.error else caption_problem(row.caption)
            if problem:
                counts["bad_caption"] += 1
                rejects.add("", problem, "bad_caption", row.pair_id, row.caption or row.error)
                continue
            text = row.caption or ""
            if len(text) > MAX_CAPTION_CHARS:
                counts["cut_captions"] += 1
                text = text[:MAX_CAPTION_CHARS]
            rows.append(row)
            texts.append(text)
        if rows:
            yield rows, texts
        if task is not None:
            progress.update(task, advance=len(batch))


def _report(
    settings: dict,
    counts: collections.Counter,
    table: VoteTable,
    dec: Decisions,
    rejects: RejectLog,
    reliability: tuple[dict, int],
    n_pairs: int,
    threshold: float,
) -> dict[str, Any]:
    model = load_model()
    labels = [c for c, ok in zip(dec.confidence, dec.accepted, strict=True) if ok]
    expected = expected_quality(labels, dec.confidence)
    return {
        "settings": settings,
        "counts": {
            "captions": counts["captions"],
            "parsed": table.counts["parsed"],
            "bad_captions": counts["bad_caption"],
            "unknown_pair_captions": counts["unknown_pair"],
            "cut_captions": counts["cut_captions"],
            "pairs": n_pairs,
            "pairs_with_captions": len(table.captions),
            "pairs_with_labels": len({k[0] for k in dec.labels()}),
            "candidates": len(dec.items),
            "labels": len(labels),
            "mentions_kept": table.counts["mentions_kept"],
            "modifier_votes": table.counts["modifier_votes"],
        },
        "rejected": rejects.by_reason(),
        "dropped_labels": dec.dropped,
        "denoise": {
            "method": "calibrated",
            "about": describe(model),
            "fit": model.fit,
            # confidence is calibrated: the mean confidence of the labels estimates their precision, their summed
            # confidence over every candidate's the share of what the captions name that they keep
            "threshold": threshold,
            "target_precision": settings["target_precision"],
            "estimated_precision": expected["expected_precision"],
            "expected_recall": expected["expected_recall"],
            "expected_recall_about": "relative to the objects the captions name (candidates); objects no caption "
            "mentions are not counted",
            "models": {m: ss for m, ss in group_by_model(s for c in table.captions.values() for s in c).items()},
            "reliability": reliability[0],
            "iterations": reliability[1],
        },
    }


def run_extract(
    captions: str | Path,
    vocab: str | Path | Vocabulary,
    out_dir: str | Path,
    pairs: Any = None,
    *,
    min_support: int = 1,
    min_confidence: float = MIN_CONFIDENCE,
    target_precision: float | None = None,
    min_pairs: int = 1,
    keep_hedged: bool = False,
    late_sentence: int = LATE_SENTENCE,
    late_min_sentences: int = LATE_MIN_SENTENCES,
    weak_modifiers: bool = True,
    n_process: int = 1,
    batch_size: int = 256,
    spacy_model: str | None = None,
    annotations: str | Path | None = None,
    progress: Any = None,
    nlp: Any = None,
) -> ExtractResult:
    """Extract entity labels with calibrated confidences from CAPTIONS into `<out_dir>/entities/` (write.py).

    `vocab`: a YAML path, a shipped name ("ivif", "coco80") or a loaded `Vocabulary`.
    `pairs`: optional pair manifest (path or `PairManifest`); captions of other pairs are reported, not used.
    `nlp`: an already loaded spaCy pipeline to reuse (tests); otherwise `spacy_model` or the default.
    `min_support`: sources that must vote for an entity; `min_confidence`: confidence (an estimate of
    P(entity in pair)) needed; `target_precision`: instead of `min_confidence`, the threshold whose
    expected precision (the mean confidence of the labels) on this run's candidates is closest to this
    (`choose_threshold`); `min_pairs`: positive pairs an entity needs to stay in the label space;
    `keep_hedged`: hedged mentions count; `late_sentence` / `late_min_sentences`: in a caption of at least
    `late_min_sentences` sentences, a mention first made in sentence `late_sentence` (0-based) or later is a
    weak vote (0 turns this off); `weak_modifiers`: a vocabulary noun used as a modifier ("car" in "car
    headlights"), not negated or hedged, is a weak vote for its entity, else only a rejection.
    `annotations`: the dataset's own boxes (needs `pairs`): the labels are audited against them (`audit.py`) in
    extract.json's `audit`.
    Everything is validated (vocabulary, manifest, captions path, spaCy model) before anything is written.
    """
    t0 = time.perf_counter()
    settings = dict(
        min_support=min_support, min_confidence=min_confidence, target_precision=target_precision,
        min_pairs=min_pairs, keep_hedged=keep_hedged,
        late_sentence=late_sentence, late_min_sentences=late_min_sentences, weak_modifiers=weak_modifiers,
    )  # fmt: skip
    check_values(
        ExtractSettings,
        min_support=min_support,
        min_confidence=min_confidence,
        target_precision=target_precision,
        min_pairs=min_pairs,
        n_process=n_process,
        batch_size=batch_size,
    )  # fmt: skip - the CLI's and the YAML's limits (settings.py) for direct callers too
    voc = vocab if isinstance(vocab, Vocabulary) else load_vocab(vocab)
    manifest = _load_manifest(pairs)
    manifest_ids = sorted(set(manifest.df["pair_id"].astype(str))) if manifest is not None else None
    ann = _load_annotations(annotations, manifest, voc)
    files = caption_files(captions)
    parser = Parser(voc, spacy_model, keep_hedged, batch_size, nlp=nlp)
    # a second extract into the same folder fails at once, naming the first (pipeline.lock)
    with folder_lock(Path(out_dir) / layout.ENTITIES_DIR, "extract"):
        settings |= {
            "spacy_model": f"{parser.nlp.meta.get('name', '?')}-{parser.nlp.meta.get('version', '?')}",
            "vocab": {"name": voc.name, "version": voc.version, "sha256": voc.sha256},
            "captions": [f.name for f in files],
            "pairs_manifest": pairs is not None,
        }
        rejects, counts = RejectLog(), collections.Counter()
        known = set(manifest_ids) if manifest_ids is not None else None
        batches = _usable(captions, batch_size, known, rejects, counts, progress)
        init_args = (voc, spacy_model, keep_hedged, batch_size)
        table = _votes(parse_stream(batches, parser, n_process, init_args), rejects, settings)
        if counts["captions"] and counts["unknown_pair"] == counts["captions"]:  # the wrong captions, not "no text"
            raise EntityLabelError(
                f"no caption row belongs to a pair of the manifest ({counts['captions']} rows, none of its "
                f"{len(known or ())} pairs); nothing written",
                path=captions,
                hint="pass the captions made from this --pairs manifest",
            )
        items = table.items()
        confidence = [round(float(c), 6) for c in estimate(items, table)]
        threshold = min_confidence
        if target_precision is not None:
            threshold = choose_threshold(table, items, confidence, min_support, target_precision)
        dec = decide(table, items, confidence, voc, rejects, min_support=min_support, min_confidence=threshold,
                     min_pairs=min_pairs)  # fmt: skip
        all_pairs = manifest_ids if manifest_ids is not None else sorted(table.captions)
        reliability = model_reliability(items, table)
        report = _report(settings, counts, table, dec, rejects, reliability, len(all_pairs), threshold)
        wall = time.perf_counter() - t0
        order = {e: i for i, e in enumerate(voc.entities)}
        labels = labels_table(table, dec, order, all_pairs)
        tables = {
            layout.ENTITIES_FILE: entities_table(table, dec),
            layout.LABELS_FILE: labels,
            layout.MENTIONS_FILE: mentions_table(table, dec),
        }
        if ann is not None:
            ids, ents = labels["pair_id"].to_pylist(), labels["entities"].to_pylist()
            predicted = {p: list(es or []) for p, es in zip(ids, ents, strict=True)}
            report["audit"] = audit_labels(predicted, ann, set(table.captions), dec.names)
        jsons = {
            layout.LABEL_SPACE_FILE: _label_space(voc, dec, len(all_pairs), min_pairs),
            layout.EXTRACT_INFO_FILE: report,
        }
        target = write_outputs(out_dir, tables, rejects, jsons, _log(wall, counts["captions"], n_process, batch_size))
        return ExtractResult(
            target, counts["captions"], table.counts["parsed"], counts["bad_caption"], counts["unknown_pair"],
            len(all_pairs), sum(dec.accepted), dec.names, dec.dropped, rejects.by_reason(), "calibrated",
            reliability[0], wall, report.get("audit"),
        )  # fmt: skip


def _log(wall: float, n_captions: int, n_process: int, batch_size: int) -> dict[str, Any]:
    rate = round(n_captions / wall, 2) if wall > 0 else None
    return {"event": "extract", "wall_s": round(wall, 3), "captions": n_captions, "captions_per_s": rate,
            "n_process": n_process, "batch_size": batch_size}  # fmt: skip


def _votes(parsed: Iterator[tuple[list[CaptionRow], list]], rejects: RejectLog, settings: dict) -> VoteTable:
    """The votes step over the parsed caption stream."""
    table = VoteTable(settings["late_sentence"], settings["late_min_sentences"], settings["weak_modifiers"])
    for rows, captions in parsed:
        for row, p in zip(rows, captions, strict=True):
            table.add(row.pair_id, row.source, row.caption or "", p, rejects)
    return table


def _label_space(voc: Vocabulary, dec: Decisions, n_pairs: int, min_pairs: int) -> dict[str, Any]:
    return {
        "names": dec.names,
        "counts": dec.counts,
        "order": "vocabulary file order; entities with no positive pair or fewer than min_pairs are left out",
        "vocab_name": voc.name,
        "vocab_version": voc.version,
        "vocab_sha256": voc.sha256,
        "n_pairs": n_pairs,
        "min_pairs": min_pairs,
        "dropped": dec.dropped,
    }
