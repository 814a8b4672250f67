"""Score fused images against their IR/VIS sources, with pixel-mean / pixel-max baselines beside them.

`evaluate(fused_dir, pairs_manifest, out_file)` matches every pair of the manifest to a fused image in
`fused_dir` (file stem = pair id, or else the pair's own file stem when that is unique), computes
`metrics.compute_all` on the gray images, and does the same for the baseline fusions of the same pairs
in the same run. The result is one long table: one row per (method, pair) with a `status` ("ok",
"missing", "error") and an `error` message, then one "mean" row per method. Means are taken over the
pairs every method scored, so the methods are compared on the same images. Bad pairs never stop the run.
A metric can be undefined on a scored pair (NaN: Qabf, VIF or SSIM against a constant source, TC without a usable
box); each metric's mean leaves such pairs out and says how many it averages (`n_<metric>`), and `undefined_note`
names them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import EntityLabelError
from ..images import IMAGE_EXTENSIONS, open_gray
from ..io import atomic_write_text, dumps_json, ensure_writable_dir, safe_child
from ..pairs import PairManifest, load_pairs
from .metrics import HIGHER_IS_BETTER, METRICS, compute_all
from .region_eval import PairBoxes, load_region_boxes, region_scores
from .region_metrics import REGION_METRICS

Array = np.ndarray


def pixel_mean(ir: Array, vis: Array) -> Array:
    """(A + B) / 2 rounded half up to whole gray levels (what an 8-bit PNG of it would hold)."""
    return np.floor((ir + vis) / 2.0 + 0.5)


def pixel_max(ir: Array, vis: Array) -> Array:
    """max(A, B) per pixel."""
    return np.maximum(ir, vis)


BASELINES: dict[str, tuple[str, Callable[[Array, Array], Array]]] = {
    "mean": ("pixel-mean", pixel_mean),
    "max": ("pixel-max", pixel_max),
}
"""`--baseline` key -> (method name in tables, fusion function)."""

ID_COLUMNS = ("method", "kind", "pair_id", "status", "n", "fused_path", "error")
COUNT_PREFIX = "n_"  # n_<metric>: pairs a mean of that metric averages (1/0 on an image row: defined or not)
OUT_SUFFIXES = (".csv", ".json")
BETTER = {**HIGHER_IS_BETTER, **dict.fromkeys(REGION_METRICS, True)}


def metric_columns(table: pd.DataFrame) -> list[str]:
    """The metrics of a table: the ten, then the region metrics (TC, Qabf_bg) when it was scored with boxes."""
    return [*METRICS, *(m for m in REGION_METRICS if m in table.columns)]


def _check_out(out_file: str | Path | None) -> Path | None:
    if out_file is None:
        return None
    p = Path(out_file)
    if p.suffix.lower() not in OUT_SUFFIXES:
        raise EntityLabelError("unknown output format", path=p, hint="name the file *.csv or *.json")
    if p.is_dir():
        raise EntityLabelError("is a folder, expected a file name", path=p)
    return p


def _index_fused(fused_dir: Path) -> dict[str, list[Path]]:
    """Image files directly in `fused_dir`, by file stem."""
    by_stem: dict[str, list[Path]] = {}
    for p in sorted(fused_dir.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."):
            by_stem.setdefault(p.stem, []).append(p)
    return by_stem


def match_fused(manifest: PairManifest, fused_dir: str | Path) -> dict[str, Path | str]:
    """pair_id -> fused image path, or an error message ("missing ..." / "ambiguous ...").

    A file named after the pair id wins; otherwise the stem of the pair's visible (then infrared) file,
    used only when no other pair of the manifest has the same stem (split folders reuse names).
    """
    folder = Path(fused_dir)
    by_stem = _index_fused(folder)
    df = manifest.df
    stem_counts: dict[str, int] = {}
    pair_stems: dict[str, list[str]] = {}
    for pid, ir_rel, vis_rel in zip(df["pair_id"], df["ir_path"], df["vis_path"], strict=True):
        stems = list(dict.fromkeys([Path(vis_rel).stem, Path(ir_rel).stem]))
        pair_stems[pid] = stems
        for s in stems:
            stem_counts[s] = stem_counts.get(s, 0) + 1
    out: dict[str, Path | str] = {}
    for pid, stems in pair_stems.items():
        try:  # a pair id from data that is no plain file name (e.g. "../x") is an error row, never a lookup
            safe_child(folder, pid)
        except EntityLabelError as e:
            out[pid] = f"error: {e}"
            continue
        candidates = [pid] + [s for s in stems if stem_counts[s] == 1 and s != pid]
        found: Path | str | None = None
        for key in candidates:
            hits = by_stem.get(key)
            if hits:
                found = hits[0] if len(hits) == 1 else f"ambiguous: {', '.join(h.name for h in hits)}"
                break
        if found is None:
            names = " or ".join(f"{c}.*" for c in candidates)
            found = f"missing: no fused image named {names} in {folder}"
        out[pid] = found
    return out


def _load(path: Path, what: str) -> Array:
    try:
        return np.asarray(open_gray(path), dtype=np.float64)
    except FileNotFoundError:
        raise ValueError(f"{what} image not found: {path}") from None
    except Exception as e:  # PIL raises many types for broken files
        raise ValueError(f"cannot read {what} image {path}: {e}") from None


def _row(method: str, pid: str, status: str, fused_path: str = "", error: str = "", **vals: float) -> dict:
    row: dict[str, Any] = {
        "method": method,
        "kind": "image",
        "pair_id": pid,
        "status": status,
        "n": 1 if status == "ok" else 0,
        "fused_path": fused_path,
        "error": error,
    }
    row.update({m: vals.get(m, math.nan) for m in METRICS})
    row.update({m: vals[m] for m in REGION_METRICS if m in vals})
    return row


def _score_pair(
    manifest: PairManifest,
    rec: dict[str, Any],
    fused: Path | str | None,
    method: str | None,
    baselines: Sequence[str],
    mi_log_base: float | str,
    boxes: PairBoxes | None = None,
) -> list[dict]:
    """All rows of one pair: the fused method (if any) then the baselines (region metrics when `boxes`)."""
    pid = rec["pair_id"]
    methods = ([method] if method else []) + [BASELINES[b][0] for b in baselines]
    try:
        ir = _load(manifest.ir_abspath(rec), "infrared")
        vis = _load(manifest.vis_abspath(rec), "visible")
        if ir.shape != vis.shape:
            raise ValueError(f"infrared is {ir.shape[1]}x{ir.shape[0]} but visible is {vis.shape[1]}x{vis.shape[0]}")
    except ValueError as e:
        return [_row(m, pid, "error", error=f"source: {e}") for m in methods]

    def scores(img: Array) -> dict[str, float]:
        region = region_scores(ir, vis, img, boxes.get(pid)) if boxes is not None else {}
        return {**compute_all(ir, vis, img, mi_log_base=mi_log_base), **region}

    rows = []
    if method:
        if isinstance(fused, Path):
            rel = fused.name
            try:
                img = _load(fused, "fused")
                if img.shape != ir.shape:
                    raise ValueError(
                        f"fused image is {img.shape[1]}x{img.shape[0]} but the pair is {ir.shape[1]}x{ir.shape[0]}"
                    )
                rows.append(_row(method, pid, "ok", rel, **scores(img)))
            except ValueError as e:
                rows.append(_row(method, pid, "error", rel, str(e)))
        else:
            status = "missing" if str(fused).startswith("missing") else "error"
            rows.append(_row(method, pid, status, error=str(fused)))
    for key in baselines:
        name, fn = BASELINES[key]
        try:
            rows.append(_row(name, pid, "ok", **scores(fn(ir, vis))))
        except ValueError as e:
            rows.append(_row(name, pid, "error", error=str(e)))
    return rows


def _mean_rows(images: pd.DataFrame, methods: Sequence[str]) -> list[dict]:
    """One mean row per method over the pairs that every method scored (`n` of them); each metric's mean over
    those of them where it is defined for every method (`n_<metric>`), so methods are compared on the same pairs
    and an undefined value (NaN: a constant source) never counts as scored."""
    ok = images[images["status"] == "ok"]
    common = set(images["pair_id"])
    for m in methods:
        common &= set(ok.loc[ok["method"] == m, "pair_id"])
    scored = ok[ok["pair_id"].isin(common)]
    rows = []
    for m in methods:
        sel = scored[scored["method"] == m]
        row: dict[str, Any] = {
            "method": m,
            "kind": "mean",
            "pair_id": "",
            "status": "ok" if len(sel) else "empty",
            "n": len(sel),
            "fused_path": "",
            "error": "",
        }
        for k in metric_columns(images):
            undefined = set(scored.loc[scored[k].isna(), "pair_id"])  # by any method
            vals = sel.loc[~sel["pair_id"].isin(undefined), k]
            row[k] = float(vals.mean()) if len(vals) else math.nan
            row[COUNT_PREFIX + k] = len(vals)
        rows.append(row)
    return rows


def undefined_metrics(table: pd.DataFrame) -> dict[str, dict[str, list[str]]]:
    """pair_id -> metric -> the methods whose scored row left it undefined (NaN), in table order."""
    out: dict[str, dict[str, list[str]]] = {}
    images = table[(table["kind"] == "image") & (table["status"] == "ok")]
    for k in metric_columns(table):
        for r in images[images[k].isna()].itertuples():
            out.setdefault(str(r.pair_id), {}).setdefault(k, []).append(str(r.method))
    return {pid: out[pid] for pid in sorted(out)}


def undefined_note(table: pd.DataFrame, *, max_pairs: int = 10) -> list[str]:
    """Lines naming the pairs and metrics left undefined (and so out of their means); [] when there are none."""
    found = undefined_metrics(table)
    if not found:
        return []
    methods = list(dict.fromkeys(table["method"]))
    lines = [f"{len(found)} pair(s) with undefined metrics (a constant source; for TC, no usable box), left out "
             "of those metrics' means (n_<metric>):"]  # fmt: skip
    for pid, by_metric in list(found.items())[:max_pairs]:
        parts = [k if len(who) == len(methods) else f"{k} ({', '.join(who)})" for k, who in by_metric.items()]
        lines.append(f"  {pid}: {', '.join(parts)}")
    if len(found) > max_pairs:
        lines.append(f"  ... and {len(found) - max_pairs} more (see the output file)")
    return lines


def _check_baselines(baselines: Iterable[str]) -> list[str]:
    base = list(dict.fromkeys(baselines))
    unknown = [b for b in base if b not in BASELINES]
    if unknown:
        raise EntityLabelError(f"unknown baseline {unknown[0]!r}", hint=f"choose from {', '.join(BASELINES)}")
    return base


def _match_method(
    fused_dir: str | Path | None, manifest: PairManifest, base: list[str], method: str | None
) -> tuple[str | None, dict[str, Path | str]]:
    """The fused method's table name (None: baselines only) and its pair_id -> image (or error) matches."""
    if fused_dir is None:
        if not base:
            raise EntityLabelError("nothing to evaluate: no fused folder and no baseline")
        return None, {}
    folder = Path(fused_dir)
    if not folder.is_dir():
        raise EntityLabelError("fused-image folder not found", path=folder)
    method = method or folder.resolve().name or "fused"
    if method in {name for name, _ in BASELINES.values()}:
        raise EntityLabelError(f"method name {method!r} is a baseline name", hint="pass another --name")
    matches = match_fused(manifest, folder)
    if not any(isinstance(v, Path) for v in matches.values()):
        raise EntityLabelError(
            f"no fused image matches any of the {len(manifest)} pairs",
            path=folder,
            hint="name fused files <pair_id>.png or after the source file stem",
        )
    return method, matches


