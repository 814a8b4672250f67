"""The synthetic demo sample: deterministic, discoverable, captions labelled as synthetic."""

from __future__ import annotations

import json
from pathlib import Path

from entitylabel.discover import discover
from entitylabel.sample import SAMPLE_CAPTION_NOTE, make_sample


def test_sample_is_deterministic_and_discoverable(tmp_path: Path) -> None:
    a = make_sample(tmp_path / "a", n=4)
    b = make_sample(tmp_path / "b", n=4)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 9
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    res = discover(a)
    assert res.layout == "tno" and len(res.pairs) == 4 and len(res.problems) == 0
    rows = [json.loads(line) for line in (a / "captions.jsonl").read_text().splitlines()]
    assert {r["modality"] for r in rows} == {"ir", "vis"} and len(rows) == 8
    assert all(r["note"] == SAMPLE_CAPTION_NOTE for r in rows)
    assert {r["image"] for r in rows} == {p.name for p in (a / "ir").iterdir()}
