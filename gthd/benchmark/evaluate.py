"""Scoring trained models on a split: pose models on the hand crops (MJPE in crop pixels,
EPE in image pixels, PCK normalised by the hand box, its AUC, per-joint errors, inference
time) and the skeleton detector on whole frames (Hand/NoHand by the count of foreground
pixels against a threshold chosen on the validation split, ROC AUC, box IoU).

The metric functions are :mod:`gthd.benchmark.metrics`; this module only runs models.
"""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader

from ..dataset.codec import BonePrior, SkeletonMaskCodec
from ..dataset.samples import crop, from_crop, to_crop
from ..dataset.schema import CROP_SIZE, open_dataset
from ..dataset.torch_dataset import FrameDataset, HandDataset, split_mask
from ..fileio import FormatError
from ..geometry import rescale_px
from . import metrics
from .models import MODEL_INFO
from .train import make_codec

PCK_THRESHOLDS = np.round(np.linspace(0.0, 0.3, 31), 4)


def model_input(info, batch: dict) -> torch.Tensor:
    """(B, C, H, W): the image, with the skeleton channel appended when the model takes it."""
    x = batch["image"]
    if "skeleton" in info.inputs:
        x = torch.cat([x, batch["skeleton"]], dim=1)
    return x


@torch.no_grad()
def evaluate_pose(
    model: torch.nn.Module,
    name: str,
    dataset: str,
    split: str = "test",
    batch_size: int = 64,
    device: str = "cpu",
    skeletons: dict[int, np.ndarray] | None = None,
    skeleton: str = "thick",
    bone_prior: BonePrior | None = None,
) -> dict:
    """Score a pose model on the hand samples of ``split``.

    The skeleton channel (models that take one) is the true skeleton drawn from the labels
    at ``skeleton`` thickness, or, the paper's pipeline, ``skeletons``: the detector's
    mask cropped like each sample (:func:`detector_skeleton_crops`, dataset row ->
    (128, 128) float32 in [0, 1]). A heatmap model's keypoints are its maps' argmax (the
    paper's decode), or, with a ``bone_prior`` (:func:`fit_bone_prior` of the training
    split), the bone-tree decode; a regression model ignores it.

    Returns:
        mjpe_px (128x128 crop pixels, the paper's Table II unit), epe_px (image pixels),
        pck_0.05/0.1/0.2 and auc (threshold over the hand box's larger side), per_joint,
        curve (thresholds, PCK), infer_ms (per sample, batch ``batch_size``), predictions
        (N, J, 2) crop px and the dataset rows they belong to.
    """
    info = MODEL_INFO[name]
    ds = HandDataset(dataset, split=split, skeleton=skeleton if "skeleton" in info.inputs else None)
    if len(ds) == 0:
        raise ValueError(f"{dataset}: the {split} split has no hand sample to score")
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0)
    model.eval().to(device)
    codec = make_codec(info, bone_prior=bone_prior)
    preds, gts, vis, rows, t_model = [], [], [], [], 0.0
    for batch in loader:
        if skeletons is not None and "skeleton" in info.inputs:
            batch["skeleton"] = torch.from_numpy(np.stack([skeletons[int(r)] for r in batch["index"]]))[:, None]  # (B, 1, S, S)
        x = model_input(info, batch).to(device)
        t0 = time.perf_counter()
        kp, _ = codec.decode(model(x))
        t_model += time.perf_counter() - t0
        preds.append(kp.detach().cpu().numpy())
        gts.append(batch["keypoints"].numpy())
        vis.append(batch["visible"].numpy())
        rows.append(batch["index"].numpy())
    pred, gt, mask, rows = (np.concatenate(a) for a in (preds, gts, vis, rows))
    return {**score_pose(pred, gt, mask, rows, dataset), "infer_ms": 1000 * t_model / len(ds)}


