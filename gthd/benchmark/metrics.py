"""Metrics of the paper's two tasks, as pure functions (mmpose's
``evaluation/functional/keypoint_eval.py``): no state, no classes; an accumulator or a
training loop just calls them. "Skeleton-aware multi-scale heatmap regression",
section IV-A, names them: hand detection is scored with Accuracy, Precision, Recall, F1
and the ROC AUC of the Hand/NoHand decision, and with the IoU of the hand boxes; pose is
scored with PCK (threshold normalised by the hand box size) and the mean joint pixel
error (MJPE) on the 128 x 128 input crop.

Every function takes NumPy arrays or torch tensors (any device; converted with
``x.detach().cpu()``) and answers in NumPy / Python floats. Shapes are checked at the
door and a wrong one raises ``ValueError`` saying what it got.

Conventions (docs/conventions.md):

- Pixels are OpenCV's: (u, v) = (column, row), the centre of the top-left pixel at
  (0, 0); an H x W image spans [-0.5, W - 0.5] x [-0.5, H - 0.5].
- Boxes are ``xyxy`` floats in those pixels, continuous coordinates: width ``x1 - x0``,
  area ``(x1 - x0) * (y1 - y0)``, no ``+ 1``. A box with a NaN is "no box" (a NoHand
  sample, or nothing detected).
- Pose: ``keypoints`` (N, J, 2) pixels, ``mask`` (N, J) bool visibility. A joint counts
  only where ``mask`` is true AND its ground truth is finite: invisible joints never
  count, in any metric. A visible joint whose *prediction* is not finite counts as wrong
  in PCK and makes the error means NaN (a failure is never silently dropped).
- Pose means are pooled over all counted joints of all samples (each joint weighs the
  same), not averaged per sample or per joint first.
- Detection: a sample is predicted positive (Hand) when ``score >= threshold``
  (sklearn's rule); ``labels`` are bool or 0/1.
"""

from __future__ import annotations

import numpy as np

from ..dataset.codec import boxes_from_masks, foreground_pixels  # noqa: F401  (the masks' decoding: re-exported)
from ..geometry import box_iou

__all__ = [
    "auc",
    "best_threshold",
    "binary_metrics",
    "box_size",
    "boxes_from_masks",
    "epe",
    "foreground_pixels",
    "iou",
    "joint_errors",
    "mjpe",
    "pck",
    "pck_curve",
    "per_joint_error",
    "roc_auc",
    "roc_curve",
]


# ---------------------------------------------------------------------------- checks


def _np(x, dtype=None) -> np.ndarray:
    """NumPy view of an array-like or a torch tensor (detached, on the CPU)."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _shape(x) -> tuple:
    return tuple(np.shape(x))


def _bool(x: np.ndarray, name: str) -> np.ndarray:
    """A bool array from bool or 0/1 values; anything else raises."""
    if x.dtype == bool:
        return x
    if x.size and not np.isin(x, (0, 1)).all():
        raise ValueError(f"{name}: expected bool or 0/1 values, got values {np.unique(x)[:5]}")
    return x.astype(bool)


def _pose_inputs(pred, gt, mask) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked float64 (N, J, 2), (N, J, 2) and the counted-joint mask (N, J) bool."""
    pred, gt, mask = _np(pred, np.float64), _np(gt, np.float64), _np(mask)
    if pred.ndim != 3 or pred.shape[2] != 2:
        raise ValueError(f"pred: expected (N, J, 2), got {_shape(pred)}")
    if gt.shape != pred.shape:
        raise ValueError(f"gt: expected {pred.shape} like pred (N, J, 2), got {_shape(gt)}")
    if mask.shape != pred.shape[:2]:
        raise ValueError(f"mask: expected (N, J) = {pred.shape[:2]}, got {_shape(mask)}")
    mask = _bool(mask, "mask") & np.isfinite(gt).all(axis=2)
    return pred, gt, mask


def _norm(norm, mask: np.ndarray) -> np.ndarray:
    """(N,) float64 normaliser from a scalar or (N,); positive where a joint counts."""
    n = mask.shape[0]
    norm = _np(norm, np.float64)
    if norm.ndim == 0:
        norm = np.full(n, float(norm))
    if norm.shape != (n,):
        raise ValueError(f"norm: expected a scalar or (N,) = ({n},), got {_shape(norm)}")
    used = mask.any(axis=1)
    bad = np.flatnonzero(used & ~(np.isfinite(norm) & (norm > 0)))
    if len(bad):
        raise ValueError(f"norm: must be finite and > 0 for samples with a visible joint; samples {bad[:5].tolist()} have {norm[bad[:5]].tolist()}")
    return norm


