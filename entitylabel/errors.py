"""User-facing errors: one clear line, never a traceback.

Raise `EntityLabelError` for anything the user can fix (a bad path, a broken file, a wrong option).
The CLI prints `error: <message>` and exits with status 2; library callers catch it like any exception.
The message should name the file (or entry) and the problem, and say what to do when that is not obvious.
"""

from __future__ import annotations

from pathlib import Path


class EntityLabelError(Exception):
    """A user mistake or bad input, reported as one line."""

    def __init__(self, message: str, *, path: str | Path | None = None, hint: str | None = None) -> None:
        parts = [f"{path}: {message}" if path is not None else message]
        if hint:
            parts.append(hint)
        super().__init__(" — ".join(parts))
