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

`pack --msrs` packs MSRS-labelled split by scene block instead (every 4th block is `val`, with entity labels and
boxes); `pack --msrs --tune` packs only its training blocks, with every 4th of those as the tuning `val`, so a
recipe is chosen without seeing the blocks it is reported on. `analyse --pack PACK --summary SUMMARY.json` prints
each row's 12 means (ten metrics, TC, Qabf_bg) beside pixel-max, pixel-mean, the fixed rule and `--steps 0`, and,
with `--base` and `--test` rows, paired bootstrap CIs and the classifier's per-class AP.
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


VAL_BLOCK_EVERY = 4  # MSRS scene split: frame-number blocks of 100, every 4th block (by number) is validation


def msrs_block(stem: str) -> int:
    """The scene block of an MSRS stem (`00111D` -> 1): neighbouring frames look alike, so they split together."""
    return int(stem[:5]) // 100


def make_msrs_pack(out: Path, data: Path, work: Path, tune: bool = False) -> None:
    """MSRS-labelled as gray PNGs split by scene block, with entity labels and boxes from its YOLO labels
    (`annotations.load_annotations`) and the label-name embedding table (`entity_table.npy`).

    `tune`: the tuning split instead, inside the training part only: every 4th of its blocks is the tuning `val`
    set, the rest `train`; the validation blocks the results are reported on are left out of the pack."""
    import numpy as np
    from PIL import Image

    from entitylabel.annotations import load_annotations
    from entitylabel.discover import run_discover
    from entitylabel.fusion.data import ir_gray, vis_ycbcr
    from entitylabel.fusion.text_embed import embed_labels
    from entitylabel.pairs import load_pairs

    root = data / "MSRS-labelled"
    run_discover(root, work / "msrs-discover", dataset="msrs")
    manifest = load_pairs(work / "msrs-discover")
    ann = load_annotations(root, manifest)
    labels = ann.labels()
    names = sorted({e for v in labels.values() for e in v})
    out.mkdir(parents=True, exist_ok=True)
    sets: dict = {"train": [], "val": [], "names": names, "labels": {}, "boxes_ir": {}, "boxes_all": {}}
    blocks = sorted({msrs_block(Path(str(r.ir_path)).stem) for r in manifest.df.itertuples()})
    val_blocks = set(blocks[VAL_BLOCK_EVERY - 1 :: VAL_BLOCK_EVERY])
    if tune:
        fit = [b for b in blocks if b not in val_blocks]
        blocks, val_blocks = fit, set(fit[VAL_BLOCK_EVERY - 1 :: VAL_BLOCK_EVERY])
    for r in manifest.df.itertuples():
        pid, stem = str(r.pair_id), Path(str(r.ir_path)).stem
        if msrs_block(stem) not in blocks:
            continue
        with Image.open(manifest.ir_abspath(r)) as a, Image.open(manifest.vis_abspath(r)) as b:
            Image.fromarray(ir_gray(a)).save(out / f"{pid}_ir.png")
            Image.fromarray(vis_ycbcr(b)[0]).save(out / f"{pid}_vis.png")
        sets["val" if msrs_block(stem) in val_blocks else "train"].append(pid)
        sets["labels"][pid] = sorted(labels.get(pid, set()))
        sets["boxes_ir"][pid] = ann.boxes_of(pid, "ir").round(2).tolist()
        sets["boxes_all"][pid] = ann.boxes_of(pid).round(2).tolist()
    sets["val_blocks"] = sorted(val_blocks)
    np.save(out / "entity_table.npy", embed_labels(names, "{name}").numpy().astype(np.float32))
    (out / "sets.json").write_text(json.dumps(sets, indent=1))
    print(
        f"msrs {'tuning ' if tune else ''}pack {out}: train {len(sets['train'])}, val {len(sets['val'])} "
        f"(blocks {sorted(val_blocks)}), "
        f"labels {names}, {len(ann.boxes)} boxes, {len(ann.problems)} problems"
    )


