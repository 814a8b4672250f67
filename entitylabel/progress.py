"""Rich progress bars for long work; silent when stderr is not a terminal or in tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


@contextlib.contextmanager
def progress_bar(*, disable: bool = False) -> Iterator[Progress]:
    """A Progress with the project's columns; pass it to stage functions as `progress=`."""
    console = Console(stderr=True, emoji=False)  # lines printed through it carry user names and paths
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disable or not console.is_terminal,
        transient=False,
    )
    with progress:
        yield progress
