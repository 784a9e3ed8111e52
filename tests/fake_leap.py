"""A stand-in for Ultraleap's ``leap`` package (``ultraleap/leapc-python-bindings``,
``leapc-python-api/src/leap``) for tests: install it with
``monkeypatch.setitem(sys.modules, "leap", fake_leap)``.

It copies the real package's shapes and behaviour where gthd depends on them:

- ``Connection(*, ..., poll_timeout=1)``: ``add_listener``, ``open(*, auto_poll=True,
  timeout=10)`` (a context manager that starts a polling thread and, like the real one,
  waits up to ``timeout`` for a connection event, raising ``LeapTimeoutError`` without
  one), ``set_tracking_mode(mode)`` (reads ``mode.value``).
- The polling thread calls ``listener.on_event(event)``, which dispatches on
  ``event.type`` to the ``on_*`` methods; an exception from a listener is caught (the real
  one prints it; here it is recorded in ``Scenario.escaped``); while nothing arrives,
  ``listener.on_error(LeapTimeoutError())`` is called, as LeapPollConnection times out.
- Events and hands carry exactly the attributes the real ones have that gthd is told
  about (``__slots__``): any other name raises AttributeError. Tracking events' hands
  live in one buffer that is overwritten with junk (NaN, id -1, the other hand type)
  after every callback, as LeapC reuses its message buffer.
- ``DeviceEvent.device.open()`` (context manager) then ``device.get_info().serial``, which
  is junk, as in the real bindings: they hand LeapC a serial buffer that cffi has already
  freed. The serial to use comes from ``get_server_status(timeout)``: ``{"version": str,
  "devices": [{"serial": str, "type": str}, ...]}``, the devices attached at the time.
- Hands' ``confidence`` is 1.0 by default, as LeapC documents it (unused).
- ``get_now()``: the LeapC clock, µs, an offset plus drift of ``time.monotonic_ns()``.
- ``Recording(fpath: str, mode="r")``: opened by ``with`` (``__enter__``), then iterated
  for TrackingEvents. The fake's ``.lmt`` file is JSON written by :func:`write_recording`.

Tests script a :class:`Scenario` (service or not, device serial, a list of steps built
with :func:`track`, :func:`connection_lost`, ...) and install it with :func:`use`.
"""

from __future__ import annotations

import enum
import json
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np


# --------------------------------------------------------------------------- exceptions
class LeapError(Exception):
    pass


class LeapTimeoutError(LeapError):
    pass


class LeapNotConnectedError(LeapError):
    pass


class LeapUnknownError(LeapError):
    pass


class LeapInvalidArgumentError(LeapError):
    pass


class LeapCannotOpenDeviceError(LeapError):
    pass


class DeviceNotOpenException(LeapError):
    pass


# -------------------------------------------------------------------------------- enums
class EventType(enum.Enum):  # LeapC's eLeapEventType values
    EventTypeNone = 0x000
    Connection = 0x001
    ConnectionLost = 0x002
    Device = 0x003
    Tracking = 0x100
    DeviceLost = 0x104


class TrackingMode(enum.Enum):
    Desktop = 0
    HMD = 1
    ScreenTop = 2
    Unknown = 3


class HandType(enum.Enum):
    Left = 0
    Right = 1


# ---------------------------------------------------------------------------- data types
class Vector:
    __slots__ = ("x", "y", "z")

    def __init__(self):
        self.x = self.y = self.z = 0.0


class Bone:
    __slots__ = ("prev_joint", "next_joint", "width")

    def __init__(self):
        self.prev_joint, self.next_joint, self.width = Vector(), Vector(), 0.0


class Digit:
    __slots__ = ("bones",)  # [metacarpal, proximal, intermediate, distal]

    def __init__(self):
        self.bones = [Bone() for _ in range(4)]


class Palm:
    __slots__ = ("position",)

    def __init__(self):
        self.position = Vector()


