"""Per-model reliability across models: Dawid-Skene EM without gold, reported in extract.json.

Dawid & Skene (1979): each model's observation of a candidate is one of {silent, weak vote, vote}; latent
classes are absent and `N_CLASSES - 1` kinds of present object (a salient one nearly every model names, a
small one only some do: with one "present" class the EM calls every rarely named object absent). Each class
c and model s have a distribution P(obs | c) over the three levels.
  E-step: P(c | item) ~ prior_c * prod_s P(obs_s | c), over the models that captioned the pair.
  M-step: posterior-weighted observation rates with one pseudo-count per level; class priors are the mean
  posteriors (optionally per entity, shrunk toward them with `prior_strength` pseudo-candidates).
Initialised from equal-width bins of the vote fraction, iterated to convergence (change < 1e-6) or `max_iter`.
EM that assumes independent witnesses runs only across models, never over one model's captions (its
prompts, decodings and modalities share its mistakes), and only with at least `MIN_SOURCES_FOR_EM` models.
The confidence itself is the calibrated estimate of confidence.py; this is a diagnostic of each model:
sensitivity = P(vote | present), the present classes weighed by their prior, specificity = P(silent | absent).
"""

from __future__ import annotations

import numpy as np

MIN_SOURCES_FOR_EM = 3
N_LEVELS = 3  # observation per source and candidate: 0 silent, 1 weak (late or modifier) mention, 2 mention
N_CLASSES = 3  # latent classes: absent, present but rarely mentioned, present and salient
_EPS = 1e-6


def dawid_skene(
    y: np.ndarray,
    classes: np.ndarray,
    *,
    n_classes: int = N_CLASSES,
    max_iter: int = 300,
    tol: float = 1e-6,
    pseudo: float = 1.0,
    prior_strength: float = float("inf"),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Dawid-Skene EM over observations {0 silent, 1 weak, 2 strong} per source (see module docstring).

    `y`: items x sources in {-1, 0, 1, 2}; `classes`: per item an integer id of its entity (for the prior).
    Latent classes: 0 absent, 1 .. n_classes-1 present (the EM orders nothing: they start from equal-width
    bins of the vote fraction, so class 1 starts as the rarely mentioned objects, the last as the salient).
    Returns (P(present) per item, P(obs | class) classes x sources x 3, class prior, iterations).
    """
    n, m = y.shape
    onehot = np.stack([(y == k).astype(np.float64) for k in range(N_LEVELS)], axis=2)  # n x m x 3
    frac = (y > 0).sum(1) / np.maximum((y >= 0).sum(1), 1)  # share of the captioning sources that mention it
    start = np.minimum((frac * n_classes).astype(np.int64), n_classes - 1)
    if n_classes == 2:
        start = (frac > 0.5).astype(np.int64)
    resp = np.eye(n_classes)[start]  # n x K responsibilities
    n_cls = int(classes.max()) + 1 if n else 0
    iterations = 0
    theta = np.full((n_classes, m, N_LEVELS), 1.0 / N_LEVELS)
    global_prior = np.full(n_classes, 1.0 / n_classes)
    for iterations in range(1, max_iter + 1):  # noqa: B007 - reported after the loop
        # M-step: posterior-weighted observation rates, Dirichlet(1+pseudo) smoothed; class priors
        theta = np.einsum("ik,isl->ksl", resp, onehot) + pseudo
        theta /= theta.sum(2, keepdims=True)
        global_prior = np.clip(resp.mean(0), _EPS, None) if n else np.full(n_classes, 1.0 / n_classes)
        global_prior /= global_prior.sum()
        if np.isfinite(prior_strength):
            cls_sum = np.stack(
                [np.bincount(classes, weights=resp[:, k], minlength=n_cls) for k in range(n_classes)], axis=1
            )
            cls_n = np.bincount(classes, minlength=n_cls)[:, None]
            log_prior = np.log((cls_sum + prior_strength * global_prior) / (cls_n + prior_strength))[classes]
        else:
            log_prior = np.log(global_prior)[None, :]
        # E-step (log space)
        ll = log_prior + np.einsum("isl,ksl->ik", onehot, np.log(theta))
        ll -= ll.max(1, keepdims=True)
        new = np.exp(ll)
        new /= new.sum(1, keepdims=True)
        delta = float(np.max(np.abs(new - resp))) if n else 0.0
        resp = new
        if delta < tol:
            break
    return 1.0 - resp[:, 0], theta, global_prior, iterations


def model_reliability(items: list[tuple[str, str]], table) -> tuple[dict[str, dict[str, float]], int]:
    """Per model: sensitivity and specificity from Dawid-Skene across models, no gold used; ({}, 0) with fewer
    than `MIN_SOURCES_FOR_EM` models. A model observes a candidate as 2 (a strong vote by any of its captions),
    1 (weak votes only), 0 (captioned the pair, silent) or -1 (no caption). Reported, not used for confidence.
    """
    from .sources import model_of

    models = sorted({model_of(s) for caps in table.captions.values() for s in caps})
    if len(models) < MIN_SOURCES_FOR_EM or not items:
        return {}, 0
    index = {m: j for j, m in enumerate(models)}
    y = np.full((len(items), len(models)), -1, dtype=np.int8)
    for i, key in enumerate(items):
        for s in table.captions[key[0]]:
            y[i, index[model_of(s)]] = 0
        for s, v in table.votes[key].items():
            j = index[model_of(s)]
            y[i, j] = max(y[i, j], 2 if v.strong else 1)
    names = sorted({e for _, e in items})
    cls = {e: k for k, e in enumerate(names)}
    _, theta, prior, iterations = dawid_skene(y, np.array([cls[e] for _, e in items], dtype=np.int64))
    present = prior[1:] / prior[1:].sum()
    silent_if_present = np.einsum("k,ks->s", present, theta[1:, :, 0])
    observed = (y >= 0).sum(0)
    out = {
        m: {
            "sensitivity": round(float(1 - silent_if_present[j]), 6),
            "specificity": round(float(theta[0, j, 0]), 6),
            "items": int(observed[j]),
        }
        for m, j in index.items()
    }
    return out, iterations