def _scores_labels(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """Checked (N,) float64 finite scores and (N,) bool labels, N >= 1."""
    scores, labels = _np(scores, np.float64), _np(labels)
    if scores.ndim != 1:
        raise ValueError(f"scores: expected (N,), got {_shape(scores)}")
    if labels.shape != scores.shape:
        raise ValueError(f"labels: expected ({len(scores)},) like scores, got {_shape(labels)}")
    if len(scores) == 0:
        raise ValueError("scores: expected at least one sample, got (0,)")
    if not np.isfinite(scores).all():
        raise ValueError(f"scores: expected finite values, got {int((~np.isfinite(scores)).sum())} non-finite")
    return scores, _bool(labels, "labels")


def _both_classes(labels: np.ndarray) -> tuple[int, int]:
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"labels: ROC needs both classes, got {n_pos} positive and {n_neg} negative")
    return n_pos, n_neg


# ------------------------------------------------------------------------------ pose


def joint_errors(pred, gt, mask) -> np.ndarray:
    """Euclidean distance of every joint to its ground truth.

    Args:
        pred, gt: (N, J, 2) pixels.
        mask: (N, J) bool, true where the joint is visible.

    Returns:
        (N, J) float64 pixels; NaN where the joint does not count (masked out, or its
        ground truth is not finite).
    """
    pred, gt, mask = _pose_inputs(pred, gt, mask)
    err = np.linalg.norm(pred - gt, axis=2)  # (N, J)
    return np.where(mask, err, np.nan)


def _normalised(pred, gt, mask, norm) -> tuple[np.ndarray, np.ndarray]:
    """(errors / norm) of the counted joints, flat (M,), and the mask (N, J)."""
    pred, gt, mask = _pose_inputs(pred, gt, mask)
    norm = _norm(norm, mask)
    err = np.linalg.norm(pred - gt, axis=2) / norm[:, None]  # (N, J)
    return err[mask], mask  # NaN predictions stay NaN: never < thr


def pck(pred, gt, mask, thr: float, norm) -> float:
    """Probability of Correct Keypoint: the share of visible joints with
    ``error / norm_n < thr`` (strict).

    Args:
        pred, gt: (N, J, 2) pixels. mask: (N, J) bool visibility.
        thr: threshold on the normalised error, e.g. 0.1 of the hand box size.
        norm: (N,) per-sample normaliser in pixels (or a scalar for all). The paper
            divides by the size of the hand bounding box: pass :func:`box_size` of the
            ground-truth boxes, in the same pixels as the keypoints.

    Returns:
        PCK in [0, 1], pooled over all visible joints (mmpose's ``keypoint_pck_accuracy``
        averages per joint instead); NaN when no joint is visible.
    """
    err, mask = _normalised(pred, gt, mask, norm)
    if len(err) == 0:
        return float("nan")
    return float(np.mean(err < float(thr)))


def pck_curve(pred, gt, mask, norm, thresholds) -> np.ndarray:
    """PCK at each of ``thresholds`` (the paper's Figure 7).

    Args:
        pred, gt: (N, J, 2) pixels. mask: (N, J) bool. norm: (N,) or scalar, as in
            :func:`pck`. thresholds: (T,) normalised thresholds.

    Returns:
        (T,) float64 PCK values; all NaN when no joint is visible.
    """
    thresholds = _np(thresholds, np.float64)
    if thresholds.ndim != 1:
        raise ValueError(f"thresholds: expected (T,), got {_shape(thresholds)}")
    err, mask = _normalised(pred, gt, mask, norm)
    if len(err) == 0:
        return np.full(len(thresholds), np.nan)
    return (err[None, :] < thresholds[:, None]).mean(axis=1)  # (T, M) -> (T,)


def auc(thresholds, values) -> float:
    """Normalised area under a curve such as :func:`pck_curve`: the trapezoid integral
    over [t_0, t_max] divided by ``t_max - t_0``, so PCK = 1 everywhere gives 1.

    (mmpose's ``keypoint_auc`` is instead the mean of the PCK values at evenly spaced
    thresholds; on a fine even grid both agree.)

    Args:
        thresholds: (T,) strictly increasing, T >= 2. values: (T,) finite.
    """
    t, v = _np(thresholds, np.float64), _np(values, np.float64)
    if t.ndim != 1 or len(t) < 2:
        raise ValueError(f"thresholds: expected (T,) with T >= 2, got {_shape(t)}")
    if v.shape != t.shape:
        raise ValueError(f"values: expected {t.shape} like thresholds, got {_shape(v)}")
    if not np.all(np.diff(t) > 0):
        raise ValueError("thresholds: expected strictly increasing values")
    if not np.isfinite(v).all():
        raise ValueError("values: expected finite values (was no joint visible?)")
    area = np.sum((v[1:] + v[:-1]) / 2 * np.diff(t))
    return float(area / (t[-1] - t[0]))


