"""Which folders of an annotation source hold which modality, and reading annotation files as text."""

from __future__ import annotations

from pathlib import Path

from ..discover import IR_NAMES, VIS_NAMES, Scan, _children, scan_folder
from ..errors import EntityLabelError
from ..images import IMAGE_EXTENSIONS
from .model import Collector

FUSION_NAMES = ("fusion", "fused")
MODALITY_NAMES = {"ir": IR_NAMES, "vis": VIS_NAMES, "fusion": FUSION_NAMES}


def modality_folders(folder: Path) -> list[tuple[str, Path]]:
    """Per-modality sub-folders (`ir`, `vi`, `fusion` and the other spellings discover knows), or the folder
    itself as modality "any" when it has none."""
    kids = _children(folder)
    found: list[tuple[str, Path]] = []
    for modality, names in MODALITY_NAMES.items():
        hits = [kids[n] for n in names if n in kids]
        if len(hits) > 1:
            raise EntityLabelError(
                f"several {modality} annotation folders: {', '.join(h.name for h in hits)}", path=folder
            )
        found += [(modality, h) for h in hits]
    return found or [("any", folder)]


def scan_annotations(col: Collector, folder: Path, suffix: str, skip: tuple[str, ...] = ()) -> list[Path]:
    """Annotation files (`suffix`) under `folder`, sorted; every other file a reader cannot use is a problem row
    (images beside labels, hidden and system files are passed over, as discover does)."""
    scan: Scan = scan_folder(folder)
    files: list[Path] = []
    for p in scan.others:
        if p.name.lower() in skip:
            continue
        if p.suffix.lower() == suffix:
            files.append(p)
        else:
            col.problem(p, "not_annotation", f"not a {suffix} annotation file; not read")
    for p in scan.bad_names:
        col.problem(p, "unreadable", "file or folder name is not valid UTF-8 (shown with \\x escapes); rename it")
    for p, what in scan.specials:
        col.problem(p, "unreadable", f"{what}, not a regular file; it is never read")
    for p, why in scan.unlisted:
        col.problem(p, "unreadable", f"cannot list folder ({why}); the files in it are not read")
    return files


def read_text(col: Collector, path: Path, pair_id: str = "") -> str | None:
    """A file's text (UTF-8, a BOM allowed), or None with an `unreadable` problem row."""
    try:
        data = path.read_bytes()
    except OSError as e:
        col.problem(path, "unreadable", f"cannot read file ({e.strerror or e})", pair_id)
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        col.problem(path, "unreadable", f"not UTF-8 text (byte {e.start})", pair_id)
        return None


def rel_folders(path: Path, folder: Path) -> tuple[str, ...]:
    """The folder names between `folder` and `path` (they pick the split when stems repeat)."""
    return path.relative_to(folder).parent.parts


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS
