"""Negation, absence and hedging scopes, read from spaCy's dependency parse.

`polarity_scopes(doc)` returns two sets of token indices: tokens inside a negation/absence scope and tokens
inside a hedge scope. A mention is negated (or hedged) when its head token is in the set. Scopes are nominal
groups: a noun plus the nouns coordinated with it ("no cars or people" negates both), never the nouns of a
prepositional phrase hanging off it ("no people on the street" does not negate the street).

Negation / absence cues
- determiner "no" on a noun: "no cars", "there are no people", "with no one around"; but not "no other
  people" / "no additional cars", which deny further instances and presuppose one;
- "not"/"n't"/"never" on a verb: its objects and attributes ("does not have any windows", "there isn't a
  car"); its subject too when the predicate is about presence or visibility ("the dog is not visible",
  "a car cannot be seen"); "not" on a noun phrase: "not a single car";
- prepositions "without", "sans": "a road without cars";
- absence words with "of": "absence of", "lack of", "free of", "devoid of", "empty of", "clear of",
  "none of"; the verb "lack": "the street lacks traffic";
- "neither ... nor": both members; "nor X": X.

Hedge cues (the mention is a guess, not a statement)
- the complement of "appear/seem to be" and of "look like" / "resemble": "what appears to be a dog",
  "something that looks like a cat"; the subject is not hedged: "the man appears to be waiting";
- a modal "might/may/could" on the verb: its objects and attributes ("there might be a dog", "it could be a
  fox");
- hedging adverbs "possibly, probably, perhaps, maybe, presumably, seemingly, apparently, likely" on a verb
  or noun: the verb's objects/attributes, or the noun itself ("possibly a cat");
- hedging adjectives on a noun: "a possible pedestrian", "a potential obstacle", "a probable vehicle".
"likely" is treated as a hedge: VLMs use it for guesses ("likely a parking lot"); whether a hedge drops
the mention is the stage's `keep_hedged` choice.
"""

from __future__ import annotations

from collections.abc import Iterable

NEG_WORDS = frozenset({"not", "n't", "never", "nt", "cannot"})
ABSENCE_PREPS = frozenset({"without", "sans"})
ABSENCE_HEADS = frozenset({"absence", "lack", "free", "devoid", "empty", "clear", "none", "absent", "bereft"})
ABSENCE_VERBS = frozenset({"lack"})
PRESENCE_PREDICATES = frozenset(
    {
        "visible",
        "present",
        "see",
        "seen",
        "show",
        "depict",
        "exist",
        "appear",
        "find",
        "observe",
        "notice",
        "spot",
        "detect",
        "discern",
        "identify",
        "there",
        "available",
        "evident",
        "apparent",
        "include",
    }
)
HEDGE_ADVS = frozenset(
    {
        "possibly",
        "probably",
        "perhaps",
        "maybe",
        "presumably",
        "seemingly",
        "apparently",
        "likely",
        "supposedly",
        "potentially",
        "conceivably",
    }
)
HEDGE_ADJS = frozenset({"possible", "potential", "probable", "apparent", "presumed", "suspected", "likely"})
HEDGE_MODALS = frozenset({"might", "may", "could"})
SEEM_VERBS = frozenset({"appear", "seem"})
LIKE_VERBS = frozenset({"look", "resemble"})

_NOMINAL_POS = frozenset({"NOUN", "PROPN", "PRON", "NUM"})
_OBJECT_DEPS = frozenset({"dobj", "attr", "oprd", "obj", "dative"})
_SUBJECT_DEPS = frozenset({"nsubj", "nsubjpass", "expl"})
_CLAUSE_DEPS = frozenset({"conj", "ccomp", "advcl", "relcl", "parataxis", "csubj"})
_CUE_LOWERS = (
    NEG_WORDS
    | ABSENCE_PREPS
    | ABSENCE_HEADS
    | HEDGE_ADVS
    | HEDGE_ADJS
    | HEDGE_MODALS
    | frozenset(
        {
            "no",
            "nor",
            "neither",
            "none",
            "appears",
            "appear",
            "appeared",
            "appearing",
            "seems",
            "seem",
            "seemed",
            "seeming",
            "looks",
            "look",
            "looked",
            "looking",
            "resembles",
            "resemble",
            "resembling",
            "lacks",
            "lack",
            "lacking",
            "lacked",
        }
    )
)


# Only tokens whose lowercase form or lowercase lemma is one of these can start a scope (every branch of
# negation_scope / hedge_scope tests one of them): the scopes visit those tokens, not the whole doc.
_SCOPE_LOWERS = (
    frozenset({"no", "neither", "nor"}) | NEG_WORDS | ABSENCE_PREPS | ABSENCE_HEADS | HEDGE_MODALS | HEDGE_ADVS
)
_SCOPE_LEMMAS = ABSENCE_VERBS | ABSENCE_HEADS | SEEM_VERBS | LIKE_VERBS | HEDGE_ADJS


