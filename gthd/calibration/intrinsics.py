"""Camera intrinsics from calibration board views, reported the way mrcal reports.

Three steps, each usable on its own:

1. **Detection** (:func:`detect_board`): a checkerboard with ``cv2.findChessboardCornersSB``
   then ``cv2.cornerSubPix`` (SB's own sub-pixel step is off by up to ~1 px at acute corners
   of tilted views), a ChArUco board with ``cv2.aruco.CharucoDetector``. A
   :class:`Detection` holds pixels and the ids of the corners found, indices into
   ``BoardSpec.object_points()``.
2. **Views** (:func:`views_from_folder`, :func:`views_from_video`,
   :func:`views_from_session`): named detections (``000003.png``, ``board.avi#frame120``)
   of one board, all of one image size.
3. **Calibration** (:func:`calibrate`): ``cv2.calibrateCameraExtended`` with OpenCV's
   5-term lens model (k1, k2, p1, p2, k3), outlier views dropped, then the figures that say
   whether to trust the result: RMS and worst residual, the worst views by name, the
   intrinsics' standard deviations, a split-half cross-check (the models fitted to the even
   and to the odd views, compared where the corners are and over the whole image) and the
   image coverage.
   :meth:`IntrinsicsResult.report_lines` writes them as text, :func:`report_png` as a
   picture, :meth:`IntrinsicsResult.quality` as the dict that
   :func:`gthd.calibration.files.write_intrinsics` stores next to the camera.

Pixels follow OpenCV: the centre of the top-left pixel is (0, 0); board points are in the
board frame of gthd.boards, millimetres.

Example::

    views = views_from_session("session", "checkerboard")["checkerboard"]
    result = calibrate(views, views.spec)
    print("\\n".join(result.report_lines("gthd calibrate intrinsics session")))
    write_intrinsics("intrinsics", result.camera, result.quality())
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..boards import BoardSpec, read_board_file
from ..fileio import atomic_write_bytes
from ..geometry import Camera

__all__ = [
    "BoardViews",
    "Coverage",
    "Detection",
    "IntrinsicsResult",
    "View",
    "calibrate",
    "describe_board",
    "detect_board",
    "report_png",
    "views_from_folder",
    "views_from_session",
    "views_from_video",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
STD_NAMES = ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3")
MIN_CHARUCO_CORNERS = 6

_SUBPIX_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4)
_SUBPIX_MAX_HALF_WINDOW = 10  # px; cornerSubPix's winSize is the half side of its window
# Undistortion for the split-half comparison: iterate to 1e-6 px, not OpenCV's 5 steps.
# ChArUco corners are refined by OpenCV in a window that must stay clear of the markers;
# on small boards (corners closer than this, px) that window is a pixel or two and the
# corners are off by up to ~1 px. Detecting on a 2x upscaled image brings them within 0.4 px.
_CHARUCO_UPSCALE_BELOW_PX = 24.0


# ================================================================================ detection
@dataclass(frozen=True)
class Detection:
    """Board corners found in one image.

    Attributes:
        corners: (N, 2) float64 pixels (u, v).
        ids: (N,) int64 indices into ``spec.object_points()``, increasing.
        image_size: (width, height) of the image, pixels.
    """

    corners: np.ndarray
    ids: np.ndarray
    image_size: tuple[int, int]

    def __post_init__(self):
        corners = np.asarray(self.corners, dtype=np.float64)
        ids = np.asarray(self.ids, dtype=np.int64)
        if corners.ndim != 2 or corners.shape[1] != 2 or ids.shape != (len(corners),):
            raise ValueError(f"expected corners (N, 2) and ids (N,), got {corners.shape} and {ids.shape}")
        object.__setattr__(self, "corners", corners)
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "image_size", (int(self.image_size[0]), int(self.image_size[1])))

    def __len__(self) -> int:
        return len(self.ids)


def _to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 from (H, W), (H, W, 1), (H, W, 3) BGR or (H, W, 4) BGRA uint8."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(f"expected an (H, W) or (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[..., 0]
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)


def detect_board(image: np.ndarray, spec: BoardSpec) -> Detection | None:
    """Find the board's corners in one image.

    Args:
        image: (H, W) grayscale or (H, W, 3) BGR uint8.
        spec: the board.

    Returns:
        A :class:`Detection`, or None if the board is not there: a checkerboard must show
        all its inner corners (ids = 0..N-1, ``cv2.findChessboardCornersSB`` order), a
        ChArUco board at least 6 corners that are not all on one line.
    """
    gray = _to_gray(image)
    size = (gray.shape[1], gray.shape[0])
    if spec.kind == "checkerboard":
        corners = _detect_checkerboard(gray, spec)
        if corners is None:
            return None
        return Detection(corners, np.arange(spec.n_corners), size)
    corners, ids = _detect_charuco(gray, spec)
    if len(ids) < MIN_CHARUCO_CORNERS or _collinear(spec.object_points()[ids], spec.square_mm):
        return None
    return Detection(corners, ids, size)


def _detect_checkerboard(gray: np.ndarray, spec: BoardSpec) -> np.ndarray | None:
    """(N, 2) float64 refined corners in SB order, or None."""
    # Plain SB first (fast); the exhaustive, more accurate search when that fails.
    for flags in (0, cv2.CALIB_CB_EXHAUSTIVE | cv2.CALIB_CB_ACCURACY):
        ok, found = cv2.findChessboardCornersSB(gray, spec.pattern_size, flags=flags)
        if ok and found is not None and found.size == 2 * spec.n_corners:
            break
    else:
        return None
    corners = np.asarray(found, dtype=np.float32).reshape(-1, 2)  # OpenCV 4: (N, 1, 2); 5: (N, 2)
    grid = corners.reshape(spec.pattern_size[1], spec.pattern_size[0], 2)  # (rows-1, cols-1, 2)
    spacing = min(
        np.linalg.norm(np.diff(grid, axis=1), axis=-1).min(),
        np.linalg.norm(np.diff(grid, axis=0), axis=-1).min(),
    )
    # Half window about a third of the closest corner spacing: the window then never
    # reaches a neighbouring corner. (A fixed 3 px leaves errors 20 % larger on big boards.)
    half = int(np.clip(round(spacing / 3.0), 2, _SUBPIX_MAX_HALF_WINDOW))
    refined = cv2.cornerSubPix(gray, corners.reshape(-1, 1, 2).copy(), (half, half), (-1, -1), _SUBPIX_CRITERIA)
    refined = np.asarray(refined, dtype=np.float64).reshape(-1, 2)
    # cornerSubPix can run off on a blurred corner: keep SB's corner where it moved far.
    far = np.linalg.norm(refined - corners, axis=1) > 0.5 * half
    refined[far] = corners[far]
    return refined


def _charuco_raw(detector, gray: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(M, 2) float64 corners (in ``gray``'s pixels) and (M,) int64 ids, M may be 0."""
    img = gray if scale == 1 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    corners, ids, _, _ = detector.detectBoard(img)
    if ids is None or corners is None or np.size(ids) == 0:  # None when nothing is found
        return np.zeros((0, 2)), np.zeros(0, np.int64)
    corners = np.asarray(corners, dtype=np.float64).reshape(-1, 2)  # OpenCV 4: (M, 1, 2); 5: (M, 2)
    ids = np.asarray(ids).reshape(-1).astype(np.int64)  # OpenCV 4: (M, 1); 5: (M,)
    if scale != 1:  # pixel centres: u_small = (u_big + 0.5) / s - 0.5
        corners = (corners + 0.5) / scale - 0.5
    return corners, ids


