"""Camera intrinsics from board views (gthd.calibration.intrinsics), against the simulator's
ground truth and against OpenCV run directly on the same detections.

Three simulated sessions (seeds 1-3, 20 views of each board) are shared by the module.
20 rather than 15 views: ChArUco corners are about twice as noisy as checkerboard ones
(OpenCV's refinement window must stay within the 4 mm white margin beside the markers, a
pixel or two on these small boards). With 15 views, seed 2 put the ChArUco fx 0.6 % and
cy 2 px off (its split-half check said so: 1.5 px); with 20 views six seeds were all
within 0.25 % and 1.4 px (checkerboard: 0.1 % and 0.7 px).
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from gthd.boards import BoardSpec
from gthd.calibration.files import write_intrinsics
from gthd.calibration.intrinsics import (
    BoardViews,
    Detection,
    View,
    calibrate,
    coverage_grid,
    detect_board,
    model_difference,
    read_report,
    undistort_to_rays,
    views_from_folder,
    views_from_session,
    views_from_video,
)
from gthd.calibration.report import intrinsics_png
from gthd.cli import main
from gthd.geometry import Camera, Transform
from gthd.session import Session
from gthd.sim.truth import session_truth

SEEDS = (1, 2, 3)
N_VIEWS = 20
BOARDS = ("checkerboard", "charuco")


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """{seed: session path}, simulated once for the module."""
    from gthd.sim.rig import RigConfig
    from gthd.sim.simulate import simulate

    root = tmp_path_factory.mktemp("intrinsics")
    out = {}
    for seed in SEEDS:
        out[seed] = root / f"s{seed}"
        simulate(out[seed], seed, RigConfig(duration_s=1.0), boards=N_VIEWS, clicks=0)
    return out


@pytest.fixture(scope="module")
def views(sessions):
    """{(seed, board): BoardViews}: detections of every session's boards."""
    return {(seed, name): bv for seed, path in sessions.items() for name, bv in views_from_session(path).items()}


@pytest.fixture(scope="module")
def results(views):
    """{(seed, board): IntrinsicsResult} with the default settings."""
    return {key: calibrate(bv, bv.spec) for key, bv in views.items()}


def truth(session_path) -> tuple[Camera, dict]:
    """The true camera and {board: {file name: T_cam_board}}."""
    gt = session_truth(Session.open(session_path))
    poses = {board: {v["file"].rsplit("/", 1)[-1]: Transform.from_dict(v["T_cam_board"]) for v in d["views"]} for board, d in gt["boards"].items()}
    return Camera.from_dict(gt["camera"]), poses


# ---------------------------------------------------------------------------- detection
@pytest.mark.parametrize("board", BOARDS)
def test_detections_land_on_the_true_corners(sessions, views, board):
    camera, poses = truth(sessions[1])
    bv = views[(1, board)]
    assert len(bv) >= N_VIEWS - 2 and len(bv) + len(bv.missed) == bv.n_images == N_VIEWS
    errors = []
    for v in bv:
        det = v.detection
        assert det.corners.shape == (len(det.ids), 2) and det.corners.dtype == np.float64
        assert det.ids.dtype == np.int64 and np.all(np.diff(det.ids) > 0)
        assert det.image_size == (camera.width, camera.height)
        if board == "checkerboard":
            assert np.array_equal(det.ids, np.arange(bv.spec.n_corners))
        uv = camera.project(poses[board][v.name].apply(bv.spec.object_points()))  # (N, 2)
        errors.append(np.linalg.norm(det.corners - uv[det.ids], axis=1))
    errors = np.concatenate(errors)
    # checkerboard: SB + cornerSubPix; charuco: OpenCV's (2x upscaled for small boards),
    # whose refinement window must stay within the 4 mm margin beside the markers.
    assert np.median(errors) < (0.06 if board == "checkerboard" else 0.1)
    assert errors.max() < (0.35 if board == "checkerboard" else 1.5)


