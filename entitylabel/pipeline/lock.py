"""`run_lock`: one `entitylabel run` per run folder at a time.

Two runs writing one folder would mix their outputs (captions of both inputs, a manifest naming one), so
a run holds `<run folder>/.entitylabel.lock` while it works: an exclusive `flock` on that file, which the
kernel drops when the holder dies however it dies (SIGKILL included), so a lock left by a dead run is
simply taken over. The file holds the holder's pid, host and start time for the error message; it is
left in place (empty) on exit, since deleting a lock file races with a run that is opening it.
Needs POSIX advisory locks (Linux, macOS; network filesystems only where they support flock).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import EntityLabelError

LOCK_NAME = ".entitylabel.lock"


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
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EntityLabelError(
                f"another entitylabel run is using this run folder: {_holder(fd)}",
                path=run_dir,
                hint="wait for it to finish, or pass another --out",
            ) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing drops the flock
