import filecmp
import json

import cv2
import numpy as np

from gthd.geometry import Camera, Transform
from gthd.hand import EDGES, FINGER_EDGES
from gthd.session import Session
from gthd.sim.motion import generate_motion, in_leap_volume
from gthd.sim.render import HandLook, Scene, render_frame
from gthd.sim.rig import RigConfig, sample_rig
from gthd.sim.simulate import simulate
from gthd.sim.truth import session_truth


def test_session_round_trips_through_its_reader(sim_session):
    s = Session.open(sim_session)
    gt = session_truth(s)
    assert s.manifest["source"] == "simulated" and s.manifest["status"] == "complete"
    assert s.manifest["counts"]["frames"] == len(s.frames) == len(gt["frames"])
    assert [f["seq"] for f in gt["frames"]] == s.frames.seq.tolist()
    assert np.all(np.diff(s.frames.t_host_ns) > 0) and np.all(np.diff(s.tracker.t_host_ns) > 0)
    img = s.image(0)
    assert img.shape == (480, 640, 3) and img.dtype == np.uint8
    assert sum(bool(h) for h in s.tracker.hands) > 0.5 * len(s.tracker)


def test_true_keypoints_are_opencv_projections(sim_session):
    gt = session_truth(Session.open(sim_session))
    cam = Camera.from_dict(gt["camera"])
    T = Transform.from_dict(gt["T_cam_leap"])
    n = 0
    for f in gt["frames"]:
        if f["hand"] is None:
            continue
        cv, _ = cv2.projectPoints(f["hand"]["joints_leap"], T.rvec, T.t, cam.K, cam.dist)
        np.testing.assert_allclose(f["hand"]["keypoints"], cv.reshape(-1, 2), atol=0.01)
        n += 1
    assert n > 10


def test_tracker_times_map_to_the_host_clock(sim_session):
    s = Session.open(sim_session)
    c = session_truth(s)["clock"]
    # invert the tracker clock the simulator used: leap_us = (t - start)/1e3 * (1 + ppm) + offset
    t_true = c["host_start_ns"] + (s.tracker.t_device_us - c["leap_offset_us"]) * 1e3 / (1 + c["leap_drift_ppm"] * 1e-6)
    assert np.abs(s.tracker.t_host_ns - t_true).max() < 50_000  # 50 µs
    assert np.all(s.tracker.t_arrival_ns > s.tracker.t_host_ns)


def test_clock_offset_means_what_the_conventions_say(sim_session):
    """The tracker state at t_cam + d is the hand the camera saw; a wrong d is visibly worse."""
    s = Session.open(sim_session)
    gt = session_truth(s)
    d = gt["clock"]["offset_ns"]
    assert d < 0
    idx = [f["index"] for f in gt["frames"] if f["hand"] is not None]
    true = np.stack([gt["frames"][i]["hand"]["joints_leap"] for i in idx])

    def err(offset):
        tracked = s.tracker.joints_at(s.frames.t_host_ns[idx] + offset)
        e = np.linalg.norm(tracked - true, axis=-1)
        return np.nanmedian(e), np.isfinite(e).mean()

    e_right, seen = err(d)
    assert seen > 0.5
    assert e_right < 4.0  # mm: tracker noise plus interpolation
    assert err(d + 60_000_000)[0] > 2 * e_right
    assert err(0)[0] > e_right


def test_rendered_hand_lies_where_the_truth_says():
    """Overlap between the rendered hand's pixels and the true skeleton, measured."""
    rng = np.random.default_rng(11)
    rig = sample_rig(rng, RigConfig())
    cam = rig.camera
    motion = generate_motion(rng, rig.shape, cam, rig.T_cam_leap, 20.0)
    bg = np.full((cam.height, cam.width, 3), 40, np.uint8)
    lighting = {"gain": 1.0, "gamma": 1.0, "drift_amp": 0.0, "drift_freq": 0.0, "flicker": 0.0}
    scene = Scene(bg, [], 0.0, lighting, rng)
    look = HandLook((150, 190, 240), np.array([0.6, -0.8]), forearm=False)  # the hand alone (tests/test_render.py: the forearm)
    recalls, precisions = [], []
    for t in np.linspace(0.5, 19.5, 40):
        j, seg = motion.joints(np.array([t]))
        jc = rig.T_cam_leap.apply(j[0])
        uv = cam.project(jc)
        if seg[0] < 0 or not cam.in_image(uv, jc[:, 2]).all():
            continue
        img = render_frame(scene, t, rng, cam, jc, rig.shape, look)
        hand_px = np.any(img.astype(int) - 40 > 25, axis=2)
        skel = np.zeros(hand_px.shape, np.uint8)
        for a, b in FINGER_EDGES:
            cv2.line(skel, tuple(np.rint(uv[a]).astype(int)), tuple(np.rint(uv[b]).astype(int)), 1, 1)
        recalls.append(hand_px[skel > 0].mean())
        r = int(np.ceil(cam.K[0, 0] * rig.shape.palm_radius * 1.2 / jc[:, 2].min())) + 3
        region = np.zeros_like(skel)
        for a, b in EDGES:
            cv2.line(region, tuple(np.rint(uv[a]).astype(int)), tuple(np.rint(uv[b]).astype(int)), 1, 2 * r)
        cv2.fillConvexPoly(region, np.rint(uv[[0, 1, 5, 9, 13, 17]]).astype(np.int32), 1)
        precisions.append(region[hand_px].mean())
    assert len(recalls) >= 10
    assert np.median(recalls) > 0.97 and min(recalls) > 0.85
    assert np.median(precisions) > 0.98 and min(precisions) > 0.9


