"""Validation during training: the six no-reference fusion metrics on pairs the model does not train on.

A `ValSet` is a few gray pairs held in memory (a released dataset's test split, a pair manifest, or any folder
`discover` knows), optionally with simulated lighting (`simulate_light`: low-light / daylight copies of the
visible image, because real validation data rarely covers both). `validate` fuses every pair, scores EN SD SF
AG VIF Qabf and compares with the pixel-max / pixel-mean fusions of the same pairs (computed once per set).

The score that picks the best checkpoint is the mean over the six metrics and all sets of log(model /
pixel-max): 0 is pixel-max, positive is better on balance. It also reports how many metrics beat each baseline
and the mean rank among {model, pixel-max, pixel-mean}.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import EntityLabelError
from . import metrics
from .data import check_same_size, ir_gray, vis_ycbcr

SIX: tuple[str, ...] = ("EN", "SD", "SF", "AG", "VIF", "Qabf")
BASELINES = ("pixel-max", "pixel-mean")
LIGHTS = ("low-light", "day")
MIN_SIDE = 64  # multi-scale VIF needs about this many pixels a side

Metric = Callable[[np.ndarray, np.ndarray, np.ndarray], float]
_FNS: dict[str, Metric] = {
    "EN": lambda a, b, f: metrics.en(f),
    "SD": lambda a, b, f: metrics.sd(f),
    "SF": lambda a, b, f: metrics.sf(f),
    "AG": lambda a, b, f: metrics.ag(f),
    "VIF": metrics.vif,
    "Qabf": metrics.qabf,
}


def six_metrics(ir: np.ndarray, vis: np.ndarray, fused: np.ndarray) -> dict[str, float]:
    """EN SD SF AG VIF Qabf of one gray pair (uint8 or 0..255 float arrays of the same size)."""
    a, b, f = (np.asarray(x, dtype=np.float64) for x in (ir, vis, fused))
    return {m: float(_FNS[m](a, b, f)) for m in SIX}


@dataclass
class ValSet:
    name: str
    pairs: list[tuple[str, np.ndarray, np.ndarray]]  # (pair_id, IR uint8 (H,W), VIS-Y uint8 (H,W))
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> metric -> mean

    def baseline_means(self) -> dict[str, dict[str, float]]:
        """Pixel-max / pixel-mean means over the set (computed on first use, then kept)."""
        if not self.baselines:
            rows: dict[str, list[dict[str, float]]] = {b: [] for b in BASELINES}
            for _, ir, vis in self.pairs:
                a, b = ir.astype(np.float64), vis.astype(np.float64)
                rows["pixel-max"].append(six_metrics(a, b, np.maximum(a, b)))
                rows["pixel-mean"].append(six_metrics(a, b, np.floor((a + b) / 2.0 + 0.5)))
            self.baselines = {k: _mean(v) for k, v in rows.items()}
        return self.baselines


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {m: float(np.mean([r[m] for r in rows])) for m in SIX}


def load_val_set(
    source: str | Path, *, name: str | None = None, dataset_config: str | None = None, max_pairs: int | None = None
) -> ValSet:
    """Pairs of a released dataset (its `test` split when it has one, else all), a pair manifest or a folder.

    `max_pairs` keeps an evenly spaced subset (validation runs several times per training run).
    """
    from .fuse import _collect

    failed: dict[str, str] = {}
    try:
        pairs = _collect([source], [], dataset_config, "test", failed)
        if not pairs:
            pairs = _collect([source], [], dataset_config, None, failed)
    except EntityLabelError as e:
        raise EntityLabelError(f"--val {source}: {e}") from None
    if max_pairs is not None and len(pairs) > max_pairs:
        idx = np.linspace(0, len(pairs) - 1, max_pairs).round().astype(int)
        pairs = [pairs[i] for i in sorted(set(idx.tolist()))]
    out, small = [], []
    for p in pairs:
        ir_img, vis_img = p.load()
        ir, (vis, _) = ir_gray(ir_img), vis_ycbcr(vis_img)
        check_same_size(ir, vis, p.pair_id)
        (out if min(ir.shape) >= MIN_SIDE else small).append((p.pair_id, ir, vis))
    if small:
        warnings.warn(f"--val {source}: {len(small)} pair(s) under {MIN_SIDE} px a side left out (VIF needs them "
                      f"larger), e.g. {small[0][0]}", stacklevel=2)  # fmt: skip
    if not out:
        raise EntityLabelError(f"no validation pair of at least {MIN_SIDE}x{MIN_SIDE} px found", path=str(source))
    return ValSet(name or Path(str(source)).name or str(source), out)


def simulate_light(vs: ValSet, kind: str) -> ValSet:
    """A copy of `vs` that looks taken in another light.

    low-light: gamma 2 and gain 0.7 on the visible image (dark scene; the infrared carries the targets);
    day: the infrared at 0.4x (a sunlit scene is thermally flat, IR mean ~20 against a visible ~100), so the
    lit visible image is what fusion must keep.
    """
    if kind not in LIGHTS:
        raise EntityLabelError(f"unknown lighting {kind!r}", hint=f"choose from {', '.join(LIGHTS)}")
    levels = np.arange(256) / 255.0
    if kind == "low-light":
        lut = np.clip(np.round(255.0 * levels**2.0 * 0.7), 0, 255).astype(np.uint8)
        return ValSet(f"{vs.name}/{kind}", [(pid, ir, lut[vis]) for pid, ir, vis in vs.pairs])
    lut = np.clip(np.round(255.0 * levels * 0.4), 0, 255).astype(np.uint8)
    return ValSet(f"{vs.name}/{kind}", [(pid, lut[ir], vis) for pid, ir, vis in vs.pairs])


def set_result(model_means: dict[str, float], base: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Comparison of the model's means with the baselines' on one set."""
    mx, mn = base["pixel-max"], base["pixel-mean"]
    ranks = []
    for m in SIX:
        vals = sorted([model_means[m], mx[m], mn[m]], reverse=True)
        ranks.append(1 + vals.index(model_means[m]))
    logs = [math.log(max(model_means[m], 1e-9) / max(mx[m], 1e-9)) for m in SIX]
    return {
        **{m: model_means[m] for m in SIX},
        "above_max": sum(model_means[m] > mx[m] for m in SIX),
        "below_mean": [m for m in SIX if model_means[m] < mn[m]],
        "rank": float(np.mean(ranks)),
        "score": float(np.mean(logs)),
    }


