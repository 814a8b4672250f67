"""`run_export`: pairs + captions + entity labels -> one config of a hub-ready dataset folder.

The config is built completely in a temporary folder (data shards, plain tables, the regenerated card) and
only then renamed into place, so a failure leaves the existing folder as it was. Other configs' files are
never rewritten: the card is regenerated from every config's `tables/<config>/export.json`.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Features

from .. import __version__
from ..datapaths import check_manifest
from ..errors import EntityLabelError
from ..io import (
    atomic_dir,
    atomic_write_text,
    clean_stale_temps,
    dumps_json,
    recover_swaps,
    swap_dir,
    temp_dir_beside,
    write_parquet,
)
from ..pairs import PAIRS_SCHEMA, PairManifest, load_pairs
from ..pipeline.lock import folder_lock
from . import layout
from .annotated import AnnotatedLabels, annotated_labels
from .card import render_card
from .features import build_features, yaml_features
from .inputs import (
    CAPTIONS_SCHEMA,
    EntityInputs,
    primary_captions,
    read_captions,
    read_entities,
)
from .splits import DEFAULT_TEST_FRACTION, assign_splits, ordered_splits
from .writer import DEFAULT_SHARD_BYTES, Record, check_images, write_split

EXPORT_LABELS_SCHEMA = pa.schema(
    [("pair_id", pa.string()), ("split", pa.string()), ("entities", pa.list_(pa.string()))]
)


@dataclass
class ExportResult:
    out: Path
    config: str
    splits: dict[str, int]  # split -> pairs
    files: list[str]  # data files of this config, relative to `out`
    n_labels: int  # size of the label space
    unlabelled: int  # pairs with no row in labels.parquet
    uncaptioned: int  # pairs with neither an IR nor a VIS caption
    configs: list[str] = field(default_factory=list)  # every config now in the folder

    def print_summary(self, console: Any) -> None:
        from rich.markup import escape

        splits = ", ".join(f"{s}: {n}" for s, n in self.splits.items())
        console.print(
            f"exported config [bold]{escape(self.config)}[/] to {escape(str(self.out))} ({escape(splits)}; "
            f"{len(self.files)} file(s))",
            soft_wrap=True,
            markup=True,
        )
        console.print(f"label space: {self.n_labels} names; configs in folder: {', '.join(self.configs)}")
        if self.unlabelled or self.uncaptioned:
            console.print(
                f"[yellow]note:[/] {self.unlabelled} pair(s) without labels, {self.uncaptioned} without captions",
                markup=True,
            )


def _check_label_space(config: str, names: list[str], infos: dict[str, dict], out: Path) -> None:
    """Every config in one folder shares one label space, so configs concatenate and indices agree."""
    for other, info in infos.items():
        theirs = info.get("label_space", [])
        if other == config or theirs == names:
            continue
        only_new = [n for n in names if n not in theirs]
        only_old = [n for n in theirs if n not in names]
        diff = (f"new-only {only_new[:3]}" if only_new else "") + (
            f"{'; ' if only_new else ''}existing-only {only_old[:3]}" if only_old else ""
        ) or "same names in a different order"
        raise EntityLabelError(
            f"label space of config {config!r} ({len(names)} names) differs from config {other!r} "
            f"already in this folder ({len(theirs)} names: {diff}); refusing to mix label spaces",
            path=out,
            hint="extract every dataset with the same vocabulary, or export into a new --out folder",
        )


def _caption_info(captions: pd.DataFrame, prompt: str | None) -> dict[str, Any]:
    """What the card says about the captions: models, revisions, prompts, decoding, counts."""
    if captions.empty:
        return {}
    keys = ["modality", "model", "model_revision", "prompt_id", "prompt_sha256", "decoding"]
    vlm = captions[~captions["source"].str.startswith("external:")]
    groups = []
    for key, g in vlm.groupby(keys, dropna=False, sort=True):
        entry = {k: (None if pd.isna(v) else v) for k, v in zip(keys, key, strict=True)}
        entry.update(
            rows=len(g), errors=int(g["error"].notna().sum()), truncated=int(g["truncated"].fillna(False).sum())
        )
        groups.append(entry)
    external = captions[captions["source"].str.startswith("external:")]
    return {
        "rows": len(captions),
        "primary_prompt": prompt,
        "vlm": groups,
        "external": {str(k): int(v) for k, v in external["source"].value_counts().sort_index().items()},
    }


def _records(
    manifest: PairManifest,
    splits: pd.Series,
    primary: dict[str, dict[str, str]],
    ents: EntityInputs | None,
    label_space: list[str],
    extra: dict[str, dict[str, Any]] | None = None,
) -> dict[str, list[Record]]:
    index = {n: i for i, n in enumerate(label_space)}
    conf: dict[tuple[str, str], float] = {}
    if ents is not None and ents.entities is not None:
        cols = ents.entities.select(["pair_id", "entity", "confidence"]).to_pydict()
        for p, e, c in zip(cols["pair_id"], cols["entity"], cols["confidence"], strict=True):
            conf[(p, e)] = None if c is None else float(c)
    by_split: dict[str, list[Record]] = {}
    for row, split in zip(manifest.df.itertuples(index=False), splits, strict=True):
        names = ents.labels.get(row.pair_id, []) if ents is not None else []
        by_split.setdefault(split, []).append(
            Record(
                pair_id=row.pair_id,
                dataset=row.dataset,
                ir_path=row.ir_path,
                vis_path=row.vis_path,
                ir_file=manifest.ir_abspath(row),
                vis_file=manifest.vis_abspath(row),
                ir_sha256=row.ir_sha256,
                vis_sha256=row.vis_sha256,
                width=int(row.width),
                height=int(row.height),
                caption_ir=primary.get("ir", {}).get(row.pair_id),
                caption_vis=primary.get("vis", {}).get(row.pair_id),
                entities=[index[n] for n in names],
                confidences=[conf.get((row.pair_id, n)) for n in names],
                extra=(extra or {}).get(row.pair_id, {}),
            )
        )
    return by_split


def _write_tables(
    tdir: Path,
    manifest: PairManifest,
    splits: pd.Series,
    captions: pd.DataFrame | None,
    ents: EntityInputs | None,
    label_space: list[str],
    label_counts: dict[str, int],
    annotated: AnnotatedLabels | None = None,
) -> None:
    """The plain Parquet tables (no images) beside the hub data, restricted to the exported pairs."""
    tdir.mkdir(parents=True, exist_ok=True)
    pairs = manifest.df[PAIRS_SCHEMA.names].assign(split=splits.to_numpy()).sort_values("pair_id")
    write_parquet(pairs, tdir / "pairs.parquet", schema=PAIRS_SCHEMA)  # no root: machine-specific
    ids = set(pairs["pair_id"])
    if captions is not None:
        write_parquet(captions[captions["pair_id"].isin(ids)], tdir / "captions.parquet", schema=CAPTIONS_SCHEMA)
    if ents is not None:
        if ents.entities is not None:  # the extract stage's table as written, only the exported pairs
            keep = pc.is_in(ents.entities["pair_id"], value_set=pa.array(sorted(ids), pa.string()))
            write_parquet(ents.entities.filter(keep), tdir / "entities.parquet")
        labels = pd.DataFrame({"pair_id": pairs["pair_id"], "split": pairs["split"]})
        labels["entities"] = [ents.labels.get(p, []) for p in labels["pair_id"]]
        write_parquet(labels, tdir / "labels.parquet", schema=EXPORT_LABELS_SCHEMA)
    if annotated is not None:  # the boxes and the annotation problems, as plain tables
        write_parquet(annotated.ann.boxes, tdir / "boxes.parquet")
        write_parquet(annotated.ann.problems, tdir / "annotation_problems.parquet")
    space = {**(ents.space_info if ents else {}), "names": label_space, "counts": label_counts}
    atomic_write_text(tdir / "label_space.json", dumps_json(space))


def _build_config(
    root: Path,
    config: str,
    manifest: PairManifest,
    captions: pd.DataFrame | None,
    ents: EntityInputs | None,
    *,
    caption_prompt: str | None,
    test_fraction: float,
    shard_bytes: int,
    progress: Any,
    annotated: AnnotatedLabels | None = None,
) -> dict[str, Any]:
    """Write data/<config>/ and tables/<config>/ under `root`; return the config's export.json content."""
    label_space = list(ents.label_space) if ents is not None else []
    features = build_features(label_space, annotated.features() if annotated is not None else None)
    splits, method = assign_splits(manifest.df, test_fraction)
    primary = primary_captions(captions, caption_prompt) if captions is not None else {}
    extra = annotated.values() if annotated is not None else None
    by_split = _records(manifest, splits, primary, ents, label_space, extra)
    check_images([r for recs in by_split.values() for r in recs])
    split_infos = _write_data(root, config, by_split, features, label_space, shard_bytes, progress)
    totals = {n: sum(s["label_counts"][n] for s in split_infos.values()) for n in label_space}
    _write_tables(layout.tables_dir(root, config), manifest, splits, captions, ents, label_space, totals, annotated)
    ids = set(manifest.df["pair_id"])
    return {
        "config": config,
        "datasets": sorted(set(manifest.df["dataset"])),
        "entitylabel_version": __version__,
        "features": yaml_features(features),  # a list: keeps column order through sorted JSON
        "label_space": label_space,
        "split_method": method.to_dict(),
        "splits": split_infos,
        "download_size": sum(os.path.getsize(root / f) for s in split_infos.values() for f in s["files"]),
        "captions": _caption_info(captions[captions["pair_id"].isin(ids)], caption_prompt)
        if captions is not None
        else {},
        "entities": _entities_info(ents, annotated),
    }


