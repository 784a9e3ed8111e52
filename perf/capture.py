"""How fast can the capture engine record, without dropping anything?

    .venv/bin/python perf/capture.py [--seconds 60] [--speed 5]

Runs the simulated camera (640x480, rendered live) and tracker through the capture engine
(threads, bounded queues, JPEG encoding, disk) twice:

  paced    at --speed x real time (goal: 5x = 150 fps camera + 550 Hz tracker, no drop)
  unpaced  as fast as the sources go: the engine's ceiling on this machine

and, in the same run, the plain ``cv2.imencode`` JPEG rate on the same frames (the
reference), and the peak memory against the bound the queue sizes set.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from gthd.capture.engine import Capture, CaptureConfig
from gthd.sim.rig import RigConfig
from gthd.sim.sources import simulated_sources


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(seconds: float, speed: float, queue: int, tmp: Path) -> dict:
    cam, trk, _ = simulated_sources(0, RigConfig(duration_s=seconds), speed=speed)
    out = tmp / f"s{speed:g}"
    t0 = time.monotonic()
    r = Capture(out, cam, trk, CaptureConfig(camera_queue=queue, jpeg_quality=90)).run(handle_signals=False)
    wall = time.monotonic() - t0
    c, t = r.summary["camera"], r.summary["tracker"]
    shutil.rmtree(out)
    return {
        "wall": wall,
        "fps": c["acquired"] / wall,
        "hz": t["frames"] / wall,
        "frames": c["frames"],
        "tracker": t["frames"],
        "drops": c["dropped_queue_full"] + t["dropped_queue_full"],
        "cam_hw": c["queue_high_water"],
        "trk_hw": t["queue_high_water"],
        "mb": r.summary["bytes_written"] / 1e6,
        "status": r.status,
    }


def jpeg_reference(n: int = 200) -> float:
    """Plain cv2.imencode JPEG frames/s on simulated 640x480 frames, quality 90."""
    cam, _, _ = simulated_sources(0, RigConfig(duration_s=n / 30 + 1), speed=0)
    cam.open()
    frames = [cam.read().image for _ in range(n)]
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        for f in frames:
            cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 90])
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="simulated session length")
    ap.add_argument("--speed", type=float, default=5.0, help="times real time for the paced run")
    ap.add_argument("--queue", type=int, default=64, help="camera queue size (frames)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    try:
        paced = run(args.seconds, args.speed, args.queue, tmp)
        unpaced = run(args.seconds, 0, args.queue, tmp)
        rss = peak_rss_mb()  # before the reference holds its frames in memory
        ref = jpeg_reference()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    bound = args.queue * 640 * 480 * 3 / 1e6
    print(f"machine: {__import__('os').cpu_count()} cores, OpenCV {cv2.__version__}; session {args.seconds:g} s simulated, 640x480 JPEG q90")
    print(f"jpeg reference: {ref:7.1f} frames/s  (cv2.imencode alone, one thread)")
    for name, r in (("paced", paced), ("unpaced", unpaced)):
        label = f"{args.speed:g}x real time" if name == "paced" else "as fast as possible"
        print(
            f"{name:8s} ({label}): camera {r['fps']:6.1f} fps, tracker {r['hz']:6.1f} Hz over {r['wall']:.1f} s wall; "
            f"{r['frames']} frames, {r['tracker']} tracker frames, drops {r['drops']}, "
            f"queue high-water camera {r['cam_hw']}/{args.queue} tracker {r['trk_hw']}; {r['mb']:.0f} MB written; {r['status']}"
        )
        print(f"          camera fps / jpeg reference = {r['fps'] / ref:.2f}")
    print(f"peak memory of the capture runs: {rss:.0f} MB RSS, of which the camera queue can hold at most {bound:.0f} MB of frames")
    # The simulated camera drops the odd frame itself (sequence gaps), like a real one, so
    # real time is what it delivers per simulated second, not a nominal 30 fps.
    fps_rt, hz_rt = paced["frames"] / args.seconds, paced["tracker"] / args.seconds
    goal = paced["fps"] >= 0.97 * args.speed * fps_rt and paced["hz"] >= 0.97 * args.speed * hz_rt and paced["drops"] == 0
    print(
        f"goal: {args.speed:g}x real time ({args.speed * fps_rt:.0f} fps + {args.speed * hz_rt:.0f} Hz: the rig delivers "
        f"{fps_rt:.1f} fps and {hz_rt:.1f} Hz in real time) with no drop: {'met' if goal else 'NOT met'}"
    )
    return 0 if goal else 1


if __name__ == "__main__":
    sys.exit(main())
