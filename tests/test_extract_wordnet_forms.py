"""WordNet-derived forms: what they add for a small vocabulary, and the cache that spares reloading WordNet."""

from __future__ import annotations

import json

from extract_support import write_vocab

from entitylabel.extract import wordnet_forms as wf
from entitylabel.extract.vocab import load_vocab

VOCAB = """name: wn-forms
version: "1"
entities:
  remote: {synonyms: [remote, remotes]}
  tv: {synonyms: [tv, tvs]}
  skateboard: {synonyms: [skateboard]}
  orange: {synonyms: [orange, oranges]}
  car: {synonyms: [car, sedan]}
  chair: {synonyms: [chair]}
  person: {synonyms: [person, guy]}
"""


def test_compounds_and_noun_only_forms(tmp_path, entitylabel_cache):
    vocab = load_vocab(write_vocab(tmp_path, VOCAB))
    compounds = wf.compound_forms(vocab)
    assert compounds["remote control"] == "remote"
    assert compounds["tv set"] == "tv"
    assert "sedan chair" not in compounds  # its head names another entity
    assert "guy wire" not in compounds  # a rare sense of "guy"
    noun_only = wf.noun_only_forms(vocab)
    assert "skateboard" in noun_only
    assert "orange" not in noun_only and "remote" not in noun_only  # both are adjectives too


def test_cached_forms_equal_computed_and_bad_cache_is_recomputed(tmp_path, entitylabel_cache):
    vocab = load_vocab(write_vocab(tmp_path, VOCAB))
    want = (wf.compound_forms(vocab), wf.noun_only_forms(vocab))
    assert wf.wordnet_forms(vocab) == want
    path = entitylabel_cache / "wordnet_forms" / f"{vocab.sha256}-v{wf.RULES_VERSION}.json"
    assert path.is_file()
    assert wf.wordnet_forms(vocab) == want  # read back from the cache
    path.write_text("{not json", encoding="utf-8")
    assert wf.wordnet_forms(vocab) == want
    assert json.loads(path.read_text(encoding="utf-8"))["compounds"]["remote control"] == "remote"  # rewritten


def test_a_curated_synset_limits_compounds_to_that_sense(tmp_path, entitylabel_cache):
    """ "plant" as vegetation (the vocabulary's synset) must not bring "industrial plant" (plant.n.01, a factory)."""
    text = """name: wn-curated
version: "1"
entities:
  vegetation: {synonyms: [vegetation, plant], synset: vegetation.n.01}
  dog: {synonyms: [dog], synset: dog.n.01}
  truck: {synonyms: [truck]}
"""
    compounds = wf.compound_forms(load_vocab(write_vocab(tmp_path, text)))
    assert "industrial plant" not in compounds
    assert compounds["domestic dog"] == "dog"  # a lemma of the curated synset itself
    assert compounds["hand truck"] == "truck"  # no synset given: the form's commonest senses, as before
