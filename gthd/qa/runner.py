"""Run the QA checks over a session (with its calibration) or over a dataset file, and
put what they say into one per-frame table.

A session's labels are made as ``gthd build-dataset`` makes them: the primary tracked
hand interpolated at the frame's time plus the clock offset ``d``, between the two
bracketing tracking frames of one hand id. So a camera frame inherits the tracker
checks' verdicts on those two tracking frames (and on one more on each side: a glitch's
first or last tracking frame is found to within a frame). The time check needs the
images; the image-label check needs a trained run (``--run``) and reads every frame.

A dataset file (:func:`qa_dataset`) has the labels but not the tracker stream: its
tracked 3D joints per sample are checked at the camera's rate, as one stream per
session (samples in frame order, a run of consecutive frames standing for a hand id).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..calibration.files import Calibration, read_calibration
from ..fileio import contained_path
from ..hand import NUM_JOINTS
from ..session import Session
from . import timing
from . import tracker as tq

Progress = Callable[[str, int, int], None]

REASONS = {
    "flip": "the hand flipped (palm or left/right) and flipped back",
    "jump": "the whole hand jumped away and back",
    "finger": "a digit snapped to another pose and back",
    "frozen": "the hand stood still, then snapped onto a moving hand",
    "hand_type": "the hand type differs from the rest of its hand id",
    "bone_length": "bone lengths changed within one hand id",
    "speed": "a joint faster or accelerating harder than a hand can",
    "volume": "outside the tracker's reliable volume",
    "clock_offset": "the clock offset here differs from the calibration's",
    "no_hand_evidence": "the detector sees no hand under the labelled skeleton",
    "pose_disagrees": "the pose network puts the joints elsewhere",
}
"""Every reason a frame can be flagged for, with what it means."""


@dataclass(frozen=True)
class QAOptions:
    """The checks' settings.

    Attributes:
        limits: the tracker checks' thresholds.
        max_gap_ms, hand_type: as ``gthd build-dataset`` (which frames get a label).
        offset_flag_ms: frames whose local clock offset differs from the calibration's
            by more than this (and significantly) are flagged.
        time_check: run the time check (it reads every labelled frame); off, no image is read.
        image_scale: the time check decodes frames at 1/this (1, 2 or 4).
        evidence_min: with a run, the detector's mean response along the labelled
            skeleton below which a frame is flagged.
        pose_max: with a run, the pose network's median joint distance from the labels
            (px of its 128 px crop) above which a frame is flagged.
    """

    limits: tq.TrackerLimits = tq.TrackerLimits()
    max_gap_ms: float = 50.0
    hand_type: str | None = None
    offset_flag_ms: float = 8.0
    time_check: bool = True
    evidence_min: float = 0.1
    pose_max: float = 40.0
    image_scale: int = 2


@dataclass
class QAResult:
    """What the checks found.

    Attributes:
        source: the session folder or dataset file. kind: "session" or "dataset".
        columns: the per-frame table, (N,) arrays by column name (see docs/qa.md).
        reasons: (N,) lists of the reasons each frame is flagged for.
        spans: the tracker glitches found ({"kind", "first", "last", "t0_ns", "t1_ns"}).
        offset: the time check: windows, the change if any, and the whole session's
            estimate. None when not run.
        evidence: what the image-label check used (None without a run).
        seconds: how long the checks took, per part.
        read_image: frame i as (H, W, 3) BGR, for the pictures (None: no pictures).
        size: the frames' (width, height). uv, vis: the labels (N, 21, 2) px, (N, 21).
    """

    source: str
    kind: str
    columns: dict[str, np.ndarray]
    reasons: list[list[str]]
    spans: list[dict] = field(default_factory=list)
    offset: dict | None = None
    evidence: dict | None = None
    seconds: dict = field(default_factory=dict)
    read_image: Callable[[int], np.ndarray | None] | None = None
    size: tuple[int, int] | None = None
    uv: np.ndarray | None = None
    vis: np.ndarray | None = None
    session_id: str | None = None

    @property
    def flagged(self) -> np.ndarray:
        return np.array([bool(r) for r in self.reasons], dtype=bool)

    def summary(self) -> dict:
        """Counts: frames, labelled frames, flagged frames, per reason."""
        labelled = self.columns["labelled"]
        per = {}
        for rs in self.reasons:
            for r in rs:
                per[r] = per.get(r, 0) + 1
        return {
            "frames": int(len(labelled)),
            "labelled": int(labelled.sum()),
            "flagged": int(self.flagged.sum()),
            "flagged_share": float(self.flagged.sum() / max(1, labelled.sum())),
            "per_reason": dict(sorted(per.items(), key=lambda kv: -kv[1])),
        }


# ------------------------------------------------------------------------ tracker part
@dataclass
class TrackerVerdict:
    """The tracker checks on one stream of tracking frames (T,)."""

    kind: np.ndarray  # (T,) str: the glitch found there ("" none)
    spans: list[dict]
    flags: dict[str, np.ndarray]  # reason -> (T,) bool
    scores: dict[str, np.ndarray]  # name -> (T,) float
    events: list[tq.Event]


def check_stream(t_ns: np.ndarray, joints: np.ndarray, ids: np.ndarray, types: list, limits: tq.TrackerLimits) -> TrackerVerdict:
    """All the tracker checks on one stream: the primary hand's (T, 21, 3) joints, ids
    and types (ids < 0: no hand)."""
    T = len(ids)
    d = tq.discontinuities(t_ns, joints, ids, limits)
    events = tq.find_events(d, limits)
    still = tq.still_frames(d, T, limits)
    kind, spans = tq.glitch_spans(events, t_ns, ids, still, limits)
    bone, bone_flag = tq.bone_length_check(joints, ids, limits)
    speed, accel, speed_flag = tq.motion_check(d, T, limits)
    margin, volume_flag = tq.volume_check(joints)
    flags = {
        "hand_type": tq.hand_type_check(types, ids),
        "bone_length": bone_flag,
        "speed": speed_flag & (kind == ""),  # a glitch's own edges are fast: said once
        "volume": volume_flag & (ids >= 0),
    }
    for name in ("flip", "jump", "finger", "frozen"):
        flags[name] = kind == name
    scores = {"bone_mm": bone, "speed_mm_s": speed, "accel_m_s2": accel / 1000.0, "volume_margin_deg": margin}
    for s in spans:
        s["t0_ns"], s["t1_ns"] = int(t_ns[s["first"]]), int(t_ns[s["last"]])
    return TrackerVerdict(kind, spans, flags, scores, events)


def _dilate(flag: np.ndarray, ids: np.ndarray, n: int = 1) -> np.ndarray:
    """Grow flagged stretches by ``n`` frames of the same hand id on each side."""
    out = flag.copy()
    for s in range(1, n + 1):
        out[:-s] |= flag[s:] & (ids[:-s] == ids[s:])
        out[s:] |= flag[:-s] & (ids[s:] == ids[:-s])
    return out


def _primary_types(hands: list[list[dict]], ids: np.ndarray) -> list:
    return [next((h["type"] for h in hs if h["id"] == ids[k]), None) for k, hs in enumerate(hands)]


# ------------------------------------------------------------------------- the session
def qa_session(
    session: str | Path | Session,
    calibration: str | Path | Calibration,
    run: str | Path | None = None,
    options: QAOptions = QAOptions(),
    progress: Progress | None = None,
) -> QAResult:
    """Run every check that applies on a session and its calibration.

    Args:
        run: a ``gthd benchmark`` run folder for the image-label check, or None.
        progress: called with (stage, done, total).

    Raises:
        FormatError, ValueError: an unreadable session, calibration or run; a
            calibration for another image size.
    """
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    s = session if isinstance(session, Session) else Session.open(session)
    cal = calibration if isinstance(calibration, Calibration) else read_calibration(calibration)
    w, h = s.camera_size
    cal.check_image_size(w, h, what=f"session {s.path}")
    if problems := s.index_problems():
        raise ValueError(f"session {s.path}: {problems[0]} (see gthd session check)")
    N = len(s.frames)

    # Tracker checks on the primary hand's stream (the hand the labels come from).
    joints, ids = s.tracker.primary(options.hand_type)
    has = ids >= 0
    tt, jj, ii = s.tracker.t_host_ns[has], joints[has], ids[has]
    types = [t for t, ok in zip(_primary_types(s.tracker.hands, ids), has) if ok]
    verdict = check_stream(tt, jj, ii, types, options.limits)
    times["tracker"] = time.perf_counter() - t0

    # Labels as the builder makes them, and the tracking frames each one comes from.
    t_lab = s.frames.t_host_ns + cal.clock_offset_ns
    gap = int(options.max_gap_ms * 1e6)
    j3 = s.tracker.joints_at(t_lab, max_gap_ns=gap, hand_type=options.hand_type)
    labelled = np.isfinite(j3).all(axis=(1, 2))
    uv, vis = _project(cal, j3)
    labelled &= vis.any(axis=1)
    k = np.clip(np.searchsorted(tt, t_lab, side="right"), 1, max(len(tt) - 1, 1))
    k0, k1 = k - 1, np.minimum(k, max(len(tt) - 1, 0))

    reasons: list[list[str]] = [[] for _ in range(N)]
    columns: dict[str, np.ndarray] = {
        "frame": np.arange(N),
        "t_host_ns": s.frames.t_host_ns.copy(),
        "labelled": labelled,
        "visible_joints": vis.sum(axis=1),
    }
    if len(tt):
        for name, flag in verdict.flags.items():
            f = _dilate(flag, ii, 1) if name in ("flip", "jump", "finger", "frozen") else flag
            hit = labelled & (f[k0] | f[k1])
            for i in np.flatnonzero(hit):
                reasons[i].append(name)
        for name, v in verdict.scores.items():
            a, b = v[k0], v[k1]
            columns[name] = np.where(labelled, np.fmax(a, b) if name != "volume_margin_deg" else np.fmin(a, b), np.nan)
        columns["tracker_glitch"] = np.where(labelled, np.where(verdict.kind[k0] != "", verdict.kind[k0], verdict.kind[k1]), "")
    else:
        columns["tracker_glitch"] = np.full(N, "", dtype=object)
    times["labels"] = time.perf_counter() - t0 - sum(times.values())

    # The clock offset along the session, from the images.
    offset = None
    if options.time_check and labelled.sum() >= 2 and len(tt) > 1:
        # Frames whose labels, shifted by any candidate correction (and smoothed), would
        # come from a tracking frame the tracker checks doubt say nothing about the clock.
        doubt = np.zeros(len(tt), bool)
        for flag in verdict.flags.values():
            doubt |= _dilate(flag, ii, 2)
        reach = int((np.max(np.abs(timing.DELTAS_MS)) + timing.SMOOTH_MS) * 1e6) + 2 * int(np.median(np.diff(tt)))
        cum = np.r_[0, np.cumsum(doubt)]
        near = cum[np.searchsorted(tt, t_lab + reach, side="right")] - cum[np.searchsorted(tt, t_lab - reach, side="left")]
        offset = _time_check(s, cal, labelled & (near == 0), t_lab, gap, options, progress)
        columns["colour_evidence"] = offset.pop("colour_evidence")
        columns["offset_ms"] = offset.pop("offset_ms")
        for i in offset.pop("flag_frames"):
            if labelled[i]:
                reasons[i].append("clock_offset")
    times["time"] = time.perf_counter() - t0 - sum(times.values())

    # Labels against the image, from a trained run.
    evidence = None
    if run is not None:
        from .evidence import score_frames

        ev = score_frames(
            run, [contained_path(s.path, f, f"session {s.path}: frame {i}") for i, f in enumerate(s.frames.files)], uv, vis, labelled, progress=progress
        )
        evidence = ev.pop("info")
        for name, col in ev.items():
            columns[name] = col
        with np.errstate(invalid="ignore"):
            for i in np.flatnonzero(labelled & (columns["detector_evidence"] < options.evidence_min)):
                reasons[i].append("no_hand_evidence")
            for i in np.flatnonzero(labelled & (columns["pose_px"] > options.pose_max)):
                reasons[i].append("pose_disagrees")
    times["evidence"] = time.perf_counter() - t0 - sum(times.values())

    def read_image(i: int) -> np.ndarray | None:
        return cv2.imread(str(contained_path(s.path, s.frames.files[i], f"session {s.path}: frame {i}")), cv2.IMREAD_COLOR)

    return QAResult(str(s.path), "session", columns, reasons, verdict.spans, offset, evidence, times, read_image, (w, h), uv, vis, s.manifest.get("session_id"))


def _project(cal: Calibration, j3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels of (..., 21, 3) tracked joints: (..., 21, 2) px and (..., 21) visible."""
    return cal.project_joints(j3)