def box_size(boxes, kind: str = "max") -> np.ndarray:
    """Size of ``xyxy`` boxes, the PCK normaliser ("the size of the hand bounding box").

    Args:
        boxes: (N, 4) xyxy pixels.
        kind: ``"max"``: ``max(w, h)`` (default: the side of the square a hand box is
            cropped to), or ``"diag"``: ``sqrt(w^2 + h^2)``.

    Returns:
        (N,) float64 pixels; NaN where the box is NaN.
    """
    b = _np(boxes, np.float64)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes: expected (N, 4) xyxy, got {_shape(b)}")
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    if kind == "max":
        return np.maximum(w, h)  # NaN propagates
    if kind == "diag":
        return np.hypot(w, h)
    raise ValueError(f"kind: expected 'max' or 'diag', got {kind!r}")


def mjpe(pred, gt, mask) -> float:
    """Mean joint pixel error: the mean Euclidean error over all visible joints.

    The paper's Table II reports it in pixels of the 128 x 128 network input: pass the
    crop coordinates (``labels/keypoints_crop`` and the prediction in the crop) to get
    that unit. For original-image pixels use :func:`epe` (the same computation).

    Args:
        pred, gt: (N, J, 2) pixels. mask: (N, J) bool.

    Returns:
        Pixels; NaN when no joint is visible, or when a visible joint's prediction is
        not finite.
    """
    pred, gt, mask = _pose_inputs(pred, gt, mask)
    err = np.linalg.norm(pred - gt, axis=2)[mask]  # (M,)
    return float(err.mean()) if len(err) else float("nan")


def epe(pred, gt, mask) -> float:
    """End-point error in original-image pixels: exactly :func:`mjpe`, named for
    keypoints given in the frame (``labels/keypoints``) rather than the 128 crop, so a
    report says which unit it holds.

    Args:
        pred, gt: (N, J, 2) frame pixels. mask: (N, J) bool.
    """
    return mjpe(pred, gt, mask)


def per_joint_error(pred, gt, mask) -> np.ndarray:
    """Mean pixel error of each joint over the samples where it is visible.

    Args:
        pred, gt: (N, J, 2) pixels. mask: (N, J) bool.

    Returns:
        (J,) float64 pixels; NaN for a joint never visible, or with a non-finite
        prediction where visible.
    """
    pred, gt, mask = _pose_inputs(pred, gt, mask)
    err = np.linalg.norm(pred - gt, axis=2)  # (N, J)
    total = np.where(mask, err, 0.0).sum(axis=0)  # NaN predictions where visible stay NaN
    count = mask.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


# ------------------------------------------------------------------------- detection


def iou(box_a, box_b) -> np.ndarray:
    """Intersection over union of paired ``xyxy`` boxes.

    Boxes are continuous coordinates: area ``(x1 - x0) * (y1 - y0)``, no ``+ 1``; a box
    with ``x1 < x0`` or ``y1 < y0`` is empty. A box with any NaN is "no box" (empty):
    its IoU with a real box is 0 (a miss, or a false detection); with another empty box
    it is NaN (0 / 0: nothing to compare). The paper's mean IoU is over the samples
    that have a hand: ``np.mean(iou(pred, gt)[has_hand])``.

    Args:
        box_a, box_b: (N, 4) xyxy pixels.

    Returns:
        (N,) float64 in [0, 1]; 0 where the boxes do not overlap, NaN where both are
        empty.
    """
    a, b = _np(box_a, np.float64), _np(box_b, np.float64)
    if a.ndim != 2 or a.shape[1] != 4:
        raise ValueError(f"box_a: expected (N, 4) xyxy, got {_shape(a)}")
    if b.shape != a.shape:
        raise ValueError(f"box_b: expected {a.shape} like box_a, got {_shape(b)}")
    a = np.where(np.isnan(a).any(axis=1, keepdims=True), 0.0, a)  # "no box" -> zero area
    b = np.where(np.isnan(b).any(axis=1, keepdims=True), 0.0, b)
    return box_iou(a, b)


