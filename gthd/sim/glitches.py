"""Tracker failure modes injected into a simulated session, with their ground truth
(``gthd simulate --glitches flip,frozen,jump,finger,offset_jump``; docs/qa.md).

A hand tracker fails in a few recognisable ways, and the rig adds one of its own:

- ``flip``: the hand model is fitted the wrong way round, palm up for palm down: the
  tracked hand is turned half a turn about its finger axis (wrist to middle finger base)
  for 0.1-0.5 s; in half of the flips the tracker also reports the other hand type
  (a left/right flip).
- ``frozen``: the tracked hand stops (only the tracker's noise moves it) while the real
  one goes on, for 0.3-1.0 s, then snaps back onto the real hand.
- ``jump``: the whole tracked hand is displaced by 25-70 mm for 0.1-0.6 s (a wrong
  re-acquisition), then comes back.
- ``finger``: one or two digits snap to a wrong pose (curled for extended, extended for
  curled) for 0.2-0.8 s, as under occlusion.
- ``offset_jump``: from one frame on, the camera's frames arrive 15 ms later (a driver
  buffering one more frame), so the clock offset ``d`` changes by -15 ms from there on
  and every later label belongs to another instant. It is placed where the hand moves
  in the image (an offset change while the hand holds still changes no label).

Only the tracker stream (and, for ``offset_jump``, the camera's arrival stamps) is
changed: the images still show the true hand, so the glitches are what a QA tool has to
find. The tracker glitches are spread over stretches where one hand id is tracked
without a break (0.3 s of clean tracking on each side), never overlapping, about one of
each kind every ``every_s`` seconds of tracking.

The truth (``ground_truth.json``, key ``glitches``) lists the events and, per camera
frame a label would be made for, which glitches touch its label and how wrong the label
is: ``error_mm``, the largest joint error the glitch causes (the glitched tracked joints
against the same tracker frames without it, interpolated at the frame's time plus the
session's original clock offset, as ``gthd build-dataset`` interpolates). A frame counts
as ``harmful`` when that error is at least :data:`HARM_MM`: a glitch can leave a label
almost right (a freeze while the hand holds still), and a QA tool is asked to find the
wrong labels, not the harmless ones.

Randomness: a stream of its own (``[seed, 0x611C]``), so a session simulated without
glitches keeps its bytes, and with glitches keeps everything but what they change.
"""

from __future__ import annotations

import numpy as np

from ..hand import FINGERS, NUM_JOINTS
from .kinematics import forward_kinematics

GLITCH_KINDS = ("flip", "frozen", "jump", "finger", "offset_jump")
TRACKER_KINDS = GLITCH_KINDS[:4]
HARM_MM = 15.0
"""A label is wrong when a joint is off by this much (mm) because of a glitch: far above
the tracker's noise (0.8-2 mm per joint), about a finger's width."""

# Duration ranges (s) per tracker glitch kind.
_DURATION_S = {"flip": (0.1, 0.5), "frozen": (0.3, 1.0), "jump": (0.1, 0.6), "finger": (0.2, 0.8)}
_MARGIN_S = 0.3  # clean tracking of the same hand id before and after an event
_GAP_S = 0.8  # between two events
_PALM = [0, 5, 9, 13, 17]


def parse_glitches(text: str | None) -> tuple[str, ...]:
    """``"flip,jump"`` or ``"all"`` -> kinds in :data:`GLITCH_KINDS` order; ValueError
    on an unknown kind."""
    if not text:
        return ()
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["all"]:
        return GLITCH_KINDS
    bad = [n for n in names if n not in GLITCH_KINDS]
    if bad:
        raise ValueError(f"unknown glitch {bad[0]!r}; one of {', '.join(GLITCH_KINDS)} (or all)")
    return tuple(k for k in GLITCH_KINDS if k in names)


