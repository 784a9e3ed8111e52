import numpy as np
import pytest

from gthd.geometry import look_at
from gthd.hand import BONES, JOINT_INDEX
from gthd.sim.kinematics import LOWER, POSES, UPPER, HandShape, forward_kinematics, pose_library
from gthd.sim.motion import generate_motion


@pytest.fixture(scope="module")
def motion(request):
    from gthd.geometry import Camera

    cam = Camera([[560.0, 0, 320], [0, 560, 240], [0, 0, 1]], [-0.1, 0.02, 0, 0, 0], 640, 480)
    shape = HandShape.adult(1.1, np.random.default_rng(3))
    return generate_motion(np.random.default_rng(4), shape, cam, look_at([0, 280, -520], [0, 250, 50], [0, 1, 0]), 30.0)


def _bone_lengths(j):
    return np.stack([np.linalg.norm(j[..., b, :] - j[..., a, :], axis=-1) for a, b in BONES], axis=-1)


def test_bone_lengths_are_preserved_under_motion(motion):
    t = np.linspace(0, 30, 3000)
    joints, seg = motion.joints(t)
    lengths = _bone_lengths(joints)  # (T, 20)
    np.testing.assert_allclose(lengths, np.broadcast_to(motion.shape.bone_lengths(), lengths.shape), atol=1e-9)
    assert {s.handedness for s in motion.segments} <= {"left", "right"}


def test_angles_stay_in_their_limits(motion):
    a = motion.angles(np.linspace(0, 30, 5000))
    assert np.all(a >= LOWER - 1e-12) and np.all(a <= UPPER + 1e-12)
    # and the motion really uses the range: the hand opens and closes
    assert np.ptp(a[:, 6]) > np.deg2rad(40)  # INDEX FLEX2 (PIP)


def test_motion_is_smooth(motion):
    dt = 1 / 110
    joints, seg = motion.joints(np.arange(0, 30, dt))
    speed = np.linalg.norm(np.diff(joints, axis=0), axis=-1).max(axis=1) / dt  # mm/s
    assert np.percentile(speed, 99) < 4000  # a hand, not a teleport


def test_left_hand_is_the_mirror_of_the_right():
    s = HandShape.adult()
    r = forward_kinematics(s, POSES["spread"], "right")
    l = forward_kinematics(s, POSES["spread"], "left")
    np.testing.assert_allclose(l, r * [-1, 1, 1])
    # right hand: the thumb is on +x of the hand frame, fingers along +y
    assert r[JOINT_INDEX["THUMB_TIP"], 0] > r[JOINT_INDEX["PINKY_TIP"], 0]
    assert r[JOINT_INDEX["MIDDLE_TIP"], 1] > 150


def test_touch_poses_bring_thumb_to_index():
    s = HandShape.adult(0.85)
    lib = pose_library(s)
    for name in ("pinch", "ok"):
        j = forward_kinematics(s, lib[name])
        assert np.linalg.norm(j[4] - j[8]) < 25, name
        assert np.all(lib[name] >= LOWER) and np.all(lib[name] <= UPPER)
    fist = forward_kinematics(s, lib["fist"])
    assert np.linalg.norm(fist[8] - fist[0]) < 0.7 * np.linalg.norm(forward_kinematics(s, lib["open"])[8] - fist[0])


def test_subject_scale_scales_the_hand():
    assert HandShape.adult(1.2).length == pytest.approx(1.2 * HandShape.adult(1.0).length)
    assert 150 < HandShape.adult(1.0).length < 200  # adult wrist to middle tip, mm