def _charuco_spacing(corners: np.ndarray, ids: np.ndarray, spec: BoardSpec) -> float:
    """Smallest distance (px) between two detected corners that are grid neighbours; inf if none."""
    n = spec.cols - 1
    where = {int(i): k for k, i in enumerate(ids)}
    best = math.inf
    for i, k in where.items():
        for j in ((i + 1) if (i + 1) % n else -1, i + n):
            if j in where:
                best = min(best, float(np.linalg.norm(corners[k] - corners[where[j]])))
    return best


def _detect_charuco(gray: np.ndarray, spec: BoardSpec) -> tuple[np.ndarray, np.ndarray]:
    """(M, 2) float64 corners and (M,) int64 increasing ids (M may be 0)."""
    params = cv2.aruco.CharucoParameters()
    params.tryRefineMarkers = True  # finds the markers of small, tilted boards far more often
    detector = cv2.aruco.CharucoDetector(spec.cv_board(), params, cv2.aruco.DetectorParameters())
    corners, ids = _charuco_raw(detector, gray, 1)
    if len(ids) and _charuco_spacing(corners, ids, spec) < _CHARUCO_UPSCALE_BELOW_PX:
        # Small board: the upscaled image's corners, if it shows enough of the board.
        # (Not a mix: the corners only found at full size are the doubtful ones, off by
        # up to 3 px on simulated views.)
        big_corners, big_ids = _charuco_raw(detector, gray, 2)
        if len(big_ids) >= MIN_CHARUCO_CORNERS and not _collinear(spec.object_points()[big_ids], spec.square_mm):
            corners, ids = big_corners, big_ids
    order = np.argsort(ids, kind="stable")
    return corners[order], ids[order]


