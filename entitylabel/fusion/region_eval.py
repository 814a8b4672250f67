"""The boxes `evaluate --annotations` scores each pair with, and the region metrics of one fused image.

TC uses the pair's IR boxes (the `ir` modality; annotations without modality folders, such as M3FD's, use their
boxes, modality `any`); Qabf_bg uses every box of the pair, all modalities. A pair the annotations do not cover
in IR has no TC; a pair they do not cover at all has neither.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..annotations import Annotations, load_annotations
from ..errors import EntityLabelError
from ..pairs import PairManifest
from .region_metrics import REGION_METRICS, qabf_background, target_contrast

# pair_id -> (IR boxes or None when IR is not annotated, all boxes)
PairBoxes = dict[str, tuple[np.ndarray | None, np.ndarray]]


def load_region_boxes(annotations: Annotations | str | Path, manifest: PairManifest) -> PairBoxes:
    ann = annotations if isinstance(annotations, Annotations) else load_annotations(annotations, manifest.df)
    if not len(ann.files):
        raise EntityLabelError(
            "the annotations match no pair of the manifest", path=ann.source, hint="check the stems and --pairs"
        )
    return region_boxes(ann)


def region_boxes(ann: Annotations) -> PairBoxes:
    target = "ir" if "ir" in ann.modalities else "any"
    in_target = set(ann.pair_ids(target))
    xyxy = ann.boxes[["x0", "y0", "x1", "y1"]].to_numpy(dtype=np.float64)
    rows: dict[str, list[int]] = {}
    for i, pid in enumerate(ann.boxes["pair_id"]):
        rows.setdefault(pid, []).append(i)
    is_target = (ann.boxes["modality"] == target).to_numpy()
    out: PairBoxes = {}
    for pid in ann.pair_ids():
        idx = np.array(rows.get(pid, []), dtype=np.intp)
        ir = xyxy[idx[is_target[idx]]] if pid in in_target else None
        out[pid] = (ir, xyxy[idx])
    return out


def region_scores(
    ir: np.ndarray, vis: np.ndarray, fused: np.ndarray, boxes: tuple[np.ndarray | None, np.ndarray] | None
) -> dict[str, float]:
    """TC and Qabf_bg of one fused image (NaN where undefined)."""
    if boxes is None:
        return dict.fromkeys(REGION_METRICS, math.nan)
    ir_boxes, all_boxes = boxes
    tc = target_contrast(fused, ir, vis, ir_boxes) if ir_boxes is not None else None
    return {"TC": math.nan if tc is None else tc, "Qabf_bg": qabf_background(fused, ir, vis, all_boxes)}
