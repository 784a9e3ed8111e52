"""Check 1: the tracker's self-consistency, from the tracker stream alone.

Every function here is pure: arrays in, arrays out, one tracking frame per row, so each
is tested on its own (tests/test_qa.py) and runs on any tracker, simulated or real.

A real hand is a rigid chain moving smoothly; a tracker's failures break that, and each
way it breaks has a test:

- **bone lengths** that change for one hand id (:func:`bone_length_check`): a tracker
  fits one hand model per id, so its bones keep their length up to the joint noise;
- **speeds and accelerations** beyond a hand's (:func:`motion_check`), from local linear
  fits on each side of a frame (the tracker's per-frame noise would make plain finite
  differences useless: 2 mm of noise at 110 Hz is 60 m/s^2 of "acceleration");
- **hand type switches** within one id (:func:`hand_type_check`);
- **outside the reliable volume** (:func:`volume_check`): the device's published field
  of view (140 x 120 degrees, 10-60 cm);
- **discontinuities** (:func:`discontinuities`): at every boundary between two tracking
  frames, the hand extrapolated from the frames before it and from the frames after it
  (local linear fits) should meet; the gap, split into a rigid part (the whole hand
  moved or turned: a jump, a palm flip) and what is left per finger (a finger snapped),
  is measured against the noise. A glitch that starts and ends abruptly shows as two
  discontinuities that undo each other (:func:`glitch_spans` pairs them and marks the
  frames between); a frozen hand shows as a still stretch that ends in a snap.

Thresholds are in the units a person thinks in (mm, mm/s, degrees) and are defaults of
:class:`TrackerLimits`, chosen on simulated sessions with injected glitches (perf/qa.py)
and far from what a real hand does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..hand import BONES, FINGERS, NUM_JOINTS, finger_joints

PALM_JOINTS = (0, 5, 9, 13, 17)  # the wrist and the four finger bases: the palm's rigid part

# The Leap Motion Controller's published tracking volume: 140 x 120 degrees above the
# device, from 10 to 60 cm (the simulated tracker uses the same figures).
VOLUME_HALF_FOV_X_DEG = 70.0
VOLUME_HALF_FOV_Z_DEG = 60.0
VOLUME_RANGE_MM = (100.0, 600.0)


@dataclass(frozen=True)
class TrackerLimits:
    """What a hand does not do (the tracker checks' thresholds).

    Attributes:
        window: tracking frames on each side of a boundary for the local fits.
        jump_mm: a rigid discontinuity (the largest joint displacement of the best rigid
            motion between the two sides) at least this large is a jump.
        finger_mm: a non-rigid discontinuity of one digit at least this large is a snap.
        noise_factor: ... and at least this many times the session's typical value (the
            tracker's noise, estimated from the session itself).
        pair_span_s: the longest glitch whose start and end are paired.
        undo: two discontinuities pair when the cosine of their gaps is at most -undo.
        still_mm_s: the hand's centre moving slower than this is "still" (a frozen hand
            moves only by the tracker's noise, a few mm/s after the fit).
        speed_mm_s, accel_mm_s2: joint speed and acceleration no hand reaches.
        bone_mm: a bone whose length changes by more than this from its id's median...
        bone_factor: ... and by more than this many times its typical change (noise).
        min_run: shorter id runs are too short to judge (their discontinuities are not tested).
    """

    window: int = 5
    jump_mm: float = 10.0
    finger_mm: float = 16.0
    noise_factor: float = 4.0
    pair_span_s: float = 2.0
    undo: float = 0.5
    still_mm_s: float = 30.0
    speed_mm_s: float = 4000.0
    accel_mm_s2: float = 150_000.0
    bone_mm: float = 5.0
    bone_factor: float = 5.0
    min_run: int = 12


def id_runs(ids: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) ranges of consecutive frames with one hand id (ids < 0: no hand)."""
    ids = np.asarray(ids)
    if len(ids) == 0:
        return []
    change = np.flatnonzero(np.diff(ids) != 0) + 1
    starts = np.r_[0, change]
    ends = np.r_[change, len(ids)]
    return [(int(a), int(b)) for a, b in zip(starts, ends) if ids[a] >= 0]


# ------------------------------------------------------------------------ bone lengths
def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """(T, 20) lengths (mm) of :data:`hand.BONES` of (T, 21, 3) joints."""
    a = np.array([b[0] for b in BONES])
    b = np.array([b[1] for b in BONES])
    return np.linalg.norm(joints[:, b] - joints[:, a], axis=-1)


def bone_length_check(joints: np.ndarray, ids: np.ndarray, limits: TrackerLimits = TrackerLimits()) -> tuple[np.ndarray, np.ndarray]:
    """Bone lengths that change within one hand id.

    Returns:
        score: (T,) the largest change of a bone from its median length in the id, mm
            (NaN without a hand).
        flag: (T,) bool: a bone changed by more than ``bone_mm`` and by more than
            ``bone_factor`` times that bone's typical change in the id (what the joint
            noise alone does: its median absolute deviation, scaled to a standard deviation).
    """
    T = len(ids)
    score = np.full(T, np.nan)
    flag = np.zeros(T, bool)
    lengths = bone_lengths(joints)
    for a, b in id_runs(ids):
        dev = lengths[a:b] - np.median(lengths[a:b], axis=0)
        spread = np.maximum(1.4826 * np.median(np.abs(dev), axis=0), 0.1)  # per bone, mm
        score[a:b] = np.abs(dev).max(axis=1)
        flag[a:b] = ((np.abs(dev) > limits.bone_mm) & (np.abs(dev) > limits.bone_factor * spread)).any(axis=1)
    return score, flag


# ------------------------------------------------------------------------ local fits
def _fit_weights(t: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights of a least-squares line through windows of times ``t`` (B, w), giving its
    value and its slope at times ``at`` (B,) as sums of the window's values."""
    tau = (t - at[:, None]) / 1e9  # s
    m = tau.mean(axis=1, keepdims=True)
    S = np.sum((tau - m) ** 2, axis=1, keepdims=True)
    S = np.maximum(S, 1e-12)
    slope_w = (tau - m) / S
    value_w = 1.0 / tau.shape[1] - m * slope_w
    return value_w, slope_w


@dataclass
class Sides:
    """Local fits on each side of every boundary of a run: boundary k lies between frames
    k and k + 1 (indices into the stream). Arrays (B, ...) for the run's B boundaries
    with a full window on both sides."""

    k: np.ndarray  # (B,) int: the frame before the boundary
    t_mid: np.ndarray  # (B,) int64 ns
    left: np.ndarray  # (B, 21, 3): the fit of the frames before, at t_mid
    right: np.ndarray  # (B, 21, 3): the fit of the frames after, at t_mid
    v_left: np.ndarray  # (B, 21, 3) mm/s
    v_right: np.ndarray  # (B, 21, 3) mm/s


def side_fits(t_ns: np.ndarray, joints: np.ndarray, a: int, b: int, w: int) -> Sides | None:
    """Local linear fits of ``w`` frames on each side of every boundary of the run [a, b)."""
    n = b - a
    if n < 2 * w:
        return None
    t = t_ns[a:b].astype(np.float64)
    J = joints[a:b].reshape(n, -1)
    tw = sliding_window_view(t, w)  # (n - w + 1, w): window starting at each frame
    Jw = sliding_window_view(J, w, axis=0)  # (n - w + 1, 63, w)
    # boundary after local frame i (i = w-1 .. n-w-1): left window starts at i-w+1, right at i+1
    i = np.arange(w - 1, n - w)
    tl, tr = tw[i - w + 1], tw[i + 1]
    t_mid = (t[i] + t[i + 1]) / 2
    vl, sl = _fit_weights(tl, t_mid)
    vr, sr = _fit_weights(tr, t_mid)
    Jl, Jr = Jw[i - w + 1], Jw[i + 1]
    shape = (len(i), NUM_JOINTS, 3)
    return Sides(
        k=a + i,
        t_mid=t_mid.astype(np.int64),
        left=np.einsum("bw,bcw->bc", vl, Jl).reshape(shape),
        right=np.einsum("bw,bcw->bc", vr, Jr).reshape(shape),
        v_left=np.einsum("bw,bcw->bc", sl, Jl).reshape(shape),
        v_right=np.einsum("bw,bcw->bc", sr, Jr).reshape(shape),
    )


def rigid_fit(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best rigid motions (Kabsch) taking point sets ``src`` (B, n, 3) to ``dst``:
    R (B, 3, 3) and t (B, 3) with dst ~ src @ R^T + t."""
    cs, cd = src.mean(axis=1), dst.mean(axis=1)
    H = np.einsum("bni,bnj->bij", src - cs[:, None], dst - cd[:, None])
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.einsum("bji,bkj->bik", Vt, U)))  # V U^T
    D = np.zeros_like(H)
    D[:, 0, 0] = D[:, 1, 1] = 1.0
    D[:, 2, 2] = d
    R = np.einsum("bji,bjk,bmk->bim", Vt, D, U)  # V D U^T
    t = cd - np.einsum("bij,bj->bi", R, cs)
    return R, t


@dataclass
class Discontinuities:
    """What changes abruptly at each boundary (between frames k and k + 1), (B,) arrays
    over the boundaries of every run long enough to judge.

    Attributes:
        k: the frame before the boundary. t_ns: the boundary's time.
        gap: (B, 21, 3) mm, the right side's fit minus the left side's at the boundary.
        rigid_mm: the largest palm joint displacement of the palm's best rigid motion
            between the sides (at the palm, where its noise is smallest).
        turn_deg: that motion's rotation angle.
        finger_mm: (B, 5) per digit, the largest joint gap left after the rigid motion.
        speed: (B,) mm/s, the hand centre's speed (the slower of the two sides' fits).
        joint_speed: (B,) mm/s, the fastest joint (the slower side of each joint).
        accel: (B,) mm/s^2, the largest joint's change of velocity between the sides.
    """

    k: np.ndarray
    t_ns: np.ndarray
    gap: np.ndarray
    rigid_mm: np.ndarray
    turn_deg: np.ndarray
    finger_mm: np.ndarray
    speed: np.ndarray
    joint_speed: np.ndarray
    accel: np.ndarray


def discontinuities(t_ns: np.ndarray, joints: np.ndarray, ids: np.ndarray, limits: TrackerLimits = TrackerLimits()) -> Discontinuities:
    """Measure every boundary of every hand id run (see the module docstring)."""
    w = limits.window
    parts = [s for a, b in id_runs(ids) if b - a >= max(limits.min_run, 2 * w) and (s := side_fits(t_ns, joints, a, b, w)) is not None]
    if not parts:
        z = np.zeros(0)
        return Discontinuities(z.astype(int), z.astype(np.int64), np.zeros((0, NUM_JOINTS, 3)), z, z, np.zeros((0, 5)), z, z, z)
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
    k, t_mid, left, right, v_left, v_right = (cat(n) for n in ("k", "t_mid", "left", "right", "v_left", "v_right"))
    # The palm (the wrist and the finger bases) is rigid in a real hand: its motion is the
    # hand's, and what the fingers do beyond it is theirs.
    palm = list(PALM_JOINTS)
    R, t = rigid_fit(left[:, palm], right[:, palm])
    moved = np.einsum("bij,bnj->bni", R, left) + t[:, None]
    rigid_mm = np.max(np.linalg.norm(moved[:, palm] - left[:, palm], axis=-1), axis=1)
    turn = np.degrees(np.arccos(np.clip((np.trace(R, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    rest = np.linalg.norm(right - moved, axis=-1)  # (B, 21)
    finger_mm = np.stack([rest[:, list(finger_joints(f))].max(axis=1) for f in FINGERS], axis=1)
    centre_l, centre_r = v_left.mean(axis=1), v_right.mean(axis=1)
    speed = np.minimum(np.linalg.norm(centre_l, axis=-1), np.linalg.norm(centre_r, axis=-1))
    joint_speed = np.max(np.minimum(np.linalg.norm(v_left, axis=-1), np.linalg.norm(v_right, axis=-1)), axis=1)
    dt = w * np.median(np.diff(t_ns[: max(2, min(len(t_ns), 1000))])) / 1e9 if len(t_ns) > 1 else 1.0
    accel = np.max(np.linalg.norm(v_right - v_left, axis=-1), axis=1) / max(dt, 1e-6)
    return Discontinuities(k, t_mid, right - left, rigid_mm, turn, finger_mm, speed, joint_speed, accel)


def _local_maxima(score: np.ndarray, k: np.ndarray, radius: int) -> np.ndarray:
    """Indices of entries of ``score`` that are the largest within +-radius frames (of k)."""
    keep = []
    for i in np.argsort(-score):
        if all(abs(k[i] - k[j]) > radius for j in keep):
            keep.append(i)
    return np.array(sorted(keep, key=lambda i: k[i]), dtype=int)


@dataclass
class Event:
    """An abrupt change of the tracked hand at a boundary (after frame ``k``)."""

    k: int
    t_ns: int
    gap: np.ndarray  # (21, 3) mm
    rigid_mm: float
    turn_deg: float
    finger_mm: float
    fingers: np.ndarray  # (5,) each digit's largest non-rigid gap, mm

    @property
    def digits(self) -> set[int]:
        """The digits that moved: at least half the largest digit's gap."""
        return {int(d) for d in np.flatnonzero(self.fingers >= 0.5 * self.fingers.max())}

    @property
    def kind(self) -> str:
        """What the change looks like: "flip" (the hand turned more than a right angle at
        once), "jump" (it moved), or "finger" (only a digit moved)."""
        if self.turn_deg > 90:
            return "flip"
        return "jump" if self.rigid_mm >= self.finger_mm * 0.5 else "finger"


def find_events(d: Discontinuities, limits: TrackerLimits = TrackerLimits()) -> list[Event]:
    """The boundaries where the hand changes abruptly: a rigid gap above ``jump_mm`` or a
    digit's gap above ``finger_mm``, each also ``noise_factor`` times the session's
    median (the tracker's own noise), one per neighbourhood of ``window`` frames."""
    if len(d.k) == 0:
        return []
    fmax = d.finger_mm.max(axis=1)
    thr_r = max(limits.jump_mm, limits.noise_factor * np.median(d.rigid_mm))
    thr_f = max(limits.finger_mm, limits.noise_factor * np.median(fmax))
    score = np.maximum(d.rigid_mm / thr_r, fmax / thr_f)
    cand = np.flatnonzero(score > 1)
    if len(cand) == 0:
        return []
    keep = cand[_local_maxima(score[cand], d.k[cand], limits.window)]
    return [Event(int(d.k[i]), int(d.t_ns[i]), d.gap[i], float(d.rigid_mm[i]), float(d.turn_deg[i]), float(fmax[i]), d.finger_mm[i]) for i in keep]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel(), b.ravel()
    return float(a @ b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-9)


def _undoes(e1: Event, e2: Event, undo: float) -> bool:
    """Does ``e2`` undo ``e1`` (the hand came back)? Two flips do (two half turns); a
    snap of digits is undone by the next snap of one of them (the real fingers moved
    meanwhile, so the snap back need not point back); a jump by one pointing back along
    it (the cosine of the gaps over all joints at most ``-undo``) with about its size."""
    if e1.kind == "flip" and e2.kind == "flip":
        return True
    if e1.kind == "finger" and e2.kind == "finger":
        return bool(e1.digits & e2.digits)
    n1, n2 = np.linalg.norm(e1.gap), np.linalg.norm(e2.gap)
    return _cosine(e1.gap, e2.gap) <= -undo and 0.5 <= n2 / max(n1, 1e-9) <= 2.0


def glitch_spans(
    events: list[Event], t_ns: np.ndarray, ids: np.ndarray, still: np.ndarray, limits: TrackerLimits = TrackerLimits()
) -> tuple[np.ndarray, list[dict]]:
    """The tracking frames a glitch holds, from its discontinuities.

    An event followed (within ``pair_span_s``, same id) by one that undoes it opens a
    glitch, which holds the frames between them, named by the opening event's kind. An
    event left alone that ends a still stretch (the hand's centre still for ``window``
    frames and more) is a frozen hand snapping back: the glitch holds the still frames
    before it. Any other lone event holds the two frames beside it.

    Args:
        events: from :func:`find_events`. t_ns, ids: (T,) the stream's times and hand ids.
        still: (T,) bool, the hand's centre still (see :func:`still_frames`).

    Returns:
        kind: (T,) str array, "" or the glitch's kind (flip, jump, finger, frozen).
        spans: [{"kind", "first", "last"}] (frame indices, inclusive).
    """
    T = len(ids)
    kind = np.full(T, "", dtype=object)
    spans = []
    used = set()
    for i, e in enumerate(events):
        if i in used:
            continue
        partner = None
        for j in range(i + 1, len(events)):
            e2 = events[j]
            if e2.t_ns - e.t_ns > limits.pair_span_s * 1e9 or ids[e2.k] != ids[e.k]:
                break
            if j not in used and _undoes(e, e2, limits.undo):
                partner = j
                break
        frozen = e.k >= limits.window and still[e.k] and still[e.k - limits.window]
        if partner is not None:
            used.update({i, partner})
            first, last, name = e.k + 1, events[partner].k, e.kind
        elif frozen:
            used.add(i)
            first = e.k
            t_lo = e.t_ns - limits.pair_span_s * 1e9
            while first - 1 >= 0 and ids[first - 1] == ids[e.k] and still[first - 1] and t_ns[first - 1] >= t_lo:
                first -= 1
            last, name = e.k, "frozen"
        else:
            used.add(i)
            first, last, name = e.k, min(e.k + 1, T - 1), e.kind
        kind[first : last + 1] = np.where(kind[first : last + 1] == "", name, kind[first : last + 1])
        spans.append({"kind": name, "first": int(first), "last": int(last)})
    return kind, spans


def still_frames(d: Discontinuities, T: int, limits: TrackerLimits = TrackerLimits()) -> np.ndarray:
    """(T,) bool: the hand's centre moves slower than ``still_mm_s``: the median of the
    slower side's fit over the ``2 window + 1`` frames up to the frame (the noise of one
    fit crosses the line now and then; trailing, so that the frames just before a frozen
    hand snaps back count as still). Frames without a judged boundary: False."""
    speed = np.full(T, np.inf)
    speed[d.k] = d.speed
    n = 2 * limits.window + 1
    if T >= n:
        padded = np.pad(speed, (n - 1, 0), constant_values=np.inf)
        speed = np.median(sliding_window_view(padded, n), axis=1)
    return speed < limits.still_mm_s


def motion_check(d: Discontinuities, T: int, limits: TrackerLimits = TrackerLimits()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joint speeds and accelerations no hand reaches.

    Returns:
        speed: (T,) mm/s, the fastest joint at each frame (NaN where not judged).
        accel: (T,) mm/s^2, the largest change of a joint's velocity.
        flag: (T,) bool: either above :class:`TrackerLimits`' limits.
    """
    speed, accel = np.full(T, np.nan), np.full(T, np.nan)
    speed[d.k], accel[d.k] = d.joint_speed, d.accel
    with np.errstate(invalid="ignore"):
        flag = (speed > limits.speed_mm_s) | (accel > limits.accel_mm_s2)
    return speed, accel, flag


# ------------------------------------------------------------------- hand type, volume
def hand_type_check(types: list, ids: np.ndarray) -> np.ndarray:
    """(T,) bool: the reported hand type differs from the one its id mostly has (a
    left/right flip within one tracked hand)."""
    flag = np.zeros(len(ids), bool)
    for a, b in id_runs(ids):
        run = np.array([str(t) for t in types[a:b]])
        values, counts = np.unique(run, return_counts=True)
        flag[a:b] = run != values[np.argmax(counts)]
    return flag


def id_switches(ids: np.ndarray) -> np.ndarray:
    """(T,) bool: the hand id changes from the frame before with no frame without a hand
    between (a re-identification mid-track: the tracker's model restarted)."""
    ids = np.asarray(ids)
    out = np.zeros(len(ids), bool)
    out[1:] = (ids[1:] >= 0) & (ids[:-1] >= 0) & (ids[1:] != ids[:-1])
    return out


def volume_check(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frames whose palm is outside the tracker's reliable volume (in ``leap``).

    Returns:
        margin: (T,) degrees of field of view left (negative outside; NaN without a hand).
        flag: (T,) bool: outside the field of view or the 10-60 cm range.
    """
    palm = np.nanmean(joints[:, list(PALM_JOINTS)], axis=1) if len(joints) else np.zeros((0, 3))
    x, y, z = palm[:, 0], palm[:, 1], palm[:, 2]
    with np.errstate(invalid="ignore"):
        ax = VOLUME_HALF_FOV_X_DEG - np.degrees(np.abs(np.arctan2(x, y)))
        az = VOLUME_HALF_FOV_Z_DEG - np.degrees(np.abs(np.arctan2(z, y)))
        margin = np.minimum(ax, az)
        r = np.linalg.norm(palm, axis=1)
        flag = (margin < 0) | (r < VOLUME_RANGE_MM[0]) | (r > VOLUME_RANGE_MM[1])
    flag &= np.isfinite(r)
    return margin, flag
