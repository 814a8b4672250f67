"""Mean rank of fusion methods over the ten metrics `evaluate` prints, on the pairs every compared method has.

Input is a long per-pair table (`method`, `pair_id`, metric columns), e.g. the published methods' scores in
`shared/data/peers/tno_published_metrics.csv` joined with `entitylabel evaluate`'s image rows of a model.
Each metric ranks the methods' means (1 = best, ties share the lower rank, as pandas' "min"; Nabf, the artefact
measure, ranks lower-is-better); a method's mean rank is the average over the metrics ranked: the ten by default
(EN SD SF AG MI SCD VIF Qabf SSIM Nabf), plus TC and Qabf_bg (higher is better) where boxes exist. Over the six
sharpness-friendly ones alone any unsharp mask climbs the table; over all ten it does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..errors import EntityLabelError
from .metrics import HIGHER_IS_BETTER, METRICS
from .region_metrics import REGION_METRICS

SIX: tuple[str, ...] = ("EN", "SD", "SF", "AG", "VIF", "Qabf")
TEN: tuple[str, ...] = METRICS  # the ten `evaluate` prints, in its order
REGION: tuple[str, ...] = REGION_METRICS  # region metrics, where boxes exist
LOWER_BETTER = frozenset(m for m, higher in HIGHER_IS_BETTER.items() if not higher)


def better(metric: str, a: float, b: float) -> bool:
    """Whether `a` is strictly better than `b` on `metric` (Nabf: lower)."""
    return a < b if metric in LOWER_BETTER else a > b


def load_peers(path: str | Path, min_pairs: int = 1) -> pd.DataFrame:
    """Per-pair rows of the methods in a published-metrics CSV that cover at least `min_pairs` pairs."""
    p = Path(path)
    try:
        df = pd.read_csv(p)
    except (OSError, ValueError) as e:
        raise EntityLabelError(f"cannot read peer metrics ({e})", path=p) from None
    missing = [c for c in ("method", "pair_id", *TEN) if c not in df.columns]
    if missing:
        raise EntityLabelError(f"peer metrics lack columns {missing}", path=p)
    counts = df.groupby("method")["pair_id"].nunique()
    return df[df["method"].isin(counts[counts >= min_pairs].index)].reset_index(drop=True)


def rank_table(per_pair: pd.DataFrame, metrics: Sequence[str] = TEN) -> pd.DataFrame:
    """Methods x (n, metric means, metric ranks, mean_rank), sorted by mean rank, on the shared pairs only."""
    df = per_pair[["method", "pair_id", *metrics]].dropna()
    sets = [set(g["pair_id"]) for _, g in df.groupby("method")]
    if not sets:
        raise EntityLabelError("no methods to rank")
    common = set.intersection(*sets)
    if not common:
        raise EntityLabelError("the compared methods share no pair")
    df = df[df["pair_id"].isin(common)]
    means = df.groupby("method")[list(metrics)].mean()
    ranks = pd.DataFrame({m: means[m].rank(ascending=m in LOWER_BETTER, method="min") for m in metrics})
    table = means.copy()
    table.insert(0, "n", len(common))
    for m in metrics:
        table[f"rank_{m}"] = ranks[m].astype(int)
    table["mean_rank"] = ranks.mean(axis=1)
    return table.sort_values(["mean_rank", "method"])


def format_rank_table(table: pd.DataFrame, highlight: str | None = None, metrics: Sequence[str] = TEN) -> str:
    """Plain-text table (one line per method, `*` marks `highlight`)."""
    head = f"{'':4}{'method':<17}" + "".join(f"{m + ('↓' if m in LOWER_BETTER else ''):>13}" for m in metrics)
    head += f"{'mean rank':>11}"
    lines = [head]
    for i, (name, r) in enumerate(table.iterrows(), 1):
        cells = "".join(f"{r[m]:>8.3f} ({int(r[f'rank_{m}']):>2})" for m in metrics)
        mark = "*" if name == highlight else " "
        lines.append(f"{mark}{i:<3}{name:<17}{cells}{r['mean_rank']:>11.2f}")
    return "\n".join(lines)
