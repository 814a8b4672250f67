"""Stage 1: layouts of the four datasets, pairing rules, every broken-input case, determinism, real data."""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from entitylabel.cli import main
from entitylabel.discover import detect_layout, discover, run_discover
from entitylabel.errors import EntityLabelError
from entitylabel.pairs import load_pairs, safe_name


def img(path: Path, size=(32, 24), mode="L", value=100, fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((size[1], size[0]) + ((3,) if mode == "RGB" else ()), value, dtype=np.uint8)
    if mode == "I;16":
        Image.fromarray(np.full((size[1], size[0]), 30000, dtype=np.uint16)).save(path)
    else:
        Image.fromarray(arr, mode=mode).save(path, format=fmt)
    return path


def pair(root: Path, ir_dir: str, vis_dir: str, stem: str, ext_ir=".png", ext_vis=".png", ir_mode="L") -> None:
    img(root / ir_dir / f"{stem}{ext_ir}", mode=ir_mode)
    img(root / vis_dir / f"{stem}{ext_vis}", mode="RGB")


def test_roadscene_pairs_only_the_aligned_folders(tmp_path: Path) -> None:
    for stem in ("FLIR_00006", "FLIR_00018"):
        pair(tmp_path, "cropinfrared", "crop_LR_visible", stem, ext_ir=".jpg", ext_vis=".jpg")
        img(tmp_path / "crop_HR_visible" / f"{stem}.jpg", size=(96, 72), mode="RGB")
        img(tmp_path / "infrared" / f"{stem}.jpg", size=(64, 48))
    (tmp_path / "cropinfrared" / "Thumbs.db").write_bytes(b"\x00junk")
    (tmp_path / "crop_LR_visible" / "Thumbs.db").write_bytes(b"\x00junk")
    res = discover(tmp_path)
    assert res.layout == "roadscene"
    assert res.pairs.ir_path.str.startswith("cropinfrared/").all()
    assert res.pairs.vis_path.str.startswith("crop_LR_visible/").all()
    assert len(res.pairs) == 2 and len(res.problems) == 0
    assert len(res.ignored) == 2  # Thumbs.db counted as ignored, not paired, not a problem


def test_msrs_splits_from_folders(tmp_path: Path) -> None:
    for split, stems in (("train", ["00001D", "00003N"]), ("test", ["00004N"])):
        for stem in stems:
            pair(tmp_path / split, "ir", "vi", stem)
    (tmp_path / "Segmentation_labels").mkdir()
    res = discover(tmp_path / ".", dataset="msrs")
    assert res.layout == "msrs"
    assert sorted(res.pairs.pair_id) == ["msrs-test-00004N", "msrs-train-00001D", "msrs-train-00003N"]
    assert dict(zip(res.pairs.pair_id, res.pairs.split, strict=True)) == {
        "msrs-test-00004N": "test",
        "msrs-train-00001D": "train",
        "msrs-train-00003N": "train",
    }


def test_m3fd_official_and_copies(tmp_path: Path) -> None:
    official = tmp_path / "M3FD_Fusion"
    pair(official, "Ir", "Vis", "00000")
    (official / "Annotation").mkdir()
    (official / "Annotation" / "00000.xml").write_text("<annotation/>")
    res = discover(official)
    assert res.layout == "m3fd" and res.dataset == "m3fd_fusion" and list(res.pairs.pair_id) == ["m3fd_fusion-00000"]
    assert len(res.problems) == 0  # annotations are beside, not inside, the image folders

    copy = tmp_path / "M3FD"
    pair(copy, "ir", "vi", "00001")
    assert discover(copy).layout == "tno"


@pytest.mark.parametrize(
    ("ir_dir", "vis_dir"),
    [("ir", "vi"), ("ir", "vis"), ("Inf", "Vis"), ("Infrared", "Visible"), ("IR", "VI")],
)
def test_tno_style_spellings(tmp_path: Path, ir_dir: str, vis_dir: str) -> None:
    pair(tmp_path / "TNO", ir_dir, vis_dir, "01", ir_mode="RGB")  # 3-channel gray IR is normal
    res = discover(tmp_path / "TNO")
    assert res.layout in ("tno", "m3fd") and len(res.pairs) == 1 and len(res.problems) == 0
    assert res.pairs.ir_mode.iloc[0] == "RGB"


def test_generic_sibling_folders_and_nested_splits(tmp_path: Path) -> None:
    pair(tmp_path / "mine", "thermal_frames", "rgb_frames", "a")
    res = discover(tmp_path / "mine")
    assert res.layout == "generic" and list(res.pairs.pair_id) == ["mine-a"]

    pair(tmp_path / "nested" / "day", "lwir", "visible", "x")
    pair(tmp_path / "nested" / "night", "lwir", "visible", "x")
    res = discover(tmp_path / "nested")
    assert sorted(res.pairs.split) == ["day", "night"]
    assert sorted(res.pairs.pair_id) == ["nested-day-x", "nested-night-x"]


def test_pairs_by_stem_across_extensions(tmp_path: Path) -> None:
    pair(tmp_path, "ir", "vi", "a", ext_ir=".png", ext_vis=".jpg")
    pair(tmp_path, "ir", "vi", "b", ext_ir=".bmp", ext_vis=".tiff")
    res = discover(tmp_path)
    assert list(res.pairs.vis_path) == ["vi/a.jpg", "vi/b.tiff"]


def test_no_layout_is_one_clear_error(tmp_path: Path) -> None:
    img(tmp_path / "images" / "a.png")
    with pytest.raises(EntityLabelError, match="no infrared/visible folders found"):
        discover(tmp_path)
    with pytest.raises(EntityLabelError, match="unknown layout"):
        detect_layout(tmp_path, "flir")
    with pytest.raises(EntityLabelError, match="does not look like the msrs layout"):
        detect_layout(tmp_path, "msrs")


def broken_tree(root: Path) -> None:
    """Good pairs beside every kind of broken input discovery must report."""
    pair(root, "ir", "vi", "good1")
    pair(root, "ir", "vi", "good2", ext_vis=".jpg")
    pair(root, "ir", "vi", "corrupt")
    (root / "ir" / "corrupt.png").write_bytes(b"this is not a png at all")
    pair(root, "ir", "vi", "trunc")
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(buf, format="JPEG")
    (root / "vi" / "trunc.png").unlink()
    (root / "vi" / "trunc.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    pair(root, "ir", "vi", "empty")
    (root / "vi" / "empty.png").write_bytes(b"")
    (root / "ir" / "notes.txt").write_text("calibration notes")
    pair(root, "ir", "vi", "dup")
    img(root / "ir" / "dup.jpg", fmt="JPEG")
    img(root / "ir" / "lonely_ir.png")
    img(root / "vi" / "lonely_vis.png", mode="RGB")
    img(root / "ir" / "sizes.png", size=(32, 24))
    img(root / "vi" / "sizes.png", size=(40, 24), mode="RGB")
    img(root / "ir" / "hot16.png", mode="I;16")
    img(root / "vi" / "hot16.png", mode="RGB")
    pair(root, "ir", "vi", "locked")


def test_every_broken_case_is_reported_and_good_pairs_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken_tree(tmp_path)
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:  # root can read anything: simulate a permission error
        if self.name == "locked.png" and self.parent.name == "ir":
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    res = discover(tmp_path)
    kinds = {(r.path, r.kind) for r in res.problems.itertuples()}
    assert kinds == {
        ("ir/corrupt.png", "corrupt"),
        ("vi/trunc.jpg", "corrupt"),
        ("vi/empty.png", "empty_file"),
        ("ir/notes.txt", "not_image"),
        ("ir/dup.png", "duplicate_stem"),
        ("ir/dup.jpg", "duplicate_stem"),
        ("ir/lonely_ir.png", "missing_vis"),
        ("vi/lonely_vis.png", "missing_ir"),
        ("ir/sizes.png", "size_mismatch"),
        ("ir/hot16.png", "ir_16bit"),
        ("ir/locked.png", "unreadable"),
    }
    # the good pairs and the 16-bit one (a warning, not an error) are in the manifest
    assert sorted(res.pairs.pair_id) == [f"{tmp_path.name.lower()}-{s}" for s in ("good1", "good2", "hot16")]
    warn = res.problems[res.problems.kind == "ir_16bit"].iloc[0]
    assert warn.severity == "warning" and "16" in res.pairs.set_index("pair_id").ir_mode.iloc[-1]
    assert (res.problems[res.problems.kind != "ir_16bit"].severity == "error").all()
    assert "truncated" in res.problems.set_index("path").loc["vi/trunc.jpg", "message"]
    summary = res.summary()["problems"]
    assert summary["duplicate_stem"] == 2 and sum(summary.values()) == len(res.problems)


def test_manifest_written_deterministically_and_loads(tmp_path: Path) -> None:
    broken_tree(tmp_path / "data")
    a = run_discover(tmp_path / "data", tmp_path / "a")
    run_discover(tmp_path / "data", tmp_path / "b")
    for name in ("pairs.parquet", "problems.parquet", "discover.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    m = load_pairs(tmp_path / "a")
    assert m.root == (tmp_path / "data").resolve() and len(m) == len(a.pairs)
    row = m.df.iloc[0]
    assert m.ir_abspath(row).is_file() and m.vis_abspath(row).is_file()
    assert pd.read_parquet(tmp_path / "a" / "problems.parquet").shape[0] == len(a.problems)
    assert m.df.width.dtype == "int32"


def test_cli_strict_exit_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken_tree(tmp_path / "data")
    with pytest.raises(SystemExit) as e:
        main(["discover", str(tmp_path / "data"), "--out", str(tmp_path / "o"), "--strict"])
    assert e.value.code == 1
    assert (tmp_path / "o" / "pairs.parquet").is_file()  # written before failing: nothing is lost
    main(["discover", str(tmp_path / "data"), "--out", str(tmp_path / "o2")])
    printed = capsys.readouterr().out
    assert "layout tno" in printed and "size_mismatch" in printed


def test_cli_user_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["discover", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "nope" in err and "\n" not in err and "Traceback" not in err


def test_real_roadscene_221_pairs(shared_data: Path) -> None:
    res = discover(shared_data / "RoadScene")
    assert res.layout == "roadscene" and len(res.pairs) == 221
    assert not res.pairs.ir_path.str.contains("crop_HR_visible|^infrared/").any()
    assert (res.problems.severity == "error").sum() == 0
    assert res.pairs.pair_id.is_unique and res.pairs.pair_id.iloc[0] == "roadscene-FLIR_00006"


def test_real_tno_25_pairs(shared_data: Path) -> None:
    res = discover(shared_data / "TNO")
    assert res.layout == "tno" and len(res.pairs) == 25 and len(res.problems) == 0
    assert set(res.pairs.ir_mode) == {"RGB"}  # 3-channel gray IR is normal


def test_file_name_that_is_not_utf8_is_a_problem_row(tmp_path: Path) -> None:
    pair(tmp_path, "ir", "vi", "good")
    for sub in ("ir", "vi"):  # a name from a Latin-1 file system: byte 0xff is not valid UTF-8
        img(Path(os.fsdecode(os.fsencode(tmp_path / sub) + b"/caf\xe9.png")))
    (tmp_path / "vi" / ".hidden").mkdir()
    img(Path(os.fsdecode(os.fsencode(tmp_path / "vi" / ".hidden") + b"/\xff.png")))  # ignored, still listed
    res = run_discover(tmp_path, tmp_path / "out")  # writes the manifest: every string must be valid UTF-8
    assert list(res.pairs.pair_id) == [f"{tmp_path.name.lower()}-good"]
    bad = res.problems[res.problems.kind == "bad_file_name"]
    assert sorted(bad.path) == ["ir/caf\\xe9.png", "vi/caf\\xe9.png"]
    assert (bad.severity == "error").all() and bad.message.str.contains("not valid UTF-8").all()
    assert res.ignored == ["vi/.hidden/\\xff.png"]
    assert len(pd.read_parquet(tmp_path / "out" / "problems.parquet")) == len(res.problems)


@pytest.mark.parametrize(
    ("stems", "plain"),
    [
        (["ä", "ö"], None),  # both sanitise to "_": neither keeps the plain id
        (["a b", "a_b"], "a_b"),  # the name that was already safe keeps its id
        (["東京", "大阪", "x"], None),  # names made only of CJK characters
    ],
)
def test_names_that_collide_after_sanitising_get_unique_ids(tmp_path: Path, stems: list[str], plain) -> None:
    for stem in stems:
        pair(tmp_path / "d", "ir", "vi", stem)
    res = discover(tmp_path / "d")
    ids = dict(zip(res.pairs.ir_path, res.pairs.pair_id, strict=True))
    assert len(ids) == len(stems) and len(set(ids.values())) == len(stems) and len(res.problems) == 0
    for stem in stems:
        pid = ids[f"ir/{stem}.png"]
        base = f"d-{safe_name(stem)}"
        if stem == plain or stem == "x":
            assert pid == base  # no collision, or the already-safe name: unchanged
        else:
            assert re.fullmatch(re.escape(base) + r"-[0-9a-f]{8}", pid), pid  # readable stem + short hash
    # deterministic and independent of what else is in the tree: a tree with more files gives the same ids
    for stem in [*reversed(stems), "zz"]:
        pair(tmp_path / "e", "ir", "vi", stem)
    again = discover(tmp_path / "e", dataset="d")
    assert dict(zip(again.pairs.ir_path, again.pairs.pair_id, strict=True)) == {**ids, "ir/zz.png": "d-zz"}


def test_collision_with_an_unpaired_file_names_each_problem_row_apart(tmp_path: Path) -> None:
    pair(tmp_path, "ir", "vi", "a_b")
    img(tmp_path / "ir" / "a b.png")  # IR only: its problem row must not carry the good pair's id
    res = discover(tmp_path)
    base = f"{tmp_path.name.lower()}-a_b"
    assert list(res.pairs.pair_id) == [base]
    row = res.problems.set_index("path").loc["ir/a b.png"]
    assert row.kind == "missing_vis" and row.pair_id.startswith(base + "-")


def test_huge_image_is_a_warning_row_not_a_raw_warning(tmp_path: Path) -> None:
    pair(tmp_path, "ir", "vi", "big")
    limit = Image.MAX_IMAGE_PIXELS
    try:  # the real case is 13000x13000 > PIL's 89.5 Mpx; the limit is scaled down so the test stays small
        Image.MAX_IMAGE_PIXELS = 32 * 24 - 1
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            res = discover(tmp_path)
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    assert not [w for w in seen if issubclass(w.category, Image.DecompressionBombWarning)]
    probs = res.problems.set_index("path")
    assert set(probs.index) == {"ir/big.png", "vi/big.png"} and set(probs.kind) == {"large_image"}
    assert set(probs.severity) == {"warning"} and "768 pixels" in probs.loc["ir/big.png", "message"]
    assert len(res.pairs) == 1  # a warning keeps the pair


def test_image_over_twice_the_limit_is_an_error_row(tmp_path: Path) -> None:
    pair(tmp_path, "ir", "vi", "ok")
    img(tmp_path / "ir" / "bomb.png", size=(64, 48))
    img(tmp_path / "vi" / "bomb.png", size=(64, 48), mode="RGB")
    limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = 32 * 24
        res = discover(tmp_path)
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    assert list(res.pairs.pair_id) == [f"{tmp_path.name.lower()}-ok"]
    probs = res.problems.set_index("path")
    assert set(probs.kind) == {"too_large"} and set(probs.index) == {"ir/bomb.png", "vi/bomb.png"}
    assert "3072 pixels" in probs.loc["ir/bomb.png", "message"]


def test_split_folders_that_sanitise_alike_keep_both(tmp_path: Path) -> None:
    for split in ("night a", "night_a"):  # generic layout: both split folders become split "night_a"
        pair(tmp_path / split, "infrared", "visible", "001")
    res = discover(tmp_path, dataset="g")
    assert len(res.pairs) == 2 and res.pairs.pair_id.is_unique and len(res.problems) == 0
    ids = dict(zip(res.pairs.ir_path, res.pairs.pair_id, strict=True))
    assert ids["night_a/infrared/001.png"] == "g-night_a-001"  # the already-safe folder keeps the plain id
    assert re.fullmatch(r"g-night_a-001-[0-9a-f]{8}", ids["night a/infrared/001.png"])


def test_fifo_named_like_an_image_is_a_problem_not_a_hang(tmp_path: Path) -> None:
    import threading
    import time

    pair(tmp_path, "ir", "vi", "good")
    img(tmp_path / "vi" / "pipe.png")
    fifo = tmp_path / "ir" / "pipe.png"
    os.mkfifo(fifo)  # reading it would block until something writes: discover must not open it

    done = threading.Event()

    def unblock() -> None:  # if discover does open it, give it EOF so the test fails instead of hanging
        while not done.is_set():
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # succeeds only while a reader waits
                return
            except OSError:
                time.sleep(0.02)

    helper = threading.Thread(target=unblock, daemon=True)
    helper.start()
    res = discover(tmp_path)
    done.set()
    helper.join()
    assert list(res.pairs.pair_id) == [f"{tmp_path.name.lower()}-good"]
    row = res.problems.set_index("path").loc["ir/pipe.png"]
    assert row.kind == "not_regular_file" and row.severity == "error" and "FIFO" in row.message


def test_long_names_and_dotted_dataset_names_still_give_plain_file_name_ids(tmp_path: Path) -> None:
    from entitylabel.io import safe_child

    long_a, long_b = "x" * 230 + "a", "x" * 230 + "b"  # valid file names; "<dataset>-<stem>.png" would not be
    for stem in (long_a, long_b, "short"):
        pair(tmp_path / ".data", "ir", "vi", stem)
    res = discover(tmp_path / ".data")
    ids = dict(zip(res.pairs.ir_path, res.pairs.pair_id, strict=True))
    assert ids["ir/short.png"] == "data-short" and len(res.problems) == 0
    for stem in (long_a, long_b):
        assert len(ids[f"ir/{stem}.png"]) <= 200 and ids[f"ir/{stem}.png"].startswith("data-" + "x" * 150)
    assert len(set(ids.values())) == 3
    for pid in ids.values():
        safe_child(tmp_path, pid, ".problems.parquet")  # what later stages build from an id: never refused


def test_dataset_root_that_is_not_utf8_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(os.fsdecode(os.fsencode(tmp_path) + b"/data\xff"))
    pair(root, "ir", "vi", "a")
    with pytest.raises(SystemExit) as e:
        main(["discover", str(root), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "data\\xff" in err and "not valid UTF-8" in err and "Traceback" not in err


def test_folder_that_cannot_be_listed_is_a_problem_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pair(tmp_path, "ir", "vi", "good")
    pair(tmp_path, "ir/night", "vi/night", "dark")
    real_scandir = os.scandir

    def scandir(path=".", *args, **kw):  # root can list anything: simulate a folder owned by someone else
        if Path(os.fsdecode(path)) == tmp_path / "ir" / "night":
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real_scandir(path, *args, **kw)

    monkeypatch.setattr(os, "scandir", scandir)
    res = discover(tmp_path)
    assert list(res.pairs.pair_id) == [f"{tmp_path.name.lower()}-good"]
    probs = res.problems.set_index("path")
    assert probs.loc["ir/night", "kind"] == "unreadable" and "Permission denied" in probs.loc["ir/night", "message"]
    assert probs.loc["vi/night/dark.png", "kind"] == "missing_ir"  # its partner is not silently dropped either
