"""The caption stage: `run_caption(manifest, out_dir, model=...)`.

Plans shards over the pair manifest, takes this process's share, skips shards already done the same way,
and captions the rest with a background loader feeding the model. A shard done the same way that holds
failed rows (a corrupt or missing image, an out-of-memory error at batch size 1) is not frozen: a rerun
captions exactly those rows again, keeps the others as they are, and rewrites the shard. Each finished
shard is written atomically with its done marker; wall-clock times go to `caption.log.jsonl`; when every
shard is done the first process writes `caption.json` (settings and counts, no times).
A single-process run holds the folder's lock (`pipeline.lock.folder_lock`): a second caption command into the
same folder fails at once with one line. The processes of one distributed run share the folder by rank, so
there only the external import (rank 0) is locked.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from ..errors import EntityLabelError
from ..io import atomic_write_json, ensure_writable_dir
from ..pairs import PairManifest, load_pairs
from ..pipeline.lock import folder_lock
from .backend import Caption, Captioner, load_captioner
from .distributed import my_share, rank_world, wait_for_everyone
from .external import ExternalResult, import_external
from .loader import Batch, Loaded, Prefetcher, WorkItem
from .prompts import MODALITIES, Prompt, prompts_for, resolve_prompts
from .runlog import RunLog
from .shards import Shard, clean_temp_files, fingerprint, is_done, plan_shards, remove_stale, write_shard

LOG_NAME = "caption.log.jsonl"
SUMMARY_NAME = "caption.json"


@dataclass
class CaptionResult:
    """What one process did. `computed` lists the shards it captioned now, `skipped` those already done,
    `retried` those already done whose failed rows (and only those) it captioned again."""

    out_dir: Path
    rank: int = 0
    world: int = 1
    shards_total: int = 0
    computed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    rows: int = 0
    failed: int = 0
    truncated: int = 0
    external: ExternalResult | None = None

    @property
    def problem_counts(self) -> dict[str, int]:
        """Imported rows that became no caption, per reason (`external.PROBLEM_KINDS`); empty without an import."""
        return dict(self.external.problem_counts) if self.external is not None else {}

    def problem_note(self) -> str | None:
        """The one-line note on those rows for a run summary (each reason counted apart), or None."""
        return self.external.note() if self.external is not None else None

    def print_summary(self, console: Any) -> None:
        who = f" (process {self.rank + 1} of {self.world})" if self.world > 1 else ""
        if self.external is not None:
            e = self.external
            console.print(f"external:{e.name}: {e.matched} of {e.rows} caption rows imported into {e.shards} shard(s)")
            if e.problems:
                console.print(self.problem_note(), markup=False, emoji=False, highlight=False, soft_wrap=True)
        if self.shards_total:
            console.print(
                f"captions{who}: {len(self.computed)} shard(s) captioned, {len(self.skipped)} already done, "
                + (f"{len(self.retried)} retried for failed rows, " if self.retried else "")
                + f"{self.rows} caption(s) written, {self.failed} failed, {self.truncated} truncated -> {self.out_dir}"
            )


def run_caption(
    manifest: str | Path | PairManifest,
    out_dir: str | Path,
    *,
    model: str | None = None,
    revision: str | None = None,
    modalities: Sequence[str] = MODALITIES,
    prompts: Sequence[str] | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 96,
    dtype: str = "auto",
    device: str = "auto",
    shard_size: int = 128,
    force: bool = False,
    trust_remote_code: bool = False,
    external: str | Path | None = None,
    external_name: str | None = None,
    root: str | Path | None = None,
    captioner: Captioner | None = None,
    decode_workers: int = 2,
    progress: Any = None,
) -> CaptionResult:
    """Caption every pair of `manifest` (both modalities by default) into shards under `out_dir`.

    `model` is a Hub id or a local folder; `captioner` passes an already loaded one instead. `external`
    imports a caption file as well (or instead, without a model). Under `accelerate launch`/`torchrun`
    each process takes shards i with i % world == rank.
    """
    pairs = manifest if isinstance(manifest, PairManifest) else load_pairs(manifest, root=root)
    modalities = _checked(modalities, batch_size, shard_size)
    if external is None and model is None and captioner is None:
        raise EntityLabelError("nothing to do: pass --model (a VLM) and/or --external (a caption file)")
    out = ensure_writable_dir(out_dir)
    rank, world = rank_world()
    # one process alone holds the folder; the processes of a distributed run share it by rank
    with folder_lock(out, "caption") if world == 1 else contextlib.nullcontext():
        result = CaptionResult(out, rank, world)
        if external is not None and rank == 0:
            result.external = import_external(
                pairs, external, out, name=external_name, shard_size=shard_size, force=force
            )
        if model is None and captioner is None:
            return result

        tasks = prompts_for(resolve_prompts(prompts), modalities)  # fail on a bad prompt before loading a model
        runlog = RunLog(out / LOG_NAME, rank=rank, world=world)
        if captioner is None:
            assert model is not None
            load = {"revision": revision, "dtype": dtype, "device": device, "trust_remote_code": trust_remote_code}
            captioner = load_captioner(
                model, **load, max_new_tokens=max_new_tokens, batch_size=batch_size, on_event=runlog
            )
        elif captioner.on_event is None:
            captioner.on_event = runlog
        session = _open_session(pairs, captioner, _settings(captioner, tasks, modalities), runlog, result, shard_size)
        _caption_my_shards(session, pairs, tasks, force, batch_size, decode_workers, progress)
        return result


def _open_session(
    pairs: PairManifest,
    captioner: Captioner,
    settings: dict[str, Any],
    runlog: RunLog,
    result: CaptionResult,
    shard_size: int,
) -> _Session:
    """Plan the shards (the same plan in every process), clear what is stale, and take this process's share."""
    plan = plan_shards(pairs.df["pair_id"].tolist(), shard_size)
    result.shards_total = len(plan)
    if result.rank == 0:
        remove_stale(result.out_dir, plan)
    mine = my_share(plan, result.rank, result.world)
    clean_temp_files(result.out_dir, mine)
    fps = {s.index: fingerprint(s, settings) for s in mine}
    return _Session(captioner, result.out_dir, fps, settings, runlog, result, plan=plan, mine=mine)


