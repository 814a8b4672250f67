"""Confidence: sources grouped by model, monotone in the votes (property-based), one modality enough."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from extract_support import vote_table
from hypothesis import given, settings
from hypothesis import strategies as st

from entitylabel.extract.confidence import CONTEXT, ConfidenceModel, estimate, load_model
from entitylabel.extract.sources import group_by_model, model_of
from entitylabel.extract.votes import Vote


def test_sources_group_by_model():
    assert model_of("vis:brief:llava-1.5") == "llava-1.5"
    assert model_of("ir:detail:llava-1.5") == "llava-1.5"  # both modalities: one model
    assert model_of("vis:p1:/models/my:model") == "/models/my:model"  # a local path with ":" stays whole
    assert model_of("external:flir:ir") == model_of("external:flir:vis") == model_of("external:flir") == "external:flir"
    assert model_of("Instruction1_llava") == "Instruction1_llava"  # free-form: its own model
    assert group_by_model(["vis:a:m", "ir:a:m", "vis:b:n"]) == {"m": ["ir:a:m", "vis:a:m"], "n": ["vis:b:n"]}


def test_shipped_coefficients_are_monotone_and_documented():
    m = load_model()
    assert all(w >= 0 for f, w in m.view_weights.items() if f not in CONTEXT)
    assert m.combine["scale"] >= 0 and m.combine["log"] >= 0
    assert "even image_id" in m.fit["half"] and m.fit["script"]


def test_calibration_map_is_applied_and_must_be_monotone():
    d = load_model().to_dict()
    flat = {**d, "calibration": {"x": [0.0, 1.0], "y": [0.3, 0.3]}}
    one = vote_table({"p": {"vis:a:m": (2, 20)}}, {("p", "dog"): {"vis:a:m": _vote()}})
    assert estimate([("p", "dog")], one, ConfidenceModel.from_dict(flat))[0] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="non-decreasing"):
        ConfidenceModel.from_dict({**d, "calibration": {"x": [0.0, 1.0], "y": [0.6, 0.2]}})


def _vote(
    strong=True, sentence=0, plural=False, n=1, core=True, char=0, rank=0.0, noun=True, plain=True, pos=0.0
) -> Vote:
    return Vote(strong, sentence, plural, n, core, first_char=char, rank=rank, noun=noun, plain=plain, pos=pos)


def test_an_entity_seen_in_one_modality_is_not_pulled_down_by_the_other():
    one = vote_table({"p": {"vis:a:m": (2, 20)}}, {("p", "dog"): {"vis:a:m": _vote()}})
    both = vote_table({"p": {"vis:a:m": (2, 20), "ir:a:m": (2, 20)}}, {("p", "dog"): {"vis:a:m": _vote()}})
    assert estimate([("p", "dog")], both)[0] == estimate([("p", "dog")], one)[0]


def test_one_models_captions_are_not_independent_witnesses():
    """Six captions of one model agreeing are not worth six models agreeing."""
    same = {f"{mod}:p{k}:m": (2, 20) for k in range(3) for mod in ("vis", "ir")}
    many = {f"vis:p:m{k}": (2, 20) for k in range(6)}
    c_same = estimate([("p", "dog")], vote_table({"p": same}, {("p", "dog"): dict.fromkeys(same, _vote())}))[0]
    c_many = estimate([("p", "dog")], vote_table({"p": many}, {("p", "dog"): dict.fromkeys(many, _vote())}))[0]
    assert c_many > c_same


def test_a_silent_prompt_costs_more_the_more_it_says():
    """Two prompts of one model, one names the dog: a second prompt that is silent lowers the confidence, a long
    one that names five other objects more than a terse one that names none; with the silence weights at 0 the
    second prompt changes nothing (a view is its best caption)."""
    extra = ["cat", "car", "tree", "bench", "hat"]

    def conf(size, others, m=None):
        caps = {"p": {"vis:a:m": (2, 20), "vis:b:m": size}}
        votes = {("p", "dog"): {"vis:a:m": _vote()}}
        votes |= {("p", e): {"vis:b:m": _vote()} for e in extra[:others]}
        return estimate([("p", "dog")], vote_table(caps, votes), m)[0]

    m = load_model()
    alone = estimate([("p", "dog")], vote_table({"p": {"vis:a:m": (2, 20)}}, {("p", "dog"): {"vis:a:m": _vote()}}))[0]
    terse, long = conf((1, 6), 0), conf((6, 150), 5)
    assert alone > terse > long
    free = ConfidenceModel.from_dict({**m.to_dict(), "view_silence": {"loglen": 0.0, "objects": 0.0}})
    assert conf((6, 150), 5, free) == pytest.approx(alone)
    clamped = ConfidenceModel.from_dict({**m.to_dict(), "view_silence": {"loglen": -5.0, "objects": -5.0}})
    assert clamped.view_silence == {"loglen": 0.0, "objects": 0.0}  # a negative weight would reward silence


CHANGES = ["add", "strong", "sentence", "plural", "more", "core", "pos", "rank", "noun", "plain"]
FEATURE_OF = {"strong": "strong", "sentence": "early", "plural": "plural", "more": "mentions", "core": "core",
              "pos": "front", "rank": "rank", "plain": "plain"}  # fmt: skip


@pytest.mark.parametrize("change", CHANGES[1:])
def test_each_stronger_mention_raises_confidence_by_its_weight(change):
    """One caption, one weak vote: each way of making it stronger raises the confidence, strictly where the
    shipped model gives that evidence a weight (a sign error in any feature fails here)."""
    caps = {"p": {"vis:a:m": (5, 40)}}
    weak = _vote(False, 3, False, 1, False, char=300, rank=0.5, noun=False, plain=False, pos=0.8)
    weak_named = dataclasses.replace(weak, noun=True)
    base = weak if change == "noun" else weak_named
    c0 = estimate([("p", "dog")], vote_table(caps, {("p", "dog"): {"vis:a:m": base}}))[0]
    c1 = estimate([("p", "dog")], vote_table(caps, {("p", "dog"): {"vis:a:m": _stronger(base, change)}}))[0]
    weight = load_model().view_weights.get(FEATURE_OF.get(change, ""), 1.0)
    assert c1 > c0 if weight > 0 else c1 == c0, (change, c0, c1)


@st.composite
def vote_patterns(draw):
    n_models = draw(st.integers(1, 4))
    sources = [
        f"{mod}:p{k}:m{m}"
        for m in range(n_models)
        for mod in draw(st.sets(st.sampled_from(["vis", "ir"]), min_size=1))
        for k in range(draw(st.integers(1, 3)))
    ]
    pairs = [f"p{i}" for i in range(draw(st.integers(1, 3)))]
    captions = {p: {s: (draw(st.integers(1, 8)), draw(st.integers(3, 120))) for s in sources} for p in pairs}
    votes: dict = {}
    for p in pairs:
        for e in ("dog", "cat"):
            voters = draw(st.sets(st.sampled_from(sources), max_size=len(sources)))
            for s in voters:
                n_sents = captions[p][s][0]
                votes.setdefault((p, e), {})[s] = _vote(
                    draw(st.booleans()),
                    draw(st.integers(0, n_sents - 1)),
                    draw(st.booleans()),
                    draw(st.integers(1, 3)),
                    draw(st.booleans()),
                    draw(st.integers(0, 400)),
                    draw(st.sampled_from([0.0, 0.5])),
                    draw(st.booleans()),
                    draw(st.booleans()),
                    draw(st.sampled_from([0.0, 0.3, 1.0])),
                )
    if not votes:
        votes[(pairs[0], "dog")] = {sources[0]: _vote()}
    key = draw(st.sampled_from(sorted(votes)))
    change = draw(st.sampled_from(CHANGES))
    # a new vote from any source of the pair, or a stronger one from a source that votes already
    source = draw(st.sampled_from(sorted(captions[key[0]] if change == "add" else votes[key])))
    return captions, votes, key, source, change


def _stronger(v: Vote | None, change: str) -> Vote:
    if v is None:
        return _vote(False, 0, core=False, char=400, rank=0.5, noun=False, plain=False, pos=1.0)  # weakest
    return {
        "add": v,
        "strong": dataclasses.replace(v, strong=True),
        "sentence": dataclasses.replace(v, first_sentence=0),
        "plural": dataclasses.replace(v, plural=True),
        "more": dataclasses.replace(v, n_mentions=v.n_mentions + 1),
        "core": dataclasses.replace(v, core=True),
        "pos": dataclasses.replace(v, first_char=0, pos=0.0),
        "rank": dataclasses.replace(v, rank=0.0),
        "noun": dataclasses.replace(v, noun=True),
        "plain": dataclasses.replace(v, plain=True),
    }[change]


@settings(max_examples=500, deadline=None)
@given(vote_patterns())
def test_more_or_stronger_votes_never_lower_confidence(pattern):
    captions, votes, key, source, change = pattern
    before = vote_table(captions, votes)
    items = before.items()
    after_votes = {k: dict(v) for k, v in votes.items()}
    after_votes[key][source] = _stronger(votes[key].get(source), change)
    after = vote_table(captions, after_votes)
    c0 = estimate(items, before)
    c1 = estimate(items, after)
    i = items.index(key)
    assert c1[i] >= c0[i] - 1e-12, (change, c0[i], c1[i])
    assert np.all((c1 >= 0) & (c1 <= 1))
