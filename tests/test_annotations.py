"""Annotation import: YOLO (per modality and flat), M3FD-style VOC XML and COCO JSON; every bad input a problem row."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from entitylabel.annotations import BOX_COLUMNS, PROBLEM_COLUMNS, PROBLEM_KINDS, detect_format, load_annotations
from entitylabel.errors import EntityLabelError
from entitylabel.pairs import PAIRS_SCHEMA

W, H = 640, 480


def manifest(stems: list[str], split: str = "test", dataset: str = "msrs", ir: str = "ir", vis: str = "vi"):
    rows = []
    for s in stems:
        rows.append(
            {
                "pair_id": f"{dataset}-{split}-{s}" if split != "all" else f"{dataset}-{s}",
                "dataset": dataset,
                "split": split,
                "ir_path": f"{split}/{ir}/{s}.png",
                "vis_path": f"{split}/{vis}/{s}.png",
                "width": W,
                "height": H,
                "ir_mode": "L",
                "vis_mode": "RGB",
                "ir_sha256": "",
                "vis_sha256": "",
            }
        )
    return pd.DataFrame(rows, columns=PAIRS_SCHEMA.names)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def kinds(ann) -> dict[str, int]:
    return ann.problems["kind"].value_counts().to_dict()


# --- YOLO -----------------------------------------------------------------------------------------------


def msrs_labels(root: Path) -> Path:
    """MSRS-labelled's layout: labels/{ir,vi,fusion}/<stem>.txt + labels/classes.txt ("0 person" lines)."""
    lab = root / "labels"
    write(lab / "classes.txt", "0 person\n1 bicycle\n2 car\n")
    write(lab / "ir" / "00001N.txt", "0 0.5 0.5 0.1 0.2\n2 0.25 0.25 0.1 0.1\n")
    write(lab / "vi" / "00001N.txt", "2 0.25 0.25 0.1 0.1\n")  # the person is dark in VIS: IR box only
    write(lab / "fusion" / "00001N.txt", "0  0.5  0.5  0.1  0.2\n")  # two spaces, as MSRS's fusion labels
    for m in ("ir", "vi", "fusion"):
        write(lab / m / "00002D.txt", "")  # annotated, no object
    return lab


def test_yolo_per_modality_boxes_labels_and_coverage(tmp_path: Path) -> None:
    lab = msrs_labels(tmp_path)
    ann = load_annotations(lab, manifest(["00001N", "00002D"]))
    assert ann.format == "yolo" and ann.problems.empty
    assert list(ann.boxes.columns) == list(BOX_COLUMNS) and list(ann.problems.columns) == list(PROBLEM_COLUMNS)
    assert ann.covered == ["person", "car", "bicycle"]  # from classes.txt, in vocabulary order
    person = ann.boxes[(ann.boxes["modality"] == "ir") & (ann.boxes["entity"] == "person")].iloc[0]
    assert (person.x0, person.y0, person.x1, person.y1) == pytest.approx((288.0, 192.0, 352.0, 288.0))
    assert ann.labels("ir") == {"msrs-test-00001N": {"person", "car"}, "msrs-test-00002D": set()}
    assert ann.labels("vis") == {"msrs-test-00001N": {"car"}, "msrs-test-00002D": set()}
    assert ann.labels() == {"msrs-test-00001N": {"person", "car"}, "msrs-test-00002D": set()}
    assert ann.modalities == ["ir", "vis", "fusion"]
    assert ann.boxes_of("msrs-test-00001N", "vis").shape == (1, 4)
    # the dataset root works too (labels/ found), and the result is the same
    again = load_annotations(tmp_path, manifest(["00001N", "00002D"]))
    pd.testing.assert_frame_equal(again.boxes, ann.boxes)


def test_yolo_flat_folder_with_plain_class_list(tmp_path: Path) -> None:
    write(tmp_path / "classes.txt", "People\nMotorcycle\n")
    write(tmp_path / "00001N.txt", "1 0.5 0.5 0.2 0.2\n")
    ann = load_annotations(tmp_path, manifest(["00001N"]))
    assert ann.boxes["modality"].tolist() == ["any"] and ann.boxes["entity"].tolist() == ["motorcycle"]
    assert ann.covered == ["person", "motorcycle"]  # People -> person by the vocabulary's forms
    assert ann.labels("any") == ann.labels() == {"msrs-test-00001N": {"motorcycle"}}


