"""Screen bench: several recipe rows (and seeds) trained side by side on one device, scored on ten metrics.

    # here: write a self-contained pack (gray PNGs + sets.json) of RoadScene's export split and TNO
    .venv/bin/python tests/bench/bench_fusion_screen.py pack --out PACK
    # anywhere with torch + numpy + scipy + pandas + pillow (e.g. a GPU machine: no `datasets` needed)
    python tests/bench/bench_fusion_screen.py run --pack PACK --steps 3000 --device cuda \
        --row defaults --row nooverlap:w_overshoot=0 --seeds 0 --out RESULTS

Each row trains the model of `entitylabel/fusion/model.py` with `losses.fusion_loss` on random patches of the
pack's `train` set (the same patch sampler, light augmentation, AdamW and warmup + cosine schedule as `train`,
without its checkpoints and accelerate), then is scored by `validate.validate` on the `val` set as is and under
simulated low light and day (what recipes are chosen on) and on `report` (TNO: ten means and the ten-metric
mean rank among the published methods of `peers/tno_published_metrics.csv` covering >= 24 pairs; never chosen
on). Rows run in parallel processes (`--jobs`). `--steps 0` scores the untrained start. Results: one JSON per
row and seed in --out, and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def make_pack(out: Path, data: Path, work: Path) -> None:
    """RoadScene's export train / test split and TNO as gray PNGs (IR, VIS-Y) plus `sets.json`."""
    from PIL import Image

    from entitylabel.discover import run_discover
    from entitylabel.export.stage import run_export
    from entitylabel.fusion.data import ir_gray, open_dataset, vis_ycbcr
    from entitylabel.fusion.validate import load_val_set

    export = work / "roadscene-export"
    if not (export / "data").is_dir():
        run_discover(data / "RoadScene", work / "roadscene-discover", dataset="roadscene")
        run_export(work / "roadscene-discover", export, config="roadscene", overwrite=True)
    ds = open_dataset(export, "roadscene")
    sets: dict[str, list[str]] = {}
    out.mkdir(parents=True, exist_ok=True)
    for split, name in (("train", "train"), ("test", "val")):
        ids = []
        for row in ds[split]:
            pid = str(row["pair_id"])
            Image.fromarray(ir_gray(row["ir"])).save(out / f"{pid}_ir.png")
            Image.fromarray(vis_ycbcr(row["vis"])[0]).save(out / f"{pid}_vis.png")
            ids.append(pid)
        sets[name] = ids
    tno = load_val_set(data / "TNO", name="tno")
    for pid, ir, vis in tno.pairs:
        Image.fromarray(ir).save(out / f"{pid}_ir.png")
        Image.fromarray(vis).save(out / f"{pid}_vis.png")
    sets["report"] = [p for p, _, _ in tno.pairs]
    (out / "sets.json").write_text(json.dumps(sets, indent=1))
    print(f"pack {out}: " + ", ".join(f"{k} {len(v)}" for k, v in sets.items()))


def _load(pack: Path, ids: list[str]) -> list[tuple[str, object, object]]:
    import numpy as np
    from PIL import Image

    def read(p: Path):
        with Image.open(p) as im:
            return np.asarray(im.convert("L"), dtype=np.uint8)

    return [(pid, read(pack / f"{pid}_ir.png"), read(pack / f"{pid}_vis.png")) for pid in ids]


class _ArrayStore:
    """What `PatchSampler` needs of a `PairStore`, over in-memory pairs (no `datasets`)."""

    def __init__(self, pairs: list, n_labels: int = 0) -> None:
        import numpy as np

        from entitylabel.fusion.data import PairData

        self.items = [PairData(ir, vis, np.zeros(n_labels, dtype=np.float32)) for _, ir, vis in pairs]

    def __len__(self) -> int:
        return len(self.items)

    def get(self, i: int):
        return self.items[i]


