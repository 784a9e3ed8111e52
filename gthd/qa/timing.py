"""Check 3: the clock offset along the session, from the images themselves.

Calibration finds one clock offset ``d`` (docs/conventions.md) for a session; a camera
driver that starts buffering one more frame, or a clock that drifts, makes it wrong from
some moment on, and every later label belongs to another instant. This check re-estimates
the offset all along the session.

The evidence is where the moving hand is in each image. For every frame the labels are
made again at ``t_cam + d + delta`` for a grid of candidate corrections ``delta``
(:data:`DELTAS_MS`), and each candidate is scored by how sharply the image changes from
"hand" to "not hand" across the outline its skeleton implies (:func:`appearance_costs`:
points just inside and just outside each bone's radius, :func:`edge_samples`), "hand"
being the log-likelihood ratio of a pixel's colour under a colour model of the hand
against one of the whole frame, both learnt from the session itself with the labels as
they are (:func:`colour_model`; most labels are right, so the model is). While the hand
moves, a wrong ``delta`` slides the outline off the hand's edges; the right one keeps it
on them. (The outline, not the skeleton's centre line: a few pixels of shift keep the
centre line inside a finger, but move its edges across the image's edges.)

This is the image motion of the hand region against the projected joints' motion, read
as positions: we first compared velocities (optical flow at the labelled joints between
consecutive frames against the labels' motion between the frames' times), but an offset
error changes a velocity only through the hand's acceleration (a fraction of a pixel per
frame for 15 ms), below the flow's own error; in four-second windows its estimates were
off by 7-10 ms RMS on simulated sessions. Against a still image a wrong ``delta`` moves
the whole skeleton by the hand's speed times ``delta``, and the image's own noise is
common to every candidate.

Frames carry no information while the hand is still, so the correction is estimated over
windows of a few seconds (:func:`window_offsets`) with a block-bootstrap standard error, and a
change of the offset is located by the split of the session into two stretches, each
with its own correction, that fits best (:func:`locate_change`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..hand import EDGES

DELTAS_MS = np.arange(-40.0, 40.0 + 1e-9, 2.0)
"""Candidate corrections of the clock offset, ms (a calibration is rarely further off;
a wider range would keep more frames near a tracker glitch out of the estimate)."""
SMOOTH_MS = 40.0
"""How far in time (ms) the smoothing of the tracked joints reaches (:func:`smooth_stream`
with its default, at about 110 Hz)."""


def smooth_stream(t_ns: np.ndarray, joints: np.ndarray, ids: np.ndarray, half: int = 4) -> np.ndarray:
    """Tracked joints (T, 21, 3) averaged over +-``half`` frames of the same hand id (a
    centred window: constant-velocity motion passes unchanged, the noise drops by about
    the square root of the window)."""
    out = joints.copy()
    n = 2 * half + 1
    change = np.flatnonzero(np.diff(ids) != 0) + 1
    for a, b in zip(np.r_[0, change], np.r_[change, len(ids)]):
        if ids[a] < 0 or b - a < n:
            continue
        c = np.cumsum(np.concatenate([np.zeros((1,) + joints.shape[1:]), joints[a:b]]), axis=0)
        out[a + half : b - half] = (c[n:] - c[:-n]) / n
    return out


def interpolate(t_query: np.ndarray, t_ns: np.ndarray, joints: np.ndarray, ids: np.ndarray, max_gap_ns: int) -> np.ndarray:
    """Joints at ``t_query`` (M,), linear between the two bracketing frames of one hand
    id no further apart than ``max_gap_ns``, NaN otherwise (as
    :meth:`gthd.session.TrackerStream.joints_at`, on a stream of hand frames only)."""
    out = np.full((len(t_query),) + joints.shape[1:], np.nan)
    if len(t_ns) < 2:
        return out
    k = np.searchsorted(t_ns, t_query, side="right")
    inside = (k >= 1) & (k < len(t_ns))
    k0, k1 = np.clip(k - 1, 0, len(t_ns) - 1), np.clip(k, 0, len(t_ns) - 1)
    ok = inside & (ids[k0] == ids[k1]) & ((t_ns[k1] - t_ns[k0]) <= max_gap_ns)
    w = ((t_query[ok] - t_ns[k0[ok]]) / np.maximum(t_ns[k1[ok]] - t_ns[k0[ok]], 1))[:, None, None]
    out[ok] = (1 - w) * joints[k0[ok]] + w * joints[k1[ok]]
    return out


def colour_bins(bgr: np.ndarray, bins: int = 32) -> np.ndarray:
    """(H, W) int: each pixel's cell in a ``bins`` x ``bins`` grid of chroma (Cr, Cb of
    YCrCb: skin differs from most things by chroma, and chroma changes little with light)."""
    ycc = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb)
    q = 256 // bins
    return (ycc[..., 1].astype(np.int32) // q) * bins + ycc[..., 2] // q


def colour_model(fg: np.ndarray, bg: np.ndarray, bins: int = 32) -> np.ndarray:
    """(bins^2,) log-likelihood ratio of each chroma cell: hand (``fg``, the cells under
    the labelled skeletons) against frame (``bg``, cells anywhere), with add-one counts."""
    n = bins * bins
    h_fg = np.bincount(fg.ravel(), minlength=n)[:n] + 1.0
    h_bg = np.bincount(bg.ravel(), minlength=n)[:n] + 1.0
    return np.log(h_fg / h_fg.sum()) - np.log(h_bg / h_bg.sum())


# Half a finger's width and half a palm's thickness seen edge-on (mm): where the hand's
# outline lies around its skeleton.
FINGER_RADIUS_MM = 8.0
PALM_RADIUS_MM = 12.0


def edge_samples(uv: np.ndarray, vis: np.ndarray, radius_px: np.ndarray, along: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points on both sides of the hand's outline along every skeleton edge: ``along``
    points along each edge, each at 0.5, 0.85, 1.15 and 1.5 times the edge's radius to
    either side (graded: a shift of a pixel or two moves some of them across the outline).

    Args:
        uv: (..., 21, 2) px. vis: (..., 21) bool.
        radius_px: (..., 24) each edge's radius in the image (px).

    Returns:
        pts (..., 24 * along * 8, 2) px; ok (...) bool (both ends of the edge visible);
        sign (24 * along * 8,): +1 inside the outline, -1 outside.
    """
    e = np.array(EDGES)
    a, b = uv[..., e[:, 0], :], uv[..., e[:, 1], :]  # (..., E, 2)
    d = b - a
    n = np.stack([-d[..., 1], d[..., 0]], axis=-1) / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-6)
    s = (np.arange(along) + 0.5) / along
    offsets = np.array([-1.5, -1.15, -0.85, -0.5, 0.5, 0.85, 1.15, 1.5])
    sign = np.where(np.abs(offsets) < 1, 1.0, -1.0)
    centre = a[..., :, None, :] + d[..., :, None, :] * s[:, None]  # (..., E, S, 2)
    pts = centre[..., :, :, None, :] + (radius_px[..., :, None, None, None] * offsets[:, None]) * n[..., :, None, None, :]  # (..., E, S, O, 2)
    ok = np.broadcast_to((vis[..., e[:, 0]] & vis[..., e[:, 1]])[..., None, None], pts.shape[:-1])
    lead = pts.shape[:-4]
    return pts.reshape(*lead, -1, 2), ok.reshape(*lead, -1), np.broadcast_to(sign, (len(e), along, len(offsets))).ravel()


