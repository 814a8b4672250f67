"""Inputs for the export tests: pair manifests, a caption shard and an extract folder, all hand-made.

Used by tests/test_export_*.py (imported as a plain module; pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
from PIL import Image

from entitylabel.export.inputs import CAPTIONS_SCHEMA
from entitylabel.io import sha256_file, write_parquet
from entitylabel.pairs import PAIRS_SCHEMA, ROOT_KEY

LABELS = ["person", "car", "bicycle", "building", "tree", "road"]
_WORDS = {
    "person": "a person",
    "car": "a car",
    "bicycle": "a bicycle",
    "building": "a building",
    "tree": "trees",
    "road": "the road",
}


def copy_subset(src: Path, dst: Path, folders: tuple[str, str], n: int) -> Path:
    """Copy the first `n` pairs (by file name) of a real dataset into `dst`, keeping its layout."""
    names = sorted(p.name for p in (src / folders[0]).iterdir() if p.is_file())[:n]
    for folder in folders:
        (dst / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copy2(src / folder / name, dst / folder / name)
    return dst


def discover_pairs(root: Path, out: Path) -> Path:
    from entitylabel.discover import run_discover

    run_discover(root, out, workers=1)
    return out / "pairs.parquet"


def synthetic_pairs(
    root: Path, out: Path, dataset: str, n: int, *, splits: list[str] | None = None, size=(24, 16)
) -> Path:
    """`n` tiny BMP pairs (uncompressed, so their bytes never depend on a zlib version) and their manifest."""
    rows = []
    for i in range(n):
        stem, split = f"{i:03d}", splits[i] if splits else "all"
        for mod, mode, colour in (("ir", "L", 20 * i % 255), ("vis", "RGB", (10 * i % 255, 80, 160))):
            (root / mod).mkdir(parents=True, exist_ok=True)
            Image.new(mode, size, colour).save(root / mod / f"{stem}.bmp", format="BMP")
        rows.append(
            {
                "pair_id": f"{dataset}-{stem}" if split == "all" else f"{dataset}-{split}-{stem}",
                "dataset": dataset,
                "split": split,
                "ir_path": f"ir/{stem}.bmp",
                "vis_path": f"vis/{stem}.bmp",
                "width": size[0],
                "height": size[1],
                "ir_mode": "L",
                "vis_mode": "RGB",
                "ir_sha256": sha256_file(root / "ir" / f"{stem}.bmp"),
                "vis_sha256": sha256_file(root / "vis" / f"{stem}.bmp"),
            }
        )
    path = out / "pairs.parquet"
    write_parquet(pd.DataFrame(rows), path, schema=PAIRS_SCHEMA, metadata={ROOT_KEY: str(root)})
    return path


def caption_text(i: int, modality: str) -> str:
    """A hand-written-style caption naming 1-3 of the labels, different per pair."""
    picked = [LABELS[(i + k * 2) % len(LABELS)] for k in range(1 + i % 3)]
    lead = "A thermal image of" if modality == "ir" else "A photo of"
    return f"{lead} {' and '.join(_WORDS[p] for p in dict.fromkeys(picked))} at night."


def write_captions(pairs: Path, folder: Path, *, n_captioned: int | None = None, done: bool = True) -> Path:
    """A caption shards folder: per pair an IR and a VIS caption (tiny test VLM), plus odd rows."""
    ids = sorted(pd.read_parquet(pairs)["pair_id"])[:n_captioned]
    rows = []
    for i, pid in enumerate(ids):
        for mod in ("ir", "vis"):
            rows.append(
                {
                    "pair_id": pid,
                    "source": f"{mod}:{mod}_test:tiny-vlm",
                    "modality": mod,
                    "caption": caption_text(i, mod),
                    "model": "tiny-vlm",
                    "model_revision": "0123abcd",
                    "prompt_id": f"{mod}_test",
                    "prompt_sha256": f"{mod}-prompt-sha",
                    "decoding": '{"do_sample": false}',
                    "n_tokens": 12,
                    "truncated": False,
                    "error": None,
                }
            )
    if ids:  # a failed caption and an imported one must not win the caption_vis column
        rows.append(
            {
                **rows[1],
                "source": "vis:vis_alt:tiny-vlm",
                "prompt_id": "vis_alt",
                "caption": None,
                "error": "CUDA out of memory",
                "n_tokens": 0,
            }
        )
        rows.append(
            {
                **rows[1],
                "source": "external:human",
                "prompt_id": None,
                "caption": "An imported caption.",
                "model": None,
                "model_revision": None,
                "prompt_sha256": None,
                "decoding": None,
            }
        )
    folder.mkdir(parents=True, exist_ok=True)
    write_parquet(
        pd.DataFrame(rows, columns=CAPTIONS_SCHEMA.names), folder / "shard-00000.parquet", schema=CAPTIONS_SCHEMA
    )
    if done:
        (folder / "shard-00000.done").write_text("{}")
    return folder


def write_entities(pairs: Path, folder: Path, *, names: list[str] | None = None, n_labelled: int | None = None) -> Path:
    """An extract folder whose labels are the label words each pair's hand-written captions contain."""
    names = list(names or LABELS)
    ids = sorted(pd.read_parquet(pairs)["pair_id"])[:n_labelled]
    labels, ents = [], []
    for i, pid in enumerate(ids):
        text = caption_text(i, "ir") + " " + caption_text(i, "vis")
        found = [n for n in names if _WORDS.get(n, n) in text]
        labels.append({"pair_id": pid, "entities": found, "n_sources": 2})
        for k, n in enumerate(found):
            ents.append(
                {
                    "pair_id": pid,
                    "entity": n,
                    "support": 2,
                    "confidence": round(0.5 + 0.1 * k, 2),
                    "accepted": True,
                    "sources": ["ir:ir_test:tiny-vlm", "vis:vis_test:tiny-vlm"],
                    "mentions": [_WORDS.get(n, n)],
                }
            )
    folder.mkdir(parents=True, exist_ok=True)
    write_parquet(
        pa.Table.from_pylist(
            labels,
            schema=pa.schema(
                [("pair_id", pa.string()), ("entities", pa.list_(pa.string())), ("n_sources", pa.int32())]
            ),
        ),
        folder / "labels.parquet",
    )
    write_parquet(
        pd.DataFrame(ents, columns=["pair_id", "entity", "support", "confidence", "accepted", "sources", "mentions"]),
        folder / "entities.parquet",
    )
    counts = {n: sum(n in row["entities"] for row in labels) for n in names}
    space = {
        "names": names,
        "counts": counts,
        "vocab_name": "ivif-test",
        "vocab_version": "1.0",
        "vocab_sha256": "f" * 64,
    }
    (folder / "label_space.json").write_text(json.dumps(space))
    extract = {
        "settings": {
            "spacy_model": "en_core_web_sm-3.8.0",
            "min_support": 1,
            "min_confidence": 0.5,
            "keep_hedged": False,
        },
        "counts": {"labels": sum(len(r["entities"]) for r in labels)},
    }
    (folder / "extract.json").write_text(json.dumps(extract))
    return folder


def snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """relative path -> (inode, mtime_ns, bytes) of every file, to prove files were left untouched."""
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def export_inputs(tmp_path: Path, sizes: dict[str, int]) -> dict:
    """Per dataset name: `n` synthetic pairs with their manifest, captions and entities (one label space)."""
    out = {}
    for name, n in sizes.items():
        pairs = synthetic_pairs(tmp_path / f"src_{name}", tmp_path / name, name, n)
        out[name] = {
            "pairs": pairs,
            "captions": write_captions(pairs, tmp_path / name / "captions"),
            "entities": write_entities(pairs, tmp_path / name / "entities"),
        }
    return out
