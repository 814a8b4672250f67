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
