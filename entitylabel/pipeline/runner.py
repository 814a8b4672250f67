"""`run_pipeline`: discover -> caption -> extract -> export -> report, skipping what is already up to date.

Each stage that finishes writes `stages/<stage>.json` in the run folder: the package version, the stage's
settings, the content hashes of its inputs and the stamps of its outputs. A rerun skips a stage when the settings and
input hashes it would use now equal the recorded ones and its recorded outputs are still there unchanged.
Inputs are the previous stages' outputs (by content), so a change flows down exactly as far as it changes
something: a new vocabulary changes extract's inputs, extract's new entities change export's and the
report's inputs, while caption (which never reads the vocabulary) is skipped.

Settings are the stage's section of the YAML, fingerprinted as `entitylabel/settings.py` declares (every
setting except those that only change speed: batch sizes, devices, workers). Inputs, per stage:
- discover: the dataset folder's file listing (path, size, mtime; discover itself hashes the image bytes);
- caption: the pairs (ids and image content hashes, not where the dataset lives); the external caption
  file's bytes are part of its settings;
- extract: caption files, pairs (the vocabulary file's bytes are part of its settings);
- export: pairs, captions, entities;
- report: pairs, captions, entities, the exported split table (fused images by names, sizes and mtimes).
Outputs are checked by names, sizes and mtimes, never by reading them again: a no-op run reads no image
bytes. Each stage owns its outputs: an export owns its config's `data/<config>/` and `tables/<config>/`
(and needs the shared dataset card), so pipelines that publish several configs into one folder do not
mark each other's export as changed.
The package version is recorded, not compared: after upgrading, `--force STAGE` redoes a stage.

The run folder is locked while a run works (`lock.py`); temporaries that a killed run left behind are
removed at the start. Captions made by a VLM are never deleted by a settings change: a rerun that would
replace them stops and asks for `--force caption`.

A failing stage raises `StageFailed` (one line naming the stage and the cause); its manifest is removed
before it starts, so it can never be mistaken for done, and earlier stages' outputs are left alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import shutil
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__, settings
from ..errors import EntityLabelError
from ..io import (
    atomic_write_json,
    atomic_write_text,
    clean_stale_temps,
    dumps_json,
    hash_tree,
    sha256_text,
    stamp_tree,
    write_error,
)
from ..settings import CaptionSettings, DiscoverSettings, ExportSettings, ExtractSettings, ReportSettings
from .config import STAGES, CaptionConfig, PipelineConfig, load_config
from .lock import run_lock

__all__ = ["StageFailed", "hash_tree", "manifest_path", "run_pipeline"]

MANIFEST_DIR = "stages"
RUN_LOG = "run.log.jsonl"
SAMPLE_MARKER = "sample.json"


class StageFailed(EntityLabelError):
    """A stage raised; earlier stages' outputs are intact."""

    def __init__(self, stage: str, message: str, *, hint: str | None = None) -> None:
        self.stage = stage
        super().__init__(f"stage {stage} failed: {message}", hint=hint)


@dataclass
class StageOutcome:
    stage: str
    status: str  # "ran", "skipped" (up to date), "not run" (outside --from/--until), "disabled"
    seconds: float = 0.0
    reason: str = ""


@dataclass
class PipelineResult:
    run_dir: Path
    stages: list[StageOutcome] = field(default_factory=list)
    report: Path | None = None
    export: Path | None = None
    notes: list[str] = field(default_factory=list)

    def status(self, stage: str) -> str:
        return next(s.status for s in self.stages if s.stage == stage)

    @property
    def ran(self) -> list[str]:
        return [s.stage for s in self.stages if s.status == "ran"]

    def print_summary(self, console: Any) -> None:
        from rich.markup import escape

        for s in self.stages:
            extra = f" ({s.reason})" if s.reason else ""
            took = f" in {s.seconds:.1f}s" if s.status == "ran" else ""
            console.print(f"  {s.stage:<9} {s.status}{took}{extra}", highlight=False)
        for note in self.notes:
            console.print(f"[bold yellow]note:[/] {escape(note)}", markup=True, highlight=False)
        if self.export is not None:
            console.print(f"dataset: {self.export}", highlight=False)
        if self.report is not None:
            console.print(f"review page: {self.report}", highlight=False)


# ---- hashing ------------------------------------------------------------------------------------------


def listing_hash(root: Path) -> str:
    """Cheap fingerprint of a dataset folder: every file's relative path, size and mtime."""
    lines = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            try:
                st = p.stat()
            except OSError:
                continue
            lines.append(f"{p.relative_to(root).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}")
    return sha256_text("\n".join(lines))


