"""Camera geometry shared by every stage: rigid transforms and the OpenCV lens model.

Conventions (docs/conventions.md): the camera frame ``cam`` is OpenCV's (x right, y down,
z forward, millimetres); the tracker frame ``leap`` is Ultraleap's (y up, +z toward the
user, millimetres). Transforms are named by direction: ``T_cam_leap`` maps points FROM
``leap`` TO ``cam``. Pixels are (u, v) = (column, row) with the centre of the top-left
pixel at (0, 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Transform:
    """A rigid transform FROM frame ``src`` TO frame ``dst``: ``p_dst = R @ p_src + t``.

    Attributes:
        R: (3, 3) float64 rotation.
        t: (3,) float64 translation, millimetres.
        dst, src: frame names; ``Transform(R, t, "cam", "leap")`` is ``T_cam_leap``.
    """

    R: np.ndarray
    t: np.ndarray
    dst: str
    src: str

    def __post_init__(self):
        R = np.asarray(self.R, dtype=np.float64).reshape(3, 3)
        t = np.asarray(self.t, dtype=np.float64).reshape(3)
        if not (np.allclose(R @ R.T, np.eye(3), atol=1e-6) and np.linalg.det(R) > 0):
            raise ValueError(f"{self.name}: R is not a rotation (orthonormal, det +1)")
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "t", t)

    @property
    def name(self) -> str:
        return f"T_{self.dst}_{self.src}"

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map points (..., 3) in ``src`` to (..., 3) in ``dst`` (same units, mm)."""
        points = np.asarray(points, dtype=np.float64)
        if points.shape[-1] != 3:
            raise ValueError(f"expected (..., 3) points, got {points.shape}")
        return points @ self.R.T + self.t

    def inverse(self) -> "Transform":
        """``T_src_dst``: the transform in the other direction."""
        return Transform(self.R.T, -self.R.T @ self.t, self.src, self.dst)

    @property
    def rvec(self) -> np.ndarray:
        """(3,) Rodrigues vector of ``R``, radians."""
        return cv2.Rodrigues(self.R)[0].reshape(3)

    @classmethod
    def from_rvec(cls, rvec, tvec, dst: str, src: str) -> "Transform":
        R = cv2.Rodrigues(np.asarray(rvec, dtype=np.float64).reshape(3, 1))[0]
        return cls(R, np.asarray(tvec, dtype=np.float64), dst, src)

    def to_dict(self) -> dict:
        return {
            "from": self.src,
            "to": self.dst,
            "units": "mm",
            "R": np.round(self.R, 12).tolist(),
            "t": np.round(self.t, 6).tolist(),
            "rvec": np.round(self.rvec, 12).tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Transform":
        return cls(np.asarray(d["R"]), np.asarray(d["t"]), d["to"], d["from"])


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray, world: str = "leap") -> Transform:
    """``T_cam_world`` of an OpenCV camera at ``eye`` looking at ``target``.

    Args:
        eye, target: (3,) positions in ``world``, mm.
        up: (3,) the world direction that should appear up in the image.
    """
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)  # image right (looking along z with y up, right is z x up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)  # image down
    R = np.stack([x, y, z])  # rows: camera axes expressed in world
    return Transform(R, -R @ eye, "cam", world)


