"""Fault injection on capture and its session files, through the real CLI in real
processes: SIGKILL mid-capture, a second Ctrl-C while the session's files are finished, a
full disk (a file-size limit, RLIMIT_FSIZE), torn and mutated logs, a corrupt JPEG, camera
timestamps that go backwards. The rule checked each time: what was captured stays
readable, a session never claims to be complete without its files, and bad input is one
``Error:`` line with no output file.
"""

import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gthd.calibration.files import Calibration, write_calibration
from gthd.capture.check import check_session
from gthd.fileio import FormatError
from gthd.geometry import Camera, Transform
from gthd.session import Session

GTHD = [sys.executable, "-m", "gthd"]


def _ctrl_c_works():
    """In the child: SIGINT back to its default. A shell starts background jobs with
    SIGINT ignored (CI may run us so), and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run(*args, cwd=None, limit_bytes=None, timeout=120):
    def limit():
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run([*GTHD, *map(str, args)], capture_output=True, text=True, cwd=cwd, preexec_fn=limit, timeout=timeout)


def _one_error_line(r) -> str:
    """The run failed with exactly one ``Error:`` line and no traceback; returns it."""
    assert r.returncode != 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, r.stderr
    return errors[0]


def _calibration_from_truth(session: Path, out: Path) -> Path:
    gt = json.loads((session / "ground_truth.json").read_text())
    write_calibration(out, Calibration(Camera.from_dict(gt["camera"]), Transform.from_dict(gt["T_cam_leap"]), gt["clock"]["offset_ns"], {}))
    return out


def _labelled_frames(h5: Path) -> set[int]:
    with h5py.File(h5, "r") as f:
        return set(f["meta/frame_index"][...][f["labels/has_hand"][...]].tolist())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted capture of the simulated rig (seed 3, 6 s, unpaced), its true
    calibration and its dataset: what a killed capture of the same rig is measured against."""
    root = tmp_path_factory.mktemp("faults")
    r = _run("capture", root / "ref", "--camera", "sim", "--tracker", "sim", "--seed", 3, "--duration", 6, "--speed", 0)
    assert r.returncode == 0, r.stderr
    cal = _calibration_from_truth(root / "ref", root / "cal.json")
    r = _run("build-dataset", root / "ref", "--calibration", cal, "-o", root / "ref.h5", "--nohand-share", 0, "--workers", 1)
    assert r.returncode == 0, r.stderr
    return root, cal, _labelled_frames(root / "ref.h5")


