"""How fast are the dataset builder and reader, and is memory flat?

    .venv/bin/python perf/dataset.py [--seconds 60]

Builds a dataset from a simulated session (640x480) with its true calibration, then
reads it back through ``HandDataset`` (128x128 crops, keypoints, skeleton) with a
DataLoader, and times the heatmap codec on batches. In the same run, the references:
plain ``cv2.imencode`` and ``cv2.imdecode`` of the same 640x480 frames (JPEG q90).

Goals (issue 5, 2 cores): build at least half the plain JPEG encode rate; reader at least
1500 samples/s; memory flat as the dataset grows (the build streams).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from gthd.calibration.files import Calibration
from gthd.geometry import Camera, Transform
from gthd.session import Session
from gthd.sim.rig import RigConfig
from gthd.sim.simulate import simulate
from gthd.sim.truth import session_truth


def _calibration(path) -> Calibration:
    gt = session_truth(Session.open(path))
    return Calibration(Camera.from_dict(gt["camera"]), Transform.from_dict(gt["T_cam_leap"]), gt["clock"]["offset_ns"], {})


def _build_in_child(session: Path, out: Path) -> tuple[float, int, float]:
    """Build in a fresh process: (frames/s, samples, peak RSS MB of that process)."""
    code = (
        "import sys, time, resource\n"
        "sys.path.insert(0, %r)\n"
        "from perf.dataset import _calibration\n"
        "from gthd.dataset.build import build_dataset\n"
        "t = time.perf_counter(); r = build_dataset([%r], [_calibration(%r)], %r, force=True)\n"
        "dt = time.perf_counter() - t\n"
        "frames = r.samples + sum(r.left_out.values())\n"
        "print(frames / dt, r.samples, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    ) % (str(Path(__file__).resolve().parents[1]), str(session), str(session), str(out))
    out_text = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(out_text[0]), int(out_text[1]), float(out_text[2])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    try:
        # two sessions, one 4x the other, to see whether memory grows with the dataset
        small, big = tmp / "small", tmp / "big"
        simulate(small, 0, RigConfig(duration_s=args.seconds / 4), boards=0, clicks=0)
        simulate(big, 0, RigConfig(duration_s=args.seconds), boards=0, clicks=0)
        rate_s, n_s, rss_s = _build_in_child(small, tmp / "small.h5")
        rate, n, rss = _build_in_child(big, tmp / "big.h5")

        s = Session.open(big)
        frames = [s.image(i) for i in range(0, len(s.frames), max(1, len(s.frames) // 200))]
        t = time.perf_counter()
        encoded = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 90])[1] for f in frames]
        enc = len(frames) / (time.perf_counter() - t)
        t = time.perf_counter()
        for e in encoded:
            cv2.imdecode(e, cv2.IMREAD_COLOR)
        dec = len(frames) / (time.perf_counter() - t)

        reader = _reader(tmp / "big.h5")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"machine: 2 cores, OpenCV {cv2.__version__}; 640x480 frames, simulated session of {args.seconds:g} s")
    print(f"references: cv2.imencode JPEG {enc:7.1f} frames/s, cv2.imdecode {dec:7.1f} frames/s (one thread)")
    print(f"build:  {rate:7.1f} frames/s ({n} samples) -> build / JPEG encode = {rate / enc:.2f} (goal >= 0.50)")
    print(f"memory: build peak RSS {rss_s:.0f} MB for {n_s} samples, {rss:.0f} MB for {n} samples (flat: the build streams)")
    for line in reader:
        print(line)
    return 0


def _reader(path: Path) -> list[str]:
    """Reader throughput through a DataLoader, and the codec on batches."""
    try:
        import torch
        from torch.utils.data import DataLoader

        from gthd.dataset.codec import MultiScaleHeatmapCodec
        from gthd.dataset.torch_dataset import HandDataset
    except ImportError as e:  # pragma: no cover
        return [f"reader: not measured ({e})"]
    out = []
    for workers in (0, 2):
        ds = HandDataset(path, split="train")
        loader = DataLoader(ds, batch_size=64, num_workers=workers, shuffle=True, persistent_workers=workers > 0)
        for _ in zip(range(2), loader):  # warm up (worker start, page cache)
            pass
        t, n = time.perf_counter(), 0
        for _ in range(3):
            for batch in loader:
                n += len(batch["image"])
        rate = n / (time.perf_counter() - t)
        out.append(f"reader: {rate:7.1f} samples/s (128x128 crop + keypoints + skeleton, num_workers={workers}) (goal >= 1500)")
    codec = MultiScaleHeatmapCodec()
    kp = torch.rand(64, 21, 2) * 127
    vis = torch.ones(64, 21, dtype=torch.bool)
    t = time.perf_counter()
    for _ in range(20):
        codec.encode(kp, vis)
    out.append(f"codec: {20 * 64 / (time.perf_counter() - t):7.1f} samples/s of multi-scale targets made per batch on the CPU (torch)")
    out.append(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return out


if __name__ == "__main__":
    sys.exit(main())
