"""Training: the entity path end to end, checkpoints (safetensors + JSON), resume, NaN, no-label warning."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from fusion_synth import LABELS, make_dataset, save_dataset_folder, synth_pair, tiny_config, write_pair_folder
from safetensors import safe_open

from entitylabel.errors import EntityLabelError
from entitylabel.fusion import losses
from entitylabel.fusion.checkpoint import load_model
from entitylabel.fusion.text_embed import embed_labels
from entitylabel.fusion.train import train


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_dataset_folder(make_dataset(8), tmp_path_factory.mktemp("ds"))


@pytest.fixture(scope="module")
def entity_run(labelled_folder: Path, tmp_path_factory: pytest.TempPathFactory):
    run = tmp_path_factory.mktemp("run")
    # the shipped losses: nothing fixed sits in the output path, so the gated entity attention gets a gradient
    res = train(labelled_folder, run, tiny_config(lambda_cls=1.0, lr=1e-2), steps=40)
    return run, res


def test_entity_path_end_to_end(entity_run) -> None:
    run, res = entity_run
    assert res.status == "done" and res.step == 40 and not res.fusion_only
    assert res.labels == LABELS
    state = json.loads((run / "checkpoint" / "trainer_state.json").read_text())
    cls = [h["cls"] for h in state["history"]]
    assert len(cls) == 40
    assert sum(cls[-5:]) / 5 < sum(cls[:5]) / 5 - 0.05  # the classification head learns
    model, cfg = load_model(run)
    assert cfg.labels == LABELS and model.n_labels == 3
    # the entity attention was trained (its gates left zero) and the label embeddings travel with the weights
    assert abs(float(model.entity.gate_attn.detach())) > 1e-3
    assert torch.allclose(model.entity_table, embed_labels(LABELS), atol=1e-6)
    with safe_open(str(run / "checkpoint" / "model.safetensors"), "pt") as f:
        assert "entity_table" in f.keys()
    assert (run / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run / "train.log.jsonl").is_file()


def test_checkpoint_is_safetensors_and_json_and_round_trips(entity_run, labelled_folder: Path) -> None:
    run, _ = entity_run
    ckpt = run / "checkpoint"
    raw = (ckpt / "model.safetensors").read_bytes()
    header_len = struct.unpack("<Q", raw[:8])[0]
    assert raw[8:9] == b"{" and json.loads(raw[8 : 8 + header_len])  # safetensors header, not a pickle
    assert not any(raw.startswith(m) for m in (b"\x80\x02", b"\x80\x04", b"PK\x03\x04"))
    meta = json.loads((ckpt / "config.json").read_text())
    assert meta["format_version"] == 2 and meta["config"]["labels"] == LABELS
    assert meta["config"]["w_gradient"] == tiny_config().w_gradient and meta["train_step"] == 40
    model, _ = load_model(run)
    again, _ = load_model(ckpt / "model.safetensors")
    ir, vis = torch.rand(1, 1, 30, 41), torch.rand(1, 1, 30, 41)
    a, b = model(ir, vis), again(ir, vis)
    assert torch.equal(a.fused, b.fused) and torch.equal(a.logits, b.logits)


def test_newer_checkpoint_format_is_refused(entity_run, tmp_path: Path) -> None:
    run, _ = entity_run
    dst = tmp_path / "ck"
    dst.mkdir()
    for f in ("model.safetensors", "config.json"):
        (dst / f).write_bytes((run / "checkpoint" / f).read_bytes())
    meta = json.loads((dst / "config.json").read_text())
    meta["format_version"] = 99
    (dst / "config.json").write_text(json.dumps(meta))
    with pytest.raises(EntityLabelError, match="format version 99 is newer"):
        load_model(dst)


def test_resume_continues_from_the_last_checkpoint(tmp_path: Path) -> None:
    ds = make_dataset(4, with_entities=False)
    cfg = tiny_config()
    with pytest.warns(UserWarning):
        first = train(ds, tmp_path, cfg, steps=5)
    assert first.step == 5
    with pytest.warns(UserWarning):
        second = train(ds, tmp_path, cfg, steps=9)
    assert second.status == "done" and second.step == 9
    hist = json.loads((tmp_path / "checkpoint" / "trainer_state.json").read_text())["history"]
    assert [h["step"] for h in hist] == list(range(1, 10))  # one history, no restart from 0
    with pytest.warns(UserWarning):
        third = train(ds, tmp_path, cfg, steps=9)
    assert third.status == "complete" and third.step == 9
    with pytest.warns(UserWarning):
        fresh = train(ds, tmp_path / "b", cfg, steps=3, resume=False)
    assert fresh.step == 3


def test_a_run_stored_before_the_contrast_term_resumes_without_it(tmp_path: Path) -> None:
    """A config.json written before `w_contrast` existed trained without that term: resuming it must keep the term
    off (today's default is on), and the resumed checkpoint then states it explicitly."""
    ds, cfg = make_dataset(4, with_entities=False), tiny_config()
    with pytest.warns(UserWarning):
        train(ds, tmp_path, cfg, steps=3)
    path = tmp_path / "checkpoint" / "config.json"
    meta = json.loads(path.read_text())
    for key in ("w_contrast", "contrast_sigma", "contrast_gain"):
        del meta["config"][key]
    path.write_text(json.dumps(meta))
    assert cfg.w_contrast > 0  # the default the old run must not pick up
    with pytest.warns(UserWarning):
        res = train(ds, tmp_path, cfg, steps=5)
    assert res.step == 5
    stored = json.loads(path.read_text())["config"]
    assert (stored["w_contrast"], stored["contrast_sigma"], stored["contrast_gain"]) == (0.0, 8.0, 1.0)
    hist = json.loads((tmp_path / "checkpoint" / "trainer_state.json").read_text())["history"]
    assert "contrast" in hist[0] and "contrast" not in hist[-1]  # the first 3 steps had it, the resumed ones not


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = losses.fusion_loss
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        total, parts = real(*args, **kwargs)
        return (total * float("nan"), parts) if calls["n"] > 7 else (total, parts)

    monkeypatch.setattr(losses, "fusion_loss", flaky)
    with pytest.warns(UserWarning):
        res = train(make_dataset(4, with_entities=False), tmp_path, tiny_config(checkpoint_steps=3), steps=50)
    assert res.status == "nan"
    assert "step 8" in res.message and "last good checkpoint (step 6)" in res.message
    meta = json.loads((tmp_path / "checkpoint" / "config.json").read_text())
    assert meta["train_step"] == 6
    model, _ = load_model(tmp_path)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_dataset_without_labels_trains_fusion_only_with_a_warning(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="training fusion only"):
        res = train(make_dataset(4, with_entities=False), tmp_path, tiny_config(), steps=2)
    assert res.fusion_only and res.labels == []
    with safe_open(str(tmp_path / "checkpoint" / "model.safetensors"), "pt") as f:
        assert "entity_table" not in f.keys()
    empty = make_dataset(4, labels=["car"])  # a label space, but no pair carries a label
    with pytest.warns(UserWarning, match="no pair of the dataset carries an entity label"):
        assert train(empty, tmp_path / "e", tiny_config(), steps=1).fusion_only


def test_resume_refuses_another_label_space(entity_run, tmp_path: Path) -> None:
    run, _ = entity_run
    other = tmp_path / "run"
    (other / "checkpoint").mkdir(parents=True)
    for f in ("model.safetensors", "config.json"):
        (other / "checkpoint" / f).write_bytes((run / "checkpoint" / f).read_bytes())
    with pytest.raises(EntityLabelError, match="label space"):
        train(make_dataset(4, labels=["car", "person", "dog"]), other, tiny_config(), steps=50)


def test_bad_budgets_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(EntityLabelError, match="steps: must be at least 0"):
        train(make_dataset(2), tmp_path, tiny_config(), steps=-1)
    with pytest.raises(EntityLabelError, match="max_minutes"):
        train(make_dataset(2), tmp_path, tiny_config(), max_minutes=0)
    with pytest.raises(EntityLabelError, match="val_points"):
        train(make_dataset(2), tmp_path, tiny_config(), steps=5, val_points=0)


def test_steps_zero_writes_the_untrained_start_as_a_run(tmp_path: Path) -> None:
    from entitylabel.fusion.checkpoint import resolve_checkpoint
    from entitylabel.fusion.validate import ValSet

    ir, rgb = synth_pair(7, 64, 68)
    vs = ValSet("synth", [("v0", ir, rgb[..., 0])])
    res = train(make_dataset(2, with_entities=False), tmp_path / "r", tiny_config(), steps=0, val=[vs])
    assert res.status == "done" and res.step == 0 and resolve_checkpoint(tmp_path / "r") == tmp_path / "r" / "best"
    model, _ = load_model(tmp_path / "r")
    a, b = torch.rand(1, 1, 9, 11), torch.rand(1, 1, 9, 11)
    assert torch.allclose(model.eval()(a, b).fused, (a + b) / 2, atol=1e-6)  # the start: the pixel mean
    again = train(make_dataset(2, with_entities=False), tmp_path / "r", tiny_config(), steps=0)
    assert again.status == "complete"


def test_cli_train(labelled_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from entitylabel.cli import main

    tiny = ["--set", "width=4", "--set", "dim=8", "--set", "heads=2", "--set", "patch_size=24", "--set", "batch_size=2"]
    main(["train", str(labelled_folder), "--out", str(tmp_path / "run"), "--steps", "2", "--lambda-cls", "0", *tiny])
    assert "trained 2 steps" in capsys.readouterr().out
    meta = json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())
    assert meta["config"]["lambda_cls"] == 0.0 and meta["config"]["width"] == 4
    with pytest.raises(SystemExit) as e:
        main(["train", str(labelled_folder), "--out", str(tmp_path / "r2"), "--set", "bogus=1"])
    assert e.value.code == 2


def test_truncated_weights_in_the_run_folder_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from entitylabel.cli import main

    ds = save_dataset_folder(make_dataset(2, with_entities=False), tmp_path / "ds")
    run = tmp_path / "run"
    train(ds, run, tiny_config(), steps=2)
    weights = run / "checkpoint" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(EntityLabelError, match="model.safetensors"):
        train(ds, run, tiny_config(), steps=4)
    with pytest.raises(SystemExit) as e:
        main(["train", str(ds), "--out", str(run), "--steps", "4"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "model.safetensors" in err


def test_validation_keeps_the_best_checkpoint_and_draws_the_curve(labelled_folder: Path, tmp_path: Path) -> None:
    from entitylabel.fusion.checkpoint import resolve_checkpoint
    from entitylabel.fusion.validate import ValSet, simulate_light

    pairs = []
    for i in range(2):
        ir, rgb = synth_pair(100 + i, 64, 68)
        pairs.append((f"v{i}", ir, rgb[..., 0]))
    vs = ValSet("synth", pairs)
    sets = [vs, simulate_light(vs, "low-light"), simulate_light(vs, "day")]
    lines: list[str] = []
    run = tmp_path / "run"
    res = train(labelled_folder, run, tiny_config(lambda_cls=0.0), steps=8, val=sets, val_points=4,
                log=lines.append, status_steps=4)  # fmt: skip
    state = json.loads((run / "checkpoint" / "trainer_state.json").read_text())
    assert [v["step"] for v in state["val_history"]] == [2, 4, 6, 8]
    assert set(state["val_history"][0]["sets"]) == {"synth", "synth/low-light", "synth/day"}
    scores = [v["score"] for v in state["val_history"]]
    assert state["best"]["score"] == max(scores) and res.best == state["best"]
    best_meta = json.loads((run / "best" / "config.json").read_text())
    assert best_meta["train_step"] == state["best"]["step"]
    assert resolve_checkpoint(run) == run / "best"  # fuse uses the best checkpoint
    assert (run / "val_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = [json.loads(x) for x in (run / "train.log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["event"] == "val"] == [2, 4, 6, 8]
    # no progress bar given: one status line every 4 steps, plus 3 set lines and a score line per validation
    status = [x for x in lines if x.startswith("step ")]
    assert [x.split()[1] for x in status] == ["4/8", "8/8"] and "patches/s" in status[0]
    assert sum(x.startswith("validation step") for x in lines) == 16
    # going on without --val: the best checkpoint no longer matches the run and is removed
    with pytest.warns(UserWarning, match="without --val"):
        train(labelled_folder, run, tiny_config(lambda_cls=0.0), steps=10)
    assert not (run / "best").exists() and resolve_checkpoint(run) == run / "checkpoint"
    assert json.loads((run / "checkpoint" / "trainer_state.json").read_text())["best"] == {}


def test_cli_train_prints_status_lines_without_a_terminal(labelled_folder: Path, tmp_path: Path, capsys) -> None:
    from entitylabel.cli import main

    tiny = ["--set", "width=4", "--set", "dim=8", "--set", "heads=2", "--set", "patch_size=24", "--set", "batch_size=2"]
    val = write_pair_folder(tmp_path / "val", {"a": ((72, 80), (72, 80)), "b": ((66, 70), (66, 70))})
    main(["train", str(labelled_folder), "--out", str(tmp_path / "run"), "--steps", "6", "--lambda-cls", "0",
          "--status-every", "3", "--val", str(val), "--val-points", "2", *tiny])  # fmt: skip
    cap = capsys.readouterr()
    assert "step 3/6 (50%)" in cap.err and "step 6/6 (100%)" in cap.err
    assert cap.err.count("validation step") == 4 and "best checkpoint: step" in cap.out
    with pytest.raises(SystemExit) as e:
        main(["train", str(labelled_folder), "--out", str(tmp_path / "r2"), "--val", str(tmp_path / "nope"), *tiny])
    assert e.value.code == 2