def has_cue(lowers: Iterable[str]) -> bool:
    """Cheap pre-check: does any token look like a negation or hedge cue?"""
    return not _CUE_LOWERS.isdisjoint(lowers)


def nominal_group(tok) -> list:
    """`tok` plus the tokens coordinated or in apposition with it (recursively), never prepositional ones."""
    out = [tok]
    stack = [tok]
    while stack:
        t = stack.pop()
        for c in t.children:
            if c.dep_ in ("conj", "appos") and c.pos_ not in ("VERB", "AUX"):
                out.append(c)
                stack.append(c)
    return out


def _pp_objects(tok) -> list:
    """Nominal groups of the objects of `tok`'s prepositions ("of" in "free of cars")."""
    out = []
    for prep in tok.children:
        if prep.dep_ == "prep" and prep.lower_ == "of":
            for obj in prep.children:
                if obj.dep_ in ("pobj", "pcomp"):
                    out.extend(nominal_group(obj))
    return out


def _objects(verb) -> list:
    """Nominal groups of a verb's objects and attributes (and through "be" complements)."""
    out = []
    for c in verb.children:
        if c.dep_ in _OBJECT_DEPS:
            out.extend(nominal_group(c))
        elif c.dep_ in ("acomp", "xcomp") and c.pos_ in ("AUX", "VERB"):
            out.extend(_objects(c))  # "does not appear to have any X"
    return out


def _subjects(verb) -> list:
    out = []
    for c in verb.children:
        if c.dep_ in ("nsubj", "nsubjpass"):
            out.extend(nominal_group(c))
    return out


def _is_presence(verb) -> bool:
    if verb.lemma_.lower() in PRESENCE_PREDICATES or verb.lower_ in PRESENCE_PREDICATES:
        return True
    return any(
        c.dep_ in ("acomp", "expl", "advmod") and (c.lemma_.lower() in PRESENCE_PREDICATES or c.lower_ == "there")
        for c in verb.children
    )


def _any_below(verb) -> list:
    """Nouns determined by "any"/"a single" in the verb's own clause: "not ... any X"."""
    out = []
    stack = [c for c in verb.children if c.dep_ not in _CLAUSE_DEPS and c.dep_ not in _SUBJECT_DEPS]
    while stack:
        t = stack.pop()
        if t.pos_ in _NOMINAL_POS and any(d.lower_ in ("any", "single") for d in t.children):
            out.extend(nominal_group(t))
        stack.extend(c for c in t.children if c.dep_ not in _CLAUSE_DEPS)
    return out


def _noun_of(tok):
    """The noun a determiner/adjective/adverb belongs to (climbing modifiers), else None."""
    t = tok.head
    for _ in range(3):
        if t.pos_ in _NOMINAL_POS:
            return t
        if t.dep_ in ("det", "amod", "advmod", "nummod", "quantmod") and t.head is not t:
            t = t.head
        else:
            return None
    return None


def _presupposes(noun) -> bool:
    """ "no other people" denies further people and presupposes one: the noun is not negated."""
    return any(c.lower_ in ("other", "additional", "further", "more") for c in noun.children if c.i < noun.i)


def negation_scope(doc, tokens: Iterable | None = None) -> set[int]:
    """Indices of tokens whose presence the text denies. `tokens`: the doc's tokens that may start a scope
    (`_scope_tokens`), when the caller has them; every token otherwise."""
    neg: set[int] = set()

    def add(toks: Iterable) -> None:
        neg.update(t.i for t in toks)

    for tok in doc if tokens is None else tokens:
        low = tok.lower_
        lemma = tok.lemma_.lower()
        if low == "no" and tok.dep_ in ("det", "neg", "amod", "advmod", "quantmod"):
            noun = _noun_of(tok)
            if noun is not None and not _presupposes(noun):
                add(nominal_group(noun))
        elif low in NEG_WORDS and tok.dep_ in ("neg", "advmod", "preconj", "det"):
            head = tok.head
            if head.pos_ in ("VERB", "AUX", "ADJ") and head.dep_ not in ("amod",):
                add(_objects(head))
                add(_any_below(head))
                if head.dep_ == "acomp" and head.head.pos_ in ("AUX", "VERB"):  # "is not visible"
                    head = head.head
                if _is_presence(head) or any(c.dep_ == "nsubjpass" for c in head.children):
                    add(_subjects(head))
            else:
                noun = head if head.pos_ in _NOMINAL_POS else _noun_of(tok)
                if noun is not None:
                    add(nominal_group(noun))  # "not a single car"
        elif low in ABSENCE_PREPS and tok.dep_ in ("prep", "mark", "cc", "advmod"):
            for c in tok.children:
                if c.dep_ in ("pobj", "pcomp", "dobj"):
                    add(nominal_group(c) if c.pos_ in _NOMINAL_POS else _objects(c))
        elif lemma in ABSENCE_VERBS and tok.pos_ == "VERB":
            add(_objects(tok))  # "the street lacks cars"
        elif lemma in ABSENCE_HEADS or low in ABSENCE_HEADS:
            add(_pp_objects(tok))  # "absence of", "free of", "none of"
        elif low == "neither" and tok.dep_ in ("preconj", "det", "cc"):
            head = tok.head
            if head.pos_ in _NOMINAL_POS:
                add(nominal_group(head))
        elif low == "nor" and tok.dep_ == "cc":
            head = tok.head
            if head.pos_ in _NOMINAL_POS:
                for c in head.children:
                    if c.dep_ == "conj" and c.i > tok.i:
                        add(nominal_group(c))
            elif head.pos_ in ("VERB", "AUX"):
                for c in head.children:
                    if c.dep_ == "conj" and c.i > tok.i:
                        add(_objects(c) + _subjects(c))
    return neg


