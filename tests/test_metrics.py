"""gthd.benchmark.metrics on hand-made cases whose answers are worked out by hand."""

import numpy as np
import pytest

from gthd.benchmark import metrics as M


def toy_pose():
    """One sample, 3 joints, errors 3, 5 and 10 px (3-4-5 and 6-8-10 triangles)."""
    gt = np.array([[[10.0, 10.0], [20.0, 20.0], [30.0, 30.0]]])  # (1, 3, 2)
    pred = gt + np.array([[[3.0, 0.0], [3.0, 4.0], [6.0, 8.0]]])
    mask = np.ones((1, 3), bool)
    return pred, gt, mask


# ------------------------------------------------------------------------------ pose


def test_joint_errors_known_and_nan_where_masked():
    pred, gt, mask = toy_pose()
    np.testing.assert_allclose(M.joint_errors(pred, gt, mask), [[3.0, 5.0, 10.0]])
    mask[0, 1] = False
    e = M.joint_errors(pred, gt, mask)
    assert np.isnan(e[0, 1]) and e[0, 0] == 3.0 and e[0, 2] == 10.0


@pytest.mark.parametrize(
    "thr, expected",
    [(0.02, 0.0), (0.03, 0.0), (0.031, 1 / 3), (0.05, 1 / 3), (0.06, 2 / 3), (0.1, 2 / 3), (0.11, 1.0)],
)
def test_pck_three_joint_toy(thr, expected):
    # norm 100 px: normalised errors 0.03, 0.05, 0.10; "correct" is strictly below thr.
    pred, gt, mask = toy_pose()
    assert M.pck(pred, gt, mask, thr, np.array([100.0])) == pytest.approx(expected)
    assert M.pck(pred, gt, mask, thr, 100.0) == pytest.approx(expected)  # scalar norm


def test_pck_uses_each_samples_norm():
    pred, gt, _ = toy_pose()
    pred2, gt2, mask2 = np.concatenate([pred, pred]), np.concatenate([gt, gt]), np.ones((2, 3), bool)
    # sample 0 at norm 100 (0.03, 0.05, 0.10), sample 1 at norm 50 (0.06, 0.10, 0.20)
    assert M.pck(pred2, gt2, mask2, 0.08, [100.0, 50.0]) == pytest.approx(3 / 6)


def test_masked_joints_never_count():
    pred, gt, mask = toy_pose()
    pred[0, 2] += 1000.0  # a wild prediction on an invisible joint...
    mask[0, 2] = False
    assert M.pck(pred, gt, mask, 0.06, 100.0) == pytest.approx(1.0)  # ...is ignored
    assert M.mjpe(pred, gt, mask) == pytest.approx(4.0)
    np.testing.assert_allclose(M.per_joint_error(pred, gt, mask), [3.0, 5.0, np.nan])
    # a NaN ground truth is not counted either, even when flagged visible
    pred, gt, mask = toy_pose()
    gt[0, 1] = np.nan
    assert M.mjpe(pred, gt, mask) == pytest.approx((3.0 + 10.0) / 2)
    assert np.isnan(M.joint_errors(pred, gt, mask)[0, 1])
    # a NoHand sample (no visible joint, NaN box) in the batch needs no valid norm
    p2 = np.concatenate([toy_pose()[0], np.zeros((1, 3, 2))])
    g2 = np.concatenate([toy_pose()[1], np.full((1, 3, 2), np.nan)])
    m2 = np.array([[True, True, True], [False, False, False]])
    assert M.pck(p2, g2, m2, 0.06, [100.0, np.nan]) == pytest.approx(2 / 3)


def test_no_visible_joint_gives_nan_and_bad_pred_is_a_miss():
    pred, gt, _ = toy_pose()
    none = np.zeros((1, 3), bool)
    assert np.isnan(M.pck(pred, gt, none, 0.1, 100.0))
    assert np.isnan(M.mjpe(pred, gt, none))
    assert np.isnan(M.pck_curve(pred, gt, none, 100.0, [0.1, 0.2])).all()
    pred[0, 0] = np.nan  # a failed prediction on a visible joint
    assert M.pck(pred, gt, np.ones((1, 3), bool), 1.0, 100.0) == pytest.approx(2 / 3)
    assert np.isnan(M.mjpe(pred, gt, np.ones((1, 3), bool)))  # never silently dropped


