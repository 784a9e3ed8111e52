"""The Ultraleap tracker and the .lmt replay, against a fake ``leap`` module
(tests/fake_leap.py) that has the real bindings' object shapes and nothing more."""

import importlib
import sys
import threading
import time
import types

import cv2
import fake_leap as fl
import numpy as np
import pytest
from click.testing import CliRunner

from gthd.capture import ultraleap
from gthd.capture.sources import ClockBracket, SourceError, TrackerEvent, TrackerFrame
from gthd.capture.ultraleap import LeapRecordingTracker, UltraleapTracker, frame_from_event
from gthd.cli import main
from gthd.hand import JOINT_INDEX

LEFT = fl.hand_spec(7, "left", base=1000.0)  # confidence 1.0, as LeapC reports it
RIGHT = fl.hand_spec(8, "right", base=2000.0)


@pytest.fixture
def leap(monkeypatch):
    monkeypatch.setitem(sys.modules, "leap", fl)
    yield fl
    fl.use(fl.Scenario())


def of(items, cls):
    return [i for i in items if isinstance(i, cls)]


def kinds(items):
    return [e.kind for e in of(items, TrackerEvent)]


def run_live(scenario, emit=None, **kwargs):
    """Open, start, let the scenario play to its end, stop. Returns (info, items)."""
    fl.use(scenario)
    tracker = UltraleapTracker(**kwargs)
    info = tracker.open()
    items = []
    tracker.start(emit or items.append)
    assert emit or isinstance(items[-1], ClockBracket)  # start() reads the clock before any frame
    scenario.go.set()
    assert scenario.done.wait(10), "the fake never finished its steps"
    tracker.stop()
    assert not any(t.is_alive() for t in scenario.threads)
    return info, items


def expected_joints(spec):
    """What our 21 joints must be for a hand_spec: wrist = arm.next_joint, then each
    digit's bones' next_joint (index 1 of [prev, next])."""
    return np.array([spec["arm"][1]] + [spec["bones"][d][b][1] for d in range(5) for b in range(4)])


