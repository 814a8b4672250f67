"""`evaluate`: matching fused files to pairs, baselines, bad input, deterministic CSV/JSON, the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from entitylabel.cli import main
from entitylabel.errors import EntityLabelError
from entitylabel.fusion import metrics as M
from entitylabel.fusion.evaluate import evaluate, match_fused, summarize
from entitylabel.io import write_parquet
from entitylabel.pairs import PAIRS_SCHEMA, ROOT_KEY, load_pairs

H, W = 72, 88


def _img(seed: int, h: int = H, w: int = W) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = 110 + 50 * np.sin(x / (5 + seed % 4)) * np.cos(y / 7) + rng.normal(0, 10, (h, w))
    return np.clip(np.rint(base), 0, 255).astype(np.uint8)


def _write_pairs(
    root: Path, specs: list[tuple[str, str, str]], sizes: dict[str, tuple[int, int]] | None = None
) -> Path:
    """specs: (pair_id, split, stem); IR gray PNG, VIS RGB PNG. Returns the pairs.parquet path."""
    rows = []
    for i, (pid, split, stem) in enumerate(specs):
        sub = "" if split == "all" else f"{split}/"
        ir_rel, vis_rel = f"{sub}ir/{stem}.png", f"{sub}vi/{stem}.png"
        (root / ir_rel).parent.mkdir(parents=True, exist_ok=True)
        (root / vis_rel).parent.mkdir(parents=True, exist_ok=True)
        vh, vw = (sizes or {}).get(pid, (H, W))
        Image.fromarray(_img(2 * i)).save(root / ir_rel)
        Image.fromarray(np.dstack([_img(2 * i + 1, vh, vw)] * 3)).save(root / vis_rel)
        rows.append(
            dict(pair_id=pid, dataset="syn", split=split, ir_path=ir_rel, vis_path=vis_rel, width=W, height=H,
                 ir_mode="L", vis_mode="RGB", ir_sha256="", vis_sha256="")
        )  # fmt: skip
    df = pd.DataFrame(rows).astype({"width": "int32", "height": "int32"})
    out = root.parent / f"{root.name}-run" / "pairs.parquet"
    write_parquet(df, out, schema=PAIRS_SCHEMA, metadata={ROOT_KEY: str(root)})
    return out


def _gray(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.float64)


@pytest.fixture()
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Five pairs; fused folder: by pair id (a, b), by stem (c), missing (d), wrong size (e), junk (f)."""
    root = tmp_path / "data"
    specs = [(f"syn-{s}", "all", s) for s in "abcdef"]
    pairs = _write_pairs(root, specs)
    fused = tmp_path / "fused"
    fused.mkdir()
    for pid, _, stem in specs:
        a, b = _gray(root / f"ir/{stem}.png"), _gray(root / f"vi/{stem}.png")
        img = Image.fromarray(np.maximum(a, b).astype(np.uint8))
        if stem in "ab":
            img.save(fused / f"{pid}.png")
        elif stem == "c":
            img.convert("RGB").save(fused / "c.png")  # colour output is scored on its luma
        elif stem == "e":
            img.resize((W // 2, H // 2)).save(fused / f"{pid}.png")
        elif stem == "f":
            (fused / f"{pid}.png").write_bytes(b"not a png")
    (fused / "notes.txt").write_text("ignored")
    return root, pairs, fused


def test_matching_statuses_and_means(setup, tmp_path: Path) -> None:
    root, pairs, fused = setup
    table = evaluate(fused, pairs, tmp_path / "out.csv", method="maxnet")
    img = table[table["kind"] == "image"]
    assert list(table.columns[:7]) == ["method", "kind", "pair_id", "status", "n", "fused_path", "error"]
    assert list(table.columns[7:]) == list(M.METRICS) + [f"n_{m}" for m in M.METRICS]
    mine = img[img["method"] == "maxnet"].set_index("pair_id")
    assert mine["status"].to_dict() == {
        "syn-a": "ok", "syn-b": "ok", "syn-c": "ok", "syn-d": "missing", "syn-e": "error", "syn-f": "error",
    }  # fmt: skip
    assert mine.loc["syn-c", "fused_path"] == "c.png"
    assert "syn-d.*" in mine.loc["syn-d", "error"] and "d.*" in mine.loc["syn-d", "error"]
    assert "44x36 but the pair is 88x72" in mine.loc["syn-e", "error"]
    assert "cannot read fused image" in mine.loc["syn-f", "error"]
    assert mine.loc["syn-d", M.METRICS].isna().all()
    # baselines score every pair; the saved pixel-max PNGs score exactly like the pixel-max baseline
    base = img[img["method"] == "pixel-max"].set_index("pair_id")
    assert (base["status"] == "ok").all() and len(base) == 6
    for pid in ("syn-a", "syn-b", "syn-c"):
        for m in M.METRICS:
            assert mine.loc[pid, m] == pytest.approx(base.loc[pid, m], rel=1e-12, abs=1e-15), (pid, m)
    # means over the pairs every method scored (a, b, c), one row per method in method order
    summary = summarize(table)
    assert list(summary.index) == ["maxnet", "pixel-mean", "pixel-max"]
    assert (summary["n"] == 3).all()
    ok3 = img[(img["method"] == "pixel-mean") & img["pair_id"].isin(["syn-a", "syn-b", "syn-c"])]
    assert summary.loc["pixel-mean", "VIF"] == pytest.approx(ok3["VIF"].mean())
    # the pixel-mean baseline is what an 8-bit PNG of (A+B)/2 holds
    a, b = _gray(root / "ir/a.png"), _gray(root / "vi/a.png")
    ref = M.compute_all(a, b, np.floor((a + b) / 2 + 0.5))
    got = img[(img["method"] == "pixel-mean") & (img["pair_id"] == "syn-a")].iloc[0]
    assert got["Qabf"] == pytest.approx(ref["Qabf"]) and got["EN"] == pytest.approx(ref["EN"])


def test_outputs_are_deterministic(setup, tmp_path: Path) -> None:
    _, pairs, fused = setup
    for suffix in (".csv", ".json"):
        p1, p2 = tmp_path / f"one{suffix}", tmp_path / f"two{suffix}"
        evaluate(fused, pairs, p1, baselines=("max",), workers=2)
        evaluate(fused, pairs, p2, baselines=("max",), workers=1)
        assert p1.read_bytes() == p2.read_bytes()
    doc = json.loads((tmp_path / "one.json").read_text())
    assert doc["metrics"] == list(M.METRICS) and doc["settings"]["mi_log_base"] == "e"
    assert [r["method"] for r in doc["summary"]] == ["fused", "pixel-max"]
    missing = next(r for r in doc["images"] if r["pair_id"] == "syn-d" and r["method"] == "fused")
    assert missing["status"] == "missing" and missing["VIF"] is None  # NaN becomes null
    csv = pd.read_csv(tmp_path / "one.csv")
    assert len(csv) == 6 * 2 + 2 and set(csv["kind"]) == {"image", "mean"}


def test_source_size_mismatch_and_shared_stems(tmp_path: Path) -> None:
    root = tmp_path / "data"
    specs = [("syn-train-01", "train", "01"), ("syn-test-01", "test", "01"), ("syn-bad", "all", "bad")]
    pairs = _write_pairs(root, specs, sizes={"syn-bad": (H, W + 4)})
    manifest = load_pairs(pairs)
    fused = tmp_path / "fused"
    fused.mkdir()
    Image.fromarray(_img(0)).save(fused / "01.png")  # stem shared by two pairs: matches neither
    Image.fromarray(_img(0)).save(fused / "syn-train-01.png")
    Image.fromarray(_img(0)).save(fused / "bad.png")
    m = match_fused(manifest, fused)
    assert m["syn-train-01"] == fused / "syn-train-01.png"
    assert isinstance(m["syn-test-01"], str) and m["syn-test-01"].startswith("missing")
    table = evaluate(fused, manifest, None, baselines=("mean",))
    bad = table[(table["pair_id"] == "syn-bad")]
    assert set(bad["status"]) == {"error"} and len(bad) == 2  # fused method and baseline alike
    assert bad["error"].str.contains("infrared is 88x72 but visible is 92x72").all()
    Image.fromarray(_img(0)).save(fused / "01.jpg")
    Image.fromarray(_img(0)).save(fused / "syn-test-01.jpg")
    Image.fromarray(_img(0)).save(fused / "syn-test-01.png")
    assert match_fused(manifest, fused)["syn-test-01"].startswith("ambiguous")


def test_bad_arguments_are_user_errors(setup, tmp_path: Path) -> None:
    _, pairs, fused = setup
    with pytest.raises(EntityLabelError, match="csv or"):
        evaluate(fused, pairs, tmp_path / "out.xlsx")
    with pytest.raises(EntityLabelError, match="unknown baseline"):
        evaluate(fused, pairs, None, baselines=("median",))
    with pytest.raises(EntityLabelError, match="not found"):
        evaluate(tmp_path / "nope", pairs, None)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EntityLabelError, match="no fused image matches"):
        evaluate(empty, pairs, None)
    with pytest.raises(EntityLabelError, match="baseline name"):
        evaluate(fused, pairs, None, method="pixel-max")
    with pytest.raises(EntityLabelError, match="not found"):
        evaluate(fused, tmp_path / "missing.parquet", None)
    only = evaluate(None, pairs, None, baselines=("max",))  # baselines alone
    assert set(only["method"]) == {"pixel-max"}


def test_cli_prints_table_and_writes_file(setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, pairs, fused = setup
    out = tmp_path / "res.json"
    main(["evaluate", str(fused), "--pairs", str(pairs.parent), "--baseline", "mean", "--baseline", "max",
          "--out", str(out), "--mi-log-base", "2"])  # fmt: skip
    text = capsys.readouterr().out
    assert "pixel-mean" in text and "pixel-max" in text and "Qabf" in text and "Nabf" in text
    doc = json.loads(out.read_text())
    assert doc["settings"]["mi_log_base"] == "2"
    nats = evaluate(fused, pairs, None, baselines=("max",))
    bits = next(r["MI"] for r in doc["summary"] if r["method"] == "pixel-max")
    assert bits == pytest.approx(summarize(nats).loc["pixel-max", "MI"] / math.log(2), rel=1e-5)
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(fused), "--pairs", str(pairs), "--out", str(out), "--mi-log-base", "10"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(fused), "--pairs", str(pairs), "--out", str(tmp_path / "x.txt")])
    assert e.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_unsafe_pair_id_is_an_error_row_and_never_matches_outside(tmp_path: Path) -> None:
    root = tmp_path / "data"
    pairs = _write_pairs(root, [("../x", "all", "s1"), ("syn-ok", "all", "s2")])
    fused = tmp_path / "fused"
    fused.mkdir()
    Image.fromarray(_img(0)).save(tmp_path / "x.png")  # what "../x" would name outside the folder
    Image.fromarray(_img(1)).save(fused / "syn-ok.png")
    match = match_fused(load_pairs(pairs), fused)
    assert match["syn-ok"] == fused / "syn-ok.png"
    assert isinstance(match["../x"], str) and "unsafe" in match["../x"]
    table = evaluate(fused, pairs, None, baselines=())
    bad = table[(table["pair_id"] == "../x")].iloc[0]
    assert bad["status"] == "error" and "unsafe" in bad["error"]