def pck_norm(box: np.ndarray, crop_box: np.ndarray, crop_margin: float) -> np.ndarray:
    """(N,) the PCK normaliser of each sample: its hand box's larger side (image px). A
    hand with one visible joint has a box of size 0: then the side of the box its square
    crop was made from (at least 8 px: samples.square_crop_box)."""
    crop_side = (crop_box[:, 2] - crop_box[:, 0]) / (1 + 2 * crop_margin)
    norm = metrics.box_size(box)
    return np.where(np.isfinite(norm) & (norm > 0), norm, crop_side)


def score_pose(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, rows: np.ndarray, dataset: str) -> dict:
    """Scores of crop-pixel predictions (N, J, 2) for dataset rows (N,): see
    :func:`evaluate_pose`. The predictions are mapped to image pixels through each
    sample's crop box for EPE and PCK (normalised by the hand box's larger side)."""
    with open_dataset(dataset) as f:
        order = np.argsort(rows)  # h5py wants increasing indices
        crop_box = np.empty((len(rows), 4), np.float32)
        box = np.empty((len(rows), 4), np.float32)
        kp_img = np.empty((len(rows), 21, 2), np.float32)
        crop_box[order] = f["labels/crop_box"][rows[order]]
        box[order] = f["labels/box"][rows[order]]
        kp_img[order] = f["labels/keypoints"][rows[order]]
        keep = labelled_joints(f)
        crop_margin = float(f.attrs.get("crop_margin", 0.25))
    mask = mask & keep
    pred_img = np.stack([from_crop(p, cb) for p, cb in zip(pred, crop_box)])
    norm = pck_norm(box, crop_box, crop_margin)
    curve = metrics.pck_curve(pred_img, kp_img, mask, norm, PCK_THRESHOLDS)
    return {
        "mjpe_px": metrics.mjpe(pred, gt, mask),
        "median_px": _median(metrics.joint_errors(pred, gt, mask)),
        "epe_px": metrics.epe(pred_img, kp_img, mask),
        "pck_0.05": metrics.pck(pred_img, kp_img, mask, 0.05, norm),
        "pck_0.1": metrics.pck(pred_img, kp_img, mask, 0.1, norm),
        "pck_0.2": metrics.pck(pred_img, kp_img, mask, 0.2, norm),
        "auc": metrics.auc(PCK_THRESHOLDS, curve),
        "per_joint": metrics.per_joint_error(pred, gt, mask).tolist(),
        "curve": (PCK_THRESHOLDS.tolist(), curve.tolist()),
        "predictions": pred,
        "rows": rows,
    }


def labelled_joints(f) -> np.ndarray:
    """(21,) bool: the joints an open dataset labels (its ``labelled_joints``; LSMV: no
    wrist), every one when it does not say."""
    labelled = f.attrs.get("labelled_joints")
    keep = np.zeros(21, bool)
    if labelled is None:
        keep[:] = True
    else:
        keep[json.loads(labelled) if isinstance(labelled, str) else list(labelled)] = True
    return keep


def _median(errors: np.ndarray) -> float:
    """The median of the finite values of (N, J) joint errors (NaN: not counted)."""
    e = errors[np.isfinite(errors)]
    return float(np.median(e)) if len(e) else float("nan")


def mean_pose(dataset: str, split: str = "train") -> np.ndarray:
    """(J, 2) crop px: the mean of each joint's visible keypoints over the hand crops of
    ``split`` (the crop's centre where a joint is never visible). Predicting it for every
    crop is the constant-pose reference row: a method that does not beat it has learnt
    nothing about the image."""
    ds = HandDataset(dataset, split=split, skeleton=None)
    n = ds.visible.sum(0)  # (J,)
    total = (ds.keypoints * ds.visible[..., None]).sum(0)  # (J, 2)
    centre = (ds.crop_size - 1) / 2.0
    return np.where(n[:, None] > 0, total / np.maximum(n, 1)[:, None], centre).astype(np.float32)