def edge_radius_px(joints_cam: np.ndarray, fx: float) -> np.ndarray:
    """(..., 24) each skeleton edge's radius in the image (px), from its joints' depth
    (mm, camera frame): fingers :data:`FINGER_RADIUS_MM`, palm edges :data:`PALM_RADIUS_MM`."""
    e = np.array(EDGES)
    z = np.maximum((joints_cam[..., e[:, 0], 2] + joints_cam[..., e[:, 1], 2]) / 2, 1.0)
    palm = np.array([a == 0 or (a in (1, 5, 9, 13, 17) and b in (1, 5, 9, 13, 17)) for a, b in EDGES])
    return fx * np.where(palm, PALM_RADIUS_MM, FINGER_RADIUS_MM) / z


def appearance_costs(llr: np.ndarray, pts: np.ndarray, ok: np.ndarray, sign: np.ndarray, min_points: int = 20) -> np.ndarray:
    """One frame's cost per candidate: minus the contrast of the log-likelihood ratio
    ``llr`` (H, W) across each candidate's outline (the mean inside it minus the mean
    outside it, from :func:`edge_samples`' points ``pts`` (D, M, 2) px, nearest pixel;
    points outside the image or not ``ok`` are left out). NaN where a candidate has
    fewer than ``min_points`` points on either side."""
    H, W = llr.shape
    finite = np.isfinite(pts).all(axis=-1)
    p = np.where(finite[..., None], pts, -1.0)
    x = np.rint(p[..., 0]).astype(np.int64)
    y = np.rint(p[..., 1]).astype(np.int64)
    good = ok & finite & (x >= 0) & (x < W) & (y >= 0) & (y < H)
    vals = np.where(good, llr[np.clip(y, 0, H - 1), np.clip(x, 0, W - 1)], 0.0)
    inside, outside = good & (sign > 0), good & (sign < 0)
    n_in, n_out = inside.sum(axis=-1), outside.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        contrast = (vals * inside).sum(axis=-1) / n_in - (vals * outside).sum(axis=-1) / n_out
    return np.where((n_in >= min_points) & (n_out >= min_points), -contrast, np.nan)


def _best(cost: np.ndarray, deltas: np.ndarray) -> float:
    """The minimum of a cost curve over ``deltas``, refined by a parabola through its
    neighbours."""
    m = int(np.argmin(cost))
    if 0 < m < len(cost) - 1:
        c0, c1, c2 = cost[m - 1], cost[m], cost[m + 1]
        den = c0 - 2 * c1 + c2
        if den > 0:
            return float(deltas[m] + 0.5 * (deltas[1] - deltas[0]) * (c0 - c2) / den)
    return float(deltas[m])


