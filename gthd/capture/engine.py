"""The capture engine: a thread per source, bounded queues, and writer threads, so that
encoding and disk never block acquisition.

::

    camera.read() --> [camera reader] --queue--> [frame writer: encode, write, index]
    tracker emit  --------------------> --queue--> [tracker writer: clock map, stream]
                       main thread: limits, signals, progress, preview, flushes

Nothing acquired is lost silently: a frame is either written and indexed or counted as
dropped (its queue was full). Stop by a duration, a frame count, Ctrl-C/SIGTERM, ``q``
in the preview, the end of a finite source, or a fault (the camera gone for longer than
the reconnect window, a full disk); the manifest ends ``complete`` when the user or a
limit stopped it, ``interrupted`` otherwise, with the reason and the counts.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2

from ..clock import ClockMap
from ..fileio import atomic_write_bytes, dumps_json
from ..session import SessionWriter
from .sources import CameraFrame, CameraSource, ClockBracket, SourceError, TrackerEvent, TrackerFrame, TrackerSource

# Why a capture stopped, and the status the manifest ends with.
COMPLETE_REASONS = ("duration", "frames", "end of stream", "user (Ctrl-C)", "user (q)")


@dataclass
class CaptureConfig:
    """How to capture. Limits: ``duration_s`` is measured on the camera's timestamps from
    its first frame; ``max_frames`` counts camera frames acquired."""

    duration_s: float | None = None
    max_frames: int | None = None
    image_format: str = "jpg"
    jpeg_quality: int = 90
    camera_queue: int = 64
    tracker_queue: int = 8192
    flush_every_s: float = 0.25  # how often an idle writer thread wakes
    reconnect_s: float = 5.0
    session_id: str | None = None
    created_utc: str | None = None
    subject: str | None = None
    session_source: str = "capture"  # the manifest's "source": "simulated" when the sources are the simulated rig

    def __post_init__(self):
        if self.image_format not in ("jpg", "png"):
            raise ValueError(f"image format must be jpg or png, got {self.image_format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"JPEG quality must be in [1, 100], got {self.jpeg_quality}")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ValueError(f"duration must be > 0 s, got {self.duration_s}")
        if self.max_frames is not None and self.max_frames <= 0:
            raise ValueError(f"frame count must be > 0, got {self.max_frames}")
        if self.camera_queue < 1 or self.tracker_queue < 1:
            raise ValueError("queue sizes must be >= 1")


@dataclass
class StreamStats:
    """Counters of one stream, updated by its threads, read by the main thread."""

    acquired: int = 0
    written: int = 0
    dropped: int = 0  # queue full: acquired but not written
    high_water: int = 0
    first_t_ns: int | None = None
    last_t_ns: int | None = None
    errors: int = 0

    def rate(self) -> float | None:
        """Rate by the stream's own timestamps, per second."""
        if self.first_t_ns is None or self.last_t_ns is None or self.acquired < 2 or self.last_t_ns <= self.first_t_ns:
            return None
        return (self.acquired - 1) / ((self.last_t_ns - self.first_t_ns) / 1e9)


@dataclass
class Progress:
    """A snapshot for live progress displays."""

    wall_s: float
    camera: StreamStats
    tracker: StreamStats
    camera_queue: int
    tracker_queue: int
    bytes_written: int
    tracker_lost: bool


@dataclass
class CaptureResult:
    path: Path
    status: str
    stop_reason: str
    summary: dict = field(repr=False)


class _Stop:
    """The first reason to stop wins."""

    def __init__(self):
        self.event = threading.Event()
        self.reason: str | None = None
        self._lock = threading.Lock()

    def set(self, reason: str) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason
        self.event.set()

    def __bool__(self) -> bool:
        return self.event.is_set()


