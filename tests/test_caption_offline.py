"""A model that is not available fails at once with one line; trust_remote_code needs its flag."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from caption_support import cli, synthetic_manifest

from entitylabel.caption.hub import resolve_model, snapshot_commit
from entitylabel.errors import EntityLabelError

MISSING = "entitylabel-tests/no-such-vlm"


@pytest.fixture()
def manifest(tmp_path: Path) -> Path:
    return synthetic_manifest(tmp_path / "data", 2)


def _one_line_error(proc, started: float) -> str:  # noqa: ANN001
    err = proc.stderr.strip()
    assert proc.returncode == 2, proc.stderr
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    assert time.monotonic() - started < 60  # no network retries
    return err


def test_offline_missing_model_fails_at_once(manifest: Path, tmp_path: Path) -> None:
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    started = time.monotonic()
    proc = cli("caption", str(manifest), "--model", MISSING, "--out", str(tmp_path / "c"), env=env)
    err = _one_line_error(proc, started)
    assert MISSING in err and "--model DIR" in err and "HF_HUB_OFFLINE" in err
    assert not list((tmp_path / "c").glob("shard-*"))


def test_unreachable_hub_fails_at_once(manifest: Path, tmp_path: Path) -> None:
    # offline switched off, but the Hub address refuses connections: must not hang or print a traceback
    env = {"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf")}
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"
    started = time.monotonic()
    proc = cli("caption", str(manifest), "--model", MISSING, "--out", str(tmp_path / "c"), env=env)
    err = _one_line_error(proc, started)
    assert MISSING in err and "cannot be reached" in err and "--model DIR" in err


def test_bad_local_folders(tmp_path: Path) -> None:
    with pytest.raises(EntityLabelError, match="model folder not found"):
        resolve_model(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(EntityLabelError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = tmp_path / "models--org--vlm" / "snapshots" / commit
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    assert snapshot_commit(snap) == commit
    assert resolve_model(str(snap)).revision == commit


def test_remote_code_needs_the_flag(manifest: Path, tmp_path: Path) -> None:
    model = tmp_path / "custom-vlm"
    model.mkdir()
    (model / "config.json").write_text(
        json.dumps(
            {"model_type": "entitylabel-custom", "auto_map": {"AutoConfig": "configuration_custom.CustomConfig"}}
        )
    )
    (model / "configuration_custom.py").write_text("raise SystemExit('remote code ran')\n")
    proc = cli("caption", str(manifest), "--model", str(model), "--out", str(tmp_path / "c"))
    err = proc.stderr.strip()
    assert proc.returncode == 2 and "remote code ran" not in proc.stderr, proc.stderr
    assert "--trust-remote-code" in err and "\n" not in err