def _load(pack: Path, ids: list[str]) -> list[tuple[str, object, object]]:
    import numpy as np
    from PIL import Image

    def read(p: Path):
        with Image.open(p) as im:
            return np.asarray(im.convert("L"), dtype=np.uint8)

    return [(pid, read(pack / f"{pid}_ir.png"), read(pack / f"{pid}_vis.png")) for pid in ids]


class _ArrayStore:
    """What `PatchSampler` needs of a `PairStore`, over in-memory pairs (no `datasets`)."""

    def __init__(self, pairs: list, names: list[str] = (), labels: dict | None = None) -> None:
        import numpy as np

        from entitylabel.fusion.data import PairData

        def target(pid: str):
            t = np.zeros(len(names), dtype=np.float32)
            for e in (labels or {}).get(pid, []) if names else []:  # no label space: fusion only
                t[names.index(e)] = 1.0
            return t

        self.items = [PairData(ir, vis, target(pid)) for pid, ir, vis in pairs]

    def __len__(self) -> int:
        return len(self.items)

    def get(self, i: int):
        return self.items[i]


def train_row(cfg, pairs: list, steps: int, device: str, table=None, labels: dict | None = None):
    """The model after `steps` steps of the trainer's recipe on `pairs` (with `table`: the entity path on)."""
    import numpy as np
    import torch

    from entitylabel.fusion import losses
    from entitylabel.fusion.data import PatchSampler
    from entitylabel.fusion.model import EntityFusionNet
    from entitylabel.fusion.train import lr_at

    torch.manual_seed(cfg.seed)
    model = EntityFusionNet(cfg, entity_table=table).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sampler = PatchSampler(_ArrayStore(pairs, cfg.labels if model.n_labels else [], labels), cfg)
    rng = np.random.default_rng([cfg.seed, 0, 0])
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(cfg, step, step / steps)
        ir, vis, target = (t.to(device) for t in sampler.batch(rng, cfg.batch_size))
        y = target if model.n_labels else None
        out = model(ir, vis, y)
        loss, _ = losses.fusion_loss(out.fused, ir, vis, cfg, out.logits, y)
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


def region_rows(model, pairs: list, sets: dict) -> list[dict]:
    """Per validation pair: the ten metrics, TC (IR boxes), Qabf_bg (all boxes), and the classifier's
    probabilities (fused as `fuse` does: with the classifier's own predicted entities)."""
    import torch

    from entitylabel.fusion.fuse import fuse_arrays
    from entitylabel.fusion.region_metrics import qabf_background, target_contrast
    from entitylabel.fusion.validate import ten_metrics

    rows = []
    for pid, ir, vis in pairs:
        fused, used = fuse_arrays(model, ir, vis)
        row = {"pair_id": pid, **ten_metrics(ir, vis, fused), "used": used}
        row["TC"] = target_contrast(fused, ir, vis, sets["boxes_ir"][pid])
        row["Qabf_bg"] = qabf_background(fused, ir, vis, sets["boxes_all"][pid])
        if model.n_labels:
            with torch.inference_mode():
                t = [torch.from_numpy(x.astype("float32") / 255.0)[None, None] for x in (ir, vis)]
                row["probs"] = torch.sigmoid(model(*t).logits)[0].tolist()
        rows.append(row)
    return rows


def average_precision(scores, truth) -> float:
    """AP of one class: mean precision at each positive, ranked by score (NaN without positives)."""
    import numpy as np

    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    hits = np.asarray(truth, dtype=bool)[order]
    if not hits.any():
        return float("nan")
    prec = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(prec[hits].mean())


