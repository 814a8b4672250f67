"""A small synthetic run folder (pairs, captions, entities) shaped like the stage contracts, for report tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from entitylabel.io import write_parquet
from entitylabel.pairs import PAIRS_SCHEMA, ROOT_KEY

EVIL = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> a car & a </script> tag'
LABELS = ["person", "car", "tree", "dog"]


def make_run(dest: Path, n: int = 12, *, evil_pair: int = 1, size: tuple[int, int] = (64, 48)) -> Path:
    """Write dest/data/{ir,vi}/*.png and a run folder dest/run with every stage's tables; return the run folder."""
    data, run = dest / "data", dest / "run"
    (data / "ir").mkdir(parents=True)
    (data / "vi").mkdir(parents=True)
    rng = np.random.default_rng(0)
    pairs, caps, ents, labels = [], [], [], []
    for i in range(n):
        stem = f"{i:04d}"
        pid = f"toy-{stem}"
        split = "train" if i % 3 else "test"
        Image.fromarray(rng.integers(0, 255, (size[1], size[0]), dtype=np.uint8), "L").save(data / "ir" / f"{stem}.png")
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8), "RGB").save(
            data / "vi" / f"{stem}.png"
        )
        pairs.append(
            dict(
                pair_id=pid,
                dataset="toy",
                split=split,
                ir_path=f"ir/{stem}.png",
                vis_path=f"vi/{stem}.png",
                width=size[0],
                height=size[1],
                ir_mode="L",
                vis_mode="RGB",
                ir_sha256="0" * 64,
                vis_sha256="1" * 64,
            )
        )
        kept = [LABELS[i % 2], "tree"] if i % 4 else [LABELS[i % 2]]
        vis = f"A road with a {kept[0]} and {'a tree' if 'tree' in kept else 'no dog'}, possibly a lamp post."
        if i == evil_pair:
            vis = EVIL
        ir = f"Thermal view: a warm {kept[0]}; there is no dog."
        for modality, text in (("ir", ir), ("vis", vis)):
            caps.append(
                dict(
                    pair_id=pid,
                    source=f"{modality}:default:tiny",
                    modality=modality,
                    caption=text,
                    model="tiny",
                    model_revision="",
                    prompt_id="default",
                    prompt_sha256="ab" * 32,
                    decoding="{}",
                    n_tokens=12,
                    truncated=False,
                    error=None,
                )
            )
        for e in kept:
            mention = "a tree" if e == "tree" else e
            ents.append(
                dict(
                    pair_id=pid,
                    entity=e,
                    support=2.0,
                    confidence=0.9 - 0.1 * kept.index(e),
                    sources=["ir:default:tiny", "vis:default:tiny"],
                    mentions=[mention],
                )
            )
        ents.append(
            dict(pair_id=pid, entity="dog", support=1.0, confidence=0.2, sources=["ir:default:tiny"], mentions=[])
        )
        labels.append(dict(pair_id=pid, entities=[e for e in LABELS if e in kept]))
    write_parquet(pd.DataFrame(pairs), run / "pairs.parquet", schema=PAIRS_SCHEMA, metadata={ROOT_KEY: str(data)})
    write_parquet(pd.DataFrame(caps), run / "captions" / "shard-00000.parquet")
    write_parquet(pd.DataFrame(ents), run / "entities" / "entities.parquet")
    write_parquet(pd.DataFrame(labels), run / "entities" / "labels.parquet")
    rejected = pd.DataFrame(
        [
            dict(
                phrase="dog",
                lemma="dog",
                reason="negated",
                count=n,
                example_pair_id="toy-0000",
                example_caption="Thermal view: there is no dog.",
            ),
            dict(
                phrase="lamp post",
                lemma="lamp post",
                reason="hedged",
                count=n - 2,
                example_pair_id="toy-0002",
                example_caption="possibly a lamp post",
            ),
            dict(
                phrase="<b>bold</b>",
                lemma="<b>bold</b>",
                reason="not_in_vocab",
                count=1,
                example_pair_id=f"toy-{evil_pair:04d}",
                example_caption=EVIL,
            ),
        ]
    )
    write_parquet(rejected, run / "entities" / "rejected.parquet")
    counts = {e: sum(e in lab["entities"] for lab in labels) for e in LABELS}
    (run / "entities" / "label_space.json").write_text(
        json.dumps(
            {"names": [e for e in LABELS if counts[e]], "counts": counts, "vocab_sha256": "c" * 64, "vocab_version": 1}
        )
    )
    return run


CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def headless_chrome(profile: Path, window: str = "1400,1000"):
    """Debian's Chromium through its own chromedriver (nothing downloaded), sealed off from the network."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost",
        f"--window-size={window}",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(flag)
    opts.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(60)
    return driver
