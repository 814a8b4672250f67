"""Top-level JSON values of a file (JSON Lines, concatenated or pretty-printed objects, or one array),
decoded incrementally so memory does not grow with the file; errors name the file and the line. A UTF-8
byte-order mark at the start is skipped, as the CSV reader does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import EntityLabelError

_READ_CHUNK = 1 << 20


def iter_json_values(path: Path) -> Iterator[tuple[Any, int]]:
    """(value, line number where it starts), in file order."""
    try:
        yield from _values(path)
    except UnicodeDecodeError:
        line, col = _first_bad_utf8(path)
        raise EntityLabelError(
            f"not UTF-8 text: undecodable byte at line {line}, byte {col} of that line", path=path
        ) from None


def _values(path: Path) -> Iterator[tuple[Any, int]]:
    dec = json.JSONDecoder()
    buf = ""
    line = 1  # line number of buf[0]
    eof = False
    with open(path, encoding="utf-8-sig") as f:  # a leading byte-order mark (Windows editors) is not JSON
        while True:
            pos = 0
            n = len(buf)
            while True:
                start = pos
                while pos < n and buf[pos].isspace():
                    pos += 1
                line += buf.count("\n", start, pos)
                if pos >= n:
                    break
                try:
                    value, end = dec.raw_decode(buf, pos)
                except json.JSONDecodeError as e:
                    if eof:
                        at = line + buf.count("\n", pos, e.pos)
                        start = f" (in the value starting at line {line})" if at != line else ""
                        raise EntityLabelError(f"invalid JSON at line {at}{start}: {e.msg}", path=path) from None
                    break  # need more text
                if end >= n and not eof:
                    break  # a number or literal may continue in the next chunk
                yield value, line
                line += buf.count("\n", pos, end)
                pos = end
            buf = buf[pos:]
            if eof:
                return
            chunk = f.read(_READ_CHUNK)
            if not chunk:
                eof = True
            buf += chunk


def _first_bad_utf8(path: Path) -> tuple[int, int]:
    """Line (1-based) and byte offset in it (0-based) of the first byte that is not UTF-8; the error path only."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return number, e.start
    return 0, 0  # a sequence cut at the end of the file
