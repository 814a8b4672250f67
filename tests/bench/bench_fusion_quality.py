"""Quality bench: train on RoadScene (221 real pairs) on the CPU, fuse TNO (25 unseen pairs), score.

    .venv/bin/python tests/bench/bench_fusion_quality.py [--minutes 15] [--labels ENTITIES_DIR_OR_TABLE]

Prints EN SD SF AG MI SCD VIF Qabf SSIM Nabf for the model and the pixel-mean / pixel-max baselines side by
side (plus the model trained with lambda_cls = 0 when `--labels` gives real entity labels), then checks the
bar: beat pixel-mean on all six of EN, SD, SF, AG, VIF, Qabf and pixel-max on at least four. Exit 1 if missed.
The dataset is built with discover + export when those stages work, else straight from the folder.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

SIX = ("EN", "SD", "SF", "AG", "VIF", "Qabf")


def _label_table(path: Path) -> tuple[list[str], dict[str, list[str]]]:
    """(label space, pair_id or stem -> names) from an extract folder, labels.parquet, .json or .csv."""
    import pandas as pd

    d = path / "entities" if (path / "entities" / "labels.parquet").is_file() else path
    if d.is_dir():
        names = json.loads((d / "label_space.json").read_text())["names"]
        df = pd.read_parquet(d / "labels.parquet")
    elif path.suffix == ".json":
        raw = json.loads(path.read_text())
        df = pd.DataFrame({"pair_id": list(raw), "entities": list(raw.values())})
        names = []
    else:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        names = []
    table = {}
    for pid, ents in zip(df["pair_id"], df["entities"], strict=True):
        ents = ents.split(",") if isinstance(ents, str) else list(ents if ents is not None else [])
        table[str(pid)] = [str(e).strip() for e in ents if str(e).strip()]
    names = names or sorted({n for v in table.values() for n in v})
    return names, table


def build_dataset(root: Path, work: Path, labels: Path | None):
    """RoadScene as a `datasets.Dataset`: discover + export (with an extract folder's labels when given);
    a plain label table (JSON/CSV/Parquet, not an extract folder) goes through a small folder adapter."""
    if labels is None or labels.is_dir():
        from entitylabel.discover import run_discover
        from entitylabel.export.stage import run_export
        from entitylabel.fusion.data import open_dataset, pick_split

        run_discover(root, work / "discover", dataset="roadscene")
        run_export(work / "discover", work / "export", config="roadscene", entities=labels, overwrite=True)
        ds = pick_split(open_dataset(work / "export", "roadscene"), "__all__")
        print(f"dataset: discover + export -> {work / 'export'} ({len(ds)} pairs, all splits)")
        return ds
    import datasets

    from entitylabel.pairs import NO_SPLIT, make_pair_id

    ir_dir, vis_dir = root / "cropinfrared", root / "crop_LR_visible"
    stems = sorted(p.stem for p in ir_dir.iterdir() if p.suffix.lower() in (".jpg", ".png", ".bmp"))
    ids = [make_pair_id("roadscene", NO_SPLIT, s) for s in stems]
    cols = {
        "pair_id": ids,
        "ir": [str(next(ir_dir.glob(f"{s}.*"))) for s in stems],
        "vis": [str(next(vis_dir.glob(f"{s}.*"))) for s in stems],
    }
    feats = {"pair_id": datasets.Value("string"), "ir": datasets.Image(), "vis": datasets.Image()}
    if labels is not None:
        names, table = _label_table(labels)
        cols["entities"] = [table.get(pid, table.get(s, [])) for pid, s in zip(ids, stems, strict=True)]
        feats["entities"] = datasets.List(datasets.ClassLabel(names=names))
    ds = datasets.Dataset.from_dict(cols, features=datasets.Features(feats))
    print(f"dataset: folder adapter ({len(ds)} pairs)")
    return ds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=15.0, help="training time per model (at most 15 for the bar)")
    ap.add_argument(
        "--labels", type=Path, help="real RoadScene entity labels: extract folder or pair_id/entities table"
    )
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "outputs" / "bench_fusion_quality")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="hyper-parameter override")
    ap.add_argument("--fresh", action="store_true", help="delete earlier runs in --out instead of resuming them")
    ap.add_argument("--workers", type=int, default=2, help="threads that score pairs")
    args = ap.parse_args()

    import shutil

    from rich.console import Console

    from entitylabel.discover import run_discover
    from entitylabel.fusion.config import FusionConfig, parse_overrides
    from entitylabel.fusion.evaluate import evaluate, print_table, summarize
    from entitylabel.fusion.fuse import fuse
    from entitylabel.fusion.train import train

    console = Console()
    roadscene, tno = args.data / "RoadScene", args.data / "TNO"
    for p in (roadscene, tno):
        if not p.is_dir():
            print(f"missing {p}")
            return 2
    if args.fresh and args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    ds = build_dataset(roadscene, args.out, args.labels)
    cfg = FusionConfig().replace(**parse_overrides(args.set))
    variants = {"model": cfg}
    if args.labels is not None:
        variants = {"model (entity)": cfg, "model (lambda=0)": cfg.replace(lambda_cls=0.0)}

    run_discover(tno, args.out / "tno", dataset="tno")
    tables = []
    for i, (name, vcfg) in enumerate(variants.items()):
        run = args.out / f"run-{i}"
        t0 = time.perf_counter()
        res = train(ds, run, vcfg, max_minutes=args.minutes, steps=10**9)
        res.print_summary(console)
        print(f"{name}: trained {res.step} steps in {time.perf_counter() - t0:.0f} s wall ({res.status})")
        fused = args.out / f"fused-{i}"
        shutil.rmtree(fused, ignore_errors=True)
        t0 = time.perf_counter()
        fr = fuse(run, tno, fused)
        print(f"{name}: fused {len(fr.written)} TNO pairs in {time.perf_counter() - t0:.1f} s")
        base = ("mean", "max") if i == 0 else ()
        tables.append(evaluate(fused, args.out / "tno", args.out / f"metrics-{i}.csv", base, method=name,
                               workers=args.workers))  # fmt: skip
    import pandas as pd

    table = pd.concat(tables, ignore_index=True)
    print_table(table, console)
    s = summarize(table)
    ok_all = True
    for name in variants:
        beat_mean = [m for m in SIX if s.loc[name, m] > s.loc["pixel-mean", m]]
        beat_max = [m for m in SIX if s.loc[name, m] > s.loc["pixel-max", m]]
        ok = len(beat_mean) == 6 and len(beat_max) >= 4
        ok_all &= ok
        print(f"{name}: beats pixel-mean on {len(beat_mean)}/6 ({' '.join(beat_mean)}), "
              f"pixel-max on {len(beat_max)}/6 ({' '.join(beat_max)}) -> {'PASS' if ok else 'MISS'}")  # fmt: skip
    return 0 if ok_all else 1


if __name__ == "__main__":
    raise SystemExit(main())
