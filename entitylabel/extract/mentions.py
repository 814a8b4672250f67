"""Candidate entity mentions in parsed captions: multi-word vocabulary forms first, then noun heads.

1. Multi-word vocabulary forms ("traffic light", "hot dog", "lamp-post") and multi-word meta nouns
   ("infrared view"), and the multi-word WordNet synonyms of vocabulary forms ("remote control" -> remote;
   wordnet_forms.py), are matched as units by two spaCy PhraseMatchers, one on LOWER and one on LEMMA
   ("stop signs" -> "stop sign"). Overlaps keep the longest, leftmost span. (spaCy keeps capitals in
   proper-noun lemmas; such spans are still found by the LOWER matcher when written as listed.)
2. Every other noun is a candidate when it is the head of its phrase. A noun that modifies a noun to its
   right (dependency `compound`, `nmod` or `amod`) is a modifier, not an entity: "car headlights" gives
   headlights, not car. A vocabulary match used as a modifier ("traffic light pole") is reported as
   `modifier` (stage.py counts it as a weak vote across sources). Nouns the tagger got wrong ("skis" tagged
   VERB) still count when their dependency is nominal and they are vocabulary forms.
3. Each candidate is looked up by its lowercase form, then by its lemma: an entity, a meta noun, or neither.
4. Each candidate notes whether it is stated plainly: not a member of a list ("a cup, a bowl and a knife") and
   not in a sentence that guesses, adds afterthoughts or only asserts existence ("There are also several
   chairs, likely ..."), where long VLM descriptions pad with objects they did not see. It is evidence for the
   confidence step, never a reason to drop.

The result per candidate is a `Candidate` with flags and its character span, in text order; the filters
(filters.py) decide keep/drop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from spacy.attrs import DEP, LOWER, POS, SENT_START
from spacy.matcher import PhraseMatcher
from spacy.util import filter_spans

from .polarity import HEDGE_ADJS, HEDGE_ADVS, HEDGE_MODALS, polarity_scopes
from .vocab import Vocabulary
from .wordnet_forms import wordnet_forms

_NOUN_POS = frozenset({"NOUN", "PROPN"})
_NOMINAL_DEPS = frozenset({"nsubj", "nsubjpass", "dobj", "pobj", "attr", "appos", "oprd", "dative"})
_MISTAG_DEPS = _NOMINAL_DEPS | {"conj", "amod"}
_MODIFIER_DEPS = frozenset({"compound", "nmod", "amod"})
_ENTITY, _META = "ENTITY", "META"
# Sentence cues of padding (MentionFinder._plain_sentences): guesses (polarity.py's hedge words, by surface
# form) and afterthoughts.
_GUESS_CUES = HEDGE_ADVS | HEDGE_ADJS | HEDGE_MODALS | {
    "appear", "appears", "appeared", "appearing", "seem", "seems", "seemed", "suggest", "suggests", "suggesting",
    "indicate", "indicates", "indicating",
}  # fmt: skip
_ADDED_CUES = frozenset(
    {"also", "additionally", "addition", "besides", "moreover", "furthermore", "another", "other", "various",
     "several", "multiple", "numerous"}
)  # fmt: skip
_PADDING_CUES = _GUESS_CUES | _ADDED_CUES


@dataclass(frozen=True, slots=True)
class Candidate:
    """One noun-phrase head (or multi-word form) in a caption, before filtering."""

    phrase: str  # surface text, lowercased ("traffic lights")
    lemma: str  # lemma text, lowercased ("traffic light")
    entity: str | None  # canonical vocabulary entity, None when not in the vocabulary
    meta: bool  # a meta noun of the vocabulary ("image", "infrared view")
    modifier: bool  # modifies a noun to its right ("car" in "car headlights")
    negated: bool
    hedged: bool
    sentence: int = 0  # index of the sentence holding the head token (0 = first)
    token: int = 0  # index of the head token in the doc
    start: int = 0  # character offsets of the phrase in the doc's text
    end: int = 0
    plural: bool = False  # a plural head or a counted one ("cars", "two dogs"): the caption asserts several
    core: bool = False  # not the object of a preposition: a subject, object or attribute ("a dog on a bed": dog)
    plain: bool = False  # stated plainly: not a list member, nor in a padding sentence (`_plain_sentences`)


class MentionFinder:
    """Finds `Candidate`s in spaCy Docs for one vocabulary (build once per process, reuse per doc)."""

    def __init__(self, nlp, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self.lower = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.lemma = PhraseMatcher(nlp.vocab, attr="LEMMA")
        # WordNet's multi-word synonyms ("remote control" -> remote) and the forms it never reads as adjectives
        self.compounds, self.noun_only = wordnet_forms(vocab)
        self._add(nlp, _ENTITY, vocab.multiword_forms + list(self.compounds))
        self._add(nlp, _META, vocab.multiword_meta)
        self._cache: dict[tuple[str, str], tuple[str | None, bool]] = {}
        strings = nlp.vocab.strings
        self._noun_pos = np.array([strings.add(p) for p in sorted(_NOUN_POS)], dtype=np.uint64)
        self._nominal_deps = np.array([strings.add(d) for d in sorted(_MISTAG_DEPS)], dtype=np.uint64)
        self._cue_ids = np.array([strings.add(w) for w in sorted(_PADDING_CUES)], dtype=np.uint64)
        self._expl = strings.add("expl")

    def _add(self, nlp, label: str, forms: list[str]) -> None:
        if not forms:
            return
        self.lower.add(label, [nlp.make_doc(f) for f in forms])
        # Lemma patterns need the tagger + lemmatizer, so the forms go through the pipeline.
        self.lemma.add(label, list(nlp.pipe(forms)))

    def _plain_sentences(self, arr: np.ndarray, sent_of: np.ndarray) -> np.ndarray:
        """Per sentence: True unless it guesses ("likely", "appears"), adds afterthoughts ("also", "in addition",
        "several other") or is a bare existential ("there are ..."): the sentences where VLMs pad long
        descriptions with objects they did not see."""
        cue = np.isin(arr[:, 0], self._cue_ids) | (arr[:, 2] == self._expl)
        flagged = np.zeros(int(sent_of[-1]) + 1, dtype=bool)
        flagged[sent_of[cue]] = True
        return ~flagged

    def _lookup(self, phrase: str, lemma: str) -> tuple[str | None, bool]:
        key = (phrase, lemma)
        hit = self._cache.get(key)
        if hit is None:
            entity = (
                self.vocab.lookup(phrase)
                or self.vocab.lookup(lemma)
                or self.compounds.get(phrase)
                or self.compounds.get(lemma)
            )
            meta = entity is None and (self.vocab.is_meta(phrase) or self.vocab.is_meta(lemma))
            hit = self._cache[key] = (entity, meta)
        return hit

    def candidates(self, doc) -> list[Candidate]:
        if not len(doc):
            return []
        arr = doc.to_array([LOWER, POS, DEP, SENT_START])
        negated, hedged = polarity_scopes(doc, arr[:, 0])
        sent_of = np.maximum(np.cumsum(arr[:, 3].astype(np.int64) == 1) - 1, 0)
        scopes = _Scopes(negated, hedged, sent_of, self._plain_sentences(arr, sent_of))
        spans = [doc[s:e] for _, s, e in self.lower(doc)]
        if len(self.lemma):
            spans += [doc[s:e] for _, s, e in self.lemma(doc)]
        covered: set[int] = set()
        out: list[Candidate] = []
        for span in filter_spans(spans) if spans else []:
            covered.update(range(span.start, span.end))
            root = span[-1]  # English compounds are head-final: "traffic light" -> light
            phrase = span.text.lower()
            lemma = " ".join(t.lemma_.lower() for t in span)
            entity, meta = self._lookup(phrase, lemma)
            out.append(_make(phrase, lemma, entity, meta, root, scopes, span.start_char, span.end_char))
        # Only tokens that may be nominal become Token objects (creating them is the costly part).
        maybe = np.nonzero(np.isin(arr[:, 1], self._noun_pos) | np.isin(arr[:, 2], self._nominal_deps))[0]
        for i in maybe.tolist():
            if i in covered:
                continue
            tok = doc[i]
            noun = _is_noun(tok)
            if not noun and not _is_mistagged_noun(tok, self.noun_only):
                continue
            phrase = tok.lower_
            lemma = tok.lemma_.lower()
            entity, meta = self._lookup(phrase, lemma)
            if not noun and entity is None:
                continue
            out.append(_make(phrase, lemma, entity, meta, tok, scopes, tok.idx, tok.idx + len(tok)))
        out.sort(key=lambda c: c.start)  # text order, so the first mention of an entity comes first
        return out


class _Scopes(NamedTuple):
    """Per-doc facts a candidate reads by its head token."""

    negated: set[int]  # token indices (polarity.py)
    hedged: set[int]
    sent_of: np.ndarray  # token -> sentence index
    plain: np.ndarray  # sentence -> stated plainly (MentionFinder._plain_sentences)


def _make(phrase, lemma, entity, meta, head, scopes: _Scopes, start, end) -> Candidate:
    sentence = int(scopes.sent_of[head.i])
    return Candidate(
        phrase=phrase,
        lemma=lemma,
        entity=entity,
        meta=meta,
        modifier=_is_modifier(head),
        negated=head.i in scopes.negated,
        hedged=head.i in scopes.hedged,
        sentence=sentence,
        token=head.i,
        start=start,
        end=end,
        plural=_is_plural(head),
        core=head.dep_ != "pobj",
        plain=bool(scopes.plain[sentence]) and head.dep_ != "conj",
    )


def _is_plural(tok) -> bool:
    return tok.tag_ in ("NNS", "NNPS") or any(c.dep_ == "nummod" for c in tok.children)


def _is_noun(tok) -> bool:
    return tok.pos_ in _NOUN_POS and (tok.is_alpha or "-" in tok.text)


def _is_mistagged_noun(tok, noun_only: frozenset[str] = frozenset()) -> bool:
    """A word the tagger called a verb/adjective where the parse says noun: "holding skis" (dobj), "a knife
    and fork" (conj of a noun), "a surfboard riding" (amod of a non-noun); or an "adjective" that WordNet
    knows only as a noun ("a skateboard trick", "a red and yellow surfboard"). Only vocabulary forms count."""
    if tok.pos_ not in ("VERB", "ADJ", "X") or not tok.is_alpha:
        return False
    if tok.pos_ == "ADJ" and tok.lower_ in noun_only and tok.dep_ in ("amod", "conj"):
        return True
    dep = tok.dep_
    if dep in _NOMINAL_DEPS:
        return True
    head_pos = tok.head.pos_
    return (dep == "conj" and head_pos in _NOUN_POS) or (dep == "amod" and head_pos not in _NOUN_POS)


def _is_modifier(tok) -> bool:
    head = tok.head
    return tok.dep_ in _MODIFIER_DEPS and head.i > tok.i and head.pos_ in _NOUN_POS
