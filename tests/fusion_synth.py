"""Synthetic IR/VIS pairs and tiny fusion configs shared by the tests/test_fusion_*.py files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from entitylabel.fusion.config import FusionConfig

LABELS = ["car", "person", "tree"]


def tiny_config(**kw) -> FusionConfig:
    """A few-thousand-parameter model and small patches: each step takes milliseconds on a CPU."""
    base = dict(width=4, dim=8, heads=2, kv_grid=4, patch_size=24, batch_size=4, warmup_steps=2,
                log_steps=1, checkpoint_minutes=60.0, checkpoint_steps=1000, lr=3e-3)  # fmt: skip
    base.update(kw)
    return FusionConfig(**base)


def synth_pair(seed: int, h: int = 36, w: int = 44, person: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """IR: dark background with a hot blob when `person`; VIS: RGB texture. uint8 (H,W) and (H,W,3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    ir = 40 + 20 * rng.random((h, w))
    if person:
        cy, cx = rng.integers(0, h), rng.integers(0, w)
        ir += 180 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 30.0)
    vis = 100 + 60 * np.sin(xx / 3.0 + seed) * np.cos(yy / 4.0) + 20 * rng.random((h, w))
    rgb = np.dstack([vis, vis * 0.9, vis * 0.7])
    return np.clip(ir, 0, 255).astype(np.uint8), np.clip(rgb, 0, 255).astype(np.uint8)


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def make_dataset(n: int = 8, labels: list[str] | None = LABELS, with_entities: bool = True):
    """A `datasets.Dataset` shaped like an export config (Image columns, List(ClassLabel) entities)."""
    import datasets

    rows: dict[str, list] = {"pair_id": [], "ir": [], "vis": [], "width": [], "height": []}
    ents = []
    for i in range(n):
        person = i % 2 == 0
        ir, vis = synth_pair(i, person=person)
        rows["pair_id"].append(f"synth-{i:02d}")
        rows["ir"].append({"bytes": png_bytes(ir), "path": None})
        rows["vis"].append({"bytes": png_bytes(vis), "path": None})
        rows["width"].append(ir.shape[1])
        rows["height"].append(ir.shape[0])
        ents.append((["person"] if person else []) + (["tree"] if i % 3 == 0 else []))
    feats = {"pair_id": datasets.Value("string"), "ir": datasets.Image(), "vis": datasets.Image(),
             "width": datasets.Value("int32"), "height": datasets.Value("int32")}  # fmt: skip
    if with_entities and labels is not None:
        rows["entities"] = [[e for e in es if e in labels] for es in ents]
        feats["entities"] = datasets.List(datasets.ClassLabel(names=labels))
    return datasets.Dataset.from_dict(rows, features=datasets.Features(feats))


def save_dataset_folder(ds, root: Path, config: str = "synth") -> Path:
    """data/<config>/train-00000-of-00001.parquet, the export layout without a card."""
    path = root / "data" / config / "train-00000-of-00001.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(path))
    return root


def write_pair_folder(root: Path, sizes: dict[str, tuple[tuple[int, int], tuple[int, int]]]) -> Path:
    """root/ir/<stem>.png (gray) + root/vi/<stem>.png (RGB) with the given (h, w) sizes per stem."""
    (root / "ir").mkdir(parents=True, exist_ok=True)
    (root / "vi").mkdir(parents=True, exist_ok=True)
    for k, (stem, ((hi, wi), (hv, wv))) in enumerate(sorted(sizes.items())):
        ir, _ = synth_pair(k, hi, wi)
        _, vis = synth_pair(k, hv, wv)
        Image.fromarray(ir).save(root / "ir" / f"{stem}.png")
        Image.fromarray(vis).save(root / "vi" / f"{stem}.png")
    return root
