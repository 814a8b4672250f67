"""Caption-level checks before parsing: empty, not English, token soup; and chunking of very long text.

`caption_problem(text)` returns None for a usable caption, else a short code that the stage reports as a
`bad_caption` rejection (its `lemma` column holds the code):
- `empty` / `whitespace`: nothing to read;
- `non_english`: mostly non-Latin letters, or a Latin-script text whose function words are French, German,
  Spanish, Italian, Portuguese or Dutch rather than English;
- `token_soup`: no letters at all, heavy repetition ("dog dog dog ...", or a generation stuck in a loop:
  the text compresses 10x), or mostly vowel-less / symbol-mixed tokens ("xq7 ##b zzkt").
  A plain keyword list ("car, tree, road, person") is NOT soup: it is a fine caption and goes through.
  The checks are cheap heuristics on the first `_SAMPLE` characters.
`chunk_spans(text)` / `chunks(text)` split text longer than `max_chars` at sentence ends (else at spaces), so a
20,000-character caption is parsed as several ordinary documents instead of one huge one.
"""

from __future__ import annotations

import functools
import re
import zlib

_SAMPLE = 4000
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_TOKEN = re.compile(r"\S+")
_ASCII_LETTER = re.compile(r"[A-Za-z]")  # str.isalpha() of an ASCII character
_VOWELS = re.compile(r"[aeiouyàâäéèêëîïôöûüáíóú]", re.I)
_SENT_END = re.compile(r"(?<=[.!?;])\s+|\n+")

EN_FUNCTION = frozenset(
    "a an the and or of in on at to with by for from is are was were be been being it its this that these "
    "there their they he she his her him we you i as into onto near next behind under over some two three "
    "while which who has have has had not no".split()
)
FOREIGN_FUNCTION = frozenset(
    # fr, de, es, it, pt, nl function words that are not English words
    "le la les des du une est et dans sur avec pour qui que sont "
    "der die das und ist ein eine mit auf den dem zu im nicht sich "
    "el los las del y en con por una es un se al "
    "il di che della sono nel per gli "
    "o os da em uma com não são "
    "het een van zijn op met niet".split()
)


def caption_problem(text: str | None) -> str | None:
    """None when the caption is worth parsing, else a short reason code (see module docstring)."""
    if text is None or text == "":
        return "empty"
    if not text.strip():
        return "whitespace"
    sample = text[:_SAMPLE]
    ascii_only = sample.isascii()
    if ascii_only:  # the common case, without a Python loop per character: no letter beyond Latin here
        if not _ASCII_LETTER.search(sample):
            return "token_soup"
    else:
        letters = [c for c in sample if c.isalpha()]
        if not letters:
            return "token_soup"
        non_latin = sum(1 for c in letters if ord(c) > 0x24F)  # beyond Latin Extended-B
        if non_latin / len(letters) > 0.3:
            return "non_english"
    # lowercasing ASCII text first finds the same words (per word otherwise: a few letters change length)
    words = _WORD.findall(sample.lower()) if ascii_only else [w.lower() for w in _WORD.findall(sample)]
    tokens = _TOKEN.findall(sample)
    if len(words) >= 6:
        fr = sum(map(FOREIGN_FUNCTION.__contains__, words))
        if fr >= 3 and fr > sum(map(EN_FUNCTION.__contains__, words)):
            return "non_english"
    if 8 <= len(words) <= 60 and len(set(words)) / len(words) < 0.25:
        return "token_soup"  # "dog dog dog ..."
    if len(sample) >= 400 and len(zlib.compress(sample.encode("utf-8"))) / len(sample.encode("utf-8")) < 0.1:
        return "token_soup"  # a degenerate repetition loop (English text compresses to ~0.3-0.5)
    if len(tokens) >= 4:
        junk = sum(map(_is_junk, tokens))
        if junk / len(tokens) > 0.5:
            return "token_soup"
    return None


@functools.lru_cache(maxsize=1 << 16)  # the same tokens recur in every caption
def _is_junk(token: str) -> bool:
    core = token.strip(".,;:!?\"'()[]")
    if not core:
        return False
    if core.isdigit():
        return False
    alpha = sum(c.isalpha() for c in core)
    if alpha == 0:
        return True  # symbols only
    if alpha < len(core) * 0.6:
        return True  # mixed letters, digits and symbols: "x7#q", "##ing"
    return len(core) > 3 and not _VOWELS.search(core)


def chunk_spans(text: str, max_chars: int = 5000) -> list[tuple[int, int]]:
    """(start, end) offsets of pieces of `text` of at most `max_chars`, cut at sentence ends when possible,
    else at spaces. Pieces are exact slices (leading/trailing whitespace left out), so a mention's character
    offsets in a piece plus the piece's start are its offsets in the caption."""
    if len(text) <= max_chars:
        return [(0, len(text))] if text.strip() else []
    sentences: list[tuple[int, int]] = []
    pos = 0
    for m in _SENT_END.finditer(text):
        sentences.append((pos, m.start()))
        pos = m.end()
    sentences.append((pos, len(text)))
    out: list[tuple[int, int]] = []
    cur: tuple[int, int] | None = None
    for start, end in sentences:
        while end - start > max_chars:  # one sentence longer than a chunk: cut at the last space
            cut = text.rfind(" ", start, start + max_chars)
            cut = cut if cut > start + max_chars // 2 else start + max_chars
            if cur:
                out.append(cur)
                cur = None
            out.append((start, cut))
            start = cut
            while start < end and text[start].isspace():
                start += 1
        if cur and end - cur[0] > max_chars:
            out.append(cur)
            cur = (start, end)
        else:
            cur = (cur[0], end) if cur else (start, end)
    if cur:
        out.append(cur)
    return [_strip(text, s, e) for s, e in out if text[s:e].strip()]


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def chunks(text: str, max_chars: int = 5000) -> list[str]:
    """`text` cut into pieces of at most `max_chars` (see `chunk_spans`)."""
    return [text[s:e] for s, e in chunk_spans(text, max_chars)]
