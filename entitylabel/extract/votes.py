"""Votes step: decided mentions of each caption -> per (pair, entity) the evidence of every source.

A source votes for an entity of a pair when one of its captions of that pair has a kept mention of it, or a
weak one: a mention first made late in a long caption (sentence `late_sentence` or later of a caption of at
least `late_min_sentences` sentences: the tail of a long VLM description is where it hallucinates), or a
vocabulary noun used only as a modifier ("car" in "car headlights", when `weak_modifiers`). Each vote keeps
the linguistic evidence the confidence model reads (confidence.py): strong or weak, the first sentence it is
mentioned in and where its first mention falls as a fraction of the caption, plural or counted, and how often;
each caption keeps its length.

Memory holds per-pair aggregates, the reject counts and a few integers per mention span (for the review
page), never the captions.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from .filters import RejectLog
from .parse import ParsedCaption
from .reasons import ACCEPTED


@dataclass(slots=True)
class Vote:
    """One source's evidence for one (pair, entity)."""

    strong: bool  # a kept mention that is not late in a long caption
    first_sentence: int  # earliest sentence with a mention that votes
    plural: bool  # some voting mention is plural or counted
    n_mentions: int  # voting mentions
    core: bool  # some voting mention is not the object of a preposition
    first_char: int = 0  # character offset of its first voting mention
    noun: bool = True  # some voting mention names the entity (not only modifies another noun)
    rank: float = 0.0  # place of its first mention among the caption's voted entities: 0 first .. 1
    plain: bool = False  # some voting mention is stated plainly (mentions.Candidate.plain)
    pos: float = 0.0  # first voting mention's character offset as a fraction of the caption: 0 start .. 1 end

    def merge(self, other: Vote) -> None:
        self.strong |= other.strong
        self.first_sentence = min(self.first_sentence, other.first_sentence)
        self.plural |= other.plural
        self.n_mentions += other.n_mentions
        self.core |= other.core
        self.first_char = min(self.first_char, other.first_char)
        self.noun |= other.noun
        self.rank = min(self.rank, other.rank)
        self.plain |= other.plain
        self.pos = min(self.pos, other.pos)


class SpanStore:
    """Mention spans as integer columns with interned strings: about 24 bytes a mention, so a million
    captions cost tens of MB, not the captions themselves. Column order: pair, source, start, end, text,
    entity, reason (strings as ids into `strings`; reason id 0 is None)."""

    def __init__(self) -> None:
        self.strings: list[str | None] = [None]
        self._ids: dict[str | None, int] = {None: 0}
        self.cols = [array("i") for _ in range(7)]

    def _id(self, s: str | None) -> int:
        i = self._ids.get(s)
        if i is None:
            i = self._ids[s] = len(self.strings)
            self.strings.append(s)
        return i

    def add(self, pair: str, source: str, start: int, end: int, text: str, entity: str, reason: str | None) -> None:
        c, i = self.cols, self._id  # one call per mention: unrolled
        c[0].append(i(pair))
        c[1].append(i(source))
        c[2].append(start)
        c[3].append(end)
        c[4].append(i(text))
        c[5].append(i(entity))
        c[6].append(i(reason))

    def __iter__(self) -> Iterator[tuple]:
        s = self.strings
        for p, src, a, b, t, e, r in zip(*self.cols, strict=True):
            yield s[p], s[src], a, b, s[t], s[e], s[r]


@dataclass
class VoteTable:
    late_sentence: int
    late_min_sentences: int
    weak_modifiers: bool
    # pair -> source -> (sentences, tokens) of its caption (the longest one when a source repeats)
    captions: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    votes: dict[tuple[str, str], dict[str, Vote]] = field(default_factory=dict)
    phrases: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    # weak modifier mentions, reported as `modifier` only if their entity does not become a label:
    # (pair, entity) -> (phrase, lemma) -> [count, first caption]; bounded by distinct phrases per pair
    modifier_seen: dict[tuple[str, str], dict[tuple[str, str], list]] = field(default_factory=dict)
    # (pair, source, start, end, text, entity, reason or None); voting mentions get their status at the end
    spans: SpanStore = field(default_factory=SpanStore)
    counts: Counter = field(default_factory=Counter)

    def add(self, pair: str, source: str, caption: str, parsed: ParsedCaption, rejects: RejectLog) -> None:
        """Record one parsed caption: its votes, its rejected mentions (into `rejects`) and its spans."""
        self.counts["parsed"] += 1
        size = (parsed.n_sentences, parsed.n_tokens)
        sizes = self.captions.setdefault(pair, {})
        sizes[source] = max(sizes.get(source, size), size)
        long_caption = bool(self.late_sentence) and parsed.n_sentences >= self.late_min_sentences
        mine: dict[str, Vote] = {}
        for m in parsed.mentions:
            votes = m.reason is None or (m.weak_modifier and self.weak_modifiers)
            self.spans.add(pair, source, m.start, m.end, caption[m.start : m.end], m.entity or "", m.reason)
            if not votes:
                rejects.add(m.phrase, m.lemma, m.reason, pair, caption)
                continue
            key = (pair, m.entity)
            strong = m.reason is None and not (long_caption and m.sentence >= self.late_sentence)
            pos = m.start / max(len(caption), 1)
            vote = Vote(strong, m.sentence, m.plural, 1, m.core, m.start, noun=m.reason is None, plain=m.plain, pos=pos)
            if m.entity in mine:
                mine[m.entity].merge(vote)
            else:
                mine[m.entity] = vote
            self.phrases.setdefault(key, set()).add(m.phrase)
            if m.reason is None:
                self.counts["mentions_kept"] += 1
            else:
                self.counts["modifier_votes"] += 1
                seen = self.modifier_seen.setdefault(key, {}).setdefault((m.phrase, m.lemma), [0, caption])
                seen[0] += 1
        for k, (entity, vote) in enumerate(mine.items()):  # mentions come in text order
            vote.rank = k / len(mine)
            voters = self.votes.setdefault((pair, entity), {})
            if source in voters:
                voters[source].merge(vote)
            else:
                voters[source] = vote

    def items(self) -> list[tuple[str, str]]:
        """Candidates (pair, entity), sorted."""
        return sorted(self.votes)

    def span_rows(self, accepted: set[tuple[str, str]], verdict: dict[tuple[str, str], str]) -> list[tuple]:
        """Spans with their final status: `accepted` when the mention's entity is a label of the pair, else the
        candidate's rejection reason (`verdict`), a rejected modifier's `modifier`, or the filter's reason."""
        out = []
        for pair, source, start, end, text, entity, reason in self.spans:
            key = (pair, entity)
            if key in self.votes and (reason is None or (reason == "modifier" and self.weak_modifiers)):
                status = ACCEPTED if key in accepted else (reason or verdict.get(key, "low_confidence"))
            else:
                status = reason or ACCEPTED
            out.append((pair, source, start, end, text, entity, status))
        return out