def test_detect_board_takes_gray_and_bgr(sessions):
    spec = BoardSpec("checkerboard", 10, 7, 25.0)
    bgr = cv2.imread(str(sessions[1] / "boards" / "checkerboard" / "000000.png"), cv2.IMREAD_COLOR)
    a = detect_board(bgr, spec)
    b = detect_board(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), spec)
    assert a is not None and b is not None
    np.testing.assert_array_equal(a.corners, b.corners)
    assert detect_board(np.full((480, 640), 128, np.uint8), spec) is None
    with pytest.raises(ValueError, match=r"expected an \(H, W\) or \(H, W, 3\) uint8 image, got \(480, 640\) float32"):
        detect_board(np.zeros((480, 640), np.float32), spec)


def test_charuco_needs_six_corners_off_one_line():
    from gthd.calibration.views import _collinear

    spec = BoardSpec("charuco", 8, 6, 30.0, 22.0, "DICT_5X5_100")
    obj = spec.object_points()
    assert _collinear(obj[[0, 1, 2, 3, 4, 5, 6]], spec.square_mm)  # one row
    assert _collinear(obj[[0, 8, 16, 24]], spec.square_mm)  # a diagonal
    assert not _collinear(obj[[0, 1, 2, 7, 8, 9]], spec.square_mm)
    # A blank image: nothing, not an exception (OpenCV returns None corners).
    assert detect_board(np.full((480, 640, 3), 200, np.uint8), spec) is None


# ------------------------------------------------------------------------------ accuracy
@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_calibration_recovers_the_true_camera(sessions, results, seed, board):
    camera, _ = truth(sessions[seed])
    r = results[(seed, board)]
    K, K0 = r.camera.K, camera.K
    assert abs(K[0, 0] / K0[0, 0] - 1) < 0.005, f"fx {K[0, 0]:.2f} vs {K0[0, 0]:.2f}"
    assert abs(K[1, 1] / K0[1, 1] - 1) < 0.005, f"fy {K[1, 1]:.2f} vs {K0[1, 1]:.2f}"
    assert abs(K[0, 2] - K0[0, 2]) < 2.0 and abs(K[1, 2] - K0[1, 2]) < 2.0
    assert abs(r.camera.dist[0] - camera.dist[0]) < 0.02  # k1
    assert (r.camera.width, r.camera.height) == (camera.width, camera.height)
    assert r.rms < 0.15 and r.worst_residual_px < 1.0
    # The reported uncertainty is about right: within 5 sigma (they assume pure noise).
    assert abs(K[0, 0] - K0[0, 0]) < 5 * r.std["fx"] + 0.5
    # Split-half: the even and odd halves (10 views each) agree where the data is. The
    # ChArUco halves are noisier (0.3 / 0.9 / 0.3 px here, checkerboard 0.2 / 0.3 / 0.2).
    assert r.split_half["rms_px"] < (1.0 if board == "checkerboard" else 1.5), r.split_half
    assert r.coverage.fraction > 0.6
    assert r.n_views >= N_VIEWS - 3 and r.n_corners == sum(len(p) for p in r.image_points.values())


def test_same_as_cv2_calibrate_camera_on_the_same_detections(views, results):
    for key in ((1, "checkerboard"), (2, "charuco")):
        bv, r = views[key], results[key]
        assert not r.dropped
        obj = [bv.spec.object_points()[v.detection.ids].astype(np.float32) for v in bv]
        img = [v.detection.corners.astype(np.float32).reshape(-1, 1, 2) for v in bv]
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)  # as calibrate does: multi-threaded sums differ in the 10th digit
        try:
            rms, K, dist, rvecs, tvecs = cv2.calibrateCamera(obj, img, bv.image_size, None, None)
        finally:
            cv2.setNumThreads(threads)
        np.testing.assert_allclose(r.camera.K, K, rtol=1e-9)
        np.testing.assert_allclose(r.camera.dist, np.ravel(dist)[:5], rtol=1e-9, atol=1e-12)
        assert r.rms == pytest.approx(rms, rel=1e-9)
        # Our per-view RMS and residuals are OpenCV's projection of its own poses.
        v0 = bv[0]
        proj, _ = cv2.projectPoints(obj[0], rvecs[0], tvecs[0], K, dist)
        np.testing.assert_allclose(r.residuals[v0.name], v0.detection.corners - proj.reshape(-1, 2), atol=1e-6)
        e = np.linalg.norm(r.residuals[v0.name], axis=1)
        assert r.per_view_rms[v0.name] == pytest.approx(np.sqrt(np.mean(e**2)))