def binary_metrics(scores, labels, threshold: float) -> dict:
    """Accuracy, precision, recall and F1 of the decision ``score >= threshold``.

    Zero divisions give 0, never NaN or a warning: precision is 0 when nothing is
    predicted positive, recall 0 when no sample is positive, F1 0 when both are 0.

    Args:
        scores: (N,) finite, e.g. :func:`foreground_pixels` of the predicted skeletons.
        labels: (N,) bool or 0/1, true for Hand. threshold: the decision threshold.

    Returns:
        ``{"accuracy", "precision", "recall", "f1"}`` floats and ``{"tp", "fp", "tn",
        "fn"}`` ints.
    """
    scores, labels = _scores_labels(scores, labels)
    pos = scores >= threshold
    tp = int(np.sum(pos & labels))
    fp = int(np.sum(pos & ~labels))
    fn = int(np.sum(~pos & labels))
    tn = int(np.sum(~pos & ~labels))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": (tp + tn) / len(scores),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve, from ranks (Mann-Whitney U): the probability that a
    random positive scores above a random negative, ties counting one half. Equals
    sklearn's ``roc_auc_score``.

    Args:
        scores: (N,) finite. labels: (N,) bool or 0/1 with both classes present.
    """
    scores, labels = _scores_labels(scores, labels)
    n_pos, n_neg = _both_classes(labels)
    _, inv, counts = np.unique(scores, return_inverse=True, return_counts=True)
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based mean rank of each value
    ranks = avg_rank[inv.reshape(-1)]
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve at every distinct score (sklearn's ``roc_curve`` with
    ``drop_intermediate=False``).

    Args:
        scores: (N,) finite. labels: (N,) bool or 0/1 with both classes present.

    Returns:
        ``fpr, tpr, thresholds``, each (K + 1,) for K distinct scores: ``thresholds``
        decreasing, the first ``inf`` (nothing positive, the point (0, 0)), then each
        distinct score ``t`` with the rates of the decision ``score >= t``, ending at
        (1, 1). The trapezoid area under (fpr, tpr) equals :func:`roc_auc`.
    """
    scores, labels = _scores_labels(scores, labels)
    n_pos, n_neg = _both_classes(labels)
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # last index of each distinct score
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    fpr = np.r_[0.0, fps / n_neg]
    tpr = np.r_[0.0, tps / n_pos]
    return fpr, tpr, np.r_[np.inf, s[last]]


def best_threshold(scores, labels, metric: str = "f1") -> float:
    """The threshold that maximises ``metric`` of :func:`binary_metrics` on these
    (validation) samples, as the paper chooses the foreground-pixel count that separates
    Hand from NoHand on validation data.

    Every cut between consecutive distinct scores is tried. The threshold returned is the
    middle of its cut, ``(s_below + s_above) / 2``, the value farthest from both
    neighbouring samples; the cut below every score returns the lowest score (all
    positive) and the cut above every score returns ``inf`` (nothing positive). When
    several cuts tie, the median one (by threshold) is taken.

    Args:
        scores: (N,) finite. labels: (N,) bool or 0/1.
        metric: ``"f1"`` or ``"accuracy"``.
    """
    if metric not in ("f1", "accuracy"):
        raise ValueError(f"metric: expected 'f1' or 'accuracy', got {metric!r}")
    scores, labels = _scores_labels(scores, labels)
    uniq, inv = np.unique(scores, return_inverse=True)  # ascending
    inv = inv.reshape(-1)
    n_pos = int(labels.sum())
    pos_at = np.bincount(inv, weights=labels, minlength=len(uniq))
    all_at = np.bincount(inv, minlength=len(uniq))
    # Cut k (k = 0..K): predicted positive = the scores uniq[k:], i.e. score >= uniq[k];
    # cut K predicts nothing positive.
    tp = np.r_[np.cumsum(pos_at[::-1])[::-1], 0.0]  # (K + 1,)
    npred = np.r_[np.cumsum(all_at[::-1])[::-1], 0.0]
    fp = npred - tp
    fn = n_pos - tp
    if metric == "accuracy":
        tn = (len(scores) - n_pos) - fp
        value = (tp + tn) / len(scores)
    else:
        denom = 2 * tp + fp + fn  # F1 = 2 tp / (2 tp + fp + fn), 0 when tp = 0
        value = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    best = np.flatnonzero(value >= value.max() - 1e-12)
    k = int(best[(len(best) - 1) // 2])
    if k == 0:
        return float(uniq[0])
    if k == len(uniq):
        return float("inf")
    return float((uniq[k - 1] + uniq[k]) / 2)