class Hand:
    __slots__ = ("id", "type", "confidence", "palm", "arm", "digits")

    def __init__(self):
        self.id, self.type, self.confidence = 0, HandType.Left, 0.0
        self.palm, self.arm = Palm(), Bone()
        self.digits = [Digit() for _ in range(5)]  # thumb, index, middle, ring, pinky


class ConnectionEvent:
    __slots__ = ("type",)

    def __init__(self):
        self.type = EventType.Connection


class ConnectionLostEvent:
    __slots__ = ("type",)

    def __init__(self):
        self.type = EventType.ConnectionLost


FREED_SERIAL = "\x10\x8c\x7f\x00\x00LP-F\ufffd"
"""What the real ``DeviceInfo.serial`` may read: the freed buffer's bytes, not the serial."""


class DeviceInfo:
    __slots__ = ("serial",)

    def __init__(self):
        self.serial = FREED_SERIAL


class Device:
    __slots__ = ("_serial", "_open")

    def __init__(self, serial: str):
        self._serial, self._open = serial, False

    @contextmanager
    def open(self):
        if self._open:
            raise LeapCannotOpenDeviceError("Device is already open")
        self._open = True
        try:
            yield self
        finally:
            self._open = False

    def get_info(self) -> DeviceInfo:
        if not self._open:
            raise DeviceNotOpenException()
        return DeviceInfo()


class DeviceEvent:
    __slots__ = ("type", "device")

    def __init__(self, device: Device):
        self.type, self.device = EventType.Device, device


class DeviceLostEvent:
    __slots__ = ("type", "device")

    def __init__(self, device: Device):
        self.type, self.device = EventType.DeviceLost, device


class TrackingEvent:
    __slots__ = ("type", "timestamp", "tracking_frame_id", "framerate", "hands")

    def __init__(self, timestamp: int, tracking_frame_id: int, framerate: float, hands: list):
        self.type = EventType.Tracking
        self.timestamp, self.tracking_frame_id, self.framerate, self.hands = timestamp, tracking_frame_id, framerate, hands


class _BrokenTrackingEvent:
    """A tracking event whose hands cannot be read (a corrupt message)."""

    __slots__ = ("type", "timestamp", "tracking_frame_id", "framerate")

    def __init__(self, timestamp: int, tracking_frame_id: int, framerate: float):
        self.type = EventType.Tracking
        self.timestamp, self.tracking_frame_id, self.framerate = timestamp, tracking_frame_id, framerate

    @property
    def hands(self):
        raise RuntimeError("fake: corrupt tracking message")


# ------------------------------------------------------------------------------ hands
def hand_spec(id: int, side: str, base: float = 0.0, confidence: float = 1.0) -> dict:
    """Distinct numbers for every joint of a hand (so a test can tell which attribute a
    value came from).

    Returns:
        ``id``, ``type`` ("left"/"right"), ``confidence``, ``palm`` (3,), ``arm`` (2, 3)
        [prev_joint, next_joint], ``bones`` (5, 4, 2, 3) [digit, bone, prev/next, xyz],
        ``widths`` (5, 4); all mm, as nested lists.
    """
    d, b, k = np.meshgrid(np.arange(5), np.arange(4), np.arange(2), indexing="ij")
    code = base + 100.0 * d + 10.0 * b + k  # (5, 4, 2)
    bones = np.stack([code, code + 0.25, -code], axis=-1)  # (5, 4, 2, 3)
    arm = np.array([[base - 60.0, 1.5, -2.5], [base - 30.0, 3.5, -4.5]])
    return {
        "id": id,
        "type": side,
        "confidence": confidence,
        "palm": [base + 1.0, base + 2.0, base + 3.0],
        "arm": arm.tolist(),
        "bones": bones.tolist(),
        "widths": (8.0 + 0.1 * np.arange(20).reshape(5, 4)).tolist(),
    }


def _set(v: Vector, xyz) -> None:
    v.x, v.y, v.z = (float(c) for c in xyz)


