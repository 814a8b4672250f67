"""Reading captions and rejecting bad ones: formats, empty/non-English/token-soup text, very long captions."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from extract_support import write_jsonl

from entitylabel.errors import EntityLabelError
from entitylabel.extract.quality import caption_problem, chunks
from entitylabel.extract.reader import iter_caption_batches

ROWS = [{"pair_id": f"p{i}", "source": "vis:brief:m", "caption": f"A car number {i}."} for i in range(7)]


def _all(path, batch_size=3):
    return [r for b in iter_caption_batches(path, batch_size) for r in b]


def test_jsonl_parquet_and_folder_read_the_same(tmp_path):
    jl = write_jsonl(tmp_path / "c.jsonl", ROWS)
    pq_path = tmp_path / "shards" / "shard-00000.parquet"
    pq_path.parent.mkdir()
    pd.DataFrame(ROWS).to_parquet(pq_path)
    a, b, c = _all(jl), _all(pq_path), _all(pq_path.parent)
    assert a == b == c
    assert [r.pair_id for r in a] == [f"p{i}" for i in range(7)]
    batches = list(iter_caption_batches(jl, 3))
    assert [len(x) for x in batches] == [3, 3, 1]


def test_caption_folder_reads_only_finished_shards(tmp_path):
    folder = tmp_path / "captions"
    folder.mkdir()
    pd.DataFrame(ROWS).to_parquet(folder / "shard-00000.parquet")
    (folder / "shard-00000.done").write_text("fp")
    # the caption stage keeps its import problems beside the shards: never read as captions
    pd.DataFrame({"row": [1], "key": ["x"], "kind": ["unmatched"], "message": ["m"]}).to_parquet(
        folder / "external-api.problems.parquet"
    )
    assert [r.pair_id for r in _all(folder)] == [f"p{i}" for i in range(7)]
    pd.DataFrame(ROWS).to_parquet(folder / "shard-00001.parquet")  # written, marker not yet: a half run
    with pytest.raises(EntityLabelError, match="shard-00001.parquet has no .done marker"):
        _all(folder)


def test_concatenated_pretty_printed_json_objects(tmp_path):
    path = tmp_path / "pretty.json"
    path.write_text("".join(json.dumps(r, indent=4) + "\n" for r in ROWS), encoding="utf-8")
    assert [r.caption for r in _all(path)] == [r["caption"] for r in ROWS]


def test_text_column_and_missing_source_default_to_file_stem(tmp_path):
    path = write_jsonl(tmp_path / "llava.jsonl", [{"pair_id": 1, "text": "A dog."}])
    (row,) = _all(path)
    assert (row.pair_id, row.source, row.caption) == ("1", "llava", "A dog.")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"pair_id": "a"}\n', "caption"),
        ('{"caption": "x"}\n', "pair_id"),
        ('{"pair_id": "a", "caption": "x"}\n{"pair_id": "b", "caption": \n', "invalid JSON"),
    ],
)
def test_broken_caption_files_are_one_clear_error(tmp_path, content, needle):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EntityLabelError, match=needle) as e:
        _all(path)
    assert "bad.jsonl" in str(e.value)


def test_missing_captions_path_is_a_clear_error(tmp_path):
    with pytest.raises(EntityLabelError, match="not found"):
        _all(tmp_path / "nope.jsonl")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (None, "empty"),
        ("", "empty"),
        ("   \n\t ", "whitespace"),
        ("一辆汽车停在路边，旁边有一棵树。", "non_english"),
        ("Une voiture est garée dans la rue et il y a des arbres.", "non_english"),
        ("Ein Auto steht auf der Straße und die Bäume sind grün.", "non_english"),
        ("car car car car car car car car car car", "token_soup"),
        ("x7#q ##b zzkt 9f&& qqq1 @@@ %%%", "token_soup"),
        ("!!! ??? ... ---", "token_soup"),
        ("A man walks his dog across the street at night.", None),
        ("car, tree, road, person, building", None),  # a keyword list is a fine caption
        ("Three cars.", None),
    ],
)
def test_caption_problems(text, problem):
    assert caption_problem(text) == problem


def test_long_text_is_chunked_at_sentence_ends():
    text = " ".join(f"Sentence {i} mentions a car on the road." for i in range(600))  # ~24k characters
    parts = chunks(text, 5000)
    assert len(parts) >= 5 and all(len(p) <= 5000 for p in parts)
    assert all(p.endswith(".") for p in parts)
    assert sum(p.count("Sentence") for p in parts) == 600


def test_one_giant_sentence_is_cut_at_spaces():
    text = "car " * 6000
    parts = chunks(text, 5000)
    assert all(len(p) <= 5000 for p in parts) and sum(p.count("car") for p in parts) == 6000
