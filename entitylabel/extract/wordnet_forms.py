"""What WordNet adds to a vocabulary's forms: multi-word synonyms, and which forms are never adjectives.

- `compound_forms`: a multi-word noun that WordNet lists in one of the two commonest noun senses of a
  vocabulary form names that entity ("remote control" shares remote_control.n.01 with "remote"; "tv set" shares
  television_receiver.n.01 with "tv"). Only multi-word lemmas are added (single words would import every rare
  sense), only lowercase ones (no proper names), only those that contain the form as a word and whose head
  word names no other entity ("sedan chair" stays a chair, "microwave oven" an oven), never a form the
  vocabulary already has, and never one that would name two entities. Without this the compound's first word
  is read as a modifier of an unknown head ("remote controls" -> controls), and the entity is lost. Where the
  vocabulary gives the entity a WordNet synset (a curated sense), compounds come from that synset alone, and
  only for forms that are its lemmas ("plant" as vegetation never brings "industrial plant").
- `noun_only_forms`: single-word vocabulary forms with no adjective sense in WordNet ("skateboard",
  "surfboard", but not "orange" or "remote"). When the tagger calls one of them an adjective ("a skateboard
  trick", "a red and yellow surfboard"), it is a mistagged noun.

Both come from WordNet 3.0 (resources.wordnet). Loading WordNet takes seconds, so `wordnet_forms` keeps the
result in the user cache, keyed by the vocabulary file's SHA-256 and the rules' version: a run (and each parse
worker) pays for it once per vocabulary.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from ..errors import EntityLabelError
from ..io import atomic_write_json
from ..resources import cache_dir
from .vocab import Vocabulary, check_synsets

RULES_VERSION = 2  # bump when the rules below change, so cached results are recomputed

SENSES = 2  # only a form's commonest noun senses (WordNet lists them by frequency): no "guy wire" -> person


@functools.lru_cache(maxsize=8)
def compound_forms(vocab: Vocabulary) -> dict[str, str]:
    """Multi-word WordNet synonym (spaces, lowercase) -> canonical entity, sorted by form."""
    from ..resources import wordnet

    check_synsets(vocab)  # a synset WordNet lacks is the vocabulary's error, as `vocab check` says it
    wn = wordnet()
    found: dict[str, set[str]] = {}
    for form, entity in vocab.forms.items():
        if " " in form or "-" in form:
            continue
        for syn in _senses(wn, form, vocab.entities[entity].synset):
            for name in syn.lemma_names():
                if "_" not in name or name != name.lower():
                    continue
                phrase = name.replace("_", " ")
                words = phrase.split()
                # the form must be one of its words (no rare senses of another synonym: "fall guy" via pigeon),
                # and a head word that names another entity keeps its own reading ("sedan chair" is a chair)
                if form not in words or vocab.lookup(words[-1]) not in (None, entity):
                    continue
                if vocab.lookup(phrase) is None and not vocab.is_meta(phrase):
                    found.setdefault(phrase, set()).add(entity)
    return {p: next(iter(e)) for p, e in sorted(found.items()) if len(e) == 1}


def _senses(wn, form: str, curated: str | None) -> list:
    """The senses a form's compounds may come from: the entity's own synset where the vocabulary names one (a
    curated sense: "plant" as vegetation must not bring "industrial plant"), else the form's commonest senses."""
    if curated is not None:
        syn = wn.synset(curated)
        return [syn] if form.replace(" ", "_") in syn.lemma_names() or form in syn.lemma_names() else []
    return wn.synsets(form, "n")[:SENSES]


@functools.lru_cache(maxsize=8)
def noun_only_forms(vocab: Vocabulary) -> frozenset[str]:
    """Single-word vocabulary forms WordNet knows as nouns and never as adjectives."""
    from ..resources import wordnet

    wn = wordnet()
    return frozenset(
        f
        for f in vocab.forms
        if f.isalpha() and wn.synsets(f, "n") and not wn.synsets(f, "a") and not wn.synsets(f, "s")
    )


def _cache_path(vocab: Vocabulary) -> Path:
    return cache_dir() / "wordnet_forms" / f"{vocab.sha256}-v{RULES_VERSION}.json"


def check_synsets_unless_cached(vocab: Vocabulary) -> None:
    """`check_synsets` (seconds: it loads WordNet) unless this vocabulary's forms are cached, which they are only
    after a run whose synsets all resolved; for checks made before a stage runs (`entitylabel run`'s YAML)."""
    if not _cache_path(vocab).is_file():
        check_synsets(vocab)


def wordnet_forms(vocab: Vocabulary) -> tuple[dict[str, str], frozenset[str]]:
    """(`compound_forms`, `noun_only_forms`) of `vocab`, from the user cache when there (see module docstring)."""
    path = _cache_path(vocab)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(d["compounds"], dict) and isinstance(d["noun_only"], list):
            return {str(k): str(v) for k, v in d["compounds"].items()}, frozenset(map(str, d["noun_only"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass  # missing or unreadable: recompute
    compounds, noun_only = compound_forms(vocab), noun_only_forms(vocab)
    try:
        atomic_write_json(path, {"compounds": compounds, "noun_only": sorted(noun_only)})
    except (OSError, EntityLabelError):
        pass  # a read-only cache costs time, not results
    return compounds, noun_only