def _entities_info(ents: EntityInputs | None, annotated: AnnotatedLabels | None) -> dict[str, Any]:
    """export.json's `entities`: where the labels came from (extract stage or the dataset's annotations)."""
    if ents is None:
        return {}
    if annotated is not None:
        return {"label_space": ents.space_info, "provenance": "annotation", "annotations": annotated.info()}
    return {"label_space": ents.space_info, "extract": ents.extract_info}


def _write_data(
    root: Path,
    config: str,
    by_split: dict[str, list[Record]],
    features: Features,
    label_space: list[str],
    shard_bytes: int,
    progress: Any,
) -> dict[str, dict[str, Any]]:
    """Write data/<config>/ split by split; return what export.json says of each split (files, sizes, counts)."""
    ddir = layout.data_dir(root, config)
    ddir.mkdir(parents=True)
    split_infos = {}
    for split in ordered_splits(list(by_split)):
        written = write_split(by_split[split], split, ddir, features, shard_bytes=shard_bytes, progress=progress)
        counts = dict.fromkeys(label_space, 0)
        for r in by_split[split]:
            for i in r.entities:
                counts[label_space[i]] += 1
        split_infos[split] = {
            "files": [f"{layout.DATA}/{config}/{f}" for f in written.files],
            "num_examples": written.num_examples,
            "num_bytes": written.num_bytes,
            "label_counts": counts,
            "unlabelled": sum(1 for r in by_split[split] if not r.entities),
        }
    return split_infos


