"""2D hand keypoint detectors for ``gthd calibrate --auto``: instead of one clicked joint
per frame, a detector gives all 21 joints in many frames, and the same solver
(``extrinsics.solve_extrinsics``) pairs them with the tracked joints.

A detector is any object with ``name`` and ``detect(image, frame_index=None)`` returning
a list of :class:`HandKeypoints`. Shipped: :class:`MediaPipeHands` (optional extra
``mediapipe``, pinned to 0.10.14, the last release that carries its hand models inside
the package and so runs offline) and :class:`SimulatedDetector` (a simulated session's
truth with detector-like errors; what the tests inject).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from ..hand import NUM_JOINTS
from ..session import Session
from .extrinsics import Observations


@dataclass
class HandKeypoints:
    """One detected hand: ``uv`` (21, 2) px in gthd's joint order, ``score`` (21,) in [0, 1]."""

    uv: np.ndarray
    score: np.ndarray
    handedness: str | None = None


class KeypointDetector(Protocol):
    name: str

    def detect(self, image: np.ndarray, frame_index: int | None = None) -> list[HandKeypoints]:
        """Hands in a (H, W, 3) uint8 BGR image."""
        ...


class MediaPipeHands:
    """MediaPipe Hands (``mediapipe.solutions.hands``). Its 21 landmarks are in gthd's
    order (both use MediaPipe's). Needs ``pip install "gthd[mediapipe]"``."""

    name = "mediapipe-hands"

    def __init__(self, min_confidence: float = 0.5, max_hands: int = 1):
        try:
            import mediapipe as mp  # noqa: F401
        except ImportError:
            raise ValueError('--auto needs MediaPipe: pip install "gthd[mediapipe]" (mediapipe==0.10.14)') from None
        if not hasattr(mp, "solutions") or not hasattr(mp.solutions, "hands"):
            raise ValueError("this mediapipe has no solutions.hands (gthd pins mediapipe==0.10.14, which ships its hand models)")
        self._hands = mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=max_hands, min_detection_confidence=min_confidence)

    def detect(self, image: np.ndarray, frame_index: int | None = None) -> list[HandKeypoints]:
        h, w = image.shape[:2]
        res = self._hands.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        out = []
        for k, lm in enumerate(res.multi_hand_landmarks or []):
            # landmarks are normalised to [0, 1] of the image: pixel centres at (x*w - 0.5)
            uv = np.array([[p.x * w - 0.5, p.y * h - 0.5] for p in lm.landmark], dtype=np.float64)
            score = float(res.multi_handedness[k].classification[0].score) if res.multi_handedness else 1.0
            side = res.multi_handedness[k].classification[0].label.lower() if res.multi_handedness else None
            out.append(HandKeypoints(uv, np.full(NUM_JOINTS, score), side))
        return out


class SimulatedDetector:
    """A detector made from a simulated session's ground truth: the true keypoints with
    Gaussian pixel noise, a share of joints confused with a neighbour (a detector's
    typical mistake), and missed hands.

    Args:
        session_path: a simulated session (with ground_truth.json).
        noise_px: pixel noise per coordinate. swap_share: share of joints swapped.
        miss_share: share of frames where no hand is found.
    """

    name = "simulated"

    def __init__(self, session_path, noise_px: float = 3.0, swap_share: float = 0.05, miss_share: float = 0.05, seed: int = 0):
        self._truth = Session.open(session_path).ground_truth()["frames"]
        self.noise_px, self.swap_share, self.miss_share = noise_px, swap_share, miss_share
        self._seed = seed

    def detect(self, image: np.ndarray, frame_index: int | None = None) -> list[HandKeypoints]:
        if frame_index is None:
            raise ValueError("the simulated detector needs the frame index")
        hand = self._truth[frame_index]["hand"]
        rng = np.random.default_rng([self._seed, frame_index])
        if hand is None or rng.random() < self.miss_share:
            return []
        uv = hand["keypoints"] + rng.normal(0, self.noise_px, (NUM_JOINTS, 2))
        swap = np.flatnonzero(rng.random(NUM_JOINTS) < self.swap_share)
        for j in swap:  # confused with the next joint along the finger (or the previous)
            other = j + 1 if j % 4 != 0 else j - 1
            uv[j] = hand["keypoints"][other] + rng.normal(0, self.noise_px, 2)
        score = np.where(hand["in_image"], 0.9, 0.2)
        h, w = image.shape[:2]
        uv = np.clip(uv, 0, [w - 1, h - 1])
        return [HandKeypoints(uv, score, hand["handedness"])]


def observations_from_detector(session: Session, detector: KeypointDetector, frames: list[int], min_score: float = 0.5, progress=None) -> Observations:
    """Run ``detector`` on ``frames`` of ``session`` and collect every joint it finds
    with ``min_score`` (the most confident hand per frame) as observations."""
    t, joint, uv, fi = [], [], [], []
    for n, i in enumerate(frames):
        hands = detector.detect(session.image(i), frame_index=i)
        if progress is not None:
            progress(n + 1, len(frames))
        if not hands:
            continue
        h = max(hands, key=lambda k: float(np.mean(k.score)))
        ok = np.flatnonzero(h.score >= min_score)
        t.extend([int(session.frames.t_host_ns[i])] * len(ok))
        joint.extend(ok.tolist())
        uv.extend(h.uv[ok].tolist())
        fi.extend([i] * len(ok))
    return Observations(np.array(t, np.int64), np.array(joint, np.int64), np.array(uv, np.float64).reshape(-1, 2), np.array(fi, np.int64))
