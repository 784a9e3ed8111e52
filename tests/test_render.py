"""The simulator's renderer (gthd/sim/render.py): the hand is where the truth says and
looks the way the truth says (visibility from its part buffer, a forearm, skin tones),
deterministically; the fingers never cross; the isolated MediaPipe runner, where its
environment is installed."""

import numpy as np
import pytest

from gthd.sim.kinematics import LOWER, MAX_CONVERGENCE_DEG, NUM_ANGLES, UPPER, uncross_fingers
from gthd.sim.motion import generate_motion
from gthd.sim.render import HandLook, Scene, render_frame, render_frame_truth
from gthd.sim.rig import SKIN_TONES_BGR, RigConfig, sample_rig
from gthd.sim.simulate import SimRun
from gthd.sim.truth import session_truth

BG = 40
LIGHT = {"gain": 1.0, "gamma": 1.0, "drift_amp": 0.0, "drift_freq": 0.0, "flicker": 0.0}


def _plain_scene(cam, rng) -> Scene:
    return Scene(np.full((cam.height, cam.width, 3), BG, np.uint8), [], 0.0, LIGHT, rng)


def _hand_frames(n: int = 40, seed: int = 11):
    """(rig, [(joints_cam (21, 3), handedness)]) of a hand fully in view at ``n`` times."""
    rng = np.random.default_rng(seed)
    rig = sample_rig(rng, RigConfig())
    cam = rig.camera
    motion = generate_motion(rng, rig.shape, cam, rig.T_cam_leap, 20.0)
    out = []
    for t in np.linspace(0.5, 19.5, n):
        j, seg = motion.joints(np.array([t]))
        jc = rig.T_cam_leap.apply(j[0])
        if seg[0] >= 0 and cam.in_image(cam.project(jc), jc[:, 2]).all():
            out.append((jc, motion.segments[seg[0]].handedness))
    return rig, out


def _hand_pixels(img: np.ndarray) -> np.ndarray:
    return np.any(np.abs(img.astype(int) - BG) > 12, axis=2)


def test_visibility_from_the_part_buffer_agrees_with_the_pixels():
    """A joint called visible has hand pixels around it; one called hidden is in the image
    under the hand too (another part in front), and hidden joints do occur."""
    rig, frames = _hand_frames()
    cam = rig.camera
    look = HandLook((150, 190, 240), np.array([0.6, -0.8]))
    hidden, shown = 0, 0
    for jc, side in frames:
        img, vis = render_frame_truth(_plain_scene(cam, np.random.default_rng(0)), 0.0, np.random.default_rng(0), cam, jc, rig.shape, look, handedness=side)
        px = _hand_pixels(img)
        q = np.rint(cam.project(jc)).astype(int)
        for j in range(21):
            x, y = q[j]
            around = px[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3]
            assert around.any(), f"joint {j} ({'visible' if vis[j] else 'hidden'}) has no hand pixel near it"
        hidden += int((~vis).sum())
        shown += int(vis.sum())
    assert len(frames) >= 10
    assert shown > 0.7 * (shown + hidden)  # most joints show ...
    assert hidden > 0  # ... and some are behind other parts of the hand


def test_visible_joints_are_in_the_session_truth(sim_session):
    from gthd.session import Session

    gt = session_truth(Session.open(sim_session))["frames"]
    hands = [f["hand"] for f in gt if f["hand"] is not None]
    assert hands
    for h in hands:
        vis, inside = np.asarray(h["visible"], bool), np.asarray(h["in_image"], bool)
        assert not (vis & ~inside).any()  # visible implies in the image


def test_the_forearm_continues_from_the_wrist():
    """With the forearm, hand pixels run on past the wrist, away from the fingers; without
    it they stop at the palm."""
    rig, frames = _hand_frames(n=20)
    cam = rig.camera
    more = []
    for jc, side in frames[:8]:
        uv = cam.project(jc)
        away = uv[0] - uv[9]
        away /= np.linalg.norm(away)
        probe = np.rint(uv[0] + away * np.linalg.norm(uv[9] - uv[0]) * 0.6).astype(int)
        if not (0 <= probe[0] < cam.width and 0 <= probe[1] < cam.height):
            continue
        imgs = [
            render_frame(
                _plain_scene(cam, np.random.default_rng(0)),
                0.0,
                np.random.default_rng(0),
                cam,
                jc,
                rig.shape,
                HandLook((150, 190, 240), np.array([0.6, -0.8]), forearm=f),
                handedness=side,
            )
            for f in (True, False)
        ]
        more.append(_hand_pixels(imgs[0]).sum() > _hand_pixels(imgs[1]).sum() and _hand_pixels(imgs[0])[probe[1], probe[0]])
    assert len(more) >= 3 and np.mean(more) > 0.8


