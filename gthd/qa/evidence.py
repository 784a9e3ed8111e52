"""Check 2: the labels against the image, from a trained gthd run (``gthd qa --run RUN``).

A run's skeleton detector says where in a frame it sees a hand's skeleton, and its pose
network where it puts each joint in a crop. Two scores per labelled frame:

- ``detector_evidence`` (:func:`skeleton_evidence`): the detector's mean response along
  the labelled skeleton (its mask sampled on the labelled bones, at the detector's
  resolution). A label on the hand scores high; one beside it (a jump, a frame whose
  tracked hand belongs to another instant) low.
- ``pose_px`` (:func:`pose_disagreement`): the pose network, run on the crop around the
  labelled hand (the crop the dataset would store), against the labels: the median joint
  distance in the network's 128 px crop (its heatmaps decoded as the run scored them:
  run.json's ``decode``). A flipped hand or a snapped finger disagrees.

The scores are only as good as the run: a detector trained on one session is a weak judge
of another, so the flags use loose thresholds (:class:`gthd.qa.runner.QAOptions`) and the
scores are in the table for anyone to sort by. MediaPipe Hands would be a second judge
where it is installed; it is not a dependency of gthd and is not used here.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..dataset.samples import crop, square_crop_box, to_crop
from ..geometry import box_from_points
from ..hand import EDGES


def skeleton_evidence(mask: np.ndarray, uv: np.ndarray, vis: np.ndarray, per_edge: int = 8) -> float:
    """The mean of ``mask`` (h, w), values in [0, 1], at ``per_edge`` points along every
    labelled edge whose ends are visible; ``uv`` (21, 2) in the mask's pixels. NaN when
    no edge is visible."""
    h, w = mask.shape
    s = (np.arange(per_edge) + 0.5) / per_edge
    vals = []
    for a, b in EDGES:
        if vis[a] and vis[b]:
            p = uv[a] + (uv[b] - uv[a]) * s[:, None]
            x = np.clip(np.rint(p[:, 0]).astype(int), 0, w - 1)
            y = np.clip(np.rint(p[:, 1]).astype(int), 0, h - 1)
            vals.append(mask[y, x])
    return float(np.mean(np.concatenate(vals))) if vals else float("nan")


def pose_disagreement(pred: np.ndarray, labels: np.ndarray, vis: np.ndarray) -> float:
    """The median distance (px) between predicted and labelled joints (both (21, 2), the
    same pixels) over the visible ones; NaN when none is."""
    if not vis.any():
        return float("nan")
    return float(np.median(np.linalg.norm(pred[vis] - labels[vis], axis=1)))


def score_frames(run: str | Path, frames: list[Path], uv: np.ndarray, vis: np.ndarray, labelled: np.ndarray, method: str = "ours", progress=None) -> dict:
    """Both scores for every labelled frame.

    Args:
        run: a ``gthd benchmark`` run folder with a detector.
        frames: (N,) the frames' files. uv, vis: (N, 21, 2) px and (N, 21) the labels.
        labelled: (N,) bool: the frames to score.

    Returns:
        {"detector_evidence": (N,), "pose_px": (N,), "info": what was used}.
    """
    import torch

    from ..benchmark.predict import load_run

    pipe = load_run(run, method=method)
    N = len(frames)
    evidence, pose = np.full(N, np.nan), np.full(N, np.nan)
    fw, fh = pipe.frame_size
    size = pipe.info.input_size[0]
    todo = np.flatnonzero(labelled)
    with torch.no_grad():
        for n, i in enumerate(todo):
            img = cv2.imread(str(frames[i]), cv2.IMREAD_COLOR)
            if img is None:
                continue
            H, W = img.shape[:2]
            small = cv2.resize(img, (fw, fh), interpolation=cv2.INTER_AREA)
            mask = pipe.detector(pipe.tensor(small))["mask"][0, 0].cpu().numpy()
            sx, sy = fw / W, fh / H
            uv_small = (uv[i] + 0.5) * np.array([sx, sy]) - 0.5
            evidence[i] = skeleton_evidence(mask, uv_small, vis[i])
            box = box_from_points(uv[i], vis[i], W, H, margin=pipe.box_margin)
            if box is None:
                continue
            cb = square_crop_box(box, pipe.crop_margin)
            x = pipe.tensor(crop(img, cb, size))
            if "skeleton" in pipe.info.inputs:
                cb_small = (cb + 0.5) * np.array([sx, sy, sx, sy]) - 0.5
                skel = crop(mask.astype(np.float32), cb_small, size)
                x = torch.cat([x, torch.from_numpy(skel)[None, None].to(pipe.device)], dim=1)
            pred, _ = pipe.codec.decode(pipe.pose(x))  # (1, 21, 2) crop px
            pose[i] = pose_disagreement(pred[0].cpu().numpy(), to_crop(uv[i], cb, size), vis[i])
            if progress is not None and n % 20 == 0:
                progress("image", n, len(todo))
    return {
        "detector_evidence": evidence,
        "pose_px": pose,
        "info": {"run": str(run), "method": method, "decode": pipe.decode, "frames": int(np.isfinite(evidence).sum())},
    }
