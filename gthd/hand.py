"""The 21-joint hand: joint order, skeleton edges, and the mappings from other orders.

Every array of joints in gthd uses :data:`JOINT_NAMES` order (MediaPipe order):
``(..., 21, D)``. Other orders (Ultraleap bones, the LSMV dataset) are mapped here,
once, and nowhere else.
"""

from __future__ import annotations

import numpy as np

FINGERS = ("THUMB", "INDEX", "MIDDLE", "RING", "PINKY")
"""Digits in Ultraleap's ``hand.digits`` order, which is also ours."""

_FINGER_JOINTS = {
    "THUMB": ("CMC", "MCP", "IP", "TIP"),
    "INDEX": ("MCP", "PIP", "DIP", "TIP"),
    "MIDDLE": ("MCP", "PIP", "DIP", "TIP"),
    "RING": ("MCP", "PIP", "DIP", "TIP"),
    "PINKY": ("MCP", "PIP", "DIP", "TIP"),
}

JOINT_NAMES: tuple[str, ...] = ("WRIST",) + tuple(f"{finger}_{joint}" for finger in FINGERS for joint in _FINGER_JOINTS[finger])
"""WRIST, THUMB_CMC, THUMB_MCP, THUMB_IP, THUMB_TIP, INDEX_MCP, ..., PINKY_TIP."""

NUM_JOINTS = len(JOINT_NAMES)  # 21
JOINT_INDEX = {name: i for i, name in enumerate(JOINT_NAMES)}
WRIST = 0


def finger_joints(finger: str) -> tuple[int, int, int, int]:
    """Indices of a finger's four joints from its base to its tip."""
    start = 1 + 4 * FINGERS.index(finger)
    return (start, start + 1, start + 2, start + 3)


FINGER_BASES = tuple(finger_joints(f)[0] for f in FINGERS)  # (1, 5, 9, 13, 17)
FINGER_TIPS = tuple(finger_joints(f)[3] for f in FINGERS)  # (4, 8, 12, 16, 20)

# Each finger's chain from its base (3 edges x 5 fingers), then the palm: the wrist to
# each finger base, and across the finger bases (thumb CMC - index MCP - ... - pinky MCP).
FINGER_EDGES: tuple[tuple[int, int], ...] = tuple((j[k], j[k + 1]) for f in FINGERS for j in [finger_joints(f)] for k in range(3))
PALM_EDGES: tuple[tuple[int, int], ...] = tuple((WRIST, b) for b in FINGER_BASES) + tuple(zip(FINGER_BASES[:-1], FINGER_BASES[1:]))
EDGES: tuple[tuple[int, int], ...] = FINGER_EDGES + PALM_EDGES
"""Skeleton edges (parent, child) as joint indices: 15 finger bones + 9 palm edges."""

BONES: tuple[tuple[int, int], ...] = tuple((WRIST, b) for b in FINGER_BASES) + FINGER_EDGES
"""The 20 rigid bones of the kinematic chain (wrist to each base, then the phalanges)."""

# Colours (BGR) per finger for drawing; palm edges in grey.
FINGER_COLORS_BGR = {
    "THUMB": (60, 60, 230),
    "INDEX": (60, 200, 60),
    "MIDDLE": (230, 160, 40),
    "RING": (200, 60, 200),
    "PINKY": (40, 200, 230),
    "PALM": (200, 200, 200),
}


