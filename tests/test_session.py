import json
import os
import subprocess
import sys

import numpy as np
import pytest

from gthd.fileio import FormatError
from gthd.session import Session, SessionWriter, TrackerStream


def _writer(path, **kw):
    return SessionWriter(
        path,
        source="capture",
        camera={"source": "0", "width": 64, "height": 48},
        tracker={"kind": "ultraleap"},
        session_id="t",
        created_utc="2026-01-01T00:00:00Z",
        **kw,
    )


def _hand(hid, z, kind="right"):
    return {"id": hid, "type": kind, "confidence": 0.9, "joints": np.full((21, 3), float(z)), "palm": [0, 0, z]}


def test_round_trip(tmp_path):
    w = _writer(tmp_path / "s")
    for i in range(5):
        w.add_frame(b"\xff\xd8fake", 1000 + 33 * i, seq=i)
    for k in range(10):
        w.add_tracker_frame(
            frame_id=k, t_device_us=50 + k, t_host_ns=1000 + 10 * k, t_arrival_ns=1005 + 10 * k, framerate=110, hands=[_hand(3, k)] if k != 4 else []
        )
    w.add_clock_sample(990, 40, 1000)
    w.finish("complete")
    s = Session.open(tmp_path / "s")
    assert s.manifest["status"] == "complete" and s.manifest["counts"] == {"frames": 5, "tracker_frames": 10, "clock_samples": 1}
    np.testing.assert_array_equal(s.frames.t_host_ns, 1000 + 33 * np.arange(5))
    np.testing.assert_array_equal(s.frames.seq, np.arange(5))
    assert (tmp_path / "s" / s.frames.files[3]).read_bytes() == b"\xff\xd8fake"
    assert len(s.tracker) == 10 and s.tracker.hands[4] == []
    np.testing.assert_array_equal(s.tracker.hands[2][0]["joints"], np.full((21, 3), 2.0))
    np.testing.assert_array_equal(s.clock, [[990, 40, 1000]])


def test_joints_at_interpolates_and_refuses(tmp_path):
    w = _writer(tmp_path / "s")
    for k, (t, hid) in enumerate([(0, 1), (10, 1), (20, 1), (200, 1), (210, 2), (220, 2)]):
        w.add_tracker_frame(frame_id=k, t_device_us=t, t_host_ns=t, t_arrival_ns=t, framerate=110, hands=[_hand(hid, t)])
    w.finish()
    tr = Session.open(tmp_path / "s").tracker
    out = tr.joints_at(np.array([5, 10, 15, 100, 205, 215, -1, 221]), max_gap_ns=50)
    assert out[0, 0, 2] == pytest.approx(5) and out[1, 0, 2] == pytest.approx(10) and out[2, 0, 2] == pytest.approx(15)
    assert np.isnan(out[3]).all()  # bracket 20..200 is wider than the limit
    assert np.isnan(out[4]).all()  # the hand changed (id 1 -> 2): no interpolation across
    assert out[5, 0, 2] == pytest.approx(215)
    assert np.isnan(out[6]).all() and np.isnan(out[7]).all()  # never extrapolate
    assert tr.joints_at(10).shape == (21, 3)


def _stream(hands_per_frame):
    n = len(hands_per_frame)
    t = np.arange(n, dtype=np.int64) * 10
    return TrackerStream(np.arange(n), t, t, t, hands_per_frame)


def _real(hid, z, kind):
    """A hand as LeapC reports it: confidence is always 1.0 (documented as unused)."""
    return {**_hand(hid, z, kind), "confidence": 1.0}


