"""`gthd calibrate --click` end to end in a real window: under Xvfb, xdotool clicks the
true joint positions of a simulated session, and the solved extrinsics match the truth."""

import subprocess
import sys

import numpy as np
from xdriver import XDriver

from gthd.calibration.extrinsics import rotation_error_deg
from gthd.calibration.files import read_calibration, read_clicks
from gthd.geometry import Transform
from gthd.hand import JOINT_INDEX
from gthd.session import Session
from gthd.sim.rig import RigConfig
from gthd.sim.simulate import simulate
from gthd.sim.truth import session_truth


def test_calibrate_by_clicking_the_true_joint_in_the_window(tmp_path, xvfb):
    simulate(tmp_path / "s", 3, RigConfig(duration_s=12.0), boards=0, clicks=0)
    gt = session_truth(Session.open(tmp_path / "s"))
    j = JOINT_INDEX["INDEX_TIP"]
    cmd = [
        sys.executable,
        "-m",
        "gthd",
        "calibrate",
        "--click",
        str(tmp_path / "s"),
        "--intrinsics",
        str(tmp_path / "s" / "ground_truth.json"),
        "-o",
        str(tmp_path / "cal"),
        "--frames",
        "14",
        "--bootstrap",
        "0",
    ]
    p = subprocess.Popen(cmd, env=xvfb, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    d = XDriver(xvfb, p)
    try:
        t = d.title()
        clicked = 0
        while True:
            hand = gt["frames"][t["frame"]]["hand"]
            if hand is not None and hand["in_image"][j]:
                d.click(np.rint(hand["keypoints"][j]))
                clicked += 1
            else:
                d.key("n")
            if t["k"] == t["n"]:  # that was the last frame: the window closes, the solver runs
                break
            t = d.title(unlike=t)
        out, _ = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 0, out
    assert clicked >= 10
    _, clicks = read_clicks(tmp_path / "cal" / "clicks.jsonl")
    assert len(clicks) == clicked
    cal = read_calibration(tmp_path / "cal" / "calibration.json")
    T = Transform.from_dict(gt["T_cam_leap"])
    assert rotation_error_deg(cal.T_cam_leap, T) < 1.0
    assert np.linalg.norm(cal.T_cam_leap.t - T.t) < 6.0
    assert abs(cal.clock_offset_ns - gt["clock"]["offset_ns"]) < 6e6
    assert "against the simulator's ground truth" in out