def _fill_hand(hand: Hand, spec: dict) -> None:
    hand.id, hand.confidence = spec["id"], spec["confidence"]
    hand.type = HandType.Left if spec["type"] == "left" else HandType.Right
    _set(hand.palm.position, spec["palm"])
    _set(hand.arm.prev_joint, spec["arm"][0])
    _set(hand.arm.next_joint, spec["arm"][1])
    for d in range(5):
        for b in range(4):
            bone = hand.digits[d].bones[b]
            _set(bone.prev_joint, spec["bones"][d][b][0])
            _set(bone.next_joint, spec["bones"][d][b][1])
            bone.width = spec["widths"][d][b]


def _scribble(hand: Hand) -> None:
    """Overwrite a buffer hand with junk, as LeapC reuses its buffer."""
    nan = (float("nan"),) * 3
    hand.id, hand.confidence = -1, float("nan")
    hand.type = HandType.Right if hand.type == HandType.Left else HandType.Left
    for v in [hand.palm.position, hand.arm.prev_joint, hand.arm.next_joint]:
        _set(v, nan)
    for digit in hand.digits:
        for bone in digit.bones:
            _set(bone.prev_joint, nan)
            _set(bone.next_joint, nan)
            bone.width = float("nan")


def _new_hand(spec: dict) -> Hand:
    hand = Hand()
    _fill_hand(hand, spec)
    return hand


# ---------------------------------------------------------------------------- scenario
def track(*hands: dict) -> tuple:
    """Step: one tracking event with these :func:`hand_spec` hands (at the scenario's rate)."""
    return ("track", list(hands))


def broken() -> tuple:
    """Step: a tracking event whose ``hands`` raises (an exception in the callback path)."""
    return ("broken",)


def connection_lost() -> tuple:
    return ("connection_lost",)


def connection() -> tuple:
    return ("connection",)


def device_lost() -> tuple:
    return ("device_lost",)


def device(serial: str) -> tuple:
    return ("device", serial)


def leap_error() -> tuple:
    """Step: a LeapC polling error other than a timeout (``listener.on_error``)."""
    return ("leap_error",)


def pause(seconds: float) -> tuple:
    """Step: nothing arrives for a while (the poll times out meanwhile)."""
    return ("pause", seconds)


@dataclass
class Scenario:
    """What the fake service does. With ``service``, the polling thread delivers a
    connection event, then a device event if ``serial``; then it waits for ``go`` (set by
    the test once the tracker is started) and plays ``steps``; then sets ``done``.
    ``get_server_status`` lists the devices attached by then (device events, less device
    losses) plus ``other_devices``, or raises LeapTimeoutError with ``status_fails``."""

    service: bool = True
    serial: str | None = "LP-FAKE-0001"
    steps: list = field(default_factory=list)
    rate_hz: float = 200.0
    clock_offset_us: int = 7_000_000_000
    clock_drift_ppm: float = 80.0
    latency_us: int = 6_000  # a frame's timestamp is this long before it is delivered
    first_frame_id: int = 1000
    status_fails: bool = False
    other_devices: list = field(default_factory=list)  # serials of further devices the service lists
    idle_error_s: float = 0.05  # LeapPollConnection timeout while nothing arrives
    # filled in while it runs
    go: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    escaped: list = field(default_factory=list)  # exceptions that escaped a listener
    tracking_mode: TrackingMode | None = None
    threads: list = field(default_factory=list)  # the polling threads started
    delivered: list = field(default_factory=list)  # (frame_id, timestamp) of tracking events
    attached: list = field(default_factory=list)  # serials of the devices attached now

    def leap_us(self, host_ns: int) -> float:
        """The fake LeapC clock (µs) at host time ``host_ns``."""
        return self.clock_offset_us + host_ns / 1e3 * (1 + self.clock_drift_ppm * 1e-6)


_scenario = Scenario()


def use(scenario: Scenario) -> Scenario:
    """Make ``scenario`` the one every new Connection and ``get_now`` follows."""
    global _scenario
    _scenario = scenario
    return scenario


def get_now() -> int:
    """The LeapC clock, µs."""
    return int(_scenario.leap_us(time.monotonic_ns()))