def paired_bootstrap(diff, n: int = 10000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, 2.5%, 97.5%) of the mean of per-pair differences, resampling the pairs (scipy's percentile bootstrap)."""
    import numpy as np
    from scipy.stats import bootstrap

    d = np.asarray(diff, dtype=float)
    ci = bootstrap((d,), np.mean, n_resamples=n, method="percentile", rng=np.random.default_rng(seed))
    return float(d.mean()), float(ci.confidence_interval.low), float(ci.confidence_interval.high)


def analyse(pack: Path, summaries: list[Path], base_row: str, test_row: str) -> None:
    """An MSRS pack's validation part: every row's seed-mean 12 means beside pixel-max, pixel-mean, the fixed
    rule and the untrained start (`--steps 0`), and how many of the 12 each row beats them on; with both
    `base_row` and `test_row` present, the lambda ablation too: paired bootstrap CIs (test - base) on the ten
    metrics, TC and Qabf_bg, and the test row's per-class AP."""
    import numpy as np
    import pandas as pd
    import torch

    from entitylabel.fusion.config import FusionConfig
    from entitylabel.fusion.model import EntityFusionNet
    from entitylabel.fusion.rank import REGION, TEN, better
    from entitylabel.fusion.region_metrics import qabf_background, target_contrast
    from entitylabel.fusion.validate import fixed_rule_u8, ten_metrics

    sets = json.loads((pack / "sets.json").read_text())
    runs = [r for f in summaries for r in json.loads(f.read_text())]
    twelve = [*TEN, *REGION]
    per_row: dict[str, pd.DataFrame] = {}
    rows = list(dict.fromkeys(r["row"] for r in runs))  # every row's means and counts; the CIs: test - base
    for row in rows:
        frames = [pd.DataFrame(r["rows"]).set_index("pair_id")[twelve] for r in runs if r["row"] == row]
        per_row[row] = sum(frames) / len(frames)
        gates = [r["gates"] for r in runs if r["row"] == row]
        print(f"{row}: {len(frames)} seeds, {runs[0]['steps']} steps; entity gates tanh(attn), tanh(mlp): {gates}")
    pairs = _load(pack, sets["val"])
    refs: dict[str, list[dict]] = {"pixel-max": [], "pixel-mean": [], "fixed-rule": [], "steps-0": []}
    torch.manual_seed(0)
    start = EntityFusionNet(FusionConfig()).eval()
    from entitylabel.fusion.fuse import fuse_arrays

    for pid, ir, vis in pairs:
        a, b = ir.astype(np.float64), vis.astype(np.float64)
        outs = {"pixel-max": np.maximum(a, b), "pixel-mean": np.floor((a + b) / 2.0 + 0.5),
                "fixed-rule": fixed_rule_u8(ir, vis), "steps-0": fuse_arrays(start, ir, vis)[0]}  # fmt: skip
        for name, f in outs.items():
            refs[name].append({"pair_id": pid, **ten_metrics(ir, vis, f),
                               "TC": target_contrast(f, ir, vis, sets["boxes_ir"][pid]),
                               "Qabf_bg": qabf_background(f, ir, vis, sets["boxes_all"][pid])})  # fmt: skip
    means = {k: pd.DataFrame(v).set_index("pair_id")[twelve].astype(float).mean() for k, v in refs.items()}
    means.update({k: v.astype(float).mean() for k, v in per_row.items()})
    table = pd.DataFrame(means).T
    print(f"\nMSRS validation part ({len(pairs)} pairs, scene blocks {sets.get('val_blocks')}); TC over IR boxes")
    print(table.round(4).to_string())
    for row in rows:
        for ref in ("fixed-rule", "steps-0", "pixel-max"):
            won = [m for m in twelve if better(m, table.loc[row, m], table.loc[ref, m])]
            print(f"{row} better than {ref} on {len(won)}/12: {' '.join(won)}")
        below = [m for m in ("EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "TC", "Qabf_bg")
                 if table.loc[row, m] < table.loc["pixel-mean", m]]  # fmt: skip
        print(f"{row} below pixel-mean on: {' '.join(below) or 'none'}")
    if base_row not in per_row or test_row not in per_row:
        return
    print(f"\npaired bootstrap over {len(pairs)} validation pairs ({test_row} - {base_row}, seed means), 95% CI:")
    for m in twelve:
        d = (per_row[test_row][m].astype(float) - per_row[base_row][m].astype(float)).dropna()
        mean, lo, hi = paired_bootstrap(d.to_numpy())
        flag = "above 0" if lo > 0 else "below 0" if hi < 0 else "spans 0"
        print(f"  {m:<8} {mean:+.5f}  [{lo:+.5f}, {hi:+.5f}]  {flag}  (n={len(d)})")
    names = next(r["names"] for r in runs if r["row"] == test_row)
    truth = {pid: set(sets["labels"][pid]) for pid in sets["val"]}
    print(f"\nclassifier per-class AP on the validation part ({test_row}, per seed):")
    for r in (r for r in runs if r["row"] == test_row):
        probs = {x["pair_id"]: x["probs"] for x in r["rows"]}
        aps = {n: average_precision([probs[p][k] for p in probs], [n in truth[p] for p in probs])
               for k, n in enumerate(names)}  # fmt: skip
        prev = {n: sum(n in truth[p] for p in probs) for n in names}
        print(f"  seed {r['seed']}: " + ", ".join(f"{n} {aps[n]:.3f} ({prev[n]} of {len(probs)} pairs)" for n in names))


def run_one(job: dict) -> dict:
    import torch

    from entitylabel.fusion.config import FusionConfig, parse_overrides
    from entitylabel.fusion.validate import LIGHTS, ValSet, simulate_light, validate

    torch.set_num_threads(job["threads"])
    pack = Path(job["pack"])
    sets = json.loads((pack / "sets.json").read_text())
    cfg = FusionConfig().replace(**parse_overrides(job["overrides"]), seed=job["seed"])
    table = None
    if sets.get("names") and cfg.lambda_cls > 0:  # a labelled pack: the entity path on
        import numpy as np

        cfg = cfg.replace(labels=list(sets["names"]))
        table = torch.from_numpy(np.load(pack / "entity_table.npy", allow_pickle=False))
    t0 = time.perf_counter()
    model = train_row(cfg, _load(pack, sets["train"]), job["steps"], job["device"], table, sets.get("labels"))
    train_s = time.perf_counter() - t0
    model = model.to("cpu").eval()
    if sets.get("names"):  # MSRS: per-pair rows (ten metrics, TC, Qabf_bg, probabilities) for paired bootstraps
        gates = []
        if table is not None:  # the entity path's gates: did it open?
            gates = [float(torch.tanh(g.detach())) for g in (model.entity.gate_attn, model.entity.gate_mlp)]
        out = {"row": job["row"], "seed": job["seed"], "steps": job["steps"], "train_s": round(train_s, 1),
               "overrides": job["overrides"], "gates": gates, "names": sets["names"],
               "rows": region_rows(model, _load(pack, sets["val"]), sets)}  # fmt: skip
        Path(job["out"]).write_text(json.dumps(out))
        return out
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
    p.add_argument("--msrs", action="store_true", help="pack MSRS-labelled (scene split, labels, boxes) instead")
    p.add_argument("--tune", action="store_true", help="with --msrs: the tuning split inside its training blocks")
    r = sub.add_parser("run")
    r.add_argument("--pack", type=Path, required=True)
    r.add_argument("--row", action="append", default=[], help="NAME or NAME:key=value,key=value (repeat)")
    r.add_argument("--seeds", default="0")
    r.add_argument("--steps", type=int, default=2000)
    r.add_argument("--device", default="cpu")
    r.add_argument("--jobs", type=int, default=1)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--val-pairs", type=int, default=28)
    peers = REPO.parent / "shared" / "data" / "peers" / "tno_published_metrics.csv"
    r.add_argument("--peers", type=Path, default=peers)
    r.add_argument("--out", type=Path, required=True)
    a = sub.add_parser("analyse")
    a.add_argument("--pack", type=Path, required=True)
    a.add_argument("--summary", type=Path, action="append", required=True)
    a.add_argument("--base", default="l0")
    a.add_argument("--test", default="l01")
    args = ap.parse_args()
    if args.cmd == "analyse":
        analyse(args.pack, args.summary, args.base, args.test)
        return 0
    if args.cmd == "pack":
        if args.tune and not args.msrs:
            ap.error("--tune splits MSRS-labelled's training blocks: use it with --msrs")
        if args.msrs:
            make_msrs_pack(args.out, args.data, args.work, tune=args.tune)
        else:
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
    summary = args.out / "summary.json"  # one file with every row (what a remote machine sends back)
    summary.write_text(json.dumps(results))
    if "rows" in results[0]:
        print(f"wrote {summary} ({len(results)} runs; per-pair rows for the paired bootstrap)")
        return 0
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
