from types import SimpleNamespace

import numpy as np
import pytest

from gthd import hand


def test_joint_order_is_mediapipe():
    assert hand.NUM_JOINTS == 21
    assert hand.JOINT_NAMES[:5] == ("WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP")
    assert hand.JOINT_NAMES[5:9] == ("INDEX_MCP", "INDEX_PIP", "INDEX_DIP", "INDEX_TIP")
    assert hand.JOINT_NAMES[17:] == ("PINKY_MCP", "PINKY_PIP", "PINKY_DIP", "PINKY_TIP")
    assert hand.FINGER_TIPS == (4, 8, 12, 16, 20)


def test_edges_are_finger_chains_and_palm():
    assert len(hand.FINGER_EDGES) == 15 and len(hand.PALM_EDGES) == 9
    assert (5, 6) in hand.EDGES and (7, 8) in hand.EDGES and (4, 5) not in hand.EDGES
    assert {(0, b) for b in (1, 5, 9, 13, 17)} <= set(hand.EDGES)
    assert {(1, 5), (5, 9), (9, 13), (13, 17)} <= set(hand.EDGES)
    # the skeleton is connected and a tree over the 20 bones
    assert len(hand.BONES) == 20 and {b for _, b in hand.BONES} == set(range(1, 21))


def _vec(x, y, z):
    return SimpleNamespace(x=x, y=y, z=z)


def _fake_leap_hand():
    """An object shaped like a LeapC hand: arm.next_joint, digits[d].bones[b].next_joint."""
    digits = []
    for d in range(5):
        bones = [SimpleNamespace(prev_joint=_vec(d, b - 1, 0), next_joint=_vec(10.0 * d, 100.0 + b, -5.0 * b), width=15.0) for b in range(4)]
        digits.append(SimpleNamespace(bones=bones))
    return SimpleNamespace(arm=SimpleNamespace(next_joint=_vec(1.5, 2.5, 3.5)), digits=digits)


def test_joints_from_leap_hand_follows_the_documented_mapping():
    j = hand.joints_from_leap_hand(_fake_leap_hand())
    assert j.shape == (21, 3)
    np.testing.assert_allclose(j[0], [1.5, 2.5, 3.5])  # wrist = arm.next_joint
    # INDEX_PIP = digits[1].bones[1].next_joint; THUMB_CMC = digits[0].bones[0].next_joint
    np.testing.assert_allclose(j[hand.JOINT_INDEX["INDEX_PIP"]], [10.0, 101.0, -5.0])
    np.testing.assert_allclose(j[hand.JOINT_INDEX["THUMB_CMC"]], [0.0, 100.0, 0.0])
    np.testing.assert_allclose(j[hand.JOINT_INDEX["PINKY_TIP"]], [40.0, 103.0, -15.0])


def test_lsmv_mapping():
    m = dict(zip(hand.LSMV_NAMES, hand.LSMV_TO_OURS))
    assert m["F4_KNU1_B"] == hand.JOINT_INDEX["INDEX_MCP"]
    assert m["F4_KNU1_A"] == hand.JOINT_INDEX["INDEX_PIP"]
    assert m["F4_KNU3_A"] == hand.JOINT_INDEX["INDEX_TIP"]
    assert m["F1_KNU2_A"] == hand.JOINT_INDEX["PINKY_DIP"]
    assert m["F2_KNU1_B"] == hand.JOINT_INDEX["RING_MCP"]
    assert m["TH_KNU1_B"] == hand.JOINT_INDEX["THUMB_CMC"]
    assert m["TH_KNU3_A"] == hand.JOINT_INDEX["THUMB_TIP"]
    assert m["PALM_POSITION"] == -1
    assert sorted(v for v in hand.LSMV_TO_OURS if v >= 0) == list(range(1, 21))
    pts = np.arange(21 * 2, dtype=float).reshape(21, 2)
    ours, known = hand.from_lsmv(pts)
    assert np.isnan(ours[0]).all() and not known[0] and known[1:].all()
    np.testing.assert_array_equal(ours[hand.JOINT_INDEX["INDEX_MCP"]], pts[1])
    with pytest.raises(ValueError, match="expected"):
        hand.from_lsmv(np.zeros((20, 2)))


def test_the_documented_lsmv_table_is_the_code():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "hand-model.md").read_text()
    pairs = re.findall(r"\| (\d+) ([A-Z0-9_]+) \| (\d+|none)", text)
    assert len(pairs) == 21
    for i, name, ours in pairs:
        assert hand.LSMV_NAMES[int(i)] == name
        assert hand.LSMV_TO_OURS[int(i)] == (-1 if ours == "none" else int(ours))