def get_server_status(timeout) -> dict:
    """As ``leap.get_server_status``: LeapGetServerStatus(uint32_t timeout ms, ...), its
    strings copied out."""
    if not isinstance(timeout, int) or not 0 <= timeout < 2**32:
        raise TypeError(f"fake: LeapGetServerStatus takes a uint32_t timeout in ms, got {timeout!r}")  # as cffi would
    sc = _scenario
    if sc.status_fails:
        raise LeapTimeoutError("fake: LeapGetServerStatus timed out")
    devices = [{"serial": s, "type": "Leap Motion Controller 2"} for s in sc.attached + sc.other_devices]
    return {"version": "v5.17.1-fake", "devices": devices}


# -------------------------------------------------------------------------- listeners
class Listener:
    """Base class, as in ``leap.event_listener``: override the ``on_*`` methods."""

    def on_event(self, event):
        getattr(self, self._EVENT_CALLS[event.type])(event)

    def on_error(self, error):
        pass

    def on_none_event(self, event):
        pass

    def on_connection_event(self, event):
        pass

    def on_connection_lost_event(self, event):
        pass

    def on_device_event(self, event):
        pass

    def on_tracking_event(self, event):
        pass

    def on_device_lost_event(self, event):
        pass

    _EVENT_CALLS = {
        EventType.EventTypeNone: "on_none_event",
        EventType.Connection: "on_connection_event",
        EventType.ConnectionLost: "on_connection_lost_event",
        EventType.Device: "on_device_event",
        EventType.Tracking: "on_tracking_event",
        EventType.DeviceLost: "on_device_lost_event",
    }


# ------------------------------------------------------------------------- connection
class Connection:
    """A connection to the fake service, following the module's current Scenario."""

    def __init__(self, *, server_namespace=None, multi_device_aware=False, listeners=None, poll_timeout=1, response_timeout=10):
        self._listeners = [] if listeners is None else listeners
        self._scenario = _scenario
        self._is_open = False
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._poll_thread: threading.Thread | None = None
        self._buffer = [Hand(), Hand()]  # LeapC's reused message buffer

    def add_listener(self, listener):
        self._listeners.append(listener)

    def remove_listener(self, listener):
        self._listeners.remove(listener)

    @contextmanager
    def open(self, *, auto_poll=True, timeout=10):
        self._is_open = True
        self._stop.clear()
        self._poll_thread = threading.Thread(target=self._poll_loop, name="fake-leap-poll", daemon=True)
        self._scenario.threads.append(self._poll_thread)
        self._poll_thread.start()
        if not self._connected.wait(timeout):
            self._stop_poll_thread()
            self._is_open = False
            raise LeapTimeoutError("Did not received expected event in time")
        try:
            yield self
        finally:
            self._stop_poll_thread()
            self._is_open = False

    def set_tracking_mode(self, mode):
        value = mode.value
        if not self._is_open:
            raise LeapNotConnectedError()
        self._scenario.tracking_mode = TrackingMode(value)

    # ----------------------------------------------------------------- polling thread
    def _stop_poll_thread(self):
        if self._poll_thread is not None:
            self._stop.set()
            self._poll_thread.join()
            self._poll_thread = None

    def _deliver(self, event):
        for listener in list(self._listeners):
            try:
                listener.on_event(event)
            except Exception as exc:  # the real bindings print it to stderr
                self._scenario.escaped.append(exc)

    def _error(self, error):
        for listener in list(self._listeners):
            listener.on_error(error)

    def _idle(self, seconds: float | None = None, until: threading.Event | None = None) -> bool:
        """Wait (polling times out meanwhile); False once the connection is closing."""
        end = None if seconds is None else time.monotonic() + seconds
        while not self._stop.is_set():
            if until is not None and until.is_set():
                return True
            left = self._scenario.idle_error_s if end is None else min(self._scenario.idle_error_s, end - time.monotonic())
            if left <= 0:
                return True
            if self._stop.wait(left):
                return False
            self._error(LeapTimeoutError())
        return False

    def _poll_loop(self):
        sc = self._scenario
        if not sc.service:
            self._idle()
            return
        self._connected.set()
        self._deliver(ConnectionEvent())
        if sc.serial is not None:
            self._deliver(self._simple_event("device", (sc.serial,), sc))
        if not self._idle(until=sc.go):
            return
        self._play(sc)
        sc.done.set()
        self._idle()

    def _play(self, sc: Scenario):
        period, frame_id, t_next = 1.0 / sc.rate_hz, sc.first_frame_id, time.monotonic()
        for step in sc.steps:
            if self._stop.is_set():
                return
            kind = step[0]
            if kind in ("track", "broken"):
                t_next += period
                if self._stop.wait(max(0.0, t_next - time.monotonic())):
                    return
                self._track(sc, frame_id, step[1] if kind == "track" else None)
                frame_id += 1
            elif kind == "pause":
                if not self._idle(step[1]):
                    return
                t_next = time.monotonic()
            elif kind == "leap_error":
                self._error(LeapUnknownError("fake: polling failed"))
            else:
                self._deliver(self._simple_event(kind, step[1:], sc))

    def _simple_event(self, kind: str, args: tuple, sc: Scenario):
        if kind == "connection":
            return ConnectionEvent()
        if kind == "connection_lost":
            return ConnectionLostEvent()
        if kind == "device":
            if args[0] not in sc.attached:  # the service lists a device before it tells of it
                sc.attached.append(args[0])
            return DeviceEvent(Device(args[0]))
        if kind == "device_lost":
            sc.attached.clear()
            return DeviceLostEvent(Device(sc.serial or ""))
        raise ValueError(f"unknown fake step {kind!r}")

    def _track(self, sc: Scenario, frame_id: int, specs: list | None):
        timestamp = get_now() - sc.latency_us
        if specs is None:
            event = _BrokenTrackingEvent(timestamp, frame_id, sc.rate_hz)
        else:
            for hand, spec in zip(self._buffer[: len(specs)], specs, strict=True):
                _fill_hand(hand, spec)
            event = TrackingEvent(timestamp, frame_id, sc.rate_hz, self._buffer[: len(specs)])
        sc.delivered.append((frame_id, timestamp))
        self._deliver(event)
        for hand in self._buffer:  # the buffer is reused once the callback returns
            _scribble(hand)
        event.timestamp, event.tracking_frame_id, event.framerate = -1, -1, float("nan")


