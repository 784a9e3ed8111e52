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
from gthd.sim.truth import session_truth


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ev")
    simulate(root / "s", 3, RigConfig(duration_s=8.0), boards=0, clicks=0)
    gt = session_truth(Session.open(root / "s"))
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


class SwappedFingertip(torch.nn.Module):
    """A heatmap "model" that knows the answers: the true maps of each test crop (in the
    order evaluate_pose reads them), but the index fingertip's map (joint 8) peaks higher
    on the middle fingertip (joint 12): the finger swap the argmax makes."""

    def __init__(self, codec, keypoints, visible):
        super().__init__()
        self.codec, self.kp, self.vis, self.at = codec, torch.from_numpy(keypoints), torch.from_numpy(visible), 0

    def forward(self, x):
        kp, vis = self.kp[self.at : self.at + len(x)], self.vis[self.at : self.at + len(x)]
        self.at += len(x)
        decoy, decoy_vis = kp.clone(), vis.clone()
        decoy[:, 8], decoy_vis[:, 8] = kp[:, 12], vis[:, 8] & vis[:, 12]
        maps = []
        for true, wrong in zip(self.codec.encode(kp, vis), self.codec.encode(decoy, decoy_vis)):
            m = true.clone()
            m[:, 8] = 0.8 * true[:, 8] + wrong[:, 8]  # the right peak lower than the wrong finger's
            maps.append(m)
        return {"heatmaps": maps}


@pytest.mark.parametrize("name", ["multiscale_plain", "unet_heatmaps"])
def test_the_bone_tree_decode_undoes_a_finger_swap_the_argmax_makes(dataset, name):
    from gthd.benchmark.evaluate import fit_bone_prior
    from gthd.benchmark.train import make_codec
    from gthd.dataset.codec import BonePrior
    from gthd.dataset.torch_dataset import HandDataset

    train = HandDataset(str(dataset), "train", skeleton=None)
    prior = fit_bone_prior(str(dataset), "train")  # the training labels' bones, crop px
    expected = BonePrior.from_keypoints(train.keypoints, train.visible)
    np.testing.assert_allclose(prior.mean, expected.mean)
    np.testing.assert_allclose(prior.sd, expected.sd)
    test = HandDataset(str(dataset), "test", skeleton=None)
    swapped = lambda: SwappedFingertip(make_codec(name), test.keypoints, test.visible)  # noqa: E731
    argmax = evaluate_pose(swapped(), name, str(dataset), "test", batch_size=16)
    tree = evaluate_pose(swapped(), name, str(dataset), "test", batch_size=16, bone_prior=prior)
    assert argmax["per_joint"][8] > 5  # the argmax: on the middle fingertip
    assert tree["per_joint"][8] < 0.2 * argmax["per_joint"][8]  # the bone-tree decode: back on its own
    others = [j for j in range(21) if j != 8]
    assert max(tree["per_joint"][j] for j in others) < 0.5 and max(argmax["per_joint"][j] for j in others) < 0.5
    assert tree["mjpe_px"] < argmax["mjpe_px"] and tree["pck_0.05"] >= argmax["pck_0.05"]
    # a regression model's coordinates have no maps: the prior changes nothing
    torch.manual_seed(0)
    model = create_model("resnet50_regression", width=0.0625)
    a = evaluate_pose(model, "resnet50_regression", str(dataset), "test", batch_size=16)
    b = evaluate_pose(model, "resnet50_regression", str(dataset), "test", batch_size=16, bone_prior=prior)
    np.testing.assert_array_equal(a["predictions"], b["predictions"])


def test_untrained_detector_scores_end_to_end(dataset):
    torch.manual_seed(0)
    row = evaluate_detector(create_model("skeleton_unet", width=4, depth=2), str(dataset), size=(128, 96))
    for k in ("accuracy", "precision", "recall", "f1", "iou", "threshold"):
        assert k in row and np.isfinite(row[k])


