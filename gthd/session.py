"""The raw session format: what ``gthd capture`` and ``gthd simulate`` write and every
later stage reads. The full description is docs/session-format.md; in short::

    SESSION/
      manifest.json      format "gthd-session" v1: status, camera, tracker, counts
      frames/000000.jpg  camera frames (JPEG or PNG)
      frames.jsonl       frame index: one line per frame, host (and device) timestamps
      tracker.jsonl      tracker stream: one line per tracking frame, 21 joints per hand
      clock.jsonl        device-to-host clock brackets (h0_ns, leap_us, h1_ns)
      boards/NAME/       optional calibration board views + board.json
      summary.json       optional end-of-run summary (capture)
      ground_truth.json  simulated sessions only (gthd.sim)

Logs are JSON lines whose first line is a header with the format and version; they are
appended and flushed while recording and read back tolerating a torn last line.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from . import __version__
from .fileio import FormatError, JsonlAppender, read_json, read_jsonl, write_json
from .hand import NUM_JOINTS

SESSION_FORMAT = "gthd-session"
SESSION_VERSION = 1
LOG_FORMATS = {
    "frames.jsonl": "gthd-frames",
    "tracker.jsonl": "gthd-tracker",
    "clock.jsonl": "gthd-clock",
}
OPTIONAL_LOGS = {"events.jsonl": "gthd-events"}  # absent in sessions that never had one
LOG_VERSION = 1
STATUSES = ("recording", "complete", "interrupted")
HAND_TYPES = ("left", "right")


# ------------------------------------------------------------------------------- writer
class SessionWriter:
    """Writes a session folder incrementally; safe to kill at any moment.

    The manifest is written at start with status ``recording`` and rewritten by
    :meth:`finish`, last of all, so a session never claims to be complete before
    everything else is on disk. Frame files are written before their index line, so every
    indexed frame is complete. Each log's header reaches the OS at once; records are
    flushed every ``flush_every_s`` (0, capture's choice: every line as it is written, so
    a kill loses at most the line being written).

    Args:
        path: the session folder; it must not exist or be empty.
        source: "capture" or "simulated".
        camera: camera description (source, width, height, fps, fourcc, ...).
        tracker: tracker description (kind, serial, tracking_mode, ...).
        session_id, created_utc, subject: recorded as given.
        image_format: "jpg" or "png".
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        source: str,
        camera: dict,
        tracker: dict,
        session_id: str,
        created_utc: str | None,
        subject: str | None = None,
        image_format: str = "jpg",
        extra: dict | None = None,
        flush_every_s: float = 0.25,
    ):
        if image_format not in ("jpg", "png"):
            raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
        self.path = Path(path)
        if self.path.exists() and any(self.path.iterdir()):
            raise FileExistsError(f"{self.path} exists and is not empty")
        (self.path / "frames").mkdir(parents=True, exist_ok=True)
        self.image_format = image_format
        self._manifest = {
            "session_id": session_id,
            "status": "recording",
            "source": source,
            "created_utc": created_utc,
            "subject": subject,
            "host_clock": "time.monotonic_ns",
            "camera": camera,
            "tracker": tracker,
            "image_format": image_format,
            "counts": {},
            **(extra or {}),
        }
        self._write_manifest()
        self._logs = {}
        for name, fmt in {**LOG_FORMATS, **OPTIONAL_LOGS}.items():
            log = JsonlAppender(self.path / name, flush_every_s)
            log.write({"format": fmt, "format_version": LOG_VERSION, "gthd_version": __version__})
            log.flush()  # a header still in a buffer is an unreadable log after a kill
            self._logs[name] = log
        self.n_frames = 0
        self.n_tracker = 0
        self.n_clock = 0
        self._log_errors: dict[str, str] = {}

    @property
    def session_id(self) -> str:
        return self._manifest["session_id"]

    def _write_manifest(self) -> None:
        write_json(self.path / "manifest.json", self._manifest, fmt=SESSION_FORMAT, version=SESSION_VERSION)

    def add_frame(self, encoded: bytes, t_host_ns: int, *, seq: int | None = None, t_device_ns: int | None = None) -> int:
        """Write one encoded frame and index it. Returns its index."""
        i = self.n_frames
        rel = f"frames/{i:06d}.{self.image_format}"
        with open(self.path / rel, "wb") as f:
            f.write(encoded)
        self._logs["frames.jsonl"].write({"index": i, "file": rel, "t_host_ns": int(t_host_ns), "t_device_ns": t_device_ns, "seq": seq})
        self.n_frames += 1
        return i

    def add_tracker_frame(
        self,
        *,
        frame_id: int,
        t_device_us: int,
        t_host_ns: int,
        t_arrival_ns: int,
        framerate: float,
        hands: list[dict],
    ) -> None:
        """Append one tracking frame. ``hands``: dicts with id, type ("left"/"right"),
        confidence, joints ((21, 3) mm, leap frame, our joint order), palm ((3,) mm)."""
        out = []
        for h in hands:
            joints = np.asarray(h["joints"], dtype=np.float64)
            if joints.shape != (NUM_JOINTS, 3):
                raise ValueError(f"hand joints: expected (21, 3), got {joints.shape}")
            if h["type"] not in HAND_TYPES:
                raise ValueError(f"hand type must be one of {HAND_TYPES}, got {h['type']!r}")
            out.append(
                {
                    "id": int(h["id"]),
                    "type": h["type"],
                    "confidence": round(float(h["confidence"]), 4),
                    "joints": np.round(joints, 3).tolist(),
                    "palm": np.round(np.asarray(h["palm"], dtype=np.float64), 3).tolist(),
                }
            )
        self._logs["tracker.jsonl"].write(
            {
                "frame_id": int(frame_id),
                "t_device_us": int(t_device_us),
                "t_host_ns": int(t_host_ns),
                "t_arrival_ns": int(t_arrival_ns),
                "framerate": round(float(framerate), 3),
                "hands": out,
            }
        )
        self.n_tracker += 1

    def add_clock_sample(self, h0_ns: int, device_us: int, h1_ns: int) -> None:
        self._logs["clock.jsonl"].write({"h0_ns": int(h0_ns), "leap_us": int(device_us), "h1_ns": int(h1_ns)})
        self.n_clock += 1

    def add_event(self, source: str, kind: str, detail: str, t_host_ns: int) -> None:
        """Append to the event log: what happened to a source and when (host clock):
        e.g. ("tracker", "lost", "service disconnected"), ("camera", "back", ...)."""
        self._logs["events.jsonl"].write({"t_host_ns": int(t_host_ns), "source": source, "kind": kind, "detail": detail})

    def flush(self) -> None:
        """Push every log's buffered lines to the OS (thread-safe)."""
        for log in self._logs.values():
            log.flush()

    def close_logs(self) -> None:
        """Flush, fsync and close every log (again: a no-op). The session is then
        readable as it stands, its manifest still ``recording`` until :meth:`finish`."""
        for name, log in self._logs.items():
            try:
                log.close()
            except OSError as e:  # a full disk: the lines flushed before are kept; say so
                self._log_errors[name] = str(e)

    def finish(self, status: str = "complete", **extra) -> None:
        """Close the logs and finalise the manifest with counts and ``status``."""
        if status not in STATUSES[1:]:
            raise ValueError(f"status must be 'complete' or 'interrupted', got {status!r}")
        self.close_logs()
        if self._log_errors:
            self._manifest["log_errors"] = self._log_errors
        self._manifest["status"] = status
        self._manifest["counts"] = {
            "frames": self.n_frames,
            "tracker_frames": self.n_tracker,
            "clock_samples": self.n_clock,
        }
        self._manifest.update(extra)
        self._write_manifest()


