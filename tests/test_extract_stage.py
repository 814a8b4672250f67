"""run_extract end to end on synthetic captions: files, labels, rejections, determinism, bad input, CLI."""

from __future__ import annotations

import json
import random

import pandas as pd
import pyarrow.parquet as pq
import pytest
from extract_support import nlp, write_jsonl, write_vocab

from entitylabel.errors import EntityLabelError
from entitylabel.extract.quality import caption_problem
from entitylabel.extract.reasons import REASONS
from entitylabel.extract.stage import MIN_CONFIDENCE, run_extract
from entitylabel.io import write_parquet
from entitylabel.pairs import PAIRS_SCHEMA

SOURCES = ("ir:brief:m1", "vis:brief:m1", "vis:detail:m2")
CAPTIONS = {
    "d-001": ("A man walks a dog on the road.", "A man and his dog on a street.", "A man with a dog near a car."),
    "d-002": (
        "Cars on a road at night.",
        "Two cars and a bus stop.",
        "There are no people in the image, only cars on the road.",
    ),
    "d-003": ("A building with trees.", "Trees in front of a house.", "What appears to be a cat near a building."),
    "d-004": ("", "   ", "一辆汽车停在路边。"),
}
FILES = (
    "entities.parquet",
    "labels.parquet",
    "label_space.json",
    "rejected.parquet",
    "mentions.parquet",
    "extract.json",
)


def _rows(captions=CAPTIONS):
    return [
        {"pair_id": pid, "source": src, "caption": cap}
        for pid, caps in captions.items()
        for src, cap in zip(SOURCES, caps, strict=True)
    ]


@pytest.fixture()
def setup(tmp_path, entitylabel_cache):
    return write_jsonl(tmp_path / "captions.jsonl", _rows()), write_vocab(tmp_path)


def test_outputs_labels_and_rejections(setup, tmp_path):
    captions, vocab = setup
    res = run_extract(captions, vocab, tmp_path / "run", nlp=nlp())
    ent_dir = tmp_path / "run" / "entities"
    assert all((ent_dir / f).is_file() for f in FILES)
    labels = pd.read_parquet(ent_dir / "labels.parquet")
    got = {p: list(e) for p, e in zip(labels.pair_id, labels.entities, strict=True)}
    assert got["d-001"] == ["person", "car", "dog", "road"]  # label-space (vocabulary file) order
    assert "car" in got["d-002"] and "person" not in got["d-002"]  # "no people" is negated
    assert set(got["d-003"]) >= {"tree", "building"} and "cat" not in got["d-003"]  # hedged
    assert "d-004" not in got  # no usable caption
    space = json.loads((ent_dir / "label_space.json").read_text())
    vocab_order = [
        "person",
        "car",
        "dog",
        "cat",
        "hot dog",
        "headlight",
        "traffic light",
        "street lamp",
        "road",
        "bench",
        "hat",
        "tree",
        "bicycle",
        "building",
    ]
    assert space["names"] == [n for n in vocab_order if n in space["names"]]
    assert space["counts"]["person"] == 1 and space["vocab_sha256"]
    rej = pd.read_parquet(ent_dir / "rejected.parquet")
    reasons = set(rej.reason)
    assert {"negated", "hedged", "meta", "bad_caption"} <= reasons, reasons
    bad = rej[rej.reason == "bad_caption"]
    assert set(bad.lemma) == {"empty", "whitespace", "non_english"}
    neg = rej[(rej.reason == "negated")].iloc[0]
    assert neg.phrase == "people" and neg.example_pair_id == "d-002" and "no people" in neg.example_caption
    ents = pd.read_parquet(ent_dir / "entities.parquet")
    row = ents[(ents.pair_id == "d-001") & (ents.entity == "dog")].iloc[0]
    assert row.support == 3 and list(row.sources) == sorted(SOURCES) and 0 < row.confidence <= 1
    assert set(row.mentions) == {"dog"}
    assert res.n_captions == 12 and res.n_bad == 3 and res.method == "calibrated"
    # every mention's span is stored with its decision: exact caption text, the status the review page shows
    spans = pd.read_parquet(ent_dir / "mentions.parquet")
    texts = {(r["pair_id"], r["source"]): r["caption"] for r in _rows()}
    assert all(
        texts[(p, s)][a:b] == t
        for p, s, a, b, t in zip(*(spans[c] for c in ("pair_id", "source", "start", "end", "text")), strict=True)
    )
    status = {(p, s, t): st for p, s, t, st in zip(spans.pair_id, spans.source, spans.text, spans.status, strict=True)}
    assert status[("d-002", "vis:detail:m2", "people")] == "negated"
    assert status[("d-003", "vis:detail:m2", "cat")] == "hedged"
    assert status[("d-001", "ir:brief:m1", "dog")] == "accepted"
    assert status[("d-002", "vis:detail:m2", "image")] == "meta"
    assert set(spans.status) <= set(REASONS) | {"accepted"} and len(spans) == len(
        set(zip(spans.pair_id, spans.source, spans.start, strict=True))
    )


