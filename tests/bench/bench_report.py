"""Review page at scale: 5,000 pairs (RoadScene images cycled when ../shared/data is there, else synthetic).

Prints the page size, the build time, and (when Debian's chromium + chromium-driver are installed) the time
the browser takes to parse and show the first page, to filter by an entity, and to turn a page.
Run: .venv/bin/python tests/bench/bench_report.py [N_PAIRS]
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from report_run import CHROMEDRIVER, CHROMIUM, headless_chrome  # noqa: E402

from entitylabel.io import write_parquet  # noqa: E402
from entitylabel.pairs import PAIRS_SCHEMA, ROOT_KEY  # noqa: E402
from entitylabel.report import build_report  # noqa: E402

ROADSCENE = REPO.parent / "shared" / "data" / "RoadScene"
WORDS = ["car", "person", "bicycle", "truck", "tree", "road", "building", "bus", "dog", "traffic light"]


def make_run(tmp: Path, n: int) -> Path:
    if (ROADSCENE / "cropinfrared").is_dir():
        root = ROADSCENE
        stems = sorted(p.name for p in (root / "cropinfrared").glob("*.jpg"))
        ir_dir, vis_dir = "cropinfrared", "crop_LR_visible"
    else:
        root = tmp / "data"
        (root / "ir").mkdir(parents=True)
        (root / "vi").mkdir()
        rng = np.random.default_rng(0)
        stems = []
        for i in range(50):
            base = rng.integers(0, 255, (60, 80), dtype=np.uint8).repeat(6, 0).repeat(6, 1)
            Image.fromarray(base).save(root / "ir" / f"{i}.jpg")
            Image.fromarray(np.stack([base, base[::-1], base[:, ::-1]], -1)).save(root / "vi" / f"{i}.jpg")
            stems.append(f"{i}.jpg")
        ir_dir, vis_dir = "ir", "vi"
    rng = np.random.default_rng(1)
    pairs, caps, ents, labels = [], [], [], []
    for i in range(n):
        stem = stems[i % len(stems)]
        pid = f"bench-{i:05d}"
        pairs.append(
            dict(
                pair_id=pid,
                dataset="bench",
                split=("train", "test")[i % 5 == 0],
                ir_path=f"{ir_dir}/{stem}",
                vis_path=f"{vis_dir}/{stem}",
                width=500,
                height=330,
                ir_mode="L",
                vis_mode="RGB",
                ir_sha256="0" * 64,
                vis_sha256="1" * 64,
            )
        )
        chosen = sorted(set(rng.choice(WORDS, 4)))
        text = (
            "A thermal view of a road at night with "
            + ", ".join(f"a {w}" for w in chosen)
            + "; there is no dog and possibly a lamp post near the curb on the right."
        )
        for m in ("ir", "vis"):
            caps.append(
                dict(
                    pair_id=pid,
                    source=f"{m}:default:bench",
                    modality=m,
                    caption=text,
                    model="bench",
                    error=None,
                    truncated=False,
                )
            )
        for w in chosen:
            ents.append(
                dict(
                    pair_id=pid,
                    entity=w,
                    support=2,
                    confidence=float(rng.random()),
                    accepted=True,
                    sources=["ir:default:bench", "vis:default:bench"],
                    mentions=[w],
                )
            )
        labels.append(dict(pair_id=pid, entities=chosen))
    run = tmp / "run"
    write_parquet(pd.DataFrame(pairs), run / "pairs.parquet", schema=PAIRS_SCHEMA, metadata={ROOT_KEY: str(root)})
    write_parquet(pd.DataFrame(caps), run / "captions" / "shard-00000.parquet")
    write_parquet(pd.DataFrame(ents), run / "entities" / "entities.parquet")
    write_parquet(pd.DataFrame(labels), run / "entities" / "labels.parquet")
    rej = pd.DataFrame(
        [
            dict(
                phrase=f"thing {k}",
                lemma=f"thing {k}",
                reason="not_in_vocab",
                count=1000 - k,
                example_pair_id="bench-00000",
                example_caption="x",
            )
            for k in range(2000)
        ]
    )
    write_parquet(rej, run / "entities" / "rejected.parquet")
    (run / "entities" / "label_space.json").write_text(json.dumps({"names": WORDS}))
    return run


def browser_times(page: Path) -> dict[str, float] | None:
    if not (CHROMEDRIVER.is_file() and CHROMIUM):
        return None
    from selenium.webdriver.support.ui import Select

    prof = tempfile.mkdtemp()
    d = headless_chrome(Path(prof))
    try:
        loads, filters, pages = [], [], []
        for _ in range(3):
            t = time.perf_counter()
            d.get(page.resolve().as_uri())
            while d.execute_script("return document.body.dataset.ready") != "1":
                time.sleep(0.01)
            loads.append(time.perf_counter() - t)
            t = time.perf_counter()
            Select(d.find_element("id", "f-entity")).select_by_value("car")
            d.execute_script("return document.querySelectorAll('#pairs article').length")
            filters.append(time.perf_counter() - t)
            t = time.perf_counter()
            d.find_element("css selector", "#pager-top .next").click()
            d.execute_script("return document.querySelectorAll('#pairs article').length")
            pages.append(time.perf_counter() - t)
        return {
            "load_s": statistics.median(loads),
            "filter_s": statistics.median(filters),
            "page_s": statistics.median(pages),
        }
    finally:
        d.quit()
        shutil.rmtree(prof, ignore_errors=True)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(Path(tmp), n)
        for size in (96, 112):
            t = time.perf_counter()
            page = build_report(run, out=Path(tmp) / f"report-{size}.html", thumb_size=size)
            build = time.perf_counter() - t
            mb = page.stat().st_size / 1e6
            print(
                f"{n} pairs, thumbnails {size}px: page {mb:.1f} MB ({mb * 1e6 / n / 1e3:.1f} kB/pair), "
                f"built in {build:.1f}s ({n / build:.0f} pairs/s)"
            )
        times = browser_times(page)
        if times is None:
            print("chromium/chromedriver not installed: browser timings skipped")
        else:
            print(
                f"chromium (112px page): open + first page {times['load_s']:.2f}s, entity filter "
                f"{times['filter_s'] * 1e3:.0f} ms, next page {times['page_s'] * 1e3:.0f} ms (medians of 3)"
            )


if __name__ == "__main__":
    main()