@torch.inference_mode()
def validate(model: Any, sets: list[ValSet]) -> dict[str, Any]:
    """Fuse and score every set; `{"score", "sets": {name: set_result + six means}}` (model left as it was)."""
    from .fuse import fuse_arrays

    was_training = model.training
    model.eval()
    try:
        per_set = {}
        for vs in sets:
            rows = []
            for _, ir, vis in vs.pairs:
                fused, _ = fuse_arrays(model, ir, vis)
                rows.append(six_metrics(ir, vis, fused))
            per_set[vs.name] = set_result(_mean(rows), vs.baseline_means())
    finally:
        model.train(was_training)
    score = float(np.mean([r["score"] for r in per_set.values()])) if per_set else 0.0
    return {"score": score, "sets": per_set}


def format_result(result: dict[str, Any]) -> list[str]:
    """One line per set: six means, metrics above pixel-max, metrics below pixel-mean, rank, score."""
    lines = []
    for name, r in result["sets"].items():
        six = " ".join(f"{m} {r[m]:.3f}" for m in SIX)
        below = ",".join(r["below_mean"]) or "none"
        lines.append(f"{name}: {six} | >max {r['above_max']}/6, <mean {below}, rank {r['rank']:.2f}, "
                     f"score {r['score']:+.4f}")  # fmt: skip
    return lines