def _caption_my_shards(
    session: _Session,
    pairs: PairManifest,
    tasks: list[tuple[str, Prompt]],
    force: bool,
    batch_size: int,
    decode_workers: int,
    progress: Any,
) -> None:
    """Caption what this process's shards still need; then the first process writes the summary once all
    processes are done."""
    out, result, runlog = session.out, session.result, session.runlog
    work = _plan_work(session.mine, out, session.fps, tasks, force)
    session.start(work, batch_size)
    if progress is not None:
        session.progress = (progress, progress.add_task("caption", total=sum(len(w.items) for w in work)))
    try:
        _caption_shards(session, work, _index_rows(pairs, [w.shard for w in work]), batch_size, decode_workers)
    except KeyboardInterrupt:
        runlog({"event": "interrupted", "computed": result.computed})
        raise
    wait_for_everyone()
    if result.rank == 0:
        fps_all = {s.index: fingerprint(s, session.settings) for s in session.plan}
        _write_summary(out, session.plan, fps_all=fps_all, settings=session.settings)
    runlog({"event": "end", "computed": len(result.computed), "skipped": len(result.skipped)})


def _checked(modalities: Sequence[str], batch_size: int, shard_size: int) -> tuple[str, ...]:
    """The modalities, deduplicated; one-line errors for bad settings."""
    mods = tuple(dict.fromkeys(modalities))
    bad = [m for m in mods if m not in MODALITIES]
    if bad or not mods:
        raise EntityLabelError(f"unknown modality {bad or mods!r}", hint="use vis, ir or both")
    if batch_size < 1 or shard_size < 1:
        raise EntityLabelError("--batch-size and --shard-size must be at least 1")
    return mods


def _settings(captioner: Captioner, tasks: list[tuple[str, Prompt]], modalities: Sequence[str]) -> dict[str, Any]:
    """Everything that shapes a shard's rows: part of every done marker's fingerprint."""
    return {
        "model": captioner.name,
        "model_revision": captioner.revision,
        "decoding": captioner.decoding,
        "modalities": list(modalities),
        "prompts": [{"modality": m, "id": p.id, "sha256": p.sha256(captioner.mode)} for m, p in tasks],
    }


