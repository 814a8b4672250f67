"""Build `vocab/coco80.yaml` from the CHAIR synonym list (Rohrbach, Hendricks et al., EMNLP 2018).

The CHAIR list (`synonyms.txt`) has one line per COCO category: the canonical name first, then the surface
forms that map to it. We keep every form as published (typos such as "solider" or "televison" included:
CHAIR's gold objects were built with them), lowercase and strip it (" motor bike" has a stray space),
drop repeats ("bike" twice), and add the plural of each form, since the extract stage also matches the
lowercase text and CHAIR itself singularises before lookup. A form claimed by two categories goes to the
category it names exactly, else to the first line claiming it; the generator records every such move in
the file header (the published list has none). "street light" stays with traffic light as in CHAIR, so
scores match the CHAIR gold objects; `vocab/ivif.yaml` has its own "street lamp" entity instead.

Regenerate with `python -m entitylabel.extract.coco80 ../shared/data/captions/chair_synonyms/synonyms.txt
vocab/coco80.yaml`; tests/test_vocab_files.py checks the committed file matches.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from ..errors import EntityLabelError
from .vocab import form_key, normalise_form

CREDITS = (
    "Surface forms from the CHAIR synonym list (Rohrbach*, Hendricks* et al., 'Object Hallucination in Image "
    "Captioning', EMNLP 2018), https://github.com/LisaAnne/Hallucination data/synonyms.txt at commit "
    "6e4d33c4bedf6dfcd24c61bf527f40714717be47, BSD 2-Clause licence; plurals added by entitylabel."
)
DESCRIPTION = "The 80 MS-COCO object categories with CHAIR's surface forms, for the caption quality benchmark."

# COCO supercategories (instances_*.json "supercategory"), used as the entity category.
SUPERCATEGORY = {
    "person": ["person"],
    "vehicle": ["bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"],
    "outdoor": ["traffic light", "fire hydrant", "stop sign", "parking meter", "bench"],
    "animal": ["bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"],
    "accessory": ["backpack", "umbrella", "handbag", "tie", "suitcase"],
    "sports": [
        "frisbee",
        "skis",
        "snowboard",
        "sports ball",
        "kite",
        "baseball bat",
        "baseball glove",
        "skateboard",
        "surfboard",
        "tennis racket",
    ],
    "kitchen": ["bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl"],
    "food": ["banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake"],
    "furniture": ["chair", "couch", "potted plant", "bed", "dining table", "toilet"],
    "electronic": ["tv", "laptop", "mouse", "remote", "keyboard", "cell phone"],
    "appliance": ["microwave", "oven", "toaster", "sink", "refrigerator"],
    "indoor": ["book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush"],
}
_CATEGORY = {name: cat for cat, names in SUPERCATEGORY.items() for name in names}

# Nouns captions use about the picture itself; they never become labels. None is a CHAIR form.
META = [
    "image",
    "picture",
    "photo",
    "photograph",
    "pic",
    "snapshot",
    "shot",
    "scene",
    "view",
    "setting",
    "background",
    "foreground",
    "frame",
    "close-up",
    "closeup",
    "angle",
    "perspective",
    "composition",
    "side",
    "left",
    "right",
    "middle",
    "center",
    "centre",
    "corner",
    "top",
    "bottom",
    "front",
    "edge",
    "area",
    "part",
    "distance",
    "color",
    "colour",
    "detail",
    "atmosphere",
]

# Already plural or without a plural: keep as is.
_NO_PLURAL = {
    "people",
    "children",
    "oxen",
    "cattle",
    "sheep",
    "skis",
    "scissors",
    "luggage",
    "broccoli",
    "bison",
    "buffalo",
    "aircraft",
    "watercraft",
    "waterfowl",
    "fowl",
    "deer",
    "fish",
    "offspring",
    "equine",
    "feline",
    "canine",
    "peafowl",
    "quail",
    "grandchild",
}
_IRREGULAR = {
    "person": "people",
    "child": "children",
    "grandchild": "grandchildren",
    "ox": "oxen",
    "mouse": "mice",
    "goose": "geese",
    "knife": "knives",
    "knive": "knives",
    "pocketknife": "pocketknives",
    "calf": "calves",
    "thief": "thieves",
    "wife": "wives",
    "shelf": "shelves",
    "leaf": "leaves",
    "wolf": "wolves",
    "foot": "feet",
    "tooth": "teeth",
    "ski": "skis",
    "bus": "buses",
    "minibus": "minibuses",
}


def plural(form: str) -> str:
    """English plural of a (possibly multi-word) noun form: the last word is inflected."""
    head, _, last = form.rpartition(" ")
    if last in _NO_PLURAL:
        out = last
    elif last in _IRREGULAR:
        out = _IRREGULAR[last]
    elif last.endswith("man") and last not in {"german", "human", "shaman"}:
        out = last[:-3] + "men"
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        out = last + "es"
    elif len(last) > 1 and last.endswith("y") and last[-2] not in "aeiou":
        out = last[:-1] + "ies"
    else:
        out = last + "s"
    return f"{head} {out}" if head else out


def _read_chair(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EntityLabelError("CHAIR synonym list not found", path=path) from None
    rows = []
    for line in text.splitlines():
        forms = [normalise_form(t) for t in line.split(",")]
        forms = [f for f in forms if f]
        if forms:
            rows.append(forms)
    if len(rows) != 80:
        raise EntityLabelError(f"expected 80 category lines, found {len(rows)}", path=path)
    return rows


def coco80_from_chair(synonyms_txt: str | Path) -> dict[str, Any]:
    """The coco80 vocabulary as a YAML-ready dict (plus `_moved`: forms reassigned between categories)."""
    rows = _read_chair(Path(synonyms_txt))
    names = [r[0] for r in rows]
    owner: dict[str, str] = {}  # form key -> category
    moved: list[str] = []
    for row in rows:
        cat = row[0]
        for form in row:
            for f in (form, plural(form)):
                key = form_key(f)
                prev = owner.get(key)
                if prev is None:
                    owner[key] = cat
                elif prev != cat:
                    keep = cat if key == form_key(cat) else prev
                    moved.append(f"'{f}' claimed by {prev} and {cat}: kept with {keep}")
                    owner[key] = keep
    per_cat: dict[str, dict[str, str]] = {n: {} for n in names}  # category -> key -> form, CHAIR order
    for row in rows:
        for form in row:
            for f in (form, plural(form)):
                per_cat[owner[form_key(f)]].setdefault(form_key(f), f)
    entities = {n: {"category": _CATEGORY.get(n), "synonyms": list(per_cat[n].values())} for n in names}
    return {
        "name": "coco80",
        "version": "1.0",
        "description": DESCRIPTION,
        "credits": CREDITS,
        "meta": list(META),
        "entities": entities,
        "_moved": moved,
    }


HEADER = """\
# coco80: the 80 MS-COCO categories with the CHAIR synonym list's surface forms.
# GENERATED by `python -m entitylabel.extract.coco80 SYNONYMS_TXT vocab/coco80.yaml`; do not edit by hand
# (tests/test_vocab_files.py checks this file against the generator). Format: see vocab/ivif.yaml.
# Every CHAIR form is kept as published (typos such as "solider", "televison", "phon" included, because the
# CHAIR gold objects were made with them), lowercased and stripped; repeats are dropped and each form's plural
# is added. "street light"/"streetlight" map to traffic light exactly as in CHAIR.
# A form claimed by two categories would stay with the category it names exactly, else with the first line;
"""


def render_yaml(vocab: dict[str, Any]) -> str:
    """The committed file's text: header comments, then the vocabulary in a stable block layout."""
    body = {k: v for k, v in vocab.items() if not k.startswith("_")}
    moved = vocab.get("_moved") or []
    lines = [HEADER.rstrip("\n")]
    lines.append("# forms moved: " + ("; ".join(moved) if moved else "none in the published list."))
    text = yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=110, allow_unicode=True)
    return "\n".join(lines) + "\n" + text


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m entitylabel.extract.coco80 SYNONYMS_TXT OUT_YAML", file=sys.stderr)
        return 2
    from ..io import atomic_write_text

    atomic_write_text(args[1], render_yaml(coco80_from_chair(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