class SpotDetector(torch.nn.Module):
    """A "detector" whose mask is one bright 3x3 block at a fixed input pixel."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y = x, y

    def forward(self, img):
        m = torch.zeros(img.shape[0], 1, *img.shape[2:])
        m[:, :, self.y - 1 : self.y + 2, self.x - 1 : self.x + 2] = 1.0
        return {"logits": m, "mask": m}


def test_detector_skeletons_are_cropped_like_the_samples(dataset):
    from gthd.benchmark.evaluate import detector_skeleton_crops
    from gthd.dataset.samples import to_crop

    size, spot = (128, 96), (64, 40)
    crops = detector_skeleton_crops(SpotDetector(*spot), str(dataset), "test", size=size)
    rows, _, _, cb = _test_rows(dataset)
    assert sorted(crops) == sorted(rows.tolist())  # every test hand sample, nothing else
    with open_dataset(dataset) as f:
        W, H = f["meta/image_size"][rows[0]]
    frame_pt = (np.array(spot, float) + 0.5) * [W / size[0], H / size[1]] - 0.5  # the spot's centre in the frame
    checked = 0
    for row, box in zip(rows, cb):
        c = crops[int(row)]
        assert c.shape == (128, 128) and c.dtype == np.float32
        expected = to_crop(frame_pt[None], box)[0]
        if np.all((expected > 10) & (expected < 118)) and (box[2] - box[0]) < 3 * 128:
            ys, xs = np.mgrid[:128, :128]
            centroid = np.array([(xs * c).sum(), (ys * c).sum()]) / c.sum()
            # the spot is 3 detector px: its centre lands within a fraction of one of them
            assert np.linalg.norm(centroid - expected) < 0.2 * 128 / (box[2] - box[0]) * (W / size[0]) + 0.5
            checked += 1
        elif np.all((expected < -20) | (expected > 148)):
            assert c.max() == 0  # far outside this crop: nothing of it
    assert checked > 0


class RedDetector(torch.nn.Module):
    """A "detector" whose mask is its input's red channel: what each pass of
    detector_skeleton_crops shows it can be compared with the sample's crop itself."""

    def forward(self, img):
        return {"logits": img[:, :1], "mask": img[:, :1]}


def test_both_skeleton_passes_see_the_samples_crop(dataset):
    from gthd.benchmark.evaluate import detector_skeleton_crops
    from gthd.dataset.torch_dataset import HandDataset

    ds = HandDataset(str(dataset), "test", skeleton=None)
    red = {int(ds.indices[i]): ds[i]["image"][0].numpy() for i in range(len(ds))}  # (128, 128) each
    on_crop = detector_skeleton_crops(RedDetector(), str(dataset), "test", on="crop")
    assert sorted(on_crop) == sorted(red) and all(np.array_equal(on_crop[r], red[r]) for r in red)  # exactly the crop
    with open_dataset(dataset) as f:
        W, H = (int(v) for v in f["meta/image_size"][0])
    on_frame = detector_skeleton_crops(RedDetector(), str(dataset), "test", size=(W, H), on="frame")
    # the whole frame's mask cropped like the sample: the same picture, but for JPEG and resampling
    diffs = [np.abs(on_frame[r] - red[r]).mean() for r in red]
    assert np.median(diffs) < 0.03, np.median(diffs)
    with pytest.raises(ValueError, match="frame or crop"):
        detector_skeleton_crops(RedDetector(), str(dataset), "test", on="image")


def test_the_pipeline_skeleton_replaces_the_true_one(dataset):
    from gthd.benchmark.evaluate import detector_skeleton_crops

    torch.manual_seed(0)
    model = create_model("multiscale_skeleton", width=4)
    empty = {row: np.zeros((128, 128), np.float32) for row in detector_skeleton_crops(SpotDetector(1, 1), str(dataset), "test", size=(64, 48))}
    a = evaluate_pose(model, "multiscale_skeleton", str(dataset), "test", skeletons=empty)
    b = evaluate_pose(model, "multiscale_skeleton", str(dataset), "test")
    assert not np.array_equal(a["predictions"], b["predictions"])  # the channel is used
    c = evaluate_pose(model, "multiscale_skeleton", str(dataset), "test", skeletons=empty)
    np.testing.assert_array_equal(a["predictions"], c["predictions"])


def test_skeleton_boxes_keep_broken_fingers_and_grow_by_the_margin():
    from gthd.benchmark.evaluate import skeleton_boxes

    m = np.zeros((1, 60, 80), np.float32)
    m[0, 10:30, 10:30] = 1  # the palm: 400 px
    m[0, 35:50, 12:14] = 1  # a finger the threshold cut off: 30 px (>= 0.2 x 400? no: dropped)
    m[0, 5:8, 60:62] = 1  # a blob: 6 px, dropped
    m[0, 32:52, 40:45] = 1  # a finger of 100 px: kept (>= 0.2 x 400)
    box = skeleton_boxes(m, box_margin=0.0)[0]
    np.testing.assert_allclose(box, [9.5, 9.5, 44.5, 51.5])
    grown = skeleton_boxes(m, box_margin=0.1)[0]
    np.testing.assert_allclose(grown, box + np.array([-1, -1, 1, 1]) * 0.1 * 42)
    assert np.isnan(skeleton_boxes(np.zeros((1, 8, 8)))).all()


