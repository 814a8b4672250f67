"""Standalone stage commands that write a shared folder hold its lock (issue 20 items 1 and 4).

Each race is forced, not hoped for: the first command is paused inside its write until the second one has
run into it (or a few seconds passed, which is what a waiting lock makes it do).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from export_fixtures import export_inputs, write_entities

import entitylabel.caption.external as external_mod
import entitylabel.export.stage as export_stage
from entitylabel.caption import import_external
from entitylabel.errors import EntityLabelError
from entitylabel.export.stage import run_export
from entitylabel.pairs import load_pairs

REPO = Path(__file__).resolve().parents[1]


def _race(monkeypatch, module, attr: str, first, second, *, wait_for: str) -> dict[str, object]:
    """Run `first` in a thread, pause it in `module.attr` until the second command (another thread) has
    entered the same function (`wait_for="enter"`) or finished (`"finish"`), at most 3 s; return outcomes."""
    real = getattr(module, attr)
    first_thread: list[threading.Thread] = []
    entered, second_entered, second_done = threading.Event(), threading.Event(), threading.Event()

    def paused(*a, **k):
        if first_thread and threading.current_thread() is first_thread[0]:
            entered.set()
            (second_entered if wait_for == "enter" else second_done).wait(3)
        else:
            second_entered.set()
        return real(*a, **k)

    monkeypatch.setattr(module, attr, paused)
    outcome: dict[str, object] = {}

    def run(key: str, fn) -> None:
        try:
            outcome[key] = fn()
        except BaseException as e:  # noqa: BLE001 - reported to the test
            outcome[key] = e
        finally:
            if key == "second":
                second_done.set()

    t1 = threading.Thread(target=run, args=("first", first))
    first_thread.append(t1)
    t1.start()
    assert entered.wait(60)
    t2 = threading.Thread(target=run, args=("second", second))
    t2.start()
    t1.join(120)
    t2.join(120)
    return outcome


@pytest.fixture
def two_datasets(tmp_path: Path) -> dict:
    return export_inputs(tmp_path, {"a": 5, "b": 4})


def test_concurrent_exports_into_a_new_release_folder_both_land(two_datasets: dict, tmp_path: Path, monkeypatch):
    out = tmp_path / "release"
    a, b = two_datasets["a"], two_datasets["b"]
    res = _race(
        monkeypatch,
        export_stage._ConfigJob,
        "build",
        lambda: run_export(a["pairs"], out, "a", captions=a["captions"], entities=a["entities"]),
        lambda: run_export(b["pairs"], out, "b", captions=b["captions"], entities=b["entities"]),
        wait_for="enter",
    )
    assert not isinstance(res["first"], BaseException) and not isinstance(res["second"], BaseException), res
    assert sorted(p.name for p in (out / "data").iterdir()) == ["a", "b"]
    card = (out / "README.md").read_text()
    assert "config_name: a" in card and "config_name: b" in card
    assert res["second"].configs == ["a", "b"]


def test_concurrent_exports_with_different_label_spaces_cannot_both_land(two_datasets: dict, tmp_path: Path,
                                                                         monkeypatch) -> None:  # fmt: skip
    out = tmp_path / "release"
    a, b = two_datasets["a"], two_datasets["b"]
    other = write_entities(b["pairs"], tmp_path / "b_other", names=["person", "car", "dog"])
    res = _race(
        monkeypatch,
        export_stage._ConfigJob,
        "build",
        lambda: run_export(a["pairs"], out, "a", entities=a["entities"]),
        lambda: run_export(b["pairs"], out, "b", entities=other),
        wait_for="enter",
    )
    assert not isinstance(res["first"], BaseException)
    assert isinstance(res["second"], EntityLabelError) and "label space of config 'b'" in str(res["second"])
    assert sorted(p.name for p in (out / "data").iterdir()) == ["a"]


def test_two_external_imports_into_one_folder_at_once_do_not_mix(two_datasets: dict, tmp_path: Path, monkeypatch):
    pairs = load_pairs(two_datasets["a"]["pairs"])
    ids = sorted(pairs.df["pair_id"])
    files = {}
    for who in ("A", "B"):  # same file name in two folders: one import name, two different contents
        f = tmp_path / who / "ext.jsonl"
        f.parent.mkdir()
        f.write_text("".join(json.dumps({"pair_id": p, "caption": f"caption {who} of {p}"}) + "\n" for p in ids))
        files[who] = f
    out = tmp_path / "captions"
    res = _race(
        monkeypatch,
        external_mod,
        "write_shard",
        lambda: import_external(pairs, files["A"], out, shard_size=1),
        lambda: import_external(pairs, files["B"], out, shard_size=1),
        wait_for="finish",
    )
    assert not isinstance(res["first"], BaseException)
    err = res["second"]
    assert isinstance(err, EntityLabelError) and "another entitylabel caption --external is writing" in str(err)
    assert "\n" not in str(err)
    import pandas as pd

    caps = pd.concat(pd.read_parquet(f) for f in sorted(out.glob("shard-external-ext-*.parquet")))
    assert caps["caption"].str.startswith("caption A").all() and len(caps) == len(ids)
    summary = json.loads((out / "external-ext.json").read_text())
    assert summary["file_sha256"] == __import__("entitylabel.io", fromlist=["x"]).sha256_file(files["A"])


def test_a_stage_lock_held_by_another_process_names_it_and_a_dead_holders_is_taken_over(two_datasets, tmp_path):
    from entitylabel.extract.stage import run_extract

    out = tmp_path / "x"
    code = textwrap.dedent(f"""
        import time
        from entitylabel.pipeline.lock import folder_lock
        with folder_lock({str(out / "entities")!r}, "extract"):
            print("locked", flush=True)
            time.sleep(60)
    """)
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True, cwd=REPO)
    a = two_datasets["a"]
    try:
        assert holder.stdout.readline().strip() == "locked"
        busy = f"another entitylabel extract is writing this folder: pid {holder.pid}"
        with pytest.raises(EntityLabelError, match=busy):
            run_extract(a["captions"], "coco80", out, pairs=a["pairs"])
        assert not (out / "entities").exists()
    finally:
        holder.kill()
        holder.wait()
    assert run_extract(a["captions"], "coco80", out, pairs=a["pairs"]).n_pairs == 5
