"""`entitylabel run` under reruns, kills, concurrent runs, full disks and hostile YAML (issue 12 items 2, 4, 6,
10, 11, 12, 16; issue 13's runner items): each test is a small generated case."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from test_pipeline_run import _setup, _snapshot
from tiny_vlms import tiny_blip, tiny_vlm_root  # noqa: F401 - fixtures

from entitylabel.cli import main
from entitylabel.discover import run_discover
from entitylabel.errors import EntityLabelError
from entitylabel.pipeline.config import load_config
from entitylabel.pipeline.lock import LOCK_NAME, run_lock
from entitylabel.pipeline.runner import StageFailed, manifest_path, run_pipeline

REPO = Path(__file__).resolve().parents[1]
WORKTREE_ENV = {**os.environ, "PYTHONPATH": str(REPO)}


# ---- discover keeps only the chosen splits, in every output ------------------------------------------------


def _two_splits(root: Path) -> Path:
    for split in ("train", "test"):
        for mod in ("ir", "vi"):
            (root / split / mod).mkdir(parents=True)
            for i in range(2):
                Image.new("L", (8, 8), i * 50).save(root / split / mod / f"{i}.png")
        (root / split / "ir" / "orphan.png").write_bytes(b"")  # a problem row in each split
    return root


def test_split_filter_applies_to_pairs_problems_and_summary(tmp_path):
    root = _two_splits(tmp_path / "msrs")
    res = run_discover(root, tmp_path / "run", splits=["train"])
    pairs = pd.read_parquet(tmp_path / "run" / "pairs.parquet")
    problems = pd.read_parquet(tmp_path / "run" / "problems.parquet")
    summary = json.loads((tmp_path / "run" / "discover.json").read_text())
    assert set(pairs["split"]) == {"train"} and len(pairs) == 2 == len(res.pairs)
    assert list(problems["path"]) == ["train/ir/orphan.png"]
    assert summary["pairs"] == 2 and summary["pairs_per_split"] == {"train": 2}
    with pytest.raises(EntityLabelError, match=r"no split named val in this dataset \(it has test, train\)"):
        run_discover(root, tmp_path / "run2", splits=["val"])
    assert not (tmp_path / "run2").exists()


# ---- the export stage owns its config, and a no-op run reads no image bytes --------------------------------


def test_two_pipelines_sharing_one_release_folder_do_not_invalidate_each_other(tmp_path):
    cfg = _setup(tmp_path, n=3)
    release = tmp_path / "release"
    text = cfg.read_text().replace("export: {test_fraction: 0.34}", f"export: {{out: {release}, config: CONF}}")
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(text.replace("out: run", "out: run-a").replace("CONF", "first"))
    b.write_text(text.replace("out: run", "out: run-b").replace("CONF", "second"))
    assert "export" in run_pipeline(a).ran and "export" in run_pipeline(b).ran
    assert sorted(p.name for p in (release / "data").iterdir()) == ["first", "second"]
    assert run_pipeline(a).ran == [] and run_pipeline(b).ran == []


def test_noop_rerun_reads_no_image_bytes(tmp_path):
    """An audit hook sees every file Python opens: a no-op run must open no dataset image and no export shard."""
    cfg = _setup(tmp_path, n=4)
    run_pipeline(cfg)
    data, shards = (tmp_path / "data").resolve(), (tmp_path / "run" / "export" / "data").resolve()
    opened: list[Path] = []
    state = {"on": True}

    def hook(event: str, args: tuple) -> None:
        if state["on"] and event == "open" and isinstance(args[0], str | Path):
            opened.append(Path(os.path.abspath(args[0])))

    sys.addaudithook(hook)  # hooks cannot be removed: switched off below
    try:
        again = run_pipeline(cfg)
    finally:
        state["on"] = False
    assert again.ran == []
    read = [p for p in opened if p.is_relative_to(data) and p.suffix == ".png" or p.is_relative_to(shards)]
    assert read == []
    assert any(p.name == "label_space.json" for p in opened)  # the hook does see what the run reads


# ---- item 2: VLM captions are never deleted by a rerun with another source --------------------------------


def test_rerun_with_an_external_file_keeps_vlm_captions(tmp_path, tiny_blip):  # noqa: F811 - the fixture
    cfg = _setup(tmp_path, n=2)
    run = tmp_path / "run"
    run_pipeline(cfg, model=str(tiny_blip), until_stage="caption")
    shards = sorted((run / "captions").glob("shard-0*.parquet"))
    before = {p.name: p.read_bytes() for p in shards}
    assert before
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"image": "0001.png", "modality": "vis", "caption": "a dog"}) + "\n")
    with pytest.raises(StageFailed, match=r"caption shard\(s\) made by the VLM .* pass --force caption"):
        run_pipeline(cfg, external=other, until_stage="caption")
    assert {p.name: p.read_bytes() for p in (run / "captions").glob("shard-0*.parquet")} == before
    res = run_pipeline(cfg, external=other, until_stage="caption", force=["caption"])  # asked for: replaced
    assert res.ran == ["caption"]
    assert [p.name for p in (run / "captions").glob("shard-*.parquet")] == ["shard-external-other-00000.parquet"]


# ---- item 4: one run per run folder ----------------------------------------------------------------------


def test_second_concurrent_run_fails_at_once_and_a_dead_holders_lock_is_taken_over(tmp_path):
    cfg = _setup(tmp_path, n=2)
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time
            from entitylabel.pipeline.lock import run_lock
            with run_lock({str(run)!r}):
                print("locked", flush=True)
                time.sleep(60)
        """),
        ],
        stdout=subprocess.PIPE,
        env=WORKTREE_ENV,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(EntityLabelError) as e:
            run_pipeline(cfg)
        msg = str(e.value)
        assert "another entitylabel run is using this run folder" in msg and f"pid {holder.pid}" in msg
        assert "\n" not in msg and not (run / "pairs.parquet").exists()
    finally:
        holder.send_signal(signal.SIGKILL)  # dies holding it: the kernel drops the lock
        holder.wait()
    assert str(holder.pid) in (run / LOCK_NAME).read_text()  # the dead holder's record is still there
    assert "discover" in run_pipeline(cfg).ran


