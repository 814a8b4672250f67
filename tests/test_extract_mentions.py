"""Hand-made sentences for every negation, hedge, compound, multi-word and meta case of the mention finder."""

from __future__ import annotations

import pytest
from extract_support import nlp, write_vocab

from entitylabel.extract.filters import apply_filters, default_filters
from entitylabel.extract.mentions import MentionFinder
from entitylabel.extract.vocab import load_vocab


@pytest.fixture(scope="module")
def finder(tmp_path_factory, entitylabel_cache):
    vocab = load_vocab(write_vocab(tmp_path_factory.mktemp("vocab")))
    return MentionFinder(nlp(), vocab)


def verdicts(finder, text: str, keep_hedged: bool = False) -> dict[str, set[str]]:
    """entity (or phrase when not in the vocabulary) -> set of outcomes ("kept" or the drop reason)."""
    filters = default_filters(keep_hedged)
    out: dict[str, set[str]] = {}
    for c in finder.candidates(nlp()(text)):
        out.setdefault(c.entity or c.lemma, set()).add(apply_filters(c, filters) or "kept")
    return out


NEGATED = [
    ("There are no cars on the road.", "car"),
    ("No pedestrians are visible.", "person"),
    ("There are no people or cars in the image.", "car"),
    ("An empty street without any cars.", "car"),
    ("A road without trees or buildings.", "building"),
    ("The man is not wearing a hat.", "hat"),
    ("There isn't any car in the picture.", "car"),
    ("The dog is not visible.", "dog"),
    ("A car cannot be seen.", "car"),
    ("Not a single car is on the road.", "car"),
    ("There is an absence of pedestrians.", "person"),
    ("The street is free of cars.", "car"),
    ("There is a lack of trees here.", "tree"),
    ("The road lacks street lamps.", "street lamp"),
    ("Neither a cat nor a dog is present.", "cat"),
    ("Neither a cat nor a dog is present.", "dog"),
    ("The road is empty, with no one and no bicycles around.", "bicycle"),
    ("None of the buildings are lit.", "building"),
]


@pytest.mark.parametrize(("text", "entity"), NEGATED)
def test_negated_mentions_never_become_labels(finder, text, entity):
    got = verdicts(finder, text)
    assert got.get(entity) == {"negated"}, got


@pytest.mark.parametrize(
    ("text", "kept", "negated"),
    [
        ("There are no people on the road.", "road", "person"),  # a PP after the negated noun is not negated
        ("The man is not wearing a hat.", "person", "hat"),  # the subject of a negated action is present
        ("A dog sits on a bench but there are no cats.", "dog", "cat"),
    ],
)
def test_negation_scope_is_narrow(finder, text, kept, negated):
    got = verdicts(finder, text)
    assert got[kept] == {"kept"} and got[negated] == {"negated"}, got


HEDGED = [
    ("What appears to be a dog lies on the road.", "dog"),
    ("It seems to be a cat.", "cat"),
    ("In the corner there is something that looks like a bicycle.", "bicycle"),
    ("There might be a car behind the tree.", "car"),
    ("It could be a dog.", "dog"),
    ("A figure, possibly a pedestrian, is crossing the road.", "person"),
    ("There is probably a bench.", "bench"),
    ("A potential pedestrian stands near the building.", "person"),
    ("The object resembles a hat.", "hat"),
]


@pytest.mark.parametrize(("text", "entity"), HEDGED)
def test_hedged_mentions_are_dropped_or_kept_by_flag(finder, text, entity):
    assert verdicts(finder, text).get(entity) == {"hedged"}
    assert verdicts(finder, text, keep_hedged=True).get(entity) == {"kept"}


def test_no_other_presupposes_one(finder):
    got = verdicts(finder, "A surfer rides a wave; there are no other people around, and no cars.")
    assert got["person"] == {"kept"} and got["car"] == {"negated"}


def test_subject_of_a_hedge_is_not_hedged(finder):
    got = verdicts(finder, "The man appears to be waiting for a bus.")
    assert got["person"] == {"kept"}


@pytest.mark.parametrize(
    ("text", "kept", "not_kept"),
    [
        ("The car headlights glow in the dark.", "headlight", "car"),
        ("A child eats a hot dog.", "hot dog", "dog"),
        ("Two hot dogs on a plate.", "hot dog", "dog"),
        ("A dog bed by the building.", "building", "dog"),
    ],
)
def test_modifiers_are_not_entities(finder, text, kept, not_kept):
    got = verdicts(finder, text)
    assert "kept" in got[kept], got
    assert "kept" not in got.get(not_kept, set()), got


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("Two traffic lights at the crossing.", "traffic light"),  # multi-word, plural (lemma matcher)
        ("A lamp-post by the road.", "street lamp"),  # hyphenated multi-word form
        ("A lamp post by the road.", "street lamp"),
        ("The lamp posts line the road.", "street lamp"),  # plural multi-word only via lemmas
        ("A stoplight and a streetlight.", "street lamp"),
        ("Men and women walk.", "person"),  # irregular plurals
        ("1 man on a bicycle riding a wave", "bicycle"),  # tagged ADJ, amod of a gerund: still a noun
        ("2 slices of bread on a plate with a hat and bench", "bench"),  # conj of a noun
    ],
)
def test_multiword_and_plural_forms(finder, text, entity):
    assert "kept" in verdicts(finder, text).get(entity, set())