def test_pck_curve_matches_pck_and_auc():
    pred, gt, mask = toy_pose()
    t = np.array([0.0, 0.04, 0.08, 0.12])
    curve = M.pck_curve(pred, gt, mask, np.array([100.0]), t)
    np.testing.assert_allclose(curve, [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(curve, [M.pck(pred, gt, mask, x, 100.0) for x in t])
    # a straight line from 0 to 1 over the range: area 1/2
    assert M.auc(t, curve) == pytest.approx(0.5)


def test_auc_step_and_constant():
    t = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    # trapezoids: 0 + 0.5 + 1 + 1 = 2.5 over a range of 4
    assert M.auc(t, [0, 0, 1, 1, 1]) == pytest.approx(0.625)
    assert M.auc(t, np.ones(5)) == pytest.approx(1.0)
    assert M.auc([0.2, 0.5], [1.0, 1.0]) == pytest.approx(1.0)  # t0 need not be 0
    with pytest.raises(ValueError, match="increasing"):
        M.auc([0.0, 0.0, 1.0], [0, 1, 1])


def test_mjpe_epe_per_joint_of_known_offsets():
    gt = np.zeros((2, 2, 2))
    pred = gt.copy()
    pred[0, 0] = [3, 4]  # 5
    pred[0, 1] = [0, 1]  # 1
    pred[1, 0] = [6, 8]  # 10
    pred[1, 1] = [0, 3]  # 3
    mask = np.ones((2, 2), bool)
    assert M.mjpe(pred, gt, mask) == pytest.approx(19 / 4)
    assert M.epe(pred, gt, mask) == M.mjpe(pred, gt, mask)
    np.testing.assert_allclose(M.per_joint_error(pred, gt, mask), [7.5, 2.0])
    mask[1, 0] = False
    assert M.mjpe(pred, gt, mask) == pytest.approx(9 / 3)  # pooled over the 3 visible joints
    np.testing.assert_allclose(M.per_joint_error(pred, gt, mask), [5.0, 2.0])


def test_box_size():
    boxes = np.array([[0, 0, 30, 40], [10, 10, 20, 15], [np.nan] * 4])
    np.testing.assert_allclose(M.box_size(boxes), [40, 10, np.nan])
    np.testing.assert_allclose(M.box_size(boxes, "diag"), [50, np.hypot(10, 5), np.nan])
    with pytest.raises(ValueError, match="kind"):
        M.box_size(boxes, "area")


def test_torch_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    pred, gt, mask = toy_pose()
    tp = torch.tensor(pred, requires_grad=True)
    assert M.mjpe(tp, torch.tensor(gt), torch.tensor(mask)) == pytest.approx(6.0)
    assert M.pck(tp, torch.tensor(gt), torch.tensor(mask), 0.06, torch.tensor([100.0])) == pytest.approx(2 / 3)


# ------------------------------------------------------------------------------ iou


def test_iou_known_values():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    b = np.array(
        [
            [0, 0, 10, 10],  # identical: 1
            [20, 20, 30, 30],  # disjoint: 0
            [5, 0, 15, 10],  # half overlap: 50 / 150 = 1/3
            [0, 0, 5, 10],  # inside, half the area: 50 / 100
            [10, 0, 20, 10],  # touching edges: 0
        ],
        float,
    )
    np.testing.assert_allclose(M.iou(a, b), [1.0, 0.0, 1 / 3, 0.5, 0.0])
    np.testing.assert_allclose(M.iou(b, a), M.iou(a, b))  # symmetric


def test_iou_nan_boxes():
    a = np.array([[0, 0, 10, 10], [np.nan] * 4, [np.nan] * 4], float)
    b = np.array([[np.nan] * 4, [0, 0, 10, 10], [np.nan] * 4], float)
    with np.errstate(all="raise"):  # no warning either
        r = M.iou(a, b)
    assert r[0] == 0.0 and r[1] == 0.0 and np.isnan(r[2])


# ------------------------------------------------------------------------ detection


def test_binary_metrics_small_confusion():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1])
    labels = np.array([1, 1, 0, 1, 1, 0, 0, 0])
    r = M.binary_metrics(scores, labels, 0.5)  # predicted positive: the first 4
    assert (r["tp"], r["fp"], r["tn"], r["fn"]) == (3, 1, 3, 1)
    assert r["accuracy"] == pytest.approx(6 / 8)
    assert r["precision"] == pytest.approx(3 / 4)
    assert r["recall"] == pytest.approx(3 / 4)
    assert r["f1"] == pytest.approx(3 / 4)
    r = M.binary_metrics(scores, labels, 0.8)  # score >= threshold is positive
    assert (r["tp"], r["fp"]) == (2, 0) and r["precision"] == 1.0 and r["recall"] == 0.5
    assert r["f1"] == pytest.approx(2 * 1 * 0.5 / 1.5)


