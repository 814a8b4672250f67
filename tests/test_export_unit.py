"""Export on synthetic pairs: splits, shards, caption choice, config merging and every bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import datasets
import pandas as pd
import pytest
from export_fixtures import LABELS, export_inputs, snapshot, write_captions, write_entities

from entitylabel.cli import main
from entitylabel.errors import EntityLabelError
from entitylabel.export.inputs import primary_captions, read_captions
from entitylabel.export.splits import assign_splits, hash_fraction
from entitylabel.export.stage import run_export
from entitylabel.export.writer import plan_shards


@pytest.fixture
def inputs(tmp_path: Path) -> dict:
    """Two synthetic datasets (a: 12 pairs, b: 6 pairs) with captions and entities sharing one label space."""
    out = export_inputs(tmp_path, {"a": 12, "b": 6})
    out["tmp"] = tmp_path
    return out


def _export(inp: dict, name: str, out: Path, **kw):
    d = inp[name]
    return run_export(d["pairs"], out, name, captions=d["captions"], entities=d["entities"], **kw)


def _no_temp_left(folder: Path) -> bool:
    return not [p for p in folder.parent.rglob(".*") if p.name.endswith((".tmp", ".old"))]


# --- splits, shards, captions -------------------------------------------------------------------
def test_hash_split_depends_only_on_the_pair_id() -> None:
    ids = [f"ds-{i:04d}" for i in range(2000)]
    df = pd.DataFrame({"pair_id": ids, "split": "all"})
    splits, method = assign_splits(df, 0.2)
    shuffled, _ = assign_splits(df.sample(frac=1, random_state=1), 0.2)
    assert method.kind == "hash" and method.test_fraction == 0.2
    assert dict(zip(ids, splits, strict=True)) == dict(
        zip(df.sample(frac=1, random_state=1)["pair_id"], shuffled, strict=True)
    )
    assert 0.17 < (splits == "test").mean() < 0.23
    assert all((hash_fraction(p) < 0.2) == (s == "test") for p, s in zip(ids, splits, strict=True))
    # adding pairs never moves existing ones
    more, _ = assign_splits(pd.DataFrame({"pair_id": ids + ["ds-x", "ds-y"], "split": "all"}), 0.2)
    assert list(more[:2000]) == list(splits)


def test_folder_splits_are_kept_and_val_is_validation() -> None:
    df = pd.DataFrame({"pair_id": ["m-train-1", "m-test-1", "m-val-1"], "split": ["train", "test", "val"]})
    splits, method = assign_splits(df)
    assert list(splits) == ["train", "test", "validation"] and method.kind == "folders"


def test_shards_stay_within_the_bound() -> None:
    sizes = [400_000, 400_000, 400_000, 2_000_000, 100_000, 100_000]
    ranges = plan_shards(sizes, 2_000_000)
    assert ranges == [(0, 3), (3, 4), (4, 6)]  # an oversized row gets a shard of its own
    assert plan_shards([10] * 5, 10**9) == [(0, 5)] and plan_shards([], 10) == []


def test_primary_caption_skips_errors_and_prefers_vlm(inputs: dict) -> None:
    caps = read_captions(inputs["a"]["captions"])
    first = sorted(caps["pair_id"])[0]
    chosen = primary_captions(caps)
    assert chosen["vis"][first].startswith("A photo of")  # not the error row, not the imported caption
    caps.loc[(caps.pair_id == first) & (caps.source == "external:human"), "prompt_id"] = "mine"
    assert primary_captions(caps, prompt="mine")["vis"][first] == "An imported caption."


def test_many_small_shards_load_back(inputs: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _export(inputs, "a", out, shard_bytes=1)  # one pair per shard
    files = sorted((out / "data" / "a").iterdir())
    assert len(files) == 12 and len(result.files) == 12
    ds = datasets.load_dataset(str(out), "a", cache_dir=str(tmp_path / "cache"))
    assert sum(len(s) for s in ds.values()) == 12
    names = ds["train"].features["entities"].feature.names
    assert names == LABELS


# --- configs in one folder ------------------------------------------------------------------------
def test_regenerating_a_config_leaves_the_other_untouched(inputs: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _export(inputs, "a", out)
    _export(inputs, "b", out)
    before_a = {k: v for k, v in snapshot(out).items() if "/a/" in k}
    keep_b = {k: v for k, v in snapshot(out).items() if "/b/" in k}
    write_captions(inputs["a"]["pairs"], inputs["a"]["captions"], n_captioned=3)  # new captions for a
    _export(inputs, "a", out, overwrite=True)
    after = snapshot(out)
    assert {k: v for k, v in after.items() if "/b/" in k} == keep_b  # same inode, mtime and bytes
    assert {k: v[2] for k, v in after.items() if "/a/" in k} != {k: v[2] for k, v in before_a.items()}
    card = (out / "README.md").read_text()
    assert "config_name: a" in card and "config_name: b" in card
    assert sorted(datasets.get_dataset_config_names(str(out))) == ["a", "b"]
    assert _no_temp_left(out)


def test_existing_config_needs_overwrite(inputs: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _export(inputs, "a", out)
    before = snapshot(out)
    with pytest.raises(EntityLabelError, match="config 'a' already exists.*--overwrite"):
        _export(inputs, "a", out)
    assert snapshot(out) == before


def test_label_space_differing_from_existing_config_is_refused(inputs: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _export(inputs, "a", out)
    before = snapshot(out)
    other = write_entities(inputs["b"]["pairs"], tmp_path / "b_other", names=["person", "car", "dog"])
    with pytest.raises(EntityLabelError, match="label space of config 'b'.*differs from config 'a'") as err:
        run_export(inputs["b"]["pairs"], out, "b", entities=other)
    assert "\n" not in str(err.value) and "dog" in str(err.value)
    assert snapshot(out) == before and _no_temp_left(out)


# --- bad input ------------------------------------------------------------------------------------
def test_missing_image_names_the_pair_and_writes_nothing(inputs: dict, tmp_path: Path) -> None:
    (tmp_path / "src_a" / "vis" / "005.bmp").unlink()
    with pytest.raises(EntityLabelError, match="pair a-005: VIS image not found") as err:
        _export(inputs, "a", tmp_path / "out")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists() and _no_temp_left(tmp_path / "out")
    # into an existing folder: that folder is left exactly as it was
    _export(inputs, "b", tmp_path / "out")
    before = snapshot(tmp_path / "out")
    with pytest.raises(EntityLabelError, match="a-005"):
        _export(inputs, "a", tmp_path / "out")
    assert snapshot(tmp_path / "out") == before and _no_temp_left(tmp_path / "out")


def test_changed_image_is_refused(inputs: dict, tmp_path: Path) -> None:
    with open(tmp_path / "src_a" / "ir" / "003.bmp", "ab") as f:
        f.write(b"x")
    with pytest.raises(EntityLabelError, match="pair a-003: IR image changed since discover"):
        _export(inputs, "a", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_output_that_cannot_be_created(inputs: dict, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(EntityLabelError, match="cannot create output folder"):
        _export(inputs, "a", blocker / "out")
    with pytest.raises(EntityLabelError, match="not a folder"):
        _export(inputs, "a", blocker)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_output_folder(inputs: dict, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(EntityLabelError, match="not writable"):
            _export(inputs, "a", ro / "out")
    finally:
        ro.chmod(0o755)


def test_unknown_label_and_unfinished_captions(inputs: dict, tmp_path: Path) -> None:
    ents = inputs["a"]["entities"]
    space = json.loads((ents / "label_space.json").read_text())
    (ents / "label_space.json").write_text(json.dumps({**space, "names": space["names"][1:]}))
    with pytest.raises(EntityLabelError, match="label 'person' is not in label_space.json"):
        _export(inputs, "a", tmp_path / "out")
    write_captions(inputs["b"]["pairs"], inputs["b"]["captions"])
    shutil.copy(inputs["b"]["captions"] / "shard-00000.parquet", inputs["b"]["captions"] / "shard-00001.parquet")
    with pytest.raises(EntityLabelError, match="shard-00001.parquet has no .done marker"):
        _export(inputs, "b", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_export_and_errors_are_one_line(inputs: dict, tmp_path: Path, capsys) -> None:
    d, out = inputs["b"], tmp_path / "out"
    args = [
        "export",
        "--pairs",
        str(d["pairs"]),
        "--captions",
        str(d["captions"]),
        "--entities",
        str(d["entities"]),
        "--config",
        "b",
        "--out",
        str(out),
    ]
    main(args)
    assert "exported config b" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err.startswith("error:") and "--overwrite" in err
    main([*args, "--overwrite"])
    with pytest.raises(SystemExit):
        main([*args[:-4], "--config", "Bad Name!", "--out", str(out)])
    assert "config name" in capsys.readouterr().err
    main(["download", str(out)])
    printed = capsys.readouterr().out
    assert "config b: 6 pairs" in printed and "person" in printed


def test_a_killed_export_into_an_existing_folder_is_cleaned_by_the_next_run(inputs: dict, tmp_path: Path) -> None:
    """Adding a config stages it in a temporary folder inside --out; after a SIGKILL that folder must be one that
    `clean_stale_temps` (run at the start of `entitylabel run`) recognises and removes."""
    import subprocess
    import sys

    from entitylabel.io import clean_stale_temps

    out = tmp_path / "out"
    _export(inputs, "a", out)
    d = inputs["b"]
    code = (
        "import os, signal, sys\n"
        "import entitylabel.export.stage as st\n"
        "real = st._build_config\n"
        "def killed(stage, *a, **k):\n"
        "    real(stage, *a, **k)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "st._build_config = killed\n"
        f"st.run_export({str(d['pairs'])!r}, {str(out)!r}, 'b', captions={str(d['captions'])!r}, "
        f"entities={str(d['entities'])!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], env=os.environ)
    assert proc.returncode == -9
    left = [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 1 and (left[0] / "data" / "b").is_dir()  # the killed run's staged config
    assert clean_stale_temps(out) == left
    assert _no_temp_left(out) and sorted(p.name for p in (out / "data").iterdir()) == ["a"]
