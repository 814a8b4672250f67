"""Every reason a mention, caption or candidate is rejected, defined once.

A reason is added here and nowhere else: the filters (filters.py) and the stage name reasons from this table,
`rejected.parquet` is sorted in its order, and the review page (report/highlight.py) takes each reason's
display kind and whether its `phrase` column is caption text from it.
Display kinds: `neg` (the text denies the object), `hedge` (the text only guesses), `rej` (anything else).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    name: str
    kind: str  # display kind on the review page: neg, hedge or rej
    phrase_is_text: bool  # the rejected.parquet `phrase` is words from a caption (not a pair id or a code)
    doc: str


_TABLE = (
    Reason(
        "bad_caption", "rej", False, "empty / whitespace / non_english / token_soup / caption_error (code in lemma)"
    ),
    Reason("unknown_pair", "rej", False, "caption of a pair that is not in the --pairs manifest (pair id in phrase)"),
    Reason("meta", "rej", True, 'a meta noun of the vocabulary ("image", "scene")'),
    Reason("not_in_vocabulary", "rej", True, "a noun head the vocabulary does not know (input for `vocab suggest`)"),
    Reason(
        "modifier",
        "rej",
        True,
        'a vocabulary noun modifying another noun ("car" in "car headlights"); a weak vote when not negated or '
        "hedged, reported only when its entity did not become a label of that pair",
    ),
    Reason("negated", "neg", True, 'inside a negation / absence scope ("no cars")'),
    Reason("hedged", "hedge", True, 'inside a hedge scope ("what appears to be a dog"), dropped unless keep_hedged'),
    Reason(
        "below_support", "rej", True, "fewer sources than --min-support mention it for that pair (entity in phrase)"
    ),
    Reason("low_confidence", "rej", True, "confidence under --min-confidence for that pair (entity in phrase)"),
    Reason("below_min_pairs", "rej", True, "fewer than --min-pairs positive pairs: left out of the label space"),
)
REASONS: dict[str, Reason] = {r.name: r for r in _TABLE}
ORDER: dict[str, int] = {r.name: i for i, r in enumerate(_TABLE)}
ACCEPTED = "accepted"  # the status of a mention that counts for its entity (mentions.parquet)


def display_kind(status: str) -> str:
    """`ok` for an accepted mention, else the reason's kind (`rej` for a status this table does not know)."""
    if status == ACCEPTED:
        return "ok"
    reason = REASONS.get(status)
    return reason.kind if reason is not None else "rej"
