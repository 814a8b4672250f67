"""`build_report`: one self-contained HTML review page for a run folder.

The page holds everything (data as JSON, thumbnails as base64 JPEG, CSS, JS) and loads nothing from the
network: a Content-Security-Policy with `default-src 'none'` and hashes for the page's own script and style
makes the browser refuse any other script, even if markup were somehow injected. Captions are model
output: they travel as JSON inside `<script type="application/json">` with `<`, `>` and `&` escaped as
`\\u003c` etc. (so no caption can close that element), and the page's JS renders them with `textContent`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .. import __version__
from ..datapaths import check_manifest
from ..errors import EntityLabelError
from ..images import IMAGE_EXTENSIONS
from ..io import atomic_write_text, ensure_writable_dir
from .tables import RunTables, build_payload, exported_splits, load_run
from .thumbs import make_thumbnails

_PLACEHOLDER = re.compile(r"\{\{([A-Z]+)\}\}")
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


@dataclass
class ReportResult:
    path: Path
    pairs: int
    captions: int
    labels: int
    size_bytes: int

    def print_summary(self, console: Any) -> None:
        console.print(
            f"review page: {self.pairs} pairs, {self.captions} captions, {self.labels} labels, "
            f"{self.size_bytes / 1e6:.1f} MB"
        )
        console.print(str(self.path))


def json_for_html(obj: Any) -> str:
    """JSON safe to put inside a <script> element: no `<`, `>`, `&` or line separators left raw."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return re.sub("[<>&\u2028\u2029]", lambda m: _JSON_ESCAPES[m.group()], text)


