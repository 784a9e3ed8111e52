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
    :meth:`finish`. Frame files are written before their index line, so every indexed
    frame is complete. Logs are flushed every ``flush_every_s``.

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
            self._logs[name] = log
        self.n_frames = 0
        self.n_tracker = 0
        self.n_clock = 0

    @property
    def session_id(self) -> str:
        return self._manifest["session_id"]

    def _write_manifest(self) -> None:
        write_json(self.path / "manifest.json", self._manifest, fmt=SESSION_FORMAT, version=SESSION_VERSION)

    def add_frame(
        self, encoded: bytes, t_host_ns: int, *, seq: int | None = None, t_device_ns: int | None = None
    ) -> int:
        """Write one encoded frame and index it. Returns its index."""
        i = self.n_frames
        rel = f"frames/{i:06d}.{self.image_format}"
        with open(self.path / rel, "wb") as f:
            f.write(encoded)
        self._logs["frames.jsonl"].write(
            {"index": i, "file": rel, "t_host_ns": int(t_host_ns), "t_device_ns": t_device_ns, "seq": seq}
        )
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

    def finish(self, status: str = "complete", **extra) -> None:
        """Close the logs and finalise the manifest with counts and ``status``."""
        if status not in STATUSES[1:]:
            raise ValueError(f"status must be 'complete' or 'interrupted', got {status!r}")
        errors = {}
        for name, log in self._logs.items():
            try:
                log.close()
            except OSError as e:  # a full disk: the lines flushed before are kept; say so
                errors[name] = str(e)
        if errors:
            self._manifest["log_errors"] = errors
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
        """One hand per frame: the most confident (of ``hand_type`` if given).

        Returns:
            joints: (T, 21, 3) float64 mm, NaN where no such hand.
            hand_id: (T,) int64, -1 where no such hand.
        """
        joints = np.full((len(self), NUM_JOINTS, 3), np.nan)
        ids = np.full(len(self), -1, dtype=np.int64)
        for k, hs in enumerate(self.hands):
            hs = [h for h in hs if hand_type is None or h["type"] == hand_type]
            if hs:
                h = max(hs, key=lambda h: h["confidence"])
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
        torn, logs = {}, {}
        for name, fmt in {**LOG_FORMATS, **OPTIONAL_LOGS}.items():
            if not (path / name).exists():
                if name in OPTIONAL_LOGS:
                    logs[name] = []
                    continue
                raise FormatError(f"{path / name}: missing")
            records, torn[name] = read_jsonl(path / name)
            if not records or records[0].get("format") != fmt:
                raise FormatError(f"{path / name}: expected a '{fmt}' log header")
            if records[0].get("format_version") != LOG_VERSION:
                raise FormatError(
                    f"{path / name}: {fmt} version {records[0].get('format_version')!r} is not one "
                    f"this gthd ({__version__}) reads (it reads {LOG_VERSION}); upgrade gthd"
                )
            logs[name] = records[1:]
        fr = logs["frames.jsonl"]
        frames = Frames(
            index=np.array([r["index"] for r in fr], dtype=np.int64),
            t_host_ns=np.array([r["t_host_ns"] for r in fr], dtype=np.int64),
            seq=np.array([-1 if r.get("seq") is None else r["seq"] for r in fr], dtype=np.int64),
            files=[r["file"] for r in fr],
        )
        tr = logs["tracker.jsonl"]
        for r in tr:
            for h in r["hands"]:
                h["joints"] = np.asarray(h["joints"], dtype=np.float64)
                h["palm"] = np.asarray(h["palm"], dtype=np.float64)
        tracker = TrackerStream(
            frame_id=np.array([r["frame_id"] for r in tr], dtype=np.int64),
            t_device_us=np.array([r["t_device_us"] for r in tr], dtype=np.int64),
            t_host_ns=np.array([r["t_host_ns"] for r in tr], dtype=np.int64),
            t_arrival_ns=np.array([r["t_arrival_ns"] for r in tr], dtype=np.int64),
            hands=[r["hands"] for r in tr],
        )
        clock = np.array([[r["h0_ns"], r["leap_us"], r["h1_ns"]] for r in logs["clock.jsonl"]], dtype=np.int64)
        return cls(path, manifest, frames, tracker, clock.reshape(-1, 3), torn, logs["events.jsonl"])

    def image(self, i: int) -> np.ndarray:
        """Frame ``i`` of the index as (H, W, 3) uint8 BGR."""
        file = self.path / self.frames.files[i]
        img = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if img is None:
            raise FormatError(f"{file}: missing or not a readable image")
        return img

    def ground_truth(self) -> dict:
        """The simulator's ground truth (simulated sessions only)."""
        from .sim.truth import read_truth  # the sim owns its file format

        return read_truth(self.path / "ground_truth.json")

    def boards(self) -> dict[str, list[Path]]:
        """Board view images per board folder name (``boards/NAME/*.png|jpg``)."""
        root = self.path / "boards"
        if not root.is_dir():
            return {}
        pat = re.compile(r"^\d+\.(png|jpg)$")
        return {
            d.name: sorted(p for p in d.iterdir() if pat.match(p.name))
            for d in sorted(root.iterdir())
            if d.is_dir()
        }
