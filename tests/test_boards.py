"""Calibration boards (gthd.boards) and their simulated views (gthd.sim.boards).

The board definition is checked against OpenCV's detectors on the flat printable texture,
and the renderer against the ground truth it returns: detected corners must land where
``Camera.project`` says, and ``cv2.calibrateCamera`` on them must give back the lens.
OpenCV 4.x and 5.x return detections in different shapes, hence the defensive reshapes.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from gthd.boards import BoardSpec
from gthd.geometry import Camera, Transform
from gthd.sim.boards import board_corners_in_image, render_board_view, sample_board_poses, undistort_pixels

CAMERA = Camera(
    np.array([[600.0, 0.0, 322.0], [0.0, 605.0, 236.0], [0.0, 0.0, 1.0]]),
    np.array([-0.28, 0.11, 0.001, -0.0008, -0.02]),
    640,
    480,
)
CHECKER = BoardSpec("checkerboard", 9, 6, 25.0)
CHARUCO = BoardSpec("charuco", 7, 5, 30.0, 22.0, "DICT_5X5_100")
SUBPIX = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-3)


def detect_checkerboard(gray: np.ndarray, spec: BoardSpec) -> np.ndarray | None:
    """(N, 2) float64 corners from cv2.findChessboardCornersSB, or None."""
    ok, corners = cv2.findChessboardCornersSB(gray, spec.pattern_size)
    if not ok or corners is None:
        return None
    return np.asarray(corners, dtype=np.float64).reshape(-1, 2)


def detect_charuco(gray: np.ndarray, spec: BoardSpec) -> tuple[np.ndarray, np.ndarray]:
    """(M, 2) float64 corners and (M,) int ids from CharucoDetector (M may be 0)."""
    corners, ids, _, _ = cv2.aruco.CharucoDetector(spec.cv_board()).detectBoard(gray)
    if ids is None or corners is None or len(ids) == 0:
        return np.zeros((0, 2)), np.zeros(0, dtype=int)
    return np.asarray(corners, dtype=np.float64).reshape(-1, 2), np.asarray(ids).reshape(-1).astype(int)


def rotate_about_centre(img: np.ndarray, uv: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate an image (white fill, canvas grown to fit) and (N, 2) pixels along with it."""
    h, w = img.shape[:2]
    side = int(np.ceil(np.hypot(h, w))) + 4
    M = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
    M[:, 2] += [(side - w) / 2, (side - h) / 2]
    out = cv2.warpAffine(img, M, (side, side), flags=cv2.INTER_LINEAR, borderValue=255)
    return out, uv @ M[:, :2].T + M[:, 2]


# ---------------------------------------------------------------------------- BoardSpec


# (Boards with only 3 inner corners along a side, e.g. 5x4, make SB lock onto a wrong grid
# at some angles: a detector weakness, not an ordering question, so they are left out.)
@pytest.mark.parametrize("cols, rows", [(9, 6), (10, 7), (6, 5), (5, 8), (8, 11)])
@pytest.mark.parametrize("degrees", [0.0, 35.0, -35.0, 180.0])
def test_checkerboard_object_points_in_findChessboardCornersSB_order(cols, rows, degrees):
    spec = BoardSpec("checkerboard", cols, rows, 20.0)
    ppm = 1.7  # deliberately not a whole number of pixels per square
    tex, origin = spec.texture(ppm, margin_mm=spec.square_mm)
    truth = spec.object_points()[:, :2] * ppm + origin
    tex, truth = rotate_about_centre(tex, truth, degrees)
    found = detect_checkerboard(tex, spec)
    assert found is not None
    err = np.linalg.norm(found - truth, axis=1)
    assert err.max() < 0.5, f"max {err.max():.3f} px at corner {err.argmax()}"


def test_charuco_object_points_match_opencv():
    for spec in (CHARUCO, BoardSpec("charuco", 5, 4, 40.0, 30.0, "DICT_4X4_50")):
        ours = spec.object_points()
        theirs = np.asarray(spec.cv_board().getChessboardCorners(), dtype=np.float64).reshape(-1, 3)
        assert ours.shape == (spec.n_corners, 3) and ours.dtype == np.float64
        np.testing.assert_allclose(ours, theirs, atol=1e-4)


