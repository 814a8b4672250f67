"""`entitylabel vocab suggest`: grow a vocabulary from what the extract stage rejected.

Reads `rejected.parquet` (phrase, lemma, reason, count, example_pair_id, example_caption), keeps the rows
with reason "not_in_vocabulary", adds up counts per lemma and, for the most frequent lemmas, proposes the
vocabulary entity WordNet places them under: walk the hypernym closure of the lemma's first noun synset
(its most frequent sense; the next senses in order only when it reaches no entity, as for "oak", whose
first sense is the wood) breadth-first and stop at the first synset that is an entity's `synset`, or,
for an entity without one, whose lemma names include the entity's canonical name. Closest wins; at equal
distance a synset match beats a name match. So "sedan" -> sedan.n.01 > car.n.01 -> car. Name matches are
limited to entities without a synset, and to canonical names, because a synonym is often a word of another
sense: "vessel" is a boat in ivif but vessel.n.03 is above "bottle"; CHAIR's "container" is a bowl in
coco80 but container.n.01 is above "tractor".

The curator reads the table (or the YAML snippet from `--out`), pastes the forms worth keeping into the
vocabulary, runs `entitylabel vocab check` and extracts again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..errors import EntityLabelError
from .vocab import SHIPPED, Vocabulary, load_vocab, normalise_form

COLUMNS = ["lemma", "count", "proposed_entity", "via", "example", "example_pair_id", "synset"]
_NEEDED = ("lemma", "reason", "count")
_PLAIN = re.compile(r"[a-z][a-z0-9 '._-]*")


def read_rejected(path: str | Path) -> pd.DataFrame:
    """Load a rejected.parquet, checking it has the columns suggest needs."""
    p = Path(path)
    if p.is_dir() and (p / "rejected.parquet").is_file():
        p = p / "rejected.parquet"
    if not p.is_file():
        raise EntityLabelError("rejected file not found", path=p, hint="pass the extract stage's rejected.parquet")
    try:
        df = pd.read_parquet(p)
    except Exception as e:  # pyarrow raises several types for a file that is not Parquet
        raise EntityLabelError(f"cannot read as Parquet ({type(e).__name__})", path=p) from None
    missing = [c for c in _NEEDED if c not in df.columns]
    if missing:
        raise EntityLabelError(f"missing column(s) {', '.join(missing)}", path=p, hint="expected rejected.parquet")
    return df


def vocab_for_rejected(path: str | Path, default: str = "ivif") -> str | Path:
    """The vocabulary a rejected.parquet was made with when it is a shipped one (from label_space.json)."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    space = folder / "label_space.json"
    if space.is_file():
        try:
            name = json.loads(space.read_text(encoding="utf-8")).get("vocab_name")
        except (ValueError, AttributeError):
            name = None
        if name in SHIPPED:
            return name
    return default


def suggest(
    rejected: str | Path | pd.DataFrame,
    vocab: Vocabulary | str | Path,
    top: int = 50,
    *,
    reason: str = "not_in_vocabulary",
) -> pd.DataFrame:
    """The `top` most frequent rejected lemmas with a proposed entity (None when WordNet finds none).

    Columns: lemma, count, proposed_entity, via (synset path, "" when none), example (a caption),
    example_pair_id, synset (the lemma's first noun synset, "" when WordNet does not know it).
    Lemmas the vocabulary now knows (as a form or as meta) and tokens without letters are left out.
    """
    vocab = vocab if isinstance(vocab, Vocabulary) else load_vocab(vocab)
    df = read_rejected(rejected) if not isinstance(rejected, pd.DataFrame) else rejected
    df = df[df["reason"] == reason]
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "count" else "object") for c in COLUMNS})
    lemma = df["lemma"].fillna("").astype(str)
    if "phrase" in df.columns:
        lemma = lemma.where(lemma.str.strip() != "", df["phrase"].fillna("").astype(str))
    work = pd.DataFrame(
        {
            "lemma": lemma.map(normalise_form),
            "count": pd.to_numeric(df["count"], errors="coerce").fillna(0).astype("int64"),
            "example": df["example_caption"].fillna("").astype(str) if "example_caption" in df else "",
            "example_pair_id": df["example_pair_id"].fillna("").astype(str) if "example_pair_id" in df else "",
        }
    )
    work = work[work["lemma"].str.contains(r"[a-z]", regex=True)]
    work = work[[vocab.lookup(w) is None and not vocab.is_meta(w) for w in work["lemma"]]]
    if work.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "count" else "object") for c in COLUMNS})
    # the example comes from the lemma's most frequent row; ties broken by text so the choice is stable
    work = work.sort_values(["lemma", "count", "example", "example_pair_id"], ascending=[True, False, True, True])
    agg = work.groupby("lemma", sort=True).agg(
        count=("count", "sum"), example=("example", "first"), example_pair_id=("example_pair_id", "first")
    )
    agg = agg.reset_index().sort_values(["count", "lemma"], ascending=[False, True]).head(max(top, 0))

    from ..resources import wordnet

    wn = wordnet()
    index = _EntityIndex(vocab)
    rows = []
    for r in agg.itertuples(index=False):
        prop = propose(r.lemma, index, wn)
        rows.append(
            {
                "lemma": r.lemma,
                "count": int(r.count),
                "proposed_entity": prop.entity,
                "via": prop.via,
                "example": r.example,
                "example_pair_id": r.example_pair_id,
                "synset": prop.synset,
            }
        )
    out = pd.DataFrame(rows, columns=COLUMNS)
    out["proposed_entity"] = out["proposed_entity"].astype(object).where(out["proposed_entity"].notna(), None)
    return out