def _score_pairs(
    manifest: PairManifest,
    matches: dict[str, Path | str],
    method: str | None,
    base: list[str],
    mi_log_base: float | str,
    workers: int,
    progress: Any,
    boxes: PairBoxes | None = None,
) -> list[list[dict]]:
    """The rows of every pair in pair-id order (threads when `workers` > 1), advancing `progress`."""
    records = manifest.df.sort_values("pair_id", kind="stable").to_dict("records")
    task = progress.add_task("evaluate", total=len(records)) if progress is not None else None

    def work(rec: dict[str, Any]) -> list[dict]:
        rows = _score_pair(manifest, rec, matches.get(rec["pair_id"]), method, base, mi_log_base, boxes)
        if progress is not None:
            progress.advance(task)
        return rows

    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(work, records))
    return [work(r) for r in records]


def _long_table(per_pair: list[list[dict]], methods: list[str], metrics: list[str]) -> pd.DataFrame:
    """Image rows sorted by method order then pair id, then one mean row per method; after the metric columns,
    one `n_<metric>` count per metric (image rows: 1 when the metric is defined for that pair)."""
    order = {m: i for i, m in enumerate(methods)}
    images = pd.DataFrame([r for rows in per_pair for r in rows], columns=[*ID_COLUMNS, *metrics])
    images = images.sort_values(["method", "pair_id"], key=lambda s: s.map(order) if s.name == "method" else s)
    names = list(metrics)
    for k in names:
        images[COUNT_PREFIX + k] = ((images["status"] == "ok") & images[k].notna()).astype("int64")
    columns = [*ID_COLUMNS, *names, *(COUNT_PREFIX + k for k in names)]
    table = pd.concat([images, pd.DataFrame(_mean_rows(images[[*ID_COLUMNS, *names]], methods), columns=columns)],
                      ignore_index=True)  # fmt: skip
    for c in ("n", *(COUNT_PREFIX + k for k in names)):
        table[c] = table[c].astype("int64")
    return table