def pairs_key(pairs_path: Path) -> str | None:
    """Hash of the pair table's rows (ids, splits, paths, sizes, image hashes), not of where the dataset lives."""
    if not pairs_path.is_file():
        return None
    import pandas as pd

    df = pd.read_parquet(pairs_path).sort_values("pair_id", kind="stable")
    return sha256_text(df.astype(str).to_csv(index=False, sep="\t", lineterminator="\n"))


# ---- stage context ------------------------------------------------------------------------------------


@dataclass
class _Ctx:
    cfg: PipelineConfig
    run_dir: Path
    progress: Any
    log: Callable[[str], None]
    notes: list[str] = field(default_factory=list)
    caption_plan: dict[str, Any] | None = None

    @property
    def pairs(self) -> Path:
        return self.run_dir / "pairs.parquet"

    @property
    def captions(self) -> Path:
        return self.run_dir / "captions"

    @property
    def entities(self) -> Path:
        return self.run_dir / "entities"

    @property
    def report(self) -> Path:
        return self.run_dir / "report.html"

    @property
    def data_root(self) -> Path:
        cfg = self.cfg
        return cfg.data.root if cfg.data.root is not None else self.run_dir / "sample"


# ---- the stages ---------------------------------------------------------------------------------------


def _sample(ctx: _Ctx) -> None:
    """Generate the synthetic sample (once; a marker says which one is there)."""
    from ..sample import make_sample

    dest = ctx.data_root
    want = {"n": ctx.cfg.data.sample}
    marker = dest / SAMPLE_MARKER
    try:
        have = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        have = None
    if have != want:
        shutil.rmtree(dest, ignore_errors=True)
        make_sample(dest, n=int(ctx.cfg.data.sample or 8))
        atomic_write_json(marker, want)


def _discover_settings(ctx: _Ctx) -> Any:
    """data.* as discover uses it: the dataset folder (or the generated sample) and its name."""
    return dataclasses.replace(ctx.cfg.data, root=ctx.data_root.resolve(), dataset=_dataset_name(ctx))