@dataclass(frozen=True)
class Proposal:
    entity: str | None
    via: str  # "sedan.n.01 > car.n.01"; "" when nothing was found
    synset: str  # the lemma's first noun synset, "" when none


class _EntityIndex:
    """Vocabulary entities by synset id, and forms of entities that have no synset."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self.by_synset = {e.synset: e.name for e in vocab.entities.values() if e.synset}
        # canonical names of entities without a synset, in the form WordNet spells lemma names
        self.by_name = {
            e.name.replace(" ", "_").replace("-", "_"): e.name for e in vocab.entities.values() if not e.synset
        }

    def hit(self, synset: Any) -> tuple[int, str] | None:
        """(0, entity) for a synset match, (1, entity) for a name match, else None."""
        name = self.by_synset.get(synset.name())
        if name:
            return 0, name
        for lemma in synset.lemma_names():
            ent = self.by_name.get(lemma.lower().replace("-", "_"))
            if ent:
                return 1, ent
        return None


def _noun_synsets(lemma: str, wn: Any) -> list[Any]:
    for cand in dict.fromkeys((lemma.replace(" ", "_"), lemma.replace(" ", "_").replace("-", "_"))):
        found = wn.synsets(cand, pos=wn.NOUN)
        if found:
            return found
    return []


def propose(lemma: str, index: _EntityIndex, wn: Any) -> Proposal:
    """Nearest vocabulary entity above `lemma` in WordNet, trying its noun senses in frequency order.

    Multi-word lemmas WordNet lacks ("red sedan") use their last word.
    """
    senses = _noun_synsets(lemma, wn)
    if not senses and " " in lemma:
        senses = _noun_synsets(lemma.rsplit(" ", 1)[1], wn)
    if not senses:
        return Proposal(None, "", "")
    for start in senses:
        found = _closest(start, index)
        if found:
            return Proposal(found[0], found[1], senses[0].name())
    return Proposal(None, "", senses[0].name())


def _closest(start: Any, index: _EntityIndex) -> tuple[str, str] | None:
    """Breadth-first up the hypernyms of `start`: (entity, "a.n.01 > b.n.01") of the nearest hit."""
    parent: dict[Any, Any] = {start: None}
    level = [start]
    while level:
        hits = [(h, i, s) for i, s in enumerate(level) if (h := index.hit(s)) is not None]
        if hits:
            (_, entity), _, s = min(hits, key=lambda t: (t[0][0], t[1]))
            path = []
            while s is not None:
                path.append(s.name())
                s = parent[s]
            return entity, " > ".join(reversed(path))
        nxt = []
        for s in level:
            for h in s.hypernyms() + s.instance_hypernyms():
                if h not in parent:
                    parent[h] = s
                    nxt.append(h)
        level = nxt
    return None


def _scalar(text: str) -> str:
    """A YAML scalar for `text`: plain when that reads back as the same string, else double-quoted."""
    if _PLAIN.fullmatch(text) and yaml.safe_load(text) == text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _mentions(n: int) -> str:
    return f"{n} mention" + ("" if n == 1 else "s")


def _comment(text: str, limit: int = 80) -> str:
    t = re.sub(r"\s+", " ", text).strip()
    return t if len(t) <= limit else t[: limit - 3] + "..."


def suggestions_yaml(table: pd.DataFrame, vocab: Vocabulary, source: str | Path = "rejected.parquet") -> str:
    """A YAML snippet for a curator: forms to add to existing entities, and candidate new entities."""
    lines = [
        f"# entitylabel vocab suggest: out-of-vocabulary nouns in {Path(source).name}, "
        f"against vocabulary {vocab.name} {vocab.version}",
        "# Accept a form by adding it (and its plural) to that entity's synonyms; accept a new entity by",
        "# pasting its block under `entities:` (check the synset: it is WordNet's first sense). Then run",
        "# `entitylabel vocab check FILE` and extract again.",
    ]
    known = table[table["proposed_entity"].notna()]
    unknown = table[table["proposed_entity"].isna()]
    lines.append("add_synonyms:" + ("" if len(known) else " {}"))
    for ent in sorted(known["proposed_entity"].unique(), key=lambda e: list(vocab.entities).index(e)):
        lines.append(f"  {_scalar(ent)}:")
        for r in known[known["proposed_entity"] == ent].itertuples(index=False):
            lines.append(f"    - {_scalar(r.lemma)}  # {_mentions(r.count)}; {r.via}")
    lines.append("new_entities:" + ("" if len(unknown) else " {}"))
    for r in unknown.itertuples(index=False):
        lines.append(f"  {_scalar(r.lemma)}:  # {_mentions(r.count)}; e.g. {_comment(r.example)}")
        lines.append(f"    synonyms: [{_scalar(r.lemma)}]")
        if r.synset:
            lines.append(f"    synset: {_scalar(r.synset)}")
    return "\n".join(lines) + "\n"


def print_suggestions(table: pd.DataFrame, console: Any, title: str = "out-of-vocabulary nouns") -> None:
    """A rich table of suggestions."""
    from rich.table import Table
    from rich.text import Text  # cells as plain text: captions may contain [brackets]

    t = Table(title=title)
    for col, kw in (
        ("lemma", {}),
        ("count", {"justify": "right"}),
        ("proposed entity", {}),
        ("via", {}),
        ("example", {"overflow": "ellipsis", "no_wrap": True, "max_width": 60}),
    ):
        t.add_column(col, **kw)
    for r in table.itertuples(index=False):
        prop = r.proposed_entity if isinstance(r.proposed_entity, str) else "-"
        cells = (r.lemma, str(r.count), prop, r.via or "-", _comment(r.example, 120))
        t.add_row(*(Text(c) for c in cells))
    console.print(t)
