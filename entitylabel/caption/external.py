"""Import captions made elsewhere (an API model, an existing text release) as caption shards.

The file is JSONL, JSON, CSV or Parquet (a UTF-8 byte-order mark is fine) with a caption column (`caption`, `text`,
`description` or `answer`; two columns that differ only by case are refused) and a key: `pair_id`, or an image file
name / relative path (`image`, `file_name`, `filename`, `file`, `image_path`, `path`). A path relative to the
dataset root, or a file name (with or without extension) found in only one modality, also tells the modality; an
optional `modality` column says it outright. Optional `model`, `prompt_id` and `prompt` columns are carried into the
provenance.

Rows become `shard-external-<name>-NNNNN.parquet` with source `external:<name>:<modality>` (plain
`external:<name>` when the modality is unknown): the IR and VIS captions of one file are two sources, so the
extract stage can count them as two votes, as it does for a VLM's two modalities. Rows that become no caption
are not dropped silently: they go to `external-<name>.problems.parquet` with their reason (`PROBLEM_KINDS`),
counted per reason in `external-<name>.json` and on the result (`problem_counts`, `note()`). A caption that is
not a string (a list, an object, a number) is such a row, never its Python repr; so is every repeat of a
(pair, modality, source) after its first row, which is the one kept (the tables and the labels agree). A file
where no row matches any pair is an error naming the problems file.
"""

from __future__ import annotations

import posixpath
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from ..errors import EntityLabelError
from ..io import atomic_write_json, sha256_file, sha256_text, write_parquet
from ..pairs import PairManifest, safe_name
from ..pipeline.lock import folder_lock
from ..tables.captions import json_records
from .shards import Shard, fingerprint, is_done, plan_shards, remove_stale, write_shard

KEY_COLUMNS = ("image", "file_name", "filename", "file", "image_path", "path", "image_file")
CAPTION_COLUMNS = ("caption", "text", "description", "answer")
_MODALITY = {"vis": "vis", "visible": "vis", "rgb": "vis", "ir": "ir", "infrared": "ir", "thermal": "ir"}
PROBLEM_SCHEMA = pa.schema([("row", pa.int64()), ("key", pa.string()), ("kind", pa.string()), ("message", pa.string())])
# problem kind -> how the one-line note names it
PROBLEM_KINDS = {
    "unmatched": "matched no pair",
    "ambiguous": "matched several pairs",
    "no_key": "had no key",
    "empty_caption": "had an empty caption",
    "non_string_caption": "had a caption that is not text",
    "bad_modality": "had an unknown modality",
    "duplicate": "repeated a (pair, modality) caption",
}


@dataclass
class ExternalResult:
    name: str
    rows: int  # rows in the input file
    matched: int  # rows written to shards
    problems: int  # rows reported in the problems file
    shards: int
    problems_path: Path
    problem_counts: dict[str, int]  # kind (PROBLEM_KINDS) -> rows, sorted by kind

    @property
    def by_kind(self) -> dict[str, int]:  # the earlier name
        return self.problem_counts

    def note(self) -> str | None:
        """One line for the run summary, each reason counted apart; None when every row was imported."""
        if not self.problems:
            return None
        parts = [f"{n} {PROBLEM_KINDS.get(k, k)}" for k, n in self.problem_counts.items()]
        return (
            f"external:{self.name}: {self.problems} of {self.rows} caption row(s) not imported "
            f"({', '.join(parts)}): see {self.problems_path}"
        )


def check_external_name(name: str) -> str:
    """The provenance name of external captions (`external:<name>`, file names of its shards) must be plain."""
    if safe_name(name) != name:
        raise EntityLabelError(f"--external-name {name!r} must be letters, digits, '.', '_' or '-'")
    return name