def _id_runs(ids: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges of consecutive tracker frames with one hand id (>= 0)."""
    runs, start = [], None
    for k in range(len(ids) + 1):
        cur = ids[k] if k < len(ids) else -1
        if start is not None and (cur != ids[start]):
            runs.append((start, k))
            start = None
        if start is None and cur >= 0:
            start = k
    return runs


def plan_events(t_ns: np.ndarray, ids: np.ndarray, kinds: tuple[str, ...], rng: np.random.Generator, every_s: float = 6.0) -> list[dict]:
    """Where the tracker glitches go: non-overlapping spans of tracker frames inside
    stretches of one hand id, with clean margins.

    Args:
        t_ns: (T,) tracker frame times (host clock). ids: (T,) hand id, -1 without a hand.
        kinds: the tracker kinds wanted (others are ignored).
        every_s: about one event of each kind per this many seconds of tracking.

    Returns:
        events sorted by time: {"kind", "first", "last"} (tracker frame indices, inclusive).
    """
    kinds = [k for k in kinds if k in TRACKER_KINDS]
    if not kinds or len(t_ns) < 2:
        return []
    runs = _id_runs(ids)
    tracked_s = sum((t_ns[b - 1] - t_ns[a]) / 1e9 for a, b in runs)
    per_kind = max(1, int(round(tracked_s / every_s)))
    taken: list[tuple[int, int]] = []  # (first, last) with the gap included
    events = []
    gap = int(_GAP_S * 1e9)
    margin = int(_MARGIN_S * 1e9)
    for n in range(per_kind * len(kinds)):
        kind = kinds[n % len(kinds)]
        for _ in range(200):
            dur = int(rng.uniform(*_DURATION_S[kind]) * 1e9)
            a, b = runs[rng.integers(len(runs))]
            lo, hi = t_ns[a] + margin, t_ns[b - 1] - margin - dur
            if hi <= lo:
                continue
            t0 = int(rng.uniform(lo, hi))
            first = int(np.searchsorted(t_ns, t0))
            last = int(np.searchsorted(t_ns, t0 + dur, side="right")) - 1
            if last < first or any(not (t_ns[last] + gap < t_ns[f] or t_ns[l] + gap < t_ns[first]) for f, l in taken):
                continue
            taken.append((first, last))
            events.append({"kind": kind, "first": first, "last": last})
            break
    return sorted(events, key=lambda e: e["first"])


def _half_turn(axis: np.ndarray) -> np.ndarray:
    """The rotation by 180 degrees about a unit axis: 2 a a^T - I."""
    a = axis / np.linalg.norm(axis)
    return 2.0 * np.outer(a, a) - np.eye(3)


def apply_event(event: dict, joints: np.ndarray, clean: np.ndarray, types: list, run, t_s: np.ndarray, rng: np.random.Generator) -> None:
    """Apply one tracker glitch in place.

    Args:
        event: from :func:`plan_events`; details drawn here are added to it.
        joints: (T, 21, 3) tracked joints (true joints plus the tracker's noise), changed in place.
        clean: (T, 21, 3) the true joints (no noise).
        types: (T,) reported hand types, changed in place.
        run: the :class:`~gthd.sim.simulate.SimRun` (its motion, for finger poses).
        t_s: (T,) true tracker frame times, s from the session's start.
    """
    a, b = event["first"], event["last"]
    span = slice(a, b + 1)
    noise = joints[span] - clean[span]
    kind = event["kind"]
    if kind == "flip":
        for k in range(a, b + 1):
            R = _half_turn(clean[k, 9] - clean[k, 0])
            centre = joints[k, _PALM].mean(axis=0)
            joints[k] = (joints[k] - centre) @ R.T + centre
        event["hand_type_swapped"] = bool(rng.random() < 0.5)
        if event["hand_type_swapped"]:
            for k in range(a, b + 1):
                types[k] = "left" if types[k] == "right" else "right"
    elif kind == "frozen":
        joints[span] = clean[a - 1] + noise
    elif kind == "jump":
        v = rng.normal(0, 1, 3)
        v *= rng.uniform(25, 70) / np.linalg.norm(v)
        joints[span] += v
        event["offset_mm"] = np.round(v, 2).tolist()
    elif kind == "finger":
        motion = run.motion
        angles = motion.angles(t_s[span])
        R, wrist = motion.pose(t_s[span])
        digits = rng.choice(5, size=int(rng.integers(1, 3)), replace=False)
        for d in digits:
            flex = angles[0, 4 * d + 1 : 4 * d + 4]
            curled = np.rad2deg(flex.sum()) > 100
            target = (0, 3, 2) if curled else ((45, 45, 40) if d == 0 else (80, 100, 55))
            angles[:, 4 * d + 1 : 4 * d + 4] = np.deg2rad(target)
        local = forward_kinematics(run.rig.shape, angles, types[a])  # events never overlap: the true side
        joints[span] = np.einsum("tij,tkj->tki", R, local) + wrist[:, None, :] + noise
        event["digits"] = [FINGERS[int(d)] for d in sorted(digits)]
    else:
        raise ValueError(f"not a tracker glitch: {kind!r}")


def _interp(t_query: np.ndarray, t_ns: np.ndarray, joints: np.ndarray, ids: np.ndarray, max_gap_ns: int = 50_000_000):
    """Joints interpolated at ``t_query`` between the bracketing frames of one hand id,
    as the dataset builder does; also the bracket (k0, k1) and whether it is usable."""
    k = np.searchsorted(t_ns, t_query, side="right")
    ok = (k >= 1) & (k < len(t_ns))
    k0, k1 = np.clip(k - 1, 0, len(t_ns) - 1), np.clip(k, 0, len(t_ns) - 1)
    ok &= (ids[k0] >= 0) & (ids[k0] == ids[k1]) & ((t_ns[k1] - t_ns[k0]) <= max_gap_ns)
    w = np.where(ok, (t_query - t_ns[k0]) / np.maximum(t_ns[k1] - t_ns[k0], 1), 0.0)[:, None, None]
    return (1 - w) * joints[k0] + w * joints[k1], k0, k1, ok


def inject(run, tracker: list[dict], kinds: tuple[str, ...], every_s: float = 6.0, offset_jump_ms: float = 15.0) -> dict:
    """Inject the glitches ``kinds`` into a simulation about to be written.

    Changes ``tracker`` (the records of :meth:`SimRun.tracker_frames`) in place and, for
    ``offset_jump``, the camera's arrival stamps ``run.cam_tl.t_host_ns``.

    Returns:
        the ``glitches`` section of the ground truth (see the module docstring).
    """
    rng = np.random.default_rng([run.seed, 0x611C])
    T = len(tracker)
    t_ns = np.array([r["t_host_ns"] for r in tracker], dtype=np.int64)
    ids = np.array([r["hands"][0]["id"] if r["hands"] else -1 for r in tracker], dtype=np.int64)
    t_s = (run.trk_tl.t_true_ns - run.rig.host_start_ns) / 1e9
    clean, _ = run.motion.joints(t_s)
    joints = np.stack([r["hands"][0]["joints"] if r["hands"] else np.full((NUM_JOINTS, 3), np.nan) for r in tracker]) if T else np.zeros((0, NUM_JOINTS, 3))
    before = joints.copy()
    types = [r["hands"][0]["type"] if r["hands"] else None for r in tracker]
    events = plan_events(t_ns, ids, kinds, rng, every_s)
    for e in events:
        apply_event(e, joints, clean, types, run, t_s, rng)
    for e in events:
        for k in range(e["first"], e["last"] + 1):
            h = tracker[k]["hands"][0]
            h["joints"] = joints[k]
            h["palm"] = joints[k, _PALM].mean(axis=0)
            h["type"] = types[k]
        e["start_ns"], e["end_ns"] = int(t_ns[e["first"]]), int(t_ns[e["last"]])

    d0 = int(run.rig.clock_offset_ns)
    offset = None
    if "offset_jump" in kinds:
        offset = _offset_jump(run, rng, offset_jump_ms)
    cam_t = run.cam_tl.t_host_ns
    label_t = cam_t + d0
    glitched, k0, k1, ok = _interp(label_t, t_ns, joints, ids)
    plain, _, _, _ = _interp(label_t, t_ns, before, ids)
    kind_of = np.full(T, "", dtype=object)
    for e in events:
        kind_of[e["first"] : e["last"] + 1] = e["kind"]
    frames = []
    for i in np.flatnonzero(ok):
        kinds_i = sorted({kind_of[k0[i]], kind_of[k1[i]]} - {""})
        err = float(np.max(np.linalg.norm(glitched[i] - plain[i], axis=-1))) if kinds_i else 0.0
        if offset is not None and i >= offset["frame"]:
            kinds_i.append("offset_jump")
            # the label is made at t_cam + d0; the image shows the state at t_cam + d0 + change
            true_t = np.array([label_t[i] + offset["offset_change_ns"]])
            then, _, _, ok_then = _interp(true_t, t_ns, before, ids)
            if ok_then[0]:
                err = max(err, float(np.max(np.linalg.norm(plain[i] - then[0], axis=-1))))
        if kinds_i:
            frames.append({"index": int(i), "kinds": kinds_i, "error_mm": round(err, 2), "harmful": bool(err >= HARM_MM)})
    return {
        "kinds": list(kinds),
        "harm_mm": HARM_MM,
        "every_s": every_s,
        "events": events,
        "offset_jump": offset,
        "frames": frames,
    }


def _offset_jump(run, rng: np.random.Generator, change_ms: float) -> dict:
    """Delay every camera frame from one on by ``change_ms`` (the clock offset changes
    by ``-change_ms``), at a frame in the middle 30-70 % of the session where the hand
    is in the scene for a second on each side and moves in the image (among the third
    of such frames where the hand's image speed over +-0.5 s is highest): an offset
    change while the hand holds still changes no label, and no one can tell when it
    happened."""
    tl = run.cam_tl
    t_s = (tl.t_exposure_ns - run.rig.host_start_ns) / 1e9
    present, _ = run.motion.present(t_s)
    joints, _ = run.motion.joints(t_s)
    uv = run.rig.camera.project(run.rig.T_cam_leap.apply(joints[:, [0, 5, 9, 13, 17]].mean(axis=1)))
    speed = np.r_[0.0, np.linalg.norm(np.diff(uv, axis=0), axis=1) / np.maximum(np.diff(t_s), 1e-6)]
    n = len(t_s)
    cand, score = [], []
    for i in range(int(0.3 * n), int(0.7 * n)):
        near = (t_s > t_s[i] - 1) & (t_s < t_s[i] + 1)
        if present[near].all():
            cand.append(i)
            score.append(np.mean(speed[(t_s > t_s[i] - 0.5) & (t_s < t_s[i] + 0.5)]))
    if cand:
        cand = [c for c, v in zip(cand, score) if v >= np.quantile(score, 2 / 3)]
    else:
        cand = list(range(int(0.3 * n), max(int(0.7 * n), int(0.3 * n) + 1)))
    i = int(cand[rng.integers(len(cand))])
    change = int(round(change_ms * 1e6))
    tl.t_host_ns[i:] += change
    return {"frame": i, "t_host_ns": int(tl.t_host_ns[i]), "offset_change_ns": -change}
