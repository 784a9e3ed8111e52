"""Smooth random hand motion: pose-library keyframes blended with random poses, wandering
positions inside the tracker's volume chosen for a range of hand sizes in the image, and
the hand leaving and entering the scene.

Everything is a function of true time (seconds from the start of the session) so the
tracker (110 Hz) and the camera (30 fps) sample the same motion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.spatial.transform import Rotation, RotationSpline

from ..geometry import Camera, Transform
from .kinematics import LOWER, NUM_ANGLES, UPPER, HandShape, clip_angles, forward_kinematics, pose_library, uncross_fingers

# The tracker's working volume (Leap Motion Controller): a cone of 140 deg along x and
# 120 deg along z above the device, out to about 600 mm.
LEAP_HALF_FOV_X = np.deg2rad(70.0)
LEAP_HALF_FOV_Z = np.deg2rad(60.0)
LEAP_RANGE_MM = (40.0, 600.0)


def in_leap_volume(p: np.ndarray, margin_deg: float = 0.0, y_range=(40.0, 600.0)) -> np.ndarray:
    """(...,) bool: points (..., 3) mm in ``leap`` inside the tracker's field of view."""
    p = np.asarray(p, dtype=np.float64)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    m = np.deg2rad(margin_deg)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (y > y_range[0]) & (y < y_range[1])
        ok &= np.abs(np.arctan2(x, y)) < LEAP_HALF_FOV_X - m
        ok &= np.abs(np.arctan2(z, y)) < LEAP_HALF_FOV_Z - m
        ok &= np.linalg.norm(p, axis=-1) < LEAP_RANGE_MM[1]
    return ok


# Palm centre in the hand frame, as a fraction of the hand's scale.
_PALM_CENTRE = np.array([0.0, 42.0, 4.0])


@dataclass
class Segment:
    """A stretch of time when one hand is in the scene."""

    start_s: float
    end_s: float
    handedness: str