def test_hand_sizes_span_the_requested_range():
    rng = np.random.default_rng(5)
    rig = sample_rig(rng, RigConfig())
    cam = rig.camera

    def sizes(size_range):
        m = generate_motion(np.random.default_rng(6), rig.shape, cam, rig.T_cam_leap, 60.0, size_range)
        j, seg = m.joints(np.linspace(0, 60, 1500))
        uv = cam.project(rig.T_cam_leap.apply(j))
        ok = (seg >= 0) & cam.in_image(uv).all(axis=1)
        return np.ptp(uv[ok], axis=1).max(axis=1)

    wide = sizes((40.0, 300.0))
    assert np.percentile(wide, 5) < 90 and np.percentile(wide, 95) > 200
    small = sizes((40.0, 90.0))
    assert np.median(small) < 0.6 * np.median(wide)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    cfg = RigConfig(duration_s=1.0)
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        simulate(tmp_path / name, seed, cfg, boards=1, clicks=5)
    cmp = filecmp.dircmp(tmp_path / "a", tmp_path / "b")

    def same(c):
        assert not c.left_only and not c.right_only and not c.diff_files and not c.funny_files, c.report()
        _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
        assert not mismatch and not errors
        for sub in c.subdirs.values():
            same(sub)

    same(cmp)
    assert (tmp_path / "a" / "frames" / "000000.jpg").read_bytes() != (tmp_path / "c" / "frames" / "000000.jpg").read_bytes()


def test_clicks_are_noisy_truth_with_outliers(sim_session):
    s = Session.open(sim_session)
    gt = session_truth(s)
    lines = (sim_session / "clicks_simulated.jsonl").read_text().splitlines()
    header, clicks = json.loads(lines[0]), [json.loads(x) for x in lines[1:]]
    assert header["format"] == "gthd-clicks" and header["joint"] == "INDEX_TIP"
    assert len(clicks) == len(gt["clicks"]["clicks"]) >= 10
    for c, t in zip(clicks, gt["clicks"]["clicks"]):
        assert c["t_host_ns"] == s.frames.t_host_ns[c["frame_index"]]
        err = np.hypot(c["u"] - t["true_uv"][0], c["v"] - t["true_uv"][1])
        if not t["outlier"]:
            assert err < 8.0
    frames = sorted(c["frame_index"] for c in clicks)
    assert frames[-1] - frames[0] > 0.5 * len(s.frames)  # spread over the session


def test_board_views_show_the_board_where_the_truth_says(sim_session):
    from gthd.boards import BoardSpec

    gt = session_truth(Session.open(sim_session))
    cam = Camera.from_dict(gt["camera"])
    b = gt["boards"]["checkerboard"]
    spec = BoardSpec.from_dict(b["spec"])
    view = b["views"][0]
    img = cv2.imread(str(sim_session / view["file"]), cv2.IMREAD_GRAYSCALE)
    found, corners = cv2.findChessboardCornersSB(img, (spec.cols - 1, spec.rows - 1))
    assert found
    truth = cam.project(Transform.from_dict(view["T_cam_board"]).apply(spec.object_points()))
    err = np.linalg.norm(np.asarray(corners).reshape(-1, 2) - truth, axis=1)
    assert np.median(err) < 0.3 and err.max() < 1.0


def test_sessions_have_frames_without_a_hand():
    rng = np.random.default_rng(9)
    rig = sample_rig(rng, RigConfig())
    m = generate_motion(rng, rig.shape, rig.camera, rig.T_cam_leap, 30.0)
    j, seg = m.joints(np.linspace(0, 30, 3000))
    in_view = (seg >= 0) & in_leap_volume(j.mean(axis=1))
    assert 0.05 < 1 - in_view.mean() < 0.5
    assert len(m.segments) >= 3
