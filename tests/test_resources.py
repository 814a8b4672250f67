"""The offline language resources load on a fresh install: spaCy English pipeline and NLTK WordNet."""

from __future__ import annotations

from pathlib import Path

import pytest

from entitylabel.errors import EntityLabelError
from entitylabel.resources import ensure_wordnet, load_spacy


def test_wordnet_installed_with_lf_endings_and_idempotent(tmp_path: Path) -> None:
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    root = ensure_wordnet(tmp_path / "nltk")
    data = (root / "corpora" / "wordnet" / "data.noun").read_bytes()
    assert b"\r\n" not in data[:100_000]
    mtime = (root / "corpora" / "wordnet" / "data.noun").stat().st_mtime_ns
    assert ensure_wordnet(tmp_path / "nltk") == root
    assert (root / "corpora" / "wordnet" / "data.noun").stat().st_mtime_ns == mtime  # not rewritten
    wn = WordNetCorpusReader(str(root / "corpora" / "wordnet"), None)
    sedan = wn.synset("sedan.n.01")
    assert sedan is not None
    assert wn.synset("car.n.01") in sedan.closure(lambda s: s.hypernyms())


def test_spacy_pipeline_loads_without_ner() -> None:
    nlp = load_spacy()
    assert "ner" not in nlp.pipe_names and {"tagger", "parser", "lemmatizer"} <= set(nlp.pipe_names)
    doc = nlp("Two pedestrians cross the street near parked cars.")
    assert [c.root.lemma_ for c in doc.noun_chunks] == ["pedestrian", "street", "car"]


def test_missing_spacy_pipeline_is_one_clear_error() -> None:
    with pytest.raises(EntityLabelError, match="not installed"):
        load_spacy("xx_no_such_pipeline")
