"""Full-pipeline inference latency per 640x480 frame: the skeleton UNet detector, then the
pose network on the crop (``gthd.benchmark.pipeline``), beside MediaPipe Hands on the same
frames when it is installed.

    .venv/bin/python perf/infer.py [--profile quick|paper] [--frames 40]

Models are untrained here (latency does not depend on the weights); the detector's
threshold is set so that every frame goes through the pose network too (the worst case).
The heatmap network decodes as the profile says (``decode``): with "bone-tree", a bone
prior from the simulated hands' true keypoints.
Goal (issue 6): the pipeline at least as fast as MediaPipe Hands on the same machine.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gthd.benchmark.models import create_model
from gthd.benchmark.pipeline import HandPosePipeline
from gthd.benchmark.run import PROFILES
from gthd.dataset.codec import BonePrior
from gthd.session import Session
from gthd.sim.rig import RigConfig
from gthd.sim.simulate import simulate


def _bone_prior(s: Session) -> BonePrior:
    """Bone lengths of the session's true hands, scaled into a 128 px crop of their box."""
    from gthd.sim.truth import session_truth

    hands = [f["hand"] for f in session_truth(s)["frames"] if f.get("hand")]
    kp = np.array([h["keypoints"] for h in hands], np.float64)
    side = np.array([max(h["box"][2] - h["box"][0], h["box"][3] - h["box"][1]) for h in hands])
    kp = (kp - kp.mean(axis=1, keepdims=True)) * (128 / (1.5 * side))[:, None, None]
    return BonePrior.from_keypoints(kp, np.ones(kp.shape[:2], bool))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    ap.add_argument("--frames", type=int, default=40)
    args = ap.parse_args()
    prof = PROFILES[args.profile]
    tmp = Path(tempfile.mkdtemp())
    try:
        simulate(tmp / "s", 0, RigConfig(duration_s=max(2.0, args.frames / 30 + 0.5)), boards=0, clicks=0)
        s = Session.open(tmp / "s")
        frames = [s.image(i) for i in range(min(args.frames, len(s.frames)))]
        prior = _bone_prior(s) if prof.decode == "bone-tree" else None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    torch.manual_seed(0)
    w = prof.widths
    det = create_model("skeleton_unet", **({"width": w["skeleton_unet"]} if "skeleton_unet" in w else {}))
    print(f"machine: {torch.get_num_threads()} threads, torch {torch.__version__}; profile {prof.name}; {len(frames)} frames 640x480")
    for name in ("multiscale_skeleton", "resnet50_regression"):
        pose = create_model(name, **({"width": w[name]} if name in w else {}))
        pipe = HandPosePipeline(det, pose, name, frame_size=prof.frame_size, threshold_pixels=-1, skeleton_pass=prof.skeleton_pass, bone_prior=prior)
        pipe(frames[0])  # warm up
        t = time.perf_counter()
        for f in frames:
            pipe(f)
        ms = 1000 * (time.perf_counter() - t) / len(frames)
        decode = f", {prof.decode} decode" if name == "multiscale_skeleton" else ""
        print(f"pipeline skeleton_unet + {name:20s} {ms:7.1f} ms/frame ({1000 / ms:5.1f} fps{decode})")
    try:
        import mediapipe as mp  # noqa: F401

        from gthd.calibration.detectors import MediaPipeHands

        mph = MediaPipeHands()
        mph.detect(frames[0])
        t = time.perf_counter()
        for f in frames:
            mph.detect(f)
        ms = 1000 * (time.perf_counter() - t) / len(frames)
        print(f"MediaPipe Hands (static images)          {ms:7.1f} ms/frame ({1000 / ms:5.1f} fps)")
    except (ImportError, ValueError) as e:
        print(f"MediaPipe Hands: not measured ({str(e).splitlines()[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
