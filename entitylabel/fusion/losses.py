"""Training losses on 0..1 gray images (B,1,H,W).

- intensity: L1(F, base), base = max(IR, VIS) with its local contrast raised by `base_contrast` (the model's own
  starting point), keeps the salient (bright) thermal targets and the lit visible regions;
- gradient: L1(|Sobel F|, max(grad_gain x max(|Sobel IR|, |Sobel VIS|), |Sobel base|)) asks for the sharper of
  the two sources' edges at every pixel, which the per-pixel max itself loses wherever the darker source holds
  the texture;
- SSIM to both sources keeps the local structure of each (contrast-structure only with `ssim_luminance` off:
  its luminance factor pulls F toward the sources' mean, i.e. darkens lit visible regions);
- lambda_cls x BCE on the multi-hot entity labels trains the classifier (the entity task).
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


def ssim(x: Tensor, y: Tensor, size: int = 11, sigma: float = 1.5, luminance: bool = True) -> Tensor:
    """Mean SSIM (Wang et al., Gaussian 11x11 window, data range 1) over the valid region, per batch.

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
        return cs.mean()
    return ((2 * mx * my + c1) / (mx * mx + my * my + c1) * cs).mean()


def fusion_loss(
    fused: Tensor,
    ir: Tensor,
    vis: Tensor,
    cfg: FusionConfig,
    logits: Tensor | None = None,
    targets: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Weighted total loss and its parts (as floats, for the log and the loss curve)."""
    from .model import fusion_base

    parts: dict[str, Tensor] = {}
    base = fusion_base(ir, vis, cfg).clamp(0.0, 1.0)  # what the fused image is clamped to at fuse time
    if cfg.w_intensity:
        parts["intensity"] = F.l1_loss(fused, base)
    if cfg.w_gradient:
        target = cfg.grad_gain * torch.maximum(sobel_magnitude(ir), sobel_magnitude(vis))
        if cfg.base_contrast:  # the base's raised edges are part of the target too
            target = torch.maximum(target, sobel_magnitude(base))
        parts["gradient"] = F.l1_loss(sobel_magnitude(fused), target)
    if cfg.w_ssim:
        lum = cfg.ssim_luminance
        parts["ssim"] = 1.0 - 0.5 * (ssim(fused, ir, luminance=lum) + ssim(fused, vis, luminance=lum))
    weights = {"intensity": cfg.w_intensity, "gradient": cfg.w_gradient, "ssim": cfg.w_ssim}
    total = sum((weights[k] * v for k, v in parts.items()), fused.new_zeros(()))
    if logits is not None and targets is not None and cfg.lambda_cls > 0:
        parts["cls"] = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))
        total = total + cfg.lambda_cls * parts["cls"]
    return total, {k: float(v.detach()) for k, v in parts.items()}