def edge_color(edge: tuple[int, int]) -> tuple[int, int, int]:
    """Drawing colour of a skeleton edge: its finger's colour, grey for the palm."""
    a, b = edge
    if a == WRIST or (a in FINGER_BASES and b in FINGER_BASES):
        return FINGER_COLORS_BGR["PALM"]
    return FINGER_COLORS_BGR[FINGERS[(b - 1) // 4]]


# ---------------------------------------------------------------------------- Ultraleap
ULTRALEAP_MAPPING = ("arm.next_joint",) + tuple(f"digits[{d}].bones[{b}].next_joint" for d in range(5) for b in range(4))
"""Where each of our joints comes from in an Ultraleap ``hand``: the wrist is
``hand.arm.next_joint``; then per digit (thumb, index, middle, ring, pinky) the
``next_joint`` of bones 0..3 (metacarpal, proximal, intermediate, distal). The thumb's
metacarpal has zero length, so its ``next_joint`` is the CMC."""


def joints_from_leap_hand(hand) -> np.ndarray:
    """Copy a LeapC hand's joints out into our order.

    Args:
        hand: an Ultraleap ``leap`` hand (or any object of the same shape: ``hand.arm``,
            ``hand.digits[d].bones[b]`` with ``next_joint.x/.y/.z``).

    Returns:
        (21, 3) float64, millimetres, in the tracker frame ``leap``.
    """

    def xyz(v) -> tuple[float, float, float]:
        return (float(v.x), float(v.y), float(v.z))

    out = [xyz(hand.arm.next_joint)]
    for d in range(5):
        bones = hand.digits[d].bones
        out.extend(xyz(bones[b].next_joint) for b in range(4))
    return np.asarray(out, dtype=np.float64)


# --------------------------------------------------------------------------------- LSMV
LSMV_NAMES: tuple[str, ...] = (
    "F4_KNU1_A", "F4_KNU1_B", "F4_KNU2_A", "F4_KNU3_A",
    "F3_KNU1_A", "F3_KNU1_B", "F3_KNU2_A", "F3_KNU3_A",
    "F1_KNU1_A", "F1_KNU1_B", "F1_KNU2_A", "F1_KNU3_A",
    "F2_KNU1_A", "F2_KNU1_B", "F2_KNU2_A", "F2_KNU3_A",
    "TH_KNU1_A", "TH_KNU1_B", "TH_KNU2_A", "TH_KNU3_A",
    "PALM_POSITION",
)  # fmt: skip
"""The LSMV dataset's 21 points (Gomez-Donoso et al.): 20 finger joints and the palm
centre, no wrist. F4 index, F3 middle, F2 ring, F1 pinky, TH thumb; per finger KNU1_B
is the base, then KNU1_A, KNU2_A, and KNU3_A is the tip."""

_LSMV_FINGER = {"TH": "THUMB", "F4": "INDEX", "F3": "MIDDLE", "F2": "RING", "F1": "PINKY"}
_LSMV_KNUCKLE = {"KNU1_B": 0, "KNU1_A": 1, "KNU2_A": 2, "KNU3_A": 3}


def _lsmv_to_ours() -> tuple[int, ...]:
    out = []
    for name in LSMV_NAMES:
        if name == "PALM_POSITION":
            out.append(-1)
            continue
        finger, knuckle = name[:2], name[3:]
        out.append(finger_joints(_LSMV_FINGER[finger])[_LSMV_KNUCKLE[knuckle]])
    return tuple(out)


LSMV_TO_OURS: tuple[int, ...] = _lsmv_to_ours()
"""``LSMV_TO_OURS[i]`` is our joint index for LSMV point ``i``; -1 for PALM_POSITION,
which has no joint of ours (and our WRIST has no LSMV point)."""


def from_lsmv(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorder LSMV points into our 21-joint order.

    Args:
        points: (..., 21, D) in LSMV order.

    Returns:
        joints: (..., 21, D) in our order; the WRIST row (which LSMV lacks) is NaN.
        known: (21,) bool, False for the WRIST.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.shape[-2] != len(LSMV_NAMES):
        raise ValueError(f"expected (..., 21, D) LSMV points, got {points.shape}")
    out = np.full(points.shape, np.nan)
    known = np.zeros(NUM_JOINTS, dtype=bool)
    for i, ours in enumerate(LSMV_TO_OURS):
        if ours >= 0:
            out[..., ours, :] = points[..., i, :]
            known[ours] = True
    return out, known


def check_joints(x: np.ndarray, dims: int, name: str = "joints") -> np.ndarray:
    """Raise unless ``x`` has shape (..., 21, dims); return it as a float64 array."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2 or x.shape[-2:] != (NUM_JOINTS, dims):
        raise ValueError(f"{name}: expected (..., {NUM_JOINTS}, {dims}), got {tuple(x.shape)}")
    return x
