"""Deterministic, atomic file output shared by every stage.

Every file a stage writes goes to a temporary name in the same folder and is renamed into place,
so a crash or Ctrl-C never leaves a half-written file under the final name. Parquet is written with
fixed settings (no pandas index, zstd, no creation-time metadata) so the same table gives the same bytes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import EntityLabelError

_CHUNK = 1 << 20


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp/mkdtemp create owner-only entries; outputs get the modes a plain open()/mkdir() would give.
_FILE_MODE = 0o666 & ~_umask()
_DIR_MODE = 0o777 & ~_umask()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _tree_files(path: Path) -> list[Path]:
    """A folder's files, sorted, without hidden entries (temporaries, locks) or run logs."""
    return [
        f
        for f in sorted(path.rglob("*"))
        if f.is_file()
        and not any(part.startswith(".") for part in f.relative_to(path).parts)
        and not f.name.endswith(".log.jsonl")
    ]


def hash_tree(path: Path) -> str | None:
    """Content hash of a file, or of a folder's files (relative names and bytes); None when absent."""
    if path.is_file():
        return sha256_file(path)
    if not path.is_dir():
        return None
    return sha256_text("\n".join(f"{f.relative_to(path).as_posix()}\t{sha256_file(f)}" for f in _tree_files(path)))


def stamp_tree(path: Path) -> str | None:
    """Cheap fingerprint of a file or folder: relative names, sizes and mtimes, no bytes read; None when absent.

    For big outputs (embedded images) and image folders: an atomic rewrite changes the mtime, so a change
    on disk is seen without rehashing gigabytes on every no-op run.
    """
    if path.is_file():
        files, base = [path], path.parent
    elif path.is_dir():
        files, base = _tree_files(path), path
    else:
        return None
    lines = []
    for f in files:
        st = f.stat()
        lines.append(f"{f.relative_to(base).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}")
    return sha256_text("\n".join(lines))


_UNSAFE_NAME_CHARS = frozenset('/\\\0:*?"<>|')


def safe_child(folder: str | Path, name: str, suffix: str = "") -> Path:
    """`folder / (name + suffix)`, refusing a name that could leave `folder` or is not one plain file name.

    Output names built from data (pair ids from a downloaded dataset, stems from a caption file) go
    through here: path separators, `..`, a leading dot, control characters or Windows-reserved characters
    are refused with one line naming the value, never written outside `folder`.
    """
    bad = (
        not name
        or name in (".", "..")
        or name.startswith(".")
        or any(ch in _UNSAFE_NAME_CHARS or ord(ch) < 32 for ch in name)
        or len((name + suffix).encode("utf-8")) > 255
    )
    if bad:
        raise EntityLabelError(f"unsafe output name {name!r}: not a plain file name", path=folder)
    return Path(folder) / f"{name}{suffix}"


def ensure_writable_dir(path: str | Path) -> Path:
    """Create `path` (and parents) and check we can write there; one-line error otherwise."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EntityLabelError(f"cannot create output folder ({e.strerror})", path=p) from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise EntityLabelError("output folder is not writable", path=p, hint="choose another --out")
    return p


# Temporaries are named `.<final name>.pid<PID>-<HOST>.<random>.tmp`: the owner's pid and a short hash of its
# host name let a later run remove the ones whose owner is dead (a SIGKILL skips every cleanup) without touching
# a live process's work, nor the work of another machine sharing the folder (its pids mean nothing here).
_TEMP = re.compile(r"^\..+\.pid(\d+)-([0-9a-f]{6})\.[^.]+\.tmp$")
_HOST = hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:6]
# Errors that only writing raises: reported as one line naming the file, not a traceback.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


def _temp_prefix(final: Path) -> str:
    return f".{final.name}.pid{os.getpid()}-{_HOST}."


def write_error(e: OSError, path: Path) -> EntityLabelError:
    """One line for an OSError met while writing `path` (disk full, read-only, permission)."""
    full = e.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(e)  # pyarrow's errors carry no errno
    what = "no space left on device" if full else (e.strerror or str(e))
    return EntityLabelError(f"cannot write: {what}", path=path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean_stale_temps(folder: str | Path) -> list[Path]:
    """Remove temporaries of our naming under `folder` whose owning process is dead; returns what was removed.

    Only names made by `atomic_path` / `atomic_dir` (`.<name>.pid<PID>-<HOST>.<random>.tmp`) are touched, and
    only when they were made on this machine by a process that is no longer alive.
    """
    removed: list[Path] = []
    root = Path(folder)
    if not root.is_dir():
        return removed
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            m = _TEMP.match(name)
            if m is None or m.group(2) != _HOST or int(m.group(1)) == os.getpid() or _pid_alive(int(m.group(1))):
                continue
            p = Path(dirpath) / name
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
        dirnames[:] = [d for d in dirnames if not _TEMP.match(d)]
    return removed


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`, on error remove it.

    A full disk, a read-only folder or a missing permission is one `EntityLabelError` naming `path`.
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(final), suffix=".tmp", dir=final.parent)
    except OSError as e:
        raise write_error(e, final) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, _FILE_MODE)
        os.replace(tmp_path, final)
    except OSError as e:
        tmp_path.unlink(missing_ok=True)
        if e.errno in _WRITE_ERRNOS:
            raise write_error(e, final) from None
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def dumps_json(obj: Any) -> str:
    """Stable JSON: sorted keys, 2-space indent, trailing newline, UTF-8 kept readable."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, default=str) + "\n"


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, dumps_json(obj))


