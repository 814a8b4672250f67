"""A no-op `entitylabel run` on RoadScene (221 pairs): time and bytes read, beside what the old check cost.

The pipeline runs once (external template captions, as tests/test_pipeline_roadscene.py), then:
- `run_pipeline` again with nothing changed (every stage skipped), REPS times: wall time, bytes read
  (`rchar` of /proc/self/io: every read() the process makes, page cache or not) and the dataset images or
  export shards it opened (an audit hook sees every Python open);
- side by side, the check the runner made before (content hashes of every stage's outputs: the whole
  export folder with its embedded images, the captions, the entities, the page), REPS times.
Medians are printed. Run: .venv/bin/python tests/bench/bench_runner_noop.py [REPS]
Needs ../shared/data/RoadScene (read in place).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from entitylabel.io import hash_tree  # noqa: E402
from entitylabel.pipeline.runner import run_pipeline  # noqa: E402

ROADSCENE = REPO.parent / "shared" / "data" / "RoadScene"
THINGS = ["a car", "two cars", "a pedestrian", "a truck", "a bicycle", "trees", "a traffic light", "a bus"]
OPENED: list[str] = []
WATCH = {"on": False}


def _hook(event: str, args: tuple) -> None:
    if WATCH["on"] and event == "open" and isinstance(args[0], str | Path):
        OPENED.append(os.path.abspath(args[0]))


def rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def captions(dest: Path) -> Path:
    lines = []
    for i, f in enumerate(sorted((ROADSCENE / "cropinfrared").glob("*.jpg"))):
        a, b = THINGS[i % len(THINGS)], THINGS[(i * 3 + 1) % len(THINGS)]
        lines.append({"image": f"cropinfrared/{f.name}", "caption": f"A thermal image of a road with {a} and {b}."})
        lines.append({"image": f"crop_LR_visible/{f.name}", "caption": f"A street with {a}; there is no dog."})
    dest.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return dest


def measure(fn) -> tuple[float, int]:
    r0, t0 = rchar(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, rchar() - r0


def old_check(run: Path) -> None:
    """What a no-op run hashed before: every stage's outputs by content, the export folder whole."""
    for name in ("pairs.parquet", "problems.parquet", "discover.json", "captions", "entities", "export", "report.html"):
        hash_tree(run / name)


def main() -> None:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    if not (ROADSCENE / "cropinfrared").is_dir():
        print(f"skipped: {ROADSCENE} not found")
        return
    sys.addaudithook(_hook)
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp:
        run = Path(tmp) / "run"
        args = dict(data=ROADSCENE, out=run, external=captions(Path(tmp) / "caps.jsonl"))
        cfg = REPO / "pipelines" / "roadscene.yaml"
        t0 = time.perf_counter()
        first = run_pipeline(cfg, **args)
        print(f"first run: {first.ran} in {time.perf_counter() - t0:.1f}s")
        images = sum(f.stat().st_size for f in ROADSCENE.rglob("*") if f.is_file())
        shards = sum(f.stat().st_size for f in (run / "export" / "data").rglob("*") if f.is_file())
        print(f"dataset files: {images / 1e6:.1f} MB; export shards (embedded images): {shards / 1e6:.1f} MB")

        noop, old = [], []
        for _ in range(reps):  # side by side, alternating
            WATCH["on"] = True
            res: list = []
            noop.append(measure(lambda res=res: res.append(run_pipeline(cfg, **args))))
            WATCH["on"] = False
            assert res[0].ran == [], res[0].ran
            old.append(measure(lambda: old_check(run)))
        images_opened = [p for p in OPENED if p.startswith(str(ROADSCENE)) or "/export/data/" in p]
        t_new, b_new = statistics.median(t for t, _ in noop), statistics.median(b for _, b in noop)
        t_old, b_old = statistics.median(t for t, _ in old), statistics.median(b for _, b in old)
        print(f"no-op run (whole run, now): median {t_new:.3f}s, {b_new / 1e6:.2f} MB read, reps={reps}")
        print(f"  dataset images / export shards opened during the no-op runs: {len(images_opened)}")
        print(f"output check before (content hashes, check only): median {t_old:.3f}s, {b_old / 1e6:.2f} MB read")
        print(f"ratio bytes read, old check / new whole no-op run: {b_old / max(b_new, 1):.1f}x")


if __name__ == "__main__":
    main()
