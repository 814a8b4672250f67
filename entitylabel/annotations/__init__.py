"""A dataset's own object annotations (YOLO txt, Pascal VOC XML, COCO JSON) as boxes and entity labels per pair.

`load_annotations(source, pairs)` -> `Annotations` (`.boxes`, `.problems`, `.covered`, `.labels(modality)`).
"""

from .load import FORMATS, detect_format, load_annotations
from .model import BOX_COLUMNS, MODALITIES, PROBLEM_COLUMNS, PROBLEM_KINDS, Annotations

__all__ = [
    "BOX_COLUMNS",
    "FORMATS",
    "MODALITIES",
    "PROBLEM_COLUMNS",
    "PROBLEM_KINDS",
    "Annotations",
    "detect_format",
    "load_annotations",
]
