"""What WordNet adds to a vocabulary's forms: multi-word synonyms, and which forms are never adjectives.

- `compound_forms`: a multi-word noun that WordNet lists in one of the two commonest noun senses of a
  vocabulary form names that entity ("remote control" shares remote_control.n.01 with "remote"; "tv set" shares
  television_receiver.n.01 with "tv"). Only multi-word lemmas are added (single words would import every rare
  sense), only lowercase ones (no proper names), only those that contain the form as a word and whose head
  word names no other entity ("sedan chair" stays a chair, "microwave oven" an oven), never a form the
  vocabulary already has, and never one that would name two entities. Without this the compound's first word
  is read as a modifier of an unknown head ("remote controls" -> controls), and the entity is lost.
- `noun_only_forms`: single-word vocabulary forms with no adjective sense in WordNet ("skateboard",
  "surfboard", but not "orange" or "remote"). When the tagger calls one of them an adjective ("a skateboard
  trick", "a red and yellow surfboard"), it is a mistagged noun.

Both are computed once per vocabulary (cached) from WordNet 3.0 (resources.wordnet).
"""

from __future__ import annotations

import functools

from .vocab import Vocabulary

SENSES = 2  # only a form's commonest noun senses (WordNet lists them by frequency): no "guy wire" -> person


@functools.lru_cache(maxsize=8)
def compound_forms(vocab: Vocabulary) -> dict[str, str]:
    """Multi-word WordNet synonym (spaces, lowercase) -> canonical entity, sorted by form."""
    from ..resources import wordnet

    wn = wordnet()
    found: dict[str, set[str]] = {}
    for form, entity in vocab.forms.items():
        if " " in form or "-" in form:
            continue
        for syn in wn.synsets(form, "n")[:SENSES]:
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