def test_lock_is_released_after_a_failed_run(tmp_path):
    with pytest.raises(RuntimeError), run_lock(tmp_path):
        raise RuntimeError("boom")
    with run_lock(tmp_path):
        pass


# ---- item 6: YAML alias bombs ----------------------------------------------------------------------------

BOMB = "".join(f"b{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 9)}]\n" for i in range(1, 9))


def test_alias_bomb_in_a_pipeline_is_one_line(tmp_path):
    cfg = _setup(tmp_path, n=2)
    text = cfg.read_text().replace(
        "report: ", 'description: &b0 ["lol"]\nx:\n  ' + BOMB.replace("\n", "\n  ") + "\nreport: "
    )
    cfg.write_text(text)
    with pytest.raises(EntityLabelError) as e:
        load_config(cfg)
    assert "toy.yaml:" in str(e.value) and "aliases (*name) are not allowed" in str(e.value)


def test_alias_in_a_vocabulary_is_one_line(tmp_path):
    from entitylabel.extract.vocab import load_vocab

    voc = tmp_path / "v.yaml"
    voc.write_text('name: v\nversion: "1"\nentities:\n  car: &c {forms: [car]}\n  auto: *c\n')
    with pytest.raises(EntityLabelError, match=r"v.yaml:5: YAML syntax error: aliases \(\*name\) are not allowed"):
        load_vocab(voc)


# ---- items 10, 11: read-only and full disks --------------------------------------------------------------


