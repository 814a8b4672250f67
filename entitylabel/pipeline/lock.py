"""Folder locks: one `entitylabel run` per run folder, one writer per stage output folder.

Two processes writing one folder would mix their outputs (captions of two files, a manifest naming one; two
exports into a new release folder, of which only one survives). So
- `run_lock`: `entitylabel run` holds `<run folder>/.entitylabel.lock` while it works; a second run fails at once;
- `folder_lock`: `caption` (and `caption --external`), `extract` and `export` hold `.entitylabel-<folder>.lock`
  beside the folder they write (beside, not inside: extract swaps its whole folder and an export may create it). `run`'s
  stages call the same functions, so a standalone stage command and a run's stage exclude each other too.
  caption and extract fail at once with one line naming the holder; export waits its turn, so several configs
  exported into one release folder at once all land, and each checks the label space under the lock.
Every lock is an exclusive `flock` (through `filelock`), which the kernel drops when the holder dies however it
dies (SIGKILL included), so a lock left by a dead process is simply taken over. The file holds the holder's
pid, host and start time for the error message; it is left in place (emptied) on exit, since deleting a lock
file races with a process that is opening it. Locks nest within one thread (a stage's lock taken again by the
import it runs is already held); other threads and processes wait or fail. Needs a filesystem with flock
(local disks; NFS only where flock works).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import filelock

from ..errors import EntityLabelError

LOCK_NAME = ".entitylabel.lock"

_held = threading.local()  # lock files this thread holds -> nesting depth


def lock_path_for(folder: str | Path) -> Path:
    """The lock file of an output folder: `.entitylabel-<name>.lock` in its parent (the folder may not exist yet;
    not `.<name>.…`, the prefix of the folder's own temporaries)."""
    folder = Path(os.path.abspath(folder))
    if not folder.name:
        raise EntityLabelError("cannot lock the filesystem root; choose an output folder", path=folder)
    return folder.parent / f".entitylabel-{folder.name}.lock"


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {info['pid']} on {info['host']} (since {info['started']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _note_holder(fd: int) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(info).encode("utf-8"))


@contextlib.contextmanager
def _hold(path: Path, *, wait: bool, busy: str, folder: Path, hint: str) -> Iterator[Path]:
    """Hold the flock on `path`; `wait` for it, or fail at once with `busy` + the holder."""
    depth: dict[str, int] = _held.__dict__.setdefault("depth", {})
    key = str(path)
    if depth.get(key):  # this thread holds it already (an import inside a caption run)
        depth[key] += 1
        try:
            yield path
        finally:
            depth[key] -= 1
        return
    lock = filelock.FileLock(path, on_acquired=_note_holder)
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except filelock.Timeout:
        raise EntityLabelError(f"{busy}: {_holder(path)}", path=folder, hint=hint) from None
    except OSError as e:
        raise EntityLabelError(f"cannot take the lock ({e.strerror or e})", path=path) from None
    depth[key] = 1
    try:
        yield path
    finally:
        depth.pop(key, None)
        with contextlib.suppress(OSError):
            os.truncate(path, 0)
        lock.release()


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold the run folder's lock for the duration; a second holder fails at once with one line."""
    path = Path(run_dir) / LOCK_NAME
    busy = "another entitylabel run is using this run folder"
    with _hold(path, wait=False, busy=busy, folder=Path(run_dir), hint="wait for it to finish, or pass another --out"):
        yield path


@contextlib.contextmanager
def folder_lock(folder: str | Path, what: str, *, wait: bool = False) -> Iterator[Path]:
    """Hold the lock of the output folder `folder` (see the module docstring) while `what` writes it."""
    path = lock_path_for(folder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EntityLabelError(f"cannot create output folder ({e.strerror})", path=path.parent) from None
    busy = f"another entitylabel {what} is writing this folder"
    with _hold(path, wait=wait, busy=busy, folder=Path(folder), hint="wait for it to finish, or pass another --out"):
        yield path
