"""Training throughput per model and profile, and the FLOP/s it achieves against the
machine's own peak measured in the same run.

    .venv/bin/python perf/train.py [--profile quick|paper] [--steps 6]

For each model: samples/s of full training steps (forward, loss, backward, Adam) on
random inputs at the model's real input size, and the achieved FLOP/s (the convolutions'
and linear layers' multiply-adds counted with forward hooks, x3 for forward + backward).
The reference: a plain large 3x3 convolution (forward + backward) and a plain matmul, in
the same run, same threads. Goal (issue 6): CPU training at least 40 % of the conv peak.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn as nn

from gthd.benchmark.models import MODEL_INFO, create_model
from gthd.benchmark.run import PROFILES
from gthd.benchmark.train import compute_loss, make_codec


def forward_flops(model: nn.Module, x: torch.Tensor) -> float:
    """Multiply-add FLOPs (2 per MAC) of one forward pass, over conv, transposed conv and linear layers."""
    total = 0.0

    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            total += 2 * out.numel() * (m.in_channels // m.groups) * kh * kw
        elif isinstance(m, nn.ConvTranspose2d):
            kh, kw = m.kernel_size
            total += 2 * inp[0].numel() * (m.out_channels // m.groups) * kh * kw
        elif isinstance(m, nn.Linear):
            total += 2 * out.numel() * m.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


def conv_peak(steps: int = 5) -> float:
    """FLOP/s of a plain 3x3 convolution, 128 -> 128 channels on 64x64, batch 8, forward + backward."""
    conv = nn.Conv2d(128, 128, 3, padding=1)
    x = torch.randn(8, 128, 64, 64, requires_grad=True)
    flops = 3 * 2 * 8 * 128 * 64 * 64 * 128 * 9
    conv(x).sum().backward()  # warm up
    t = time.perf_counter()
    for _ in range(steps):
        conv(x).sum().backward()
    return flops * steps / (time.perf_counter() - t)


def matmul_peak(n: int = 1024, steps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t = time.perf_counter()
    for _ in range(steps):
        a @ b
    return 2 * n**3 * steps / (time.perf_counter() - t)


def batch_for(name: str, size: tuple[int, int], batch: int) -> dict:
    """A random training batch of the right shapes for the model's task (H, W = size)."""
    info = MODEL_INFO[name]
    h, w = size
    out = {"image": torch.rand(batch, 3, h, w), "skeleton": torch.rand(batch, 1, h, w)}
    if info.task in ("pose-heatmap", "pose-regression"):
        out["keypoints"] = torch.rand(batch, 21, 2) * (w - 1)
        out["visible"] = torch.ones(batch, 21, dtype=torch.bool)
    else:
        out["has_hand"] = torch.ones(batch, dtype=torch.bool)
        out["box"] = torch.tensor([[w * 0.2, h * 0.2, w * 0.6, h * 0.7]]).repeat(batch, 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args()
    prof = PROFILES[args.profile]
    peak_conv, peak_mm = conv_peak(), matmul_peak()
    print(f"machine: {torch.get_num_threads()} threads, torch {torch.__version__}; profile {prof.name}, batch {prof.batch_size}")
    print(f"reference: conv 3x3 fwd+bwd {peak_conv / 1e9:6.1f} GFLOP/s, matmul {peak_mm / 1e9:6.1f} GFLOP/s")
    ratios = []
    for name, info in MODEL_INFO.items():
        if name == "box_regressor":
            continue
        kwargs = {"width": prof.widths[name]} if name in prof.widths else {}
        model = create_model(name, **kwargs)
        size = (prof.frame_size[1], prof.frame_size[0]) if info.task in ("detector", "box") else info.input_size
        batch = batch_for(name, size, prof.batch_size)
        x = batch["image"] if "skeleton" not in info.inputs else torch.cat([batch["image"], batch["skeleton"]], 1)
        codec = make_codec(name, (size[1], size[0])) if info.task == "pose-heatmap" else None
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        model.train()

        def step(opt=opt, info=info, model=model, x=x, batch=batch, codec=codec):
            opt.zero_grad()
            loss = compute_loss(info.task, model(x), batch, codec)
            loss.backward()
            opt.step()

        step()  # warm up
        t = time.perf_counter()
        for _ in range(args.steps):
            step()
        dt = (time.perf_counter() - t) / args.steps
        flops = 3 * forward_flops(model.eval(), x)
        rate = flops / dt
        ratios.append(rate / peak_conv)
        print(f"{name:22s} {prof.batch_size / dt:7.1f} samples/s  {rate / 1e9:6.1f} GFLOP/s  = {rate / peak_conv:4.0%} of the conv peak  ({flops / prof.batch_size / 1e9:.2f} GFLOP per sample)")
    print(f"goal: training at >= 40 % of the conv peak: {'met' if min(ratios) >= 0.4 else 'not met'} (worst {min(ratios):.0%}, best {max(ratios):.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
