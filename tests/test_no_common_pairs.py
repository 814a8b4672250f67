"""Captions or labels that belong to none of the manifest's pairs are the wrong inputs: one error line, nothing
written (issue 20), not an export or extract of a dataset without text that exits 0 with a note."""

from __future__ import annotations

from pathlib import Path

import pytest
from export_fixtures import export_inputs

from entitylabel.errors import EntityLabelError
from entitylabel.export.stage import run_export
from entitylabel.extract.stage import run_extract


@pytest.fixture
def two(tmp_path: Path) -> dict:
    return export_inputs(tmp_path, {"a": 4, "b": 3})


@pytest.mark.parametrize("which", ["captions", "entities"])
def test_export_with_inputs_of_another_manifest_is_refused(two: dict, tmp_path: Path, which: str) -> None:
    kw = {which: two["b"][which]}
    with pytest.raises(EntityLabelError, match="belongs to a pair of the manifest") as e:
        run_export(two["a"]["pairs"], tmp_path / "out", "a", **kw)
    assert str(two["b"][which]) in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "out").exists()


def test_extract_with_captions_of_another_manifest_is_refused(two: dict, tmp_path: Path) -> None:
    with pytest.raises(EntityLabelError, match="no caption row belongs to a pair of the manifest") as e:
        run_extract(two["b"]["captions"], "coco80", tmp_path / "x", pairs=two["a"]["pairs"])
    assert "\n" not in str(e.value)
    assert not (tmp_path / "x" / "entities").exists()
