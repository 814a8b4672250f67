"""The precision knob: threshold from calibrated confidences, expected precision/recall, and where they are shown."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from extract_support import nlp, write_jsonl, write_vocab

from entitylabel.export.card import _confidence_lines
from entitylabel.extract.precision import expected_quality, threshold_for_precision
from entitylabel.extract.stage import run_extract
from entitylabel.report.tables import _expected_quality


def test_knob_picks_the_threshold_whose_expected_precision_is_closest_to_the_target():
    conf = [0.3, 0.99, 0.8, 0.6, 0.95, 0.9]  # sorted: .99 .95 .9 .8 .6 .3; running means .99 .97 .947 .91 .848 .757
    assert threshold_for_precision(conf, 0.9) == 0.8
    assert threshold_for_precision(conf, 0.94) == 0.9
    assert threshold_for_precision(conf, 0.95) == 0.9  # .947 is nearer .95 than .97 is: not the lowest above
    assert threshold_for_precision(conf, 0.87) == 0.6  # .848 is nearer than .91: below the target is allowed
    assert threshold_for_precision(conf, 0.75) == 0.3  # everything
    assert threshold_for_precision(conf, 0.999) is None  # not even the best one: nothing to accept
    assert threshold_for_precision([], 0.9) is None


def test_an_equal_distance_goes_to_the_higher_precision():
    assert threshold_for_precision([1.0, 0.8], 0.95) == 1.0  # means 1.0 and 0.9: both 0.05 away
    assert threshold_for_precision([1.0, 0.8], 0.94) == 0.8


def test_a_threshold_accepts_every_tied_candidate_so_ties_are_judged_together():
    # accepting the 0.85s means accepting both: means .95, then (.95 + .85 + .85) / 3 = .883 (never .9)
    assert threshold_for_precision([0.85, 0.95, 0.5, 0.85], 0.92) == 0.95  # one 0.85 alone would give .9
    assert threshold_for_precision([0.85, 0.95, 0.5, 0.85], 0.88) == 0.85


def test_expected_precision_and_recall():
    q = expected_quality([0.9, 0.8], [0.9, 0.8, 0.3])
    assert q == {"expected_precision": 0.85, "expected_recall": 0.85}
    assert expected_quality([], [0.4]) == {"expected_precision": None, "expected_recall": 0.0}


ROWS = [
    {"pair_id": "a", "source": "vis:p:m", "caption": "A dog sits on a bench next to a car."},
    {"pair_id": "b", "source": "vis:p:m", "caption": "A car on the road. There might be a tree."},
    {"pair_id": "c", "source": "vis:p:m", "caption": "A man rides a bicycle past a building, a tree and a bench."},
    {"pair_id": "d", "source": "vis:p:m", "caption": "Two cats."},
]


@pytest.mark.parametrize("target", [0.5, 0.9, 0.999])
def test_stage_applies_the_knob_and_states_what_it_expects(tmp_path, entitylabel_cache, target):
    captions, vocab = write_jsonl(tmp_path / "c.jsonl", ROWS), write_vocab(tmp_path)
    run_extract(captions, vocab, tmp_path / "run", nlp=nlp(), target_precision=target)
    ents = pd.read_parquet(tmp_path / "run" / "entities" / "entities.parquet")
    info = json.loads((tmp_path / "run" / "entities" / "extract.json").read_text())
    d = info["denoise"]
    conf = ents.confidence.to_numpy()
    assert info["settings"]["target_precision"] == target and d["target_precision"] == target
    t = threshold_for_precision(conf, target)
    if t is None:  # nothing reaches it: no labels, and nothing claimed about them
        assert not ents.accepted.any() and d["estimated_precision"] is None and d["threshold"] > conf.max()
        return
    assert d["threshold"] == t
    assert ents.accepted.tolist() == (conf >= t).tolist()
    accepted = conf[ents.accepted.to_numpy()]
    assert d["estimated_precision"] == round(accepted.mean(), 4)
    others = [conf[conf >= u].mean() for u in set(conf)]  # no other threshold's set is nearer the target
    assert all(abs(accepted.mean() - target) <= abs(m - target) + 1e-9 for m in others)
    assert d["expected_recall"] == round(accepted.sum() / conf.sum(), 4)
    assert "captions name" in d["expected_recall_about"]


def test_without_the_knob_min_confidence_is_the_threshold(tmp_path, entitylabel_cache):
    captions, vocab = write_jsonl(tmp_path / "c.jsonl", ROWS), write_vocab(tmp_path)
    run_extract(captions, vocab, tmp_path / "run", nlp=nlp(), min_confidence=0.6)
    ents = pd.read_parquet(tmp_path / "run" / "entities" / "entities.parquet")
    d = json.loads((tmp_path / "run" / "entities" / "extract.json").read_text())["denoise"]
    assert d["threshold"] == 0.6 and d["target_precision"] is None
    assert ents.accepted.tolist() == (ents.confidence >= 0.6).tolist()


def test_card_and_review_page_state_the_expected_numbers_escaped():
    denoise = {
        "about": "calibrated <b>|</b> estimate",
        "estimated_precision": 0.9123,
        "expected_recall": 0.6071,
        "threshold": 0.5312,
        "target_precision": 0.9,
    }
    text = "\n".join(_confidence_lines(denoise, 0.35))
    assert "confidence >= 0.5312" in text and "--target-precision 0.9" in text
    assert "Expected precision of the released labels: 0.912" in text and "expected recall: 0.607" in text
    assert "relative to the objects the captions name" in text
    assert "<b>" not in text and "&lt;b&gt;\\|&lt;/b&gt;" in text
    line = _expected_quality({"denoise": denoise})
    assert (
        line
        == "precision 0.912 · recall 0.607 of what the captions name · confidence >= 0.5312 (--target-precision 0.9)"
    )
    # values that are not numbers (a hand-edited extract.json) are left out, never rendered
    assert _expected_quality({"denoise": {**denoise, "estimated_precision": "<script>"}}) == ""
    assert "script" not in "\n".join(_confidence_lines({**denoise, "threshold": "<script>"}, "<script>"))


def test_review_page_header_carries_the_expected_numbers_from_extract_json(tmp_path):
    import re

    from report_run import make_run

    from entitylabel.report import build_report

    run = make_run(tmp_path, n=3)
    denoise = {"estimated_precision": 0.9, "expected_recall": 0.5, "threshold": 0.61, "target_precision": 0.9}
    (run / "entities" / "extract.json").write_text(json.dumps({"denoise": denoise}), encoding="utf-8")
    page = build_report(run).read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)[1])
    assert data["summary"]["expected"] == (
        "precision 0.900 · recall 0.500 of what the captions name · confidence >= 0.61 (--target-precision 0.9)"
    )
