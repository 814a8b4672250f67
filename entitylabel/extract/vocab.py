"""Entity vocabularies: the YAML format, its validation, and form lookup.

A vocabulary maps surface forms ("lamp post", "streetlights", "lorry") to canonical entities ("street lamp",
"truck") and lists meta nouns ("image", "infrared view") that never become labels. The format is documented
in the header of `vocab/ivif.yaml`; the rules checked on load are:

- forms are normalised with `normalise_form`; an entity's canonical name is implicitly one of its forms;
- a form claimed by two entities, or by an entity and the meta list, is an error naming both;
- an entity with no usable form, an empty `synonyms` list, an unknown key, a wrong type, a duplicate
  mapping key, a YAML syntax error or a missing file is an error (`EntityLabelError`) naming the file,
  the entry and the line; duplicate synonyms inside one entity are dropped silently.

The file is read with PyYAML's safe composer (nodes only, nothing is constructed), so every entry keeps its
line. Plain scalars are read as the words they spell: YAML 1.1 would turn `no`, `on` or `null` into
booleans or None, a vocabulary wants the text. Numbers are refused where text is expected, except for
`version`, which keeps its text exactly (`1.10` stays "1.10").

Hyphens: "lamp-post", "lamp - post" and "lamp post" are one form. `normalise_form` keeps a hyphen (tidying
the spaces around it) and `form_key` turns hyphens into spaces; two forms are the same form when their keys
are equal, which is what duplicate detection and `lookup` use. `Vocabulary.forms` and `Vocabulary.meta`
store every multi-word form in both spellings, spaced and hyphenated ("lamp post" and "lamp-post"), so a
plain dict or PhraseMatcher built from them matches either way of writing it (spaCy splits "lamp-post" into
three tokens). Closed compounds ("lamppost", "streetlight") are different strings: list them as synonyms.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import EntityLabelError
from ..yaml_safe import NoAliasLoader

TOP_KEYS = ("name", "version", "description", "credits", "meta", "entities")
ENTITY_KEYS = ("synonyms", "category", "synset", "description")
# Vocabularies shipped in the repository's vocab/ folder, loadable by bare name (`--vocab coco80`).
SHIPPED = ("ivif", "coco80")

_DASHES = re.compile("[\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d]")
_SPACED_HYPHEN = re.compile(r"\s*-\s*")
_SPACES = re.compile(r"\s+")
_SYNSET = re.compile(r"^\S+\.[nvasr]\.\d+$")
_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_WORD_TAGS = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"}  # plain `no`, `on`, `null`: keep the word
_NUMBER_TAGS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}


def normalise_form(text: str) -> str:
    """Lowercase, NFKC, unicode dashes -> "-", no spaces around hyphens, whitespace collapsed and stripped."""
    t = unicodedata.normalize("NFKC", str(text)).lower()
    t = _DASHES.sub("-", t)
    t = _SPACED_HYPHEN.sub("-", t)
    return _SPACES.sub(" ", t).strip().strip("-").strip()


def form_key(text: str) -> str:
    """Identity of a form: normalised, with hyphens read as spaces ("lamp-post" == "lamp post")."""
    return _SPACES.sub(" ", normalise_form(text).replace("-", " ")).strip()


def form_variants(text: str) -> tuple[str, ...]:
    """The spellings stored for a form: as written (normalised), spaced, and hyphenated when multi-word."""
    norm = normalise_form(text)
    key = form_key(norm)
    out = [norm, key]
    if " " in key:
        out.append(key.replace(" ", "-"))
    return tuple(dict.fromkeys(v for v in out if v))


@dataclass(frozen=True)
class Entity:
    name: str  # canonical, normalised
    synonyms: tuple[str, ...]  # normalised surface forms incl. the name, sorted, unique
    category: str | None = None
    synset: str | None = None  # WordNet synset id, e.g. "car.n.01"
    description: str | None = None


@dataclass(frozen=True)
class Vocabulary:
    name: str
    version: str
    entities: dict[str, Entity]  # canonical name -> Entity, in file order
    meta: frozenset[str]  # normalised meta nouns, multi-word ones in both spellings
    sha256: str  # of the file's bytes
    path: Path | None = None
    description: str | None = None
    credits: str | None = None
    lines: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False)  # entity -> line

    def __hash__(self) -> int:
        return hash((self.name, self.version, self.sha256))

    @functools.cached_property
    def forms(self) -> dict[str, str]:
        """Every stored surface form (all spellings) -> canonical name."""
        out: dict[str, str] = {}
        for ent in self.entities.values():
            for syn in (ent.name, *ent.synonyms):
                for v in form_variants(syn):
                    out.setdefault(v, ent.name)
        return out

    @functools.cached_property
    def _keys(self) -> dict[str, str]:
        return {form_key(f): name for f, name in self.forms.items()}

    @functools.cached_property
    def _meta_keys(self) -> frozenset[str]:
        return frozenset(form_key(m) for m in self.meta)

    @property
    def multiword_forms(self) -> list[str]:
        """Entity forms with a space or hyphen, sorted (patterns for a PhraseMatcher)."""
        return sorted(f for f in self.forms if " " in f or "-" in f)

    @property
    def multiword_meta(self) -> list[str]:
        """Meta nouns with a space or hyphen, sorted ("infrared view", "heat signature")."""
        return sorted(m for m in self.meta if " " in m or "-" in m)

    @property
    def names(self) -> list[str]:
        return list(self.entities)

    def lookup(self, form: str) -> str | None:
        """Canonical entity for a surface form (any case, spacing or hyphenation), else None."""
        return self.forms.get(form) or self._keys.get(form_key(form))

    def is_meta(self, form: str) -> bool:
        return form in self.meta or form_key(form) in self._meta_keys


@dataclass(frozen=True)
class VocabReport:
    """What `entitylabel vocab check` prints."""

    path: Path
    name: str
    version: str
    sha256: str
    n_entities: int
    n_forms: int  # declared forms incl. canonical names, after normalisation and dedup
    n_multiword: int  # of those, multi-word ones
    n_meta: int
    n_with_synset: int
    categories: dict[str, int]  # category -> number of entities ("" = none)

    def print_summary(self, console: Any) -> None:
        from rich.table import Table
        from rich.text import Text

        t = Table(title=f"{self.path}: ok", show_header=False)
        t.add_column("what")
        t.add_column("value", overflow="fold")
        cats = ", ".join(f"{c or '(none)'} {n}" for c, n in self.categories.items())
        for k, v in (
            ("name", self.name),
            ("version", self.version),
            ("entities", str(self.n_entities)),
            ("forms", f"{self.n_forms} ({self.n_multiword} multi-word)"),
            ("meta nouns", str(self.n_meta)),
            ("with synset", f"{self.n_with_synset} of {self.n_entities}"),
            ("categories", cats),
            ("sha256", self.sha256),
        ):
            t.add_row(k, Text(v))
        console.print(t)


# --- loading --------------------------------------------------------------------------------------


def resolve_vocab_path(path: str | Path) -> Path:
    """`path` itself, or for a bare shipped name ("ivif", "coco80") the repository's vocab/<name>.yaml."""
    p = Path(path)
    if p.exists() or str(path) not in SHIPPED:
        return p
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        cand = root / "vocab" / f"{path}.yaml"
        if cand.is_file():
            return cand
    return p