def _is_dataset_card(path: Path) -> bool:
    """A hub card starts with a `---` YAML header; any other README.md (a code repository's) is the user's."""
    try:
        with path.open("rb") as f:
            return f.readline().rstrip(b"\r\n") == b"---"
    except OSError:
        return False


@dataclass
class _ConfigJob:
    """One config to export: its inputs and the settings `_build_config` takes."""

    config: str
    manifest: PairManifest
    captions: pd.DataFrame | None
    ents: EntityInputs | None
    repo_id: str | None
    settings: dict[str, Any]  # caption_prompt, test_fraction, shard_bytes, progress

    def build(self, root: Path) -> dict[str, Any]:
        """Write the config's data, tables and export.json under `root`; return the export.json content."""
        info = {
            **_build_config(root, self.config, self.manifest, self.captions, self.ents, **self.settings),
            "repo_id": self.repo_id,
        }
        _write_info(root, self.config, info)
        return info


def run_export(
    pairs: str | Path,
    out: str | Path,
    config: str,
    captions: str | Path | None = None,
    entities: str | Path | None = None,
    overwrite: bool = False,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    caption_prompt: str | None = None,
    repo_id: str | None = None,
    annotations: str | Path | None = None,
    annotation_vocab: str | Path | None = None,
    root: str | Path | None = None,
    progress: Any = None,
) -> ExportResult:
    """Export one config (`data/<config>/...`, `tables/<config>/...`) into `out` and regenerate its card.

    `captions`: caption shards folder or table; `entities`: extract folder; `caption_prompt`: prompt id whose
    caption fills `caption_ir` / `caption_vis` (default: see `primary_captions`); `repo_id` only fills the card's
    loading example; `root` overrides the manifest's dataset root. `annotations`: the dataset's own boxes (YOLO,
    VOC, COCO; instead of `entities`): labels from them, per-modality sets and boxes as columns, provenance
    `annotation` in the card; `annotation_vocab` maps their class names to entities.
    """
    config = layout.check_config_name(config)
    if shard_bytes <= 0:
        raise EntityLabelError(f"shard size must be positive, got {shard_bytes}")
    out = Path(out)
    manifest = _exported_manifest(pairs, root)
    caps = read_captions(captions) if captions is not None else None
    annotated = _annotated(annotations, entities, manifest, annotation_vocab)
    ents = annotated.inputs if annotated is not None else read_entities(entities) if entities is not None else None
    _check_shared_ids(manifest, caps, captions, ents, entities)
    kw = dict(caption_prompt=caption_prompt, test_fraction=test_fraction, shard_bytes=shard_bytes, progress=progress,
              annotated=annotated)  # fmt: skip
    job = _ConfigJob(config, manifest, caps, ents, repo_id, kw)
    # exports into one release folder take turns (a new folder would otherwise be created twice, one config lost);
    # what is already there, and its label space, is read under the lock
    with folder_lock(out, "export", wait=True):
        _recover_release(out)
        infos = _configs_already_there(out, config, overwrite, list(ents.label_space) if ents else [])
        info = _export_into_new_folder(out, job) if not out.exists() else _export_beside_others(out, job, infos)
    labelled = set(ents.labels) if ents else set()
    captioned = set(caps["pair_id"][caps["error"].isna()]) if caps is not None else set()
    return ExportResult(
        out=out,
        config=config,
        splits={s: v["num_examples"] for s, v in info["splits"].items()},
        files=[f for s in info["splits"].values() for f in s["files"]],
        n_labels=len(info["label_space"]),
        unlabelled=int((~manifest.df["pair_id"].isin(labelled)).sum()),
        uncaptioned=int((~manifest.df["pair_id"].isin(captioned)).sum()),
        configs=sorted({*infos, config}),
    )


