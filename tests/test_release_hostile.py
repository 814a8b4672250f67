"""A hostile released dataset for download / train / fuse (issue 20 items 5, 10, 11): malformed cards, class
indexes outside the label space, null or broken embedded images, data files without rows or not Parquet."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from export_fixtures import synthetic_pairs, write_captions, write_entities
from fusion_synth import tiny_config

from entitylabel.cli import main
from entitylabel.errors import EntityLabelError
from entitylabel.export.load import download
from entitylabel.export.stage import run_export
from entitylabel.fusion.fuse import fuse
from entitylabel.fusion.train import train

SHARD = "data/a/train-00000-of-00001.parquet"


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, Path]:
    """A 6-pair release (one config `a`, one shard) and a tiny model trained on it."""
    base = tmp_path_factory.mktemp("release")
    pairs = synthetic_pairs(base / "src", base / "a", "a", 6, size=(40, 32))
    rel = base / "rel"
    caps, ents = write_captions(pairs, base / "a" / "cap"), write_entities(pairs, base / "a" / "ent")
    run_export(pairs, rel, "a", captions=caps, entities=ents, test_fraction=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(rel, base / "run", tiny_config(), steps=2)
    return rel, base / "run"


def _copy(release: tuple[Path, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(release[0], tmp_path / "rel"))


def _set_cell(folder: Path, column: str, row: int, value) -> None:
    path = folder / SHARD
    t = pq.read_table(path)
    col = t.column(column).to_pylist()
    col[row] = value
    field = t.schema.field(column)
    pq.write_table(t.set_column(t.schema.get_field_index(column), field, pa.array(col, field.type)), path)


def _edit_card(folder: Path, change) -> None:
    card = folder / "README.md"
    _, header, body = card.read_text().split("---\n", 2)
    meta = yaml.safe_load(header)
    change(meta)
    card.write_text("---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n" + body)


# --- item 10: malformed cards and data files: one line naming the file and the problem --------------------------
def _no_name(m):
    del m["configs"][0]["config_name"]


def _no_split(m):
    del m["configs"][0]["data_files"][0]["split"]


def _no_path(m):
    del m["configs"][0]["data_files"][0]["path"]


def _mapping(m):
    m["configs"] = {"a": m["configs"][0]}


def _number(m):
    m["configs"][0]["config_name"] = 5


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_no_name, "configs entry 0: no config_name"),
        (_no_split, "data_files entry 0 has no split name"),
        (_no_path, "data_files entry 0 (split train) has no path"),
        (_mapping, "configs must be a list of entries, got a dict"),
        (_number, "configs entry 0: config_name 5 is not a name"),
    ],
)
def test_malformed_card_is_one_line_naming_the_card(release, tmp_path: Path, capsys, change, problem: str) -> None:
    folder = _copy(release, tmp_path)
    _edit_card(folder, change)
    with pytest.raises(SystemExit) as e:
        main(["download", str(folder)])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.count("\n") == 0 and err.startswith("error:")
    assert str(folder / "README.md") in err and problem in err


def test_a_data_file_that_is_not_parquet_is_one_line(release, tmp_path: Path) -> None:
    folder = _copy(release, tmp_path)
    (folder / SHARD).write_bytes(b"PAR1 but not really")
    for run in (lambda: download(folder, quiet=True), lambda: train(folder, tmp_path / "r", tiny_config(), steps=1),
                lambda: fuse(release[1], folder, tmp_path / "f")):  # fmt: skip
        with pytest.raises(EntityLabelError, match="not a readable Parquet data file") as e:
            run()
        assert str(folder / SHARD) in str(e.value)


# --- item 5: entity class indexes outside 0..K-1 ----------------------------------------------------------------
@pytest.mark.parametrize("index", [-1, 99])
def test_a_class_index_outside_the_label_space_is_an_error_naming_file_and_row(release, tmp_path: Path,
                                                                               index: int) -> None:  # fmt: skip
    folder = _copy(release, tmp_path)
    _set_cell(folder, "entities", 1, [index])
    for run in (lambda: download(folder, quiet=True), lambda: train(folder, tmp_path / "r", tiny_config(), steps=1),
                lambda: fuse(release[1], folder, tmp_path / "f")):  # fmt: skip
        with pytest.raises(EntityLabelError) as e:
            run()
        msg = str(e.value)
        assert f"{folder / SHARD}: row 1: entity class index {index} is outside 0..5" in msg and "\n" not in msg
    assert not (tmp_path / "r" / "checkpoint").exists() and not (tmp_path / "f").exists()


# --- item 11: one bad row ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "problem"),
    [(None, "no VIS image (null)"), ({"bytes": b"not an image", "path": None}, "VIS image cannot be decoded")],
)
def test_one_bad_image_row(release, tmp_path: Path, value, problem: str) -> None:
    folder = _copy(release, tmp_path)
    _set_cell(folder, "vis", 1, value)
    where = f"{SHARD} row 1 (pair a-001): {problem}"
    # train: one line naming the file and row, before any training
    with pytest.raises(EntityLabelError) as e:
        train(folder, tmp_path / "r", tiny_config(), steps=1)
    assert where in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "r" / "checkpoint").exists()
    # fuse: the bad pair is a per-pair problem; the others are fused and fuse.json is written
    res = fuse(release[1], folder, tmp_path / "f")
    assert sorted(res.written) == [f"a-00{i}" for i in (0, 2, 3, 4, 5)]
    assert list(res.failed) == ["a-001"] and where in res.failed["a-001"]
    summary = json.loads((tmp_path / "f" / "fuse.json").read_text())
    assert list(summary["failed"]) == ["a-001"] and len(summary["pairs"]) == 5
    assert (tmp_path / "f" / "a-000.png").is_file() and not (tmp_path / "f" / "a-001.png").exists()


def test_a_data_file_without_rows_is_skipped_with_a_warning(release, tmp_path: Path) -> None:
    folder = _copy(release, tmp_path)
    t = pq.read_table(folder / SHARD)
    pq.write_table(t.slice(0, 0), folder / "data/a/train-00001-of-00002.parquet")
    _edit_card(folder, lambda m: m["configs"][0]["data_files"][0].update(path="data/a/train-*"))
    assert download(folder, quiet=True).configs["a"].splits == {"train": 6}
    with pytest.warns(UserWarning, match="skipped 1 data file"):
        assert train(folder, tmp_path / "r", tiny_config(), steps=1).step == 1
    with pytest.warns(UserWarning, match="skipped 1 data file"):
        assert len(fuse(release[1], folder, tmp_path / "f").written) == 6


# --- item 2 for releases: a config swap killed between its two renames ------------------------------------------
def test_a_config_parked_by_a_killed_swap_is_read_and_put_back_by_the_next_export(release, tmp_path: Path) -> None:
    folder = _copy(release, tmp_path)
    (folder / "data" / "a").rename(folder / "data" / ".a.old")  # the state between io.swap_dir's two renames
    assert download(folder, quiet=True).configs["a"].splits == {"train": 6}  # readers find the parked copy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert train(folder, tmp_path / "r", tiny_config(), steps=1).step == 1
    pairs = synthetic_pairs(tmp_path / "src_b", tmp_path / "b", "b", 2, size=(40, 32))
    run_export(pairs, folder, "b", entities=write_entities(pairs, tmp_path / "b" / "ent"))  # the next writer
    assert sorted(p.name for p in (folder / "data").iterdir()) == ["a", "b"]
