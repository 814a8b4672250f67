"""Fuse IR/VIS pairs with a trained checkpoint: gray and colour PNGs named by pair id.

Input: one pair (two image files), a pair manifest (`pairs.parquet` or its run folder), a dataset folder
(`ir/` + `vi/` or any layout `discover` knows), or a released dataset (export folder / hub id, whose entity
labels are then used). Output: `OUT/<pair_id>.png` (fused gray = fused Y, what `entitylabel evaluate OUT`
scores), `OUT/color/<pair_id>.png` (fused Y + visible Cb/Cr) and `OUT/fuse.json` (the entity set each pair
was fused with and where it came from, plus per-pair errors). Any image size works.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from ..devices import check_device
from ..errors import EntityLabelError
from ..images import IMAGE_EXTENSIONS, load_image
from ..io import atomic_path, atomic_write_json, ensure_writable_dir, safe_child
from ..pairs import safe_name
from .checkpoint import load_model, resolve_checkpoint
from .data import (
    check_same_size,
    decode_image,
    ir_gray,
    label_space,
    open_dataset,
    raw_images,
    row_origin,
    to_color,
    vis_ycbcr,
)
from .model import EntityFusionNet

COLOR_DIR = "color"
SUMMARY = "fuse.json"


@dataclass
class Pair:
    pair_id: str
    load: Callable[[], tuple[Image.Image, Image.Image]]
    labels: list[str] | None = None  # entity names given by the input (dataset / labels file)


@dataclass
class FuseResult:
    out_dir: Path
    checkpoint: Path
    written: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # pair_id -> message
    entities: dict[str, dict[str, Any]] = field(default_factory=dict)

    def print_summary(self, console: Any) -> None:
        console.print(f"fused {len(self.written)} pair(s) into {self.out_dir} (gray) and {self.out_dir / COLOR_DIR}")
        from rich.markup import escape

        for pid, msg in self.failed.items():  # ids and messages come from data: escaped, never markup
            console.print(f"[red]error:[/] {escape(pid)}: {escape(msg)}", markup=True, highlight=False)


# --- inputs -----------------------------------------------------------------------------------------
def _open_pair(ir: Path, vis: Path) -> Callable[[], tuple[Image.Image, Image.Image]]:
    def load() -> tuple[Image.Image, Image.Image]:
        out = []
        for what, p in (("IR", ir), ("VIS", vis)):
            try:
                out.append(load_image(p))  # upright: the one EXIF rule (images.py)
            except FileNotFoundError:
                raise EntityLabelError(f"{what} image not found", path=p) from None
            except Exception as e:  # PIL raises many types for broken files
                raise EntityLabelError(f"cannot read {what} image ({e})", path=p) from None
        return out[0], out[1]

    return load


def _dataset_pairs(ds: Any, names: list[str], split: str | None) -> Iterator[Pair]:
    import datasets

    parts = {"": ds} if isinstance(ds, datasets.Dataset) else {k: ds[k] for k in sorted(ds) if split in (None, k)}
    for part in parts.values():
        space = label_space(part)
        part = raw_images(part)  # decoded per pair below: a broken image fails its pair, not the command
        for i in range(len(part)):

            def load(part: Any = part, i: int = i) -> tuple[Image.Image, Image.Image]:
                row = part[i]
                where = row_origin(row, i)
                return decode_image(row["ir"], "IR", where), decode_image(row["vis"], "VIS", where)

            pid = str(part[i]["pair_id"]) if "pair_id" in part.features else f"{i:06d}"
            labels = None
            if "entities" in part.features and space:
                labels = [space[k] if isinstance(k, int) else str(k) for k in part[i]["entities"] or []]
            yield Pair(pid, load, labels)


def _check_space(given: list[str], model_space: list[str], where: str) -> None:
    if given != model_space:
        raise EntityLabelError(
            f"label space differs from the checkpoint's: input has {given}, checkpoint has {model_space}",
            path=where,
            hint="fuse without entity labels or use a model trained on this label space",
        )


def _is_dataset_folder(p: Path) -> bool:
    return p.is_dir() and (p / "data").is_dir() and any((p / "data").glob("*/*.parquet"))


def _collect(inputs: list[Path | str], model_space: list[str], config: str | None, split: str | None,
             failed: dict[str, str]) -> list[Pair]:  # fmt: skip
    """Turn the INPUT argument(s) into pairs; problems that concern one pair go to `failed`."""
    if len(inputs) == 2:
        ir, vis = Path(inputs[0]), Path(inputs[1])
        return [Pair(safe_name(ir.stem), _open_pair(ir, vis))]
    if len(inputs) != 1:
        raise EntityLabelError(
            f"expected one input (manifest, folder, dataset) or two images (IR VIS), got {len(inputs)}"
        )
    src = inputs[0]
    p = Path(str(src)).expanduser()
    if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
        raise EntityLabelError("one image given; pass the IR and the VIS image of the pair", path=p)
    if p.is_file() and p.suffix == ".parquet" or (p.is_dir() and (p / "pairs.parquet").is_file()):
        from ..pairs import load_pairs

        man = load_pairs(p)
        rows = man.df.sort_values("pair_id", kind="stable")
        return [Pair(r.pair_id, _open_pair(man.ir_abspath(r), man.vis_abspath(r))) for r in rows.itertuples()]
    if _is_dataset_folder(p) or (not p.exists() and "/" in str(src) and not str(src).startswith((".", "/"))):
        ds = open_dataset(src if not p.exists() else p, config)
        parts = [ds] if not hasattr(ds, "keys") else [ds[k] for k in ds]
        for part in parts:
            space = label_space(part)
            if space and model_space:
                _check_space(space, model_space, str(src))
        return list(_dataset_pairs(ds, model_space, split))
    if p.is_dir():
        from ..discover import discover

        found = discover(p)
        for prob in found.problems.itertuples():
            if prob.pair_id and getattr(prob, "severity", "error") == "error":
                failed.setdefault(prob.pair_id, f"{prob.path}: {prob.message}")
        return [
            Pair(r.pair_id, _open_pair(found.root / r.ir_path, found.root / r.vis_path))
            for r in found.pairs.itertuples()
        ]
    raise EntityLabelError("input not found (expected IR VIS images, a pair manifest, a folder or a dataset)", path=p)


def _read_labels(labels: Any, model_space: list[str]) -> tuple[list[str] | None, dict[str, list[str]]]:
    """User labels: names for every pair, or a per-pair table (parquet/json/csv with pair_id, entities)."""
    if labels is None:
        return None, {}
    if isinstance(labels, list | tuple):
        return [str(n).strip() for n in labels if str(n).strip()], {}
    p = Path(str(labels))
    if not p.is_file():
        return [n.strip() for n in str(labels).split(",") if n.strip()], {}
    space_file = p.parent / "label_space.json"
    if space_file.is_file():  # an extract folder's labels: its label space must be the model's
        try:
            names = json.loads(space_file.read_text(encoding="utf-8")).get("names") or []
        except (OSError, ValueError) as e:
            raise EntityLabelError(f"unreadable label space ({e})", path=space_file) from None
        _check_space(list(names), model_space, str(space_file))
    try:
        if p.suffix == ".json":
            raw = json.loads(p.read_text(encoding="utf-8"))
            table = raw if isinstance(raw, dict) else {r["pair_id"]: r["entities"] for r in raw}
        else:
            df = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
            table = dict(zip(df["pair_id"], df["entities"], strict=True))
    except Exception as e:  # any malformed table
        raise EntityLabelError(f"cannot read labels (want pair_id + entities) ({e})", path=p) from None

    def as_list(v: Any) -> list[str]:
        if isinstance(v, str):
            v = v.replace(";", ",").split(",")
        return [str(n).strip() for n in (v if v is not None else []) if str(n).strip()]

    return None, {str(k): as_list(v) for k, v in table.items()}


def _multi_hot(names: list[str], space: list[str], where: str) -> torch.Tensor:
    unknown = [n for n in names if n not in space]
    if unknown:
        raise EntityLabelError(f"labels {unknown} are not in the checkpoint's label space {space}", path=where)
    t = torch.zeros(1, len(space))
    for n in names:
        t[0, space.index(n)] = 1.0
    return t


# --- fusing -----------------------------------------------------------------------------------------
@torch.inference_mode()
def fuse_arrays(
    model: EntityFusionNet, ir: np.ndarray, vis_y: np.ndarray, labels: torch.Tensor | None = None
) -> tuple[np.ndarray, list[str]]:
    """Fused Y (H,W) uint8 of one gray pair of any size, and the entity names the model used."""
    dev = next(model.parameters()).device
    a = torch.from_numpy(ir.astype(np.float32) / 255.0)[None, None].to(dev)
    b = torch.from_numpy(vis_y.astype(np.float32) / 255.0)[None, None].to(dev)
    out = model(a, b, labels.to(dev) if labels is not None and model.n_labels else None)
    y = (out.fused[0, 0].clamp(0, 1) * 255.0).round().to(torch.uint8).cpu().numpy()
    used = []
    if out.active is not None:
        used = [model.cfg.labels[k] for k in torch.nonzero(out.active[0]).flatten().tolist()]
    return y, used


def _write_png(img: Image.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def _given_labels(labels: Any, space: list[str]) -> tuple[list[str] | None, dict[str, list[str]]]:
    """`labels` read and checked against the model's label space; ignored (warning) by a fusion-only model."""
    common, per_pair = _read_labels(labels, space)
    if (common or per_pair) and not space:
        warnings.warn("this checkpoint has no entity path (fusion only); the given labels are ignored", stacklevel=3)
        common, per_pair = None, {}
    if common is not None:
        _multi_hot(common, space, "--labels")
    return common, per_pair


