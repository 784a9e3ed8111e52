"""Training throughput per model and profile, loader included, and the FLOP/s it
achieves against the machine's own peak measured in the same run.

    .venv/bin/python perf/train.py [--profile quick|paper|FILE.json] [--seconds 20] [--epochs 2]

Simulates a session, builds its dataset (true calibration), then runs the benchmark's
real training loop (:func:`gthd.benchmark.train.train`: the profile's loader, workers,
threads, augmentation, per-batch heatmap targets, forward, loss, backward, Adam,
checkpoint) on it for each model of the profile. Reported: samples/s of the last epoch
(the first pays for warm-up) and the achieved FLOP/s (the convolutions' and linear
layers' multiply-adds counted with forward hooks, x3 for forward + backward). The
reference: a plain large 3x3 convolution (forward + backward) and a plain matmul, in the
same run, same threads. Goal (issue 10): quick-profile training, loader included, at
least 50 % of the conv peak.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn as nn

from gthd.benchmark.models import MODEL_INFO, create_model
from gthd.benchmark.run import DETECTOR, POSE_METHODS, Profile, set_threads, train_config
from gthd.benchmark.train import make_dataset, make_input, train
from gthd.sim.truth import session_truth


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


def sample_input(config) -> torch.Tensor:
    """One real training input (1, C, H, W) of ``config``'s model (for counting FLOPs)."""
    item = make_dataset(config)[0]
    batch = {k: v[None] for k, v in item.items() if isinstance(v, torch.Tensor)}
    return make_input(batch, MODEL_INFO[config.model].in_channels)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="quick", help="quick, paper, or a profile JSON file")
    ap.add_argument("--seconds", type=float, default=20.0, help="the simulated session's length")
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    prof = Profile.load(args.profile)
    set_threads(prof.threads)
    from gthd.calibration.files import Calibration
    from gthd.dataset.build import build_dataset
    from gthd.geometry import Camera, Transform
    from gthd.session import Session
    from gthd.sim.rig import RigConfig
    from gthd.sim.simulate import simulate

    tmp = Path(tempfile.mkdtemp())
    try:
        simulate(tmp / "s", 0, RigConfig(duration_s=args.seconds), boards=0, clicks=0)
        gt = session_truth(Session.open(tmp / "s"))  # the rig's true calibration
        truth = Calibration(Camera.from_dict(gt["camera"]), Transform.from_dict(gt["T_cam_leap"]), gt["clock"]["offset_ns"], {})
        build_dataset([tmp / "s"], [truth], tmp / "d.h5")
        peak_conv, peak_mm = conv_peak(), matmul_peak()
        print(
            f"machine: {torch.get_num_threads()} threads, torch {torch.__version__}; profile {prof.name}, batch {prof.batch_size}, "
            f"{prof.num_workers} loader workers; a {args.seconds:g} s simulated session"
        )
        print(f"reference: conv 3x3 fwd+bwd {peak_conv / 1e9:6.1f} GFLOP/s, matmul {peak_mm / 1e9:6.1f} GFLOP/s")
        ratios = []
        builders = [DETECTOR[1]] + [POSE_METHODS[m] for m in prof.methods]
        for name in builders:
            config = replace(train_config(name, prof, tmp / "d.h5", 0, "thick"), epochs=args.epochs, max_samples=None)
            rates = []
            train(config, tmp / name, progress=lambda p: rates.append(p["samples_per_s"]))
            x = sample_input(config)
            model = create_model(name, **config.model_kwargs)
            flops = 3 * forward_flops(model.eval(), x)  # per sample
            rate = rates[-1] * flops
            ratios.append(rate / peak_conv)
            print(
                f"{name:22s} {rates[-1]:7.1f} samples/s  {rate / 1e9:6.1f} GFLOP/s  = {rate / peak_conv:4.0%} of the conv peak  "
                f"({flops / 1e9:.2f} GFLOP per sample, loader included)"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"goal: training, loader included, at >= 50 % of the conv peak: {'met' if min(ratios) >= 0.5 else 'not met'} "
        f"(worst {min(ratios):.0%}, best {max(ratios):.0%})"
    )
    return 0 if min(ratios) >= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
