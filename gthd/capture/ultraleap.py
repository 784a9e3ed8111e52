"""The Ultraleap hand tracker, read through Ultraleap's official Python bindings, and the
replay of an Ultraleap ``.lmt`` recording through the same bindings.

The bindings (``import leap``) come from GitHub, ``ultraleap/leapc-python-bindings``; they
are not on the package index, whose package named ``leap`` is an unrelated project
(docs/install-leap.md). They are imported lazily, in ``open()``, so that the rest of gthd
runs without them.

Threads: ``leap.Connection.open()`` starts a polling thread that calls our listener. The
listener copies every tracking event out at once (LeapC reuses its message buffer after
the callback returns), never raises (the bindings would only print the exception: we
forward it as a ``TrackerEvent(kind="error")``), and never blocks for long (``emit`` only
queues).

Clocks (docs/conventions.md): a frame's ``t_device_us`` is LeapC's ``timestamp`` (µs on
the LeapC clock, the time of the device's image); ``t_arrival_ns`` is the host clock
(``time.monotonic_ns()``) when our callback was entered. To map one onto the other we emit
:class:`ClockBracket` readings of ``leap.get_now()`` between two host readings: one at
``start()``, before the first frame, then one before a frame whenever
``bracket_interval_s`` has passed since the last.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from ..hand import joints_from_leap_hand
from .sources import ClockBracket, Emit, SourceError, TrackerEvent, TrackerFrame, TrackerItem

INSTALL_DOC = "docs/install-leap.md"
BRACKET_INTERVAL_S = 0.5
"""How often (host seconds, or recorded seconds in a replay) a clock bracket is emitted."""
BRACKET_READINGS = 5
"""Back-to-back clock readings per bracket; the tightest is kept."""
TRACKING_MODES = {"desktop": "Desktop", "hmd": "HMD", "screentop": "ScreenTop"}
"""Our names for the tracking modes -> the names of ``leap.TrackingMode`` members."""
_MAX_PENDING = 1000  # tracker events kept between open() and start()
COMPILED_MODULE = "leapc_cffi._leapc_cffi"
"""The bindings' compiled part; Ultraleap ships it for Python 3.8 only (3.8-3.11 on Linux ARM): on
gthd's Python (>= 3.10) it must be built (docs/install-leap.md)."""
SERVER_STATUS_TIMEOUT_MS = 1000
"""How long ``leap.get_server_status`` may block the polling thread at a device event."""
SERIAL_MAX_CHARS = 64


def _one_line(e: BaseException | str) -> str:
    """An exception's message on one line (SourceError messages are one line)."""
    text = " ".join(str(e).split())
    return text or type(e).__name__


# ----------------------------------------------------------------------------- bindings
def import_leap() -> ModuleType:
    """Import Ultraleap's bindings (``leap``), or raise :class:`SourceError` saying what
    to install: not installed, installed without their compiled module for this Python
    (``leapc_cffi._leapc_cffi``: it must be built), failing to load LeapC, or the wrong
    package (PyPI's unrelated ``leap``, which has no ``leap.Connection``)."""
    try:
        leap = importlib.import_module("leap")
    except ModuleNotFoundError as e:
        if e.name == "leap":
            raise SourceError(f"Ultraleap's Python bindings (`import leap`) are not installed: see {INSTALL_DOC}") from e
        raise _broken_bindings(e) from e
    except Exception as e:  # their __init__ raises a bare Exception when it cannot find LeapC
        raise _broken_bindings(e) from e
    if not hasattr(leap, "Connection"):
        raise SourceError(
            "the installed `leap` package is not Ultraleap's bindings (no leap.Connection): uninstall it "
            f"(`pip uninstall leap`) and install Ultraleap's leapc-python-bindings, see {INSTALL_DOC}"
        )
    return leap


def _broken_bindings(e: BaseException) -> SourceError:
    if _missing_compiled_module(e):
        v = f"{sys.version_info.major}.{sys.version_info.minor}"
        return SourceError(
            f"Ultraleap's Python bindings are installed but not their compiled module `{COMPILED_MODULE}` for Python {v} "
            "(Ultraleap ships it for Python 3.8 only, 3.8-3.11 on Linux ARM): build it with gthd's Python, in your "
            "leapc-python-bindings clone: `python -m build leapc-cffi` then `pip install "
            f"leapc-cffi/dist/leapc_cffi-0.0.1.tar.gz` (needs a C compiler); see {INSTALL_DOC}"
        )
    return SourceError(
        f"Ultraleap's Python bindings (`import leap`) failed to load ({_one_line(e)}): is Ultraleap Hand Tracking "
        f"installed? if its LeapSDK is not in the default place set LEAPSDK_INSTALL_LOCATION; see {INSTALL_DOC}"
    )


