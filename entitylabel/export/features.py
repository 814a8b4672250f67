"""The columns of an exported config, as `datasets.Features`.

`entities` is `List(ClassLabel(names=label_space))`: `datasets` decodes the stored indices to names with
`features["entities"].feature.int2str`, and the hub viewer shows names. `List` is the `datasets` >= 4 spelling
(older releases used `Sequence`), so the export needs datasets >= 4 to load.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from datasets import ClassLabel, Features, Image, List, Value

# Column name -> what it holds; the card's column table is rendered from this.
COLUMNS: dict[str, str] = {
    "pair_id": "stable id of the IR/VIS pair (`{dataset}-{stem}` or `{dataset}-{split}-{stem}`)",
    "dataset": "source dataset name",
    "ir": "infrared image, original file bytes embedded (`Image()`)",
    "vis": "visible image, original file bytes embedded (`Image()`)",
    "caption_ir": "caption of the infrared image from the primary prompt (null when none)",
    "caption_vis": "caption of the visible image from the primary prompt (null when none)",
    "entities": "entity labels, `List(ClassLabel)` over the config's label space, in label-space order",
    "confidences": "confidence of each entity in `entities` (same order and length), float32",
    "width": "image width in pixels (IR and VIS are pixel-aligned)",
    "height": "image height in pixels",
}


def build_features(label_space: list[str], extra: dict[str, Any] | None = None) -> Features:
    """Features of one config; the label space fixes the ClassLabel names (and so the stored indices). `extra`:
    columns after the standard ones (`export --annotations`: per-modality entities and boxes)."""
    return Features(
        {
            "pair_id": Value("string"),
            "dataset": Value("string"),
            "ir": Image(),
            "vis": Image(),
            "caption_ir": Value("string"),
            "caption_vis": Value("string"),
            "entities": List(ClassLabel(names=list(label_space))),
            "confidences": List(Value("float32")),
            "width": Value("int32"),
            "height": Value("int32"),
            **(extra or {}),
        }
    )


def arrow_schema(features: Features) -> pa.Schema:
    """The Arrow schema with the `huggingface` metadata `datasets` reads back (so Image/ClassLabel decode)."""
    hf_meta = {"info": {"features": features.to_dict()}}
    return pa.schema(features.type).with_metadata({"huggingface": json.dumps(hf_meta, sort_keys=True)})


def yaml_features(features: Features) -> list:
    """The `dataset_info.features` list of the card's YAML header, in the hub's own format.

    Also how export.json stores the features: a list keeps the column order through sorted-key JSON.
    """
    return features._to_yaml_list()  # the same private helper `push_to_hub` uses for the card
