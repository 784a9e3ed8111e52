"""Camera intrinsics from calibration board views (:mod:`.views` finds them), reported
the way mrcal reports.

:func:`calibrate`: ``cv2.calibrateCameraExtended`` with OpenCV's 5-term lens model (k1,
k2, p1, p2, k3), outlier views dropped, then the figures that say whether to trust the
result: RMS and worst residual, the worst views by name, the intrinsics' standard
deviations, a split-half cross-check (the models fitted to the even and to the odd views,
compared where the corners are and over the whole image) and the image coverage.
:meth:`IntrinsicsResult.report_lines` writes them as text and
:func:`gthd.calibration.report.intrinsics_png` as a picture (the calibration's reporting
lives in :mod:`.report`); :meth:`IntrinsicsResult.quality` and
:meth:`IntrinsicsResult.detections` are what
:func:`gthd.calibration.files.write_intrinsics` stores, and :func:`read_report` reads back.

Pixels follow OpenCV: the centre of the top-left pixel is (0, 0); board points are in the
board frame of gthd.boards, millimetres.

Example::

    views = views_from_session("session", "checkerboard")["checkerboard"]
    result = calibrate(views, views.spec)
    print("\\n".join(result.report_lines("gthd calibrate intrinsics session")))
    write_intrinsics("intrinsics", result.camera, result.quality(), result.detections())
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..boards import BoardSpec
from ..geometry import Camera
from .views import (  # noqa: F401  (re-exported: the detection and views lived here)
    BoardViews,
    Detection,
    View,
    describe_board,
    detect_board,
    size_text,
    views_from_folder,
    views_from_session,
    views_from_video,
)

__all__ = [
    "BoardViews",
    "Coverage",
    "Detection",
    "IntrinsicsResult",
    "View",
    "calibrate",
    "describe_board",
    "detect_board",
    "read_report",
    "views_from_folder",
    "views_from_session",
    "views_from_video",
]

STD_NAMES = ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3")


# ============================================================================== calibration
@dataclass(frozen=True)
class Coverage:
    """Where the board's corners fell in the image.

    Attributes:
        counts: (rows, cols) int64 corners per cell of a grid over the image.
        fraction: share of cells holding at least one corner.
    """

    counts: np.ndarray
    fraction: float

    def to_dict(self) -> dict:
        rows, cols = self.counts.shape
        return {"grid": [cols, rows], "counts": self.counts.tolist(), "fraction_covered": round(self.fraction, 4)}


@dataclass
class IntrinsicsResult:
    """A calibrated camera and the figures that say how far to trust it.

    Attributes:
        camera: the intrinsics (K, k1 k2 p1 p2 k3, image size).
        spec: the board.
        rms: RMS reprojection error over all corners of the views kept, px.
        per_view_rms: {view name: RMS px} of the views kept, in input order.
        std: standard deviations of fx, fy, cx, cy (px) and k1, k2, p1, p2, k3
            (``stdDeviationsIntrinsics``; they assume the RMS is pure noise).
        dropped: names of the views dropped as outliers; ``dropped_rms`` their RMS then.
        worst_views: up to 5 (name, RMS px) of the views kept, worst first.
        worst_residual_px: largest corner residual, px, at ``worst_residual_at``
            (view name, corner id).
        split_half: the even/odd cross-check (see :func:`calibrate`).
        coverage: corners per cell of a grid over the image.
        n_views, n_corners: views and corners used; ``n_views_given`` views given.
        image_points, residuals: {view name: (N, 2) float64} detected corners and
            their residuals (detected minus projected), px, of the views kept.
    """

    camera: Camera
    spec: BoardSpec
    rms: float
    per_view_rms: dict[str, float]
    std: dict[str, float]
    dropped: list[str]
    dropped_rms: dict[str, float]
    worst_views: list[tuple[str, float]]
    worst_residual_px: float
    worst_residual_at: tuple[str, int]
    split_half: dict
    coverage: Coverage
    n_views: int
    n_corners: int
    n_views_given: int
    outlier_factor: float
    outlier_threshold_px: float
    flags: int
    image_points: dict[str, np.ndarray] = field(repr=False)
    residuals: dict[str, np.ndarray] = field(repr=False)
    source: str | None = None
    n_images: int | None = None
    missed: list[str] = field(default_factory=list)
    view_corners: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # every view given, dropped ones too
    command: str | None = None  # the command line that made it (read back from its file)

    def detections(self) -> dict:
        """What the report is drawn from, for the JSON file: every view's detected
        corners (px) and, for the views kept, their residuals (px), so that
        :func:`read_report` can redraw the report without the images."""
        r = lambda a: np.round(np.asarray(a, dtype=np.float64), 4).tolist()  # noqa: E731
        return {
            name: {"corners": r(c), "residuals": r(self.residuals[name]) if name in self.residuals else None}
            for name, c in (self.view_corners or self.image_points).items()
        }

    def quality(self) -> dict:
        """JSON-friendly figures, for :func:`gthd.calibration.files.write_intrinsics`."""
        r = lambda x, n=4: round(float(x), n)
        return {
            "board": self.spec.to_dict(),
            "source": self.source,
            "images": self.n_images,
            "images_without_board": list(self.missed),
            "views_given": self.n_views_given,
            "views_used": self.n_views,
            "corners_used": self.n_corners,
            "rms_px": r(self.rms),
            "worst_residual_px": r(self.worst_residual_px),
            "worst_residual_at": {"view": self.worst_residual_at[0], "corner_id": int(self.worst_residual_at[1])},
            "outlier_factor": self.outlier_factor,
            "outlier_threshold_px": r(self.outlier_threshold_px),
            "dropped_views": {k: r(v) for k, v in self.dropped_rms.items()},
            "worst_views": [{"view": n, "rms_px": r(v)} for n, v in self.worst_views],
            "per_view_rms_px": {k: r(v) for k, v in self.per_view_rms.items()},
            "std": {k: float(f"{v:.4g}") for k, v in self.std.items()},
            "split_half": _jsonable(self.split_half),
            "coverage": self.coverage.to_dict(),
            "flags": int(self.flags),
            "model": "opencv5 (k1, k2, p1, p2, k3)",
        }

    def report_lines(self, command_line: str) -> list[str]:
        """The mrcal-like report (:func:`gthd.calibration.report.intrinsics_lines`)."""
        from .report import intrinsics_lines  # the reporting module imports this one

        return intrinsics_lines(self, command_line)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (float, np.floating)):
        return round(float(obj), 6)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


@dataclass
class _Fit:
    rms: float
    K: np.ndarray  # (3, 3)
    dist: np.ndarray  # (5,)
    std: np.ndarray  # (9,) fx fy cx cy k1 k2 p1 p2 k3
    residuals: list[np.ndarray]  # per view (N, 2), detected minus projected


@contextlib.contextmanager
def _opencv_single_threaded():
    """Run OpenCV on one thread inside the block (the previous setting is restored).

    With several threads ``cv2.calibrateCamera`` sums in a varying order and its result
    changes from run to run in the 10th digit; on one thread it is reproducible, and
    bit-identical between calibrateCamera and calibrateCameraExtended. A calibration of a
    few dozen views takes milliseconds either way.
    """
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def _fit(views: Sequence[View], spec: BoardSpec, size: tuple[int, int], flags: int, criteria) -> _Fit:
    """One ``cv2.calibrateCameraExtended`` run (k1, k2, p1, p2, k3), single-threaded."""
    obj_all = spec.object_points().astype(np.float32)
    obj = [np.ascontiguousarray(obj_all[v.detection.ids]) for v in views]  # (N, 3) each
    img = [v.detection.corners.astype(np.float32).reshape(-1, 1, 2) for v in views]  # (N, 1, 2) each
    extra = {} if criteria is None else {"criteria": criteria}
    with _opencv_single_threaded():
        rms, K, dist, rvecs, tvecs, std_intr, _, _ = cv2.calibrateCameraExtended(obj, img, size, None, None, flags=flags, **extra)
    dist = np.asarray(dist, dtype=np.float64).ravel()[:5]  # (1, 5)
    residuals = []
    for o, i, rv, tv in zip(obj, img, rvecs, tvecs):
        proj, _ = cv2.projectPoints(o, rv, tv, K, dist)
        residuals.append(i.reshape(-1, 2).astype(np.float64) - proj.reshape(-1, 2))
    return _Fit(float(rms), np.asarray(K, dtype=np.float64), dist, np.asarray(std_intr, dtype=np.float64).ravel()[:9], residuals)


def _rms(r: np.ndarray) -> float:
    """RMS length of (N, 2) residual vectors."""
    return float(np.sqrt(np.mean(np.sum(r * r, axis=1))))


def undistort_to_rays(camera: Camera, uv: np.ndarray) -> np.ndarray:
    """(..., 2) pixels -> (..., 2) normalized undistorted (x, y): :meth:`gthd.geometry.Camera.undistort`."""
    return camera.undistort(uv)


def image_grid(width: int, height: int, grid: tuple[int, int] = (16, 12)) -> np.ndarray:
    """(rows*cols, 2) float64 pixels at the cell centres of a ``grid`` (cols, rows) over the image."""
    cols, rows = grid
    u = (np.arange(cols) + 0.5) * width / cols - 0.5
    v = (np.arange(rows) + 0.5) * height / rows - 0.5
    return np.stack(np.meshgrid(u, v), axis=-1).reshape(-1, 2)


def model_difference(a: Camera, b: Camera, uv: np.ndarray, fit_rotation: bool = True) -> np.ndarray:
    """How far apart two lens models put the same ray (mrcal's ``show-projection-diff``,
    in miniature).

    The pixels ``uv`` are turned into rays with ``a`` and projected with ``b``. Two
    calibrations of one camera each come with their own board poses, so their camera
    frames may be turned slightly against each other (a shift of cx is then a turn of the
    frame, not a different lens); with ``fit_rotation`` the rays are first turned by the
    rotation that brings the two projections closest over ``uv`` (least squares), as
    mrcal does.

    Args:
        a, b: the two models.
        uv: (N, 2) pixels of ``a``'s image (N >= 2 to fit a rotation).

    Returns:
        (N,) float64 pixel distances.
    """
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    xy = undistort_to_rays(a, uv)
    rays = np.concatenate([xy, np.ones((len(xy), 1))], axis=1)  # (N, 3)

    def diff(rvec: np.ndarray) -> np.ndarray:
        R = cv2.Rodrigues(np.asarray(rvec, dtype=np.float64).reshape(3, 1))[0]
        return (b.project(rays @ R.T) - uv).ravel()  # (2N,)

    rvec = np.zeros(3)
    if fit_rotation and len(uv) >= 2:
        from scipy.optimize import least_squares

        rvec = least_squares(diff, rvec, x_scale=1e-3, method="lm").x
    return np.linalg.norm(diff(rvec).reshape(-1, 2), axis=1)


def coverage_grid(points: np.ndarray, size: tuple[int, int], grid: tuple[int, int] = (8, 6)) -> Coverage:
    """Corners per cell of a ``grid`` (cols, rows) over an image of ``size`` (w, h).

    Args:
        points: (N, 2) pixels.
    """
    cols, rows = grid
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    c = np.clip(np.floor((points[:, 0] + 0.5) * cols / size[0]).astype(np.int64), 0, cols - 1)
    r = np.clip(np.floor((points[:, 1] + 0.5) * rows / size[1]).astype(np.int64), 0, rows - 1)
    counts = np.zeros((rows, cols), np.int64)
    np.add.at(counts, (r, c), 1)
    return Coverage(counts, float((counts > 0).mean()))


def calibrate(
    views: Sequence[View],
    spec: BoardSpec,
    *,
    outlier_factor: float = 3.0,
    min_views: int = 5,
    flags: int = 0,
    criteria=None,
    max_rounds: int = 5,
) -> IntrinsicsResult:
    """Calibrate a camera's intrinsics from board views.

    ``cv2.calibrateCameraExtended`` (k1, k2, p1, p2, k3; ``flags`` passed on) on all
    views; views whose RMS is above ``outlier_factor`` x the median per-view RMS are
    dropped and the calibration redone, until none is (at most ``max_rounds`` rounds,
    never below ``min_views`` views). Then the split-half check: the views kept are
    calibrated again as two halves (even and odd positions, 3 views each at least) and
    the two models compared (:func:`model_difference`: pixel -> ray with the even model,
    turned by the best-fitting rotation, -> pixel with the odd one). ``split_half`` holds
    ``rms_px`` and ``max_px`` over all corners of the views kept (where the data is),
    ``whole_image_rms_px`` and ``whole_image_max_px`` over a 16x12 grid over the image
    (where the models may only extrapolate), ``n_views`` and each half's fx, fy, cx, cy,
    k1; or ``skipped`` with the reason.

    Args:
        views: :class:`View` s of ``spec``, all of one image size (e.g. a
            :class:`BoardViews`).
        spec: the board.
        outlier_factor: a view is an outlier above this x the median per-view RMS.
        min_views: fewest views to calibrate from.
        flags: ``cv2.CALIB_*`` flags for calibrateCameraExtended.
        criteria: its termination criteria (None: OpenCV's default).

    Raises:
        ValueError: too few views, views of different image sizes, or of another board.
    """
    src = views if isinstance(views, BoardViews) else None
    if src is not None and src.spec != spec:
        raise ValueError(f"the views are of a {describe_board(src.spec)}, not of a {describe_board(spec)}")
    views = list(views)
    if not outlier_factor > 1:
        raise ValueError(f"outlier_factor must be > 1, got {outlier_factor}")
    if len(views) < max(min_views, 1):
        raise ValueError(f"only {len(views)} view(s) with a board: need at least {min_views} to calibrate")
    size = views[0].detection.image_size
    for v in views:
        if not isinstance(v, View):
            raise TypeError(f"expected View objects, got {type(v).__name__}")
        if v.detection.image_size != size:
            raise ValueError(f"views have different image sizes: {views[0].name} is {size_text(size)}, {v.name} is {size_text(v.detection.image_size)}")
        if len(v.detection.ids) and v.detection.ids.max() >= spec.n_corners:
            raise ValueError(f"view {v.name} has corner ids beyond the {spec.n_corners} of the board {describe_board(spec)}")
    names = [v.name for v in views]
    if len(set(names)) != len(names):
        raise ValueError("views must have distinct names")

    kept = views
    dropped: dict[str, float] = {}
    fit = _fit(kept, spec, size, flags, criteria)
    threshold = outlier_factor * float(np.median([_rms(r) for r in fit.residuals]))
    for _ in range(max_rounds):
        per_view = np.array([_rms(r) for r in fit.residuals])
        threshold = outlier_factor * float(np.median(per_view))
        bad = per_view > threshold
        if not bad.any() or len(kept) - bad.sum() < min_views:
            break
        dropped.update({v.name: float(e) for v, e, b in zip(kept, per_view, bad) if b})
        kept = [v for v, b in zip(kept, bad) if not b]
        fit = _fit(kept, spec, size, flags, criteria)

    camera = Camera(fit.K, fit.dist, size[0], size[1])
    per_view_rms = {v.name: _rms(r) for v, r in zip(kept, fit.residuals)}
    worst = sorted(per_view_rms.items(), key=lambda kv: -kv[1])[:5]
    lengths = [np.linalg.norm(r, axis=1) for r in fit.residuals]
    k_view = int(np.argmax([x.max() for x in lengths]))
    k_corner = int(np.argmax(lengths[k_view]))
    all_points = np.concatenate([v.detection.corners for v in kept])

    return IntrinsicsResult(
        camera=camera,
        spec=spec,
        rms=fit.rms,
        per_view_rms=per_view_rms,
        std={n: float(x) for n, x in zip(STD_NAMES, fit.std)},
        dropped=list(dropped),
        dropped_rms=dropped,
        worst_views=worst,
        worst_residual_px=float(lengths[k_view][k_corner]),
        worst_residual_at=(kept[k_view].name, int(kept[k_view].detection.ids[k_corner])),
        split_half=_split_half(kept, spec, camera, flags, criteria),
        coverage=coverage_grid(all_points, size),
        n_views=len(kept),
        n_corners=len(all_points),
        n_views_given=len(views),
        outlier_factor=float(outlier_factor),
        outlier_threshold_px=threshold,
        flags=int(flags),
        image_points={v.name: v.detection.corners for v in kept},
        residuals={v.name: r for v, r in zip(kept, fit.residuals)},
        source=None if src is None else src.source,
        n_images=None if src is None else src.n_images,
        missed=[] if src is None else list(src.missed),
        view_corners={v.name: v.detection.corners for v in views},
    )


def _split_half(kept: list[View], spec: BoardSpec, camera: Camera, flags: int, criteria) -> dict:
    halves = (kept[0::2], kept[1::2])
    if min(len(h) for h in halves) < 3:
        return {"skipped": f"needs at least 6 views, has {len(kept)}"}
    size = (camera.width, camera.height)
    cams = []
    for h in halves:
        f = _fit(h, spec, size, flags, criteria)
        cams.append(Camera(f.K, f.dist, *size))
    # Where the data is: every corner of every view kept (the rotation is fitted there).
    corners = np.concatenate([v.detection.corners for v in kept])  # (M, 2)
    diff = model_difference(cams[0], cams[1], corners)
    # The whole image, under the same rotation fitted over the corners and the grid
    # together: outside the corners the two models only extrapolate.
    grid = (16, 12)
    whole = model_difference(cams[0], cams[1], np.concatenate([corners, image_grid(*size, grid)]))[len(corners) :]
    return {
        "rms_px": float(np.sqrt(np.mean(diff**2))),
        "max_px": float(diff.max()),
        "n_points": len(corners),
        "whole_image_rms_px": float(np.sqrt(np.mean(whole**2))),
        "whole_image_max_px": float(whole.max()),
        "grid": list(grid),
        "n_views": [len(h) for h in halves],
        "halves": [{"fx": c.K[0, 0], "fy": c.K[1, 1], "cx": c.K[0, 2], "cy": c.K[1, 2], "k1": c.dist[0]} for c in cams],
    }


def read_report(path: str | Path) -> IntrinsicsResult:
    """An intrinsics calibration read back from its ``intrinsics.json`` (as
    ``gthd calibrate intrinsics`` writes it, with its detections): enough to print the
    report (:meth:`IntrinsicsResult.report_lines`) and redraw its picture
    (:func:`gthd.calibration.report.intrinsics_png`) without the images. ``gthd calibrate report FILE`` does both.

    Raises:
        FormatError: not an intrinsics file, or one written before the detections were
            stored (calibrate again to get a redrawable file).
    """
    from ..fileio import FormatError, read_json
    from .files import FILE_VERSION, INTRINSICS_FORMAT

    path = Path(path)
    d = read_json(path, fmt=INTRINSICS_FORMAT, versions=(FILE_VERSION,))
    q, det = d.get("quality"), d.get("detections")
    if not isinstance(det, dict) or not isinstance(q, dict):
        raise FormatError(f"{path}: holds no detections to redraw from (written by an older gthd: calibrate again)")
    try:
        camera = Camera.from_dict(d["camera"])
        arr = lambda a: np.asarray(a, dtype=np.float64).reshape(-1, 2)  # noqa: E731
        kept = {n: v for n, v in det.items() if v.get("residuals") is not None}
        cov = q["coverage"]
        counts = np.asarray(cov["counts"], dtype=np.int64)
        return IntrinsicsResult(
            camera=camera,
            spec=BoardSpec.from_dict(q["board"]),
            rms=float(q["rms_px"]),
            per_view_rms={k: float(v) for k, v in q["per_view_rms_px"].items()},
            std={k: float(v) for k, v in q["std"].items()},
            dropped=list(q["dropped_views"]),
            dropped_rms={k: float(v) for k, v in q["dropped_views"].items()},
            worst_views=[(w["view"], float(w["rms_px"])) for w in q["worst_views"]],
            worst_residual_px=float(q["worst_residual_px"]),
            worst_residual_at=(q["worst_residual_at"]["view"], int(q["worst_residual_at"]["corner_id"])),
            split_half=q["split_half"],
            coverage=Coverage(counts, float(cov["fraction_covered"])),
            n_views=int(q["views_used"]),
            n_corners=int(q["corners_used"]),
            n_views_given=int(q["views_given"]),
            outlier_factor=float(q["outlier_factor"]),
            outlier_threshold_px=float(q["outlier_threshold_px"]),
            flags=int(q["flags"]),
            image_points={n: arr(v["corners"]) for n, v in kept.items()},
            residuals={n: arr(v["residuals"]) for n, v in kept.items()},
            source=q.get("source"),
            n_images=q.get("images"),
            missed=list(q.get("images_without_board") or []),
            view_corners={n: arr(v["corners"]) for n, v in det.items()},
            command=q.get("command"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise FormatError(f"{path}: an intrinsics file whose report cannot be read ({type(e).__name__}: {e})") from None