def _index_rows(pairs: PairManifest, shards: list[Shard]) -> dict[str, dict[str, Path]]:
    wanted = {p for s in shards for p in s.pair_ids}
    df = pairs.df[pairs.df["pair_id"].isin(wanted)]
    return {
        pid: {"vis": pairs.path(vis), "ir": pairs.path(ir)}
        for pid, vis, ir in zip(df["pair_id"], df["vis_path"], df["ir_path"], strict=True)
    }


@dataclass
class _ShardWork:
    """What to caption for one shard: (pair_id, modality, prompt) items in batch order; `kept` holds the rows
    already on disk that stay as they are (None: a fresh shard, every row is made now)."""

    shard: Shard
    items: list[tuple[str, str, Prompt]]
    kept: list[dict[str, Any]] | None = None


def _plan_work(
    mine: list[Shard], out: Path, fps: dict[int, str], tasks: list[tuple[str, Prompt]], force: bool
) -> list[_ShardWork]:
    """Shards not done the same way, whole; shards done the same way but holding failed rows, those rows only."""
    work = []
    for shard in mine:
        rows = _done_rows(shard, out, fps[shard.index]) if not force else None
        if rows is None:
            work.append(_ShardWork(shard, [(pid, m, p) for m, p in tasks for pid in shard.pair_ids]))
            continue
        failed = {(r["pair_id"], r["modality"], r["prompt_id"]) for r in rows if r["error"] is not None}
        if failed:
            items = [(pid, m, p) for m, p in tasks for pid in shard.pair_ids if (pid, m, p.id) in failed]
            work.append(_ShardWork(shard, items, [r for r in rows if r["error"] is None]))
    return work


def _done_rows(shard: Shard, out: Path, fp: str) -> list[dict[str, Any]] | None:
    """The rows of a shard done the same way ([] when none failed: a no-op rerun reads one column), or None:
    not done, or done but no longer readable (redo it)."""
    if not is_done(shard, out, fp):
        return None
    try:
        errors = pq.read_table(shard.parquet(out), columns=["error"]).column("error")
        return [] if errors.null_count == len(errors) else pq.read_table(shard.parquet(out)).to_pylist()
    except Exception:  # pyarrow raises several types for a damaged file
        return None


def _batches(work: list[_ShardWork], paths: dict[str, dict[str, Path]], mode: str, size: int) -> Iterator[Batch]:
    """Batches in shard order; within a shard, one (modality, prompt) at a time so prompts share a length."""
    for w in work:
        groups: dict[tuple[str, str], list[tuple[str, str, Prompt]]] = {}
        for item in w.items:
            groups.setdefault((item[1], item[2].id), []).append(item)
        for group in groups.values():
            for i in range(0, len(group), size):
                items = [WorkItem(pid, m, p.id, p.wording(mode), paths[pid][m]) for pid, m, p in group[i : i + size]]
                yield Batch(w.shard.index, items)


def _captions_for(captioner: Captioner, loaded: Loaded) -> list[Caption]:
    caps: list[Caption | None] = [None if err is None else Caption.failed(err) for err in loaded.errors]
    if loaded.ok:
        if loaded.prepared is not None:
            done = captioner.run(loaded.prepared)
        else:  # the processor rejected the batch in the loader: redo it here, image by image if need be
            done = captioner.caption(
                [loaded.images[i] for i in loaded.ok], [loaded.batch.items[i].wording for i in loaded.ok]
            )
        for i, c in zip(loaded.ok, done, strict=True):
            caps[i] = c
    return [c for c in caps if c is not None]