def test_min_support_and_min_pairs(setup, tmp_path):
    captions, vocab = setup
    run_extract(captions, vocab, tmp_path / "a", min_support=2, nlp=nlp())
    ents = pd.read_parquet(tmp_path / "a" / "entities" / "entities.parquet")
    assert not ents[ents.support < 2].accepted.any()
    rej = pd.read_parquet(tmp_path / "a" / "entities" / "rejected.parquet")
    assert "below_support" in set(rej.reason)

    res = run_extract(captions, vocab, tmp_path / "b", min_pairs=2, min_confidence=0.0, nlp=nlp())
    space = json.loads((tmp_path / "b" / "entities" / "label_space.json").read_text())
    assert all(n >= 2 for n in space["counts"].values())
    assert res.dropped and set(res.dropped) == set(space["dropped"])
    report = json.loads((tmp_path / "b" / "entities" / "extract.json").read_text())
    assert report["dropped_labels"] == space["dropped"]
    labels = pd.read_parquet(tmp_path / "b" / "entities" / "labels.parquet")
    assert not {e for es in labels.entities for e in es} & set(res.dropped)


def test_outputs_are_byte_identical(setup, tmp_path):
    captions, vocab = setup
    run_extract(captions, vocab, tmp_path / "a", nlp=nlp())
    run_extract(captions, vocab, tmp_path / "b", nlp=nlp(), batch_size=2)
    for f in FILES:
        assert (tmp_path / "a" / "entities" / f).read_bytes() == (tmp_path / "b" / "entities" / f).read_bytes(), f


def test_unknown_pairs_are_reported_and_manifest_pairs_all_listed(setup, tmp_path):
    captions, vocab = setup
    manifest = pd.DataFrame({c: ["x"] * 3 for c in PAIRS_SCHEMA.names})
    manifest["pair_id"] = ["d-001", "d-003", "d-999"]
    manifest[["width", "height"]] = 1
    write_parquet(manifest, tmp_path / "pairs.parquet", schema=PAIRS_SCHEMA, metadata={"entitylabel.root": "/x"})
    res = run_extract(captions, vocab, tmp_path / "run", pairs=tmp_path / "pairs.parquet", nlp=nlp())
    assert res.n_unknown_pair == 6  # d-002 and d-004, three captions each
    rej = pd.read_parquet(tmp_path / "run" / "entities" / "rejected.parquet")
    unknown = rej[rej.reason == "unknown_pair"]
    assert dict(zip(unknown.phrase, unknown["count"], strict=True)) == {"d-002": 3, "d-004": 3}
    labels = pd.read_parquet(tmp_path / "run" / "entities" / "labels.parquet")
    assert list(labels.pair_id) == ["d-001", "d-003", "d-999"]
    assert list(labels.entities.iloc[2]) == [] and labels.n_sources.iloc[2] == 0


def test_broken_vocabulary_is_one_error_and_keeps_earlier_output(setup, tmp_path):
    captions, vocab = setup
    run_extract(captions, vocab, tmp_path / "run", nlp=nlp())
    before = {f: (tmp_path / "run" / "entities" / f).read_bytes() for f in FILES}
    broken = write_vocab(tmp_path, "name: x\nversion: '1'\nentities:\n  car: [oops\n", name="broken.yaml")
    with pytest.raises(EntityLabelError, match="broken.yaml"):
        run_extract(captions, broken, tmp_path / "run", nlp=nlp())
    dup = write_vocab(
        tmp_path, "version: '1'\nentities:\n  car: {synonyms: [auto]}\n  bus: {synonyms: [auto]}\n", name="dup.yaml"
    )
    with pytest.raises(EntityLabelError, match="auto"):
        run_extract(captions, dup, tmp_path / "run", nlp=nlp())
    assert {f: (tmp_path / "run" / "entities" / f).read_bytes() for f in FILES} == before


