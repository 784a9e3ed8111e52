import cv2
import numpy as np
import pytest

from gthd.geometry import Camera, Transform, box_from_points, distortion_is_monotonic, look_at, project_points


def test_projection_equals_opencv(camera):
    rng = np.random.default_rng(0)
    pts = rng.uniform([-300, -250, 200], [300, 250, 1500], (500, 3))
    ours = camera.project(pts)
    cv, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), camera.K, camera.dist)
    np.testing.assert_allclose(ours, cv.reshape(-1, 2), atol=1e-6)


def test_transform_then_project_equals_opencv_with_rvec_tvec(camera):
    rng = np.random.default_rng(1)
    T = Transform.from_rvec(rng.normal(0, 0.4, 3), [20.0, -40.0, 600.0], "cam", "leap")
    pts = rng.uniform(-150, 150, (100, 3))
    ours = camera.project(T.apply(pts))
    cv, _ = cv2.projectPoints(pts, T.rvec, T.t, camera.K, camera.dist)
    np.testing.assert_allclose(ours, cv.reshape(-1, 2), atol=1e-6)


def test_calibration_projects_tracked_joints_as_opencv_does_with_one_visibility_rule(camera):
    """Calibration.project: the tracked joints at t + d, through T_cam_leap, with
    cv2.projectPoints' model; visible = in front of the camera, finite, inside the image."""
    from types import SimpleNamespace

    from gthd.calibration.files import Calibration

    rng = np.random.default_rng(3)
    T = Transform.from_rvec(rng.normal(0, 0.3, 3), [10.0, 30.0, 500.0], "leap", "cam")
    cal = Calibration(camera, T, clock_offset_ns=-20_000_000, quality={})
    joints = rng.uniform(-120, 120, (21, 3))
    joints[3] = [0.0, 0.0, -900.0]  # behind the camera once mapped (z < 0)
    joints[4] = [4000.0, 0.0, 0.0]  # far to the side: outside the image
    joints[5] = np.nan  # not tracked
    asked = []
    tracker = SimpleNamespace(joints_at=lambda t, **kw: asked.append((int(t), kw)) or joints)
    uv, visible = cal.project(tracker, 1_000_000_000, smooth_ns=5)
    assert asked == [(980_000_000, {"smooth_ns": 5})]  # the clock offset added, options passed on
    ok = ~np.isnan(joints).any(axis=1)
    cv, _ = cv2.projectPoints(joints[ok], T.rvec, T.t, camera.K, camera.dist)
    np.testing.assert_allclose(uv[ok], cv.reshape(-1, 2), atol=1e-6)
    assert not visible[[3, 4, 5]].any() and visible[[0, 1, 2, 6, 7]].all()


def test_transform_inverse_and_names():
    rng = np.random.default_rng(2)
    T = Transform.from_rvec(rng.normal(0, 1, 3), rng.normal(0, 100, 3), "cam", "leap")
    assert T.name == "T_cam_leap" and T.inverse().name == "T_leap_cam"
    p = rng.normal(0, 100, (10, 3))
    np.testing.assert_allclose(T.inverse().apply(T.apply(p)), p, atol=1e-9)
    back = Transform.from_dict(T.to_dict())
    np.testing.assert_allclose(back.apply(p), T.apply(p), atol=1e-6)
    assert T.to_dict()["from"] == "leap" and T.to_dict()["to"] == "cam"


def test_look_at_centres_the_target_and_keeps_up_up(camera):
    T = look_at([0, 300, -500], [50, 250, 100], [0, 1, 0])
    c = T.apply(np.array([[50, 250, 100], [50, 350, 100]]))
    assert c[0, 0] == pytest.approx(0, abs=1e-9) and c[0, 1] == pytest.approx(0, abs=1e-9) and c[0, 2] > 0
    assert c[1, 1] < 0  # a point above the target (leap +y) is up in the image (cam -y)
    assert np.linalg.det(T.R) == pytest.approx(1.0)


def test_distortion_monotonic_check():
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    assert distortion_is_monotonic(Camera(K, [-0.2, 0.05, 0, 0, 0], 640, 480))
    assert not distortion_is_monotonic(Camera(K, [-0.9, 0.0, 0, 0, 0], 640, 480))


def test_box_from_points_clips_and_ignores_invisible():
    uv = np.array([[10.0, 20.0], [100.0, 50.0], [700.0, 900.0]])
    box = box_from_points(uv, np.array([True, True, False]), 640, 480)
    np.testing.assert_allclose(box, [10, 20, 100, 50])
    box = box_from_points(uv, None, 640, 480, margin=0.1)
    np.testing.assert_allclose(box, [-0.5, -0.5, 639.5, 479.5])
    assert box_from_points(uv, np.zeros(3, bool), 640, 480) is None


def test_project_points_rejects_bad_shapes(camera):
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        project_points(np.zeros((4, 2)), camera.K, camera.dist)


def test_transform_refuses_a_reflection():
    with pytest.raises(ValueError, match="not a rotation"):
        Transform(np.diag([-1.0, -1.0, -1.0]), np.zeros(3), "cam", "leap")
    with pytest.raises(ValueError, match="not a rotation"):
        Transform(np.eye(3) * 2, np.zeros(3), "cam", "leap")


def test_undistort_inverts_opencv_projection(camera):
    rng = np.random.default_rng(3)
    xy = rng.uniform(-0.45, 0.45, (200, 2))  # normalised coordinates across the image
    uv, _ = cv2.projectPoints(np.column_stack([xy, np.ones(200)]), np.zeros(3), np.zeros(3), camera.K, camera.dist)
    np.testing.assert_allclose(camera.undistort(uv.reshape(-1, 2)), xy, atol=1e-8)


def test_rescale_px_maps_pixel_centres_and_box_iou_is_the_metrics_iou():
    from gthd.benchmark.metrics import iou
    from gthd.geometry import box_iou, rescale_px

    # the centre of pixel 0 of a 2x downscale is between pixels 0 and 1 of the original
    np.testing.assert_allclose(rescale_px([[0.0, 0.0]], 2.0), [[0.5, 0.5]])
    box = np.array([10.0, 20.0, 50.0, 80.0])
    np.testing.assert_allclose(rescale_px(rescale_px(box, 0.5, 0.25), 2.0, 4.0), box)
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [np.nan] * 4, [5, 5, 5, 9]], float)
    b = np.array([[5, 5, 15, 15], [20, 20, 30, 30], [np.nan] * 4, [0, 0, 10, 10]], float)
    np.testing.assert_allclose(iou(a, b), [25 / 175, 0.0, np.nan, 0.0])
    assert box_iou(a[0], b[0]) == 25 / 175  # one pair, as the LSMV import compares its boxes