@dataclass
class _Session:
    """One process's captioning: the model, where its shards go, and what it has done so far."""

    captioner: Captioner
    out: Path
    fps: dict[int, str]  # shard index -> fingerprint for its done marker
    settings: dict[str, Any]
    runlog: RunLog
    result: CaptionResult
    progress: tuple[Any, Any] | None = None  # (rich Progress, task id)
    plan: list[Shard] = field(default_factory=list)  # every shard of the manifest, all processes together
    mine: list[Shard] = field(default_factory=list)  # this process's share of the plan

    def start(self, work: list[_ShardWork], batch_size: int) -> None:
        """Sort this process's shards into computed / retried / skipped, and log the plan."""
        busy = {w.shard.index for w in work}
        self.result.skipped = [s.name for s in self.mine if s.index not in busy]
        self.result.retried = [w.shard.name for w in work if w.kept is not None]
        c = self.captioner
        self.runlog(
            {
                "event": "start",
                "model": c.name,
                "device": str(c.device),
                "decoding": c.decoding,
                "batch_size": batch_size,
                "shards_total": len(self.plan),
                "shards_mine": len(self.mine),
                "shards_todo": len(work) - len(self.result.retried),
                "shards_retry": len(self.result.retried),
            }
        )
        for name in self.result.skipped:
            self.runlog({"event": "skip", "shard": name})

    def rows(self, loaded: Loaded) -> list[dict[str, Any]]:
        """The caption rows of one loaded batch, generated now."""
        c, sha = self.captioner, {(p["modality"], p["id"]): p["sha256"] for p in self.settings["prompts"]}
        decoding = c.decoding_json()
        rows = []
        for item, cap in zip(loaded.batch.items, _captions_for(c, loaded), strict=True):
            rows.append(
                {
                    "pair_id": item.pair_id,
                    "source": f"{item.modality}:{item.prompt_id}:{c.name}",
                    "modality": item.modality,
                    "caption": cap.caption,
                    "model": c.name,
                    "model_revision": c.revision,
                    "prompt_id": item.prompt_id,
                    "prompt_sha256": sha[(item.modality, item.prompt_id)],
                    "decoding": decoding,
                    "n_tokens": cap.n_tokens,
                    "truncated": cap.truncated,
                    "error": cap.error,
                }
            )
        if self.progress is not None:
            self.progress[0].advance(self.progress[1], len(rows))
        return rows

    def write(self, w: _ShardWork, rows: list[dict[str, Any]], seconds: float) -> None:
        """Write one shard (kept rows + new ones) with its marker; count and log it."""
        shard = w.shard
        n = write_shard(shard, self.out, (w.kept or []) + rows, self.fps[shard.index])
        failed = sum(r["error"] is not None for r in rows)
        trunc = sum(bool(r["truncated"]) for r in rows)
        if w.kept is None:
            self.result.computed.append(shard.name)
        self.result.rows += len(rows)
        self.result.failed += failed
        self.result.truncated += trunc
        event = {"event": "shard", "shard": shard.name, "pairs": len(shard.pair_ids), "rows": n, "failed": failed}
        event.update(truncated=trunc, seconds=round(seconds, 3))
        if w.kept is None:
            event["pairs_per_s"] = round(len(shard.pair_ids) / seconds, 3) if seconds > 0 else None
        else:
            event.update(event="retry", retried=len(rows))
        self.runlog(event)


def _caption_shards(
    session: _Session, work: list[_ShardWork], paths: dict[str, dict[str, Path]], batch_size: int, decode_workers: int
) -> None:
    """Caption the planned items shard by shard; write each shard once its last batch is done."""
    by_index = {w.shard.index: w for w in work}
    captioner = session.captioner
    current: int | None = None
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    batches = _batches(work, paths, captioner.mode, batch_size)
    limit = lambda: captioner.batch_limit  # noqa: E731 - lowered after a CUDA out-of-memory error
    with Prefetcher(batches, captioner.prepare, depth=2, decode_workers=decode_workers, batch_limit=limit) as loader:
        for loaded in loader:
            if loaded.batch.shard != current:
                if current is not None:
                    session.write(by_index[current], rows, time.perf_counter() - started)
                current, rows, started = loaded.batch.shard, [], time.perf_counter()
            rows += session.rows(loaded)
        if current is not None:
            session.write(by_index[current], rows, time.perf_counter() - started)


def _write_summary(out: Path, plan: list[Shard], fps_all: dict[int, str], settings: dict[str, Any]) -> None:
    """`caption.json`, once every shard of the plan is done (any process may have made it)."""
    if not all(is_done(s, out, fps_all[s.index]) for s in plan):
        return
    rows = failed = truncated = 0
    for s in plan:
        t = pq.read_table(s.parquet(out), columns=["error", "truncated"])
        rows += t.num_rows
        failed += t.num_rows - t.column("error").null_count
        truncated += sum(bool(x) for x in t.column("truncated").to_pylist())
    atomic_write_json(
        out / SUMMARY_NAME,
        {
            **settings,
            "shards": [s.name for s in plan],
            "pairs": sum(len(s.pair_ids) for s in plan),
            "rows": rows,
            "failed": failed,
            "truncated": truncated,
        },
    )
