"""`load_annotations`: find the format of an annotation source, read it, match it to a pair manifest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..discover import _children, scan_folder
from ..errors import EntityLabelError
from ..extract.vocab import Vocabulary, load_vocab
from ..pairs import PairManifest
from .coco import read_coco
from .model import Annotations, Collector
from .voc import read_voc
from .yolo import CLASSES_FILE, read_yolo

FORMATS = ("yolo", "voc", "coco")
READERS: dict[str, Callable[[Collector, Path], None]] = {"yolo": read_yolo, "voc": read_voc, "coco": read_coco}
# Where datasets keep their annotations when the dataset root is given (MSRS-labelled: labels/, M3FD: Annotation/)
ANNOTATION_DIRS = ("labels", "annotation", "annotations")


def detect_format(source: str | Path) -> tuple[str, Path]:
    """(format, the file or folder to read): a .json file is COCO; in a folder, classes.txt means YOLO, else
    .xml files VOC, else .json files COCO. A dataset root with a labels/ or Annotation/ folder is read there."""
    src = Path(source)
    if src.is_file():
        if src.suffix.lower() == ".json":
            return "coco", src
        raise EntityLabelError("not an annotation file", path=src, hint="give a COCO .json file or a folder")
    if not src.is_dir():
        raise EntityLabelError("annotations not found", path=src)
    for name in ANNOTATION_DIRS:
        sub = _children(src).get(name)
        if sub is not None and not _own_files(src):
            return detect_format(sub)
    suffixes = {p.suffix.lower() for p in scan_folder(src).others}
    if any(p.name.lower() == CLASSES_FILE for p in scan_folder(src).others):
        return "yolo", src
    for suffix, fmt in ((".xml", "voc"), (".json", "coco"), (".txt", "yolo")):
        if suffix in suffixes:
            return fmt, src
    raise EntityLabelError("no annotation files found (YOLO .txt + classes.txt, VOC .xml or COCO .json)", path=src)


def _own_files(folder: Path) -> bool:
    """True when the folder itself holds annotation-looking files (not only a labels/ sub-folder)."""
    return any(
        p.is_file() and p.suffix.lower() in (".xml", ".json") or p.name.lower() == CLASSES_FILE
        for p in folder.iterdir()
    )


def load_annotations(
    source: str | Path,
    pairs: pd.DataFrame | PairManifest,
    vocab: Vocabulary | str | Path | None = None,
    *,
    fmt: str | None = None,
) -> Annotations:
    """Read the annotations under `source` and match them to the pairs of a manifest (its table).

    Class names become vocabulary entities by the vocabulary's forms (default vocabulary `ivif`). Every file,
    line or box that cannot be used is a row of `.problems`; nothing raises for bad annotation data. Raises
    `EntityLabelError` only when `source` is no annotation source at all.
    """
    table = pairs.df if isinstance(pairs, PairManifest) else pairs
    voc = vocab if isinstance(vocab, Vocabulary) else load_vocab(vocab or "ivif")
    found, where = detect_format(source)
    if fmt is not None:
        if fmt not in READERS:
            raise EntityLabelError(f"unknown annotation format {fmt!r}", hint=f"choose one of {', '.join(FORMATS)}")
        found = fmt
    col = Collector(where if where.is_dir() else where.parent, table, voc)
    READERS[found](col, where)
    return col.result(found)
