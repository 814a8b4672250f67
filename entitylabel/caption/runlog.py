"""`caption.log.jsonl`: wall-clock times and events, kept out of the data so shards stay reproducible."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


class RunLog:
    """Append-only JSON lines; each line is one `write`, so several processes can share the file."""

    def __init__(self, path: Path, **context: Any) -> None:
        self.path = path
        self.context = context

    def __call__(self, event: dict[str, Any]) -> None:
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **self.context, **event}
        data = (json.dumps(line, sort_keys=True, default=str) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def read_log(path: Path) -> list[dict[str, Any]]:
    """All events of a log (tests and reports use it)."""
    if not path.is_file():
        return []
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
