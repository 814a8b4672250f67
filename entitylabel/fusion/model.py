"""The compact entity-guided fusion network (EGMT-style), small enough to train on a CPU.

Data flow for one IR / VIS-Y pair (both 1 x H x W on 0..1), padded to a multiple of 4:

    IR ──Encoder──> full-res skip f_ir, 1/4-res tokens t_ir ─┐
    VIS-Y ─Encoder─> full-res skip f_vis, 1/4-res tokens t_vis ┤ InterVisualBlock (cross-attention both ways,
                                                             │  keys/values pooled to kv_grid x kv_grid)
                                   merge -> tokens x ────────┤──> EntityHead: multi-label logits (pooled x)
                                                             └──> EntityBlock: gated cross-attention from x to
                                                                  the entity tokens (projected text embeddings
                                                                  of the active labels + a learned null token)
    Decoder(x, f_ir, f_vis) -> (selection logit a, detail d)
    fused Y = w * IR + (1 - w) * VIS-Y + detail_scale * tanh(d),  w = sigmoid(a)

Nothing fixed sits in the output path (format 2, issue 19): the network decides per pixel how much of each
source to keep and what detail to add. The decoder's last conv starts at zero, so the untrained model (what
`train --steps 0` writes) is the pixel mean of the two sources, and everything above that is learned.
The entity gates start at zero as in Flamingo, so the entity path opens only as far as it helps.
`contrast_base` (pixel-max + unsharp mask) is kept as the fixed rule the model is compared with.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import FusionConfig


class ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.gelu(self.conv1(x)))


class Encoder(nn.Module):
    """One modality: full-resolution features (decoder skip) and 1/4-resolution tokens."""

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__()
        w, d = cfg.width, cfg.dim
        self.stem = nn.Conv2d(1, w, 3, padding=1)
        self.res = ResBlock(w)
        self.down1 = nn.Conv2d(w, 2 * w, 3, stride=2, padding=1)
        self.down2 = nn.Conv2d(2 * w, d, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.res(F.gelu(self.stem(x)))
        t = self.down2(F.gelu(self.down1(f)))
        return f, t


class CrossAttention(nn.Module):
    """Multi-head attention of queries `x` (B,N,C) over a context `ctx` (B,M,Cc), optional additive bias."""

    def __init__(self, dim: int, heads: int, ctx_dim: int | None = None) -> None:
        super().__init__()
        assert dim % heads == 0, "dim must be divisible by heads"
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(ctx_dim or dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, ctx: Tensor, bias: Tensor | None = None) -> Tensor:
        B, N, C = x.shape
        M, h = ctx.shape[1], self.heads
        q = self.q(x).view(B, N, h, C // h).transpose(1, 2)
        k, v = self.kv(ctx).split(C, dim=2)
        k = k.view(B, M, h, C // h).transpose(1, 2)
        v = v.view(B, M, h, C // h).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(y.transpose(1, 2).reshape(B, N, C))


class MLP(nn.Module):
    def __init__(self, dim: int, ratio: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, ratio * dim)
        self.proj = nn.Linear(ratio * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(F.gelu(self.fc(x)))


def _tokens(m: Tensor) -> Tensor:
    return m.flatten(2).transpose(1, 2)  # (B,C,h,w) -> (B,h*w,C)


def _map(t: Tensor, h: int, w: int) -> Tensor:
    return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], h, w)


class InterVisualBlock(nn.Module):
    """Each modality's tokens attend to the other's, pooled to a fixed grid (cost linear in image size)."""

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__()
        d = cfg.dim
        self.grid = cfg.kv_grid
        self.ln_q = nn.ModuleList([nn.LayerNorm(d), nn.LayerNorm(d)])
        self.ln_kv = nn.ModuleList([nn.LayerNorm(d), nn.LayerNorm(d)])
        self.attn = nn.ModuleList([CrossAttention(d, cfg.heads), CrossAttention(d, cfg.heads)])
        self.ln_mlp = nn.ModuleList([nn.LayerNorm(d), nn.LayerNorm(d)])
        self.mlp = nn.ModuleList([MLP(d, cfg.mlp_ratio), MLP(d, cfg.mlp_ratio)])

    def forward(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        h, w = a.shape[-2:]
        g = (min(self.grid, h), min(self.grid, w))
        ctx = [_tokens(F.adaptive_avg_pool2d(b, g)), _tokens(F.adaptive_avg_pool2d(a, g))]
        outs = []
        for i, t in enumerate((_tokens(a), _tokens(b))):
            t = t + self.attn[i](self.ln_q[i](t), self.ln_kv[i](ctx[i]))
            t = t + self.mlp[i](self.ln_mlp[i](t))
            outs.append(_map(t, h, w))
        return outs[0], outs[1]


class EntityHead(nn.Module):
    """Multi-label entity logits from mean- and max-pooled visual tokens."""

    def __init__(self, dim: int, n_labels: int) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(dim)
        self.fc = nn.Linear(2 * dim, n_labels)

    def forward(self, t: Tensor) -> Tensor:
        t = self.ln(t)
        return self.fc(torch.cat([t.mean(1), t.amax(1)], dim=1))


class EntityBlock(nn.Module):
    """Gated cross-attention from visual tokens to entity tokens (Flamingo-style tanh gates, start at 0).

    Entity tokens are the stored text embeddings of the label names, projected to `dim`; inactive
    entities are masked out with a large negative bias, and a learned null token keeps the softmax defined
    when no entity is active.
    """

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__()
        d = cfg.dim
        self.proj = nn.Linear(cfg.text_dim, d)
        self.null = nn.Parameter(torch.zeros(1, 1, d))
        self.ln_q = nn.LayerNorm(d)
        self.ln_kv = nn.LayerNorm(d)
        self.attn = CrossAttention(d, cfg.heads)
        self.gate_attn = nn.Parameter(torch.zeros(1))
        self.ln_mlp = nn.LayerNorm(d)
        self.mlp = MLP(d, cfg.mlp_ratio)
        self.gate_mlp = nn.Parameter(torch.zeros(1))

    def forward(self, t: Tensor, table: Tensor, active: Tensor) -> Tensor:
        B = t.shape[0]
        ent = self.proj(table).unsqueeze(0).expand(B, -1, -1)
        ctx = self.ln_kv(torch.cat([self.null.expand(B, -1, -1), ent], dim=1))
        keep = torch.cat([torch.ones_like(active[:, :1]), active.to(t.dtype)], dim=1)
        bias = torch.log(keep.clamp_min(1e-6)).view(B, 1, 1, -1)
        t = t + torch.tanh(self.gate_attn) * self.attn(self.ln_q(t), ctx, bias)
        return t + torch.tanh(self.gate_mlp) * self.mlp(self.ln_mlp(t))


class Decoder(nn.Module):
    """Upsample the tokens, join the full-resolution skips, predict the selection logit and the detail."""

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__()
        w, d = cfg.width, cfg.dim
        self.up = nn.Conv2d(d, w, 3, padding=1)
        self.join = nn.Conv2d(3 * w, w, 3, padding=1)
        self.res = ResBlock(w)
        self.out = nn.Conv2d(w, 2, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, f_ir: Tensor, f_vis: Tensor) -> Tensor:
        H, W = f_ir.shape[-2:]
        u = F.gelu(self.up(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)))
        u = F.interpolate(u, size=(H, W), mode="bilinear", align_corners=False)
        y = self.res(F.gelu(self.join(torch.cat([u, f_ir, f_vis], dim=1))))
        return self.out(F.gelu(y))


def _gauss_kernel(sigma: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    r = max(1, int(3 * sigma + 0.5))
    ax = torch.arange(-r, r + 1, device=device, dtype=dtype)
    g = torch.exp(-(ax**2) / (2 * sigma**2))
    return g / g.sum()


def local_mean(m: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of width `sigma` of an image (B,1,H,W), computed at 1/4 resolution (4x4 mean, Gaussian
    sigma/4, bilinear back up), so a wide sigma costs little."""
    H, W = m.shape[-2:]
    ph, pw = (-H) % 4, (-W) % 4
    x = F.pad(m, (0, pw, 0, ph), mode="replicate") if ph or pw else m
    low = F.avg_pool2d(x, 4)
    k = _gauss_kernel(sigma / 4.0, m.device, m.dtype)
    r = (k.numel() - 1) // 2
    low = F.conv2d(F.pad(low, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    low = F.conv2d(F.pad(low, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False)[..., :H, :W]


def contrast_base(m: Tensor, amount: float, sigma: float) -> Tensor:
    """`m + amount * (m - blur_sigma(m))`: an image (B,1,H,W) with its local contrast raised (unsharp mask).

    `amount` 0 returns `m` itself. With m = max(IR, VIS) this is the fixed rule the model replaced (issue 19).
    """
    if amount == 0:
        return m
    return m + amount * (m - local_mean(m, sigma))


FIXED_RULE = (0.5, 16.0)  # (amount, sigma) of the pixel-max + unsharp-mask rule of issue 11, the comparison


def fixed_rule(ir: Tensor, vis: Tensor) -> Tensor:
    """Pixel-max with its local contrast raised (amount 0.5, sigma 16), clamped: what the model output before."""
    return contrast_base(torch.maximum(ir, vis), *FIXED_RULE).clamp(0.0, 1.0)


def ir_saliency(ir: Tensor, sigma: float = 16.0, scale: float = 0.1) -> Tensor:
    """0..1 map of warm targets: how far IR rises above its local mean (a full 1 at `scale` above it).

    No boxes exist at fuse time, so the region-aware losses take their salient regions from the IR image.
    """
    return ((ir - local_mean(ir, sigma)) / scale).clamp(0.0, 1.0)


@dataclass
class FusionOutput:
    fused: Tensor  # (B,1,H,W), 0..1 (clamped in eval mode)
    logits: Tensor | None  # (B,K) entity logits, None without an entity path
    active: Tensor | None  # (B,K) entity set used by the entity attention


class EntityFusionNet(nn.Module):
    def __init__(self, cfg: FusionConfig, entity_table: Tensor | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.enc_ir = Encoder(cfg)
        self.enc_vis = Encoder(cfg)
        self.inter = nn.ModuleList([InterVisualBlock(cfg) for _ in range(cfg.n_inter)])
        self.merge = nn.Conv2d(2 * cfg.dim, cfg.dim, 1)
        self.n_labels = len(cfg.labels) if entity_path_enabled(cfg) else 0
        if self.n_labels:
            table = torch.zeros(self.n_labels, cfg.text_dim) if entity_table is None else entity_table.float()
            if tuple(table.shape) != (self.n_labels, cfg.text_dim):
                raise ValueError(f"entity table shape {tuple(table.shape)} != ({self.n_labels}, {cfg.text_dim})")
            self.register_buffer("entity_table", table.clone())
            self.head = EntityHead(cfg.dim, self.n_labels)
            self.entity = EntityBlock(cfg)
        self.decoder = Decoder(cfg)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, ir: Tensor, vis: Tensor, labels: Tensor | None = None) -> FusionOutput:
        """`labels` (B,K) multi-hot picks the entity tokens; None uses the classifier's own predictions."""
        H, W = ir.shape[-2:]
        m = self.cfg.multiple
        ph, pw = (-H) % m, (-W) % m
        if ph or pw:  # any size: pad to the network multiple, crop back below
            ir = F.pad(ir, (0, pw, 0, ph), mode="replicate")
            vis = F.pad(vis, (0, pw, 0, ph), mode="replicate")
        f_ir, t_ir = self.enc_ir(ir)
        f_vis, t_vis = self.enc_vis(vis)
        for blk in self.inter:
            t_ir, t_vis = blk(t_ir, t_vis)
        x = self.merge(torch.cat([t_ir, t_vis], dim=1))
        logits = active = None
        if self.n_labels:
            h, w = x.shape[-2:]
            t = _tokens(x)
            logits = self.head(t)
            if labels is None:
                active = (torch.sigmoid(logits) >= self.cfg.cls_threshold).to(x.dtype).detach()
            else:
                active = labels.to(x.dtype)
            x = _map(self.entity(t, self.entity_table, active), h, w)
        out = self.decoder(x, f_ir, f_vis)
        w = torch.sigmoid(out[:, :1])
        fused = w * ir + (1.0 - w) * vis + self.cfg.detail_scale * torch.tanh(out[:, 1:])
        fused = fused[..., :H, :W]
        if not self.training:
            fused = fused.clamp(0.0, 1.0)
        return FusionOutput(fused=fused, logits=logits, active=active)


def entity_path_enabled(cfg: FusionConfig) -> bool:
    """The classifier and the entity attention exist only with a label space and lambda_cls > 0."""
    return bool(cfg.labels) and cfg.lambda_cls > 0