def _asset(name: str) -> str:
    return resources.files("entitylabel.report").joinpath("assets", name).read_text(encoding="utf-8")


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _fill(template: str, values: dict[str, str]) -> str:
    """Replace {{NAME}} placeholders in one pass (inserted text is never scanned again)."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def _index_fused(fused_dir: Path) -> dict[str, Path]:
    """Fused images by file stem (the fuse stage names them by pair id or by the source's stem)."""
    found: dict[str, Path] = {}
    for p in sorted(fused_dir.rglob("*")):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
            found.setdefault(p.stem, p)
    return found


def build_report(
    run_dir: str | Path,
    out: str | Path | None = None,
    page_size: int = 50,
    fused_dir: str | Path | None = None,
    *,
    captions: str | Path | None = None,
    entities: str | Path | None = None,
    export_dir: str | Path | None = None,
    root: str | Path | None = None,
    title: str | None = None,
    notice: str | None = None,
    thumb_size: int = 112,
    max_rejected: int = 50,
    workers: int = 4,
    progress: Any = None,
) -> Path:
    """Write the review page for `run_dir` (pairs.parquet, captions/, entities/) and return its path.

    `out` defaults to `run_dir/report.html`; splits shown are those of the export in `export_dir` (default
    `run_dir/export`) when there is one, else discover's; `fused_dir` (default `run_dir/fused` when present) holds fused
    images named by pair id or by the IR file's stem; `notice` is shown as a banner (default: the caption
    notice `entitylabel run` recorded in `stages/caption.json`, e.g. "captions are NOT from a VLM");
    `root` overrides the dataset root stored in pairs.parquet.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise EntityLabelError("run folder not found", path=run, hint="pass the --out folder of `entitylabel run`")
    if page_size < 1:
        raise EntityLabelError(f"page size must be at least 1, got {page_size}")
    out_path = Path(out) if out is not None else run / "report.html"
    _check_out(out_path)  # before the thumbnails: a bad --out fails in a moment, not after minutes of work
    tables, data_root = _load_tables(run, captions, entities, export_dir, root)
    payload = build_payload(tables, max_rejected=max_rejected)
    fused_path, fused = _fused_images(run, fused_dir)
    thumbs = _thumbnails(tables, data_root, fused, thumb_size, workers, progress)
    page_title = title or f"entitylabel review · {run.resolve().name}"
    payload.update(
        {
            "title": page_title,
            "notice": (notice if notice is not None else _recorded_notice(run)) or "",
            "pageSize": int(page_size),
            "thumbSize": int(thumb_size),
            "fused": str(fused_path) if fused else "",
            "generator": f"entitylabel {__version__}",
        }
    )
    _write_page(out_path, _render_page(payload, thumbs, page_title))
    return out_path


def _load_tables(
    run: Path,
    captions: str | Path | None,
    entities: str | Path | None,
    export_dir: str | Path | None,
    root: str | Path | None,
) -> tuple[RunTables, Path]:
    """The run's tables (each folder given, else its usual place in `run`) and the dataset root."""
    cap_path = Path(captions) if captions is not None else run / "captions"
    ent_dir = Path(entities) if entities is not None else run / "entities"
    tables, data_root = load_run(run / "pairs.parquet", cap_path, ent_dir, root=Path(root) if root else None)
    check_manifest(tables.pairs, run / "pairs.parquet")  # ids key the page's data; paths are read for thumbnails
    _use_exported_splits(tables, Path(export_dir) if export_dir is not None else run / "export")
    return tables, data_root


def _use_exported_splits(tables: RunTables, export_dir: Path) -> None:
    """Show the train/test split export assigned (hashed when the dataset has no split folders), if any."""
    exported = exported_splits(export_dir)
    if exported:
        split = tables.pairs["pair_id"].map(exported)
        tables.pairs["split"] = split.where(split.notna(), tables.pairs["split"])


def _fused_images(run: Path, fused_dir: str | Path | None) -> tuple[Path | None, dict[str, Path]]:
    """The fused image folder (given, else `run/fused` when present) and its images by stem."""
    fused_path = Path(fused_dir) if fused_dir is not None else (run / "fused" if (run / "fused").is_dir() else None)
    if fused_path is not None and not fused_path.is_dir():
        raise EntityLabelError("fused image folder not found", path=fused_path)
    return fused_path, _index_fused(fused_path) if fused_path is not None else {}


def _thumbnails(
    tables: RunTables, data_root: Path, fused: dict[str, Path], size: int, workers: int, progress: Any
) -> dict[str, list[str | None]]:
    """Base64 thumbnails per pair id: [ir, vis] or, with fused images, [ir, vis, fused] (None: not readable)."""
    jobs: list[tuple[str, Path | None, bool]] = []
    for row in tables.pairs.itertuples(index=False):
        pid = str(row.pair_id)
        jobs.append((f"{pid}\0ir", data_root / row.ir_path, True))
        jobs.append((f"{pid}\0vis", data_root / row.vis_path, False))
        if fused:
            jobs.append((f"{pid}\0fused", fused.get(pid) or fused.get(Path(row.ir_path).stem), False))
    task = progress.add_task("report thumbnails", total=len(jobs)) if progress is not None else None
    done = (lambda: progress.advance(task)) if task is not None else None
    by_pair: dict[str, list[str | None]] = {}
    for key, b64 in make_thumbnails(jobs, size, workers=workers, on_done=done).items():
        pid, kind = key.split("\0")
        entry = by_pair.setdefault(pid, [None, None, None] if fused else [None, None])
        entry[{"ir": 0, "vis": 1, "fused": 2}[kind]] = b64
    return by_pair


def _recorded_notice(run: Path) -> str | None:
    """The caption notice `entitylabel run` recorded for this run (where its captions came from), if any."""
    try:
        return json.loads((run / "stages" / "caption.json").read_text(encoding="utf-8")).get("notice")
    except (OSError, ValueError, AttributeError):
        return None


def _render_page(payload: dict[str, Any], thumbs: dict[str, list[str | None]], page_title: str) -> str:
    """The HTML page: template filled with the data, the assets inline, and a CSP that allows only those."""
    script, style = _asset("report.js"), _asset("report.css")
    csp = (
        f"default-src 'none'; img-src data:; style-src {_csp_hash(style)}; "
        f"script-src {_csp_hash(script)}; base-uri 'none'; form-action 'none'"
    )
    return _fill(
        _asset("report.html"),
        {
            "CSP": csp,
            "GENERATOR": html.escape(payload["generator"]),
            "TITLE": html.escape(page_title),
            "STYLE": style,
            "DATA": json_for_html(payload),
            "THUMBS": json_for_html(thumbs),
            "SCRIPT": script,
        },
    )


def _write_page(out_path: Path, page: str) -> None:
    """Write the page atomically; a failure is one line that says how to write it elsewhere."""
    try:
        atomic_write_text(out_path, page)
    except EntityLabelError as e:  # io's one line for a read-only folder or a full disk; nothing half-written
        raise EntityLabelError(str(e), hint=_OUT_HINT) from None
    except OSError as e:
        raise EntityLabelError(
            f"cannot write the review page ({e.strerror or e})", path=out_path, hint=_OUT_HINT
        ) from None


_OUT_HINT = "pass --out to write the page elsewhere"


def _check_out(out_path: Path) -> None:
    """The page's folder exists (or can be made) and is writable, and its name is not taken by a folder or by
    a file other than an earlier review page (`--out pairs.parquet` must not replace the manifest)."""
    if out_path.is_dir():
        raise EntityLabelError("output is a folder, not an HTML file name", path=out_path, hint=_OUT_HINT)
    if out_path.is_file() and out_path.stat().st_size and not _is_review_page(out_path):
        raise EntityLabelError(
            "exists and is not an entitylabel review page; refusing to overwrite it", path=out_path, hint=_OUT_HINT
        )
    ensure_writable_dir(out_path.parent)


def _is_review_page(path: Path) -> bool:
    """A page this module wrote (its generator tag is near the top); anything else is never overwritten."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return b'<meta name="generator" content="entitylabel ' in head


def report_result(path: Path) -> ReportResult:
    """Counts read back from a written page (for the CLI summary)."""
    text = path.read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
    data = json.loads(m.group(1)) if m else {"pairs": [], "summary": {"captions": 0}, "labels": []}
    return ReportResult(
        path=path,
        pairs=len(data["pairs"]),
        captions=int(data["summary"]["captions"]),
        labels=len(data["labels"]),
        size_bytes=path.stat().st_size,
    )