def _annotated(
    annotations: str | Path | None, entities: str | Path | None, manifest: PairManifest, vocab: str | Path | None
) -> AnnotatedLabels | None:
    """The labels of `export --annotations` (None without it); refused beside --entities, or matching no pair."""
    if annotations is None:
        return None
    if entities is not None:
        raise EntityLabelError("give --entities or --annotations, not both: the labels come from one of them")
    from ..annotations import load_annotations

    ann = load_annotations(annotations, manifest.df, vocab or "ivif")
    if ann.files.empty:
        first = ann.problems["message"].iloc[0] if len(ann.problems) else "no annotation file found"
        raise EntityLabelError(
            "the annotations match no pair of the manifest; nothing was written",
            path=annotations,
            hint=f"{len(ann.problems)} problem row(s), e.g. {first}",
        )
    return annotated_labels(ann)


def _check_shared_ids(
    manifest: PairManifest,
    caps: pd.DataFrame | None,
    captions: str | Path | None,
    ents: EntityInputs | None,
    entities: str | Path | None,
) -> None:
    """Captions or labels of none of the manifest's pairs are the wrong inputs, not a dataset without text."""
    ids = set(manifest.df["pair_id"])
    for what, have, path in (
        ("caption", set(caps["pair_id"]) if caps is not None else set(), captions),
        ("label", set(ents.labels) if ents is not None else set(), entities),
    ):
        if have and not have & ids:
            raise EntityLabelError(
                f"no {what} row belongs to a pair of the manifest ({len(have)} pair ids, none of its "
                f"{len(ids)}; e.g. {sorted(have)[0]!r})",
                path=path,
                hint="pass the captions / entities made from this --pairs manifest",
            )


