"""Fusing: any input size, gray + colour PNGs by pair id, labels, and bad input (sizes, label spaces)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fusion_synth import LABELS, make_dataset, save_dataset_folder, synth_pair, tiny_config, write_pair_folder
from PIL import Image

from entitylabel.cli import main
from entitylabel.errors import EntityLabelError
from entitylabel.fusion.checkpoint import TrainerState, save_checkpoint
from entitylabel.fusion.fuse import fuse
from entitylabel.fusion.model import EntityFusionNet


def _checkpoint(run: Path, labels: list[str] | None = None) -> Path:
    """An untrained (pixel-max + random entity path) checkpoint: fuse needs no training to be tested."""
    torch.manual_seed(0)
    cfg = tiny_config(labels=list(labels or []))
    model = EntityFusionNet(cfg, torch.nn.functional.normalize(torch.randn(len(cfg.labels), 384), dim=-1))
    torch.nn.init.normal_(model.decoder.out.weight, std=0.01)
    save_checkpoint(run, model, cfg, TrainerState(step=1))
    return run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _checkpoint(tmp_path_factory.mktemp("run"), LABELS)


def test_fuse_folder_writes_gray_and_colour_pngs_of_the_input_size(run: Path, tmp_path: Path) -> None:
    src = write_pair_folder(tmp_path / "TNO", {"a": ((37, 53), (37, 53)), "b": ((64, 48), (64, 48))})
    res = fuse(run, src, tmp_path / "out")
    assert sorted(res.written) == ["tno-a", "tno-b"] and not res.failed
    for pid, (h, w) in (("tno-a", (37, 53)), ("tno-b", (64, 48))):
        gray, color = Image.open(tmp_path / "out" / f"{pid}.png"), Image.open(tmp_path / "out" / "color" / f"{pid}.png")
        assert gray.size == color.size == (w, h)
        assert gray.mode == "L" and color.mode == "RGB"
        # colour = fused Y with the visible chroma: its luma is the gray output
        y = np.asarray(color.convert("YCbCr"))[..., 0].astype(int)
        assert np.abs(y - np.asarray(gray).astype(int)).mean() < 2.0
    summary = json.loads((tmp_path / "out" / "fuse.json").read_text())
    assert summary["label_space"] == LABELS
    assert summary["pairs"]["tno-a"]["source"] == "predicted"


def test_fuse_one_pair_with_user_labels(run: Path, tmp_path: Path) -> None:
    ir, vis = synth_pair(3, 30, 45)
    Image.fromarray(ir).save(tmp_path / "ir.png")
    Image.fromarray(vis).save(tmp_path / "vis.jpg")
    res = fuse(run, [tmp_path / "ir.png", tmp_path / "vis.jpg"], tmp_path / "out", labels="person, tree")
    assert res.entities["ir"] == {"entities": ["person", "tree"], "source": "given"}
    assert Image.open(tmp_path / "out" / "ir.png").size == (45, 30)
    with pytest.raises(EntityLabelError, match=r"labels \['dog'\] are not in the checkpoint's label space"):
        fuse(run, [tmp_path / "ir.png", tmp_path / "vis.jpg"], tmp_path / "out", labels=["dog"])


def test_size_mismatch_is_a_clear_per_pair_error(run: Path, tmp_path: Path) -> None:
    src = write_pair_folder(tmp_path / "d", {"good": ((32, 32), (32, 32)), "bad": ((30, 40), (32, 44))})
    res = fuse(run, src, tmp_path / "out")
    assert res.written == ["d-good"]
    assert "d-bad" in res.failed and "IR is 40x30" in res.failed["d-bad"] and "44x32" in res.failed["d-bad"]
    assert "d-bad" in json.loads((tmp_path / "out" / "fuse.json").read_text())["failed"]
    with pytest.raises(EntityLabelError, match="IR is 40x30 but VIS is 44x32"):  # one pair: raised
        fuse(run, [src / "ir" / "bad.png", src / "vi" / "bad.png"], tmp_path / "one")


def test_dataset_input_uses_its_labels_and_refuses_another_label_space(run: Path, tmp_path: Path) -> None:
    same = save_dataset_folder(make_dataset(3), tmp_path / "same")
    res = fuse(run, same, tmp_path / "out")
    assert sorted(res.written) == ["synth-00", "synth-01", "synth-02"]
    assert res.entities["synth-00"] == {"entities": ["person", "tree"], "source": "given"}
    other = save_dataset_folder(make_dataset(3, labels=["car", "person", "dog"]), tmp_path / "other")
    with pytest.raises(EntityLabelError, match=r"input has \['car', 'person', 'dog'\], checkpoint has \['car', "):
        fuse(run, other, tmp_path / "out2")


def test_manifest_input(run: Path, tmp_path: Path) -> None:
    from entitylabel.discover import run_discover

    src = write_pair_folder(tmp_path / "m", {"x": ((20, 24), (20, 24))})
    run_discover(src, tmp_path / "disc")
    res = fuse(run, tmp_path / "disc" / "pairs.parquet", tmp_path / "out")
    assert res.written == ["m-x"]


def test_fusion_only_checkpoint_ignores_labels_with_a_warning(tmp_path: Path) -> None:
    plain = _checkpoint(tmp_path / "plain")
    src = write_pair_folder(tmp_path / "f", {"p": ((16, 16), (16, 16))})
    with pytest.warns(UserWarning, match="no entity path"):
        res = fuse(plain, src, tmp_path / "out", labels="person")
    assert res.entities["f-p"]["source"] == "none"


def test_cli_fuse_and_errors(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_pair_folder(tmp_path / "c", {"q": ((24, 28), (24, 28))})
    main(["fuse", str(run), str(src), "--out", str(tmp_path / "out")])
    assert (tmp_path / "out" / "c-q.png").is_file() and (tmp_path / "out" / "color" / "c-q.png").is_file()
    with pytest.raises(SystemExit) as e:
        main(["fuse", str(tmp_path / "nope"), str(src), "--out", str(tmp_path / "o2")])
    assert e.value.code == 2
    assert "run or checkpoint not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["fuse", str(run), str(src / "ir" / "q.png"), "--out", str(tmp_path / "o3")])
    assert e.value.code == 2


def test_unsafe_pair_ids_from_a_dataset_never_leave_out(run: Path, tmp_path: Path) -> None:
    """A released dataset whose pair_id climbs out of --out: that pair is a reported failure, the rest is fused."""
    ds = make_dataset(3).map(lambda r, i: {"pair_id": ["../../PWNED_x", "ok-1", "..\\PWNED_y"][i]}, with_indices=True)
    folder = save_dataset_folder(ds, tmp_path / "ds")
    out = tmp_path / "out" / "a" / "b"
    res = fuse(run, folder, out)
    assert res.written == ["ok-1"]
    assert set(res.failed) == {"../../PWNED_x", "..\\PWNED_y"}
    assert all("unsafe output name" in m for m in res.failed.values())
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    assert written == ["out/a/b/color/ok-1.png", "out/a/b/ok-1.png"]
    assert json.loads((out / "fuse.json").read_text())["failed"].keys() == res.failed.keys()
    with pytest.raises(SystemExit) as e:  # the CLI reports the failed pair and exits 2
        main(["fuse", str(run), str(folder), "--out", str(tmp_path / "cli")])
    assert e.value.code == 2
    assert not list(tmp_path.glob("PWNED*")) and not list((tmp_path / "out").glob("PWNED*"))
