"""The one caption reader: extract, export and the review page read the same rows by the same rules."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from extract_support import write_jsonl

from entitylabel.errors import EntityLabelError
from entitylabel.export.inputs import read_captions as export_captions
from entitylabel.extract.reader import iter_caption_batches
from entitylabel.io import write_parquet
from entitylabel.report.tables import read_captions as report_captions
from entitylabel.tables import CAPTION_SCHEMA, read_caption_table


def _extract_rows(path: Path) -> list:
    return [r for b in iter_caption_batches(path, 2) for r in b]


def _used(path: Path) -> list[tuple[str, str, str]]:
    """(pair_id, source, caption) of the rows extract would parse, in file order."""
    return [(r.pair_id, r.source, r.caption) for r in _extract_rows(path) if r.error is None]


def _table(df: pd.DataFrame) -> list[tuple[str, str, str]]:
    return sorted(zip(df["pair_id"], df["source"], df["caption"], strict=True))


def test_a_jsonl_extract_accepts_export_and_report_accept_with_the_same_rows(tmp_path: Path) -> None:
    # `text` for caption, no source column, numeric pair ids: extract always took it, export refused it.
    path = write_jsonl(
        tmp_path / "llava.jsonl",
        [{"pair_id": 2, "text": "A dog."}, {"pair_id": "1", "text": "A car.", "modality": "ir"}],
    )
    used = sorted(_used(path))
    assert used == [("1", "llava", "A car."), ("2", "llava", "A dog.")]
    for df in (export_captions(path), report_captions(path)):
        assert df.columns.tolist() == CAPTION_SCHEMA.names
        assert _table(df) == used
    modality = export_captions(path)["modality"]
    assert [m if isinstance(m, str) else None for m in modality] == ["ir", None]


def test_modality_comes_from_the_source_when_absent(tmp_path: Path) -> None:
    rows = [
        {"pair_id": "a", "source": "vis:p:m", "caption": "x"},
        {"pair_id": "a", "source": "external:api:ir", "caption": "y"},
        {"pair_id": "a", "source": "external:api", "caption": "z"},
    ]
    df = read_caption_table(write_jsonl(tmp_path / "c.jsonl", rows))
    modality = [m if isinstance(m, str) else None for m in df["modality"]]
    assert dict(zip(df["source"], modality, strict=True)) == {
        "vis:p:m": "vis",
        "external:api:ir": "ir",
        "external:api": None,
    }


def _shards(folder: Path, *, finished: int, unfinished: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(finished + unfinished):
        rows = [{"pair_id": f"p{k}", "source": "vis:p:m", "modality": "vis", "caption": f"Caption {k}."}]
        write_parquet(pd.DataFrame(rows), folder / f"shard-{k:05d}.parquet")
        if k < finished:
            (folder / f"shard-{k:05d}.done").write_text("{}")
    pd.DataFrame({"row": [0], "key": ["x"], "kind": ["unmatched"], "message": ["m"]}).to_parquet(
        folder / "external-api.problems.parquet"
    )
    return folder


def test_a_caption_folder_is_its_finished_shards_for_every_reader(tmp_path: Path) -> None:
    folder = _shards(tmp_path / "run" / "captions", finished=2)
    expected = [("p0", "vis:p:m", "Caption 0."), ("p1", "vis:p:m", "Caption 1.")]
    assert _used(folder) == expected  # the problems file beside the shards is never read as captions
    assert _table(export_captions(folder)) == expected == _table(report_captions(folder))
    assert _table(export_captions(tmp_path / "run")) == expected  # a run folder stands for its captions/
    _shards(folder, finished=2, unfinished=1)
    for read in (_extract_rows, export_captions):  # labels and tables from a half-written folder: refused
        with pytest.raises(EntityLabelError, match="shard-00002.parquet has no .done marker"):
            read(folder)
    assert _table(report_captions(folder)) == expected  # the review page shows what is finished


def test_no_caption_matched_any_pair_names_the_problems_file(tmp_path: Path) -> None:
    folder = tmp_path / "captions"
    folder.mkdir()
    pd.DataFrame({"row": [0], "key": ["x"], "kind": ["unmatched"], "message": ["m"]}).to_parquet(
        folder / "external-api.problems.parquet"
    )
    for read in (_extract_rows, export_captions):
        with pytest.raises(EntityLabelError) as e:
            read(folder)
        msg = str(e.value)
        assert "no caption matched any pair" in msg and "external-api.problems.parquet" in msg
        assert "lack column" not in msg
    assert report_captions(folder) is None


def test_duplicate_rows_keep_the_first_everywhere_and_report_the_rest(tmp_path: Path) -> None:
    rows = [
        {"pair_id": "a", "source": "external:api:vis", "caption": "A car."},
        {"pair_id": "a", "source": "external:api:ir", "caption": "A warm person."},
        {"pair_id": "a", "source": "external:api:vis", "caption": "A bus."},  # same pair, modality, source
        {"pair_id": "b", "source": "external:api:vis", "caption": "A tree."},
    ]
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    got = _extract_rows(path)
    assert [r.problem for r in got] == [None, None, "duplicate", None]
    dup = got[2]
    assert dup.caption is None and "line 3" in dup.error and "line 1" in dup.error
    kept = [
        ("a", "external:api:ir", "A warm person."),
        ("a", "external:api:vis", "A car."),
        ("b", "external:api:vis", "A tree."),
    ]
    assert sorted(_used(path)) == kept
    assert _table(export_captions(path)) == kept == _table(report_captions(path))


@pytest.mark.parametrize("value", [["a car", "a bus"], {"text": "a car"}, 3, 2.5, True])
def test_non_string_captions_are_problem_rows_never_reprs(tmp_path: Path, value: object) -> None:
    rows = [{"pair_id": "a", "caption": value}, {"pair_id": "b", "caption": "A car."}]
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    bad, good = _extract_rows(path)
    assert bad.problem == "non_string_caption" and bad.caption is None
    assert type(value).__name__ in bad.error and "line 1" in bad.error
    assert good.problem is None and good.caption == "A car."
    for df in (export_captions(path), report_captions(path)):
        assert df["caption"].tolist() == ["A car."]


def test_non_string_captions_in_parquet_too(tmp_path: Path) -> None:
    path = tmp_path / "c.parquet"
    pd.DataFrame({"pair_id": ["a", "b"], "caption": [["a car"], ["a bus", "a dog"]]}).to_parquet(path)
    assert [r.problem for r in _extract_rows(path)] == ["non_string_caption"] * 2
    assert "row 1" in _extract_rows(path)[1].error


def test_non_utf8_jsonl_is_one_line_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    good = json.dumps({"pair_id": "a", "caption": "A car."}).encode() + b"\n"
    bad = '{"pair_id": "b", "caption": "Un caf\u00e9."}\n'.encode("latin-1")
    path.write_bytes(good * 3 + bad + good)
    for read in (_extract_rows, export_captions, report_captions):
        with pytest.raises(EntityLabelError) as e:
            read(path)
        msg = str(e.value)
        assert str(path) in msg and "not UTF-8" in msg and "line 4" in msg and "\n" not in msg


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"pair_id": "a", "caption": "x"}\n\n{"pair_id": "b", "caption": \n', encoding="utf-8")
    with pytest.raises(EntityLabelError, match="invalid JSON at line 4 \\(in the value starting at line 3\\)"):
        _extract_rows(path)


def test_extract_labels_come_from_the_first_of_duplicates_and_never_from_reprs(tmp_path: Path) -> None:
    from extract_support import nlp, write_vocab

    from entitylabel.extract.stage import run_extract

    rows = [
        {"pair_id": "a", "source": "external:api:vis", "caption": "A car on the road."},
        {"pair_id": "a", "source": "external:api:vis", "caption": "A dog on the road."},  # duplicate
        {"pair_id": "b", "source": "external:api:vis", "caption": ["a bicycle", "a tree"]},  # not a string
        {"pair_id": "b", "source": "external:api:ir", "caption": "A warm person."},
    ]
    captions = write_jsonl(tmp_path / "c.jsonl", rows)
    run_extract(captions, write_vocab(tmp_path), tmp_path / "run", nlp=nlp())
    labels = pd.read_parquet(tmp_path / "run" / "entities" / "labels.parquet")
    got = {p: sorted(e) for p, e in zip(labels["pair_id"], labels["entities"], strict=True)}
    assert got == {"a": ["car", "road"], "b": ["person"]}
    table = export_captions(captions)  # the exported caption table agrees with the labels
    assert table["caption"].tolist() == ["A car on the road.", "A warm person."]
    rejected = pd.read_parquet(tmp_path / "run" / "entities" / "rejected.parquet")
    bad = rejected[rejected["reason"] == "bad_caption"]
    assert bad["count"].sum() == 2  # the two problem rows are reported, not dropped
    assert "duplicate caption (c.jsonl line 2)" in bad["example_caption"].iloc[0]


def test_extract_on_non_utf8_jsonl_is_one_line(tmp_path: Path) -> None:
    from extract_support import nlp, write_vocab

    from entitylabel.extract.stage import run_extract

    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"pair_id": "a", "caption": "A car."}\n{"pair_id": "b", "caption": "\xff\xfe"}\n')
    with pytest.raises(EntityLabelError, match=r"c\.jsonl: not UTF-8 text: undecodable byte at line 2"):
        run_extract(path, write_vocab(tmp_path), tmp_path / "run", nlp=nlp())
    assert not (tmp_path / "run" / "entities").exists()
