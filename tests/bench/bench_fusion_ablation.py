"""Recipe ablation: each row trains on RoadScene's train split for the same step budget, then is scored.

    .venv/bin/python tests/bench/bench_fusion_ablation.py --steps 2000 [--rows defaults,ov0] [--threads 2]

Rows are recipe changes against the defaults (`ROWS`; `bench_fusion_screen.py` runs the same rows side by side
on one device). Every row is validated on RoadScene's held-out test split as
it is and with simulated low light and daylight (`validate.simulate_light`): that is what the recipe was
chosen on. TNO (25 pairs, never trained or tuned on) is only reported: ten means and the mean rank among the
published methods of `shared/data/peers/tno_published_metrics.csv` that cover 24-25 pairs plus the baselines.
Finished rows are kept in --out (a rerun with the same --steps only prints them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

LOSS_KEYS = ("w_intensity", "w_gradient", "grad_gain", "w_overshoot", "w_ssim", "saliency_weight", "ssim_luminance",
             "light_aug", "detail_scale", "lambda_cls")  # fmt: skip
ROWS: dict[str, dict] = {
    "defaults": {},  # FusionConfig() as shipped; with --train LABELLED: entity path on
    "grad10": {"w_gradient": 10.0},  # the gradient-max weight of the first design
    "ov0": {"w_overshoot": 0.0},  # without the Nabf-aware overshoot penalty
    "sal0": {"saliency_weight": 0.0},  # SSIM to both sources with plain halves (no IR saliency weighting)
    "det0": {"detail_scale": 0.0},  # selection only, no detail channel
    "lambda0": {"lambda_cls": 0.0},  # the shipped recipe without the entity task (compare with "defaults")
}


def tno_rank(model, tno_dir: Path, peers_csv: Path, name: str) -> tuple[dict, object]:
    """Fuse TNO in memory, score it per pair and rank it among the peers (11 methods with >= 24 pairs)."""
    import pandas as pd

    from entitylabel.fusion.fuse import fuse_arrays
    from entitylabel.fusion.rank import TEN, load_peers, rank_table
    from entitylabel.fusion.validate import load_val_set, ten_metrics

    tno = load_val_set(tno_dir, name="tno")
    rows = []
    for pid, ir, vis in tno.pairs:
        fused, _ = fuse_arrays(model, ir, vis)
        rows.append({"method": name, "pair_id": pid, **ten_metrics(ir, vis, fused)})
    peers = load_peers(peers_csv, min_pairs=24)
    table = rank_table(pd.concat([peers, pd.DataFrame(rows)], ignore_index=True))
    return {m: float(table.loc[name, m]) for m in (*TEN, "mean_rank")} | {
        "place": int(list(table.index).index(name)) + 1, "of": len(table)}, table  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, from {', '.join(ROWS)}")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--val-pairs", type=int, default=28, help="evenly spaced RoadScene test pairs per lighting")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "outputs" / "bench_fusion_ablation")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every row")
    ap.add_argument("--train", type=Path, help="train on this export folder's train split instead (e.g. with labels)")
    args = ap.parse_args()

    import torch

    from entitylabel.discover import run_discover
    from entitylabel.export.stage import run_export
    from entitylabel.fusion.checkpoint import load_model
    from entitylabel.fusion.config import FusionConfig, parse_overrides
    from entitylabel.fusion.rank import TEN as SIX  # the tables below print all ten
    from entitylabel.fusion.train import train
    from entitylabel.fusion.validate import LIGHTS, format_result, load_val_set, simulate_light, validate

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    export = args.out / "roadscene-export"
    if not (export / "data").is_dir():
        run_discover(args.data / "RoadScene", args.out / "roadscene-discover", dataset="roadscene")
        run_export(args.out / "roadscene-discover", export, config="roadscene", overwrite=True)
    base = load_val_set(export, name="roadscene-test", dataset_config="roadscene", max_pairs=args.val_pairs)
    sets = [base] + [simulate_light(base, k) for k in LIGHTS]
    from entitylabel.fusion.data import open_dataset

    train_split = open_dataset(args.train or export, None if args.train else "roadscene")["train"]
    what = f"{args.train} train split" if args.train else "RoadScene train split"
    print(
        f"train: {what} ({len(train_split)} pairs); validation: {len(base.pairs)} test pairs x "
        f"{len(sets)} lightings; report: TNO 25 pairs; {args.steps} steps per row, {args.threads} threads"
    )
    results = {}
    for row in args.rows.split(","):
        tag = f"{row}-{args.steps}" + (f"-{args.train.name}" if args.train else "")
        done = args.out / f"{tag}.json"
        if done.is_file():
            results[row] = json.loads(done.read_text())
            continue
        cfg = FusionConfig().replace(**ROWS[row], **parse_overrides(args.set))
        run = args.out / f"run-{tag}"
        t0 = time.perf_counter()
        res = train(train_split, run, cfg, steps=args.steps)
        wall = time.perf_counter() - t0
        model, _ = load_model(run / "checkpoint")
        val = validate(model, sets)
        tno, _ = tno_rank(model, args.data / "TNO", args.data / "peers" / "tno_published_metrics.csv", "model")
        recipe = {k: v for k, v in cfg.to_dict().items() if k in LOSS_KEYS}
        results[row] = {"steps": res.step, "train_s": round(wall, 1), "patches_per_s": round(res.patches_per_s, 2),
                        "val": val, "tno": tno, "config": recipe}  # fmt: skip
        done.write_text(json.dumps(results[row], indent=1))
        mode = "fusion only" if res.fusion_only else f"entity path, {len(res.labels)} labels"
        print(f"\n== {row}: {res.step} steps, {wall:.0f} s, {res.patches_per_s:.1f} patches/s ({mode})")
        print("\n".join(format_result(val)))
        t = results[row]["tno"]
        print("tno: " + " ".join(f"{m} {t[m]:.3f}" for m in SIX) + f" | mean rank {t['mean_rank']:.2f}"
              f" (place {t['place']} of {t['of']})", flush=True)  # fmt: skip

    print(f"\nablation at {args.steps} steps (validation score = -mean rank among the model, pixel-max, pixel-mean and"
          " the fixed rule over ten metrics x 3 lightings; chosen on this, TNO only reported)")  # fmt: skip
    head = f"{'row':<28}{'val score':>10}{'RS-test ' + ' '.join(SIX):>48}  {'TNO ' + ' '.join(SIX):>44}{'TNO rank':>10}"
    print(head)
    for row, r in results.items():
        rs = r["val"]["sets"]["roadscene-test"]
        t = r["tno"]
        rs_s = " ".join(f"{rs[m]:.3g}" for m in SIX)
        t_s = " ".join(f"{t[m]:.3g}" for m in SIX)
        print(f"{row:<28}{r['val']['score']:>+10.4f}{rs_s:>48}  {t_s:>44}{t['mean_rank']:>6.2f} ({t['place']})")
    if results:  # the simplest baselines on the same pairs (TNO: the peers file's rows)
        from entitylabel.fusion.rank import load_peers, rank_table

        peers = load_peers(args.data / "peers" / "tno_published_metrics.csv", min_pairs=24)
        ranked = rank_table(peers)
        for name in ("pixel-max", "pixel-mean"):
            rs = base.baseline_means()[name]
            rs_s = " ".join(f"{rs[m]:.3g}" for m in SIX)
            t_s = " ".join(f"{ranked.loc[name, m]:.3g}" for m in SIX)
            print(f"{name:<28}{0.0 if name == 'pixel-max' else float('nan'):>+10.4f}{rs_s:>48}  {t_s:>44}"
                  f"{'(peers only)':>12}")  # fmt: skip
    for row, r in results.items():  # every lighting, for the "never below pixel-mean" check
        below = {k: v["below_mean"] for k, v in r["val"]["sets"].items() if v["below_mean"]}
        print(f"{row}: above pixel-max per lighting {[v['above_max'] for v in r['val']['sets'].values()]}, "
              f"below pixel-mean: {below or 'none'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
