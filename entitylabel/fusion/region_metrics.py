"""Region-aware fusion metrics from object boxes: do the targets keep their contrast, does the background keep its
texture? Pure numpy; images are 2-D gray float arrays on 0..255, boxes an (N, 4) array x0, y0, x1, y1 in pixels.

- A box's pixels are those whose centre lies inside it: columns ceil(x0 - 0.5) .. ceil(x1 - 0.5) - 1 (rows the
  same), clipped to the image. Its grown box is the box grown by half its width on the left and on the right and
  half its height above and below, clipped to the image; its ring is the grown box minus the box.
- TC, target contrast: C(x) = |mean of x over the box - mean of x over its ring|;
  TC = sum over boxes of C(fused) / sum over boxes of max(C(ir), C(vis)). 1.0: the fused image keeps the contrast of
  the more contrasted source at every target. Boxes with no pixel or no ring pixel are skipped; no box left (or a
  zero denominator): None. Called with the pair's IR boxes.
- Qabf_bg: Qabf (`metrics.qabf`, gradients over the whole image) summed over the pixels outside every grown box
  only: the background's edges. Called with all boxes of the pair; no box: plain Qabf; no background pixel: NaN.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from .metrics import Array, _three, qabf_maps

REGION_METRICS: tuple[str, ...] = ("TC", "Qabf_bg")
"""Region metric names, in the order tables show them; both are higher-is-better."""


def _boxes(boxes: ArrayLike) -> Array:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4))
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"boxes must be an (N, 4) array x0, y0, x1, y1; got shape {arr.shape}")
    return arr


def _span(lo: float, hi: float, size: int) -> tuple[int, int]:
    """Pixel indices [start, stop) whose centres lie in [lo, hi), clipped to 0..size."""
    start = min(max(math.ceil(lo - 0.5), 0), size)
    stop = min(max(math.ceil(hi - 0.5), 0), size)
    return start, max(start, stop)


def _rect_mask(shape: tuple[int, int], x0: float, y0: float, x1: float, y1: float) -> Array:
    mask = np.zeros(shape, dtype=bool)
    r0, r1 = _span(y0, y1, shape[0])
    c0, c1 = _span(x0, x1, shape[1])
    mask[r0:r1, c0:c1] = True
    return mask


def grown(box: ArrayLike) -> tuple[float, float, float, float]:
    """The box grown by half its size on each side (before clipping)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    dw, dh = (x1 - x0) / 2.0, (y1 - y0) / 2.0
    return x0 - dw, y0 - dh, x1 + dw, y1 + dh


def box_and_ring(shape: tuple[int, int], box: ArrayLike) -> tuple[Array, Array]:
    """Boolean masks of a box's pixels and of its ring (grown box minus the box)."""
    inside = _rect_mask(shape, *(float(v) for v in box))
    ring = _rect_mask(shape, *grown(box)) & ~inside
    return inside, ring


def _contrast(x: Array, inside: Array, ring: Array) -> float:
    return abs(float(x[inside].mean()) - float(x[ring].mean()))


def target_contrast(fused: ArrayLike, ir: ArrayLike, vis: ArrayLike, boxes: ArrayLike) -> float | None:
    """TC over the given (IR) boxes; None when no box has pixels and a ring, or the sources show no contrast."""
    a, b, f = _three(ir, vis, fused)
    num = den = 0.0
    used = 0
    for box in _boxes(boxes):
        inside, ring = box_and_ring(f.shape, box)
        if not inside.any() or not ring.any():
            continue
        used += 1
        num += _contrast(f, inside, ring)
        den += max(_contrast(a, inside, ring), _contrast(b, inside, ring))
    return num / den if used and den > 0 else None


def background_mask(shape: tuple[int, int], boxes: ArrayLike) -> Array:
    """True on the pixels outside every grown box."""
    mask = np.ones(shape, dtype=bool)
    for box in _boxes(boxes):
        mask &= ~_rect_mask(shape, *grown(box))
    return mask


def qabf_background(fused: ArrayLike, ir: ArrayLike, vis: ArrayLike, boxes: ArrayLike) -> float:
    """Qabf over the pixels outside every grown box (all boxes of the pair); NaN without such pixels or edges."""
    num, weight = qabf_maps(ir, vis, fused)
    mask = background_mask(num.shape, boxes)
    den = float(weight[mask].sum())
    return float(num[mask].sum()) / den if den > 0 else float("nan")
