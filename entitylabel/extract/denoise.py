"""Denoising across caption sources: support, per-source reliability (Dawid-Skene), confidence, pruning.

Every pair has captions from several sources (IR/VIS, prompts, models). For each candidate (pair, entity)
that at least one source mentions, each source that captioned the pair votes 1 (it mentions the entity)
or 0 (it does not); a source without a caption for the pair abstains. Plain voting treats all sources the
same, but some models hallucinate far more than others and some are terse.

Dawid & Skene (1979), two-coin form, estimated by EM without any gold label:
  every source s has a sensitivity  a_s = P(s mentions e | e is in the image)
                     and specificity b_s = P(s is silent on e | e is not in the image),
  every entity e has a prior p_e = P(a candidate of entity e is real), shrunk toward the global prior.
  E-step: posterior of each candidate = p_e * prod a_s^y (1-a_s)^(1-y)  vs  (1-p_e) * prod (1-b_s)^y b_s^(1-y).
  M-step: a_s, b_s, p_e are the posterior-weighted rates, with Beta(2, 2) pseudo-counts so that a source
  seen on few items stays near 0.5, and p_e with 10 pseudo-candidates at the global prior.
Initialised from the vote fraction, iterated to convergence (change < 1e-6) or `max_iter`.
The posterior is the label's `confidence`; a source that is silent only when the others are silent earns
a high specificity, and its mentions weigh more than those of one that mentions everything.

With fewer than `MIN_SOURCES_FOR_EM` sources in the whole dataset the model is not identifiable; the
confidence is then the vote fraction (support / sources that captioned the pair), and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_SOURCES_FOR_EM = 3
_EPS = 1e-6


@dataclass
class DenoiseResult:
    confidence: np.ndarray  # one per item, in item order
    method: str  # "dawid_skene" or "vote_fraction"
    sources: list[str]
    sensitivity: dict[str, float]
    specificity: dict[str, float]
    n_items: dict[str, int]  # items each source could vote on
    iterations: int

    def reliability(self) -> dict[str, dict[str, float]]:
        return {
            s: {
                "sensitivity": round(self.sensitivity[s], 6),
                "specificity": round(self.specificity[s], 6),
                "items": self.n_items[s],
            }
            for s in self.sources
        }


def vote_matrix(
    items: list[tuple[str, str]], votes: list[set[str]], pair_sources: dict[str, set[str]], sources: list[str]
) -> np.ndarray:
    """int8 matrix items x sources: 1 mentions, 0 captioned the pair but silent, -1 no caption (abstains)."""
    index = {s: j for j, s in enumerate(sources)}
    y = np.full((len(items), len(sources)), -1, dtype=np.int8)
    for i, ((pair, _), voters) in enumerate(zip(items, votes, strict=True)):
        for s in pair_sources.get(pair, ()):
            y[i, index[s]] = 0
        for s in voters:
            y[i, index[s]] = 1
    return y


def dawid_skene(
    y: np.ndarray,
    classes: np.ndarray,
    *,
    max_iter: int = 200,
    tol: float = 1e-6,
    beta: tuple[float, float] = (2.0, 2.0),
    prior_strength: float = 10.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Two-coin Dawid-Skene EM on a vote matrix (see module docstring).

    `y`: items x sources in {1, 0, -1}; `classes`: per item an integer id of its entity (for the prior).
    Returns (posterior per item, sensitivity per source, specificity per source, iterations).
    """
    n, m = y.shape
    obs = (y >= 0).astype(np.float64)
    pos = (y == 1).astype(np.float64)
    neg = obs - pos
    n_obs = np.maximum(obs.sum(1), 1.0)
    t = pos.sum(1) / n_obs  # soft majority vote
    n_cls = int(classes.max()) + 1 if n else 0
    a0, b0 = beta
    it = 0
    sens = np.full(m, 0.5)
    spec = np.full(m, 0.5)
    for it in range(1, max_iter + 1):
        # M-step
        sens = (t @ pos + a0 - 1) / (t @ obs + a0 + b0 - 2)
        spec = ((1 - t) @ neg + a0 - 1) / ((1 - t) @ obs + a0 + b0 - 2)
        sens = np.clip(sens, _EPS, 1 - _EPS)
        spec = np.clip(spec, _EPS, 1 - _EPS)
        g = float(np.clip(t.mean(), _EPS, 1 - _EPS)) if n else 0.5
        cls_sum = np.bincount(classes, weights=t, minlength=n_cls)
        cls_n = np.bincount(classes, minlength=n_cls)
        prior = np.clip((cls_sum + prior_strength * g) / (cls_n + prior_strength), _EPS, 1 - _EPS)
        # E-step (log odds)
        w_pos = np.log(sens) - np.log(1 - spec)  # a mention
        w_neg = np.log(1 - sens) - np.log(spec)  # a silence
        logit = np.log(prior[classes]) - np.log(1 - prior[classes]) + pos @ w_pos + neg @ w_neg
        t_new = 1.0 / (1.0 + np.exp(-np.clip(logit, -50, 50)))
        delta = float(np.max(np.abs(t_new - t))) if n else 0.0
        t = t_new
        if delta < tol:
            break
    return t, sens, spec, it


def denoise(
    items: list[tuple[str, str]], votes: list[set[str]], pair_sources: dict[str, set[str]]
) -> DenoiseResult:
    """Confidence for each candidate (pair, entity) from the sources that mention it."""
    sources = sorted({s for ss in pair_sources.values() for s in ss})
    y = vote_matrix(items, votes, pair_sources, sources)
    obs = (y >= 0).sum(0)
    n_items = {s: int(obs[j]) for j, s in enumerate(sources)}
    if len(sources) < MIN_SOURCES_FOR_EM or not items:
        n_obs = np.maximum((y >= 0).sum(1), 1)
        conf = (y == 1).sum(1) / n_obs
        nan = {s: float("nan") for s in sources}
        return DenoiseResult(conf.astype(np.float64), "vote_fraction", sources, nan, dict(nan), n_items, 0)
    names = sorted({e for _, e in items})
    cls_index = {e: k for k, e in enumerate(names)}
    classes = np.array([cls_index[e] for _, e in items], dtype=np.int64)
    post, sens, spec, it = dawid_skene(y, classes)
    return DenoiseResult(
        post,
        "dawid_skene",
        sources,
        {s: float(sens[j]) for j, s in enumerate(sources)},
        {s: float(spec[j]) for j, s in enumerate(sources)},
        n_items,
        it,
    )
