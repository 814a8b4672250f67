"""The dataset card: golden file, hub YAML, and regeneration from the folder's configs."""

from __future__ import annotations

import os
import re
from pathlib import Path

from export_fixtures import synthetic_pairs, write_captions, write_entities
from huggingface_hub import DatasetCard

from entitylabel import __version__
from entitylabel.export.card import size_category
from entitylabel.export.stage import run_export

GOLDEN = Path(__file__).parent / "golden" / "export_card.md"


def _normalise(card: str) -> str:
    """Only what depends on library versions varies: Parquet file sizes and the package version."""
    card = re.sub(r"download_size: \d+", "download_size: <bytes>", card)
    return card.replace(f"entitylabel {__version__}", "entitylabel <version>").replace(
        f"| {__version__} |", "| <version> |"
    )


def _build(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    rs = synthetic_pairs(tmp_path / "src_rs", tmp_path / "rs", "roadscene", 10)
    write_captions(rs, tmp_path / "rs" / "captions", n_captioned=8)
    write_entities(rs, tmp_path / "rs" / "entities", n_labelled=8)
    msrs = synthetic_pairs(tmp_path / "src_msrs", tmp_path / "msrs", "msrs", 5, splits=["train"] * 3 + ["test"] * 2)
    write_entities(msrs, tmp_path / "msrs" / "entities")
    run_export(msrs, out, "msrs", entities=tmp_path / "msrs" / "entities", repo_id="my-org/ivif-entities")
    run_export(
        rs,
        out,
        "roadscene",
        captions=tmp_path / "rs" / "captions",
        entities=tmp_path / "rs" / "entities",
        repo_id="my-org/ivif-entities",
    )
    return out


def test_card_matches_golden_file(tmp_path: Path) -> None:
    card = _normalise((_build(tmp_path) / "README.md").read_text(encoding="utf-8"))
    if os.environ.get("ENTITYLABEL_UPDATE_GOLDEN"):
        GOLDEN.write_text(card, encoding="utf-8")
    assert card == GOLDEN.read_text(encoding="utf-8"), (
        "card changed: review, then rerun with ENTITYLABEL_UPDATE_GOLDEN=1"
    )


def test_card_yaml_is_what_the_hub_reads(tmp_path: Path) -> None:
    out = _build(tmp_path)
    data = DatasetCard.load(out / "README.md").data.to_dict()
    configs = {c["config_name"]: [f["split"] for f in c["data_files"]] for c in data["configs"]}
    assert configs == {"msrs": ["train", "test"], "roadscene": ["train", "test"]}
    info = {d["config_name"]: d for d in data["dataset_info"]}
    feats = {f["name"]: f for f in info["msrs"]["features"]}
    assert feats["entities"]["list"]["class_label"]["names"]["0"] == "person"
    assert feats["ir"]["dtype"] == "image"
    assert data["size_categories"] == ["n<1K"] and data["license"] == "other"
    text = (out / "README.md").read_text()
    assert "source dataset's own split folders" in text and "hash split" in text  # msrs: folders; roadscene: hash
    assert "PIAFusion" in text and "FusionDN" in text


def test_card_keeps_configs_it_did_not_write(tmp_path: Path) -> None:
    out = _build(tmp_path)
    card = (out / "README.md").read_text()
    foreign = "- config_name: extra\n  data_files:\n  - split: train\n    path: extra/*.parquet\n"
    (out / "README.md").write_text(card.replace("configs:\n", "configs:\n" + foreign, 1))
    pairs = tmp_path / "msrs" / "pairs.parquet"
    run_export(pairs, out, "msrs", entities=tmp_path / "msrs" / "entities", overwrite=True)
    names = [c["config_name"] for c in DatasetCard.load(out / "README.md").data.to_dict()["configs"]]
    assert names == ["extra", "msrs", "roadscene"]


def test_size_categories() -> None:
    assert [size_category(n) for n in (0, 999, 1000, 25_000, 2_000_000)] == [
        "n<1K",
        "n<1K",
        "1K<n<10K",
        "10K<n<100K",
        "1M<n<10M",
    ]
