"""Confidence step: an estimate of P(entity in pair) from the votes, sources grouped by model.

Captions of one model (its prompts, decodings, both modalities) make the same mistakes, so they are one
witness, not independent voters. The estimate is built in two levels and calibrated; everything is fitted by
tests/bench/bench_extract_quality.py --fit on three caption sources (POPE, HALC, less-is-more; even image_id
halves) and shipped as data (`confidence_model.json`); the benchmark reports each source with a model fitted
on the other two.

1. One view = the captions of one model and one modality for the pair. Its evidence for an entity is read
   from the votes, averaged over the view's captions, in terms that mean the same in a 10-word caption and a
   200-word description: the share of captions that mention the entity at all (a modifier, "clock" in "clock
   tower", counts here only), that name it, strongly (not only late in a long caption), plainly (not only in a
   list or a padding sentence: mentions.py), in the plural or counted, as subject/object; where it is first
   named as a fraction of the caption (sentences, characters, and among the caption's objects); how often
   (log1p mentions); plus two context terms of any sign: the captions' log length in tokens and how many other
   objects they name (a caption that names twelve objects is less sure of each). Score z = b + w . x with
   w >= 0 on every evidence feature. Each caption's raw probability sigmoid(z) goes through an isotonic map
   fitted on pooled out-of-source scores (each source scored by a fit on the others), so one caption alone
   gives a calibrated confidence. A view of several captions (several prompts) starts from its best caption's
   calibrated logit and each of its silent captions lowers it by `view_silence` . (log length, log1p objects
   it names): a long caption that names many objects but not this one is evidence against it, a terse one
   hardly is (both weights >= 0, fitted by log loss on POPE's one-model two-prompt settings, even halves, after
   the map). A model's score is its best view's (an entity seen in one modality only is still in the pair).
2. With several models, each contributes u = max(z', s) when it votes and s when it captioned the pair but
   is silent, where z' is its calibrated logit and s = c + d * (mean log length of its captions) scores
   silence (a long caption that does not name an object says more than a terse one). Confidence =
   sigmoid(a0 + a1 * sum of u ...): a naive-Bayes style sum, shrunk because the models share mistakes too.
   Models without a caption abstain.

Monotone by construction: more votes, stronger or earlier ones never lower z (w >= 0; the context terms do not
move with the candidate's own votes), the isotonic map is non-decreasing, a caption that starts voting removes
its silence penalty (>= 0) and can only raise the view's best, and a1 >= 0.
The coefficients do not name models: a new VLM is judged by how it writes, not by who it is.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from .sources import model_of
from .votes import VoteTable

FEATURES = (
    "any",
    "named",
    "strong",
    "plural",
    "early",
    "mentions",
    "core",
    "rank",
    "front",
    "plain",
    "loglen",
    "others",
)
CONTEXT = frozenset({"loglen", "others"})  # the caption's length and how many other objects it names: any sign
MONOTONE = frozenset(FEATURES) - CONTEXT  # weights >= 0: more or stronger mentions never lower the score
ANTITONE: frozenset[str] = frozenset()  # weights <= 0 (none at present)
MODEL_FILE = "confidence_model.json"
EPS = 1e-4  # calibrated probabilities are kept in [EPS, 1 - EPS] so their logits stay finite


COMBINE = ("bias", "scale", "log", "models", "loglen")  # cross-model terms (module docstring, level 2)
SILENCE = ("loglen", "objects")  # what a view's silent caption costs, per unit of each (weights >= 0)


@dataclass(frozen=True)
class ConfidenceModel:
    """Coefficients (see module docstring); `calibration`: the isotonic map of a model's raw probability
    (knots `x` -> `y`, non-decreasing, linear between knots; empty = identity); `fit` records how they were
    obtained."""

    view_bias: float
    view_weights: dict[str, float]
    silent_bias: float
    silent_loglen: float
    combine: dict[str, float]
    fit: dict[str, Any]
    calibration: dict[str, list[float]] = field(default_factory=dict)
    view_silence: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SILENCE, 0.0))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConfidenceModel:
        weights = {f: float(d["view_weights"].get(f, 0.0)) for f in FEATURES}
        for f in MONOTONE:
            weights[f] = max(weights[f], 0.0)  # monotone whatever the file says
        for f in ANTITONE:
            weights[f] = min(weights[f], 0.0)
        combine = {k: float(d["combine"].get(k, 0.0)) for k in COMBINE}
        combine["scale"], combine["log"] = max(combine["scale"], 0.0), max(combine["log"], 0.0)
        cal = d.get("calibration") or {}
        xs, ys = [float(v) for v in cal.get("x", [])], [float(v) for v in cal.get("y", [])]
        if len(xs) != len(ys) or np.any(np.diff(xs) < 0) or np.any(np.diff(ys) < 0):
            raise ValueError("confidence calibration must be two non-decreasing lists of equal length")
        return cls(
            float(d["view_bias"]),
            weights,
            float(d["silent_bias"]),
            float(d["silent_loglen"]),
            combine,
            dict(d.get("fit", {})),
            {"x": xs, "y": ys} if xs else {},
            # >= 0 whatever the file says: a silent caption never raises the view
            {k: max(float((d.get("view_silence") or {}).get(k, 0.0)), 0.0) for k in SILENCE},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "view_bias": self.view_bias,
            "view_weights": self.view_weights,
            "silent_bias": self.silent_bias,
            "silent_loglen": self.silent_loglen,
            "combine": self.combine,
            "fit": self.fit,
            "calibration": self.calibration,
            "view_silence": self.view_silence,
        }

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """A model's raw probability -> calibrated probability (non-decreasing, so monotonicity is kept)."""
        if not self.calibration:
            return raw
        return np.interp(raw, self.calibration["x"], self.calibration["y"])


