"""`entitylabel run pipelines/roadscene.yaml --data ../shared/data/RoadScene` end to end (real images).

Real VLM captions cannot be made here, so the captions are an external file written by this test from a few
templates (labelled external:fixture); the images, pairing, export and review page are real.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from entitylabel.cli import main

REPO = Path(__file__).resolve().parents[1]
THINGS = ["a car", "two cars", "a pedestrian", "a truck", "a bicycle", "trees", "a traffic light", "a bus"]


def _captions(root: Path, dest: Path) -> Path:
    lines = []
    for i, f in enumerate(sorted((root / "cropinfrared").iterdir())):
        if f.suffix.lower() != ".jpg":
            continue
        a, b = THINGS[i % len(THINGS)], THINGS[(i * 3 + 1) % len(THINGS)]
        lines.append({"image": f"cropinfrared/{f.name}", "caption": f"A thermal image of a road with {a} and {b}."})
        lines.append({"image": f"crop_LR_visible/{f.name}", "caption": f"A street with {a}; there is no dog."})
    dest.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return dest


def test_roadscene_pipeline_with_external_captions(shared_data, tmp_path, capsys):
    root = shared_data / "RoadScene"
    caps = _captions(root, tmp_path / "roadscene-captions.jsonl")
    run = tmp_path / "run"
    args = [
        "run",
        str(REPO / "pipelines" / "roadscene.yaml"),
        "--data",
        str(root),
        "--out",
        str(run),
        "--external",
        str(caps),
    ]
    main(args)
    out = capsys.readouterr().out
    assert "review page:" in out

    import entitylabel

    ds = entitylabel.load(run / "export", "roadscene")
    assert sum(len(s) for s in ds.values()) == 221
    split = next(iter(ds.values()))
    row = split[0]
    assert row["ir"].size == row["vis"].size and row["pair_id"].startswith("roadscene-FLIR_")
    names = split.features["entities"].feature.names
    assert "car" in names and "dog" not in names  # "no dog" is negated, never a label

    page = (run / "report.html").read_text()
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1))
    assert len(data["pairs"]) == 221 and "car" in data["labels"]
    assert any(r["reason"].startswith("negat") and r["phrase"] == "dog" for r in data["rejected"])
    assert len(page) < 8_000_000  # thumbnails keep it small

    main(args)  # rerun: nothing to do
    assert "ran in" not in capsys.readouterr().out