def test_yolo_every_bad_input_is_a_problem_row(tmp_path: Path) -> None:
    lab = tmp_path / "labels"
    write(lab / "classes.txt", "person\nunicorn\n")
    lines = [
        "0 0.5 0.5 0.1 0.1",  # fine
        "0 0.5 0.5 0.1",  # 4 fields
        "0 0.5 zero 0.1 0.1",  # not a number
        "0.5 0.5 0.5 0.1 0.1",  # class id not an integer
        "7 0.5 0.5 0.1 0.1",  # class id not in classes.txt
        "1 0.5 0.5 0.1 0.1",  # class name not in the vocabulary
        "0 1.5 1.5 0.1 0.1",  # wholly outside
        "0 0.99 0.5 0.1 0.1",  # reaches 32 px beyond the right edge: clipped, reported
        "0 0.5 0.5 0 0.1",  # zero width
        "0 nan 0.5 0.1 0.1",  # not finite
        "",  # blank lines are fine
    ]
    write(lab / "ir" / "a.txt", "\n".join(lines))
    write(lab / "ir" / "stray.txt", "0 0.5 0.5 0.1 0.1\n")  # no such pair
    write(lab / "ir" / "notes.md", "x")  # not an annotation
    write(lab / "ir" / "sub" / "a.txt", "0 0.5 0.5 0.1 0.1\n")  # second file for the same pair
    write(lab / "vi" / "a.txt", b"0 0.5 0.5 0.1 0.1\n\xff\xfe")  # not UTF-8
    # vi/b.txt missing
    write(lab / "vi" / "c.txt", "")
    write(lab / "ir" / "b.txt", "")
    write(lab / "ir" / "c.txt", "")
    ann = load_annotations(lab, manifest(["a", "b", "c"]))
    assert kinds(ann) == {
        "malformed": 4,
        "unknown_class": 2,
        "box_outside": 1,
        "box_clipped": 1,
        "bad_box": 1,
        "unmatched": 1,
        "not_annotation": 1,
        "duplicate": 1,
        "unreadable": 1,
        "missing_file": 1,
    }
    assert set(ann.problems["kind"]) <= set(PROBLEM_KINDS)
    p = ann.problems.set_index("kind")
    assert p.loc["missing_file", "path"] == "vi/b.txt"  # vi/a.txt is there (its own row says it is unreadable)
    assert sorted(m.split(":")[0] for m in p.loc["unknown_class", "message"]) == ["line 5", "line 6"]
    assert p.loc["duplicate", "path"] == "ir/sub/a.txt"
    # the good box and the clipped one are kept; the clipped one ends at the image edge
    ir = ann.boxes[ann.boxes["pair_id"] == "msrs-test-a"]
    assert len(ir) == 2 and ir["x1"].max() == W
    assert "msrs-test-a" not in ann.labels("vis")  # unreadable file: the pair is not annotated in VIS
    assert ann.labels("vis") == {"msrs-test-c": set()}


def test_yolo_without_class_list_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(EntityLabelError, match="classes.txt"):
        load_annotations(tmp_path, manifest(["a"]))


def test_split_folders_pick_the_pair_when_stems_repeat(tmp_path: Path) -> None:
    pairs = pd.concat([manifest(["x"], split="train"), manifest(["x"], split="test")], ignore_index=True)
    write(tmp_path / "classes.txt", "person\n")
    write(tmp_path / "test" / "x.txt", "0 0.5 0.5 0.1 0.1\n")
    write(tmp_path / "x.txt", "0 0.5 0.5 0.1 0.1\n")
    ann = load_annotations(tmp_path, pairs)
    assert ann.boxes["pair_id"].tolist() == ["msrs-test-x"]
    assert kinds(ann) == {"ambiguous": 1, "missing_file": 1}
    # a file named by the pair id always matches
    write(tmp_path / "msrs-train-x.txt", "0 0.5 0.5 0.1 0.1\n")
    ann = load_annotations(tmp_path, pairs)
    assert sorted(ann.boxes["pair_id"]) == ["msrs-test-x", "msrs-train-x"]


