"""Per-metric CPU time on one 640x480 IR/VIS pair (median of repeats), and the TNO baseline averages.

Run: `.venv/bin/python tests/bench/bench_metrics.py [--repeats N] [--tno]`. Uses TNO pair 10 (640x480)
from ../shared/data when present, else a synthetic pair of the same size. `--tno` also prints the
pixel-max / pixel-mean averages over the 25 TNO pairs beside the published pixel-max figures.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from entitylabel.fusion import metrics as M

REPO = Path(__file__).resolve().parents[2]
TNO = REPO.parent / "shared" / "data" / "TNO"
PUBLISHED_MAX = {"EN": 6.81, "SD": 40.0, "SF": 10.1, "AG": 3.77, "VIF": 0.92, "Qabf": 0.60}


def _load(path: Path) -> np.ndarray:
    from entitylabel.images import open_gray

    return np.asarray(open_gray(path), dtype=np.float64)


def _pair() -> tuple[np.ndarray, np.ndarray, str]:
    if (TNO / "ir" / "10.png").is_file():
        a, b = _load(TNO / "ir" / "10.png"), _load(TNO / "vi" / "10.png")
        if a.shape == (480, 640):
            return a, b, "TNO pair 10"
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:480, 0:640]
    a = np.clip(np.rint(120 + 60 * np.sin(x / 9) * np.cos(y / 13) + rng.normal(0, 8, x.shape)), 0, 255)
    b = np.clip(np.rint(100 + 0.2 * x + 40 * ((x // 32 + y // 32) % 2) + rng.normal(0, 6, x.shape)), 0, 255)
    return a, b, "synthetic"


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def bench_speed(repeats: int) -> None:
    a, b, what = _pair()
    f = np.maximum(a, b)
    fns = {
        "EN": lambda: M.en(f),
        "SD": lambda: M.sd(f),
        "SF": lambda: M.sf(f),
        "AG": lambda: M.ag(f),
        "MI": lambda: M.mi(a, b, f),
        "SCD": lambda: M.scd(a, b, f),
        "VIF": lambda: M.vif(a, b, f),
        "Qabf": lambda: M.qabf(a, b, f),
        "SSIM": lambda: M.ssim(a, b, f),
        "Nabf": lambda: M.nabf(a, b, f),
    }
    total = _median_ms(lambda: M.compute_all(a, b, f), repeats)
    print(f"metric time, {what} {a.shape[1]}x{a.shape[0]}, pixel-max fusion, median of {repeats}")
    print(f"{'metric':8} {'ms':>8} {'share':>7}")
    for name, fn in fns.items():
        ms = _median_ms(fn, repeats)
        print(f"{name:8} {ms:8.1f} {ms / total:7.1%}")
    print(f"{'all':8} {total:8.1f}   (compute_all)")


def _fmt(metric: str, value: float) -> str:
    return f"{value:9.2e}" if metric == "Nabf" else f"{value:9.4f}"


def bench_tno() -> None:
    if not (TNO / "ir").is_dir():
        print("TNO not found beside the repo; skipped")
        return
    rows: dict[str, list[dict[str, float]]] = {"pixel-max": [], "pixel-mean": []}
    for i in range(1, 26):
        a, b = _load(TNO / "ir" / f"{i:02d}.png"), _load(TNO / "vi" / f"{i:02d}.png")
        rows["pixel-max"].append(M.compute_all(a, b, np.maximum(a, b)))
        rows["pixel-mean"].append(M.compute_all(a, b, np.floor((a + b) / 2 + 0.5)))
    print("\nTNO, 25 pairs, mean per metric (MI in nats)")
    print(f"{'method':22}" + "".join(f"{m:>9}" for m in M.METRICS))
    for name, rs in rows.items():
        print(f"{name:22}" + "".join(_fmt(m, np.mean([r[m] for r in rs])) for m in M.METRICS))
    print(f"{'published pixel-max':22}" + "".join(f"{PUBLISHED_MAX.get(m, float('nan')):9.2f}" for m in M.METRICS))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--tno", action="store_true", help="also print TNO baseline averages (~20 s)")
    args = ap.parse_args()
    bench_speed(args.repeats)
    if args.tno:
        bench_tno()


if __name__ == "__main__":
    main()
