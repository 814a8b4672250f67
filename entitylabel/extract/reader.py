"""Stream captions from a caption-shard folder, a Parquet file or a JSON Lines file, in batches.

Every input becomes rows of `CaptionRow(pair_id, source, caption, error)`. Accepted inputs:
- a folder: every `*.parquet` in it, sorted by name (the caption stage's `shard-00000.parquet` ...);
  a folder without Parquet files falls back to its `*.jsonl` / `*.json` files;
- a `.parquet` file, read batch by batch (`iter_batches`), so memory does not grow with the file;
- a `.jsonl` / `.json` file: one JSON object per line, or concatenated (pretty-printed) objects, decoded
  incrementally with `raw_decode`; a top-level JSON array is accepted too.
Columns: `pair_id` and `caption` are required (`text` is accepted for `caption`); `source` names the caption's
origin (modality, prompt, model) and defaults to the file's stem when absent. Rows with a non-null `error`
column (failed generations from the caption stage) are passed on so the stage can report them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow.parquet as pq

from ..caption.shards import finished_shard_files
from ..errors import EntityLabelError

_JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
_READ_CHUNK = 1 << 20


class CaptionRow(NamedTuple):
    pair_id: str
    source: str
    caption: str | None
    error: str | None


def caption_files(path: str | Path) -> list[Path]:
    """The files a CAPTIONS argument stands for, in a stable order."""
    p = Path(path)
    if p.is_dir():
        files = finished_shard_files(p) or sorted(p.glob("*.parquet"))
        if not files:
            files = sorted(f for s in _JSON_SUFFIXES for f in p.glob(f"*{s}"))
        if not files:
            raise EntityLabelError("no caption shards (*.parquet) or JSON Lines files in this folder", path=p)
        return files
    if not p.is_file():
        raise EntityLabelError("captions not found", path=p, hint="pass a caption shard folder or a file")
    if p.suffix.lower() not in (".parquet", *_JSON_SUFFIXES):
        raise EntityLabelError("unsupported captions file type", path=p, hint="use .parquet or .jsonl")
    return [p]


def iter_caption_batches(path: str | Path, batch_size: int = 256) -> Iterator[list[CaptionRow]]:
    """Yield lists of at most `batch_size` rows, streaming over every file of `path`."""
    batch: list[CaptionRow] = []
    for f in caption_files(path):
        rows = _iter_parquet(f, batch_size) if f.suffix.lower() == ".parquet" else _iter_json(f)
        for row in rows:
            batch.append(row)
            if len(batch) >= batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


def _columns(names: list[str], path: Path) -> tuple[str, str, str | None, str | None]:
    cap = "caption" if "caption" in names else "text" if "text" in names else None
    missing = [c for c, ok in (("pair_id", "pair_id" in names), ("caption", cap is not None)) if not ok]
    if missing:
        raise EntityLabelError(
            f"captions lack column(s) {missing}; found {sorted(names)}",
            path=path,
            hint="need pair_id and caption (or text); source is optional",
        )
    assert cap is not None
    return "pair_id", cap, "source" if "source" in names else None, "error" if "error" in names else None


def _row(rec: dict[str, Any], cols: tuple[str, str, str | None, str | None], path: Path) -> CaptionRow:
    pid, cap, src, err = cols
    if rec.get(pid) is None:
        raise EntityLabelError(f"a caption row has no pair_id: {str(rec)[:120]}", path=path)
    caption = rec.get(cap)
    error = rec.get(err) if err else None
    return CaptionRow(
        pair_id=str(rec.get(pid)),
        source=str(rec.get(src)) if src and rec.get(src) is not None else path.stem,
        caption=None if caption is None else str(caption),
        error=None if error is None else str(error),
    )


def _iter_parquet(path: Path, batch_size: int) -> Iterator[CaptionRow]:
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise EntityLabelError(f"not a readable Parquet file ({e})", path=path) from None
    cols = _columns(pf.schema_arrow.names, path)
    wanted = [c for c in cols if c is not None]
    for rb in pf.iter_batches(batch_size=max(1, batch_size), columns=wanted):
        for rec in rb.to_pylist():
            yield _row(rec, cols, path)


def _iter_json_values(path: Path) -> Iterator[Any]:
    """Top-level JSON values of a file: JSON Lines or concatenated objects, read incrementally."""
    dec = json.JSONDecoder()
    buf = ""
    eof = False
    with open(path, encoding="utf-8") as f:
        while True:
            pos = 0
            n = len(buf)
            while True:
                while pos < n and buf[pos].isspace():
                    pos += 1
                if pos >= n:
                    break
                try:
                    value, end = dec.raw_decode(buf, pos)
                except json.JSONDecodeError as e:
                    if eof:
                        line = buf.count("\n", 0, e.pos) + 1
                        raise EntityLabelError(
                            f"invalid JSON near line {line} of the unread part: {e.msg}", path=path
                        ) from None
                    break  # need more text
                if end >= n and not eof:
                    break  # a number or literal may continue in the next chunk
                yield value
                pos = end
            buf = buf[pos:]
            if eof:
                return
            chunk = f.read(_READ_CHUNK)
            if not chunk:
                eof = True
            buf += chunk


def _iter_json(path: Path) -> Iterator[CaptionRow]:
    cols: tuple[str, str, str | None, str | None] | None = None
    for value in _iter_json_values(path):
        for rec in value if isinstance(value, list) else [value]:
            if not isinstance(rec, dict):
                raise EntityLabelError(f"expected JSON objects, got {type(rec).__name__}", path=path)
            if cols is None:
                cols = _columns(list(rec), path)
            yield _row(rec, cols, path)
