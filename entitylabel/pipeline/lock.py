"""`run_lock`: one `entitylabel run` per run folder at a time.

Two runs writing one folder would mix their outputs (captions of both inputs, a manifest naming one), so
a run holds `<run folder>/.entitylabel.lock` while it works: an exclusive `flock` on that file, which the
kernel drops when the holder dies however it dies (SIGKILL included), so a lock left by a dead run is
simply taken over. The file holds the holder's pid, host and start time for the error message; it is
left in place (empty) on exit, since deleting a lock file races with a run that is opening it.
POSIX advisory locks (Linux, macOS; network filesystems only where they support flock); on Windows a
byte-range lock (`msvcrt.locking`), which the system also drops with its process.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import EntityLabelError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".entitylabel.lock"


def _try_lock(fd: int) -> bool:
    """Take the lock without waiting; False when another process holds it."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    import msvcrt

    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode("utf-8"))
        return f"pid {info['pid']} on {info['host']} (since {info['started']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold the run folder's lock for the duration; a second holder fails at once with one line."""
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise EntityLabelError(f"cannot create the run lock ({e.strerror})", path=path) from None
    try:
        if not _try_lock(fd):
            raise EntityLabelError(
                f"another entitylabel run is using this run folder: {_holder(fd)}",
                path=run_dir,
                hint="wait for it to finish, or pass another --out",
            ) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(info).encode("utf-8"))
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing drops the flock
