"""`run_pipeline`: discover -> caption -> extract -> export -> report, skipping what is already up to date.

Each stage that finishes writes `stages/<stage>.json` in the run folder: the package version, the stage's
settings, the content hashes of its inputs and of its outputs. A rerun skips a stage when the settings and
input hashes it would use now equal the recorded ones and its recorded outputs are still there unchanged.
Inputs are the previous stages' outputs (by content), so a change flows down exactly as far as it changes
something: a new vocabulary changes extract's inputs, extract's new entities change export's and the
report's inputs, while caption (which never reads the vocabulary) is skipped.

What counts as an input or a setting, per stage:
- discover: the dataset folder's file listing (path, size, mtime; discover itself hashes the image bytes),
  root, layout, dataset name, split filter;
- caption: the pairs (ids and image content hashes, not where the dataset lives), the model, revision,
  prompt texts, modalities, decoding limits, dtype (batch size and device only change speed), or the
  external caption file's bytes;
- extract: caption files, vocabulary file bytes, pairs, denoising settings (n_process only changes speed);
- export: pairs, captions, entities, config name and export settings;
- report: pairs, captions, entities, fused images, page settings.
The package version is recorded, not compared: after upgrading, `--force STAGE` redoes a stage.

A failing stage raises `StageFailed` (one line naming the stage and the cause); its manifest is removed
before it starts, so it can never be mistaken for done, and earlier stages' outputs are left alone.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import EntityLabelError
from ..io import atomic_write_json, atomic_write_text, dumps_json, sha256_file, sha256_text
from .config import STAGES, PipelineConfig, load_config

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
        for s in self.stages:
            extra = f" ({s.reason})" if s.reason else ""
            took = f" in {s.seconds:.1f}s" if s.status == "ran" else ""
            console.print(f"  {s.stage:<9} {s.status}{took}{extra}", highlight=False)
        for note in self.notes:
            console.print(f"[bold yellow]note:[/] {note}", highlight=False)
        if self.export is not None:
            console.print(f"dataset: {self.export}", highlight=False)
        if self.report is not None:
            console.print(f"review page: {self.report}", highlight=False)


# ---- hashing ------------------------------------------------------------------------------------------


def _skip_file(p: Path) -> bool:
    return p.name.startswith(".") or p.name.endswith(".log.jsonl")


def hash_tree(path: Path) -> str | None:
    """Content hash of a file, or of a folder's files (relative names and bytes); None when absent."""
    if path.is_file():
        return sha256_file(path)
    if not path.is_dir():
        return None
    lines = []
    for f in sorted(path.rglob("*")):
        if f.is_file() and not any(part.startswith(".") for part in f.relative_to(path).parts) and not _skip_file(f):
            lines.append(f"{f.relative_to(path).as_posix()}\t{sha256_file(f)}")
    return sha256_text("\n".join(lines))


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


def _call(fn: Callable[..., Any], section: str, known: dict[str, Any], options: dict[str, Any], *args: Any) -> Any:
    """Call a stage function with the YAML's settings, refusing a setting the function does not take."""
    params = inspect.signature(fn).parameters
    for key in options:
        if key not in params or params[key].kind in (inspect.Parameter.VAR_POSITIONAL,):
            ok = ", ".join(n for n, p in params.items() if p.kind == inspect.Parameter.KEYWORD_ONLY)
            raise EntityLabelError(f"{section}.options.{key}: not a setting of {fn.__name__}", hint=f"known: {ok}")
    kwargs = {**known, **options}
    return fn(*args, **kwargs)


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