def write_parquet(
    data: pd.DataFrame | pa.Table,
    path: str | Path,
    *,
    schema: pa.Schema | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write a table atomically and byte-reproducibly.

    `metadata` is stored as file-level key/value metadata (e.g. the dataset root of a pair manifest).
    The pandas index is dropped and pandas' own schema blob is kept out, since it varies across versions.
    """
    if isinstance(data, pd.DataFrame):
        table = pa.Table.from_pandas(data, schema=schema, preserve_index=False)
    else:
        table = data.cast(schema) if schema is not None else data
    meta = {k: v for k, v in (table.schema.metadata or {}).items() if k != b"pandas"}
    meta.update({k.encode(): v.encode() for k, v in (metadata or {}).items()})
    table = table.replace_schema_metadata(meta or None)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True, store_schema=True)
    return Path(path)


def read_parquet_metadata(path: str | Path) -> dict[str, str]:
    """File-level key/value metadata of a Parquet file, decoded, without pandas' own entry."""
    meta = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if k != b"pandas"}


def swapped_old(dst: str | Path) -> Path:
    """Where `swap_dir` parks the previous `dst` while it renames the new one in: `.<name>.old` beside it."""
    dst = Path(dst)
    return dst.with_name(f".{dst.name}.old")


def swap_dir(src: str | Path, dst: str | Path) -> None:
    """Move the finished folder `src` onto `dst`; an existing `dst` is removed only once the new one is in place.

    Two renames (`dst` -> `.dst.old`, `src` -> `dst`): a kill between them leaves no `dst` but a complete
    `.dst.old`, so at every instant one of the two holds a whole folder. Readers fall back to `swapped_old(dst)`
    and writers call `recover_swap` before they start; the killed writer's `src` is a temporary of a dead process,
    which `clean_stale_temps` removes.
    """
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    old = swapped_old(dst)
    recover_swap(dst)  # a swap killed half-way before this one: its `.old` is the only copy of `dst`
    if dst.exists():
        os.replace(dst, old)
    os.replace(src, dst)
    shutil.rmtree(old, ignore_errors=True)


def recover_swap(dst: str | Path) -> bool:
    """Undo a `swap_dir` killed between its two renames: put `.dst.old` back when `dst` is missing (True), and
    drop a leftover `.dst.old` when `dst` is in place. For writers of `dst` (one at a time), not for readers."""
    dst = Path(dst)
    old = swapped_old(dst)
    if not old.is_dir() or old.is_symlink():
        return False
    if dst.exists():
        shutil.rmtree(old, ignore_errors=True)
        return False
    os.replace(old, dst)
    return True


def parked_name(name: str) -> str | None:
    """`<name>` for a `.<name>.old` entry that `swap_dir` parked, else None."""
    return name[1:-4] if name.startswith(".") and name.endswith(".old") and len(name) > 5 else None


def recover_swaps(folder: str | Path) -> list[Path]:
    """`recover_swap` for every folder of `folder` that a swap parked as `.<name>.old`; returns those put back."""
    root = Path(folder)
    if not root.is_dir():
        return []
    names = [n for p in sorted(root.iterdir()) if p.is_dir() and (n := parked_name(p.name))]
    return [root / n for n in names if recover_swap(root / n)]


def temp_dir_beside(final: str | Path) -> Path:
    """A new empty folder named as a temporary of `final` (in its parent), which `clean_stale_temps` removes
    once its owner is dead: for work staged there and moved into place piece by piece."""
    final = Path(final)
    ensure_writable_dir(final.parent)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(final), suffix=".tmp", dir=final.parent))
    except OSError as e:
        raise write_error(e, final) from None
    os.chmod(tmp, _DIR_MODE)
    return tmp


def _plain_modes(folder: Path) -> None:
    """Give the files of a built folder the modes a plain open() gives (some writers, e.g. safetensors, use 0600)."""
    for f in folder.rglob("*"):
        if f.is_file() and not f.is_symlink() and f.stat().st_mode & 0o777 != _FILE_MODE:
            os.chmod(f, _FILE_MODE)


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Build a folder under a temporary name beside `path`, then swap it into place.

    An existing `path` is refused unless `overwrite`; then it is replaced only after the new one is complete.
    """
    final = Path(path)
    if final.exists() and not overwrite:
        raise EntityLabelError("already exists", path=final, hint="pass --overwrite to replace it")
    tmp = temp_dir_beside(final)
    try:
        yield tmp
        _plain_modes(tmp)
        swap_dir(tmp, final)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if e.errno in _WRITE_ERRNOS:
            raise write_error(e, final) from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