def discover_inputs(ctx: _Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    if ctx.cfg.data.root is None:
        _sample(ctx)
    return settings.fingerprint(_discover_settings(ctx)), {"listing": listing_hash(ctx.data_root.resolve())}


def _dataset_name(ctx: _Ctx) -> str | None:
    """data.dataset; a generated sample is named after the pipeline; None lets discover name real data."""
    d = ctx.cfg.data
    return d.dataset or (ctx.cfg.name if d.root is None and d.sample else None)


def discover_run(ctx: _Ctx) -> None:
    from ..discover import run_discover

    kw = settings.kwargs(_discover_settings(ctx), DiscoverSettings)
    result = run_discover(ctx.data_root, ctx.run_dir, **kw, progress=ctx.progress)
    if len(result.pairs) == 0:
        raise EntityLabelError("no IR/VIS pairs found", path=ctx.data_root, hint="check data.root / --data and layout")


def _caption_plan(ctx: _Ctx) -> dict[str, Any]:
    """Decide where captions come from (resolving caption.use: auto) and what notice the page shows."""
    if ctx.caption_plan is not None:
        return ctx.caption_plan
    c, cfg = ctx.cfg.caption, ctx.cfg
    external = c.external
    name = c.external_name
    if external is None and cfg.data.root is None and cfg.data.sample:
        external = ctx.data_root / "captions.jsonl"
        name = name or "synthetic-sample"
    mode, why = c.use, ""
    if mode == "auto":
        from ..caption.hub import resolve_model

        try:
            resolve_model(str(c.model), c.revision)
            mode = "vlm"
        except EntityLabelError as e:
            if external is None:
                raise EntityLabelError(
                    f"caption.use is auto, but {str(e).split(' — ')[0]} and there is no "
                    "caption.external file for this data",
                    hint="pass --model DIR (a local model folder) or --external FILE (captions made elsewhere)",
                ) from None
            mode = "external"
            why = f" The VLM {c.model} was not used: {str(e).split(' — ')[0]}."  # the message, not its hint
    notice = ""
    if mode == "external":
        assert external is not None
        name = name or external.stem
        if cfg.data.root is None and cfg.data.sample and external == ctx.data_root / "captions.jsonl":
            notice = (
                f"Captions are NOT from a VLM: they come from the synthetic sample's caption file "
                f"(external:{name}), written from the drawing recipe.{why}"
            )
        else:
            notice = f"Captions come from the external file {external.name} (external:{name}), not from a VLM run.{why}"
    ctx.caption_plan = {"mode": mode, "external": external, "name": name, "notice": notice.strip()}
    return ctx.caption_plan


def _caption_settings(ctx: _Ctx) -> CaptionConfig:
    """caption.* as the caption stage will use it: only the chosen source's settings are kept."""
    c, plan = ctx.cfg.caption, _caption_plan(ctx)
    if plan["mode"] == "external":  # the VLM settings play no part
        return CaptionConfig(use="external", external=plan["external"], external_name=plan["name"],
                             shard_size=c.shard_size)  # fmt: skip
    return dataclasses.replace(c, use="vlm", external=None, external_name=None)


def caption_inputs(ctx: _Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    return settings.fingerprint(_caption_settings(ctx)), {"pairs": pairs_key(ctx.pairs)}


def _vlm_shards(folder: Path) -> list[Path]:
    """Caption shards a VLM made (external ones are named shard-external-*)."""
    return [p for p in sorted(folder.glob("shard-*.parquet")) if not p.name.startswith("shard-external-")]


def caption_run(ctx: _Ctx) -> None:
    from ..caption.stage import run_caption

    plan = _caption_plan(ctx)
    kw = settings.kwargs(_caption_settings(ctx), CaptionSettings)
    result = run_caption(ctx.pairs, ctx.captions, **kw, progress=ctx.progress)
    note = result.problem_note()  # external rows that were not imported, each reason counted apart
    if note:
        ctx.notes.append(note)
    if plan["notice"]:
        ctx.notes.append(plan["notice"])


def extract_inputs(ctx: _Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    return settings.fingerprint(ctx.cfg.extract), {"pairs": pairs_key(ctx.pairs), "captions": hash_tree(ctx.captions)}


def extract_run(ctx: _Ctx) -> None:
    from ..extract.stage import run_extract

    e = ctx.cfg.extract
    kw = settings.kwargs(e, ExtractSettings)
    run_extract(ctx.captions, e.vocab, ctx.run_dir, ctx.pairs, **kw, progress=ctx.progress)


def _export_settings(ctx: _Ctx) -> Any:
    return dataclasses.replace(ctx.cfg.export, config=ctx.cfg.export_config, out=ctx.cfg.export_dir)


def export_inputs(ctx: _Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    inputs = {"pairs": pairs_key(ctx.pairs), "captions": hash_tree(ctx.captions), "entities": hash_tree(ctx.entities)}
    return settings.fingerprint(_export_settings(ctx)), inputs


def export_run(ctx: _Ctx) -> None:
    from ..export.stage import run_export

    kw = settings.kwargs(ctx.cfg.export, ExportSettings)
    out, config = ctx.cfg.export_dir, ctx.cfg.export_config
    entities = None if kw.get("annotations") is not None else ctx.entities  # export.annotations: labels from boxes
    run_export(ctx.pairs, out, config, captions=ctx.captions, entities=entities, overwrite=True, **kw,
               progress=ctx.progress)  # fmt: skip


def _export_outputs(ctx: _Ctx) -> list[Path]:
    """What one export config owns in a dataset folder that other configs share."""
    from ..export import layout

    out, config = ctx.cfg.export_dir, ctx.cfg.export_config
    return [layout.data_dir(out, config), layout.tables_dir(out, config)]


def _caption_notice(ctx: _Ctx) -> str:
    m = _read_manifest(ctx.run_dir, "caption")
    return str((m or {}).get("notice", ""))


def report_inputs(ctx: _Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    fp = {**settings.fingerprint(ctx.cfg.report), "notice": _caption_notice(ctx)}
    exported = ctx.cfg.export_dir / "tables" / ctx.cfg.export_config / "pairs.parquet"
    inputs = {
        "pairs": hash_tree(ctx.pairs),
        "captions": hash_tree(ctx.captions),
        "entities": hash_tree(ctx.entities),
        "export_splits": hash_tree(exported),
    }
    return fp, inputs


def report_run(ctx: _Ctx) -> None:
    from ..report import build_report

    kw = settings.kwargs(ctx.cfg.report, ReportSettings)
    build_report(
        ctx.run_dir,
        ctx.report,
        **kw,
        export_dir=ctx.cfg.export_dir,
        notice=_caption_notice(ctx) or None,
        title=f"entitylabel review · {ctx.cfg.name}",
        progress=ctx.progress,
    )


@dataclass(frozen=True)
class _Stage:
    name: str
    inputs: Callable[[_Ctx], tuple[dict[str, Any], dict[str, Any]]]
    run: Callable[[_Ctx], None]
    outputs: Callable[[_Ctx], list[Path]]  # what the stage owns: checked by names, sizes and mtimes
    needs: Callable[[_Ctx], list[Path]]  # what must exist when earlier stages are not run (--from)
    shared: Callable[[_Ctx], list[Path]] = lambda c: []  # written by it but shared (the card): must exist


_STAGES = {
    "discover": _Stage(
        "discover",
        discover_inputs,
        discover_run,
        lambda c: [c.pairs, c.run_dir / "problems.parquet", c.run_dir / "discover.json"],
        lambda c: [],
    ),
    "caption": _Stage("caption", caption_inputs, caption_run, lambda c: [c.captions], lambda c: [c.pairs]),
    "extract": _Stage("extract", extract_inputs, extract_run, lambda c: [c.entities], lambda c: [c.pairs, c.captions]),
    "export": _Stage(
        "export",
        export_inputs,
        export_run,
        _export_outputs,
        lambda c: [c.pairs, c.captions, c.entities],
        lambda c: [c.cfg.export_dir / "README.md"],
    ),
    "report": _Stage("report", report_inputs, report_run, lambda c: [c.report], lambda c: [c.pairs]),
}
assert tuple(_STAGES) == STAGES


# ---- manifests ----------------------------------------------------------------------------------------


def manifest_path(run_dir: Path, stage: str) -> Path:
    return run_dir / MANIFEST_DIR / f"{stage}.json"


def _read_manifest(run_dir: Path, stage: str) -> dict[str, Any] | None:
    try:
        return json.loads(manifest_path(run_dir, stage).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _fingerprint(settings: dict[str, Any], inputs: dict[str, Any]) -> str:
    return sha256_text(dumps_json({"settings": settings, "inputs": inputs}))


def _outputs(ctx: _Ctx, stage: _Stage) -> dict[str, str | None]:
    """Stamps (names, sizes, mtimes) of what the stage owns: no bytes are read, not even of big exports."""
    stamps = {_rel(p, ctx.run_dir): stamp_tree(p) for p in stage.outputs(ctx)}
    return {**stamps, **{_rel(p, ctx.run_dir): "exists" if p.exists() else None for p in stage.shared(ctx)}}


def _rel(p: Path, base: Path) -> str:
    try:
        return p.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(p.resolve())


def _why_stale(old: dict[str, Any] | None, fp: dict, inputs: dict, ctx: _Ctx, stage: _Stage) -> str | None:
    """None when the stage is up to date, else a short reason."""
    if old is None:
        return "never run"
    if old.get("settings") != json.loads(dumps_json(fp)):
        changed = sorted(
            k
            for k in set(fp) | set(old.get("settings", {}))
            if json.loads(dumps_json(fp.get(k))) != old.get("settings", {}).get(k)
        )
        return "settings changed: " + ", ".join(changed)
    if old.get("inputs") != inputs:
        changed = sorted(k for k in set(inputs) | set(old.get("inputs", {})) if inputs.get(k) != old["inputs"].get(k))
        return "inputs changed: " + ", ".join(changed)
    now = _outputs(ctx, stage)
    if any(v is None for v in now.values()):
        return "outputs missing"
    if old.get("outputs") != now:
        return "outputs changed on disk"
    return None


def _write_manifest(ctx: _Ctx, stage: _Stage, fp: dict, inputs: dict) -> None:
    extra = {"notice": _caption_plan(ctx)["notice"]} if stage.name == "caption" else {}
    atomic_write_json(
        manifest_path(ctx.run_dir, stage.name),
        {
            **extra,
            "stage": stage.name,
            "entitylabel_version": __version__,
            "settings": fp,
            "inputs": inputs,
            "outputs": _outputs(ctx, stage),
            "fingerprint": _fingerprint(fp, inputs),
        },
    )


def _log_event(run_dir: Path, event: dict[str, Any]) -> None:
    """Wall-clock events go to run.log.jsonl (not a data file: times differ run to run).

    Best effort: a full disk must not turn the stage's own one-line error into a traceback about the log.
    """
    event = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **event}
    try:
        with open(run_dir / RUN_LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(event, sort_keys=True, default=str) + "\n")
    except OSError:
        pass


# ---- the runner ---------------------------------------------------------------------------------------


def _stage_name(name: str | None, what: str) -> str | None:
    if name is None:
        return None
    if name not in STAGES:
        raise EntityLabelError(f"{what} {name!r} is not a stage", hint=f"stages: {', '.join(STAGES)}")
    return name


def run_pipeline(
    config_path: str | Path | PipelineConfig,
    data: str | Path | None = None,
    model: str | None = None,
    out: str | Path | None = None,
    from_stage: str | None = None,
    until_stage: str | None = None,
    force: Iterable[str] = (),
    *,
    external: str | Path | None = None,
    progress: Any = None,
    log: Callable[[str], None] | None = None,
) -> PipelineResult:
    """Run the pipeline described by a YAML file (or a loaded config); see the module docstring.

    `from_stage`: start there (earlier stages are neither run nor checked; their outputs must exist) and redo
    it; `until_stage`: stop after it; `force`: stage names to redo even when up to date ("all" for every one).
    A forced stage's dependents rerun only when its outputs changed. `external`: a caption file to use
    instead of the VLM. `log` gets one line as each stage starts; `progress` is a rich Progress.
    """
    cfg = (
        config_path
        if isinstance(config_path, PipelineConfig)
        else load_config(config_path, data=data, model=model, out=out, external=external)
    )
    first = _stage_name(from_stage, "--from") or STAGES[0]
    last = _stage_name(until_stage, "--until") or STAGES[-1]
    forced = set()
    for f in force:
        forced |= set(STAGES) if f == "all" else {_stage_name(f, "--force")}
    if STAGES.index(first) > STAGES.index(last):
        raise EntityLabelError(f"--from {first} comes after --until {last}")
    if from_stage is not None:
        forced.add(first)

    from ..io import ensure_writable_dir

    run_dir = ensure_writable_dir(cfg.run_dir)
    ctx = _Ctx(cfg, run_dir, progress, log or (lambda _m: None))
    active = STAGES[STAGES.index(first) : STAGES.index(last) + 1]
    for p in _STAGES[first].needs(ctx):
        if not p.exists():
            raise EntityLabelError(
                f"--from {first}: {_rel(p, run_dir)} is missing",
                path=run_dir,
                hint="run the earlier stages first (without --from)",
            )
    with run_lock(run_dir):
        for folder in dict.fromkeys([run_dir, cfg.export_dir]):  # what killed runs left: dead owners only
            clean_stale_temps(folder)
        return _run_stages(ctx, active, forced)


def _run_stages(ctx: _Ctx, active: tuple[str, ...], forced: set[str]) -> PipelineResult:
    cfg, run_dir = ctx.cfg, ctx.run_dir
    result = PipelineResult(run_dir=run_dir)
    _log_event(run_dir, {"event": "start", "config": str(cfg.path), "stages": list(active), "force": sorted(forced)})
    for name in STAGES:
        if name not in active:
            result.stages.append(StageOutcome(name, "not run", reason="outside --from/--until"))
        elif name == "report" and not cfg.report.enabled:
            result.stages.append(StageOutcome(name, "disabled", reason="report.enabled is false"))
        else:
            result.stages.append(_run_stage(ctx, _STAGES[name], name in forced, result))
    if (run_dir / MANIFEST_DIR / "export.json").is_file() and cfg.export_dir.is_dir():
        result.export = cfg.export_dir
    if ctx.report.is_file() and cfg.report.enabled:
        result.report = ctx.report.resolve()
    notice = _caption_notice(ctx)
    result.notes = list(dict.fromkeys([*ctx.notes, *([notice] if notice else [])]))
    _log_event(run_dir, {"event": "end", "ran": result.ran})
    return result


def _run_stage(ctx: _Ctx, stage: _Stage, forced: bool, result: PipelineResult) -> StageOutcome:
    """Skip the stage when up to date, else run it and record its manifest."""
    name, run_dir = stage.name, ctx.run_dir
    try:
        fp, inputs = stage.inputs(ctx)
        fp = json.loads(dumps_json(fp))
        old = _read_manifest(run_dir, name)
        why = "forced" if forced else _why_stale(old, fp, inputs, ctx, stage)
        if why is None:
            _log_event(run_dir, {"event": "skip", "stage": name})
            return StageOutcome(name, "skipped", reason="up to date")
        if name == "caption":
            _prepare_captions(ctx, old, fp, forced)
    except EntityLabelError as e:
        raise StageFailed(name, str(e), hint=_kept_hint(result, run_dir)) from None
    ctx.log(f"{name}: running ({why})")
    manifest_path(run_dir, name).unlink(missing_ok=True)  # a half-done stage must never look finished
    t0 = time.perf_counter()
    with _stage_errors(ctx, name, result):
        stage.run(ctx)
        fp, inputs = stage.inputs(ctx)  # discover may have generated inputs; hash what was used
        _write_manifest(ctx, stage, json.loads(dumps_json(fp)), inputs)
    seconds = time.perf_counter() - t0
    _log_event(run_dir, {"event": "ran", "stage": name, "seconds": round(seconds, 3), "why": why})
    return StageOutcome(name, "ran", seconds, why)


def _prepare_captions(ctx: _Ctx, old: dict[str, Any] | None, fp: dict[str, Any], forced: bool) -> None:
    """Before captioning with changed settings: never drop VLM captions unasked; drop cheap imported ones.

    VLM shards stay when the model is the same (the caption stage redoes only the shards whose settings
    changed); another source (another model, or an external file) replacing them needs `--force caption`.
    Imported (external) shards are rebuilt from their file, so they are removed rather than mixed in.
    """
    folder = ctx.captions
    if old is None or not folder.is_dir() or old.get("settings") == fp:
        return
    was = old.get("settings", {})
    same_vlm = fp.get("use") == "vlm" and (was.get("model"), was.get("revision")) == (fp["model"], fp["revision"])
    vlm = _vlm_shards(folder)
    if vlm and not same_vlm and not forced:
        made = f"the VLM {was['model']}" if was.get("model") else "a VLM"
        raise EntityLabelError(
            f"holds {len(vlm)} caption shard(s) made by {made}; captioning from "
            f"{'the VLM ' + str(fp['model']) if fp.get('use') == 'vlm' else 'an external file'} would replace them",
            path=folder,
            hint="pass --force caption to replace them, or --out another run folder to keep both",
        )
    if vlm and not same_vlm:
        shutil.rmtree(folder)  # forced: the user asked for the replacement
        return
    for f in folder.iterdir():  # imported captions of another file must not linger beside the new ones
        if f.name.startswith(("shard-external-", "external-")):
            f.unlink()


@contextlib.contextmanager
def _stage_errors(ctx: _Ctx, name: str, result: PipelineResult) -> Iterator[None]:
    """Every failure of a running stage becomes one `StageFailed` line; earlier outputs are untouched."""
    run_dir = ctx.run_dir
    try:
        yield
    except KeyboardInterrupt:
        _log_event(run_dir, {"event": "interrupted", "stage": name})
        raise
    except EntityLabelError as e:
        _log_event(run_dir, {"event": "failed", "stage": name, "error": str(e)})
        raise StageFailed(name, str(e), hint=_kept_hint(result, run_dir)) from None
    except OSError as e:
        if _is_write_error(e):  # disk full, read-only: saving a traceback would fail the same way
            _log_event(run_dir, {"event": "failed", "stage": name, "error": repr(e)})
            where = Path(e.filename) if e.filename else run_dir
            raise StageFailed(name, str(write_error(e, where)), hint=_kept_hint(result, run_dir)) from None
        raise _unexpected(run_dir, name, e, result) from None
    except Exception as e:  # a bug or an unexpected library error: keep the traceback in the run folder
        raise _unexpected(run_dir, name, e, result) from None


def _is_write_error(e: OSError) -> bool:
    return e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG) or "No space left" in str(e)


def _unexpected(run_dir: Path, name: str, e: Exception, result: PipelineResult) -> StageFailed:
    """The one-line failure of an unexpected error; the traceback goes to stages/<stage>.error.txt if it can."""
    tb = run_dir / MANIFEST_DIR / f"{name}.error.txt"
    _log_event(run_dir, {"event": "failed", "stage": name, "error": repr(e)})
    try:
        atomic_write_text(tb, traceback.format_exc())
        saved = f"traceback in {tb}; "
    except (OSError, EntityLabelError):
        saved = "the traceback could not be saved either; "
    return StageFailed(name, f"{type(e).__name__}: {e}", hint=saved + _kept_hint(result, run_dir))


def _kept_hint(result: PipelineResult, run_dir: Path) -> str:
    done = [s.stage for s in result.stages if s.status in ("ran", "skipped")]
    kept = f"outputs of {', '.join(done)} are kept in {run_dir}" if done else f"nothing was changed in {run_dir}"
    return f"{kept}; fix the cause and rerun (finished stages are skipped)"
