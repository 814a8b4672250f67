"""Reading IR/VIS images the same way in every stage.

Real thermal data is often 16-bit (PIL modes "I;16", "I;16B", "I"); VLMs, fusion networks and thumbnails
want 8 bits. `to_8bit` rescales such images per image by their own min/max (a fixed 0..65535 scaling
would leave most thermal frames nearly black); in float data, NaN/inf pixels do not spoil the stretch. Gray
stored as 3 channels (TNO, M3FD copies) is left as is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def to_8bit(img: Image.Image) -> Image.Image:
    """Return an 8-bit image ("L" or "RGB"); high-bit-depth gray is min/max-stretched per image."""
    if img.mode in HIGH_BIT_MODES:
        arr = np.asarray(img, dtype=np.float64)
        finite = np.isfinite(arr)  # float thermal marks invalid pixels NaN (saturated ones +/-inf)
        if not finite.any():
            return Image.fromarray(np.zeros(arr.shape, dtype=np.uint8), mode="L")
        lo, hi = float(arr[finite].min()), float(arr[finite].max())
        valid = np.where(finite, arr, lo)  # NaN and -inf show as the coldest value, +inf as the hottest
        scaled = np.zeros_like(arr) if hi <= lo else (valid - lo) * (255.0 / (hi - lo))
        scaled[arr == np.inf] = 255.0
        return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")
    if img.mode in ("L", "RGB"):
        return img
    if img.mode in ("LA", "1"):
        return img.convert("L")
    return img.convert("RGB")


def open_rgb(path: str | Path) -> Image.Image:
    """Open any supported image as 8-bit RGB (what VLM processors expect)."""
    with Image.open(path) as im:
        return to_8bit(im).convert("RGB")


def open_gray(path: str | Path) -> Image.Image:
    """Open any supported image as 8-bit gray ("L"), ITU-R 601 luma for colour input."""
    with Image.open(path) as im:
        return to_8bit(im).convert("L")