@pytest.mark.parametrize("spec", [CHARUCO, BoardSpec("charuco", 4, 3, 30.0, 22.0, "DICT_4X4_50")])
@pytest.mark.parametrize("ppm", [2.0, 2.37])
def test_charuco_texture_corners_where_object_points_say(spec, ppm):
    tex, origin = spec.texture(ppm, margin_mm=10.0)
    corners, ids = detect_charuco(tex, spec)
    assert len(ids) == spec.n_corners
    truth = spec.object_points()[ids, :2] * ppm + origin
    assert np.linalg.norm(corners - truth, axis=1).max() < 0.5


def test_texture_pixel_convention_and_antialiasing():
    # Origin: the texture's outer edge (u = -0.5) is at board x = -margin.
    tex, origin = CHECKER.texture(2.0, margin_mm=10.0)
    assert tex.dtype == np.uint8 and tex.shape == (2 * (150 + 20), 2 * (225 + 20))
    np.testing.assert_allclose(origin, [19.5, 19.5])
    assert tex[20, 20] == 0 and tex[19, 19] == 255 and tex[20, 19] == 255 and tex[19, 20] == 255
    assert tex[20, 20 + 50] == 255  # one square (25 mm = 50 px) to the right: white
    # A texel straddling the left edge of the top-left (black) square is half grey.
    tex, origin = CHECKER.texture(2.0, margin_mm=10.25)
    np.testing.assert_allclose(origin, [20.0, 20.0])
    assert abs(int(tex[21, 20]) - 128) <= 1
    assert tex[21, 21] == 0 and tex[21, 19] == 255


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(kind="circles", cols=9, rows=6, square_mm=25.0), "kind"),
        (dict(kind="charuco", cols=2, rows=6, square_mm=25.0, marker_mm=18.0, dictionary="DICT_5X5_100"), "3x3"),
        (dict(kind="checkerboard", cols=3, rows=8, square_mm=25.0), "4x4"),
        (dict(kind="checkerboard", cols=8, rows=6, square_mm=25.0), "180"),
        (dict(kind="checkerboard", cols=9.5, rows=6, square_mm=25.0), "integer"),
        (dict(kind="checkerboard", cols=9, rows=6, square_mm=-1.0), "square_mm"),
        (dict(kind="checkerboard", cols=9, rows=6, square_mm=25.0, marker_mm=18.0), "no markers"),
        (dict(kind="charuco", cols=7, rows=5, square_mm=30.0, marker_mm=30.0, dictionary="DICT_5X5_100"), "smaller"),
        (dict(kind="charuco", cols=7, rows=5, square_mm=30.0, dictionary="DICT_5X5_100"), "marker_mm"),
        (dict(kind="charuco", cols=7, rows=5, square_mm=30.0, marker_mm=22.0, dictionary="DICT_5X5_7"), "dictionary"),
        (dict(kind="charuco", cols=7, rows=5, square_mm=30.0, marker_mm=22.0), "dictionary"),
        (dict(kind="charuco", cols=12, rows=11, square_mm=30.0, marker_mm=22.0, dictionary="DICT_4X4_50"), "markers"),
    ],
)
def test_board_spec_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BoardSpec(**kwargs)


def test_board_spec_dict_round_trip():
    for spec in (CHECKER, CHARUCO):
        d = json.loads(json.dumps(spec.to_dict()))
        assert d["kind"] == spec.kind
        assert BoardSpec.from_dict(d) == spec
    assert "marker_mm" not in CHECKER.to_dict()
    with pytest.raises(ValueError, match="square_mm"):
        BoardSpec.from_dict({"kind": "checkerboard", "cols": 9, "rows": 6})
    with pytest.raises(ValueError, match="checkerboard"):
        CHECKER.cv_board()


# ---------------------------------------------------------------------------- simulator


def test_undistort_pixels_inverts_opencv_projection():
    u, v = np.meshgrid(np.linspace(-0.5, 639.5, 33), np.linspace(-0.5, 479.5, 25))
    uv = np.stack([u, v], axis=-1).reshape(-1, 2)
    xy = undistort_pixels(CAMERA, uv)
    rays = np.concatenate([xy, np.ones((len(xy), 1))], axis=1)
    back = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), CAMERA.K, CAMERA.dist)[0].reshape(-1, 2)
    assert np.abs(back - uv).max() < 1e-3