def _collinear(points: np.ndarray, scale: float) -> bool:
    """True if (N, 3) board points (z = 0) all lie on one line (within 1e-6 * scale)."""
    xy = points[:, :2] - points[:, :2].mean(axis=0)
    return len(points) < 3 or np.linalg.svd(xy, compute_uv=False)[-1] <= 1e-6 * scale


def describe_board(spec: BoardSpec) -> str:
    """``checkerboard 10x7 squares of 25 mm (9x6 inner corners)`` and the like."""
    if spec.kind == "checkerboard":
        c, r = spec.pattern_size
        return f"checkerboard {spec.cols}x{spec.rows} squares of {spec.square_mm:g} mm ({c}x{r} inner corners)"
    return f"charuco {spec.cols}x{spec.rows} squares of {spec.square_mm:g} mm with {spec.dictionary} markers of {spec.marker_mm:g} mm"


# ==================================================================================== views
@dataclass(frozen=True)
class View:
    """One image's detection, by name (``000003.png``, ``board.avi#frame120``)."""

    name: str
    detection: Detection


@dataclass
class BoardViews(Sequence):
    """The views of one board from one source: a sequence of :class:`View`.

    Attributes:
        spec: the board.
        views: views with a usable detection, in source order.
        source: what they came from (a folder, a video, a session's board folder).
        n_images: images or video frames looked at.
        missed: names of the images in which no usable board was found.
    """

    spec: BoardSpec
    views: list[View]
    source: str
    n_images: int
    missed: list[str] = field(default_factory=list)

    def __getitem__(self, i):
        return self.views[i]

    def __len__(self) -> int:
        return len(self.views)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.views[0].detection.image_size


def _no_board(n: int, what: str, source, spec: BoardSpec) -> ValueError:
    return ValueError(f"no board found in any of the {n} {what} in {source} (looked for a {describe_board(spec)})")


