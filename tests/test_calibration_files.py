"""The calibration stage's file readers: the clicks log, calibration.json, and the
intrinsics in every format read (OpenCV FileStorage YAML, gthd JSON, ROS camera_info
YAML). Valid files read back exactly; damaged ones (random truncations and byte
mutations, property-based) either still read as valid values or raise one FormatError
line, never any other exception."""

import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gthd.calibration.files import (
    Calibration,
    Click,
    ClicksWriter,
    checked_camera,
    read_calibration,
    read_clicks,
    read_intrinsics,
    write_calibration,
    write_intrinsics,
)
from gthd.fileio import FormatError
from gthd.geometry import Camera, Transform

ROS_YAML = """\
image_width: 640
image_height: 480
camera_name: narrow_stereo
camera_matrix:
  rows: 3
  cols: 3
  data: [600.0, 0.0, 322.5,
         0.0, 603.0, 236.0,
         0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.28, 0.11, 0.001, -0.0008, -0.02]  # k1, k2, p1, p2, k3
rectification_matrix:
  rows: 3
  cols: 3
  data: [1, 0, 0, 0, 1, 0, 0, 0, 1]
projection_matrix:
  rows: 3
  cols: 4
  data: [600.0, 0.0, 322.5, 0.0, 0.0, 603.0, 236.0, 0.0, 0.0, 0.0, 1.0, 0.0]
"""


def _points(n=200, seed=0):
    """Points in front of the camera (mm) that land in and around a 640x480 image."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(-350, 350, n), rng.uniform(-260, 260, n), rng.uniform(400, 900, n)])


def test_ros_camera_info_projects_as_opencv_does(tmp_path, camera):
    """A ROS camera_info YAML (flow lists over several lines, a comment) is the camera it
    describes: its projection equals cv2.projectPoints with the file's K and D."""
    (tmp_path / "ost.yaml").write_text(ROS_YAML)
    cam = read_intrinsics(tmp_path / "ost.yaml")
    assert (cam.width, cam.height) == (640, 480)
    P = _points()
    K = np.array([[600.0, 0, 322.5], [0, 603.0, 236.0], [0, 0, 1]])
    D = np.array([-0.28, 0.11, 0.001, -0.0008, -0.02])
    ref, _ = cv2.projectPoints(P, np.zeros(3), np.zeros(3), K, D)
    np.testing.assert_allclose(cam.project(P), ref.reshape(-1, 2), atol=1e-6)
    # the same camera as the OpenCV YAML that gthd writes
    write_intrinsics(tmp_path / "cv", camera, {})
    np.testing.assert_allclose(read_intrinsics(tmp_path / "cv.yaml").project(P), cam.project(P), atol=1e-6)


@pytest.mark.parametrize("suffix", [".yaml", ".xml"])
def test_opencv_filestorage_files_read_as_opencv_reads_them(tmp_path, camera, suffix):
    """A FileStorage file as OpenCV's calibration sample writes one (extra keys, a
    column of coefficients, a larger matrix) reads as cv2.FileStorage reads it."""
    path = tmp_path / f"cam{suffix}"
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("calibration_time", "Mon Jan  1 10:00:00 2024")
    fs.write("image_width", 640)
    fs.write("image_height", 480)
    fs.write("camera_matrix", camera.K)
    fs.write("distortion_coefficients", camera.dist.reshape(5, 1))
    fs.write("avg_reprojection_error", 0.31)
    fs.write("extrinsic_parameters", np.random.default_rng(0).normal(size=(12, 6)))
    fs.release()
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    K, D = fs.getNode("camera_matrix").mat(), fs.getNode("distortion_coefficients").mat()
    fs.release()
    cam = read_intrinsics(path)
    np.testing.assert_array_equal(cam.K, K)
    np.testing.assert_array_equal(cam.dist, D.ravel())
    P = _points()
    ref, _ = cv2.projectPoints(P, np.zeros(3), np.zeros(3), K, D)
    np.testing.assert_allclose(cam.project(P), ref.reshape(-1, 2), atol=1e-6)


