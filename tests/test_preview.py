"""The capture preview: its drawing (no screen needed) and the real highgui window under
Xvfb, stopped by pressing q with xdotool (CI installs both: .ci/run)."""

import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

from gthd.calibration.files import read_calibration
from gthd.capture.engine import StreamStats
from gthd.capture.preview import WINDOW, Preview
from gthd.capture.sources import CameraFrame
from gthd.fileio import FormatError
from gthd.session import Session
from gthd.sim.rig import RigConfig
from gthd.sim.simulate import simulate
from gthd.sim.truth import session_truth


@pytest.fixture(scope="module")
def truth_file(tmp_path_factory):
    """A simulated session's ground truth: a calibration (camera + T_cam_leap) for seed 0."""
    out = tmp_path_factory.mktemp("p") / "s"
    simulate(out, 0, RigConfig(duration_s=1.0), boards=0, clicks=0)
    return out


def test_preview_projects_the_tracked_hand_onto_the_frame(truth_file):
    s = Session.open(truth_file)
    gt = session_truth(s)
    i = next(k for k, f in enumerate(gt["frames"]) if f["hand"] is not None and f["hand"]["in_image"].all())
    hand = gt["frames"][i]["hand"]
    blank = np.zeros((480, 640, 3), np.uint8)
    capture = SimpleNamespace(
        latest_frame=CameraFrame(blank, 0),
        latest_hands=[{"joints": hand["joints_leap"]}],
        cam_stats=StreamStats(),
        trk_stats=StreamStats(),
    )
    cal = read_calibration(truth_file / "ground_truth.json")  # the simulator's truth reads as the true calibration
    img = Preview((cal.camera, cal.T_cam_leap), window=False).render(capture)
    drawn = np.any(img > 0, axis=2)
    for u, v in np.rint(hand["keypoints"]).astype(int):  # a dot on every true keypoint
        assert drawn[v, u]
    assert drawn.mean() < 0.1  # the skeleton, not a smear
    # without a calibration: a front view in the corner instead
    img = Preview(None, window=False).render(capture)
    assert np.any(img[8:168, -168:-8] > 0) and not np.any(img[200:, :400] > 0)


def test_calibration_file_errors_are_clear(tmp_path):
    with pytest.raises(FormatError, match="no such file"):
        read_calibration(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text('{"camera": {}}')
    with pytest.raises(FormatError, match="expected a 'gthd-calibration' or 'gthd-sim-truth' file"):
        read_calibration(tmp_path / "bad.json")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "gthd",
            "capture",
            str(tmp_path / "s"),
            "--camera",
            "sim",
            "--tracker",
            "sim",
            "--preview",
            "--calibration",
            str(tmp_path / "bad.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and r.stderr.startswith("Error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "s").exists()


def test_q_in_the_preview_window_stops_the_capture(tmp_path, xvfb, truth_file):
    cmd = [
        sys.executable,
        "-m",
        "gthd",
        "capture",
        str(tmp_path / "s"),
        "--camera",
        "sim",
        "--tracker",
        "sim",
        "--duration",
        "60",
        "--speed",
        "1",
        "--preview",
        "--calibration",
        str(truth_file / "ground_truth.json"),
    ]
    p = subprocess.Popen(cmd, env=xvfb, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wid = None
        end = time.monotonic() + 30
        while time.monotonic() < end and wid is None:
            r = subprocess.run(["xdotool", "search", "--name", WINDOW], env=xvfb, capture_output=True, text=True)
            wid = r.stdout.split()[0] if r.stdout.strip() else None
            time.sleep(0.2)
        if not wid:
            p.kill()
            pytest.fail("the preview window never appeared: " + p.communicate()[0][-2000:])
        time.sleep(1.0)  # let it show some frames
        subprocess.run(["xdotool", "windowactivate", "--sync", wid], env=xvfb, capture_output=True)
        subprocess.run(["xdotool", "key", "--window", wid, "q"], env=xvfb, check=True)
        out, _ = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 0, out
    assert "stopped: user (q) -> complete" in out
    s = Session.open(tmp_path / "s")
    assert s.manifest["status"] == "complete" and s.manifest["stop_reason"] == "user (q)"
    assert 10 <= len(s.frames) < 60 * 30
