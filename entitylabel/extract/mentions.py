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

from typing import NamedTuple

import numpy as np
from spacy.attrs import DEP, HEAD, IS_ALPHA, LEMMA, LOWER, POS, SENT_START, TAG
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


class Candidate(NamedTuple):
    """One noun-phrase head (or multi-word form) in a caption, before filtering (a tuple: made per noun)."""

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
    """Finds `Candidate`s in spaCy Docs for one vocabulary (build once per process, reuse per doc).

    Per doc, the token attributes are read once as integer columns (`Doc.to_array`) and the rules below test
    ids, not strings: creating a spaCy Token object per token was most of the time this step took. Strings
    are looked up per distinct (LOWER, LEMMA) id pair and cached with their vocabulary entity."""

    def __init__(self, nlp, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self.lower = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.lemma = PhraseMatcher(nlp.vocab, attr="LEMMA")
        # WordNet's multi-word synonyms ("remote control" -> remote) and the forms it never reads as adjectives
        self.compounds, self.noun_only = wordnet_forms(vocab)
        self._add(nlp, _ENTITY, vocab.multiword_forms + list(self.compounds))
        self._add(nlp, _META, vocab.multiword_meta)
        self._cache: dict[tuple[str, str], tuple[str | None, bool]] = {}
        self._strings = nlp.vocab.strings
        self._ids = _Ids(self._strings)
        self._lemma_lower: dict[int, str] = {}  # LEMMA id -> lowercase lemma
        # (LOWER id, LEMMA id) -> (phrase, lemma, entity, meta, noun-only form) of a single token
        self._token_forms: dict[tuple[int, int], tuple[str, str, str | None, bool, bool]] = {}

    def _add(self, nlp, label: str, forms: list[str]) -> None:
        if not forms:
            return
        self.lower.add(label, [nlp.make_doc(f) for f in forms])
        # Lemma patterns need the tagger + lemmatizer, so the forms go through the pipeline.
        self.lemma.add(label, list(nlp.pipe(forms)))

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

    def _lemma_text(self, h: int) -> str:
        text = self._lemma_lower.get(h)
        if text is None:
            text = self._lemma_lower[h] = self._strings[h].lower()
        return text

    def _token_form(self, lower: int, lemma: int) -> tuple[str, str, str | None, bool, bool]:
        key = (lower, lemma)
        hit = self._token_forms.get(key)
        if hit is None:
            phrase, lemma_text = self._strings[lower], self._lemma_text(lemma)
            entity, meta = self._lookup(phrase, lemma_text)
            hit = self._token_forms[key] = (phrase, lemma_text, entity, meta, phrase in self.noun_only)
        return hit

    def candidates(self, doc) -> list[Candidate]:
        if not len(doc):
            return []
        t = _Tokens(doc, self._ids)
        negated, hedged = polarity_scopes(doc, t.lower, t.lemma)
        ids = self._ids
        # sentences that guess ("likely", "appears"), add afterthoughts ("also", "in addition", "several
        # other") or only assert existence ("there are ..."): where VLMs pad long descriptions with objects
        # they did not see
        padded = {s for s, lo, d in zip(t.sent_of, t.lower, t.dep, strict=True) if lo in ids.cues or d == ids.expl}
        scopes = _Scopes(negated, hedged, padded)
        spans = [doc[s:e] for _, s, e in self.lower(doc)]
        if len(self.lemma):
            spans += [doc[s:e] for _, s, e in self.lemma(doc)]
        covered: set[int] = set()
        out: list[Candidate] = []
        for span in filter_spans(spans) if spans else []:
            covered.update(range(span.start, span.end))
            phrase = span.text.lower()
            lemma = " ".join(self._lemma_text(h) for h in t.lemma[span.start : span.end])
            entity, meta = self._lookup(phrase, lemma)
            # English compounds are head-final: "traffic light" -> light
            out.append(_make(phrase, lemma, entity, meta, span.end - 1, t, scopes, span.start_char, span.end_char))
        noun_pos, maybe_deps = ids.noun_pos, ids.maybe_deps
        for i, (pos, dep) in enumerate(zip(t.pos, t.dep, strict=True)):
            if (pos not in noun_pos and dep not in maybe_deps) or i in covered:
                continue
            phrase, lemma, entity, meta, noun_only = self._token_form(t.lower[i], t.lemma[i])
            noun = pos in noun_pos and (t.alpha[i] or "-" in phrase)
            if not noun and (entity is None or not _is_mistagged_noun(i, t, noun_only)):
                continue
            tok = doc[i]
            out.append(_make(phrase, lemma, entity, meta, i, t, scopes, tok.idx, tok.idx + len(tok)))
        out.sort(key=lambda c: c.start)  # text order, so the first mention of an entity comes first
        return out


class _Ids:
    """spaCy string ids of the tags, dependency labels and words the rules test (per StringStore)."""

    def __init__(self, strings) -> None:
        def ids(words) -> frozenset[int]:
            return frozenset(strings.add(w) for w in words)

        self.noun_pos = ids(_NOUN_POS)
        self.mistag_pos = ids(("VERB", "ADJ", "X"))
        self.adj = strings.add("ADJ")
        self.nominal_deps = ids(_NOMINAL_DEPS)
        self.maybe_deps = ids(_MISTAG_DEPS)
        self.modifier_deps = ids(_MODIFIER_DEPS)
        self.amod_conj = ids(("amod", "conj"))
        self.plural_tags = ids(("NNS", "NNPS"))
        self.cues = ids(_PADDING_CUES)
        self.expl, self.pobj, self.conj, self.amod, self.nummod = (
            strings.add(d) for d in ("expl", "pobj", "conj", "amod", "nummod")
        )


class _Tokens:
    """One doc's token attributes as lists of ids (index = token index), and what the rules derive from them."""

    __slots__ = ("ids", "lower", "pos", "dep", "tag", "lemma", "alpha", "head", "sent_of", "counted")

    def __init__(self, doc, ids: _Ids) -> None:
        self.ids = ids
        arr = doc.to_array(_ATTRS)
        self.lower, self.pos, self.dep, self.tag, self.lemma, self.alpha = (arr[:, k].tolist() for k in range(6))
        # HEAD is stored as a signed offset in an unsigned column
        self.head = (arr[:, 6].astype(np.int64) + np.arange(len(arr))).tolist()
        # sentence index per token: sentence starts up to and including it, less one (the first token's)
        self.sent_of = np.maximum(np.cumsum(arr[:, 7].astype(np.int64) == 1) - 1, 0).tolist()
        # tokens with a number among their children ("two dogs")
        self.counted = {h for h, d in zip(self.head, self.dep, strict=True) if d == ids.nummod}


_ATTRS = [LOWER, POS, DEP, TAG, LEMMA, IS_ALPHA, HEAD, SENT_START]


class _Scopes(NamedTuple):
    """Per-doc facts a candidate reads by its head token."""

    negated: set[int]  # token indices (polarity.py)
    hedged: set[int]
    padded: set[int]  # sentence indices of padding sentences: no mention in them is stated plainly


def _make(phrase, lemma, entity, meta, i: int, t: _Tokens, scopes: _Scopes, start, end) -> Candidate:
    """The candidate whose head is token `i`."""
    ids = t.ids
    sentence = t.sent_of[i]
    dep, head = t.dep[i], t.head[i]
    return Candidate(
        phrase=phrase,
        lemma=lemma,
        entity=entity,
        meta=meta,
        # modifies a noun to its right ("car" in "car headlights")
        modifier=dep in ids.modifier_deps and head > i and t.pos[head] in ids.noun_pos,
        negated=i in scopes.negated,
        hedged=i in scopes.hedged,
        sentence=sentence,
        token=i,
        start=start,
        end=end,
        plural=t.tag[i] in ids.plural_tags or i in t.counted,
        core=dep != ids.pobj,
        plain=sentence not in scopes.padded and dep != ids.conj,
    )


def _is_mistagged_noun(i: int, t: _Tokens, noun_only: bool) -> bool:
    """A word the tagger called a verb/adjective where the parse says noun: "holding skis" (dobj), "a knife
    and fork" (conj of a noun), "a surfboard riding" (amod of a non-noun); or an "adjective" that WordNet
    knows only as a noun (`noun_only`: "a skateboard trick", "a red and yellow surfboard"). Only vocabulary
    forms count (the caller checks)."""
    ids, pos, dep = t.ids, t.pos[i], t.dep[i]
    if pos not in ids.mistag_pos or not t.alpha[i]:
        return False
    if pos == ids.adj and noun_only and dep in ids.amod_conj:
        return True
    if dep in ids.nominal_deps:
        return True
    head_pos = t.pos[t.head[i]]
    return (dep == ids.conj and head_pos in ids.noun_pos) or (dep == ids.amod and head_pos not in ids.noun_pos)
