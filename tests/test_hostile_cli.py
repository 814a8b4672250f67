"""Hostile command-line and YAML inputs, round 2 (issue 20 items 6-9, 12-14 and the small ones): each case is
one line on stderr (exit 2, no traceback) or a visible note, never a silently wrong result."""

from __future__ import annotations

import pytest
from test_pipeline_run import _setup, _snapshot

from entitylabel.cli import main
from entitylabel.pipeline.runner import manifest_path, run_pipeline


def _fails(capsys, argv: list[str]) -> str:
    """Run the CLI; it must exit 2 with one `error:` line (the last) and no traceback. Returns that line."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith("error: ") and "Traceback" not in err, err
    assert sum(line.startswith("error:") for line in lines) == 1, err
    return lines[-1]


# ---- item 7: the runner's own error path ------------------------------------------------------------------


def test_an_unexpected_error_in_a_stage_is_one_line_with_its_traceback_saved(tmp_path, monkeypatch, capsys):
    cfg = _setup(tmp_path, n=2)
    run = tmp_path / "run"
    run_pipeline(cfg, until_stage="caption")
    before = _snapshot(run)

    def bug(*_a, **_k):
        raise ValueError("forced bug")

    monkeypatch.setattr("entitylabel.extract.stage.run_extract", bug)
    err = _fails(capsys, ["run", str(cfg)])
    saved = run / "stages" / "extract.error.txt"
    assert "stage extract failed: ValueError: forced bug" in err and f"traceback in {saved}" in err
    assert "During handling" not in err
    assert "Traceback" in saved.read_text() and "ValueError: forced bug" in saved.read_text()
    assert _snapshot(run)["captions"] == before["captions"] and not manifest_path(run, "extract").exists()


# ---- item 8: extract with a synset WordNet does not have --------------------------------------------------


@pytest.mark.parametrize("synset", ["nonexist.n.01", "tree.n.99"])
def test_extract_with_an_unknown_synset_says_what_vocab_check_says(tmp_path, entitylabel_cache, synset):
    from extract_support import nlp, write_jsonl, write_vocab

    from entitylabel.errors import EntityLabelError
    from entitylabel.extract.stage import run_extract
    from entitylabel.extract.vocab import check_vocab

    vocab = write_vocab(tmp_path, f'name: t\nversion: "1"\nentities:\n  dog: {{}}\n  tree:\n    synset: {synset}\n')
    captions = write_jsonl(tmp_path / "c.jsonl", [{"pair_id": "a", "source": "vis:x:m", "caption": "a dog, a tree"}])
    with pytest.raises(EntityLabelError) as checked:
        check_vocab(vocab)
    assert f"synset '{synset}' is not in WordNet 3.0" in str(checked.value)
    with pytest.raises(EntityLabelError) as extracted:
        run_extract(captions, vocab, tmp_path / "run", nlp=nlp())
    assert str(extracted.value) == str(checked.value)
    assert not (tmp_path / "run" / "entities").exists()


# ---- item 9 and the BOM: external caption files -----------------------------------------------------------


@pytest.fixture()
def syn_manifest(tmp_path):
    from caption_support import synthetic_manifest

    return synthetic_manifest(tmp_path / "syn", 2)


@pytest.mark.parametrize(
    ("name", "text", "columns"),
    [
        ("c.csv", "pair_id,PAIR_ID,caption\nsyn-00,syn-01,a dog\n", "'pair_id', 'PAIR_ID'"),
        ("c.jsonl", '{"pair_id": "syn-00", "caption": "a dog", "Caption": "a cat"}\n', "'caption', 'Caption'"),
    ],
)
def test_external_columns_differing_only_by_case_are_one_line(syn_manifest, tmp_path, capsys, name, text, columns):
    src = tmp_path / name
    src.write_text(text)
    err = _fails(capsys, ["caption", str(syn_manifest), "--external", str(src), "--out", str(tmp_path / "cap")])
    assert f"{src}: columns {columns} differ only by case or spaces — rename or drop one" in err
    assert not list((tmp_path / "cap").glob("*.parquet"))


def test_external_jsonl_with_a_byte_order_mark_is_read(syn_manifest, tmp_path):
    from entitylabel.caption import import_external
    from entitylabel.pairs import load_pairs
    from entitylabel.tables.captions import read_caption_table

    rows = '{"pair_id": "syn-00", "caption": "a dog"}\n{"pair_id": "syn-01", "caption": "a cat"}\n'
    src = tmp_path / "bom.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + rows.encode())
    res = import_external(load_pairs(syn_manifest), src, tmp_path / "cap", name="bom")
    assert (res.rows, res.matched, res.problems) == (2, 2, 0)
    assert read_caption_table(src)["caption"].tolist() == ["a dog", "a cat"]  # extract's reader too