def test_primary_follows_the_hand_whatever_the_listing_order():
    left, right = (lambda k: _real(5, 100 + k, "left")), (lambda k: _real(6, 200 + k, "right"))
    frames = [[left(k), right(k)] if k % 2 else [right(k), left(k)] for k in range(10)]  # LeapC's order alternates
    joints, ids = _stream(frames).primary()
    assert ids.tolist() == [5] * 10  # picked once (lowest id: both seen as long), then followed
    np.testing.assert_array_equal(joints[:, 0, 2], 100 + np.arange(10))
    # the same with the right hand seen first: it is seen longest, so it stays primary
    joints, ids = _stream([[right(0)]] + frames[1:]).primary()
    assert ids.tolist() == [6] * 10
    # joints_at never mixes the two hands (the old choice flickered between them)
    out = _stream(frames).joints_at(np.arange(0, 91, 5), max_gap_ns=10)
    np.testing.assert_allclose(out[:, 0, 2], 100 + np.arange(0, 91, 5) / 10)


def test_primary_picks_anew_when_its_id_disappears():
    a, b, c = (lambda k: _real(5, k, "right")), (lambda k: _real(6, 100 + k, "left")), (lambda k: _real(9, 200 + k, "right"))
    frames = [[b(0), a(0)], [b(1), a(1)], [], [b(3)], [c(4), b(4)], [c(5), b(5), a(5)]]
    _, ids = _stream(frames).primary()
    # 5 (lowest id) -> kept through a frame without hands -> gone: 6, the only one -> kept
    # while 9 (same side as 5 was, but not as 6) comes, and when 5 comes back
    assert ids.tolist() == [5, 5, -1, 6, 6, 6]
    # two new hands at once after a loss: the one of the side the primary hand had
    frames = [[a(0)], [], [b(2), c(2)], [c(3), b(3)]]
    assert _stream(frames).primary()[1].tolist() == [5, -1, 9, 9]


def test_primary_of_one_side():
    frames = [[_real(5, 1, "left"), _real(6, 2, "right")], [_real(6, 3, "right")], [_real(7, 4, "left"), _real(6, 5, "right")]]
    tr = _stream(frames)
    assert tr.primary("right")[1].tolist() == [6, 6, 6]
    assert tr.primary("left")[1].tolist() == [5, -1, 7]
    assert tr.primary()[1].tolist() == [5, 6, 6]
    np.testing.assert_array_equal(tr.joints_at(np.array([0, 20]), hand_type="left")[:, 0, 2], [1, 4])
    with pytest.raises(ValueError, match="hand type"):
        tr.primary("any")