def fit_bone_prior(dataset: str, split: str = "train") -> BonePrior:
    """The bone-tree decode's prior: each bone's length (mean and sd) over the labelled
    hand crops of ``split`` (the training split's: the scored ones stay unseen), in the
    128 px crop's pixels the pose models see. A joint the dataset does not label (LSMV's
    wrist) constrains no bone."""
    ds = HandDataset(dataset, split=split, skeleton=None)
    if len(ds) == 0:
        raise ValueError(f"{dataset}: the {split} split has no hand sample to fit the bone prior on")
    with open_dataset(dataset) as f:
        keep = labelled_joints(f)
    return BonePrior.from_keypoints(ds.keypoints, ds.visible & keep)


def evaluate_constant(pose: np.ndarray, dataset: str, split: str = "test") -> dict:
    """Score the constant prediction ``pose`` (J, 2) crop px on every hand crop of
    ``split``: the same scores as :func:`evaluate_pose` (infer_ms 0)."""
    ds = HandDataset(dataset, split=split, skeleton=None)
    if len(ds) == 0:
        raise ValueError(f"{dataset}: the {split} split has no hand sample to score")
    pred = np.broadcast_to(np.asarray(pose, np.float32), ds.keypoints.shape).copy()  # (N, J, 2)
    return {**score_pose(pred, ds.keypoints, ds.visible, ds.indices.astype(np.int64), dataset), "infer_ms": 0.0}


MISSED = 1e9
"""Where a hand the pipeline missed is "predicted" (px): farther than any PCK threshold."""


@torch.no_grad()
def evaluate_end_to_end(pipeline, dataset: str, split: str = "test") -> dict:
    """The whole pipeline on every hand frame of ``split``: the detector finds the hand
    (or misses it), its box gives the square crop, the pose network reads that crop with
    the detector's skeleton, and the keypoints go back to the frame.

    Args:
        pipeline: a :class:`~gthd.benchmark.pipeline.HandPosePipeline`.

    Returns:
        found (share of hand frames the detector found), missed (how many it missed);
        over the found frames: epe_px (image px), mjpe_px and median_px (the prediction
        mapped into the sample's own 128 crop, the unit of the other rows);
        pck_0.05/0.1/0.2, auc and curve over *all* hand frames (a missed hand's joints
        count as wrong); infer_ms per frame (the whole pipeline); predictions (N, J, 2)
        in the sample's crop px (NaN where missed) and rows.
    """
    with open_dataset(dataset) as f:
        rows = np.flatnonzero(split_mask(f["meta/split"][...], split) & f["labels/has_hand"][...].astype(bool))
        if len(rows) == 0:
            raise ValueError(f"{dataset}: the {split} split has no hand frame to score")
        kp_img = f["labels/keypoints"][rows].astype(np.float64)  # (N, J, 2)
        kp_crop = f["labels/keypoints_crop"][rows].astype(np.float64)
        vis = f["labels/visible"][rows].astype(bool)
        box = f["labels/box"][rows].astype(np.float64)
        crop_box = f["labels/crop_box"][rows].astype(np.float64)
        crop_margin = float(f.attrs.get("crop_margin", 0.25))
        pred_img = np.full(kp_img.shape, np.nan)
        t = 0.0
        for i, row in enumerate(rows):
            frame = _decode_frame(f, int(row))
            t0 = time.perf_counter()
            det = pipeline(frame)
            t += time.perf_counter() - t0
            if det.has_hand:
                pred_img[i] = det.keypoints
    found = np.isfinite(pred_img).all(axis=(1, 2))  # (N,)
    vis = vis & np.isfinite(kp_img).all(-1)
    pred_crop = np.stack([to_crop(p, cb) for p, cb in zip(pred_img, crop_box)])  # (N, J, 2) crop px (NaN if missed)
    counted = vis & found[:, None]
    far = np.where(found[:, None, None], pred_img, kp_img + MISSED)  # a missed hand: every joint wrong
    norm = pck_norm(box, crop_box, crop_margin)
    curve = metrics.pck_curve(far, kp_img, vis, norm, PCK_THRESHOLDS)
    return {
        "found": float(found.mean()),
        "missed": int((~found).sum()),
        "mjpe_px": metrics.mjpe(pred_crop, kp_crop, counted) if counted.any() else float("nan"),
        "median_px": _median(metrics.joint_errors(pred_crop, kp_crop, counted)),
        "epe_px": metrics.epe(pred_img, kp_img, counted) if counted.any() else float("nan"),
        "pck_0.05": metrics.pck(far, kp_img, vis, 0.05, norm),
        "pck_0.1": metrics.pck(far, kp_img, vis, 0.1, norm),
        "pck_0.2": metrics.pck(far, kp_img, vis, 0.2, norm),
        "auc": metrics.auc(PCK_THRESHOLDS, curve),
        "curve": (PCK_THRESHOLDS.tolist(), curve.tolist()),
        "infer_ms": 1000 * t / len(rows),
        "predictions": pred_crop,
        "rows": rows,
    }


