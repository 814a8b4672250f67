"""Candidate entity mentions in parsed captions: multi-word vocabulary forms first, then noun heads.

1. Multi-word vocabulary forms ("traffic light", "hot dog", "lamp-post") and multi-word meta nouns
   ("infrared view") are matched as units by two spaCy PhraseMatchers, one on LOWER and one on LEMMA
   ("stop signs" -> "stop sign"). Overlaps keep the longest, leftmost span.
2. Every other noun is a candidate when it is the head of its phrase. A noun that modifies a noun to its
   right (dependency `compound`, `nmod` or `amod`) is a modifier, not an entity: "car headlights" gives
   headlights, not car. A vocabulary match used as a modifier ("traffic light pole") is reported as
   `modifier`. Nouns the tagger got wrong ("skis" tagged VERB) still count when their dependency is nominal.
3. Each candidate is looked up by its lowercase form, then by its lemma: an entity, a meta noun, or neither.

The result per candidate is a `Candidate` with flags; the filters (filters.py) decide keep/drop.
"""

from __future__ import annotations

from dataclasses import dataclass

from spacy.matcher import PhraseMatcher
from spacy.util import filter_spans

from .polarity import polarity_scopes
from .vocab import Vocabulary

_NOUN_POS = frozenset({"NOUN", "PROPN"})
_NOMINAL_DEPS = frozenset({"nsubj", "nsubjpass", "dobj", "pobj", "attr", "appos", "oprd", "dative"})
_MODIFIER_DEPS = frozenset({"compound", "nmod", "amod"})
_ENTITY, _META = "ENTITY", "META"


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


class MentionFinder:
    """Finds `Candidate`s in spaCy Docs for one vocabulary (build once per process, reuse per doc)."""

    def __init__(self, nlp, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self.lower = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.lemma = PhraseMatcher(nlp.vocab, attr="LEMMA")
        self._add(nlp, _ENTITY, vocab.multiword_forms)
        self._add(nlp, _META, vocab.multiword_meta)

    def _add(self, nlp, label: str, forms: list[str]) -> None:
        if not forms:
            return
        self.lower.add(label, [nlp.make_doc(f) for f in forms])
        # Lemma patterns need the tagger + lemmatizer; lemmas are lowercased so match on lowercase text.
        self.lemma.add(label, [_LemmaView.of(d) for d in nlp.pipe(forms)])

    def _lookup(self, *forms: str) -> tuple[str | None, bool]:
        for f in forms:
            ent = self.vocab.lookup(f)
            if ent is not None:
                return ent, False
        return None, any(self.vocab.is_meta(f) for f in forms)

    def candidates(self, doc) -> list[Candidate]:
        negated, hedged = polarity_scopes(doc)
        sent_of = _sentence_index(doc)
        spans = [doc[s:e] for _, s, e in self.lower(doc)] + [doc[s:e] for _, s, e in self._lemma_matches(doc)]
        spans = filter_spans(spans)
        covered: set[int] = set()
        out: list[Candidate] = []
        for span in spans:
            covered.update(range(span.start, span.end))
            root = span[-1]  # English compounds are head-final: "traffic light" -> light
            phrase = span.text.lower()
            lemma = " ".join(t.lemma_.lower() for t in span)
            entity, meta = self._lookup(phrase, lemma)
            out.append(self._make(phrase, lemma, entity, meta, root, negated, hedged, sent_of))
        for tok in doc:
            if tok.i in covered:
                continue
            noun = _is_noun(tok)
            if not noun and not _is_mistagged_noun(tok):
                continue
            phrase = tok.lower_
            lemma = tok.lemma_.lower()
            entity, meta = self._lookup(phrase, lemma)
            if not noun and entity is None:
                continue
            out.append(self._make(phrase, lemma, entity, meta, tok, negated, hedged, sent_of))
        return out

    def _lemma_matches(self, doc):
        # A lemma PhraseMatcher compares the LEMMA attribute: lowercase it on a copy of the ids.
        return self.lemma(_LemmaView.of(doc)) if len(self.lemma) else []

    @staticmethod
    def _make(phrase, lemma, entity, meta, head, negated, hedged, sent_of) -> Candidate:
        return Candidate(
            phrase=phrase,
            lemma=lemma,
            entity=entity,
            meta=meta,
            modifier=_is_modifier(head),
            negated=head.i in negated,
            hedged=head.i in hedged,
            sentence=sent_of[head.i],
            token=head.i,
        )


def _sentence_index(doc) -> list[int]:
    """Sentence number of every token (from the parser's sentence boundaries)."""
    out = [0] * len(doc)
    k = -1
    for tok in doc:
        if tok.is_sent_start or k < 0:
            k += 1
        out[tok.i] = k
    return out


def _is_noun(tok) -> bool:
    return tok.pos_ in _NOUN_POS and (tok.is_alpha or "-" in tok.text)


def _is_mistagged_noun(tok) -> bool:
    """A vocabulary word the tagger called a verb/adjective but the parser uses as a noun ("holding skis")."""
    return tok.dep_ in _NOMINAL_DEPS and tok.pos_ in ("VERB", "ADJ", "X") and tok.is_alpha


def _is_modifier(tok) -> bool:
    head = tok.head
    return tok.dep_ in _MODIFIER_DEPS and head is not tok and head.i > tok.i and head.pos_ in _NOUN_POS


class _LemmaView:
    """A Doc whose LEMMA attribute is lowercased (spaCy keeps "I" / proper-noun lemmas capitalised)."""

    @staticmethod
    def of(doc):
        if all(t.lemma_ == t.lemma_.lower() for t in doc):
            return doc
        from spacy.attrs import LEMMA
        from spacy.tokens import Doc

        copy = Doc(doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
        arr = doc.to_array([LEMMA])
        for i, t in enumerate(doc):
            arr[i] = doc.vocab.strings.add(t.lemma_.lower())
        copy.from_array([LEMMA], arr.reshape(-1, 1))
        return copy
