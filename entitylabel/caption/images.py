"""Decode one image file into the RGB picture a VLM processor expects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

_HIGH_DEPTH = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def to_rgb(im: Image.Image) -> Image.Image:
    """RGB view of any PIL image; 16-bit and float IR frames are stretched to 8 bits first.

    PIL's own `convert("RGB")` clips 16-bit values at 255, which turns most radiometric IR frames white.
    """
    if im.mode in _HIGH_DEPTH:
        a = np.asarray(im, dtype=np.float64)
        lo, hi = np.percentile(a, (0.5, 99.5)) if a.size else (0.0, 1.0)
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        im = Image.fromarray(np.clip((a - lo) * scale, 0, 255).astype(np.uint8), mode="L")
    if im.mode == "RGB":
        return im
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        return im.convert("RGBA").convert("RGB")
    return im.convert("RGB")


def load_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image (so errors surface here, in the loader thread, not later)."""
    with open(path, "rb") as f:  # we own the file, so the decoded image outlives it
        im = Image.open(f)
        im.load()
    return to_rgb(im)