def wait_for(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


# ------------------------------------------------------------------------- live frames
def test_frames_carry_hands_in_our_joint_order(leap):
    sc = fl.Scenario(steps=[fl.track(LEFT, RIGHT), fl.track(RIGHT), fl.track()] * 3)
    info, items = run_live(sc)
    assert info == {"kind": "ultraleap", "serial": "LP-FAKE-0001", "tracking_mode": "Desktop", "clock": "leapc_us"}
    assert sc.tracking_mode is fl.TrackingMode.Desktop
    assert sc.escaped == [] and "error" not in kinds(items)
    frames = of(items, TrackerFrame)
    assert [(f.frame_id, f.t_device_us) for f in frames] == sc.delivered  # all of them, in order
    assert [len(f.hands) for f in frames] == [2, 1, 0] * 3
    assert all(f.framerate == 200.0 for f in frames)
    left, right = frames[0].hands
    assert (left["id"], left["type"], left["confidence"]) == (7, "left", 1.0)
    assert (right["id"], right["type"], right["confidence"]) == (8, "right", 1.0)
    assert frames[1].hands[0]["type"] == "right"
    j = left["joints"]
    assert j.shape == (21, 3) and j.dtype == np.float64
    np.testing.assert_array_equal(j[JOINT_INDEX["WRIST"]], LEFT["arm"][1])  # arm.next_joint
    np.testing.assert_array_equal(j[JOINT_INDEX["THUMB_CMC"]], LEFT["bones"][0][0][1])  # thumb metacarpal
    np.testing.assert_array_equal(j[JOINT_INDEX["INDEX_TIP"]], LEFT["bones"][1][3][1])  # index distal
    np.testing.assert_array_equal(j[JOINT_INDEX["RING_PIP"]], LEFT["bones"][3][1][1])  # ring proximal
    np.testing.assert_array_equal(j[JOINT_INDEX["PINKY_MCP"]], LEFT["bones"][4][0][1])  # pinky metacarpal
    np.testing.assert_array_equal(left["palm"], LEFT["palm"])
    # the fake scribbled NaN over its buffer after every callback: the values were copied out
    for f in frames:
        for h in f.hands:
            spec = LEFT if h["id"] == 7 else RIGHT
            np.testing.assert_array_equal(h["joints"], expected_joints(spec))
            np.testing.assert_array_equal(h["palm"], spec["palm"])
    arrivals = np.array([f.t_arrival_ns for f in frames])
    assert np.all(np.diff(arrivals) > 0)
    assert all(sc.leap_us(f.t_arrival_ns) >= f.t_device_us for f in frames)  # an image is older than its arrival


def test_the_fake_reuses_its_buffer_like_leapc(leap):
    """The copy-out check above means something: keeping the bindings' objects fails."""
    sc = fl.use(fl.Scenario(steps=[fl.track(LEFT)]))
    kept = []

    class Lazy(fl.Listener):
        def on_tracking_event(self, event):
            kept.append(event.hands[0])

    conn = fl.Connection()
    conn.add_listener(Lazy())
    with conn.open(timeout=1):
        sc.go.set()
        assert sc.done.wait(5)
    assert np.isnan(kept[0].palm.position.x) and kept[0].id == -1


def test_wrong_attribute_names_fail(leap, monkeypatch):
    """The fake has only the real attribute names, so a typo in ours cannot pass."""
    sc = fl.use(fl.Scenario(steps=[fl.track(LEFT)]))
    conn, seen = fl.Connection(), []

    class Keep(fl.Listener):
        def on_tracking_event(self, event):
            seen.append(event)
            frame = frame_from_event(event, fl, 0)  # the real names work...
            assert frame.hands[0]["id"] == 7
            hand = event.hands[0]
            for obj, name in [
                (event, "frame_id"),
                (event, "hands_count"),
                (hand, "palm_position"),
                (hand, "fingers"),
                (hand, "is_left"),
                (hand.digits[0], "joints"),
                (hand.arm, "next"),
                (hand.palm.position, "w"),
            ]:
                with pytest.raises(AttributeError):
                    getattr(obj, name)  # ...and these do not

    conn.add_listener(Keep())
    with conn.open(timeout=1):
        sc.go.set()
        assert sc.done.wait(5)
    assert len(seen) == 1 and sc.escaped == []

    def typo(hand, leap):
        return {"id": hand.id, "palm": hand.palm_position}

    monkeypatch.setattr(ultraleap, "hand_from_leap", typo)
    _, items = run_live(fl.Scenario(steps=[fl.track(LEFT)]))
    assert of(items, TrackerFrame) == [] and "AttributeError" in of(items, TrackerEvent)[-1].detail


# -------------------------------------------------------------------------------- clock
def test_brackets_precede_frames_and_recur_every_half_second(leap):
    sc = fl.Scenario(steps=[fl.track(LEFT)] * 240, rate_hz=200.0)  # 1.2 s
    _, items = run_live(sc)
    first_bracket = next(i for i, x in enumerate(items) if isinstance(x, ClockBracket))
    first_frame = next(i for i, x in enumerate(items) if isinstance(x, TrackerFrame))
    assert first_bracket < first_frame
    brackets = of(items, ClockBracket)
    assert len(brackets) >= 3
    for b in brackets:
        assert b.h0_ns <= b.h1_ns
        assert sc.leap_us(b.h0_ns) - 1 <= b.device_us <= sc.leap_us(b.h1_ns) + 1  # the fake clock, offset + drift
    gaps = np.diff([b.h0_ns for b in brackets]) / 1e9
    assert np.all(gaps >= 0.5) and np.all(gaps < 0.75), gaps


# ------------------------------------------------------------------------------- events
def test_connection_and_device_loss_then_back(leap):
    steps = [fl.track(LEFT)] * 3 + [fl.connection_lost(), fl.pause(0.1), fl.connection(), fl.device("LP-FAKE-0001")]
    steps += [fl.track(LEFT)] * 3 + [fl.device_lost(), fl.pause(0.05), fl.device("LP-NEW-0002"), fl.track(RIGHT)]
    _, items = run_live(fl.Scenario(steps=steps))
    assert kinds(items) == ["connected", "device", "lost", "connected", "device", "back", "lost", "device", "back"]
    events = of(items, TrackerEvent)
    assert events[1].detail == "LP-FAKE-0001" and events[7].detail == "LP-NEW-0002"
    assert "service" in events[2].detail and "device" in events[6].detail
    # "back" comes before the first frame after each loss
    order = [("F" if isinstance(x, TrackerFrame) else x.kind) for x in items if not isinstance(x, ClockBracket)]
    assert "".join(k if k == "F" else f"<{k}>" for k in order).endswith("FFF<lost><device><back>F")
    assert len(of(items, TrackerFrame)) == 7


def test_exceptions_in_callbacks_become_error_events_and_the_stream_goes_on(leap):
    sc = fl.Scenario(steps=[fl.track(LEFT), fl.broken(), fl.track(LEFT), fl.leap_error(), fl.pause(0.12), fl.track(RIGHT)])
    _, items = run_live(sc)
    assert sc.escaped == []
    assert [f.frame_id for f in of(items, TrackerFrame)] == [1000, 1002, 1003]
    errors = [e.detail for e in of(items, TrackerEvent) if e.kind == "error"]
    assert len(errors) == 2  # poll timeouts during the pause are not errors
    assert "RuntimeError" in errors[0] and "corrupt" in errors[0]
    assert "LeapUnknownError" in errors[1]


def test_a_failing_emit_never_reaches_the_bindings(leap):
    sc = fl.Scenario(steps=[fl.track(LEFT)] * 3 + [fl.connection_lost(), fl.track(LEFT)])
    calls = []

    def emit(item):
        calls.append(item)
        if isinstance(item, TrackerFrame) or getattr(item, "kind", "") in ("lost", "back", "error"):
            raise RuntimeError("queue broke")

    run_live(sc, emit=emit)
    assert sc.escaped == [] and len(of(calls, TrackerFrame)) == 4
    assert kinds(calls).count("error") == 4  # each failed frame reported (and that failed too)


def test_the_serial_comes_from_the_server_status_not_the_freed_buffer(leap):
    device = fl.Device("LP-FAKE-0001")
    with device.open():
        assert device.get_info().serial == fl.FREED_SERIAL  # what the bindings' get_info() gives
    assert ultraleap.clean_serial(fl.FREED_SERIAL) is None
    info, items = run_live(fl.Scenario(serial="LP-FAKE-0001"))
    assert info["serial"] == "LP-FAKE-0001" and of(items, TrackerEvent)[1].detail == "LP-FAKE-0001"


@pytest.mark.parametrize("scenario, why", [
    (fl.Scenario(status_fails=True), "LeapTimeoutError"),
    (fl.Scenario(other_devices=["LP-OTHER-0002"]), "2 Ultraleap devices connected (LP-FAKE-0001, LP-OTHER-0002)"),
])  # fmt: skip
def test_a_device_whose_serial_is_unknown_still_counts(leap, scenario, why):
    fl.use(scenario)
    tracker = UltraleapTracker(connect_timeout_s=1.0)
    assert tracker.open()["serial"] is None
    items = []
    tracker.start(items.append)
    tracker.stop()
    assert kinds(items) == ["connected", "error", "device"]
    assert "serial" in of(items, TrackerEvent)[1].detail and why in of(items, TrackerEvent)[1].detail


def test_serials_are_checked():
    assert ultraleap.clean_serial(" LP-1234 ") == "LP-1234"
    for junk in ["", "   ", "LP\x00", "\x10\x8cLP", "LP-\u00e9", "A" * 65, None, b"LP-1234"]:
        assert ultraleap.clean_serial(junk) is None, junk


@pytest.mark.parametrize("mode, name", [("hmd", "HMD"), ("ScreenTop", "ScreenTop")])
def test_tracking_mode_is_set(leap, mode, name):
    sc = fl.use(fl.Scenario())
    tracker = UltraleapTracker(mode)
    assert tracker.open()["tracking_mode"] == name
    tracker.stop()
    assert sc.tracking_mode is getattr(fl.TrackingMode, name)
    with pytest.raises(ValueError, match="tracking mode"):
        UltraleapTracker("vr")


# ------------------------------------------------------------------------ open failures
def test_no_service_fails_within_the_timeout(leap):
    sc = fl.use(fl.Scenario(service=False))
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="no Ultraleap tracking service: is Ultraleap Hand Tracking running"):
        UltraleapTracker(connect_timeout_s=0.3).open()
    assert 0.25 < time.monotonic() - t0 < 2.0
    assert not any(t.is_alive() for t in sc.threads)


