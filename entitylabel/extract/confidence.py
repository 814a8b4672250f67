"""Confidence step: an estimate of P(entity in pair) from the votes, sources grouped by model.

Captions of one model (its prompts, decodings, both modalities) make the same mistakes, so they are one
witness, not independent voters. The estimate is built in two levels, with coefficients fitted on the even
`image_id` half of the POPE captions (tests/bench/bench_extract_quality.py --fit) and shipped as data
(`confidence_model.json`); the odd half reports them.

1. One view = the captions of one model and one modality for the pair. Its evidence for an entity is
   read from the linguistic features of its votes, averaged over the view's captions: the share of
   captions that mention the entity, that mention it strongly (not only late in a long caption or as a
   modifier), plainly (not only in a list or a padding sentence: mentions.py), in the plural or counted;
   how early (1 - first sentence / sentences) and how often (log1p mentions); plus the captions' mean log
   length in tokens (a long caption mentions more, right and wrong). Score: z = b + w . x, with w >= 0 on
   every feature that grows with more or stronger mentions. A model's score is its best view's (an entity
   seen in one modality only is still in the pair), so one model alone gives confidence = sigmoid(z).
2. With several models, each contributes u = max(z, s) when it votes and s when it captioned the pair but
   is silent, where s = c + d * (mean log length of its captions) scores silence (a long caption that does
   not name an object says more than a terse one). Confidence = sigmoid(a0 + a1 * sum of u): a naive-Bayes
   style sum, shrunk by a1 < 1 because the models share mistakes too. Models without a caption abstain.

Monotone by construction: more votes, stronger or earlier ones never lower z, u or the sum (a1 >= 0).
The coefficients do not name models: a new VLM is judged by how it writes, not by who it is.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from .sources import model_of
from .votes import VoteTable

MODALITY_SEP = "|"  # a view key: model + "|" + modality
FEATURES = ("any", "strong", "plural", "early", "mentions", "core", "rank", "head", "plain", "loglen", "agreement")
MONOTONE = frozenset(FEATURES) - {"loglen"}  # weights >= 0
ANTITONE: frozenset[str] = frozenset()  # weights <= 0 (none at present)
MODEL_FILE = "confidence_model.json"


COMBINE = ("bias", "scale", "log", "models", "loglen")  # cross-model terms (module docstring, level 2)


@dataclass(frozen=True)
class ConfidenceModel:
    """Coefficients (see module docstring); `fit` records how they were obtained."""

    view_bias: float
    view_weights: dict[str, float]
    silent_bias: float
    silent_loglen: float
    combine: dict[str, float]
    fit: dict[str, Any]
    agreement_ref: float = 0.8  # a model's agreement where it cannot be measured (one caption per view)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConfidenceModel:
        weights = {f: float(d["view_weights"].get(f, 0.0)) for f in FEATURES}
        for f in MONOTONE:
            weights[f] = max(weights[f], 0.0)  # monotone whatever the file says
        for f in ANTITONE:
            weights[f] = min(weights[f], 0.0)
        combine = {k: float(d["combine"].get(k, 0.0)) for k in COMBINE}
        combine["scale"], combine["log"] = max(combine["scale"], 0.0), max(combine["log"], 0.0)
        return cls(
            float(d["view_bias"]),
            weights,
            float(d["silent_bias"]),
            float(d["silent_loglen"]),
            combine,
            dict(d.get("fit", {})),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "view_bias": self.view_bias,
            "view_weights": self.view_weights,
            "silent_bias": self.silent_bias,
            "silent_loglen": self.silent_loglen,
            "combine": self.combine,
            "fit": self.fit,
            "agreement_ref": self.agreement_ref,
        }


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
    """The votes as arrays: one row per voting view, one per (candidate, captioning model)."""

    x: np.ndarray  # voting views x FEATURES
    view_row: np.ndarray  # per view: its (candidate, model) row
    row_item: np.ndarray  # per (candidate, model) row: the candidate
    row_loglen: np.ndarray  # per row: mean log(1 + tokens) of the model's captions of the pair
    row_model: list[str]
    n_models: np.ndarray  # per candidate: models that captioned the pair


def _view_features(views: dict[str, list[str]], voters: dict, sizes: dict[str, tuple[int, int]]) -> list:
    """One row per voting view. `any` counts every vote; the other mention features only votes that name the
    entity (a modifier alone, "car" in "car headlights", is evidence through `any` only)."""
    out = []
    for srcs in views.values():
        n = len(srcs)
        votes = [voters[s] for s in srcs if s in voters]
        if not votes:
            continue
        named = [(voters[s], max(sizes[s][0], 1)) for s in srcs if s in voters and voters[s].noun]
        out.append(
            [
                len(votes) / n,
                sum(v.strong for v, _ in named) / n,
                sum(v.plural for v, _ in named) / n,
                sum(1.0 - v.first_sentence / k for v, k in named) / n,
                sum(math.log1p(v.n_mentions) for v, _ in named) / n,
                sum(v.core for v, _ in named) / n,
                sum(1.0 - v.rank for v, _ in named) / n,
                sum(1.0 / (1.0 + v.first_char / 100.0) for v, _ in named) / n,
                sum(v.plain for v, _ in named) / n,
                sum(math.log1p(sizes[s][1]) for s in srcs) / n,
                math.nan,  # agreement: filled in per model by `design`
            ]
        )
    return out


def design(items: list[tuple[str, str]], table: VoteTable) -> Design:
    """Feature arrays for `items` (see module docstring)."""
    x: list[list[float]] = []
    view_row: list[int] = []
    row_item: list[int] = []
    row_loglen: list[float] = []
    row_model: list[str] = []
    view_sizes: list[list[str]] = []
    n_models = np.zeros(len(items), dtype=np.int64)
    grouped: dict[str, dict[str, dict[str, list[str]]]] = {}  # pair -> model -> view -> sources
    for i, key in enumerate(items):
        sizes = table.captions[key[0]]
        if key[0] not in grouped:
            g: dict[str, dict[str, list[str]]] = {}
            for s in sorted(sizes):
                g.setdefault(model_of(s), {}).setdefault(modality_of(s), []).append(s)
            grouped[key[0]] = g
        models = grouped[key[0]]
        n_models[i] = len(models)
        for model, views in models.items():
            feats = _view_features(views, table.votes[key], sizes)
            view_sizes += [ss for ss in views.values() if any(s in table.votes[key] for s in ss)]
            srcs = [s for ss in views.values() for s in ss]
            x += feats
            view_row += [len(row_item)] * len(feats)
            row_item.append(i)
            row_loglen.append(sum(math.log1p(sizes[s][1]) for s in srcs) / len(srcs))
            row_model.append(model)
    xa = np.asarray(x, dtype=np.float64).reshape(-1, len(FEATURES))
    rows = np.asarray(view_row, dtype=np.int64)
    items_of_views = np.asarray(row_item, dtype=np.int64)[rows] if len(rows) else rows
    _fill_agreement(xa, [row_model[r] for r in view_row], [len(v) for v in view_sizes], items_of_views)
    return Design(
        xa,
        np.asarray(view_row, dtype=np.int64),
        np.asarray(row_item, dtype=np.int64),
        np.asarray(row_loglen, dtype=np.float64),
        row_model,
        n_models,
    )


def _fill_agreement(x: np.ndarray, view_model: list[str], view_n: list[int], view_item: np.ndarray) -> None:
    """Per model, how consistently its captions name what one of them names: the mean share of a view's
    captions voting for its candidates, over views of two or more captions (NaN where there are none). Read
    from the whole run, no gold: a model whose prompts agree with each other hallucinates less. Each candidate
    gets its model's value computed without its own views, so its own votes never move it (monotone)."""
    col = FEATURES.index("agreement")
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    own: dict[tuple[str, int], list[float]] = {}
    for j, (model, n) in enumerate(zip(view_model, view_n, strict=True)):
        if n >= 2:
            sums[model] = sums.get(model, 0.0) + x[j, 0]
            counts[model] = counts.get(model, 0) + 1
            own.setdefault((model, int(view_item[j])), []).append(x[j, 0])
    for j, model in enumerate(view_model):
        mine = own.get((model, int(view_item[j])), [])
        rest = counts.get(model, 0) - len(mine)
        x[j, col] = (sums[model] - sum(mine)) / rest if rest > 0 else math.nan


def scores(d: Design, m: ConfidenceModel) -> np.ndarray:
    """Confidence per candidate from the design and the coefficients."""
    w = np.array([m.view_weights[f] for f in FEATURES])
    n = len(d.n_models)
    x = np.where(np.isnan(d.x), m.agreement_ref, d.x)
    z = np.full(len(d.row_item), -np.inf)
    np.maximum.at(z, d.view_row, m.view_bias + x @ w)
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
        "calibrated estimate of P(entity in pair): a logistic score of the linguistic evidence of each model's "
        "captions (share of captions mentioning it, first mention early in the caption and among its objects, "
        "plural or counted, subject/object rather than prepositional, stated plainly rather than in a list or an "
        "afterthought, repeats; caption length), combined across "
        "models with silence counted against; coefficients fitted on the even image_id half of the POPE COCO "
        "captions of 5 VLMs x 2 prompts vs the CHAIR gold objects, reported on the odd half"
    )


def estimate(items: list[tuple[str, str]], table: VoteTable, m: ConfidenceModel | None = None) -> np.ndarray:
    """Confidence per candidate (see module docstring); `m`: the shipped coefficients by default."""
    if not items:
        return np.zeros(0)
    return scores(design(items, table), m or load_model())