def test_existing_folder_is_refused(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        _writer(tmp_path / "s")
    assert (tmp_path / "s" / "keep.txt").read_text() == "mine"


def test_killed_capture_is_readable_up_to_the_last_flush(tmp_path):
    """A process killed with SIGKILL mid-session leaves a readable session."""
    path = tmp_path / "s"
    code = f"""
import os, signal, numpy as np
from gthd.session import SessionWriter
w = SessionWriter({str(path)!r}, source="capture", camera={{"width": 64, "height": 48}}, tracker={{}}, session_id="k", created_utc=None, flush_every_s=0)
for i in range(50):
    w.add_frame(b"x" * 100, 1000 + i, seq=i)
    w.add_tracker_frame(frame_id=i, t_device_us=i, t_host_ns=i, t_arrival_ns=i, framerate=110, hands=[])
w.flush()
w._logs["tracker.jsonl"]._f.write('{{"frame_id": 50, "t_dev')  # a torn line
w._logs["tracker.jsonl"]._f.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""
    r = subprocess.run([sys.executable, "-c", code])
    assert r.returncode == -9
    s = Session.open(path)
    assert s.manifest["status"] == "recording"  # never finalised
    assert len(s.frames) == 50 and len(s.tracker) == 50
    assert s.torn["tracker.jsonl"] == 1


def test_unknown_versions_are_refused(tmp_path):
    w = _writer(tmp_path / "s")
    w.finish()
    m = json.loads((tmp_path / "s" / "manifest.json").read_text())
    m["format_version"] = 99
    (tmp_path / "s" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(FormatError, match="version 99"):
        Session.open(tmp_path / "s")
    with pytest.raises(FormatError, match="not a session folder"):
        Session.open(tmp_path / "nope")


def test_bad_hand_records_are_refused(tmp_path):
    w = _writer(tmp_path / "s")
    with pytest.raises(ValueError, match=r"\(21, 3\)"):
        w.add_tracker_frame(frame_id=0, t_device_us=0, t_host_ns=0, t_arrival_ns=0, framerate=1, hands=[{**_hand(1, 0), "joints": np.zeros((20, 3))}])
    with pytest.raises(ValueError, match="hand type"):
        w.add_tracker_frame(frame_id=0, t_device_us=0, t_host_ns=0, t_arrival_ns=0, framerate=1, hands=[_hand(1, 0, "both")])


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    from gthd.fileio import atomic_write_bytes

    atomic_write_bytes(tmp_path / "f", b"x")
    mode = (tmp_path / "f").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    assert not [p for p in tmp_path.iterdir() if p.name != "f"]  # no temporary left behind


def test_joints_at_is_exact_on_linear_motion(tmp_path):
    """Joints moving at constant velocity, tracked at irregular times: interpolation at
    any time in between gives the motion itself (to float precision)."""
    rng = np.random.default_rng(0)
    a = rng.normal(0, 100, (21, 3))
    v = rng.normal(0, 500, (21, 3))  # mm/s
    t = np.cumsum(rng.uniform(7e6, 11e6, 60)).astype(np.int64)  # ~110 Hz with jitter, ns
    w = _writer(tmp_path / "s")
    for k, tk in enumerate(t):
        hand = {"id": 1, "type": "left", "confidence": 1.0, "joints": a + v * tk / 1e9, "palm": [0, 0, 0]}
        w.add_tracker_frame(frame_id=k, t_device_us=int(tk // 1000), t_host_ns=int(tk), t_arrival_ns=int(tk), framerate=110, hands=[hand])
    w.finish()
    tr = Session.open(tmp_path / "s").tracker
    q = rng.integers(t[0], t[-1], 200)
    got = tr.joints_at(q, max_gap_ns=20_000_000)
    want = a + v * (q[:, None, None] / 1e9)
    np.testing.assert_allclose(got, want, atol=2e-3)  # the stream stores 0.001 mm
    # a gap wider than the limit is refused, not guessed
    assert np.isnan(tr.joints_at(q, max_gap_ns=5_000_000)).all(axis=(1, 2)).sum() > 150


def test_smoothing_averages_tracker_noise_and_keeps_linear_motion(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.normal(0, 100, (21, 3))
    v = rng.normal(0, 300, (21, 3))
    t = np.cumsum(rng.uniform(8.5e6, 9.5e6, 400)).astype(np.int64)
    noise = rng.normal(0, 1.5, (len(t), 21, 3))
    for name, nz in (("clean", 0 * noise), ("noisy", noise)):
        w = _writer(tmp_path / name)
        for k, tk in enumerate(t):
            hand = {"id": 1, "type": "left", "confidence": 1.0, "joints": a + v * tk / 1e9 + nz[k], "palm": [0, 0, 0]}
            w.add_tracker_frame(frame_id=k, t_device_us=int(tk // 1000), t_host_ns=int(tk), t_arrival_ns=int(tk), framerate=110, hands=[hand])
        w.finish()
    q = rng.integers(t[10], t[-10], 300)
    truth = a + v * (q[:, None, None] / 1e9)
    clean = Session.open(tmp_path / "clean").tracker
    np.testing.assert_allclose(clean.joints_at(q, smooth_ns=25_000_000), truth, atol=2e-3)  # exact on linear motion
    noisy = Session.open(tmp_path / "noisy").tracker
    raw = np.sqrt(np.mean((noisy.joints_at(q) - truth) ** 2))
    smooth = np.sqrt(np.mean((noisy.joints_at(q, smooth_ns=25_000_000) - truth) ** 2))
    assert smooth < raw / 1.8  # ~5 frames in +-25 ms: noise down by about sqrt(5)
