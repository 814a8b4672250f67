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
