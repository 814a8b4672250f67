"""External captions: JSONL/CSV/Parquet keyed by pair id or image file name become caption shards."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from caption_support import (  # noqa: F401 - fixtures
    cli,
    roadscene_manifest,
    shard_bytes,
    synthetic_manifest,
    write_manifest,
)

from entitylabel.caption import import_external, run_caption
from entitylabel.caption.shards import CAPTION_SCHEMA
from entitylabel.errors import EntityLabelError
from entitylabel.pairs import load_pairs


def _captions(out: Path, name: str) -> pd.DataFrame:
    df = pq.read_table(sorted(out.glob(f"shard-external-{name}-*.parquet"))).to_pandas().astype(object)
    return df.where(df.notna(), None)  # nulls as None, not NaN


def test_jsonl_by_pair_id_with_problems_reported(roadscene_manifest: Path, tmp_path: Path) -> None:  # noqa: F811
    pairs = load_pairs(roadscene_manifest)
    ids = sorted(pairs.df["pair_id"])
    lines = [
        {"pair_id": ids[1], "caption": "A car on a wet road.", "modality": "visible", "model": "gpt-x"},
        {"pair_id": ids[0], "caption": "  Two warm pedestrians.  ", "modality": "thermal", "prompt": "Describe."},
        {"pair_id": "roadscene-NOPE", "caption": "lost caption"},
        {"pair_id": ids[2], "caption": "   "},
        {"pair_id": ids[3], "caption": "x", "modality": "radar"},
        {"pair_id": ids[0], "caption": "A second opinion."},
    ]
    src = tmp_path / "api.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "captions"
    res = import_external(pairs, src, out, name="api", shard_size=1)
    assert (res.rows, res.matched, res.problems, res.shards) == (6, 3, 3, 2)
    df = _captions(out, "api")
    assert pq.read_schema(out / "shard-external-api-00000.parquet").remove_metadata() == CAPTION_SCHEMA
    assert df["pair_id"].tolist() == [ids[0], ids[0], ids[1]]
    # one source per modality, so extract counts an external file's IR and VIS captions as two votes
    assert df["source"].tolist() == ["external:api", "external:api:ir", "external:api:vis"]
    assert df["modality"].tolist() == [None, "ir", "vis"]  # unknown modality stays null, sorted first
    assert df["caption"].tolist() == ["A second opinion.", "Two warm pedestrians.", "A car on a wet road."]
    assert df["model"].tolist() == [None, None, "gpt-x"] and df["prompt_sha256"].notna().sum() == 1
    problems = pd.read_parquet(res.problems_path)
    assert problems[["row", "kind"]].values.tolist() == [[2, "unmatched"], [3, "empty_caption"], [4, "bad_modality"]]
    assert problems.loc[0, "key"] == "roadscene-NOPE"
    summary = json.loads((out / "external-api.json").read_text())
    assert summary["problems_by_kind"] == {"bad_modality": 1, "empty_caption": 1, "unmatched": 1}


def test_csv_by_file_name_path_or_stem(roadscene_manifest: Path, tmp_path: Path) -> None:  # noqa: F811
    pairs = load_pairs(roadscene_manifest)
    row0, row1 = pairs.df.sort_values("pair_id").iloc[0], pairs.df.sort_values("pair_id").iloc[1]
    name0 = Path(row0["ir_path"]).name  # RoadScene: the same file name in both folders
    src = tmp_path / "release.csv"
    pd.DataFrame(
        {
            "file_name": [row0["ir_path"], name0, Path(row1["vis_path"]).stem, "FLIR_99999.jpg"],
            "text": ["hot engine", "a car", "a street", "orphan"],
        }
    ).to_csv(src, index=False)
    out = tmp_path / "captions"
    res = import_external(pairs, src, out)
    assert res.name == "release" and res.matched == 3 and res.by_kind == {"unmatched": 1}
    df = _captions(out, "release").set_index("caption")
    assert df.loc["hot engine", "modality"] == "ir"  # a relative path says the modality
    assert df.loc["a car", "modality"] is None  # a bare name found in both folders does not
    assert df.loc["a street", "pair_id"] == row1["pair_id"]
    assert pd.read_parquet(res.problems_path)["key"].tolist() == ["FLIR_99999.jpg"]


def test_ambiguous_names_and_missing_columns(tmp_path: Path) -> None:
    rows = []
    for split in ("train", "test"):
        rows.append(
            {
                "pair_id": f"syn-{split}-00",
                "dataset": "syn",
                "split": split,
                "ir_path": f"{split}/ir/00.png",
                "vis_path": f"{split}/vi/00.png",
                "width": 8,
                "height": 8,
                "ir_mode": "L",
                "vis_mode": "RGB",
                "ir_sha256": "0" * 64,
                "vis_sha256": "0" * 64,
            }
        )
    pairs = load_pairs(write_manifest(pd.DataFrame(rows), tmp_path, tmp_path / "pairs.parquet"))
    src = tmp_path / "c.parquet"
    pd.DataFrame({"image": ["00.png", "test/vi/00.png"], "caption": ["which one?", "a tree"]}).to_parquet(src)
    res = import_external(pairs, src, tmp_path / "out", name="x")
    assert res.by_kind == {"ambiguous": 1} and res.matched == 1
    df = _captions(tmp_path / "out", "x")
    assert df[["pair_id", "modality"]].values.tolist() == [["syn-test-00", "vis"]]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "words": "no usable columns"}\n')
    with pytest.raises(EntityLabelError, match="needs a key column"):
        import_external(pairs, bad, tmp_path / "out")
    with pytest.raises(EntityLabelError, match="must be letters"):
        import_external(pairs, src, tmp_path / "out", name="bad name")


def test_cli_import_without_a_model_is_reproducible(roadscene_manifest: Path, tmp_path: Path) -> None:  # noqa: F811
    ids = sorted(load_pairs(roadscene_manifest).df["pair_id"])
    src = tmp_path / "human.jsonl"
    src.write_text(
        "\n".join(json.dumps({"pair_id": p, "caption": f"caption {i}", "modality": "vis"}) for i, p in enumerate(ids))
        + '\n{"pair_id": "nobody", "caption": "unmatched"}\n'
    )
    out = tmp_path / "captions"
    proc = cli(
        "caption", str(roadscene_manifest), "--external", str(src), "--external-name", "human", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    assert "5 of 6 caption rows imported" in proc.stdout
    assert "1 of 6 caption row(s) not imported (1 matched no pair)" in proc.stdout
    first = shard_bytes(out)
    assert "shard-external-human-00000.parquet" in first
    run_caption(roadscene_manifest, out, external=src, external_name="human", force=True)
    assert shard_bytes(out) == first


def _synthetic_pairs(tmp_path: Path, n: int = 3):
    return load_pairs(synthetic_manifest(tmp_path / "data", n))  # pair ids syn-00, syn-01, ...


def test_each_reason_is_counted_apart_with_a_one_line_note(tmp_path: Path) -> None:
    pairs = _synthetic_pairs(tmp_path)
    lines = [
        {"pair_id": "syn-00", "caption": "A car.", "modality": "vis"},
        {"pair_id": "syn-00", "caption": "A bus.", "modality": "vis"},  # duplicate: the first is kept
        {"pair_id": "syn-01", "caption": ["a car", "a bus"], "modality": "vis"},  # not a string
        {"pair_id": "syn-01", "caption": {"text": "a car"}, "modality": "ir"},  # not a string
        {"pair_id": "syn-02", "caption": 7, "modality": "vis"},  # not a string
        {"pair_id": "syn-02", "caption": "   ", "modality": "ir"},
        {"pair_id": "syn-99", "caption": "Nobody."},
        {"pair_id": "syn-02", "caption": "Warm.", "modality": "radar"},
        {"pair_id": "syn-01", "caption": "A warm person.", "modality": "ir"},
    ]
    src = tmp_path / "api.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "captions"
    result = run_caption(pairs, out, external=src, external_name="api")
    counts = {"bad_modality": 1, "duplicate": 1, "empty_caption": 1, "non_string_caption": 3, "unmatched": 1}
    assert result.problem_counts == counts == result.external.problem_counts
    note = result.problem_note()
    assert note is not None and "\n" not in note and str(result.external.problems_path) in note
    assert "7 of 9 caption row(s) not imported" in note
    for phrase in ("1 matched no pair", "1 had an empty caption", "1 had an unknown modality", "3 had a caption that"):
        assert phrase in note
    assert "1 repeated a (pair, modality) caption" in note
    df = _captions(out, "api")
    assert df["caption"].tolist() == ["A car.", "A warm person."]  # never a repr, the first of a duplicate
    problems = pd.read_parquet(out / "external-api.problems.parquet")
    assert (
        problems.set_index("row").loc[1, "kind"] == "duplicate"
        and "row 0" in problems.set_index("row").loc[1, "message"]
    )
    assert json.loads((out / "external-api.json").read_text())["problems_by_kind"] == counts
    clean = tmp_path / "clean.jsonl"
    clean.write_text(json.dumps({"pair_id": "syn-00", "caption": "A car."}) + "\n")
    assert run_caption(pairs, out, external=clean).problem_note() is None


def test_a_file_matching_no_pair_is_one_line_naming_the_problems_file(tmp_path: Path) -> None:
    pairs = _synthetic_pairs(tmp_path)
    src = tmp_path / "other.jsonl"
    src.write_text("".join(json.dumps({"pair_id": f"other-{i}", "caption": "A car."}) + "\n" for i in range(3)))
    out = tmp_path / "captions"
    with pytest.raises(EntityLabelError) as e:
        run_caption(pairs, out, external=src)
    msg = str(e.value)
    assert "no caption matched any pair" in msg and "3 matched no pair" in msg
    assert str(out / "external-other.problems.parquet") in msg and "\n" not in msg
    assert len(pd.read_parquet(out / "external-other.problems.parquet")) == 3
    assert not list(out.glob("shard-*"))
