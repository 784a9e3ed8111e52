"""Full-pipeline inference latency per 640x480 frame: the skeleton UNet detector, then the
pose network on the crop (``gthd.benchmark.pipeline``), beside MediaPipe Hands on the same
frames when it is installed.

    .venv/bin/python perf/infer.py [--profile quick|paper] [--frames 40] [--run benchmark/runs/demo-quick]

Models are untrained here (the networks' latency does not depend on the weights; the
bone-tree decode's does: trained maps have more peaks, so ``--run`` times a trained run as
well); the untrained detector is made to see a hand in every frame, so that every frame
goes through the crop and the pose network too (the worst case).
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
    ap.add_argument("--run", type=Path, default=None, help="also time a trained run's pipeline (its pose method ours): trained maps have more peaks to decode")
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
    # An untrained detector's mask stays under 0.5 everywhere: no box, and the pose network
    # would never run. Its last layer's bias is raised so that the mask covers the frame and
    # every frame goes the whole way (a full-frame box, the crop, the pose network).
    with torch.no_grad():
        [m for m in det.modules() if isinstance(m, torch.nn.Conv2d)][-1].bias.fill_(10.0)
    print(f"machine: {torch.get_num_threads()} threads, torch {torch.__version__}; profile {prof.name}; {len(frames)} frames 640x480")
    took, missed = {}, False
    for name in ("multiscale_skeleton", "resnet50_regression"):
        pose = create_model(name, **({"width": w[name]} if name in w else {}))
        pipe = HandPosePipeline(det, pose, name, frame_size=prof.frame_size, threshold_pixels=-1, skeleton_pass=prof.skeleton_pass, bone_prior=prior)
        pipe(frames[0])  # warm up
        t = time.perf_counter()
        for f in frames:
            pipe(f)
        ms = took[name] = 1000 * (time.perf_counter() - t) / len(frames)
        decode = f", {prof.decode} decode" if name == "multiscale_skeleton" else ""
        print(f"pipeline skeleton_unet + {name:20s} {ms:7.1f} ms/frame ({1000 / ms:5.1f} fps{decode})")
    if args.run is not None:
        from gthd.benchmark.predict import load_run

        pipe = load_run(args.run)
        pipe(frames[0])
        t = time.perf_counter()
        for f in frames:
            pipe(f)
        ms = took["trained run"] = 1000 * (time.perf_counter() - t) / len(frames)
        print(f"trained run {args.run.name}, ours ({pipe.decode} decode)   {ms:7.1f} ms/frame ({1000 / ms:5.1f} fps)")
    try:  # in gthd's environment, or its own one over a pipe (gthd.mediapipe_runner: a few ms of it are the pipe)
        from gthd.calibration.detectors import MediaPipeHands

        mph = MediaPipeHands()
        mph.detect(frames[0])
        t = time.perf_counter()
        for f in frames:
            mph.detect(f)
        ms = 1000 * (time.perf_counter() - t) / len(frames)
        print(f"MediaPipe Hands (static images)          {ms:7.1f} ms/frame ({1000 / ms:5.1f} fps)")
        for name, t_ms in took.items():
            verdict = "goal met" if t_ms <= ms else "goal missed"
            missed |= t_ms > ms
            print(f"ratio: pipeline with {name} takes {t_ms / ms:.2f}x MediaPipe's time per frame (goal <= 1: {verdict})")
    except (ImportError, ValueError, RuntimeError, OSError) as e:
        print(f"MediaPipe Hands: not measured ({str(e).splitlines()[0]})")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
