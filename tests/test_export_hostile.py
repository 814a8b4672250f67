"""Export on a hostile or tampered pair manifest: names and paths from data never leave their folders."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from export_fixtures import synthetic_pairs

from entitylabel.cli import main
from entitylabel.errors import EntityLabelError
from entitylabel.export.stage import run_export
from entitylabel.io import read_parquet_metadata, sha256_file, write_parquet
from entitylabel.pairs import PAIRS_SCHEMA


def tamper(pairs: Path, **columns: object) -> Path:
    """Rewrite row 0 of a manifest (dataset root kept) with the given column values."""
    df = pd.read_parquet(pairs)
    for col, value in columns.items():
        df.loc[0, col] = value
    write_parquet(df, pairs, schema=PAIRS_SCHEMA, metadata=read_parquet_metadata(pairs))
    return pairs


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    return synthetic_pairs(tmp_path / "src", tmp_path / "run", "syn", 4)


def _refused(pairs: Path, out: Path, match: str) -> str:
    with pytest.raises(EntityLabelError, match=match) as e:
        run_export(pairs, out, "syn")
    assert not out.exists()  # refused before anything is written
    return str(e.value)


@pytest.mark.parametrize("pid", ["../../PWNED_x", "a/b", ".hidden", "nul\0byte", "x" * 300])
def test_pair_id_that_is_not_a_plain_file_name_is_refused(pairs: Path, tmp_path: Path, pid: str) -> None:
    # a released dataset's pair ids become file names downstream (fuse writes OUT/<pair_id>.png)
    msg = _refused(tamper(pairs, pair_id=pid), tmp_path / "out", "not a plain file name")
    assert repr(pid)[:40] in msg and str(pairs) in msg and "\n" not in msg


def test_image_path_that_leaves_the_dataset_root_is_refused(pairs: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.bmp"  # any file on the machine must not end up embedded in a dataset
    secret.write_bytes((tmp_path / "src" / "ir" / "000.bmp").read_bytes())
    for rel in ("../secret.bmp", str(secret), "ir/../../secret.bmp"):
        msg = _refused(tamper(pairs, ir_path=rel, ir_sha256=sha256_file(secret)), tmp_path / "out", "dataset root")
        assert repr(rel) in msg and "syn-000" in msg


def test_split_name_too_long_for_a_file_name_is_one_line(pairs: Path, tmp_path: Path, capsys) -> None:
    df = pd.read_parquet(pairs)
    df["split"] = "s" * 250  # a valid split word, but `<split>-00000-of-00001.parquet` is over 255 bytes
    write_parquet(df, pairs, schema=PAIRS_SCHEMA, metadata=read_parquet_metadata(pairs))
    with pytest.raises(SystemExit) as e:
        main(["export", "--pairs", str(pairs), "--out", str(tmp_path / "out"), "--config", "syn"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.startswith("error:") and "Traceback" not in err, err
    assert "s" * 250 in err and not (tmp_path / "out").exists()


def test_repeated_pair_id_is_refused(pairs: Path, tmp_path: Path) -> None:
    _refused(tamper(pairs, pair_id="syn-001"), tmp_path / "out", "'syn-001' appears more than once")


def test_odd_but_legal_names_from_discover_still_export(tmp_path: Path) -> None:
    from export_fixtures import discover_pairs
    from PIL import Image

    for name in ("a\\b", "line\nbreak", "space d", "東京", "x..y"):  # all legal POSIX file names
        for sub, mode in (("ir", "L"), ("vi", "RGB")):
            (tmp_path / "d" / sub).mkdir(parents=True, exist_ok=True)
            Image.new(mode, (8, 8)).save(tmp_path / "d" / sub / f"{name}.png")
    pairs = discover_pairs(tmp_path / "d", tmp_path / "run")
    res = run_export(pairs, tmp_path / "out", "d")
    assert sum(res.splits.values()) == 5


@pytest.fixture
def release(tmp_path: Path) -> Path:
    pairs = synthetic_pairs(tmp_path / "rsrc", tmp_path / "rel", "r", 4)
    return run_export(pairs, tmp_path / "release", "r").out


@pytest.mark.parametrize("pattern", ["../outside/*.parquet", "/tmp/*.parquet", "data/r/../../../outside/*.parquet"])
def test_card_data_files_outside_the_folder_are_refused(release: Path, tmp_path: Path, pattern: str) -> None:
    from entitylabel.export.load import summarize

    (tmp_path / "outside").mkdir()
    for f in (release / "data" / "r").iterdir():  # a downloaded card must not make us read files beside it
        (tmp_path / "outside" / f.name).write_bytes(f.read_bytes())
    card = release / "README.md"
    text = card.read_text(encoding="utf-8")
    assert "path: data/r/train-*" in text
    card.write_text(text.replace("path: data/r/train-*", f"path: {pattern}"), encoding="utf-8")
    with pytest.raises(EntityLabelError, match="outside the dataset folder") as e:
        summarize(release)
    assert pattern in str(e.value) and str(card) in str(e.value)


def test_publish_refuses_symbolic_links_out_of_the_folder(release: Path, tmp_path: Path) -> None:
    from entitylabel.export.publish import local_files

    secret = tmp_path / "credentials.txt"
    secret.write_text("not for the hub")
    (release / "data" / "r" / "notes.txt").symlink_to(secret)  # would upload the secret's bytes
    with pytest.raises(EntityLabelError, match="symbolic link") as e:
        local_files(release)
    assert "data/r/notes.txt" in str(e.value)
    (release / "data" / "r" / "notes.txt").unlink()
    (release / "tables" / "linked").symlink_to(tmp_path, target_is_directory=True)  # a folder link too
    with pytest.raises(EntityLabelError, match="symbolic link"):
        local_files(release)


def test_export_info_config_name_cannot_leave_the_folder(release: Path, tmp_path: Path) -> None:
    from entitylabel.export.load import export_info

    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "export.json").write_text('{"planted": true}')  # tables/../../evil/export.json
    assert export_info(release, "r")["config"] == "r"
    with pytest.raises(EntityLabelError, match="config name"):
        export_info(release, "../../evil")


def test_export_into_a_folder_whose_readme_is_not_a_card_keeps_it(pairs: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"  # e.g. `--out .` inside a code repository
    project.mkdir()
    (project / "README.md").write_text("# My project\n\nhand-written notes\n")
    with pytest.raises(EntityLabelError, match="not a dataset card") as e:
        run_export(pairs, project, "syn")
    assert str(project / "README.md") in str(e.value)
    assert (project / "README.md").read_text() == "# My project\n\nhand-written notes\n"
    assert sorted(p.name for p in project.iterdir()) == ["README.md"]


def test_card_renders_data_strings_as_text_only(tmp_path: Path) -> None:
    from export_fixtures import write_captions
    from markdown_it import MarkdownIt

    from entitylabel.export.inputs import CAPTIONS_SCHEMA

    pairs = synthetic_pairs(tmp_path / "src", tmp_path / "run", "syn", 3)
    df = pd.read_parquet(pairs)
    df["dataset"] = "evil | col\n\n<script>alert(1)</script>"  # a manifest's dataset name is free text
    write_parquet(df, pairs, schema=PAIRS_SCHEMA, metadata=read_parquet_metadata(pairs))
    shard = write_captions(pairs, tmp_path / "caps") / "shard-00000.parquet"
    caps = pd.read_parquet(shard)
    caps.loc[caps.model.notna(), "model"] = "m`x` <img src=x onerror=alert(1)>\n# Heading"
    caps.loc[caps.source.str.startswith("external:"), "source"] = "external:<b>bold</b>`tick"
    write_parquet(caps, shard, schema=CAPTIONS_SCHEMA)
    card = (run_export(pairs, tmp_path / "out", "syn", captions=tmp_path / "caps").out / "README.md").read_text()
    html = MarkdownIt("commonmark").enable("table").render(card.split("\n---\n", 1)[1])
    assert not re.search(r"<(script|img|b)\b", html), html  # data shows as text, never as markup
    assert "<h1>Heading" not in html and html.count("<h1>") == 1  # no heading injected by a newline
    table = html.split("<table>")[1].split("</table>")[0]
    assert table.count("<tr>") == 2 and table.count("<td") == 5  # one config row, its 5 columns intact
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in table  # still visible to the reader, as text
    assert "m`x` &lt;img src=x onerror=alert(1)&gt; # Heading" in html  # the model id, in one code span
