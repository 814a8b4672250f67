"""The on-disk tables of a run folder: where each one lives, what it holds, and the one way to read captions.

Data contract (the README's "Data contract" section says the same for users). A run folder holds:

- `pairs.parquet` (discover): one row per IR/VIS pair, `pairs.PAIRS_SCHEMA`; paths are relative to the dataset
  root stored in the file's metadata (`entitylabel.root`). `problems.parquet` beside it lists what discover
  left out (`pairs.PROBLEMS_SCHEMA`). Read with `load_pairs`.
- `captions/` (caption): caption shards `shard-NNNNN.parquet` (VLM) and `shard-external-<name>-NNNNN.parquet`
  (imported files), each in `CAPTION_SCHEMA`, each finished one with a `<shard>.done` marker written after it.
  A shard without its marker is unfinished. Beside them, never read as captions: `external-<name>.problems.parquet`
  (import rows that became no caption: `row, key, kind, message`), `external-<name>.json`, `caption.json`,
  `caption.log.jsonl`. A caption's `source` is `{modality}:{prompt_id}:{model}` (VLM) or
  `external:{name}:{modality}` (imported); failed generations are rows with `error` set and no caption.
- `entities/` (extract): `entities.parquet` (candidates), `labels.parquet` (pair_id, entities, n_sources),
  `label_space.json` (names in vocabulary order), `rejected.parquet`, optionally `mentions.parquet`,
  `extract.json`; the extract stage's docstring describes the columns. Read with `read_entities` (export) or
  `read_entity_frames` (the review page).

Captions are read only through `captions.py` (extract streams `iter_caption_batches`; export and the report
load `read_caption_table`), with one set of rules: a caption folder gives its finished shards only, or a
single Parquet / JSON Lines file; `pair_id` and `caption` (or `text`) are required, `source` defaults to the
file's stem; a caption that is not a string, and every repeat of a (pair, modality, source) after its first
row, is a problem row, never a caption.
"""

from __future__ import annotations

from ..pairs import PAIRS_SCHEMA, PROBLEMS_SCHEMA, PairManifest, load_pairs
from .captions import (
    CAPTION_SCHEMA,
    CaptionRow,
    caption_files,
    iter_caption_batches,
    iter_caption_rows,
    read_caption_table,
)
from .entities import EntityInputs, read_entities, read_entity_frames
from .layout import (
    CAPTIONS_DIR,
    ENTITIES_DIR,
    ENTITIES_FILE,
    EXTRACT_INFO_FILE,
    LABEL_SPACE_FILE,
    LABELS_FILE,
    MENTIONS_FILE,
    PAIRS_FILE,
    REJECTED_FILE,
    external_problem_files,
    finished_shard_files,
    shard_files,
)

__all__ = [
    "CAPTIONS_DIR",
    "CAPTION_SCHEMA",
    "ENTITIES_DIR",
    "ENTITIES_FILE",
    "EXTRACT_INFO_FILE",
    "LABELS_FILE",
    "LABEL_SPACE_FILE",
    "MENTIONS_FILE",
    "PAIRS_FILE",
    "PAIRS_SCHEMA",
    "PROBLEMS_SCHEMA",
    "REJECTED_FILE",
    "CaptionRow",
    "EntityInputs",
    "PairManifest",
    "caption_files",
    "external_problem_files",
    "finished_shard_files",
    "iter_caption_batches",
    "iter_caption_rows",
    "load_pairs",
    "read_caption_table",
    "read_entities",
    "read_entity_frames",
    "shard_files",
]