def _size_text(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def views_from_folder(folder: str | Path, spec: BoardSpec) -> BoardViews:
    """Detect the board in every image of a folder (``*.png``, ``*.jpg``, ... sorted by name).

    Raises:
        ValueError: no such folder, no images, an unreadable image, images of different
            sizes, or no board in any image (one line each).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise ValueError(f"no images ({', '.join('*' + s for s in IMAGE_SUFFIXES)}) in {folder}")
    return _views_from_files(files, spec, str(folder))


def _views_from_files(files: list[Path], spec: BoardSpec, source: str) -> BoardViews:
    views, missed = [], []
    first: tuple[str, tuple[int, int]] | None = None
    for path in files:
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise ValueError(f"cannot read image {path}")
        size = (gray.shape[1], gray.shape[0])
        if first is None:
            first = (path.name, size)
        elif size != first[1]:
            raise ValueError(f"images have different sizes: {first[0]} is {_size_text(first[1])}, {path.name} is {_size_text(size)}")
        det = detect_board(gray, spec)
        if det is None:
            missed.append(path.name)
        else:
            views.append(View(path.name, det))
    if not views:
        raise _no_board(len(files), "images", source, spec)
    return BoardViews(spec, views, source, len(files), missed)


def views_from_video(path: str | Path, spec: BoardSpec, every: int = 10, max_frames: int | None = None) -> BoardViews:
    """Detect the board in every ``every``-th frame of a video (frames 0, every, 2*every, ...).

    Args:
        path: a video file cv2.VideoCapture can read.
        every: frame step (>= 1).
        max_frames: stop after looking at this many frames (None: the whole video).

    Returns:
        Views named ``NAME#frameK`` (K the 0-based frame number).
    """
    path = Path(path)
    if isinstance(every, bool) or int(every) != every or every < 1:
        raise ValueError(f"every must be an integer >= 1, got {every!r}")
    if not path.is_file():
        raise ValueError(f"{path}: no such video file")
    # FFmpeg logs its own complaints ("moov atom not found") to stderr: quiet by default,
    # so a bad file gives just the one error line below (read when FFmpeg is first used)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"cannot open video {path}")
    views, missed, looked, k = [], [], 0, 0
    size = None
    try:
        while max_frames is None or looked < max_frames:
            if k % every:
                if not cap.grab():  # skipped frames are not decoded
                    break
                k += 1
                continue
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            looked += 1
            name = f"{path.name}#frame{k}"
            frame_size = (frame.shape[1], frame.shape[0])
            if size is None:
                size = frame_size
            elif frame_size != size:  # a stream that changes resolution midway
                raise ValueError(f"frames have different sizes: frame 0 is {_size_text(size)}, frame {k} is {_size_text(frame_size)}")
            det = detect_board(frame, spec)
            if det is None:
                missed.append(name)
            else:
                views.append(View(name, det))
            k += 1
    finally:
        cap.release()
    if looked == 0:
        raise ValueError(f"no frames could be read from video {path}")
    if not views:
        raise _no_board(looked, f"frames sampled (every {every})", path, spec)
    return BoardViews(spec, views, str(path), looked, missed)


def views_from_session(session_path: str | Path, board_name: str | None = None) -> dict[str, BoardViews]:
    """Board views of a session's ``boards/NAME/`` folders (each with its ``board.json``).

    Args:
        session_path: a session folder (gthd.session).
        board_name: only this board folder; None: every board folder.

    Returns:
        {board name: BoardViews}, in name order.
    """
    from ..session import Session  # the session room, through its public reader

    session = Session.open(session_path)
    boards = session.boards()
    if not boards:
        raise ValueError(f"session {session_path} has no board views (no boards/NAME/ folders)")
    if board_name is not None:
        if board_name not in boards:
            raise ValueError(f"session {session_path} has no board {board_name!r}; it has: {', '.join(boards)}")
        boards = {board_name: boards[board_name]}
    out = {}
    for name, files in boards.items():
        folder = session.path / "boards" / name
        spec = read_board_file(folder / "board.json")
        if not files:
            raise ValueError(f"no images in {folder}")
        out[name] = _views_from_files(list(files), spec, str(folder))
    return out


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
        """The mrcal-like report: what was used, residuals, outliers, worst views,
        uncertainties, split-half stability, coverage, and ``command_line`` verbatim."""
        K, d = self.camera.K, self.camera.dist
        s = self.std
        w, h = self.camera.width, self.camera.height
        lines = [f"board: {describe_board(self.spec)}"]
        if self.source is not None:
            found = f"; board found in {self.n_images - len(self.missed)} of {self.n_images} images" if self.n_images else ""
            if self.missed:
                more = f" and {len(self.missed) - 5} more" if len(self.missed) > 5 else ""
                found += f" (not in {', '.join(self.missed[:5])}{more})"
            lines.append(f"source: {self.source}{found}")
        lines.append(f"image: {w}x{h} px; {self.n_views} of {self.n_views_given} views used, {self.n_corners} corners")
        lines.append(
            f"RMS reprojection error {self.rms:.3f} px; worst residual {self.worst_residual_px:.3f} px "
            f"({self.worst_residual_at[0]}, corner {self.worst_residual_at[1]})"
        )
        if self.dropped:
            dropped = ", ".join(f"{n} ({self.dropped_rms[n]:.2f} px)" for n in self.dropped)
            lines.append(
                f"outliers: {len(self.dropped)} view(s) dropped, per-view RMS above "
                f"{self.outlier_factor:g} x median = {self.outlier_threshold_px:.3f} px: {dropped}"
            )
        else:
            lines.append(f"outliers: none (no view above {self.outlier_factor:g} x median = {self.outlier_threshold_px:.3f} px)")
        lines.append("worst views (per-view RMS): " + ", ".join(f"{n} {v:.3f} px" for n, v in self.worst_views))
        lines.append(
            f"fx = {K[0, 0]:.3f} +- {s['fx']:.3f}, fy = {K[1, 1]:.3f} +- {s['fy']:.3f}, "
            f"cx = {K[0, 2]:.3f} +- {s['cx']:.3f}, cy = {K[1, 2]:.3f} +- {s['cy']:.3f} px"
        )
        lines.append("distortion: " + ", ".join(f"{n} = {v:+.5f} +- {s[n]:.5f}" for n, v in zip(STD_NAMES[4:], (d[0], d[1], d[2], d[3], d[4]))))
        sh = self.split_half
        if "skipped" in sh:
            lines.append(f"split-half stability: not checked ({sh['skipped']})")
        else:
            lines.append(
                f"split-half stability: the models from the {sh['n_views'][0]} even and {sh['n_views'][1]} odd views "
                f"differ by {sh['rms_px']:.3f} px RMS, {sh['max_px']:.3f} px max at the {sh['n_points']} corners; "
                f"{sh['whole_image_rms_px']:.3f} px RMS, {sh['whole_image_max_px']:.3f} px max over the whole image"
            )
        rows, cols = self.coverage.counts.shape
        lines.append(
            f"coverage: {int((self.coverage.counts > 0).sum())} of {rows * cols} cells of a {cols}x{rows} grid "
            f"hold corners ({100 * self.coverage.fraction:.0f} %)"
        )
        lines.append(f"command: {command_line}")
        return lines


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
            raise ValueError(f"views have different image sizes: {views[0].name} is {_size_text(size)}, {v.name} is {_size_text(v.detection.image_size)}")
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


# ================================================================================== picture
_PANEL_W = 560
_TITLE_H = 28


def _panel(size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """A dark (h, _PANEL_W, 3) panel for an image of ``size`` and its pixel scale."""
    s = _PANEL_W / size[0]
    h = int(round(size[1] * s))
    return np.full((h, _PANEL_W, 3), 32, np.uint8), s


def _titled(panel: np.ndarray, title: str) -> np.ndarray:
    bar = np.full((_TITLE_H, panel.shape[1], 3), 16, np.uint8)
    cv2.putText(bar, title, (8, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (235, 235, 235), 1, cv2.LINE_AA)
    return np.concatenate([bar, panel], axis=0)


def _px(p, s: float) -> tuple[int, int]:
    # Pixel centres: image pixel u maps to panel (u + 0.5) * s - 0.5; 4 fractional bits.
    return int(round(((p[0] + 0.5) * s - 0.5) * 16)), int(round(((p[1] + 0.5) * s - 0.5) * 16))


def report_png(result: IntrinsicsResult, path: str | Path) -> Path:
    """Write :func:`report_png_bytes` to ``path`` (atomically)."""
    path = Path(path)
    atomic_write_bytes(path, report_png_bytes(result))
    return path


def report_png_bytes(result: IntrinsicsResult) -> bytes:
    """A picture of the calibration, as PNG bytes; the same from a live result and from
    one read back from its file (:func:`read_report`).

    Left: coverage, the corners of every view given as dots over the image area (those of
    dropped views in red) on the grid cells shaded by corner count. Middle: each corner's
    residual as a vector x50 at its place, coloured by length. Right: histogram of the
    residual lengths with the RMS marked.
    """
    size = (result.camera.width, result.camera.height)
    dropped = set(result.dropped)

    # --- coverage
    cov, s = _panel(size)
    counts = result.coverage.counts
    rows, cols = counts.shape
    top = max(int(counts.max()), 1)
    for r in range(rows):
        for c in range(cols):
            x0, x1 = int(round(c * _PANEL_W / cols)), int(round((c + 1) * _PANEL_W / cols))
            y0, y1 = int(round(r * cov.shape[0] / rows)), int(round((r + 1) * cov.shape[0] / rows))
            n = counts[r, c]
            if n == 0:
                color = (40, 40, 90)  # empty cell: dull red
            else:
                g = int(60 + 140 * math.log1p(n) / math.log1p(top))
                color = (g // 2, g, g // 3)
            cv2.rectangle(cov, (x0, y0), (x1 - 1, y1 - 1), color, -1)
            cv2.rectangle(cov, (x0, y0), (x1 - 1, y1 - 1), (70, 70, 70), 1)
    for name, corners in (result.view_corners or result.image_points).items():
        color = (60, 60, 255) if name in dropped else (255, 255, 255)
        for p in corners:
            cv2.circle(cov, _px(p, s), 2 << 4, color, -1, cv2.LINE_AA, 4)
    cov = _titled(
        cov,
        f"coverage {100 * result.coverage.fraction:.0f} % of {cols}x{rows} cells, "
        f"{result.n_views} views, {result.n_corners} corners" + (f", {len(dropped)} dropped" if dropped else ""),
    )

    # --- residual vectors
    res, _ = _panel(size)
    cv2.rectangle(res, (0, 0), (res.shape[1] - 1, res.shape[0] - 1), (90, 90, 90), 1)
    scale = 50.0
    rms = max(result.rms, 1e-9)
    for name, pts in result.image_points.items():
        for p, e in zip(pts, result.residuals[name]):
            L = float(np.hypot(*e))
            color = (80, 220, 80) if L < 2 * rms else (0, 220, 255) if L < 4 * rms else (60, 60, 255)
            cv2.line(res, _px(p, s), _px(p + scale * e, s), color, 1, cv2.LINE_AA, 4)
            cv2.circle(res, _px(p, s), 1 << 4, (200, 200, 200), -1, cv2.LINE_AA, 4)
    res = _titled(res, f"residuals x{scale:g}: RMS {result.rms:.3f} px, worst {result.worst_residual_px:.3f} px")

    # --- histogram
    hist = np.full_like(res[_TITLE_H:], 32)
    h, w = hist.shape[:2]
    lengths = np.concatenate([np.linalg.norm(r, axis=1) for r in result.residuals.values()])
    hi = max(float(lengths.max()), 1e-6) * 1.05
    bins = 40
    n, _ = np.histogram(lengths, bins=bins, range=(0.0, hi))
    x0, x1, y0, y1 = 40, w - 16, 16, h - 36
    peak = max(int(n.max()), 1)
    for k in range(bins):
        a = x0 + (x1 - x0) * k / bins
        b = x0 + (x1 - x0) * (k + 1) / bins
        top_y = y1 - (y1 - y0) * n[k] / peak
        cv2.rectangle(hist, (int(a) + 1, int(top_y)), (int(b) - 1, y1), (200, 170, 90), -1)
    cv2.line(hist, (x0, y1), (x1, y1), (200, 200, 200), 1)
    cv2.line(hist, (x0, y0), (x0, y1), (200, 200, 200), 1)
    for t in np.linspace(0.0, hi, 5):
        xt = int(x0 + (x1 - x0) * t / hi)
        cv2.line(hist, (xt, y1), (xt, y1 + 4), (200, 200, 200), 1)
        cv2.putText(hist, f"{t:.2f}", (xt - 14, y1 + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (220, 220, 220), 1, cv2.LINE_AA)
    cv2.putText(hist, f"{peak}", (4, y0 + 10), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (220, 220, 220), 1, cv2.LINE_AA)
    xr = int(x0 + (x1 - x0) * result.rms / hi)
    cv2.line(hist, (xr, y0), (xr, y1), (0, 220, 255), 1, cv2.LINE_AA)
    cv2.putText(hist, "RMS", (xr + 4, y0 + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 220, 255), 1, cv2.LINE_AA)
    cv2.putText(hist, "residual length, px", (x1 - 150, y1 + 32), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (220, 220, 220), 1, cv2.LINE_AA)
    hist = _titled(hist, f"residual lengths ({len(lengths)} corners), RMS {result.rms:.3f} px")

    gap = np.full((cov.shape[0], 6, 3), 0, np.uint8)
    picture = np.concatenate([cov, gap, res, gap, hist], axis=1)
    ok, enc = cv2.imencode(".png", picture)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return enc.tobytes()


def read_report(path: str | Path) -> IntrinsicsResult:
    """An intrinsics calibration read back from its ``intrinsics.json`` (as
    ``gthd calibrate intrinsics`` writes it, with its detections): enough to print the
    report (:meth:`IntrinsicsResult.report_lines`) and redraw its picture
    (:func:`report_png`) without the images. ``gthd calibrate report FILE`` does both.

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
