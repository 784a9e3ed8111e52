"""The clicking window of ``gthd calibrate --click``: the frame choice, the zoom mapping,
the drawing and the clicking state (no screen needed), and the real highgui window under
Xvfb, clicked by xdotool at the simulator's true pixels (CI installs both: .ci/run)."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from xdriver import XDriver

from gthd.calibration.click_window import ESTIMATE_BGR, ClickWindow, View, choose_frames, parse_title, window_title
from gthd.calibration.files import read_clicks
from gthd.hand import JOINT_INDEX, NUM_JOINTS
from gthd.session import Session, SessionWriter
from gthd.sim.rig import RigConfig
from gthd.sim.simulate import simulate
from gthd.sim.truth import session_truth

JOINT = "INDEX_TIP"
J = JOINT_INDEX[JOINT]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """A 3 s simulated session (90 frames) whose chosen frames include two where the
    fingertip is outside the image."""
    out = tmp_path_factory.mktemp("cw") / "s"
    simulate(out, 4, RigConfig(duration_s=3.0), boards=0, clicks=0)
    return out


def _tiny_session(path, tip_x):
    """A session of len(tip_x) frames 33 ms apart, one tracker frame at each frame's time
    with the fingertip at (tip_x[i], 200, 0) mm (no hand where tip_x[i] is None)."""
    w = SessionWriter(
        path, source="simulated", camera={"width": 64, "height": 48}, tracker={"kind": "test"}, session_id="tiny", created_utc=None, image_format="png"
    )
    png = cv2.imencode(".png", np.zeros((48, 64, 3), np.uint8))[1].tobytes()
    for i, x in enumerate(tip_x):
        t = 1_000_000_000 + i * 33_000_000
        w.add_frame(png, t)
        hands = []
        if x is not None:
            joints = np.zeros((NUM_JOINTS, 3))
            joints[:, 1] = 200.0
            joints[J] = (x, 200.0, 0.0)
            hands = [{"id": 1, "type": "right", "confidence": 1.0, "joints": joints, "palm": joints[0]}]
        w.add_tracker_frame(frame_id=i, t_device_us=i * 33_000, t_host_ns=t, t_arrival_ns=t, framerate=30.0, hands=hands)
    w.finish()
    return Session.open(path)


# ----------------------------------------------------------------------- choose_frames
def test_chosen_frames_are_spread_over_the_session_and_have_a_tracked_hand(sim):
    s = Session.open(sim)
    tip = s.tracker.joints_at(s.frames.t_host_ns)[:, J]  # (N, 3)
    tracked = np.flatnonzero(np.isfinite(tip[:, 0]))
    frames = choose_frames(s, JOINT, n=12)
    assert frames == choose_frames(s, JOINT, n=12)  # deterministic
    assert len(frames) == 12 and frames == sorted(frames)
    assert set(frames) <= set(tracked.tolist())
    assert np.diff(frames).min() >= 2  # never two neighbouring frames
    t = s.frames.t_host_ns
    span = t[tracked[-1]] - t[tracked[0]]
    assert t[frames[0]] - t[tracked[0]] < 0.1 * span and t[tracked[-1]] - t[frames[-1]] < 0.1 * span
    assert np.diff(t[frames]).max() < 3 * span / 12  # no big hole
    # the joint's positions span (nearly) all of its tracked range
    assert np.linalg.norm(np.ptp(tip[frames], axis=0)) > 0.9 * np.linalg.norm(np.ptp(tip[tracked], axis=0))
    # fewer tracked frames than asked for: all of them
    assert choose_frames(s, JOINT, n=1000) == tracked.tolist()


def test_chosen_frames_follow_the_joint_where_it_moves(tmp_path):
    """The hand holds still but for a 3-frame excursion: a time-uniform choice misses it,
    the spread over position takes it. Frames without a hand are never chosen."""
    x = [0.0] * 100
    x[45:48] = [120.0, 150.0, 120.0]
    for k in (10, 11, 12, 70):
        x[k] = None
    s = _tiny_session(tmp_path / "s", x)
    frames = choose_frames(s, JOINT, n=5)
    assert 46 in frames
    assert not {10, 11, 12, 70} & set(frames)
    assert frames[0] < 20 and frames[-1] >= 80


def test_a_session_without_a_tracked_hand_is_a_clear_error(tmp_path):
    s = _tiny_session(tmp_path / "s", [None] * 10)
    with pytest.raises(ValueError, match=r"the session has no frames with a tracked hand: .* 10 frames and 10 tracker frames, 0 of them with a hand"):
        choose_frames(s, JOINT)
    with pytest.raises(ValueError, match="unknown joint"):
        choose_frames(s, "INDEX_NAIL")


# ------------------------------------------------------------------------- the mapping
def test_the_zoomed_view_maps_window_pixels_to_image_pixels_exactly():
    W, H = 640, 480
    assert View().to_image((17, 33)).tolist() == [17, 33]
    v = View.around((300.3, 200.2), 2.0, W, H)
    xy = np.array([[0, 0], [319, 239], [639, 479], [123, 45]], float)
    assert np.allclose(v.to_window(v.to_image(xy)), xy)
    uv = v.to_image(xy)
    assert np.allclose(v.to_image(((W - 1) / 2, (H - 1) / 2)), (300.3, 200.2))  # centred on the point
    assert np.allclose(uv[1] - uv[0], (159.5, 119.5))  # half as many image pixels: sub-pixel steps
    # shifted to stay inside the image near a corner
    for c, first, last in (((3, 2), (0, 0), ((W - 1) / 2, (H - 1) / 2)), ((639, 479), ((W - 1) / 2, (H - 1) / 2), (W - 1, H - 1))):
        v = View.around(c, 2.0, W, H)
        assert np.allclose(v.to_image((0, 0)), first) and np.allclose(v.to_image((W - 1, H - 1)), last)
    # the picture agrees with the mapping: a ramp whose value is the image column (row)
    ramp_u = np.tile(np.arange(200, dtype=np.uint8), (150, 1))  # (150, 200), value = u
    ramp_v = np.tile(np.arange(150, dtype=np.uint8)[:, None], (1, 200))  # value = v
    img = np.dstack([ramp_u, ramp_v, np.zeros_like(ramp_u)])
    v = View.around((80.6, 90.2), 3.0, 200, 150)
    pic = v.apply(img).astype(float)
    ys, xs = np.mgrid[0:150, 0:200]
    uv = v.to_image(np.stack([xs, ys], axis=-1))  # (150, 200, 2)
    assert np.abs(pic[..., 0] - uv[..., 0]).max() < 0.6 and np.abs(pic[..., 1] - uv[..., 1]).max() < 0.6
    with pytest.raises(ValueError, match="zoom"):
        View.around((0, 0), 0.5, W, H)


def test_the_title_reads_back_and_has_no_regex_characters():
    t = window_title(123, JOINT, 4, 40, 3, True)
    assert t == "gthd calibrate - frame 123 - click INDEX_TIP - 4 of 40 - 3 clicks - zoomed"
    assert not set(t) & set(r".^$*+?()[]{}|\\")
    assert parse_title(t) == {"frame": 123, "joint": JOINT, "k": 4, "n": 40, "clicks": 3, "zoomed": True}
    assert parse_title(window_title(7, JOINT, 1, 2, 1, False))["clicks"] == 1
    assert parse_title("gthd calibrate") is None


# ---------------------------------------------------------------- state and drawing
def test_clicks_are_saved_at_once_undo_goes_back_and_a_second_run_resumes(sim, tmp_path):
    s = Session.open(sim)
    frames = choose_frames(s, JOINT, n=10)
    path = tmp_path / "clicks.jsonl"
    w = ClickWindow(s, JOINT, frames, path)
    assert w.current == frames[0] and parse_title(w.title())["k"] == 1
    w.on_click(100, 50)
    assert read_clicks(path)[1][-1].frame_index == frames[0]  # on disk before anything else happens
    w.skip()
    w.on_click(200, 60)
    assert w.current == frames[3]
    w.view = View.around((300, 200), 2.0, 640, 480)
    c = w.on_click(11, 21)
    assert (c.u, c.v) == pytest.approx((w.view.x0 + 5.5, w.view.y0 + 10.5))  # sub-pixel when zoomed
    w.view = View()
    assert w.undo().frame_index == frames[3] and w.current == frames[3]  # back to the undone frame
    w.on_click(300, 70)
    assert w.current == frames[4]  # on from there; the skipped frame stays skipped
    w.on_key(ord("q"))
    assert w.quit and w.done
    w.close()
    header, clicks = read_clicks(path)
    assert header["session_id"] == s.manifest["session_id"] and header["joint"] == JOINT
    assert [(c.frame_index, c.u, c.v) for c in clicks] == [(frames[0], 100, 50), (frames[2], 200, 60), (frames[3], 300, 70)]
    assert all(c.t_host_ns == s.frames.t_host_ns[c.frame_index] for c in clicks)
    assert sum('"undo"' in line for line in path.read_text().splitlines()) == 1
    # a second run shows only the frames without a click, and returns all the clicks
    w2 = ClickWindow(s, JOINT, frames, path)
    assert w2.current == frames[1] and len(w2.clicks) == 3
    w2.on_key(ord(" "))  # space skips
    assert w2.current == frames[4]
    w2.on_key(8)  # backspace undoes, here a click of the first run
    assert w2.current == frames[3] and len(w2.clicks) == 2
    w2.close()
    with pytest.raises(ValueError, match="holds clicks of INDEX_TIP, not THUMB_TIP"):
        ClickWindow(s, "THUMB_TIP", frames, path)


def test_run_opens_no_window_when_every_frame_has_a_click(sim, tmp_path, monkeypatch):
    s = Session.open(sim)
    frames = choose_frames(s, JOINT, n=3)
    w = ClickWindow(s, JOINT, frames, tmp_path / "c.jsonl")
    for _ in frames:
        w.on_click(5, 5)
    w.close()
    monkeypatch.setattr(cv2, "namedWindow", lambda *a: pytest.fail("a window was opened"))
    clicks = ClickWindow(s, JOINT, frames, tmp_path / "c.jsonl").run()
    assert [c.frame_index for c in clicks] == frames


def test_render_draws_the_estimate_where_it_says_and_a_status_line(sim, tmp_path):
    s = Session.open(sim)
    frames = choose_frames(s, JOINT, n=10)
    calls = []
    where = np.array([300.0, 200.0])

    def estimate(clicks):
        calls.append(len(clicks))
        if len(clicks) == 7:
            raise ValueError("degenerate")  # ignored: the last estimate stays
        return lambda f: where if f != frames[-1] else None

    w = ClickWindow(s, JOINT, frames, tmp_path / "c.jsonl", estimate=estimate)
    f0 = w.current
    plain = s.image(f0)
    pic = w.render(f0)
    assert pic.shape == plain.shape and pic.dtype == np.uint8
    changed = np.any(pic != plain, axis=2)
    assert changed[:30].mean() > 0.05  # the status line
    assert not changed[60:-40].any()  # nothing else before there is an estimate or a mouse
    for k in range(7):
        w.on_click(10 + k, 10)
    assert calls == [6, 7]  # only after a click, once there are 6
    f = w.current
    pic, plain = w.render(f).astype(int), s.image(f).astype(int)
    magenta = (np.abs(pic - ESTIMATE_BGR).sum(axis=2) < 150) & (np.abs(pic - plain).sum(axis=2) > 60)
    ys, xs = np.nonzero(magenta[40:-40])
    assert len(xs) > 20 and np.allclose([xs.mean(), ys.mean() + 40], where, atol=1.5)
    assert np.hypot(xs - where[0], ys + 40 - where[1]).max() < 13
    # zoomed: drawn where the view puts that pixel; the mouse gets a crosshair
    w.view = View.around((320, 240), 2.0, 640, 480)
    w.mouse = (100, 300)
    pic = w.render(f).astype(int)
    plain = w.view.apply(s.image(f)).astype(int)
    magenta = (np.abs(pic - ESTIMATE_BGR).sum(axis=2) < 150) & (np.abs(pic - plain).sum(axis=2) > 60)
    ys, xs = np.nonzero(magenta[40:-40])
    assert np.allclose([xs.mean(), ys.mean() + 40], w.view.to_window(where), atol=1.5)
    assert np.any(pic[290:311, 90:111] != plain[290:311, 90:111])
    assert w.predicted(frames[-1]) is None


# ------------------------------------------------------------------- the real window
def test_clicking_in_the_real_window_saves_the_true_pixels(sim, tmp_path, xvfb):
    s = Session.open(sim)
    gt = session_truth(s)["frames"]
    W, H = s.camera_size
    path = tmp_path / "clicks.jsonl"
    code = (
        "import sys\n"
        "from gthd.session import Session\n"
        "from gthd.calibration.click_window import ClickWindow, choose_frames\n"
        "s = Session.open(sys.argv[1])\n"
        "clicks = ClickWindow(s, 'INDEX_TIP', choose_frames(s, 'INDEX_TIP', n=12), sys.argv[2]).run()\n"
        "print('clicks', len(clicks))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(sim), str(path)], env=xvfb, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    d = XDriver(xvfb, proc)
    try:
        expected: dict[int, np.ndarray] = {}  # frame -> the true pixel clicked
        skipped, undone, zoomed, actions = 0, False, False, 0
        t = d.title(timeout=30)
        assert t["n"] == 12 and t["k"] == 1 and t["clicks"] == 0 and not t["zoomed"]
        while actions < 9:
            f = t["frame"]
            hand = gt[f]["hand"]
            uv = None if hand is None or not hand["in_image"][J] else hand["keypoints"][J]
            if uv is None or not (0 <= round(uv[0]) < W and 0 <= round(uv[1]) < H):
                d.key("n" if skipped % 2 == 0 else "space")
                skipped += 1
                t2 = d.title(unlike=t)
                assert t2["k"] > t["k"] and t2["clicks"] == t["clicks"]
            elif len(expected) == 2 and not undone:  # a wrong click, then undo it
                d.click(np.round(uv) + (25, 0))
                t2 = d.title(unlike=t)
                assert t2["clicks"] == t["clicks"] + 1
                d.key("u")
                t2 = d.title(unlike=t2)
                assert t2["frame"] == f and t2["clicks"] == t["clicks"]  # back to the undone frame
                undone = True
            elif len(expected) == 4 and not zoomed:  # zoom in around the joint, click, zoom out
                center = np.round(uv) + (7, -5)
                d.move(center)
                d.key("z")
                tz = d.title(unlike=t)
                assert tz["zoomed"] and tz["frame"] == f
                view = View.around(center, 2.0, W, H)
                d.click(np.round(view.to_window(uv)))
                expected[f] = uv
                t2 = d.title(unlike=tz)
                assert t2["clicks"] == t["clicks"] + 1 and t2["zoomed"]
                d.key("z")
                t2 = d.title(unlike=t2)
                assert not t2["zoomed"]
                zoomed = True
            else:
                d.click(np.round(uv))
                expected[f] = uv
                t2 = d.title(unlike=t)
                assert t2["clicks"] == t["clicks"] + 1 and t2["frame"] != f
            t, actions = t2, actions + 1
        assert undone and zoomed and skipped >= 1
        d.key("q")
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert f"clicks {len(expected)}" in out
    _, clicks = read_clicks(path)
    assert sorted(c.frame_index for c in clicks) == sorted(expected)  # one per frame, the undone one gone
    for c in clicks:
        err = np.hypot(c.u - expected[c.frame_index][0], c.v - expected[c.frame_index][1])
        assert err < 1.5, (c, expected[c.frame_index])
        assert c.t_host_ns == s.frames.t_host_ns[c.frame_index] and c.joint == JOINT
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert sum(bool(r.get("undo")) for r in lines) == 1
