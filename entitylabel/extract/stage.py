"""`run_extract`: captions -> filtered entity mentions -> denoised multi-label pseudo-labels in entities/.

Flow: stream caption batches (reader.py) -> drop unknown pairs and bad captions (quality.py) -> parse with
spaCy `nlp.pipe` in this process or in `n_process` worker processes (each holds its own pipeline and
`MentionFinder`, and sends back only small mention tuples) -> mention filters (filters.py) -> per pair, the
set of sources mentioning each entity -> Dawid-Skene confidence (denoise.py) -> `min_support`,
`min_confidence`, `min_pairs` -> files. Memory holds per-pair aggregates and the reject counts, never the
captions, so it does not grow with the number of captions per pair.

Files written into `<out_dir>/entities/` (built under a temporary name and swapped in whole, so a failed
run never damages an earlier result); all but the log are byte-identical for the same input and settings:
- entities.parquet: every candidate (pair_id, entity) with support (number of sources mentioning it),
  confidence, accepted (it is a label), sources, weak_sources (those whose only mentions are late in a long
  caption or modifiers: "car" in "car headlights") and mentions (surface phrases), sorted by pair_id, entity;
- labels.parquet: pair_id, entities (in label-space order), n_sources; one row per pair (every manifest pair
  when `pairs` is given, else every pair with at least one usable caption), sorted by pair_id;
- label_space.json: names in vocabulary file order (so one vocabulary gives the same order on every dataset;
  pruned entities are skipped), counts of positive pairs, vocabulary name/version/sha256, dropped entities;
- rejected.parquet: see filters.py;
- extract.json: settings, counts, per-source reliability, dropped labels;
- extract.log.jsonl: wall-clock time and throughput (not deterministic, kept apart).
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import json
import multiprocessing
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import EntityLabelError
from ..io import atomic_dir, dumps_json, write_parquet
from .denoise import denoise
from .filters import RejectLog, apply_filters, default_filters
from .quality import caption_problem, chunks
from .reader import CaptionRow, caption_files, iter_caption_batches
from .vocab import Vocabulary, load_vocab

MAX_CAPTION_CHARS = 200_000  # longer captions are cut (and counted); 20k-char captions are parsed in chunks
CHUNK_CHARS = 5_000

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
# A mention first made in sentence LATE_SENTENCE (0-based) or later of a caption with at least LATE_MIN_SENTENCES
# sentences is a weak vote: the tail of a long VLM description is where it hallucinates (on the COCO benchmark
# 92% of first-sentence mentions are right, 26% of those from the 5th sentence on).
LATE_SENTENCE = 4
LATE_MIN_SENTENCES = 6
# one mention as sent back by a worker: (phrase, lemma, entity or None, drop reason or None, sentence index,
# weak modifier vote: a vocabulary noun used as a modifier that no other filter drops)
MentionTuple = tuple[str, str, "str | None", "str | None", int, bool]


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

    def print_summary(self, console) -> None:
        console.print(
            f"[bold]extract[/]: {self.n_captions} captions ({self.n_bad} bad, {self.n_unknown_pair} unknown pair) "
            f"-> {self.n_pairs} pairs, {self.n_labels} labels over {len(self.label_space)} entities "
            f"({self.method}); wrote {self.out_dir}"
        )
        if self.dropped:
            console.print(f"dropped (below --min-pairs): {', '.join(f'{k} ({v})' for k, v in self.dropped.items())}")
        if self.rejected:
            console.print("rejected mentions: " + ", ".join(f"{k} {v}" for k, v in self.rejected.items()))


# --- parsing (in this process or in workers) ------------------------------------------------------


class _Parser:
    """spaCy pipeline + MentionFinder + filters; turns caption texts into mention tuples."""

    def __init__(
        self, vocab: Vocabulary, spacy_model: str | None, keep_hedged: bool, batch_size: int, nlp: Any = None
    ) -> None:
        from ..resources import load_spacy
        from .mentions import MentionFinder

        self.nlp = nlp if nlp is not None else load_spacy(spacy_model)
        self.finder = MentionFinder(self.nlp, vocab)
        self.filters = default_filters(keep_hedged)
        self.batch_size = batch_size

    def parse(self, texts: list[str]) -> list[tuple[list[MentionTuple], int]]:
        """Per text: its mentions and its number of sentences."""
        pieces: list[str] = []
        owner: list[int] = []
        for k, text in enumerate(texts):
            for piece in chunks(text, CHUNK_CHARS):
                pieces.append(piece)
                owner.append(k)
        out: list[list[MentionTuple]] = [[] for _ in texts]
        offset = [0] * len(texts)  # sentences seen in earlier chunks of the same caption
        for doc, k in zip(self.nlp.pipe(pieces, batch_size=self.batch_size), owner, strict=True):
            for c in self.finder.candidates(doc):
                reason = apply_filters(c, self.filters)
                weak_modifier = reason == "modifier" and apply_filters(replace(c, modifier=False), self.filters) is None
                out[k].append((c.phrase, c.lemma, c.entity, reason, offset[k] + c.sentence, weak_modifier))
            offset[k] += sum(1 for _ in doc.sents)
        return list(zip(out, offset, strict=True))


_WORKER: _Parser | None = None


def _worker_init(vocab: Vocabulary, spacy_model: str | None, keep_hedged: bool, batch_size: int) -> None:
    global _WORKER
    _WORKER = _Parser(vocab, spacy_model, keep_hedged, batch_size)


def _worker_parse(texts: list[str]) -> list[tuple[list[MentionTuple], int]]:
    assert _WORKER is not None
    return _WORKER.parse(texts)


def _start_method() -> str:
    """ "spawn" (workers start clean: no inherited threads or locks), but "fork" when the main module cannot
    be re-imported by a spawned child (a script piped on stdin, `python -c`), where spawn would crash."""
    import __main__

    main_file = getattr(__main__, "__file__", None)
    spawnable = main_file is None or Path(main_file).is_file()  # None: interactive / notebook, fine
    if not spawnable and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "spawn"


def _parse_stream(
    batches: Iterator[tuple[list[CaptionRow], list[str]]], parser: _Parser, n_process: int, init_args: tuple
) -> Iterator[tuple[list[CaptionRow], list[tuple[list[MentionTuple], int]]]]:
    """Parse batches in order, in this process or in a pool with a bounded number of batches in flight."""
    if n_process <= 1:
        for rows, texts in batches:
            yield rows, parser.parse(texts)
        return
    ctx = multiprocessing.get_context(_start_method())
    with cf.ProcessPoolExecutor(n_process, mp_context=ctx, initializer=_worker_init, initargs=init_args) as ex:
        pending: collections.deque = collections.deque()
        for rows, texts in batches:
            pending.append((rows, ex.submit(_worker_parse, texts)))
            if len(pending) >= 2 * n_process:
                r, fut = pending.popleft()
                yield r, fut.result()
        while pending:
            r, fut = pending.popleft()
            yield r, fut.result()


# --- the stage ------------------------------------------------------------------------------------


def _load_pair_ids(pairs: Any) -> list[str] | None:
    if pairs is None:
        return None
    from ..pairs import PairManifest, load_pairs

    manifest = pairs if isinstance(pairs, PairManifest) else load_pairs(pairs, root=".")
    return sorted(set(manifest.df["pair_id"].astype(str)))


def run_extract(
    captions: str | Path,
    vocab: str | Path | Vocabulary,
    out_dir: str | Path,
    pairs: Any = None,
    *,
    min_support: int = 1,
    min_confidence: float = 0.5,
    min_pairs: int = 1,
    keep_hedged: bool = False,
    late_sentence: int = LATE_SENTENCE,
    late_min_sentences: int = LATE_MIN_SENTENCES,
    weak_modifiers: bool = True,
    n_process: int = 1,
    batch_size: int = 256,
    spacy_model: str | None = None,
    progress: Any = None,
    nlp: Any = None,
) -> ExtractResult:
    """Extract denoised entity labels from CAPTIONS into `<out_dir>/entities/` (see module docstring).

    `vocab`: a YAML path, a shipped name ("ivif", "coco80") or a loaded `Vocabulary`.
    `pairs`: optional pair manifest (path or `PairManifest`); captions of other pairs are reported, not used.
    `nlp`: an already loaded spaCy pipeline to reuse (tests); otherwise `spacy_model` or the default.
    `min_support`: sources that must mention an entity; `min_confidence`: denoised confidence needed;
    `min_pairs`: positive pairs an entity needs to stay in the label space; `keep_hedged`: hedged mentions
    count; `late_sentence` / `late_min_sentences`: in a caption of at least `late_min_sentences` sentences, a
    mention first made in sentence `late_sentence` (0-based) or later is a weak vote (0 turns this off);
    `weak_modifiers`: a vocabulary noun used as a modifier ("car" in "car headlights"), not negated or hedged,
    is a weak vote for its entity: never a label from one caption on its own (in the vote-fraction fallback a
    weak vote is worth 0.4), but evidence across sources (a noun modifier usually names a real object: "clock
    tower", "tree branches"; not always: "bus stop", "dog house"). Reported as `modifier` in rejected.parquet
    when the entity does not become a label of that pair; False: every modifier is only a rejection.
    Everything is validated (vocabulary, manifest, captions path, spaCy model) before anything is written.
    """
    t0 = time.perf_counter()
    if min_support < 1 or min_pairs < 1 or n_process < 1 or batch_size < 1:
        raise EntityLabelError("--min-support, --min-pairs, --n-process and --batch-size must be at least 1")
    if not 0.0 <= min_confidence <= 1.0:
        raise EntityLabelError("--min-confidence must be between 0 and 1")
    voc = vocab if isinstance(vocab, Vocabulary) else load_vocab(vocab)
    manifest_ids = _load_pair_ids(pairs)
    known = set(manifest_ids) if manifest_ids is not None else None
    files = caption_files(captions)
    parser = _Parser(voc, spacy_model, keep_hedged, batch_size, nlp=nlp)
    init_args = (voc, spacy_model, keep_hedged, batch_size)

    rejects = RejectLog()
    pair_sources: dict[str, set[str]] = {}
    votes: dict[tuple[str, str], dict[str, int]] = {}  # (pair, entity) -> source -> 2 strong / 1 weak
    phrases: dict[tuple[str, str], set[str]] = {}
    # modifier mentions that voted weakly: reported as `modifier` only if their entity is not a label
    # (pair, entity) -> (phrase, lemma) -> [count, first caption]; bounded by distinct phrases per pair
    modifier_seen: dict[tuple[str, str], dict[tuple[str, str], list]] = {}
    counts = collections.Counter()
    task = progress.add_task("extract", total=None) if progress is not None else None

    def prepared() -> Iterator[tuple[list[CaptionRow], list[str]]]:
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

    for rows, mentions in _parse_stream(prepared(), parser, n_process, init_args):
        for row, (ms, n_sents) in zip(rows, mentions, strict=True):
            long_caption = bool(late_sentence) and n_sents >= late_min_sentences
            counts["parsed"] += 1
            pair_sources.setdefault(row.pair_id, set()).add(row.source)
            for phrase, lemma, entity, reason, sentence, weak_modifier in ms:
                if reason is None or (weak_modifier and weak_modifiers):
                    key = (row.pair_id, entity)
                    strength = 1 if reason is not None or (long_caption and sentence >= late_sentence) else 2
                    voters = votes.setdefault(key, {})
                    voters[row.source] = max(voters.get(row.source, 0), strength)
                    phrases.setdefault(key, set()).add(phrase)
                    if reason is None:
                        counts["mentions_kept"] += 1
                    else:
                        counts["modifier_votes"] += 1
                        seen = modifier_seen.setdefault(key, {}).setdefault((phrase, lemma), [0, row.caption])
                        seen[0] += 1
                else:
                    rejects.add(phrase, lemma, reason, row.pair_id, row.caption)

    # --- denoise and label space ---
    items = sorted(votes)
    den = denoise(items, [votes[k] for k in items], pair_sources)
    confidence = [round(float(c), 6) for c in den.confidence]
    accepted = [len(votes[k]) >= min_support and c >= min_confidence for k, c in zip(items, confidence, strict=True)]
    for k, ok in zip(items, accepted, strict=True):
        if not ok:
            reason = "below_support" if len(votes[k]) < min_support else "low_confidence"
            rejects.add(k[1], k[1], reason, k[0], None)
    pos_counts = collections.Counter(k[1] for k, ok in zip(items, accepted, strict=True) if ok)
    dropped = {e: pos_counts[e] for e in voc.entities if 0 < pos_counts[e] < min_pairs}
    for e, n in dropped.items():
        example = next(k[0] for k, ok in zip(items, accepted, strict=True) if ok and k[1] == e)
        rejects.add(e, e, "below_min_pairs", example, None, n=n)
    names = [e for e in voc.entities if pos_counts[e] >= min_pairs and pos_counts[e] > 0]
    in_space = set(names)
    accepted = [ok and k[1] in in_space for k, ok in zip(items, accepted, strict=True)]
    for k, ok in zip(items, accepted, strict=True):  # modifiers whose entity did not become a label
        for (phrase, lemma), (n, caption) in [] if ok else modifier_seen.get(k, {}).items():
            rejects.add(phrase, lemma, "modifier", k[0], caption, n=n)

    # --- tables ---
    order = {e: i for i, e in enumerate(voc.entities)}
    pair_labels: dict[str, list[str]] = {}
    for k, ok in zip(items, accepted, strict=True):
        if ok:
            pair_labels.setdefault(k[0], []).append(k[1])
    all_pairs = manifest_ids if manifest_ids is not None else sorted(pair_sources)
    labels = pa.table(
        {
            "pair_id": all_pairs,
            "entities": [sorted(pair_labels.get(p, []), key=order.__getitem__) for p in all_pairs],
            "n_sources": [len(pair_sources.get(p, ())) for p in all_pairs],
        },
        schema=LABELS_SCHEMA,
    )
    entities = pa.table(
        {
            "pair_id": [k[0] for k in items],
            "entity": [k[1] for k in items],
            "support": [len(votes[k]) for k in items],
            "confidence": confidence,
            "accepted": accepted,
            "sources": [sorted(votes[k]) for k in items],
            "weak_sources": [sorted(s for s, v in votes[k].items() if v == 1) for k in items],
            "mentions": [sorted(phrases[k]) for k in items],
        },
        schema=ENTITIES_SCHEMA,
    )
    n_labels = sum(accepted)
    label_space = {
        "names": names,
        "counts": {e: pos_counts[e] for e in names},
        "order": "vocabulary file order; entities with no positive pair or fewer than min_pairs are left out",
        "vocab_name": voc.name,
        "vocab_version": voc.version,
        "vocab_sha256": voc.sha256,
        "n_pairs": len(all_pairs),
        "min_pairs": min_pairs,
        "dropped": dropped,
    }
    rejected_by_reason = rejects.by_reason()
    report = {
        "settings": {
            "min_support": min_support,
            "min_confidence": min_confidence,
            "min_pairs": min_pairs,
            "keep_hedged": keep_hedged,
            "late_sentence": late_sentence,
            "late_min_sentences": late_min_sentences,
            "weak_modifiers": weak_modifiers,
            "spacy_model": f"{parser.nlp.meta.get('name', '?')}-{parser.nlp.meta.get('version', '?')}",
            "vocab": {"name": voc.name, "version": voc.version, "sha256": voc.sha256},
            "captions": [f.name for f in files],
            "pairs_manifest": pairs is not None,
        },
        "counts": {
            "captions": counts["captions"],
            "parsed": counts["parsed"],
            "bad_captions": counts["bad_caption"],
            "unknown_pair_captions": counts["unknown_pair"],
            "cut_captions": counts["cut_captions"],
            "pairs": len(all_pairs),
            "pairs_with_captions": len(pair_sources),
            "pairs_with_labels": len(pair_labels),
            "candidates": len(items),
            "labels": n_labels,
            "mentions_kept": counts["mentions_kept"],
            "modifier_votes": counts["modifier_votes"],
        },
        "rejected": rejected_by_reason,
        "dropped_labels": dropped,
        "denoise": {
            "method": den.method,
            "iterations": den.iterations,
            "sources": den.reliability()
            if den.method == "dawid_skene"
            else {s: {"items": den.n_items[s]} for s in den.sources},
        },
    }
    wall = time.perf_counter() - t0
    target = Path(out_dir) / "entities"
    with atomic_dir(target, overwrite=True) as tmp:
        write_parquet(entities, tmp / "entities.parquet")
        write_parquet(labels, tmp / "labels.parquet")
        write_parquet(rejects.table(), tmp / "rejected.parquet")
        (tmp / "label_space.json").write_text(dumps_json(label_space), encoding="utf-8")
        (tmp / "extract.json").write_text(dumps_json(report), encoding="utf-8")
        log = {
            "event": "extract",
            "wall_s": round(wall, 3),
            "captions": counts["captions"],
            "captions_per_s": round(counts["captions"] / wall, 2) if wall > 0 else None,
            "n_process": n_process,
            "batch_size": batch_size,
        }
        (tmp / "extract.log.jsonl").write_text(json.dumps(log, sort_keys=True) + "\n", encoding="utf-8")
    return ExtractResult(
        out_dir=target,
        n_captions=counts["captions"],
        n_parsed=counts["parsed"],
        n_bad=counts["bad_caption"],
        n_unknown_pair=counts["unknown_pair"],
        n_pairs=len(all_pairs),
        n_labels=n_labels,
        label_space=names,
        dropped=dropped,
        rejected=rejected_by_reason,
        method=den.method,
        reliability=den.reliability(),
        wall_s=wall,
    )
