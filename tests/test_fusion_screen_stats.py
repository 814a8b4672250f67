"""The statistics the issue-19 figures rest on (tests/bench/bench_fusion_screen.py): per-class AP, the paired
bootstrap CI and the MSRS scene split."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location(
    "bench_fusion_screen", Path(__file__).parent / "bench" / "bench_fusion_screen.py"
)
screen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(screen)


def test_average_precision_of_known_rankings() -> None:
    assert screen.average_precision([0.9, 0.8, 0.1], [1, 1, 0]) == 1.0
    # positives ranked 2nd and 3rd: precision 1/2 and 2/3 at them
    assert screen.average_precision([0.9, 0.8, 0.1], [0, 1, 1]) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert math.isnan(screen.average_precision([0.3, 0.2], [0, 0]))  # no positive: undefined, not 0


def test_paired_bootstrap_ci_brackets_the_mean_and_collapses_on_a_constant() -> None:
    d = np.random.default_rng(1).normal(0.01, 0.02, 34)
    mean, lo, hi = screen.paired_bootstrap(d)
    assert lo < mean < hi and mean == pytest.approx(d.mean())
    assert hi - lo == pytest.approx(2 * 1.96 * d.std() / math.sqrt(len(d)), rel=0.2)  # about the normal CI
    assert screen.paired_bootstrap(d, seed=0) == screen.paired_bootstrap(d, seed=0)  # reproducible figures
    assert screen.paired_bootstrap(np.full(10, 0.5))[1:] == pytest.approx((0.5, 0.5))


def test_msrs_scene_blocks_keep_neighbouring_frames_together() -> None:
    assert [screen.msrs_block(s) for s in ("00001D", "00099N", "00100D", "00111D", "01234N")] == [0, 0, 1, 1, 12]