def test_an_outlier_view_is_dropped_by_name(sessions, views, results):
    camera, _ = truth(sessions[1])
    bv = views[(1, "checkerboard")]
    rng = np.random.default_rng(0)
    src = bv[3].detection
    noisy = src.corners + rng.normal(0.0, 3.0, src.corners.shape)  # several px off, corner by corner
    bad = View("bad.png", Detection(noisy, src.ids, src.image_size))
    given = list(bv)[:7] + [bad] + list(bv)[7:]
    r = calibrate(given, bv.spec)
    assert r.dropped == ["bad.png"] and r.dropped_rms["bad.png"] > 2.0
    assert r.n_views == len(bv) and r.n_views_given == len(bv) + 1 and "bad.png" not in r.per_view_rms
    np.testing.assert_allclose(r.camera.K, results[(1, "checkerboard")].camera.K, rtol=1e-9)
    assert abs(r.camera.K[0, 0] / camera.K[0, 0] - 1) < 0.005
    lines = r.report_lines("gthd test")
    assert any(line.startswith("outliers: 1 view(s) dropped") and "bad.png" in line for line in lines)
    # With the outlier kept (a huge factor), the fit is visibly worse.
    kept = calibrate(given, bv.spec, outlier_factor=1e6)
    assert not kept.dropped and kept.rms > 5 * r.rms
    assert kept.worst_views[0][0] == "bad.png"


def test_too_few_views_and_mixed_sizes_are_refused(views):
    bv = views[(1, "checkerboard")]
    with pytest.raises(ValueError, match="only 4 view"):
        calibrate(list(bv)[:4], bv.spec)
    d = bv[1].detection
    odd = View("big.png", Detection(d.corners, d.ids, (1280, 720)))
    with pytest.raises(ValueError, match="views have different image sizes: 000000.png is 640x480, big.png is 1280x720"):
        calibrate([bv[0], odd] + list(bv)[2:], bv.spec)
    with pytest.raises(ValueError, match="not of a"):
        calibrate(bv, BoardSpec("checkerboard", 9, 6, 25.0))


def test_flags_reach_opencv(views):
    bv = views[(1, "checkerboard")]
    r = calibrate(bv, bv.spec, flags=cv2.CALIB_FIX_K3 | cv2.CALIB_ZERO_TANGENT_DIST)
    assert r.camera.dist[2:].tolist() == [0.0, 0.0, 0.0] and r.std["k3"] == 0.0
    assert r.quality()["flags"] == cv2.CALIB_FIX_K3 | cv2.CALIB_ZERO_TANGENT_DIST


def test_split_half_is_skipped_with_few_views(views):
    bv = views[(1, "checkerboard")]
    r = calibrate(list(bv)[:5], bv.spec)
    assert "skipped" in r.split_half
    assert any("split-half stability: not checked" in line for line in r.report_lines("x"))


# ------------------------------------------------------------------- pieces of the report
def test_model_difference_against_opencv(sessions):
    camera, _ = truth(sessions[1])
    uv = np.array([[10.0, 12.0], [320.0, 240.0], [600.0, 450.0]])
    assert model_difference(camera, camera, uv).max() < 1e-5
    # A shifted principal point is (nearly) a turn of the camera: the rotation absorbs it.
    K = camera.K.copy()
    K[0, 2] += 3.0
    other = Camera(K, camera.dist, camera.width, camera.height)
    raw = model_difference(camera, other, uv, fit_rotation=False)
    np.testing.assert_allclose(raw, 3.0, atol=1e-5)
    assert model_difference(camera, other, uv).max() < 0.5
    # Against OpenCV: the rays project back onto uv with cv2.projectPoints and camera,
    # and onto uv + raw difference with other.
    rays = np.concatenate([undistort_to_rays(camera, uv), np.ones((3, 1))], axis=1)  # (3, 3)
    same, _ = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), camera.K, camera.dist)
    np.testing.assert_allclose(same.reshape(-1, 2), uv, atol=1e-5)
    back, _ = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), other.K, other.dist)
    np.testing.assert_allclose(raw, np.linalg.norm(back.reshape(-1, 2) - uv, axis=1), atol=1e-9)


