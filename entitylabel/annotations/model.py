"""What every annotation reader produces, and the rules they share (pair matching, class mapping, box checks).

Readers never raise on a bad file: each unusable file, line, entry or box becomes a row of the problems table
(`path, pair_id, kind, message`) and everything else is kept. Kinds:

- `malformed`: a line, XML element or JSON entry that cannot be read as a box (wrong field count, not a number,
  not well-formed XML/JSON, a missing element); that box (or file) is left out;
- `unreadable`: a file that cannot be read or is not UTF-8 text;
- `unknown_class`: a class id or name that `classes.txt`/the categories do not name, or a name the vocabulary has no
  form for; the box is left out;
- `bad_box`: zero or negative width or height; left out;
- `box_outside`: no part of the box lies inside the image; left out;
- `box_clipped`: the box reaches more than 1 px beyond the image; kept, clipped to the image (an overshoot of 1 px
  or less is rounding in annotation tools and is clipped without a row);
- `size_mismatch`: the file states an image size other than the pair's; its boxes are left out;
- `unmatched`: no pair of the manifest has this file's stem; `ambiguous`: several do;
- `duplicate`: a second file for the same pair and modality; the first (in path order) is used;
- `missing_file`: a pair with no annotation file for a modality (an empty file means "no objects"; a missing
  one means "not annotated", so the pair is left out of that modality's labels);
- `not_annotation`: a file in an annotation folder that no reader reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..discover import printable_path
from ..extract.vocab import Vocabulary

MODALITIES = ("ir", "vis", "fusion", "any")
BOX_COLUMNS = ("pair_id", "modality", "class_name", "entity", "x0", "y0", "x1", "y1")
PROBLEM_COLUMNS = ("path", "pair_id", "kind", "message")
FILE_COLUMNS = ("pair_id", "modality", "path")
PROBLEM_KINDS = (
    "malformed",
    "unreadable",
    "unknown_class",
    "bad_box",
    "box_outside",
    "box_clipped",
    "size_mismatch",
    "unmatched",
    "ambiguous",
    "duplicate",
    "missing_file",
    "not_annotation",
)
CLIP_TOLERANCE = 1.0  # px beyond the image clipped without a problem row


@dataclass
class Annotations:
    """Boxes of a dataset's own annotations, matched to the pairs of a manifest.

    `files` says which pairs each modality annotates (one row per annotation file used): a pair in it with no
    box has no objects; a pair not in it is unknown for that modality.
    """

    boxes: pd.DataFrame
    problems: pd.DataFrame
    covered: list[str]
    files: pd.DataFrame
    format: str = ""
    source: Path | None = None
    vocab: str = ""

    @property
    def modalities(self) -> list[str]:
        """Modalities with at least one annotation file, in `MODALITIES` order."""
        have = set(self.files["modality"])
        return [m for m in MODALITIES if m in have]

    def pair_ids(self, modality: str | None = None) -> list[str]:
        """Sorted ids of the pairs annotated in `modality` (None: in any modality)."""
        sel = self.files if modality is None else self.files[self.files["modality"] == modality]
        return sorted(set(sel["pair_id"]))

    def labels(self, modality: str | None = None) -> dict[str, set[str]]:
        """pair_id -> entities with a box in `modality` (None: the union over modalities), for every pair the
        annotations cover in that modality (an empty set: annotated, no object)."""
        out: dict[str, set[str]] = {pid: set() for pid in self.pair_ids(modality)}
        sel = self.boxes if modality is None else self.boxes[self.boxes["modality"] == modality]
        for pid, ent in zip(sel["pair_id"], sel["entity"], strict=True):
            if pid in out:
                out[pid].add(ent)
        return out

    def describe(self) -> str:
        """One line for the terminal: format, boxes, pairs, modalities, covered entities, problems by kind."""
        kinds = self.problems["kind"].value_counts().sort_index()
        probs = ", ".join(f"{k} {n}" for k, n in kinds.items()) or "none"
        return (
            f"annotations ({self.format}): {len(self.boxes)} boxes on {len(self.pair_ids())} pairs "
            f"[{', '.join(self.modalities)}], covering {', '.join(self.covered) or 'no entity'}; problems: {probs}"
        )

    def boxes_of(self, pair_id: str, modality: str | None = None) -> np.ndarray:
        """(N, 4) float array x0, y0, x1, y1 of one pair's boxes in `modality` (None: all modalities)."""
        sel = self.boxes[self.boxes["pair_id"] == pair_id]
        if modality is not None:
            sel = sel[sel["modality"] == modality]
        return sel[["x0", "y0", "x1", "y1"]].to_numpy(dtype=np.float64).reshape(-1, 4)


