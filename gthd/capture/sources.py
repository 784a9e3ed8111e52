"""The two small interfaces every capture source implements: one for cameras, one for
trackers. The capture engine (``engine.py``) only ever talks to these.

Clocks (docs/conventions.md): a source stamps what it delivers on the host clock
(``time.monotonic_ns()``) the moment it arrives; simulated sources stamp on their virtual
host clock instead, so a simulated session carries the simulator's timeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Union

import numpy as np


class SourceError(RuntimeError):
    """A source cannot open, or failed while running. The message is one clear line for
    the user (what failed and what to do), e.g. "no camera at index 3 (cv2.VideoCapture
    could not open it); list cameras with `v4l2-ctl --list-devices`"."""


@dataclass
class CameraFrame:
    """One camera frame as it arrived.

    Attributes:
        image: (H, W, 3) uint8 BGR.
        t_host_ns: host clock when ``read`` got it (stamped right after the driver returned).
        seq: the camera's own sequence number if it has one (a gap means a dropped frame),
            else None and the engine numbers frames in arrival order.
        t_device_ns: the camera's own timestamp, if the driver gives one.
    """

    image: np.ndarray
    t_host_ns: int
    seq: int | None = None
    t_device_ns: int | None = None


class CameraSource(Protocol):
    """A camera. The engine calls ``open`` once, then ``read`` in a loop on a thread of
    its own, ``reconnect`` after a failed read, and ``close`` at the end."""

    def open(self) -> dict:
        """Open the device and return its description for the session manifest:
        ``source`` (str), ``width``, ``height`` (actual), ``fps_requested``, ``fps_actual``,
        ``fourcc`` (str, actual), and anything else worth recording. Raises
        :class:`SourceError` with a clear message when it cannot."""
        ...

    def read(self) -> CameraFrame | None:
        """Block until the next frame arrives and return it; None at the end of a finite
        stream (a video file, a finished simulation). Raises :class:`SourceError` when a
        read fails (the engine then calls :meth:`reconnect`)."""
        ...

    def reconnect(self) -> None:
        """Try once to reopen after a failure; raise :class:`SourceError` if it cannot."""
        ...

    def close(self) -> None: ...


@dataclass
class TrackerFrame:
    """One tracking frame, copied out of the tracker's buffers.

    Attributes:
        frame_id: the tracker's frame id (LeapC ``tracking_frame_id``).
        t_device_us: the tracker's timestamp, µs on its own clock (LeapC ``timestamp``:
            the time of the device's image).
        t_arrival_ns: host clock when the frame reached us.
        framerate: the rate the tracker reports.
        hands: dicts with ``id`` (int), ``type`` ("left"/"right"), ``confidence`` (float),
            ``joints`` ((21, 3) float64 mm in the ``leap`` frame, gthd's joint order:
            :func:`gthd.hand.joints_from_leap_hand`), ``palm`` ((3,) mm).
    """

    frame_id: int
    t_device_us: int
    t_arrival_ns: int
    framerate: float
    hands: list[dict] = field(default_factory=list)


@dataclass
class ClockBracket:
    """A reading of the tracker's clock between two host readings:
    ``h0 = monotonic_ns(); device = get_now(); h1 = monotonic_ns()``."""

    h0_ns: int
    device_us: int
    h1_ns: int


@dataclass
class TrackerEvent:
    """Something that happened to the tracker: ``kind`` is one of "connected",
    "device" (a device was found; ``detail`` names its serial), "lost" (service or
    device lost: tracking frames stop), "back" (it returned), "error" (an exception on
    the tracker's thread; ``detail`` is its message)."""

    t_host_ns: int
    kind: str
    detail: str = ""


TrackerItem = Union[TrackerFrame, ClockBracket, TrackerEvent]
Emit = Callable[[TrackerItem], None]


class TrackerSource(Protocol):
    """A hand tracker. The engine calls ``open`` once, then ``start(emit)``; the source
    delivers its items by calling ``emit`` from a thread of its own (never blocking: emit
    only queues). It also emits a :class:`ClockBracket` about every half second (and one
    before its first frame) so that the engine can map device time to host time."""

    def open(self) -> dict:
        """Connect and return the tracker's description for the session manifest:
        ``kind`` ("ultraleap", "simulated", "replay"), ``serial``, ``tracking_mode``,
        ``clock`` ("leapc_us"). Raises :class:`SourceError` with a clear message when it
        cannot (no service, wrong ``leap`` package, no device)."""
        ...

    def start(self, emit: Emit) -> None:
        """Start delivering items through ``emit`` (returns at once)."""
        ...

    def finished(self) -> bool:
        """True when a finite source (a replay, a simulation) has delivered everything.
        Finite sources also have a class attribute ``finite = True``: when the camera's
        stream ends, the engine waits a moment for them to finish."""
        ...

    def stop(self) -> None:
        """Stop delivering and release the device; after it returns, ``emit`` is not
        called again."""
        ...


def open_sources(
    camera_spec: str, tracker_spec: str, *, size: tuple[int, int] = (640, 480), fps: float = 30.0, fourcc: str = "MJPG", tracking_mode: str = "desktop"
) -> tuple[CameraSource, TrackerSource | None]:
    """The camera and tracker ``gthd capture --camera ... --tracker ...`` names (not yet
    opened): a camera index (``0`` or ``camera:0``), a video file or a stream URL; the
    tracker ``ultraleap``, a ``FILE.lmt`` recording replayed in real time, or ``none``.
    (The simulated rig plugs in from outside: :mod:`gthd.sim.sources`.)

    Raises:
        ValueError: an unknown tracker, a malformed camera.
    """
    from ..media import parse_source
    from .opencv_camera import OpenCVCamera

    cam = OpenCVCamera(parse_source(camera_spec), width=size[0], height=size[1], fps=fps, fourcc=fourcc, realtime_file=True)
    if tracker_spec == "none":
        return cam, None
    if tracker_spec == "ultraleap":
        from .ultraleap import UltraleapTracker

        return cam, UltraleapTracker(tracking_mode=tracking_mode)
    if tracker_spec.endswith(".lmt"):
        from .ultraleap import LeapRecordingTracker

        return cam, LeapRecordingTracker(tracker_spec, realtime=True)
    raise ValueError(f"unknown tracker {tracker_spec!r}: use ultraleap, a FILE.lmt recording, sim or none")