def test_ros_distortion_models(tmp_path):
    """rational_polynomial with zero extra terms is OpenCV's 5-term model; with non-zero
    ones, or a fisheye model, it is refused (gthd would drop the terms silently)."""
    rational = ROS_YAML.replace("plumb_bob", "rational_polynomial").replace("cols: 5", "cols: 8").replace("-0.02]", "-0.02, 0, 0, 0]")
    (tmp_path / "r.yaml").write_text(rational)
    assert read_intrinsics(tmp_path / "r.yaml").dist[4] == pytest.approx(-0.02)
    (tmp_path / "r2.yaml").write_text(rational.replace("-0.02, 0, 0, 0]", "-0.02, 0.1, 0, 0]"))
    with pytest.raises(FormatError, match="5-term"):
        read_intrinsics(tmp_path / "r2.yaml")
    (tmp_path / "f.yaml").write_text(ROS_YAML.replace("plumb_bob", "equidistant"))
    with pytest.raises(FormatError, match="equidistant"):
        read_intrinsics(tmp_path / "f.yaml")


@pytest.mark.parametrize(
    "K, dist, size, message",
    [
        ([[0, 0, 320], [0, 600, 240], [0, 0, 1]], [0] * 5, (640, 480), "focal lengths must be > 0"),
        ([[-600, 0, 320], [0, 600, 240], [0, 0, 1]], [0] * 5, (640, 480), "focal lengths must be > 0"),
        ([[float("nan"), 0, 320], [0, 600, 240], [0, 0, 1]], [0] * 5, (640, 480), "finite"),
        ([[600, 0, 3200], [0, 600, 240], [0, 0, 1]], [0] * 5, (640, 480), "principal point"),
        ([[600, 0], [0, 600]], [0] * 5, (640, 480), "3x3"),
        ([[600, 0, 320], [0, 600, 240], [0, 0, 2]], [0] * 5, (640, 480), "not a camera matrix"),
        ([[600, 5, 320], [0, 600, 240], [0, 0, 1]], [0] * 5, (640, 480), "skew"),
        ([[600, 0, 320], [0, 600, 240], [0, 0, 1]], [0] * 5, (0, 480), "image_width"),
        ([[600, 0, 320], [0, 600, 240], [0, 0, 1]], [0.1, 0, 0, 0, 0, 0.3, 0, 0], (640, 480), "5-term"),
    ],
)
def test_impossible_intrinsics_are_one_line(tmp_path, K, dist, size, message):
    with pytest.raises(FormatError, match=message):
        checked_camera(K, dist, *size, "x")
    # and through a JSON file
    (tmp_path / "i.json").write_text(
        json.dumps(
            {
                "format": "gthd-intrinsics",
                "format_version": 1,
                "camera": {"camera_matrix": K, "distortion_coefficients": dist, "image_width": size[0], "image_height": size[1]},
            }
        )
    )
    with pytest.raises(FormatError, match=message) as e:
        read_intrinsics(tmp_path / "i.json")
    assert "\n" not in str(e.value)


def test_a_torn_last_click_is_skipped_and_said_other_damage_is_refused(tmp_path):
    path = tmp_path / "c.jsonl"
    w = ClicksWriter(path, "s", "INDEX_TIP")
    for k in range(5):
        w.add(Click(k, 1000 * k, "INDEX_TIP", 10.0 + k, 20.0))
    w.close()
    data = path.read_bytes()
    path.write_bytes(data[:-9])  # cut mid-record, as kill -9 leaves it
    warnings = []
    _, clicks = read_clicks(path, warnings)
    assert [c.frame_index for c in clicks] == [0, 1, 2, 3] and "torn last line" in warnings[0]
    # resuming cuts the torn tail off before appending (not glued onto the new record)
    w = ClicksWriter(path, "s", "INDEX_TIP")
    w.add(Click(9, 9000, "INDEX_TIP", 1.0, 2.0))
    w.close()
    warnings = []
    assert [c.frame_index for c in read_clicks(path, warnings)[1]] == [0, 1, 2, 3, 9] and not warnings
    # a damaged line that is not the last: one line, naming it
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2][:20]
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(FormatError, match="line 3 is damaged"):
        read_clicks(path)


# --------------------------------------------------------------- property-based damage
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_INTERESTING = list(b'0123456789.-+eE,:[]{}"\n #!%') + [0, 0xFF]