def hedge_scope(doc, tokens: Iterable | None = None) -> set[int]:
    """Indices of tokens the text only guesses at (`tokens` as in `negation_scope`)."""
    hedged: set[int] = set()

    def add(toks: Iterable) -> None:
        hedged.update(t.i for t in toks)

    for tok in doc if tokens is None else tokens:
        low = tok.lower_
        lemma = tok.lemma_.lower()
        if lemma in SEEM_VERBS and tok.pos_ in ("VERB", "AUX"):
            for c in tok.children:  # "appears to be a dog": xcomp "be" -> attr
                if c.dep_ in ("xcomp", "ccomp") and c.lemma_.lower() == "be":
                    add(_objects(c))
                elif c.dep_ in ("attr", "oprd"):
                    add(nominal_group(c))
        elif lemma in LIKE_VERBS and tok.pos_ in ("VERB", "AUX"):
            if lemma == "resemble":
                add(_objects(tok))
            for c in tok.children:  # "looks like a cat"
                if c.dep_ == "prep" and c.lower_ in ("like", "as"):
                    for o in c.children:
                        if o.dep_ == "pobj":
                            add(nominal_group(o))
        elif low in HEDGE_MODALS and tok.dep_ == "aux":
            add(_objects(tok.head))
        elif low in HEDGE_ADVS and tok.dep_ in ("advmod", "amod", "npadvmod", "acomp"):
            head = tok.head
            if head.pos_ in ("VERB", "AUX"):
                add(_objects(head))
            else:
                noun = head if head.pos_ in _NOMINAL_POS else _noun_of(tok)
                if noun is not None:
                    add(nominal_group(noun))
        elif lemma in HEDGE_ADJS and tok.dep_ == "amod" and tok.head.pos_ in _NOMINAL_POS:
            add(nominal_group(tok.head))
    return hedged


class _Cues:
    """Per spaCy StringStore: hashes of the cue words, and which lemma hashes are scope lemmas (cached per
    lemma, as the same lemmas recur in every caption)."""

    def __init__(self, strings) -> None:
        self.strings = strings
        self.lowers = frozenset(strings.add(w) for w in _CUE_LOWERS)
        self.scope_lowers = frozenset(strings.add(w) for w in _SCOPE_LOWERS)
        self.scope_lemma: dict[int, bool] = {}

    def is_scope_lemma(self, h: int) -> bool:
        hit = self.scope_lemma.get(h)
        if hit is None:
            hit = self.scope_lemma[h] = self.strings[h].lower() in _SCOPE_LEMMAS
        return hit


_CUES: dict[int, _Cues] = {}  # per spaCy StringStore


def _scope_tokens(doc, cues: _Cues, lower_ids: list[int], lemma_ids: list[int]) -> list:
    """The tokens that may start a negation or hedge scope, in doc order."""
    lows = cues.scope_lowers
    lemmas = {h for h in set(lemma_ids) if cues.is_scope_lemma(h)}
    return [doc[i] for i, (lo, le) in enumerate(zip(lower_ids, lemma_ids, strict=True)) if lo in lows or le in lemmas]


def polarity_scopes(doc, lower_ids=None, lemma_ids=None) -> tuple[set[int], set[int]]:
    """(negated token indices, hedged token indices); both empty when the text has no cue word.

    `lower_ids` / `lemma_ids`: the doc's LOWER / LEMMA attribute arrays (or lists) when the caller has them:
    they save creating a Token object per token; with both, the scopes visit only the tokens that may start one.
    """
    if lower_ids is None:
        if not has_cue(t.lower_ for t in doc):
            return set(), set()
        return negation_scope(doc), hedge_scope(doc)
    strings = doc.vocab.strings
    cues = _CUES.get(id(strings))
    if cues is None or cues.strings is not strings:
        cues = _CUES[id(strings)] = _Cues(strings)
    lower_ids = lower_ids.tolist() if hasattr(lower_ids, "tolist") else lower_ids
    if cues.lowers.isdisjoint(lower_ids):
        return set(), set()
    if lemma_ids is None:
        return negation_scope(doc), hedge_scope(doc)
    lemma_ids = lemma_ids.tolist() if hasattr(lemma_ids, "tolist") else lemma_ids
    tokens = _scope_tokens(doc, cues, lower_ids, lemma_ids)
    return negation_scope(doc, tokens), hedge_scope(doc, tokens)