def test_no_device_fails_within_the_timeout(leap):
    sc = fl.use(fl.Scenario(serial=None))
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="the Ultraleap service runs but sees no device: plug the controller in"):
        UltraleapTracker(connect_timeout_s=0.3).open()
    assert 0.25 < time.monotonic() - t0 < 2.0
    assert not any(t.is_alive() for t in sc.threads)


def make_trackers(path):
    return [UltraleapTracker(connect_timeout_s=0.2), LeapRecordingTracker(path)]


def test_bindings_not_installed(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "leap", None)  # import leap -> ModuleNotFoundError
    (tmp_path / "r.lmt").write_text("{}")
    for tracker in make_trackers(tmp_path / "r.lmt"):
        with pytest.raises(SourceError, match=r"Ultraleap's Python bindings \(`import leap`\) are not installed: see docs/install-leap.md"):
            tracker.open()


def test_wrong_leap_package(monkeypatch, tmp_path):
    pypi_leap = types.ModuleType("leap")  # PyPI's `leap`: a time-integration library
    pypi_leap.integrate = lambda *a: None
    monkeypatch.setitem(sys.modules, "leap", pypi_leap)
    (tmp_path / "r.lmt").write_text("{}")
    for tracker in make_trackers(tmp_path / "r.lmt"):
        with pytest.raises(SourceError, match=r"not Ultraleap's bindings \(no leap.Connection\).*leapc-python-bindings.*install-leap.md"):
            tracker.open()


