"""From a frame and its 2D keypoints to a dataset sample: the skeleton mask, the hand box,
the square hand crop and the keypoints in it. Every producer of samples (the builder,
the COCO and LSMV importers) goes through :func:`make_sample`, so they agree.

Pixels follow OpenCV's convention (the centre of the top-left pixel is (0, 0); an image
spans [-0.5, W-0.5]). The crop is the square ``crop_box`` (xyxy in those coordinates: the
crop covers exactly [x0, x1] x [y0, y1]) resampled to ``size`` x ``size``, so a frame
point ``p`` sits at ``(p - x0) * size / side - 0.5`` in the crop (:func:`to_crop`, inverted
exactly by :func:`from_crop`).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..geometry import box_from_points
from ..hand import EDGES, NUM_JOINTS
from .schema import CROP_SIZE, Sample

THICKNESS = {"thin": 0.006, "medium": 0.012, "thick": 0.02}
"""Skeleton line width as a fraction of the hand box's diagonal (at least 1 px)."""


def skeleton_mask(keypoints: np.ndarray, visible: np.ndarray, size: tuple[int, int], thickness: str = "thick", origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The paper's skeleton image: each finger's joints connected, the palm attached to
    each finger's end, each joint a standardised Gaussian blob (peak 255).

    Args:
        keypoints: (21, 2) px. visible: (21,) bool. size: (width, height) of the mask.
        thickness: thin, medium or thick (the paper found thick most robust), as a share
            of the hand's diagonal (:data:`THICKNESS`).
        origin: the frame pixel of the mask's top-left pixel (to draw a patch).

    Returns:
        (height, width) uint8.
    """
    if thickness not in THICKNESS:
        raise ValueError(f"thickness must be one of {', '.join(THICKNESS)}, got {thickness!r}")
    w, h = size
    mask = np.zeros((h, w), np.uint8)
    kp = np.asarray(keypoints, dtype=np.float64) - np.asarray(origin, dtype=np.float64)
    vis = np.asarray(visible, dtype=bool) & np.all(np.isfinite(kp), axis=1)
    if vis.sum() < 2:
        return mask
    t, sigma = _widths(kp, vis, thickness)
    pts = np.rint(np.nan_to_num(kp) * 16).astype(np.int64)  # NaN rows are not drawn anyway
    for a, b in EDGES:
        if vis[a] and vis[b]:
            cv2.line(mask, tuple(pts[a]), tuple(pts[b]), 255, t, cv2.LINE_AA, 4)
    # Gaussian blobs at the joints, peak 255, at their exact sub-pixel centres: the
    # Gaussian is separable, so all of them are one outer product (J, 2r+1, 2r+1)
    r = int(np.ceil(3 * sigma))
    js = np.flatnonzero(vis)
    x0 = np.floor(kp[js, 0]).astype(int) - r  # (J,) top-left of each blob's patch
    y0 = np.floor(kp[js, 1]).astype(int) - r
    steps = np.arange(2 * r + 1)
    gx = np.exp(-((x0[:, None] + steps - kp[js, 0:1]) ** 2) / (2 * sigma**2))  # (J, 2r+1)
    gy = np.exp(-((y0[:, None] + steps - kp[js, 1:2]) ** 2) / (2 * sigma**2))
    blobs = (gy[:, :, None] * gx[:, None, :] * 255).astype(np.uint8)  # (J, 2r+1, 2r+1)
    for g, bx, by in zip(blobs, x0.tolist(), y0.tolist()):
        xa, ya, xb, yb = max(bx, 0), max(by, 0), min(bx + 2 * r + 1, w), min(by + 2 * r + 1, h)
        if xa < xb and ya < yb:
            np.maximum(mask[ya:yb, xa:xb], g[ya - by : yb - by, xa - bx : xb - bx], out=mask[ya:yb, xa:xb])
    return mask


def _widths(kp: np.ndarray, vis: np.ndarray, thickness: str) -> tuple[int, float]:
    """Line width (px) and blob sigma (px) for a hand: relative to its diagonal."""
    diag = float(np.hypot(*np.ptp(kp[vis], axis=0)))
    t = max(1, int(round(THICKNESS[thickness] * diag)))
    return t, max(1.0, 1.2 * t)


def skeleton_patch(keypoints: np.ndarray, visible: np.ndarray, size: tuple[int, int], thickness: str = "thick") -> tuple[np.ndarray, tuple[int, int]]:
    """The skeleton mask of a frame of ``size``, only where it is not zero: (patch
    (h, w) uint8, origin (x, y) of its top-left pixel in the frame). Drawing and encoding
    a patch costs a fraction of a whole frame."""
    kp = np.asarray(keypoints, dtype=np.float64)
    vis = np.asarray(visible, dtype=bool) & np.all(np.isfinite(kp), axis=1)
    W, H = size
    if vis.sum() < 2:
        return np.zeros((1, 1), np.uint8), (0, 0)
    t, sigma = _widths(kp, vis, thickness)
    pad = t / 2 + 3 * sigma + 2
    x0, y0 = np.floor(kp[vis].min(axis=0) - pad).astype(int)
    x1, y1 = np.ceil(kp[vis].max(axis=0) + pad).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((1, 1), np.uint8), (0, 0)
    return skeleton_mask(kp, vis, (x1 - x0, y1 - y0), thickness, origin=(x0, y0)), (int(x0), int(y0))


def square_crop_box(box: np.ndarray, margin: float = 0.25) -> np.ndarray:
    """(4,) xyxy square around a hand box, its side the box's larger side x (1 + 2 margin).
    Not clipped: the crop pads outside the image."""
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = max(x1 - x0, y1 - y0, 8.0) * (1 + 2 * margin)
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])


def _affine(crop_box: np.ndarray, size: int) -> np.ndarray:
    """2x3 matrix: frame px -> crop px. The box's edge x0 goes to the crop's edge -0.5 and
    x1 to size - 0.5: p' = (p - x0) * s - 0.5."""
    s = size / (crop_box[2] - crop_box[0])
    return np.array([[s, 0, -crop_box[0] * s - 0.5], [0, s, -crop_box[1] * s - 0.5]])


def to_crop(points: np.ndarray, crop_box: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """(..., 2) frame px -> (..., 2) crop px."""
    A = _affine(np.asarray(crop_box, np.float64), size)
    p = np.asarray(points, dtype=np.float64)
    return p @ A[:, :2].T + A[:, 2]


def from_crop(points: np.ndarray, crop_box: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """(..., 2) crop px -> (..., 2) frame px (inverse of :func:`to_crop`)."""
    A = _affine(np.asarray(crop_box, np.float64), size)
    p = np.asarray(points, dtype=np.float64)
    return (p - A[:, 2]) / np.diag(A[:, :2])


def crop(image: np.ndarray, crop_box: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """The square crop of ``image`` resampled to (size, size) (area-averaged when
    shrinking), padded with the border's replicate outside the frame."""
    A = _affine(np.asarray(crop_box, np.float64), size)
    side = crop_box[2] - crop_box[0]
    if side > 2 * size:  # shrinking a lot: blur first so the sampling does not alias
        k = side / size / 2.0
        image = cv2.GaussianBlur(image, (0, 0), k * 0.6)
    return cv2.warpAffine(image, A, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def make_sample(
    image: np.ndarray,
    frame_jpeg: bytes,
    keypoints: np.ndarray | None,
    visible: np.ndarray | None,
    *,
    scale: int = 1,
    thickness: str = "thick",
    box_margin: float = 0.05,
    crop_margin: float = 0.25,
    crop_size: int = CROP_SIZE,
    jpeg_quality: int = 95,
    **meta,
) -> Sample:
    """A sample from a frame and (for a hand) its keypoints.

    Args:
        image: (H, W, 3) uint8 BGR, the decoded frame, possibly decoded at 1/``scale``
            of its size (``cv2.IMREAD_REDUCED_COLOR_2``/``_4``): the crop is taken from it,
            while every label and the mask stay in the frame's pixels.
        frame_jpeg: the frame's JPEG bytes, stored as they are.
        keypoints: (21, 2) frame px, or None (NoHand). visible: (21,) bool.
        box_margin: the hand box grows by this x its larger side (then clipped).
        crop_margin: the square crop's margin around the box.
        meta: the other :class:`Sample` fields (session, subject, name, joints_cam, ...).
    """
    h, w = image.shape[0] * scale, image.shape[1] * scale
    if keypoints is None:
        return Sample(frame_jpeg=frame_jpeg, image_size=(w, h), has_hand=False, **meta)
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.shape != (NUM_JOINTS, 2):
        raise ValueError(f"keypoints: expected (21, 2), got {kp.shape}")
    vis = np.asarray(visible, dtype=bool) & np.all(np.isfinite(kp), axis=1)
    box = box_from_points(kp, vis, w, h, margin=box_margin)
    if box is None:
        return Sample(frame_jpeg=frame_jpeg, image_size=(w, h), has_hand=False, **meta)
    patch, origin = skeleton_patch(kp, vis, (w, h), thickness)
    cb = square_crop_box(box, crop_margin)
    cb_image = (cb + 0.5) / scale - 0.5  # the same region in the decoded image's pixels
    ok, crop_enc = cv2.imencode(".jpg", crop(image, cb_image, crop_size), [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    ok2, mask_enc = cv2.imencode(".png", patch, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not (ok and ok2):
        raise RuntimeError("encoding a crop or a mask failed")
    return Sample(
        frame_jpeg=frame_jpeg,
        image_size=(w, h),
        has_hand=True,
        crop_jpeg=crop_enc.tobytes(),
        skeleton_png=mask_enc.tobytes(),
        keypoints=kp.astype(np.float32),
        visible=vis,
        keypoints_crop=to_crop(kp, cb, crop_size).astype(np.float32),
        crop_box=cb.astype(np.float32),
        skeleton_origin=origin,
        box=box.astype(np.float32),
        **meta,
    )