@dataclass(frozen=True)
class PairRef:
    """The part of a manifest row a reader needs."""

    pair_id: str
    width: int
    height: int


class PairIndex:
    """Finds the pair an annotation file belongs to, by stem, as discover pairs files.

    Discover pairs an IR and a VIS file by their stem; an annotation file joins that pair when its stem is the pair
    id or the stem of the pair's IR or VIS file. When several pairs share the stem (split folders reuse names),
    the folder names on the annotation file's path pick the split.
    """

    def __init__(self, pairs: pd.DataFrame) -> None:
        self.by_id: dict[str, PairRef] = {}
        self.splits: dict[str, str] = {}
        self.by_stem: dict[str, list[str]] = {}
        self.stem_of: dict[str, str] = {}  # pair_id -> its IR file stem (what an annotation file would be named)
        for rec in pairs[["pair_id", "split", "ir_path", "vis_path", "width", "height"]].itertuples(index=False):
            self.by_id[rec.pair_id] = PairRef(rec.pair_id, int(rec.width), int(rec.height))
            self.splits[rec.pair_id] = rec.split
            self.stem_of[rec.pair_id] = Path(rec.ir_path).stem
            for stem in dict.fromkeys([Path(rec.ir_path).stem, Path(rec.vis_path).stem]):
                self.by_stem.setdefault(stem, []).append(rec.pair_id)

    def match(self, stem: str, folders: tuple[str, ...] = ()) -> PairRef | str:
        """The pair of an annotation file, or why there is none ("unmatched: ..." / "ambiguous: ...")."""
        if stem in self.by_id:
            return self.by_id[stem]
        hits = self.by_stem.get(stem, [])
        if len(hits) > 1:
            lowered = {f.lower() for f in folders}
            hits = [pid for pid in hits if self.splits[pid].lower() in lowered] or hits
        if len(hits) == 1:
            return self.by_id[hits[0]]
        if not hits:
            return f"unmatched: no pair of the manifest has the stem {stem!r}"
        return f"ambiguous: stem {stem!r} names {len(hits)} pairs ({', '.join(sorted(hits)[:3])}...)"


