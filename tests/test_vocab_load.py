"""Vocabulary loading: the format, every validation error, normalisation and lookup."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from entitylabel.errors import EntityLabelError
from entitylabel.extract.vocab import Entity, Vocabulary, form_key, load_vocab, normalise_form

GOOD = """\
name: tiny
version: "1.0"
description: a test vocabulary
credits: nobody
meta: [image, Infrared View, black-and-white]
entities:
  person:
    synonyms: [people, Pedestrian, men, men]
    category: human
    synset: person.n.01
    description: humans
  street lamp:
    synonyms: [lamp-post, "street   light", lamppost]
  car:
  no:
"""


def write(tmp_path: Path, text: str, name: str = "v.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(EntityLabelError) as e:
        load_vocab(write(tmp_path, text))
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# --- normalisation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("  Street   Lamp ", "street lamp"),
        ("Lamp - Post", "lamp-post"),
        ("lamp\u2013post", "lamp-post"),  # en dash
        ("TRAFFIC\tLIGHT\n", "traffic light"),
        ("\uff34\uff36", "tv"),  # full-width letters (NFKC)
        ("-car-", "car"),
    ],
)
def test_normalise_form(raw: str, norm: str) -> None:
    assert normalise_form(raw) == norm


def test_form_key_reads_hyphens_as_spaces() -> None:
    assert form_key("Lamp-Post") == form_key("lamp post") == "lamp post"
    assert form_key("lamppost") == "lamppost"  # closed compounds are a different form


# --- a good file ----------------------------------------------------------------------------------


def test_load_good_file(tmp_path: Path) -> None:
    v = load_vocab(write(tmp_path, GOOD))
    assert (v.name, v.version, v.description, v.credits) == ("tiny", "1.0", "a test vocabulary", "nobody")
    assert list(v.entities) == ["person", "street lamp", "car", "no"]  # file order
    person = v.entities["person"]
    assert person == Entity("person", ("men", "pedestrian", "people", "person"), "human", "person.n.01", "humans")
    assert v.entities["car"].synonyms == ("car",)  # a null spec: the name is its only form
    assert v.entities["no"].synonyms == ("no",)  # YAML 1.1 would read `no` as False
    assert v.entities["street lamp"].synonyms == ("lamp-post", "lamppost", "street lamp", "street light")
    assert len(v.sha256) == 64 and v.path == tmp_path / "v.yaml"
    assert v.lines["street lamp"] == 12


def test_lookup_any_case_spacing_and_hyphenation(tmp_path: Path) -> None:
    v = load_vocab(write(tmp_path, GOOD))
    for form in ("lamp-post", "Lamp Post", "lamp - post", "LAMP\u2011POST", "street-light", "Street  Light"):
        assert v.lookup(form) == "street lamp", form
    assert v.lookup("Pedestrian") == "person"
    assert v.lookup("lamp") is None
    assert v.lookup("image") is None  # meta is not an entity


def test_forms_store_both_spellings_of_multiword_forms(tmp_path: Path) -> None:
    v = load_vocab(write(tmp_path, GOOD))
    assert v.forms["lamp post"] == v.forms["lamp-post"] == "street lamp"
    assert v.forms["street lamp"] == v.forms["street-lamp"] == "street lamp"
    assert v.multiword_forms == sorted(
        ["lamp post", "lamp-post", "street lamp", "street-lamp", "street light", "street-light"]
    )
    assert "lamppost" not in v.multiword_forms


def test_meta(tmp_path: Path) -> None:
    v = load_vocab(write(tmp_path, GOOD))
    assert v.is_meta("Image") and v.is_meta("infrared-view") and v.is_meta("black and white")
    assert not v.is_meta("person")
    assert {"infrared view", "infrared-view", "black and white", "black-and-white", "image"} == set(v.meta)
    assert v.multiword_meta == ["black and white", "black-and-white", "infrared view", "infrared-view"]


def test_vocabulary_built_in_code_derives_forms() -> None:
    v = Vocabulary(
        name="x",
        version="1",
        meta=frozenset({"scene"}),
        sha256="0" * 64,
        path=None,
        entities={"traffic light": Entity("traffic light", ("stoplight", "traffic light"), None, None)},
    )
    assert v.lookup("traffic-light") == "traffic light" and v.lookup("stoplight") == "traffic light"
    assert v.is_meta("scene") and hash(v) == hash(v)


def test_version_keeps_its_text_and_name_defaults_to_stem(tmp_path: Path) -> None:
    v = load_vocab(write(tmp_path, "version: 1.10\nentities: {car: }\n", name="mine.yaml"))
    assert v.version == "1.10" and v.name == "mine"


def test_duplicates_within_an_entity_are_tolerated(tmp_path: Path) -> None:
    v = load_vocab(write(tmp_path, "version: '1'\nentities:\n  car:\n    synonyms: [car, Car, cars, cars]\n"))
    assert v.entities["car"].synonyms == ("car", "cars")


# --- every validation error -----------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EntityLabelError, match="vocabulary file not found"):
        load_vocab(tmp_path / "nope.yaml")


def test_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(EntityLabelError, match="is a folder"):
        load_vocab(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    assert "empty vocabulary file" in error_of(tmp_path, "# only a comment\n")


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    msg = error_of(tmp_path, 'version: "1"\nentities:\n  car:\n    synonyms: [car, cars\n  bus:\n')
    assert "YAML syntax error" in msg and "v.yaml:5:" in msg


def test_yaml_tab_indent_error(tmp_path: Path) -> None:
    msg = error_of(tmp_path, 'version: "1"\nentities:\n\tcar:\n')
    assert "YAML syntax error" in msg and "v.yaml:3:" in msg


def test_duplicate_claim_names_both_entities_and_lines(tmp_path: Path) -> None:
    msg = error_of(
        tmp_path,
        """\
        version: "1"
        entities:
          car:
            synonyms: [car, van]
          van:
    """,
    )
    assert "v.yaml:5:" in msg and "entity 'van'" in msg and "entity 'car' (line 4)" in msg


def test_duplicate_claim_through_hyphenation(tmp_path: Path) -> None:
    msg = error_of(
        tmp_path,
        """\
        version: "1"
        entities:
          street lamp:
            synonyms: [lamp-post]
          pole:
            synonyms: [lamp post]
    """,
    )
    assert "form 'lamp post' is also claimed by entity 'street lamp' (line 4)" in msg and "v.yaml:6:" in msg


def test_duplicate_entity_key(tmp_path: Path) -> None:
    msg = error_of(tmp_path, 'version: "1"\nentities:\n  car:\n  bus:\n  car:\n')
    assert "duplicate key 'car' (first on line 3)" in msg and "v.yaml:5:" in msg


def test_entity_names_equal_after_normalisation(tmp_path: Path) -> None:
    msg = error_of(tmp_path, 'version: "1"\nentities:\n  Car:\n  " car ":\n')
    assert "also claimed by entity 'car'" in msg


def test_form_also_in_meta(tmp_path: Path) -> None:
    msg = error_of(
        tmp_path,
        """\
        version: "1"
        meta: [image, scene]
        entities:
          picture:
            synonyms: [photo, Scene]
    """,
    )
    assert "entity 'picture': form 'scene' is also in meta (line 2)" in msg and "v.yaml:5:" in msg


def test_entity_name_in_meta(tmp_path: Path) -> None:
    assert "form 'image' is also in meta" in error_of(tmp_path, 'version: "1"\nmeta: [image]\nentities:\n  image:\n')


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("entities:\n  car:\n    synonyms: []\n", "entity 'car': synonyms is empty"),
        ("entities:\n  car:\n    synonyms:\n", "entity 'car': synonyms is empty"),
        ("entities:\n  car:\n    synonyms: [car, '  ']\n", "entity 'car': empty synonym"),
        ("entities:\n  '':\n    synonyms: [car]\n", "has an empty name"),
        ("entities:\n", "entities: no entities"),
        ("entities: {}\n", "entities: no entities"),
    ],
)
def test_empty_entity(tmp_path: Path, body: str, expected: str) -> None:
    assert expected in error_of(tmp_path, 'version: "1"\n' + body)


def test_unknown_top_level_key_suggests_the_right_one(tmp_path: Path) -> None:
    msg = error_of(tmp_path, 'version: "1"\nentitys:\n  car:\n')
    assert "the top level: unknown key 'entitys'" in msg and "did you mean 'entities'?" in msg and ":2:" in msg


def test_unknown_entity_key(tmp_path: Path) -> None:
    msg = error_of(tmp_path, 'version: "1"\nentities:\n  car:\n    synonym: [auto]\n')
    assert "entity 'car': unknown key 'synonym'" in msg and "did you mean 'synonyms'?" in msg and "v.yaml:4:" in msg


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("entities:\n  car:\n    synonyms: car\n", "entity 'car': synonyms must be a list of strings, got text"),
        ("entities:\n  car:\n    synonyms: [1, 2]\n", "entity 'car': synonyms entries must be text, got a number"),
        ("entities:\n  car:\n    synonyms: [[auto]]\n", "synonyms entries must be text, got a list"),
        ("entities:\n  car:\n    synonyms: {auto: 1}\n", "must be a list of strings, got a mapping"),
        ("entities:\n  car:\n    category: [a, b]\n", "entity 'car': category must be text, got a list"),
        ("entities:\n  car: [auto]\n", "entity 'car' must be a mapping, got a list"),
        ("entities: [car, bus]\n", "entities must be a mapping, got a list"),
        ("meta: image\nentities: {car: }\n", "meta must be a list of strings"),
        ("entities:\n  car:\n    synset: car\n", "synset 'car' is not a WordNet id"),
        ("entities:\n  car:\n    synonyms: [!!python/name:os.system ls]\n", "must be text, got a value tagged"),
    ],
)
def test_wrong_types(tmp_path: Path, body: str, expected: str) -> None:
    assert expected in error_of(tmp_path, 'version: "1"\n' + body)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert "the top level must be a mapping, got a list" in error_of(tmp_path, "- car\n- bus\n")


def test_version_is_required(tmp_path: Path) -> None:
    assert "missing required key 'version'" in error_of(tmp_path, "entities: {car: }\n")


def test_entities_is_required(tmp_path: Path) -> None:
    assert "missing required key 'entities'" in error_of(tmp_path, "version: '1'\n")


def test_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "v.yaml"
    p.write_bytes(b"version: '1'\nentities: {caf\xe9: }\n")
    with pytest.raises(EntityLabelError, match="not UTF-8"):
        load_vocab(p)
