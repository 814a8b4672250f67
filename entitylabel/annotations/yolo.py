"""YOLO txt labels: one `<stem>.txt` per image, a line `class x_center y_center width height` per box, normalised
to 0..1 by the image's width and height; `classes.txt` names the class ids (a name per line, line n = id n, or
`id name` lines). Per-modality sub-folders (`ir`, `vi`, `fusion`) or one flat folder; an empty file = no objects."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import EntityLabelError
from .folders import modality_folders, read_text, rel_folders, scan_annotations
from .model import Collector

CLASSES_FILE = "classes.txt"
_ID_NAME = re.compile(r"^(\d+)\s+(\S.*)$")


def read_classes(path: Path) -> dict[int, str]:
    """Class id -> name from classes.txt; either every line is `id name` or line n names id n."""
    try:
        lines = [ln.strip() for ln in path.read_bytes().decode("utf-8-sig").splitlines()]
    except (OSError, UnicodeDecodeError) as e:
        raise EntityLabelError(f"cannot read the YOLO class list ({e})", path=path) from None
    lines = [ln for ln in lines if ln]
    if not lines:
        raise EntityLabelError("the YOLO class list is empty", path=path)
    pairs = [_ID_NAME.match(ln) for ln in lines]
    if all(pairs):
        return {int(m.group(1)): m.group(2).strip() for m in pairs if m}
    return dict(enumerate(lines))


def find_classes(source: Path, folders: list[tuple[str, Path]]) -> Path:
    """classes.txt in the source folder, else in the first modality folder that has one."""
    for folder in [source, *(f for _, f in folders)]:
        if (folder / CLASSES_FILE).is_file():
            return folder / CLASSES_FILE
    raise EntityLabelError(
        "YOLO labels without a classes.txt: class ids cannot be named", path=source, hint="add classes.txt"
    )


def read_yolo(col: Collector, source: Path) -> None:
    folders = modality_folders(source)
    names = read_classes(find_classes(source, folders))
    col.declare(list(names.values()))
    for modality, folder in folders:
        col.scanned_folder(modality, folder, ".txt")
        for path in scan_annotations(col, folder, ".txt", skip=(CLASSES_FILE,)):
            _read_file(col, path, folder, modality, names)


def _read_file(col: Collector, path: Path, folder: Path, modality: str, names: dict[int, str]) -> None:
    pair = col.match(path, path.stem, modality, rel_folders(path, folder))
    if pair is None:
        return
    text = read_text(col, path, pair.pair_id)
    if text is None or not col.claim(path, pair, modality):
        return
    w, h = pair.width, pair.height
    for n, line in enumerate(text.splitlines(), 1):
        fields = line.split()  # any whitespace: MSRS's fusion labels use two spaces
        if not fields:
            continue
        where = f"line {n}"
        if len(fields) != 5:
            msg = f"{where}: expected 5 fields 'class x_center y_center width height', got {len(fields)}"
            col.problem(path, "malformed", msg, pair.pair_id)
            continue
        try:
            cls = int(fields[0])
            xc, yc, bw, bh = (float(v) for v in fields[1:])
        except ValueError:
            msg = f"{where}: not a class id and four numbers: {line.strip()[:80]!r}"
            col.problem(path, "malformed", msg, pair.pair_id)
            continue
        if cls not in names:
            col.problem(path, "unknown_class", f"{where}: class id {cls} is not in classes.txt; box left out",
                        pair.pair_id)  # fmt: skip
            continue
        box = ((xc - bw / 2) * w, (yc - bh / 2) * h, (xc + bw / 2) * w, (yc + bh / 2) * h)
        col.box(path, pair, modality, names[cls], box, where)
