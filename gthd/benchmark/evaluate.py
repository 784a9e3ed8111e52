"""Scoring trained models on a split: pose models on the hand crops (MJPE in crop pixels,
EPE in image pixels, PCK normalised by the hand box, its AUC, per-joint errors, inference
time) and the skeleton detector on whole frames (Hand/NoHand by the count of foreground
pixels against a threshold chosen on the validation split, ROC AUC, box IoU).

The metric functions are :mod:`gthd.benchmark.metrics`; this module only runs models.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..dataset.codec import MultiScaleHeatmapCodec, SingleScaleHeatmapCodec
from ..dataset.samples import from_crop
from ..dataset.schema import open_dataset
from ..dataset.torch_dataset import FrameDataset, HandDataset
from . import metrics
from .models import MODEL_INFO

PCK_THRESHOLDS = np.round(np.linspace(0.0, 0.3, 31), 4)


def model_input(info, batch: dict) -> torch.Tensor:
    """(B, C, H, W): the image, with the skeleton channel appended when the model takes it."""
    x = batch["image"]
    if "skeleton" in info.inputs:
        x = torch.cat([x, batch["skeleton"]], dim=1)
    return x


def keypoints_from_output(info, out: dict) -> torch.Tensor:
    """(B, J, 2) input pixels from a pose model's output dict."""
    if info.task == "pose-regression":
        return out["keypoints"]
    maps = out["heatmaps"]
    codec = MultiScaleHeatmapCodec(info.input_size[::-1], info.strides) if len(maps) > 1 else SingleScaleHeatmapCodec(info.input_size[::-1], info.strides[0])
    kp, _ = codec.decode(maps)
    return kp


@torch.no_grad()
def evaluate_pose(model: torch.nn.Module, name: str, dataset: str, split: str = "test", batch_size: int = 64, device: str = "cpu") -> dict:
    """Score a pose model on the hand samples of ``split``.

    Returns:
        mjpe_px (128x128 crop pixels, the paper's Table II unit), epe_px (image pixels),
        pck_0.05/0.1/0.2 and auc (threshold over the hand box's larger side), per_joint,
        curve (thresholds, PCK), infer_ms (per sample, batch ``batch_size``), predictions
        (N, J, 2) crop px and the dataset rows they belong to.
    """
    info = MODEL_INFO[name]
    ds = HandDataset(dataset, split=split, skeleton="thick" if "skeleton" in info.inputs else None)
    if len(ds) == 0:
        raise ValueError(f"{dataset}: the {split} split has no hand sample to score")
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0)
    model.eval().to(device)
    preds, gts, vis, rows, t_model = [], [], [], [], 0.0
    for batch in loader:
        x = model_input(info, batch).to(device)
        t0 = time.perf_counter()
        out = model(x)
        kp = keypoints_from_output(info, out)
        t_model += time.perf_counter() - t0
        preds.append(kp.detach().cpu().numpy())
        gts.append(batch["keypoints"].numpy())
        vis.append(batch["visible"].numpy())
        rows.append(batch["index"].numpy())
    pred, gt, mask, rows = (np.concatenate(a) for a in (preds, gts, vis, rows))
    return {**score_pose(pred, gt, mask, rows, dataset), "infer_ms": 1000 * t_model / len(ds)}


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
        labelled = f.attrs.get("labelled_joints")
    if labelled is not None:  # LSMV: no wrist
        import json

        keep = np.zeros(21, bool)
        keep[json.loads(labelled) if isinstance(labelled, str) else list(labelled)] = True
        mask = mask & keep
    pred_img = np.stack([from_crop(p, cb) for p, cb in zip(pred, crop_box)])
    norm = metrics.box_size(box)
    curve = metrics.pck_curve(pred_img, kp_img, mask, norm, PCK_THRESHOLDS)
    return {
        "mjpe_px": metrics.mjpe(pred, gt, mask),
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


@torch.no_grad()
def detector_scores(model: torch.nn.Module, dataset: str, split: str, size=(256, 192), batch_size: int = 16, device: str = "cpu") -> dict:
    """Run the skeleton detector on whole frames: foreground pixel counts (the
    Hand/NoHand score), predicted boxes (frame pixels, NaN where empty), true labels."""
    ds = FrameDataset(dataset, split=split, size=size)
    if len(ds) == 0:
        raise ValueError(f"{dataset}: the {split} split is empty")
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0)
    model.eval().to(device)
    counts, boxes, has, true_box, t_model = [], [], [], [], 0.0
    for batch in loader:
        t0 = time.perf_counter()
        mask = model(batch["image"].to(device))["mask"].cpu().numpy()[:, 0]  # (B, H, W)
        t_model += time.perf_counter() - t0
        counts.append(metrics.foreground_pixels(mask))
        boxes.append(metrics.boxes_from_masks(mask))
        has.append(batch["has_hand"].numpy().astype(bool))
        true_box.append(batch["box"].numpy())
    return {
        "counts": np.concatenate(counts), "boxes": np.concatenate(boxes), "has_hand": np.concatenate(has),
        "true_box": np.concatenate(true_box), "infer_ms": 1000 * t_model / len(ds),
    }


def evaluate_detector(model: torch.nn.Module, dataset: str, size=(256, 192), device: str = "cpu") -> dict:
    """Hand/NoHand and boxes on the test split, the count threshold chosen on ``val``
    (F1), as the paper does; ROC AUC over all thresholds; box IoU on hand frames (in the
    detector's input pixels, the same scale for the truth and the prediction)."""
    val = detector_scores(model, dataset, "val", size, device=device)
    both = val["has_hand"].any() and (~val["has_hand"]).any()
    thr = metrics.best_threshold(val["counts"], val["has_hand"], "f1") if both else 0.5
    test = detector_scores(model, dataset, "test", size, device=device)
    row = metrics.binary_metrics(test["counts"], test["has_hand"], thr)
    row["threshold_pixels"] = float(thr)
    has = test["has_hand"]
    row["auc"] = metrics.roc_auc(test["counts"], has) if has.any() and (~has).any() else float("nan")
    ious = metrics.iou(test["boxes"][has], test["true_box"][has]) if has.any() else np.array([np.nan])
    row["iou"] = float(np.nanmean(np.where(np.isnan(ious), 0.0, ious))) if has.any() else float("nan")
    row["infer_ms"] = test["infer_ms"]
    return row