def evaluate(
    fused_dir: str | Path | None,
    pairs_manifest: str | Path | PairManifest,
    out_file: str | Path | None = None,
    baselines: Iterable[str] = ("mean", "max"),
    *,
    method: str | None = None,
    root: str | Path | None = None,
    mi_log_base: float | str = "e",
    workers: int = 1,
    progress: Any = None,
    annotations: Any = None,
) -> pd.DataFrame:
    """Score the fused images in `fused_dir` (None: baselines only) on every pair of the manifest.

    `annotations` (an `Annotations`, or a folder/file `load_annotations` reads) adds the region metrics TC and
    Qabf_bg after the ten (see `region_metrics`).

    Returns the long table (columns `ID_COLUMNS` + `METRICS`): image rows sorted by method order then
    pair id, then one "mean" row per method. `method` names the fused images in tables (default: the
    folder name). `out_file` (*.csv or *.json) gets the same table, written deterministically.
    """
    if workers < 1:
        raise EntityLabelError(f"--workers: must be at least 1, got {workers}")
    out_path = _check_out(out_file)
    if out_path is not None:  # fail before scoring, not after minutes of work
        ensure_writable_dir(out_path.parent)
    base = _check_baselines(baselines)
    manifest = pairs_manifest if isinstance(pairs_manifest, PairManifest) else load_pairs(pairs_manifest, root)
    if len(manifest) == 0:
        raise EntityLabelError("pair manifest has no pairs", path=pairs_manifest)
    boxes = load_region_boxes(annotations, manifest) if annotations is not None else None
    method, matches = _match_method(fused_dir, manifest, base, method)
    per_pair = _score_pairs(manifest, matches, method, base, mi_log_base, workers, progress, boxes)
    metrics = [*METRICS, *(REGION_METRICS if boxes is not None else ())]
    table = _long_table(per_pair, ([method] if method else []) + [BASELINES[b][0] for b in base], metrics)
    if out_path is not None:
        write_table(table, out_path, mi_log_base=mi_log_base)
    return table


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """The mean rows as a methods x metrics frame (index = method, plus the column `n` and the `n_<metric>`)."""
    means = table[table["kind"] == "mean"].set_index("method")
    names = metric_columns(table)
    return means[["n", *names, *(COUNT_PREFIX + k for k in names)]]


