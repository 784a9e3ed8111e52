"""The capture engine with simulated and fault-injecting fake sources."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from gthd.capture.engine import Capture, CaptureConfig
from gthd.capture.sources import CameraFrame, ClockBracket, SourceError, TrackerEvent, TrackerFrame
from gthd.session import Session
from gthd.sim.rig import RigConfig
from gthd.sim.sources import simulated_sources, write_truth_for
from gthd.sim.truth import session_truth


class FakeCamera:
    """Small numbered frames; scripted failures. ``fail_at``: read numbers that raise;
    ``dead_after``: from this read on every read and reconnect fails."""

    def __init__(self, n=50, fail_at=(), dead_after=None, size=(48, 64), period_ns=33_000_000, sleep_s=0.0):
        self.n, self.fail_at, self.dead_after, self.size = n, set(fail_at), dead_after, size
        self.period_ns, self.sleep_s = period_ns, sleep_s
        self.reads = self.reconnects = self.i = 0
        self.closed = False

    def open(self):
        return {"source": "fake", "width": self.size[1], "height": self.size[0], "fps_requested": 30, "fps_actual": 30, "fourcc": "MJPG"}

    def read(self):
        self.reads += 1
        if self.sleep_s:
            time.sleep(self.sleep_s)
        if self.dead_after is not None and self.reads > self.dead_after:
            raise SourceError("camera read failed")
        if self.reads in self.fail_at:
            raise SourceError("camera read failed")
        if self.i >= self.n:
            return None
        img = np.full(self.size + (3,), self.i % 256, np.uint8)
        f = CameraFrame(img, 10**9 + self.i * self.period_ns, seq=self.i)
        self.i += 1
        return f

    def reconnect(self):
        if self.dead_after is not None and self.reads > self.dead_after:
            raise SourceError("no camera at index 0")
        self.reconnects += 1

    def close(self):
        self.closed = True


class FakeTracker:
    """Emits a bracket, then frames every 9 ms of fake time; optionally a loss."""

    def __init__(self, n=200, lose=None):
        self.n, self.lose = n, lose
        self._done = threading.Event()
        self._stop = threading.Event()

    def open(self):
        return {"kind": "fake", "serial": "F1", "tracking_mode": "Desktop", "clock": "leapc_us"}

    def start(self, emit):
        def run():
            emit(ClockBracket(10**9 - 1000, 5_000_000, 10**9 + 1000))
            for k in range(self.n):
                if self._stop.is_set():
                    break
                t = 10**9 + k * 9_000_000
                if self.lose and k == self.lose[0]:
                    emit(TrackerEvent(t, "lost", "service disconnected"))
                if self.lose and self.lose[0] <= k < self.lose[1]:
                    continue
                hand = {"id": 1, "type": "right", "confidence": 0.9, "joints": np.full((21, 3), float(k)), "palm": np.zeros(3)}
                emit(TrackerFrame(k, 5_000_000 + k * 9000, t + 5_000_000, 110.0, [hand]))
            self._done.set()

        threading.Thread(target=run, daemon=True).start()

    def finished(self):
        return self._done.is_set()

    def stop(self):
        self._stop.set()


def test_every_acquired_frame_is_on_disk_and_indexed(tmp_path):
    cam, trk, run = simulated_sources(3, RigConfig(duration_s=3.0), speed=0)
    # a queue that holds the whole session: nothing may be lost, whatever the load
    # (what a full queue does is test_full_queue_drops_are_counted_never_hidden's)
    r = Capture(tmp_path / "s", cam, trk, CaptureConfig(camera_queue=200)).run(handle_signals=False)
    s = Session.open(tmp_path / "s")
    c = r.summary["camera"]
    assert r.status == "complete" and r.stop_reason == "end of stream"
    assert c["acquired"] == c["frames"] == len(s.frames) == len(run.cam_tl.seq) and c["dropped_queue_full"] == 0
    assert all((tmp_path / "s" / f).stat().st_size > 0 for f in s.frames.files)
    assert s.frames.seq.tolist() == run.cam_tl.seq.tolist()
    assert s.manifest["counts"] == {"frames": len(s.frames), "tracker_frames": len(s.tracker), "clock_samples": len(s.clock)}
    # the engine maps tracker time exactly as the simulator's reference does
    ref = run.tracker_frames()
    assert len(s.tracker) == len(ref)
    np.testing.assert_array_equal(s.tracker.t_host_ns, [f["t_host_ns"] for f in ref])
    assert json.loads((tmp_path / "s" / "summary.json").read_text())["camera"]["frames"] == len(s.frames)


def test_captured_simulation_keeps_its_ground_truth(tmp_path):
    cam, trk, run = simulated_sources(5, RigConfig(duration_s=3.0), speed=0)
    Capture(tmp_path / "s", cam, trk, CaptureConfig(max_frames=60)).run(handle_signals=False)
    write_truth_for(cam, tmp_path / "s")
    s = Session.open(tmp_path / "s")
    gt = session_truth(s)
    assert len(s.frames) == 60 and len(gt["frames"]) == 60
    d = gt["clock"]["offset_ns"]
    idx = [i for i, f in enumerate(gt["frames"]) if f["hand"] is not None]
    tracked = s.tracker.joints_at(s.frames.t_host_ns[idx] + d)
    true = np.stack([gt["frames"][i]["hand"]["joints_leap"] for i in idx])
    assert np.nanmedian(np.linalg.norm(tracked - true, axis=-1)) < 4.0


@pytest.mark.parametrize("limit, reason, n", [({"max_frames": 17}, "frames", 17), ({"duration_s": 0.5}, "duration", 16)])
def test_limits_stop_the_capture(tmp_path, limit, reason, n):
    cam = FakeCamera(n=100)
    r = Capture(tmp_path / "s", cam, None, CaptureConfig(**limit)).run(handle_signals=False)
    assert (r.status, r.stop_reason) == ("complete", reason)
    assert len(Session.open(tmp_path / "s").frames) == n and cam.closed


def test_camera_failures_reconnect_then_stop_cleanly_keeping_everything(tmp_path):
    cam = FakeCamera(n=100, fail_at=(5, 6, 20), sleep_s=0.002)
    r = Capture(tmp_path / "a", cam, None, CaptureConfig()).run(handle_signals=False)
    assert r.status == "complete" and cam.reconnects == 3 and r.summary["camera"]["read_failures"] == 3
    assert len(Session.open(tmp_path / "a").frames) == 100 and r.summary["camera"]["dropped_queue_full"] == 0
    events = Session.open(tmp_path / "a").events
    assert [e["kind"] for e in events if e["source"] == "camera"] == ["lost", "back"] * 3

    cam = FakeCamera(n=100, dead_after=30, sleep_s=0.002)
    t = time.monotonic()
    r = Capture(tmp_path / "b", cam, None, CaptureConfig(reconnect_s=0.3)).run(handle_signals=False)
    assert time.monotonic() - t < 5
    assert r.status == "interrupted" and r.stop_reason.startswith("camera lost")
    s = Session.open(tmp_path / "b")
    assert len(s.frames) == 30 and s.manifest["status"] == "interrupted" and s.manifest["stop_reason"] == r.stop_reason


def test_tracker_loss_is_recorded_and_the_camera_keeps_running(tmp_path):
    cam = FakeCamera(n=60, sleep_s=0.004)
    trk = FakeTracker(n=200, lose=(50, 120))
    r = Capture(tmp_path / "s", cam, trk, CaptureConfig()).run(handle_signals=False)
    s = Session.open(tmp_path / "s")
    assert len(s.frames) == 60 and len(s.tracker) == 200 - 70
    kinds = [e["kind"] for e in s.events if e["source"] == "tracker"]
    assert kinds == ["lost", "back"]
    gap = r.summary["tracker"]["lost_intervals_ns"]
    assert len(gap) == 1 and gap[0][0] == 10**9 + 50 * 9_000_000 and gap[0][1] > gap[0][0]
    # tracker frames are mapped to the host clock through the bracket
    assert s.tracker.t_host_ns[0] == 10**9  # bracket midpoint maps device 5_000_000 us to 1e9 ns


def test_full_queue_drops_are_counted_never_hidden(tmp_path):
    cam = FakeCamera(n=300, size=(480, 640))
    r = Capture(tmp_path / "s", cam, None, CaptureConfig(camera_queue=1, image_format="png")).run(handle_signals=False)
    c = r.summary["camera"]
    s = Session.open(tmp_path / "s")
    assert c["acquired"] == 300 and c["dropped_queue_full"] > 0
    assert c["frames"] + c["dropped_queue_full"] == 300 == c["acquired"]
    assert len(s.frames) == c["frames"] and c["queue_high_water"] <= 1


def test_bad_input_writes_nothing(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("mine")
    with pytest.raises(FileExistsError):
        Capture(tmp_path / "taken", FakeCamera(), None).run(handle_signals=False)
    assert os.listdir(tmp_path / "taken") == ["x"]

    class NoCamera(FakeCamera):
        def open(self):
            raise SourceError("no camera at index 3")

    with pytest.raises(SourceError, match="index 3"):
        Capture(tmp_path / "new", NoCamera(), None).run(handle_signals=False)
    assert not (tmp_path / "new").exists()

    class NoTracker(FakeTracker):
        def open(self):
            raise SourceError("no Ultraleap tracking service")

    cam = FakeCamera()
    with pytest.raises(SourceError, match="service"):
        Capture(tmp_path / "new", cam, NoTracker()).run(handle_signals=False)
    assert cam.closed and not (tmp_path / "new").exists()


_CHILD = textwrap.dedent(
    """
    import sys, resource, signal
    from gthd.capture.engine import Capture, CaptureConfig
    from gthd.sim.sources import simulated_sources
    from gthd.sim.rig import RigConfig
    out, speed, fsize = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    if fsize:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    cam, trk, run = simulated_sources(1, RigConfig(duration_s=20.0), speed=speed)
    print("ready", flush=True)
    r = Capture(out, cam, trk, CaptureConfig(flush_every_s=0.05)).run()
    print(r.status, r.stop_reason, flush=True)
    """
)


def _child(tmp_path, speed=1.0, fsize=0):
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path / "s"), str(speed), str(fsize)], stdout=subprocess.PIPE, text=True)


def _wait_for_frames(path, n, timeout=30):
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        f = path / "frames.jsonl"
        if f.exists() and f.read_text().count("\n") > n:
            return
        time.sleep(0.05)
    raise AssertionError("the capture did not start")


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, "complete"), (signal.SIGTERM, "interrupted")])
def test_signals_finalise_the_session_with_correct_counts(tmp_path, sig, status):
    p = _child(tmp_path)
    _wait_for_frames(tmp_path / "s", 10)
    p.send_signal(sig)
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0 and status in out
    s = Session.open(tmp_path / "s")
    assert s.manifest["status"] == status
    assert s.manifest["counts"] == {"frames": len(s.frames), "tracker_frames": len(s.tracker), "clock_samples": len(s.clock)}
    assert len(s.frames) >= 10 and s.torn == {k: 0 for k in s.torn}
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["camera"]["frames"] == len(s.frames) and summary["camera"]["dropped_queue_full"] == 0


def test_sigkill_leaves_a_session_that_check_reads_up_to_the_last_flush(tmp_path):
    from gthd.capture.check import check_session

    p = _child(tmp_path)
    _wait_for_frames(tmp_path / "s", 15)
    p.kill()
    p.wait(timeout=10)
    r = check_session(tmp_path / "s")
    s = Session.open(tmp_path / "s")
    assert s.manifest["status"] == "recording"
    assert len(s.frames) >= 15 and r.frames == len(s.frames)
    assert r.ok and r.usable_frames > 0
    assert any("never finalised" in w for w in r.warnings)
    assert all((tmp_path / "s" / f).stat().st_size > 0 for f in s.frames.files)


def test_a_full_disk_stops_cleanly_and_says_why(tmp_path):
    p = _child(tmp_path, speed=4, fsize=400_000)  # no file may grow past 400 kB: the tracker log hits it
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0, out
    assert "interrupted disk:" in out
    s = Session.open(tmp_path / "s")
    assert s.manifest["status"] == "interrupted" and s.manifest["stop_reason"].startswith("disk:")
    assert len(s.frames) > 10 and all((tmp_path / "s" / f).stat().st_size > 0 for f in s.frames.files)
    assert "too large" in s.manifest["stop_reason"]  # the OS's own words for EFBIG


def test_a_camera_that_hangs_does_not_hang_the_stop(tmp_path):
    class Hangs(FakeCamera):
        def read(self):
            if self.i >= 5:
                time.sleep(3600)  # a stalled driver
            return super().read()

    cam = Hangs(n=100)
    cap = Capture(tmp_path / "s", cam, None, CaptureConfig(reconnect_s=0.2))
    threading.Timer(0.5, cap.stop, args=("user (Ctrl-C)",)).start()
    t = time.monotonic()
    r = cap.run(handle_signals=False)
    assert time.monotonic() - t < 6
    assert r.status == "complete" and len(Session.open(tmp_path / "s").frames) == 5
    assert any(e["kind"] == "error" and "did not return" in e["detail"] for e in Session.open(tmp_path / "s").events)