def test_binary_metrics_zero_division():
    r = M.binary_metrics([0.1, 0.2], [True, False], 1.0)  # nothing predicted positive
    assert r["precision"] == 0.0 and r["recall"] == 0.0 and r["f1"] == 0.0 and r["accuracy"] == 0.5
    r = M.binary_metrics([0.1, 0.2], [0, 0], 0.0)  # no positive sample
    assert r["recall"] == 0.0 and r["precision"] == 0.0 and r["f1"] == 0.0 and r["fp"] == 2


def brute_force_auc(scores, labels):
    pos, neg = scores[labels], scores[~labels]
    diff = pos[:, None] - neg[None, :]
    return ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_equals_pair_count_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = 200
    labels = rng.random(n) < 0.4
    scores = np.round(rng.normal(labels * 0.7, 1.0), 1)  # rounding makes many ties
    assert len(np.unique(scores)) < n
    expected = brute_force_auc(scores, labels)
    assert M.roc_auc(scores, labels) == pytest.approx(expected, abs=1e-12)
    fpr, tpr, _ = M.roc_curve(scores, labels)
    area = np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2)
    assert area == pytest.approx(expected, abs=1e-12)


def test_roc_auc_perfect_inverted_and_all_tied():
    s = np.array([1.0, 2.0, 3.0, 10.0, 11.0])
    y = np.array([0, 0, 0, 1, 1])
    assert M.roc_auc(s, y) == 1.0
    assert M.roc_auc(-s, y) == 0.0
    assert M.roc_auc(np.ones(5), y) == 0.5
    with pytest.raises(ValueError, match="both classes"):
        M.roc_auc(s, np.ones(5))


def test_roc_curve_known_points():
    fpr, tpr, thr = M.roc_curve([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])  # sklearn's doc example
    np.testing.assert_allclose(thr, [np.inf, 0.8, 0.4, 0.35, 0.1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])


def test_best_threshold_separable_is_the_gap_middle():
    # pixel counts as in the paper: NoHand below ~150, Hand above ~450
    scores = np.array([0, 12, 80, 150, 451, 600, 900, 1200])
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    for metric in ("f1", "accuracy"):
        t = M.best_threshold(scores, labels, metric)
        assert t == pytest.approx(300.5)
        assert M.binary_metrics(scores, labels, t)[metric] == 1.0


@pytest.mark.parametrize("metric", ["f1", "accuracy"])
def test_best_threshold_beats_every_other(metric):
    rng = np.random.default_rng(3)
    labels = rng.random(60) < 0.5
    scores = np.round(rng.normal(labels * 1.0, 1.0), 1)
    t = M.best_threshold(scores, labels, metric)
    best = M.binary_metrics(scores, labels, t)[metric]
    candidates = np.r_[np.unique(scores), np.inf]
    assert best == pytest.approx(max(M.binary_metrics(scores, labels, c)[metric] for c in candidates))
    with pytest.raises(ValueError, match="metric"):
        M.best_threshold(scores, labels, "auc")


# --------------------------------------------------------------------- masks, boxes


def test_foreground_pixels():
    m = np.zeros((3, 8, 8))
    m[0, 1:3, 1:4] = 0.9  # 6 pixels
    m[1, :, :] = 0.5  # not above 0.5
    m[2, 0, 0] = 1.0
    np.testing.assert_array_equal(M.foreground_pixels(m), [6, 0, 1])
    np.testing.assert_array_equal(M.foreground_pixels(m[:, None]), [6, 0, 1])  # (N, 1, H, W)
    np.testing.assert_array_equal(M.foreground_pixels(m, thr=0.4), [6, 64, 1])


