"""Names of a run folder's tables and the caption folder's layout: shards, `.done` markers, problem lists."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from ..errors import EntityLabelError

PAIRS_FILE = "pairs.parquet"
CAPTIONS_DIR = "captions"
ENTITIES_DIR = "entities"
ENTITIES_FILE = "entities.parquet"
LABELS_FILE = "labels.parquet"
LABEL_SPACE_FILE = "label_space.json"
REJECTED_FILE = "rejected.parquet"
MENTIONS_FILE = "mentions.parquet"
EXTRACT_INFO_FILE = "extract.json"

SHARD_GLOB = "shard-*.parquet"  # VLM shards and imported ones (`shard-external-<name>-NNNNN.parquet`)
DONE_SUFFIX = ".done"
PROBLEMS_GLOB = "external-*.problems.parquet"

CAPTION_SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("source", pa.string()),
        ("modality", pa.string()),
        ("caption", pa.string()),
        ("model", pa.string()),
        ("model_revision", pa.string()),
        ("prompt_id", pa.string()),
        ("prompt_sha256", pa.string()),
        ("decoding", pa.string()),
        ("n_tokens", pa.int32()),
        ("truncated", pa.bool_()),
        ("error", pa.string()),
    ]
)


def shard_files(folder: Path) -> list[Path]:
    """Every caption shard of a folder, finished or not, sorted by name."""
    return sorted(folder.glob(SHARD_GLOB))


def done_marker(shard: Path) -> Path:
    return shard.with_suffix(DONE_SUFFIX)


def external_problem_files(folder: Path) -> list[Path]:
    """The problem lists of caption imports in a folder (rows that became no caption)."""
    return sorted(folder.glob(PROBLEMS_GLOB))


def finished_shard_files(folder: Path, *, skip_unfinished: bool = False) -> list[Path]:
    """The caption shards a later stage may read from a caption folder: `shard-*.parquet`, all finished.

    Other Parquet files live beside them (`external-<name>.problems.parquet`), so readers never glob
    `*.parquet`. When the folder has done markers, a shard without its marker means an unfinished run: refused,
    or left out with `skip_unfinished` (the review page shows what is finished). A folder without any marker
    (shards made by hand or copied without them) is read whole.
    """
    shards = shard_files(folder)
    if not shards or not any(folder.glob(f"shard-*{DONE_SUFFIX}")):
        return shards
    unfinished = [s for s in shards if not done_marker(s).exists()]
    if unfinished and not skip_unfinished:
        raise EntityLabelError(
            f"caption shard {unfinished[0].name} has no .done marker ({len(unfinished)} unfinished)",
            path=folder,
            hint="let `entitylabel caption` finish (a rerun resumes) first",
        )
    return [s for s in shards if s not in unfinished]
