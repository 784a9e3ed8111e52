"""`gthd capture` from the command line, with the real adapters: a video file as the
camera (cv2.VideoCapture) and the Ultraleap adapter over the fake `leap` module."""

import sys
import types

import cv2
import fake_leap as fl
import numpy as np
import pytest
from click.testing import CliRunner

from gthd.cli import main
from gthd.session import Session
from gthd.sim.truth import session_truth


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "cam.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20.0, (160, 120))
    assert w.isOpened()
    for i in range(20):
        w.write(np.full((120, 160, 3), 10 * i, np.uint8))
    w.release()
    return path


def test_capture_a_video_file_with_ultraleap(tmp_path, video, monkeypatch):
    monkeypatch.setitem(sys.modules, "leap", fl)
    sc = fl.use(fl.Scenario(steps=[fl.track(fl.hand_spec(7, "left", base=1000.0))] * 300, rate_hz=150.0))
    sc.go.set()
    try:
        r = CliRunner().invoke(
            main, ["capture", str(tmp_path / "s"), "--camera", str(video), "--tracker", "ultraleap", "--subject", "bob"], catch_exceptions=False
        )
    finally:
        fl.use(fl.Scenario())
    assert r.exit_code == 0, r.output
    assert "stopped: end of stream -> complete" in r.output
    s = Session.open(tmp_path / "s")
    assert len(s.frames) == 20 and s.frames.seq.tolist() == list(range(20))
    assert s.manifest["tracker"]["kind"] == "ultraleap" and s.manifest["tracker"]["serial"] == "LP-FAKE-0001"
    assert s.manifest["subject"] == "bob" and s.manifest["camera"]["kind"] == "file"
    assert len(s.tracker) > 20 and len(s.clock) >= 1
    assert all(h["type"] == "left" for hs in s.tracker.hands for h in hs)
    # device times map onto the host clock through the brackets: within the arrival window
    lag = s.tracker.t_arrival_ns - s.tracker.t_host_ns
    assert np.all(lag > 0) and np.all(lag < 200_000_000)


def test_the_wrong_leap_package_is_one_clear_line(tmp_path, video, monkeypatch):
    monkeypatch.setitem(sys.modules, "leap", types.ModuleType("leap"))
    r = CliRunner().invoke(main, ["capture", str(tmp_path / "s"), "--camera", str(video)], catch_exceptions=False)
    assert r.exit_code == 1 and r.output.count("\n") == 1
    assert r.output.startswith("Error:") and "leap.Connection" in r.output
    assert not (tmp_path / "s").exists()


def test_no_camera_and_existing_folder_are_one_line_each(tmp_path):
    r = CliRunner().invoke(main, ["capture", str(tmp_path / "s"), "--camera", "99", "--tracker", "none"], catch_exceptions=False)
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "no camera at index 99" in r.output
    assert not (tmp_path / "s").exists()
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "keep").write_text("x")
    r = CliRunner().invoke(main, ["capture", str(tmp_path / "t"), "--camera", "sim", "--tracker", "sim"], catch_exceptions=False)
    assert r.exit_code == 1 and "never overwrites" in r.output and (tmp_path / "t" / "keep").read_text() == "x"
    r = CliRunner().invoke(main, ["capture", str(tmp_path / "u"), "--camera", "sim", "--tracker", "ultraleap"], catch_exceptions=False)
    assert r.exit_code == 1 and "together" in r.output


def test_capture_sim_writes_truth_and_check_reads_it(tmp_path):
    r = CliRunner().invoke(
        main, ["capture", str(tmp_path / "s"), "--camera", "sim", "--tracker", "sim", "--duration", "1", "--speed", "0"], catch_exceptions=False
    )
    assert r.exit_code == 0, r.output
    s = Session.open(tmp_path / "s")
    # frames stamped within [0, 1) s of the first: 30 give or take the arrival jitter
    assert 29 <= len(s.frames) <= 31 and len(session_truth(s)["frames"]) == len(s.frames)
    assert (s.frames.t_host_ns[-1] - s.frames.t_host_ns[0]) < 1e9
    r = CliRunner().invoke(main, ["session", "check", str(tmp_path / "s"), "--decode"], catch_exceptions=False)
    assert r.exit_code == 0 and "ok:" in r.output and "status complete" in r.output


def test_check_says_what_is_wrong(tmp_path):
    CliRunner().invoke(main, ["capture", str(tmp_path / "s"), "--camera", "sim", "--tracker", "sim", "--duration", "1", "--speed", "0"], catch_exceptions=False)
    (tmp_path / "s" / "frames" / "000003.jpg").unlink()
    (tmp_path / "s" / "frames" / "000999.jpg").write_bytes(b"orphan")
    r = CliRunner().invoke(main, ["session", "check", str(tmp_path / "s")], catch_exceptions=False)
    assert r.exit_code == 1
    assert "problem: 1 indexed frame files are missing or empty (first: frames/000003.jpg)" in r.output
    assert "warning: 1 frame file written but never indexed" in r.output


def test_an_unwritable_output_folder_is_one_line(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    r = CliRunner().invoke(main, ["capture", str(tmp_path / "file" / "s"), "--camera", "sim", "--tracker", "sim", "--duration", "1"], catch_exceptions=False)
    assert r.exit_code == 1 and r.output.count("\n") == 1
    assert r.output.startswith("Error: cannot write the session to") and "Not a directory" in r.output
