"""Caption prompts: built-in files, parsing, resolution, hashing."""

from __future__ import annotations

from pathlib import Path

import pytest

from entitylabel.caption.prompts import (
    PROMPT_SETS,
    builtin_prompts,
    parse_prompt,
    prompts_for,
    resolve_prompts,
)
from entitylabel.errors import EntityLabelError


def test_builtin_defaults_one_per_modality_and_ir_speaks_of_heat() -> None:
    prompts = builtin_prompts()
    for pid in {i for ids in PROMPT_SETS.values() for i in ids}:
        assert pid in prompts
    vis, ir = prompts["vis_default"], prompts["ir_default"]
    assert (vis.modality, ir.modality) == ("vis", "ir")
    assert "thermal" in ir.text.lower() and "heat" in ir.text.lower()
    assert "thermal" in ir.prefix and "thermal" not in vis.prefix
    assert "heat" not in vis.text.lower()
    tasks = prompts_for(resolve_prompts(None), ["vis", "ir"])
    assert [(m, p.id) for m, p in tasks] == [("vis", "vis_default"), ("ir", "ir_default")]


def test_hash_follows_the_wording_the_model_sees() -> None:
    p = builtin_prompts()["ir_default"]
    assert p.sha256("chat") != p.sha256("prefix")
    assert p.wording("chat") == p.text and p.wording("prefix") == p.prefix
    changed = parse_prompt(f"id: ir_default\nmodality: ir\n---\n{p.text} Be brief.", source="x")
    assert changed.sha256("chat") != p.sha256("chat")


def test_prompt_file_folder_and_any_modality(tmp_path: Path) -> None:
    (tmp_path / "both.txt").write_text("modality: any  # for every image\n---\nWhat is\n  in this image?\n")
    (tmp_path / "ir_short.txt").write_text("id: ir_short\nmodality: ir\nprefix: heat of\n---\nName the warm things.\n")
    prompts = resolve_prompts([str(tmp_path), "vis_default"])
    assert [p.id for p in prompts] == ["both", "ir_short", "vis_default"]
    assert prompts[0].text == "What is in this image?"  # wrapping in the file is not part of the prompt
    tasks = prompts_for(prompts, ["vis", "ir"])
    assert [(m, p.id) for m, p in tasks] == [
        ("vis", "both"),
        ("vis", "vis_default"),
        ("ir", "both"),
        ("ir", "ir_short"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id: a\nno separator here\n", "'---'"),
        ("id: bad id!\n---\ntext\n", "prompt id"),
        ("id: a\nmodality: radar\n---\ntext\n", "modality"),
        ("id: a\n---\n   \n", "empty"),
        ("id a\n---\ntext\n", "key: value"),
    ],
)
def test_bad_prompt_files_are_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "p.txt"
    f.write_text(content)
    with pytest.raises(EntityLabelError, match=message) as e:
        resolve_prompts([str(f)])
    assert str(f) in str(e.value) and "\n" not in str(e.value)


def test_unknown_spec_and_missing_modality() -> None:
    with pytest.raises(EntityLabelError, match="unknown prompt 'nope'"):
        resolve_prompts(["nope"])
    with pytest.raises(EntityLabelError, match="no prompt applies to modality 'ir'"):
        prompts_for(resolve_prompts(["vis_default"]), ["vis", "ir"])
