"""Captions for the extract stage: the one caption reader of `entitylabel.tables` (its rules are there).

Kept as the import path extract uses: `iter_caption_batches`, `caption_files`, `CaptionRow(pair_id, source,
caption, error, modality=None, problem=None)`. A row with `problem` set (a duplicate, a non-string caption)
also has `error` set and no caption, so it is reported as a bad caption and never voted on.
"""

from __future__ import annotations

from ..tables.captions import CaptionRow, caption_files, iter_caption_batches

__all__ = ["CaptionRow", "caption_files", "iter_caption_batches"]
