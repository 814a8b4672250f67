"""The precision knob: the threshold that calibrated confidences say gives a wanted precision, and the expected
precision and recall of a set of labels.

Confidence is a calibrated P(entity in pair), so over a set of accepted candidates the expected number of
right labels is the sum of their confidences: expected precision = their mean confidence, and expected recall
= that sum over the sum of every candidate's confidence. Recall is relative to what the captions name: an
object no caption mentions is never a candidate, and no threshold can find it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def threshold_for_precision(confidence: Sequence[float] | np.ndarray, target: float) -> float | None:
    """The threshold t (one of the confidences) whose accepted set {c >= t} has the mean confidence closest to
    `target` (a tie goes to the higher precision); None when even the most confident candidates fall short (then
    nothing should be accepted). Closest, not the lowest at or above: isotonic calibration gives few distinct
    confidences, so a step can hold hundreds of ties and stopping above the target overshoots by up to a whole
    step (held out: 0.932 for 0.9 on less-is-more; closest gives 0.928)."""
    c = np.sort(np.asarray(confidence, dtype=np.float64))[::-1]
    if not len(c) or c[0] < target:
        return None
    mean = np.cumsum(c) / np.arange(1, len(c) + 1)
    # a threshold accepts every candidate tied with it: only the last index of each run of equal values counts
    ends = np.flatnonzero(np.r_[c[1:] != c[:-1], True])
    gap = np.round(np.abs(mean[ends] - target), 12)  # rounded: 1.0 and 0.9 are equally far from 0.95
    # the running mean only falls, so the first minimum of the gap is the higher-precision one of a tie
    return float(c[ends[int(np.argmin(gap))]])


def expected_quality(accepted: Sequence[float], candidates: Sequence[float]) -> dict[str, float | None]:
    """Expected precision (mean confidence of `accepted`) and recall (their sum over the sum of `candidates`)."""
    acc, total = float(np.sum(accepted)), float(np.sum(candidates))
    return {
        "expected_precision": round(acc / len(accepted), 4) if len(accepted) else None,
        "expected_recall": round(acc / total, 4) if total > 0 else None,
    }
