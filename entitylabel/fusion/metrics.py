"""The ten no-reference fusion metrics IVIF papers report, in numpy/scipy, with fixed conventions.

Conventions (the numbers depend on them, so they are part of the API):

- Images are 2-D gray float arrays on the 0..255 scale. Colour input is turned into gray with the
  ITU-R 601 luma, exactly as PIL's ``Image.convert("L")`` does for 8-bit RGB (``as_gray``).
- A = infrared, B = visible, F = fused. Two-source metrics take ``(ir, vis, fused)``.
- Histogram metrics (EN, MI) round to the nearest integer and clip to 0..255, then use 256 bins.
- EN: Shannon entropy of the histogram, log base 2.  SD: population standard deviation (ddof=0).
- SF: sqrt(mean squared horizontal difference + mean squared vertical difference).
- AG: mean of sqrt((gx^2 + gy^2) / 2) with central differences, one-sided at the borders (``np.gradient``).
- MI: MI(F,A) + MI(F,B) from 256x256 joint histograms; natural log by default (like the widely used
  Python evaluator built on ``sklearn.metrics.mutual_info_score``), ``log_base=2`` gives bits.
- SCD: corr(A, F-B) + corr(B, F-A) (Aslantas & Bendes); a correlation with a constant term counts as 0.
- VIF: pixel-domain multi-scale VIF of Sheikh & Bovik as in MATLAB ``vifp_mscale``: 4 scales, Gaussian
  windows 17/9/5/3 with sigma = N/5, "valid" filtering, 2x decimation between scales, sigma_nsq = 2,
  ratio of the sums over all scales; VIF(A,F) + VIF(B,F). A reference with no detail at all scores 1.
- Qabf: Xydeas & Petrovic as in the common MATLAB/Python code: 3x3 Sobel with zero padding ("same"),
  orientation atan(gy/gx) (pi/2 where gx = 0), strength sigmoid (0.9994, -15, 0.5), orientation sigmoid
  (0.9879, -22, 0.8), weights = source gradient strength (L = 1). Equal strengths count as ratio 1
  (the MATLAB code stores gF there, which differs only where 0 < gA = gF < ~1, i.e. practically never).
- SSIM: SSIM(F,A) + SSIM(F,B), Wang et al. with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01,
  K2 = 0.03, data range 255, mean over the "valid" region (= skimage with gaussian_weights=True,
  use_sample_covariance=False, data_range=255); no downsampling.
- Nabf: Shreyamsha Kumar's modified artifact measure (``objective_fusion_perform_fn``): Sobel / 8 with
  mirror extension, Td = 2, wt_min = 0.001, Lg = 1.5, (0.9999, 19, 0.5) / (0.9995, 22, 0.5); counts
  pixels where F's gradient exceeds both sources'. Lower is better (0 = no artifacts).

With these conventions the pixel-max fusion of the 25 TNO pairs in ../shared/data averages EN 6.813,
SD 40.01, SF 10.06, AG 3.773, VIF 0.924, Qabf 0.599: the published figures (6.81, 40.0, 10.1, 3.77, 0.92,
0.60) measured with the reference code. Every function works on float64 copies and never changes its inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

Array = NDArray[np.float64]

METRICS: tuple[str, ...] = ("EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "SSIM", "Nabf")
"""Metric names in the fixed order `compute_all` and every table use."""

HIGHER_IS_BETTER: dict[str, bool] = {m: m != "Nabf" for m in METRICS}

_EPS_VIF = 1e-10


# --- input ----------------------------------------------------------------------------------------


def as_gray(img: ArrayLike) -> Array:
    """A 2-D float64 gray array on 0..255; HxWx3/4 colour uses ITU-R 601 luma like PIL's "L"."""
    arr = np.asarray(img)
    if arr.ndim == 2:
        return arr.astype(np.float64, copy=True)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        rgb = arr[..., :3]
        if rgb.dtype == np.uint8:
            # PIL's integer formula (Convert.c L24): same bytes as Image.convert("L").
            r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
            return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.float64)
        rgb = rgb.astype(np.float64)
        return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    if arr.ndim == 3 and arr.shape[2] == 1:
        return arr[..., 0].astype(np.float64)
    raise ValueError(f"expected a 2-D gray or HxWx3 colour image, got shape {arr.shape}")