@dataclass
class OffsetEstimate:
    """The correction of the clock offset over a stretch of the session.

    Attributes:
        delta_ms: add it to the calibration's ``d`` (ms).
        std_ms: its standard error, from resampling the stretch's frames (bootstrap).
        frames: frames that said something.
    """

    delta_ms: float
    std_ms: float
    frames: int


def estimate(cost: np.ndarray, count: np.ndarray, deltas: np.ndarray = DELTAS_MS, boot: int = 40, block: int = 15, seed: int = 0) -> OffsetEstimate:
    """The best correction for the frames of ``cost`` (P, D) together, and its
    standard error by a block bootstrap: ``boot`` resamplings of blocks of ``block``
    consecutive frames (neighbouring frames share their errors: one pose, one blur, one
    patch of background; resampling single frames would understate it), seeded."""
    used = count > 0
    n = int(used.sum())
    if n < 10:
        return OffsetEstimate(float("nan"), float("inf"), n)
    c = cost[used]
    delta = _best(c.sum(axis=0), deltas)
    blocks = np.add.reduceat(c, np.arange(0, n, block), axis=0)  # (B, D)
    nb = len(blocks)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(nb, np.full(nb, 1.0 / nb), size=boot).astype(np.float64)  # (boot, B)
    reps = [_best(curve, deltas) for curve in weights @ blocks]
    return OffsetEstimate(delta, float(np.std(reps)), n)


def window_offsets(
    t_ns: np.ndarray, cost: np.ndarray, count: np.ndarray, window_s: float = 4.0, step_s: float = 1.0, deltas: np.ndarray = DELTAS_MS
) -> list[dict]:
    """The correction in sliding windows along the session.

    Args:
        t_ns: (P,) each frame's camera stamp. cost, count: (P, D) and (P,) per frame
            (count 0: the frame says nothing).

    Returns:
        [{"t_ns": the window's centre, "delta_ms", "std_ms", "frames"}] every ``step_s``.
    """
    if len(t_ns) == 0:
        return []
    out = []
    half = int(window_s / 2 * 1e9)
    for c in np.arange(t_ns[0] + half, max(t_ns[-1] - half, t_ns[0] + half) + 1, int(step_s * 1e9)):
        sel = (t_ns >= c - half) & (t_ns < c + half)
        e = estimate(cost[sel], count[sel], deltas)
        out.append({"t_ns": int(c), "delta_ms": e.delta_ms, "std_ms": e.std_ms, "frames": e.frames})
    return out


@dataclass
class OffsetChange:
    """Where the clock offset changes, if it does.

    Attributes:
        found: a change larger than ``min_ms`` and ``sigmas`` standard errors.
        pair: the first frame after the change (index into the frames given); t_ns its time.
        before, after: the estimates on each side (the whole session in ``before``
            when there is no change).
    """

    found: bool
    pair: int | None
    t_ns: int | None
    before: OffsetEstimate
    after: OffsetEstimate | None


def locate_change(
    t_ns: np.ndarray, cost: np.ndarray, count: np.ndarray, deltas: np.ndarray = DELTAS_MS, min_ms: float = 6.0, sigmas: float = 3.0, min_frames: int = 60
) -> OffsetChange:
    """The split of the frames into a stretch before and one after, each with its own
    correction, whose total cost is smallest; kept when the two corrections differ by at
    least ``min_ms`` and ``sigmas`` times their combined standard error.

    Args:
        t_ns: (P,) frame times. cost, count: per frame (see :func:`window_offsets`).
        min_frames: the least frames with a measurement on each side of a split.
    """
    whole = estimate(cost, count, deltas)
    used = count > 0
    P = len(t_ns)
    if used.sum() < 2 * min_frames:
        return OffsetChange(False, None, None, whole, None)
    cum = np.cumsum(np.where(used[:, None], cost, 0.0), axis=0)  # (P, D)
    total = cum[-1]
    n_used = np.cumsum(used)
    splits = np.flatnonzero((n_used >= min_frames) & (n_used[-1] - n_used >= min_frames))
    if len(splits) == 0:
        return OffsetChange(False, None, None, whole, None)
    split_cost = cum[splits].min(axis=1) + (total[None] - cum[splits]).min(axis=1)
    s = int(splits[np.argmin(split_cost)]) + 1  # the first frame after the split
    before = estimate(cost[:s], count[:s], deltas)
    after = estimate(cost[s:], count[s:], deltas)
    diff = abs(after.delta_ms - before.delta_ms)
    found = bool(np.isfinite(diff) and diff >= min_ms and diff >= sigmas * np.hypot(before.std_ms, after.std_ms))
    if not found:
        return OffsetChange(False, None, None, whole, None)
    return OffsetChange(True, s, int(t_ns[s]) if s < P else None, before, after)
