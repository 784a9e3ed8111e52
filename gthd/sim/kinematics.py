"""A kinematic hand: adult bone proportions, 20 joint angles with anatomical limits, a
pose library, and batched forward kinematics.

Hand frame (right hand): origin at the wrist, +y from the wrist toward the middle
finger's base, +z out of the palm (the palmar side), x = y cross z (the thumb side).
A left hand is the mirror image (x negated). Lengths in millimetres, angles in radians.

Angles, 4 per digit in :data:`hand.FINGERS` order (thumb, index, middle, ring, pinky):
``[abduction, flex1, flex2, flex3]``; for the thumb flex1 is the CMC, for the fingers
the MCP; flexion bends toward the palm, abduction turns the digit in the palm plane
(positive toward the thumb side).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..hand import FINGERS, NUM_JOINTS, finger_joints

NUM_ANGLES = 20
ANGLE_NAMES = tuple(f"{f}_{a}" for f in FINGERS for a in ("ABD", "FLEX1", "FLEX2", "FLEX3"))

_d = np.deg2rad
# Anatomical limits (degrees), per digit: abduction, flex1, flex2, flex3.
_LIMITS_DEG = {
    "THUMB": ((-15, 45), (-15, 60), (-10, 60), (-15, 80)),
    "INDEX": ((-20, 20), (-20, 90), (0, 110), (-5, 80)),
    "MIDDLE": ((-15, 15), (-20, 90), (0, 110), (-5, 80)),
    "RING": ((-15, 15), (-20, 90), (0, 110), (-5, 80)),
    "PINKY": ((-20, 25), (-20, 90), (0, 110), (-5, 80)),
}
LOWER = _d(np.array([lim[0] for f in FINGERS for lim in _LIMITS_DEG[f]], dtype=np.float64))
UPPER = _d(np.array([lim[1] for f in FINGERS for lim in _LIMITS_DEG[f]], dtype=np.float64))

# Adult (scale 1) proportions, mm. Finger bases in the hand frame (right hand).
_BASES = np.array(
    [
        [22.0, 28.0, 8.0],  # THUMB_CMC
        [24.0, 80.0, 2.0],  # INDEX_MCP
        [3.0, 83.0, 0.0],  # MIDDLE_MCP
        [-16.0, 78.0, 1.0],  # RING_MCP
        [-32.0, 69.0, 3.0],  # PINKY_MCP
    ]
)
# Phalanx lengths per digit: thumb metacarpal, proximal, distal; fingers: proximal,
# middle, distal phalanges.
_PHALANGES = np.array(
    [
        [44.0, 32.0, 27.0],
        [42.0, 25.0, 20.0],
        [46.0, 29.0, 21.0],
        [43.0, 28.0, 21.0],
        [34.0, 20.0, 19.0],
    ]
)
# Capsule radii (mm) per digit segment, for rendering.
_RADII = np.array(
    [
        [12.0, 10.5, 9.5],  # the thumb is the stoutest digit
        [9.0, 8.0, 7.0],
        [9.5, 8.5, 7.5],
        [9.0, 8.0, 7.0],
        [8.0, 7.0, 6.5],
    ]
)


def _digit_frames(bases: np.ndarray) -> np.ndarray:
    """Rest frame of each digit: (5, 3, 3) with columns (x_d, y_d, z_d) in the hand frame.

    y_d is the digit's rest direction, z_d the direction flexion bends toward.
    """
    frames = np.zeros((5, 3, 3))
    for d in range(5):
        if d == 0:
            # Thumb: points out and forward from the CMC; its flexion sweeps it across the
            # palm toward the little finger and out of the palm plane (opposition).
            y = np.array([0.62, 0.72, 0.30])
            z = np.array([-0.75, 0.25, 0.62])
        else:
            y = bases[d] - np.array([0.0, 0.0, 0.0])
            y = y * np.array([0.55, 1.0, 0.0])  # fingers splay less than their bases
            z = np.array([0.0, 0.0, 1.0])
        y = y / np.linalg.norm(y)
        z = z - y * (z @ y)
        z = z / np.linalg.norm(z)
        x = np.cross(y, z)
        frames[d] = np.stack([x, y, z], axis=1)
    return frames


@dataclass(frozen=True)
class HandShape:
    """One subject's hand.

    Attributes:
        bases: (5, 3) finger bases (thumb CMC, index..pinky MCP) in the hand frame, mm.
        phalanges: (5, 3) segment lengths per digit, mm.
        radii: (5, 3) capsule radii per digit segment, mm; palm_radius: mm.
        frames: (5, 3, 3) rest frame of each digit.
    """

    bases: np.ndarray
    phalanges: np.ndarray
    radii: np.ndarray
    palm_radius: float
    frames: np.ndarray

    @classmethod
    def adult(cls, scale: float = 1.0, rng: np.random.Generator | None = None) -> "HandShape":
        """Adult proportions times ``scale`` (about 0.8-1.2), with per-bone variation of a
        few percent when ``rng`` is given."""
        bases, ph, radii = _BASES * scale, _PHALANGES * scale, _RADII * scale
        if rng is not None:
            bases = bases * rng.normal(1.0, 0.03, size=(5, 1))
            ph = ph * rng.normal(1.0, 0.04, size=(5, 3))
            radii = radii * rng.normal(1.0, 0.06)
        return cls(bases, ph, radii, 13.0 * scale, _digit_frames(bases))

    @property
    def length(self) -> float:
        """Wrist to middle fingertip, straight hand, mm."""
        return float(np.linalg.norm(self.bases[2]) + self.phalanges[2].sum())

    def bone_lengths(self) -> np.ndarray:
        """(20,) lengths of :data:`hand.BONES` (wrist to each base, then phalanges)."""
        return np.concatenate([np.linalg.norm(self.bases, axis=1), self.phalanges.ravel()])

    def to_dict(self) -> dict:
        return {
            "bases_mm": np.round(self.bases, 4).tolist(),
            "phalanges_mm": np.round(self.phalanges, 4).tolist(),
            "radii_mm": np.round(self.radii, 4).tolist(),
            "palm_radius_mm": round(self.palm_radius, 4),
        }


def forward_kinematics(shape: HandShape, angles: np.ndarray, handedness: str = "right") -> np.ndarray:
    """Joint positions in the hand frame.

    Args:
        shape: the subject's hand.
        angles: (..., 20) radians, :data:`ANGLE_NAMES` order.
        handedness: "right" or "left" (a left hand is mirrored in x).

    Returns:
        (..., 21, 3) float64 joints in :data:`hand.JOINT_NAMES` order, mm.
    """
    angles = np.asarray(angles, dtype=np.float64)
    if angles.shape[-1] != NUM_ANGLES:
        raise ValueError(f"angles: expected (..., {NUM_ANGLES}), got {angles.shape}")
    batch = angles.shape[:-1]
    a = angles.reshape(batch + (5, 4))
    abd = a[..., 0]  # (..., 5)
    flex = np.cumsum(a[..., 1:], axis=-1)  # (..., 5, 3) accumulated flexion per segment
    # Segment direction in the digit's rest frame: abduction about z_d, flexion about x_d.
    c = np.cos(flex)
    dirs_local = np.stack([np.sin(abd)[..., None] * c, np.cos(abd)[..., None] * c, np.sin(flex)], axis=-1)  # (..., 5, 3, 3): digit, segment, xyz
    dirs = np.einsum("dij,...dsj->...dsi", shape.frames, dirs_local)  # into the hand frame
    seg = dirs * shape.phalanges[..., None]  # (..., 5, 3, 3)
    chain = shape.bases[:, None, :] + np.cumsum(seg, axis=-2)  # (..., 5, 3, 3)
    joints = np.zeros(batch + (NUM_JOINTS, 3))
    for d, finger in enumerate(FINGERS):
        j = finger_joints(finger)
        joints[..., j[0], :] = shape.bases[d]
        joints[..., j[1] : j[3] + 1, :] = chain[..., d, :, :]
    if handedness == "left":
        joints[..., 0] *= -1
    elif handedness != "right":
        raise ValueError(f"handedness must be 'left' or 'right', got {handedness!r}")
    return joints


def clip_angles(angles: np.ndarray) -> np.ndarray:
    """Clip (..., 20) angles into the anatomical limits."""
    return np.clip(angles, LOWER, UPPER)


# Fingers splay about 8 degrees apart at rest (``_digit_frames``); two neighbours turned
# toward each other by more than this meet, and beyond it would pass through each other.
MAX_CONVERGENCE_DEG = 6.0


def uncross_fingers(angles: np.ndarray) -> np.ndarray:
    """Angles (..., 20) within the limits with no two neighbouring fingers (index..pinky)
    turned toward each other by more than :data:`MAX_CONVERGENCE_DEG`: a pair that would
    cross has both abductions moved apart, evenly where the limits allow. The thumb is
    left alone."""
    a = clip_angles(np.array(angles, dtype=np.float64, copy=True))
    lim = np.deg2rad(MAX_CONVERGENCE_DEG)
    for _ in range(2):  # a fix can push into the next pair: sweep twice, then settle
        for d in (1, 2, 3):  # index/middle, middle/ring, ring/little
            i, k = 4 * d, 4 * (d + 1)  # abduction is positive toward the thumb
            short = np.maximum(0.0, a[..., k] - a[..., i] - lim)
            up = np.minimum(short / 2, UPPER[i] - a[..., i])
            down = np.minimum(short - up, a[..., k] - LOWER[k])
            a[..., i] += up + np.minimum(short - up - down, UPPER[i] - a[..., i] - up)
            a[..., k] -= down
    for d in (1, 2, 3):  # what is left: hold each finger to its thumb-side neighbour
        i, k = 4 * d, 4 * (d + 1)  # (within its limits: a - lim > LOWER[k] always here)
        a[..., k] = np.minimum(a[..., k], a[..., i] + lim)
    return a


# --------------------------------------------------------------------------- pose library
def _pose(**digits) -> np.ndarray:
    """Angles from per-digit degrees; digits not named take the relaxed default."""
    default = {"THUMB": (10, 10, 10, 10), "INDEX": (0, 10, 15, 8)}
    out = []
    for f in FINGERS:
        out.extend(digits.get(f, default.get(f, (0, 10, 15, 8))))
    return clip_angles(_d(np.array(out, dtype=np.float64)))


_FIST = (0, 80, 100, 55)
POSES: dict[str, np.ndarray] = {
    "open": _pose(THUMB=(20, 0, 5, 5), INDEX=(0, 3, 5, 3), MIDDLE=(0, 3, 5, 3), RING=(0, 3, 5, 3), PINKY=(0, 3, 5, 3)),
    "spread": _pose(THUMB=(40, -10, 0, 0), INDEX=(15, 0, 3, 2), MIDDLE=(2, 0, 3, 2), RING=(-12, 0, 3, 2), PINKY=(-20, 0, 3, 2)),
    "relaxed": _pose(THUMB=(15, 15, 15, 15), INDEX=(0, 20, 30, 15), MIDDLE=(0, 25, 35, 18), RING=(0, 28, 38, 20), PINKY=(0, 30, 40, 22)),
    "fist": _pose(THUMB=(0, 45, 45, 40), INDEX=_FIST, MIDDLE=_FIST, RING=_FIST, PINKY=_FIST),
    "point": _pose(THUMB=(0, 40, 40, 35), INDEX=(0, 0, 3, 2), MIDDLE=_FIST, RING=_FIST, PINKY=_FIST),
    "victory": _pose(THUMB=(0, 40, 40, 35), INDEX=(10, 0, 3, 2), MIDDLE=(-8, 0, 3, 2), RING=_FIST, PINKY=_FIST),
    "thumbs_up": _pose(THUMB=(35, -10, -5, 0), INDEX=_FIST, MIDDLE=_FIST, RING=_FIST, PINKY=_FIST),
    "claw": _pose(THUMB=(25, 20, 30, 40), INDEX=(5, 10, 85, 60), MIDDLE=(0, 10, 85, 60), RING=(-5, 10, 85, 60), PINKY=(-10, 10, 85, 60)),
    "three": _pose(THUMB=(0, 40, 40, 35), INDEX=(8, 0, 3, 2), MIDDLE=(0, 0, 3, 2), RING=(-8, 0, 3, 2), PINKY=_FIST),
    "pinch": _pose(INDEX=(0, 35, 40, 25), MIDDLE=(0, 40, 55, 30), RING=(0, 50, 65, 35), PINKY=(0, 55, 70, 40)),
    "ok": _pose(INDEX=(0, 35, 40, 25), MIDDLE=(-3, 5, 8, 5), RING=(-8, 5, 8, 5), PINKY=(-15, 5, 8, 5)),
}
"""Named poses: (20,) angles each. ``pinch`` and ``ok`` have their thumb solved per
subject so the thumb tip meets the index tip (:func:`pose_library`)."""

_TOUCH_POSES = ("pinch", "ok")


def solve_thumb_touch(shape: HandShape, angles: np.ndarray, target_joint: int = 8) -> np.ndarray:
    """Adjust the thumb's 4 angles (within limits) so the thumb tip touches ``target_joint``
    (default INDEX_TIP) at about one finger width. Returns new (20,) angles."""
    from scipy.optimize import least_squares

    angles = np.asarray(angles, dtype=np.float64).copy()
    target = forward_kinematics(shape, angles)[target_joint]
    touch = shape.radii[1, 2] + shape.radii[0, 2]

    def residual(th):
        a = angles.copy()
        a[:4] = th
        tip = forward_kinematics(shape, a)[4]
        return [np.linalg.norm(tip - target) - touch]

    best = None
    for start in ([20, 30, 20, 20], [5, 50, 30, 30], [35, 20, 10, 40]):
        r = least_squares(residual, _d(np.array(start, float)), bounds=(LOWER[:4], UPPER[:4]))
        if best is None or abs(r.fun[0]) < abs(best.fun[0]):
            best = r
    angles[:4] = best.x
    return angles


def pose_library(shape: HandShape) -> dict[str, np.ndarray]:
    """:data:`POSES` with the touch poses solved for this subject's bone lengths."""
    lib = dict(POSES)
    for name in _TOUCH_POSES:
        lib[name] = solve_thumb_touch(shape, POSES[name])
    return lib