def _f64(img: ArrayLike) -> Array:
    arr = np.asarray(img, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D gray image, got shape {arr.shape} (use as_gray first)")
    if min(arr.shape) < 2:
        raise ValueError(f"image too small ({arr.shape[1]}x{arr.shape[0]})")
    return arr


def _three(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> tuple[Array, Array, Array]:
    a, b, f = _f64(ir), _f64(vis), _f64(fused)
    if not (a.shape == b.shape == f.shape):
        raise ValueError(f"size mismatch: ir {a.shape}, vis {b.shape}, fused {f.shape} (rows, cols)")
    return a, b, f


def _levels(x: Array) -> NDArray[np.intp]:
    """Gray levels 0..255 for histogram metrics: round to nearest, clip."""
    return np.clip(np.rint(x), 0, 255).astype(np.intp)


# --- single-image metrics -------------------------------------------------------------------------


def en(img: ArrayLike) -> float:
    """Entropy (bits) of the 256-bin gray-level histogram."""
    h = np.bincount(_levels(_f64(img)).ravel(), minlength=256).astype(np.float64)
    p = h[h > 0] / h.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0


def sd(img: ArrayLike) -> float:
    """Population standard deviation."""
    return float(np.std(_f64(img)))


def sf(img: ArrayLike) -> float:
    """Spatial frequency: sqrt(RF^2 + CF^2) from first differences along rows and columns."""
    x = _f64(img)
    rf2 = np.mean(np.diff(x, axis=1) ** 2)
    cf2 = np.mean(np.diff(x, axis=0) ** 2)
    return float(np.sqrt(rf2 + cf2))


def ag(img: ArrayLike) -> float:
    """Average gradient: mean sqrt((gx^2 + gy^2)/2), central differences, one-sided at borders."""
    gy, gx = np.gradient(_f64(img))
    return float(np.mean(np.sqrt((gx * gx + gy * gy) / 2.0)))


# --- mutual information and correlations ----------------------------------------------------------


def _log_base(log_base: float | str) -> float:
    if isinstance(log_base, str):
        key = log_base.strip().lower()
        if key in ("e", "nat", "nats", "ln"):
            return math.e
        log_base = float(key)
    if not log_base > 1:
        raise ValueError(f"log base must be > 1 (or 'e'), got {log_base}")
    return float(log_base)


def mi_pair(x: ArrayLike, y: ArrayLike, *, log_base: float | str = math.e) -> float:
    """MI(x, y) from the 256x256 joint gray-level histogram; natural log unless `log_base` says otherwise."""
    qx, qy = _levels(_f64(x)), _levels(_f64(y))
    if qx.shape != qy.shape:
        raise ValueError(f"size mismatch: {qx.shape} vs {qy.shape}")
    joint = np.bincount((qx * 256 + qy).ravel(), minlength=256 * 256).reshape(256, 256).astype(np.float64)
    pxy = joint / joint.sum()
    px, py = pxy.sum(axis=1), pxy.sum(axis=0)
    nz = pxy > 0
    outer = px[:, None] * py[None, :]
    value = float(np.sum(pxy[nz] * np.log(pxy[nz] / outer[nz])))
    return max(value, 0.0) / math.log(_log_base(log_base))


def mi(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike, *, log_base: float | str = math.e) -> float:
    """MI(F,A) + MI(F,B)."""
    a, b, f = _three(ir, vis, fused)
    return mi_pair(f, a, log_base=log_base) + mi_pair(f, b, log_base=log_base)


def _corr(x: Array, y: Array) -> float:
    xm, ym = x - x.mean(), y - y.mean()
    den = math.sqrt(float(np.sum(xm * xm)) * float(np.sum(ym * ym)))
    return float(np.sum(xm * ym)) / den if den > 0 else 0.0


def scd(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """Sum of the correlations of differences: corr(A, F-B) + corr(B, F-A)."""
    a, b, f = _three(ir, vis, fused)
    return _corr(a, f - b) + _corr(b, f - a)


# --- windowed statistics --------------------------------------------------------------------------


def _gauss1d(size: int, sigma: float) -> Array:
    """Normalised 1-D Gaussian; its outer product is MATLAB's fspecial('gaussian', size, sigma)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    h = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return h / h.sum()


def _filter_valid(x: Array, w: Array) -> Array:
    """Separable correlation with a symmetric 1-D kernel, keeping only the 'valid' region."""
    r = (len(w) - 1) // 2
    if r == 0:
        return x * w[0]
    y = ndimage.correlate1d(x, w, axis=0, mode="nearest")[r:-r]
    return ndimage.correlate1d(y, w, axis=1, mode="nearest")[:, r:-r]


# --- VIF --------------------------------------------------------------------------------------------


def vif_pair(ref: ArrayLike, dist: ArrayLike, *, sigma_nsq: float = 2.0) -> float:
    """Pixel-domain multi-scale VIF(ref, dist) as in MATLAB vifp_mscale."""
    r, d = _f64(ref), _f64(dist)
    if r.shape != d.shape:
        raise ValueError(f"size mismatch: {r.shape} vs {d.shape}")
    num = den = 0.0
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1  # 17, 9, 5, 3
        win = _gauss1d(n, n / 5.0)
        if scale > 1:
            r = _filter_valid(r, win)[::2, ::2]
            d = _filter_valid(d, win)[::2, ::2]
        if min(r.shape) < n:
            raise ValueError(f"image too small for VIF (scale {scale} is {r.shape}); need about 64 px per side")
        mu1, mu2 = _filter_valid(r, win), _filter_valid(d, win)
        s1 = np.maximum(_filter_valid(r * r, win) - mu1 * mu1, 0.0)
        s2 = np.maximum(_filter_valid(d * d, win) - mu2 * mu2, 0.0)
        s12 = _filter_valid(r * d, win) - mu1 * mu2

        g = s12 / (s1 + _EPS_VIF)
        sv = s2 - g * s12
        flat1 = s1 < _EPS_VIF
        g[flat1] = 0.0
        sv[flat1] = s2[flat1]
        s1[flat1] = 0.0
        flat2 = s2 < _EPS_VIF
        g[flat2] = 0.0
        sv[flat2] = 0.0
        neg = g < 0
        sv[neg] = s2[neg]
        g[neg] = 0.0
        sv[sv <= _EPS_VIF] = _EPS_VIF

        num += float(np.sum(np.log10(1.0 + g * g * s1 / (sv + sigma_nsq))))
        den += float(np.sum(np.log10(1.0 + s1 / sigma_nsq)))
    return num / den if den > 0 else 1.0


def vif(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """VIF(A,F) + VIF(B,F)."""
    a, b, f = _three(ir, vis, fused)
    return vif_pair(a, f) + vif_pair(b, f)


# --- Qabf -------------------------------------------------------------------------------------------


def _sobel_zero(x: Array) -> tuple[Array, Array]:
    """Strength and orientation atan(gy/gx) (pi/2 where gx = 0) as MATLAB conv2(x, sobel, 'same').

    The signs follow conv2 (a true convolution): gx = left - right, gy = below - above. They matter
    only through the gx = 0 special case, but that is enough to move Qabf in the 4th decimal.
    """
    gx = -ndimage.sobel(x, axis=1, mode="constant", cval=0.0)
    gy = ndimage.sobel(x, axis=0, mode="constant", cval=0.0)
    g = np.hypot(gx, gy)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(gx == 0, np.pi / 2, np.arctan(gy / np.where(gx == 0, 1.0, gx)))
    return g, alpha


def _ratio(g_src: Array, g_fused: Array) -> Array:
    """min/max of two strengths; 1 where they are equal (including both zero)."""
    hi = np.maximum(g_src, g_fused)
    lo = np.minimum(g_src, g_fused)
    out = np.ones_like(hi)
    np.divide(lo, hi, out=out, where=hi > lo)
    return out


def _qabf_edge(g_src: Array, a_src: Array, g_f: Array, a_f: Array) -> Array:
    tg, kg, dg = 0.9994, -15.0, 0.5
    ta, ka, da = 0.9879, -22.0, 0.8
    gaf = _ratio(g_src, g_f)
    aaf = 1.0 - np.abs(a_src - a_f) / (np.pi / 2)
    return (tg / (1.0 + np.exp(kg * (gaf - dg)))) * (ta / (1.0 + np.exp(ka * (aaf - da))))


def qabf_maps(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> tuple[Array, Array]:
    """Per-pixel numerator QAF*gA + QBF*gB and weight gA + gB of Qabf (gradients over the whole image), so
    that Qabf over a region is sum(num[mask]) / sum(den[mask])."""
    a, b, f = _three(ir, vis, fused)
    ga, aa = _sobel_zero(a)
    gb, ab = _sobel_zero(b)
    gf, af = _sobel_zero(f)
    qaf = _qabf_edge(ga, aa, gf, af)
    qbf = _qabf_edge(gb, ab, gf, af)
    return qaf * ga + qbf * gb, ga + gb


def qabf(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """Xydeas-Petrovic edge preservation Q^{AB/F}, weighted by source gradient strength."""
    num, weight = qabf_maps(ir, vis, fused)
    den = float(np.sum(weight))
    return float(np.sum(num)) / den if den > 0 else float("nan")


# --- SSIM -------------------------------------------------------------------------------------------

_SSIM_WIN = _gauss1d(11, 1.5)


def ssim_pair(x: ArrayLike, y: ArrayLike, *, data_range: float = 255.0) -> float:
    """Mean SSIM (Wang et al. 2004): 11x11 Gaussian sigma 1.5, K1=0.01, K2=0.03, valid region."""
    p, q = _f64(x), _f64(y)
    if p.shape != q.shape:
        raise ValueError(f"size mismatch: {p.shape} vs {q.shape}")
    if min(p.shape) < 11:
        raise ValueError(f"image too small for SSIM ({p.shape}); need at least 11 px per side")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = _filter_valid(p, _SSIM_WIN), _filter_valid(q, _SSIM_WIN)
    sxx = _filter_valid(p * p, _SSIM_WIN) - mx * mx
    syy = _filter_valid(q * q, _SSIM_WIN) - my * my
    sxy = _filter_valid(p * q, _SSIM_WIN) - mx * my
    smap = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(np.mean(smap))


def ssim(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """SSIM(F,A) + SSIM(F,B)."""
    a, b, f = _three(ir, vis, fused)
    return ssim_pair(f, a) + ssim_pair(f, b)


# --- Nabf -------------------------------------------------------------------------------------------


def _sobel_mirror8(x: Array) -> tuple[Array, Array]:
    """Shreyamsha Kumar's sobel_fn: Sobel / 8 with mirror extension; strength and atan(gv/gh) (0 if flat)."""
    gv = ndimage.sobel(x, axis=1, mode="mirror") / 8.0  # template [-1 0 1; -2 0 2; -1 0 1] / 8
    gh = ndimage.sobel(x, axis=0, mode="mirror") / 8.0  # template [-1 -2 -1; 0 0 0; 1 2 1] / 8
    g = np.hypot(gv, gh)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.arctan(gv / gh)  # +-inf -> +-pi/2 as in MATLAB
    alpha[(gv == 0) & (gh == 0)] = 0.0
    return g, alpha


def nabf(ir: ArrayLike, vis: ArrayLike, fused: ArrayLike) -> float:
    """Modified fusion-artifact measure N_abf (Shreyamsha Kumar); 0 = no artifacts, lower is better."""
    a, b, f = _three(ir, vis, fused)
    td, wt_min, lg = 2.0, 0.001, 1.5
    nrg, kg, sg = 0.9999, 19.0, 0.5
    nra, ka, sa = 0.9995, 22.0, 0.5
    ga, aa = _sobel_mirror8(a)
    gb, ab = _sobel_mirror8(b)
    gf, af = _sobel_mirror8(f)

    def q_edge(g_src: Array, a_src: Array) -> Array:
        ratio = _ratio(g_src, gf)
        ratio[(g_src == 0) | (gf == 0)] = 0.0
        orient = np.abs(np.abs(a_src - af) - np.pi / 2) * 2.0 / np.pi
        qg = nrg / (1.0 + np.exp(-kg * (ratio - sg)))
        qa = nra / (1.0 + np.exp(-ka * (orient - sa)))
        return np.sqrt(qg * qa)

    qaf, qbf = q_edge(ga, aa), q_edge(gb, ab)
    wa = np.where(ga >= td, ga**lg, wt_min)
    wb = np.where(gb >= td, gb**lg, wt_min)
    artifact = (gf > ga) & (gf > gb)
    num = float(np.sum(np.where(artifact, (1.0 - qaf) * wa + (1.0 - qbf) * wb, 0.0)))
    return num / float(np.sum(wa + wb))


# --- all at once ------------------------------------------------------------------------------------


def compute_all(
    ir: ArrayLike, vis: ArrayLike, fused: ArrayLike, *, mi_log_base: float | str = math.e
) -> dict[str, float]:
    """All metrics in `METRICS` order. Colour inputs are turned to gray first; sizes must match."""
    a, b, f = _three(as_gray(ir), as_gray(vis), as_gray(fused))
    fns: dict[str, Callable[[], float]] = {
        "EN": lambda: en(f),
        "SD": lambda: sd(f),
        "SF": lambda: sf(f),
        "AG": lambda: ag(f),
        "MI": lambda: mi(a, b, f, log_base=mi_log_base),
        "SCD": lambda: scd(a, b, f),
        "VIF": lambda: vif(a, b, f),
        "Qabf": lambda: qabf(a, b, f),
        "SSIM": lambda: ssim(a, b, f),
        "Nabf": lambda: nabf(a, b, f),
    }
    return {name: float(fns[name]()) for name in METRICS}
