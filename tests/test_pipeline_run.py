"""`entitylabel run` on a tiny synthetic dataset with external captions: skipping, reruns, failures, demo."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tiny_vlms import tiny_blip, tiny_vlm_root  # noqa: F401 - fixtures

from entitylabel.cli import main
from entitylabel.errors import EntityLabelError
from entitylabel.pipeline.runner import StageFailed, hash_tree, manifest_path, run_pipeline
from entitylabel.sample import make_sample

REPO = Path(__file__).resolve().parents[1]


def _setup(tmp_path: Path, n: int = 6) -> Path:
    data = make_sample(tmp_path / "data", n=n, size=(96, 72))
    shutil.copy(REPO / "vocab" / "ivif.yaml", tmp_path / "vocab.yaml")
    cfg = tmp_path / "toy.yaml"
    cfg.write_text(f"""\
name: toy
out: run
data: {{root: data, layout: tno, dataset: toy}}
caption:
  use: external
  external: {data / "captions.jsonl"}
  external_name: fixture
extract: {{vocab: vocab.yaml, min_pairs: 1}}
export: {{test_fraction: 0.34}}
report: {{page_size: 4, thumb_size: 48}}
""")
    return cfg


def _statuses(result) -> dict[str, str]:
    return {s.stage: s.status for s in result.stages}


def _snapshot(run: Path) -> dict[str, str]:
    keep = ("pairs.parquet", "captions", "entities", "export", "report.html")
    return {k: hash_tree(run / k) for k in keep}


def test_run_rerun_and_vocabulary_change(tmp_path):
    cfg = _setup(tmp_path)
    run = tmp_path / "run"
    first = run_pipeline(cfg)
    assert first.ran == ["discover", "caption", "extract", "export", "report"]
    assert first.report == (run / "report.html").resolve() and first.export == run / "export"
    for stage in ("discover", "caption", "extract", "export", "report"):
        m = json.loads(manifest_path(run, stage).read_text())
        assert m["stage"] == stage and m["entitylabel_version"] and m["inputs"] and m["outputs"]
        assert all(v for v in m["outputs"].values())
    notice = json.loads(manifest_path(run, "caption").read_text())["notice"]
    assert "external file captions.jsonl (external:fixture), not from a VLM" in notice
    assert "not from a VLM" in (run / "report.html").read_text()

    import entitylabel

    ds = entitylabel.load(run / "export", "toy")
    assert sum(len(s) for s in ds.values()) == 6
    before = _snapshot(run)
    files = [p for p in run.rglob("*") if p.is_file() and not p.name.endswith(("log.jsonl", ".lock"))]
    mtimes = {p: p.stat().st_mtime_ns for p in files}

    again = run_pipeline(cfg)  # nothing changed: nothing runs, nothing is rewritten
    assert again.ran == []
    assert set(_statuses(again).values()) == {"skipped"}
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes

    vocab = tmp_path / "vocab.yaml"
    vocab.write_text(vocab.read_text().replace('version: "1.0"', 'version: "1.1"'))
    changed = run_pipeline(cfg)
    assert changed.ran == ["extract", "export", "report"]
    after = _snapshot(run)
    assert after["pairs.parquet"] == before["pairs.parquet"] and after["captions"] == before["captions"]
    assert after["entities"] != before["entities"]
    assert json.loads((run / "entities" / "label_space.json").read_text())["vocab_version"] == "1.1"


def test_failing_stage_keeps_earlier_outputs(tmp_path):
    cfg = _setup(tmp_path)
    run = tmp_path / "run"
    run_pipeline(cfg)
    before = _snapshot(run)
    good = cfg.read_text()
    (tmp_path / "not-spacy").mkdir()  # a folder passes the load-time check; spaCy refuses it when extract runs
    cfg.write_text(good.replace("min_pairs: 1}", f"min_pairs: 1, spacy_model: {tmp_path / 'not-spacy'}}}"))
    with pytest.raises(StageFailed) as e:
        run_pipeline(cfg)
    msg = str(e.value)
    assert msg.startswith("stage extract failed:") and "not-spacy" in msg and "discover, caption are kept" in msg
    assert _snapshot(run) == before  # extract builds in a temporary folder; nothing earlier was touched
    assert not manifest_path(run, "extract").exists()  # so the next run redoes it
    assert manifest_path(run, "caption").exists()
    cfg.write_text(good)
    fixed = run_pipeline(cfg)
    assert fixed.ran == ["extract"]  # same vocabulary as before: same entities, export and report stay


def test_from_until_force_and_missing_outputs(tmp_path):
    cfg = _setup(tmp_path, n=4)
    run = tmp_path / "run"
    part = run_pipeline(cfg, until_stage="caption")
    assert _statuses(part) == {
        "discover": "ran",
        "caption": "ran",
        "extract": "not run",
        "export": "not run",
        "report": "not run",
    }
    assert not (run / "entities").exists()
    rest = run_pipeline(cfg, from_stage="extract")
    assert rest.ran == ["extract", "export", "report"]
    forced = run_pipeline(cfg, force=["caption"])
    assert forced.ran == ["caption"]  # same captions again: nothing downstream changes
    (run / "report.html").unlink()
    assert run_pipeline(cfg).ran == ["report"]
    with pytest.raises(EntityLabelError, match="--from export comes after --until caption"):
        run_pipeline(cfg, from_stage="export", until_stage="caption")
    with pytest.raises(EntityLabelError, match="'fuse' is not a stage"):
        run_pipeline(cfg, force=["fuse"])
    shutil.rmtree(run / "captions")
    with pytest.raises(EntityLabelError, match="--from extract: captions is missing"):
        run_pipeline(cfg, from_stage="extract")


def test_caption_source_switch_replaces_old_captions(tmp_path):
    cfg = _setup(tmp_path, n=3)
    run = tmp_path / "run"
    run_pipeline(cfg, until_stage="caption")
    other = tmp_path / "other.jsonl"
    other.write_text(
        "".join(
            json.dumps({"image": f"{i:04d}.png", "modality": "vis", "caption": "a dog"}) + "\n" for i in range(1, 4)
        )
    )
    res = run_pipeline(cfg, external=other, until_stage="extract")
    assert res.ran == ["caption", "extract"]
    names = sorted(p.name for p in (run / "captions").glob("shard-*.parquet"))
    assert names == ["shard-external-other-00000.parquet"]  # no stale fixture shards mixed in


def test_demo_offline_uses_labelled_sample_captions(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    main(["run", str(REPO / "pipelines" / "demo.yaml"), "--out", str(tmp_path / "demo")])
    out = capsys.readouterr().out
    page = (tmp_path / "demo" / "report.html").resolve()
    assert out.replace("\n", "").rstrip().endswith(str(page))  # the demo ends with the review page's path
    assert "NOT from a VLM" in out.replace("\n", " ")
    html = page.read_text()
    assert "Captions are NOT from a VLM" in html and "external:synthetic-sample" in html
    caps = list((tmp_path / "demo" / "captions").glob("shard-*.parquet"))
    import pandas as pd

    sources = set(pd.concat(pd.read_parquet(c) for c in caps)["source"])
    assert sources == {"external:synthetic-sample:ir", "external:synthetic-sample:vis"}


def test_vlm_captions_with_tiny_random_model(tmp_path, tiny_blip):  # noqa: F811 - the fixture
    """The VLM path of the caption stage through the runner (a tiny random BLIP: its captions are noise)."""
    cfg = _setup(tmp_path, n=2)
    res = run_pipeline(cfg, model=str(tiny_blip), until_stage="extract")
    assert res.ran == ["discover", "caption", "extract"]
    import pandas as pd

    caps = pd.concat(pd.read_parquet(p) for p in (tmp_path / "run" / "captions").glob("shard-*.parquet"))
    assert len(caps) == 4 and set(caps["modality"]) == {"ir", "vis"}
    assert all(s.startswith(("ir:", "vis:")) for s in caps["source"])
    assert run_pipeline(cfg, model=str(tiny_blip), until_stage="extract").ran == []
    cfg.write_text(cfg.read_text().replace("  external_name: fixture\n", "  max_new_tokens: 5\n"))
    assert run_pipeline(cfg, model=str(tiny_blip), until_stage="caption").ran == ["caption"]


def test_report_command_keeps_the_caption_notice(tmp_path):
    cfg = _setup(tmp_path, n=2)
    run_pipeline(cfg, until_stage="extract")
    main(["report", str(tmp_path / "run"), "--out", str(tmp_path / "page.html")])
    assert "not from a VLM run" in (tmp_path / "page.html").read_text()


def test_run_notes_count_each_reason_of_unimported_external_rows(tmp_path):
    cfg = _setup(tmp_path, n=3)
    rows = [
        {"image": "0001.png", "modality": "vis", "caption": "a dog on a road"},
        {"image": "0099.png", "modality": "vis", "caption": "a car"},  # no such pair
        {"image": "0002.png", "modality": "vis", "caption": ""},  # empty
        {"image": "0003.png", "modality": "sonar", "caption": "a tree"},  # bad modality
    ]
    ext = tmp_path / "mixed.jsonl"
    ext.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = run_pipeline(cfg, external=ext, until_stage="caption")
    (note,) = [n for n in res.notes if "not imported" in n]
    assert "1 matched no pair" in note and "1 had an empty caption" in note and "1 had an unknown modality" in note
