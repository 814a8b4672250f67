"""Training data: a released dataset -> decoded gray pairs -> random patch batches.

The network sees the infrared image as gray and the visible image's luminance Y (ITU-R 601 YCbCr, as PIL
and JPEG use); colour output is the fused Y recombined with the visible Cb/Cr (`to_color`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import EntityLabelError
from ..images import to_8bit
from .config import FusionConfig


# --- images -----------------------------------------------------------------------------------------
def ir_gray(img: Image.Image) -> np.ndarray:
    """8-bit gray (H,W) uint8 of an infrared image (16-bit stretched per image, colour -> luma)."""
    return np.asarray(to_8bit(img).convert("L"), dtype=np.uint8)


def vis_ycbcr(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """(Y (H,W) uint8, CbCr (H,W,2) uint8 or None for gray input) of a visible image."""
    img = to_8bit(img)
    if img.mode == "L":
        return np.asarray(img, dtype=np.uint8), None
    ycc = np.asarray(img.convert("RGB").convert("YCbCr"), dtype=np.uint8)
    return np.ascontiguousarray(ycc[..., 0]), np.ascontiguousarray(ycc[..., 1:])


def to_color(y: np.ndarray, cbcr: np.ndarray | None) -> Image.Image:
    """RGB image from a fused Y (uint8) and the visible Cb/Cr (gray visible input gives a gray RGB)."""
    if cbcr is None:
        return Image.fromarray(y, mode="L").convert("RGB")
    ycc = np.dstack([y, cbcr]).astype(np.uint8)
    return Image.fromarray(ycc, mode="YCbCr").convert("RGB")


def check_same_size(ir: np.ndarray, vis: np.ndarray, pair_id: str) -> None:
    if ir.shape[:2] != vis.shape[:2]:
        (hi, wi), (hv, wv) = ir.shape[:2], vis.shape[:2]
        raise EntityLabelError(
            f"IR is {wi}x{hi} but VIS is {wv}x{hv}; the pair must be pixel-aligned and the same size",
            path=pair_id,
        )


# --- datasets ---------------------------------------------------------------------------------------
def _parquet_folder(folder: Path, config: str | None) -> Any:
    """A `data/<config>/<split>-*.parquet` folder without a dataset card (e.g. built by a test)."""
    import datasets

    data = folder / "data"
    configs = sorted(p.name for p in data.iterdir() if p.is_dir()) if data.is_dir() else []
    if config is None:
        if len(configs) != 1:
            raise EntityLabelError(f"{len(configs)} configs here ({', '.join(configs)}); pass --config", path=folder)
        config = configs[0]
    if config not in configs:
        raise EntityLabelError(f"config {config!r} not found (configs: {', '.join(configs)})", path=folder)
    files: dict[str, list[str]] = {}
    for f in sorted((data / config).glob("*.parquet")):
        files.setdefault(f.name.split("-")[0], []).append(str(f))
    return datasets.load_dataset("parquet", data_files=files)


def open_dataset(source: Any, config: str | None = None) -> Any:
    """A `datasets.DatasetDict` / `Dataset` from an object, an export folder or a hub id."""
    if hasattr(source, "features") or hasattr(source, "keys"):  # a Dataset / DatasetDict (or look-alike)
        return source
    path = Path(str(source)).expanduser()
    if path.is_dir() and not (path / "README.md").is_file() and (path / "data").is_dir():
        return _parquet_folder(path, config)
    from ..export.load import load

    return load(source, config)


def pick_split(ds: Any, split: str = "train") -> Any:
    """The `split` of a DatasetDict; the default "train" joins all splits when there is none of that name, any
    other name must exist (a typo must not train on every split, test included)."""
    if hasattr(ds, "features"):  # already one split
        return ds
    if split in ds:
        return ds[split]
    if split != "train":
        raise EntityLabelError(f"no split named {split!r} in this dataset (it has {', '.join(sorted(ds))})")
    import datasets

    return datasets.concatenate_datasets([ds[k] for k in sorted(ds)])


def label_space(ds: Any) -> list[str]:
    """Label names of the `entities` column (`List(ClassLabel)`); [] when the dataset has none."""
    feats = ds.features
    if "entities" not in feats:
        return []
    names = getattr(feats["entities"].feature, "names", None)
    return list(names or [])


@dataclass
class PairData:
    ir: np.ndarray  # (H,W) uint8
    vis: np.ndarray  # (H,W) uint8 (Y)
    target: np.ndarray  # (K,) float32 multi-hot


class PairStore:
    """Decoded gray pairs of a dataset, decoded once on first use and cached up to `cache_mb`."""

    def __init__(self, ds: Any, labels: list[str], cache_mb: int = 4096) -> None:
        for col in ("ir", "vis"):
            if col not in ds.features:
                raise EntityLabelError(f"dataset has no {col!r} column (columns: {', '.join(ds.features)})")
        self.ds = ds
        self.labels = labels
        self.has_labels = bool(labels) and "entities" in ds.features
        self.cache: dict[int, PairData] = {}
        self.cache_bytes = 0
        self.cache_limit = cache_mb << 20

    def __len__(self) -> int:
        return len(self.ds)

    def get(self, i: int) -> PairData:
        if i in self.cache:
            return self.cache[i]
        row = self.ds[int(i)]
        pid = str(row.get("pair_id", i))
        ir = ir_gray(row["ir"])
        vis, _ = vis_ycbcr(row["vis"])
        check_same_size(ir, vis, pid)
        target = np.zeros(len(self.labels), dtype=np.float32)
        if self.has_labels:
            for k in row["entities"] or []:
                target[self.labels.index(k) if isinstance(k, str) else int(k)] = 1.0
        item = PairData(ir, vis, target)
        if self.cache_bytes + ir.nbytes * 2 <= self.cache_limit:
            self.cache[i] = item
            self.cache_bytes += ir.nbytes * 2
        return item

    def any_labels(self) -> bool:
        """Whether at least one pair carries an entity label (else the entity task cannot train)."""
        if not self.has_labels:
            return False
        col = self.ds.select_columns(["entities"])
        return any(len(r or []) for r in col["entities"])


class PatchSampler:
    """Random patch batches (B,1,P,P) in 0..1 with flips, plus the (B,K) label targets of their pairs."""

    def __init__(self, store: PairStore, cfg: FusionConfig) -> None:
        self.store = store
        self.cfg = cfg

    def _crop(self, pair: PairData, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        p = self.cfg.patch_size
        ir, vis = pair.ir, pair.vis
        h, w = ir.shape
        if h < p or w < p:  # small images: reflect-pad up to the patch size
            pad = ((0, max(0, p - h)), (0, max(0, p - w)))
            ir, vis = np.pad(ir, pad, mode="reflect"), np.pad(vis, pad, mode="reflect")
            h, w = ir.shape
        y, x = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
        a, b = ir[y : y + p, x : x + p], vis[y : y + p, x : x + p]
        if self.cfg.hflip and rng.random() < 0.5:
            a, b = a[:, ::-1], b[:, ::-1]
        if self.cfg.vflip and rng.random() < 0.5:
            a, b = a[::-1], b[::-1]
        return a, b

    def batch(self, rng: np.random.Generator, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = rng.integers(0, len(self.store), size=batch_size)
        irs, viss, targets = [], [], []
        for i in idx:
            pair = self.store.get(int(i))
            a, b = self._crop(pair, rng)
            irs.append(a)
            viss.append(b)
            targets.append(pair.target)

        ir = np.stack(irs)[:, None].astype(np.float32) / 255.0
        vis = np.stack(viss)[:, None].astype(np.float32) / 255.0
        if self.cfg.light_aug > 0:
            ir, vis = light_augment(ir, vis, rng, self.cfg.light_aug)
        return torch.from_numpy(ir), torch.from_numpy(vis), torch.from_numpy(np.stack(targets))


def light_augment(
    ir: np.ndarray, vis: np.ndarray, rng: np.random.Generator, prob: float
) -> tuple[np.ndarray, np.ndarray]:
    """Random lighting per patch pair (B,1,P,P on 0..1), each pair with probability `prob`.

    The visible patch gets a gamma in [1/2, 2] (log-uniform: night-like dark to washed-out day) and a gain in
    [0.7, 1.2]; the infrared patch a gamma in [0.8, 1.25] and a gain in [0.4, 1.1] (a sunlit scene is thermally
    flat and dark in IR). The losses' targets follow the changed patches, so the model learns to keep whichever
    source is lit, whatever the light.
    """
    b = ir.shape[0]
    shape = (b, 1, 1, 1)
    on = (rng.random(b) < prob).reshape(shape)
    g_vis = np.exp(rng.uniform(np.log(0.5), np.log(2.0), b)).reshape(shape)
    k_vis = rng.uniform(0.7, 1.2, b).reshape(shape)
    g_ir = np.exp(rng.uniform(np.log(0.8), np.log(1.25), b)).reshape(shape)
    k_ir = rng.uniform(0.4, 1.1, b).reshape(shape)
    vis = np.where(on, np.clip(vis**g_vis * k_vis, 0, 1), vis)
    ir = np.where(on, np.clip(ir**g_ir * k_ir, 0, 1), ir)
    return ir.astype(np.float32), vis.astype(np.float32)


def warn_fusion_only(reason: str) -> None:
    warnings.warn(f"{reason}: training fusion only (no entity classification / entity attention)", stacklevel=3)
