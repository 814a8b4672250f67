"""Shared helpers for the extract tests: one spaCy pipeline per session and a small hand-written vocabulary."""

from __future__ import annotations

import functools
import json
from pathlib import Path

TEST_VOCAB = """\
name: testvocab
version: "0.1"
meta: [image, picture, scene, background, view, infrared view, photo]
entities:
  person:
    synonyms: [people, man, men, woman, women, pedestrian, pedestrians, child, children, surfer, player]
  car:
    synonyms: [cars, automobile, sedan, van]
  dog:
    synonyms: [dogs, puppy]
  cat: {}
  hot dog:
    synonyms: [hot dogs, hotdog]
  headlight:
    synonyms: [headlights]
  traffic light:
    synonyms: [traffic lights, stoplight]
  street lamp:
    synonyms: [street lamps, lamp post, lamp-post, streetlight]
  road:
    synonyms: [roads, street, streets]
  bench: {}
  hat: {}
  tree:
    synonyms: [trees]
  bicycle:
    synonyms: [bicycles, bike, bikes]
  building:
    synonyms: [buildings, house]
"""


@functools.lru_cache(maxsize=1)
def nlp():
    from entitylabel.resources import load_spacy

    return load_spacy()


def write_vocab(folder: Path, text: str = TEST_VOCAB, name: str = "vocab.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def vote_table(captions: dict[str, dict[str, tuple[int, int]]], votes: dict[tuple[str, str], dict]):
    """A VoteTable made by hand: pair -> source -> (sentences, tokens); (pair, entity) -> source -> Vote."""
    from entitylabel.extract.votes import VoteTable

    table = VoteTable(4, 6, True)
    table.captions = {p: dict(c) for p, c in captions.items()}
    table.votes = {k: dict(v) for k, v in votes.items()}
    table.phrases = {k: {k[1]} for k in votes}
    return table