def read_table(path: Path) -> pd.DataFrame:
    """Read a JSONL/JSON/CSV/Parquet file into strings (keys like '00012' must not become numbers)."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson", ".json"):
            df = pd.DataFrame([rec for rec, _ in json_records(path)])  # the caption tables' reader and errors
        elif suffix in (".csv", ".tsv"):
            df = pd.read_csv(path, dtype=str, keep_default_na=False, sep="\t" if suffix == ".tsv" else ",")
        elif suffix in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        else:
            raise EntityLabelError("unknown caption file type", path=path, hint="use .jsonl, .json, .csv or .parquet")
    except EntityLabelError:
        raise
    except FileNotFoundError:
        raise EntityLabelError("external caption file not found", path=path) from None
    except Exception as e:  # parser errors of several kinds
        raise EntityLabelError(f"cannot read external captions ({type(e).__name__}: {e})", path=path) from None
    names = [str(c).strip().lower() for c in df.columns]
    clash = next((n for n in names if names.count(n) > 1), None)
    if clash is not None:  # `pair_id,PAIR_ID`: which one is the key is a guess we do not make
        same = ", ".join(repr(str(c)) for c in df.columns if str(c).strip().lower() == clash)
        raise EntityLabelError(f"columns {same} differ only by case or spaces", path=path, hint="rename or drop one")
    df.columns = names
    return df


def _pick(df: pd.DataFrame, names: Iterable[str]) -> str | None:
    return next((c for c in names if c in df.columns), None)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and pd.isna(v))


def _text(v: Any) -> str | None:
    if _missing(v):
        return None
    s = str(v).strip()
    return s or None


class _Matcher:
    """Look a key up as pair id, relative path, file name, or file stem."""

    def __init__(self, manifest: PairManifest) -> None:
        df = manifest.df
        self.pair_ids = set(df["pair_id"])
        self.by_path: dict[str, tuple[str, str]] = {}
        self.by_name: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for pid, ir, vis in zip(df["pair_id"], df["ir_path"], df["vis_path"], strict=True):
            for mod, rel in (("ir", ir), ("vis", vis)):
                rel = posixpath.normpath(rel)
                self.by_path[rel] = (pid, mod)
                name = posixpath.basename(rel)
                self.by_name[name].add((pid, mod))
                self.by_name[posixpath.splitext(name)[0]].add((pid, mod))

    def match_file(self, key: str) -> tuple[str | None, str | None, str | None]:
        """(pair_id, modality or None, problem kind or None)."""
        rel = posixpath.normpath(key.replace("\\", "/")).lstrip("/")
        if rel in self.by_path:
            return (*self.by_path[rel], None)
        hits = self.by_name.get(posixpath.basename(rel)) or set()
        pairs = {p for p, _ in hits}
        if not pairs:
            return None, None, "unmatched"
        if len(pairs) > 1:
            return None, None, "ambiguous"
        mods = {m for _, m in hits}
        return pairs.pop(), (mods.pop() if len(mods) == 1 else None), None


def import_external(
    manifest: PairManifest,
    path: str | Path,
    out_dir: str | Path,
    *,
    name: str | None = None,
    shard_size: int = 128,
    force: bool = False,
) -> ExternalResult:
    """Turn an external caption file into caption shards with source `external:<name>`."""
    path, out = Path(path), Path(out_dir)
    name = check_external_name(name or safe_name(path.stem))
    df = read_table(path)
    key_col = "pair_id" if "pair_id" in df.columns else _pick(df, KEY_COLUMNS)
    cap_col = _pick(df, CAPTION_COLUMNS)
    if key_col is None or cap_col is None:
        raise EntityLabelError(
            f"needs a key column (pair_id or one of {', '.join(KEY_COLUMNS)}) and a caption column "
            f"({', '.join(CAPTION_COLUMNS)}); found {', '.join(df.columns) or 'none'}",
            path=path,
        )
    source = f"external:{name}"
    rows, problems = _sort_rows(df, key_col, cap_col, _Matcher(manifest), source)
    out.mkdir(parents=True, exist_ok=True)
    # two imports into one folder at once would mix their shards: the second fails at once, naming the first
    with folder_lock(out, "caption --external"):
        return _write_import(manifest, path, out, name, df, rows, problems, shard_size, force, source)


def _write_import(
    manifest: PairManifest,
    path: Path,
    out: Path,
    name: str,
    df: pd.DataFrame,
    rows: list[dict[str, Any]],
    problems: list[dict[str, Any]],
    shard_size: int,
    force: bool,
    source: str,
) -> ExternalResult:
    """Write an import's problems, shards and summary (under the folder's lock)."""
    problems_path = out / f"external-{name}.problems.parquet"
    write_parquet(pd.DataFrame(problems, columns=PROBLEM_SCHEMA.names), problems_path, schema=PROBLEM_SCHEMA)
    by_kind = dict(sorted(Counter(p["kind"] for p in problems).items()))
    prefix = f"shard-external-{name}"
    shards = plan_shards(sorted({r["pair_id"] for r in rows}), max(1, shard_size), prefix)
    result = ExternalResult(name, len(df), len(rows), len(problems), len(shards), problems_path, by_kind)
    if not rows:  # refused before any earlier import of this name is touched
        what = f"no caption matched any pair ({result.note()})" if len(df) else "no caption rows in this file"
        raise EntityLabelError(what, path=path)
    settings = {"source": source, "file_sha256": sha256_file(path)}
    _write_shards(out, shards, rows, settings, force)
    atomic_write_json(
        out / f"external-{name}.json",
        {
            "name": name,
            "source": source,
            "file": path.name,
            "file_sha256": settings["file_sha256"],
            "rows": len(df),
            "matched": len(rows),
            "pairs": len({r["pair_id"] for r in rows}),
            "problems": len(problems),
            "problems_by_kind": by_kind,
            "shards": len(shards),
        },
    )
    return result


def _sort_rows(
    df: pd.DataFrame, key_col: str, cap_col: str, matcher: _Matcher, source: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The file's rows as caption rows and problem rows; of repeated (pair, modality) captions the first wins."""
    rows: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    get = {
        c: df[c].tolist() if c in df.columns else [None] * len(df) for c in ("modality", "model", "prompt_id", "prompt")
    }
    seen: dict[tuple[str, str | None], int] = {}  # (pair, modality) -> row of its first caption
    for i, (key, caption) in enumerate(zip(df[key_col].tolist(), df[cap_col].tolist(), strict=True)):
        row, problem = _import_row(i, key, caption, key_col, matcher, {c: v[i] for c, v in get.items()}, source)
        if row is not None and (row["pair_id"], row["modality"]) in seen:
            first = seen[(row["pair_id"], row["modality"])]
            msg = f"same pair, modality and source as row {first}, which is kept"
            row, problem = None, {"row": i, "key": _text(key), "kind": "duplicate", "message": msg}
        if row is None:
            problems.append(problem)
            continue
        seen[(row["pair_id"], row["modality"])] = i
        rows.append(row)
    return rows, problems