@pytest.fixture(scope="module")
def checker_views():
    """12 rendered checkerboard views: (poses, images, corners_uv, visible)."""
    rng = np.random.default_rng(7)
    poses = sample_board_poses(CHECKER, CAMERA, 12, rng)
    views = [render_board_view(CHECKER, CAMERA, T, rng=rng) for T in poses]
    return poses, *map(list, zip(*views))


def test_sample_board_poses(checker_views):
    poses, _, corners, visible = checker_views
    assert len(poses) == 12 and all(T.name == "T_cam_board" for T in poses)
    cells, widths = set(), []
    for T, uv, vis in zip(poses, corners, visible):
        assert vis.all()
        assert uv.min() >= 9.5 and uv[:, 0].max() <= 640 - 10.5 and uv[:, 1].max() <= 480 - 10.5
        centre = CAMERA.project(T.apply(np.array([112.5, 75.0, 0.0])))
        cells.add((int(centre[0] // (640 / 3)), int(centre[1] // (480 / 3))))
        widths.append(np.ptp(uv[:, 0]) * 9 / 8 / 640)  # inner corners span 8 of 9 squares
        tilt = np.degrees(np.arccos(np.clip(T.R[2, 2], -1, 1)))  # board normal vs optical axis
        assert tilt <= 50 + 1e-6  # the roll about the normal leaves the normal alone
    assert len(cells) >= 7  # spread over the 3x3 grid (nine cells, then repeats)
    assert 0.12 < min(widths) and max(widths) < 0.9
    # Same rng state, same poses; a board that cannot fit raises.
    a = sample_board_poses(CHECKER, CAMERA, 3, np.random.default_rng(1))
    b = sample_board_poses(CHECKER, CAMERA, 3, np.random.default_rng(1))
    assert all(np.array_equal(x.R, y.R) and np.array_equal(x.t, y.t) for x, y in zip(a, b))
    with pytest.raises(ValueError, match="cannot fit"):
        sample_board_poses(BoardSpec("checkerboard", 4, 29, 20.0), CAMERA, 1, np.random.default_rng(0))


def test_rendered_checkerboard_corners_where_projected(checker_views):
    _, images, corners, _ = checker_views
    raw_err, refined_err = [], []
    for img, uv in zip(images, corners):
        assert img.shape == (480, 640, 3) and img.dtype == np.uint8
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        found = detect_checkerboard(gray, CHECKER)
        assert found is not None, "findChessboardCornersSB missed a board"
        assert found.shape == uv.shape
        raw_err.append(np.linalg.norm(found - uv, axis=1))
        refined = cv2.cornerSubPix(gray, found.astype(np.float32).reshape(-1, 1, 2), (3, 3), (-1, -1), SUBPIX)
        refined_err.append(np.linalg.norm(refined.reshape(-1, 2) - uv, axis=1))
    raw_err, refined_err = np.concatenate(raw_err), np.concatenate(refined_err)
    # SB's own sub-pixel step is off by up to ~1 px at acute corners of steeply tilted
    # views (it is, on the same views, with no noise and no blur); cornerSubPix, which any
    # calibration runs after it, is not. The raw check proves the order, the refined one
    # the geometry.
    assert raw_err.max() < 2.0 and np.median(raw_err) < 0.15
    assert refined_err.max() < 0.35, f"max {refined_err.max():.3f} px"
    assert np.median(refined_err) < 0.15


def test_calibrate_camera_on_rendered_views_recovers_the_lens(checker_views):
    _, images, _, _ = checker_views
    obj = CHECKER.object_points().astype(np.float32)
    image_points = []
    for img in images:
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        found = detect_checkerboard(gray, CHECKER)
        assert found is not None
        refined = cv2.cornerSubPix(gray, found.astype(np.float32).reshape(-1, 1, 2), (3, 3), (-1, -1), SUBPIX)
        image_points.append(refined.reshape(-1, 1, 2))
    rms, K, dist, _, _ = cv2.calibrateCamera([obj] * len(images), image_points, (640, 480), None, None)
    assert rms < 0.2
    assert abs(K[0, 0] / CAMERA.K[0, 0] - 1) < 0.01 and abs(K[1, 1] / CAMERA.K[1, 1] - 1) < 0.01
    assert abs(np.asarray(dist).ravel()[0] - CAMERA.dist[0]) < 0.05


def test_rendered_charuco_corners_where_projected():
    rng = np.random.default_rng(3)
    poses = sample_board_poses(CHARUCO, CAMERA, 4, rng, coverage=(0.45, 0.7))
    for T in poses:
        img, uv, visible = render_board_view(CHARUCO, CAMERA, T, rng=rng)
        assert visible.all()
        corners, ids = detect_charuco(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), CHARUCO)
        assert len(ids) >= 0.8 * CHARUCO.n_corners
        err = np.linalg.norm(corners - uv[ids], axis=1)
        assert err.max() < 0.5, f"max {err.max():.3f} px at id {ids[err.argmax()]}"


def test_render_is_deterministic():
    def render(seed):
        rng = np.random.default_rng(seed)
        (T,) = sample_board_poses(CHARUCO, CAMERA, 1, rng)
        return render_board_view(CHARUCO, CAMERA, T, rng=rng)[0]

    a, b, c = render(11), render(11), render(12)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_render_edge_cases_and_errors():
    rng = np.random.default_rng(0)
    # Seen from behind: a blank plate, no corner visible.
    R = cv2.Rodrigues(np.array([0.0, np.pi * 0.9, 0.0]))[0]
    img, _, visible = render_board_view(CHECKER, CAMERA, Transform(R, [100, -50, 500], "cam", "board"), rng=rng)
    assert not visible.any() and img.std() < 40
    # Half the board plane behind the camera, a coloured background, no noise or blur.
    R = cv2.Rodrigues(np.array([1.4, 0.0, 0.0]))[0]
    background = np.full((480, 640, 3), (40, 120, 200), np.uint8)
    T = Transform(R, [-100, -50, 50], "cam", "board")
    img, uv, visible = render_board_view(CHECKER, CAMERA, T, rng=rng, background=background, noise_sigma=0, blur_sigma=0)
    assert (img[-1] == background[-1]).all()  # the bottom rows look below the board plane
    np.testing.assert_array_equal(board_corners_in_image(CHECKER, CAMERA, T)[1], visible)
    with pytest.raises(ValueError, match="T_cam_board"):
        render_board_view(CHECKER, CAMERA, Transform(R, [0, 0, 500], "board", "cam"), rng=rng)
    with pytest.raises(ValueError, match="background"):
        render_board_view(CHECKER, CAMERA, T, rng=rng, background=np.zeros((480, 640, 4), np.uint8))
    with pytest.raises(ValueError, match="supersample"):
        render_board_view(CHECKER, CAMERA, T, rng=rng, supersample=0)


def test_printable_board_prints_at_true_size_and_is_detectable(tmp_path):
    """`gthd board` writes a PNG whose recorded DPI gives the board's size in mm, and that
    OpenCV detects, corners where the spec says."""
    import struct

    from click.testing import CliRunner

    from gthd.cli import main

    r = CliRunner().invoke(main, ["board", "checkerboard", "--dpi", "150", "-o", str(tmp_path)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    png = (tmp_path / "checkerboard-10x7-25mm.png").read_bytes()
    i = png.find(b"pHYs")
    ppm_x, ppm_y, unit = struct.unpack(">IIB", png[i + 4 : i + 13])
    assert unit == 1 and ppm_x == ppm_y == round(150 / 0.0254)
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    spec = BoardSpec.from_dict(json.loads((tmp_path / "checkerboard-10x7-25mm.json").read_text()))
    found, corners = cv2.findChessboardCornersSB(img, spec.pattern_size)
    assert found
    corners = np.asarray(corners).reshape(-1, 2)
    px_per_mm = 150 / 25.4
    # the spacing of the detected corners is the square size at the recorded resolution
    d = np.linalg.norm(np.diff(corners[: spec.cols - 1], axis=0), axis=1) / px_per_mm
    np.testing.assert_allclose(d, spec.square_mm, rtol=0.01)
    r = CliRunner().invoke(main, ["board", "checkerboard", "--cols", "8", "--rows", "6", "-o", str(tmp_path / "x")], catch_exceptions=False)
    assert r.exit_code == 1 and "180 degrees" in r.output and not (tmp_path / "x").exists()
