"""Simulated calibration-board views: a printed board seen through a distorted camera.

The board is rendered by inverse mapping through the FULL OpenCV lens model: every output
(sub)pixel is undistorted to a viewing ray, the ray is intersected with the board plane and
the board's printable texture (:meth:`gthd.boards.BoardSpec.texture`) is looked up there.
So the rendered corners sit exactly where ``Camera.project`` puts them, which is what lets
the calibration be tested against ground truth (tests/test_boards.py recovers the
intrinsics with ``cv2.calibrateCamera`` from detected corners).

Frames and units follow gthd.geometry: ``T_cam_board`` maps points FROM the board frame
(gthd.boards) TO the camera frame, millimetres; pixels are (u, v) with the centre of the
top-left pixel at (0, 0).
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict

import cv2
import numpy as np

from ..boards import BoardSpec
from ..geometry import Camera, Transform, distortion_is_monotonic

# Undistortion: iterate until the re-projection error is below 1e-6 px (at most 100 steps);
_MAX_TEXTURE_PX = 4096  # longest texture side; closer boards are rendered slightly soft
# Grey levels of ink and paper: a print is neither pure black nor pure white, and keeping
# clear of 0 and 255 keeps the sensor noise from being clipped (which would bias edges).
_INK, _PAPER = 20.0, 235.0
_PAPER_BACK = 200  # texture grey of the unprinted back of a board


def undistort_pixels(camera: Camera, uv: np.ndarray) -> np.ndarray:
    """(..., 2) pixels -> (..., 2) normalised (x, y): :meth:`gthd.geometry.Camera.undistort`."""
    return camera.undistort(uv)


@functools.lru_cache(maxsize=16)
def _image_radius_cached(key: tuple) -> float:
    K, dist, W, H = key
    camera = Camera(np.frombuffer(K), np.frombuffer(dist), W, H)
    corners = np.array([[-0.5, -0.5], [W - 0.5, -0.5], [-0.5, H - 0.5], [W - 0.5, H - 0.5]])
    return float(np.max(np.linalg.norm(undistort_pixels(camera, corners), axis=1)))


def _image_radius(camera: Camera) -> float:
    """The largest normalized radius |(x, y)| the image sees (at its outer corners).

    A point further out cannot be in the image, whatever ``Camera.project`` says: the
    distortion polynomial folds back outside the field of view.
    """
    return _image_radius_cached((camera.K.tobytes(), camera.dist.tobytes(), camera.width, camera.height))


# A few cameras' ray grids: (K, dist, width, height, supersample) -> (Hs, Ws, 2) float32.
_RAYS: OrderedDict = OrderedDict()
_RAYS_KEEP = 4


def _pixel_rays(camera: Camera, supersample: int) -> np.ndarray:
    """(H*s, W*s, 2) float32 viewing rays (x, y) of all sub-pixel centres, cached per camera.

    Sub-pixel (U, V) has its centre at original pixel ((U + 0.5) / s - 0.5, (V + 0.5) / s - 0.5),
    and is seen along the camera-frame ray (x, y, 1).
    """
    key = (camera.K.tobytes(), camera.dist.tobytes(), camera.width, camera.height, supersample)
    if key in _RAYS:
        _RAYS.move_to_end(key)
        return _RAYS[key]
    s = supersample
    u = (np.arange(camera.width * s) + 0.5) / s - 0.5
    v = (np.arange(camera.height * s) + 0.5) / s - 0.5
    grid = np.stack(np.meshgrid(u, v), axis=-1)  # (Hs, Ws, 2)
    _RAYS[key] = undistort_pixels(camera, grid).astype(np.float32)
    while len(_RAYS) > _RAYS_KEEP:
        _RAYS.popitem(last=False)
    return _RAYS[key]


@functools.lru_cache(maxsize=4)
def _texture_with_alpha(spec: BoardSpec, px_per_mm: float, margin_mm: float, back: bool):
    """(Ht, Wt, 2) uint8 [grey, 255] texture and its (2,) origin_px; ``back``: blank paper."""
    grey, origin = spec.texture(px_per_mm, margin_mm)
    if back:
        grey = np.full_like(grey, _PAPER_BACK)
    tex = np.ascontiguousarray(np.stack([grey, np.full_like(grey, 255)], axis=-1))
    tex.setflags(write=False)
    return tex, origin


def _texture_px_per_mm(spec: BoardSpec, camera: Camera, T_cam_board: Transform, margin_mm: float) -> float:
    """Texture resolution so that a texel is <= 0.5 image px where the board is closest.

    The local magnification (image px per board mm) is measured between neighbours of a
    17 x 17 grid over the printed board, through the full lens model, among points within
    the lens' field of view; it is doubled and rounded up to a power of 2^(1/4), so that
    nearby poses share a cached texture.
    """
    w_mm, h_mm = spec.size_mm
    n = 17
    xs = np.linspace(-margin_mm, w_mm + margin_mm, n)
    ys = np.linspace(-margin_mm, h_mm + margin_mm, n)
    X, Y = np.meshgrid(xs, ys)
    cam = T_cam_board.apply(np.stack([X, Y, np.zeros_like(X)], axis=-1))  # (n, n, 3)
    uv = camera.project(cam)  # (n, n, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (cam[..., 2] > 0) & (np.hypot(cam[..., 0], cam[..., 1]) / cam[..., 2] <= _image_radius(camera))
    scales = [
        (np.linalg.norm(np.diff(uv, axis=1), axis=-1) / (xs[1] - xs[0]))[ok[:, 1:] & ok[:, :-1]],
        (np.linalg.norm(np.diff(uv, axis=0), axis=-1) / (ys[1] - ys[0]))[ok[1:, :] & ok[:-1, :]],
    ]
    scales = np.concatenate(scales)
    scale = float(scales.max()) if scales.size else 0.5  # board out of view: any texture does
    ppm = 2.0 ** (math.ceil(4 * math.log2(2.0 * max(scale, 0.05))) / 4)
    longest_mm = max(w_mm, h_mm) + 2 * margin_mm
    return min(ppm, _MAX_TEXTURE_PX / longest_mm)


def _default_background(width: int, height: int) -> np.ndarray:
    """(H, W, 3) float32 mid-grey diagonal gradient (about 95 to 160)."""
    gx = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    gy = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    grey = 95.0 + 40.0 * gx + 25.0 * gy  # (H, W)
    return np.repeat(grey[..., None], 3, axis=-1)


def _check_pose(T_cam_board: Transform) -> None:
    if not isinstance(T_cam_board, Transform):
        raise ValueError(f"expected a Transform T_cam_board, got {type(T_cam_board).__name__}")
    if (T_cam_board.dst, T_cam_board.src) != ("cam", "board"):
        raise ValueError(f"expected T_cam_board (board -> cam), got {T_cam_board.name}")


def board_corners_in_image(spec: BoardSpec, camera: Camera, T_cam_board: Transform, margin_px: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Where the board's corners land, and whether a detector could see them.

    Returns:
        corners_uv: (N, 2) float64 ``camera.project`` of ``spec.object_points()``, in its order.
        visible: (N,) bool: in front of the camera, the printed side facing it, inside the
            lens' field of view and at least ``margin_px`` inside the image border
            ([-0.5, W-0.5] x [-0.5, H-0.5]).
    """
    _check_pose(T_cam_board)
    r_max = _image_radius(camera)
    cam = T_cam_board.apply(spec.object_points())  # (N, 3)
    uv = camera.project(cam)
    facing = _printed_side_faces_camera(T_cam_board)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.hypot(cam[:, 0], cam[:, 1]) / cam[:, 2]
        visible = (
            facing
            & (cam[:, 2] > 0)
            & (r <= r_max)
            & (uv[:, 0] >= margin_px - 0.5)
            & (uv[:, 0] <= camera.width - 0.5 - margin_px)
            & (uv[:, 1] >= margin_px - 0.5)
            & (uv[:, 1] <= camera.height - 0.5 - margin_px)
        )
    return uv, visible


