"""Split a caption into plain and highlighted segments for the review page.

A segment is `[text]` (plain) or `[text, kind, note]` where kind is one of
`ok` (a mention that became an entity; note = the entity), `neg` (negated), `hedge` (hedged) or
`rej` (rejected for another reason: not in the vocabulary, meta noun, low confidence; note = the reason).
The kind of each status comes from the one table of rejection reasons (extract/reasons.py).
Segments are plain text: the page renders them with `textContent`, never as markup.

Two sources of spans, best first:
1. the exact spans the extract stage stores in `mentions.parquet` (pair_id, source, start, end, text,
   entity, status: `accepted` or the mention's rejection reason), used as given (a span whose text does not
   match the caption is skipped);
2. for runs written before spans were stored: a case-insensitive whole-word phrase search over the pair's
   accepted mentions (entities.parquet `mentions`) and every rejected phrase (rejected.parquet). This is an
   approximation: a phrase rejected as negated in one caption is also marked where it appears un-negated in
   another caption of another pair unless that pair accepted it. Longest match wins; on equal length an
   accepted mention wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ..extract.reasons import display_kind

_WORD = re.compile(r"\w+(?:['’-]\w+)*", re.UNICODE)

Segment = list[str]


def status_kind(status: str) -> str:
    """Display kind of an extract status: `ok` for `accepted`, else its rejection reason's kind."""
    return display_kind(status or "")


def phrase_key(text: str) -> tuple[str, ...]:
    """Normalised word tuple of a phrase (lowercase words, punctuation and spacing ignored)."""
    return tuple(w.lower() for w in _WORD.findall(text or ""))


class PhraseIndex:
    """Phrases keyed by their word tuples, for longest-match lookup at each word of a caption."""

    def __init__(self, items: Iterable[tuple[str, str, str]] = ()) -> None:
        self.table: dict[tuple[str, ...], tuple[str, str]] = {}
        self.max_len = 0
        for phrase, kind, note in items:
            self.add(phrase, kind, note)

    def add(self, phrase: str, kind: str, note: str) -> None:
        key = phrase_key(phrase)
        if key and key not in self.table:  # first one wins: callers add in priority order
            self.table[key] = (kind, note)
            self.max_len = max(self.max_len, len(key))

    def __len__(self) -> int:
        return len(self.table)


def segments_from_search(caption: str, accepted: PhraseIndex, rejected: PhraseIndex) -> list[Segment]:
    """Segments by whole-word, longest-first phrase search (accepted wins ties)."""
    words = [(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(caption)]
    spans: list[tuple[int, int, str, str]] = []
    i = 0
    max_len = max(accepted.max_len, rejected.max_len)
    while i < len(words):
        hit = None
        for n in range(min(max_len, len(words) - i), 0, -1):
            key = tuple(w for _, _, w in words[i : i + n])
            found = accepted.table.get(key) or rejected.table.get(key)
            if found:
                hit = (n, found)
                break
        if hit is None:
            i += 1
            continue
        n, (kind, note) = hit
        spans.append((words[i][0], words[i + n - 1][1], kind, note))
        i += n
    return _cut(caption, spans)


def segments_from_spans(caption: str, spans: Iterable[Mapping]) -> list[Segment]:
    """Segments from exact character spans (start, end, text, entity, status); bad or overlapping spans skipped."""
    clean: list[tuple[int, int, str, str]] = []
    for s in sorted(spans, key=lambda s: (int(s["start"]), -int(s["end"]))):
        start, end = int(s["start"]), int(s["end"])
        if not (0 <= start < end <= len(caption)):
            continue
        text = s.get("text")
        if text is not None and caption[start:end] != text:
            continue
        if clean and start < clean[-1][1]:
            continue
        kind = status_kind(str(s.get("status") or "accepted"))
        note = str(s.get("entity") or "") if kind == "ok" else str(s.get("status") or "")
        clean.append((start, end, kind, note))
    return _cut(caption, clean)


def _cut(caption: str, spans: list[tuple[int, int, str, str]]) -> list[Segment]:
    out: list[Segment] = []
    pos = 0
    for start, end, kind, note in spans:
        if start > pos:
            out.append([caption[pos:start]])
        out.append([caption[start:end], kind, note])
        pos = end
    if pos < len(caption):
        out.append([caption[pos:]])
    return out
