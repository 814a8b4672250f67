"""The one caption reader: extract, export and the review page all read captions through here.

Inputs: a caption folder (its finished `shard-*.parquet` only, see layout.py; a run folder holding `captions/`
stands for that folder), or one `.parquet` / `.jsonl` / `.ndjson` / `.json` file (JSON Lines, concatenated or
pretty-printed objects, or an array). Parquet is read batch by batch and JSON incrementally, so memory does
not grow with the file.

Columns: `pair_id` and `caption` are required (`text` is accepted for `caption`); `source` defaults to the
file's stem; `modality` defaults to the one a source names (`vis:...`, `external:<name>:ir`); the other
`CAPTION_SCHEMA` columns are optional. Rows with `error` set (failed generations) are passed on.

Problem rows (`CaptionRow.problem` set, no caption, `error` saying why, so a consumer that only looks at
`error` still never uses them): a caption that is not a string (a list, an object, a number: never turned
into its Python repr), and every repeat of a (pair_id, modality, source) after its first row. The first row
is the caption everywhere (labels, export tables, review page), so the tables and the labels agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import EntityLabelError
from .jsonvalues import iter_json_values
from .layout import CAPTION_SCHEMA, CAPTIONS_DIR, external_problem_files, finished_shard_files, shard_files

JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
MODALITIES = ("ir", "vis")
DUPLICATE = "duplicate"
NOT_A_STRING = "non_string_caption"
_STREAM_COLUMNS = ("pair_id", "source", "modality", "caption", "text", "error")

__all__ = ["CAPTION_SCHEMA", "CaptionRow", "caption_files", "iter_caption_batches", "read_caption_table"]


class CaptionRow(NamedTuple):
    pair_id: str
    source: str
    caption: str | None
    error: str | None
    modality: str | None = None
    problem: str | None = None  # DUPLICATE or NOT_A_STRING: a reported row, never a caption


def caption_files(path: str | Path, *, skip_unfinished: bool = False) -> list[Path]:
    """The files a CAPTIONS argument stands for, in a stable order; one clear line when there are none."""
    p = Path(path)
    if p.is_dir():
        if not shard_files(p) and (p / CAPTIONS_DIR).is_dir():
            p = p / CAPTIONS_DIR  # a run folder holding the caption stage's output
        files = finished_shard_files(p, skip_unfinished=skip_unfinished)
        if files:
            return files
        problems = external_problem_files(p)
        if problems:
            raise EntityLabelError(
                "no caption matched any pair: this folder has no caption shards",
                path=p,
                hint=f"the caption rows that matched no pair are listed in {', '.join(map(str, problems))}",
            )
        raise EntityLabelError("no caption shards (shard-*.parquet) in this folder", path=p)
    if not p.is_file():
        raise EntityLabelError("captions not found", path=p, hint="pass a caption shard folder or a file")
    if p.suffix.lower() not in (".parquet", *JSON_SUFFIXES):
        raise EntityLabelError("unsupported captions file type", path=p, hint="use .parquet or .jsonl")
    return [p]


def iter_caption_rows(
    path: str | Path, *, columns: tuple[str, ...] | None = _STREAM_COLUMNS, skip_unfinished: bool = False
) -> Iterator[tuple[CaptionRow, dict[str, Any]]]:
    """Every row of every file of `path` with the rules above: (row, its raw record's `columns`)."""
    seen: dict[tuple[str, str | None, str], str] = {}  # (pair, modality, source) -> where its first row is
    for f in caption_files(path, skip_unfinished=skip_unfinished):
        records = _parquet_records(f, columns) if f.suffix.lower() == ".parquet" else json_records(f)
        cap: str | None = None
        for rec, where in records:
            if cap is None:  # from the first record (JSON objects may leave optional keys out)
                cap = _caption_column(list(rec), f)
            row = _row(rec, cap, f, where)
            key = (row.pair_id, row.modality, row.source)
            if row.problem is None and key in seen:
                row = row._replace(
                    caption=None,
                    problem=DUPLICATE,
                    error=f"duplicate caption ({f.name} {where}): same pair, modality and source as "
                    f"{seen[key]}, which is kept",
                )
            elif row.problem is None:
                seen[key] = f"{f.name} {where}"
            yield row, rec


def iter_caption_batches(path: str | Path, batch_size: int = 256) -> Iterator[list[CaptionRow]]:
    """Yield lists of at most `batch_size` rows (problem rows included, flagged), streaming over `path`."""
    batch: list[CaptionRow] = []
    for row, _ in iter_caption_rows(path):
        batch.append(row)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def read_caption_table(path: str | Path, *, skip_unfinished: bool = False) -> pd.DataFrame:
    """The captions of `path` in CAPTION_SCHEMA, problem rows left out, sorted by (pair_id, modality, source)."""
    rows = []
    for row, rec in iter_caption_rows(path, columns=None, skip_unfinished=skip_unfinished):
        if row.problem is None:
            rows.append(_full_record(row, rec))
    table = pa.Table.from_pylist(rows, schema=CAPTION_SCHEMA)
    df = table.to_pandas()
    return df.sort_values(["pair_id", "modality", "source"], na_position="last", kind="stable").reset_index(drop=True)


# --- records ----------------------------------------------------------------------------------------


def _parquet_records(path: Path, columns: tuple[str, ...] | None) -> Iterator[tuple[dict[str, Any], str]]:
    try:
        pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise EntityLabelError(f"not a readable Parquet file ({e})", path=path) from None
    _caption_column(names, path)  # an empty file with the wrong columns is still an error
    wanted = [c for c in names if columns is None or c in columns]
    i = 0
    for rb in pf.iter_batches(batch_size=1024, columns=wanted):
        for rec in rb.to_pylist():
            yield rec, f"row {i}"
            i += 1


def json_records(path: Path) -> Iterator[tuple[dict[str, Any], str]]:
    for value, line in iter_json_values(path):
        for rec in value if isinstance(value, list) else [value]:
            if not isinstance(rec, dict):
                raise EntityLabelError(f"expected JSON objects, got {type(rec).__name__} at line {line}", path=path)
            yield rec, f"line {line}"


def _caption_column(names: list[str], path: Path) -> str:
    """The column holding the caption; one clear line when pair_id or the caption column is missing."""
    cap = "caption" if "caption" in names else "text" if "text" in names else None
    missing = [c for c, ok in (("pair_id", "pair_id" in names), ("caption", cap is not None)) if not ok]
    if missing or cap is None:
        raise EntityLabelError(
            f"captions lack column(s) {missing}; found {sorted(names)}",
            path=path,
            hint="need pair_id and caption (or text); source is optional",
        )
    return cap


def _modality(given: Any, source: str) -> str | None:
    if isinstance(given, str) and given:
        return given
    parts = source.split(":")
    if parts[0] in MODALITIES:
        return parts[0]
    if parts[0] == "external" and len(parts) == 3 and parts[2] in MODALITIES:
        return parts[2]
    return None


def _row(rec: dict[str, Any], cap: str, path: Path, where: str) -> CaptionRow:
    pid = rec.get("pair_id")
    if pid is None or isinstance(pid, (list, dict, bool, float)):
        what = "no pair_id" if pid is None else f"a {type(pid).__name__} as pair_id"
        raise EntityLabelError(f"caption row at {where} has {what}: {str(rec)[:120]}", path=path)
    src = rec.get("source")
    source = path.stem if src is None else str(src)
    caption, error = rec.get(cap), rec.get("error")
    error = None if error is None else str(error)
    row = CaptionRow(str(pid), source, caption, error, _modality(rec.get("modality"), source))
    if caption is not None and not isinstance(caption, str):
        kind = type(caption).__name__
        return row._replace(
            caption=None, problem=NOT_A_STRING, error=f"caption is a {kind}, not text ({path.name} {where})"
        )
    return row


def _full_record(row: CaptionRow, rec: dict[str, Any]) -> dict[str, Any]:
    """A CAPTION_SCHEMA record: the row's fields, the optional columns coerced to their types."""
    out: dict[str, Any] = {}
    for field in CAPTION_SCHEMA:
        v = rec.get(field.name)
        if v is None or (isinstance(v, float) and pd.isna(v)):
            v = None
        elif pa.types.is_string(field.type):
            v = str(v)
        elif pa.types.is_integer(field.type):
            v = int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer() else None
        elif pa.types.is_boolean(field.type):
            v = bool(v)
        out[field.name] = v
    out.update(pair_id=row.pair_id, source=row.source, modality=row.modality, caption=row.caption, error=row.error)
    return out
