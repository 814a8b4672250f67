"""Training losses on 0..1 gray images (B,1,H,W): targets that no fixed rule already meets.

- intensity: L1(F, max(IR, VIS)) keeps the brighter source (warm targets, lit visible regions; SeAFusion);
- gradient: L1(|Sobel F|, grad_gain x max(|Sobel IR|, |Sobel VIS|)) asks for the sharper source's edge at every
  pixel, which pixel-max drops wherever the darker source holds the texture;
- overshoot: mean relu(|Sobel F| - max source gradient), on top: edges that neither source has are what Nabf
  counts as artefacts (and what an unsharp mask adds);
- contrast: L1(F - blur F, contrast_gain x B) with B, per pixel, the source band (x - blur x, Gaussian of width
  `contrast_sigma`) of larger magnitude: the more contrasted source's local contrast at every place, the classic
  multi-scale "max-abs" fusion rule as a target. Pixel-max meets it only where the brighter source is also the
  more contrasted one: a warm target on a bright background loses its contrast there (what TC counts);
- SSIM (contrast-structure by default) to both sources, region-aware: each pixel weighs IR by the IR saliency s
  (warm targets: keep the IR target contrast) and VIS by 1 - s (texture elsewhere), blended with 1/2 each by
  `saliency_weight` (0: plain halves). Saliency comes from the IR image, since no boxes exist at fuse time;
- lambda_cls x BCE on the multi-hot entity labels trains the classifier (the entity task).
The untrained model (pixel mean) meets none of these; pixel-max meets the intensity term only.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import FusionConfig


@functools.lru_cache(maxsize=8)
def _sobel_kernel(device: torch.device, dtype: torch.dtype) -> Tensor:
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=device, dtype=dtype)
    return torch.stack([kx, kx.t()]).unsqueeze(1)  # (2,1,3,3)


def sobel_magnitude(x: Tensor) -> Tensor:
    """Sobel gradient magnitude (B,1,H,W), replicate border; eps keeps sqrt differentiable at 0."""
    g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), _sobel_kernel(x.device, x.dtype))
    return torch.sqrt(g.pow(2).sum(1, keepdim=True) + 1e-6)


@functools.lru_cache(maxsize=8)
def _gauss_window(size: int, sigma: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    ax = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(ax**2) / (2 * sigma**2))
    return (g / g.sum()).view(1, 1, 1, size)


def ssim_map(x: Tensor, y: Tensor, size: int = 11, sigma: float = 1.5, luminance: bool = True) -> Tensor:
    """SSIM map (Wang et al., Gaussian 11x11 window, data range 1) over the valid region (H-10, W-10).

    `luminance=False` drops the luminance factor (contrast-structure only): against two sources of different
    brightness that factor pulls the output toward their mean, i.e. darkens lit visible regions.
    """
    w = _gauss_window(size, sigma, x.device, x.dtype)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(t, w), w.transpose(2, 3))

    c1, c2 = 0.01**2, 0.03**2
    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    cs = (2 * cxy + c2) / (vx + vy + c2)
    if not luminance:
        return cs
    return (2 * mx * my + c1) / (mx * mx + my * my + c1) * cs


def ssim(x: Tensor, y: Tensor, size: int = 11, sigma: float = 1.5, luminance: bool = True) -> Tensor:
    """Mean SSIM over the valid region (see `ssim_map`)."""
    return ssim_map(x, y, size, sigma, luminance).mean()


def fusion_loss(
    fused: Tensor,
    ir: Tensor,
    vis: Tensor,
    cfg: FusionConfig,
    logits: Tensor | None = None,
    targets: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Weighted total loss and its parts (as floats, for the log and the loss curve)."""
    from .model import ir_saliency, local_mean

    parts: dict[str, Tensor] = {}
    if cfg.w_intensity:
        parts["intensity"] = F.l1_loss(fused, torch.maximum(ir, vis))
    g_src = torch.maximum(sobel_magnitude(ir), sobel_magnitude(vis))
    g_f = sobel_magnitude(fused) if cfg.w_gradient or cfg.w_overshoot else None
    if cfg.w_gradient:
        parts["gradient"] = F.l1_loss(g_f, cfg.grad_gain * g_src)
    if cfg.w_overshoot:
        parts["overshoot"] = F.relu(g_f - g_src).mean()
    if cfg.w_contrast:
        sig = cfg.contrast_sigma
        b_ir, b_vis = ir - local_mean(ir, sig), vis - local_mean(vis, sig)
        band = torch.where(b_ir.abs() >= b_vis.abs(), b_ir, b_vis)
        parts["contrast"] = F.l1_loss(fused - local_mean(fused, sig), cfg.contrast_gain * band)
    if cfg.w_ssim:
        lum = cfg.ssim_luminance
        s_ir, s_vis = ssim_map(fused, ir, luminance=lum), ssim_map(fused, vis, luminance=lum)
        r = (ir.shape[-2] - s_ir.shape[-2]) // 2  # the valid-window border
        sal = ir_saliency(ir)[..., r : r + s_ir.shape[-2], r : r + s_ir.shape[-1]]
        w_ir = 0.5 * (1.0 - cfg.saliency_weight) + cfg.saliency_weight * sal
        parts["ssim"] = 1.0 - (w_ir * s_ir + (1.0 - w_ir) * s_vis).mean()
    weights = {"intensity": cfg.w_intensity, "gradient": cfg.w_gradient, "overshoot": cfg.w_overshoot,
               "contrast": cfg.w_contrast, "ssim": cfg.w_ssim}  # fmt: skip
    total = sum((weights[k] * v for k, v in parts.items()), fused.new_zeros(()))
    if logits is not None and targets is not None and cfg.lambda_cls > 0:
        parts["cls"] = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))
        total = total + cfg.lambda_cls * parts["cls"]
    return total, {k: float(v.detach()) for k, v in parts.items()}