@dataclass
class Motion:
    """A hand's motion over a session; evaluate it at any true time.

    Attributes:
        shape: the subject's hand.
        segments: when the hand is in the scene, and which hand it is.
        scale: the subject's scale (for the palm centre offset).
    """

    shape: HandShape
    segments: list[Segment]
    _angles: PchipInterpolator
    _pos: PchipInterpolator
    _rot: RotationSpline
    _tremor: tuple[np.ndarray, np.ndarray, np.ndarray]  # amplitude, freq, phase (20, 2)
    _palm_centre: np.ndarray
    duration_s: float

    def angles(self, t_s: np.ndarray) -> np.ndarray:
        """(T, 20) joint angles at times (T,) s, inside the anatomical limits."""
        t = np.clip(np.asarray(t_s, dtype=np.float64), 0, self.duration_s)
        amp, freq, phase = self._tremor
        tremor = (amp * np.sin(2 * np.pi * freq * t[:, None, None] + phase)).sum(-1)
        return clip_angles(self._angles(t) + tremor)

    def pose(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hand pose at times (T,): R (T, 3, 3) hand-to-leap rotation and wrist (T, 3) mm."""
        t = np.clip(np.asarray(t_s, dtype=np.float64), 0, self.duration_s)
        R = self._rot(t).as_matrix()
        palm = self._pos(t)
        wrist = palm - np.einsum("tij,j->ti", R, self._palm_centre)
        return R, wrist

    def present(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(T,) bool: a hand is in the scene; (T,) int: its segment index (-1 if none)."""
        t = np.asarray(t_s, dtype=np.float64)
        seg = np.full(t.shape, -1, dtype=np.int64)
        for k, s in enumerate(self.segments):
            seg[(t >= s.start_s) & (t < s.end_s)] = k
        return seg >= 0, seg

    def joints(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """True joints at times (T,): (T, 21, 3) mm in ``leap`` and (T,) segment index.
        Outside the segments the joints are those of the hand off-scene."""
        t = np.asarray(t_s, dtype=np.float64)
        present, seg = self.present(t)
        R, wrist = self.pose(t)
        angles = self.angles(t)
        out = np.empty((len(t), 21, 3))
        hands = np.array([self.segments[s].handedness if s >= 0 else "right" for s in seg])
        for side in ("right", "left"):
            m = hands == side
            if m.any():
                local = forward_kinematics(self.shape, angles[m], side)
                out[m] = np.einsum("tij,tkj->tki", R[m], local) + wrist[m, None, :]
        return out, seg


def _rot_base() -> Rotation:
    """The rest orientation, hand frame -> leap: fingers up (hand +y -> leap +y), palm
    toward the camera, which stands at leap -z (hand +z -> leap -z), so the thumb side of
    a right hand (hand +x) is leap -x. A rotation of half a turn about y."""
    return Rotation.from_matrix(np.diag([-1.0, 1.0, -1.0]))


def random_orientation(rng: np.random.Generator) -> Rotation:
    """A plausible hand orientation: fingers mostly up or toward the camera, palm toward
    the camera or down, with yaw and roll."""
    yaw = rng.uniform(-70, 70)
    pitch = rng.uniform(-95, 25)  # about leap x: -90 tips the fingers toward the camera
    roll = rng.uniform(-60, 60)  # about the finger axis
    R_world = Rotation.from_euler("YX", [yaw, pitch], degrees=True)
    R_roll = Rotation.from_euler("y", roll, degrees=True)  # hand frame's y = finger axis
    return R_world * _rot_base() * R_roll


def sample_palm_position(
    rng: np.random.Generator,
    camera: Camera,
    T_cam_leap: Transform,
    hand_extent_mm: float,
    size_px: tuple[float, float],
    tries: int = 200,
) -> np.ndarray:
    """A palm position in ``leap`` (mm) inside the tracker's volume where the hand appears
    in the image at a size drawn log-uniformly from ``size_px``."""
    T_leap_cam = T_cam_leap.inverse()
    K = camera.K
    best, best_d = None, np.inf
    for _ in range(tries):
        s = np.exp(rng.uniform(np.log(size_px[0]), np.log(size_px[1])))
        Z = K[0, 0] * hand_extent_mm / s
        u = rng.uniform(0.2, 0.8) * camera.width
        v = rng.uniform(0.2, 0.8) * camera.height
        p_cam = np.array([(u - K[0, 2]) / K[0, 0] * Z, (v - K[1, 2]) / K[1, 1] * Z, Z])
        p = T_leap_cam.apply(p_cam)
        if in_leap_volume(p, margin_deg=8, y_range=(110, 480)) and np.linalg.norm(p) < 540:
            return p
        # otherwise remember the candidate closest to the volume's centre line
        d = abs(p[1] - 280) + np.hypot(p[0], p[2]) * 0.5
        if d < best_d:
            best, best_d = p, d
    return best


def _offscene(rng: np.random.Generator) -> np.ndarray:
    """A palm position out of the tracker's volume and the camera's view."""
    side = rng.integers(3)
    if side == 0:
        return np.array([rng.choice([-1.0, 1.0]) * 1000.0, rng.uniform(150, 400), rng.uniform(0, 300)])
    if side == 1:
        return np.array([rng.uniform(-300, 300), -250.0, rng.uniform(100, 400)])  # below the desk
    return np.array([rng.uniform(-200, 200), rng.uniform(150, 350), 800.0])  # back to the user


def generate_motion(
    rng: np.random.Generator,
    shape: HandShape,
    camera: Camera,
    T_cam_leap: Transform,
    duration_s: float,
    size_px: tuple[float, float] = (40.0, 300.0),
    left_share: float = 0.3,
    absent_share: float = 0.15,
    speed: float = 1.0,
) -> Motion:
    """Random smooth motion of one subject's hand for ``duration_s`` seconds.

    The hand is in the scene for stretches of a few seconds and away for about
    ``absent_share`` of the time; between stretches it may change to the other hand.
    """
    lib = pose_library(shape)
    names = sorted(lib)
    extent = 0.75 * shape.length
    keys_t, keys_a, keys_p, keys_r = [], [], [], []
    segments: list[Segment] = []
    end = duration_s + 1.0

    def key(tk, angles, pos, rot):
        keys_t.append(tk)
        keys_a.append(angles)
        keys_p.append(pos)
        keys_r.append(rot)

    def random_pose():
        base = lib[names[rng.integers(len(names))]]
        rand = rng.uniform(LOWER, UPPER)
        mix = rng.uniform(0.0, 0.35)
        return uncross_fingers((1 - mix) * base + mix * rand + rng.normal(0, np.deg2rad(4), NUM_ANGLES))

    # Segments run from one off-scene key to the next: the hand is on its way in, moves
    # about, and leaves; the tracker's volume and the camera's view decide when it is seen.
    away = 0.0 if rng.random() > absent_share / 2 else rng.uniform(0.3, 1.0)
    key(0.0, random_pose(), _offscene(rng) if away else sample_palm_position(rng, camera, T_cam_leap, extent, size_px), random_orientation(rng))
    t = away
    while t < end:
        seg_start = keys_t[-1]  # the last off-scene key (or the start)
        hand = "left" if rng.random() < left_share else "right"
        t_end = t + rng.uniform(2.5, 6.0)
        while t < t_end:
            t += rng.uniform(0.5, 1.6) / speed
            key(t, random_pose(), sample_palm_position(rng, camera, T_cam_leap, extent, size_px), random_orientation(rng))
        t += rng.uniform(0.5, 0.9)  # leave
        key(t, random_pose(), _offscene(rng), random_orientation(rng))
        segments.append(Segment(seg_start, t, hand))
        # stay away for a while (about absent_share of the time), then come back
        away = rng.uniform(0.3, 1.2) * absent_share / 0.12
        t += away
        key(t, random_pose(), keys_p[-1] + rng.normal(0, 30, 3), random_orientation(rng))
    kt = np.array(keys_t)  # strictly increasing by construction
    rot = Rotation.concatenate(keys_r)
    amp = np.deg2rad(rng.uniform(0.5, 3.0, size=(NUM_ANGLES, 2)))
    freq = rng.uniform(0.2, 1.2, size=(NUM_ANGLES, 2))
    phase = rng.uniform(0, 2 * np.pi, size=(NUM_ANGLES, 2))
    return Motion(
        shape=shape,
        segments=segments,
        _angles=PchipInterpolator(kt, np.array(keys_a), axis=0),
        _pos=PchipInterpolator(kt, np.array(keys_p), axis=0),
        _rot=RotationSpline(kt, rot),
        _tremor=(amp, freq, phase),
        _palm_centre=_PALM_CENTRE * shape.length / 179.0,
        duration_s=float(kt[-1]),
    )