def test_skin_tones_range_from_light_to_dark_and_palms_are_lighter():
    lum = SKIN_TONES_BGR @ np.array([0.114, 0.587, 0.299])
    assert lum.max() > 200 and lum.min() < 90
    for tone in SKIN_TONES_BGR:  # palms: about as light on light skin, much lighter on dark
        back, palm = HandLook(tuple(int(c) for c in tone), np.array([1.0, 0.0])).colors()
        assert palm.mean() >= 0.98 * back.mean()
        if back.mean() < 120:
            assert palm.mean() > back.mean() + 25
    # Subjects drawn over many rigs cover the range.
    drawn = np.array([sample_rig(np.random.default_rng(s), RigConfig()).skin_bgr for s in range(60)]) @ np.array([0.114, 0.587, 0.299])
    assert drawn.max() - drawn.min() > 100


def test_rendering_is_deterministic_per_seed():
    def first_frames(seed):
        run = SimRun(seed, RigConfig(duration_s=1.0))
        return [img for _, _, img, _ in run.camera_frames()][:10]

    a, b, c = first_frames(3), first_frames(3), first_frames(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_fingers_never_cross():
    rng = np.random.default_rng(0)
    angles = uncross_fingers(rng.uniform(LOWER, UPPER, (2000, NUM_ANGLES)))
    gaps = np.rad2deg(angles[:, [4, 8, 12]] - angles[:, [8, 12, 16]])
    assert gaps.min() > -MAX_CONVERGENCE_DEG - 1e-6
    assert np.all((angles >= LOWER - 1e-12) & (angles <= UPPER + 1e-12))
    # And the motion model's poses respect it, up to its small tremor.
    rig = sample_rig(np.random.default_rng(1), RigConfig())
    m = generate_motion(np.random.default_rng(2), rig.shape, rig.camera, rig.T_cam_leap, 30.0)
    a = m.angles(np.linspace(0, 30, 1500))
    assert np.rad2deg(a[:, [4, 8, 12]] - a[:, [8, 12, 16]]).min() > -MAX_CONVERGENCE_DEG - 8.0


def test_mediapipe_runner_finds_a_rendered_hand():
    """The isolated MediaPipe environment (docs/simulate.md, "Realism check"), where it is
    installed: it starts, and finds a large, open simulated hand near where it is."""
    import cv2

    from gthd.mediapipe_runner import MediaPipeRunner, find_python

    if find_python() is None:
        pytest.skip("no MediaPipe environment (~/.cache/gthd/mediapipe or GTHD_MEDIAPIPE_PYTHON)")
    run = SimRun(2, RigConfig(duration_s=8.0, difficulty="easy"))
    found, tried = 0, 0
    with MediaPipeRunner() as mp:
        for i, _, img, hand in run.camera_frames():
            if hand is None or i % 10 or sum(hand["visible"]) < 19:
                continue
            uv = np.asarray(hand["keypoints"])
            hands = mp.detect_encoded(cv2.imencode(".jpg", img)[1].tobytes())
            tried += 1
            size = np.ptp(uv, axis=0).max()
            found += any(np.median(np.linalg.norm(np.asarray(h["keypoints"]) - uv, axis=1)) < 0.25 * size for h in hands)
    assert tried >= 3 and found >= 0.6 * tried


def test_calibration_mediapipe_detector_runs_in_its_own_environment():
    """``gthd calibrate --auto``'s MediaPipe detector, with mediapipe not importable here,
    runs it in the isolated environment, and drops the landmarks it guesses out of view."""
    from gthd.calibration.detectors import MediaPipeHands
    from gthd.mediapipe_runner import find_python

    if find_python() is None:
        pytest.skip("no MediaPipe environment (~/.cache/gthd/mediapipe or GTHD_MEDIAPIPE_PYTHON)")
    det = MediaPipeHands(min_confidence=0.3)
    assert det._runner is not None  # gthd's own environment has no mediapipe
    run = SimRun(2, RigConfig(duration_s=8.0, difficulty="easy"))
    errs = []
    for i, _, img, hand in run.camera_frames():
        if hand is None or i % 10 or sum(hand["visible"]) < 19:
            continue
        for h in det.detect(img, frame_index=i):
            assert h.uv.shape == (21, 2) and h.score.shape == (21,)
            inside = (h.uv >= -0.5).all(axis=1) & (h.uv[:, 0] <= img.shape[1] - 0.5) & (h.uv[:, 1] <= img.shape[0] - 0.5)
            assert np.all(h.score[~inside] == 0)
            errs.append(np.median(np.linalg.norm(h.uv - np.asarray(hand["keypoints"]), axis=1)))
    assert errs and np.median(errs) < 20
