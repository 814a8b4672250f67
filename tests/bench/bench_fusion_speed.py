"""Speed bench of the fusion model on the CPU: size, MACs, fuse latency, training throughput.

    .venv/bin/python tests/bench/bench_fusion_speed.py [--threads N] [--labels 80] [--repeats 7] [--steps 20]

Prints the parameter count (default config, with and without an entity path of --labels labels), the
multiply-accumulates for one 640x480 pair (torch FlopCounterMode FLOPs / 2), the median latency of fusing a
640x480 pair (model only, and uint8 in -> uint8 out as `fuse` does), and training patches per second at the
default patch and batch size. All figures come from the same process, measured side by side.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--labels", type=int, default=80, help="label-space size for the entity path")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=20, help="timed training steps")
    args = ap.parse_args()

    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from entitylabel.fusion.config import FusionConfig
    from entitylabel.fusion.fuse import fuse_arrays
    from entitylabel.fusion.losses import fusion_loss
    from entitylabel.fusion.model import EntityFusionNet

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    labels = [f"entity{i}" for i in range(args.labels)]
    cfg = FusionConfig(labels=labels)
    model = EntityFusionNet(cfg, torch.nn.functional.normalize(torch.randn(len(labels), cfg.text_dim), dim=-1))
    plain = EntityFusionNet(FusionConfig())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"parameters: {model.num_params():,} (with {args.labels} labels), {plain.num_params():,} (fusion only)")

    model.eval()
    ir = torch.rand(1, 1, 480, 640)
    vis = torch.rand(1, 1, 480, 640)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(ir, vis)
    print(f"MACs, one 640x480 pair: {fc.get_total_flops() / 2e9:.2f} G")

    def median_s(fn) -> float:
        fn()  # warm-up
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    with torch.inference_mode():
        t_model = median_s(lambda: model(ir, vis))
    a = (np.random.default_rng(0).random((480, 640)) * 255).astype(np.uint8)
    b = (np.random.default_rng(1).random((480, 640)) * 255).astype(np.uint8)
    t_fuse = median_s(lambda: fuse_arrays(model, a, b))
    print(f"median latency, 640x480 pair: model {t_model * 1000:.0f} ms, uint8 in/out {t_fuse * 1000:.0f} ms "
          f"({1 / t_fuse:.1f} pairs/s)")  # fmt: skip

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    p, bs = cfg.patch_size, cfg.batch_size
    x, y = torch.rand(bs, 1, p, p), torch.rand(bs, 1, p, p)
    target = (torch.rand(bs, len(labels)) > 0.9).float()

    def step() -> None:
        out = model(x, y, target)
        loss, _ = fusion_loss(out.fused, x, y, cfg, out.logits, target)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t = time.perf_counter()
    for _ in range(args.steps):
        step()
    dt = time.perf_counter() - t
    print(f"training: {args.steps * bs / dt:.1f} patches/s ({p}x{p} patches, batch {bs}, entity path on)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
