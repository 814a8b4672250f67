"""Validation during training: the ten fusion metrics on pairs the model does not train on.

A `ValSet` is a few gray pairs held in memory (a released dataset's test split, a pair manifest, or any folder
`discover` knows), optionally with simulated lighting (`simulate_light`: low-light / daylight copies of the
visible image, because real validation data rarely covers both). `validate` fuses every pair, scores the ten
metrics `evaluate` prints (EN SD SF AG MI SCD VIF Qabf SSIM, Nabf lower-is-better) and ranks the model among
three references computed once per set on the same pairs: pixel-max, pixel-mean and the fixed rule the model
replaced (pixel-max + unsharp mask, `model.fixed_rule`).

The score that picks the best checkpoint is minus the mean rank (1..4) over the ten metrics and all sets, plus a
tie-break of 0.01 x the mean signed log ratio to pixel-max (each clipped to +-1; Nabf compared as
log((0.01 + pixel-max) / (0.01 + model))). It also reports how many metrics beat pixel-max and the fixed rule,
and which fall below pixel-mean among `FLOOR` (SSIM and Nabf are left out of that floor: pixel-mean is the best
of every published TNO method on both, so no fusion that adds anything can meet it there).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import EntityLabelError
from . import metrics
from .data import check_same_size, ir_gray, vis_ycbcr
from .rank import LOWER_BETTER, TEN, better

BASELINES = ("pixel-max", "pixel-mean", "fixed-rule")
FLOOR: tuple[str, ...] = ("EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf")
LIGHTS = ("low-light", "day")
MIN_SIDE = 64  # multi-scale VIF needs about this many pixels a side


def ten_metrics(ir: np.ndarray, vis: np.ndarray, fused: np.ndarray) -> dict[str, float]:
    """The ten metrics of one gray pair (uint8 or 0..255 float arrays of the same size), as `evaluate` has them."""
    a, b, f = (np.asarray(x, dtype=np.float64) for x in (ir, vis, fused))
    return metrics.compute_all(a, b, f)


def fixed_rule_u8(ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
    """The fixed rule (pixel-max + unsharp mask) of one uint8 pair, as uint8, rounded as `fuse` rounds."""
    from .model import fixed_rule

    t = [torch.from_numpy(x.astype(np.float32) / 255.0)[None, None] for x in (ir, vis)]
    with torch.inference_mode():
        y = fixed_rule(*t)[0, 0].numpy()
    return np.clip(np.round(y * 255.0), 0, 255).astype(np.uint8)


@dataclass
class ValSet:
    name: str
    pairs: list[tuple[str, np.ndarray, np.ndarray]]  # (pair_id, IR uint8 (H,W), VIS-Y uint8 (H,W))
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> metric -> mean

    def baseline_means(self) -> dict[str, dict[str, float]]:
        """Pixel-max / pixel-mean / fixed-rule means over the set (computed on first use, then kept)."""
        if not self.baselines:
            rows: dict[str, list[dict[str, float]]] = {b: [] for b in BASELINES}
            for _, ir, vis in self.pairs:
                a, b = ir.astype(np.float64), vis.astype(np.float64)
                rows["pixel-max"].append(ten_metrics(a, b, np.maximum(a, b)))
                rows["pixel-mean"].append(ten_metrics(a, b, np.floor((a + b) / 2.0 + 0.5)))
                rows["fixed-rule"].append(ten_metrics(a, b, fixed_rule_u8(ir, vis)))
            self.baselines = {k: _mean(v) for k, v in rows.items()}
        return self.baselines


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    """Per-metric means over the pairs where the metric is defined (VIF, SSIM and Qabf are NaN against a constant
    source); NaN when no pair defines it."""
    out = {}
    for m in TEN:
        vals = [r[m] for r in rows if math.isfinite(r[m])]
        out[m] = float(np.mean(vals)) if vals else float("nan")
    return out


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


def _signed_log_ratio(m: str, model: float, ref: float) -> float:
    if m in LOWER_BETTER:
        v = math.log((0.01 + ref) / (0.01 + max(model, 0.0)))
    else:
        v = math.log(max(model, 1e-9) / max(ref, 1e-9))
    return max(-1.0, min(1.0, v))


def set_result(model_means: dict[str, float], base: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Comparison of the model's means with the references' on one set (ten metrics, Nabf lower is better)."""
    mx, mn, rule = base["pixel-max"], base["pixel-mean"], base["fixed-rule"]
    # a metric no pair of the set defines (all NaN) is left out of the comparison rather than poisoning the score
    ok = [m for m in TEN if all(math.isfinite(x[m]) for x in (model_means, mx, mn, rule))]
    ranks = [1 + sum(better(m, ref[m], model_means[m]) for ref in (mx, mn, rule)) for m in ok]
    return {
        **{m: model_means[m] for m in TEN},
        "above_max": sum(better(m, model_means[m], mx[m]) for m in ok),
        "above_rule": sum(better(m, model_means[m], rule[m]) for m in ok),
        "below_mean": [m for m in FLOOR if m in ok and model_means[m] < mn[m]],
        "rank": float(np.mean(ranks)) if ranks else 2.5,
        "ratio": float(np.mean([_signed_log_ratio(m, model_means[m], mx[m]) for m in ok])) if ok else 0.0,
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
                rows.append(ten_metrics(ir, vis, fused))
            per_set[vs.name] = set_result(_mean(rows), vs.baseline_means())
    finally:
        model.train(was_training)
    return {"score": combined_score(per_set), "sets": per_set}


def combined_score(per_set: dict[str, dict[str, Any]]) -> float:
    """Minus the mean rank over sets, plus 0.01 x the mean log-ratio tie-break (higher is better)."""
    if not per_set:
        return 0.0
    rank = float(np.mean([r["rank"] for r in per_set.values()]))
    ratio = float(np.mean([r["ratio"] for r in per_set.values()]))
    return -rank + 0.01 * ratio


def format_result(result: dict[str, Any]) -> list[str]:
    """One line per set: ten means, metrics better than pixel-max / the fixed rule, below pixel-mean, rank."""
    lines = []
    for name, r in result["sets"].items():
        ten = " ".join(f"{m} {r[m]:.3f}" for m in TEN)
        below = ",".join(r["below_mean"]) or "none"
        lines.append(f"{name}: {ten} | >max {r['above_max']}/10, >rule {r['above_rule']}/10, <mean {below}, "
                     f"rank {r['rank']:.2f} of 4")  # fmt: skip
    lines.append(f"score {result['score']:+.4f} (= -mean rank + 0.01 x log-ratio tie-break)")
    return lines
