"""2D hand keypoint detectors for ``gthd calibrate --auto``: instead of one clicked joint
per frame, a detector gives all 21 joints in many frames, and the same solver
(``extrinsics.solve_extrinsics``) pairs them with the tracked joints.

A detector is any object with ``name`` and ``detect(image, frame_index=None)`` returning
a list of :class:`HandKeypoints`. Shipped: :class:`MediaPipeHands` (optional extra
``mediapipe``, pinned to 0.10.14, the last release that carries its hand models inside
the package and so runs offline). The simulator brings its own
(:class:`gthd.sim.detector.SimulatedDetector`: a simulated session's truth with
detector-like errors; what the tests inject).
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
    order (both use MediaPipe's). Needs ``pip install "gthd[mediapipe]"`` where it
    installs; where it cannot live beside gthd's pins (numpy 2, opencv-python 5), it runs
    in an isolated environment of its own over a pipe (:mod:`gthd.mediapipe_runner`)."""

    name = "mediapipe-hands"

    def __init__(self, min_confidence: float = 0.5, max_hands: int = 1):
        self._runner = None
        try:
            import mediapipe as mp  # noqa: F401
        except ImportError:
            from ..mediapipe_runner import DEFAULT_PYTHON, MediaPipeRunner, find_python

            if find_python() is None:
                raise ValueError(
                    '--auto needs MediaPipe: pip install "gthd[mediapipe]" (mediapipe==0.10.14), or, beside numpy 2, '
                    f'an isolated environment: python3.11 -m venv {DEFAULT_PYTHON.parents[1]} && {DEFAULT_PYTHON.parent}/pip install mediapipe==0.10.14 "numpy<2"'
                ) from None
            try:
                self._runner = MediaPipeRunner(max_num_hands=max_hands, min_detection_confidence=min_confidence)
            except RuntimeError as e:
                raise ValueError(f"--auto: {e}") from None
            return
        if not hasattr(mp, "solutions") or not hasattr(mp.solutions, "hands"):
            raise ValueError("this mediapipe has no solutions.hands (gthd pins mediapipe==0.10.14, which ships its hand models)")
        self._hands = mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=max_hands, min_detection_confidence=min_confidence)

    def detect(self, image: np.ndarray, frame_index: int | None = None) -> list[HandKeypoints]:
        if self._runner is not None:
            return [
                _inside(HandKeypoints(np.asarray(k["keypoints"], dtype=np.float64), np.full(NUM_JOINTS, k["score"]), k["handedness"].lower()), image)
                for k in self._runner.detect_image(image)
            ]
        h, w = image.shape[:2]
        res = self._hands.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        out = []
        for k, lm in enumerate(res.multi_hand_landmarks or []):
            # landmarks are normalised to [0, 1] of the image: pixel centres at (x*w - 0.5)
            uv = np.array([[p.x * w - 0.5, p.y * h - 0.5] for p in lm.landmark], dtype=np.float64)
            score = float(res.multi_handedness[k].classification[0].score) if res.multi_handedness else 1.0
            side = res.multi_handedness[k].classification[0].label.lower() if res.multi_handedness else None
            out.append(_inside(HandKeypoints(uv, np.full(NUM_JOINTS, score), side), image))
        return out


def _inside(hand: HandKeypoints, image: np.ndarray) -> HandKeypoints:
    """Score 0 for landmarks outside the image: MediaPipe places every landmark of a
    hand, guessing those beyond the frame, and no correspondence should come of a guess."""
    h, w = image.shape[:2]
    out = (hand.uv[:, 0] < -0.5) | (hand.uv[:, 0] > w - 0.5) | (hand.uv[:, 1] < -0.5) | (hand.uv[:, 1] > h - 0.5)
    hand.score = np.where(out, 0.0, hand.score)
    return hand


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
