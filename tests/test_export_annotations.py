"""`export --annotations`: labels from a dataset's own boxes, per-modality sets and boxes as columns, provenance in
the card; `load` and `train` read it as they read any export. Also discover on MSRS-labelled's layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from entitylabel.cli import main
from entitylabel.errors import EntityLabelError
from entitylabel.export.stage import run_export

STEMS = ["00001N", "00002D", "00003N", "00004D", "00005N", "00006D"]


def msrs_labelled(root: Path) -> Path:
    """MSRS-labelled's layout in small: test/{ir,vi}/<stem>.png, labels/{ir,vi,fusion}/<stem>.txt, classes.txt."""
    rng = np.random.default_rng(0)
    for d in ("test/ir", "test/vi", "labels/ir", "labels/vi", "labels/fusion"):
        (root / d).mkdir(parents=True)
    (root / "labels" / "classes.txt").write_text("0 person\n1 bicycle\n2 car\n")
    for i, s in enumerate(STEMS):
        Image.fromarray(rng.integers(0, 255, (40, 48), dtype=np.uint8)).save(root / f"test/ir/{s}.png")
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(root / f"test/vi/{s}.png")
        if i == 5:
            continue  # the last pair has no labels at all
        ir = "0 0.5 0.5 0.2 0.4\n" + ("2 0.2 0.2 0.2 0.2\n" if i % 2 else "")
        vis = "2 0.2 0.2 0.2 0.2\n" if i % 2 else ""  # people at night: IR boxes only
        (root / f"labels/ir/{s}.txt").write_text(ir)
        (root / f"labels/vi/{s}.txt").write_text(vis)
        (root / f"labels/fusion/{s}.txt").write_text(ir.replace(" ", "  "))
    return root


@pytest.fixture()
def discovered(tmp_path: Path) -> tuple[Path, Path]:
    from entitylabel.discover import run_discover

    root = msrs_labelled(tmp_path / "MSRS-labelled")
    run_discover(root, tmp_path / "run", workers=1)
    return root, tmp_path / "run"


def test_discover_pairs_msrs_labelled_as_msrs(discovered) -> None:
    import pandas as pd

    root, run = discovered
    pairs = pd.read_parquet(run / "pairs.parquet")
    problems = pd.read_parquet(run / "problems.parquet")
    assert len(pairs) == 6 and set(pairs["split"]) == {"test"} and problems.empty  # labels/ is not a split
    assert pairs["pair_id"].iloc[0] == "msrs-labelled-test-00001N"


def test_export_with_annotations_loads_and_trains(discovered, tmp_path: Path) -> None:
    from fusion_synth import tiny_config

    import entitylabel
    from entitylabel.fusion.train import train

    root, run = discovered
    out = tmp_path / "release"
    res = run_export(run, out, "msrs", annotations=root / "labels")
    assert res.n_labels == 3 and res.unlabelled == 1  # 00006D has no annotation file
    ds = entitylabel.load(out, "msrs")["test"]
    names = ds.features["entities"].feature.names
    assert names == ["person", "car", "bicycle"]  # every class of classes.txt, in vocabulary order
    rows = {r["pair_id"]: r for r in ds}
    night = rows["msrs-labelled-test-00002D"]
    assert [names[i] for i in night["entities"]] == ["person", "car"]
    assert [names[i] for i in night["entities_ir"]] == ["person", "car"]
    assert [names[i] for i in night["entities_vis"]] == ["car"]
    assert len(night["boxes"]) == 5 and night["boxes"][0]["modality"] == "ir"
    box = night["boxes"][0]
    assert box["entity"] == "person"
    assert [box[k] for k in ("x0", "y0", "x1", "y1")] == pytest.approx([19.2, 12.0, 28.8, 28.0])
    unlabelled = rows["msrs-labelled-test-00006D"]
    assert unlabelled["entities"] == [] and unlabelled["boxes"] is None and unlabelled["entities_ir"] is None
    assert rows["msrs-labelled-test-00001N"]["entities_vis"] == []  # annotated in VIS, nothing there
    card = (out / "README.md").read_text()
    assert "provenance `annotation`" in card and "found" in card and "| `boxes` |" in card
    assert "machine-generated captions" not in card  # the overview and credits say where the labels come from
    assert "own object boxes (cite their annotators too)" in card
    assert "People" not in card and "person → person" in card
    assert (out / "tables/msrs/boxes.parquet").is_file()
    # the same inputs give the same bytes
    again = tmp_path / "again"
    run_export(run, again, "msrs", annotations=root / "labels")
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert all((out / f).read_bytes() == (again / f).read_bytes() for f in files)
    # train reads it unchanged: the entity path gets the label space
    result = train(out, tmp_path / "model", tiny_config(), steps=2, split="test")
    assert not result.fusion_only


def test_export_annotations_refusals(discovered, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, run = discovered
    with pytest.raises(EntityLabelError, match="not both"):
        run_export(run, tmp_path / "x", "msrs", annotations=root / "labels", entities=tmp_path)
    (tmp_path / "nomatch").mkdir()
    (tmp_path / "nomatch" / "classes.txt").write_text("person\n")
    (tmp_path / "nomatch" / "zzz.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(SystemExit) as e:
        main(["export", "--pairs", str(run), "--config", "msrs", "--out", str(tmp_path / "y"),
              "--annotations", str(tmp_path / "nomatch")])  # fmt: skip
    assert e.value.code == 2 and "match no pair" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()
    main(["export", "--pairs", str(run), "--config", "msrs", "--out", str(tmp_path / "z"),
          "--annotations", str(root / "labels")])  # fmt: skip
    assert (tmp_path / "z" / "tables/msrs/annotation_problems.parquet").is_file()