def _decode_frame(f, row: int) -> np.ndarray:
    """(H, W, 3) uint8 BGR: the stored frame of dataset row ``row``."""
    buf = np.asarray(f["images/frame_jpeg"][row], np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if len(buf) else None
    if img is None:
        raise FormatError(f"sample {row}: frame_jpeg is missing or not a readable image")
    return img


def skeleton_boxes(masks: np.ndarray, box_margin: float = 0.05) -> np.ndarray:
    """(N, 4) xyxy boxes (mask px, NaN where empty) of predicted skeleton masks
    (:class:`~gthd.dataset.codec.SkeletonMaskCodec`)."""
    return SkeletonMaskCodec(box_margin).boxes(masks)


def _box_margin(dataset: str) -> float:
    with open_dataset(dataset) as f:
        return float(f.attrs.get("box_margin", 0.05))


@torch.no_grad()
def detector_scores(model: torch.nn.Module, dataset: str, split: str, size=(256, 192), batch_size: int = 16, device: str = "cpu") -> dict:
    """Run a hand detector on whole frames of ``split``: its Hand/NoHand scores ("counts":
    the skeleton UNet's foreground pixels; the box regressor's hand logit), predicted
    boxes (input pixels, NaN where none), the true labels and the dataset rows."""
    ds = FrameDataset(dataset, split=split, size=size)
    if len(ds) == 0:
        raise ValueError(f"{dataset}: the {split} split is empty")
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0)
    model.eval().to(device)
    margin = _box_margin(dataset)
    counts, boxes, has, true_box, rows, t_model = [], [], [], [], [], 0.0
    for batch in loader:
        t0 = time.perf_counter()
        out = model(batch["image"].to(device))
        t_model += time.perf_counter() - t0
        if "mask" in out:
            mask = out["mask"].cpu().numpy()[:, 0]  # (B, H, W)
            counts.append(metrics.foreground_pixels(mask))
            boxes.append(skeleton_boxes(mask, margin))
        else:  # the box regressor
            counts.append(out["hand_logit"].float().cpu().numpy())
            boxes.append(out["box"].float().cpu().numpy().astype(np.float64))
        has.append(batch["has_hand"].numpy().astype(bool))
        true_box.append(batch["box"].numpy())
        rows.append(batch["index"].numpy())
    return {
        "counts": np.concatenate(counts),
        "boxes": np.concatenate(boxes),
        "has_hand": np.concatenate(has),
        "true_box": np.concatenate(true_box),
        "rows": np.concatenate(rows),
        "infer_ms": 1000 * t_model / len(ds),
    }