def train_row(cfg, pairs: list, steps: int, device: str):
    """The model after `steps` steps of the trainer's recipe on `pairs` (fusion only)."""
    import numpy as np
    import torch

    from entitylabel.fusion import losses
    from entitylabel.fusion.data import PatchSampler
    from entitylabel.fusion.model import EntityFusionNet
    from entitylabel.fusion.train import lr_at

    torch.manual_seed(cfg.seed)
    model = EntityFusionNet(cfg).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sampler = PatchSampler(_ArrayStore(pairs), cfg)
    rng = np.random.default_rng([cfg.seed, 0, 0])
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(cfg, step, step / steps)
        ir, vis, _ = (t.to(device) for t in sampler.batch(rng, cfg.batch_size))
        out = model(ir, vis)
        loss, _ = losses.fusion_loss(out.fused, ir, vis, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
    return model.eval()


def report_rank(model, pairs: list, peers_csv: Path, name: str = "model") -> dict:
    """Ten means on the report pairs and the ten-metric mean rank among the peers (>= 24 pairs)."""
    import pandas as pd

    from entitylabel.fusion.fuse import fuse_arrays
    from entitylabel.fusion.rank import TEN, load_peers, rank_table
    from entitylabel.fusion.validate import ten_metrics

    rows = []
    for pid, ir, vis in pairs:
        fused, _ = fuse_arrays(model, ir, vis)
        rows.append({"method": name, "pair_id": pid, **ten_metrics(ir, vis, fused)})
    peers = load_peers(peers_csv, min_pairs=24)
    table = rank_table(pd.concat([peers[["method", "pair_id", *TEN]], pd.DataFrame(rows)], ignore_index=True))
    return {m: float(table.loc[name, m]) for m in (*TEN, "mean_rank")} | {
        "place": int(list(table.index).index(name)) + 1, "of": len(table),
        "table": table[["mean_rank"]].round(3).to_dict()["mean_rank"]}  # fmt: skip


def run_one(job: dict) -> dict:
    import torch

    from entitylabel.fusion.config import FusionConfig, parse_overrides
    from entitylabel.fusion.validate import LIGHTS, ValSet, simulate_light, validate

    torch.set_num_threads(job["threads"])
    pack = Path(job["pack"])
    sets = json.loads((pack / "sets.json").read_text())
    cfg = FusionConfig().replace(**parse_overrides(job["overrides"]), seed=job["seed"])
    t0 = time.perf_counter()
    model = train_row(cfg, _load(pack, sets["train"]), job["steps"], job["device"])
    train_s = time.perf_counter() - t0
    model = model.to("cpu")
    base = ValSet("val", _load(pack, sets["val"][:: max(1, len(sets["val"]) // job["val_pairs"])]))
    res = validate(model, [base] + [simulate_light(base, k) for k in LIGHTS])
    rep = report_rank(model, _load(pack, sets["report"]), Path(job["peers"])) if sets.get("report") else {}
    out = {"row": job["row"], "seed": job["seed"], "steps": job["steps"], "train_s": round(train_s, 1),
           "patches_per_s": round(job["steps"] * cfg.batch_size / max(train_s, 1e-9), 1),
           "overrides": job["overrides"], "val": res, "report": rep}  # fmt: skip
    Path(job["out"]).write_text(json.dumps(out, indent=1))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--work", type=Path, default=REPO / "outputs" / "bench_fusion_screen")
    r = sub.add_parser("run")
    r.add_argument("--pack", type=Path, required=True)
    r.add_argument("--row", action="append", default=[], help="NAME or NAME:key=value,key=value (repeat)")
    r.add_argument("--seeds", default="0")
    r.add_argument("--steps", type=int, default=2000)
    r.add_argument("--device", default="cpu")
    r.add_argument("--jobs", type=int, default=1)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--val-pairs", type=int, default=28)
    r.add_argument("--peers", type=Path, default=REPO.parent / "shared" / "data" / "peers" / "tno_published_metrics.csv")
    r.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.cmd == "pack":
        make_pack(args.out, args.data, args.work)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for spec in args.row or ["defaults"]:
        name, _, kv = spec.partition(":")
        for seed in [int(s) for s in args.seeds.split(",")]:
            jobs.append({"row": name, "overrides": [x for x in kv.split(",") if x], "seed": seed,
                         "steps": args.steps, "device": args.device, "threads": args.threads, "pack": str(args.pack),
                         "val_pairs": args.val_pairs, "peers": str(args.peers),
                         "out": str(args.out / f"{name}-s{seed}-{args.steps}.json")})  # fmt: skip
    if args.jobs > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.map(run_one, jobs)
    else:
        results = [run_one(j) for j in jobs]
    from entitylabel.fusion.rank import TEN

    print(f"{'row':<22}{'seed':>5}{'steps':>6}{'p/s':>8}{'score':>9}  val-as-is " + " ".join(TEN)
          + "  | >max >rule | TNO rank (place)")  # fmt: skip
    for res in results:
        v = res["val"]["sets"]["val"]
        t = res["report"]
        lights = [(s["above_max"], s["above_rule"], s["below_mean"]) for s in res["val"]["sets"].values()]
        print(f"{res['row']:<22}{res['seed']:>5}{res['steps']:>6}{res['patches_per_s']:>8.0f}"
              f"{res['val']['score']:>+9.3f}  " + " ".join(f"{v[m]:.3g}" for m in TEN)
              + f"  | {lights} | " + (f"{t['mean_rank']:.2f} ({t['place']}/{t['of']}) "
              + " ".join(f"{t[m]:.3g}" for m in TEN) if t else ""), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
