"""Keep/drop filters in the datatrove style: each returns True, or (False, reason); every drop is counted.

Mention filters run in order on every `Candidate`; the first one that drops it names the reason:
  meta -> not_in_vocabulary -> modifier -> negated -> hedged (hedged only when `keep_hedged` is off).
Every reason is defined once, in reasons.py. Caption-level drops (`bad_caption`), dataset-level drops
(`below_support`, `low_confidence`, `below_min_pairs`) and captions of pairs missing from the manifest
(`unknown_pair`) are logged into the same `RejectLog`, which becomes `rejected.parquet`: one row per
(phrase, lemma, reason) with a count and the first example seen (inputs are read in a fixed order, so the
example is deterministic). The decision on each mention is also stored with its span (mentions.parquet).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

from .mentions import Candidate
from .reasons import ORDER, REASONS

EXAMPLE_CHARS = 300

REJECTED_SCHEMA = pa.schema(
    [
        ("phrase", pa.string()),
        ("lemma", pa.string()),
        ("reason", pa.string()),
        ("count", pa.int64()),
        ("example_pair_id", pa.string()),
        ("example_caption", pa.string()),
    ]
)


class MentionFilter:
    """Base class: `filter(candidate)` returns True to keep, or (False, reason) to drop."""

    name = "filter"

    def filter(self, c: Candidate) -> bool | tuple[bool, str]:  # pragma: no cover - interface
        raise NotImplementedError


class VocabularyFilter(MentionFilter):
    name = "vocabulary"

    def filter(self, c: Candidate) -> bool | tuple[bool, str]:
        if c.meta:
            return False, "meta"
        if c.entity is None:
            return False, "not_in_vocabulary"
        return True


class ModifierFilter(MentionFilter):
    name = "modifier"

    def filter(self, c: Candidate) -> bool | tuple[bool, str]:
        return (False, "modifier") if c.modifier else True


class NegationFilter(MentionFilter):
    name = "negation"

    def filter(self, c: Candidate) -> bool | tuple[bool, str]:
        return (False, "negated") if c.negated else True


class HedgeFilter(MentionFilter):
    name = "hedge"

    def __init__(self, keep_hedged: bool = False) -> None:
        self.keep_hedged = keep_hedged

    def filter(self, c: Candidate) -> bool | tuple[bool, str]:
        return (False, "hedged") if c.hedged and not self.keep_hedged else True


def default_filters(keep_hedged: bool = False) -> list[MentionFilter]:
    return [VocabularyFilter(), ModifierFilter(), NegationFilter(), HedgeFilter(keep_hedged)]


def apply_filters(c: Candidate, filters: list[MentionFilter]) -> str | None:
    """None when every filter keeps the candidate, else the first drop reason."""
    for f in filters:
        verdict = f.filter(c)
        if verdict is not True:
            return verdict[1] if isinstance(verdict, tuple) else f.name
    return None


@dataclass
class RejectLog:
    """Counts drops per (phrase, lemma, reason), keeping the first example of each."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)

    def add(self, phrase: str, lemma: str, reason: str, pair_id: str, caption: str | None, n: int = 1) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}: add it to extract/reasons.py")
        key = (phrase, lemma, reason)
        self.counts[key] += n
        if key not in self.examples:
            self.examples[key] = (pair_id, (caption or "")[:EXAMPLE_CHARS])

    def by_reason(self) -> dict[str, int]:
        out: Counter = Counter()
        for (_, _, reason), n in self.counts.items():
            out[reason] += n
        return {r: out[r] for r in ORDER if out[r]}

    def table(self) -> pa.Table:
        """Rows sorted by reason (in REASONS order), then descending count, then phrase and lemma."""
        keys = sorted(self.counts, key=lambda k: (ORDER[k[2]], -self.counts[k], k[0], k[1]))
        cols: dict[str, list] = {n: [] for n in REJECTED_SCHEMA.names}
        for k in keys:
            pid, cap = self.examples[k]
            for name, value in zip(REJECTED_SCHEMA.names, (k[0], k[1], k[2], self.counts[k], pid, cap), strict=True):
                cols[name].append(value)
        return pa.table(cols, schema=REJECTED_SCHEMA)
