"""The shipped vocabularies: they load, ivif's synsets exist, coco80 is what the generator makes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from entitylabel.extract.coco80 import coco80_from_chair, plural, render_yaml
from entitylabel.extract.vocab import check_vocab, load_vocab

REPO = Path(__file__).resolve().parents[1]
IVIF = REPO / "vocab" / "ivif.yaml"
COCO80 = REPO / "vocab" / "coco80.yaml"


def test_ivif_loads_with_the_entities_that_matter() -> None:
    v = load_vocab(IVIF)
    assert v.name == "ivif" and 60 <= len(v.entities) <= 100
    expected = {
        "person": ["pedestrians", "men", "women", "children", "people", "individual", "crowd", "passers-by"],
        "car": ["sedan", "suv", "cars", "automobile"],
        "truck": ["lorry", "lorries", "pickup truck", "pick-up truck"],
        "bicycle": ["bike", "pushbike", "push-bike"],
        "motorcycle": ["motorbike", "motor bike", "moped"],
        "sidewalk": ["pavement"],
        "curb": ["kerb", "kerbs"],
        "wheel": ["tyre", "tire", "tyres"],
        "street lamp": ["lamp post", "lamp-post", "lamppost", "streetlight", "street light"],
        "license plate": ["licence plate", "number plate"],
        "vehicle light": ["headlights", "car lights", "tail-lights"],
        "bird": ["geese"],
        "animal": ["mice"],
    }
    for entity, forms in expected.items():
        for form in forms:
            assert v.lookup(form) == entity, (form, entity)
    for meta in (
        "image",
        "infrared image",
        "thermal view",
        "heat signature",
        "background",
        "night",
        "scene",
        "black and white",
        "black-and-white",
        "left side",
    ):
        assert v.is_meta(meta), meta
    # ambiguous on purpose: neither an entity nor meta
    assert v.lookup("light") is None and not v.is_meta("light")
    assert all(e.category for e in v.entities.values())


def test_ivif_synsets_all_resolve(entitylabel_cache: Path) -> None:
    report = check_vocab(IVIF, resolve_synsets=True)  # raises on the first unknown synset
    assert report.n_with_synset >= report.n_entities - 2


def test_unknown_synset_is_an_error_naming_the_line(entitylabel_cache: Path, tmp_path: Path) -> None:
    from entitylabel.errors import EntityLabelError

    p = tmp_path / "v.yaml"
    p.write_text('version: "1"\nentities:\n  car:\n    synset: car.n.01\n  bus:\n    synset: buss.n.07\n')
    with pytest.raises(EntityLabelError, match=r"v.yaml:5: entity 'bus': synset 'buss.n.07' is not in WordNet"):
        check_vocab(p)
    assert check_vocab(p, resolve_synsets=False).n_entities == 2


def test_coco80_loads() -> None:
    v = load_vocab(COCO80)
    assert v.name == "coco80" and len(v.entities) == 80
    assert v.lookup("street light") == "traffic light"  # as in CHAIR, unlike ivif
    assert v.lookup("motor bike") == "motorcycle" and v.lookup("teddy bears") == "teddy bear"
    assert v.lookup("mice") == "mouse" and v.lookup("geese") == "bird" and v.lookup("men") == "person"
    assert v.is_meta("image") and v.is_meta("background")
    assert "CHAIR" in (v.credits or "")
    assert check_vocab(COCO80, resolve_synsets=False).categories["vehicle"] == 8


def test_shipped_vocabularies_load_by_name() -> None:
    assert load_vocab("ivif").path.resolve() == IVIF.resolve()
    assert load_vocab("coco80").path.resolve() == COCO80.resolve()


def test_coco80_matches_the_generator(shared_data: Path) -> None:
    src = shared_data / "captions" / "chair_synonyms" / "synonyms.txt"
    generated = coco80_from_chair(src)
    committed = yaml.safe_load(COCO80.read_text(encoding="utf-8"))
    assert committed == {k: v for k, v in generated.items() if not k.startswith("_")}
    assert COCO80.read_text(encoding="utf-8") == render_yaml(generated)
    # every CHAIR form is kept (lowercased and stripped)
    v = load_vocab(COCO80)
    for line in src.read_text(encoding="utf-8").splitlines():
        forms = [t.strip().lower() for t in line.split(",") if t.strip()]
        for form in forms:
            assert v.lookup(form) == forms[0], form


@pytest.mark.parametrize(
    ("word", "pl"),
    [
        ("car", "cars"),
        ("bus", "buses"),
        ("bench", "benches"),
        ("pony", "ponies"),
        ("turkey", "turkeys"),
        ("man", "men"),
        ("policeman", "policemen"),
        ("knife", "knives"),
        ("mouse", "mice"),
        ("sheep", "sheep"),
        ("people", "people"),
        ("teddy bear", "teddy bears"),
        ("wine glass", "wine glasses"),
        ("child", "children"),
    ],
)
def test_plural(word: str, pl: str) -> None:
    assert plural(word) == pl
