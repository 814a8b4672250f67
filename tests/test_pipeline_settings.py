"""Stage settings are declared once (entitylabel/settings.py): the stage function, the runner's fingerprint and
the CLI must all agree with the dataclass, and these tests fail when one of them drifts."""

from __future__ import annotations

import dataclasses
import inspect
import shutil
import types
import typing
from pathlib import Path

import pytest

from entitylabel import settings
from entitylabel.cli import app, main
from entitylabel.pipeline import runner
from entitylabel.pipeline.config import PipelineConfig, load_config
from entitylabel.sample import make_sample
from entitylabel.settings import STAGE_SETTINGS, fields_of, stage_function

REPO = Path(__file__).resolve().parents[1]
SECTION = {"discover": "data", "caption": "caption", "extract": "extract", "export": "export", "report": "report"}


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


@pytest.mark.parametrize("stage", list(STAGE_SETTINGS))
def test_dataclass_fields_are_the_stage_functions_keyword_settings(stage):
    """Same names and the same defaults: one default per setting, whichever way the stage is called."""
    cls, _, not_settings = STAGE_SETTINGS[stage]
    params = {
        n: p.default
        for n, p in inspect.signature(stage_function(stage)).parameters.items()
        if p.default is not inspect.Parameter.empty and n not in not_settings
    }
    fields = {f.name: _default(f) for f in fields_of(cls)}
    assert set(fields) == set(params), f"{cls.__name__} and {stage_function(stage).__name__} drifted apart"
    for name, default in fields.items():
        have = list(params[name]) if isinstance(params[name], tuple) else params[name]
        assert default == have, f"{stage}.{name}: default {default!r} in settings, {have!r} in the function"


def _setup(tmp_path: Path) -> Path:
    data = make_sample(tmp_path / "data", n=2, size=(64, 48))
    shutil.copy(REPO / "vocab" / "ivif.yaml", tmp_path / "vocab.yaml")
    (tmp_path / "other").mkdir()
    (tmp_path / "other.yaml").write_text((REPO / "vocab" / "ivif.yaml").read_text() + "\n# edited\n")
    (tmp_path / "other.jsonl").write_text('{"pair_id": "x", "caption": "a dog"}\n')
    cfg = tmp_path / "toy.yaml"
    cfg.write_text(f"""\
name: toy
out: run
data: {{root: data, layout: tno, dataset: toy}}
caption: {{use: external, external: {data / "captions.jsonl"}, external_name: fixture, model: some/model}}
extract: {{vocab: vocab.yaml}}
""")
    return cfg


