"""EXIF orientation: one rule everywhere (issue 20 item 3). Every image reader applies the orientation, as the
released dataset's decoder (`datasets.Image`) does; discover records sizes after it, compares IR/VIS after it
and warns (`exif_rotated`) when a file carries one."""

from __future__ import annotations

import base64
import io
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fusion_synth import tiny_config
from PIL import Image

from entitylabel.caption.loader import _decode
from entitylabel.discover import run_discover
from entitylabel.fusion.data import PairStore, open_dataset, pick_split
from entitylabel.fusion.fuse import _open_pair
from entitylabel.report.thumbs import thumbnail_b64


def _scene(w: int, h: int) -> np.ndarray:
    """Upright content that tells every orientation apart: dark left, bright right, a bright top-left block."""
    arr = np.zeros((h, w), np.uint8)
    arr[:, w // 2 :] = 200
    arr[: h // 4, : w // 4] = 255
    return arr


def _stored_for(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a camera stores so that applying `orientation` shows `upright`."""
    return {3: np.rot90(upright, 2), 6: np.rot90(upright, 1)}[orientation]  # 6 = shown turned 90° clockwise


def _jpeg(path: Path, gray: np.ndarray, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.dstack([gray] * 3)).save(path, format="JPEG", quality=95, exif=exif.tobytes())


@pytest.fixture
def rotated_dataset(tmp_path: Path) -> Path:
    """tno layout: `sq` (48x48, VIS with orientation 3) and `wide` (64x40, VIS stored 40x64, orientation 6)."""
    root = tmp_path / "ds"
    (root / "ir").mkdir(parents=True)
    (root / "vi").mkdir()
    for stem, (w, h), turn in (("sq", (48, 48), 3), ("wide", (64, 40), 6)):
        Image.fromarray(_scene(w, h)).save(root / "ir" / f"{stem}.png")
        _jpeg(root / "vi" / f"{stem}.jpg", _stored_for(_scene(w, h), turn), turn)
    return root


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and float(np.abs(a.astype(float) - b.astype(float)).mean()) < 6  # JPEG noise


def test_discover_keeps_both_pairs_upright_and_warns(rotated_dataset: Path, tmp_path: Path) -> None:
    res = run_discover(rotated_dataset, tmp_path / "out", workers=1)
    pairs = res.pairs.set_index("pair_id")
    assert sorted(pairs.index) == ["ds-sq", "ds-wide"]  # orientation 6 is no size mismatch once upright
    assert (pairs.loc["ds-wide", "width"], pairs.loc["ds-wide", "height"]) == (64, 40)
    probs = pd.read_parquet(tmp_path / "out" / "problems.parquet")
    rot = probs[probs["kind"] == "exif_rotated"].sort_values("pair_id")
    assert rot["pair_id"].tolist() == ["ds-sq", "ds-wide"] and set(rot["severity"]) == {"warning"}
    assert "EXIF orientation 3" in rot["message"].iloc[0] and "EXIF orientation 6" in rot["message"].iloc[1]


@pytest.mark.parametrize(("stem", "size"), [("sq", (48, 48)), ("wide", (64, 40))])
def test_every_reader_sees_the_upright_image(rotated_dataset: Path, stem: str, size: tuple[int, int]) -> None:
    want = _scene(*size)
    vis = rotated_dataset / "vi" / f"{stem}.jpg"
    _, fused_vis = _open_pair(rotated_dataset / "ir" / f"{stem}.png", vis)()  # fuse / validate
    assert _close(np.asarray(fused_vis.convert("L")), want)
    img, err = _decode(vis)  # caption
    assert err is None and _close(np.asarray(img.convert("L")), want)
    thumb = Image.open(io.BytesIO(base64.b64decode(thumbnail_b64(vis, size=32))))  # review page
    assert (thumb.width >= thumb.height) == (size[0] >= size[1])
    assert _close(np.asarray(thumb.convert("L").resize(size)), want)


def test_export_then_train_pairs_the_upright_images(rotated_dataset: Path, tmp_path: Path) -> None:
    from datasets import Image as HFImage

    from entitylabel.export.stage import run_export
    from entitylabel.fusion.train import train

    run_discover(rotated_dataset, tmp_path / "run", workers=1)
    run_export(tmp_path / "run" / "pairs.parquet", tmp_path / "rel", "tno", test_fraction=0.0)
    ds = pick_split(open_dataset(tmp_path / "rel"), "train")
    store = PairStore(ds, [])
    decoder = HFImage()
    for i in range(len(ds)):
        pair = store.get(i)
        assert _close(pair.vis, pair.ir)  # the VIS Y equals the IR scene: aligned, not turned
        raw = store.ds[i]["vis"]  # the release's own decoder gives the same pixels
        hf = np.asarray(decoder.decode_example(raw).convert("YCbCr"))[..., 0]
        assert np.array_equal(hf, pair.vis)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert train(tmp_path / "rel", tmp_path / "train", tiny_config(), steps=1).step == 1
