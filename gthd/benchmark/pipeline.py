"""The paper's pipeline on a new frame: the skeleton UNet finds the hand (Hand/NoHand by
its count of foreground pixels, the box from the hand's connected region), the square
crop around the box is resampled to 128x128, and the pose network reads the crop with
the detector's own skeleton as its extra channel: the frame's mask cropped the same way
(``skeleton_pass="frame"``), or the detector run again on the crop itself
(``skeleton_pass="crop"``: a sharper skeleton, at the crop's resolution).

Used by ``gthd benchmark`` (its end-to-end row), ``gthd predict`` and ``perf/infer.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..dataset.codec import BonePrior, SkeletonMaskCodec
from ..dataset.samples import crop, from_crop, square_crop_box
from ..geometry import rescale_px
from .models import MODEL_INFO, fold_batch_norms
from .train import make_codec

SKELETON_PASSES = ("frame", "crop")
"""How the pose network's skeleton channel is made from the detector: its mask of the
whole frame, cropped like the image ("frame"), or a second pass on the crop ("crop")."""

DECODES = ("argmax", "bone-tree")
"""How a heatmap pose model's keypoints are read from its maps: "argmax", the paper's
(each joint at its averaged map's maximum), or "bone-tree", the structured decode of
:class:`~gthd.dataset.codec.MultiScaleHeatmapCodec` with a
:class:`~gthd.dataset.codec.BonePrior` fitted on the training labels (docs/benchmark.md,
"Decoding")."""


@dataclass
class Detection:
    """What the pipeline found in a frame. ``keypoints`` (21, 2) frame px and ``box``
    (4,) xyxy frame px are None when there is no hand; ``score`` is the detector's count
    of foreground pixels."""

    has_hand: bool
    score: int
    box: np.ndarray | None
    keypoints: np.ndarray | None


class HandPosePipeline:
    """Detector + pose network on whole BGR frames.

    Args:
        detector: a ``skeleton_unet`` model. pose: a pose model; ``pose_name`` its builder.
        frame_size: the detector's input (width, height).
        threshold_pixels: foreground pixels above which a frame has a hand (chosen on
            validation data: ``evaluate_detector`` reports it).
        crop_margin, box_margin: as the dataset's crops and boxes (the box: the hand
            region's bounds grown by 5 % of its larger side; the crop: 25 % around it).
        skeleton_pass: "frame" or "crop" (:data:`SKELETON_PASSES`): as the pose network
            was trained (``gthd benchmark`` records it in run.json).
        bone_prior: None, the paper's argmax decode of a heatmap model; a
            :class:`~gthd.dataset.codec.BonePrior` in crop pixels, the bone-tree decode
            (:data:`DECODES`; run.json records which the run was scored with). A
            regression model ignores it.
    """

    def __init__(
        self,
        detector,
        pose,
        pose_name: str,
        frame_size=(256, 192),
        threshold_pixels: float = 20.0,
        crop_margin: float = 0.25,
        box_margin: float = 0.05,
        device: str = "cpu",
        skeleton_pass: str = "frame",
        bone_prior: BonePrior | None = None,
    ):
        if skeleton_pass not in SKELETON_PASSES:
            raise ValueError(f"skeleton_pass must be one of {', '.join(SKELETON_PASSES)}, got {skeleton_pass!r}")
        self.skeleton_pass = skeleton_pass
        # Inference copies with the batch norms folded into the convolutions, in channels-last
        # layout on a CPU, where oneDNN's convolutions then run 1.3-2.3x faster (measured:
        # the detector at 256 x 192, 12.2 -> 5.2 ms on 2 cores); the same numbers up to
        # float rounding.
        self.layout = torch.channels_last if torch.device(device).type == "cpu" else torch.contiguous_format
        self.detector = fold_batch_norms(detector).to(device, memory_format=self.layout)  # an inference copy
        self.pose = fold_batch_norms(pose).to(device, memory_format=self.layout)
        self.info = MODEL_INFO[pose_name]
        self.codec = make_codec(self.info, bone_prior=bone_prior)  # the pose output's keypoints, heatmaps or regression alike
        heatmaps = self.info.task == "pose-heatmap"
        self.decode = ("bone-tree" if bone_prior is not None else "argmax") if heatmaps else None  # None: coordinates, no maps
        self.frame_size = tuple(frame_size)
        self.threshold = threshold_pixels
        self.crop_margin = crop_margin
        self.box_margin = box_margin
        self.device = device

    def tensor(self, bgr: np.ndarray) -> torch.Tensor:
        """A BGR uint8 image as the networks take it: (1, 3, H, W) RGB in [0, 1], on the
        pipeline's device and in its memory layout."""
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        x = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255).unsqueeze(0).to(self.device)
        return x.contiguous(memory_format=self.layout)

    @torch.no_grad()
    def __call__(self, frame: np.ndarray) -> Detection:
        """frame: (H, W, 3) uint8 BGR."""
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame: expected (H, W, 3) BGR, got {frame.shape}")
        H, W = frame.shape[:2]
        w, h = self.frame_size
        small = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        mask = self.detector(self.tensor(small))["mask"][0, 0].cpu().numpy()  # (h, w) in [0, 1]
        boxes, scores = SkeletonMaskCodec(self.box_margin).decode(mask[None])
        score, box_small = int(scores[0]), boxes[0]
        if score <= self.threshold or not np.all(np.isfinite(box_small)):
            return Detection(False, score, None, None)
        # the box in frame pixels (pixel-centre aware scaling)
        sx, sy = W / w, H / h
        box = rescale_px(box_small, sx, sy)
        cb = square_crop_box(box, self.crop_margin)
        size = self.info.input_size[0]
        x = self.tensor(crop(frame, cb, size))
        if "skeleton" in self.info.inputs and self.skeleton_pass == "crop":
            x = torch.cat([x, self.detector(x)["mask"]], dim=1).contiguous(memory_format=self.layout)  # the detector again, on the crop: (1, 4, S, S)
        elif "skeleton" in self.info.inputs:
            cb_small = rescale_px(cb, 1 / sx, 1 / sy)
            skel = crop(mask.astype(np.float32), cb_small, size)  # the detector's skeleton, same crop
            x = torch.cat([x, torch.from_numpy(skel)[None, None].to(self.device)], dim=1).contiguous(memory_format=self.layout)
        kp_crop, _ = self.codec.decode(self.pose(x))  # (1, 21, 2) crop px
        return Detection(True, score, box, from_crop(kp_crop[0].cpu().numpy(), cb, size))