# ------------------------------------------------------------------------------- reader
@dataclass
class Frames:
    """The frame index. Arrays are (N,) and aligned; ``files`` are session-relative."""

    index: np.ndarray  # (N,) int64
    t_host_ns: np.ndarray  # (N,) int64, host clock at arrival
    seq: np.ndarray  # (N,) int64, -1 when unknown
    files: list[str]

    def __len__(self) -> int:
        return len(self.index)


@dataclass
class TrackerStream:
    """The tracker stream, one entry per tracking frame (with or without hands).

    ``hands[k]`` is the list of hand dicts of frame k (id, type, confidence,
    joints (21, 3) float64 mm in ``leap``, palm (3,)).
    """

    frame_id: np.ndarray  # (T,) int64
    t_device_us: np.ndarray  # (T,) int64, LeapC clock
    t_host_ns: np.ndarray  # (T,) int64, mapped to the host clock
    t_arrival_ns: np.ndarray  # (T,) int64
    hands: list[list[dict]] = field(repr=False)

    def __len__(self) -> int:
        return len(self.frame_id)

    def primary(self, hand_type: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One hand per frame, of side ``hand_type`` if given: the primary hand follows
        its id from frame to frame, whatever order the tracker lists the hands in.

        A new hand is picked only on the first frame with a hand of that side, or when the
        followed id is missing from a frame that has other hands: the hand of the same
        side as the one before, then the one seen longest (earliest first frame), then the
        lowest id. Confidence is not used: LeapC documents it as unused (always 1.0).
        A frame without hands of that side keeps the followed id, should it come back.

        Args:
            hand_type: "left", "right", or None for either.

        Returns:
            joints: (T, 21, 3) float64 mm, NaN where no such hand.
            hand_id: (T,) int64, -1 where no such hand.
        """
        if hand_type is not None and hand_type not in HAND_TYPES:
            raise ValueError(f"hand type must be one of {', '.join(HAND_TYPES)} or None, got {hand_type!r}")
        joints = np.full((len(self), NUM_JOINTS, 3), np.nan)
        ids = np.full(len(self), -1, dtype=np.int64)
        first_seen: dict[int, int] = {}  # hand id -> index of the first frame it is in
        followed: dict | None = None
        for k, hs in enumerate(self.hands):
            for h in hs:
                first_seen.setdefault(h["id"], k)
            hs = [h for h in hs if hand_type is None or h["type"] == hand_type]
            if not hs:
                continue
            h = next((h for h in hs if followed is not None and h["id"] == followed["id"]), None)
            if h is None:  # the first hand, or the followed one is gone: pick anew
                side = None if followed is None else followed["type"]
                h = min(hs, key=lambda c: (side is not None and c["type"] != side, first_seen[c["id"]], c["id"]))
            followed = h
            joints[k] = h["joints"]
            ids[k] = h["id"]
        return joints, ids

    def joints_at(self, t_host_ns, max_gap_ns: int = 50_000_000, hand_type: str | None = None, smooth_ns: int = 0) -> np.ndarray:
        """Tracked joints at host time(s), interpolated linearly between the two
        bracketing tracking frames of the same hand; NaN ("unknown") where the bracket is
        wider than ``max_gap_ns``, the hand changes, or the time is outside the stream
        (never extrapolated).

        With ``smooth_ns`` > 0, where the bracket exists, the joints are instead a local
        linear fit over the same hand's frames within ``t +- smooth_ns`` (at least 3, on
        both sides of ``t``): the tracker's per-frame noise averages out (about sqrt(n)
        for n frames) while constant-velocity motion is still reproduced exactly.

        Args:
            t_host_ns: scalar or (M,) int64 host times.
            hand_type: "left", "right", or None for either: whose joints (the
                :meth:`primary` hand of that side).

        Returns:
            (M, 21, 3) float64 mm in ``leap`` (or (21, 3) for a scalar time).
        """
        scalar = np.ndim(t_host_ns) == 0
        t = np.atleast_1d(np.asarray(t_host_ns, dtype=np.int64))
        joints, ids = self.primary(hand_type)
        ok = ids >= 0
        tt, jj, ii = self.t_host_ns[ok], joints[ok], ids[ok]
        out = np.full((len(t), NUM_JOINTS, 3), np.nan)
        if len(tt) >= 1:
            k = np.searchsorted(tt, t, side="right")  # tt[k-1] <= t < tt[k]
            exact = (k >= 1) & (tt[np.clip(k - 1, 0, None)] == t)
            out[exact] = jj[k[exact] - 1]
            inside = (k >= 1) & (k < len(tt)) & ~exact
            k0, k1 = k[inside] - 1, k[inside]
            good = ((tt[k1] - tt[k0]) <= max_gap_ns) & (ii[k0] == ii[k1])
            k0, k1 = k0[good], k1[good]
            w = ((t[inside][good] - tt[k0]) / (tt[k1] - tt[k0]))[:, None, None]
            idx = np.flatnonzero(inside)[good]
            out[idx] = (1 - w) * jj[k0] + w * jj[k1]
            if smooth_ns > 0:
                hand = np.full(len(t), -1, dtype=np.int64)
                hand[exact] = ii[k[exact] - 1]
                hand[idx] = ii[k0]
                self._smooth(out, t, tt, jj, ii, hand, int(smooth_ns))
        return out[0] if scalar else out

    @staticmethod
    def _smooth(out, t, tt, jj, ii, hand, smooth_ns) -> None:
        """Replace known rows of ``out`` by local linear fits (see :meth:`joints_at`)."""
        lo = np.searchsorted(tt, t - smooth_ns, side="left")
        hi = np.searchsorted(tt, t + smooth_ns, side="right")
        for q in np.flatnonzero(hand >= 0):
            sel = np.arange(lo[q], hi[q])
            sel = sel[ii[sel] == hand[q]]
            if len(sel) < 3 or not (tt[sel[0]] < t[q] < tt[sel[-1]]):
                continue
            dt = (tt[sel] - t[q]) / 1e9  # (n,) s, centred on the query
            A = np.column_stack([np.ones_like(dt), dt])
            coef, *_ = np.linalg.lstsq(A, jj[sel].reshape(len(sel), -1), rcond=None)
            out[q] = coef[0].reshape(NUM_JOINTS, 3)


class Session:
    """A session folder opened for reading. Use :meth:`open`.

    Attributes:
        path: the folder. manifest: the manifest dict.
        frames: the frame index. tracker: the tracker stream.
        clock: (n, 3) int64 clock brackets (h0_ns, leap_us, h1_ns).
        torn: how many torn/broken log lines were skipped, per log.
        events: the event log's records (source lost/back, errors), oldest first.
    """

    def __init__(self, path: Path, manifest: dict, frames: Frames, tracker: TrackerStream, clock: np.ndarray, torn: dict, events: list[dict] | None = None):
        self.path = path
        self.events = events or []
        self.manifest = manifest
        self.frames = frames
        self.tracker = tracker
        self.clock = clock
        self.torn = torn

    @property
    def camera_size(self) -> tuple[int, int]:
        cam = self.manifest["camera"]
        return int(cam["width"]), int(cam["height"])

    @property
    def has_ground_truth(self) -> bool:
        return (self.path / "ground_truth.json").exists()

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Session":
        """Read a session folder; raises :class:`FormatError` on anything unreadable."""
        path = Path(path)
        if not path.is_dir():
            raise FormatError(f"{path}: not a session folder (no such directory)")
        manifest = read_json(path / "manifest.json", fmt=SESSION_FORMAT, versions=(SESSION_VERSION,))
        _check_manifest(path / "manifest.json", manifest)
        torn, logs = {}, {}
        for name, fmt in {**LOG_FORMATS, **OPTIONAL_LOGS}.items():
            if not (path / name).exists():
                if name in OPTIONAL_LOGS:
                    logs[name] = []
                    continue
                raise FormatError(f"{path / name}: missing")
            try:
                records, torn[name] = read_jsonl(path / name)
            except OSError as e:
                raise FormatError(f"{path / name}: not readable ({e.strerror or e})") from None
            if not records and manifest["status"] == "recording":
                # Killed before the header line reached the disk: an empty log, not a
                # broken session (what was written elsewhere is still readable).
                logs[name] = []  # (a torn header is counted in torn[name])
                continue
            head = records[0] if records else None
            if not isinstance(head, dict) or head.get("format") != fmt:
                raise FormatError(f"{path / name}: expected a '{fmt}' log header")
            if head.get("format_version") != LOG_VERSION:
                raise FormatError(
                    f"{path / name}: {fmt} version {head.get('format_version')!r} is not one "
                    f"this gthd ({__version__}) reads (it reads {LOG_VERSION}); upgrade gthd"
                )
            logs[name] = records[1:]
            _check_records(path / name, logs[name], _RECORD_CHECKS[name])
        fr = logs["frames.jsonl"]
        frames = Frames(
            index=np.array([r["index"] for r in fr], dtype=np.int64),
            t_host_ns=np.array([r["t_host_ns"] for r in fr], dtype=np.int64),
            seq=np.array([-1 if r.get("seq") is None else r["seq"] for r in fr], dtype=np.int64),
            files=[r["file"] for r in fr],
        )
        tr = logs["tracker.jsonl"]
        tracker = TrackerStream(
            frame_id=np.array([r["frame_id"] for r in tr], dtype=np.int64),
            t_device_us=np.array([r["t_device_us"] for r in tr], dtype=np.int64),
            t_host_ns=np.array([r["t_host_ns"] for r in tr], dtype=np.int64),
            t_arrival_ns=np.array([r["t_arrival_ns"] for r in tr], dtype=np.int64),
            hands=[r["hands"] for r in tr],
        )
        clock = np.array([[r["h0_ns"], r["leap_us"], r["h1_ns"]] for r in logs["clock.jsonl"]], dtype=np.int64)
        return cls(path, manifest, frames, tracker, clock.reshape(-1, 3), torn, logs["events.jsonl"])

    def summary(self) -> dict:
        """What the session holds: status, streams, rates and time span
        (``gthd session info``, ``--json``)."""
        m = self.manifest
        w, h = self.camera_size
        t, tt = self.frames.t_host_ns, self.tracker.t_host_ns
        span = (t[-1] - t[0]) / 1e9 if len(t) >= 2 else None
        tspan = (tt[-1] - tt[0]) / 1e9 if len(tt) >= 2 else None
        return {
            "path": str(self.path),
            "session_id": m["session_id"],
            "source": m["source"],
            "status": m["status"],
            "stop_reason": m.get("stop_reason"),
            "subject": m.get("subject"),
            "camera": {
                "frames": len(t),
                "width": w,
                "height": h,
                "span_s": None if not span else round(span, 3),
                "fps": None if not span else round((len(t) - 1) / span, 3),
                "sequence_gaps": int(np.sum(np.diff(self.frames.seq) > 1)) if len(t) and (self.frames.seq >= 0).all() else 0,
            },
            "tracker": {
                "frames": len(tt),
                "with_hand": sum(bool(hs) for hs in self.tracker.hands),
                "span_s": None if not tspan else round(tspan, 3),
                "hz": None if not tspan else round((len(tt) - 1) / tspan, 3),
            },
            "clock_brackets": len(self.clock),
            "events": len(self.events),
            "boards": {k: len(v) for k, v in self.boards().items()},
            "torn_lines": {k: v for k, v in self.torn.items() if v},
            "ground_truth": self.has_ground_truth,
        }

    def summary_lines(self) -> list[str]:
        """:meth:`summary` as lines for a terminal (``gthd session info``)."""
        d = self.summary()
        c, t = d["camera"], d["tracker"]
        lines = [f"session {d['session_id']} ({d['source']}), status {d['status']}"]
        if c["fps"] is not None:
            lines.append(
                f"camera: {c['frames']} frames {c['width']}x{c['height']} over {c['span_s']:.2f} s ({c['fps']:.2f} fps), {c['sequence_gaps']} sequence gaps"
            )
        else:
            lines.append(f"camera: {c['frames']} frames {c['width']}x{c['height']}")
        if t["hz"] is not None:
            lines.append(f"tracker: {t['frames']} frames ({t['with_hand']} with a hand) over {t['span_s']:.2f} s ({t['hz']:.1f} Hz)")
        else:
            lines.append(f"tracker: {t['frames']} frames ({t['with_hand']} with a hand)")
        lines.append(f"clock brackets: {d['clock_brackets']}")
        if d["boards"]:
            lines.append("boards: " + ", ".join(f"{k} ({v} views)" for k, v in d["boards"].items()))
        if d["torn_lines"]:
            lines.append("torn log lines skipped: " + ", ".join(f"{k} {v}" for k, v in d["torn_lines"].items()))
        if d["ground_truth"]:
            lines.append("ground truth: yes (simulated)")
        return lines

    def index_problems(self) -> list[str]:
        """What makes the frame index unusable for labelling, as sentences (empty: none):
        frames not numbered 0, 1, 2, ... or camera timestamps that do not increase (a
        frame's time decides which tracked pose it gets)."""
        out = []
        if len(self.frames) and not np.array_equal(self.frames.index, np.arange(len(self.frames))):
            out.append("the frame index is not numbered 0, 1, 2, ...")
        back = np.flatnonzero(np.diff(self.frames.t_host_ns) <= 0)
        if len(back):
            out.append(f"{len(back)} camera timestamps do not increase (first at frame {back[0] + 1})")
        return out

    def image(self, i: int) -> np.ndarray:
        """Frame ``i`` of the index as (H, W, 3) uint8 BGR."""
        file = self.path / self.frames.files[i]
        img = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if img is None:
            raise FormatError(f"{file}: missing or not a readable image")
        return img

    def boards(self) -> dict[str, list[Path]]:
        """Board view images per board folder name (``boards/NAME/*.png|jpg``)."""
        root = self.path / "boards"
        if not root.is_dir():
            return {}
        pat = re.compile(r"^\d+\.(png|jpg)$")
        return {
            d.name: sorted(p for p in d.iterdir() if pat.match(p.name))
            for d in sorted(root.iterdir())
            if d.is_dir() and not d.name.startswith(".")  # ".NAME.partial": still being written
        }


# ------------------------------------------------------------------------ validation
# Every record is checked as it is read: a session log that parses yet holds the wrong
# thing (a hand-edited line, a bit flip, another tool's file) is one clear FormatError,
# never a KeyError three stages later. A frame's file must be frames/NNNNNN.jpg|png: a
# path from a data file never leaves the session folder.
_FRAME_FILE = re.compile(r"^frames/[0-9]{1,9}\.(jpg|png)$")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _frame_record(r: dict) -> str | None:
    if not (_is_int(r.get("index")) and _is_int(r.get("t_host_ns"))):
        return "needs integer 'index' and 't_host_ns'"
    if not (isinstance(r.get("file"), str) and _FRAME_FILE.match(r["file"])):
        return f"'file' must be frames/NNNNNN.jpg or .png, got {r.get('file')!r}"
    for k in ("seq", "t_device_ns"):
        if r.get(k) is not None and not _is_int(r[k]):
            return f"'{k}' must be an integer or null"
    return None


def _hand_record(h) -> str | None:
    if not isinstance(h, dict):
        return "a hand must be an object"
    if not (_is_int(h.get("id")) and h.get("type") in HAND_TYPES and _is_num(h.get("confidence"))):
        return f"a hand needs an integer 'id', 'type' in {HAND_TYPES} and a number 'confidence'"
    try:
        joints = np.asarray(h.get("joints"), dtype=np.float64)
        palm = np.asarray(h.get("palm"), dtype=np.float64)
    except (TypeError, ValueError):
        return "hand 'joints' and 'palm' must be numbers"
    if joints.shape != (NUM_JOINTS, 3) or palm.shape != (3,):  # NaN passes: build-dataset counts and skips it
        return f"hand 'joints' must be {NUM_JOINTS} x 3 and 'palm' 3 numbers"
    h["joints"], h["palm"] = joints, palm
    return None


def _tracker_record(r: dict) -> str | None:
    if not all(_is_int(r.get(k)) for k in ("frame_id", "t_device_us", "t_host_ns", "t_arrival_ns")):
        return "needs integer 'frame_id', 't_device_us', 't_host_ns' and 't_arrival_ns'"
    if not isinstance(r.get("hands"), list):
        return "'hands' must be a list"
    for h in r["hands"]:
        if (why := _hand_record(h)) is not None:
            return why
    return None


def _clock_record(r: dict) -> str | None:
    if not all(_is_int(r.get(k)) for k in ("h0_ns", "leap_us", "h1_ns")):
        return "needs integer 'h0_ns', 'leap_us' and 'h1_ns'"
    return None


def _event_record(r: dict) -> str | None:
    if not (_is_int(r.get("t_host_ns")) and all(isinstance(r.get(k), str) for k in ("source", "kind", "detail"))):
        return "needs an integer 't_host_ns' and text 'source', 'kind', 'detail'"
    return None


_RECORD_CHECKS = {"frames.jsonl": _frame_record, "tracker.jsonl": _tracker_record, "clock.jsonl": _clock_record, "events.jsonl": _event_record}


def _check_records(path: Path, records: list, check) -> None:
    for k, r in enumerate(records):
        why = "not a JSON object" if not isinstance(r, dict) else check(r)
        if why is not None:
            raise FormatError(f"{path}: record {k + 1}: {why}")


def _check_manifest(path: Path, m: dict) -> None:
    """The manifest fields every reader relies on."""

    def bad(why: str):
        return FormatError(f"{path}: {why}")

    if not isinstance(m.get("session_id"), str) or m.get("status") not in STATUSES or not isinstance(m.get("source"), str):
        raise bad(f"needs a text 'session_id' and 'source' and a 'status' in {STATUSES}")
    cam = m.get("camera")
    if not isinstance(cam, dict) or not all(_is_int(cam.get(k)) and 0 < cam[k] <= 65536 for k in ("width", "height")):
        raise bad("'camera' needs a positive integer 'width' and 'height'")
    if not isinstance(m.get("tracker"), dict):
        raise bad("'tracker' must be an object")
    if m.get("image_format", "jpg") not in ("jpg", "png"):
        raise bad(f"'image_format' must be jpg or png, got {m.get('image_format')!r}")
    if not isinstance(m.get("counts", {}), dict):
        raise bad("'counts' must be an object")