def test_boxes_from_masks_rectangle_and_distractor():
    m = np.zeros((3, 40, 50), np.float32)
    m[0, 10:20, 5:25] = 1.0  # the hand: rows 10..19, columns 5..24 (200 px)
    m[0, 30:32, 40:42] = 1.0  # a 4-pixel distractor blob
    m[2, 7, 3] = 0.8  # a single pixel
    boxes = M.boxes_from_masks(m)
    # edges of the extreme pixels: columns 5..24 -> [4.5, 24.5], rows 10..19 -> [9.5, 19.5]
    np.testing.assert_allclose(boxes[0], [4.5, 9.5, 24.5, 19.5])
    assert boxes[0, 2] - boxes[0, 0] == 20 and boxes[0, 3] - boxes[0, 1] == 10  # pixel counts
    assert np.isnan(boxes[1]).all()  # empty mask
    np.testing.assert_allclose(boxes[2], [2.5, 6.5, 3.5, 7.5])  # one pixel: a 1 x 1 box
    # a share low enough keeps the blob too: the union of both regions
    np.testing.assert_allclose(M.boxes_from_masks(m[:1], min_share=0.01)[0], [4.5, 9.5, 41.5, 31.5])


def test_boxes_from_masks_diagonal_line_is_one_region():
    m = np.zeros((1, 20, 20))
    idx = np.arange(3, 15)
    m[0, idx, idx] = 1.0  # a thin diagonal "bone": 8-connected
    m[0, 0:2, 17:20] = 1.0  # a 6-pixel blob
    np.testing.assert_allclose(M.boxes_from_masks(m)[0], [2.5, 2.5, 14.5, 14.5])
    # the box covers the drawn pixels under the pixel convention of iou: IoU with itself is 1
    b = M.boxes_from_masks(m)
    assert M.iou(b, b)[0] == 1.0


# ---------------------------------------------------------------------- shape errors


Z2 = np.zeros((2, 3, 2))
ONES = np.ones((2, 3), bool)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: M.pck(np.zeros((2, 21)), np.zeros((2, 21, 2)), np.ones((2, 21)), 0.1, 1.0), r"pred: expected \(N, J, 2\), got \(2, 21\)"),
        (lambda: M.mjpe(Z2, np.zeros((2, 4, 2)), ONES), r"gt: .*got \(2, 4, 2\)"),
        (lambda: M.joint_errors(Z2, Z2, np.ones(3)), r"mask: expected \(N, J\) = \(2, 3\), got \(3,\)"),
        (lambda: M.pck(Z2, Z2, ONES, 0.1, [1.0, 2.0, 3.0]), r"norm: .*got \(3,\)"),
        (lambda: M.pck(Z2, Z2, ONES, 0.1, [1.0, 0.0]), r"norm: must be finite and > 0.*samples \[1\]"),
        (lambda: M.pck(Z2, Z2, np.full((2, 3), 0.7), 0.1, 1.0), r"mask: expected bool or 0/1"),
        (lambda: M.pck_curve(Z2, Z2, ONES, 1.0, np.zeros((2, 2))), r"thresholds: expected \(T,\), got \(2, 2\)"),
        (lambda: M.auc([0.0, 1.0], [1.0, 1.0, 1.0]), r"values: .*got \(3,\)"),
        (lambda: M.iou(np.zeros((3, 4)), np.zeros((2, 4))), r"box_b: .*got \(2, 4\)"),
        (lambda: M.iou(np.zeros(4), np.zeros(4)), r"box_a: expected \(N, 4\) xyxy, got \(4,\)"),
        (lambda: M.box_size(np.zeros((3, 2))), r"boxes: expected \(N, 4\) xyxy, got \(3, 2\)"),
        (lambda: M.binary_metrics(np.zeros((3, 1)), np.zeros(3), 0.5), r"scores: expected \(N,\), got \(3, 1\)"),
        (lambda: M.roc_auc(np.zeros(3), np.zeros(4)), r"labels: .*got \(4,\)"),
        (lambda: M.roc_auc([0.1, np.nan], [0, 1]), r"scores: expected finite"),
        (lambda: M.roc_curve([0.1, 0.2], [0, 2]), r"labels: expected bool or 0/1"),
        (lambda: M.binary_metrics([], [], 0.5), r"at least one sample"),
        (lambda: M.foreground_pixels(np.zeros((8, 8))), r"masks: expected \(N, H, W\) or \(N, 1, H, W\), got \(8, 8\)"),
        (lambda: M.boxes_from_masks(np.zeros((2, 3, 8, 8))), r"masks: .*got \(2, 3, 8, 8\)"),
        (lambda: M.boxes_from_masks(np.zeros((1, 8, 8)), min_share=0.0), r"min_share"),
    ],
)
def test_shape_errors_say_what_they_got(call, match):
    with pytest.raises(ValueError, match=match):
        call()
