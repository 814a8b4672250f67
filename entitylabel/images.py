"""Reading IR/VIS images the same way in every stage.

Real thermal data is often 16-bit (PIL modes "I;16", "I;16B", "I"); VLMs, fusion networks and thumbnails
want 8 bits. `to_8bit` rescales such images per image by their own min/max (a fixed 0..65535 scaling
would leave most thermal frames nearly black); in float data, NaN/inf pixels do not spoil the stretch. Gray
stored as 3 channels (TNO, M3FD copies) is left as is.

EXIF orientation: one rule everywhere. An image is read as it is meant to be seen, its EXIF orientation
applied (`load_image` / `upright`), which is what the released dataset's decoder (`datasets.Image`) does; so
discover records sizes after it and compares IR/VIS after it, and caption, fuse, evaluate, train and the
review page all see the pixels a researcher loading the release sees. Discover warns (`exif_rotated`) when a
file carries a non-identity orientation.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

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


ORIENTATION_TAG = 0x0112  # EXIF "Orientation"
SWAPS_AXES = (5, 6, 7, 8)  # orientations that turn the image by 90 degrees (width and height trade places)


def exif_orientation(img: Image.Image) -> int:
    """The EXIF orientation (1..8) an image carries; 1 (as stored) when it has none or an unreadable one."""
    try:
        value = img.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block is ignored, as datasets' decoder ignores it
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) of the image once its EXIF orientation is applied."""
    w, h = img.size
    return (h, w) if exif_orientation(img) in SWAPS_AXES else (w, h)


# orientation -> the transpose that makes the image upright (the table of PIL.ImageOps.exif_transpose)
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def upright(img: Image.Image, orientation: int | None = None) -> Image.Image:
    """The image with its EXIF orientation (or the given one, read before a resize) applied; the same image
    when there is none."""
    turn = exif_orientation(img) if orientation is None else orientation
    return img.transpose(_TRANSPOSE[turn]) if turn in _TRANSPOSE else img


def load_image(src: str | Path | IO[bytes]) -> Image.Image:
    """Open and fully decode an image file (path or file object), EXIF orientation applied; the file is closed."""
    with Image.open(src) as im:
        im.load()
        out = upright(im)
        return out if out is not im else im.copy()


def open_rgb(path: str | Path) -> Image.Image:
    """Open any supported image as 8-bit RGB (what VLM processors expect), upright."""
    return to_8bit(load_image(path)).convert("RGB")


def open_gray(path: str | Path) -> Image.Image:
    """Open any supported image as 8-bit gray ("L"), ITU-R 601 luma for colour input, upright."""
    return to_8bit(load_image(path)).convert("L")