def test_long_caption_and_token_soup_do_not_crash(tmp_path, entitylabel_cache):
    rng = random.Random(0)
    adjs = ["red", "tall", "old", "wet", "dark", "quiet", "narrow", "busy", "small", "bright", "grey", "wide"]
    verbs = ["stands", "waits", "rests", "appears", "sits", "shines", "turns", "stops", "moves", "glows"]
    places = ["corner", "gate", "fence", "wall", "bridge", "crossing", "square", "river", "hill", "tunnel"]
    sents = [
        f"A {rng.choice(adjs)} car {rng.choice(verbs)} by the {rng.choice(adjs)} {rng.choice(places)} "
        f"next to a {rng.choice(adjs)} building on the road."
        for _ in range(330)
    ]
    long = " ".join(sents)[:20_000]  # a 20,000-character caption
    assert len(long) == 20_000 and caption_problem(long) is None
    rows = [
        {"pair_id": "a", "source": "s", "caption": long},
        {"pair_id": "b", "source": "s", "caption": "dog " * 5000},
        {"pair_id": "c", "source": "s", "caption": "A dog."},
    ]
    res = run_extract(write_jsonl(tmp_path / "c.jsonl", rows), write_vocab(tmp_path), tmp_path / "run", nlp=nlp())
    labels = pd.read_parquet(tmp_path / "run" / "entities" / "labels.parquet")
    got = {p: list(e) for p, e in zip(labels.pair_id, labels.entities, strict=True)}
    assert got["a"] == ["car", "road", "building"] and got["c"] == ["dog"]
    assert res.n_bad == 1 and res.method == "calibrated"


def test_late_mentions_are_weak_votes(tmp_path, entitylabel_cache):
    text = "A man walks. The sky is dark. It is night. The road is wet. A bench is also visible. It rains."
    short = "A man walks. The sky is dark. It is night. The road is wet. A bench is also visible."
    rows = [{"pair_id": "a", "source": "s", "caption": text}, {"pair_id": "b", "source": "s", "caption": short}]
    run_extract(write_jsonl(tmp_path / "c.jsonl", rows), write_vocab(tmp_path), tmp_path / "run", nlp=nlp())
    ents = pd.read_parquet(tmp_path / "run" / "entities" / "entities.parquet").set_index(["pair_id", "entity"])
    assert list(ents.loc[("a", "bench"), "weak_sources"]) == ["s"]
    assert ents.loc[("a", "person"), "accepted"] and ents.loc[("a", "road"), "accepted"]
    # a late mention is weaker evidence than an early one in the same caption
    assert ents.loc[("a", "bench"), "confidence"] < ents.loc[("a", "road"), "confidence"]
    # a caption of five sentences is not long: its fifth sentence is an ordinary mention
    assert list(ents.loc[("b", "bench"), "weak_sources"]) == [] and ents.loc[("b", "bench"), "accepted"]


def test_cli_extract(setup, tmp_path, capsys):
    from entitylabel.cli import main

    captions, vocab = setup
    main(["extract", str(captions), "--vocab", str(vocab), "--out", str(tmp_path / "cli"), "--min-support", "1"])
    assert (tmp_path / "cli" / "entities" / "labels.parquet").is_file()
    assert "extract" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["extract", str(captions), "--vocab", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "x")])
    assert e.value.code == 2
    assert not (tmp_path / "x" / "entities").exists()
    assert pq.read_schema(tmp_path / "cli" / "entities" / "entities.parquet").names[:4] == [
        "pair_id",
        "entity",
        "support",
        "confidence",
    ]


def test_two_worker_processes_give_the_same_bytes(setup, tmp_path):
    captions, vocab = setup
    run_extract(captions, vocab, tmp_path / "one", nlp=nlp(), batch_size=2)
    run_extract(captions, vocab, tmp_path / "two", nlp=nlp(), batch_size=2, n_process=2)
    for f in FILES:
        assert (tmp_path / "one" / "entities" / f).read_bytes() == (tmp_path / "two" / "entities" / f).read_bytes(), f


