"""Region metrics: target contrast (TC) and background Qabf on a synthetic pair whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from entitylabel.fusion import metrics as M
from entitylabel.fusion import region_metrics as R

H, W = 96, 128
DISC = (64.0, 48.0, 12.0)  # centre x, centre y, radius
BOX = np.array([[52.0, 36.0, 76.0, 60.0]])  # the disc's box


def disc_pair() -> tuple[np.ndarray, np.ndarray]:
    """IR: a bright disc on a dim, faintly noisy background. VIS: texture everywhere, the disc barely visible."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    disc = (x - DISC[0]) ** 2 + (y - DISC[1]) ** 2 <= DISC[2] ** 2
    ir = np.where(disc, 230.0, 40.0) + rng.normal(0, 3, (H, W))
    vis = 110 + 50 * np.sin(x / 3.0) * np.cos(y / 4.0) + 10 * disc + rng.normal(0, 4, (H, W))
    return np.clip(np.rint(ir), 0, 255), np.clip(np.rint(vis), 0, 255)


def test_tc_is_one_for_a_copy_of_the_more_contrasted_source() -> None:
    ir, vis = disc_pair()
    assert R.target_contrast(ir, ir, vis, BOX) == pytest.approx(1.0, abs=1e-12)
    # the VIS copy keeps only the weak VIS contrast of the disc
    assert R.target_contrast(vis, ir, vis, BOX) < 0.2


def test_tc_below_one_for_a_blurred_copy_and_falls_with_blur() -> None:
    ir, vis = disc_pair()
    tcs = [R.target_contrast(ndimage.gaussian_filter(ir, s), ir, vis, BOX) for s in (1.0, 3.0, 6.0)]
    assert all(tc is not None and tc < 1.0 for tc in tcs)
    assert tcs[0] > tcs[1] > tcs[2]
    # pixel-mean halves the disc's contrast against its ring (VIS adds a little of its own)
    mean_tc = R.target_contrast((ir + vis) / 2, ir, vis, BOX)
    assert mean_tc == pytest.approx(0.5, abs=0.08)


def test_tc_by_hand_and_undefined_cases() -> None:
    img = np.zeros((20, 20))
    img[5:10, 5:10] = 100.0  # box 5..10: ring is 2.5 px wide -> pixels 3..11 (centres 2.5..12.5) minus the box
    inside, ring = R.box_and_ring(img.shape, [5, 5, 10, 10])
    assert inside.sum() == 25 and ring.sum() == 10 * 10 - 25
    flat = np.full((20, 20), 50.0)
    assert R.target_contrast(img, img, flat, [[5, 5, 10, 10]]) == pytest.approx(1.0)
    assert R.target_contrast(img * 0.5, img, flat, [[5, 5, 10, 10]]) == pytest.approx(0.5)
    assert R.target_contrast(img, img, flat, np.zeros((0, 4))) is None  # no IR box: no TC
    assert R.target_contrast(img, flat, flat, [[5, 5, 10, 10]]) is None  # no source contrast
    assert R.target_contrast(img, img, flat, [[0, 0, 20, 20]]) is None  # box fills the image: no ring
    with pytest.raises(ValueError, match="N, 4"):
        R.target_contrast(img, img, flat, [1, 2, 3])


def test_qabf_bg_counts_only_the_background() -> None:
    ir, vis = disc_pair()
    # no box: plain Qabf
    assert R.qabf_background(ir, ir, vis, np.zeros((0, 4))) == pytest.approx(M.qabf(ir, vis, ir), abs=1e-12)
    # a fused image that is the VIS texture outside the grown box and anything inside keeps Qabf_bg unchanged
    mask = R.background_mask(ir.shape, BOX)
    assert mask.sum() == H * W - 48 * 48  # grown box 40..88 x 24..72
    base = np.where(mask, vis, ir)
    spoilt = np.where(mask, vis, 0.0)
    ring = ndimage.binary_dilation(~mask, iterations=2) & mask  # Sobel reaches 1 px across the border
    same = mask & ~ring
    num1, w1 = M.qabf_maps(ir, vis, base)
    num2, w2 = M.qabf_maps(ir, vis, spoilt)
    assert np.allclose(num1[same], num2[same]) and np.allclose(w1[same], w2[same])
    # blurring the background lowers it; blurring only the target does not touch pixels far from it
    blurred_bg = np.where(mask, ndimage.gaussian_filter(vis, 2.0), vis)
    assert R.qabf_background(blurred_bg, ir, vis, BOX) < R.qabf_background(vis, ir, vis, BOX) - 0.1
    assert math.isnan(R.qabf_background(ir, ir, vis, [[0, 0, W, H]]))  # no background left
