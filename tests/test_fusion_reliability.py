"""Hostile run folders and released datasets for train / fuse (issue 20): killed checkpoint swaps, file modes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fusion_synth import make_dataset, tiny_config

from entitylabel.fusion import train as train_mod
from entitylabel.fusion.checkpoint import resolve_checkpoint
from entitylabel.fusion.train import train

REPO = Path(__file__).resolve().parents[1]

# Saves a checkpoint at step 7 into the run folder and is killed (os._exit) between the swap's two renames.
_KILLED_SAVE = """
import os, sys
import entitylabel.io as io
from entitylabel.fusion.checkpoint import TrainerState, load_model, save_checkpoint
model, cfg = load_model(sys.argv[1] + "/checkpoint")
real, calls = os.replace, []
def replace(a, b):
    calls.append(a)
    if len(calls) == 2:
        os._exit(9)
    real(a, b)
io.os.replace = replace
save_checkpoint(sys.argv[1], model, cfg, TrainerState(step=7))
"""


def test_a_checkpoint_swap_killed_between_its_renames_is_resumed(tmp_path: Path, monkeypatch) -> None:
    ds = make_dataset(4, with_entities=False)
    cfg = tiny_config()
    with pytest.warns(UserWarning):
        train(ds, tmp_path, cfg, steps=5)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(tmp_path)], cwd=REPO, env=env, timeout=300)
    assert proc.returncode == 9
    assert not (tmp_path / "checkpoint").exists()  # the crash state of issue 20 item 2
    assert (tmp_path / ".checkpoint.old" / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.glob(".checkpoint.pid*.tmp")]  # the killed save's full-size temporary
    assert resolve_checkpoint(tmp_path) == tmp_path / ".checkpoint.old"  # readers find the previous one

    resumed_from = []
    real_load = train_mod.load_training_state

    def spy(ckpt, model, opt):
        state = real_load(ckpt, model, opt)
        resumed_from.append(state.step)
        return state

    monkeypatch.setattr(train_mod, "load_training_state", spy)
    with pytest.warns(UserWarning):
        res = train(ds, tmp_path, cfg, steps=8)
    assert resumed_from == [5] and res.step == 8  # resumed at the last whole checkpoint, not from step 0
    assert not list(tmp_path.glob(".checkpoint*"))  # neither the stale temporary nor the parked copy is left


def test_checkpoint_files_have_plain_file_modes(tmp_path: Path) -> None:
    with pytest.warns(UserWarning):
        train(make_dataset(4, with_entities=False), tmp_path, tiny_config(), steps=2)
    umask = os.umask(0)
    os.umask(umask)
    modes = {f.name: f.stat().st_mode & 0o777 for f in (tmp_path / "checkpoint").iterdir()}
    assert modes["model.safetensors"] == 0o666 & ~umask  # safetensors alone writes 0600
    assert set(modes.values()) == {0o666 & ~umask}
