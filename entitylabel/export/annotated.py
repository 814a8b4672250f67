"""Entity labels from a dataset's own annotations, for `export --annotations`: the label columns and card facts.

`entities` is the union over modalities of the entities with a box; `entities_<modality>` (one per modality folder
the annotations have: ir, vis, fusion) the per-modality sets; `boxes` every kept box (modality, class name, entity,
x0 y0 x1 y1 in pixels). Pairs the annotations do not cover get empty lists and count as unlabelled; the label space
is the vocabulary entities the annotations cover (`Annotations.covered`), in vocabulary order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datasets import ClassLabel, List, Value

from ..annotations import Annotations
from ..tables.entities import EntityInputs

PROVENANCE = "annotation"
BOX_FIELDS = ("modality", "class_name", "entity", "x0", "y0", "x1", "y1")
COLUMNS: dict[str, str] = {
    "entities_ir": "entities with a box in the infrared annotations (same label space; only with annotations)",
    "entities_vis": "entities with a box in the visible annotations",
    "entities_fusion": "entities with a box in the annotations made on fused images",
    "boxes": "the dataset's own boxes: modality, class_name, entity, x0, y0, x1, y1 (pixels, float32)",
}


@dataclass
class AnnotatedLabels:
    """What an export takes from `Annotations`: labels, the extra columns per pair, and what the card says."""

    ann: Annotations
    inputs: EntityInputs
    modalities: list[str]  # modalities with their own column (not "any")

    def features(self) -> dict[str, Any]:
        names = list(self.inputs.label_space)
        box = {"modality": Value("string"), "class_name": Value("string"), "entity": Value("string"),
               **{k: Value("float32") for k in ("x0", "y0", "x1", "y1")}}  # fmt: skip
        return {**{f"entities_{m}": List(ClassLabel(names=names)) for m in self.modalities}, "boxes": List(box)}

    def values(self) -> dict[str, dict[str, Any]]:
        """pair_id -> the extra columns' values (label indices, box dicts) of every annotated pair; a pair or a
        modality the annotations do not cover has null there (unknown), an annotated one without objects []."""
        index = {n: i for i, n in enumerate(self.inputs.label_space)}
        out: dict[str, dict[str, Any]] = {pid: {"boxes": []} for pid in self.ann.pair_ids()}
        for m in self.modalities:
            for pid, ents in self.ann.labels(m).items():
                out[pid][f"entities_{m}"] = sorted(index[e] for e in ents)
        for pid, g in self.ann.boxes.groupby("pair_id", sort=True):
            out[pid]["boxes"] = g[list(BOX_FIELDS)].to_dict("records")
        return out

    def info(self) -> dict[str, Any]:
        """export.json's account of the annotations (the card is rendered from it)."""
        classes = self.ann.boxes.drop_duplicates(["class_name"])
        return {
            "format": self.ann.format,
            "modalities": self.ann.modalities,
            "pairs": len(self.ann.pair_ids()),
            "boxes": int(len(self.ann.boxes)),
            "boxes_per_modality": {
                str(k): int(v) for k, v in self.ann.boxes["modality"].value_counts().sort_index().items()
            },
            "classes": dict(sorted(zip(classes["class_name"], classes["entity"], strict=True))),
            "covered": list(self.ann.covered),
            "vocabulary": self.ann.vocab,
            "problems": {str(k): int(v) for k, v in self.ann.problems["kind"].value_counts().sort_index().items()},
        }


def annotated_labels(ann: Annotations) -> AnnotatedLabels:
    space = list(ann.covered)
    order = {n: i for i, n in enumerate(space)}
    labels = {pid: sorted(ents, key=order.__getitem__) for pid, ents in ann.labels().items()}
    inputs = EntityInputs(space, labels, None, {"vocabulary": ann.vocab, "provenance": PROVENANCE})
    return AnnotatedLabels(ann, inputs, [m for m in ann.modalities if m != "any"])
