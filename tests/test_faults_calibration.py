"""Fault injection on `gthd calibrate`, through the real CLI in real processes: weak
(degenerate) clicks, clicks that do not belong to the session, damaged clicks logs,
impossible or unreadable intrinsics, bad boards and videos. The rule checked each time:
bad input is exactly one ``Error:`` line (no traceback), the exit status is not 0, and
nothing is written: no calibration.json, no intrinsics, no temporary file, not even the
output folder; an existing calibration is left as it was.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gthd.calibration.extrinsics import rotation_error_deg
from gthd.calibration.files import read_calibration
from gthd.geometry import Camera, Transform
from gthd.hand import JOINT_INDEX
from gthd.session import Session
from gthd.sim.truth import session_truth

GTHD = [sys.executable, "-m", "gthd"]


def _run(*args, timeout=120):
    return subprocess.run([*GTHD, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def _one_error_line(r) -> str:
    """The run failed with exactly one ``Error:`` line and no traceback; returns it."""
    assert r.returncode != 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, r.stderr
    return errors[0]


def _lines(path: Path) -> tuple[str, list[dict]]:
    """A clicks file as (its header line, its records)."""
    head, *rest = path.read_text().splitlines()
    return head, [json.loads(x) for x in rest]


def _write(path: Path, head: str, records: list) -> Path:
    path.write_text(head + "\n" + "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def _degenerate_clicks(session: Path, out: Path) -> Path:
    """14 clicks of the index fingertip in consecutive tracked frames (0.4 s: the hand
    barely moves, its points nearly on a line), 1.5 px of noise."""
    s = Session.open(session)
    gt = session_truth(s)
    j = JOINT_INDEX["INDEX_TIP"]
    seen = np.isfinite(s.tracker.joints_at(s.frames.t_host_ns)[:, j, 0])
    ok = [f["index"] for f in gt["frames"] if f["hand"] is not None and f["hand"]["in_image"][j] and seen[f["index"]]]
    rng = np.random.default_rng(0)
    head, _ = _lines(session / "clicks_simulated.jsonl")
    records = []
    for i in ok[24:38]:
        u, v = np.asarray(gt["frames"][i]["hand"]["keypoints"][j]) + rng.normal(0, 1.5, 2)
        records.append({"frame_index": i, "t_host_ns": int(s.frames.t_host_ns[i]), "joint": "INDEX_TIP", "u": round(u, 3), "v": round(v, 3)})
    return _write(out, head, records)


def _yaml(K, dist=(0, 0, 0, 0, 0), w=640, h=480) -> str:
    """An OpenCV FileStorage YAML as `gthd calibrate intrinsics` writes it."""
    flat = ", ".join(repr(float(x)) for x in np.ravel(K))
    return (
        f"%YAML:1.0\n---\nimage_width: {w}\nimage_height: {h}\ncamera_matrix: !!opencv-matrix\n   rows: 3\n   cols: 3\n   dt: d\n"
        f"   data: [ {flat} ]\ndistortion_coefficients: !!opencv-matrix\n   rows: 1\n   cols: 5\n   dt: d\n   data: [ {', '.join(map(str, dist))} ]\n"
    )


def _ros(K, dist, w=640, h=480, model="plumb_bob") -> str:
    """A ROS camera_info YAML as camera_calibration writes it."""
    rows = ",\n         ".join(", ".join(f"{x:.6f}" for x in row) for row in np.reshape(K, (3, 3)))
    return (
        f"image_width: {w}\nimage_height: {h}\ncamera_name: cam\ncamera_matrix:\n  rows: 3\n  cols: 3\n  data: [{rows}]\n"
        f"distortion_model: {model}\ndistortion_coefficients:\n  rows: 1\n  cols: {len(dist)}\n  data: [{', '.join(f'{x:.8f}' for x in dist)}]\n"
        "rectification_matrix:\n  rows: 3\n  cols: 3\n  data: [1, 0, 0, 0, 1, 0, 0, 0, 1]\n"
    )


K_OK = [[600.0, 0, 320.0], [0, 600.0, 240.0], [0, 0, 1]]


def _clicks_case(name: str, session: Path, tmp: Path) -> Path:
    """A clicks file damaged as ``name`` says."""
    head, recs = _lines(session / "clicks_simulated.jsonl")
    out = tmp / f"{name}.jsonl"
    r4 = dict(recs[4])
    if name == "weak":
        return _degenerate_clicks(session, out)
    if name == "frame_negative":
        r4["frame_index"] = -3
    elif name == "frame_beyond":
        r4["frame_index"] = 5000
    elif name == "nan_pixel":
        return _write(
            out,
            head,
            recs[:4] + ['{"frame_index": %d, "t_host_ns": %d, "joint": "INDEX_TIP", "u": NaN, "v": 10.0}' % (r4["frame_index"], r4["t_host_ns"])] + recs[5:],
        )
    elif name == "outside":
        r4["u"] = 700.0
    elif name == "unknown_joint":
        r4["joint"] = "ELBOW"
    elif name == "other_recording":
        r4["t_host_ns"] += 1
    elif name == "damaged_middle":
        return _write(out, head, recs[:4] + [json.dumps(r4)[:25]] + recs[5:])
    elif name == "one_pixel":
        return _write(out, head, [dict(r, u=100.0, v=100.0) for r in recs])
    elif name == "not_clicks":
        return _write(out, (session / "manifest.json").read_text().replace("\n", ""), [])
    elif name == "other_session":
        return _write(out, head.replace('"session_id":"sim-7"', '"session_id":"alice-1"'), recs)
    return _write(out, head, recs[:4] + [r4] + recs[5:])


CLICK_CASES = {
    "weak": "do not pin the pose down",
    "frame_negative": "frame -3 is not in the session",
    "frame_beyond": "frame 5000 is not in the session",
    "nan_pixel": "two finite numbers",
    "outside": "outside the 640x480 image",
    "unknown_joint": "unknown joint 'ELBOW'",
    "other_recording": "from another recording",
    "damaged_middle": "line 6 is damaged",
    "one_pixel": "clicked pixels hardly move",
    "not_clicks": "not a clicks file",
    "other_session": "holds clicks of session 'alice-1'",
}


@pytest.mark.parametrize("name", list(CLICK_CASES))
def test_bad_clicks_are_one_line_and_write_nothing(sim_session, tmp_path, name):
    clicks = _clicks_case(name, sim_session, tmp_path)
    out = tmp_path / "cal"
    r = _run("calibrate", "--click", sim_session, "--clicks", clicks, "--intrinsics", sim_session / "ground_truth.json", "-o", out, "--bootstrap", 0)
    assert CLICK_CASES[name] in _one_error_line(r)
    assert not out.exists()


def test_a_failed_run_leaves_the_existing_calibration_as_it_was(sim_session, tmp_path):
    """--force replaces calibration.json only with a good one: the frame beyond the
    session (which crashed after writing calibration.json) changes nothing."""
    out = tmp_path / "cal"
    args = ["calibrate", "--click", sim_session, "--intrinsics", sim_session / "ground_truth.json", "-o", out, "--bootstrap", 0]
    r = _run(*args, "--clicks", sim_session / "clicks_simulated.jsonl")
    assert r.returncode == 0, r.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    r = _run(*args, "--clicks", _clicks_case("frame_beyond", sim_session, tmp_path), "--force")
    assert "frame 5000" in _one_error_line(r)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_weak_clicks_are_kept_only_when_accepted_and_say_so(sim_session, tmp_path):
    clicks = _degenerate_clicks(sim_session, tmp_path / "weak.jsonl")
    r = _run(
        "calibrate",
        "--click",
        sim_session,
        "--clicks",
        clicks,
        "--intrinsics",
        sim_session / "ground_truth.json",
        "-o",
        tmp_path / "cal",
        "--bootstrap",
        0,
        "--accept-weak",
    )
    assert r.returncode == 0, r.stderr
    warning = [ln for ln in r.stderr.splitlines() if ln.startswith("Warning:")]
    assert len(warning) == 1 and "do not pin the pose down" in warning[0] and "Error:" not in r.stderr
    quality = json.loads((tmp_path / "cal" / "calibration.json").read_text())["quality"]
    assert "do not pin the pose down" in quality["warnings"][0]
    assert quality["pose_std_linearised"]["rotation_deg"] > 1.0
    assert "WEAK" in (tmp_path / "cal" / "report.txt").read_text()


def test_a_torn_last_click_is_skipped_with_a_warning(sim_session, tmp_path):
    data = (sim_session / "clicks_simulated.jsonl").read_bytes()
    torn = tmp_path / "torn.jsonl"
    torn.write_bytes(data[:-30])  # the last record cut mid-way, as kill -9 leaves it
    r = _run("calibrate", "--click", sim_session, "--clicks", torn, "--intrinsics", sim_session / "ground_truth.json", "-o", tmp_path / "cal", "--bootstrap", 0)
    assert r.returncode == 0, r.stderr
    assert "torn last line" in r.stderr and "Traceback" not in r.stderr
    assert read_calibration(tmp_path / "cal" / "calibration.json").quality["observations"] == data.count(b"\n") - 2


def _intrinsics_case(name: str, session: Path, tmp: Path) -> Path:
    truth = Camera.from_dict(json.loads((session / "ground_truth.json").read_text())["camera"])
    files = {
        "broken_yaml": ("i.yaml", _yaml(K_OK).replace("1.0 ]", "1.0", 1)),  # the camera matrix's list never closes
        "fx_zero": ("i.yaml", _yaml([[0, 0, 320], [0, 600, 240], [0, 0, 1]])),
        "fx_negative_ros": ("i.yaml", _ros([[-600, 0, 320], [0, 600, 240], [0, 0, 1]], [0] * 5)),
        "nan": (
            "i.json",
            json.dumps(
                {
                    "format": "gthd-intrinsics",
                    "format_version": 1,
                    "camera": {**truth.to_dict(), "camera_matrix": [[math.nan, 0, 320], [0, 600, 240], [0, 0, 1]]},
                }
            ),
        ),
        "principal_point": ("i.yaml", _yaml([[600, 0, 2000], [0, 600, 240], [0, 0, 1]])),
        "shape": (
            "i.json",
            json.dumps({"format": "gthd-intrinsics", "format_version": 1, "camera": {**truth.to_dict(), "camera_matrix": [[600, 0, 320], [0, 600, 240]]}}),
        ),
        "fisheye_ros": ("i.yaml", _ros(truth.K, truth.dist[:4], model="equidistant")),
        "binary": ("i.yaml", b"\x89PNG\r\n\x1a\n\x00\xff\xfe"),
    }
    file, content = files[name]
    path = tmp / file
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


INTRINSICS_CASES = {
    "broken_yaml": "a list that does not close",
    "fx_zero": "focal lengths must be > 0",
    "fx_negative_ros": "focal lengths must be > 0",
    "nan": "finite numbers",
    "principal_point": "principal point (2000, 240) is outside the 640x480 image",
    "shape": "camera_matrix must be 3x3",
    "fisheye_ros": "'equidistant' is not OpenCV's 5-term model",
    "binary": "not a text file",
}


@pytest.mark.parametrize("name", list(INTRINSICS_CASES))
def test_bad_intrinsics_are_one_line_and_write_nothing(sim_session, tmp_path, name):
    out = tmp_path / "cal"
    r = _run(
        "calibrate",
        "--click",
        sim_session,
        "--clicks",
        sim_session / "clicks_simulated.jsonl",
        "--intrinsics",
        _intrinsics_case(name, sim_session, tmp_path),
        "-o",
        out,
        "--bootstrap",
        0,
    )
    assert INTRINSICS_CASES[name] in _one_error_line(r)
    assert not out.exists()


def test_ros_camera_info_intrinsics_calibrate_as_the_truth_does(sim_session, tmp_path):
    truth = json.loads((sim_session / "ground_truth.json").read_text())
    cam = Camera.from_dict(truth["camera"])
    (tmp_path / "ost.yaml").write_text(_ros(cam.K, cam.dist))
    r = _run(
        "calibrate",
        "--click",
        sim_session,
        "--clicks",
        sim_session / "clicks_simulated.jsonl",
        "--intrinsics",
        tmp_path / "ost.yaml",
        "-o",
        tmp_path / "cal",
        "--bootstrap",
        0,
    )
    assert r.returncode == 0, r.stderr
    cal = read_calibration(tmp_path / "cal" / "calibration.json")
    np.testing.assert_allclose(cal.camera.K, cam.K, atol=1e-6)
    assert rotation_error_deg(cal.T_cam_leap, Transform.from_dict(truth["T_cam_leap"])) < 1.0


def test_intrinsics_from_the_boards_are_written_only_with_the_rest(tmp_path):
    """Without --intrinsics the session's boards are calibrated first; with a bad click
    that calibration is not written either (it used to be, before the clicks were read)."""
    from gthd.sim.rig import RigConfig
    from gthd.sim.simulate import simulate

    simulate(tmp_path / "s", 5, RigConfig(duration_s=2.0), boards=6, clicks=12)
    out = tmp_path / "cal"
    r = _run("calibrate", "--click", tmp_path / "s", "--clicks", _clicks_case("frame_beyond", tmp_path / "s", tmp_path), "-o", out, "--bootstrap", 0)
    assert "frame 5000" in _one_error_line(r)
    assert not out.exists()


@pytest.mark.parametrize(
    "source, board, message",
    [
        ("list.json", "board", "expected a 'gthd-board' file"),
        ("video.mp4", "checkerboard", "cannot open video"),
        ("nowhere", "checkerboard", "no such folder, video or session"),
    ],
)
def test_calibrate_intrinsics_bad_input_is_one_line(tmp_path, source, board, message):
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "video.mp4").write_text("not a video")
    (tmp_path / "images").mkdir()
    src = tmp_path / ("images" if board == "board" else source)
    r = _run("calibrate", "intrinsics", src, "--board", tmp_path / "list.json" if board == "board" else board, "-o", tmp_path / "cam")
    line = _one_error_line(r)
    assert message in line, line
    assert r.stderr.count("\n") == 1, r.stderr  # nothing else on stderr (FFmpeg's own complaints)
    assert not (tmp_path / "cam").exists()
