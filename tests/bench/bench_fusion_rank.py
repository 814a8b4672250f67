"""Rank bench: the model among the published methods on TNO, by mean rank over the ten metrics.

    .venv/bin/python tests/bench/bench_fusion_rank.py [--steps 2000 | --minutes 15] [--run RUN_DIR]

Trains as the README says (RoadScene's train split, `--val` on its test split; the default recipe) unless
--run gives a trained run folder, fuses the 25 TNO pairs with `fuse`, scores them with `evaluate` and ranks the
model against `shared/data/peers/tno_published_metrics.csv` (per-pair scores of the published methods' released
images and both baselines), on the pairs every compared method shares. The main table keeps the methods that
cover at least --min-pairs (24: the eleven methods of the issue plus pixel-max / pixel-mean); each metric ranks
the methods' means (Nabf lower is better), a method's mean rank is the average of its ten ranks. It also counts
the metrics on which the model beats the fixed rule it replaced (pixel-max + unsharp mask) and its own untrained
start (`train --steps 0`), both fused here on the same pairs. TNO is never trained or tuned on.
Exit 0 when the model is first, beats both the fixed rule and its start on at least 7 of the 10, and falls
below pixel-mean on none of `validate.FLOOR` (SSIM and Nabf excepted: pixel-mean is best of all there), else 1.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, help="a trained run folder (skips training)")
    ap.add_argument("--steps", type=int, help="training steps (default 2000 when no --minutes)")
    ap.add_argument("--minutes", type=float, help="training time budget")
    ap.add_argument("--min-pairs", type=int, default=24, help="compare methods that cover at least this many pairs")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "outputs" / "bench_fusion_rank")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="hyper-parameter override")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import pandas as pd
    import torch

    from entitylabel.discover import run_discover
    from entitylabel.export.stage import run_export
    from entitylabel.fusion.config import FusionConfig, parse_overrides
    from entitylabel.fusion.evaluate import evaluate
    from entitylabel.fusion.fuse import fuse
    from entitylabel.fusion.model import EntityFusionNet
    from entitylabel.fusion.rank import TEN, better, format_rank_table, load_peers, rank_table
    from entitylabel.fusion.train import train
    from entitylabel.fusion.validate import FLOOR, fixed_rule_u8, load_val_set, ten_metrics

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    run = args.run
    if run is None:
        export = args.out / "roadscene-export"
        if not (export / "data").is_dir():
            run_discover(args.data / "RoadScene", args.out / "roadscene-discover", dataset="roadscene")
            run_export(args.out / "roadscene-discover", export, config="roadscene", overwrite=True)
        run = args.out / "run"
        steps = args.steps if args.steps or args.minutes else 2000
        cfg = FusionConfig().replace(**parse_overrides(args.set))
        t0 = time.perf_counter()
        res = train(export, run, cfg, dataset_config="roadscene", split="train", steps=steps,
                    max_minutes=args.minutes, val=[export], log=print)  # fmt: skip
        print(f"trained {res.step} steps in {time.perf_counter() - t0:.0f} s wall, {res.patches_per_s:.1f} patches/s"
              f" ({args.threads} threads); best checkpoint at step {res.best.get('step')}")  # fmt: skip
    tno = args.data / "TNO"
    run_discover(tno, args.out / "tno", dataset="tno")
    fused = args.out / "fused-tno"
    shutil.rmtree(fused, ignore_errors=True)
    fr = fuse(run, tno, fused)
    print(f"fused {len(fr.written)} TNO pairs with {fr.checkpoint}")
    table = evaluate(fused, args.out / "tno", args.out / "tno-metrics.csv", baselines=(), method="ours")
    mine = table[(table["kind"] == "image") & (table["status"] == "ok")][["method", "pair_id", *TEN]]
    peers = load_peers(args.data / "peers" / "tno_published_metrics.csv", min_pairs=args.min_pairs)
    ranked = rank_table(pd.concat([peers[["method", "pair_id", *TEN]], mine], ignore_index=True))
    n = int(ranked["n"].iloc[0])
    print(f"\nTNO mean rank over {' '.join(TEN)} (Nabf lower is better) on the {n} pairs all {len(ranked)} methods "
          f"share (methods covering >= {args.min_pairs} pairs)")  # fmt: skip
    print(format_rank_table(ranked, highlight="ours"))
    # the fixed rule it replaced and its own untrained start, on the same pairs
    refs: dict[str, list[dict]] = {"fixed-rule": [], "steps-0": []}
    start = EntityFusionNet(FusionConfig().replace(**parse_overrides(args.set))).eval()
    from entitylabel.fusion.fuse import fuse_arrays

    for pid, ir, vis in load_val_set(tno, name="tno").pairs:
        refs["fixed-rule"].append({"pair_id": pid, **ten_metrics(ir, vis, fixed_rule_u8(ir, vis))})
        refs["steps-0"].append({"pair_id": pid, **ten_metrics(ir, vis, fuse_arrays(start, ir, vis)[0])})
    common = sorted(set(mine["pair_id"]))
    ours = mine.set_index("pair_id").loc[common, list(TEN)].mean()
    beats = {}
    for name, rows in refs.items():
        ref = pd.DataFrame(rows).set_index("pair_id").loc[common, list(TEN)].mean()
        won = [m for m in TEN if better(m, ours[m], ref[m])]
        beats[name] = won
        print(f"{name:<11}" + " ".join(f"{m} {ref[m]:.4g}" for m in TEN) + f" | ours better on {len(won)}/10 "
              f"({' '.join(won)})")  # fmt: skip
    print(f"{'ours':<11}" + " ".join(f"{m} {ours[m]:.4g}" for m in TEN) + f"   ({len(common)} pairs)")
    place = list(ranked.index).index("ours") + 1
    below = [m for m in FLOOR if ranked.loc["ours", m] < ranked.loc["pixel-mean", m]]
    first = place == 1 and ranked["mean_rank"].iloc[0] < ranked["mean_rank"].iloc[1]
    ok = first and all(len(w) >= 7 for w in beats.values()) and not below
    print(
        f"\nours: place {place} of {len(ranked)} (mean rank {ranked.loc['ours', 'mean_rank']:.2f}); better than "
        f"the fixed rule on {len(beats['fixed-rule'])}/10, than its --steps 0 start on {len(beats['steps-0'])}/10; "
        f"below pixel-mean on {' '.join(below) or 'none'} (of {' '.join(FLOOR)}) -> {'PASS' if ok else 'MISS'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