def test_bindings_that_cannot_find_leapc(monkeypatch, tmp_path):
    pkg = tmp_path / "site" / "leap"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('raise Exception("Error: Unable to find leapc_cffi dir within directory /usr/lib/x")\n')
    monkeypatch.delitem(sys.modules, "leap", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(SourceError, match="failed to load.*leapc_cffi.*LEAPSDK_INSTALL_LOCATION") as e:
        UltraleapTracker().open()
    assert "\n" not in str(e.value)
    sys.modules.pop("leap", None)


@pytest.fixture
def fresh_modules():
    """Forget the fake bindings a test imported from its own site folder."""
    yield
    for name in [n for n in sys.modules if n.split(".")[0] in ("leap", "leapc_cffi")]:
        del sys.modules[name]


def fake_bindings_without_compiled_module(site, wrapped=True):
    """``leap`` and ``leapc_cffi`` as installed with Ultraleap's prebuilt module for
    another Python: ``leapc_cffi/__init__.py`` imports ``._leapc_cffi``, which is not
    there; the real ``leap/__init__.py`` re-raises that as an ImportError (``wrapped``)."""
    (site / "leap").mkdir(parents=True)
    (site / "leapc_cffi").mkdir()
    (site / "leapc_cffi" / "__init__.py").write_text("from ._leapc_cffi import ffi, lib as libleapc\n")
    if wrapped:
        body = (
            "try:\n    from leapc_cffi import ffi, libleapc\nexcept ImportError as import_error:\n"
            "    raise ImportError(f'Cannot import leapc_cffi: Unknown error, please consult readme for help. "
            "Attempting to find leapc_cffi within /usr/lib/ultraleap-hand-tracking-service. Caught ImportError: {import_error}')\n"
        )
    else:
        body = "from leapc_cffi import ffi, libleapc\n"
    (site / "leap" / "__init__.py").write_text(body)


@pytest.mark.parametrize("wrapped", [True, False])
def test_a_missing_compiled_module_says_to_build_it(monkeypatch, tmp_path, fresh_modules, wrapped):
    fake_bindings_without_compiled_module(tmp_path / "site", wrapped)
    for name in ("leap", "leapc_cffi"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(ModuleNotFoundError if not wrapped else ImportError, match="leapc_cffi._leapc_cffi"):
        importlib.import_module("leap")  # the fake fails the way the real one does
    sys.modules.pop("leap", None)
    with pytest.raises(SourceError) as e:
        UltraleapTracker().open()
    msg = str(e.value)
    v = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert "\n" not in msg and f"compiled module `leapc_cffi._leapc_cffi` for Python {v}" in msg
    assert "python -m build leapc-cffi" in msg and "docs/install-leap.md" in msg and "LEAPSDK_INSTALL_LOCATION" not in msg


def test_the_cli_says_it_in_one_line(monkeypatch, tmp_path, fresh_modules):
    fake_bindings_without_compiled_module(tmp_path / "site")
    for name in ("leap", "leapc_cffi"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    video = tmp_path / "cam.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 20.0, (160, 120))
    for i in range(5):
        w.write(np.full((120, 160, 3), 10 * i, np.uint8))
    w.release()
    r = CliRunner().invoke(main, ["capture", str(tmp_path / "s"), "--camera", str(video), "--tracker", "ultraleap"])
    assert r.exit_code == 1 and r.output.count("\n") == 1 and isinstance(r.exception, SystemExit), r.output
    assert r.output.startswith("Error: ") and "python -m build leapc-cffi" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "s").exists()


# --------------------------------------------------------------------------------- stop
def test_stop_joins_and_nothing_is_emitted_after(leap):
    sc = fl.use(fl.Scenario(steps=[fl.track(LEFT)] * 4000, rate_hz=400.0))  # 10 s: stopped long before
    tracker = UltraleapTracker()
    tracker.open()
    items, late, stopped = [], [], threading.Event()

    def emit(item):
        (late if stopped.is_set() else items).append(item)

    tracker.start(emit)
    sc.go.set()
    wait_for(lambda: len(of(items, TrackerFrame)) >= 10)
    t0 = time.monotonic()
    tracker.stop()
    stopped.set()
    assert time.monotonic() - t0 < 1.0
    assert not any(t.is_alive() for t in sc.threads)
    time.sleep(0.05)
    assert late == [] and not tracker.finished()
    tracker.stop()  # twice is harmless


# ------------------------------------------------------------------------------- replay
def make_recording(path, n, rate_hz=100.0, t0_us=5_000_000):
    frames = [
        {"timestamp": t0_us + round(i * 1e6 / rate_hz), "tracking_frame_id": 50 + i, "framerate": rate_hz,
         "hands": [fl.hand_spec(3, "right", base=float(i))] if i % 2 == 0 else []}
        for i in range(n)
    ]  # fmt: skip
    fl.write_recording(path, frames)
    return frames


def replay(path, realtime):
    tracker = LeapRecordingTracker(path, realtime=realtime)
    info = tracker.open()
    items = []
    assert not tracker.finished()
    t0 = time.monotonic()
    tracker.start(items.append)
    wait_for(tracker.finished)
    elapsed = time.monotonic() - t0
    tracker.stop()
    return info, items, elapsed


def test_replay_unpaced_yields_every_event_in_order_with_brackets(leap, tmp_path):
    recorded = make_recording(tmp_path / "r.lmt", 150)  # 1.5 s recorded
    info, items, _ = replay(tmp_path / "r.lmt", realtime=False)
    assert info == {"kind": "replay", "serial": None, "tracking_mode": None, "clock": "leapc_us", "recording": str(tmp_path / "r.lmt")}
    # not paced: replaying at the recording's rate would space every frame >= 10 ms apart
    arrivals = np.diff([f.t_arrival_ns for f in of(items, TrackerFrame)]) / 1e6  # ms
    assert arrivals.min() < 9.0, arrivals.min()
    assert isinstance(items[0], ClockBracket)
    frames = of(items, TrackerFrame)
    assert [(f.frame_id, f.t_device_us) for f in frames] == [(r["tracking_frame_id"], r["timestamp"]) for r in recorded]
    for f, r in zip(frames, recorded, strict=True):
        assert len(f.hands) == len(r["hands"])
        if f.hands:
            np.testing.assert_array_equal(f.hands[0]["joints"], expected_joints(r["hands"][0]))
            assert f.hands[0]["type"] == "right"
    brackets = of(items, ClockBracket)
    assert [b.device_us for b in brackets] == [recorded[i]["timestamp"] for i in (0, 50, 100)]
    assert all(b.h0_ns == b.h1_ns for b in brackets)
    assert all(b.h0_ns - brackets[0].h0_ns == (b.device_us - brackets[0].device_us) * 1000 for b in brackets)
    assert of(items, TrackerEvent) == []


def test_replay_realtime_is_paced_by_the_timestamps(leap, tmp_path):
    recorded = make_recording(tmp_path / "r.lmt", 30)  # 0.29 s recorded
    _, items, _ = replay(tmp_path / "r.lmt", realtime=True)  # paced: each frame no earlier than due (below)
    b0 = of(items, ClockBracket)[0]
    frames = of(items, TrackerFrame)
    assert len(frames) == 30
    for f, r in zip(frames, recorded, strict=True):
        due = b0.h0_ns + (r["timestamp"] - b0.device_us) * 1000
        assert due <= f.t_arrival_ns < due + 200_000_000  # never early


def test_replay_stops_early_and_stays_quiet(leap, tmp_path):
    make_recording(tmp_path / "r.lmt", 1000)  # 10 s recorded
    tracker = LeapRecordingTracker(tmp_path / "r.lmt")
    tracker.open()
    items, late, stopped = [], [], threading.Event()
    tracker.start(lambda x: (late if stopped.is_set() else items).append(x))
    wait_for(lambda: len(items) >= 3)
    t0 = time.monotonic()
    tracker.stop()
    stopped.set()
    assert time.monotonic() - t0 < 0.5
    time.sleep(0.05)
    assert late == []


def test_replay_of_a_missing_or_bad_file(leap, tmp_path):
    with pytest.raises(SourceError, match="no Ultraleap recording at .*nope.lmt"):
        LeapRecordingTracker(tmp_path / "nope.lmt").open()
    (tmp_path / "bad.lmt").write_text("not a recording")
    with pytest.raises(SourceError, match="cannot open the Ultraleap recording"):
        LeapRecordingTracker(tmp_path / "bad.lmt").open()
