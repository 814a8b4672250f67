"""Label step: candidates with confidences -> accepted labels, rejection verdicts and the label space.

A candidate (pair, entity) is a label when at least `min_support` sources vote for it and its confidence is at
least `min_confidence`. A candidate only modifiers vote for ("clock" in "clock tower") is judged by its
confidence like any other (the confidence model gives such votes less weight than naming the entity); when
it falls short, its rejection reason is `modifier`. An entity with fewer than `min_pairs` positive pairs leaves
the label space (its labels are dropped). Every candidate that is not a label is recorded with its reason
(reasons.py), and a weak modifier mention whose entity did not become a label is recorded as `modifier`.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

from .filters import RejectLog
from .vocab import Vocabulary
from .votes import VoteTable


@dataclass
class Decisions:
    items: list[tuple[str, str]]  # candidates, sorted
    confidence: list[float]  # rounded, one per candidate
    accepted: list[bool]
    verdict: dict[tuple[str, str], str]  # rejected candidate -> reason
    names: list[str]  # label space, vocabulary file order
    counts: dict[str, int]  # positive pairs per name
    dropped: dict[str, int]  # entity -> positive pairs it had, below min_pairs

    def labels(self) -> set[tuple[str, str]]:
        return {k for k, ok in zip(self.items, self.accepted, strict=True) if ok}


def decide(
    table: VoteTable,
    items: list[tuple[str, str]],
    confidence: list[float],
    vocab: Vocabulary,
    rejects: RejectLog,
    *,
    min_support: int,
    min_confidence: float,
    min_pairs: int,
) -> Decisions:
    """Accept, reject (recording why in `rejects`) and prune the label space (see module docstring)."""
    verdict: dict[tuple[str, str], str] = {}
    for k, c in zip(items, confidence, strict=True):
        if len(table.votes[k]) < min_support:
            verdict[k] = "below_support"
        elif c < min_confidence:
            # only modifiers and not confident enough: reported with the modifier phrases below
            verdict[k] = "modifier" if not any(v.noun for v in table.votes[k].values()) else "low_confidence"
    for k, reason in verdict.items():
        if reason != "modifier":  # a modifier's phrases are recorded below
            rejects.add(k[1], k[1], reason, k[0], None)
    pos_counts = collections.Counter(k[1] for k in items if k not in verdict)
    dropped = {e: pos_counts[e] for e in vocab.entities if 0 < pos_counts[e] < min_pairs}
    for e, n in dropped.items():
        example = next(k[0] for k in items if k[1] == e and k not in verdict)
        rejects.add(e, e, "below_min_pairs", example, None, n=n)
    for k in items:
        if k not in verdict and k[1] in dropped:
            verdict[k] = "below_min_pairs"
    for k in items:  # modifiers whose entity did not become a label
        for (phrase, lemma), (n, caption) in table.modifier_seen.get(k, {}).items() if k in verdict else ():
            rejects.add(phrase, lemma, "modifier", k[0], caption, n=n)
    names = [e for e in vocab.entities if pos_counts[e] >= min_pairs and pos_counts[e] > 0]
    return Decisions(
        items,
        confidence,
        [k not in verdict for k in items],
        verdict,
        names,
        {e: pos_counts[e] for e in names},
        dropped,
    )
