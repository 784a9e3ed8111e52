"""``gthd session check``: validate a session folder and say what is usable.

Works on a finished session and on what a killed capture left behind (manifest still
``recording``, a torn last log line, frame files written but not indexed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..images import decode_checked
from ..session import Session


@dataclass
class CheckReport:
    """What ``check_session`` found. ``problems`` make a session unusable; ``warnings``
    are worth knowing; ``facts`` describe it."""

    facts: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    usable_frames: int = 0
    frames: int = 0
    tracker_frames: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        """For ``gthd session check --json``."""
        return {
            "ok": self.ok,
            "frames": self.frames,
            "tracker_frames": self.tracker_frames,
            "usable_frames": self.usable_frames,
            "problems": self.problems,
            "warnings": self.warnings,
            "facts": self.facts,
        }


def check_session(path: str | Path, decode: bool = False, max_gap_ms: float = 50.0) -> CheckReport:
    """Validate a session.

    Args:
        decode: also decode every frame (slow; otherwise only the first and last).
        max_gap_ms: the widest tracker gap across which a frame's joints may be
            interpolated (frames elsewhere are not usable for a dataset).

    Raises:
        FormatError: the folder is not a readable session at all.
    """
    s = Session.open(path)
    r = CheckReport(frames=len(s.frames), tracker_frames=len(s.tracker))
    m = s.manifest
    r.facts.append(
        f"session {m['session_id']} ({m['source']}), manifest status {m['status']}" + (f", stopped by {m['stop_reason']}" if m.get("stop_reason") else "")
    )
    if m["status"] == "recording":
        r.warnings.append("the manifest was never finalised (the capture was killed or crashed): what was flushed before is kept")
    counts = m.get("counts") or {}
    if counts and m["status"] != "recording":
        if counts.get("frames") != len(s.frames) or counts.get("tracker_frames") != len(s.tracker):
            r.problems.append(f"the manifest counts {counts} disagree with the logs ({len(s.frames)} frames, {len(s.tracker)} tracker frames)")
    for name, n in s.torn.items():
        if n:
            r.warnings.append(f"{name}: {n} torn or unreadable line{'s' * (n > 1)} skipped")

    # ---- camera frames
    missing = [f for f in s.frames.files if not (s.path / f).is_file() or (s.path / f).stat().st_size == 0]
    if missing:
        r.problems.append(f"{len(missing)} indexed frame files are missing or empty (first: {missing[0]})")
    indexed = set(s.frames.files)
    pat = re.compile(r"^\d+\.(jpg|png)$")
    orphans = [p for p in (s.path / "frames").iterdir() if pat.match(p.name) and f"frames/{p.name}" not in indexed] if (s.path / "frames").is_dir() else []
    if orphans:
        r.warnings.append(
            f"{len(orphans)} frame file{'s' * (len(orphans) > 1)} written but never indexed (the capture stopped between file and index): ignored"
        )
    r.problems.extend(s.index_problems())
    t = s.frames.t_host_ns
    if len(t) >= 2:
        span = (t[-1] - t[0]) / 1e9
        seq = s.frames.seq
        gaps = int(np.sum(np.diff(seq) > 1)) if (seq >= 0).all() else 0
        r.facts.append(f"camera: {len(t)} frames over {span:.2f} s ({(len(t) - 1) / span:.2f} fps), {gaps} sequence gaps")
    else:
        r.facts.append(f"camera: {len(t)} frames")
        if not len(t):
            r.problems.append("no camera frames")
    n = len(s.frames)
    to_decode = range(n) if decode else sorted({0, n - 1}) if n else []
    bad = []
    for i in to_decode:
        if s.frames.files[i] in missing:
            continue
        _, problem = decode_checked((s.path / s.frames.files[i]).read_bytes())
        if problem is not None:
            bad.append((i, problem))
    if bad:
        i, problem = bad[0]
        r.problems.append(f"{len(bad)} frames do not decode cleanly (first: {s.frames.files[i]}: {problem})")

    # ---- tracker
    tt = s.tracker.t_host_ns
    with_hand = sum(bool(h) for h in s.tracker.hands)
    if len(tt) >= 2:
        span = (tt[-1] - tt[0]) / 1e9
        r.facts.append(f"tracker: {len(tt)} frames ({with_hand} with a hand) over {span:.2f} s ({(len(tt) - 1) / span:.1f} Hz)")
        if np.any(np.diff(tt) < 0):
            r.warnings.append("tracker host times go backwards somewhere (clock re-estimation)")
    else:
        r.facts.append(f"tracker: {len(tt)} frames")
    if s.manifest["tracker"].get("kind") not in (None, "none"):
        if not len(s.clock):
            r.problems.append("no clock brackets: tracker times cannot be trusted on the host clock")
        else:
            width = (s.clock[:, 2] - s.clock[:, 0]) / 1e3
            r.facts.append(f"clock brackets: {len(s.clock)}, tightest {width.min():.1f} us, median {np.median(width):.1f} us")
    lost = [e for e in s.events if e.get("source") == "tracker" and e.get("kind") == "lost"]
    if lost:
        r.warnings.append(f"the tracker was lost {len(lost)} time{'s' * (len(lost) > 1)} (events.jsonl)")

    # ---- usable: frames with tracked joints within reach (offset 0: before calibration)
    if len(t) and with_hand:
        joints = s.tracker.joints_at(t, max_gap_ns=int(max_gap_ms * 1e6))
        r.usable_frames = int(np.isfinite(joints[:, 0, 0]).sum())
    r.facts.append(f"usable: {r.usable_frames} of {len(t)} frames have tracked joints within {max_gap_ms:g} ms (before calibrating the clock offset)")
    if len(t) and len(tt):
        overlap = (min(t[-1], tt[-1]) - max(t[0], tt[0])) / 1e9
        if overlap <= 0:
            r.problems.append("the camera and tracker streams do not overlap in time")
    return r