def _round(v: Any) -> Any:
    """6 significant digits for floats (stable text), None for NaN."""
    if isinstance(v, float | np.floating):
        return None if math.isnan(v) else float(f"{float(v):.6g}")
    if isinstance(v, np.integer):
        return int(v)
    return v


def write_table(table: pd.DataFrame, path: str | Path, *, mi_log_base: float | str = "e") -> Path:
    """Write the evaluation table as CSV (one row per table row) or JSON (summary + images), atomically."""
    p = _check_out(path)
    assert p is not None
    names = metric_columns(table)
    cols = [*ID_COLUMNS, *names, *(COUNT_PREFIX + k for k in names if COUNT_PREFIX + k in table.columns)]
    if p.suffix.lower() == ".csv":
        text = table[cols].to_csv(index=False, float_format="%.6g", lineterminator="\n")
    else:
        recs = [{c: _round(r[c]) for c in cols} for r in table[cols].to_dict("records")]
        doc = {
            "metrics": names,
            "higher_is_better": {k: BETTER[k] for k in names},
            "settings": {"mi_log_base": str(mi_log_base), "gray": "ITU-R 601 luma (PIL 'L')"},
            "summary": [r for r in recs if r["kind"] == "mean"],
            "undefined": undefined_metrics(table),
            "images": [r for r in recs if r["kind"] == "image"],
        }
        text = dumps_json(doc)
    try:
        atomic_write_text(p, text)
    except OSError as e:
        raise EntityLabelError(f"cannot write the table ({e.strerror or e})", path=p) from None
    return p