def _missing_compiled_module(e: BaseException | None) -> bool:
    """Whether an import failure comes down to ``leapc_cffi._leapc_cffi`` missing: raised
    as is, or (the bindings' ``__init__`` does this) re-raised as an ImportError naming it."""
    for _ in range(8):  # a chain of causes; bounded, should one ever loop
        if e is None:
            return False
        if (isinstance(e, ModuleNotFoundError) and e.name == COMPILED_MODULE) or COMPILED_MODULE in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


def clean_serial(serial) -> str | None:
    """A device serial as reported, if it looks like one (printable ASCII, 1 to
    ``SERIAL_MAX_CHARS`` characters once stripped), else None: it comes from C memory."""
    if not isinstance(serial, str):
        return None
    serial = serial.strip()
    ok = 0 < len(serial) <= SERIAL_MAX_CHARS and serial.isascii() and serial.isprintable()
    return serial if ok else None


def device_serial(leap: ModuleType) -> str | None:
    """The serial of the device the service reports, from ``leap.get_server_status``.

    Not ``Device.get_info().serial``: the bindings hand LeapC a serial buffer that cffi
    has already freed (``info_ptr.serial = ffi.new(...)`` keeps no reference to it), so
    LeapC writes, and the bindings read, freed memory. ``get_server_status`` copies its
    strings out before releasing them; they are still checked (:func:`clean_serial`).

    Returns:
        The serial; None if the service lists no device or one that does not look like
        a serial.
    Raises:
        SourceError: several devices (which one this connection tracks is not said).
        Exception: whatever ``get_server_status`` raises (e.g. ``LeapTimeoutError``).
    """
    devices = leap.get_server_status(SERVER_STATUS_TIMEOUT_MS).get("devices") or []
    serials = [clean_serial(d.get("serial")) for d in devices]
    if len(serials) > 1:
        raise SourceError(f"{len(serials)} Ultraleap devices connected ({', '.join(map(str, serials))}): which one is tracked is unknown")
    return serials[0] if serials else None


def leap_clock_bracket(get_now, readings: int = BRACKET_READINGS) -> ClockBracket:
    """The tightest of ``readings`` back-to-back readings ``h0 = monotonic_ns();
    device = get_now(); h1 = monotonic_ns()``.

    Args:
        get_now: ``leap.get_now``, the LeapC clock in µs.
    Returns:
        ``ClockBracket(h0_ns, device_us, h1_ns)``, host ns and LeapC µs.
    """
    best: ClockBracket | None = None
    for _ in range(readings):
        h0 = time.monotonic_ns()
        device = get_now()
        h1 = time.monotonic_ns()
        if best is None or h1 - h0 < best.h1_ns - best.h0_ns:
            best = ClockBracket(h0, int(device), h1)
    return best


def hand_side(hand_type, leap: ModuleType) -> str:
    """``leap.HandType.Left`` / ``.Right`` -> "left" / "right"."""
    if hand_type == leap.HandType.Left:
        return "left"
    if hand_type == leap.HandType.Right:
        return "right"
    raise ValueError(f"unknown Ultraleap hand type {hand_type!r}")


def hand_from_leap(hand, leap: ModuleType) -> dict:
    """Copy one LeapC hand out of the bindings' buffers.

    Returns:
        ``id`` (int), ``type`` ("left"/"right"), ``confidence`` (float, as given: LeapC
        documents it as unused, always 1.0), ``joints``
        ((21, 3) float64, mm, frame ``leap``, our joint order), ``palm`` ((3,) float64 mm).
    """
    p = hand.palm.position
    return {
        "id": int(hand.id),
        "type": hand_side(hand.type, leap),
        "confidence": float(hand.confidence),
        "joints": joints_from_leap_hand(hand),
        "palm": np.array([p.x, p.y, p.z], dtype=np.float64),
    }


def frame_from_event(event, leap: ModuleType, t_arrival_ns: int) -> TrackerFrame:
    """Copy a LeapC tracking event (``leap.events.TrackingEvent``) into a
    :class:`TrackerFrame`; nothing in it refers to the bindings' memory afterwards."""
    return TrackerFrame(
        frame_id=int(event.tracking_frame_id),
        t_device_us=int(event.timestamp),
        t_arrival_ns=int(t_arrival_ns),
        framerate=float(event.framerate),
        hands=[hand_from_leap(h, leap) for h in event.hands],
    )


