"""Calibration boards found in images: the detection and the views of one board.

1. **Detection** (:func:`detect_board`): a checkerboard with ``cv2.findChessboardCornersSB``
   then ``cv2.cornerSubPix`` (SB's own sub-pixel step is off by up to ~1 px at acute corners
   of tilted views), a ChArUco board with ``cv2.aruco.CharucoDetector``. A
   :class:`Detection` holds pixels and the ids of the corners found, indices into
   ``BoardSpec.object_points()``.
2. **Views** (:func:`views_from_folder`, :func:`views_from_video`,
   :func:`views_from_session`): named detections (``000003.png``, ``board.avi#frame120``)
   of one board, all of one image size: what :func:`gthd.calibration.intrinsics.calibrate`
   takes.

Pixels follow OpenCV: the centre of the top-left pixel is (0, 0).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..boards import BoardSpec, read_board_file
from ..media import list_images

MIN_CHARUCO_CORNERS = 6

_SUBPIX_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4)
_SUBPIX_MAX_HALF_WINDOW = 10  # px; cornerSubPix's winSize is the half side of its window
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


def size_text(size: tuple[int, int]) -> str:
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
    return _views_from_files(list_images(folder), spec, str(folder))


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
            raise ValueError(f"images have different sizes: {first[0]} is {size_text(first[1])}, {path.name} is {size_text(size)}")
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
                raise ValueError(f"frames have different sizes: frame 0 is {size_text(size)}, frame {k} is {size_text(frame_size)}")
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
