"""Pair ids and image paths read from a pair manifest, checked before any file name or path is built from them.

`discover` only writes pair ids made of letters, digits, `.`, `_`, `-` and paths relative to the dataset root.
A manifest that says otherwise was edited by hand or comes from elsewhere (a downloaded run folder): its ids
would become file names downstream (`fuse` writes `OUT/<pair_id>.png`) and its paths could name any file on
the machine, to be embedded in a dataset or a review page. Stages refuse such a manifest with one line.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from .errors import EntityLabelError
from .io import safe_child

_HINT = "this manifest was not written by `entitylabel discover`; rerun discover on the dataset"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:72]}...{text[-4:]}"


def is_inside_path(rel: Any) -> bool:
    """True for a relative path that stays inside its root: not absolute, no drive, no `..` part.

    Read the way this machine joins paths (a backslash is an ordinary character in a POSIX file name), and
    `..` is also refused as a POSIX part, the form discover writes.
    """
    if not isinstance(rel, str) or not rel or "\0" in rel:
        return False
    native = Path(rel)
    return not native.anchor and ".." not in native.parts and ".." not in PurePosixPath(rel).parts


def check_manifest(df: pd.DataFrame, where: str | Path) -> None:
    """Refuse (one line naming `where`) the first pair id that is not a plain file name (also as `<id>.png`),
    a repeated pair id, or an `ir_path` / `vis_path` that leaves the dataset root."""
    seen: set[str] = set()
    for pid, ir, vis in zip(df["pair_id"], df["ir_path"], df["vis_path"], strict=True):
        ok = isinstance(pid, str)
        if ok:
            try:
                safe_child(".", pid, ".png")
            except EntityLabelError:
                ok = False
        if not ok:
            raise EntityLabelError(f"pair id {_show(pid)} is not a plain file name", path=where, hint=_HINT)
        if pid in seen:
            raise EntityLabelError(f"pair id {_show(pid)} appears more than once", path=where, hint=_HINT)
        seen.add(pid)
        for col, rel in (("ir_path", ir), ("vis_path", vis)):
            if not is_inside_path(rel):
                raise EntityLabelError(
                    f"pair {pid}: {col} {_show(rel)} is not a path inside the dataset root", path=where, hint=_HINT
                )