def _recover_release(out: Path) -> None:
    """Under the release lock: remove dead exports' staging folders and put back a config folder whose swap was
    killed between its two renames (io.swap_dir)."""
    if not out.is_dir():
        return
    clean_stale_temps(out)
    for parent in (out / layout.DATA, out / layout.TABLES):
        recover_swaps(parent)


def _exported_manifest(pairs: str | Path, root: str | Path | None) -> PairManifest:
    """The pair manifest, checked and sorted by pair id (the order every file of the config is written in)."""
    manifest = load_pairs(pairs, root=root)
    if manifest.df.empty:
        raise EntityLabelError("pair manifest has no pairs", path=pairs)
    check_manifest(manifest.df, pairs)  # a released dataset must not carry ids or files from outside
    manifest.df = manifest.df.sort_values("pair_id", kind="stable").reset_index(drop=True)
    return manifest


def _configs_already_there(out: Path, config: str, overwrite: bool, label_space: list[str]) -> dict[str, dict]:
    """export.json of every config already in `out`, once `out` is known to be a place this export may write."""
    if out.exists() and not out.is_dir():
        raise EntityLabelError("output exists and is not a folder", path=out)
    if (out / layout.CARD).is_file() and not _is_dataset_card(out / layout.CARD):
        raise EntityLabelError(
            "is not a dataset card (no YAML header); refusing to replace it",
            path=out / layout.CARD,
            hint="export into a new or empty --out folder",
        )
    infos = layout.read_config_infos(out) if out.is_dir() else {}
    if config in infos and not overwrite:
        raise EntityLabelError(f"config {config!r} already exists", path=out, hint="pass --overwrite to replace it")
    _check_label_space(config, label_space, infos, out)
    return infos


def _export_into_new_folder(out: Path, job: _ConfigJob) -> dict[str, Any]:
    """A folder that does not exist yet is built whole beside it and renamed into place."""
    with atomic_dir(out) as tmp:
        info = job.build(tmp)
        atomic_write_text(tmp / layout.CARD, render_card({job.config: info}, repo_id=job.repo_id))
    return info


def _export_beside_others(out: Path, job: _ConfigJob, infos: dict[str, dict]) -> dict[str, Any]:
    """In an existing folder, build the config in a staging folder, then swap its two folders and the card in;
    other configs' files are never touched."""
    stage = temp_dir_beside(out / f"export-{job.config}")  # a killed export's leftover is cleaned on the next run
    try:
        info = job.build(stage)
        card = render_card({**infos, job.config: info}, repo_id=job.repo_id, existing=out / layout.CARD)
        atomic_write_text(stage / layout.CARD, card)
        swap_dir(layout.data_dir(stage, job.config), layout.data_dir(out, job.config))
        swap_dir(layout.tables_dir(stage, job.config), layout.tables_dir(out, job.config))
        os.replace(stage / layout.CARD, out / layout.CARD)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return info


def _write_info(root: Path, config: str, info: dict[str, Any]) -> None:
    """tables/<config>/export.json: what the card is regenerated from."""
    atomic_write_text(layout.tables_dir(root, config) / layout.EXPORT_INFO, dumps_json(info))
