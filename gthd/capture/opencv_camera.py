"""Cameras through ``cv2.VideoCapture``: webcams by index (or ``/dev/videoN``), video
files, and stream URLs (rtsp://, http://, ...), behind the :class:`CameraSource`
interface of ``sources.py``.

Clocks (docs/conventions.md): every frame is stamped with ``time.monotonic_ns()`` right
after ``cv2.VideoCapture.read`` returns it (``t_host_ns``). ``t_device_ns`` carries
``CAP_PROP_POS_MSEC`` when it means something: a file's presentation time (frame 0 is at
0 ns), a stream's timestamp when positive, a device's when positive and increasing (on
Linux the V4L2 backend reports the driver's buffer time there).

Example (:func:`gthd.media.parse_source` reads a camera's spelling on a command line)::

    cam = OpenCVCamera(parse_source("0"), width=1280, height=720, fps=30)
    info = cam.open()           # {"source": "0", "kind": "device", "width": 1280, ...}
    frame = cam.read()          # CameraFrame(image=(720, 1280, 3) uint8 BGR, ...)
    cam.close()
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from .sources import CameraFrame, SourceError

log = logging.getLogger(__name__)

#: Reads tried in ``open`` before a device or stream that opened is declared silent
#: (some drivers return no frame for the first read or two after opening).
_OPEN_READ_TRIES = 5


def source_kind(source: int | str) -> str:
    """What a source is: "device" (an index or ``/dev/video*``), "stream" (a URL with a
    scheme other than ``file``), or "file" (a path, or a printf image pattern such as
    ``frames/%04d.png``)."""
    if isinstance(source, (int, np.integer)):
        return "device"
    if sys.platform.startswith("linux") and str(source).startswith("/dev/video"):
        return "device"
    scheme = urlsplit(str(source)).scheme.lower()
    if "://" in str(source) and scheme and scheme != "file":
        return "stream"
    return "file"


def fourcc_to_str(value: float) -> str:
    """Decode a ``CAP_PROP_FOURCC`` value (a float holding 4 little-endian bytes) to its
    4-character code, e.g. 1196444237.0 -> "MJPG". Returns "" when the backend reports
    none (0, NaN, or bytes that are not printable ASCII)."""
    if value is None or not math.isfinite(value) or value <= 0:
        return ""
    raw = int(value).to_bytes(4, "little", signed=False) if int(value) < 2**32 else b""
    text = raw.rstrip(b"\0").decode("ascii", errors="replace")
    return text if text and all(32 <= ord(c) < 127 for c in text) else ""


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Any image a backend may return, as (H, W, 3) uint8 BGR.

    Accepts (H, W) or (H, W, 1) grayscale, (H, W, 3) BGR, (H, W, 4) BGRA, in uint8 or
    uint16 (scaled down by 256). Raises :class:`SourceError` for anything else."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.dtype != np.uint8:
        raise SourceError(f"camera delivered {image.dtype} pixels; expected uint8 or uint16")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    raise SourceError(f"camera delivered an image of shape {tuple(image.shape)}; expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)")


def redact(source: int | str) -> str:
    """``str(source)`` with any password in a URL replaced by ``***``, so that session
    manifests and error messages never carry credentials
    ("rtsp://admin:secret@cam/live" -> "rtsp://admin:***@cam/live")."""
    text = str(source)
    if source_kind(source) != "stream":
        return text
    parts = urlsplit(text)
    if parts.password is None:
        return text
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def resolve_backend(backend: int | str | None) -> int:
    """A ``cv2.CAP_*`` API id from an id, a name ("V4L2", "msmf", "CAP_DSHOW", ...), or
    None (``cv2.CAP_ANY``: let OpenCV choose). Raises :class:`SourceError` when the name
    is unknown or the backend is not in this OpenCV build."""
    if backend is None:
        return cv2.CAP_ANY
    if isinstance(backend, str):
        name = backend.strip().upper()
        name = name if name.startswith("CAP_") else "CAP_" + name
        if not isinstance(getattr(cv2, name, None), int):
            raise SourceError(f"unknown OpenCV video backend {backend!r}; available: {', '.join(available_backends())}")
        api = getattr(cv2, name)
    else:
        api = int(backend)
    if api != cv2.CAP_ANY and not cv2.videoio_registry.hasBackend(api):
        raise SourceError(f"video backend {cv2.videoio_registry.getBackendName(api)} is not in this OpenCV build; available: {', '.join(available_backends())}")
    return api


def available_backends() -> list[str]:
    """Names of the video backends this OpenCV build can use, e.g. ["FFMPEG", "V4L2"]."""
    names = [cv2.videoio_registry.getBackendName(b) for b in cv2.videoio_registry.getBackends() if cv2.videoio_registry.hasBackend(b)]
    return list(dict.fromkeys(names))


@contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log (the WARN lines it prints for every index that does not
    open) for the duration of the block, then restore the previous level."""
    logging_mod = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_mod is None or not hasattr(logging_mod, "setLogLevel"):
        # Old builds: the environment variable is read when OpenCV logs first; best effort.
        old = os.environ.get("OPENCV_LOG_LEVEL")
        os.environ["OPENCV_LOG_LEVEL"] = "SILENT"
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("OPENCV_LOG_LEVEL", None)
            else:
                os.environ["OPENCV_LOG_LEVEL"] = old
        return
    previous = logging_mod.getLogLevel()
    logging_mod.setLogLevel(logging_mod.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging_mod.setLogLevel(previous)


def _positive(value: float) -> float | None:
    """A property value as float, or None when the backend reports nothing usable."""
    return float(value) if value is not None and math.isfinite(value) and value > 0 else None


class OpenCVCamera:
    """A camera read through ``cv2.VideoCapture`` (implements ``CameraSource``).

    Args:
        source: a device index (int), a video file path, a ``/dev/videoN`` node, or a
            stream URL. Use :func:`gthd.media.parse_source` on command-line text.
        width, height: the frame size to request from a device, pixels (None: the
            driver's default). Files and streams deliver their own size.
        fps: the rate to request from a device, frames/s; also the pace of a file with
            ``realtime_file`` when the file does not say its own rate.
        fourcc: the pixel format to request from a device, 4 characters ("MJPG" lets
            USB webcams reach 30 fps at 720p and above; "YUYV" is uncompressed). None or
            "" leaves the driver's choice.
        backend: a ``cv2.CAP_*`` id or name ("V4L2", "MSMF", "DSHOW", "AVFOUNDATION",
            "FFMPEG"); None lets OpenCV choose.
        realtime_file: pace a video file at its frame rate (``read`` sleeps until each
            frame is due), so that it can stand in for a live camera. Without it a file
            is read as fast as it decodes.
        stream_timeout_s: open and read timeouts for streams, seconds (backends that
            support ``CAP_PROP_OPEN_TIMEOUT_MSEC`` / ``CAP_PROP_READ_TIMEOUT_MSEC``).

    ``open``, ``read``, ``reconnect`` and ``close`` are safe to call from different
    threads (one lock guards the capture); ``read`` itself is meant for one thread.
    """

    def __init__(
        self,
        source: int | str,
        width: int | None = 640,
        height: int | None = 480,
        fps: float = 30.0,
        fourcc: str | None = "MJPG",
        backend: int | str | None = None,
        realtime_file: bool = False,
        stream_timeout_s: float = 10.0,
    ):
        if isinstance(source, os.PathLike):
            source = os.fspath(source)
        if isinstance(source, str) and source.strip().isdigit():
            source = int(source.strip())
        if isinstance(source, (int, np.integer)):
            source = int(source)
            if source < 0:
                raise ValueError(f"camera index must be >= 0, got {source}")
        if fourcc and len(fourcc) != 4:
            raise ValueError(f"fourcc must be 4 characters such as 'MJPG', got {fourcc!r}")
        for name, v in (("width", width), ("height", height)):
            if v is not None and int(v) <= 0:
                raise ValueError(f"{name} must be positive, got {v}")
        if not (fps > 0 and math.isfinite(fps)):
            raise ValueError(f"fps must be positive, got {fps}")
        self.source = source
        self.kind = source_kind(source)
        self.width = None if width is None else int(width)
        self.height = None if height is None else int(height)
        self.fps = float(fps)
        self.fourcc = fourcc or None
        self.backend = backend
        self.realtime_file = bool(realtime_file)
        self.stream_timeout_s = float(stream_timeout_s)
        #: The description from the last successful ``open``/``reconnect``.
        self.info: dict | None = None

        self._cap: cv2.VideoCapture | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()  # set by close(): wakes a pacing sleep
        self._pending: CameraFrame | None = None  # the frame open() read, not yet delivered
        self._eof = False
        self._n_read = 0  # device/stream frames delivered: next seq
        self._last_file_seq = -1  # last file frame delivered
        self._last_device_ms = 0.0  # last positive device POS_MSEC
        self._frame_count = 0  # frames the file's header announces (0: unknown)
        self._file_fps: float | None = None
        self._pace_anchor: tuple[int, int] | None = None  # (seq, monotonic ns) for pacing

    # ------------------------------------------------------------------ public API

    def open(self) -> dict:
        """Open the source, apply the requested settings (devices), read one frame to
        learn the real size, and return the description for the session manifest:
        ``source`` (str, password redacted), ``kind`` ("device"|"file"|"stream"),
        ``backend`` (OpenCV's name, e.g. "V4L2", "FFMPEG"), ``width``, ``height`` (pixels,
        of the frames actually delivered), ``width_reported``/``height_reported`` (what
        the driver claims), ``fps_requested`` (None unless a device), ``fps_actual``
        (frames/s as reported, None if unknown), ``fourcc_requested``, ``fourcc`` (str,
        actual, "" if unknown), plus ``frame_count`` for files.

        Raises :class:`SourceError` with one clear line when the source cannot be opened
        or delivers no frame."""
        with self._lock:
            self._release_locked()
            self._closed.clear()
            self._eof = False
            self._n_read = 0
            self._last_file_seq = -1
            self._last_device_ms = 0.0
            self._pace_anchor = None
            self.info = self._open_locked(resume_at=None)
            return dict(self.info)

    def read(self) -> CameraFrame | None:
        """Block until the next frame and return it: ``image`` (H, W, 3) uint8 BGR,
        ``t_host_ns`` (``time.monotonic_ns()`` right after the driver returned it; for a
        paced file, when it became due), ``seq`` (devices and streams: frames delivered
        since ``open``, from 0; files: the frame's number in the file), ``t_device_ns``
        (see the module docstring).

        Returns None at the end of a video file (or after ``close``). Raises
        :class:`SourceError` when a device or stream read fails."""
        frame = self._next_frame()
        if frame is None or not (self.kind == "file" and self.realtime_file):
            return frame
        return self._pace(frame)

    def reconnect(self) -> None:
        """Release and reopen with the same settings, once, without waiting (the engine
        decides how long to keep trying). A file resumes after the last frame delivered,
        so ``seq`` carries on; a device or stream keeps counting ``seq`` from where it
        was. Raises :class:`SourceError` if it cannot reopen."""
        with self._lock:
            self._release_locked()
            self._pending = None
            self._closed.clear()
            self._eof = False
            self._pace_anchor = None
            resume = self._last_file_seq + 1 if self.kind == "file" else None
            previous = self.info
            self.info = self._open_locked(resume_at=resume)
            if previous and (previous["width"], previous["height"]) != (self.info["width"], self.info["height"]):
                log.warning(
                    "camera %s came back at %dx%d (was %dx%d)",
                    self.info["source"],
                    self.info["width"],
                    self.info["height"],
                    previous["width"],
                    previous["height"],
                )

    def close(self) -> None:
        """Release the capture. Safe to call twice, or before ``open``."""
        self._closed.set()
        with self._lock:
            self._release_locked()
            self._pending = None

    def __enter__(self) -> OpenCVCamera:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OpenCVCamera({redact(self.source)!r}, kind={self.kind!r})"

    # ------------------------------------------------------------------ internals

    def _describe(self) -> str:
        """The source as the user named it, for messages."""
        if self.kind == "device" and isinstance(self.source, int):
            return f"camera at index {self.source}"
        if self.kind == "device":
            return f"camera {self.source}"
        if self.kind == "file":
            return f"video file {self.source}"
        return f"stream URL {redact(self.source)}"

    def _open_failure(self, api: int, detail: str = "cv2.VideoCapture could not open it") -> SourceError:
        via = "" if api == cv2.CAP_ANY else f" with backend {cv2.videoio_registry.getBackendName(api)}"
        if self.kind == "device" and isinstance(self.source, int):
            hint = "is it plugged in and not in use by another program? list cameras with `v4l2-ctl --list-devices` (Linux)"
            return SourceError(f"no camera at index {self.source}{via} ({detail}); {hint}")
        if self.kind == "device":
            return SourceError(f"cannot open camera {self.source}{via} ({detail}); is it plugged in and not in use by another program?")
        if self.kind == "file":
            return SourceError(f"cannot read video file {self.source}{via} ({detail})")
        return SourceError(f"cannot open stream URL {redact(self.source)}{via} ({detail}); check the address, the network and the credentials")

    def _open_locked(self, resume_at: int | None) -> dict:
        """Open ``self._cap`` and read the first frame into ``self._pending``; returns the
        description. ``resume_at``: for files, the frame number to seek to first."""
        api = resolve_backend(self.backend)
        if self.kind == "file" and "%" not in str(self.source) and not os.path.isfile(self.source):
            raise self._open_failure(api, "no such file")
        params: list[int] = []
        if self.kind == "stream" and hasattr(cv2, "CAP_PROP_OPEN_TIMEOUT_MSEC"):
            ms = max(1, int(self.stream_timeout_s * 1000))
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        try:
            cap = cv2.VideoCapture(self.source, api, params) if params else cv2.VideoCapture(self.source, api)
        except cv2.error as e:  # some backends throw instead of failing quietly
            raise self._open_failure(api, f"OpenCV error: {str(e).strip().splitlines()[-1]}") from e
        if not cap.isOpened():
            cap.release()
            raise self._open_failure(api)
        self._cap = cap

        if self.kind == "device":
            # FOURCC first: many webcams only offer large sizes or high rates in MJPG,
            # and V4L2 applies width/height against the current pixel format.
            if self.fourcc:
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.fourcc))
            if self.width is not None:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            if self.height is not None:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_FPS, self.fps)

        if self.kind == "file":
            self._frame_count = int(_positive(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 0)
            self._file_fps = _positive(cap.get(cv2.CAP_PROP_FPS))
            if resume_at:
                cap.set(cv2.CAP_PROP_POS_FRAMES, resume_at)

        info = {
            "source": redact(self.source),
            "kind": self.kind,
            "backend": cap.getBackendName(),
            "width": None,  # filled from the first frame below
            "height": None,
            "width_reported": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
            "height_reported": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
            "fps_requested": self.fps if self.kind == "device" else None,
            "fps_actual": _positive(cap.get(cv2.CAP_PROP_FPS)),
            "fourcc_requested": self.fourcc if self.kind == "device" else None,
            "fourcc": fourcc_to_str(cap.get(cv2.CAP_PROP_FOURCC)),
        }
        if self.kind == "file":
            info["frame_count"] = self._frame_count or None
            info["realtime"] = self.realtime_file

        # Drivers lie about the size (and some return nothing for the first reads): the
        # first real frame decides. It is kept and delivered by the first read().
        tries = 1 if self.kind == "file" else _OPEN_READ_TRIES
        frame = None
        for _ in range(tries):
            frame = self._read_locked()
            if frame is not None:
                break
        if frame is None:
            if self.kind == "file" and resume_at:
                self._eof = True  # reopened past the last frame: nothing left to deliver
                previous = self.info or {}
                info["width"] = previous.get("width", info["width_reported"])
                info["height"] = previous.get("height", info["height_reported"])
                return info
            self._release_locked()
            what = "opened, but no frame could be decoded" if self.kind == "file" else "opened, but delivered no frame"
            raise self._open_failure(api, what)
        self._pending = frame
        info["height"], info["width"] = frame.image.shape[:2]
        return info

    def _read_locked(self) -> CameraFrame | None:
        """One ``cap.read()``, stamped and numbered; None if it returned no frame. Does
        not advance the device counter (the caller delivers the frame or not)."""
        cap = self._cap
        if cap is None:
            return None
        try:
            ok, image = cap.read()
        except cv2.error:
            ok, image = False, None
        t_host_ns = time.monotonic_ns()
        if not ok or image is None or image.size == 0:
            return None
        image = as_bgr(image)
        msec = cap.get(cv2.CAP_PROP_POS_MSEC)
        t_device_ns = None
        if self.kind == "file":
            seq = round(cap.get(cv2.CAP_PROP_POS_FRAMES)) - 1
            if math.isfinite(msec) and msec >= 0:  # frame 0 sits at 0 ms: a real time
                t_device_ns = round(msec * 1e6)
        else:
            seq = None  # numbered on delivery
            # devices: only a positive, increasing value is taken for a device clock
            if math.isfinite(msec) and msec > 0 and (self.kind == "stream" or msec > self._last_device_ms):
                t_device_ns = round(msec * 1e6)
                self._last_device_ms = msec
        return CameraFrame(image=image, t_host_ns=t_host_ns, seq=seq, t_device_ns=t_device_ns)

    def _next_frame(self) -> CameraFrame | None:
        """The pending frame from ``open``, else a fresh read; numbered and checked."""
        with self._lock:
            if self._closed.is_set():
                return None
            if self._cap is None:
                raise SourceError(f"{self._describe()} is not open (call open() first)")
            if self._pending is not None:
                frame, self._pending = self._pending, None
            elif self._eof:
                return None
            else:
                frame = self._read_locked()
            if frame is None:
                if self.kind == "file":
                    self._eof = True
                    delivered = self._last_file_seq + 1
                    if self._frame_count and delivered < self._frame_count:
                        log.warning(
                            "video file %s ended at frame %d of the %d its header announces (truncated or damaged?)", self.source, delivered, self._frame_count
                        )
                    return None
                raise SourceError(f"camera read failed: {self._describe()} returned no frame (unplugged, or the stream stopped?)")
            if self.kind == "file":
                self._last_file_seq = frame.seq
            else:
                frame.seq = self._n_read
                self._n_read += 1
            return frame

    def _pace(self, frame: CameraFrame) -> CameraFrame | None:
        """Hold a file frame until it is due at the file's rate, then stamp it as if it
        had just arrived. A frame that is already late goes out at once and re-anchors
        the schedule (a live camera does not burst to catch up)."""
        fps = self._file_fps or self.fps
        now = time.monotonic_ns()
        if self._pace_anchor is None:
            self._pace_anchor = (frame.seq, now)
        seq0, t0 = self._pace_anchor
        due = t0 + round((frame.seq - seq0) * 1e9 / fps)
        if due > now:
            if self._closed.wait((due - now) / 1e9):
                return None
        elif now - due > 1e9 / fps:
            self._pace_anchor = (frame.seq, now)
        frame.t_host_ns = time.monotonic_ns()
        return frame

    def _release_locked(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def list_cameras(max_index: int = 10, backend: int | str | None = None) -> list[dict]:
    """Probe device indices 0 .. max_index-1 quietly and describe the ones that open:
    ``index``, ``backend`` (name), ``width``, ``height`` (of a frame actually read, else
    as reported), ``fps`` (reported, None if unknown), ``fourcc`` (str), ``delivers``
    (whether a frame could be read). For ``gthd capture --list-cameras``."""
    api = resolve_backend(backend)
    found = []
    with quiet_opencv():
        for index in range(max_index):
            try:
                cap = cv2.VideoCapture(index, api)
            except cv2.error:
                continue
            try:
                if not cap.isOpened():
                    continue
                ok, image = cap.read()
                if ok and image is not None and image.size:
                    height, width = image.shape[:2]
                else:
                    width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
                    height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
                found.append(
                    {
                        "index": index,
                        "backend": cap.getBackendName(),
                        "width": int(width),
                        "height": int(height),
                        "fps": _positive(cap.get(cv2.CAP_PROP_FPS)),
                        "fourcc": fourcc_to_str(cap.get(cv2.CAP_PROP_FOURCC)),
                        "delivers": bool(ok),
                    }
                )
            finally:
                cap.release()
    return found