def _make_listener(leap: ModuleType, tracker: UltraleapTracker):
    """A ``leap.Listener`` that hands the bindings' callbacks (on their polling thread) to
    ``tracker``, each guarded so that no exception reaches the bindings."""

    class _Listener(leap.Listener):
        def on_connection_event(self, event):
            tracker._guard(tracker._on_connection, event)

        def on_connection_lost_event(self, event):
            tracker._guard(tracker._on_lost, "connection to the Ultraleap service lost")

        def on_device_event(self, event):
            tracker._guard(tracker._on_device, event)

        def on_device_lost_event(self, event):
            tracker._guard(tracker._on_lost, "Ultraleap device lost")

        def on_tracking_event(self, event):
            t_arrival = time.monotonic_ns()
            tracker._guard(tracker._on_tracking, event, t_arrival)

        def on_error(self, error):
            tracker._guard(tracker._on_poll_error, error)

    return _Listener()


# ------------------------------------------------------------------------- live device
class UltraleapTracker:
    """A live Ultraleap controller as a :class:`~gthd.capture.sources.TrackerSource`.

    Args:
        tracking_mode: "desktop", "hmd" or "screentop" (``leap.TrackingMode``).
        connect_timeout_s: how long ``open()`` waits for the service and a device.
        bracket_interval_s: host seconds between clock brackets while frames arrive.

    Example::

        tracker = UltraleapTracker("desktop")
        info = tracker.open()          # {"kind": "ultraleap", "serial": ..., ...}
        tracker.start(queue.put_nowait)
        ...
        tracker.stop()
    """

    def __init__(self, tracking_mode: str = "desktop", connect_timeout_s: float = 5.0, bracket_interval_s: float = BRACKET_INTERVAL_S):
        key = str(tracking_mode).lower()
        if key not in TRACKING_MODES:
            raise ValueError(f"unknown Ultraleap tracking mode {tracking_mode!r}: choose one of {', '.join(TRACKING_MODES)}")
        self.tracking_mode = TRACKING_MODES[key]
        self.connect_timeout_s = float(connect_timeout_s)
        self._bracket_interval_ns = int(bracket_interval_s * 1e9)
        self._leap: ModuleType | None = None
        self._opened = None  # the entered ``connection.open()`` context manager
        self._lock = threading.Lock()  # guards _emit, _pending, _last_bracket_ns; held while emitting
        self._emit: Emit | None = None
        self._pending: list[TrackerEvent] = []
        self._stopped = False
        self._last_bracket_ns = 0
        self._connected = threading.Event()
        self._device_found = threading.Event()
        self._serial: str | None = None
        self._lost = False

    # ------------------------------------------------------------------ interface
    def open(self) -> dict:
        """Connect to the tracking service, wait for a device and set the tracking mode.

        Returns:
            ``{"kind": "ultraleap", "serial": str | None, "tracking_mode": "Desktop" |
            "HMD" | "ScreenTop", "clock": "leapc_us"}``.
        Raises:
            SourceError: bindings missing or wrong, no service, no device.
        """
        leap = self._leap = import_leap()
        deadline = time.monotonic() + self.connect_timeout_s
        try:
            connection = leap.Connection()
            connection.add_listener(_make_listener(leap, self))
        except Exception as e:
            msg = f"could not create a LeapC connection ({_one_line(e)}): is Ultraleap Hand Tracking installed? see {INSTALL_DOC}"
            raise SourceError(msg) from e
        try:
            opened = connection.open(timeout=self.connect_timeout_s)
            opened.__enter__()  # starts the polling thread; waits for the service to answer
        except Exception as e:
            raise self._no_service(e) from e
        self._opened = opened
        try:
            self._await_connection(deadline)
            self._set_tracking_mode(connection, leap)
            self._await_device(deadline)
        except BaseException:
            self._close()
            raise
        return {"kind": "ultraleap", "serial": self._serial, "tracking_mode": self.tracking_mode, "clock": "leapc_us"}

    def start(self, emit: Emit) -> None:
        """Emit what happened since ``open()`` (connected, device), a first clock bracket,
        then every tracking frame from the polling thread. Returns at once."""
        if self._opened is None:
            raise SourceError("the Ultraleap tracker is not open (call open() before start())")
        with self._lock:
            for event in self._pending:
                emit(event)
            self._pending.clear()
            self._emit_bracket(emit)
            self._emit = emit

    def finished(self) -> bool:
        """Always False: a live device never runs out."""
        return False

    def stop(self) -> None:
        """Stop emitting, then close the connection (joins the polling thread). After
        this returns ``emit`` is not called again."""
        with self._lock:
            self._emit = None
            self._stopped = True
            self._pending.clear()
        self._close()

    # ------------------------------------------------------------------ open() helpers
    def _no_service(self, cause: BaseException | None = None) -> SourceError:
        why = f"no answer within {self.connect_timeout_s:g} s" + (f": {_one_line(cause)}" if cause is not None else "")
        return SourceError(
            f"no Ultraleap tracking service: is Ultraleap Hand Tracking running? ({why}); start it "
            "(Linux: `sudo systemctl start ultraleap-hand-tracking-service`; Windows/macOS: open Ultraleap "
            f"Hand Tracking) and check the device in its control panel; see {INSTALL_DOC}"
        )

    def _await_connection(self, deadline: float) -> None:
        if not self._connected.wait(max(0.0, deadline - time.monotonic())):
            raise self._no_service()

    def _set_tracking_mode(self, connection, leap: ModuleType) -> None:
        try:
            connection.set_tracking_mode(getattr(leap.TrackingMode, self.tracking_mode))
        except Exception as e:
            raise SourceError(f"could not set the Ultraleap tracking mode to {self.tracking_mode}: {_one_line(e)}") from e

    def _await_device(self, deadline: float) -> None:
        if not self._device_found.wait(max(0.0, deadline - time.monotonic())):
            raise SourceError(
                "the Ultraleap service runs but sees no device: plug the controller in (try another USB port "
                f"or cable) and check that Ultraleap's control panel shows it (waited {self.connect_timeout_s:g} s)"
            )

    def _close(self) -> None:
        opened, self._opened = self._opened, None
        if opened is not None:
            try:
                opened.__exit__(None, None, None)
            except Exception:
                pass  # closing at the end: nothing is listening for errors any more

    # ------------------------------------------------------------ polling thread
    def _guard(self, fn, *args) -> None:
        """Run a callback body; forward any exception as an "error" event."""
        try:
            fn(*args)
        except Exception as e:
            self._event("error", f"{type(e).__name__}: {_one_line(e)}")

    def _event(self, kind: str, detail: str = "") -> None:
        """Emit a TrackerEvent now, or keep it for start() if not started yet. Never
        raises: an emit that fails on an event has nowhere left to report that to."""
        event = TrackerEvent(time.monotonic_ns(), kind, detail)
        with self._lock:
            if self._emit is not None:
                try:
                    self._emit(event)
                except Exception:
                    pass
            elif not self._stopped and len(self._pending) < _MAX_PENDING:
                self._pending.append(event)

    def _emit_bracket(self, emit: Emit) -> None:
        """Read the LeapC clock and emit a bracket (caller holds the lock)."""
        bracket = leap_clock_bracket(self._leap.get_now)
        self._last_bracket_ns = bracket.h1_ns
        emit(bracket)

    def _on_connection(self, event) -> None:
        self._connected.set()
        self._event("connected", "Ultraleap tracking service")

    def _on_lost(self, detail: str) -> None:
        self._lost = True
        self._event("lost", detail)

    def _on_device(self, event) -> None:
        serial = None
        try:
            serial = device_serial(self._leap)
        except Exception as e:
            self._event("error", f"could not read the Ultraleap device's serial: {type(e).__name__}: {_one_line(e)}")
        if self._serial is None:
            self._serial = serial
        self._device_found.set()
        self._event("device", serial or "")

    def _on_tracking(self, event, t_arrival_ns: int) -> None:
        if self._lost:
            self._lost = False
            self._event("back", "tracking frames again")
        if self._emit is None:
            return  # not started yet (or stopped): dropped
        frame = frame_from_event(event, self._leap, t_arrival_ns)  # copy out before the buffer is reused
        with self._lock:
            emit = self._emit
            if emit is None:
                return
            if time.monotonic_ns() - self._last_bracket_ns >= self._bracket_interval_ns:
                self._emit_bracket(emit)
            emit(frame)

    def _on_poll_error(self, error: BaseException) -> None:
        # LeapPollConnection times out every poll_timeout while nothing arrives (a lost
        # device, an idle service): that is no error of ours.
        if type(error).__name__ == "LeapTimeoutError":
            return
        self._event("error", f"LeapC polling: {type(error).__name__}: {_one_line(error)}")