@dataclass(frozen=True)
class Camera:
    """A pinhole camera with OpenCV's 5-term lens distortion (k1, k2, p1, p2, k3).

    Attributes:
        K: (3, 3) float64 camera matrix, pixels.
        dist: (5,) float64 distortion coefficients.
        width, height: image size, pixels.
    """

    K: np.ndarray
    dist: np.ndarray
    width: int
    height: int

    def __post_init__(self):
        object.__setattr__(self, "K", np.asarray(self.K, dtype=np.float64).reshape(3, 3))
        object.__setattr__(self, "dist", np.asarray(self.dist, dtype=np.float64).reshape(5))

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """Project (..., 3) points in the camera frame (mm) to (..., 2) distorted pixels."""
        return project_points(points_cam, self.K, self.dist)

    def undistort(self, uv: np.ndarray) -> np.ndarray:
        """Pixels (..., 2) to normalised undistorted coordinates (..., 2) (x, y): the ray
        (x, y, 1) in the camera frame projects to ``uv``. Inverts :meth:`project` to
        about 1e-6 px (iterative, 100 rounds at most)."""
        return undistort_points(uv, self.K, self.dist)

    def in_image(self, uv: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
        """(...,) bool: pixel inside [-0.5, W-0.5] x [-0.5, H-0.5] (and z > 0 if given)."""
        uv = np.asarray(uv)
        ok = (uv[..., 0] >= -0.5) & (uv[..., 0] <= self.width - 0.5) & (uv[..., 1] >= -0.5) & (uv[..., 1] <= self.height - 0.5)
        if z is not None:
            ok &= np.asarray(z) > 0
        return ok

    def see(self, points_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project (..., 3) camera-frame points (mm): (..., 2) px and (...,) visible, the
        one visibility rule of every stage: in front of the camera (z > 0), a finite
        projection, inside the image. NaN points are not visible."""
        p = np.asarray(points_cam, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            uv = self.project(p)
            visible = np.isfinite(uv).all(axis=-1) & (p[..., 2] > 0) & self.in_image(uv)
        return uv, visible

    def to_dict(self) -> dict:
        return {
            "camera_matrix": np.round(self.K, 9).tolist(),
            "distortion_coefficients": np.round(self.dist, 12).tolist(),
            "image_width": int(self.width),
            "image_height": int(self.height),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Camera":
        return cls(
            np.asarray(d["camera_matrix"]),
            np.asarray(d["distortion_coefficients"]),
            int(d["image_width"]),
            int(d["image_height"]),
        )


def project_points(points_cam: np.ndarray, K: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """OpenCV's projection (``cv2.projectPoints`` with rvec = tvec = 0), vectorised.

    Args:
        points_cam: (..., 3) points in the camera frame, mm; z must be > 0 to mean anything.
        K: (3, 3) camera matrix.
        dist: (5,) k1, k2, p1, p2, k3 (a shorter vector is zero-padded).

    Returns:
        (..., 2) float64 distorted pixel coordinates (u, v).
    """
    p = np.asarray(points_cam, dtype=np.float64)
    if p.shape[-1] != 3:
        raise ValueError(f"expected (..., 3) points, got {p.shape}")
    d = np.zeros(5)
    dist = np.asarray(dist, dtype=np.float64).ravel()
    d[: min(5, dist.size)] = dist[:5]
    k1, k2, p1, p2, k3 = d
    with np.errstate(divide="ignore", invalid="ignore"):
        x = p[..., 0] / p[..., 2]
        y = p[..., 1] / p[..., 2]
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    u = K[0, 0] * xd + K[0, 1] * yd + K[0, 2]
    v = K[1, 1] * yd + K[1, 2]
    return np.stack([u, v], axis=-1)


_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-6)


def undistort_points(uv: np.ndarray, K: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """``cv2.undistortPoints`` with tight stopping criteria on (..., 2) pixels, returning
    (..., 2) float64 normalised coordinates (x, y). OpenCV 4 has the criteria in
    ``undistortPointsIter``; OpenCV 5 folded them into ``undistortPoints``. The default
    5 iterations leave ~0.03 px in the image corners; these leave ~1e-6 px."""
    uv = np.asarray(uv, dtype=np.float64)
    if uv.shape[-1] != 2:
        raise ValueError(f"expected (..., 2) pixels, got {uv.shape}")
    pts = np.ascontiguousarray(uv.reshape(-1, 1, 2))
    K, dist = np.asarray(K, dtype=np.float64), np.asarray(dist, dtype=np.float64)
    if hasattr(cv2, "undistortPointsIter"):  # OpenCV 4.x
        out = cv2.undistortPointsIter(pts, K, dist, None, None, _UNDISTORT_CRITERIA)
    else:
        out = cv2.undistortPoints(pts, K, dist, criteria=_UNDISTORT_CRITERIA)
    return np.asarray(out, dtype=np.float64).reshape(uv.shape)


def distortion_is_monotonic(camera: Camera, margin: float = 1.2) -> bool:
    """True if the radial distortion never folds back inside the image (plus a margin).

    A lens model whose distorted radius r_d(r) stops growing before the image corner maps
    two scene directions to one pixel: no real lens does that, so the simulator refuses it.
    """
    K, (k1, k2, _, _, k3) = camera.K, camera.dist
    corners = np.array([[0, 0], [camera.width, 0], [0, camera.height], [camera.width, camera.height]])
    rn = np.max(np.hypot((corners[:, 0] - K[0, 2]) / K[0, 0], (corners[:, 1] - K[1, 2]) / K[1, 1]))
    r = np.linspace(0, rn * margin, 400)
    rd = r * (1 + k1 * r**2 + k2 * r**4 + k3 * r**6)
    return bool(np.all(np.diff(rd) > 0))


def rescale_px(points, sx: float, sy: float | None = None) -> np.ndarray:
    """Pixel coordinates in an image resized by ``sx`` x ``sy``: pixel centres map to
    pixel centres, ``(p + 0.5) * s - 0.5``. ``points``: (..., 2) (u, v), or (..., 4)
    xyxy boxes. The project's one conversion between image scales."""
    p = np.asarray(points, dtype=np.float64)
    sy = sx if sy is None else sy
    scale = np.array([sx, sy] * (p.shape[-1] // 2))
    if p.shape[-1] not in (2, 4):
        raise ValueError(f"expected (..., 2) points or (..., 4) boxes, got {p.shape}")
    return (p + 0.5) * scale - 0.5


def box_iou(box_a, box_b) -> np.ndarray:
    """Intersection over union of ``xyxy`` boxes (broadcast: (4,) with (4,), or (N, 4)
    with (N, 4)): continuous coordinates, area ``(x1 - x0) * (y1 - y0)``, no ``+ 1``; 0
    where they do not overlap or a box is empty; NaN where both are empty (or NaN)."""
    a, b = np.asarray(box_a, dtype=np.float64), np.asarray(box_b, dtype=np.float64)
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    area = lambda x: np.clip(x[..., 2] - x[..., 0], 0, None) * np.clip(x[..., 3] - x[..., 1], 0, None)  # noqa: E731
    with np.errstate(invalid="ignore", divide="ignore"):
        inter = np.nan_to_num(w * h)
        union = np.nan_to_num(area(a)) + np.nan_to_num(area(b)) - inter
        out = np.where(union > 0, inter / np.where(union > 0, union, 1.0), np.nan)
    return out


def box_from_points(uv: np.ndarray, visible: np.ndarray | None, width: int, height: int, margin: float = 0.0) -> np.ndarray | None:
    """Tight ``xyxy`` box of the visible points, grown by ``margin`` x its size, clipped.

    Args:
        uv: (J, 2) pixels. visible: (J,) bool or None (all).
        margin: fraction of the box's larger side added on every side.

    Returns:
        (4,) float64 xyxy in [-0.5, W-0.5] x [-0.5, H-0.5], or None with no visible point.
    """
    uv = np.asarray(uv, dtype=np.float64)
    pts = uv if visible is None else uv[np.asarray(visible, dtype=bool)]
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) == 0:
        return None
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    m = margin * max(x1 - x0, y1 - y0)
    box = np.array([x0 - m, y0 - m, x1 + m, y1 + m])
    box[[0, 2]] = np.clip(box[[0, 2]], -0.5, width - 0.5)
    box[[1, 3]] = np.clip(box[[1, 3]], -0.5, height - 0.5)
    return box