def _fuse_pair(model: EntityFusionNet, pair: Pair, out: Path, space: list[str],
               names: list[str] | None) -> dict[str, Any]:  # fmt: skip
    """Fuse one pair with the entity `names` (None: the classifier's own); write its PNGs; what it used."""
    # pair ids come from data: an unsafe one fails before its images are read, and nothing leaves --out
    gray_path = safe_child(out, pair.pair_id, ".png")
    color_path = safe_child(out / COLOR_DIR, pair.pair_id, ".png")
    ir_img, vis_img = pair.load()
    ir = ir_gray(ir_img)
    vis_y, cbcr = vis_ycbcr(vis_img)
    check_same_size(ir, vis_y, pair.pair_id)
    source = "given" if names is not None and space else ("predicted" if space else "none")
    hot = _multi_hot(names, space, pair.pair_id) if names is not None and space else None
    y, used = fuse_arrays(model, ir, vis_y, hot)
    _write_png(Image.fromarray(y, mode="L"), gray_path)
    _write_png(to_color(y, cbcr), color_path)
    return {"entities": used, "source": source}


def _write_summary(result: FuseResult, space: list[str]) -> None:
    summary = {
        "checkpoint": str(result.checkpoint),
        "label_space": space,
        "pairs": result.entities,
        "failed": dict(sorted(result.failed.items())),
    }
    atomic_write_json(result.out_dir / SUMMARY, summary)


