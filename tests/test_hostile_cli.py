"""Hostile command-line and YAML inputs, round 2 (issue 20 items 6-9, 12-14 and the small ones): each case is
one line on stderr (exit 2, no traceback) or a visible note, never a silently wrong result."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_pipeline_config import GOOD, VOCAB, _write
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


# ---- item 12: training hyper-parameters and run settings, checked at parse time ---------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-minutes", "nan"], "--max-minutes: must be a finite number, got nan"),
        (["--max-minutes", "0"], "--max-minutes: must be above 0, got 0.0"),
        (["--set", "lr=nan"], "--set lr: must be a finite number, got nan"),
        (["--set", "lr=inf"], "--set lr: must be a finite number, got inf"),
        (["--set", "lr=0"], "--set lr: must be above 0 and at most 1, got 0.0"),
        (["--set", "patch_size=0"], "--set patch_size: must be between 16 and 1024, got 0"),
        (["--set", "patch_size=30"], "--set patch_size: must be a multiple of 4, got 30"),
        (["--set", "patch_size=100000"], "--set patch_size: must be between 16 and 1024, got 100000"),
        (["--set", "batch_size=-1"], "--set batch_size: must be between 1 and 1024, got -1"),
        (["--set", "seed=-3"], "--set seed: must be between 0 and 4294967295, got -3"),
        (["--set", "patch_size=1024"], "batch_size x patch_size²: 8 x 1024² = 8,388,608 pixels a step is over"),
        (["--set", "heads=5"], "dim and heads: dim (48) must be a multiple of heads (5)"),
        (["--set", "entity_template={nam}"], "entity_template: '{nam}' is not a template with {name}"),
        (["--lambda-cls", "nan"], "--lambda-cls: must be a finite number, got nan"),
        (["--lambda-cls", "-1"], "--lambda-cls: must be between 0 and 10000, got -1.0"),
        (["--val-pairs", "0"], "--val-pairs: must be between 1 and 100000, got 0"),
        (["--val-points", "0"], "--val-points: must be between 1 and 1000, got 0"),
        (["--status-every", "-5"], "--status-every: must be at least 0, got -5"),
    ],
)
def test_bad_training_values_are_refused_before_any_data_is_read(tmp_path, capsys, args, message):
    missing = tmp_path / "no-such-dataset"  # never opened: the values are refused first
    err = _fails(capsys, ["train", str(missing), "--out", str(tmp_path / "run"), *args])
    assert message in err and "no-such-dataset" not in err
    assert not (tmp_path / "run").exists()


def test_every_numeric_hyper_parameter_declares_its_limits_and_the_defaults_pass():
    """A new config field must say its range in config.LIMITS (the check is generic over fields)."""
    import dataclasses

    from entitylabel.fusion.config import LIMITS, FusionConfig, check_config

    numeric = {
        f.name for f in dataclasses.fields(FusionConfig) if f.type in ("int", "float") and f.name != "format_version"
    }
    assert numeric == set(LIMITS)
    check_config(FusionConfig())


def test_direct_callers_get_the_same_checks(tmp_path):
    from fusion_synth import tiny_config

    from entitylabel.errors import EntityLabelError
    from entitylabel.fusion.config import FusionConfig
    from entitylabel.fusion.train import train

    with pytest.raises(EntityLabelError, match="max_minutes: must be a finite number, got nan"):
        train(tmp_path / "ds", tmp_path / "run", tiny_config(), max_minutes=float("nan"))
    with pytest.raises(EntityLabelError, match="hyper-parameter lambda_cls: must be a finite number"):
        FusionConfig().replace(lambda_cls=float("nan"))
    from fusion_synth import make_dataset, save_dataset_folder

    folder = save_dataset_folder(make_dataset(2), tmp_path / "real")
    with pytest.raises(EntityLabelError, match="hyper-parameter lambda_cls: must be a finite number"):
        train(folder, tmp_path / "run", tiny_config(lambda_cls=float("nan")), steps=1)
    assert not (tmp_path / "run" / "checkpoint").exists()  # no config.json with a bare NaN


def test_an_unknown_split_is_an_error_listing_the_known_ones(tmp_path, capsys):
    from fusion_synth import make_dataset, save_dataset_folder

    folder = save_dataset_folder(make_dataset(2), tmp_path / "ds")
    err = _fails(capsys, ["train", str(folder), "--out", str(tmp_path / "run"), "--split", "trian", "--steps", "1"])
    assert "no split named 'trian' in this dataset (it has train)" in err
    assert not (tmp_path / "run" / "checkpoint").exists()


# ---- item 13: a device this machine does not have ---------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("nonsense", "--device nonsense: not a device (use cpu, cuda, cuda:N or mps)"),
        ("cuda:99", "--device cuda:99: "),  # no CUDA here; on a GPU machine: "this machine has N CUDA device(s)"
        ("cuda", "--device cuda: CUDA is not available on this machine — use --device cpu"),
        ("meta", "--device meta: device type 'meta' is not supported"),
    ],
)
def test_fuse_on_a_missing_device_blames_the_device_not_the_checkpoint(tmp_path, capsys, device, message):
    import torch
    from fusion_synth import synth_pair
    from PIL import Image
    from test_fusion_fuse import _checkpoint

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    run = _checkpoint(tmp_path / "run")
    ir, vis = synth_pair(0)
    Image.fromarray(ir).save(tmp_path / "ir.png")
    Image.fromarray(vis).save(tmp_path / "vis.png")
    args = ["fuse", str(run), str(tmp_path / "ir.png"), str(tmp_path / "vis.png"), "--out", str(tmp_path / "out")]
    err = _fails(capsys, [*args, "--device", device])
    assert message in err and "safetensors" not in err and "weights" not in err
    assert not (tmp_path / "out").exists()


# ---- item 6: metrics left undefined by a constant pair are visible --------------------------------------


def test_a_constant_pair_leaves_metrics_undefined_and_the_means_say_so(tmp_path, capsys):
    import json

    import numpy as np
    import pandas as pd
    from PIL import Image
    from test_fusion_evaluate import _write_pairs

    from entitylabel.fusion.evaluate import evaluate, summarize

    root = tmp_path / "data"
    pairs = _write_pairs(root, [("syn-black", "all", "black"), ("syn-ok", "all", "ok")])
    black = np.zeros((72, 88), np.uint8)
    Image.fromarray(black).save(root / "ir" / "black.png")
    Image.fromarray(np.dstack([black] * 3)).save(root / "vi" / "black.png")
    fused = tmp_path / "fused"
    fused.mkdir()
    for pid, stem in (("syn-black", "black"), ("syn-ok", "ok")):
        a, b = (np.asarray(Image.open(root / d / f"{stem}.png").convert("L")) for d in ("ir", "vi"))
        Image.fromarray(np.maximum(a, b)).save(fused / f"{pid}.png")

    table = evaluate(fused, pairs, tmp_path / "m.csv", baselines=("max",), method="net")
    rows = table[table["kind"] == "image"].set_index(["method", "pair_id"])
    for m in ("Qabf", "VIF", "SSIM"):  # 0/0, or a structure score against no structure: never a maximum
        assert np.isnan(rows.loc[("net", "syn-black"), m]) and rows.loc[("net", "syn-black"), f"n_{m}"] == 0
    assert rows.loc[("net", "syn-black"), "EN"] == 0.0 and rows.loc[("net", "syn-black"), "n_EN"] == 1
    summary = summarize(table)
    assert (summary["n"] == 2).all() and (summary["n_EN"] == 2).all()
    for m in ("Qabf", "VIF", "SSIM"):  # the mean averages one pair and says n=1
        assert (summary[f"n_{m}"] == 1).all()
        assert summary.loc["net", m] == pytest.approx(rows.loc[("net", "syn-ok"), m])
    csv = pd.read_csv(tmp_path / "m.csv")
    assert csv.loc[(csv["kind"] == "mean") & (csv["method"] == "net"), "n_Qabf"].item() == 1

    main(["evaluate", str(fused), "--pairs", str(pairs), "--baseline", "max", "--out", str(tmp_path / "m.json")])
    text = capsys.readouterr().out
    assert "(n=1)" in text
    assert "1 pair(s) with undefined metrics" in text and "syn-black: VIF, Qabf, SSIM" in text
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["undefined"] == {"syn-black": {m: ["fused", "pixel-max"] for m in ("VIF", "Qabf", "SSIM")}}


def test_evaluate_workers_must_be_at_least_one(tmp_path, capsys):
    err = _fails(capsys, ["evaluate", str(tmp_path), "--pairs", str(tmp_path), "--out", "m.csv", "--workers", "0"])
    assert "--workers: must be at least 1, got 0" in err


# ---- item 14 and the small ones: a pipeline YAML is checked completely before any stage runs -----------


def _load_error(tmp_path: Path, text: str) -> str:
    from entitylabel.errors import EntityLabelError
    from entitylabel.pipeline.config import load_config

    with pytest.raises(EntityLabelError) as e:
        load_config(_write(tmp_path, text))
    assert "\n" not in str(e.value)
    return str(e.value)


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (("name: toy", "name: road scene"), ":1:", "name: config name 'road scene' must be letters, digits"),
        (("name: toy", "name: ../../x"), ":1:", "name: outputs: unsafe output name '../../x': not a plain file name"),
        (("batch_size: 2", "batch_size: 2\nexport: {config: a/b}"), ":8:", "export.config: config name 'a/b'"),
        (("vocab:", "min_confidence: .nan\n  vocab:"), ":9:", "extract.min_confidence: must be a finite number"),
        (("batch_size: 2", "batch_size: 2\n  prompts: [nope]"), ":8:", "caption.prompts: unknown prompt 'nope'"),
        (("batch_size: 2", "batch_size: 2\n  modalities: []"), ":8:", "caption.modalities: names no modality"),
        (("batch_size: 2", "batch_size: 2\n  device: cuda:99"), ":8:", "caption.device: device cuda:99: "),
        (("batch_size: 2", "batch_size: 2\n  device: nonsense"), ":8:", "caption.device: device nonsense: not a"),
        (("batch_size: 2", "batch_size: 2\n  external_name: a b"), ":8:", "caption.external_name: --external-name"),
        (("batch_size: 2", "batch_size: 2\nexport: {caption_prompt: vis_nope}"), ":8:",
         "export.caption_prompt: 'vis_nope' is not one of the prompts captioned (ir_default, vis_default)"),
        (("root: data", "root: data\n  layout: tnoo"), ":5:", "data.layout: unknown layout 'tnoo'"),
        (("vocab:", "spacy_model: no_such_spacy_pipeline\n  vocab:"), ":9:",
         "extract.spacy_model: spaCy pipeline no_such_spacy_pipeline is not installed"),
        (("out: run", "out: data"), ":2:", "out: "),
        (("out: run", "out: data/run"), ":2:", "out: "),
        (("batch_size: 2", "batch_size: 2\nexport: {out: data/export}"), ":8:", "export.out: "),
        (("out: run", "out: $ENTITYLABEL_TEST_UNSET/run"), ":2:",
         "out: environment variable $ENTITYLABEL_TEST_UNSET is not set"),
    ],
)  # fmt: skip
def test_pipeline_values_the_stages_would_refuse_are_refused_at_load(tmp_path, monkeypatch, change, where, message):
    monkeypatch.delenv("ENTITYLABEL_TEST_UNSET", raising=False)
    old, new = change
    assert old in GOOD
    msg = _load_error(tmp_path, GOOD.replace(old, new, 1))
    assert f"p.yaml{where} {message}" in msg, msg
    if message.endswith("out: "):
        assert "is inside the dataset folder" in msg and "write outputs outside data.root" in msg


def test_a_broken_vocabulary_or_synset_is_refused_at_load(tmp_path, entitylabel_cache):
    vocab = tmp_path / "v.yaml"
    vocab.write_text("entities: [oops\n")
    assert "extract.vocab: " in _load_error(tmp_path, GOOD.replace(str(VOCAB), str(vocab)))
    vocab.write_text('name: t\nversion: "1"\nentities:\n  tree:\n    synset: tree.n.99\n')
    msg = _load_error(tmp_path, GOOD.replace(str(VOCAB), str(vocab)))
    assert "extract.vocab: " in msg and "synset 'tree.n.99' is not in WordNet 3.0" in msg


def test_a_bad_name_stops_the_run_before_discover(tmp_path, capsys):
    cfg = _setup(tmp_path, n=2)
    cfg.write_text(cfg.read_text().replace("name: toy", "name: road scene"))
    err = _fails(capsys, ["run", str(cfg)])
    assert "name: config name 'road scene'" in err and "or set export.config" in err
    assert not (tmp_path / "run").exists()  # nothing ran: no discover, no hours of captioning


def test_environment_variables_and_home_in_yaml_paths_are_expanded(tmp_path, monkeypatch):
    from entitylabel.pipeline.config import load_config

    monkeypatch.setenv("ELTEST_OUT", str(tmp_path / "outside"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    text = GOOD.replace("out: run", "out: ${ELTEST_OUT}/run").replace("batch_size: 2", "batch_size: 2\n"
                                                                         "export: {out: ~/release}")  # fmt: skip
    cfg = load_config(_write(tmp_path, text))
    assert cfg.run_dir == tmp_path / "outside" / "run" and cfg.export_dir == tmp_path / "home" / "release"


# ---- user text in rich prints: no markup, no emoji codes ----------------------------------------------------


def test_names_like_rich_markup_or_emoji_codes_print_as_they_are(tmp_path, capsys):
    from caption_support import synthetic_manifest

    folder = tmp_path / ":thumbs_up: [bold]x[/bold]"
    manifest = synthetic_manifest(folder, 2)
    src = folder / ":fire:.jsonl"
    src.write_text('{"pair_id": "syn-00", "caption": "a dog"}\n{"pair_id": "nope", "caption": "lost"}\n')
    main(["caption", str(manifest), "--external", str(src), "--out", str(folder / ":smile:")])
    text = "".join(capsys.readouterr()).replace("\n", "")  # wrapped at the terminal width, not cut
    assert ":smile:" in text and ":thumbs_up: [bold]x[/bold]" in text  # the -> folder and the problems-file note
    assert not any(ch in text for ch in "😄👍🔥")
    main(["discover", str(folder), "--out", str(tmp_path / "[red]:fire:"), "--dataset", "[red]x"])
    text = "".join(capsys.readouterr()).replace("\n", "")
    assert "red_x: layout tno" in text and "[red]:fire:/pairs.parquet" in text and "🔥" not in text
