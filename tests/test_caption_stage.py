"""The caption stage end to end on real TNO/RoadScene pairs with tiny VLMs: shards, resume, failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from caption_support import (  # noqa: F401 - fixtures
    REPO,
    roadscene_manifest,
    shard_bytes,
    synthetic_manifest,
    tno_manifest,
)
from tiny_vlms import tiny_blip, tiny_llava, tiny_vlm_root  # noqa: F401 - fixtures

from entitylabel.caption import run_caption
from entitylabel.caption import stage as stage_mod
from entitylabel.caption.backend import load_captioner
from entitylabel.caption.runlog import read_log
from entitylabel.caption.shards import CAPTION_SCHEMA
from entitylabel.pairs import load_pairs

FAST = {"max_new_tokens": 6, "batch_size": 4, "shard_size": 2}


def _computed(folder: Path) -> list[str]:
    return [e["shard"] for e in read_log(folder / "caption.log.jsonl") if e["event"] == "shard"]


@pytest.mark.parametrize("kind", ["blip", "llava"])
def test_both_modalities_both_families_on_real_pairs(
    kind: str,
    tiny_vlm_root: Path,  # noqa: F811
    tno_manifest: Path,  # noqa: F811
    roadscene_manifest: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    from tiny_vlms import tiny_vlm

    model = str(tiny_vlm(kind, tiny_vlm_root))
    for manifest in (tno_manifest, roadscene_manifest):
        out = tmp_path / manifest.parent.name
        result = run_caption(manifest, out, model=model, **FAST)
        pairs = load_pairs(manifest).df
        assert result.shards_total == (len(pairs) + 1) // 2 and result.failed == 0
        df = pq.read_table(sorted(out.glob("shard-*.parquet"))).to_pandas()
        assert pq.read_schema(out / "shard-00000.parquet").remove_metadata() == CAPTION_SCHEMA
        assert len(df) == 2 * len(pairs)
        assert sorted(df["pair_id"].unique()) == sorted(pairs["pair_id"])
        assert set(zip(df["modality"], df["prompt_id"], strict=True)) == {("vis", "vis_default"), ("ir", "ir_default")}
        assert (df["source"] == df["modality"] + ":" + df["prompt_id"] + ":" + model).all()
        assert df["caption"].str.len().gt(0).all() and df["error"].isna().all()
        assert (df["model"] == model).all() and df["model_revision"].isna().all()
        assert df["prompt_sha256"].str.fullmatch("[0-9a-f]{64}").all()
        decoding = json.loads(df["decoding"].iloc[0])
        assert decoding["do_sample"] is False and decoding["max_new_tokens"] == 6
        assert decoding["prompt_mode"] == ("prefix" if kind == "blip" else "chat")
        assert df["n_tokens"].between(0, 6).all()
        assert (df["truncated"] == (df["n_tokens"] == 6)).all()  # random models rarely stop by themselves
        ir_vs_vis = df.pivot_table(index="pair_id", columns="modality", values="caption", aggfunc="first")
        assert (ir_vs_vis["ir"] != ir_vs_vis["vis"]).any()
        log = read_log(out / "caption.log.jsonl")
        assert {e["event"] for e in log} >= {"start", "shard", "end"}
        assert all("seconds" not in c for c in df.columns)  # times only in the log
        summary = json.loads((out / "caption.json").read_text())
        assert summary["rows"] == len(df) and summary["pairs"] == len(pairs)


def test_interrupted_run_resumes_byte_identical_without_recomputing(
    tiny_llava: Path,  # noqa: F811
    tno_manifest: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    captioner = load_captioner(str(tiny_llava), max_new_tokens=6, batch_size=2)
    reference = tmp_path / "reference"
    run_caption(tno_manifest, reference, captioner=captioner, shard_size=2, batch_size=2)

    resumed = tmp_path / "resumed"
    real_write = stage_mod.write_shard
    written: list[str] = []

    def write_then_interrupt(shard, *args, **kwargs):  # noqa: ANN001, ANN202 - wraps write_shard
        real_write(shard, *args, **kwargs)
        written.append(shard.name)
        raise KeyboardInterrupt  # Ctrl-C right after the first shard is safely on disk

    monkeypatch.setattr(stage_mod, "write_shard", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_caption(tno_manifest, resumed, captioner=captioner, shard_size=2, batch_size=3)
    monkeypatch.setattr(stage_mod, "write_shard", real_write)
    assert written == ["shard-00000"]
    assert sorted(p.name for p in resumed.iterdir()) == ["caption.log.jsonl", "shard-00000.done", "shard-00000.parquet"]

    result = run_caption(tno_manifest, resumed, captioner=captioner, shard_size=2, batch_size=3)
    assert result.skipped == ["shard-00000"] and result.computed == ["shard-00001", "shard-00002"]
    assert sorted(written + _computed(resumed)) == ["shard-00000", "shard-00001", "shard-00002"]  # each once
    assert shard_bytes(resumed) == shard_bytes(reference)  # batch size differs too: still the same bytes
    assert any(e["event"] == "interrupted" for e in read_log(resumed / "caption.log.jsonl"))

    again = run_caption(tno_manifest, resumed, captioner=captioner, shard_size=2, batch_size=3)
    assert again.computed == [] and len(again.skipped) == 3
    forced = run_caption(tno_manifest, resumed, captioner=captioner, shard_size=2, force=True)
    assert len(forced.computed) == 3 and shard_bytes(resumed) == shard_bytes(reference)


def test_changed_settings_redo_shards_and_stale_shards_go(
    tiny_llava: Path,  # noqa: F811
    tno_manifest: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    out = tmp_path / "captions"
    model = str(tiny_llava)
    run_caption(tno_manifest, out, model=model, shard_size=2, max_new_tokens=4, modalities=["ir"])
    other = run_caption(tno_manifest, out, model=model, shard_size=2, max_new_tokens=5, modalities=["ir"])
    assert len(other.computed) == 3  # a different token limit makes different captions: nothing is reused
    assert json.loads(pq.read_table(out / "shard-00000.parquet")["decoding"][0].as_py())["max_new_tokens"] == 5
    bigger = run_caption(tno_manifest, out, model=model, shard_size=4, max_new_tokens=5, modalities=["ir"])
    assert bigger.shards_total == 2
    assert sorted(p.name for p in out.glob("shard-*")) == [
        "shard-00000.done",
        "shard-00000.parquet",
        "shard-00001.done",
        "shard-00001.parquet",
    ]


def test_killed_process_loses_at_most_the_shard_in_flight(
    tiny_llava: Path,  # noqa: F811
    tno_manifest: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    args = ["--model", str(tiny_llava), "--shard-size", "1", "--batch-size", "1", "--max-new-tokens", "24"]
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "entitylabel", "caption", str(tno_manifest), "--out", str(killed), *args]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while not (killed / "shard-00000.done").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = sorted(p.stem for p in killed.glob("shard-*.done"))
    assert "shard-00000" in done_before

    captioner = load_captioner(str(tiny_llava), max_new_tokens=24, batch_size=1)
    result = run_caption(tno_manifest, killed, captioner=captioner, shard_size=1)
    reference = run_caption(tno_manifest, tmp_path / "reference", captioner=captioner, shard_size=1)
    assert sorted(result.skipped) == done_before  # finished shards are not computed twice
    assert sorted(result.computed + result.skipped) == sorted(reference.computed)
    assert not list(killed.glob(".*.tmp"))  # the half-written file of the shard in flight is gone
    assert shard_bytes(killed) == shard_bytes(tmp_path / "reference")


def test_corrupt_and_missing_images_become_failed_rows(
    tiny_blip: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    manifest = synthetic_manifest(tmp_path / "data", 5)
    (tmp_path / "data" / "vi" / "01.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (tmp_path / "data" / "ir" / "03.png").unlink()
    out = tmp_path / "captions"
    result = run_caption(manifest, out, model=str(tiny_blip), shard_size=5, batch_size=4, max_new_tokens=4)
    df = pd.read_parquet(out / "shard-00000.parquet")
    assert len(df) == 10 and result.failed == 2
    bad = df[df["error"].notna()].set_index(["pair_id", "modality"])
    assert sorted(bad.index) == [("syn-01", "vis"), ("syn-03", "ir")]
    assert "corrupt image 01.png" in bad.loc[("syn-01", "vis"), "error"]
    assert "image not found" in bad.loc[("syn-03", "ir"), "error"]
    assert bad["caption"].isna().all()
    good = df[df["error"].isna()]
    assert len(good) == 8 and good["caption"].str.len().gt(0).all()


def test_a_rerun_retries_exactly_the_failed_rows(
    tiny_blip: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifest = synthetic_manifest(tmp_path / "data", 6)
    vi1, ir3 = tmp_path / "data" / "vi" / "01.png", tmp_path / "data" / "ir" / "03.png"
    good_vi1, good_ir3 = vi1.read_bytes(), ir3.read_bytes()
    vi1.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    ir3.unlink()
    out = tmp_path / "captions"
    captioner = load_captioner(str(tiny_blip), max_new_tokens=4, batch_size=4)
    args = {"captioner": captioner, "shard_size": 3, "batch_size": 4}
    first = run_caption(manifest, out, **args)
    assert first.failed == 2 and first.computed == ["shard-00000", "shard-00001"]
    before = {f.name: pd.read_parquet(f) for f in sorted(out.glob("shard-*.parquet"))}

    real_batches = stage_mod._batches
    asked: list[tuple[str, str]] = []

    def recording(*a, **kw):  # noqa: ANN002, ANN003, ANN202 - wraps _batches
        for batch in real_batches(*a, **kw):
            asked.extend((x.pair_id, x.modality) for x in batch.items)
            yield batch

    monkeypatch.setattr(stage_mod, "_batches", recording)
    still_broken = run_caption(manifest, out, **args)  # images not fixed yet: retried, still failed
    assert sorted(asked) == [("syn-01", "vis"), ("syn-03", "ir")]
    assert still_broken.retried == ["shard-00000", "shard-00001"] and still_broken.computed == []
    assert still_broken.failed == 2 and still_broken.rows == 2

    vi1.write_bytes(good_vi1)
    ir3.write_bytes(good_ir3)
    asked.clear()
    fixed = run_caption(manifest, out, **args)
    assert sorted(asked) == [("syn-01", "vis"), ("syn-03", "ir")]  # exactly the failed rows, nothing else
    assert fixed.failed == 0 and fixed.rows == 2 and fixed.retried == ["shard-00000", "shard-00001"]
    for name, old in before.items():
        new = pd.read_parquet(out / name)
        assert len(new) == 6 and new["error"].isna().all() and new["caption"].str.len().gt(0).all()
        kept = old[old["error"].isna()].reset_index(drop=True)
        pd.testing.assert_frame_equal(
            new.merge(kept[["pair_id", "modality"]]).reset_index(drop=True), kept, check_dtype=False
        )  # the rows that had succeeded are untouched
    assert json.loads((out / "caption.json").read_text())["failed"] == 0
    assert any(e["event"] == "retry" for e in read_log(out / "caption.log.jsonl"))

    asked.clear()
    again = run_caption(manifest, out, **args)
    assert asked == [] and again.retried == [] and len(again.skipped) == 2
    (out / "shard-00001.parquet").write_bytes(b"PAR1 damaged")  # marker says done, data unreadable: redo it
    redo = run_caption(manifest, out, **args)
    assert redo.computed == ["shard-00001"] and redo.skipped == ["shard-00000"]
    reference = tmp_path / "reference"
    run_caption(manifest, reference, **args)
    assert shard_bytes(out) == shard_bytes(reference)  # as if nothing had ever failed


def test_after_out_of_memory_the_loader_makes_the_smaller_batches(
    tiny_llava: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    import torch

    manifest = synthetic_manifest(tmp_path / "data", 24, size=(24, 20))
    captioner = load_captioner(str(tiny_llava), max_new_tokens=2, batch_size=4)
    real_generate, real_prepare = captioner.model.generate, captioner.prepare
    prepared: list[tuple[bool, int]] = []  # (on the main thread, batch size)

    def small_gpu(**kw):  # noqa: ANN003, ANN202
        if kw["input_ids"].shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_generate(**kw)

    def recording_prepare(images, wordings):  # noqa: ANN001, ANN202
        prepared.append((threading.current_thread() is threading.main_thread(), len(images)))
        return real_prepare(images, wordings)

    monkeypatch.setattr(captioner.model, "generate", small_gpu)
    monkeypatch.setattr(captioner, "prepare", recording_prepare)
    result = run_caption(manifest, tmp_path / "out", captioner=captioner, modalities=["vis"], shard_size=24)
    assert result.failed == 0 and result.rows == 24 and captioner.batch_limit == 2
    on_main = [n for main, n in prepared if main]
    in_loader = [n for main, n in prepared if not main]
    # 6 batches of 4 planned. Prepared at 4 before the loader saw the lowered limit: the batch that ran out of
    # memory, the depth-2 queue and one more prepared and waiting for a queue slot (how many depends on thread
    # timing); each is split in two on the main thread, and the loader cut every later batch itself.
    full = in_loader.count(4)
    assert 1 <= full <= 1 + 2 + 1
    assert on_main == [2] * (2 * full)
    assert in_loader.count(2) == 2 * (6 - full) and in_loader[-1] == 2