# --- VOC (M3FD) ---------------------------------------------------------------------------------------


def voc(objects: list[tuple[str, tuple]], size: tuple[int, int] = (W, H), name: str = "00000.png") -> str:
    objs = "".join(
        f"<object><name>{n}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
        f"<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, b in objects
    )
    return (
        f"<annotation><folder>M3FD</folder><filename>{name}</filename><size><width>{size[0]}</width>"
        f"<height>{size[1]}</height><depth>3</depth></size><segmented>0</segmented>{objs}</annotation>"
    )


def m3fd(root: Path) -> Path:
    """M3FD's layout: Ir/, Vis/ and Annotation/<stem>.xml with its six classes."""
    ann = root / "Annotation"
    write(
        ann / "00000.xml",
        voc(
            [
                ("People", (10, 20, 30, 60)),
                ("Car", (100, 100, 200, 160)),
                ("Lamp", (300, 10, 310, 80)),
                ("Motorcycle", (400, 200, 440, 240)),
            ]
        ),
    )
    write(ann / "00001.xml", voc([("Truck", (0, 0, 640, 480)), ("Bus", (5, 5, 50, 50))]))
    write(ann / "00002.xml", voc([]))
    latin = '<?xml version="1.0" encoding="ISO-8859-1"?>' + voc([("Car", (1, 1, 9, 9))]).replace("M3FD", "M3FD \xe9")
    write(ann / "00003.xml", latin.encode("latin-1"))  # a declared encoding is honoured
    return ann


def test_voc_m3fd_imports_with_mapped_classes(tmp_path: Path) -> None:
    m3fd(tmp_path)
    pairs = manifest(["00000", "00001", "00002", "00003"], split="all", dataset="m3fd", ir="Ir", vis="Vis")
    ann = load_annotations(tmp_path, pairs)  # dataset root: Annotation/ found
    assert ann.format == "voc" and ann.problems.empty
    assert ann.labels() == {
        "m3fd-00000": {"person", "car", "street lamp", "motorcycle"},
        "m3fd-00001": {"truck", "bus"},
        "m3fd-00002": set(),
        "m3fd-00003": {"car"},
    }
    first = ann.boxes.iloc[0]
    assert (first.class_name, first.entity, first.x0, first.y1) == ("People", "person", 10.0, 60.0)
    assert set(ann.covered) == {"person", "car", "street lamp", "motorcycle", "truck", "bus"}


def test_voc_every_bad_input_is_a_problem_row(tmp_path: Path) -> None:
    ann_dir = tmp_path / "Annotation"
    write(ann_dir / "a.xml", "<annotation><object><name>Car</name>")  # truncated
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        "<annotation><object><name>&lol2;</name></object></annotation>"
    )
    write(ann_dir / "b.xml", bomb)
    write(ann_dir / "c.xml", "<html></html>")
    write(ann_dir / "d.xml", voc([], size=(320, 240)))
    bad_obj = voc([("Car", (1, 2, 3, 4))]).replace("<bndbox><xmin>1</xmin>", "<bndbox><xmin>one</xmin>")
    bad_obj = bad_obj.replace(
        "</annotation>",
        "<object><name>Car</name></object><object><name>Dragon</name>"
        "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>"
        "</annotation>",
    )
    write(ann_dir / "e.xml", bad_obj)
    pairs = manifest(["a", "b", "c", "d", "e", "f"], split="all", dataset="m3fd")
    ann = load_annotations(ann_dir, pairs)
    assert kinds(ann) == {"malformed": 5, "size_mismatch": 1, "unknown_class": 1, "missing_file": 1}
    msgs = ann.problems.set_index("path")["message"]
    assert "refused" in msgs["b.xml"] and "320x240" in msgs["d.xml"]
    assert ann.problems.loc[ann.problems["kind"] == "missing_file", "path"].tolist() == ["f.xml"]
    assert ann.boxes.empty and ann.labels() == {"m3fd-e": set()}


# --- COCO ---------------------------------------------------------------------------------------------