@pytest.mark.parametrize("kill_after_s", [1.5, 3.0])
def test_sigkill_mid_capture_keeps_every_frame_on_disk(reference, tmp_path, kill_after_s):
    root, cal, ref_frames = reference
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [*GTHD, "capture", str(out), "--camera", "sim", "--tracker", "sim", "--seed", "3", "--duration", "6", "--speed", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not (out / "frames" / "000010.jpg").exists():  # recording (imports can be slow on a loaded machine)
        assert proc.poll() is None and time.monotonic() < deadline, "the capture never started"
        time.sleep(0.05)
    time.sleep(kill_after_s)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    on_disk = len(list((out / "frames").glob("*.jpg")))
    r = _run("session", "check", out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "never finalised" in r.stderr + r.stdout
    s = Session.open(out)
    assert s.manifest["status"] == "recording"
    assert on_disk - len(s.frames) <= 1  # at most the frame being written when killed
    assert on_disk >= 40
    r = _run("build-dataset", out, "--calibration", cal, "-o", tmp_path / "k.h5", "--nohand-share", 0, "--workers", 1)
    assert r.returncode == 0, r.stderr
    got = _labelled_frames(tmp_path / "k.h5")
    expected = {i for i in ref_frames if i < on_disk}
    assert got <= ref_frames
    assert len(got & expected) >= 0.9 * len(expected), (len(got), len(expected))


def _wait_for(path: Path, proc, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, "the process ended first"
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_second_ctrl_c_while_finishing_leaves_an_interrupted_session(tmp_path):
    out = tmp_path / "s"
    proc = subprocess.Popen(
        [*GTHD, "capture", str(out), "--camera", "sim", "--tracker", "sim", "--seed", "1", "--duration", "2", "--speed", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ctrl_c_works,
    )
    _wait_for(out / "boards" / ".checkerboard.partial", proc)  # the ground truth's boards are being drawn
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "Traceback" not in err and "Aborted" not in err
    assert [ln for ln in err.splitlines() if ln.startswith("Error:")] and "Ctrl-C" in err
    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "interrupted" and "Ctrl-C" in m["stop_reason"]
    assert not (out / "ground_truth.json").exists()
    s = Session.open(out)
    assert s.boards() == {}  # no half-drawn board folder offered to a calibration
    assert check_session(out).ok  # the frames are all there
    r = _run("calibrate", "intrinsics", out, "-o", tmp_path / "cam")
    _one_error_line(r)
    assert not (tmp_path / "cam").exists() or not any((tmp_path / "cam").iterdir())


@pytest.mark.parametrize("limit_kb", [100, 300])
def test_full_disk_is_one_line_and_the_session_stays_readable(tmp_path, limit_kb):
    """At most this many kB per file. 100: the tracker log (~170 kB) fills mid-capture.
    300: the logs fit, a board view (~500 kB) does not, while the session is finished."""
    out = tmp_path / "s"
    r = _run("capture", out, "--camera", "sim", "--tracker", "sim", "--seed", 2, "--duration", 2, "--speed", 0, limit_bytes=limit_kb * 1024)
    line = _one_error_line(r)
    assert "File too large" in line or "No space" in line, line
    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "interrupted"
    assert not (out / "ground_truth.json").exists()
    s = Session.open(out)
    assert len(s.frames) > 0
    assert check_session(out).ok


@pytest.mark.parametrize("limit_mb", [0.2, 6])
def test_a_full_disk_while_building_is_one_line_and_no_file(sim_session, tmp_path, limit_mb):
    """HDF5 can crash the process when a write fails (seen: a segfault inside h5py, the
    temporary file and the worker processes left behind): the builder checks the room
    before each chunk instead."""
    (tmp_path / "out").mkdir()
    r = _run(
        "build-dataset",
        sim_session,
        "--calibration",
        sim_session / "ground_truth.json",
        "-o",
        tmp_path / "out" / "d.h5",
        "--workers",
        2,
        limit_bytes=int(limit_mb * 1e6),
        timeout=120,
    )
    assert "no room" in _one_error_line(r)
    assert list((tmp_path / "out").iterdir()) == []


def test_build_refuses_camera_timestamps_that_go_back(sim_session, tmp_path):
    s = tmp_path / "s"
    subprocess.run(["cp", "-r", str(sim_session), str(s)], check=True)
    lines = (s / "frames.jsonl").read_text().splitlines()
    rec = json.loads(lines[30])
    rec["t_host_ns"] -= 200_000_000  # 0.2 s back: this frame would take another instant's pose
    lines[30] = json.dumps(rec)
    (s / "frames.jsonl").write_text("\n".join(lines) + "\n")
    cal = _calibration_from_truth(s, tmp_path / "cal.json")
    r = _run("session", "check", s)
    assert r.returncode != 0 and "do not increase" in r.stdout + r.stderr
    r = _run("build-dataset", s, "--calibration", cal, "-o", tmp_path / "d.h5")
    assert "do not increase" in _one_error_line(r)
    assert list(tmp_path.glob("*.h5")) == [] and list(tmp_path.glob(".*")) == []


def test_a_corrupt_jpeg_is_named_and_never_stored(sim_session, tmp_path):
    s = tmp_path / "s"
    subprocess.run(["cp", "-r", str(sim_session), str(s)], check=True)
    frame = s / "frames" / "000040.jpg"
    data = bytearray(frame.read_bytes())
    n = len(data)
    data[n // 3 : n // 3 + 1500] = np.random.default_rng(0).integers(0, 256, 1500, dtype=np.uint8).tobytes()  # entropy-coded data
    frame.write_bytes(bytes(data))
    r = _run("session", "check", s, "--decode")
    assert r.returncode != 0 and "000040.jpg" in r.stdout + r.stderr and "Corrupt JPEG" in r.stdout + r.stderr
    cal = _calibration_from_truth(s, tmp_path / "cal.json")
    r = _run("build-dataset", s, "--calibration", cal, "-o", tmp_path / "d.h5", "--workers", 2)
    assert r.returncode == 0, r.stderr
    assert "1 corrupt frames" in r.stdout and "000040" in r.stdout
    with h5py.File(tmp_path / "d.h5", "r") as f:
        assert 40 not in f["meta/frame_index"][...].tolist()


def test_logs_killed_before_their_first_line(sim_session, tmp_path):
    """A capture killed between creating its logs and writing their headers: every log
    empty, or its header torn. The session opens (nothing in it), check names it."""
    s = tmp_path / "s"
    subprocess.run(["cp", "-r", str(sim_session), str(s)], check=True)
    m = json.loads((s / "manifest.json").read_text())
    m["status"] = "recording"
    (s / "manifest.json").write_text(json.dumps(m))
    for name in ("frames.jsonl", "tracker.jsonl", "clock.jsonl"):
        (s / name).write_text("")
    (s / "events.jsonl").write_text('{"format": "gthd-ev')
    sess = Session.open(s)
    assert len(sess.frames) == 0 and sess.torn["events.jsonl"] == 1
    r = _run("session", "check", s)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "no camera frames" in r.stdout + r.stderr
    m["status"] = "complete"  # a finished session must have its headers
    (s / "manifest.json").write_text(json.dumps(m))
    assert "log header" in _one_error_line(_run("session", "check", s))


def test_header_only_logs_are_one_line(sim_session, tmp_path):
    s = tmp_path / "s"
    subprocess.run(["cp", "-r", str(sim_session), str(s)], check=True)
    for name in ("frames.jsonl", "tracker.jsonl", "clock.jsonl", "events.jsonl"):
        (s / name).write_text((s / name).read_text().splitlines()[0] + "\n")
    r = _run("session", "check", s)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "no camera frames" in r.stdout + r.stderr


def test_a_frame_path_never_leaves_the_session(sim_session, tmp_path):
    s = tmp_path / "s"
    subprocess.run(["cp", "-r", str(sim_session), str(s)], check=True)
    lines = (s / "frames.jsonl").read_text().splitlines()
    rec = json.loads(lines[5])
    rec["file"] = "../../../../etc/passwd"
    lines[5] = json.dumps(rec)
    (s / "frames.jsonl").write_text("\n".join(lines) + "\n")
    assert "frames/NNNNNN" in _one_error_line(_run("session", "check", s))


# ------------------------------------------------------------------ property tests
_LOGS = ("frames.jsonl", "tracker.jsonl", "clock.jsonl", "events.jsonl", "manifest.json")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    from gthd.sim.rig import RigConfig
    from gthd.sim.simulate import simulate

    out = tmp_path_factory.mktemp("pristine") / "s"
    simulate(out, seed=5, config=RigConfig(duration_s=0.6), boards=0, clicks=0)
    with open(out / "events.jsonl", "a") as f:  # one event, so that log has a record too
        f.write(json.dumps({"t_host_ns": 1, "source": "tracker", "kind": "lost", "detail": "test"}) + "\n")
    return {name: (out / name).read_bytes() for name in _LOGS}, out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_session_files_read_correctly_or_fail_in_one_line(pristine, tmp_path_factory, data):
    """Random truncations and byte mutations of one file: the only outcomes allowed are a
    read (and a check report) or a FormatError."""
    files, src = pristine
    name = data.draw(st.sampled_from(_LOGS), label="file")
    raw = bytearray(files[name])
    how = data.draw(st.sampled_from(["truncate", "mutate", "both"]), label="how")
    if how in ("mutate", "both"):
        for _ in range(data.draw(st.integers(1, 8), label="mutations")):
            pos = data.draw(st.integers(0, len(raw) - 1))
            raw[pos] = data.draw(st.sampled_from([ord(c) for c in '{}[]":,0123456789-.e \n'] + [0, 0xFF, ord("a")]))
    if how in ("truncate", "both"):
        raw = raw[: data.draw(st.integers(0, len(raw)), label="cut")]
    s = tmp_path_factory.mktemp("mut") / "s"
    s.mkdir()
    for other, content in files.items():
        (s / other).write_bytes(bytes(raw) if other == name else content)
    (s / "frames").symlink_to(src / "frames")
    try:
        Session.open(s)
        check_session(s)
    except FormatError as e:
        assert "\n" not in str(e)