# -------------------------------------------------------------------------- recording
def write_recording(path, frames: list[dict]) -> None:
    """Write the fake's ``.lmt``: ``frames`` are dicts with ``timestamp`` (µs),
    ``tracking_frame_id``, ``framerate`` and ``hands`` (:func:`hand_spec` dicts)."""
    with open(path, "w") as f:
        json.dump({"fake_lmt": 1, "frames": frames}, f)


class Recording:
    """``leap.Recording``: ``with Recording(path, mode="r") as r: for event in r: ...``."""

    def __init__(self, fpath, mode="r"):
        self._fpath = fpath.encode("utf-8")  # the real one needs a str too
        self._mode = mode
        self._frames: list | None = None
        self._next = 0

    def __enter__(self):
        try:
            with open(self._fpath.decode("utf-8")) as f:
                self._frames = json.load(f)["frames"]
        except (OSError, ValueError, KeyError) as e:
            raise LeapUnknownError(f"fake: LeapRecordingOpen failed: {e}") from e
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        if self._frames is None:
            raise LeapInvalidArgumentError("fake: recording is not open")
        self._frames = None

    def __iter__(self):
        return self

    def __next__(self):
        return self.read_frame()

    def read(self):
        return list(self)

    def read_frame(self):
        if self._frames is None:
            raise LeapInvalidArgumentError("fake: recording is not open")
        if self._next >= len(self._frames):
            raise StopIteration
        f = self._frames[self._next]
        self._next += 1
        return TrackingEvent(f["timestamp"], f["tracking_frame_id"], f["framerate"], [_new_hand(h) for h in f["hands"]])