def coco_doc() -> dict:
    return {
        "images": [
            {"id": 1, "file_name": "train/x.png", "width": W, "height": H},
            {"id": 2, "file_name": "y.jpg", "width": W, "height": H},
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
        "annotations": [
            {"image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40]},
            {"image_id": 1, "category_id": 3, "bbox": [100, 100, 50, 20]},
        ],
    }


def test_coco_imports(tmp_path: Path) -> None:
    path = write(tmp_path / "instances.json", json.dumps(coco_doc()))
    ann = load_annotations(path, manifest(["x", "y"], split="all", dataset="ds"))
    assert ann.format == "coco" and ann.problems.empty
    assert ann.labels() == {"ds-x": {"person", "car"}, "ds-y": set()}
    assert ann.boxes.iloc[0][["x0", "y0", "x1", "y1"]].tolist() == [10.0, 20.0, 40.0, 60.0]
    assert detect_format(tmp_path) == ("coco", tmp_path)


def test_coco_every_bad_input_is_a_problem_row(tmp_path: Path) -> None:
    doc = coco_doc()
    doc["images"] += [
        {"id": 1, "file_name": "z.png"},
        {"file_name": "nothing.png"},
        {"id": 5, "file_name": "q.png"},
        {"id": 6, "file_name": "w.png", "width": 10, "height": 10},
    ]
    doc["categories"].append({"id": 9})
    doc["annotations"] += [
        {"image_id": 2, "category_id": 7, "bbox": [1, 2, 3, 4]},  # unknown category
        {"image_id": 2, "category_id": 1, "bbox": [1, 2, 3]},  # short bbox
        {"image_id": 2, "category_id": 1, "bbox": [1, 2, "3", 4]},  # not a number
        {"image_id": 99, "category_id": 1, "bbox": [1, 2, 3, 4]},  # no such image
        "not an object",
        {"image_id": 2, "category_id": 1, "bbox": [-500, 2, 3, 4]},  # outside
    ]
    path = write(tmp_path / "a.json", json.dumps(doc))
    ann = load_annotations(path, manifest(["x", "y", "w", "v"], split="all", dataset="ds"))
    assert kinds(ann) == {
        "malformed": 8,
        "unknown_class": 1,
        "unmatched": 1,
        "size_mismatch": 1,
        "box_outside": 1,
        "missing_file": 2,
    }
    assert ann.labels() == {"ds-y": set()}  # x's id is used twice: x is not annotated at all
    assert set(ann.problems.loc[ann.problems["kind"] == "missing_file", "path"]) == {"a.json"}
    write(tmp_path / "bad" / "b.json", "{not json")
    bad = load_annotations(tmp_path / "bad" / "b.json", manifest(["x"], split="all", dataset="ds"))
    assert kinds(bad) == {"malformed": 1, "missing_file": 1} and bad.boxes.empty
    write(tmp_path / "bad2" / "c.json", "[1, 2]")
    assert "not a COCO file" in load_annotations(tmp_path / "bad2" / "c.json", manifest(["x"])).problems.iloc[0].message


def test_not_an_annotation_source(tmp_path: Path) -> None:
    with pytest.raises(EntityLabelError, match="not found"):
        load_annotations(tmp_path / "nope", manifest(["a"]))
    write(tmp_path / "x.csv", "a")
    with pytest.raises(EntityLabelError, match="no annotation files"):
        load_annotations(tmp_path, manifest(["a"]))


def test_msrs_labelled_imports_as_its_source_says(shared_data: Path, tmp_path: Path) -> None:
    from entitylabel.discover import discover

    root = shared_data / "MSRS-labelled"
    result = discover(root, workers=2)
    assert result.layout == "msrs" and len(result.pairs) == 170 and result.problems.empty
    ann = load_annotations(root / "labels", result.pairs)
    assert ann.problems.empty and ann.covered == ["person", "car", "bicycle"]
    counts = ann.boxes.groupby(["modality", "entity"]).size().to_dict()
    assert counts == {
        ("ir", "person"): 519,
        ("ir", "bicycle"): 110,
        ("ir", "car"): 175,
        ("vis", "person"): 202,
        ("vis", "bicycle"): 69,
        ("vis", "car"): 179,
        ("fusion", "person"): 393,
        ("fusion", "bicycle"): 66,
        ("fusion", "car"): 216,
    }
    assert sum(bool(v) for v in ann.labels("ir").values()) == 159
    assert sum(bool(v) for v in ann.labels("vis").values()) == 126