def _write_shards(
    out: Path, shards: list[Shard], rows: list[dict[str, Any]], settings: dict[str, Any], force: bool
) -> None:
    """Write the shards not already done the same way; remove this import's shards beyond the plan."""
    if shards:
        remove_stale(out, shards, shards[0].prefix)
    by_pair: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_pair[r["pair_id"]].append(r)
    for shard in shards:
        fp = fingerprint(shard, settings)
        if force or not is_done(shard, out, fp):
            write_shard(shard, out, [r for p in shard.pair_ids for r in by_pair[p]], fp)


def _import_row(
    i: int, key: Any, caption: Any, key_col: str, matcher: _Matcher, extra: dict[str, Any], source: str
) -> tuple[dict[str, Any], None] | tuple[None, dict[str, Any]]:
    """One input row as a caption row, or as a problem row saying why it is none."""
    key_s = _text(key)

    def problem(kind: str, message: str) -> tuple[None, dict[str, Any]]:
        return None, {"row": i, "key": key_s, "kind": kind, "message": message}

    if key_s is None:
        return problem("no_key", f"empty {key_col}")
    if key_col == "pair_id":
        pid, mod, kind = (key_s, None, None) if key_s in matcher.pair_ids else (None, None, "unmatched")
    else:
        pid, mod, kind = matcher.match_file(key_s)
    if kind:
        return problem(kind, f"{'no pair has' if kind == 'unmatched' else 'several pairs have'} this {key_col}")
    given = _text(extra["modality"])
    if given is not None:
        if given.lower() not in _MODALITY:
            return problem("bad_modality", f"modality {given!r}")
        mod = _MODALITY[given.lower()]
    if not _missing(caption) and not isinstance(caption, str):
        return problem("non_string_caption", f"caption is a {type(caption).__name__}, not text")
    caption_s = _text(caption)
    if caption_s is None:
        return problem("empty_caption", "no caption text")
    prompt = _text(extra["prompt"])
    row = {
        "pair_id": pid,
        "source": f"{source}:{mod}" if mod else source,
        "modality": mod,
        "caption": caption_s,
        "model": _text(extra["model"]),
        "model_revision": None,
        "prompt_id": _text(extra["prompt_id"]),
        "prompt_sha256": sha256_text(prompt) if prompt else None,
        "decoding": None,
        "n_tokens": None,
        "truncated": False,
        "error": None,
    }
    return row, None