def test_multiword_form_counts_once_not_as_its_head(finder):
    cands = [c for c in finder.candidates(nlp()("A traffic light above the road.")) if c.entity]
    assert [c.entity for c in cands].count("traffic light") == 1
    assert all(c.phrase != "light" for c in cands)


@pytest.mark.parametrize(
    ("text", "meta"),
    [
        ("The image shows a car.", "image"),
        ("In the infrared view, a man walks.", "infrared view"),
        ("A scene with trees in the background.", "background"),
    ],
)
def test_meta_nouns_never_become_labels(finder, text, meta):
    got = verdicts(finder, text)
    assert got[meta] == {"meta"}, got


def test_out_of_vocabulary_nouns_are_reported(finder):
    got = verdicts(finder, "A sedan parked next to a mailbox.")
    assert got["car"] == {"kept"}
    assert got["mailbox"] == {"not_in_vocabulary"}


def test_sentence_index_of_mentions(finder):
    cands = finder.candidates(nlp()("A car. A dog. A man walks. A tree stands. A bench is there."))
    by_entity = {c.entity: c.sentence for c in cands if c.entity}
    assert by_entity == {"car": 0, "dog": 1, "person": 2, "tree": 3, "bench": 4}


WORDNET_VOCAB = """name: wordnet-test
version: "1"
entities:
  remote: {synonyms: [remote, remotes]}
  skateboard: {synonyms: [skateboard, skateboards]}
  surfboard: {synonyms: [surfboard, surfboards]}
  orange: {synonyms: [orange, oranges]}
  car: {synonyms: [car, cars, sedan, sedans]}
  chair: {synonyms: [chair, chairs]}
  person: {synonyms: [person, people, man, men]}
"""


@pytest.fixture(scope="module")
def wordnet_finder(tmp_path_factory, entitylabel_cache):
    vocab = load_vocab(write_vocab(tmp_path_factory.mktemp("wnvocab"), WORDNET_VOCAB))
    return MentionFinder(nlp(), vocab)


@pytest.mark.parametrize(
    ("text", "entity", "outcome"),
    [
        ("5 different remote controls", "remote", "kept"),  # WordNet: remote control = remote; plural via lemma
        ("There is a remote control on the table.", "remote", "kept"),
        ("A man carrying a red and yellow surfboard walks towards the ocean.", "surfboard", "kept"),  # tagged ADJ
        ("A young man is performing a skateboard trick.", "skateboard", "modifier"),  # tagged ADJ, a modifier
        ("An old sedan chair in a museum.", "chair", "kept"),  # the head names its own entity
    ],
)
def test_wordnet_compounds_and_mistagged_adjectives(wordnet_finder, text, entity, outcome):
    assert outcome in verdicts(wordnet_finder, text).get(entity, set())


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("A man in an orange work suit.", "orange"),  # a real adjective stays one
        ("An old sedan chair in a museum.", "car"),  # at most a modifier
        ("Two remote controls on a couch.", "control"),  # the compound is one mention, not its head
    ],
)
def test_wordnet_rules_add_no_false_mentions(wordnet_finder, text, entity):
    assert "kept" not in verdicts(wordnet_finder, text).get(entity, set())


@pytest.mark.parametrize(
    ("text", "plain", "padded"),
    [
        ("A man walks a dog. There are also several cars on the road.", {"person", "dog"}, {"car", "road"}),
        ("A dog sits on a bench. A car is parked nearby, likely waiting.", {"dog", "bench"}, {"car"}),
        ("A man stands by a tree, a car and a bench.", {"person", "tree"}, {"car", "bench"}),  # list members
        ("In addition to the dog, a cat sleeps on the road.", set(), {"dog", "cat", "road"}),
        ("There is a cat on the road.", set(), {"cat", "road"}),  # a bare existential
    ],
)
def test_plainly_stated_mentions(finder, text, plain, padded):
    """Mentions in sentences that guess, add afterthoughts or only assert existence, and list members, are not
    `plain` (weaker evidence for the confidence model); the others are."""
    got = {c.entity: c.plain for c in finder.candidates(nlp()(text)) if c.entity}
    assert {e for e, p in got.items() if p} == plain and {e for e, p in got.items() if not p} == padded, got
