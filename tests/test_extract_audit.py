"""extract --annotations: caption-derived labels audited against the dataset's own boxes, per entity and modality,
in extract.json, the CLI summary, the review page payload and the dataset card."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from extract_support import nlp, write_jsonl, write_vocab

from entitylabel.annotations import load_annotations
from entitylabel.errors import EntityLabelError
from entitylabel.extract.audit import audit_labels
from entitylabel.extract.stage import run_extract
from entitylabel.io import write_parquet
from entitylabel.pairs import PAIRS_SCHEMA

CAPTIONS = {  # pair -> (IR caption, VIS caption)
    "d-001": ("A man walks a dog on the road.", "A man and his dog on a street."),
    "d-002": ("Cars on a road at night.", "Two cars parked near a building."),
    "d-003": ("A building with trees.", "Trees in front of a house."),
}


def manifest(root: Path, stems: list[str]) -> Path:
    rows = [{"pair_id": s, "dataset": "d", "split": "all", "ir_path": f"ir/{s}.png", "vis_path": f"vi/{s}.png",
             "width": 100, "height": 100, "ir_mode": "L", "vis_mode": "RGB", "ir_sha256": "", "vis_sha256": ""}
            for s in stems]  # fmt: skip
    path = root / "pairs.parquet"
    write_parquet(pd.DataFrame(rows), path, schema=PAIRS_SCHEMA, metadata={"entitylabel.root": str(root)})
    return path


def labels(root: Path) -> Path:
    """Boxes: d-001 person (IR and VIS) and a car only IR sees; d-002 a car (VIS) and a person (IR);
    d-003 nothing; d-004 (no caption) a person."""
    lab = root / "labels"
    (lab / "ir").mkdir(parents=True)
    (lab / "vi").mkdir()
    (lab / "classes.txt").write_text("person\ncar\ndog\n")
    box = " 0.5 0.5 0.2 0.2\n"
    for stem, ir, vis in (("d-001", "01", "0"), ("d-002", "0", "1"), ("d-003", "", ""), ("d-004", "0", "0")):
        (lab / "ir" / f"{stem}.txt").write_text("".join(c + box for c in ir))
        (lab / "vi" / f"{stem}.txt").write_text("".join(c + box for c in vis))
    return lab


def test_audit_counts_by_hand(tmp_path: Path) -> None:
    pairs = pd.read_parquet(manifest(tmp_path, ["d-001", "d-002", "d-003", "d-004"]))
    ann = load_annotations(labels(tmp_path), pairs)
    predicted = {"d-001": ["person", "dog", "road"], "d-002": ["car", "road"], "d-003": ["tree"], "d-004": []}
    audit = audit_labels(predicted, ann, {"d-001", "d-002", "d-003"}, ["person", "car", "dog", "road", "tree"])
    assert audit["pairs"] == 3  # d-004 has no caption: not audited
    assert audit["covered"] == ["person", "car", "dog"] and audit["unaudited"] == ["road", "tree"]
    ir = audit["modalities"]["ir"]["entities"]
    # IR: person in d-001, d-002 (gold); predicted in d-001 only -> P 1, R 0.5; car gold d-001, predicted d-002
    assert ir["person"] == {"tp": 1, "fp": 0, "fn": 1, "precision": 1.0, "recall": 0.5, "gold": 2, "predicted": 1}
    assert ir["car"]["precision"] == 0.0 and ir["car"]["recall"] == 0.0
    assert ir["dog"] == {"tp": 0, "fp": 1, "fn": 0, "precision": 0.0, "recall": None, "gold": 0, "predicted": 1}
    vis = audit["modalities"]["vis"]["entities"]
    assert vis["car"]["precision"] == 1.0 and vis["person"]["recall"] == 1.0
    union = audit["modalities"]["all"]
    # all: gold d-001 {person, car}, d-002 {person, car}; predicted d-001 {person, dog}, d-002 {car}
    assert union["micro"] == {"tp": 2, "fp": 1, "fn": 2, "precision": 0.6667, "recall": 0.5}


def test_extract_with_annotations_end_to_end(tmp_path: Path, entitylabel_cache, capsys) -> None:
    from entitylabel.cli import main
    from entitylabel.report.tables import build_payload, load_run

    rows = [{"pair_id": p, "source": src, "caption": c}
            for p, caps in CAPTIONS.items() for src, c in zip(("ir:b:m1", "vis:b:m1"), caps, strict=True)]  # fmt: skip
    captions = write_jsonl(tmp_path / "captions.jsonl", rows)
    vocab = write_vocab(tmp_path)
    pairs = manifest(tmp_path, ["d-001", "d-002", "d-003", "d-004"])
    lab = labels(tmp_path)
    res = run_extract(captions, vocab, tmp_path / "run", pairs=pairs, annotations=lab, nlp=nlp(), min_confidence=0.0)
    info = json.loads((tmp_path / "run" / "entities" / "extract.json").read_text())
    audit = info["audit"]
    assert res.audit == audit and audit["pairs"] == 3 and audit["source"] == "labels"
    assert set(audit["modalities"]) == {"all", "ir", "vis"}
    assert "road" in audit["unaudited"] and "road" not in audit["modalities"]["all"]["entities"]
    assert audit["modalities"]["all"]["entities"]["person"]["gold"] == 2
    # the review page carries it
    tables, _ = load_run(pairs, None, tmp_path / "run" / "entities")
    payload = build_payload(tables)
    assert payload["summary"]["audit"]["pairs"] == 3
    # the CLI prints it; without --pairs it is one error line
    main(["extract", str(captions), "--vocab", str(vocab), "--out", str(tmp_path / "cli"), "--pairs", str(pairs),
          "--annotations", str(lab)])  # fmt: skip
    assert "measured against the dataset's own boxes on 3 pairs" in capsys.readouterr().out
    with pytest.raises(EntityLabelError, match="needs --pairs"):
        run_extract(captions, vocab, tmp_path / "x", annotations=lab, nlp=nlp())
    assert not (tmp_path / "x").exists()
    # the dataset card says it
    from entitylabel.export.card import _entities_section

    lines = _entities_section({"config": "d", "label_space": res.label_space, "entities": {"extract": info}})
    text = "\n".join(lines)
    assert "measured against the dataset's own boxes on 3 pairs" in text and "unaudited, not wrong" in text
    assert "| ir | person |" in text
