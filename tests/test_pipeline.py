"""The detector + pose pipeline on whole frames (untrained models: the plumbing)."""

import numpy as np
import pytest
import torch

from gthd.benchmark.models import create_model
from gthd.benchmark.pipeline import HandPosePipeline


class FixedDetector(torch.nn.Module):
    """A detector whose mask is a fixed rectangle: the box is then known exactly."""

    def __init__(self, rect):
        super().__init__()
        self.rect = rect

    def forward(self, x):
        m = torch.zeros(x.shape[0], 1, *x.shape[2:])
        x0, y0, x1, y1 = self.rect
        m[:, :, y0:y1, x0:x1] = 1.0
        return {"logits": m, "mask": m}


def test_the_box_and_keypoints_come_back_in_frame_pixels():
    torch.manual_seed(0)
    pose = create_model("multiscale_skeleton", width=4)
    # a 40x30 mask patch in a 128x96 detector input = a 200x150 box in a 640x480 frame
    pipe = HandPosePipeline(FixedDetector((40, 30, 80, 60)), pose, "multiscale_skeleton", frame_size=(128, 96), threshold_pixels=10, box_margin=0)
    d = pipe(np.zeros((480, 640, 3), np.uint8))
    assert d.has_hand and d.score == 40 * 30
    np.testing.assert_allclose(d.box, [40 * 5 - 0.5, 30 * 5 - 0.5, 80 * 5 - 0.5, 60 * 5 - 0.5], atol=1e-6)
    # the keypoints lie in the square crop around the box (margin 25 %: side 1.5 x 200)
    cx, cy = d.box[[0, 2]].mean(), d.box[[1, 3]].mean()
    assert d.keypoints.shape == (21, 2) and np.all(np.abs(d.keypoints - [cx, cy]) <= 150 + 1)
    # the dataset's box margin (5 % of the larger side, 40 detector px -> 2 px = 10 frame px)
    pipe.box_margin = 0.05
    np.testing.assert_allclose(pipe(np.zeros((480, 640, 3), np.uint8)).box, d.box + [-10, -10, 10, 10], atol=1e-6)


def test_no_hand_below_the_threshold_and_bad_frames():
    pose = create_model("multiscale_plain", width=4)
    pipe = HandPosePipeline(FixedDetector((0, 0, 3, 3)), pose, "multiscale_plain", frame_size=(64, 48), threshold_pixels=50)
    d = pipe(np.zeros((480, 640, 3), np.uint8))
    assert not d.has_hand and d.score == 9 and d.keypoints is None
    with pytest.raises(ValueError, match="BGR"):
        pipe(np.zeros((480, 640), np.uint8))


def test_real_untrained_models_run_end_to_end():
    torch.manual_seed(0)
    pipe = HandPosePipeline(
        create_model("skeleton_unet", width=4, depth=2),
        create_model("resnet50_regression", width=0.0625),
        "resnet50_regression",
        frame_size=(128, 96),
        threshold_pixels=-1,
    )
    d = pipe(np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8))
    assert isinstance(d.score, int)