class Collector:
    """Gathers boxes, files and problems from the readers; turns them into `Annotations`."""

    def __init__(self, source: Path, pairs: pd.DataFrame, vocab: Vocabulary) -> None:
        self.source = source
        self.index = PairIndex(pairs)
        self.vocab = vocab
        self.boxes: list[dict[str, Any]] = []
        self.problems: list[dict[str, str]] = []
        self.files: dict[tuple[str, str], str] = {}  # (pair_id, modality) -> file used
        self.seen: set[tuple[str, str]] = set()  # (pair_id, modality) with any file, usable or not
        self.covered: set[str] = set()
        self.scanned: list[tuple[str, Path, str]] = []  # (modality, folder, suffix) read: for missing_file rows

    def rel(self, path: Path) -> str:
        try:
            text = path.relative_to(self.source).as_posix()
        except ValueError:
            text = path.as_posix()
        return printable_path(text if text != "." else path.name)

    def problem(self, path: Path | str, kind: str, message: str, pair_id: str = "") -> None:
        rel = self.rel(path) if isinstance(path, Path) else path
        self.problems.append({"path": rel, "pair_id": pair_id, "kind": kind, "message": message})

    def entity(self, class_name: str) -> str | None:
        """The vocabulary entity a class name maps to by the vocabulary's forms (People -> person)."""
        name = str(class_name).strip()
        return self.vocab.lookup(name) or self.vocab.lookup(name.replace("_", " "))

    def declare(self, class_names: list[str]) -> None:
        """Classes the annotations label (classes.txt, COCO categories): the entities they cover."""
        self.covered |= {e for c in class_names if (e := self.entity(c))}

    def match(
        self, path: Path, stem: str, modality: str, folders: tuple[str, ...] = (), where: str = ""
    ) -> PairRef | None:
        """The pair of an annotation file (or entry: `where` says which); unmatched or ambiguous: a problem row."""
        found = self.index.match(stem, folders)
        if isinstance(found, str):
            kind, _, why = found.partition(": ")
            self.problem(path, kind, f"{where}: {why}" if where else why)
            return None
        self.seen.add((found.pair_id, modality))
        return found

    def claim(self, path: Path, pair: PairRef, modality: str, where: str = "") -> bool:
        """Record `path` (`where` in it) as the annotation of `pair` in `modality`; False (a problem row) if
        the pair has one already."""
        key = (pair.pair_id, modality)
        here = f"{self.rel(path)} {where}".strip()
        if key in self.files:
            msg = f"pair already annotated in {modality} by {self.files[key]}; {where or 'this file'} is not used"
            self.problem(path, "duplicate", msg, pair.pair_id)
            return False
        self.files[key] = here
        return True

    def check_size(self, path: Path, pair: PairRef, width: Any, height: Any, where: str = "") -> bool:
        """False (a size_mismatch row) when a stated image size is not the pair's; a missing or zero size passes."""
        try:
            w, h = int(float(width)), int(float(height))
        except (TypeError, ValueError):
            return True
        if w <= 0 or h <= 0 or (w, h) == (pair.width, pair.height):
            return True
        msg = f"states a {w}x{h} image but the pair is {pair.width}x{pair.height}; its boxes are left out"
        self.problem(path, "size_mismatch", f"{where}: {msg}" if where else msg, pair.pair_id)
        return False

    def box(
        self, path: Path, pair: PairRef, modality: str, class_name: str, xyxy: tuple[float, ...], where: str
    ) -> None:
        """Check and keep one box (pixels, x0 y0 x1 y1); `where` locates it in the file for problem rows."""
        entity = self.entity(class_name)
        if entity is None:
            msg = f"{where}: class {class_name!r} has no form in vocabulary {self.vocab.name!r}; box left out"
            self.problem(path, "unknown_class", msg, pair.pair_id)
            return
        self.covered.add(entity)
        kept, issue = place_box(xyxy, pair.width, pair.height)
        if issue is not None:
            self.problem(path, issue[0], f"{where}: {issue[1]}", pair.pair_id)
        if kept is None:
            return
        x0, y0, x1, y1 = kept
        self.boxes.append(
            {"pair_id": pair.pair_id, "modality": modality, "class_name": str(class_name).strip(),
             "entity": entity, "x0": x0, "y0": y0, "x1": x1, "y1": y1}
        )  # fmt: skip

    def scanned_folder(self, modality: str, folder: Path, suffix: str) -> None:
        """Every pair should have a `suffix` file for `modality` in `folder` (or an entry in `folder`, a file)."""
        self.scanned.append((modality, folder, suffix))

    def result(self, fmt: str) -> Annotations:
        for modality, folder, suffix in self.scanned:  # every pair should have a file per modality read
            for pid in sorted(self.index.by_id):
                if (pid, modality) not in self.seen:
                    if folder.is_file():  # one COCO file: the pair has no image entry in it
                        expected, msg = self.rel(folder), f"no image entry ({modality}) for this pair"
                    else:
                        expected = self.rel(folder / f"{self.index.stem_of[pid]}{suffix}")
                        msg = f"no {modality} annotation for this pair"
                    self.problem(expected, "missing_file", msg, pid)
        boxes = pd.DataFrame(self.boxes, columns=list(BOX_COLUMNS))
        boxes = boxes.astype({c: "float64" for c in ("x0", "y0", "x1", "y1")})
        order = {m: i for i, m in enumerate(MODALITIES)}
        boxes = boxes.sort_values(["pair_id", "modality"], key=lambda s: s.map(order) if s.name == "modality" else s,
                                  kind="stable").reset_index(drop=True)  # fmt: skip
        problems = pd.DataFrame(self.problems, columns=list(PROBLEM_COLUMNS))
        problems = problems.sort_values(["path", "kind"], kind="stable").reset_index(drop=True)
        files = pd.DataFrame(
            [{"pair_id": p, "modality": m, "path": f} for (p, m), f in sorted(self.files.items())],
            columns=list(FILE_COLUMNS),
        )
        covered = [e for e in self.vocab.names if e in self.covered]
        return Annotations(boxes, problems, covered, files, fmt, self.source, self.vocab.name)


def place_box(
    xyxy: tuple[float, ...], width: int, height: int
) -> tuple[tuple[float, float, float, float] | None, tuple[str, str] | None]:
    """(the box as kept or None, (kind, message) when it is unusable or reaches outside the image, else None)."""
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        return None, ("malformed", f"box {_fmt(xyxy)} has a non-finite coordinate")
    if x1 <= x0 or y1 <= y0:
        return None, ("bad_box", f"box {_fmt(xyxy)} has zero or negative size")
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        return None, ("box_outside", f"box {_fmt(xyxy)} lies outside the {width}x{height} image; left out")
    kept = clip_box(xyxy, width, height)
    tol = CLIP_TOLERANCE
    if x0 < -tol or y0 < -tol or x1 > width + tol or y1 > height + tol:
        return kept, ("box_clipped", f"box {_fmt(xyxy)} reaches outside the {width}x{height} image; clipped to it")
    return kept, None


def clip_box(xyxy: tuple[float, ...], width: int, height: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    return max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))


def _fmt(xyxy: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{float(v):.6g}" for v in xyxy) + ")"
