import os
import shutil
import subprocess
import time

import numpy as np
import pytest

from gthd.geometry import Camera

REALHANDS = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "data" / "realhands"


@pytest.fixture
def camera():
    """A webcam-like camera with real distortion (k1, k2, p1, p2, k3)."""
    K = np.array([[600.0, 0, 322.5], [0, 603.0, 236.0], [0, 0, 1]])
    return Camera(K, [-0.28, 0.11, 0.001, -0.0008, -0.02], 640, 480)


@pytest.fixture(scope="session")
def sim_session(tmp_path_factory):
    """A short simulated session shared by the read-only tests."""
    from gthd.sim.rig import RigConfig
    from gthd.sim.simulate import simulate

    out = tmp_path_factory.mktemp("sim") / "s"
    simulate(out, seed=7, config=RigConfig(duration_s=3.0), boards=2, clicks=20)
    return out


@pytest.fixture
def xvfb():
    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        pytest.skip("Xvfb and xdotool are not installed (CI installs them: .ci/run)")
    # -displayfd: Xvfb picks a free display and writes its number when it is ready; on a
    # loaded machine a server has been seen to go before the first client connected, so
    # each start is checked with a real connection (xdotool), and retried
    for _ in range(3):
        proc = subprocess.Popen(
            ["Xvfb", "-displayfd", "1", "-screen", "0", "1024x768x24", "-nolisten", "tcp"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        display = proc.stdout.readline().strip()
        env = {**os.environ, "DISPLAY": f":{display}"}
        if display.isdigit() and _x_answers(env, proc):
            break
        proc.kill()
        proc.wait(timeout=10)
    else:
        pytest.fail("Xvfb did not start (3 tries)")
    yield env
    proc.terminate()
    proc.wait(timeout=10)


def _x_answers(env, proc, timeout_s: float = 10.0) -> bool:
    """True once the X server of ``env`` answers a client (False if it died or stays mute)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        r = subprocess.run(["xdotool", "getdisplaygeometry"], env=env, capture_output=True, text=True, check=False)
        if r.returncode == 0:
            return True
        time.sleep(0.2)
    return False