def test_modifiers_are_weak_votes_judged_by_confidence(tmp_path, entitylabel_cache):
    rows = [
        {"pair_id": "a", "source": "s1", "caption": "The car headlights glow in the dark."},
        {"pair_id": "b", "source": "s1", "caption": "The car glows in the dark."},
        {"pair_id": "c", "source": "s1", "caption": "A car on the road."},
        {"pair_id": "c", "source": "s2", "caption": "The car headlights are on."},
        {"pair_id": "d", "source": "s1", "caption": "A car on the road."},
        {"pair_id": "d", "source": "s2", "caption": "A quiet road."},
    ]
    captions, vocab = write_jsonl(tmp_path / "c.jsonl", rows), write_vocab(tmp_path)
    res = run_extract(captions, vocab, tmp_path / "run", nlp=nlp())
    ents = pd.read_parquet(tmp_path / "run" / "entities" / "entities.parquet").set_index(["pair_id", "entity"])
    # "car" in "car headlights" alone: a weak vote, worth less than naming the car in the same place
    assert list(ents.loc[("a", "car"), "weak_sources"]) == ["s1"]
    assert ents.loc[("a", "car"), "confidence"] < ents.loc[("b", "car"), "confidence"]
    assert ents.loc[("a", "car"), "accepted"] == (ents.loc[("a", "car"), "confidence"] >= MIN_CONFIDENCE)
    assert ents.loc[("a", "headlight"), "accepted"]
    # a head mention in one source plus a modifier in another beats the head mention alone
    assert ents.loc[("c", "car"), "confidence"] > ents.loc[("d", "car"), "confidence"]
    assert list(ents.loc[("c", "car"), "weak_sources"]) == ["s2"] and res.method == "calibrated"
    # below the threshold, a modifier-only candidate is reported as a modifier (c's helped a label: not reported)
    t = (ents.loc[("a", "car"), "confidence"] + ents.loc[("d", "car"), "confidence"]) / 2
    run_extract(captions, vocab, tmp_path / "high", nlp=nlp(), min_confidence=float(t))
    high = pd.read_parquet(tmp_path / "high" / "entities" / "entities.parquet").set_index(["pair_id", "entity"])
    assert not high.loc[("a", "car"), "accepted"] and high.loc[("c", "car"), "accepted"]
    rej = pd.read_parquet(tmp_path / "high" / "entities" / "rejected.parquet")
    mods = rej[rej.reason == "modifier"]
    assert dict(zip(mods.phrase, mods["count"], strict=True)) == {"car": 1}
    assert mods.example_pair_id.tolist() == ["a"]
    # turned off: modifiers are only rejections, as in single-caption extraction
    run_extract(captions, vocab, tmp_path / "off", nlp=nlp(), weak_modifiers=False)
    off = pd.read_parquet(tmp_path / "off" / "entities" / "entities.parquet").set_index(["pair_id", "entity"])
    assert ("a", "car") not in off.index
    assert off.loc[("c", "car"), "confidence"] < ents.loc[("c", "car"), "confidence"]  # the modifier is ignored
    rej = pd.read_parquet(tmp_path / "off" / "entities" / "rejected.parquet")
    assert rej[rej.reason == "modifier"]["count"].sum() == 2


def test_rejection_reasons_are_defined_in_one_place():
    from entitylabel.extract.filters import RejectLog
    from entitylabel.report.highlight import status_kind

    assert status_kind("accepted") == "ok" and status_kind("negated") == "neg" and status_kind("hedged") == "hedge"
    assert {status_kind(r) for r in REASONS} <= {"rej", "neg", "hedge"}
    assert status_kind("not_in_vocabulary") == "rej" and status_kind("below_min_pairs") == "rej"
    with pytest.raises(ValueError, match="reasons.py"):
        RejectLog().add("x", "x", "made_up_reason", "p", None)


def test_card_states_how_confidences_were_obtained(setup, tmp_path):
    from entitylabel.export.card import _entities_section

    captions, vocab = setup
    run_extract(captions, vocab, tmp_path / "run", nlp=nlp())
    report = json.loads((tmp_path / "run" / "entities" / "extract.json").read_text())
    ents = pd.read_parquet(tmp_path / "run" / "entities" / "entities.parquet")
    expected = ents[ents.accepted].confidence.mean()
    assert report["denoise"]["estimated_precision"] == round(expected, 4)
    info = {"entities": {"extract": report, "label_space": {}}, "label_space": ["car"], "config": "c"}
    text = "\n".join(_entities_section(info))
    assert "calibrated estimate of P(entity in pair)" in text
    assert f"confidence >= {MIN_CONFIDENCE:.4g}. Expected precision of the released labels: {expected:.3f}" in text
    recall = ents[ents.accepted].confidence.sum() / ents.confidence.sum()
    assert f"expected recall: {recall:.3f}, relative to the objects the captions name" in text


def test_a_killed_runs_temporary_folder_is_removed_by_the_next_run(setup, tmp_path):
    import subprocess
    import sys

    from entitylabel.io import _HOST

    captions, vocab = setup
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / "run" / f".entities.pid{int(dead.stdout)}-{_HOST}.x1y2.tmp"
    (stale / "half").mkdir(parents=True)  # what a SIGKILL during the write leaves behind
    run_extract(captions, vocab, tmp_path / "run", nlp=nlp())
    assert not stale.exists() and (tmp_path / "run" / "entities" / "labels.parquet").is_file()
    # nothing else is left but the (empty) folder lock beside entities/, kept on purpose (pipeline/lock.py)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".entitylabel-entities.lock", "entities"]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"target_precision": 1.5}, "target_precision: must be between 0.0 and 1.0"),
        ({"min_confidence": float("nan")}, "min_confidence: must be a finite number"),
        ({"n_process": 0}, "n_process: must be at least 1"),
    ],
)
def test_direct_callers_get_the_settings_limits(tmp_path, kw: dict, message: str) -> None:
    """run_extract checks its numbers with ExtractSettings' limits (the CLI's and the YAML's), before reading."""
    with pytest.raises(EntityLabelError, match=message):
        run_extract(tmp_path / "missing.jsonl", "coco80", tmp_path / "run", **kw)
    assert not (tmp_path / "run").exists()
