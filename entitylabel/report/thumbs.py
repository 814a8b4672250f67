"""Small base64 JPEG thumbnails for the review page (IR in gray, VIS in colour)."""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from ..images import HIGH_BIT_MODES, exif_orientation, to_8bit, upright


def thumbnail_b64(path: str | Path, size: int = 112, *, gray: bool = False, quality: int = 70) -> str | None:
    """Base64 JPEG of the image shrunk to fit `size` x `size`; None when it cannot be read."""
    try:
        with Image.open(path) as im:
            turn = exif_orientation(im)  # shown upright, as every stage reads it (images.py)
            if im.mode in HIGH_BIT_MODES:  # stretch 16-bit thermal before shrinking
                im = to_8bit(im)
            im.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)  # uses JPEG draft mode
            im = upright(to_8bit(im).convert("L" if gray else "RGB"), turn)
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=quality, optimize=True)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):  # missing, truncated, not an image
        # or too large for Pillow to decode safely: the page shows a gap (discover reported the file)
        return None
    return base64.b64encode(buf.getvalue()).decode("ascii")


def make_thumbnails(
    jobs: Iterable[tuple[str, Path | None, bool]],
    size: int,
    *,
    workers: int = 4,
    on_done: Callable[[], None] | None = None,
) -> dict[str, str | None]:
    """Thumbnails for (key, path, gray) jobs, in parallel threads (Pillow decodes without the GIL)."""
    jobs = list(jobs)

    def one(job: tuple[str, Path | None, bool]) -> tuple[str, str | None]:
        key, path, gray = job
        result = thumbnail_b64(path, size, gray=gray) if path is not None else None
        if on_done:
            on_done()
        return key, result

    # Huge images are discover's `large_image` rows; Pillow's raw warning is not repeated here. The filter
    # is set in the calling thread around the whole pool (catch_warnings is not thread-safe).
    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return dict(pool.map(one, jobs))
