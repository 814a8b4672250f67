"""Pipeline YAML validation: every mistake is one line naming the file, line and key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from entitylabel.cli import main
from entitylabel.errors import EntityLabelError
from entitylabel.pipeline.config import describe_schema, load_config

REPO = Path(__file__).resolve().parents[1]
VOCAB = REPO / "vocab" / "ivif.yaml"

GOOD = f"""\
name: toy
out: run
data:
  root: data
caption:
  model: some/model
  batch_size: 2
extract:
  vocab: {VOCAB}
"""


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    p = tmp_path / "p.yaml"
    p.write_text(text)
    return p


def _error(tmp_path: Path, text: str, **kw) -> str:
    with pytest.raises(EntityLabelError) as e:
        load_config(_write(tmp_path, text), **kw)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_good_file_paths_relative_to_the_file(tmp_path):
    cfg = load_config(_write(tmp_path, GOOD))
    assert cfg.data.root == tmp_path / "data"
    assert cfg.run_dir == tmp_path / "run"
    assert cfg.export_dir == tmp_path / "run" / "export"
    assert cfg.export_config == "toy"
    assert cfg.caption.batch_size == 2 and cfg.caption.use == "vlm"


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        (GOOD + "colour: red\n", ":10:", "colour: unknown key"),
        (GOOD.replace("batch_size: 2", "batch_sise: 2"), ":7:", "caption.batch_sise: unknown key"),
        (GOOD.replace("batch_size: 2", "batch_size: eight"), ":7:", "caption.batch_size: expected an integer"),
        (GOOD.replace("batch_size: 2", "batch_size: 0"), ":7:", "caption.batch_size: must be at least 1"),
        (GOOD.replace("batch_size: 2", "batch_size: true"), ":7:", "caption.batch_size: expected an integer"),
        (GOOD.replace("batch_size: 2", "use: maybe"), ":7:", "caption.use: expected one of vlm, external, auto"),
        (GOOD.replace("batch_size: 2", "modalities: [ir, uv]"), ":7:", "caption.modalities.1: expected one of"),
        (GOOD.replace(str(VOCAB), "nope.yaml"), ":9:", "extract.vocab: file not found"),
        (GOOD.replace("root: data", "root: missing"), ":4:", "data.root: folder not found"),
        (GOOD.replace("  root: data\n", ""), "p.yaml", "data.root: not set"),
        (GOOD.replace("name: toy\n", ""), "p.yaml", "name: missing required key"),
        (GOOD.replace("data:\n  root: data", "data: [1, 2]"), ":3:", "data: expected a mapping"),
        (GOOD.replace("  model: some/model\n", ""), "p.yaml", "caption.model: not set"),
        (GOOD.replace("batch_size: 2", "use: external"), "p.yaml", "caption.external: not set"),
        (
            GOOD.replace("batch_size: 2", "prompts: [default, my/prompt.txt]"),
            ":7:",
            "caption.prompts.1: prompt file not found",
        ),
        (GOOD.replace("batch_size: 2", "batch_size: [2"), ":8:", "YAML syntax error"),
        (GOOD + "  options: {min_confidence: 0.4}\n", ":10:", "extract.options: unknown key"),
        (GOOD + "  min_confidence: high\n", ":10:", "extract.min_confidence: expected a number"),
        (GOOD + "  min_confidence: 1.5\n", ":10:", "extract.min_confidence: must be between 0.0 and 1.0"),
        (GOOD + "  target_precision: 1.2\n", ":10:", "extract.target_precision: must be between 0.0 and 1.0"),
        (GOOD + "  target_precision: high\n", ":10:", "extract.target_precision: expected a number"),
        ("- just\n- a list\n", "p.yaml", "must be a mapping"),
    ],
)
def test_mistakes_are_one_line_with_line_and_key(tmp_path, text, where, what):
    msg = _error(tmp_path, text)
    assert where in msg and what in msg, msg


def test_vocabulary_by_shipped_name_as_on_the_cli(tmp_path):
    cfg = load_config(_write(tmp_path, GOOD.replace(str(VOCAB), "ivif")))
    assert cfg.extract.vocab == VOCAB
    (tmp_path / "ivif").write_text(VOCAB.read_text())  # a file of that name wins, as on the CLI
    assert load_config(_write(tmp_path, GOOD.replace(str(VOCAB), "ivif"))).extract.vocab == tmp_path / "ivif"


def test_unknown_key_lists_known_keys(tmp_path):
    msg = _error(tmp_path, GOOD.replace("batch_size: 2", "batch_sise: 2"))
    assert "known keys here:" in msg and "batch_size" in msg


def test_overrides(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (tmp_path / "caps.jsonl").write_text("{}\n")
    cfg = load_config(_write(tmp_path, GOOD.replace("  root: data\n", "")), data=other, out=tmp_path / "o")
    assert cfg.data.root == other and cfg.run_dir == tmp_path / "o"
    ext = GOOD.replace("batch_size: 2", f"use: external\n  external: {tmp_path / 'caps.jsonl'}")
    assert load_config(_write(tmp_path, ext), model="local/model").caption.use == "vlm"
    cfg = load_config(_write(tmp_path, GOOD), external=tmp_path / "caps.jsonl")
    assert cfg.caption.use == "external" and cfg.caption.external == tmp_path / "caps.jsonl"
    assert "--data folder not found" in _error(tmp_path, GOOD, data=tmp_path / "nowhere")
    moved = GOOD.replace("root: data", "root: moved-away")  # a value that is overridden is not checked
    assert load_config(_write(tmp_path, moved), data=other).data.root == other
    assert "not both" in _error(tmp_path, GOOD, model="m", external=tmp_path / "caps.jsonl")


def test_target_precision_key_reaches_the_extract_settings(tmp_path):
    assert load_config(_write(tmp_path, GOOD)).extract.target_precision is None
    assert load_config(_write(tmp_path, GOOD + "  target_precision: 0.9\n")).extract.target_precision == 0.9


def test_safe_load_refuses_python_tags(tmp_path):
    msg = _error(tmp_path, GOOD + "description: !!python/object/apply:os.system ['echo hi']\n")
    assert "YAML syntax error" in msg or "could not determine a constructor" in msg


@pytest.mark.parametrize("name", ["tno", "roadscene", "m3fd", "msrs", "demo"])
def test_shipped_pipelines_load(tmp_path, name):
    cfg = load_config(REPO / "pipelines" / f"{name}.yaml", data=None if name == "demo" else tmp_path)
    assert cfg.name == name and cfg.extract.vocab == REPO / "vocab" / "ivif.yaml"
    assert cfg.run_dir == REPO / "outputs" / name
    model = cfg.caption.model
    assert model == ("Salesforce/blip-image-captioning-large" if name == "demo" else "Qwen/Qwen2.5-VL-7B-Instruct")


def test_dataset_pipelines_need_data(tmp_path):
    with pytest.raises(EntityLabelError, match=r"roadscene.yaml:\d+: data.root: not set — pass --data"):
        load_config(REPO / "pipelines" / "roadscene.yaml")


def test_schema_is_documented():
    doc = describe_schema()
    assert "caption.external:" in doc and "extract.min_pairs:" in doc and "report.page_size:" in doc


def test_cli_reports_a_bad_pipeline_in_one_line(tmp_path, capsys):
    p = _write(tmp_path, GOOD.replace("batch_size: 2", "batch_size: eight"))
    with pytest.raises(SystemExit) as e:
        main(["run", str(p)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "caption.batch_size: expected an integer" in err and "Traceback" not in err


def test_annotations_keys_for_the_extract_audit_and_the_export(tmp_path):
    text = GOOD + "  annotations: data/labels\nexport:\n  annotations: data/labels\n  annotation_vocab: ivif\n"
    cfg = load_config(_write(tmp_path, text))
    assert cfg.extract.annotations == cfg.export.annotations == tmp_path / "data" / "labels"
    assert cfg.export.annotation_vocab == VOCAB
    assert "annotations" in describe_schema()
