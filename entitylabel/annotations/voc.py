"""Pascal VOC XML, as M3FD ships it (`Annotation/<stem>.xml`): `<size>` and one `<object>` per box with `<name>` and
`<bndbox>` xmin ymin xmax ymax in pixels. Parsed with defusedxml: entity declarations and external references are
refused (a problem row), never expanded."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from .folders import modality_folders, read_text, rel_folders, scan_annotations
from .model import Collector

_COORDS = ("xmin", "ymin", "xmax", "ymax")


def read_voc(col: Collector, source: Path) -> None:
    for modality, folder in modality_folders(source):
        col.scanned_folder(modality, folder, ".xml")
        for path in scan_annotations(col, folder, ".xml"):
            _read_file(col, path, folder, modality)


def _read_file(col: Collector, path: Path, folder: Path, modality: str) -> None:
    pair = col.match(path, path.stem, modality, rel_folders(path, folder))
    if pair is None:
        return
    text = read_text(col, path, pair.pair_id)
    if text is None:
        return
    try:
        root = SafeET.fromstring(text)
    except ET.ParseError as e:
        col.problem(path, "malformed", f"not well-formed XML ({e})", pair.pair_id)
        return
    except DefusedXmlException as e:
        col.problem(path, "malformed", f"XML refused: {type(e).__name__} (DTD or entity declarations)", pair.pair_id)
        return
    if root.tag != "annotation":
        col.problem(path, "malformed", f"root element is <{root.tag}>, expected <annotation>", pair.pair_id)
        return
    size = root.find("size")
    if size is not None and not col.check_size(path, pair, size.findtext("width"), size.findtext("height")):
        return
    if not col.claim(path, pair, modality):
        return
    for n, obj in enumerate(root.iter("object"), 1):
        where = f"object {n}"
        name = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        if not name or box is None:
            col.problem(path, "malformed", f"{where}: no <name> or no <bndbox>; box left out", pair.pair_id)
            continue
        try:
            xyxy = tuple(float((box.findtext(k) or "").strip()) for k in _COORDS)
        except ValueError:
            col.problem(path, "malformed", f"{where}: <bndbox> needs numbers in {', '.join(_COORDS)}", pair.pair_id)
            continue
        col.box(path, pair, modality, name, xyxy, f"{where} ({name})")