class Capture:
    """Record one session from a camera and (optionally) a tracker into ``out``.

    Args:
        out: the session folder; must not exist or be empty.
        camera: a :class:`CameraSource`. tracker: a :class:`TrackerSource` or None.
        config: limits, formats, queue sizes.
    """

    def __init__(self, out: str | Path, camera: CameraSource, tracker: TrackerSource | None, config: CaptureConfig = CaptureConfig()):
        self.out = Path(out)
        self.camera = camera
        self.tracker = tracker
        self.config = config
        self.cam_stats = StreamStats()
        self.trk_stats = StreamStats()
        self._stop = _Stop()
        self._cam_q: queue.Queue = queue.Queue(maxsize=config.camera_queue)
        self._trk_q: queue.Queue = queue.Queue(maxsize=config.tracker_queue)
        self._bytes = 0
        self._seq_gaps = 0
        self._seq_missing = 0
        self._duplicates = 0
        self._reconnects = 0
        self._tracker_lost_since: int | None = None
        self._tracker_gaps: list[list[int | None]] = []
        self._tracker_hands = 0
        self._clock = ClockMap()
        self._no_bracket_frames = 0
        self.latest_frame: CameraFrame | None = None
        self.latest_hands: list[dict] = []
        self._writer: SessionWriter | None = None

    # ------------------------------------------------------------------ run
    def run(
        self,
        on_progress: Callable[[Progress], None] | None = None,
        preview: Callable[["Capture"], bool] | None = None,
        handle_signals: bool = True,
        finalize: Callable[[Path], None] | None = None,
    ) -> CaptureResult:
        """Open the sources, record until a stop, finalise the session.

        Args:
            on_progress: called from the main thread about four times a second.
            preview: called from the main thread about 30 times a second; returns False
                to stop (the ``q`` key).
            handle_signals: install SIGINT/SIGTERM handlers (main thread only).
            finalize: called with the session folder once every frame and log line is
                written and before the manifest is finalised: files that belong to the
                session (a simulation's ground truth). A Ctrl-C or a disk error during it
                ends the session ``interrupted``, never ``complete`` without its files.

        Raises:
            SourceError: a source cannot open (nothing is written then), FileExistsError,
            OSError: the session folder cannot be written (the sources are closed again).
        """
        if self.out.exists() and (not self.out.is_dir() or any(self.out.iterdir())):
            raise FileExistsError(f"{self.out} exists and is not empty: capture never overwrites, choose a new folder")
        cfg = self.config
        cam_info = self.camera.open()
        try:
            trk_info = self.tracker.open() if self.tracker is not None else {"kind": "none"}
            try:
                # Every log line goes to the OS as it is written (flush_every_s=0): a kill
                # loses at most the line being written, at the cost of one write() per
                # line (~150 a second live).
                self._writer = SessionWriter(
                    self.out,
                    source=cfg.session_source,
                    camera={**cam_info, "image_format": cfg.image_format, **({"jpeg_quality": cfg.jpeg_quality} if cfg.image_format == "jpg" else {})},
                    tracker=trk_info,
                    session_id=cfg.session_id or self.out.name,
                    created_utc=cfg.created_utc,
                    subject=cfg.subject,
                    image_format=cfg.image_format,
                    flush_every_s=0.0,
                )
            except OSError as e:
                if self.tracker is not None:
                    self.tracker.stop()
                raise OSError(e.errno, f"cannot write the session to {self.out}: {e.strerror or e}") from None
        except BaseException:
            self.camera.close()
            raise
        old_handlers = self._install_signals() if handle_signals else {}
        t_start = time.monotonic()
        threads = [
            threading.Thread(target=self._guard(self._read_camera), name="gthd-camera", daemon=True),
            threading.Thread(target=self._guard(self._write_frames), name="gthd-frames", daemon=True),
            threading.Thread(target=self._guard(self._write_tracker), name="gthd-tracker", daemon=True),
        ]
        try:
            for t in threads:
                t.start()
            if self.tracker is not None:
                self.tracker.start(self._emit)
            next_progress = 0.0
            while not self._stop:
                if preview is not None:
                    if not preview(self):
                        self._stop.set("user (q)")
                else:
                    self._stop.event.wait(0.05)
                now = time.monotonic() - t_start
                if on_progress is not None and now >= next_progress:
                    on_progress(self.progress(now))
                    next_progress = now + 0.25
        except KeyboardInterrupt:
            self._stop.set("user (Ctrl-C)")
        finally:
            if self.tracker is not None:
                # A finite tracker (a replay, a simulation) still delivering when the camera's
                # stream ended: let it finish (briefly) rather than cut its last frames.
                if self._stop.reason == "end of stream" and getattr(self.tracker, "finite", False):
                    deadline = time.monotonic() + 5.0
                    while not self.tracker.finished() and time.monotonic() < deadline:
                        time.sleep(0.01)
                self.tracker.stop()
            # A camera read can block for a long time (a stalled driver): wait for the
            # reader a bounded time, then go on; it is a daemon thread and its next frame,
            # if any, is simply not written.
            reader, writers = threads[0], threads[1:]
            reader.join(timeout=self.config.reconnect_s + 2.0)
            if reader.is_alive():
                self._writer_event("camera", "error", "the camera read did not return after the stop: left behind")
            self._cam_q.put(None)  # sentinels after everything queued: the writers drain
            self._trk_q.put(None)
            for t in writers:
                t.join()
            self.camera.close()
            self._restore_signals(old_handlers)
        wall = time.monotonic() - t_start
        if on_progress is not None:
            on_progress(self.progress(wall))
        reason = self._stop.reason or "error"
        if finalize is not None:
            reason = self._finalize(finalize, reason)
        status = "complete" if reason in COMPLETE_REASONS else "interrupted"
        summary = self._summary(reason, status, wall)
        try:
            self._writer.finish(status, stop_reason=reason)
            atomic_write_bytes(self.out / "summary.json", dumps_json({"format": "gthd-capture-summary", "format_version": 1, **summary}).encode())
        except OSError as e:  # a full disk may refuse even this: the logs are flushed already
            summary["finalise_error"] = str(e)
        return CaptureResult(self.out, status, reason, summary)

    def _finalize(self, finalize: Callable[[Path], None], reason: str) -> str:
        """Run the ``finalize`` hook on the closed logs; returns the stop reason, changed
        when the hook did not finish (the default SIGINT handler is back: a second
        Ctrl-C raises KeyboardInterrupt here)."""
        self._writer.close_logs()
        try:
            finalize(self.out)
        except KeyboardInterrupt:
            return f"{reason}, then Ctrl-C while finishing the session's files: they are incomplete"
        except OSError as e:
            why = f"disk: {e.strerror or e} while finishing the session's files ({self.out})"
            return why if reason in COMPLETE_REASONS else f"{reason}; then {why}"  # the first fault stays first
        return reason

    def stop(self, reason: str) -> None:
        """Ask the capture to stop (from any thread)."""
        self._stop.set(reason)

    def progress(self, wall_s: float) -> Progress:
        return Progress(wall_s, self.cam_stats, self.trk_stats, self._cam_q.qsize(), self._trk_q.qsize(), self._bytes, self._tracker_lost_since is not None)

    # ------------------------------------------------------------------ threads
    def _guard(self, fn):
        def run():
            try:
                fn()
            except Exception as e:  # a bug or an unexpected fault: stop cleanly, say why
                self._writer_event("capture", "error", f"{type(e).__name__}: {e}")
                self._stop.set(f"error: {type(e).__name__}: {e}")

        return run

    def _read_camera(self) -> None:
        cfg, st = self.config, self.cam_stats
        last_seq = None
        last_t = None
        while not self._stop:
            try:
                frame = self.camera.read()
            except SourceError as e:
                st.errors += 1
                if not self._reconnect_camera(str(e)):
                    return
                continue
            if frame is None:
                self._stop.set("end of stream")
                return
            if cfg.duration_s is not None and st.first_t_ns is not None and frame.t_host_ns - st.first_t_ns >= cfg.duration_s * 1e9:
                self._stop.set("duration")  # the session holds frames within [0, duration)
                return
            # Duplicates: the same sequence number again or, for cameras without one, a
            # timestamp that did not advance. Gaps: sequence numbers skipped by the driver.
            if frame.seq is not None and last_seq is not None:
                if frame.seq == last_seq:
                    self._duplicates += 1
                elif frame.seq > last_seq + 1:
                    self._seq_gaps += 1
                    self._seq_missing += frame.seq - last_seq - 1
            elif frame.seq is None and last_t is not None and frame.t_host_ns <= last_t:
                self._duplicates += 1
            last_seq, last_t = frame.seq, frame.t_host_ns
            st.acquired += 1
            st.first_t_ns = frame.t_host_ns if st.first_t_ns is None else st.first_t_ns
            st.last_t_ns = frame.t_host_ns
            self.latest_frame = frame
            try:
                self._cam_q.put_nowait(frame)
                st.high_water = max(st.high_water, self._cam_q.qsize())
            except queue.Full:
                st.dropped += 1
            if cfg.max_frames is not None and st.acquired >= cfg.max_frames:
                self._stop.set("frames")

    def _reconnect_camera(self, why: str) -> bool:
        """Keep reconnecting for ``reconnect_s``; False (and a stop) if it never comes back."""
        self._writer_event("camera", "lost", why)
        deadline = time.monotonic() + self.config.reconnect_s
        delay = 0.05
        while not self._stop and time.monotonic() < deadline:
            try:
                self.camera.reconnect()
                self._reconnects += 1
                self._writer_event("camera", "back", f"reconnected after: {why}")
                return True
            except SourceError as e:
                why = str(e)
            self._stop.event.wait(delay)
            delay = min(delay * 2, 1.0)
        if not self._stop:
            self._stop.set(f"camera lost: {why}")
        return False

    def _consume(self, q: queue.Queue, handle: Callable, skipped: Callable | None = None) -> None:
        """A writer thread's loop: ``handle`` each item of ``q`` until its sentinel
        (None), flushing the logs whenever the queue is idle. Once the disk refuses a
        write, stop the capture and pass the rest to ``skipped`` (don't retry each one)."""
        failed = False
        while True:
            try:
                item = q.get(timeout=self.config.flush_every_s)
            except queue.Empty:
                self._writer.flush()
                continue
            if item is None:
                return
            if not failed:
                try:
                    handle(item)
                    continue
                except OSError as e:
                    failed = True
                    self._stop.set(f"disk: {e.strerror or e} ({self.out})")
            if skipped is not None:
                skipped(item)

    def _write_frames(self) -> None:
        cfg, st = self.config, self.cam_stats
        ext = ".jpg" if cfg.image_format == "jpg" else ".png"
        params = [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality] if cfg.image_format == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]

        def write(frame: CameraFrame) -> None:
            ok, enc = cv2.imencode(ext, frame.image, params)
            if not ok:
                raise RuntimeError(f"cv2.imencode({ext}) failed for a {frame.image.shape} frame")
            data = enc.tobytes()
            self._writer.add_frame(data, frame.t_host_ns, seq=frame.seq if frame.seq is not None else st.written, t_device_ns=frame.t_device_ns)
            st.written += 1
            self._bytes += len(data)

        def drop(_frame) -> None:
            st.dropped += 1

        self._consume(self._cam_q, write, drop)

    def _emit(self, item) -> None:
        """Called by the tracker source on its own thread: queue, never block."""
        try:
            self._trk_q.put_nowait(item)
            self.trk_stats.high_water = max(self.trk_stats.high_water, self._trk_q.qsize())
        except queue.Full:
            if isinstance(item, TrackerFrame):
                self.trk_stats.dropped += 1

    def _write_tracker(self) -> None:
        def write(item) -> None:
            if isinstance(item, ClockBracket):
                self._clock.add(item.h0_ns, item.device_us, item.h1_ns)
                self._writer.add_clock_sample(item.h0_ns, item.device_us, item.h1_ns)
            elif isinstance(item, TrackerFrame):
                self._tracker_frame(item)
            elif isinstance(item, TrackerEvent):
                self._tracker_event(item)

        self._consume(self._trk_q, write)
        if self._tracker_lost_since is not None:  # lost until the end
            self._tracker_gaps.append([self._tracker_lost_since, None])

    def _tracker_frame(self, f: TrackerFrame) -> None:
        st = self.trk_stats
        if self._tracker_lost_since is not None:  # frames again: the tracker is back
            self._tracker_event(TrackerEvent(f.t_arrival_ns, "back", "tracking frames again"))
        if len(self._clock):
            t_host = self._clock.to_host_ns(f.t_device_us)
        else:  # no bracket yet (a source that broke its promise): arrival time, counted
            t_host = f.t_arrival_ns
            self._no_bracket_frames += 1
        self._writer.add_tracker_frame(
            frame_id=f.frame_id, t_device_us=f.t_device_us, t_host_ns=t_host, t_arrival_ns=f.t_arrival_ns, framerate=f.framerate, hands=f.hands
        )
        st.acquired += 1
        st.written += 1
        st.first_t_ns = t_host if st.first_t_ns is None else st.first_t_ns
        st.last_t_ns = t_host
        self._tracker_hands += bool(f.hands)
        self.latest_hands = f.hands

    def _tracker_event(self, e: TrackerEvent) -> None:
        if e.kind == "lost" and self._tracker_lost_since is None:
            self._tracker_lost_since = e.t_host_ns
        elif e.kind == "back" and self._tracker_lost_since is not None:
            self._tracker_gaps.append([self._tracker_lost_since, e.t_host_ns])
            self._tracker_lost_since = None
        elif e.kind == "back":
            return  # back without having been lost: nothing to record
        elif e.kind == "error":
            self.trk_stats.errors += 1
        self._writer_event("tracker", e.kind, e.detail, e.t_host_ns)

    def _writer_event(self, source: str, kind: str, detail: str, t_host_ns: int | None = None) -> None:
        if self._writer is not None:
            try:
                self._writer.add_event(source, kind, detail, t_host_ns if t_host_ns is not None else time.monotonic_ns())
            except OSError:
                pass  # the disk is failing; the stop reason says so

    # ------------------------------------------------------------------ signals
    def _install_signals(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def on_signal(signum, _frame):
            self._stop.set("user (Ctrl-C)" if signum == signal.SIGINT else "SIGTERM")

        return {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _restore_signals(old: dict) -> None:
        for s, h in old.items():
            signal.signal(s, h)

    # ------------------------------------------------------------------ summary
    def _summary(self, reason: str, status: str, wall_s: float) -> dict:
        cam, trk = self.cam_stats, self.trk_stats
        return {
            "status": status,
            "stop_reason": reason,
            "wall_s": round(wall_s, 3),
            "camera": {
                "frames": cam.written,
                "acquired": cam.acquired,
                "dropped_queue_full": cam.dropped,
                "fps": _r(cam.rate()),
                "fps_wall": _r(cam.acquired / wall_s if wall_s > 0 else None),
                "sequence_gaps": self._seq_gaps,
                "frames_missing_in_gaps": self._seq_missing,
                "duplicates": self._duplicates,
                "queue_size": self.config.camera_queue,
                "queue_high_water": cam.high_water,
                "read_failures": cam.errors,
                "reconnects": self._reconnects,
            },
            "tracker": {
                "frames": trk.written,
                "frames_with_hand": self._tracker_hands,
                "dropped_queue_full": trk.dropped,
                "hz": _r(trk.rate()),
                "hz_wall": _r(trk.acquired / wall_s if wall_s > 0 else None),
                "queue_size": self.config.tracker_queue,
                "queue_high_water": trk.high_water,
                "errors": trk.errors,
                "lost_intervals_ns": self._tracker_gaps,
                "frames_without_clock_bracket": self._no_bracket_frames,
                "clock": self._clock.state(),
            },
            "bytes_written": self._bytes,
        }


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 3)


def progress_line(p) -> str:
    """One status line of a capture's progress (what ``on_progress`` gets): time, frames,
    rates, drops, queues, bytes written, and whether the tracker lost the hand."""
    c, t = p.camera, p.tracker
    lost = "  TRACKER LOST" if p.tracker_lost else ""
    return (
        f"{p.wall_s:6.1f} s  camera {c.written} frames {c.rate() or 0.0:5.1f} fps (drops {c.dropped}, queue {p.camera_queue}, max {c.high_water})  "
        f"tracker {t.written} frames {t.rate() or 0.0:5.1f} Hz (drops {t.dropped}, queue {p.tracker_queue})  {p.bytes_written / 1e6:.1f} MB{lost}"
    )


def summary_lines(summary: dict) -> list[str]:
    """The end-of-run summary, as lines for a terminal."""
    c, t = summary["camera"], summary["tracker"]
    fmt = lambda v, unit: "n/a" if v is None else f"{v:.1f} {unit}"  # noqa: E731
    lines = [
        f"stopped: {summary['stop_reason']} -> {summary['status']} after {summary['wall_s']:.1f} s",
        f"camera: {c['frames']} frames written, {fmt(c['fps'], 'fps')} by timestamps ({fmt(c['fps_wall'], 'fps')} wall), "
        f"{c['dropped_queue_full']} dropped (queue full), {c['sequence_gaps']} sequence gaps ({c['frames_missing_in_gaps']} frames), "
        f"{c['duplicates']} duplicates, queue high-water {c['queue_high_water']}/{c['queue_size']}, {c['reconnects']} reconnects",
        f"tracker: {t['frames']} frames ({t['frames_with_hand']} with a hand), {fmt(t['hz'], 'Hz')} by timestamps, "
        f"{t['dropped_queue_full']} dropped, queue high-water {t['queue_high_water']}/{t['queue_size']}, "
        f"{len(t['lost_intervals_ns'])} losses, {t['errors']} errors",
        f"written: {summary['bytes_written'] / 1e6:.1f} MB of frames",
    ]
    return lines