def test_unwritable_out_is_one_line_before_any_work(setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, pairs, fused = setup
    blocker = tmp_path / "file"
    blocker.write_text("a regular file, so nothing can be created under it (even as root)")
    with pytest.raises(EntityLabelError, match="cannot"):
        evaluate(fused, pairs, blocker / "sub" / "res.csv")
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(fused), "--pairs", str(pairs), "--out", str(blocker / "res.csv")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err and str(blocker) in err.replace("\n", "")


def _labels(folder: Path) -> Path:
    """YOLO boxes per modality: a and b have IR boxes, c is annotated with no object, the rest are not annotated."""
    (folder / "ir").mkdir(parents=True)
    (folder / "vi").mkdir()
    (folder / "classes.txt").write_text("person\ncar\n")
    (folder / "ir" / "a.txt").write_text("0 0.3 0.4 0.2 0.3\n1 0.7 0.6 0.2 0.2\n")
    (folder / "vi" / "a.txt").write_text("1 0.7 0.6 0.2 0.2\n")
    (folder / "ir" / "b.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    (folder / "vi" / "b.txt").write_text("")
    (folder / "ir" / "c.txt").write_text("")
    (folder / "vi" / "c.txt").write_text("")
    return folder


def test_region_metrics_with_annotations(setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from entitylabel.fusion import region_metrics as R

    root, pairs, fused = setup
    labels = _labels(tmp_path / "labels")
    plain = evaluate(fused, pairs, None, method="maxnet")
    assert "TC" not in plain.columns  # without annotations the table is as before
    table = evaluate(fused, pairs, tmp_path / "r.json", method="maxnet", annotations=labels)
    assert [c for c in table.columns if not c.startswith("n_")][-3:] == ["Nabf", "TC", "Qabf_bg"]
    assert list(table.columns[-2:]) == ["n_TC", "n_Qabf_bg"]  # what each mean averages
    img = table[table["kind"] == "image"].set_index(["method", "pair_id"])
    ir, vis = _gray(root / "ir/a.png"), _gray(root / "vi/a.png")
    ir_boxes = np.array([[0.2 * W, 0.25 * H, 0.4 * W, 0.55 * H], [0.6 * W, 0.5 * H, 0.8 * W, 0.7 * H]])
    all_boxes = np.vstack([ir_boxes, ir_boxes[1:]])
    mean = np.floor((ir + vis) / 2 + 0.5)
    assert img.loc[("pixel-mean", "syn-a"), "TC"] == pytest.approx(R.target_contrast(mean, ir, vis, ir_boxes))
    assert img.loc[("pixel-mean", "syn-a"), "Qabf_bg"] == pytest.approx(R.qabf_background(mean, ir, vis, all_boxes))
    assert img.loc[("maxnet", "syn-a"), "TC"] == pytest.approx(img.loc[("pixel-max", "syn-a"), "TC"])
    assert math.isnan(img.loc[("pixel-max", "syn-c"), "TC"])  # annotated, no IR box: no TC
    assert img.loc[("pixel-max", "syn-c"), "Qabf_bg"] == pytest.approx(img.loc[("pixel-max", "syn-c"), "Qabf"])
    assert math.isnan(img.loc[("pixel-max", "syn-d"), "Qabf_bg"])  # not annotated: no region metric
    means = summarize(table)
    assert means.loc["pixel-max", "TC"] == pytest.approx(img.loc[("pixel-max", ["syn-a", "syn-b"]), "TC"].mean())
    assert (means.loc["pixel-max", "n"], means.loc["pixel-max", "n_TC"]) == (3, 2)  # syn-c has no TC
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["metrics"][-2:] == ["TC", "Qabf_bg"] and doc["higher_is_better"]["TC"] is True
    main(["evaluate", str(fused), "--pairs", str(pairs), "--out", str(tmp_path / "r.csv"), "--baseline", "mean",
          "--baseline", "max", "--annotations", str(labels)])  # fmt: skip
    captured = capsys.readouterr()
    rows = {ln.split()[0]: [t for t in ln.split() if not t.startswith("(n=")]  # a mean of fewer pairs says (n=k)
            for ln in captured.out.splitlines() if ln.strip().startswith(("pixel", "fused"))}  # fmt: skip
    assert "TC" in captured.out and "Qabf_bg" in captured.out
    assert len(rows["pixel-max"]) == len(rows["pixel-mean"]) == 2 + 12  # method, n, ten metrics, TC, Qabf_bg
    assert "annotations (yolo): 4 boxes on 3 pairs" in captured.err and "missing_file 6" in captured.err
    assert "TC" in (tmp_path / "r.csv").read_text().splitlines()[0]