def _apply(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for kind, pos, byte in ops:
        pos = pos % (len(b) + 1)
        if kind == "set" and pos < len(b):
            b[pos] = byte
        elif kind == "ins":
            b.insert(pos, byte)
        elif kind == "del" and pos < len(b):
            del b[pos]
    return bytes(b)


def damaged(data: bytes):
    """Truncations of ``data`` and a few byte edits (set, insert, delete) of it."""
    byte = st.one_of(st.sampled_from(_INTERESTING), st.integers(0, 255))
    ops = st.lists(st.tuples(st.sampled_from(["set", "ins", "del"]), st.integers(0, len(data)), byte), min_size=1, max_size=4)
    return st.one_of(st.integers(0, len(data)).map(lambda k: data[:k]), ops.map(lambda o: _apply(data, o)))


def _read(reader, suffix: str, data: bytes):
    """``reader`` on ``data`` in a file: the value, or None after a one-line FormatError.
    Any other exception fails the test."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"f{suffix}"
        path.write_bytes(data)
        try:
            return reader(path)
        except FormatError as e:
            assert str(e) and "\n" not in str(e), repr(str(e))
            return None


def _valid_camera(cam: Camera) -> None:
    K = cam.K
    assert K[0, 0] > 0 and K[1, 1] > 0 and np.isfinite(K).all() and np.isfinite(cam.dist).all()
    assert 0 <= K[0, 2] <= cam.width and 0 <= K[1, 2] <= cam.height


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One valid file of each kind, as bytes."""
    root = tmp_path_factory.mktemp("files")
    cam = Camera(np.array([[600.0, 0, 322.5], [0, 603.0, 236.0], [0, 0, 1]]), [-0.28, 0.11, 0.001, -0.0008, -0.02], 640, 480)
    yaml_path, json_path = write_intrinsics(root / "intrinsics", cam, {"rms": 0.2})
    w = ClicksWriter(root / "clicks.jsonl", "sim-0", "INDEX_TIP")
    for k in range(4):
        w.add(Click(3 * k, 10**9 + 33_000_000 * k, "INDEX_TIP", 100.5 + 40 * k, 200.25 - 10 * k))
    w.undo()
    w.close()
    fs = cv2.FileStorage(str(root / "intrinsics.xml"), cv2.FILE_STORAGE_WRITE)
    for key, v in (("image_width", 640), ("image_height", 480), ("camera_matrix", cam.K), ("distortion_coefficients", cam.dist.reshape(1, 5))):
        fs.write(key, v)
    fs.release()
    T = Transform.from_rvec([0.1, -3.0, 0.05], [10.0, 150.0, 600.0], "cam", "leap")
    write_calibration(root / "calibration.json", Calibration(cam, T, -41_000_000, {"rms_px": 2.1}), {"session": "x"})
    return {
        "yaml": yaml_path.read_bytes(),
        "json": json_path.read_bytes(),
        "ros": ROS_YAML.encode(),
        "xml": (root / "intrinsics.xml").read_bytes(),
        "clicks": (root / "clicks.jsonl").read_bytes(),
        "calibration": (root / "calibration.json").read_bytes(),
    }


def test_the_valid_files_read(files):
    for kind, suffix in (("yaml", ".yaml"), ("json", ".json"), ("ros", ".yaml"), ("xml", ".xml")):
        cam = _read(read_intrinsics, suffix, files[kind])
        assert cam is not None and cam.K[0, 0] == 600.0 and cam.dist[0] == -0.28, kind
    _, clicks = _read(read_clicks, ".jsonl", files["clicks"])
    assert [c.frame_index for c in clicks] == [0, 3, 6]  # the fourth was undone
    cal = _read(read_calibration, ".json", files["calibration"])
    assert cal.clock_offset_ns == -41_000_000 and cal.T_cam_leap.t[2] == 600.0


@pytest.mark.parametrize("kind, suffix", [("yaml", ".yaml"), ("json", ".json"), ("ros", ".yaml"), ("xml", ".xml")])
def test_damaged_intrinsics_read_or_are_one_line(files, kind, suffix):
    @FAST
    @given(damaged(files[kind]))
    def check(data):
        cam = _read(read_intrinsics, suffix, data)
        if cam is not None:
            _valid_camera(cam)

    check()


def test_damaged_clicks_read_or_are_one_line(files):
    @FAST
    @given(damaged(files["clicks"]))
    def check(data):
        got = _read(read_clicks, ".jsonl", data)
        if got is not None:
            header, clicks = got
            assert isinstance(header, dict)
            for c in clicks:
                assert isinstance(c.frame_index, int) and isinstance(c.t_host_ns, int) and np.isfinite([c.u, c.v]).all()

    check()


def test_damaged_calibration_reads_or_is_one_line(files):
    @FAST
    @given(damaged(files["calibration"]))
    def check(data):
        cal = _read(read_calibration, ".json", data)
        if cal is not None:
            _valid_camera(cal.camera)
            assert np.allclose(cal.T_cam_leap.R @ cal.T_cam_leap.R.T, np.eye(3), atol=1e-6) and np.isfinite(cal.T_cam_leap.t).all()
            assert isinstance(cal.clock_offset_ns, int)

    check()
