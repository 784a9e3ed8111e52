"""The benchmark's qualitative figure, like the paper's Figure 4: test crops, one column
per method (e.g. direct regression | ours) and one for the ground truth, each tile with
that sample's mean joint error."""

from __future__ import annotations

import cv2
import numpy as np

from ..dataset.samples import to_crop
from ..dataset.schema import CROP_SIZE, open_dataset
from ..draw import draw_skeleton, label
from ..geometry import rescale_px


def _upscaled(points: np.ndarray, k: float) -> np.ndarray:
    """Crop px -> px of the crop resized by ``k`` (pixel centres: :func:`rescale_px`)."""
    return rescale_px(points, k)


def qualitative_figure(dataset: str, results: dict[str, dict], n: int = 6, tile: int = 192, seed: int = 0) -> np.ndarray:
    """A grid (BGR uint8): ``n`` test samples down, the methods of ``results`` then the
    ground truth across.

    Args:
        dataset: the gthd dataset the predictions are of.
        results: method -> :func:`~gthd.benchmark.evaluate.evaluate_pose` output (its
            "predictions" (N, J, 2) crop px and "rows" (N,)), all on the same samples.
        n: samples shown, spread evenly over the split (a seeded choice: the same each run).
        tile: the side a 128 x 128 crop is drawn at.
    """
    if not results:
        raise ValueError("qualitative_figure: no results to draw")
    first = next(iter(results.values()))
    rows = np.asarray(first["rows"])
    for name, r in results.items():
        if not np.array_equal(np.asarray(r["rows"]), rows):
            raise ValueError(f"qualitative_figure: {name!r} was scored on other samples")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(rows), size=min(n, len(rows)), replace=False))
    k = tile / CROP_SIZE
    header = 28
    cols = len(results) + 1
    grid = np.full((header + len(pick) * (tile + 4), cols * (tile + 4), 3), 255, np.uint8)
    for c, name in enumerate([*results, "ground truth"]):
        cv2.putText(grid, name[:30], (c * (tile + 4) + 4, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    with open_dataset(dataset) as f:
        for r_i, i in enumerate(pick):
            row = int(rows[i])
            crop = cv2.imdecode(np.asarray(f["images/crop_jpeg"][row], np.uint8), cv2.IMREAD_COLOR)
            crop = cv2.resize(crop, (tile, tile), interpolation=cv2.INTER_LINEAR)
            gt = to_crop(f["labels/keypoints"][row].astype(np.float64), f["labels/crop_box"][row].astype(np.float64))
            vis = f["labels/visible"][row].astype(bool) & np.all(np.isfinite(gt), axis=1)
            y = header + r_i * (tile + 4)
            for c, name in enumerate([*results, "ground truth"]):
                img = crop.copy()
                if name == "ground truth":
                    draw_skeleton(img, _upscaled(gt, k), vis)
                else:
                    pred = np.asarray(results[name]["predictions"][i], np.float64)
                    draw_skeleton(img, _upscaled(pred, k))
                    err = np.linalg.norm(pred - gt, axis=1)[vis]
                    label(img, f"{err.mean():.1f} px" if len(err) else "-")
                x = c * (tile + 4)
                grid[y : y + tile, x : x + tile] = img
    return grid


__all__ = ["qualitative_figure"]
