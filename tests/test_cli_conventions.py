"""The command line's conventions, through the real program: JSON for scripts, exit
statuses (0, 1 with one ``Error:`` line, 2 for usage, 130 for Ctrl-C), no OpenCV log noise."""

import json
import signal
import subprocess
import sys
import time

from gthd.session import Session

GTHD = [sys.executable, "-m", "gthd"]


def _ctrl_c_works():
    """In the child: SIGINT back to its default. A shell starts background jobs with
    SIGINT ignored (CI may run us so), and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _gthd(*args, **kw):
    return subprocess.run([*GTHD, *map(str, args)], capture_output=True, text=True, timeout=120, **kw)


def test_session_info_and_check_speak_json(sim_session):
    r = _gthd("session", "info", sim_session, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    s = Session.open(sim_session)
    assert info["camera"]["frames"] == len(s.frames) and info["tracker"]["frames"] == len(s.tracker)
    assert info["status"] == "complete" and info["ground_truth"] is True and info["boards"]["checkerboard"] == 2
    assert abs(info["camera"]["fps"] - 30.0) < 0.5
    r = _gthd("session", "check", sim_session, "--json")
    report = json.loads(r.stdout)
    assert r.returncode == 0 and report["ok"] and report["problems"] == [] and 0 < report["usable_frames"] <= len(s.frames)


def test_an_unusable_session_is_json_and_exit_1(sim_session, tmp_path):
    subprocess.run(["cp", "-r", str(sim_session), str(tmp_path / "s")], check=True)
    (tmp_path / "s" / "frames" / "000003.jpg").unlink()
    r = _gthd("session", "check", tmp_path / "s", "--json")
    assert r.returncode == 1
    report = json.loads(r.stdout)
    assert not report["ok"] and "000003.jpg" in report["problems"][0]


def test_inspect_speaks_json(tmp_path, sim_session):
    cal = sim_session / "ground_truth.json"  # the simulator's truth reads as the true calibration
    r = _gthd("build-dataset", sim_session, "--calibration", cal, "-o", tmp_path / "d.h5", "--workers", 1)
    assert r.returncode == 0, r.stderr
    d = json.loads(_gthd("inspect", tmp_path / "d.h5", "--json").stdout)
    assert d["samples"] == d["hand"] + d["nohand"] == sum(v["samples"] for v in d["splits"].values())
    assert d["hand"] > 0 and len(d["hand_size_px"]["p5_p50_p95"]) == 3


def test_ctrl_c_exits_130_and_usage_errors_2(tmp_path):
    p = subprocess.Popen(
        [*GTHD, "simulate", str(tmp_path / "s"), "--duration", "120"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_ctrl_c_works
    )
    deadline = time.monotonic() + 60
    while not any(tmp_path.glob(".s.*")):  # simulating (into a temporary folder beside OUT)
        assert p.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "Traceback" not in err and "Ctrl-C" in err
    assert not (tmp_path / "s").exists() and not list(tmp_path.glob(".s.*"))  # nothing half-made left
    assert _gthd("simulate").returncode == 2  # a missing argument: usage
    assert _gthd("--version").returncode == 0


def test_opencv_says_nothing_of_its_own(tmp_path):
    """A camera that is not there: our one line, not OpenCV's warnings about V4L."""
    r = _gthd("capture", tmp_path / "s", "--camera", "9", "--tracker", "none", "--duration", "1")
    assert r.returncode == 1
    assert [ln for ln in r.stderr.splitlines() if ln.strip()] == [r.stderr.strip()] and r.stderr.startswith("Error:"), r.stderr


def test_export_then_import_coco_through_the_command_line(tmp_path, sim_session):
    """A dataset out to COCO and back in, by the two commands: the same hands, the same
    keypoints (a COCO file stores 2 decimals)."""
    import h5py
    import numpy as np

    r = _gthd("build-dataset", sim_session, "--calibration", sim_session / "ground_truth.json", "-o", tmp_path / "d.h5", "--workers", 1)
    assert r.returncode == 0, r.stderr
    r = _gthd("export", "coco", tmp_path / "d.h5", "-o", tmp_path / "coco", "--split", "test")
    assert r.returncode == 0 and r.stdout.startswith(f"wrote {tmp_path / 'coco'}"), r.stderr
    r = _gthd("import", "coco", tmp_path / "coco" / "annotations" / "test.json", tmp_path / "coco" / "images", "-o", tmp_path / "back.h5")
    assert r.returncode == 0, r.stderr
    with h5py.File(tmp_path / "d.h5", "r") as a, h5py.File(tmp_path / "back.h5", "r") as b:
        test = (a["meta/split"][...] == 2) & a["labels/has_hand"][...]
        kp_a, vis_a = a["labels/keypoints"][...][test], a["labels/visible"][...][test]
        kp_b, vis_b = b["labels/keypoints"][...][b["labels/has_hand"][...]], b["labels/visible"][...][b["labels/has_hand"][...]]
    assert len(kp_a) == len(kp_b) > 0
    np.testing.assert_array_equal(vis_a, vis_b)
    np.testing.assert_allclose(kp_a[vis_a], kp_b[vis_b], atol=0.01)


def test_every_command_that_writes_takes_out():
    """-o/--out names what a command writes; only the commands creating a session folder
    take it as their OUT argument, and only the read-only ones have neither."""
    import click

    from gthd.cli import main

    def leaves(group, prefix=()):
        for name, cmd in group.commands.items():
            if isinstance(cmd, click.Group):
                yield from leaves(cmd, (*prefix, name))
            if not isinstance(cmd, click.Group) or cmd.invoke_without_command:
                yield " ".join((*prefix, name)), cmd

    without = set()
    for name, cmd in leaves(main):
        opts = {o for p in cmd.params if isinstance(p, click.Option) for o in p.opts}
        if not {"-o", "--out"} <= opts:
            args = [p.name for p in cmd.params if isinstance(p, click.Argument)]
            without.add((name, "out" in args))
    assert without == {("simulate", True), ("capture", True), ("inspect", False), ("session info", False), ("session check", False)}