def _printed_side_faces_camera(T_cam_board: Transform) -> bool:
    # The camera centre in the board frame is -R^T t; the printed side is its z < 0 half.
    return bool((-T_cam_board.R.T @ T_cam_board.t)[2] < 0)


def render_board_view(
    spec: BoardSpec,
    camera: Camera,
    T_cam_board: Transform,
    *,
    rng: np.random.Generator,
    background: np.ndarray | None = None,
    blur_sigma: float = 0.6,
    noise_sigma: float = 2.0,
    supersample: int = 2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one view of a printed board through the camera's full lens model.

    Args:
        spec: the board.
        camera: intrinsics, distortion and image size.
        T_cam_board: board pose, FROM board TO cam, mm.
        rng: source of the sensor noise (the only randomness: same state, same bytes).
        background: (H, W, 3) or (H, W) uint8 shown off the board, or None for a mid-grey
            gradient.
        blur_sigma: Gaussian blur after downsampling, image px (0: none).
        noise_sigma: std of additive Gaussian sensor noise, grey levels (0: none).
        supersample: sub-pixels per pixel along each axis (>= 1), area-averaged.

    Returns:
        image: (H, W, 3) uint8 BGR.
        corners_uv: (N, 2) float64, ``camera.project`` of ``spec.object_points()``.
        visible: (N,) bool, see :func:`board_corners_in_image` (3 px margin).

    The printed board carries a white margin one square wide; seen from behind it is a
    blank grey plate and no corner is visible.
    """
    _check_pose(T_cam_board)
    if isinstance(supersample, bool) or int(supersample) != supersample or supersample < 1:
        raise ValueError(f"supersample must be an integer >= 1, got {supersample!r}")
    supersample = int(supersample)
    W, H = camera.width, camera.height
    if background is None:
        bg = _default_background(W, H)
    else:
        background = np.asarray(background)
        if background.dtype != np.uint8 or background.shape not in ((H, W, 3), (H, W)):
            raise ValueError(f"expected a ({H}, {W}, 3) or ({H}, {W}) uint8 background, got {background.shape} {background.dtype}")
        bg = background.astype(np.float32)
        if bg.ndim == 2:
            bg = np.repeat(bg[..., None], 3, axis=-1)
    if not distortion_is_monotonic(camera):
        raise ValueError("the camera's distortion folds back inside the image: no lens does that")

    rays = _pixel_rays(camera, supersample)  # (Hs, Ws, 2)
    margin_mm = spec.square_mm
    ppm = _texture_px_per_mm(spec, camera, T_cam_board, margin_mm)
    tex, origin = _texture_with_alpha(spec, ppm, margin_mm, not _printed_side_faces_camera(T_cam_board))

    # A board point (X, Y, 0) is seen along the ray s * (x, y, 1) = X r1 + Y r2 + t, with
    # r1, r2 the first two columns of R: a homography Hb = [r1 r2 t] from the board plane
    # to normalized image coordinates. Its inverse takes a ray back to the board, and the
    # third coordinate of Hb^-1 (x, y, 1) is 1/s: positive iff the plane is hit in front
    # of the camera. Scaling to texture pixels leaves that third row unchanged.
    R, t = T_cam_board.R, T_cam_board.t
    Hb = np.column_stack([R[:, 0], R[:, 1], t])
    to_texture = np.array([[ppm, 0.0, origin[0]], [0.0, ppm, origin[1]], [0.0, 0.0, 1.0]])
    try:
        M = to_texture @ np.linalg.inv(Hb)
    except np.linalg.LinAlgError:  # the camera centre lies in the board plane: edge-on
        M = None
    if M is None:
        premult = np.zeros((H, W, 2), np.float32)
    else:
        maps = cv2.perspectiveTransform(rays, M)  # (Hs, Ws, 2) float32 texture pixels
        w = M[2, 0] * rays[..., 0] + M[2, 1] * rays[..., 1] + M[2, 2]  # (Hs, Ws)
        maps[w <= 1e-12] = -10.0  # behind the camera: off the texture, so transparent
        np.clip(maps, -10.0, max(tex.shape) + 10.0, out=maps)  # keep remap's fixed point sane
        # Bilinear lookup with a transparent border: channel 0 is grey premultiplied by the
        # coverage in channel 1, so averaging sub-pixels blends the board edge correctly.
        sub = cv2.remap(tex, maps, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        premult = cv2.resize(sub.astype(np.float32), (W, H), interpolation=cv2.INTER_AREA)  # (H, W, 2)
    alpha = premult[..., 1:2] / 255.0  # (H, W, 1) board coverage
    grey = _INK * alpha + premult[..., 0:1] * ((_PAPER - _INK) / 255.0)  # texture 0..255 -> ink..paper
    img = grey + (1.0 - alpha) * bg  # (H, W, 3) float32
    if blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=float(blur_sigma))
    if noise_sigma > 0:
        img += float(noise_sigma) * rng.standard_normal((H, W, 3), dtype=np.float32)
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8)

    corners_uv, visible = board_corners_in_image(spec, camera, T_cam_board, margin_px=3.0)
    return image, corners_uv, visible


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    return cv2.Rodrigues(np.asarray(axis, dtype=np.float64).reshape(3, 1) * angle)[0]


def sample_board_poses(
    spec: BoardSpec,
    camera: Camera,
    n: int,
    rng: np.random.Generator,
    *,
    max_tilt_deg: float = 50.0,
    max_roll_deg: float = 20.0,
    coverage: tuple[float, float] = (0.2, 0.7),
    margin_px: float = 10.0,
) -> list[Transform]:
    """Board poses like those a person takes to calibrate a camera.

    Each pose keeps the whole squares' area in the image (its outline at least
    ``margin_px`` inside), at a distance where the board spans about ``coverage`` of the
    image width, tilted up to ``max_tilt_deg`` about a random axis in the board plane and
    turned up to ``max_roll_deg`` about its normal (people hold boards roughly upright),
    seen at most 60 degrees off its normal. Board centres go to the cells of a 3x3 grid
    over the image in a random order, all nine before any repeats. Rejection sampling;
    deterministic for a given ``rng`` state.

    Args:
        spec, camera: the board and the camera.
        n: number of poses (>= 0).
        rng: numpy Generator.

    Returns:
        n ``Transform(R, t, "cam", "board")`` (T_cam_board, mm).

    Raises:
        ValueError: if the board cannot be placed in the image that way.
    """
    if isinstance(n, bool) or int(n) != n or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    W, H = camera.width, camera.height
    r_max = _image_radius(camera)
    w_mm, h_mm = spec.size_mm
    centre = np.array([w_mm / 2, h_mm / 2, 0.0])
    # The outline of the squares' area, densely enough to follow a distorted (curved) edge.
    s = np.linspace(0.0, 1.0, 9)
    outline = np.concatenate(
        [np.stack([s * w_mm, 0 * s], 1), np.stack([s * w_mm, 0 * s + h_mm], 1), np.stack([0 * s, s * h_mm], 1), np.stack([0 * s + w_mm, s * h_mm], 1)]
    )
    outline = np.concatenate([outline, np.zeros((len(outline), 1))], axis=1)  # (36, 3)
    cos_max_view = math.cos(math.radians(60.0))

    poses: list[Transform] = []
    cells: list[int] = []
    for _ in range(n):
        if not cells:
            cells = [int(c) for c in rng.permutation(9)]
        cell = cells.pop()
        for attempt in range(400):
            # Mostly the assigned cell; if it cannot take the board, anywhere.
            cx, cy = (cell % 3, cell // 3) if attempt < 300 else (None, None)
            u = rng.uniform(0, W) if cx is None else rng.uniform(cx * W / 3, (cx + 1) * W / 3)
            v = rng.uniform(0, H) if cy is None else rng.uniform(cy * H / 3, (cy + 1) * H / 3)
            frac = rng.uniform(*coverage)
            phi = rng.uniform(0, 2 * math.pi)
            tilt = math.radians(max_tilt_deg) * rng.uniform(0, 1)
            roll = math.radians(max_roll_deg) * rng.uniform(-1, 1)

            depth = camera.K[0, 0] * w_mm / (frac * W)  # fronto-parallel width = frac * W
            x, y = undistort_pixels(camera, np.array([u, v]))
            p_centre = depth * np.array([x, y, 1.0])
            R = _rotation([math.cos(phi), math.sin(phi), 0.0], tilt) @ _rotation([0, 0, 1], roll)
            T = Transform(R, p_centre - R @ centre, "cam", "board")

            normal = R[:, 2]  # board z (into the page) in the camera frame
            if normal @ p_centre < cos_max_view * np.linalg.norm(p_centre):
                continue  # too oblique, or the back side
            cam = T.apply(outline)
            if np.any(cam[:, 2] <= 0) or np.any(np.hypot(cam[:, 0], cam[:, 1]) / cam[:, 2] > r_max):
                continue
            uv = camera.project(cam)
            lo, hi_u, hi_v = margin_px - 0.5, W - 0.5 - margin_px, H - 0.5 - margin_px
            if np.all((uv[:, 0] >= lo) & (uv[:, 0] <= hi_u) & (uv[:, 1] >= lo) & (uv[:, 1] <= hi_v)):
                poses.append(T)
                break
        else:
            raise ValueError(
                f"cannot fit a {spec.cols}x{spec.rows} board of {spec.square_mm:g} mm squares "
                f"({w_mm:g}x{h_mm:g} mm) into the {W}x{H} image at {coverage[0]:.0%}-{coverage[1]:.0%} "
                f"of its width with {margin_px:g} px to spare"
            )
    return poses