def discover_inputs(ctx: _Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    d = ctx.cfg.data
    if d.root is None:
        _sample(ctx)
    root = ctx.data_root.resolve()
    settings = {"root": str(root), "layout": d.layout, "dataset": _dataset_name(ctx), "splits": d.splits}
    return settings, {"listing": listing_hash(root)}


def _dataset_name(ctx: _Ctx) -> str | None:
    """data.dataset; a generated sample is named after the pipeline; None lets discover name real data."""
    d = ctx.cfg.data
    return d.dataset or (ctx.cfg.name if d.root is None and d.sample else None)


def discover_run(ctx: _Ctx) -> None:
    from ..discover import run_discover
    from ..io import read_parquet_metadata, write_parquet
    from ..pairs import PAIRS_SCHEMA

    d = ctx.cfg.data
    run_discover(
        ctx.data_root,
        ctx.run_dir,
        layout=d.layout,
        dataset=_dataset_name(ctx),
        workers=d.workers,
        progress=ctx.progress,
    )
    if d.splits:
        import pandas as pd

        df = pd.read_parquet(ctx.pairs)
        have = sorted(set(df["split"]))
        unknown = [s for s in d.splits if s not in have]
        if unknown:
            raise EntityLabelError(f"data.splits: no split named {unknown} in this dataset (it has {have})")
        meta = read_parquet_metadata(ctx.pairs)
        kept = df[df["split"].isin(d.splits)].reset_index(drop=True)
        write_parquet(kept, ctx.pairs, schema=PAIRS_SCHEMA, metadata=meta)
    import pandas as pd

    n = len(pd.read_parquet(ctx.pairs, columns=["pair_id"]))
    if n == 0:
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


def caption_inputs(ctx: _Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    c = ctx.cfg.caption
    plan = _caption_plan(ctx)
    inputs: dict[str, Any] = {"pairs": pairs_key(ctx.pairs)}
    if plan["mode"] == "external":
        settings = {"mode": "external", "external_name": plan["name"], "shard_size": c.shard_size}
        inputs["external"] = sha256_file(plan["external"]) if plan["external"].is_file() else None
        return settings, inputs
    from ..caption.prompts import resolve_prompts

    prompts = {p.id: sha256_text(f"{p.modality}\n{p.text}\n{p.prefix}") for p in resolve_prompts(c.prompts)}
    settings = {
        "mode": "vlm",
        "model": c.model,
        "revision": c.revision,
        "prompts": prompts,
        "modalities": list(c.modalities),
        "max_new_tokens": c.max_new_tokens,
        "dtype": c.dtype,
        "trust_remote_code": c.trust_remote_code,
        "shard_size": c.shard_size,
        "options": c.options,
    }
    return settings, inputs


def caption_run(ctx: _Ctx) -> None:
    from ..caption.stage import run_caption

    c, plan = ctx.cfg.caption, _caption_plan(ctx)
    if plan["mode"] == "external":
        known = {"external": plan["external"], "external_name": plan["name"], "shard_size": c.shard_size}
    else:
        known = {
            "model": c.model,
            "revision": c.revision,
            "modalities": list(c.modalities),
            "prompts": c.prompts,
            "batch_size": c.batch_size,
            "max_new_tokens": c.max_new_tokens,
            "dtype": c.dtype,
            "device": c.device,
            "shard_size": c.shard_size,
            "trust_remote_code": c.trust_remote_code,
            "progress": ctx.progress,
        }
    result = _call(run_caption, "caption", known, c.options, ctx.pairs, ctx.captions)
    ext = getattr(result, "external", None)
    if ext is not None and getattr(ext, "problems", 0):
        ctx.notes.append(f"{ext.problems} external caption row(s) matched no pair: see {ext.problems_path}")
    if plan["notice"]:
        ctx.notes.append(plan["notice"])


def extract_inputs(ctx: _Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    e = ctx.cfg.extract
    settings = {
        "min_support": e.min_support,
        "min_pairs": e.min_pairs,
        "keep_hedged": e.keep_hedged,
        "spacy_model": e.spacy_model,
        "options": e.options,
    }
    inputs = {
        "pairs": pairs_key(ctx.pairs),
        "captions": hash_tree(ctx.captions),
        "vocab": sha256_file(e.vocab) if e.vocab and e.vocab.is_file() else None,
    }
    return settings, inputs


def extract_run(ctx: _Ctx) -> None:
    from ..extract.stage import run_extract

    e = ctx.cfg.extract
    known = {
        "min_support": e.min_support,
        "min_pairs": e.min_pairs,
        "keep_hedged": e.keep_hedged,
        "spacy_model": e.spacy_model,
        "n_process": e.n_process,
        "progress": ctx.progress,
    }
    _call(run_extract, "extract", known, e.options, ctx.captions, e.vocab, ctx.run_dir, ctx.pairs)


def export_inputs(ctx: _Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    x = ctx.cfg.export
    settings = {
        "config": ctx.cfg.export_config,
        "out": str(ctx.cfg.export_dir.resolve()),
        "test_fraction": x.test_fraction,
        "caption_prompt": x.caption_prompt,
        "options": x.options,
    }
    inputs = {"pairs": pairs_key(ctx.pairs), "captions": hash_tree(ctx.captions), "entities": hash_tree(ctx.entities)}
    return settings, inputs


def export_run(ctx: _Ctx) -> None:
    from ..export.stage import run_export

    x = ctx.cfg.export
    known = {
        "captions": ctx.captions,
        "entities": ctx.entities,
        "overwrite": True,
        "test_fraction": x.test_fraction,
        "caption_prompt": x.caption_prompt,
        "progress": ctx.progress,
    }
    _call(run_export, "export", known, x.options, ctx.pairs, ctx.cfg.export_dir, ctx.cfg.export_config)


def _caption_notice(ctx: _Ctx) -> str:
    m = _read_manifest(ctx.run_dir, "caption")
    return str((m or {}).get("notice", ""))


def report_inputs(ctx: _Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    r = ctx.cfg.report
    settings = {
        "page_size": r.page_size,
        "thumb_size": r.thumb_size,
        "notice": _caption_notice(ctx),
        "fused": str(r.fused) if r.fused else None,
    }
    exported = ctx.cfg.export_dir / "tables" / ctx.cfg.export_config / "pairs.parquet"
    inputs = {
        "pairs": hash_tree(ctx.pairs),
        "captions": hash_tree(ctx.captions),
        "entities": hash_tree(ctx.entities),
        "export_splits": hash_tree(exported),
        "fused": hash_tree(r.fused) if r.fused else None,
    }
    return settings, inputs


def report_run(ctx: _Ctx) -> None:
    from ..report import build_report

    r = ctx.cfg.report
    build_report(
        ctx.run_dir,
        ctx.report,
        page_size=r.page_size,
        fused_dir=r.fused,
        thumb_size=r.thumb_size,
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
    outputs: Callable[[_Ctx], list[Path]]
    needs: Callable[[_Ctx], list[Path]]  # what must exist when earlier stages are not run (--from)


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
        "export", export_inputs, export_run, lambda c: [c.cfg.export_dir], lambda c: [c.pairs, c.captions, c.entities]
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
    return {_rel(p, ctx.run_dir): hash_tree(p) for p in stage.outputs(ctx)}


def _rel(p: Path, base: Path) -> str:
    try:
        return p.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(p.resolve())


def _why_stale(old: dict[str, Any] | None, settings: dict, inputs: dict, ctx: _Ctx, stage: _Stage) -> str | None:
    """None when the stage is up to date, else a short reason."""
    if old is None:
        return "never run"
    if old.get("settings") != json.loads(dumps_json(settings)):
        changed = sorted(
            k
            for k in set(settings) | set(old.get("settings", {}))
            if json.loads(dumps_json(settings.get(k))) != old.get("settings", {}).get(k)
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


def _write_manifest(ctx: _Ctx, stage: _Stage, settings: dict, inputs: dict) -> None:
    extra = {"notice": _caption_plan(ctx)["notice"]} if stage.name == "caption" else {}
    atomic_write_json(
        manifest_path(ctx.run_dir, stage.name),
        {
            **extra,
            "stage": stage.name,
            "entitylabel_version": __version__,
            "settings": settings,
            "inputs": inputs,
            "outputs": _outputs(ctx, stage),
            "fingerprint": _fingerprint(settings, inputs),
        },
    )


def _log_event(run_dir: Path, event: dict[str, Any]) -> None:
    """Wall-clock events go to run.log.jsonl (not a data file: times differ run to run)."""
    event = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **event}
    with open(run_dir / RUN_LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps(event, sort_keys=True, default=str) + "\n")


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

    run_dir = cfg.run_dir
    from ..io import ensure_writable_dir

    ensure_writable_dir(run_dir)
    ctx = _Ctx(cfg, run_dir, progress, log or (lambda _m: None))
    result = PipelineResult(run_dir=run_dir)
    active = STAGES[STAGES.index(first) : STAGES.index(last) + 1]
    for p in _STAGES[first].needs(ctx):
        if not p.exists():
            raise EntityLabelError(
                f"--from {first}: {_rel(p, run_dir)} is missing",
                path=run_dir,
                hint="run the earlier stages first (without --from)",
            )
    _log_event(run_dir, {"event": "start", "config": str(cfg.path), "stages": list(active), "force": sorted(forced)})

    for name in STAGES:
        stage = _STAGES[name]
        if name not in active:
            result.stages.append(StageOutcome(name, "not run", reason="outside --from/--until"))
            continue
        if name == "report" and not cfg.report.enabled:
            result.stages.append(StageOutcome(name, "disabled", reason="report.enabled is false"))
            continue
        try:
            settings, inputs = stage.inputs(ctx)
        except EntityLabelError as e:
            raise StageFailed(name, str(e), hint=_kept_hint(result, run_dir)) from None
        settings = json.loads(dumps_json(settings))
        old = _read_manifest(run_dir, name)
        why = "forced" if name in forced else _why_stale(old, settings, inputs, ctx, stage)
        if why is None:
            result.stages.append(StageOutcome(name, "skipped", reason="up to date"))
            _log_event(run_dir, {"event": "skip", "stage": name})
            continue
        ctx.log(f"{name}: running ({why})")
        manifest_path(run_dir, name).unlink(missing_ok=True)  # a half-done stage must never look finished
        if name == "caption" and old is not None and old.get("settings") != settings and ctx.captions.is_dir():
            shutil.rmtree(ctx.captions)  # captions made another way (other model or file) must not linger
        t0 = time.perf_counter()
        try:
            stage.run(ctx)
            settings, inputs = stage.inputs(ctx)  # discover may have generated inputs; hash what was used
            settings = json.loads(dumps_json(settings))
        except KeyboardInterrupt:
            _log_event(run_dir, {"event": "interrupted", "stage": name})
            raise
        except EntityLabelError as e:
            _log_event(run_dir, {"event": "failed", "stage": name, "error": str(e)})
            raise StageFailed(name, str(e), hint=_kept_hint(result, run_dir)) from None
        except Exception as e:  # a bug or an unexpected library error: keep the traceback in the run folder
            tb = run_dir / MANIFEST_DIR / f"{name}.error.txt"
            atomic_write_text(tb, traceback.format_exc())
            _log_event(run_dir, {"event": "failed", "stage": name, "error": repr(e)})
            raise StageFailed(
                name, f"{type(e).__name__}: {e}", hint=f"traceback in {tb}; " + _kept_hint(result, run_dir)
            ) from None
        seconds = time.perf_counter() - t0
        _write_manifest(ctx, stage, settings, inputs)
        _log_event(run_dir, {"event": "ran", "stage": name, "seconds": round(seconds, 3), "why": why})
        result.stages.append(StageOutcome(name, "ran", seconds, why))

    if (run_dir / MANIFEST_DIR / "export.json").is_file() and cfg.export_dir.is_dir():
        result.export = cfg.export_dir
    if ctx.report.is_file() and cfg.report.enabled:
        result.report = ctx.report.resolve()
    notice = _caption_notice(ctx)
    result.notes = list(dict.fromkeys([*ctx.notes, *([notice] if notice else [])]))
    _log_event(run_dir, {"event": "end", "ran": result.ran})
    return result


def _kept_hint(result: PipelineResult, run_dir: Path) -> str:
    done = [s.stage for s in result.stages if s.status in ("ran", "skipped")]
    kept = f"outputs of {', '.join(done)} are kept in {run_dir}" if done else f"nothing was changed in {run_dir}"
    return f"{kept}; fix the cause and rerun (finished stages are skipped)"
