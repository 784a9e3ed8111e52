"""A hand keypoint detector made from a simulated session's truth, for ``gthd calibrate
--auto --detector simulated`` and the tests: the simulator plugs into calibration's
detector interface (:class:`gthd.calibration.detectors.KeypointDetector`) from above."""

from __future__ import annotations

import numpy as np

from ..calibration.detectors import HandKeypoints
from ..hand import NUM_JOINTS
from .truth import session_truth


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
        self._truth = session_truth(session_path)["frames"]
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
