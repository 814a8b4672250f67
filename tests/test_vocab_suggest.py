"""`vocab suggest` (WordNet hypernyms -> vocabulary entity) and the `vocab check`/`suggest` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from entitylabel.cli import main
from entitylabel.extract.suggest import suggest, suggestions_yaml, vocab_for_rejected
from entitylabel.extract.vocab import load_vocab
from entitylabel.io import write_parquet

VOCAB = """\
name: small
version: "2"
meta: [image, scene]
entities:
  car:
    synonyms: [car, cars]
    synset: car.n.01
  boat:
    synonyms: [boat, vessel]
    synset: boat.n.01
  bird:
  tree:
"""


def rejected_rows() -> pd.DataFrame:
    rows = [  # phrase, lemma, reason, count, pair, caption
        ("sedans", "sedan", "not_in_vocabulary", 5, "p-2", "two sedans parked by the road"),
        ("a sedan", "sedan", "not_in_vocabulary", 7, "p-1", "a sedan at night"),
        ("sparrow", "sparrow", "not_in_vocabulary", 3, "p-3", "a sparrow on a wire"),
        ("oak", "oak", "not_in_vocabulary", 2, "p-4", "an old oak"),
        ("bottle", "bottle", "not_in_vocabulary", 2, "p-5", "a bottle on the [ground]"),
        ("xyzzy", "xyzzy", "not_in_vocabulary", 9, "p-6", "xyzzy xyzzy"),
        ("42", "42", "not_in_vocabulary", 50, "p-7", "42"),
        ("car", "car", "negated", 99, "p-8", "no car"),
        ("image", "image", "not_in_vocabulary", 30, "p-9", "the image shows"),  # meta now: left out
        ("cars", "car", "not_in_vocabulary", 30, "p-9", "cars"),  # known now: left out
    ]
    return pd.DataFrame(rows, columns=["phrase", "lemma", "reason", "count", "example_pair_id", "example_caption"])


@pytest.fixture
def vocab_file(tmp_path: Path) -> Path:
    p = tmp_path / "small.yaml"
    p.write_text(VOCAB, encoding="utf-8")
    return p


@pytest.fixture
def rejected_file(tmp_path: Path) -> Path:
    p = tmp_path / "run" / "rejected.parquet"
    write_parquet(rejected_rows(), p)
    return p


def test_suggest_proposes_car_for_sedan(entitylabel_cache: Path, vocab_file: Path, rejected_file: Path) -> None:
    table = suggest(rejected_file, load_vocab(vocab_file), top=10)
    assert list(table.columns[:5]) == ["lemma", "count", "proposed_entity", "via", "example"]
    assert list(table["lemma"]) == ["sedan", "xyzzy", "sparrow", "bottle", "oak"]  # by count, then lemma
    by = table.set_index("lemma")
    assert by.loc["sedan", "count"] == 12
    assert by.loc["sedan", "proposed_entity"] == "car"
    assert by.loc["sedan", "via"] == "sedan.n.01 > car.n.01"
    assert by.loc["sedan", "example"] == "a sedan at night"  # from the most frequent row
    assert by.loc["sedan", "example_pair_id"] == "p-1"
    assert by.loc["sparrow", "proposed_entity"] == "bird"  # name match: bird has no synset
    assert by.loc["sparrow", "via"].endswith("> bird.n.01")
    assert by.loc["oak", "proposed_entity"] == "tree"
    assert by.loc["bottle", "proposed_entity"] is None  # "vessel" names a boat, not vessel.n.03
    assert by.loc["xyzzy", "proposed_entity"] is None and by.loc["xyzzy", "synset"] == ""


def test_suggest_top_and_empty(entitylabel_cache: Path, vocab_file: Path) -> None:
    voc = load_vocab(vocab_file)
    assert len(suggest(rejected_rows(), voc, top=2)) == 2
    none = suggest(rejected_rows()[rejected_rows()["reason"] == "negated"], voc)
    assert none.empty and "proposed_entity" in none.columns


def test_suggestions_yaml_is_valid_yaml(entitylabel_cache: Path, vocab_file: Path) -> None:
    voc = load_vocab(vocab_file)
    text = suggestions_yaml(suggest(rejected_rows(), voc), voc, "rejected.parquet")
    data = yaml.safe_load(text)
    assert data["add_synonyms"] == {"car": ["sedan"], "bird": ["sparrow"], "tree": ["oak"]}
    assert data["new_entities"]["bottle"] == {"synonyms": ["bottle"], "synset": "bottle.n.01"}
    assert data["new_entities"]["xyzzy"] == {"synonyms": ["xyzzy"]}
    # the new-entity block pastes into a vocabulary as is
    merged = VOCAB + "\n".join("  " + line for line in yaml.safe_dump(data["new_entities"]).splitlines()) + "\n"
    path = vocab_file.with_name("merged.yaml")
    path.write_text(merged, encoding="utf-8")
    assert "bottle" in load_vocab(path).entities


def test_read_rejected_errors(tmp_path: Path, vocab_file: Path) -> None:
    from entitylabel.errors import EntityLabelError

    with pytest.raises(EntityLabelError, match="rejected file not found"):
        suggest(tmp_path / "nope.parquet", load_vocab(vocab_file))
    bad = tmp_path / "bad.parquet"
    write_parquet(pd.DataFrame({"phrase": ["x"]}), bad)
    with pytest.raises(EntityLabelError, match="missing column"):
        suggest(bad, load_vocab(vocab_file))


def test_vocab_for_rejected_reads_label_space(tmp_path: Path) -> None:
    (tmp_path / "label_space.json").write_text(json.dumps({"vocab_name": "coco80"}))
    assert vocab_for_rejected(tmp_path / "rejected.parquet") == "coco80"
    (tmp_path / "label_space.json").write_text(json.dumps({"vocab_name": "custom"}))
    assert vocab_for_rejected(tmp_path / "rejected.parquet") == "ivif"


# --- CLI ------------------------------------------------------------------------------------------


def test_cli_check_ok(capsys: pytest.CaptureFixture[str], vocab_file: Path, entitylabel_cache: Path) -> None:
    main(["vocab", "check", str(vocab_file)])
    out = capsys.readouterr().out
    assert "small" in out and "entities" in out and "4" in out and "meta nouns" in out


def test_cli_check_broken(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    p = tmp_path / "broken.yaml"
    p.write_text('version: "1"\nentities:\n  car:\n    synonyms: [van]\n  van:\n', encoding="utf-8")
    with pytest.raises(SystemExit) as e:
        main(["vocab", "check", str(p)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "broken.yaml:5" in err and "'van'" in err and "'car'" in err
    assert len(err.splitlines()) == 1 or "\n" not in err.replace(" ", "")


def test_cli_check_missing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as e:
        main(["vocab", "check", str(tmp_path / "none.yaml")])
    assert e.value.code == 2 and "vocabulary file not found" in capsys.readouterr().err


def test_cli_suggest_writes_yaml(
    capsys: pytest.CaptureFixture[str],
    vocab_file: Path,
    rejected_file: Path,
    tmp_path: Path,
    entitylabel_cache: Path,
) -> None:
    out_yaml = tmp_path / "suggestions.yaml"
    main(["vocab", "suggest", str(rejected_file), "--vocab", str(vocab_file), "--top", "3", "--out", str(out_yaml)])
    out = capsys.readouterr().out
    assert "sedan" in out and "car" in out and "oak" not in out  # --top 3
    assert yaml.safe_load(out_yaml.read_text())["add_synonyms"]["car"] == ["sedan"]
