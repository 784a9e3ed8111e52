"""Scoring: the plumbing from model outputs to the paper's numbers, checked with
predictions whose errors are known, and real (untrained) models end to end."""

import numpy as np
import pytest
import torch

from gthd.benchmark.evaluate import evaluate_detector, evaluate_pose, score_pose
from gthd.benchmark.models import create_model
from gthd.calibration.files import Calibration
from gthd.dataset.build import build_dataset
from gthd.dataset.schema import open_dataset
from gthd.geometry import Camera, Transform
from gthd.session import Session
from gthd.sim.rig import RigConfig
from gthd.sim.simulate import simulate


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ev")
    simulate(root / "s", 3, RigConfig(duration_s=8.0), boards=0, clicks=0)
    gt = Session.open(root / "s").ground_truth()
    cal = Calibration(Camera.from_dict(gt["camera"]), Transform.from_dict(gt["T_cam_leap"]), gt["clock"]["offset_ns"], {})
    build_dataset([root / "s"], [cal], root / "d.h5", nohand_share=0.3)
    return root / "d.h5"


def _test_rows(path):
    with open_dataset(path) as f:
        rows = np.flatnonzero((f["meta/split"][...] == 2) & f["labels/has_hand"][...])
        return rows, f["labels/keypoints_crop"][rows], f["labels/visible"][rows], f["labels/crop_box"][rows]


def test_perfect_predictions_score_perfectly(dataset):
    rows, kc, vis, _ = _test_rows(dataset)
    s = score_pose(kc.copy(), kc, vis, rows, str(dataset))
    assert s["mjpe_px"] < 1e-4 and s["epe_px"] < 1e-3  # crop -> image mapping is exact
    assert s["pck_0.05"] == 1.0 and s["auc"] > 0.96


def test_a_known_offset_gives_known_errors(dataset):
    rows, kc, vis, cb = _test_rows(dataset)
    s = score_pose(kc + [2.0, 0.0], kc, vis, rows, str(dataset))
    assert s["mjpe_px"] == pytest.approx(2.0, abs=1e-4)
    side = cb[:, 2] - cb[:, 0]  # a crop pixel is side / 128 image pixels
    expected = np.sum(np.where(vis, 2.0 * side[:, None] / 128, 0)) / vis.sum()
    assert s["epe_px"] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("name", ["multiscale_skeleton", "unet_heatmaps", "resnet50_regression"])
def test_untrained_models_score_end_to_end(dataset, name):
    torch.manual_seed(0)
    model = create_model(name, **({"width": 8} if name != "resnet50_regression" else {"width": 0.125}))
    s = evaluate_pose(model, name, str(dataset), "test", batch_size=16)
    assert np.isfinite(s["mjpe_px"]) and s["mjpe_px"] > 3  # untrained: far from right
    assert 0 <= s["pck_0.2"] <= 1 and s["infer_ms"] > 0 and len(s["per_joint"]) == 21


def test_untrained_detector_scores_end_to_end(dataset):
    torch.manual_seed(0)
    row = evaluate_detector(create_model("skeleton_unet", width=4, depth=2), str(dataset), size=(128, 96))
    for k in ("accuracy", "precision", "recall", "f1", "iou", "threshold_pixels"):
        assert k in row and np.isfinite(row[k])
