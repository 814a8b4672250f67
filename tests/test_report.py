"""The review page without a browser: escaping, data, highlighting, missing stages, CLI."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from report_run import EVIL, make_run

from entitylabel.cli import main
from entitylabel.errors import EntityLabelError
from entitylabel.io import write_parquet
from entitylabel.report import build_report
from entitylabel.report.highlight import PhraseIndex, segments_from_search, segments_from_spans
from entitylabel.report.html import json_for_html


def _data(page: str, block: str = "report-data") -> dict:
    m = re.search(rf'<script type="application/json" id="{block}">(.*?)</script>', page, re.S)
    assert m, block
    return json.loads(m.group(1))


def test_captions_never_reach_the_page_as_markup(tmp_path):
    run = make_run(tmp_path, n=4)
    page = build_report(run).read_text(encoding="utf-8")
    # Exactly the page's own three script elements; the caption's tags exist only \u003c-escaped.
    assert len(re.findall(r"<script\b", page, re.I)) == 3
    assert "__pwned" in page
    assert "<script>window" not in page and "<img src=x" not in page and "<b>bold" not in page
    assert "\\u003cscript\\u003ewindow.__pwned" in page
    assert page.count("</script>") == 3
    # ...and the JSON still decodes to the exact caption text.
    data = _data(page)
    texts = ["".join(s[0] for s in c["seg"]) for p in data["pairs"] for c in p["caps"]]
    assert EVIL in texts
    # No network: a CSP that allows only the page's own inline script/style and data: images.
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert "default-src 'none'" in csp and "img-src data:" in csp and "unsafe-inline" not in csp
    assert not re.search(r"(src|href)=\"https?:", page)


def test_json_for_html_escapes_what_could_end_the_element():
    text = json_for_html({"a": "</script><!-- & \u2028"})
    assert not set("<>&\u2028") & set(text)
    assert json.loads(text) == {"a": "</script><!-- & \u2028"}


def test_payload_chips_chart_rejected(tmp_path):
    run = make_run(tmp_path, n=8)
    page = build_report(run, out=tmp_path / "r.html", page_size=3, title="Toy <run>").read_text()
    assert "<title>Toy &lt;run&gt;</title>" in page
    data = _data(page)
    assert data["pageSize"] == 3
    assert [p["id"] for p in data["pairs"]] == [f"toy-{i:04d}" for i in range(8)]
    assert data["labels"] == ["person", "car", "tree"]  # the label space's order
    assert data["labelCounts"] == {"person": 4, "car": 4, "tree": 6}
    assert data["splits"] == ["test", "train"]
    p1 = data["pairs"][1]
    assert [c[0] for c in p1["ents"]] == ["car", "tree", "dog"]  # labels by confidence, then candidates
    assert [c[2] for c in p1["ents"]] == [1, 1, 0]
    assert p1["ents"][0][1] == pytest.approx(0.9)
    assert [r["phrase"] for r in data["rejected"]] == ["dog", "lamp post", "<b>bold</b>"]
    assert data["rejected"][0]["kind"] == "neg" and data["rejected"][1]["kind"] == "hedge"
    thumbs = _data(page, "report-thumbs")
    assert set(thumbs) == {p["id"] for p in data["pairs"]}
    assert all(t[0] and t[1] for t in thumbs.values())


def test_phrase_search_highlighting():
    accepted = PhraseIndex([("car", "ok", "car"), ("a tree", "ok", "tree")])
    rejected = PhraseIndex([("dog", "neg", "negated"), ("lamp post", "hedge", "hedged"), ("car park", "rej", "x")])
    text = "A Car, A  tree and no DOG near a lamp-post or lamp post; car park."
    segs = segments_from_search(text, accepted, rejected)
    marked = [(s[0], s[1]) for s in segs if len(s) > 1]
    assert marked == [("Car", "ok"), ("A  tree", "ok"), ("DOG", "neg"), ("lamp post", "hedge"), ("car park", "rej")]
    assert "".join(s[0] for s in segs) == text
    assert segments_from_search("scar cars", accepted, rejected) == [["scar cars"]]  # whole words only


def test_exact_spans_win_over_phrase_search(tmp_path):
    run = make_run(tmp_path, n=2)
    cap = "Thermal view: a warm person; there is no dog."
    write_parquet(
        pd.DataFrame(
            [
                dict(
                    pair_id="toy-0000",
                    source="ir:default:tiny",
                    start=21,
                    end=27,
                    text="person",
                    entity="person",
                    status="accepted",
                ),
                dict(
                    pair_id="toy-0000",
                    source="ir:default:tiny",
                    start=5,
                    end=9,
                    text="WRONG",
                    entity="x",
                    status="accepted",
                ),
                dict(
                    pair_id="toy-0000", source="ir:default:tiny", start=8, end=12, text="view", entity="", status="meta"
                ),
            ]
        ),
        run / "entities" / "mentions.parquet",
    )
    data = _data(build_report(run).read_text())
    ir = next(c for c in data["pairs"][0]["caps"] if c["mod"] == "ir")
    assert "".join(s[0] for s in ir["seg"]) == cap
    assert [s for s in ir["seg"] if len(s) > 1] == [["view", "rej", "meta"], ["person", "ok", "person"]]
    assert data["summary"]["spans"] == "exact"
    assert segments_from_spans("abc", [dict(start=2, end=9, text=None, entity="", status="x")]) == [["abc"]]


def test_run_with_only_pairs_and_missing_images(tmp_path):
    run = make_run(tmp_path, n=3)
    for sub in ("captions", "entities"):
        for f in (run / sub).iterdir():
            f.unlink()
        (run / sub).rmdir()
    (tmp_path / "data" / "vi" / "0001.png").unlink()
    (tmp_path / "data" / "ir" / "0002.png").write_bytes(b"not a png")
    page = build_report(run).read_text()
    data, thumbs = _data(page), _data(page, "report-thumbs")
    assert len(data["pairs"]) == 3 and data["labels"] == [] and data["rejected"] == []
    assert thumbs["toy-0001"][1] is None and thumbs["toy-0002"][0] is None and thumbs["toy-0000"][0]


def test_fused_images_by_pair_id_or_stem(tmp_path):
    from PIL import Image

    run = make_run(tmp_path, n=3)
    fused = tmp_path / "fused"
    fused.mkdir()
    Image.new("L", (32, 24), 128).save(fused / "toy-0000.png")
    Image.new("L", (32, 24), 128).save(fused / "0001.png")
    page = build_report(run, fused_dir=fused).read_text()
    thumbs = _data(page, "report-thumbs")
    assert thumbs["toy-0000"][2] and thumbs["toy-0001"][2] and thumbs["toy-0002"][2] is None
    assert _data(page)["fused"]
    with pytest.raises(EntityLabelError, match="fused image folder not found"):
        build_report(run, fused_dir=tmp_path / "nope")


def test_report_cli(tmp_path, capsys):
    run = make_run(tmp_path, n=2)
    main(["report", str(run), "--out", str(tmp_path / "x" / "page.html")])
    assert (tmp_path / "x" / "page.html").is_file()
    assert str(tmp_path / "x" / "page.html") in capsys.readouterr().out.replace("\n", "")
    with pytest.raises(SystemExit) as e:
        main(["report", str(tmp_path / "missing")])
    assert e.value.code == 2
    assert "run folder not found" in capsys.readouterr().err


def test_sixteen_bit_thermal_thumbnail(tmp_path):
    import base64
    import io

    import numpy as np
    from PIL import Image

    from entitylabel.report.thumbs import thumbnail_b64

    arr = (np.arange(300 * 200, dtype=np.uint16).reshape(200, 300) % 4000 + 20000).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "t.png")  # uint16 -> a 16-bit PNG ("I;16")
    assert Image.open(tmp_path / "t.png").mode in ("I;16", "I")
    im = Image.open(io.BytesIO(base64.b64decode(thumbnail_b64(tmp_path / "t.png", 64, gray=True))))
    assert im.format == "JPEG" and im.mode == "L" and max(im.size) == 64 and im.size[0] > im.size[1]
    lo, hi = im.getextrema()
    assert hi - lo > 120  # stretched per image (raw values 20000..23999), not a near-black or flat frame


def _one_line_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "Traceback" not in err and "\n" not in err, err
    return err


def test_report_out_on_an_unwritable_path_is_one_line(tmp_path, capsys):
    run = make_run(tmp_path, n=2)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")  # root can write anywhere: a path under a regular file cannot be made
    err = _one_line_error(capsys, ["report", str(run), "--out", str(blocker / "sub" / "page.html")])
    assert str(blocker / "sub") in err and "cannot create" in err
    (tmp_path / "page.html").mkdir()  # the page's name is taken by a folder
    err = _one_line_error(capsys, ["report", str(run), "--out", str(tmp_path / "page.html")])
    assert str(tmp_path / "page.html") in err and "is a folder" in err
    assert blocker.read_text() == "not a folder"


def test_report_in_a_read_only_run_folder_is_one_line(tmp_path, capsys, monkeypatch):
    import tempfile

    run = make_run(tmp_path, n=2)
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kw):  # what a non-root user gets from a read-only folder
        if dir is not None and Path(dir) == run:
            raise PermissionError(13, "Permission denied", str(dir))
        return real(*args, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    err = _one_line_error(capsys, ["report", str(run)])
    assert str(run / "report.html") in err and "Permission denied" in err and "--out" in err
    assert not (run / "report.html").exists()
    main(["report", str(run), "--out", str(tmp_path / "elsewhere.html")])  # the hint works
    assert (tmp_path / "elsewhere.html").is_file()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_report_in_a_chmod_read_only_run_folder(tmp_path, capsys):
    run = make_run(tmp_path, n=2)
    run.chmod(0o555)
    try:
        err = _one_line_error(capsys, ["report", str(run)])
    finally:
        run.chmod(0o755)
    assert str(run) in err and "--out" in err


def _tamper_pairs(run: Path, **columns) -> None:
    from entitylabel.io import read_parquet_metadata
    from entitylabel.pairs import PAIRS_SCHEMA

    df = pd.read_parquet(run / "pairs.parquet")
    for col, value in columns.items():
        df.loc[0, col] = value
    write_parquet(df, run / "pairs.parquet", schema=PAIRS_SCHEMA, metadata=read_parquet_metadata(run / "pairs.parquet"))


@pytest.mark.parametrize("pid", ["a\0b", "../../x", ".x"])
def test_pair_id_that_is_not_a_plain_name_is_one_line(tmp_path, capsys, pid):
    run = make_run(tmp_path, n=2)
    _tamper_pairs(run, pair_id=pid)
    err = _one_line_error(capsys, ["report", str(run)])
    assert "not a plain file name" in err and str(run / "pairs.parquet") in err
    assert not (run / "report.html").exists()


def test_image_path_outside_the_dataset_root_is_never_read(tmp_path, capsys):
    from PIL import Image

    run = make_run(tmp_path, n=2)
    Image.new("L", (8, 8), 255).save(tmp_path / "private.png")  # a page is shared: it must not embed this
    for rel in ("../private.png", str(tmp_path / "private.png")):
        _tamper_pairs(run, vis_path=rel)
        err = _one_line_error(capsys, ["report", str(run)])
        assert repr(rel) in err and "inside the dataset root" in err
    assert not (run / "report.html").exists()


def test_huge_images_in_thumbnails_are_gaps_without_raw_warnings(tmp_path):
    import warnings

    from PIL import Image

    run = make_run(tmp_path, n=2, size=(64, 48))
    limit = Image.MAX_IMAGE_PIXELS
    try:  # 64x48 over the limit: a warning; over twice the limit Pillow refuses (DecompressionBombError)
        Image.MAX_IMAGE_PIXELS = 64 * 48 - 1
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            thumbs = _data(build_report(run).read_text(), "report-thumbs")
        assert thumbs["toy-0000"][0] and thumbs["toy-0001"][1]  # over the limit: still shown
        assert not [w for w in seen if issubclass(w.category, Image.DecompressionBombWarning)]
        Image.MAX_IMAGE_PIXELS = 64 * 48 // 2 - 1
        thumbs = _data(build_report(run).read_text(), "report-thumbs")
        assert thumbs["toy-0000"] == [None, None]  # refused by Pillow: a gap, not a traceback
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def test_report_never_overwrites_a_file_that_is_not_a_review_page(tmp_path, capsys):
    run = make_run(tmp_path, n=2)
    manifest = (run / "pairs.parquet").read_bytes()
    err = _one_line_error(capsys, ["report", str(run), "--out", str(run / "pairs.parquet")])
    assert "not an entitylabel review page" in err and str(run / "pairs.parquet") in err
    assert (run / "pairs.parquet").read_bytes() == manifest
    build_report(run)  # rewriting its own page is what a rerun does
    first = (run / "report.html").read_bytes()
    assert build_report(run).read_bytes() == first