def _raise(err: int):
    def fail(*_a, **_k):
        raise OSError(err, os.strerror(err))

    return fail


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
        OSError("Error writing bytes to file. Detail: [errno 28] No space left on device"),  # pyarrow's, no errno
    ],
)
def test_disk_full_during_export_is_one_line_and_keeps_earlier_outputs(tmp_path, monkeypatch, capsys, error):
    cfg = _setup(tmp_path, n=3)
    run = tmp_path / "run"
    run_pipeline(cfg, until_stage="extract")
    before = _snapshot(run)

    def full(*_a, **_k):
        raise error

    monkeypatch.setattr("entitylabel.export.stage._build_config", full)
    monkeypatch.setattr("entitylabel.pipeline.runner.atomic_write_text", _raise(errno.ENOSPC))  # error.txt too
    with pytest.raises(SystemExit) as e:
        main(["run", str(cfg)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "stage export failed" in err and "no space left on device" in err
    assert "Traceback" not in err and "During handling" not in err
    assert _snapshot(run)["entities"] == before["entities"] and _snapshot(run)["captions"] == before["captions"]
    assert not manifest_path(run, "export").exists()


def test_atomic_writes_turn_a_full_disk_into_one_line_naming_the_file(tmp_path, monkeypatch):
    from entitylabel.io import atomic_write_text

    (tmp_path / "keep.txt").write_text("old")
    monkeypatch.setattr(Path, "write_bytes", _raise(errno.ENOSPC))
    with pytest.raises(EntityLabelError, match=r"keep.txt: cannot write: no space left on device"):
        atomic_write_text(tmp_path / "keep.txt", "new")
    assert (tmp_path / "keep.txt").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_report_into_a_read_only_place_is_one_line(tmp_path, monkeypatch, capsys):
    cfg = _setup(tmp_path, n=2)
    run_pipeline(cfg, until_stage="extract")
    # running as root ignores file modes, so the refusal a read-only folder gives is simulated where it happens
    monkeypatch.setattr("entitylabel.io.tempfile.mkstemp", _raise(errno.EACCES))
    for args in (
        ["report", str(tmp_path / "run")],
        ["report", str(tmp_path / "run"), "--out", str(tmp_path / "p.html")],
    ):
        with pytest.raises(SystemExit) as e:
            main(args)
        err = capsys.readouterr().err
        assert e.value.code == 2 and "Traceback" not in err
        assert "cannot write: Permission denied" in err and ("report.html" in err or "p.html" in err)


# ---- item 12: Ctrl-C --------------------------------------------------------------------------------------


def test_ctrl_c_prints_the_interrupted_line_and_exits_130(tmp_path, monkeypatch, capsys):
    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr("entitylabel.pipeline.runner.run_pipeline", interrupted)
    with pytest.raises(SystemExit) as e:
        main(["run", str(tmp_path / "p.yaml")])
    assert e.value.code == 130
    assert "interrupted" in capsys.readouterr().err


# ---- item 16: temporaries of killed runs ------------------------------------------------------------------


def killed_pid(run: Path) -> int:
    return int(next(p for p in run.iterdir() if p.name.startswith(".entities.")).name.split(".pid")[1].split("-")[0])


def test_temporaries_of_a_killed_run_are_removed_on_the_next_run(tmp_path):
    cfg = _setup(tmp_path, n=2)
    run = tmp_path / "run"
    run_pipeline(cfg)
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import os, signal
            from entitylabel.io import atomic_dir
            with atomic_dir({str(run / "entities")!r}, overwrite=True) as tmp:
                (tmp / "labels.parquet").write_bytes(b"half")
                os.kill(os.getpid(), signal.SIGKILL)
        """),
        ],
        env=WORKTREE_ENV,
    )
    assert killed.returncode == -signal.SIGKILL
    left = [p for p in run.iterdir() if p.name.startswith(".entities.")]
    assert len(left) == 1 and left[0].is_dir()
    host = left[0].name.split(".pid")[1].split(".")[0].split("-")[1]
    live = run / f".report.html.pid{os.getppid()}-{host}.abcd1234.tmp"  # a live process's: not ours to take
    elsewhere = run / f".report.html.pid{killed_pid(run)}-000000.abcd1234.tmp"  # another machine's
    live.write_text("x")
    elsewhere.write_text("x")
    assert run_pipeline(cfg).ran == []
    assert not left[0].exists() and live.exists() and elsewhere.exists()


def test_an_os_error_naming_a_file_is_one_line(tmp_path, monkeypatch, capsys):
    """The CLI's last guard: an OSError that names its file (from code that bypasses the atomic writers)."""

    def denied(*_a, **_k):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/srv/run/report.html")

    monkeypatch.setattr("entitylabel.report.html.build_report", denied)
    with pytest.raises(SystemExit) as e:
        main(["report", str(tmp_path)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "error: /srv/run/report.html: Permission denied" in err and "Traceback" not in err
