"""Sharded, byte-reproducible Parquet with embedded image bytes, readable by `datasets` as Image/ClassLabel.

Written with pyarrow directly (not `Dataset.to_parquet`) so nothing version- or time-dependent enters the
files: rows sorted by pair_id, fixed row groups, the Features' Arrow schema plus the `huggingface` metadata
`datasets` reads back. Image columns are stored uncompressed and PLAIN-encoded (JPEG/PNG bytes do not
compress, and it keeps content-defined chunking effective for the hub's dedup), other columns zstd.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Features, Image

from ..errors import EntityLabelError
from ..io import safe_child, sha256_bytes
from .features import arrow_schema

DEFAULT_SHARD_BYTES = 500 * 10**6  # the hub's default max shard size ("500MB")
ROW_GROUP_ROWS = 100  # small row groups: the hub viewer and random access read one group per row
_ROW_OVERHEAD = 1024  # captions, labels and ids: a rough per-row allowance when sizing shards
# The content-defined chunking settings `datasets` uses for hub uploads (pyarrow >= 21).
_CDC = {"min_chunk_size": 256 * 1024, "max_chunk_size": 1024 * 1024, "norm_level": 0}


@dataclass
class Record:
    """One pair ready to write: where its images are, and its annotations."""

    pair_id: str
    dataset: str
    ir_path: str  # relative to the dataset root; stored as the Image `path`
    vis_path: str
    ir_file: Path
    vis_file: Path
    ir_sha256: str | None
    vis_sha256: str | None
    width: int
    height: int
    caption_ir: str | None = None
    caption_vis: str | None = None
    entities: list[int] = field(default_factory=list)
    confidences: list[float | None] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # values of columns beyond the standard ones
    size: int = 0  # bytes of both image files, for shard sizing


@dataclass
class SplitFiles:
    """What was written for one split."""

    split: str
    files: list[str]  # file names inside the config's data folder
    num_examples: int
    num_bytes: int  # Arrow in-memory size, what the hub reports as dataset_size


def check_images(records: list[Record]) -> None:
    """Every image file exists; else one error naming the first pair (nothing is written before this)."""
    missing = [
        (r.pair_id, kind, f) for r in records for kind, f in (("IR", r.ir_file), ("VIS", r.vis_file)) if not f.is_file()
    ]
    if missing:
        pair_id, kind, path = missing[0]
        more = f" (and {len(missing) - 1} more missing)" if len(missing) > 1 else ""
        raise EntityLabelError(
            f"pair {pair_id}: {kind} image not found{more}; nothing was written",
            path=path,
            hint="restore the images or rerun `entitylabel discover`",
        )
    for r in records:
        r.size = r.ir_file.stat().st_size + r.vis_file.stat().st_size


def plan_shards(sizes: list[int], shard_bytes: int) -> list[tuple[int, int]]:
    """[start, stop) row ranges whose estimated size stays within `shard_bytes` (at least one row each)."""
    ranges, start, total = [], 0, 0
    for i, size in enumerate(sizes):
        size += _ROW_OVERHEAD
        if i > start and total + size > shard_bytes:
            ranges.append((start, i))
            start, total = i, 0
        total += size
    if start < len(sizes):
        ranges.append((start, len(sizes)))
    return ranges


def _read_image(path: Path, expected: str | None, pair_id: str, kind: str) -> bytes:
    data = path.read_bytes()
    if expected and sha256_bytes(data) != expected:
        raise EntityLabelError(
            f"pair {pair_id}: {kind} image changed since discover (sha256 differs); nothing was written",
            path=path,
            hint="rerun `entitylabel discover` (and the later stages) on the current files",
        )
    return data


def _column_options(features: Features, schema: pa.Schema) -> dict[str, Any]:
    """Per-leaf compression / encoding: images raw and PLAIN, everything else zstd with dictionaries."""

    def leaves(path: str, typ: pa.DataType) -> list[str]:
        if pa.types.is_struct(typ):
            return [leaf for f in typ for leaf in leaves(f"{path}.{f.name}", f.type)]
        if pa.types.is_list(typ) or pa.types.is_large_list(typ):
            return leaves(f"{path}.list.element", typ.value_type)
        return [path]

    compression, dictionary, encoding = {}, [], {}
    for fld in schema:
        is_image = isinstance(features[fld.name], Image)
        for leaf in leaves(fld.name, fld.type):
            compression[leaf] = "none" if is_image else "zstd"
            if is_image:
                encoding[leaf] = "PLAIN"
            else:
                dictionary.append(leaf)
    return {"compression": compression, "use_dictionary": dictionary, "column_encoding": encoding}


def _open_writer(path: Path, schema: pa.Schema, options: dict[str, Any]) -> tuple[pq.ParquetWriter, bool]:
    common = dict(write_page_index=True, write_statistics=True, store_schema=True, **options)
    try:
        return pq.ParquetWriter(path, schema, use_content_defined_chunking=_CDC, **common), True
    except TypeError:  # pyarrow < 21: no content-defined chunking
        return pq.ParquetWriter(path, schema, **common), False


_STANDARD = {
    "ir",
    "vis",
    "pair_id",
    "dataset",
    "caption_ir",
    "caption_vis",
    "entities",
    "confidences",
    "width",
    "height",
}


def build_table(records: list[Record], schema: pa.Schema) -> pa.Table:
    """The Arrow table of some records, image bytes read and checked against the manifest's hashes."""
    cols: dict[str, list] = {name: [] for name in schema.names}
    for r in records:
        for kind, rel, file, sha in (
            ("ir", r.ir_path, r.ir_file, r.ir_sha256),
            ("vis", r.vis_path, r.vis_file, r.vis_sha256),
        ):
            cols[kind].append({"bytes": _read_image(file, sha, r.pair_id, kind.upper()), "path": rel})
        for name in ("pair_id", "dataset", "caption_ir", "caption_vis", "entities", "confidences", "width", "height"):
            cols[name].append(getattr(r, name))
        for name in cols.keys() - _STANDARD:
            cols[name].append(r.extra.get(name))
    return pa.Table.from_pydict(cols, schema=schema)


def write_split(
    records: list[Record],
    split: str,
    folder: Path,
    features: Features,
    *,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    progress: Any = None,
) -> SplitFiles:
    """Write one split as `<split>-0000i-of-0000N.parquet` files in `folder` (records sorted by pair_id)."""
    schema = arrow_schema(features)
    options = _column_options(features, schema)
    records = sorted(records, key=lambda r: r.pair_id)
    ranges = plan_shards([r.size for r in records], shard_bytes)
    task = progress.add_task(f"export {split}", total=len(records)) if progress is not None else None
    files, num_bytes = [], 0
    for i, (start, stop) in enumerate(ranges):
        path = safe_child(folder, f"{split}-{i:05d}-of-{len(ranges):05d}", ".parquet")  # split names come from data
        name = path.name
        writer, cdc = _open_writer(path, schema, options)
        with writer:
            for lo in range(start, stop, ROW_GROUP_ROWS):
                table = build_table(records[lo : min(lo + ROW_GROUP_ROWS, stop)], schema)
                writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
                num_bytes += table.nbytes
                if task is not None:
                    progress.advance(task, table.num_rows)
            if cdc:
                writer.add_key_value_metadata({"content_defined_chunking": json.dumps(_CDC)})
        files.append(name)
    return SplitFiles(split, files, len(records), num_bytes)