def _other(value, tp, tmp_path: Path):
    """A different valid value of annotation `tp`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _other(value, inner, tmp_path)
    if origin is typing.Literal:
        return next(c for c in typing.get_args(tp) if c != value)
    if origin is list:
        return ["objects"] if typing.get_args(tp)[0] is str else ["vis"]
    if tp is bool:
        return not value
    if tp is int:
        return (value or 0) + 1
    if tp is float:
        return 0.3 if value != 0.3 else 0.4
    if tp is str:
        return "other"
    if tp is Path:  # another file of the same kind, or another folder
        if value is not None and value.is_file():
            return tmp_path / ("other.yaml" if value.suffix == ".yaml" else "other.jsonl")
        return tmp_path / "other"
    raise AssertionError(f"no other value for {tp}")


def _fingerprint(cfg: PipelineConfig, stage: str) -> dict:
    ctx = runner._Ctx(cfg, cfg.run_dir, None, lambda _m: None)
    return runner._STAGES[stage].inputs(ctx)[0]


# What shapes captions from each source: the other source's settings must not make the stage stale.
CAPTION_SOURCE = {"external": {"use", "external", "external_name", "shard_size"}, "vlm": None}  # None: all but
NOT_VLM = {"external", "external_name"}  # the external file's


@pytest.mark.parametrize("stage", list(STAGE_SETTINGS))
def test_every_setting_reaches_the_runner_fingerprint(tmp_path, stage):
    """Change one setting at a time: the stage's fingerprint must change, unless the field says it only
    changes speed (then it must not). Caption is checked with each source (an external file, a VLM)."""
    base = load_config(_setup(tmp_path))
    section = SECTION[stage]
    configs = {"": base}
    if stage == "caption":
        configs = {
            "external": base,
            "vlm": dataclasses.replace(base, caption=dataclasses.replace(base.caption, use="vlm")),
        }
    hints = typing.get_type_hints(type(getattr(base, section)))
    for mode, cfg in configs.items():
        obj = getattr(cfg, section)
        for f in fields_of(type(obj)):
            new = dataclasses.replace(obj, **{f.name: _other(getattr(obj, f.name), hints[f.name], tmp_path)})
            changed = _fingerprint(dataclasses.replace(cfg, **{section: new}), stage) != _fingerprint(cfg, stage)
            matters = f.metadata.get("fingerprint") is not False
            if mode:
                matters = matters and (
                    f.name in CAPTION_SOURCE[mode] if CAPTION_SOURCE[mode] else f.name not in NOT_VLM
                )
            where = f"{section}.{f.name}" + (f" (captions from {mode})" if mode else "")
            if matters:
                assert changed, f"{where} is missing from the {stage} fingerprint"
            else:
                assert not changed, f"{where} does not shape the outputs but changes the fingerprint"


COMMANDS = {"discover": "discover", "caption": "caption", "extract": "extract", "export": "export", "report": "report"}


@pytest.mark.parametrize("stage", list(STAGE_SETTINGS))
def test_every_setting_is_a_cli_option(stage):
    cls = STAGE_SETTINGS[stage][0]
    command = next(c for c in app.registered_commands if (c.name or c.callback.__name__) == COMMANDS[stage])
    params = inspect.signature(command.callback).parameters
    assert {f.name for f in fields_of(cls)} <= set(params)


def test_cli_values_reach_the_stage_function_checked_like_the_yaml(tmp_path, monkeypatch, capsys):
    seen = {}

    class Done(Exception):
        pass

    def fake(*args, **kw):
        seen.update(kw)
        raise Done

    monkeypatch.setattr("entitylabel.extract.stage.run_extract", fake)
    caps = tmp_path / "c.jsonl"
    caps.write_text("{}\n")
    base = ["extract", str(caps), "--vocab", "ivif", "--out", str(tmp_path)]
    with pytest.raises(Done):
        main([*base, "--late-sentence", "3", "--no-weak-modifiers", "--n-process", "2"])
    want = {**settings.kwargs(settings.ExtractSettings()), "late_sentence": 3, "weak_modifiers": False, "n_process": 2}
    assert {k: seen[k] for k in want} == want
    with pytest.raises(SystemExit) as e:
        main([*base, "--min-confidence", "2"])
    assert e.value.code == 2
    assert "error: --min-confidence: must be between 0.0 and 1.0" in capsys.readouterr().err


def test_export_shard_size_is_given_in_mb_on_the_cli(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr("entitylabel.export.stage.run_export", lambda *a, **kw: seen.update(kw) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["export", "--pairs", "p", "--config", "c", "--out", str(tmp_path), "--shard-mb", "7"])
    assert seen["shard_bytes"] == 7 * 10**6


def test_train_settings_are_the_train_functions_keyword_settings():
    """TrainSettings (the train command's options) and `fusion.train.train`'s keywords: same names, same defaults."""
    from entitylabel.fusion.train import train

    cls, target, not_settings = settings.TRAIN_SETTINGS
    assert target == f"{train.__module__}:{train.__name__}"
    params = {
        n: p.default
        for n, p in inspect.signature(train).parameters.items()
        if p.default is not inspect.Parameter.empty and n not in not_settings
    }
    fields = {f.name: _default(f) for f in fields_of(cls)}
    assert set(fields) == set(params), "TrainSettings and fusion.train.train drifted apart"
    for name, default in fields.items():
        have = list(params[name]) if isinstance(params[name], tuple) else params[name]
        assert default == have, f"train.{name}: default {default!r} in settings, {have!r} in the function"


def test_train_cli_options_reach_the_train_function(tmp_path, monkeypatch):
    """The documented option names (--config, --status-every, ...) still work and land on train's keywords."""
    seen = {}

    class Done(Exception):
        pass

    def fake(dataset, out_dir, config=None, **kw):
        seen.update(kw, dataset=dataset, config=config)
        raise Done

    monkeypatch.setattr("entitylabel.fusion.train.train", fake)
    base = ["train", "release", "--out", str(tmp_path / "run")]
    with pytest.raises(Done):
        main(base)
    assert {k: seen[k] for k in settings.kwargs(settings.TrainSettings())} == settings.kwargs(settings.TrainSettings())
    assert seen["config"] is None and seen["dataset"] == "release"
    with pytest.raises(Done):
        main([*base, "--config", "tno", "--split", "test", "--max-minutes", "1.5", "--steps", "7", "--no-resume",
              "--val", "a", "--val", "b", "--val-points", "2", "--val-pairs", "5", "--status-every", "3",
              "--lambda-cls", "0", "--set", "patch_size=64"])  # fmt: skip
    want = {"dataset_config": "tno", "split": "test", "max_minutes": 1.5, "steps": 7, "resume": False,
            "val": ["a", "b"], "val_points": 2, "val_pairs": 5, "status_steps": 3}  # fmt: skip
    assert {k: seen[k] for k in want} == want
    assert seen["config"].lambda_cls == 0 and seen["config"].patch_size == 64