def fuse(
    run_or_checkpoint: str | Path,
    input: str | Path | list[str | Path] | tuple[str | Path, str | Path],  # noqa: A002 - the CLI's word
    out_dir: str | Path,
    labels: Any = None,
    *,
    dataset_config: str | None = None,
    split: str | None = None,
    device: str = "cpu",
    progress: Any = None,
) -> FuseResult:
    """Fuse every pair of `input` with the model in `run_or_checkpoint`; write PNGs into `out_dir`.

    `labels`: entity names for all pairs (list or "a,b"), or a table file (pair_id, entities); pairs without
    given labels use the classifier's own predictions. A single pair that cannot be fused raises; in a
    batch, each bad pair is reported in `FuseResult.failed` and `fuse.json` and the others are written.
    """
    check_device(device)  # before the checkpoint: a missing GPU must not read as unreadable weights
    ckpt = resolve_checkpoint(run_or_checkpoint)
    model, cfg = load_model(ckpt, device)
    space = list(cfg.labels) if model.n_labels else []
    failed: dict[str, str] = {}
    inputs = list(input) if isinstance(input, list | tuple) else [input]
    pairs = _collect(inputs, space, dataset_config, split, failed)
    common, per_pair = _given_labels(labels, space)
    out = ensure_writable_dir(out_dir)
    ensure_writable_dir(out / COLOR_DIR)
    result = FuseResult(out_dir=out, checkpoint=ckpt, failed=failed)
    task = progress.add_task("fuse", total=len(pairs)) if progress is not None else None
    for pair in pairs:
        names = per_pair.get(pair.pair_id, common if common is not None else pair.labels)
        try:
            result.entities[pair.pair_id] = _fuse_pair(model, pair, out, space, names)
            result.written.append(pair.pair_id)
        except EntityLabelError as e:
            if len(inputs) == 2:  # a single pair: its error is the command's
                raise
            result.failed[pair.pair_id] = str(e)
        if task is not None:
            progress.advance(task)
    _write_summary(result, space)
    if not result.written and result.failed:
        first = next(iter(result.failed.items()))
        raise EntityLabelError(f"no pair could be fused ({len(result.failed)} failed; first: {first[0]}: {first[1]})")
    return result
