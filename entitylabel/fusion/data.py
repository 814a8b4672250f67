"""Training data: a released dataset -> decoded gray pairs -> random patch batches.

The network sees the infrared image as gray and the visible image's luminance Y (ITU-R 601 YCbCr, as PIL
and JPEG use); colour output is the fused Y recombined with the visible Cb/Cr (`to_color`).

A released dataset is data from elsewhere. `open_dataset` checks a local release's data files before use (one
line naming the file, and the row, for a file that is not Parquet or an entity class index outside the label
space: `export.load.check_data_file`, the check `download` makes) and skips data files without rows (with a
warning); each row keeps where it came from (`ORIGIN_FILE`, `ORIGIN_ROW`). Images are decoded here, not by
`datasets` (`raw_images`), so a null or undecodable image is one `EntityLabelError` naming its file and row:
`fuse` reports that pair and fuses the rest, `train` checks every pair before training (`PairStore.check_all`).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import EntityLabelError
from ..images import load_image, to_8bit
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
ORIGIN_FILE = "_entitylabel_file"  # columns added to a local release's rows: data file (relative) and row in it
ORIGIN_ROW = "_entitylabel_row"


def _local_release(folder: Path, config: str | None) -> Any:
    """A local release (with a card, or a bare `data/<config>/<split>-*.parquet` folder), its files checked."""
    import datasets

    from ..export.load import check_data_file, config_data_files

    config, split_files = config_data_files(folder, config)
    data_files: dict[str, list[str]] = {}
    origins: dict[str, tuple[list[str], list[int]]] = {}
    empty = []
    for split, files in split_files.items():
        kept = []
        for f in files:
            info = check_data_file(f)  # not Parquet, or a class index outside the label space: one line
            (kept if info.num_rows else empty).append(info)
        if kept:
            data_files[split] = [str(i.path) for i in kept]
            rel = [i.path.relative_to(folder).as_posix() for i in kept]
            origins[split] = (
                [r for r, i in zip(rel, kept, strict=True) for _ in range(i.num_rows)],
                [k for i in kept for k in range(i.num_rows)],
            )
    if empty:  # datasets cannot read a Parquet file without rows; it holds no pair either
        names = ", ".join(i.path.relative_to(folder).as_posix() for i in empty)
        warnings.warn(f"{folder}: skipped {len(empty)} data file(s) without rows ({names})", stacklevel=3)
    if not data_files:
        raise EntityLabelError(f"config {config} has no rows in any data file", path=folder)
    ds = datasets.load_dataset("parquet", data_files=data_files)
    for split, (files, rows) in origins.items():
        ds[split] = ds[split].add_column(ORIGIN_FILE, files).add_column(ORIGIN_ROW, rows)
    return ds


def _check_entity_indexes(ds: Any, source: str) -> None:
    """A hub dataset's entity class indexes (a local one's files are checked before loading)."""
    from ..export.load import bad_entity_index, entity_index_error

    parts = {"": ds} if hasattr(ds, "features") else dict(ds)
    for split, part in parts.items():
        names = label_space(part)
        if names:
            bad = bad_entity_index(part.select_columns(["entities"])["entities"], len(names))
            if bad is not None:
                raise entity_index_error(bad[1], len(names), f"split {split} row {bad[0]}", source)


def open_dataset(source: Any, config: str | None = None) -> Any:
    """A `datasets.DatasetDict` / `Dataset` from an object, an export folder or a hub id."""
    if hasattr(source, "features") or hasattr(source, "keys"):  # a Dataset / DatasetDict (or look-alike)
        return source
    path = Path(str(source)).expanduser()
    if path.is_dir() and ((path / "README.md").is_file() or (path / "data").is_dir()):
        return _local_release(path, config)
    from ..export.load import load

    ds = load(source, config)
    _check_entity_indexes(ds, str(source))
    return ds


def raw_images(ds: Any) -> Any:
    """`ds` with its `ir` / `vis` image columns left undecoded (`{"bytes", "path"}`), so that a broken image is
    an error naming its row (see `decode_image`), not a traceback from inside `datasets`."""
    import datasets

    if hasattr(ds, "keys") and not hasattr(ds, "features"):
        return datasets.DatasetDict({k: raw_images(v) for k, v in ds.items()})
    for col in ("ir", "vis"):
        feat = getattr(ds, "features", {}).get(col)
        if isinstance(feat, datasets.Image) and feat.decode and hasattr(ds, "cast_column"):
            ds = ds.cast_column(col, datasets.Image(decode=False))
    return ds


def row_origin(row: dict[str, Any], index: int) -> str:
    """Where a row came from, for messages: `data/<config>/<file> row R (pair P)` or `row I (pair P)`."""
    pid = row.get("pair_id")
    at = f"{row[ORIGIN_FILE]} row {row[ORIGIN_ROW]}" if row.get(ORIGIN_FILE) is not None else f"row {index}"
    return f"{at} (pair {pid})" if pid is not None else at


def decode_image(value: Any, what: str, where: str) -> Image.Image:
    """A row's image: already decoded, or `{"bytes", "path"}` decoded here (upright, as datasets.Image does)."""
    if isinstance(value, Image.Image):
        return value
    data = value.get("bytes") if isinstance(value, dict) else None
    path = value.get("path") if isinstance(value, dict) else None
    if data is None and not path:
        raise EntityLabelError(f"{where}: no {what} image (null)", hint="the release is damaged; re-export it")
    try:
        return load_image(io.BytesIO(data) if data is not None else path)
    except UnidentifiedImageError:
        raise EntityLabelError(f"{where}: {what} image cannot be decoded (not an image format)") from None
    except Exception as e:  # PIL raises many types for broken data
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise EntityLabelError(f"{where}: {what} image cannot be decoded ({first})") from None


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
        self.ds = raw_images(ds)
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
        item = self._decode(int(i))
        if self.cache_bytes + item.ir.nbytes * 2 <= self.cache_limit:
            self.cache[i] = item
            self.cache_bytes += item.ir.nbytes * 2
        return item

    def _decode(self, i: int) -> PairData:
        row = self.ds[i]
        where = row_origin(row, i)
        ir = ir_gray(decode_image(row["ir"], "IR", where))
        vis, _ = vis_ycbcr(decode_image(row["vis"], "VIS", where))
        check_same_size(ir, vis, where)
        target = np.zeros(len(self.labels), dtype=np.float32)
        if self.has_labels:
            for k in row["entities"] or []:
                if isinstance(k, str) and k in self.labels:
                    k = self.labels.index(k)
                if not isinstance(k, int) or not 0 <= k < len(self.labels):
                    raise EntityLabelError(f"{where}: entity class index {k!r} is outside 0..{len(self.labels) - 1}")
                target[k] = 1.0
        return PairData(ir, vis, target)

    def check_all(self) -> None:
        """Decode every pair once, before any training time is spent: a null or broken image, IR/VIS sizes that
        differ or a bad class index is one error naming the row. What fits the cache is kept for training, so
        those pairs are not decoded twice."""
        for i in range(len(self.ds)):
            self.get(i)

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