def test_threshold_sweep_finds_the_separating_threshold():
    from gthd.benchmark.evaluate import threshold_sweep

    scores = np.array([0, 3, 5, 200, 250, 300, 400])
    has = np.array([0, 0, 0, 1, 1, 1, 1], bool)
    ts, f1 = threshold_sweep(scores, has, n=50)
    ts, f1 = np.array(ts), np.array(f1)
    assert ts[0] == 0 and ts[-1] == pytest.approx(np.percentile([200, 250, 300, 400], 99))
    assert np.all(f1[(ts >= 5) & (ts < 200)] == 1.0)  # any threshold between the groups is perfect
    assert f1[0] < 1.0 and f1[-1] < 1.0  # too low: NoHand called hands; too high: hands missed


def test_the_qualitative_figure_has_a_column_per_method_and_the_truth(dataset):
    from gthd.benchmark.figures import qualitative_figure

    rows, kc, vis, _ = _test_rows(dataset)
    res = {"a": {"predictions": kc + 3.0, "rows": rows}, "b": {"predictions": kc, "rows": rows}}
    img = qualitative_figure(str(dataset), res, n=4, tile=96)
    assert img.shape == (28 + 4 * 100, 3 * 100, 3)
    # method "b" predicts the truth: its tiles equal the ground-truth column's but for the error label
    y = 28 + 40
    assert np.array_equal(img[y : y + 56, 100:196], img[y : y + 56, 200:296])
    assert not np.array_equal(img[y : y + 56, 0:96], img[y : y + 56, 200:296])
    with pytest.raises(ValueError, match="other samples"):
        qualitative_figure(str(dataset), {"a": res["a"], "c": {"predictions": kc[1:], "rows": rows[1:]}})


def test_the_constant_row_is_the_training_mean_pose(dataset):
    from gthd.benchmark.evaluate import evaluate_constant, mean_pose
    from gthd.dataset.torch_dataset import HandDataset

    mean = mean_pose(str(dataset), "train")
    train = HandDataset(str(dataset), "train", skeleton=None)
    j = 8  # one joint by hand: the mean of its visible crop positions
    assert np.allclose(mean[j], train.keypoints[train.visible[:, j], j].mean(0), atol=1e-4)
    s = evaluate_constant(mean, str(dataset), "test")
    rows, kc, vis, _ = _test_rows(dataset)
    err = np.linalg.norm(kc - mean, axis=-1)[vis]
    assert s["mjpe_px"] == pytest.approx(err.mean(), rel=1e-5)
    assert s["median_px"] == pytest.approx(np.median(err), rel=1e-5)
    assert s["infer_ms"] == 0.0


class LabelPipeline:
    """A stand-in for the detector + pose pipeline, called on the test hand frames in row
    order: it "finds" the hand in every other frame and returns its true keypoints shifted
    by a known offset (frame px), so the end-to-end scores are known exactly."""

    def __init__(self, keypoints, shift):
        self.keypoints, self.shift, self.calls = keypoints, np.asarray(shift, float), 0

    def __call__(self, frame):
        from gthd.benchmark.pipeline import Detection

        assert frame.ndim == 3  # the stored frame, decoded
        i, self.calls = self.calls, self.calls + 1
        if i % 2:
            return Detection(False, 0, None, None)
        return Detection(True, 100, np.zeros(4), self.keypoints[i] + self.shift)


def test_end_to_end_scores_count_a_missed_hand_as_wrong(dataset):
    from gthd.benchmark.evaluate import evaluate_end_to_end

    rows, kc, vis, cb = _test_rows(dataset)
    with open_dataset(dataset) as f:
        kp = f["labels/keypoints"][rows]
    s = evaluate_end_to_end(LabelPipeline(kp, (3.0, 4.0)), str(dataset), "test")  # 5 px off in the frame
    found = np.arange(len(rows)) % 2 == 0
    assert s["missed"] == int((~found).sum()) and s["found"] == pytest.approx(found.mean())
    counted = vis & found[:, None]
    assert s["epe_px"] == pytest.approx(5.0, abs=1e-4)  # over the found frames only
    side = cb[:, 2] - cb[:, 0]  # the same 5 px in each sample's own crop
    expected = np.sum(np.where(counted, 5.0 * 128 / side[:, None], 0)) / counted.sum()
    assert s["mjpe_px"] == pytest.approx(expected, rel=1e-4)
    # PCK over every hand frame: the found ones are right at a loose threshold, the missed wrong
    assert s["pck_0.2"] <= counted.sum() / vis.sum() + 1e-9
    assert s["pck_0.2"] >= 0.9 * counted.sum() / vis.sum()
