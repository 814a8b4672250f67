"""COCO JSON: `images` (id, file_name, width, height), `categories` (id, name) and `annotations` (image_id,
category_id, bbox = [x, y, width, height] in pixels). A file (or one per modality folder); an image entry
with no annotation = no objects."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any

from .folders import modality_folders, read_text, scan_annotations
from .model import Collector, PairRef


def read_coco(col: Collector, source: Path) -> None:
    if source.is_file():
        col.scanned_folder("any", source, ".json")
        _read_file(col, source, "any")
        return
    for modality, folder in modality_folders(source):
        col.scanned_folder(modality, folder, ".json")
        for path in scan_annotations(col, folder, ".json"):
            _read_file(col, path, modality)


def _key(v: Any) -> int | str | None:
    """An id as COCO writes it (int, or a string some exporters use); None when it is neither."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int | str):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


def _read_file(col: Collector, path: Path, modality: str) -> None:
    text = read_text(col, path)
    if text is None:
        return
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        col.problem(path, "malformed", f"not valid JSON ({e})")
        return
    lists = {k: doc.get(k) if isinstance(doc, dict) else None for k in ("images", "annotations", "categories")}
    bad = [k for k, v in lists.items() if not isinstance(v, list)]
    if bad:
        col.problem(path, "malformed", f"not a COCO file: no list {', '.join(repr(k) for k in bad)}")
        return
    cats = _categories(col, path, lists["categories"])
    col.declare(list(cats.values()))
    images = _images(col, path, lists["images"], modality)
    for n, ann in enumerate(lists["annotations"]):
        where = f"annotations[{n}]"
        if not isinstance(ann, dict):
            col.problem(path, "malformed", f"{where}: no image_id; box left out")
            continue
        image_id = _key(ann.get("image_id"))
        if image_id not in images:
            col.problem(path, "malformed", f"{where}: image_id {image_id!r} is not in images; box left out")
            continue
        img = images[image_id]
        if img is None:  # its image entry is a problem row already
            continue
        cat = cats.get(_key(ann.get("category_id")))  # type: ignore[arg-type]
        if cat is None:
            msg = f"{where}: category_id {ann.get('category_id')!r} is not in categories; box left out"
            col.problem(path, "unknown_class", msg, img.pair_id)
            continue
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_number(v) for v in bbox)):
            col.problem(path, "malformed", f"{where}: bbox must be [x, y, width, height] numbers", img.pair_id)
            continue
        x, y, w, h = (float(v) for v in bbox)
        col.box(path, img, modality, cat, (x, y, x + w, y + h), f"{where} ({cat})")


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _categories(col: Collector, path: Path, entries: list) -> dict[int | str, str]:
    cats: dict[int | str, str] = {}
    for n, c in enumerate(entries):
        key = _key(c.get("id")) if isinstance(c, dict) else None
        name = c.get("name") if isinstance(c, dict) else None
        if key is None or not isinstance(name, str) or not name.strip():
            col.problem(path, "malformed", f"categories[{n}]: needs an id and a name")
            continue
        cats[key] = name.strip()
    return cats


def _images(col: Collector, path: Path, entries: list, modality: str) -> dict[int | str, PairRef | None]:
    """image id -> its pair, or None for an entry that cannot be used (a problem row says why)."""
    ids = Counter(_key(img.get("id")) for img in entries if isinstance(img, dict))
    images: dict[int | str, PairRef | None] = {}
    for n, img in enumerate(entries):
        where = f"images[{n}]"
        key = _key(img.get("id")) if isinstance(img, dict) else None
        name = img.get("file_name") if isinstance(img, dict) else None
        if key is None or not isinstance(name, str) or not name.strip():
            col.problem(path, "malformed", f"{where}: needs an id and a file_name")
            continue
        if ids[key] > 1:  # which image its boxes belong to is unknowable
            msg = f"{where}: image id {key!r} appears {ids[key]} times; its boxes are left out"
            col.problem(path, "malformed", msg)
            images[key] = None
            continue
        rel = PurePosixPath(name.replace("\\", "/"))
        pair = col.match(path, rel.stem, modality, rel.parent.parts, where=f"{where} {name!r}")
        if pair is None or not col.check_size(path, pair, img.get("width"), img.get("height"), where):
            images[key] = None
            continue
        images[key] = pair if col.claim(path, pair, modality, where) else None
    return images