# -------------------------------------------------------------------------- time check
def _read(s: Session, i: int, flags: int) -> np.ndarray | None:
    """Frame ``i`` of a session decoded with ``flags`` (None if unreadable); the index
    names the file, which must stay inside the session folder."""
    return cv2.imread(str(contained_path(s.path, s.frames.files[i], f"session {s.path}: frame {i}")), flags)


def _time_check(s: Session, cal: Calibration, usable: np.ndarray, t_lab: np.ndarray, gap: int, options: QAOptions, progress) -> dict:
    """The clock offset along the session (:mod:`gthd.qa.timing`): the labels remade at
    every candidate correction, scored against each usable frame's colours.

    Args:
        usable: (N,) bool, the frames to use. t_lab: (N,) their label times (ns).
    """
    N = len(usable)
    frames = np.flatnonzero(usable)
    deltas = timing.DELTAS_MS
    scale = options.image_scale
    # The labels of the usable frames under every candidate correction, from the tracked
    # joints smoothed over a few frames (their noise would blur the comparison).
    jj, ii = s.tracker.primary(options.hand_type)
    has = ii >= 0
    tt = s.tracker.t_host_ns[has]
    smooth = timing.smooth_stream(tt, jj[has], ii[has])
    shifted = t_lab[frames][None, :] + (deltas * 1e6).astype(np.int64)[:, None]  # (D, U)
    j3 = timing.interpolate(shifted.ravel(), tt, smooth, ii[has], gap).reshape(len(deltas), len(frames), NUM_JOINTS, 3)
    lab, lab_vis = _project(cal, j3)  # (D, U, 21, 2)
    lab = (lab + 0.5) / scale - 0.5  # in the decoded image's pixels
    m0 = int(np.argmin(np.abs(deltas)))
    radius = timing.edge_radius_px(cal.T_cam_leap.apply(j3[m0].reshape(-1, 3)).reshape(j3[m0].shape), cal.camera.K[0, 0] / scale)

    def samples(u: int):
        """Frame u's outline samples under every candidate: (D, M, 2), (D, M), (M,)
        (made per frame: for a whole session at once they would take gigabytes)."""
        return timing.edge_samples(lab[:, u], lab_vis[:, u], radius[u][None])

    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}[scale]
    # The session's hand colour, from the labels as they are (delta 0) in a sample of frames.
    rng = np.random.default_rng(0)
    fg, bg = [], []
    for u in range(0, len(frames), max(1, len(frames) // 150)):
        img = _read(s, frames[u], flags)
        if img is None:
            continue
        bins = timing.colour_bins(img)
        H, W = bins.shape
        pts, ok, sign = samples(u)
        p = pts[m0][ok[m0] & (sign > 0)]
        p = np.rint(p[np.isfinite(p).all(axis=1)]).astype(int)
        p = p[(p[:, 0] >= 0) & (p[:, 0] < W) & (p[:, 1] >= 0) & (p[:, 1] < H)]
        fg.append(bins[p[:, 1], p[:, 0]])
        bg.append(bins.ravel()[rng.integers(0, H * W, 400)])
    table = timing.colour_model(np.concatenate(fg) if fg else np.zeros(0, int), np.concatenate(bg) if bg else np.zeros(0, int))
    # Every usable frame's cost per candidate.
    cost = np.zeros((len(frames), len(deltas)))
    count = np.zeros(len(frames), int)
    evidence = np.full(N, np.nan)
    for u, i in enumerate(frames):
        img = _read(s, i, flags)
        if img is None:
            continue
        pts, ok, sign = samples(u)
        c = timing.appearance_costs(table[timing.colour_bins(img)].astype(np.float32), pts, ok, sign)
        evidence[i] = -c[m0]
        if np.isfinite(c).all():
            cost[u] = c - c.min()
            count[u] = 1
        if progress is not None and u % 50 == 0:
            progress("time", u, len(frames))
    # A frame says at most a few typical frames' worth: one whose labels are off for
    # another reason (a glitch the tracker checks missed, a hand half out of view) must
    # not carry a stretch.
    if count.any():
        cost = np.minimum(cost, 3 * np.median(cost[count > 0].max(axis=1)))
    t_f = s.frames.t_host_ns[frames]
    windows = timing.window_offsets(t_f, cost, count)
    change = timing.locate_change(t_f, cost, count)
    # Each frame's correction: its side of the change (or the whole session's).
    offset_ms = np.full(N, change.before.delta_ms)
    first = N
    if change.found:
        first = int(frames[change.pair]) if change.pair < len(frames) else N
        offset_ms[first:] = change.after.delta_ms
    segments = [(0, N, change.before)] if not change.found else [(0, first, change.before), (first, N, change.after)]
    flag = []
    for a, b, e in segments:
        if np.isfinite(e.delta_ms) and abs(e.delta_ms) > max(options.offset_flag_ms, 3 * e.std_ms):
            flag.extend(range(a, b))
    est = lambda e: None if e is None else {"delta_ms": _num(e.delta_ms), "std_ms": _num(e.std_ms), "frames": e.frames}  # noqa: E731
    return {
        "calibration_offset_ms": cal.clock_offset_ns / 1e6,
        "frames": int(count.sum()),
        "windows": [{**w, "delta_ms": _num(w["delta_ms"]), "std_ms": _num(w["std_ms"])} for w in windows],
        "change": {
            "found": change.found,
            "t_host_ns": change.t_ns,
            "frame": first if change.found else None,
            "before": est(change.before),
            "after": est(change.after),
        },
        "colour_evidence": evidence,
        "offset_ms": offset_ms,
        "flag_frames": flag,
    }


def _num(v: float) -> float | None:
    """A float for JSON (None for NaN or infinity)."""
    return None if v is None or not np.isfinite(v) else round(float(v), 3)


# ---------------------------------------------------------------------------- a dataset
DATASET_LIMITS = tq.TrackerLimits(window=3, min_run=8, pair_span_s=2.0)
"""The tracker checks at a camera's rate (30 Hz): three frames a side for the fits."""


def qa_dataset(path: str | Path, options: QAOptions = QAOptions(limits=DATASET_LIMITS)) -> QAResult:
    """The checks a dataset file allows on its own: the tracker checks on the samples'
    3D tracked joints (``labels/joints_tracker``), per session in frame order, a run of
    frames at most two apart standing for a hand id. The time check and the image-label
    check need the session's tracker stream and are not run.

    Raises:
        FormatError: not a gthd dataset (:func:`gthd.dataset.schema.open_dataset`).
    """
    from ..dataset.schema import open_dataset

    t0 = time.perf_counter()
    with open_dataset(path) as f:
        joints = f["labels/joints_tracker"][...].astype(np.float64)
        has = f["labels/has_hand"][...]
        session = f["meta/session"][...]
        frame = f["meta/frame_index"][...]
        t_ns = f["meta/t_host_ns"][...]
        uv = f["labels/keypoints"][...].astype(np.float64)
        vis = f["labels/visible"][...]
    N = len(has)
    labelled = has & np.isfinite(joints).all(axis=(1, 2))
    reasons: list[list[str]] = [[] for _ in range(N)]
    columns: dict[str, np.ndarray] = {
        "frame": np.arange(N),
        "session": session,
        "frame_index": frame,
        "t_host_ns": t_ns,
        "labelled": labelled,
        "tracker_glitch": np.full(N, "", dtype=object),
    }
    spans: list[dict] = []
    for k in np.unique(session):
        rows = np.flatnonzero((session == k) & labelled)
        rows = rows[np.argsort(frame[rows], kind="stable")]
        if len(rows) < 2:
            continue
        ids = np.cumsum(np.r_[True, np.diff(frame[rows]) > 2])
        v = check_stream(t_ns[rows], joints[rows], ids, ["?"] * len(rows), options.limits)
        for name, flag in v.flags.items():
            for i in rows[flag]:
                reasons[i].append(name)
        for name, sc in v.scores.items():
            columns.setdefault(name, np.full(N, np.nan))[rows] = sc
        columns["tracker_glitch"][rows] = v.kind
        spans += [{**sp, "session": int(k), "first": int(frame[rows[sp["first"]]]), "last": int(frame[rows[sp["last"]]])} for sp in v.spans]

    def read_image(i: int) -> np.ndarray | None:
        with open_dataset(path) as f:
            return cv2.imdecode(np.asarray(f["images/frame_jpeg"][i], np.uint8), cv2.IMREAD_COLOR)

    times = {"tracker": time.perf_counter() - t0}
    return QAResult(str(path), "dataset", columns, reasons, spans, None, None, times, read_image, None, uv, vis.astype(bool))