# ------------------------------------------------------------------------------ replay
class LeapRecordingTracker:
    """An Ultraleap ``.lmt`` recording (written by LeapC, e.g. ``leap.Recorder``) replayed
    as a :class:`~gthd.capture.sources.TrackerSource`, on a thread of its own.

    A replay has no live LeapC clock: the recording's first timestamp is mapped to the
    host time at which the replay starts, and the rest follow at 1 µs = 1000 ns. The clock
    brackets say exactly that (zero width: ``h0_ns == h1_ns``), one before the first frame
    and then about every ``bracket_interval_s`` of recorded time.

    Args:
        path: the ``.lmt`` file.
        realtime: pace frames by their recorded timestamps; False: as fast as possible.
        bracket_interval_s: recorded seconds between clock brackets.
    """

    finite = True

    def __init__(self, path: str | Path, realtime: bool = True, bracket_interval_s: float = BRACKET_INTERVAL_S):
        self.path = Path(path)
        self.realtime = bool(realtime)
        self._bracket_interval_us = int(bracket_interval_s * 1e6)
        self._leap: ModuleType | None = None
        self._recording = None  # the entered leap.Recording
        self._lock = threading.Lock()
        self._emit: Emit | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> dict:
        """Open the recording through ``leap.Recording(path, mode="r")``.

        Returns:
            ``{"kind": "replay", "serial": None, "tracking_mode": None, "clock":
            "leapc_us", "recording": str(path)}``.
        Raises:
            SourceError: no such file, bindings missing or wrong, unreadable recording.
        """
        if not self.path.is_file():
            raise SourceError(f"no Ultraleap recording at {self.path} (file not found)")
        leap = self._leap = import_leap()
        try:
            recording = leap.Recording(str(self.path), mode="r")
            recording.__enter__()
        except Exception as e:
            msg = f"cannot open the Ultraleap recording {self.path} (is it an .lmt file written by LeapC?): {_one_line(e)}"
            raise SourceError(msg) from e
        self._recording = recording
        return {"kind": "replay", "serial": None, "tracking_mode": None, "clock": "leapc_us", "recording": str(self.path)}

    def start(self, emit: Emit) -> None:
        """Start the replay thread (returns at once)."""
        if self._recording is None:
            raise SourceError("the Ultraleap recording is not open (call open() before start())")
        self._emit = emit
        self._thread = threading.Thread(target=self._run, name="gthd-leap-replay", daemon=True)
        self._thread.start()

    def finished(self) -> bool:
        """True once the last recorded event has been emitted (or the replay failed)."""
        return self._done.is_set()

    def stop(self) -> None:
        """Stop the replay and close the recording; ``emit`` is not called afterwards."""
        self._stop.set()
        with self._lock:
            self._emit = None
        if self._thread is not None:
            self._thread.join()
        self._close_recording()

    # ------------------------------------------------------------------ thread
    def _send(self, item: TrackerItem) -> None:
        with self._lock:
            if self._emit is not None:
                self._emit(item)

    def _run(self) -> None:
        try:
            self._replay()
        except Exception as e:
            self._send(TrackerEvent(time.monotonic_ns(), "error", f"reading {self.path.name}: {type(e).__name__}: {_one_line(e)}"))
        finally:
            self._close_recording()
            self._done.set()

    def _replay(self) -> None:
        host0_ns = dev0_us = next_bracket_us = None
        for event in self._recording:
            if self._stop.is_set():
                return
            t_dev = int(event.timestamp)
            if host0_ns is None:
                host0_ns, dev0_us = time.monotonic_ns(), t_dev
            t_host = host0_ns + (t_dev - dev0_us) * 1000  # recorded device time, as if started now
            if self.realtime and self._stop.wait(max(0.0, (t_host - time.monotonic_ns()) / 1e9)):
                return
            if next_bracket_us is None or t_dev >= next_bracket_us:
                self._send(ClockBracket(t_host, t_dev, t_host))
                next_bracket_us = t_dev + self._bracket_interval_us
            self._send_frame(event)

    def _send_frame(self, event) -> None:
        """One recorded event as a frame; a bad one becomes an "error" event and the
        replay goes on."""
        try:
            frame = frame_from_event(event, self._leap, time.monotonic_ns())
        except Exception as e:
            self._send(TrackerEvent(time.monotonic_ns(), "error", f"{type(e).__name__}: {_one_line(e)}"))
            return
        self._send(frame)

    def _close_recording(self) -> None:
        recording, self._recording = self._recording, None
        if recording is not None:
            try:
                recording.__exit__(None, None, None)
            except Exception:
                pass  # closing a file we only read: nothing is lost
