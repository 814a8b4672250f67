"""Output names built from data never leave their folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from entitylabel.errors import EntityLabelError
from entitylabel.io import safe_child


def test_plain_pair_id_is_kept(tmp_path: Path) -> None:
    assert safe_child(tmp_path, "tno-01", ".png") == tmp_path / "tno-01.png"
    assert safe_child(tmp_path, "msrs-train-00001D") == tmp_path / "msrs-train-00001D"


@pytest.mark.parametrize("name", ["../../PWNED_x", "a/b", "..", ".", ".hidden", "a\\b", "", "x\x00y", "/abs", "c:d"])
def test_names_that_could_escape_are_refused_with_the_value(tmp_path: Path, name: str) -> None:
    with pytest.raises(EntityLabelError, match="unsafe output name"):
        safe_child(tmp_path, name, ".png")


def test_overlong_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EntityLabelError):
        safe_child(tmp_path, "a" * 260)
