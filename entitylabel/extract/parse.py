"""Parse step: caption texts -> mentions with their decisions and character spans, in this process or in workers.

Each worker holds its own spaCy pipeline, `MentionFinder` and filters, and sends back only small `Mention`
tuples. Very long captions are parsed in chunks (quality.chunk_spans); sentence indices and character
offsets are made relative to the whole caption.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import gc
import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from .filters import apply_filters, default_filters
from .quality import chunk_spans
from .vocab import Vocabulary

CHUNK_CHARS = 5_000


class Mention(NamedTuple):
    """One candidate mention in a caption and the filters' decision on it."""

    phrase: str
    lemma: str
    entity: str | None
    reason: str | None  # None: kept; else the first filter's drop reason (reasons.py)
    sentence: int  # 0-based sentence index in the caption
    weak_modifier: bool  # a vocabulary noun used as a modifier that no other filter drops: a weak vote
    start: int  # character span in the caption
    end: int
    plural: bool  # plural or counted head ("cars", "two dogs")
    core: bool  # not the object of a preposition
    plain: bool = False  # stated plainly (mentions.Candidate.plain)


class ParsedCaption(NamedTuple):
    mentions: list[Mention]
    n_sentences: int
    n_tokens: int


class Parser:
    """spaCy pipeline + MentionFinder + filters; turns caption texts into `ParsedCaption`s."""

    def __init__(
        self, vocab: Vocabulary, spacy_model: str | None, keep_hedged: bool, batch_size: int, nlp: Any = None
    ) -> None:
        from ..resources import load_spacy
        from .mentions import MentionFinder

        self.nlp = nlp if nlp is not None else load_spacy(spacy_model)
        self.finder = MentionFinder(self.nlp, vocab)
        self.filters = default_filters(keep_hedged)
        self.batch_size = batch_size

    def mentions(self, doc, sentence0: int = 0, char0: int = 0) -> list[Mention]:
        """The decided mentions of one parsed doc (offsets shifted by the chunk's place in its caption)."""
        out = []
        for c in self.finder.candidates(doc):
            reason = apply_filters(c, self.filters)
            weak_modifier = reason == "modifier" and apply_filters(c._replace(modifier=False), self.filters) is None
            out.append(
                Mention(
                    c.phrase,
                    c.lemma,
                    c.entity,
                    reason,
                    sentence0 + c.sentence,
                    weak_modifier,
                    char0 + c.start,
                    char0 + c.end,
                    c.plural,
                    c.core,
                    c.plain,
                )
            )
        return out

    def parse(self, texts: list[str]) -> list[ParsedCaption]:
        return next(self.parse_batches(iter([(None, texts)])))[1]

    def parse_batches(self, batches: Iterator[tuple[Any, list[str]]]) -> Iterator[tuple[Any, list[ParsedCaption]]]:
        """(rows, texts) batches -> (rows, parsed captions), in order, through ONE `nlp.pipe` over the whole
        stream: spaCy fills every batch to `batch_size` across caption batches (a pipe per caption batch ended
        each with a short one), and each doc is reduced to its mentions as soon as it comes out."""
        queue: collections.deque[_Batch] = collections.deque()  # batches whose pieces spaCy has been given

        def pieces() -> Iterator[str]:
            for rows, texts in batches:
                spans = [(k, s, e) for k, text in enumerate(texts) for s, e in chunk_spans(text, CHUNK_CHARS)]
                queue.append(_Batch(rows, len(texts), spans))
                for k, s, e in spans:
                    yield texts[k][s:e]

        for doc in self.nlp.pipe(pieces(), batch_size=self.batch_size):
            while queue[0].done():
                yield queue.popleft().result()
            queue[0].add(doc, self)
        while queue:
            yield queue.popleft().result()


class _Batch:
    """One caption batch being parsed: its pieces (caption, start, end) in order and what they gave so far."""

    __slots__ = ("rows", "pieces", "next", "found", "sents", "tokens")

    def __init__(self, rows: Any, n: int, pieces: list[tuple[int, int, int]]) -> None:
        self.rows, self.pieces, self.next = rows, pieces, 0
        self.found: list[list[Mention]] = [[] for _ in range(n)]
        self.sents = [0] * n  # sentences seen in earlier chunks of the same caption
        self.tokens = [0] * n

    def done(self) -> bool:
        return self.next == len(self.pieces)

    def add(self, doc, parser: Parser) -> None:
        k, start, _ = self.pieces[self.next]
        self.next += 1
        self.found[k] += parser.mentions(doc, self.sents[k], start)
        self.sents[k] += sum(1 for _ in doc.sents)
        self.tokens[k] += len(doc)

    def result(self) -> tuple[Any, list[ParsedCaption]]:
        return self.rows, [ParsedCaption(*t) for t in zip(self.found, self.sents, self.tokens, strict=True)]


_WORKER: Parser | None = None


def _worker_init(vocab: Vocabulary, spacy_model: str | None, keep_hedged: bool, batch_size: int) -> None:
    global _WORKER
    _WORKER = Parser(vocab, spacy_model, keep_hedged, batch_size)


def _worker_parse(texts: list[str]) -> list[ParsedCaption]:
    assert _WORKER is not None
    return _WORKER.parse(texts)


def _start_method() -> str:
    """ "spawn" (workers start clean: no inherited threads or locks), but "fork" when the main module cannot
    be re-imported by a spawned child (a script piped on stdin, `python -c`), where spawn would crash."""
    import __main__

    main_file = getattr(__main__, "__file__", None)
    spawnable = main_file is None or Path(main_file).is_file()  # None: interactive / notebook, fine
    if not spawnable and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "spawn"


def parse_stream(
    batches: Iterator[tuple[list, list[str]]], parser: Parser, n_process: int, init_args: tuple
) -> Iterator[tuple[list, list[ParsedCaption]]]:
    """Parse (rows, texts) batches in order, here or in a pool with a bounded number of batches in flight."""
    with _old_objects_frozen():
        yield from _parse_stream(batches, parser, n_process, init_args)


@contextlib.contextmanager
def _old_objects_frozen() -> Iterator[None]:
    """Keep what exists before the parse (the spaCy pipeline, the vocabulary: about 250,000 objects) out of the
    cycle collector's full passes while it runs: each pass walks every tracked object (~0.3 s here), and the
    objects the votes keep trigger several per 20,000 captions. Left as is when the process froze objects
    itself (unfreezing would undo that); nothing is kept alive longer than the parse."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _parse_stream(
    batches: Iterator[tuple[list, list[str]]], parser: Parser, n_process: int, init_args: tuple
) -> Iterator[tuple[list, list[ParsedCaption]]]:
    if n_process <= 1:
        yield from parser.parse_batches(batches)
        return
    ctx = multiprocessing.get_context(_start_method())
    with cf.ProcessPoolExecutor(n_process, mp_context=ctx, initializer=_worker_init, initargs=init_args) as ex:
        pending: collections.deque = collections.deque()
        for rows, texts in batches:
            pending.append((rows, ex.submit(_worker_parse, texts)))
            if len(pending) >= 2 * n_process:
                r, fut = pending.popleft()
                yield r, fut.result()
        while pending:
            r, fut = pending.popleft()
            yield r, fut.result()