def load_model() -> ConfidenceModel:
    """The shipped coefficients."""
    text = resources.files("entitylabel.extract").joinpath(MODEL_FILE).read_text(encoding="utf-8")
    return ConfidenceModel.from_dict(json.loads(text))


def modality_of(source: str) -> str:
    head = source.split(":", 1)[0]
    if head in ("vis", "ir"):
        return head
    parts = source.split(":")
    return parts[2] if parts[0] == "external" and len(parts) > 2 else ""


@dataclass
class Design:
    """The votes as arrays: one row per voting caption, one per view with a vote, one per (candidate, model)."""

    x: np.ndarray  # voting captions x FEATURES
    caption_view: np.ndarray  # per voting caption: its view
    view_silent: np.ndarray  # per view x SILENCE: summed over its silent captions, log1p(tokens), log1p(objects)
    view_row: np.ndarray  # per view: its (candidate, model) row
    row_item: np.ndarray  # per (candidate, model) row: the candidate
    row_loglen: np.ndarray  # per row: mean log(1 + tokens) of the model's captions of the pair
    row_model: list[str]
    n_models: np.ndarray  # per candidate: models that captioned the pair

    def caption_item(self) -> np.ndarray:
        """Per voting caption: its candidate."""
        return self.row_item[self.view_row[self.caption_view]]


def _caption_features(vote, size: tuple[int, int], n_named: int) -> list[float]:
    """One voting caption's evidence. `any`: it votes; the other mention features only when it names the entity
    (a modifier alone, "car" in "car headlights", is evidence through `any` only). `others`: how many other
    objects the caption names (log1p), which the candidate's own vote never changes."""
    named = vote.noun
    own = int(named)
    return [
        1.0,
        float(named),
        float(named and vote.strong),
        float(named and vote.plural),
        (1.0 - vote.first_sentence / max(size[0], 1)) if named else 0.0,
        math.log1p(vote.n_mentions) if named else 0.0,
        float(named and vote.core),
        (1.0 - vote.rank) if named else 0.0,
        (1.0 - min(max(vote.pos, 0.0), 1.0)) if named else 0.0,
        float(named and vote.plain),
        math.log1p(size[1]),
        math.log1p(max(n_named - own, 0)),
    ]


def _named_counts(table: VoteTable) -> dict[str, dict[str, int]]:
    """pair -> source -> how many entities its caption names (votes that name the entity, not modifiers)."""
    out: dict[str, dict[str, int]] = {}
    for (pair, _), voters in table.votes.items():
        counts = out.setdefault(pair, {})
        for s, v in voters.items():
            if v.noun:
                counts[s] = counts.get(s, 0) + 1
    return out


