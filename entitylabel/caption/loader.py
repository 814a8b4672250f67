"""Background loading: decode images and run the processor while the model generates.

One loader thread walks the batch plan ahead of the main thread: a small thread pool decodes the images of
the next few batches (PIL releases the GIL while decoding), then the processor turns each batch into tensors.
The main thread only generates. A bounded queue keeps at most `depth` prepared batches in memory.
`batch_limit` (read before each batch is prepared) is how the model side asks for smaller batches after a
CUDA out-of-memory error: the loader cuts every later batch to it, so generation keeps overlapping with
loading; only the few batches already prepared are split on the main thread.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..images import open_rgb


@dataclass(frozen=True)
class WorkItem:
    """One caption to make: a pair's image in one modality with one prompt."""

    pair_id: str
    modality: str
    prompt_id: str
    wording: str
    path: Path


@dataclass
class Batch:
    shard: int
    items: list[WorkItem]


@dataclass
class Loaded:
    """A batch with its decoded images (None where decoding failed, with the error) and processor output."""

    batch: Batch
    images: list[Image.Image | None]
    errors: list[str | None]
    prepared: Any = None  # None when nothing decoded or the processor rejected the batch
    ok: list[int] = field(default_factory=list)  # indices of the decoded images, in order


def _decode(path: Path) -> tuple[Image.Image | None, str | None]:
    try:
        return open_rgb(path), None
    except FileNotFoundError:
        return None, f"image not found: {path}"
    except Exception as e:  # PIL raises many types for a broken file
        return None, f"corrupt image {path.name}: {type(e).__name__}: {e}"


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


class Prefetcher:
    """Iterate `Loaded` batches, made in a background thread; `close()` (or leaving `with`) stops it."""

    def __init__(
        self,
        batches: Iterable[Batch],
        prepare: Callable[[Sequence[Image.Image], Sequence[str]], Any],
        *,
        depth: int = 2,
        decode_workers: int = 2,
        batch_limit: Callable[[], int] | None = None,
    ) -> None:
        self._batches = batches
        self._limit = batch_limit
        self._prepare = prepare
        self._depth = max(1, depth)
        self._workers = max(1, decode_workers)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=self._depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="caption-loader", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            with ThreadPoolExecutor(self._workers, thread_name_prefix="caption-decode") as pool:
                ahead: collections.deque[tuple[Batch, list[Future[Any]]]] = collections.deque()
                it = iter(self._batches)
                exhausted = False
                while not self._stop.is_set():
                    # keep decodes for the next `depth` batches in flight while preparing this one
                    while not exhausted and len(ahead) <= self._depth:
                        b = next(it, None)
                        if b is None:
                            exhausted = True
                        else:
                            ahead.append((b, [pool.submit(_decode, x.path) for x in b.items]))
                    if not ahead:
                        break
                    batch, futures = ahead.popleft()
                    decoded = [f.result() for f in futures]
                    if not all(self._put(self._load(b, d)) for b, d in self._cut(batch, decoded)):
                        break
                for _, futures in ahead:
                    for f in futures:
                        f.cancel()
            self._put(_END)
        except BaseException as e:  # hand any failure to the main thread
            self._put(_Failure(e))

    def _cut(self, batch: Batch, decoded: list[Any]) -> Iterator[tuple[Batch, list[Any]]]:
        """The batch as it is, or in pieces of the current limit (lowered after an out-of-memory error)."""
        size = max(1, self._limit()) if self._limit is not None else len(batch.items)
        for i in range(0, len(batch.items), max(1, size)):
            yield Batch(batch.shard, batch.items[i : i + size]), decoded[i : i + size]

    def _load(self, batch: Batch, decoded: list[tuple[Image.Image | None, str | None]]) -> Loaded:
        images = [im for im, _ in decoded]
        loaded = Loaded(batch, images, [err for _, err in decoded])
        loaded.ok = [i for i, im in enumerate(images) if im is not None]
        if loaded.ok:
            try:
                loaded.prepared = self._prepare(
                    [images[i] for i in loaded.ok], [batch.items[i].wording for i in loaded.ok]
                )
            except Exception:
                loaded.prepared = None  # the main thread retries item by item and records the error
        return loaded

    def __iter__(self) -> Iterator[Loaded]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