def evaluate_detector(model: torch.nn.Module, dataset: str, size=(256, 192), device: str = "cpu") -> dict:
    """Hand/NoHand and boxes on the test split, the score threshold chosen on ``val``
    (F1), as the paper does; ROC AUC over all thresholds; box IoU on hand frames (in the
    detector's input pixels, the same scale for the truth and the prediction; a missed
    hand counts IoU 0). Works for the skeleton UNet (score: foreground pixels) and the box
    regressor (score: its hand logit).

    Returns: accuracy, precision, recall, f1 (and tp, fp, tn, fn), threshold (the score's
    unit), auc, iou, infer_ms, and "sweep": (thresholds, F1 at each) on the test split.
    """
    val = detector_scores(model, dataset, "val", size, device=device)
    both = val["has_hand"].any() and (~val["has_hand"]).any()
    thr = metrics.best_threshold(val["counts"], val["has_hand"], "f1") if both else 0.5
    test = detector_scores(model, dataset, "test", size, device=device)
    row = metrics.binary_metrics(test["counts"], test["has_hand"], thr)
    row["threshold"] = float(thr)
    has = test["has_hand"]
    row["auc"] = metrics.roc_auc(test["counts"], has) if has.any() and (~has).any() else float("nan")
    ious = metrics.iou(test["boxes"][has], test["true_box"][has]) if has.any() else np.array([np.nan])
    row["iou"] = float(np.nanmean(np.where(np.isnan(ious), 0.0, ious))) if has.any() else float("nan")
    row["infer_ms"] = test["infer_ms"]
    row["sweep"] = threshold_sweep(test["counts"], has)
    return row


def threshold_sweep(scores: np.ndarray, has_hand: np.ndarray, n: int = 41) -> tuple[list[float], list[float]]:
    """(thresholds, F1 of "score > threshold" at each): how the Hand/NoHand decision
    depends on the threshold (the paper's Figure 6). Thresholds span 0 to the 99th
    percentile of the hand frames' scores."""
    scores = np.asarray(scores, np.float64)
    hi = float(np.percentile(scores[has_hand], 99)) if has_hand.any() else float(scores.max(initial=1.0))
    lo = min(0.0, float(scores.min(initial=0.0)))
    ts = np.linspace(lo, max(hi, lo + 1.0), n)
    f1 = [metrics.binary_metrics(scores, has_hand, t)["f1"] for t in ts]
    return ts.tolist(), [float(v) for v in f1]


@torch.no_grad()
def detector_skeleton_crops(
    model: torch.nn.Module, dataset: str, split: str = "test", size=(256, 192), device: str = "cpu", on: str = "frame"
) -> dict[int, np.ndarray]:
    """The skeleton the detector predicts for each hand sample of ``split``, as the
    sample's 128 x 128 crop: dataset row -> (128, 128) float32 in [0, 1]. The pose
    network's skeleton channel in the paper's pipeline (see :func:`evaluate_pose`).

    ``on``: "frame", the detector reads the whole frame resized to ``size`` and its mask
    is cropped like the sample; "crop", the detector reads the 128 x 128 crop itself (a
    second pass at the crop's resolution: a hand of 85 px there is 20-100 px in a
    256 x 192 frame, the sizes it was trained on; the skeleton comes out several times
    sharper than a frame mask blown up into the crop).
    """
    if on == "crop":
        ds = HandDataset(dataset, split=split, skeleton=None)
        model.eval().to(device)
        out: dict[int, np.ndarray] = {}
        for batch in DataLoader(ds, batch_size=32, shuffle=False, num_workers=0):
            masks = model(batch["image"].to(device))["mask"].float().cpu().numpy()[:, 0]  # (B, 128, 128)
            out.update(zip(batch["index"].tolist(), masks))
        return out
    if on != "frame":
        raise ValueError(f"on must be frame or crop, got {on!r}")
    ds = FrameDataset(dataset, split=split, size=size)
    with open_dataset(dataset) as f:
        crop_boxes = f["labels/crop_box"][...]
        image_size = f["meta/image_size"][...]
    model.eval().to(device)
    out = {}
    for batch in DataLoader(ds, batch_size=16, shuffle=False, num_workers=0):
        masks = model(batch["image"].to(device))["mask"].float().cpu().numpy()[:, 0]  # (B, h, w)
        for mask, row, has in zip(masks, batch["index"].tolist(), batch["has_hand"].tolist()):
            if not has:
                continue
            W, H = (int(v) for v in image_size[row])
            sx, sy = size[0] / W, size[1] / H
            cb = crop_boxes[row].astype(np.float64)
            cb_small = rescale_px(cb, sx, sy)
            out[row] = crop(mask, cb_small, CROP_SIZE)
    return out