def design(items: list[tuple[str, str]], table: VoteTable) -> Design:
    """Feature arrays for `items` (see module docstring)."""
    x: list[list[float]] = []
    caption_view: list[int] = []
    view_silent: list[list[float]] = []
    view_row: list[int] = []
    row_item: list[int] = []
    row_loglen: list[float] = []
    row_model: list[str] = []
    n_models = np.zeros(len(items), dtype=np.int64)
    grouped: dict[str, dict[str, dict[str, list[str]]]] = {}  # pair -> model -> view -> sources
    named = _named_counts(table)
    for i, key in enumerate(items):
        sizes = table.captions[key[0]]
        if key[0] not in grouped:
            g: dict[str, dict[str, list[str]]] = {}
            for s in sorted(sizes):
                g.setdefault(model_of(s), {}).setdefault(modality_of(s), []).append(s)
            grouped[key[0]] = g
        models = grouped[key[0]]
        n_models[i] = len(models)
        voters = table.votes[key]
        counts = named.get(key[0], {})
        for model, views in models.items():
            for srcs in views.values():
                voting = [s for s in srcs if s in voters]
                if not voting:
                    continue
                for s in voting:
                    x.append(_caption_features(voters[s], sizes[s], counts.get(s, 0)))
                    caption_view.append(len(view_silent))
                silent = [s for s in srcs if s not in voters]
                view_silent.append(
                    [sum(math.log1p(sizes[s][1]) for s in silent), sum(math.log1p(counts.get(s, 0)) for s in silent)]
                )
                view_row.append(len(row_item))
            srcs = [s for ss in views.values() for s in ss]
            row_item.append(i)
            row_loglen.append(sum(math.log1p(sizes[s][1]) for s in srcs) / len(srcs))
            row_model.append(model)
    return Design(
        np.asarray(x, dtype=np.float64).reshape(-1, len(FEATURES)),
        np.asarray(caption_view, dtype=np.int64),
        np.asarray(view_silent, dtype=np.float64).reshape(-1, len(SILENCE)),
        np.asarray(view_row, dtype=np.int64),
        np.asarray(row_item, dtype=np.int64),
        np.asarray(row_loglen, dtype=np.float64),
        row_model,
        n_models,
    )


def model_logits(d: Design, m: ConfidenceModel) -> np.ndarray:
    """Per (candidate, model) row: the logit of the model's best view (-inf when it is silent). A view's logit
    is its best caption's calibrated logit, lowered by each of its silent captions in proportion to how much
    that caption says (its log length and how many objects it names): a long second prompt that omits an
    object is evidence against it, a terse one that names two objects hardly is."""
    w = np.array([m.view_weights[f] for f in FEATURES])
    p = np.clip(m.calibrate(1.0 / (1.0 + np.exp(-(m.view_bias + d.x @ w)))), EPS, 1 - EPS)
    view_z = np.full(len(d.view_row), -np.inf)
    np.maximum.at(view_z, d.caption_view, np.log(p / (1 - p)))
    view_z -= d.view_silent @ np.array([m.view_silence.get(k, 0.0) for k in SILENCE])
    z = np.full(len(d.row_item), -np.inf)
    np.maximum.at(z, d.view_row, view_z)
    return z


def scores(d: Design, m: ConfidenceModel) -> np.ndarray:
    """Confidence per candidate from the design and the coefficients."""
    n = len(d.n_models)
    z = model_logits(d, m)
    best = np.full(n, -np.inf)
    np.maximum.at(best, d.row_item, z)
    # how far each voting model's score is above its silence score; 0 when silent
    lift = np.maximum(z - (m.silent_bias + m.silent_loglen * d.row_loglen), 0.0)
    total, loglen = np.zeros(n), np.zeros(n)
    np.add.at(total, d.row_item, lift)
    np.add.at(loglen, d.row_item, d.row_loglen)
    c = m.combine
    multi = c["bias"] + c["scale"] * total + c["log"] * np.log1p(total) + c["models"] * d.n_models
    multi = multi + c["loglen"] * loglen
    logit = np.where(d.n_models <= 1, best, multi)
    return 1.0 / (1.0 + np.exp(-logit))


def describe(m: ConfidenceModel) -> str:
    """One sentence on how confidences were obtained (extract.json, the dataset card)."""
    return (
        "calibrated estimate of P(entity in pair): a logistic score of the linguistic evidence of each caption "
        "(named or only a modifier, where it is first named as a fraction of the caption and among its objects, "
        "plural or counted, subject/object rather than prepositional, stated plainly rather than in a list or an "
        "afterthought, repeats; the caption's length and how many other objects it names), an isotonic "
        "calibration fitted on out-of-source scores; a model's several prompts count as its best caption lowered "
        "by each silent prompt in proportion to how much that prompt says; combined across models with silence "
        "counted against; fitted on the even image_id halves of three COCO caption sources (POPE, HALC, "
        "less-is-more: 11 VLMs, greedy and hallucination-reducing decodings) vs the CHAIR gold objects; on each "
        "source, a model fitted on the other two kept its calibration error <= 0.05"
    )


def estimate(items: list[tuple[str, str]], table: VoteTable, m: ConfidenceModel | None = None) -> np.ndarray:
    """Confidence per candidate (see module docstring); `m`: the shipped coefficients by default."""
    if not items:
        return np.zeros(0)
    return scores(design(items, table), m or load_model())
