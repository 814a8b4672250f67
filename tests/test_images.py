"""Reading images the same way everywhere: 16-bit and float thermal data, including invalid pixels."""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image

from entitylabel.images import to_8bit


def test_float_thermal_with_nan_and_inf_pixels_stretches_the_valid_ones() -> None:
    # radiometric exports mark invalid pixels NaN; saturated ones can be +/-inf
    arr = np.array([[10.0, 20.0, np.nan], [np.inf, -np.inf, 30.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value encountered in cast" on stderr
        out = np.asarray(to_8bit(Image.fromarray(arr, mode="F")))
    assert out.tolist() == [[0, 128, 0], [255, 0, 255]]  # min/max of the finite pixels; NaN 0, +inf 255, -inf 0


def test_image_without_any_finite_pixel_is_black() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = np.asarray(to_8bit(Image.fromarray(np.full((2, 3), np.nan, dtype=np.float32), mode="F")))
    assert out.shape == (2, 3) and not out.any()


def test_sixteen_bit_is_min_max_stretched() -> None:
    out = np.asarray(to_8bit(Image.fromarray(np.array([[1000, 2000], [3000, 3000]], dtype=np.uint16))))
    assert out.tolist() == [[0, 128], [255, 255]]