def print_table(table: pd.DataFrame, console: Any, *, max_problems: int = 10) -> None:
    """Rich table: rows = methods, columns = metric means (best per column in bold), then problems."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    summary = summarize(table)
    names = metric_columns(table)
    higher = {m: BETTER[m] for m in names}
    t = Table(title="Fusion metrics (mean over pairs scored by every method)", box=box.SIMPLE_HEAD)
    t.add_column("method")
    t.add_column("n", justify="right")
    for m in names:
        t.add_column(f"{m} {'↑' if higher[m] else '↓'}", justify="right")
    best = {}
    for m in names:
        col = summary[m].dropna()
        if len(col):
            best[m] = col.max() if higher[m] else col.min()
    for name, row in summary.iterrows():
        cells = []
        for m in names:
            v, k = row[m], int(row[COUNT_PREFIX + m])
            text = "—" if pd.isna(v) else f"{v:.{5 if m == 'Nabf' else 4}f}"
            text += f" (n={k})" if k != int(row["n"]) else ""  # a mean of fewer pairs says so
            cells.append(Text(text, style="bold" if m in best and v == best[m] else ""))
        t.add_row(Text(str(name)), str(int(row["n"])), *cells)  # Text: a method name is no markup or emoji code
    if console.is_terminal:
        console.print(t)
    else:  # pipes and logs get the full table instead of an 80-column squeeze
        from rich.console import Console

        Console(file=console.file, width=max(console.width, 140), no_color=True).print(t)
    for line in undefined_note(table, max_pairs=max_problems):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    bad = table[(table["kind"] == "image") & (table["status"] != "ok")]
    if len(bad):
        console.print(f"[yellow]{len(bad)} image row(s) not scored[/]:", markup=True)
        for r in bad.head(max_problems).itertuples():
            console.print(f"  {r.method} {r.pair_id}: {r.error}", markup=False, highlight=False)
        if len(bad) > max_problems:
            console.print(f"  ... and {len(bad) - max_problems} more (see the output file)")