def test_coverage_grid_counts_corners_per_cell():
    pts = np.array([[0.0, 0.0], [79.0, 79.0], [80.0, 80.0], [639.4, 479.4], [-0.5, 300.0]])  # 80x80 px cells
    cov = coverage_grid(pts, (640, 480), (8, 6))
    assert cov.counts.shape == (6, 8) and cov.counts.sum() == 5
    assert cov.counts[0, 0] == 2 and cov.counts[0, 1] == 0 and cov.counts[1, 1] == 1 and cov.counts[5, 7] == 1
    assert cov.counts[3, 0] == 1 and cov.fraction == pytest.approx(4 / 48)


def test_report_lines_quality_and_files(tmp_path, results):
    r = results[(1, "checkerboard")]
    cmd = "gthd calibrate intrinsics s1 --board checkerboard"
    lines = r.report_lines(cmd)
    text = "\n".join(lines)
    assert lines[-1] == f"command: {cmd}"
    assert f"RMS reprojection error {r.rms:.3f} px; worst residual {r.worst_residual_px:.3f} px" in text
    assert "worst views (per-view RMS): " + f"{r.worst_views[0][0]} {r.worst_views[0][1]:.3f} px" in text
    assert "outliers: none" in text and "split-half stability: the models from the 10 even and 10 odd views" in text
    assert f"fx = {r.camera.K[0, 0]:.3f} +- {r.std['fx']:.3f}" in text and "coverage: " in text
    assert len(r.worst_views) == 5 and r.worst_views[0][1] == max(r.per_view_rms.values())
    assert "board found in 20 of 20 images" in text

    q = r.quality()
    json.dumps(q, allow_nan=False)
    assert q["views_used"] == r.n_views and q["rms_px"] == round(r.rms, 4)
    assert set(q["std"]) == {"fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3"}

    yaml_path, json_path = write_intrinsics(tmp_path / "intrinsics", r.camera, {**q, "command": cmd}, r.detections())
    fs = cv2.FileStorage(str(yaml_path), cv2.FILE_STORAGE_READ)
    K, dist = fs.getNode("camera_matrix").mat(), fs.getNode("distortion_coefficients").mat()
    w, h = int(fs.getNode("image_width").real()), int(fs.getNode("image_height").real())
    fs.release()
    np.testing.assert_allclose(K, r.camera.K, rtol=1e-12)
    np.testing.assert_allclose(np.ravel(dist), r.camera.dist, rtol=1e-12)
    assert (w, h) == (640, 480)
    assert json.loads(json_path.read_text())["quality"]["rms_px"] == q["rms_px"]

    png = intrinsics_png(r, tmp_path / "report.png")
    img = cv2.imread(str(png), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[0] > 200 and img.shape[1] > 3 * img.shape[0]
    assert img.std() > 10
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left

    # the file alone redraws the report: the same lines, the same picture (to rounding)
    back = read_report(json_path)
    assert back.report_lines(cmd) == lines
    redrawn = cv2.imread(str(intrinsics_png(back, tmp_path / "again.png")), cv2.IMREAD_COLOR)
    assert redrawn.shape == img.shape and np.mean(np.abs(redrawn.astype(int) - img.astype(int))) < 0.5
    r2 = CliRunner().invoke(main, ["calibrate", "report", str(json_path), "-o", str(tmp_path / "cli")], catch_exceptions=False)
    assert r2.exit_code == 0 and r2.output.splitlines()[: len(lines)] == lines and (tmp_path / "cli" / "intrinsics.png").exists()
    old = json.loads(json_path.read_text())
    del old["detections"]  # a file from before the detections were stored
    (tmp_path / "old.json").write_text(json.dumps(old))
    r3 = CliRunner().invoke(main, ["calibrate", "report", str(tmp_path / "old.json")], catch_exceptions=False)
    assert r3.exit_code == 1 and "calibrate again" in r3.output


# -------------------------------------------------------------------------------- sources
def test_views_from_folder_and_its_errors(tmp_path, sessions):
    src = sessions[1] / "boards" / "checkerboard"
    spec = BoardSpec("checkerboard", 10, 7, 25.0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for k in range(3):
        (folder / f"{k:02d}.png").write_bytes((src / f"{k:06d}.png").read_bytes())
    cv2.imwrite(str(folder / "03.png"), np.full((480, 640), 255, np.uint8))  # no board in it
    bv = views_from_folder(folder, spec)
    assert isinstance(bv, BoardViews) and [v.name for v in bv] == ["00.png", "01.png", "02.png"]
    assert bv.missed == ["03.png"] and bv.n_images == 4 and bv.image_size == (640, 480)

    with pytest.raises(ValueError, match=r"empty: no images \(\.jpg, .*\.tif"):
        views_from_folder(_empty(tmp_path), spec)
    with pytest.raises(ValueError, match="no such folder"):
        views_from_folder(tmp_path / "nope", spec)

    blank = tmp_path / "blank"
    blank.mkdir()
    for k in range(14):
        cv2.imwrite(str(blank / f"{k:02d}.png"), np.full((480, 640), 128, np.uint8))
    with pytest.raises(ValueError) as e:
        views_from_folder(blank, spec)
    assert str(e.value) == (f"no board found in any of the 14 images in {blank} (looked for a checkerboard 10x7 squares of 25 mm (9x6 inner corners))")
    charuco = BoardSpec("charuco", 8, 6, 30.0, 22.0, "DICT_5X5_100")
    with pytest.raises(ValueError, match=r"looked for a charuco 8x6 squares of 30 mm with DICT_5X5_100 markers of 22 mm"):
        views_from_folder(blank, charuco)

    sizes = tmp_path / "sizes"
    sizes.mkdir()
    cv2.imwrite(str(sizes / "a.png"), np.zeros((480, 640), np.uint8))
    cv2.imwrite(str(sizes / "b.png"), np.zeros((720, 1280), np.uint8))
    with pytest.raises(ValueError) as e:
        views_from_folder(sizes, spec)
    assert str(e.value) == "images have different sizes: a.png is 640x480, b.png is 1280x720"

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image .*x.png"):
        views_from_folder(broken, spec)


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    (d / "notes.txt").write_text("no images here")
    return d


def test_views_from_video(tmp_path, sessions, views):
    src = sessions[1] / "boards" / "checkerboard"
    path = tmp_path / "boards.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    assert writer.isOpened()
    for k in range(8):
        img = cv2.imread(str(src / f"{k:06d}.png"), cv2.IMREAD_COLOR)
        writer.write(img)
        writer.write(img)  # two frames each: every=2 samples each image once
    writer.write(np.full((480, 640, 3), 128, np.uint8))  # frame 16, no board
    writer.release()
    bv = views_from_video(path, views[(1, "checkerboard")].spec, every=2)
    assert bv.n_images == 9 and bv.missed == ["boards.avi#frame16"]
    assert [v.name for v in bv] == [f"boards.avi#frame{2 * k}" for k in range(8)]
    png = views[(1, "checkerboard")]
    for v, w in zip(bv, list(png)[:8]):
        # JPEG compression moves corners a little
        assert np.abs(v.detection.corners - w.detection.corners).max() < 0.3
    limited = views_from_video(path, png.spec, every=1, max_frames=3)
    assert limited.n_images == 3 and len(limited) == 3

    with pytest.raises(ValueError, match="no such video file"):
        views_from_video(tmp_path / "none.avi", png.spec)
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        views_from_video(path, png.spec, every=0)
    blank = tmp_path / "blank.avi"
    writer = cv2.VideoWriter(str(blank), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    for _ in range(4):
        writer.write(np.full((480, 640, 3), 128, np.uint8))
    writer.release()
    with pytest.raises(ValueError, match=r"no board found in any of the 2 frames sampled \(every 2\) in .*blank.avi"):
        views_from_video(blank, png.spec, every=2)


def test_views_from_session_picks_boards(sessions, views):
    one = views_from_session(sessions[1], "charuco")
    assert list(one) == ["charuco"] and one["charuco"].spec == BoardSpec("charuco", 8, 6, 30.0, 22.0, "DICT_5X5_100")
    assert [v.name for v in one["charuco"]] == [v.name for v in views[(1, "charuco")]]
    assert one["charuco"].source.endswith("boards/charuco")
    with pytest.raises(ValueError, match="has no board 'nope'; it has: charuco, checkerboard"):
        views_from_session(sessions[1], "nope")
