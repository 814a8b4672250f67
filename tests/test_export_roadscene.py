"""Export real RoadScene (and a TNO subset as a second config), then load it with the source images gone."""

from __future__ import annotations

import shutil
from pathlib import Path

import datasets
import pandas as pd
import pytest
from export_fixtures import copy_subset, discover_pairs, write_captions, write_entities
from huggingface_hub import DatasetCard
from PIL import Image

import entitylabel
from entitylabel.export.load import summarize
from entitylabel.export.splits import assign_splits
from entitylabel.export.stage import run_export

RS_FOLDERS = ("cropinfrared", "crop_LR_visible")


def _export_all(base: Path, out: Path) -> None:
    run_export(
        base / "rs" / "pairs.parquet",
        out,
        "roadscene",
        captions=base / "rs" / "captions",
        entities=base / "rs" / "entities",
    )
    run_export(
        base / "tno" / "pairs.parquet",
        out,
        "tno",
        captions=base / "tno" / "captions",
        entities=base / "tno" / "entities",
    )


@pytest.fixture(scope="module")
def release(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two configs exported twice from the same inputs; afterwards the copied source images are moved away."""
    base = tmp_path_factory.mktemp("export")
    src = base / "src"
    copy_subset(shared_data / "RoadScene", src / "RoadScene", RS_FOLDERS, 20)
    copy_subset(shared_data / "TNO", src / "TNO", ("ir", "vi"), 4)
    for name, root in (("rs", src / "RoadScene"), ("tno", src / "TNO")):
        pairs = discover_pairs(root, base / name)
        write_captions(pairs, base / name / "captions", n_captioned=None if name == "tno" else 15)
        write_entities(pairs, base / name / "entities", n_labelled=None if name == "tno" else 15)
    _export_all(base, base / "out")
    _export_all(base, base / "out2")
    manifest = pd.read_parquet(base / "rs" / "pairs.parquet")
    splits, _ = assign_splits(manifest)
    expected = dict(zip(manifest["pair_id"], splits, strict=True))
    shutil.move(src, base / "moved")  # the export must not need the source images any more
    return {"base": base, "out": base / "out", "out2": base / "out2", "splits": expected, "cache": base / "hf-cache"}


def test_load_dataset_offline_decodes_images_and_label_names(release: dict, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    base = release["base"]
    ds = datasets.load_dataset(str(release["out"]), "roadscene", cache_dir=str(release["cache"]))
    expected = release["splits"]
    assert set(ds) == set(expected.values())
    labels = pd.read_parquet(base / "rs" / "entities" / "labels.parquet").set_index("pair_id")["entities"]
    caps = pd.read_parquet(base / "rs" / "captions" / "shard-00000.parquet")
    vis_caps = caps[(caps.source == "vis:vis_test:tiny-vlm")].set_index("pair_id")["caption"]
    seen = 0
    for split, part in ds.items():
        names = part.features["entities"].feature
        for row in part:
            seen += 1
            assert expected[row["pair_id"]] == split
            assert isinstance(row["ir"], Image.Image) and isinstance(row["vis"], Image.Image)
            assert row["ir"].size == row["vis"].size == (row["width"], row["height"])
            want = list(labels.get(row["pair_id"], []))
            assert [names.int2str(i) for i in row["entities"]] == want
            assert len(row["confidences"]) == len(want)
            assert row["caption_vis"] == vis_caps.get(row["pair_id"])
    assert seen == 20
    # pairs 16-20 have no caption and no labels: null captions, empty label lists
    assert sum(1 for split in ds.values() for r in split if r["caption_ir"] is None and not r["entities"]) == 5
    tno = datasets.load_dataset(str(release["out"]), "tno", cache_dir=str(release["cache"]))
    assert sum(len(s) for s in tno.values()) == 4


def test_config_names_lists_every_config(release: dict) -> None:
    assert sorted(datasets.get_dataset_config_names(str(release["out"]))) == ["roadscene", "tno"]


def test_two_exports_are_byte_identical(release: dict) -> None:
    a, b = release["out"], release["out2"]
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and any(str(f).endswith(".parquet") for f in files_a)
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_card_is_a_hub_card_listing_every_config_and_split(release: dict) -> None:
    card = DatasetCard.load(release["out"] / "README.md")
    data = card.data.to_dict()
    configs = {c["config_name"]: {f["split"]: f["path"] for f in c["data_files"]} for c in data["configs"]}
    rs_splits = set(release["splits"].values())
    assert set(configs) == {"roadscene", "tno"}
    assert set(configs["roadscene"]) == rs_splits
    assert configs["roadscene"]["train"] == "data/roadscene/train-*"
    infos = {d["config_name"]: d for d in data["dataset_info"]}
    assert {s["name"] for s in infos["roadscene"]["splits"]} == rs_splits
    assert sum(s["num_examples"] for s in infos["roadscene"]["splits"]) == 20
    assert data["annotations_creators"] == ["machine-generated"]
    assert "tiny-vlm" in card.text and "0123abcd" in card.text and "f" * 64 in card.text
    assert "en_core_web_sm-3.8.0" in card.text and "Toet" in card.text and "FusionDN" in card.text


def test_entitylabel_load_and_download(release: dict, capsys) -> None:
    out = release["out"]
    ds = entitylabel.load(out, "roadscene", cache_dir=str(release["cache"]))
    assert sum(len(s) for s in ds.values()) == 20
    with pytest.raises(entitylabel.errors.EntityLabelError, match="2 configs"):
        entitylabel.load(out, cache_dir=str(release["cache"]))
    summary = entitylabel.download(out)
    printed = capsys.readouterr().out
    assert "roadscene" in printed and "tno" in printed
    rs = summary.configs["roadscene"]
    assert sum(rs.splits.values()) == 20
    labels = pd.read_parquet(release["base"] / "rs" / "entities" / "labels.parquet")
    person = sum("person" in list(e) for e in labels["entities"])
    assert sum(rs.label_counts[s].get("person", 0) for s in rs.splits) == person > 0
    assert summarize(out, "tno").configs.keys() == {"tno"}


def test_plain_tables_beside(release: dict) -> None:
    tables = release["out"] / "tables" / "roadscene"
    assert len(pd.read_parquet(tables / "pairs.parquet")) == 20
    caps = pd.read_parquet(tables / "captions.parquet")
    assert set(caps["source"]) >= {"ir:ir_test:tiny-vlm", "external:human"}
    ents = pd.read_parquet(tables / "entities.parquet")
    assert "accepted" in ents.columns  # the extract stage's columns are kept as written
    assert list(pd.read_parquet(tables / "labels.parquet").columns) == ["pair_id", "split", "entities"]


def test_full_roadscene_in_several_shards(shared_data: Path, tmp_path: Path) -> None:
    pairs = discover_pairs(shared_data / "RoadScene", tmp_path / "disc")
    result = run_export(pairs, tmp_path / "out", "roadscene", shard_bytes=3_000_000)
    assert sum(result.splits.values()) == 221
    train = sorted((tmp_path / "out" / "data" / "roadscene").glob("train-*.parquet"))
    assert len(train) >= 2 and all(f.name.endswith(f"-of-{len(train):05d}.parquet") for f in train)
    assert all(f.stat().st_size < 3_500_000 for f in train)
    ds = datasets.load_dataset(str(tmp_path / "out"), "roadscene", cache_dir=str(tmp_path / "cache"))
    assert sum(len(s) for s in ds.values()) == 221
    assert ds["test"][0]["vis"].mode == "RGB"