class _Reader:
    """Walks the composed YAML node tree, raising one-line errors that name file, entry and line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, message: str, node: yaml.Node | None = None, *, hint: str | None = None) -> Exception:
        where = f"{self.path}:{node.start_mark.line + 1}" if node is not None else self.path
        return EntityLabelError(_one_line(message), path=where, hint=hint)

    def text(self, node: yaml.Node, what: str, *, allow_numbers: bool = False) -> str:
        if (
            isinstance(node, yaml.ScalarNode)
            and not _is_null(node)
            and (node.tag == _STR or node.tag in _WORD_TAGS or (allow_numbers and node.tag in _NUMBER_TAGS))
        ):
            return node.value
        raise self.fail(f"{what} must be text, got {_kind(node)}", node)

    def mapping(
        self, node: yaml.Node, what: str, allowed: tuple[str, ...] | None
    ) -> list[tuple[str, yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(f"{what} must be a mapping, got {_kind(node)}", node)
        seen: dict[str, int] = {}
        out = []
        for k, v in node.value:
            key = self.text(k, f"a key in {what}")
            if key in seen:
                raise self.fail(f"{what}: duplicate key '{key}' (first on line {seen[key]})", k)
            seen[key] = k.start_mark.line + 1
            if allowed is not None and key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(allowed)}"
                raise self.fail(f"{what}: unknown key '{key}'", k, hint=hint)
            out.append((key, k, v))
        return out

    def strings(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node]]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(f"{what} must be a list of strings, got {_kind(node)}", node)
        return [(self.text(item, f"{what} entries"), item) for item in node.value]


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return {
        "tag:yaml.org,2002:int": "a number",
        "tag:yaml.org,2002:float": "a number",
        "tag:yaml.org,2002:bool": "a boolean",
        "tag:yaml.org,2002:null": "nothing",
        _STR: f"text '{node.value}'" if len(node.value) < 40 else "text",
    }.get(node.tag, f"a value tagged {node.tag}")


def _one_line(text: str) -> str:
    return _SPACES.sub(" ", str(text)).strip()


def load_vocab(path: str | Path) -> Vocabulary:
    """Read and validate a vocabulary YAML file (or a shipped one by name: "ivif", "coco80")."""
    p = resolve_vocab_path(path)
    data, root = _read_yaml(p)
    r = _Reader(p)
    top = {key: (k, v) for key, k, v in r.mapping(root, "the top level", TOP_KEYS)}
    if "version" not in top:
        raise r.fail("missing required key 'version'", root, hint='add e.g. version: "1.0"')
    version = r.text(top["version"][1], "version", allow_numbers=True).strip()
    if not version:
        raise r.fail("version is empty", top["version"][1])
    name = r.text(top["name"][1], "name").strip() if "name" in top else p.stem
    description = r.text(top["description"][1], "description") if "description" in top else None
    credits = r.text(top["credits"][1], "credits") if "credits" in top else None
    meta_keys, meta_forms = _read_meta(r, top)
    if "entities" not in top:
        raise r.fail("missing required key 'entities'", root)
    ents_node = top["entities"][1]
    if _is_null(ents_node):
        raise r.fail("entities: no entities", ents_node)
    claims: dict[str, tuple[str, int]] = {}  # form key -> (entity, line)
    entities: dict[str, Entity] = {}
    lines: dict[str, int] = {}
    for raw_name, knode, vnode in r.mapping(ents_node, "entities", None):
        entity = _read_entity(r, raw_name, knode, vnode, claims, meta_keys)
        entities[entity.name] = entity
        lines[entity.name] = knode.start_mark.line + 1
    if not entities:
        raise r.fail("entities: no entities", ents_node)
    return Vocabulary(
        name=name,
        version=version,
        entities=entities,
        meta=frozenset(meta_forms),
        sha256=hashlib.sha256(data).hexdigest(),
        path=p,
        description=description,
        credits=credits,
        lines=lines,
    )


def _read_yaml(p: Path) -> tuple[bytes, yaml.Node]:
    """The file's bytes and YAML node tree (safe loader), or one clear error naming the file and line."""
    if not p.is_file():
        what = "is a folder, not a vocabulary file" if p.is_dir() else "vocabulary file not found"
        raise EntityLabelError(what, path=p, hint=f"shipped vocabularies: {', '.join(SHIPPED)}")
    data = p.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise EntityLabelError(f"not UTF-8 text (byte {e.start})", path=p) from None
    try:
        root = yaml.compose(text, Loader=NoAliasLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else p
        problem = _one_line(getattr(e, "problem", None) or e)
        context = getattr(e, "context", None)
        msg = f"YAML syntax error: {problem}" + (f" ({_one_line(context)})" if context else "")
        raise EntityLabelError(msg, path=where) from None
    if root is None:
        raise EntityLabelError("empty vocabulary file", path=p, hint="see vocab/ivif.yaml for the format")
    return data, root


def _read_meta(r: _Reader, top: dict) -> tuple[dict[str, tuple[str, int]], set[str]]:
    """meta: form key -> (form, line), and every variant of the meta forms."""
    meta_keys: dict[str, tuple[str, int]] = {}
    meta_forms: set[str] = set()
    if "meta" in top and not _is_null(top["meta"][1]):
        for form, node in r.strings(top["meta"][1], "meta"):
            norm = normalise_form(form)
            if not norm:
                raise r.fail("meta: empty form", node)
            meta_keys.setdefault(form_key(norm), (norm, node.start_mark.line + 1))
            meta_forms.update(form_variants(norm))
    return meta_keys, meta_forms


def _read_entity(r: _Reader, raw_name: str, knode, vnode, claims: dict, meta_keys: dict) -> Entity:
    """One entity: its forms claimed (each form belongs to one entity and is never meta), optional fields."""
    ename = normalise_form(raw_name)
    if not ename:
        raise r.fail(f"entity '{raw_name}' has an empty name", knode)
    label = f"entity '{ename}'"
    spec: dict[str, yaml.Node] = {}
    if not _is_null(vnode):
        spec = {key: v for key, _, v in r.mapping(vnode, label, ENTITY_KEYS)}
    forms = [(ename, knode)] + _synonyms(r, spec, label)
    _claim(r, ename, label, forms, claims, meta_keys)
    synset = None
    if "synset" in spec and not _is_null(spec["synset"]):
        synset = r.text(spec["synset"], f"{label}: synset").strip()
        if not _SYNSET.match(synset):
            raise r.fail(f"{label}: synset '{synset}' is not a WordNet id like car.n.01", spec["synset"])
    category = None
    if "category" in spec and not _is_null(spec["category"]):
        category = r.text(spec["category"], f"{label}: category").strip() or None
    edesc = None
    if "description" in spec and not _is_null(spec["description"]):
        edesc = r.text(spec["description"], f"{label}: description")
    synonyms = tuple(sorted({f for f, _ in forms}))
    return Entity(name=ename, synonyms=synonyms, category=category, synset=synset, description=edesc)


def _synonyms(r: _Reader, spec: dict, label: str) -> list[tuple[str, yaml.Node]]:
    if "synonyms" not in spec:
        return []
    empty = "list its surface forms or drop the key"
    syn_node = spec["synonyms"]
    if _is_null(syn_node):
        raise r.fail(f"{label}: synonyms is empty", syn_node, hint=empty)
    syns = r.strings(syn_node, f"{label}: synonyms")
    if not syns:
        raise r.fail(f"{label}: synonyms is empty", syn_node, hint=empty)
    out = []
    for form, node in syns:
        norm = normalise_form(form)
        if not norm:
            raise r.fail(f"{label}: empty synonym", node)
        out.append((norm, node))
    return out


def _claim(r: _Reader, ename: str, label: str, forms: list, claims: dict, meta_keys: dict) -> None:
    own: set[str] = set()
    for form, node in forms:
        key = form_key(form)
        if key in own:
            continue  # duplicates within one entity are tolerated
        own.add(key)
        if key in claims:
            other, oline = claims[key]
            raise r.fail(
                f"{label}: form '{form}' is also claimed by entity '{other}' (line {oline})",
                node,
                hint="a surface form may belong to one entity only",
            )
        if key in meta_keys:
            mform, mline = meta_keys[key]
            raise r.fail(
                f"{label}: form '{form}' is also in meta (line {mline})",
                node,
                hint="a meta noun never becomes a label: keep it in one place",
            )
        claims[key] = (ename, node.start_mark.line + 1)


def _is_null(node: yaml.Node) -> bool:
    # an empty value or `~`; a plain `null` or `no` is read as the word, see the module docstring
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL and node.value in ("", "~")


def check_vocab(path: str | Path, *, resolve_synsets: bool = True) -> VocabReport:
    """Load and validate a vocabulary; with `resolve_synsets`, also check every synset exists in WordNet."""
    vocab = load_vocab(path)
    if resolve_synsets and any(e.synset for e in vocab.entities.values()):
        check_synsets(vocab)
    n_forms = sum(len(e.synonyms) for e in vocab.entities.values())
    n_multi = sum(1 for e in vocab.entities.values() for f in e.synonyms if " " in f or "-" in f)
    n_meta = len({form_key(m) for m in vocab.meta})
    cats = Counter(e.category or "" for e in vocab.entities.values())
    assert vocab.path is not None
    return VocabReport(
        path=vocab.path,
        name=vocab.name,
        version=vocab.version,
        sha256=vocab.sha256,
        n_entities=len(vocab.entities),
        n_forms=n_forms,
        n_multiword=n_multi,
        n_meta=n_meta,
        n_with_synset=sum(1 for e in vocab.entities.values() if e.synset),
        categories=dict(sorted(cats.items())),
    )


def check_synsets(vocab: Vocabulary) -> None:
    """Raise for the first entity whose synset WordNet 3.0 does not know."""
    from nltk.corpus.reader.wordnet import WordNetError

    from ..resources import wordnet

    wn = wordnet()
    for ent in vocab.entities.values():
        if not ent.synset:
            continue
        try:
            wn.synset(ent.synset)
        except (WordNetError, ValueError):
            line = vocab.lines.get(ent.name)
            where = f"{vocab.path}:{line}" if line else vocab.path
            raise EntityLabelError(
                f"entity '{ent.name}': synset '{ent.synset}' is not in WordNet 3.0", path=where
            ) from None
