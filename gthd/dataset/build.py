"""``gthd build-dataset``: sessions + their calibration -> one HDF5 dataset.

For every camera frame: the tracked 3D joints at the frame's time plus the calibrated
clock offset (a local linear fit over the tracker frames nearby; frames whose tracker data
is missing or too far apart are left out and counted), transformed by ``T_cam_leap`` and
projected with the lens distortion (``cv2.projectPoints``' model). Frames where the
tracker was looking and saw no hand become NoHand samples (capped to a share). Then the
skeleton mask, the hand box and the cached 128x128 crop (``samples.make_sample``).

Frames are decoded at the smallest JPEG scale that still gives the crop its full
resolution (a big hand needs no full-size decode), by worker processes; the file, its
attributes, the splits and the report are :class:`~gthd.dataset.writer.DatasetOutput`'s.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..calibration.files import Calibration, read_calibration
from ..fileio import contained_path, read_regular_file
from ..geometry import box_from_points
from ..images import decode_checked
from ..session import Session
from .samples import CROP_SIZE, make_sample, square_crop_box
from .schema import Sample
from .writer import DatasetOutput, DatasetReport, SplitRule

SPLIT_BY = ("random", "subject", "session")

LEFT_OUT = {
    "no_tracking": "frames without tracking within reach",  # tracker data missing or too far apart
    "nohand_near_hand": "without a hand but next to one (NoHand guard)",  # no hand now, but one within the guard
    "corrupt": "corrupt frames",
    "nan_joints": "with NaN joints",  # the tracker stream is damaged
    "nohand_dropped": "NoHand frames over the cap",
}
"""Why a frame is left out, as the report says it; with ``drop_flagged`` also :data:`QA_LEFT_OUT`."""
QA_LEFT_OUT = {"qa_dropped": "frames that gthd qa flagged (--drop-flagged)"}


def _sha256(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()


def _decode(data: bytes, crop_side: float | None) -> tuple[np.ndarray | None, int, str | None]:
    """Decode a JPEG at 1/1, 1/2 or 1/4 scale: the smallest that keeps ``crop_side``
    frame pixels at >= 128 crop pixels. Returns (image, scale, the decoder's complaint or
    None): a frame the decoder complained about is left out, never stored half-garbled."""
    scale = 1
    if crop_side is not None:
        scale = 4 if crop_side >= 4 * CROP_SIZE else 2 if crop_side >= 2 * CROP_SIZE else 1
    flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}[scale]
    img, problem = decode_checked(data, flag)
    return img, scale, problem


@dataclass
class _Job:
    session: int
    subject: int
    frame: int
    t_host_ns: int
    file: Path
    name: str
    uv: np.ndarray | None  # (21, 2) px, None for NoHand
    visible: np.ndarray | None
    joints_cam: np.ndarray | None
    joints_tracker: np.ndarray | None
    size: tuple[int, int]


def _process(job: _Job, opts: dict) -> Sample | str:
    """Read, decode (at the scale the crop allows) and make the sample; or why the frame
    is corrupt."""
    try:
        data = read_regular_file(job.file)  # not a FIFO or a device left in the folder since
    except OSError as e:
        return f"{job.name}: {e.strerror or e}"
    side = None
    if job.uv is not None:
        box = box_from_points(job.uv, job.visible, *job.size, margin=opts["box_margin"])
        if box is not None:
            cb = square_crop_box(box, opts["crop_margin"])
            side = float(cb[2] - cb[0])
    img, scale, problem = _decode(data, side)
    if problem is not None:
        return f"{job.name}: {problem}"
    if img.shape[1] * scale != job.size[0] or img.shape[0] * scale != job.size[1]:
        return f"{job.name}: {img.shape[1] * scale}x{img.shape[0] * scale}, not the session's {job.size[0]}x{job.size[1]}"
    meta = dict(session=job.session, subject=job.subject, frame_index=job.frame, t_host_ns=job.t_host_ns, name=job.name)
    if job.uv is None:
        return make_sample(img, data, None, None, scale=scale, **meta)
    return make_sample(
        img,
        data,
        job.uv,
        job.visible,
        scale=scale,
        thickness=opts["thickness"],
        box_margin=opts["box_margin"],
        crop_margin=opts["crop_margin"],
        joints_cam=job.joints_cam,
        joints_tracker=job.joints_tracker,
        **meta,
    )


def build_dataset(
    sessions: list[str | Path],
    calibrations: list[str | Path | Calibration],
    out: str | Path,
    *,
    split_by: str = "random",
    fractions=(0.75, 0.10, 0.15),
    seed: int = 0,
    thickness: str = "thick",
    box_margin: float = 0.05,
    crop_margin: float = 0.25,
    nohand_share: float = 0.2,
    nohand_guard_ms: float = 500.0,
    max_gap_ms: float = 50.0,
    smooth_ms: float = 0.0,
    hand_type: str | None = None,
    workers: int = 2,
    force: bool = False,
    attrs: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
    qa: dict[str, set[int]] | None = None,
    drop_flagged: bool = False,
) -> DatasetReport:
    """Build a dataset from sessions and their calibrations (one per session, or one for all).

    Returns:
        The :class:`~gthd.dataset.writer.DatasetReport`: ``left_out`` counts the frames
        per :data:`LEFT_OUT` reason; ``details["out_of_view"]`` the tracked hands entirely
        outside the image, made NoHand samples.

    Args:
        hand_type: label the "left" or "right" hand only, or None for either; in both
            cases one hand per frame, the tracker stream's primary hand
            (:meth:`~gthd.session.TrackerStream.primary`).
        qa: the frames ``gthd qa`` flagged, by session id (``gthd.qa.report.flagged_frames``
            reads them from its qa.json files): recorded in the root attribute ``qa``
            (docs/qa.md)...
        drop_flagged: ... and left out of the dataset.

    Raises:
        ValueError: a calibration for another resolution, an unknown split or thickness, no
            usable frame.
        FormatError: an unreadable session or calibration.
        FileExistsError: ``out`` exists (unless ``force``).
    """
    if split_by not in SPLIT_BY:
        raise ValueError(f"split-by must be one of {', '.join(SPLIT_BY)}, got {split_by!r}")
    if not 0 <= nohand_share < 1:
        raise ValueError(f"the NoHand share must be in [0, 1), got {nohand_share}")
    if len(calibrations) not in (1, len(sessions)):
        raise ValueError(f"give one calibration for all sessions or one per session ({len(sessions)}), got {len(calibrations)}")
    if drop_flagged and not qa:
        raise ValueError("--drop-flagged needs the sessions' gthd qa reports (--qa qa.json)")
    output = DatasetOutput(
        out,
        kind="sessions",
        origin=", ".join(map(str, sessions)),
        reasons={**LEFT_OUT, **(QA_LEFT_OUT if drop_flagged else {})},
        split=SplitRule(by=split_by, group=None if split_by == "random" else split_by, seed=seed, fractions=fractions),
        thickness=thickness,
        box_margin=box_margin,
        crop_margin=crop_margin,
        workers=workers,
        processes=True,
        force=force,
        progress=progress,
    )
    cals = [c if isinstance(c, Calibration) else read_calibration(c) for c in calibrations]
    cals = cals * len(sessions) if len(cals) == 1 else cals
    opened = [Session.open(p) for p in sessions]
    qa_flags = _qa_flags(qa or {}, opened)
    out_of_view = 0
    subjects: list[str] = []
    jobs: list[_Job] = []
    for k, (s, cal) in enumerate(zip(opened, cals)):
        if problems := s.index_problems():  # what `session check` refuses, refused here too
            raise ValueError(f"session {s.path}: {problems[0]}: its frames cannot be matched to tracked poses (see gthd session check)")
        w, h = s.camera_size
        cal.check_image_size(w, h, what=f"session {s.path}")
        if s.manifest["status"] == "recording":
            output.warn(f"{s.path}: the capture was not finalised (killed?): building what is readable ({len(s.frames)} frames)")
        if any(s.torn.values()):
            output.warn(f"{s.path}: {sum(s.torn.values())} torn log lines skipped")
        subj = s.manifest.get("subject") or "unknown"
        if subj not in subjects:
            subjects.append(subj)
        session_jobs, hidden = _session_jobs(s, k, subjects.index(subj), cal, max_gap_ms, smooth_ms, nohand_guard_ms, output, hand_type)
        out_of_view += hidden
        if drop_flagged and k in qa_flags:
            kept = [j for j in session_jobs if j.frame not in qa_flags[k]]
            output.leave_out("qa_dropped", count=len(session_jobs) - len(kept))
            session_jobs = kept
        jobs.extend(session_jobs)
    # the NoHand cap, deterministic
    rng = np.random.default_rng(seed)
    hand = [j for j in jobs if j.uv is not None]
    nohand = [j for j in jobs if j.uv is None]
    cap = int(nohand_share / (1 - nohand_share) * len(hand)) if nohand_share else 0
    if len(nohand) > cap:
        keep = set(rng.choice(len(nohand), cap, replace=False).tolist()) if cap else set()
        output.leave_out("nohand_dropped", count=len(nohand) - len(keep))
        nohand = [j for i, j in enumerate(nohand) if i in keep]
    jobs = sorted(hand + nohand, key=lambda j: (j.session, j.frame))
    meta = {
        "sessions": [
            {
                "id": s.manifest["session_id"],
                "path": str(s.path),
                "subject": s.manifest.get("subject"),
                "checksum": _sha256([s.path / n for n in ("manifest.json", "frames.jsonl", "tracker.jsonl")]),
            }
            for s in opened
        ],
        "subjects": subjects,
        "calibrations": [{"camera": c.camera.to_dict(), "T_cam_leap": c.T_cam_leap.to_dict(), "clock_offset_ns": c.clock_offset_ns} for c in cals],
        "nohand_share": nohand_share,
        "nohand_guard_ms": nohand_guard_ms,
        "max_gap_ms": max_gap_ms,
        "smooth_ms": smooth_ms,
        "hand": hand_type or "any",
        **({"qa": {"files": [str(p) for p in qa], "drop_flagged": drop_flagged, "flagged": {str(k): sorted(v) for k, v in qa_flags.items()}}} if qa else {}),
        **(attrs or {}),
    }
    # worker processes decode, draw and encode, Python parts included, while this one writes
    with output.open(source={}, attrs=meta):
        for _, made in output.results(jobs, partial(_process, opts=output.sample_options)):
            if isinstance(made, str):
                output.leave_out("corrupt", example=made)
            else:
                output.add(made)
        return output.finish(details={"out_of_view": out_of_view})


def _session_jobs(
    s: Session,
    k: int,
    subject: int,
    cal: Calibration,
    max_gap_ms: float,
    smooth_ms: float,
    nohand_guard_ms: float,
    output: DatasetOutput,
    hand_type: str | None = None,
) -> tuple[list[_Job], int]:
    """One job per usable frame of a session: a hand (with its projected joints) or NoHand;
    and how many of the NoHand ones are tracked hands entirely outside the image. The
    frames left out are counted in ``output``."""
    t = s.frames.t_host_ns + cal.clock_offset_ns
    gap = int(max_gap_ms * 1e6)
    joints = s.tracker.joints_at(t, max_gap_ns=gap, hand_type=hand_type, smooth_ns=int(smooth_ms * 1e6))  # (N, 21, 3) leap, mm
    # NoHand: the tracker was looking (frames on both sides within reach) and saw nothing
    tt = s.tracker.t_host_ns
    seen = np.array([bool(h) for h in s.tracker.hands], dtype=bool)
    kk = np.searchsorted(tt, t, side="right")
    inside = (kk >= 1) & (kk < len(tt))
    k0, k1 = np.clip(kk - 1, 0, max(len(tt) - 1, 0)), np.clip(kk, 0, max(len(tt) - 1, 0))
    looking = inside & ((tt[k1] - tt[k0]) <= gap) if len(tt) else np.zeros(len(t), bool)
    # ... and saw none within +-guard either: right after a loss or before a re-acquisition
    # the hand is often still (or already) in the camera's view
    guard = int(nohand_guard_ms * 1e6)
    cum = np.concatenate([[0], np.cumsum(seen)])
    seen_near = cum[np.searchsorted(tt, t + guard, side="right")] - cum[np.searchsorted(tt, t - guard, side="left")] if len(tt) else np.zeros(len(t))
    no_hand = looking & (seen_near == 0) if len(tt) else np.zeros(len(t), bool)
    w, h = s.camera_size
    jobs, out_of_view = [], 0
    sid = s.manifest["session_id"]
    for i in range(len(t)):
        # the frame index names the file: it must stay in the session folder (refused before anything is written)
        file = contained_path(s.path, s.frames.files[i], f"session {s.path}: frame {i}")
        base = dict(session=k, subject=subject, frame=i, t_host_ns=int(s.frames.t_host_ns[i]), file=file, name=f"{sid}/{i:06d}", size=(w, h))
        j3 = joints[i]
        if np.isfinite(j3).all():
            pc = cal.T_cam_leap.apply(j3)
            uv, vis = cal.camera.see(pc)  # the one visibility rule (Calibration.project)
            if not vis.any():
                out_of_view += 1
                jobs.append(_Job(uv=None, visible=None, joints_cam=None, joints_tracker=None, **base))
                continue
            jobs.append(_Job(uv=uv, visible=vis, joints_cam=pc.astype(np.float32), joints_tracker=j3.astype(np.float32), **base))
        elif np.isnan(j3).all() and no_hand[i]:
            jobs.append(_Job(uv=None, visible=None, joints_cam=None, joints_tracker=None, **base))
        elif not np.isnan(j3).all():
            output.leave_out("nan_joints")  # some joints NaN: the tracker stream is damaged
        elif looking[i]:
            output.leave_out("nohand_near_hand")  # no hand now, but one within the guard: ambiguous
        else:
            output.leave_out("no_tracking")
    return jobs, out_of_view


def _qa_flags(flagged: dict[str, set[int]], sessions: list[Session]) -> dict[int, set[int]]:
    """``flagged`` (frames by session id) by the index of the session being built;
    ValueError for a session id that is not one of them."""
    ids = [s.manifest["session_id"] for s in sessions]
    out: dict[int, set[int]] = {}
    for sid, frames in flagged.items():
        if sid not in ids:
            raise ValueError(f"a gthd qa report of session {sid!r}, not of a session being built ({', '.join(map(str, ids))})")
        out.setdefault(ids.index(sid), set()).update(frames)
    return out


def sessions_checksum(paths: list[Path]) -> str:
    return _sha256(paths)


def describe_attrs(f) -> dict:
    """The JSON attributes of a dataset, decoded (for inspect)."""
    out = {}
    for k, v in f.attrs.items():
        if isinstance(v, bytes):
            v = v.decode()
        if isinstance(v, str) and v[:1] in "[{":
            try:
                v = json.loads(v)
            except json.JSONDecodeError:
                pass
        out[k] = v
    return out
