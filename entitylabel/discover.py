"""Stage 1 — discover: find IR/VIS pairs under a dataset root and validate every file.

Layouts, as the datasets really ship:
- ``roadscene``: ``cropinfrared/`` (IR) + ``crop_LR_visible/`` (VIS). ``infrared/`` (uncropped) and
  ``crop_HR_visible/`` (3x larger) are not pixel-aligned and are never paired.
- ``msrs``: ``{train,test}/{ir,vi}``; the split comes from the folder.
- ``m3fd``: ``Ir/`` + ``Vis/`` (+ ``Annotation/``), the official spelling.
- ``tno``: ``ir/`` + ``vi/`` at the root, as TNO and most fusion repos ship (other spellings: ``vis``,
  ``Inf``, ``Infrared``/``Visible``, ``IR``/``VI``).
- ``generic``: any folder (up to three levels down) holding exactly one child whose name says infrared and one
  whose name says visible; several such folders become splits named by their relative path.

Files pair by relative stem, extension-agnostic. Every file that cannot be paired or read is a row in the
problems table; pairs beside it are kept. Known OS litter (``Thumbs.db``, ``.DS_Store``, hidden files) is
counted as ignored, not reported as a problem.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import warnings
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
from PIL import Image, UnidentifiedImageError

from . import __version__
from .errors import EntityLabelError
from .images import HIGH_BIT_MODES, IMAGE_EXTENSIONS, exif_orientation, upright_size
from .io import atomic_write_json, ensure_writable_dir, sha256_bytes, write_parquet
from .pairs import NO_SPLIT, PAIRS_SCHEMA, PROBLEMS_SCHEMA, ROOT_KEY, make_pair_id, safe_name

LAYOUTS = ("roadscene", "msrs", "m3fd", "tno", "generic")
IR_NAMES = ("ir", "inf", "infrared", "thermal", "lwir", "tir")
VIS_NAMES = ("vi", "vis", "visible", "rgb", "visual")
SPLIT_NAMES = ("train", "test", "val", "valid", "validation", "trainval")
SYSTEM_FILES = ("thumbs.db", ".ds_store", "desktop.ini")
MAX_PAIR_ID_LEN = 200  # characters (all ASCII after sanitising); file names built from ids add suffixes
_IR_WORDS = re.compile(r"infrared|thermal|lwir|(?:^|[^a-z])(?:ir|inf|tir)(?:$|[^a-z])")
_VIS_WORDS = re.compile(r"visible|(?:^|[^a-z])(?:vi|vis|rgb|visual)(?:$|[^a-z])")

# Problem kinds. "error" rows mean the file is not in any pair; "warning" rows keep the pair.
SEVERITY = {
    "empty_file": "error",
    "unreadable": "error",
    "corrupt": "error",
    "not_image": "error",
    "duplicate_stem": "error",
    "missing_vis": "error",
    "missing_ir": "error",
    "size_mismatch": "error",
    "bad_file_name": "error",
    "not_regular_file": "error",
    "too_large": "error",
    "ir_16bit": "warning",
    "large_image": "warning",
    "exif_rotated": "warning",
}


@dataclass(frozen=True)
class PairDir:
    """One folder pair to match: IR folder, VIS folder and the split they belong to."""

    split: str
    ir_dir: Path
    vis_dir: Path


@dataclass(frozen=True)
class Layout:
    name: str
    pair_dirs: tuple[PairDir, ...]


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    mode: str | None = None
    width: int = 0
    height: int = 0
    sha256: str = ""
    problem: str | None = None  # problem kind when the file is unusable
    message: str = ""
    large: bool = False  # over Pillow's decompression-bomb warning limit (still decodable)
    orientation: int = 1  # EXIF orientation; width/height are after it is applied (images.py: one rule)


@dataclass
class DiscoveryResult:
    root: Path
    dataset: str
    layout: str
    pairs: pd.DataFrame
    problems: pd.DataFrame
    ignored: list[str] = field(default_factory=list)
    out_dir: Path | None = None

    def summary(self) -> dict[str, Any]:
        per_split = self.pairs["split"].value_counts().sort_index().to_dict() if len(self.pairs) else {}
        return {
            "root": str(self.root),
            "dataset": self.dataset,
            "layout": self.layout,
            "pairs": int(len(self.pairs)),
            "pairs_per_split": {k: int(v) for k, v in per_split.items()},
            "problems": {k: int(v) for k, v in sorted(Counter(self.problems["kind"]).items())},
            "ignored_files": len(self.ignored),
        }

    def print_summary(self, console: Any) -> None:
        from rich.markup import escape
        from rich.table import Table

        s = self.summary()
        console.print(
            f"[bold]{escape(s['dataset'])}[/]: layout [cyan]{escape(s['layout'])}[/], {s['pairs']} pairs "
            + escape(", ".join(f"{k}={v}" for k, v in s["pairs_per_split"].items())),
            markup=True,
        )
        if s["ignored_files"]:
            console.print(f"ignored {s['ignored_files']} system file(s) (Thumbs.db, .DS_Store, hidden)")
        if s["problems"]:
            table = Table(title="problems", show_lines=False)
            table.add_column("kind")
            table.add_column("severity")
            table.add_column("count", justify="right")
            for kind, n in s["problems"].items():
                table.add_row(kind, SEVERITY.get(kind, "error"), str(n))
            console.print(table)
        else:
            console.print("no problems")
        if self.out_dir is not None:
            console.print(f"wrote {self.out_dir / 'pairs.parquet'} and {self.out_dir / 'problems.parquet'}")


# --- layout detection -------------------------------------------------------------------------------
def _children(folder: Path) -> dict[str, Path]:
    """Sub-folders by lower-case name (hidden ones skipped)."""
    try:
        return {p.name.lower(): p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")}
    except OSError as e:
        raise EntityLabelError(f"cannot list folder ({e.strerror})", path=folder) from None


def _named_pair(folder: Path) -> tuple[Path, Path] | None:
    """The IR and VIS children of `folder` by the exact names datasets use, if exactly one of each."""
    kids = _children(folder)
    ir = [kids[n] for n in IR_NAMES if n in kids]
    vis = [kids[n] for n in VIS_NAMES if n in kids]
    return (ir[0], vis[0]) if len(ir) == 1 and len(vis) == 1 else None


def _worded_pair(folder: Path) -> tuple[Path, Path] | None:
    """The children of `folder` whose names say infrared and visible, if exactly one of each."""
    kids = _children(folder)
    ir = [p for n, p in kids.items() if _IR_WORDS.search(n) and not _VIS_WORDS.search(n)]
    vis = [p for n, p in kids.items() if _VIS_WORDS.search(n) and not _IR_WORDS.search(n)]
    return (ir[0], vis[0]) if len(ir) == 1 and len(vis) == 1 else None


def _roadscene(root: Path) -> Layout | None:
    kids = _children(root)
    if "cropinfrared" in kids and "crop_lr_visible" in kids:
        return Layout("roadscene", (PairDir(NO_SPLIT, kids["cropinfrared"], kids["crop_lr_visible"]),))
    return None


def _msrs(root: Path) -> Layout | None:
    dirs = []
    for name, sub in _children(root).items():
        if name in SPLIT_NAMES and (pair := _named_pair(sub)):
            dirs.append(PairDir(name, *pair))
    return Layout("msrs", tuple(dirs)) if dirs else None


def _m3fd(root: Path) -> Layout | None:
    names = {p.name: p for p in root.iterdir() if p.is_dir()}
    if "Ir" in names and "Vis" in names:
        return Layout("m3fd", (PairDir(NO_SPLIT, names["Ir"], names["Vis"]),))
    return None


def _tno(root: Path) -> Layout | None:
    pair = _named_pair(root)
    return Layout("tno", (PairDir(NO_SPLIT, *pair),)) if pair else None


def _generic(root: Path, max_depth: int = 3) -> Layout | None:
    found: list[tuple[Path, tuple[Path, Path]]] = []

    def walk(folder: Path, depth: int) -> None:
        pair = _named_pair(folder) or _worded_pair(folder)
        if pair:
            found.append((folder, pair))
            return
        if depth < max_depth:
            for sub in _children(folder).values():
                walk(sub, depth + 1)

    walk(root, 0)
    if not found:
        return None
    if len(found) == 1 and found[0][0] == root:
        return Layout("generic", (PairDir(NO_SPLIT, *found[0][1]),))
    return Layout(
        "generic",
        tuple(PairDir(safe_name(folder.relative_to(root).as_posix() or NO_SPLIT), *pair) for folder, pair in found),
    )


_DETECTORS = {"roadscene": _roadscene, "msrs": _msrs, "m3fd": _m3fd, "tno": _tno, "generic": _generic}


def detect_layout(root: str | Path, layout: str | None = None) -> Layout:
    """Pick the layout of `root` (or check the forced one) and the folder pairs it implies."""
    root = Path(root)
    if not root.is_dir():
        raise EntityLabelError("dataset root is not a folder", path=root)
    if layout is not None:
        if layout not in _DETECTORS:
            raise EntityLabelError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
        found = _DETECTORS[layout](root)
        if found is None:
            raise EntityLabelError(f"does not look like the {layout} layout", path=root, hint=_layout_hint())
        return found
    for name in LAYOUTS:
        found = _DETECTORS[name](root)
        if found is not None:
            return found
    raise EntityLabelError("no infrared/visible folders found", path=root, hint=_layout_hint())


def _layout_hint() -> str:
    return (
        "expected e.g. ir/ + vi/, Ir/ + Vis/, {train,test}/{ir,vi}, cropinfrared/ + crop_LR_visible/, "
        "or two folders named for infrared and visible; see --layout"
    )


# --- scanning and probing files ------------------------------------------------------------------------
def _is_utf8(text: str) -> bool:
    """False for a name holding bytes that are not UTF-8 (Python keeps them as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable_path(text: str) -> str:
    """A path as valid UTF-8 text: bytes that are not UTF-8 shown as `\\xNN` (Parquet, JSON and the terminal
    all need valid UTF-8; the raw name is not representable there)."""
    return text if _is_utf8(text) else os.fsencode(text).decode("utf-8", "backslashreplace")


_SPECIAL_FILES = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"))


def _special_kind(path: Path) -> str | None:
    """What a path is when it exists but is not a regular file or folder (reading a FIFO would block)."""
    try:
        mode = path.stat().st_mode
    except OSError:  # dangling link, vanished file: reading it reports why
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return next((what for test, what in _SPECIAL_FILES if test(mode)), "a block device")


@dataclass
class Scan:
    """What one IR or VIS folder holds (recursively), sorted into what discover does with each file."""

    by_stem: dict[str, list[Path]] = field(default_factory=lambda: defaultdict(list))  # images by relative stem
    others: list[Path] = field(default_factory=list)  # not images
    ignored: list[Path] = field(default_factory=list)  # system files and hidden paths
    bad_names: list[Path] = field(default_factory=list)  # names that are not valid UTF-8
    specials: list[tuple[Path, str]] = field(default_factory=list)  # FIFOs, sockets, devices, and what they are
    unlisted: list[tuple[Path, str]] = field(default_factory=list)  # folders that could not be listed, and why


def scan_folder(folder: Path) -> Scan:
    """Sort every file under `folder`. os.walk, not rglob: rglob skips a folder it may not list without a word,
    and every file discover cannot check must be a problem row. Links to folders are not followed."""
    scan = Scan()
    found: list[Path] = []

    def unlisted(e: OSError) -> None:
        scan.unlisted.append((Path(e.filename or folder), e.strerror or type(e).__name__))

    for dirpath, _dirs, names in os.walk(folder, onerror=unlisted):
        found += [Path(dirpath, n) for n in names]
    for p in sorted(found):
        rel = p.relative_to(folder)
        if p.name.lower() in SYSTEM_FILES or any(part.startswith(".") for part in rel.parts):
            scan.ignored.append(p)
        elif not _is_utf8(str(p)):  # no pair id, manifest path or caption key can be made from it
            scan.bad_names.append(p)
        elif what := _special_kind(p):
            scan.specials.append((p, what))
        elif p.suffix.lower() in IMAGE_EXTENSIONS:
            scan.by_stem[rel.with_suffix("").as_posix()].append(p)
        else:
            scan.others.append(p)
    scan.unlisted.sort()
    return scan


def probe_image(path: Path) -> ImageInfo:
    """Hash a file and fully decode it (so truncated files are caught, not just bad headers)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        return ImageInfo(path, problem="unreadable", message=f"cannot read file ({e.strerror or e})")
    if not data:
        return ImageInfo(path, problem="empty_file", message="file is empty (0 bytes)")
    digest = sha256_bytes(data)
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            large = Image.MAX_IMAGE_PIXELS is not None and im.width * im.height > Image.MAX_IMAGE_PIXELS
            (w, h), turn = upright_size(im), exif_orientation(im)
            return ImageInfo(path, mode=im.mode, width=w, height=h, sha256=digest, large=large, orientation=turn)
    except UnidentifiedImageError:
        return ImageInfo(path, sha256=digest, problem="corrupt", message="not a decodable image")
    except Image.DecompressionBombError as e:  # over twice Pillow's limit: it refuses to decode
        msg = f"image too large to decode safely ({str(e).split(', could be')[0]})"
        return ImageInfo(path, sha256=digest, problem="too_large", message=msg)
    except (OSError, SyntaxError, ValueError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        return ImageInfo(path, sha256=digest, problem="corrupt", message=f"cannot decode image ({msg})")


def _plain(root: Path, pair_dir: PairDir, stem: str) -> bool:
    """True when the split folder (the IR folder's parent) and the stem are names sanitising leaves alone."""
    parts = [*pair_dir.ir_dir.parent.relative_to(root).parts, stem]
    return all(safe_name(part) == part for part in parts)


def _id_hash(origin: str, taken: set[str], base: str) -> str:
    """`base-<hash of the raw name>`: 8 hex digits, longer only if that id exists already."""
    digest = hashlib.sha256(origin.encode("utf-8")).hexdigest()
    for n in range(8, len(digest) + 1, 4):
        if (pid := f"{base}-{digest[:n]}") not in taken:
            return pid
    raise AssertionError(f"no unique pair id for {origin!r}")  # would need a sha256 collision


class PairKey(NamedTuple):
    """What a pair id is made from: split and relative stem, plus the raw path that identifies the pair."""

    split: str
    stem: str
    origin: str  # the IR path without extension, relative to the root: unique in the dataset
    plain: bool  # split folder and stem are already safe names (sanitising changed nothing)


def unique_pair_ids(dataset: str, keys: list[PairKey]) -> dict[PairKey, str]:
    """Pair id of each key: `make_pair_id`, unless names collide once sanitised.

    Colliding names (`a b` and `a_b`, `ä` and `ö`, two all-CJK names) get `-` and 8 hex digits of the SHA-256
    of their origin appended, so each id stays readable, its suffix depends only on that file's own path (not
    on listing order), and ids of datasets without collisions are unchanged. In a colliding group, the one name
    sanitising left as it was (if exactly one) keeps the plain id, so adding `a b.png` beside `a_b.png` does not
    rename the latter. Ids longer than `MAX_PAIR_ID_LEN` are cut and get the same suffix. Call it on every
    stem of the dataset (before any filtering), so an id never depends on which part of the tree was asked for.
    """
    groups: dict[str, list[PairKey]] = defaultdict(list)
    for key in keys:
        groups[make_pair_id(dataset, key.split, key.stem)].append(key)
    taken = set(groups)
    ids: dict[PairKey, str] = {}
    for base, members in sorted(groups.items()):
        plain = [k for k in members if k.plain]
        for key in sorted(members, key=lambda k: k.origin):
            if len(base) > MAX_PAIR_ID_LEN:  # later stages name files `<pair_id>.png`: keep ids well under 255
                ids[key] = _id_hash(key.origin, taken, base[: MAX_PAIR_ID_LEN - 9])
            elif len(members) == 1 or (len(plain) == 1 and key == plain[0]):
                ids[key] = base
            else:
                ids[key] = _id_hash(key.origin, taken, base)
            taken.add(ids[key])
    return ids


# --- the stage ------------------------------------------------------------------------------------------
# A folder pair after scanning: its IR and VIS images by relative stem.
_Scanned = tuple[PairDir, dict[str, list[Path]], dict[str, list[Path]]]


class _Candidate(NamedTuple):
    """A stem with exactly one IR and one VIS file: a pair once both images prove readable and alike."""

    pair_id: str
    split: str
    ir: Path
    vis: Path


class _Problems:
    """The problems table as it is collected: one row per file, paths relative to the dataset root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rows: list[dict[str, str]] = []

    def add(self, path: Path, kind: str, message: str, pair_id: str = "") -> None:
        rel = printable_path(path.relative_to(self.root).as_posix())
        self.rows.append({"path": rel, "pair_id": pair_id, "kind": kind, "message": message})

    def frame(self) -> pd.DataFrame:
        """Sorted by path and kind, so the table does not depend on the order files were probed in."""
        probs = pd.DataFrame(self.rows, columns=["path", "pair_id", "kind", "message"])
        probs["severity"] = [SEVERITY.get(k, "error") for k in probs["kind"]]
        return probs.sort_values(["path", "kind"], kind="stable").reset_index(drop=True)


def discover(
    root: str | Path,
    *,
    layout: str | None = None,
    dataset: str | None = None,
    workers: int = 4,
    progress: Any = None,
) -> DiscoveryResult:
    """Find and validate every IR/VIS pair under `root`; nothing is written."""
    root = _checked_root(root)
    chosen = detect_layout(root, layout)
    name = safe_name(dataset or root.name).lower().lstrip(".") or "_"  # no hidden-file ids (".x-001")
    problems = _Problems(root)
    scans, ignored = _scan_pair_dirs(root, chosen, problems)
    candidates = _match_stems(scans, _pair_ids(root, name, scans), problems)
    infos = _probe_all([f for c in candidates for f in (c.ir, c.vis)], workers, progress)
    rows = [row for c in candidates if (row := _pair_row(root, name, c, infos, problems)) is not None]
    pairs = pd.DataFrame(rows, columns=PAIRS_SCHEMA.names).sort_values("pair_id", kind="stable")
    return DiscoveryResult(
        root=root,
        dataset=name,
        layout=chosen.name,
        pairs=pairs.reset_index(drop=True),
        problems=problems.frame(),
        ignored=sorted(ignored),
    )


def _checked_root(root: str | Path) -> Path:
    """The dataset root, absolute; its path must be UTF-8 since every relative path is stored as text."""
    root = Path(root).resolve()
    if not _is_utf8(str(root)):
        raise EntityLabelError(
            "dataset root path is not valid UTF-8", path=printable_path(str(root)), hint="rename the folder"
        )
    return root


def _scan_pair_dirs(root: Path, chosen: Layout, problems: _Problems) -> tuple[list[_Scanned], list[str]]:
    """Scan every folder pair: images by stem, every file that is not one a problem row, and ignored litter."""
    scans: list[_Scanned] = []
    ignored: list[str] = []
    for pair_dir in chosen.pair_dirs:
        ir_scan, vis_scan = scan_folder(pair_dir.ir_dir), scan_folder(pair_dir.vis_dir)
        ignored += [printable_path(p.relative_to(root).as_posix()) for p in ir_scan.ignored + vis_scan.ignored]
        _report_unusable(ir_scan, vis_scan, problems)
        scans.append((pair_dir, ir_scan.by_stem, vis_scan.by_stem))
    return scans, ignored


def _report_unusable(ir_scan: Scan, vis_scan: Scan, problems: _Problems) -> None:
    """Problem rows for the files of a folder pair that are never read as images."""
    for p in ir_scan.others + vis_scan.others:
        problems.add(p, "not_image", f"not an image file (extension {printable_path(p.suffix) or 'none'!r})")
    for p in ir_scan.bad_names + vis_scan.bad_names:
        problems.add(p, "bad_file_name", "file or folder name is not valid UTF-8 (shown with \\x escapes); rename it")
    for p, what in ir_scan.specials + vis_scan.specials:
        problems.add(p, "not_regular_file", f"{what}, not a regular file; it is never read")
    for p, why in ir_scan.unlisted + vis_scan.unlisted:
        problems.add(p, "unreadable", f"cannot list folder ({why}); the files in it are not checked")


def _pair_ids(root: Path, dataset: str, scans: list[_Scanned]) -> dict[tuple[PairDir, str], str]:
    """Pair id of every stem of every folder pair, made over the whole dataset (see `unique_pair_ids`)."""
    # origin of a pair: its IR path without extension, unique in the dataset even when names sanitise alike
    keys = {
        (pd_, stem): PairKey(pd_.split, stem, (pd_.ir_dir / stem).relative_to(root).as_posix(), _plain(root, pd_, stem))
        for pd_, ir_files, vis_files in scans
        for stem in set(ir_files) | set(vis_files)
    }
    ids = unique_pair_ids(dataset, list(keys.values()))
    return {where: ids[key] for where, key in keys.items()}


def _match_stems(scans: list[_Scanned], ids: dict[tuple[PairDir, str], str], problems: _Problems) -> list[_Candidate]:
    """Stems with exactly one IR and one VIS file; duplicates and files without a partner are problem rows."""
    candidates: list[_Candidate] = []
    for pd_, ir_files, vis_files in scans:
        for stem in sorted(set(ir_files) | set(vis_files)):
            pid = ids[(pd_, stem)]
            irs, viss = ir_files.get(stem, []), vis_files.get(stem, [])
            for side, files in (("IR", irs), ("VIS", viss)):
                if len(files) > 1:
                    names = ", ".join(f.name for f in files)
                    for f in files:
                        problems.add(f, "duplicate_stem", f"{side} stem {stem!r} has {len(files)} files: {names}", pid)
            if len(irs) > 1 or len(viss) > 1:
                continue
            if not viss:
                problems.add(irs[0], "missing_vis", "IR image has no visible partner with the same stem", pid)
            elif not irs:
                problems.add(viss[0], "missing_ir", "visible image has no IR partner with the same stem", pid)
            else:
                candidates.append(_Candidate(pid, pd_.split, irs[0], viss[0]))
    return candidates


def _probe_all(files: list[Path], workers: int, progress: Any) -> dict[Path, ImageInfo]:
    """Hash and decode every file on a thread pool (reading and decoding release the GIL)."""
    task = progress.add_task("discover: reading images", total=len(files)) if progress is not None else None
    infos: dict[Path, ImageInfo] = {}
    # Pillow's warning for huge images becomes a problem row, never raw text on stderr. The filter is set
    # here, in the calling thread, around the whole pool (catch_warnings is not thread-safe).
    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        for info in pool.map(probe_image, files):
            infos[info.path] = info
            if task is not None:
                progress.advance(task)
    return infos


def _pair_row(
    root: Path, dataset: str, c: _Candidate, infos: dict[Path, ImageInfo], problems: _Problems
) -> dict[str, Any] | None:
    """The manifest row of a candidate, or None when an image is unusable or the two sizes differ."""
    ir, vis = infos[c.ir], infos[c.vis]
    bad = [i for i in (ir, vis) if i.problem]
    for i in bad:
        problems.add(i.path, i.problem or "corrupt", i.message, c.pair_id)
    if bad:
        return None
    if (ir.width, ir.height) != (vis.width, vis.height):
        problems.add(
            ir.path,
            "size_mismatch",
            f"IR is {ir.width}x{ir.height} but visible {c.vis.relative_to(root).as_posix()} "
            f"is {vis.width}x{vis.height}",
            c.pair_id,
        )
        return None
    _warn_kept_pair(ir, vis, c.pair_id, problems)
    return {
        "pair_id": c.pair_id,
        "dataset": dataset,
        "split": c.split,
        "ir_path": c.ir.relative_to(root).as_posix(),
        "vis_path": c.vis.relative_to(root).as_posix(),
        "width": ir.width,
        "height": ir.height,
        "ir_mode": ir.mode,
        "vis_mode": vis.mode,
        "ir_sha256": ir.sha256,
        "vis_sha256": vis.sha256,
    }


def _warn_kept_pair(ir: ImageInfo, vis: ImageInfo, pair_id: str, problems: _Problems) -> None:
    """Warning rows for a pair that is kept but costs later stages: huge images, high-bit-depth IR."""
    for i in (ir, vis):
        if i.large:
            problems.add(
                i.path,
                "large_image",
                f"image is {i.width}x{i.height} = {i.width * i.height} pixels, over Pillow's "
                f"decompression-bomb limit of {Image.MAX_IMAGE_PIXELS}; pair kept, later stages decode it in "
                "full (slow, memory-heavy)",
                pair_id,
            )
    for i in (ir, vis):
        if i.orientation != 1:
            problems.add(
                i.path,
                "exif_rotated",
                f"EXIF orientation {i.orientation}: every stage reads it turned upright, as datasets' image "
                f"decoder does ({i.width}x{i.height}); check that it is aligned with its pair that way",
                pair_id,
            )
    if ir.mode in HIGH_BIT_MODES:
        problems.add(
            ir.path, "ir_16bit", f"IR is high bit depth (mode {ir.mode}); later stages rescale it to 8-bit", pair_id
        )


def write_discovery(result: DiscoveryResult, out_dir: str | Path) -> Path:
    """Write pairs.parquet, problems.parquet and discover.json into `out_dir`."""
    out = ensure_writable_dir(out_dir)
    meta = {ROOT_KEY: str(result.root), "entitylabel.layout": result.layout}
    write_parquet(result.pairs, out / "pairs.parquet", schema=PAIRS_SCHEMA, metadata=meta)
    write_parquet(result.problems, out / "problems.parquet", schema=PROBLEMS_SCHEMA)
    atomic_write_json(out / "discover.json", {**result.summary(), "version": __version__})
    result.out_dir = out
    return out


def run_discover(
    root: str | Path,
    out_dir: str | Path,
    *,
    layout: str | None = None,
    dataset: str | None = None,
    splits: list[str] | None = None,
    workers: int = 4,
    progress: Any = None,
) -> DiscoveryResult:
    """Stage entry point: discover pairs under `root` and write the manifest into `out_dir`.

    `splits`: keep only these splits; pairs, problems and discover.json all describe the kept part.
    """
    if splits:
        have = sorted({d.split for d in detect_layout(root, layout).pair_dirs})
        unknown = [s for s in splits if s not in have]
        if unknown:
            raise EntityLabelError(f"no split named {', '.join(unknown)} in this dataset (it has {', '.join(have)})",
                                   path=root, hint="check data.splits / --split")  # fmt: skip
    result = discover(root, layout=layout, dataset=dataset, workers=workers, progress=progress)
    if splits:
        _keep_splits(result, splits)
    write_discovery(result, out_dir)
    return result


def _keep_splits(result: DiscoveryResult, splits: list[str]) -> None:
    """Filter pairs by split, and problems by the split folders their files are in."""
    folders = [
        d.relative_to(result.root).as_posix()
        for pd_ in detect_layout(result.root, result.layout).pair_dirs
        if pd_.split in splits
        for d in (pd_.ir_dir, pd_.vis_dir)
    ]
    result.pairs = result.pairs[result.pairs["split"].isin(splits)].reset_index(drop=True)
    inside = [any(p == f or p.startswith(f + "/") or f == "." for f in folders) for p in result.problems["path"]]
    result.problems = result.problems[inside].reset_index(drop=True)
